//! Value checks for configuration keys: each turns text into a typed value or says what is wrong.
use std::path::PathBuf;
use std::time::Duration;

use super::duration;

/// What is wrong with a value, and the form that would be right. Never holds the value itself, so
/// a secret's problem can be shown without the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Follows the value in a sentence: "is not a valid port".
    pub what: String,
    /// What would be accepted: "an integer from 1 to 65535".
    pub expected: String,
}

pub type Checked<T> = Result<T, Problem>;

fn problem<T>(what: impl Into<String>, expected: &str) -> Checked<T> {
    Err(Problem {
        what: what.into(),
        expected: expected.into(),
    })
}

const PORT: &str = "an integer from 1 to 65535";
const LABEL: &str = "a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-', \
                     starting and ending with a letter or digit";

/// A TCP port, 1–65535.
pub fn port(value: &str) -> Checked<u16> {
    if !digits(value) {
        return problem("is not a port number", PORT);
    }
    match value.parse::<u16>() {
        Ok(0) => problem("is not a valid port (0 is reserved)", PORT),
        Ok(p) => Ok(p),
        Err(_) => problem("is out of the port range", PORT),
    }
}

/// Only ASCII digits (Rust's integer parsing would also take a leading `+`).
fn digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// A Kubernetes namespace: a DNS-1123 label.
pub fn dns_label(value: &str) -> Checked<String> {
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if value.len() > 63 {
        problem(
            format!("is {} characters long, more than 63", value.len()),
            LABEL,
        )
    } else if !ok_chars {
        problem("has characters other than a-z, 0-9 and '-'", LABEL)
    } else if !alnum(value.as_bytes().first()) || !alnum(value.as_bytes().last()) {
        problem("does not start and end with a letter or digit", LABEL)
    } else {
        Ok(value.to_string())
    }
}

/// A DNS-1123 subdomain (storage class names): dot-separated labels, at most 253 characters.
pub fn dns_subdomain(value: &str) -> Checked<String> {
    const FORM: &str = "a DNS-1123 subdomain: lowercase labels of a-z, 0-9 and '-' joined by '.', \
                        at most 253 characters";
    if value.len() > 253 || value.split('.').any(|label| dns_label(label).is_err()) {
        return problem("is not a DNS-1123 subdomain", FORM);
    }
    Ok(value.to_string())
}

/// An absolute http or https URL with a host.
pub fn http_url(value: &str) -> Checked<url::Url> {
    const FORM: &str =
        "an absolute http:// or https:// URL with a host, e.g. https://monitor.example.com";
    match url::Url::parse(value) {
        Err(e) => problem(format!("is not a URL ({e})"), FORM),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            problem(format!("has the scheme `{}`", u.scheme()), FORM)
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => problem("has no host", FORM),
        Ok(u) => Ok(u),
    }
}

/// The URL Grafana is reached at from outside: its host becomes the ingress rule's host, which
/// the Ingress API wants as a DNS name (not an IP address); query, fragment and credentials have
/// no place in a base URL.
pub fn external_url(value: &str) -> Checked<url::Url> {
    const FORM: &str = "the base URL users open, with a DNS host name, e.g. \
                        https://monitor.example.com or https://example.com/ops";
    let url = http_url(value).map_err(|p| Problem {
        expected: FORM.into(),
        ..p
    })?;
    match url.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return problem(
                "has an IP address as its host, which an ingress rule cannot match",
                FORM,
            );
        }
        Some(url::Host::Domain(d)) if dns_subdomain(d).is_err() => {
            return problem(format!("has the host `{d}`, which is not a DNS name"), FORM);
        }
        _ => {}
    }
    if !url.username().is_empty() || url.password().is_some() {
        return problem("holds a user name or password", FORM);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return problem("has a query or fragment", FORM);
    }
    Ok(url)
}

/// The base URL of an InfluxDB of the user's own: scheme, host and port only. telegraf and
/// Grafana append the API paths to it; credentials in it would land in ConfigMaps.
pub fn influxdb_url(value: &str) -> Checked<url::Url> {
    const FORM: &str = "the base URL of an InfluxDB, http(s)://host[:port] with no path, e.g. \
                        https://eu-central-1-1.aws.cloud2.influxdata.com or http://influxdb.monitoring:8086";
    let url = http_url(value).map_err(|p| Problem {
        expected: FORM.into(),
        ..p
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return problem(
            "holds a user name or password (the token goes in KOVENANT_INFLUXDB_TOKEN)",
            FORM,
        );
    }
    if url.path() != "/" {
        return problem(format!("has the path `{}`", url.path()), FORM);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return problem("has a query or fragment", FORM);
    }
    Ok(url)
}

/// A retention period: a duration, or `0` for "keep forever".
pub fn retention(value: &str) -> Checked<Duration> {
    const FORM: &str = "a duration such as 7d, 12h or 1w, or 0 to keep data forever";
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    if value.starts_with('-') {
        return problem("is negative", FORM);
    }
    duration::parse(value).or_else(|_| problem("is not a duration", FORM))
}

/// A positive duration (intervals, windows).
pub fn interval(value: &str) -> Checked<Duration> {
    const FORM: &str = "a positive duration such as 500ms, 10s or 1m";
    if value.starts_with('-') {
        return problem("is negative", FORM);
    }
    match duration::parse(value) {
        Ok(d) if d.is_zero() => problem("is zero", FORM),
        Ok(d) => Ok(d),
        Err(_) => problem("is not a duration", FORM),
    }
}

/// A boolean: true/false, 1/0, yes/no (any case).
pub fn boolean(value: &str) -> Checked<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => problem("is not a boolean", "true or false (also 1/0, yes/no)"),
    }
}

