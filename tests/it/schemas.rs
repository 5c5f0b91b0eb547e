//! Rendered TracingPolicies and dashboards validate against the upstream schemas.
use serde_json::Value;

use crate::render::default_tree;
use crate::support::shared;

/// The CRD's openAPIV3Schema, made strict: Kubernetes prunes fields a structural schema does not
/// declare, silently, so a misspelt selector would vanish on apply. Every object schema that lists
/// `properties` (and does not say otherwise) gets `additionalProperties: false` here.
fn tracing_policy_schema() -> Value {
    let path = shared().join("upstream/tetragon-1.7.0/cilium.io_tracingpolicies.yaml");
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    let v1alpha1 = versions
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("v1alpha1");
    let mut schema = v1alpha1["schema"]["openAPIV3Schema"].clone();
    close(&mut schema);
    schema
}

fn close(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let closes = map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !map.contains_key("x-kubernetes-preserve-unknown-fields");
            if closes {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close);
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

fn policies() -> Vec<(String, Value)> {
    default_tree()
        .into_iter()
        .filter(|(path, _)| path.starts_with("policies/"))
        .map(|(path, body)| {
            let value: serde_yaml::Value = serde_yaml::from_slice(&body).expect("policy parses");
            (path, serde_json::to_value(value).unwrap())
        })
        .collect()
}

#[test]
fn every_policy_validates_against_the_crd_schema() {
    let validator = jsonschema::validator_for(&tracing_policy_schema()).expect("schema compiles");
    let policies = policies();
    let names: Vec<&str> = policies.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["policies/kovenant-tcp.yaml"]);
    for (path, policy) in &policies {
        let errors: Vec<String> = validator
            .iter_errors(policy)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:#?}");
        assert_eq!(policy["apiVersion"], "cilium.io/v1alpha1");
        assert_eq!(policy["kind"], "TracingPolicy");
        assert_eq!(
            policy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kovenant"
        );
    }
    let mut misspelt = policies[0].1.clone();
    misspelt["spec"]["kprobes"][0]["selectors"][0]["matchBinary"] = serde_json::json!([]);
    assert!(
        !validator.is_valid(&misspelt),
        "the strict schema accepts an unknown field"
    );
}

/// (call, syscall, argument types by index, return type) as DESIGN.md section 3 lists them.
type Hook = (String, bool, Vec<(u64, String)>, Option<String>);

fn hooks(policy: &Value) -> Vec<Hook> {
    let kprobes = policy["spec"]["kprobes"].as_array().expect("kprobes");
    kprobes
        .iter()
        .map(|k| {
            let args = k["args"].as_array().into_iter().flatten();
            let args = args.map(|a| {
                (
                    a["index"].as_u64().unwrap(),
                    a["type"].as_str().unwrap().to_owned(),
                )
            });
            let ret =
                (k["return"] == true).then(|| k["returnArg"]["type"].as_str().unwrap().to_owned());
            (
                k["call"].as_str().unwrap().to_owned(),
                k["syscall"] == true,
                args.collect(),
                ret,
            )
        })
        .collect()
}

#[test]
fn the_policy_names_host_socket_owners_once_per_connection_and_skips_the_pipeline() {
    let policies = policies();
    // One event per connection opened or accepted, never per call: no tcp_sendmsg,
    // tcp_recvmsg, sys_read or sys_write (the bytes come from the kernel's counters).
    assert_eq!(
        hooks(&policies[0].1),
        [
            ("tcp_connect".into(), false, vec![(0, "sock".into())], None),
            ("inet_csk_accept".into(), false, vec![], Some("sock".into())),
        ]
    );
    let host_only = serde_json::json!([{
        "namespace": "Net",
        "operator": "In",
        "values": ["host_ns"],
    }]);
    let skipped = serde_json::json!([{
        "operator": "NotIn",
        "values": [
            "/usr/bin/tetragon",
            "/usr/bin/telegraf",
            "/usr/local/bin/kovenant",
            "/usr/local/bin/influxd",
        ],
    }]);
    for kprobe in policies[0].1["spec"]["kprobes"].as_array().unwrap() {
        let selectors = kprobe["selectors"].as_array().expect("selectors");
        // One selector: its match clauses are ANDed (a second selector would be ORed).
        assert_eq!(selectors.len(), 1, "{}", kprobe["call"]);
        assert_eq!(
            selectors[0]["matchNamespaces"], host_only,
            "{}",
            kprobe["call"]
        );
        assert_eq!(selectors[0]["matchBinaries"], skipped, "{}", kprobe["call"]);
    }
}

/// The per-call policy of earlier versions is not applied, and install's plan names it for
/// deletion whenever it takes care of the policies (the cluster test checks the deletion).
#[test]
fn the_plan_retires_kovenant_io_with_the_policies_part() {
    use kovenant::cli::Part;
    let config = kovenant::config::Config::default();
    let rendered = kovenant::plan::render_all(
        &config,
        &kovenant::assets::Assets::embedded(),
        crate::render::IMAGE,
    )
    .expect("renders");
    let retired = |only: &[Part]| -> Vec<Value> {
        let plan = kovenant::plan::steps::build(&config, &rendered, only).expect("plan");
        let applied: Vec<&str> = plan
            .objects
            .iter()
            .filter(|o| o.kind() == "TracingPolicy")
            .map(|o| o.name())
            .collect();
        assert!(!applied.contains(&"kovenant-io"), "{applied:?}");
        plan.retired.iter().map(|o| o.object.clone()).collect()
    };
    let io = serde_json::json!([{
        "apiVersion": "cilium.io/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "kovenant-io"},
    }]);
    assert_eq!(Value::Array(retired(&[])), io);
    assert_eq!(Value::Array(retired(&[Part::Policies])), io);
    assert_eq!(retired(&[Part::Dashboards]), Vec::<Value>::new());
}

#[test]
fn every_rendered_dashboard_validates_against_the_dashboard_schema() {
    let path = shared().join("upstream/grafana-foundation-sdk/dashboard.jsonschema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let dashboards = kovenant::plan::dashboards::render(
        &kovenant::config::Config::default(),
        &kovenant::assets::Assets::embedded(),
    )
    .expect("dashboards render");
    let tree = default_tree();
    let rendered: Vec<&String> = tree
        .keys()
        .filter(|p| p.starts_with("dashboards/"))
        .collect();
    let expected: Vec<String> = dashboards
        .iter()
        .map(|d| format!("dashboards/{}", d.file_name))
        .collect();
    assert_eq!(
        rendered,
        expected.iter().collect::<Vec<_>>(),
        "render writes every dashboard"
    );
    // TODO(lead): once the dashboards land, assert the four expected file names here.
    for dashboard in &dashboards {
        let value: Value = serde_json::from_str(&dashboard.json).expect("dashboard JSON");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", dashboard.file_name);
        assert_eq!(value["uid"], dashboard.uid.as_str());
    }
    let not_a_dashboard = serde_json::json!({"title": "x", "panels": "none"});
    assert!(!validator.is_valid(&not_a_dashboard));
}
