//! File-level problems: missing, unreadable, not UTF-8, readable by others.
use std::collections::BTreeMap;
use std::path::Path;

use kovenant::config::{self, EnvFile};

use super::errors::{SECRET, check};

#[test]
fn file_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.env");
    let err = config::load_from(Some(&missing), &BTreeMap::new()).expect_err("missing file");
    let shown = missing.display();
    check(
        err,
        &format!(
            "{shown}: cannot read the configuration file: no such file; expected a readable dotenv file"
        ),
        &format!("check the path given to --env-file, or create {shown} from example.env"),
    );
    // Tests run as root, who can read any file: a directory is what cannot be read here.
    let err = config::load_from(Some(dir.path()), &BTreeMap::new()).expect_err("a directory");
    check(
        err,
        &format!(
            "{}: cannot read the configuration file: it is a directory; expected a readable dotenv file",
            dir.path().display()
        ),
        "pass the path of a dotenv file, not of a directory",
    );
}

#[test]
fn not_utf8() {
    let mut body = format!("GRAFANA_ADMIN_PASSWORD={SECRET}\n").into_bytes();
    body.extend_from_slice(b"KOVENANT_CLUSTER_NAME=caf\xE9\n");
    let file = EnvFile {
        path: Path::new("bad.env"),
        bytes: &body,
        mode: Some(0o600),
    };
    check(
        config::build(Some(file), &BTreeMap::new()).expect_err("latin-1 is rejected"),
        "bad.env line 2: KOVENANT_CLUSTER_NAME: the value is not valid UTF-8; expected a UTF-8 \
         text file",
        "convert bad.env to UTF-8, e.g. with iconv -f latin1 -t utf-8",
    );
}

#[test]
fn world_readable_file_with_a_secret_is_a_warning() {
    let with_secret = format!("GRAFANA_ADMIN_PASSWORD={SECRET}\n");
    let build = |text: &str, mode| {
        let file = EnvFile {
            path: Path::new("open.env"),
            bytes: text.as_bytes(),
            mode: Some(mode),
        };
        config::build(Some(file), &BTreeMap::new()).expect("only a warning")
    };
    assert_eq!(
        build(&with_secret, 0o644).warnings,
        [
            "open.env holds a secret (GRAFANA_ADMIN_PASSWORD) and is readable by every user of this \
          machine; run `chmod 600 open.env`"
        ]
    );
    assert_eq!(build(&with_secret, 0o640).warnings, Vec::<String>::new());
    // Readable by all but with no secret in it (empty secrets are generated): nothing to warn of.
    assert_eq!(
        build("GRAFANA_ADMIN_PASSWORD=\n", 0o644).warnings,
        Vec::<String>::new()
    );
}
