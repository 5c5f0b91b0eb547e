//! Containers' cgroups as the kubelet names them: cgroupfs and systemd layouts, under cgroup v1
//! (this machine's v1 hierarchies) or v2 (its `unified` hierarchy).
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How a pod's container cgroup is named and where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `/kubepods/besteffort/pod<uid>/<id>` in the v1 hierarchies.
    CgroupfsV1,
    /// `/kubepods/besteffort/pod<uid>/<id>` in the v2 hierarchy.
    CgroupfsV2,
    /// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope` in v1.
    SystemdV1,
    /// The same systemd names in the v2 hierarchy.
    SystemdV2,
}

/// The v1 hierarchies a container joins. A kubelet puts it in every controller; `memory` and
/// `cpuset` are left out here: the test runner's own memory cgroup tracks it, and a cpuset
/// must be configured before it takes tasks. The attribution needs one line that names the pod.
const V1: [&str; 7] = [
    "systemd", "pids", "cpu", "cpuacct", "blkio", "devices", "freezer",
];

/// Creating and removing the shared parents (`kubepods`, `kubepods.slice`...) of tests running
/// at the same time must not interleave: one test's rmdir of an empty parent would pull it from
/// under another's mkdir.
static PARENTS: Mutex<()> = Mutex::new(());

impl Layout {
    /// The container's path below a hierarchy's root.
    pub fn path(self, pod_uid: &str, container_id: &str) -> String {
        match self {
            Layout::CgroupfsV1 | Layout::CgroupfsV2 => {
                format!("kubepods/besteffort/pod{pod_uid}/{container_id}")
            }
            Layout::SystemdV1 | Layout::SystemdV2 => {
                let uid = pod_uid.replace('-', "_");
                format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{container_id}.scope"
                )
            }
        }
    }

    fn roots(self) -> Vec<PathBuf> {
        let base = Path::new("/sys/fs/cgroup");
        match self {
            Layout::CgroupfsV2 | Layout::SystemdV2 => vec![base.join("unified")],
            Layout::CgroupfsV1 | Layout::SystemdV1 => V1.iter().map(|c| base.join(c)).collect(),
        }
    }
}

/// One container's cgroup in each hierarchy of its layout; removed (with the parents no one
/// else uses) on drop, after its processes are gone.
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    depth: usize,
}

impl Cgroup {
    pub fn create(layout: Layout, pod_uid: &str, container_id: &str) -> Cgroup {
        let rel = layout.path(pod_uid, container_id);
        let _g = PARENTS.lock().unwrap_or_else(|e| e.into_inner());
        let dirs: Vec<PathBuf> = layout.roots().iter().map(|r| r.join(&rel)).collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        Cgroup {
            dirs,
            depth: rel.split('/').count(),
        }
    }

    /// Moves process `pid` into the container (every hierarchy of the layout).
    pub fn join(&self, pid: u32) {
        for d in &self.dirs {
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .unwrap_or_else(|e| panic!("write {pid} to {}: {e}", procs.display()));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _g = PARENTS.lock().unwrap_or_else(|e| e.into_inner());
        for d in &self.dirs {
            // Leaf first, then each parent while it is empty; a parent another test still uses
            // answers EBUSY and stays.
            let mut p = d.clone();
            for _ in 0..self.depth {
                if remove_cgroup(&p).is_err() {
                    break;
                }
                if !p.pop() {
                    break;
                }
            }
        }
    }
}

/// rmdir of a cgroup whose last task just exited can answer EBUSY for a moment (the task is
/// still being released): try a few times.
fn remove_cgroup(p: &Path) -> std::io::Result<()> {
    let mut last = Ok(());
    for _ in 0..20 {
        last = std::fs::remove_dir(p);
        match &last {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && has_no_children(p) => {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(_) => return last,
        }
    }
    last
}

fn has_no_children(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|d| d.flatten().all(|e| !e.path().is_dir()))
        .unwrap_or(true)
}
