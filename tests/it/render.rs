//! `kovenant render` through the binary: deterministic output, the --out rules, secrets, --assets.
use std::collections::BTreeMap;
use std::path::Path;

use kovenant::assets::Assets;
use kovenant::config::Config;

use crate::support::kovenant;

/// The image reference the library-level tests render with.
pub const IMAGE: &str = "registry.test/telegraf-tetragon:test";

/// The tree `render_all` gives for the default configuration.
pub fn default_tree() -> BTreeMap<String, Vec<u8>> {
    kovenant::plan::render_all(&Config::default(), &Assets::embedded(), IMAGE)
        .expect("default configuration renders")
        .files
}

/// Every file under `dir`, relative path -> bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn render(dir: &Path, extra: &[&str]) -> std::process::Output {
    kovenant()
        .current_dir(dir)
        .args(["render", "--out", "out"])
        .args(extra)
        .output()
        .expect("run kovenant")
}

#[test]
fn render_writes_the_same_bytes_every_time_and_lists_them() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = render(a.path(), &[]);
    let second = render(b.path(), &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(second.status.success());
    let tree = read_tree(&a.path().join("out"));
    assert_eq!(tree, read_tree(&b.path().join("out")));
    for required in kovenant::plan::REQUIRED {
        assert!(tree.contains_key(*required), "no {required}");
    }
    let listed: Vec<String> = String::from_utf8(first.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = tree.keys().map(|rel| format!("out/{rel}")).collect();
    assert_eq!(listed, expected);
}

#[test]
fn a_non_empty_out_folder_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/mine.txt"), "keep me").unwrap();
    let refused = render(dir.path(), &[]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("error: --out out: the folder is not empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(read_tree(&dir.path().join("out")).len(), 1);

    let forced = render(dir.path(), &["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let tree = read_tree(&dir.path().join("out"));
    assert_eq!(tree["mine.txt"], b"keep me");
    assert!(tree.contains_key("values/grafana.yaml"));
}

#[test]
fn secrets_given_in_the_env_file_never_reach_rendered_files() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = ["hunter2-secret", "influx-pass-0001", "influx-token-0002"];
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "GRAFANA_ADMIN_PASSWORD={}\nDOCKER_INFLUXDB_INIT_PASSWORD={}\nDOCKER_INFLUXDB_INIT_ADMIN_TOKEN={}\n",
            secrets[0], secrets[1], secrets[2]
        ),
    )
    .unwrap();
    let out = render(dir.path(), &["--env-file", ".env"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = read_tree(&dir.path().join("out"));
    assert!(tree.len() >= kovenant::plan::REQUIRED.len());
    let printed = [out.stdout, out.stderr].concat();
    for secret in secrets {
        for (path, body) in &tree {
            assert!(
                !String::from_utf8_lossy(body).contains(secret),
                "{secret} in {path}"
            );
        }
        assert!(
            !String::from_utf8_lossy(&printed).contains(secret),
            "{secret} printed"
        );
    }
}

#[test]
fn a_bad_env_file_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "GRAFANA_PORT=notaport\n").unwrap();
    let out = render(dir.path(), &["--env-file", ".env"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("GRAFANA_PORT"));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_assets_folder_overrides_the_embedded_templates() {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (rel, body) in read_tree(&root.join("templates")) {
        let body = if rel == "values/prometheus.yaml.tera" {
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("retention: \"15d\""));
            text.replace("retention: \"15d\"", "retention: \"42d\"")
                .into_bytes()
        } else {
            body
        };
        let path = assets.join("templates").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    for (rel, body) in read_tree(&root.join("policies")) {
        std::fs::create_dir_all(assets.join("policies")).unwrap();
        std::fs::write(assets.join("policies").join(rel), body).unwrap();
    }
    let out = render(dir.path(), &["--assets", "assets"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values = std::fs::read_to_string(dir.path().join("out/values/prometheus.yaml")).unwrap();
    assert!(values.contains("retention: \"42d\""), "{values}");

    // A folder missing a required template is refused before anything is written.
    std::fs::remove_file(assets.join("templates/values/grafana.yaml.tera")).unwrap();
    let out = kovenant()
        .current_dir(dir.path())
        .args(["render", "--out", "out2", "--assets", "assets"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("do not render values/grafana.yaml"),
        "{stderr}"
    );
    assert!(!dir.path().join("out2").exists());
}

/// The `agent.image` line of the rendered pipeline values.
fn rendered_image(dir: &Path) -> String {
    let values =
        std::fs::read_to_string(dir.join("out/charts/kovenant-pipeline/values.yaml")).unwrap();
    let line = values
        .lines()
        .find(|l| l.starts_with("  image: \"telegraf-tetragon:"))
        .unwrap_or_else(|| panic!("no agent image in {values}"));
    serde_json::from_str(line.trim_start_matches("  image: ")).unwrap()
}

#[test]
fn the_image_reference_is_the_content_tag_of_the_agent_binary() {
    let config = Config::default();
    let dir = tempfile::tempdir().unwrap();
    let out = render(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let this = std::fs::read(env!("CARGO_BIN_EXE_kovenant")).unwrap();
    let expected = kovenant::plan::image::reference_for_binary(&config, &this);
    assert_eq!(rendered_image(dir.path()), expected);
    assert!(
        expected.starts_with(&format!("telegraf-tetragon:{}-", env!("CARGO_PKG_VERSION"))),
        "{expected}"
    );

    // --agent-binary names another binary, so another tag; one that is not a Linux build is
    // rendered all the same, with a warning that no image can be built from it.
    let other = dir.path().join("kovenant-darwin");
    std::fs::write(&other, b"\xcf\xfa\xed\xfe not an ELF file").unwrap();
    let again = tempfile::tempdir().unwrap();
    let out = render(again.path(), &["--agent-binary", &other.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_other =
        kovenant::plan::image::reference_for_binary(&config, b"\xcf\xfa\xed\xfe not an ELF file");
    assert_ne!(expected_other, expected);
    assert_eq!(rendered_image(again.path()), expected_other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is a macOS executable, not a Linux build: the image reference is that of an \
             image kovenant could not build; pass --agent-binary PATH naming a Linux kovenant",
            other.display()
        )),
        "{stderr}"
    );
}

/// KOVENANT_INGRESS_TLS_SECRET puts TLS for the external URL's host on Grafana's ingress, and
/// means nothing (a configuration error, exit 2, naming the line) without an https:// ingress.
#[test]
fn the_ingress_tls_secret_needs_an_https_ingress_and_names_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "KOVENANT_EXTERNAL_URL=https://mon.example.com/ops\nKOVENANT_INGRESS_TLS_SECRET=mon-tls\n",
    )
    .unwrap();
    let out = render(dir.path(), &["--env-file", ".env"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values = std::fs::read_to_string(dir.path().join("out/values/grafana.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&values).unwrap();
    let want: serde_yaml::Value =
        serde_yaml::from_str("[{secretName: mon-tls, hosts: [mon.example.com]}]").unwrap();
    assert_eq!(v["ingress"]["tls"], want, "{values}");
    assert_eq!(v["ingress"]["hosts"][0], "mon.example.com", "{values}");

    for (url, why) in [
        (
            "KOVENANT_EXTERNAL_URL=http://mon.example.com/\n",
            "KOVENANT_EXTERNAL_URL is http://, so browsers would never use it",
        ),
        ("", "KOVENANT_EXTERNAL_URL is empty, so there is no ingress"),
        (
            "KOVENANT_EXTERNAL_URL=https://mon.example.com/\nKOVENANT_INGRESS_CLASS=none\n",
            "KOVENANT_INGRESS_CLASS=none, so there is no ingress",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            format!("{url}KOVENANT_INGRESS_TLS_SECRET=mon-tls\n"),
        )
        .unwrap();
        let out = render(dir.path(), &["--env-file", ".env"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let line = url.lines().count() + 1;
        assert!(
            stderr.contains(&format!(
                ".env line {line}: KOVENANT_INGRESS_TLS_SECRET: names Secret mon-tls for the Grafana \
                 ingress's TLS, but {why}; expected it only with an https:// \
                 KOVENANT_EXTERNAL_URL and an ingress class\n"
            )),
            "{stderr}"
        );
        assert!(!dir.path().join("out").exists());
    }
}
