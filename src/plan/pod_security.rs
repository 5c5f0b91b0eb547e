//! Pure: which Pod Security Standards level each namespace kovenant writes into needs, and why.
//! Preflight reports it against the namespace's `pod-security.kubernetes.io/enforce` label;
//! install labels kovenant's own namespace with it.
use crate::config::{AgentSource, Config};

/// The label Pod Security admission enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The Pod Security Standards levels, least strict first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

/// One workload that sets a namespace's level, and what in it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub workload: &'static str,
    pub level: Level,
    pub why: &'static str,
}

/// What a namespace needs: the least strict level any of its workloads requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub namespace: String,
    /// Whether kovenant owns the namespace (creates and labels it).
    pub owned: bool,
    pub reasons: Vec<Reason>,
}

impl Need {
    /// The strictest level every workload here still runs under.
    pub fn level(&self) -> Level {
        self.reasons
            .iter()
            .map(|r| r.level)
            .min()
            .unwrap_or(Level::Restricted)
    }

    /// The workloads that set the level, e.g. `tetragon (privileged container, hostPID, ...)`.
    pub fn because(&self) -> String {
        let level = self.level();
        self.reasons
            .iter()
            .filter(|r| r.level == level)
            .map(|r| format!("{}: {}", r.workload, r.why))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Every namespace kovenant runs pods in, with what its pods need (from the pinned charts'
/// pod specs and kovenant's own chart).
pub fn needs(config: &Config) -> Vec<Need> {
    // The kernel's counters need the host's processes and capabilities beyond baseline's
    // whichever way Tetragon's events arrive (docs/security.md).
    let agent = Reason {
        workload: "kovenant-agent",
        level: Level::Privileged,
        why: match config.agent_source {
            AgentSource::File => {
                "hostPID, capabilities SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, NET_ADMIN \
                 (kernel counters), hostPath /var/log/tetragon (Tetragon's export file)"
            }
            AgentSource::KubeLogs => {
                "hostPID, capabilities SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, NET_ADMIN \
                 (kernel counters)"
            }
        },
    };
    let tetragon = vec![Reason {
        workload: "tetragon",
        level: Level::Privileged,
        why: "privileged container, hostPID, hostNetwork, hostPath (BPF, /proc)",
    }];
    let mut own = vec![
        Reason {
            workload: "prometheus-node-exporter",
            level: Level::Privileged,
            why: "hostNetwork, hostPID, hostPath / (node metrics)",
        },
        agent,
    ];
    // With an InfluxDB of the user's own, none runs here.
    if config.influxdb.url.is_none() {
        own.push(Reason {
            workload: "kovenant-influxdb",
            level: Level::Baseline,
            why: "no runAsNonRoot or seccomp profile",
        });
    }
    if config.tetragon_namespace == config.namespace {
        let mut reasons = tetragon;
        reasons.extend(own);
        return vec![Need {
            namespace: config.namespace.clone(),
            owned: true,
            reasons,
        }];
    }
    vec![
        Need {
            namespace: config.tetragon_namespace.clone(),
            owned: false,
            reasons: tetragon,
        },
        Need {
            namespace: config.namespace.clone(),
            owned: true,
            reasons: own,
        },
    ]
}

/// The labels install puts on kovenant's own namespace.
pub fn own_labels(config: &Config) -> Vec<(String, String)> {
    needs(config)
        .into_iter()
        .filter(|n| n.owned)
        .map(|n| (ENFORCE_LABEL.to_owned(), n.level().name().to_owned()))
        .collect()
}

/// The name of the pod preflight asks the API server about (never created: a dry run).
pub const PROBE_NAME: &str = "kovenant-admission-probe";

/// A pod that asks of its namespace what kovenant's pods there ask: hostPID, the host network, a
/// privileged container (Tetragon), the agent's capabilities, a host path. Preflight creates it
/// only as a server-side dry run, so every admission step answers as it would for the real pods
/// (Pod Security with the cluster's own defaults and exemptions, admission policies, webhooks)
/// and nothing is made. Pod Security enforces on pods, not on DaemonSets (for those it only
/// warns), so a pod is what must be asked about.
pub fn probe(need: &Need) -> serde_json::Value {
    let has = |w: &str| need.reasons.iter().any(|r| r.workload == w);
    let tetragon = has("tetragon");
    let agent = has("kovenant-agent");
    let host_network = tetragon || has("prometheus-node-exporter");
    let mut security = serde_json::json!({});
    if tetragon {
        security["privileged"] = true.into();
    }
    if agent {
        security["capabilities"] =
            serde_json::json!({"add": ["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "NET_ADMIN"]});
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": PROBE_NAME,
            "namespace": need.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kovenant"},
        },
        "spec": {
            "hostPID": true,
            "hostNetwork": host_network,
            "containers": [{
                "name": "probe",
                "image": "registry.k8s.io/pause:3.10",
                "securityContext": security,
                "volumeMounts": [{"name": "proc", "mountPath": "/host/proc", "readOnly": true}],
            }],
            "volumes": [{"name": "proc", "hostPath": {"path": "/proc"}}],
        },
    })
}

/// Whether the API server's refusal of the probe is Pod Security's: its message is the only
/// sign (admission answers 403 Forbidden for Pod Security, policies and webhooks alike).
pub fn refused_by_pod_security(message: &str) -> bool {
    message.contains("violates PodSecurity")
}

/// Whether pods needing `need` are admitted where `enforced` is the namespace's label (none: the
/// API server's default, `privileged` unless its admission configuration says otherwise).
pub fn admits(enforced: Option<&str>, need: Level) -> Result<(), String> {
    match enforced {
        None => Ok(()),
        Some(label) => match Level::parse(label) {
            Some(level) if level <= need => Ok(()),
            Some(level) => Err(format!("the namespace enforces `{}`", level.name())),
            None => Err(format!("the namespace enforces an unknown level `{label}`")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_namespace_needs_its_least_strict_workload() {
        let config = Config::default();
        let needs = needs(&config);
        assert_eq!(needs.len(), 2);
        assert_eq!(needs[0].namespace, "kube-system");
        assert_eq!(needs[0].level(), Level::Privileged);
        assert!(!needs[0].owned);
        assert_eq!(needs[1].namespace, "kovenant");
        assert_eq!(needs[1].level(), Level::Privileged);
        assert_eq!(
            needs[1].because(),
            "prometheus-node-exporter: hostNetwork, hostPID, hostPath / (node metrics); \
             kovenant-agent: hostPID, capabilities SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH, \
             NET_ADMIN (kernel counters), hostPath /var/log/tetragon (Tetragon's export file)"
        );
        assert_eq!(
            own_labels(&config),
            [(ENFORCE_LABEL.to_owned(), "privileged".to_owned())]
        );
        let together = Config {
            tetragon_namespace: "kovenant".into(),
            ..Config::default()
        };
        assert_eq!(super::needs(&together).len(), 1);
    }

    #[test]
    fn the_probe_asks_what_each_namespace_s_pods_ask() {
        let needs = needs(&Config::default());
        let tetragon = probe(&needs[0]);
        assert_eq!(tetragon["metadata"]["namespace"], "kube-system");
        let c = &tetragon["spec"]["containers"][0]["securityContext"];
        assert_eq!(c["privileged"], true);
        assert!(c.get("capabilities").is_none());
        assert_eq!(tetragon["spec"]["hostNetwork"], true);
        let own = probe(&needs[1]);
        let c = &own["spec"]["containers"][0]["securityContext"];
        assert!(c.get("privileged").is_none());
        assert_eq!(c["capabilities"]["add"][0], "SYS_ADMIN");
        assert_eq!(own["spec"]["hostPID"], true);
        assert!(refused_by_pod_security(
            r#"pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces"#
        ));
        assert!(!refused_by_pod_security("denied by policy"));
    }

    #[test]
    fn a_stricter_label_refuses() {
        assert_eq!(admits(None, Level::Privileged), Ok(()));
        assert_eq!(admits(Some("privileged"), Level::Privileged), Ok(()));
        assert_eq!(admits(Some("privileged"), Level::Baseline), Ok(()));
        assert_eq!(
            admits(Some("baseline"), Level::Privileged),
            Err("the namespace enforces `baseline`".into())
        );
        assert_eq!(
            admits(Some("strict"), Level::Baseline),
            Err("the namespace enforces an unknown level `strict`".into())
        );
    }
}
