//! The Kubernetes Secrets that hold kovenant's credentials: rendered files name them, never their values.

/// One key of a credentials Secret, and the configuration key that may supply its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretKey {
    /// Name of the Secret (in the kovenant namespace).
    pub secret: &'static str,
    /// Key inside the Secret's data.
    pub key: &'static str,
    /// The configuration key that supplies the value; when it is not given, install generates one
    /// and keeps it in the Secret so the next install reuses it.
    pub config_key: &'static str,
    /// Whether install may generate the value (the user name is never generated).
    pub generated: bool,
}

/// Secret of the pipeline's InfluxDB: setup password and admin token.
pub const INFLUXDB_SECRET: &str = "kovenant-influxdb";
pub const INFLUXDB_PASSWORD_KEY: &str = "admin-password";
pub const INFLUXDB_TOKEN_KEY: &str = "admin-token";

/// An InfluxDB token scoped to one use, in its own Secret (key [`SCOPED_TOKEN_KEY`]): install
/// creates it through InfluxDB's API once InfluxDB runs, and only the pods of that use read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub secret: &'static str,
    /// Who holds it, for the authorization's description.
    pub holder: &'static str,
    /// `write` or `read`, on the bucket and on the pod-level bucket.
    pub action: &'static str,
}

/// telegraf on every node: write on the two buckets.
pub const TELEGRAF_TOKEN: Scope = Scope {
    secret: "kovenant-influxdb-telegraf",
    holder: "telegraf",
    action: "write",
};
/// Grafana's InfluxDB data source: read on the two buckets.
pub const GRAFANA_TOKEN: Scope = Scope {
    secret: "kovenant-influxdb-grafana",
    holder: "grafana",
    action: "read",
};
pub const SCOPES: [Scope; 2] = [TELEGRAF_TOKEN, GRAFANA_TOKEN];
pub const SCOPED_TOKEN_KEY: &str = "token";
/// On a scoped token's Secret: how many times it was made. The pods that read it carry the same
/// number in their template, so a new token rolls exactly them.
pub const GENERATION_ANNOTATION: &str = "kovenant.io/token-generation";
/// On a scoped token's Secret: the ID of its InfluxDB authorization (deleted when rotated).
pub const AUTHORIZATION_ANNOTATION: &str = "kovenant.io/influxdb-authorization";

/// Secret of Grafana's admin login (the chart's `admin.existingSecret`).
pub const GRAFANA_SECRET: &str = "kovenant-grafana";
pub const GRAFANA_USER_KEY: &str = "admin-user";
pub const GRAFANA_PASSWORD_KEY: &str = "admin-password";

/// Every credential the rendered files reference, for install to create before the releases.
pub const SECRET_KEYS: &[SecretKey] = &[
    SecretKey {
        secret: INFLUXDB_SECRET,
        key: INFLUXDB_PASSWORD_KEY,
        config_key: "DOCKER_INFLUXDB_INIT_PASSWORD",
        generated: true,
    },
    SecretKey {
        secret: INFLUXDB_SECRET,
        key: INFLUXDB_TOKEN_KEY,
        config_key: "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN",
        generated: true,
    },
    SecretKey {
        secret: GRAFANA_SECRET,
        key: GRAFANA_USER_KEY,
        config_key: "GRAFANA_ADMIN_USER",
        generated: false,
    },
    SecretKey {
        secret: GRAFANA_SECRET,
        key: GRAFANA_PASSWORD_KEY,
        config_key: "GRAFANA_ADMIN_PASSWORD",
        generated: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_key_is_a_known_secret_or_the_grafana_user() {
        for k in SECRET_KEYS {
            let key = crate::config::keys::lookup(k.config_key).expect("known configuration key");
            assert_eq!(key.secret, k.generated, "{}", k.config_key);
        }
    }
}
