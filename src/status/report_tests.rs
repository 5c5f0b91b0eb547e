//! The status table: its header, its columns as wide as their cells, and what its rows say.
use super::*;

fn component(name: &str, helm: Option<(&str, u64)>, errors: &[&str]) -> Component {
    Component {
        name: name.into(),
        release: name.into(),
        namespace: "kovenant".into(),
        healthy: helm.is_some_and(|(s, _)| s == "deployed"),
        helm: helm.map(|(status, revision)| HelmRelease {
            chart: name.into(),
            version: "1.7.0".into(),
            app_version: String::new(),
            revision,
            status: status.into(),
        }),
        workloads: helm
            .map(|_| Workload {
                kind: "Deployment".into(),
                name: name.into(),
                namespace: "kovenant".into(),
                ready: 1,
                desired: 1,
            })
            .into_iter()
            .collect(),
        problems: Vec::new(),
        errors: errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn report(components: Vec<Component>, present: &[&str]) -> Report {
    let mut r = Report::unchecked("ctx".into(), String::new());
    r.errors.clear();
    r.components = components;
    for p in [&mut r.policies, &mut r.dashboards] {
        p.errors.clear();
        p.expected = vec!["a".into()];
        p.present = present.iter().map(|s| s.to_string()).collect();
        p.healthy = !present.is_empty();
    }
    r.grafana.error = Some("no answer".into());
    r.influxdb.error = Some("no answer".into());
    r
}

#[test]
fn columns_are_as_wide_as_their_widest_cell_under_a_header_for_each() {
    let r = report(
        vec![
            component("tetragon", Some(("deployed", 1)), &[]),
            component("grafana", Some(("pending-upgrade", 12)), &[]),
        ],
        &["a"],
    );
    assert_eq!(
        table(&r)[..4],
        [
            "context ctx",
            "COMPONENT  OK?   RELEASE   NAMESPACE  CHART  REV  HELM             READY",
            "tetragon   ok    tetragon  kovenant   1.7.0  1    deployed         tetragon 1/1",
            "grafana    FAIL  grafana   kovenant   1.7.0  12   pending-upgrade  grafana 1/1",
        ]
    );
    assert!(table(&r).iter().any(|l| l.starts_with("grafana-api FAIL ")));
    assert!(!r.not_installed());
}

#[test]
fn helm_that_could_not_be_asked_is_unknown_not_absent() {
    let r = report(
        vec![component("tetragon", None, &["helm: `helm` was not found"])],
        &[],
    );
    let lines = table(&r);
    assert_eq!(
        lines[2],
        "tetragon   FAIL  tetragon  kovenant   -      -    could not check"
    );
    assert_eq!(lines[3], "  cannot check: helm: `helm` was not found");
    assert!(!r.not_installed());
}

#[test]
fn nothing_installed_says_so_instead_of_a_part_to_put_back() {
    let r = report(vec![component("tetragon", None, &[])], &[]);
    assert!(r.not_installed());
    let lines = table(&r);
    assert_eq!(
        lines[3],
        "policies    FAIL none present: not installed, run kovenant install"
    );
    // Partly installed: the part that puts them back.
    let r = report(vec![component("tetragon", Some(("deployed", 1)), &[])], &[]);
    assert_eq!(
        table(&r)[3],
        "policies    FAIL missing a (none present); kovenant install --only policies puts them back"
    );
}
