//! Incremental index tests: any sequence of changes gives the answers of a build from the final
//! state (and of the index as it was built before it took changes); owners that arrive after
//! their pods; ids reused within a window; tables that stay bounded under churn.
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use proptest::prelude::*;

use super::reference::{Answer, Reference};
use super::{Delta, Index, TOMBSTONE_NS, TOMBSTONES};
use crate::agent::cluster::{
    ClusterObjects, ControllerInfo, Info, NodeInfo, OwnerRef, PodInfo, ServiceInfo,
};
use crate::agent::pipeline::{Agent, Limits};

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
const S: i64 = 1_000_000_000;

fn answer(ix: &Index, id: u32) -> Answer {
    let p = &ix.pods[id as usize];
    let (wns, wname) = &ix.workloads[p.peer as usize];
    let s = |v: &str| v.to_string();
    (
        s(&p.namespace),
        s(&p.name),
        s(&p.workload),
        s(&p.kind),
        s(&p.release),
        s(&p.node),
        (s(wns), s(wname)),
    )
}

fn owner(kind: &str, name: &str) -> Option<OwnerRef> {
    Some(OwnerRef {
        kind: kind.into(),
        name: name.into(),
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// What the watches' changes amount to, kept the way the agent kept it before it applied
/// changes to its index: maps of records, and tombstones pruned at each burial.
#[derive(Default)]
struct Model {
    pods: BTreeMap<(Box<str>, Box<str>), PodInfo>,
    tombstones: VecDeque<(PodInfo, i64)>,
    services: BTreeMap<(Box<str>, Box<str>), ServiceInfo>,
    nodes: BTreeMap<Box<str>, NodeInfo>,
    controllers: BTreeMap<ControllerKey, ControllerInfo>,
}

type ControllerKey = (Box<str>, Box<str>, Box<str>);

fn ckey(c: &ControllerInfo) -> ControllerKey {
    (c.kind.clone(), c.namespace.clone(), c.name.clone())
}

impl Model {
    fn bury(&mut self, p: PodInfo, at: i64) {
        self.tombstones.push_back((p, at));
        while self.tombstones.len() > TOMBSTONES
            || self
                .tombstones
                .front()
                .is_some_and(|(_, t)| *t < at - TOMBSTONE_NS)
        {
            self.tombstones.pop_front();
        }
    }

    fn put(&mut self, info: Info) {
        match info {
            Info::Pod(p) => {
                self.pods.insert((p.namespace.clone(), p.name.clone()), p);
            }
            Info::Service(s) => {
                self.services
                    .insert((s.namespace.clone(), s.name.clone()), s);
            }
            Info::Node(n) => {
                self.nodes.insert(n.name.clone(), n);
            }
            Info::Controller(c) => {
                self.controllers.insert(ckey(&c), c);
            }
        }
    }

    fn apply(&mut self, d: Delta) {
        match d {
            Delta::Upsert(info) => self.put(info),
            Delta::Delete(Info::Pod(p), at) => {
                self.pods.remove(&(p.namespace.clone(), p.name.clone()));
                self.bury(p, at);
            }
            Delta::Delete(Info::Service(s), _) => {
                self.services.remove(&(s.namespace, s.name));
            }
            Delta::Delete(Info::Node(n), _) => {
                self.nodes.remove(&n.name);
            }
            Delta::Delete(Info::Controller(c), _) => {
                self.controllers.remove(&ckey(&c));
            }
            Delta::Replace { kind, all, at } => match kind {
                "Pod" => {
                    let old = std::mem::take(&mut self.pods);
                    all.into_iter().for_each(|i| self.put(i));
                    for (k, p) in old {
                        if !self.pods.contains_key(&k) {
                            self.bury(p, at);
                        }
                    }
                }
                kind => {
                    match kind {
                        "Service" => self.services.clear(),
                        "Node" => self.nodes.clear(),
                        kind => self.controllers.retain(|k, _| &*k.0 != kind),
                    }
                    all.into_iter().for_each(|i| self.put(i));
                }
            },
        }
    }

    fn objects(&self) -> ClusterObjects {
        ClusterObjects {
            pods: self.pods.values().cloned().collect(),
            services: self.services.values().cloned().collect(),
            nodes: self.nodes.values().cloned().collect(),
            controllers: self.controllers.values().cloned().collect(),
            deleted_pods: self.tombstones.iter().cloned().collect(),
        }
    }
}

const NAMESPACES: [&str; 2] = ["a", "b"];
const POD_IPS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::4"];
/// Direct owners of pods: some never exist as controllers.
const POD_OWNERS: [Option<(&str, &str)>; 6] = [
    None,
    Some(("ReplicaSet", "web-h1")),
    Some(("ReplicaSet", "web-h2")),
    Some(("Job", "cj-1")),
    Some(("StatefulSet", "db")),
    Some(("DaemonSet", "ds")),
];
/// Controllers and the owners each may have (a cycle among them too).
type Choices = [Option<(&'static str, &'static str)>; 3];
const CONTROLLERS: [(&str, &str, Choices); 7] = [
    (
        "ReplicaSet",
        "web-h1",
        [
            Some(("Deployment", "web")),
            None,
            Some(("Deployment", "other")),
        ],
    ),
    (
        "ReplicaSet",
        "web-h2",
        [
            Some(("Deployment", "web")),
            Some(("ReplicaSet", "web-h1")),
            None,
        ],
    ),
    (
        "Deployment",
        "web",
        [None, Some(("ReplicaSet", "web-h2")), None],
    ),
    ("Deployment", "other", [None, None, None]),
    ("Job", "cj-1", [Some(("CronJob", "cj")), None, None]),
    ("CronJob", "cj", [None, None, None]),
    ("StatefulSet", "db", [None, None, None]),
];
const RELEASES: [Option<&str>; 3] = [None, Some("r1"), Some("r2")];

fn service_ips(i: usize, ns: usize, two: bool) -> Vec<IpAddr> {
    let mut ips = vec![ip(&format!("10.96.{ns}.{i}"))];
    if two {
        ips.push(ip(&format!("fd00:96::{ns}:{i}")));
    }
    ips
}

fn node_ips(i: usize, two: bool) -> Vec<IpAddr> {
    let mut ips = vec![ip(&format!("172.18.0.{}", 10 + i))];
    if two {
        ips.push(ip(&format!("192.168.0.{}", 10 + i)));
    }
    ips
}

/// Turns random numbers into a change of a small cluster; `now` moves on with every step, so
/// creation and deletion times never tie.
struct Gen {
    now: i64,
}

impl Gen {
    fn pod(&self, ns: usize, name: u8, r: [u8; 3]) -> PodInfo {
        let owner_of = POD_OWNERS[usize::from(r[0]) % POD_OWNERS.len()];
        let ip = usize::from(r[1]) % (POD_IPS.len() + 1);
        PodInfo {
            uid: None,
            namespace: NAMESPACES[ns].into(),
            name: format!("p{}", name % 6).into(),
            node: format!("n{}", r[2] % 3).into(),
            host_network: r[2].is_multiple_of(11),
            ips: POD_IPS
                .get(ip)
                .map(|s| vec![self::ip(s)])
                .unwrap_or_default(),
            running: !r[2].is_multiple_of(5),
            created: Some(self.now),
            deleting: r[2].is_multiple_of(7).then_some(self.now + 3 * S),
            owner: owner_of.and_then(|(k, n)| owner(k, n)),
            release: (r[0] & 0x40 != 0).then(|| "pod-rel".into()),
            label_release: (r[0] & 0x80 != 0).then(|| "label-rel".into()),
            template_hash: [None, Some("h1"), Some("h2")][usize::from(r[1] >> 4) % 3]
                .map(Into::into),
        }
    }

    fn controller(&self, ns: usize, which: u8, r: u8) -> ControllerInfo {
        let (kind, name, owners) = CONTROLLERS[usize::from(which) % CONTROLLERS.len()];
        ControllerInfo {
            kind: kind.into(),
            namespace: NAMESPACES[ns].into(),
            name: name.into(),
            owner: owners[usize::from(r) % 3].and_then(|(k, n)| owner(k, n)),
            release: RELEASES[usize::from(r >> 2) % 3].map(Into::into),
        }
    }

    fn service(&self, ns: usize, i: u8, two: bool) -> ServiceInfo {
        let i = usize::from(i % 3);
        ServiceInfo {
            namespace: NAMESPACES[ns].into(),
            name: format!("s{i}").into(),
            ips: service_ips(i, ns, two),
        }
    }

    fn node(&self, i: u8, two: bool) -> NodeInfo {
        let i = usize::from(i % 3);
        NodeInfo {
            name: format!("n{i}").into(),
            ips: node_ips(i, two),
        }
    }

    fn delta(&mut self, m: &Model, [op, a, b, c, d]: [u8; 5]) -> Delta {
        self.now += 10 * S;
        let at = self.now + 5 * S;
        let ns = usize::from(a % 2);
        let two = a & 2 != 0;
        match op % 16 {
            0..=3 => Delta::Upsert(Info::Pod(self.pod(ns, b, [c, d, a]))),
            4 | 5 => {
                let key: (Box<str>, Box<str>) =
                    (NAMESPACES[ns].into(), format!("p{}", b % 6).into());
                let p = m
                    .pods
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| self.pod(ns, b, [c, d, a]));
                Delta::Delete(Info::Pod(p), at)
            }
            6 => Delta::Upsert(Info::Service(self.service(ns, b, two))),
            7 => Delta::Delete(Info::Service(self.service(ns, b, two)), at),
            8 => Delta::Upsert(Info::Node(self.node(b, two))),
            9 => Delta::Delete(Info::Node(self.node(b, two)), at),
            10 | 11 => Delta::Upsert(Info::Controller(self.controller(ns, b, c))),
            12 => Delta::Delete(Info::Controller(self.controller(ns, b, c)), at),
            13 => {
                // A relisting keeps the live pods of mask `c` and finds one more.
                let kept = m
                    .pods
                    .values()
                    .enumerate()
                    .filter(|(i, _)| c & (1 << (i % 8)) != 0);
                let mut all: Vec<Info> = kept.map(|(_, p)| Info::Pod(p.clone())).collect();
                all.push(Info::Pod(self.pod(ns, b, [c, d, a])));
                Delta::Replace {
                    kind: "Pod",
                    all,
                    at,
                }
            }
            14 => {
                let c = self.controller(ns, b, c);
                let kind = CONTROLLERS[usize::from(b) % CONTROLLERS.len()].0;
                let same = m.controllers.values().filter(|x| &*x.kind == kind);
                let mut all: Vec<Info> = same
                    .enumerate()
                    .filter(|(i, _)| d & (1 << (i % 8)) != 0)
                    .map(|(_, x)| Info::Controller(x.clone()))
                    .collect();
                all.push(Info::Controller(c));
                Delta::Replace { kind, all, at }
            }
            _ => match d % 3 {
                0 => {
                    let all = vec![Info::Service(self.service(ns, b, two))];
                    Delta::Replace {
                        kind: "Service",
                        all,
                        at,
                    }
                }
                1 => {
                    let all = vec![
                        Info::Node(self.node(b, two)),
                        Info::Node(self.node(c, !two)),
                    ];
                    Delta::Replace {
                        kind: "Node",
                        all,
                        at,
                    }
                }
                _ => {
                    // Time passes: the next burial lets older tombstones go.
                    self.now += i64::from(a % 13) * 60 * S;
                    Delta::Upsert(Info::Node(self.node(b, two)))
                }
            },
        }
    }
}

/// Every answer of `ix` against the reference, over all names and addresses of the generator
/// and the times around every lifetime boundary.
fn check(ix: &Index, objects: &ClusterObjects) -> Result<(), TestCaseError> {
    let r = Reference::build(objects);
    for ns in NAMESPACES {
        for n in 0..6 {
            let name = format!("p{n}");
            let got = ix.pod(ns, &name).map(|id| answer(ix, id));
            prop_assert_eq!(got.as_ref(), r.pod(ns, &name), "pod {}/{}", ns, name);
        }
    }
    let mut times = vec![None];
    let pods = objects.pods.iter().map(|p| (p, None));
    for (p, at) in pods.chain(objects.deleted_pods.iter().map(|(p, at)| (p, Some(*at)))) {
        for t in [p.created, p.deleting, at].into_iter().flatten() {
            times.extend([Some(t - 1), Some(t), Some(t + 1)]);
        }
    }
    for addr in POD_IPS.iter().map(|s| ip(s)) {
        for t in &times {
            let got = ix.pod_at(&addr, *t).map(|id| answer(ix, id));
            prop_assert_eq!(got.as_ref(), r.pod_at(&addr, *t), "pod_at {} {:?}", addr, t);
        }
    }
    for ns in 0..2 {
        for i in 0..3 {
            for addr in service_ips(i, ns, true) {
                let got = ix.service_at(&addr).map(|id| {
                    let (ns, name) = &ix.services[id as usize];
                    (ns.to_string(), name.to_string())
                });
                prop_assert_eq!(got.as_ref(), r.service_at(&addr), "service_at {}", addr);
            }
        }
    }
    for i in 0..3 {
        for addr in node_ips(i, true) {
            let got = ix
                .node_at(&addr)
                .map(|id| ix.nodes[id as usize].to_string());
            prop_assert_eq!(got.as_ref(), r.node_at(&addr), "node_at {}", addr);
        }
    }
    Ok(())
}

/// Ids in use: pods (live and tombstones) and the peer workloads they name; nothing leaks.
fn check_tables(ix: &Index, objects: &ClusterObjects) -> Result<(), TestCaseError> {
    let held = ix.pods.iter().filter(|p| !p.name.is_empty()).count();
    prop_assert_eq!(held, objects.pods.len() + objects.deleted_pods.len());
    let mut named: Vec<(&str, &str)> = ix
        .pods
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| (&*p.namespace, &*p.workload))
        .collect();
    named.sort_unstable();
    named.dedup();
    let in_table = ix.workloads.iter().filter(|w| !w.1.is_empty()).count();
    prop_assert_eq!(in_table, named.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn changes_applied_one_at_a_time_answer_as_a_build_from_the_final_state(
        steps in prop::collection::vec(any::<[u8; 5]>(), 1..80)
    ) {
        let mut g = Gen { now: T0 };
        let (mut model, mut ix) = (Model::default(), Index::default());
        for (i, step) in steps.iter().enumerate() {
            let d = g.delta(&model, *step);
            model.apply(d.clone());
            ix.apply(d);
            // The answers hold after every change, not only at the end.
            if i % 8 == 7 || i + 1 == steps.len() {
                check(&ix, &model.objects())?;
            }
        }
        let objects = model.objects();
        check_tables(&ix, &objects)?;
        let built = Index::build(objects.clone());
        check(&built, &objects)?;
        // Generated snapshots list objects of one name twice (tetragon_corpus.py does): each is
        // its own record, with its own addresses.
        let mut twice = objects.clone();
        for (i, p) in objects.pods.iter().enumerate() {
            let mut p = p.clone();
            p.ips = vec![ip(POD_IPS[(i + 1) % POD_IPS.len()])];
            p.created = p.created.map(|t| t + 1);
            twice.pods.push(p);
        }
        for s in &objects.services {
            let mut s = s.clone();
            s.ips = service_ips(2, 1, true);
            twice.services.push(s);
        }
        check(&Index::build(twice.clone()), &twice)?;
    }
}

fn rs_pod(name: &str, rs: &str, ip: &str) -> PodInfo {
    PodInfo {
        uid: None,
        namespace: "ns".into(),
        name: name.into(),
        node: "n1".into(),
        ips: vec![self::ip(ip)],
        running: true,
        created: Some(T0),
        owner: owner("ReplicaSet", rs),
        label_release: Some("from-label".into()),
        template_hash: rs.rsplit('-').next().map(Into::into),
        ..PodInfo::default()
    }
}

fn controller(
    kind: &str,
    name: &str,
    owner_of: Option<(&str, &str)>,
    release: Option<&str>,
) -> Info {
    Info::Controller(ControllerInfo {
        kind: kind.into(),
        namespace: "ns".into(),
        name: name.into(),
        owner: owner_of.and_then(|(k, n)| owner(k, n)),
        release: release.map(Into::into),
    })
}

#[test]
fn owners_that_arrive_after_their_pods_relabel_those_pods_only() {
    let mut ix = Index::default();
    for (name, rs, ip) in [
        ("web-7d-a", "web-7d", "10.0.0.1"),
        ("web-7d-b", "web-7d", "10.0.0.2"),
        ("api-5f-a", "api-5f", "10.0.0.3"),
    ] {
        ix.apply(Delta::Upsert(Info::Pod(rs_pod(name, rs, ip))));
    }
    let w = |ix: &Index, name: &str| {
        let a = answer(ix, ix.pod("ns", name).expect("a pod"));
        (a.2, a.3, a.4)
    };
    let version = |ix: &Index, name: &str| ix.pod_ref(ix.pod("ns", name).expect("a pod")).version;
    let s = |w: &str, k: &str, r: &str| (w.to_string(), k.to_string(), r.to_string());
    // No controllers yet: the Deployment is what the ReplicaSet's name implies.
    assert_eq!(w(&ix, "web-7d-a"), s("web", "Deployment", "from-label"));
    let before = [version(&ix, "web-7d-a"), version(&ix, "api-5f-a")];

    type Expect<'a> = [(&'a str, &'a str, &'a str); 2];
    let steps: [(Delta, Expect); 5] = [
        // The Deployment alone changes nothing: the chain stops at the unknown ReplicaSet.
        (
            Delta::Upsert(controller("Deployment", "web", None, Some("shop"))),
            [
                ("web", "Deployment", "from-label"),
                ("api", "Deployment", "from-label"),
            ],
        ),
        // Its ReplicaSet links the pods to it and its release.
        (
            Delta::Upsert(controller(
                "ReplicaSet",
                "web-7d",
                Some(("Deployment", "web")),
                None,
            )),
            [
                ("web", "Deployment", "shop"),
                ("api", "Deployment", "from-label"),
            ],
        ),
        // A CronJob-like chain on the other ReplicaSet's side: a Rollout owns it.
        (
            Delta::Upsert(controller(
                "ReplicaSet",
                "api-5f",
                Some(("Rollout", "api")),
                Some("edge"),
            )),
            [("web", "Deployment", "shop"), ("api", "Rollout", "edge")],
        ),
        // The Deployment goes: its release with it, the ReplicaSet still names it.
        (
            Delta::Delete(controller("Deployment", "web", None, Some("shop")), T0),
            [
                ("web", "Deployment", "from-label"),
                ("api", "Rollout", "edge"),
            ],
        ),
        // A relisting of ReplicaSets without api-5f: back to what its name implies.
        (
            Delta::Replace {
                kind: "ReplicaSet",
                all: vec![controller(
                    "ReplicaSet",
                    "web-7d",
                    Some(("Deployment", "web")),
                    None,
                )],
                at: T0,
            },
            [
                ("web", "Deployment", "from-label"),
                ("api", "Deployment", "from-label"),
            ],
        ),
    ];
    for (i, (delta, [web, api])) in steps.into_iter().enumerate() {
        ix.apply(delta);
        assert_eq!(w(&ix, "web-7d-a"), s(web.0, web.1, web.2), "step {i}");
        assert_eq!(w(&ix, "web-7d-b"), s(web.0, web.1, web.2), "step {i}");
        assert_eq!(w(&ix, "api-5f-a"), s(api.0, api.1, api.2), "step {i}");
        if i == 1 {
            // Re-labelled pods get a new version, the others keep theirs.
            assert_ne!(version(&ix, "web-7d-a"), before[0]);
            assert_eq!(version(&ix, "api-5f-a"), before[1]);
        }
    }
    // Pods of a Job whose CronJob arrives later.
    let mut job_pod = rs_pod("backup-1-x", "backup-1", "10.0.0.4");
    job_pod.owner = owner("Job", "backup-1");
    ix.apply(Delta::Upsert(Info::Pod(job_pod)));
    assert_eq!(w(&ix, "backup-1-x"), s("backup-1", "Job", "from-label"));
    ix.apply(Delta::Upsert(controller(
        "Job",
        "backup-1",
        Some(("CronJob", "backup")),
        None,
    )));
    assert_eq!(w(&ix, "backup-1-x"), s("backup", "CronJob", "from-label"));
    ix.apply(Delta::Upsert(controller(
        "CronJob",
        "backup",
        None,
        Some("ops"),
    )));
    assert_eq!(w(&ix, "backup-1-x"), s("backup", "CronJob", "ops"));
}

