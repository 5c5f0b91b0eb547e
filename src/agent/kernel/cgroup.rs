//! Which pod a process belongs to, from the cgroup paths the kubelet makes (DESIGN.md section
//! 3): cgroupfs `/kubepods[/burstable|/besteffort]/pod<uid>/<container>` and systemd
//! `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice/...`,
//! under cgroup v1 and v2 (a line of `/proc/<pid>/cgroup` per hierarchy).
use crate::agent::objects::parse_uid;

/// The pod UID one cgroup path names, if the path is under a kubelet's `kubepods` tree.
pub fn pod_uid(path: &str) -> Option<u128> {
    let mut in_kubepods = false;
    for part in path.split('/') {
        let part = part.strip_suffix(".slice").unwrap_or(part);
        if !in_kubepods {
            in_kubepods =
                part == "kubepods" || part.starts_with("kubepods-") || part == "kubepods.slice";
            if !in_kubepods {
                continue;
            }
        }
        // cgroupfs: `pod<uid>`; systemd: `kubepods[-<qos>]-pod<uid_with_underscores>`.
        let rest = part
            .strip_prefix("pod")
            .or_else(|| part.rsplit_once("-pod").map(|(_, r)| r));
        if let Some(uid) = rest.and_then(parse_uid) {
            return Some(uid);
        }
    }
    None
}

/// The pod UID of a process, from the text of its `/proc/<pid>/cgroup`: the first hierarchy
/// whose path names one (they agree; v1 controllers may be absent, v2 may be `/`).
pub fn pod_of_process(cgroup_file: &str) -> Option<u128> {
    cgroup_file
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(pod_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f3b5c1e-9a2d-4c6e-8b7a-1d2e3f405162";

    fn uid() -> u128 {
        parse_uid(UID).unwrap()
    }

    #[test]
    fn cgroupfs_layouts_name_the_pod() {
        for path in [
            format!("/kubepods/pod{UID}/4e5f"),
            format!("/kubepods/besteffort/pod{UID}/4e5f"),
            format!("/kubepods/burstable/pod{UID}/4e5f/sub"),
            // A kubelet in a container (kind, docker-in-docker) nests the tree.
            format!("/docker/abc/kubepods/burstable/pod{UID}/4e5f"),
        ] {
            assert_eq!(pod_uid(&path), Some(uid()), "{path}");
        }
    }

    #[test]
    fn systemd_layouts_name_the_pod() {
        let u = UID.replace('-', "_");
        for path in [
            format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-4e5f.scope"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-4e5f.scope"
            ),
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"),
        ] {
            assert_eq!(pod_uid(&path), Some(uid()), "{path}");
        }
    }

    #[test]
    fn paths_outside_kubepods_or_without_a_uid_name_no_pod() {
        for path in [
            "/",
            "/system.slice/containerd.service",
            "/kubepods/besteffort",
            "/kubepods.slice/kubepods-burstable.slice",
            &format!("/user.slice/pod{UID}"),
            "/kubepods/podnot-a-uid/x",
        ] {
            assert_eq!(pod_uid(path), None, "{path}");
        }
    }

    #[test]
    fn a_process_file_is_read_across_hierarchies() {
        let v1_and_v2 =
            format!("9:name=systemd:/\n8:pids:/kubepods/besteffort/pod{UID}/c1\n0::/\n");
        assert_eq!(pod_of_process(&v1_and_v2), Some(uid()));
        let v2_only = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-c1.scope\n",
            UID.replace('-', "_")
        );
        assert_eq!(pod_of_process(&v2_only), Some(uid()));
        assert_eq!(pod_of_process("0::/\n1:cpu:/\n"), None);
    }
}