/// A positive integer that fits in memory-sized counters.
pub fn positive(value: &str) -> Checked<usize> {
    const FORM: &str = "a positive integer, e.g. 50000";
    match value.parse::<usize>() {
        _ if !digits(value) => problem("is not a positive integer", FORM),
        Ok(0) => problem("is zero", FORM),
        Ok(n) => Ok(n),
        Err(_) => problem("is too large", FORM),
    }
}

/// A count that may be zero (0 = no limit).
pub fn count(value: &str) -> Checked<usize> {
    const FORM: &str = "a whole number, e.g. 20, or 0 for no limit";
    match value.parse::<usize>() {
        _ if !digits(value) => problem("is not a whole number", FORM),
        Ok(n) => Ok(n),
        Err(_) => problem("is too large", FORM),
    }
}

/// The retention of the pod-level bucket: at least an hour (InfluxDB 2.x's least retention),
/// or `0` for "keep forever".
pub fn pod_retention(value: &str) -> Checked<Duration> {
    const FORM: &str = "a duration of at least 1h, such as 1d or 12h, or 0 to keep data forever";
    let d = retention(value).or_else(|p| problem(&p.what, FORM))?;
    if !d.is_zero() && d < Duration::from_secs(3600) {
        return problem("is shorter than an hour", FORM);
    }
    Ok(d)
}

/// An image reference (`name[:tag][@digest]`): non-empty, no whitespace.
pub fn image(value: &str) -> Checked<String> {
    const FORM: &str =
        "an image reference such as telegraf:1.36.4 or registry.example.com/team/telegraf:1.36.4";
    if value.is_empty() {
        return problem("is empty", FORM);
    }
    if value.chars().any(char::is_whitespace) {
        return problem("contains whitespace", FORM);
    }
    Ok(value.to_string())
}

/// A registry to push to: `host[:port][/path]`, no scheme.
pub fn registry(value: &str) -> Checked<String> {
    const FORM: &str = "host[:port][/path] with no scheme, e.g. registry.example.com:5000/team";
    if value.contains("://") {
        return problem("has a scheme", FORM);
    }
    let value = value.strip_suffix('/').unwrap_or(value);
    let (authority, path) = value.split_once('/').unwrap_or((value, ""));
    let (host, port_text) = match authority.rsplit_once(':') {
        Some((host, p)) => (host, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !host_ok {
        return problem("does not start with a valid host name", FORM);
    }
    if let Some(p) = port_text
        && port(p).is_err()
    {
        return problem("has an invalid port", FORM);
    }
    let path_ok = path.is_empty()
        || path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        });
    if !path_ok {
        return problem("has an invalid path", FORM);
    }
    Ok(value.to_string())
}

/// A Kubernetes quantity for a volume size, e.g. `10Gi`, `500Mi`.
pub fn quantity(value: &str) -> Checked<String> {
    let digits = value
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, unit) = value.split_at(digits);
    let units = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    if num.parse::<f64>().is_ok_and(|n| n > 0.0) && units.contains(&unit) {
        Ok(value.to_string())
    } else {
        problem(
            "is not a storage size",
            "a Kubernetes quantity such as 10Gi or 500Mi",
        )
    }
}

/// Free text shown to people (names, chart versions): no whitespace or control characters.
pub fn word(value: &str) -> Checked<String> {
    const FORM: &str = "a single word with no spaces or control characters";
    if value.is_empty() {
        return problem("is empty", FORM);
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return problem("contains whitespace or control characters", FORM);
    }
    Ok(value.to_string())
}

/// An InfluxDB bucket name: a word without `/`. InfluxQL reaches bucket `b` as database `b`
/// (and the pod-level bucket `b/pods` as its retention policy `pods`): a `/` in it would name
/// another database.
pub fn bucket(value: &str) -> Checked<String> {
    const FORM: &str = "a single word with no spaces, control characters or '/'";
    let name = word(value).or_else(|p| problem(&p.what, FORM))?;
    if name.contains('/') {
        return problem("contains '/'", FORM);
    }
    Ok(name)
}

/// Text shown to people (a cluster name): spaces allowed, control characters not.
pub fn text(value: &str) -> Checked<String> {
    const FORM: &str = "printable text such as prod-eu-1";
    if value.trim().is_empty() {
        return problem("is empty", FORM);
    }
    if value.chars().any(char::is_control) {
        return problem("contains control characters", FORM);
    }
    Ok(value.trim().to_string())
}

/// An executable: a name looked up on PATH, or a path.
pub fn executable(value: &str) -> Checked<PathBuf> {
    if value.is_empty() {
        return problem("is empty", "a program name on PATH, or a path to it");
    }
    Ok(PathBuf::from(value))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