fn bare_pod(name: &str, ip: &str, created: i64) -> PodInfo {
    PodInfo {
        uid: None,
        namespace: "ns".into(),
        name: name.into(),
        node: "n1".into(),
        ips: vec![self::ip(ip)],
        running: true,
        created: Some(created),
        ..PodInfo::default()
    }
}

/// kovenant-tcp's `tcp_connect` from `pod`.
fn connect(pod: &str, daddr: &str, dport: u16, ms: u32) -> String {
    format!(
        r#"{{"process_kprobe":{{"process":{{"pid":1,"pod":{{"namespace":"ns","name":"{pod}"}}}},"function_name":"tcp_connect","args":[{{"sock_arg":{{"family":"AF_INET","saddr":"10.0.0.1","daddr":"{daddr}","sport":40000,"dport":{dport}}}}}]}},"node_name":"n1","time":"2026-01-01T00:00:00.{ms:03}Z"}}"#
    )
}

/// A pod deleted (and its tombstone gone) within a window, and another pod that gets its id,
/// its peer workload's id and its address: what was counted keeps its tags, and the new pod's
/// events are tagged as the new pod.
#[test]
fn ids_reused_within_a_window_never_mislabel_a_key() {
    let mut ix = Index::default();
    ix.apply(Delta::Upsert(Info::Pod(bare_pod(
        "a",
        "10.0.0.5",
        T0 - 60 * S,
    ))));
    ix.apply(Delta::Upsert(Info::Pod(bare_pod(
        "client",
        "10.0.0.9",
        T0 - 60 * S,
    ))));
    let (a_id, a_peer) = {
        let id = ix.pod("ns", "a").expect("a");
        (id, ix.pods[id as usize].peer)
    };
    let limits = Limits {
        max_keys: 1000,
        top_peers: 0,
        pod_activity: false,
    };
    let mut agent = Agent::new(ix, 10 * S, limits, "n1");
    let mut out = Vec::new();
    let mut feed =
        |agent: &mut Agent, line: String| agent.feed(line.as_bytes(), &mut out).expect("a Vec");
    feed(&mut agent, connect("a", "8.8.8.8", 443, 100));
    feed(&mut agent, connect("client", "10.0.0.5", 8080, 200));
    // `a` goes; a burial 11 minutes later lets its tombstone go; `b` takes its ids and address.
    agent.apply(Delta::Delete(
        Info::Pod(bare_pod("a", "10.0.0.5", T0 - 60 * S)),
        T0,
    ));
    agent.apply(Delta::Delete(
        Info::Pod(bare_pod("gone", "10.0.0.7", T0)),
        T0 + 660 * S,
    ));
    agent.apply(Delta::Upsert(Info::Pod(bare_pod("b", "10.0.0.5", T0))));
    let ix = agent.index();
    let b_id = ix.pod("ns", "b").expect("b");
    assert_eq!(
        (b_id, ix.pods[b_id as usize].peer),
        (a_id, a_peer),
        "b reuses a's ids"
    );
    assert_eq!(ix.pod("ns", "a"), None);
    feed(&mut agent, connect("b", "8.8.8.8", 443, 300));
    feed(&mut agent, connect("client", "10.0.0.5", 8080, 400));
    agent.flush(&mut out).expect("a Vec");
    let out = String::from_utf8(out).expect("UTF-8");
    let has = |prefix: &str| out.lines().filter(|l| l.starts_with(prefix)).count();
    for pod in ["a", "b"] {
        let source = format!(
            "tcp_flow,node=n1,peer_name=8.8.8.8,peer_type=external,port=443,role=client,src_kind=Pod,src_namespace=ns,src_pod={pod},src_workload={pod} connects=1i,"
        );
        assert_eq!(has(&source), 1, "{source}\n{out}");
        let flow = format!(
            "tcp_flow,node=n1,peer_name={pod},peer_namespace=ns,peer_type=pod,port=8080,role=client,src_kind=Pod,src_namespace=ns,src_pod=client,src_workload=client connects=1i,"
        );
        assert_eq!(has(&flow), 1, "{flow}\n{out}");
    }
}

/// Pods created and deleted without end: the tables hold the live pods and the tombstones of
/// the last ten minutes, whatever the churn.
#[test]
fn churn_keeps_the_tables_bounded() {
    let mut ix = Index::default();
    for i in 0..30_000i64 {
        let name = format!("job-{i}");
        let ip = format!("10.1.{}.{}", (i / 250) % 250, i % 250);
        ix.apply(Delta::Upsert(Info::Pod(bare_pod(&name, &ip, T0 + i * S))));
        if i >= 100 {
            let old = format!("job-{}", i - 100);
            let ip = format!("10.1.{}.{}", ((i - 100) / 250) % 250, (i - 100) % 250);
            ix.apply(Delta::Delete(
                Info::Pod(bare_pod(&old, &ip, T0)),
                T0 + i * S,
            ));
        }
    }
    // 100 live, and the tombstones of the last 600 s (one deletion a second).
    assert!(ix.pods.len() <= 100 + 602, "{} pod ids", ix.pods.len());
    assert!(
        ix.workloads.len() <= 100 + 602,
        "{} workload ids",
        ix.workloads.len()
    );
    assert_eq!(
        ix.pod("ns", "job-29999").map(|id| answer(&ix, id).1),
        Some("job-29999".into())
    );
}
