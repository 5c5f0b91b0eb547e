//! What a key's name is to kovenant: one of its keys, an obsolete seed key, a typo, or not ours.
use super::keys::{self, Key};

/// Prefix of the variables kovenant's own test harness sets (`.ci/services.sh`); they configure
/// the tests, not kovenant, so an environment that carries them is not an error.
pub const TEST_PREFIX: &str = "KOVENANT_TEST_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Known(&'static Key),
    /// A seed key kovenant accepts and ignores.
    Obsolete,
    /// Looks meant for kovenant but is not one of its keys; carries the closest key, if any.
    Unknown(Option<&'static str>),
    /// Someone else's variable.
    Foreign,
}

/// Classifies a key found in a `.env` file: `KOVENANT_*` and near-misses of known keys are
/// unknown (a `.env` may also hold other tools' keys, which are foreign).
pub fn in_file(name: &str) -> Name {
    classify(name, true)
}

/// Classifies an environment variable: only `KOVENANT_*` ones can be unknown, since the
/// environment holds everything else on the machine.
pub fn in_env(name: &str) -> Name {
    classify(name, false)
}

fn classify(name: &str, in_file: bool) -> Name {
    if let Some(key) = keys::lookup(name) {
        return Name::Known(key);
    }
    if keys::OBSOLETE.contains(&name) {
        return Name::Obsolete;
    }
    let harness = !in_file && name.starts_with(TEST_PREFIX);
    if name.starts_with("KOVENANT_") && !harness {
        return Name::Unknown(suggest(name, 3));
    }
    if in_file && let Some(near) = suggest(name, 1) {
        return Name::Unknown(Some(near));
    }
    Name::Foreign
}

/// The known key closest to `name` (case aside, by optimal string alignment distance), when it is
/// at most `max` edits away.
pub fn suggest(name: &str, max: usize) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    keys::KEYS
        .iter()
        .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
        .map(|known| (strsim::osa_distance(&upper, known), known))
        .filter(|(d, _)| *d <= max)
        .min()
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names() {
        let port = keys::lookup("GRAFANA_PORT").expect("a key");
        assert_eq!(in_file("GRAFANA_PORT"), Name::Known(port));
        assert_eq!(in_file("HELM_MOUNT_PATH"), Name::Obsolete);
        assert_eq!(
            in_file("KOVENANT_NAMESPAC"),
            Name::Unknown(Some("KOVENANT_NAMESPACE"))
        );
        assert_eq!(in_file("KOVENANT_WHATEVER"), Name::Unknown(None));
        assert_eq!(in_file("GRAFANA_PROT"), Name::Unknown(Some("GRAFANA_PORT")));
        assert_eq!(in_file("grafana_port"), Name::Unknown(Some("GRAFANA_PORT")));
        assert_eq!(in_file("DOCKER_INFLUXDB_INIT_MODE"), Name::Foreign);
        assert_eq!(in_file("COMPOSE_PROJECT_NAME"), Name::Foreign);
        assert_eq!(in_env("GRAFANA_PROT"), Name::Foreign);
        assert_eq!(in_env("KOVENANT_TEST_REGISTRY"), Name::Foreign);
        assert_eq!(in_file("KOVENANT_TEST_REGISTRY"), Name::Unknown(None));
        assert_eq!(
            in_env("KOVENANT_NAMESPACES"),
            Name::Unknown(Some("KOVENANT_NAMESPACE"))
        );
    }
}
