//! Cost of the attribution index at 10,000 pods: a full build (what every change cost when the
//! live watches rebuilt the index) against applying one change to it.
//!
//! `cargo bench --bench index`
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use kovenant::agent::cluster::Info;
use kovenant::agent::cluster::{
    ClusterObjects, ControllerInfo, NodeInfo, OwnerRef, PodInfo, ServiceInfo,
};
use kovenant::agent::index::{Delta, Index};

const T0: i64 = 1_767_225_600_000_000_000;
const DELETED_AT: i64 = T0 + 20_000 * 1_000_000_000;

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

/// 50 namespaces x 20 Deployments (each with its ReplicaSet and Service) x 10 pods on 100
/// nodes, and 1,000 deleted pods.
fn cluster() -> ClusterObjects {
    let mut c = ClusterObjects::default();
    let mut n = 0u32;
    for node in 0..100u32 {
        c.nodes.push(NodeInfo {
            name: format!("node-{node}").into(),
            ips: vec![IpAddr::V4(Ipv4Addr::new(
                172,
                18,
                (node / 200) as u8,
                (node % 200) as u8 + 10,
            ))],
        });
    }
    for ns in 0..50 {
        let namespace: Box<str> = format!("team-{ns}").into();
        for d in 0..20 {
            let name = format!("app-{d}");
            let owner = |kind: &str, name: &str| {
                Some(OwnerRef {
                    kind: kind.into(),
                    name: name.into(),
                })
            };
            c.controllers.push(ControllerInfo {
                kind: "Deployment".into(),
                namespace: namespace.clone(),
                name: name.clone().into(),
                owner: None,
                release: Some(format!("shop-{ns}").into()),
            });
            let rs = format!("{name}-7d9f8b6c5");
            c.controllers.push(ControllerInfo {
                kind: "ReplicaSet".into(),
                namespace: namespace.clone(),
                name: rs.clone().into(),
                owner: owner("Deployment", &name),
                release: None,
            });
            c.services.push(ServiceInfo {
                namespace: namespace.clone(),
                name: name.clone().into(),
                ips: vec![IpAddr::V4(Ipv4Addr::from(0x0a60_0000 + ns * 100 + d))],
            });
            for p in 0..11 {
                n += 1;
                let pod = PodInfo {
                    uid: None,
                    namespace: namespace.clone(),
                    name: format!("{rs}-{p:05}").into(),
                    node: format!("node-{}", n % 100).into(),
                    host_network: false,
                    ips: vec![ip(n)],
                    running: true,
                    created: Some(T0 + i64::from(n) * 1_000_000_000),
                    deleting: None,
                    owner: owner("ReplicaSet", &rs),
                    release: None,
                    label_release: Some(format!("shop-{ns}").into()),
                    template_hash: Some("7d9f8b6c5".into()),
                };
                // Every eleventh pod was deleted (1,000 of them), the rest are live (10,000).
                if p == 10 {
                    c.deleted_pods.push((pod, DELETED_AT));
                } else {
                    c.pods.push(pod);
                }
            }
        }
    }
    c
}

/// The best of `runs` timings of `f` on a fresh value from `setup` (not timed).
fn best_of<T>(runs: usize, mut setup: impl FnMut() -> T, mut f: impl FnMut(T)) -> Duration {
    (0..runs)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            f(input);
            t.elapsed()
        })
        .min()
        .expect("at least one run")
}

/// Makes the changes one case applies.
type Changes = fn(&ClusterObjects) -> Vec<Delta>;

/// Time per change of applying `deltas` (made by `make`) to the index of `c`, best of 5.
fn per_change(
    c: &ClusterObjects,
    make: impl Fn(&ClusterObjects) -> Vec<Delta>,
) -> (usize, Duration) {
    let n = make(c).len();
    let total = best_of(
        5,
        || (Index::build(c.clone()), make(c)),
        |(mut ix, deltas)| {
            for d in deltas {
                ix.apply(d);
            }
            std::hint::black_box(&ix);
        },
    );
    (n, total / n as u32)
}

fn main() {
    let c = cluster();
    let build = best_of(
        20,
        || c.clone(),
        |c| {
            std::hint::black_box(Index::build(c));
        },
    );
    println!(
        "full build, {} pods + {} deleted, {} services, {} controllers: {:.2} ms",
        c.pods.len(),
        c.deleted_pods.len(),
        c.services.len(),
        c.controllers.len(),
        build.as_secs_f64() * 1e3
    );
    let cases: [(&str, Changes); 4] = [
        (
            "a pod changes (new address), each of the 10,000 once",
            |c| {
                let pods = c.pods.iter().enumerate();
                pods.map(|(i, p)| {
                    let mut p = p.clone();
                    p.ips = vec![ip(200_000 + i as u32)];
                    Delta::Upsert(Info::Pod(p))
                })
                .collect()
            },
        ),
        ("a pod is added (10,000 new pods)", |c| {
            let pods = c.pods.iter().enumerate();
            pods.map(|(i, p)| {
                let mut p = p.clone();
                p.name = format!("{}-new", p.name).into();
                p.ips = vec![ip(200_000 + i as u32)];
                Delta::Upsert(Info::Pod(p))
            })
            .collect()
        }),
        (
            "a pod is deleted (10,000, to tombstones past the cap)",
            |c| {
                let pods = c.pods.iter().enumerate();
                pods.map(|(i, p)| {
                    Delta::Delete(Info::Pod(p.clone()), DELETED_AT + i as i64 * 1_000_000)
                })
                .collect()
            },
        ),
        (
            "a ReplicaSet's release changes (10 pods re-labelled)",
            |c| {
                let rs = c.controllers.iter().filter(|x| &*x.kind == "ReplicaSet");
                rs.map(|x| {
                    let mut x = x.clone();
                    x.release = Some("changed".into());
                    Delta::Upsert(Info::Controller(x))
                })
                .collect()
            },
        ),
    ];
    for (what, make) in cases {
        let (n, each) = per_change(&c, make);
        println!(
            "{what}: {:.2} us per change ({n} changes; {:.0}x less than a full build)",
            each.as_secs_f64() * 1e6,
            build.as_secs_f64() / each.as_secs_f64()
        );
    }
}
