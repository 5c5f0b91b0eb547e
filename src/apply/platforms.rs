//! The nodes' platforms against the agent binary's: the image runs one Linux architecture.
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::backend::docker::AgentBinary;
use crate::backend::docker::linux_binary_hint;
use crate::backend::kube::{Kube, describe};
use crate::plan::image::{Arch, BinaryKind};
use crate::ui::checks::Checklist;

/// One node's `status.nodeInfo`: (name, operatingSystem, architecture).
type NodePlatform = (String, String, String);

/// The release of kovenant built for `arch`, as the hint names it.
fn release(arch: &str) -> String {
    let triple = match arch {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        other => other,
    };
    format!("kovenant-{triple}-unknown-linux-gnu")
}

/// What the agent binary's platform means for these nodes: the check's outcome as
/// (failed, detail, hint). Pure, so each case is tested without a cluster.
pub fn judge(binary: BinaryKind, nodes: &[NodePlatform]) -> (Option<bool>, String, String) {
    let linux: Vec<&NodePlatform> = nodes.iter().filter(|n| n.1 == "linux").collect();
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.1 != "linux")
        .map(|n| format!("{} ({})", n.0, n.1))
        .collect();
    let skipped = if others.is_empty() {
        String::new()
    } else {
        format!("; no agent on {} (Linux only)", others.join(", "))
    };
    let Some(arch) = binary.linux_arch() else {
        return (
            Some(true),
            format!(
                "the agent binary is {}, not a Linux build",
                binary.describe()
            ),
            linux_binary_hint(binary),
        );
    };
    let mut foreign: Vec<(&str, Vec<&str>)> = Vec::new();
    for n in linux
        .iter()
        .filter(|n| Arch::from_docker(&n.2) != Some(arch))
    {
        match foreign.iter_mut().find(|(a, _)| *a == n.2) {
            Some((_, names)) => names.push(&n.0),
            None => foreign.push((&n.2, vec![&n.0])),
        }
    }
    let matching = linux.len() - foreign.iter().map(|(_, n)| n.len()).sum::<usize>();
    if foreign.is_empty() {
        return (
            None,
            format!("{matching} linux/{arch} node(s){skipped}"),
            String::new(),
        );
    }
    let each: Vec<String> = foreign
        .iter()
        .map(|(a, names)| {
            format!(
                "{} {} linux/{a} and need{} --agent-binary {}",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" },
                if names.len() == 1 { "s" } else { "" },
                release(a)
            )
        })
        .collect();
    let detail = format!(
        "the agent binary is linux/{arch}, but {}{skipped}",
        each.join("; ")
    );
    if matching == 0 {
        // No node could run it: the DaemonSet would schedule nothing.
        let hint = match foreign.as_slice() {
            [(a, _)] => format!("pass --agent-binary PATH naming the {} release", release(a)),
            _ => {
                "one image serves one architecture: pass --agent-binary for the nodes that matter \
                  most"
                    .to_owned()
            }
        };
        return (Some(true), detail, hint);
    }
    (
        Some(false),
        format!("{detail}: the agent runs only on the {matching} linux/{arch} node(s)"),
        "one image serves one architecture: the other nodes' traffic is not counted, and status \
         names them"
            .to_owned(),
    )
}

/// Preflight: every node's `status.nodeInfo` against the agent binary.
pub async fn check(k: &Kube, binary: &AgentBinary, list: &mut Checklist) {
    let title = "the agent binary runs on the nodes";
    let nodes = match Api::<Node>::all(k.client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) => {
            return list.warn(
                title,
                &describe(&e),
                "kubectl get nodes -L kubernetes.io/arch",
            );
        }
    };
    let platforms: Vec<NodePlatform> = nodes
        .iter()
        .map(|n| {
            let info = n.status.as_ref().and_then(|s| s.node_info.as_ref());
            (
                n.metadata.name.clone().unwrap_or_default(),
                info.map(|i| i.operating_system.clone()).unwrap_or_default(),
                info.map(|i| i.architecture.clone()).unwrap_or_default(),
            )
        })
        .collect();
    match judge(BinaryKind::of(&binary.bytes), &platforms) {
        (None, detail, _) => list.ok(title, &detail),
        (Some(false), detail, hint) => list.warn(title, &detail, &hint),
        (Some(true), detail, hint) => list.fail(title, &detail, &hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD64: BinaryKind = BinaryKind::Elf64 {
        arch: Some(Arch::Amd64),
        machine: 62,
    };

    fn node(name: &str, os: &str, arch: &str) -> NodePlatform {
        (name.into(), os.into(), arch.into())
    }

    #[test]
    fn nodes_of_the_binarys_platform_pass() {
        let nodes = [node("a", "linux", "amd64"), node("w", "windows", "amd64")];
        assert_eq!(
            judge(AMD64, &nodes),
            (
                None,
                "1 linux/amd64 node(s); no agent on w (windows) (Linux only)".into(),
                String::new()
            )
        );
    }

    #[test]
    fn mixed_nodes_warn_naming_each_and_its_binary() {
        let nodes = [
            node("a", "linux", "amd64"),
            node("b", "linux", "arm64"),
            node("c", "linux", "arm64"),
        ];
        let (failed, detail, _) = judge(AMD64, &nodes);
        assert_eq!(failed, Some(false));
        assert_eq!(
            detail,
            "the agent binary is linux/amd64, but b, c are linux/arm64 and need --agent-binary \
             kovenant-aarch64-unknown-linux-gnu: the agent runs only on the 1 linux/amd64 node(s)"
        );
    }

    #[test]
    fn no_matching_node_fails_and_a_macos_binary_says_where_to_get_one() {
        let nodes = [node("b", "linux", "arm64")];
        let (failed, _, hint) = judge(AMD64, &nodes);
        assert_eq!(failed, Some(true));
        assert_eq!(
            hint,
            "pass --agent-binary PATH naming the kovenant-aarch64-unknown-linux-gnu release"
        );
        let (failed, detail, hint) = judge(BinaryKind::MachO, &nodes);
        assert_eq!(failed, Some(true));
        assert_eq!(
            detail,
            "the agent binary is a macOS executable, not a Linux build"
        );
        assert!(
            hint.starts_with("a macOS kovenant cannot run in the cluster"),
            "{hint}"
        );
    }
}
