//! README's command table and flag lists against the clap definitions, so they cannot drift:
//! every command is in the table, and the flags block is exactly what clap defines.
use clap::CommandFactory;
use kovenant::cli::Cli;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// One flag as the README writes it: `-y/--yes`, `--timeout DURATION` (default 10m),
/// `-o/--output text|json`, `SHELL`.
fn flag(a: &clap::Arg) -> String {
    let mut name = match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("-{s}/--{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => String::new(),
    };
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values())
        && !matches!(
            a.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::Count
        );
    if takes_value {
        let possible: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        let value = if !possible.is_empty() && possible.len() <= 8 {
            // `\|`: a bare `|` would end the Markdown table cell.
            possible.join("\\|")
        } else {
            a.get_value_names()
                .and_then(|v| v.first())
                .map(|v| v.to_string())
                .unwrap_or_else(|| a.get_id().to_string().to_uppercase())
        };
        name = if name.is_empty() {
            value
        } else {
            format!("{name} {value}")
        };
    }
    let mut out = format!("`{name}`");
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if takes_value && !defaults.is_empty() {
        out.push_str(&format!(" ({})", defaults.join(", ")));
    }
    if matches!(a.get_action(), clap::ArgAction::Append) {
        out.push_str(" (repeatable)");
    }
    out
}

fn visible(a: &clap::Arg) -> bool {
    !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

/// The flags block as clap defines it.
fn flags_block() -> String {
    let mut cli = Cli::command();
    // Building fills in what derive leaves implicit (how many values a flag takes).
    cli.build();
    let mut out = String::from("| command | flags (default) |\n|---|---|\n");
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let flags: Vec<String> = sub
            .get_arguments()
            .filter(|a| visible(a) && !a.is_global_set())
            .map(flag)
            .collect();
        out.push_str(&format!(
            "| `{}` | {} |\n",
            sub.get_name(),
            flags.join(", ")
        ));
    }
    let globals: Vec<String> = cli
        .get_arguments()
        .filter(|a| visible(a) && a.is_global_set())
        .map(flag)
        .collect();
    out.push_str(&format!("| global | {} |\n", globals.join(", ")));
    out
}

#[test]
fn readme_flags_block_is_what_clap_defines() {
    let text = readme();
    let start = text
        .find("<!-- flags:start -->\n")
        .expect("README has <!-- flags:start -->");
    let end = text
        .find("<!-- flags:end -->")
        .expect("README has <!-- flags:end -->");
    let found = &text[start + "<!-- flags:start -->\n".len()..end];
    let expected = flags_block();
    // `KOVENANT_BLESS=1 cargo test --test it readme` writes the block into README.md.
    if std::env::var_os("KOVENANT_BLESS").is_some() && found != expected {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let head = &text[..start + "<!-- flags:start -->\n".len()];
        let updated = format!("{head}{expected}{}", &text[end..]);
        std::fs::write(path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        found, expected,
        "README's flags block differs from the clap definitions; replace it with:\n{expected}"
    );
}

#[test]
fn readme_command_table_names_every_command() {
    let text = readme();
    let table = &text[text.find("## Commands").expect("a Commands section")..];
    for sub in Cli::command()
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
    {
        let row = format!("| `{}", sub.get_name());
        assert!(table.contains(&row), "README's command table lacks {row}");
    }
}
