//! Asset folders -> rendered files: `*.tera` through tera (suffix dropped), everything else as is.
use std::collections::BTreeMap;

use crate::assets::Assets;
use crate::error::{Error, Result};

/// Renders every file under the asset folder `from` into `files`, at the same relative path under
/// `to`. Files that do not end in `.tera` are copied byte for byte: the pipeline chart's own
/// templates use Helm's `{{ }}` syntax, which tera must not touch.
pub fn render_dir(
    assets: &Assets,
    from: &str,
    to: &str,
    context: &tera::Context,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let prefix = format!("{from}/");
    for path in assets.list(from)? {
        let Some(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        // Dotfiles (.keep, editor swap files) are not assets.
        if rel.split('/').any(|part| part.starts_with('.')) {
            continue;
        }
        let text = assets.get(&path)?;
        let (rel, body) = match rel.strip_suffix(".tera") {
            Some(stem) => (stem, render_one(&path, &text, context)?),
            None => (rel, text),
        };
        files.insert(format!("{to}/{rel}"), body.into_bytes());
    }
    Ok(())
}

/// Renders one template text; errors name the asset and carry tera's whole explanation.
pub fn render_one(name: &str, text: &str, context: &tera::Context) -> Result<String> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.add_raw_template(name, text)
        .and_then(|()| tera.render(name, context))
        .map_err(|e| {
            Error::step("render", format!("template {name}: {}", chain(&e))).with_hint(
                "fix the template (or drop --assets to use the embedded ones)".to_owned(),
            )
        })
}

fn chain(err: &tera::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_error_names_the_asset_and_its_cause() {
        let err = render_one("x.yaml.tera", "{{ missing }}", &tera::Context::new())
            .expect_err("undefined variable");
        let text = err.to_string();
        assert!(text.starts_with("render: template x.yaml.tera: "), "{text}");
        assert!(text.contains("missing"), "{text}");
    }
}
