//! Tests of the value checks: the edges of each accepted form.
use std::time::Duration;

use super::*;

fn what<T: std::fmt::Debug>(r: Checked<T>) -> String {
    r.expect_err("rejected").what
}

#[test]
fn ports() {
    assert_eq!(port("1"), Ok(1));
    assert_eq!(port("65535"), Ok(65535));
    assert_eq!(what(port("65536")), "is out of the port range");
    assert_eq!(what(port("+80")), "is not a port number");
    assert_eq!(what(port(" 80")), "is not a port number");
}

#[test]
fn labels_and_subdomains() {
    assert_eq!(dns_label("a"), Ok("a".into()));
    assert_eq!(dns_label(&"a".repeat(63)), Ok("a".repeat(63)));
    assert_eq!(
        what(dns_label(&"a".repeat(64))),
        "is 64 characters long, more than 63"
    );
    assert_eq!(
        what(dns_label("ns-")),
        "does not start and end with a letter or digit"
    );
    assert_eq!(
        what(dns_label("a.b")),
        "has characters other than a-z, 0-9 and '-'"
    );
    assert_eq!(dns_subdomain("fast.ssd-1"), Ok("fast.ssd-1".into()));
    assert_eq!(
        what(dns_subdomain("fast..ssd")),
        "is not a DNS-1123 subdomain"
    );
}

#[test]
fn urls() {
    assert!(http_url("http://10.0.0.1:8080/x").is_ok());
    assert_eq!(what(http_url("https://")), "is not a URL (empty host)");
    assert_eq!(what(http_url("file:///tmp")), "has the scheme `file`");
}

#[test]
fn durations() {
    assert_eq!(retention("0"), Ok(Duration::ZERO));
    assert_eq!(retention("1w"), Ok(Duration::from_secs(604_800)));
    assert_eq!(what(retention("7")), "is not a duration");
    assert_eq!(what(interval("0s")), "is zero");
    assert_eq!(what(interval("-10s")), "is negative");
}

#[test]
fn booleans_and_counts() {
    assert_eq!(boolean("Yes"), Ok(true));
    assert_eq!(boolean("0"), Ok(false));
    assert_eq!(what(boolean("on")), "is not a boolean");
    assert_eq!(positive("1"), Ok(1));
    assert_eq!(what(positive("1.5")), "is not a positive integer");
    assert_eq!(what(positive("+5")), "is not a positive integer");
    assert_eq!(what(positive("99999999999999999999999")), "is too large");
}

#[test]
fn registries() {
    for ok in [
        "localhost:5000",
        "registry.example.com/team/sub",
        "127.0.0.1:5000/",
    ] {
        assert!(registry(ok).is_ok(), "{ok}");
    }
    assert_eq!(what(registry("https://r.example.com")), "has a scheme");
    assert_eq!(what(registry("r.example.com:0")), "has an invalid port");
    assert_eq!(what(registry("r.example.com/Team")), "has an invalid path");
    assert_eq!(
        what(registry("-r.example.com")),
        "does not start with a valid host name"
    );
    assert_eq!(what(registry("")), "does not start with a valid host name");
}

#[test]
fn images_sizes_and_words() {
    assert_eq!(
        image("telegraf:1.36.4@sha256:ab"),
        Ok("telegraf:1.36.4@sha256:ab".into())
    );
    assert_eq!(what(image("telegraf 1.36")), "contains whitespace");
    assert_eq!(what(image("")), "is empty");
    assert_eq!(quantity("1.5Gi"), Ok("1.5Gi".into()));
    assert_eq!(what(quantity("10GB")), "is not a storage size");
    assert_eq!(what(quantity("0")), "is not a storage size");
    assert_eq!(
        what(word("two words")),
        "contains whitespace or control characters"
    );
    assert_eq!(text(" prod eu "), Ok("prod eu".into()));
    assert_eq!(what(text("a\u{7}")), "contains control characters");
    assert_eq!(what(executable("")), "is empty");
}
