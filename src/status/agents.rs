//! Judging each node's agent from its newest `kovenant_agent` point: only the nodes there are now,
//! only points within a time bound, and only a point that shows a real view of the node.
use serde_json::Value;

use super::report::AgentPoint;

/// How far back status reads agent points: ten windows, at least an hour. A replaced node's old
/// points fall out of it instead of failing status for the whole retention period.
pub fn lookback_seconds(window_seconds: u64) -> i64 {
    (10 * window_seconds).max(3600) as i64
}

/// The query for each node's newest point within `lookback` seconds. `SELECT *`, not named
/// fields: InfluxQL leaves out rows where every selected field is null, so a point of an older
/// agent (without `netns`) would read as no point at all.
pub fn query(lookback: i64) -> String {
    format!(
        "SELECT * FROM \"kovenant_agent\" WHERE time > now() - {lookback}s GROUP BY \"node\" \
         ORDER BY time DESC LIMIT 1"
    )
}

/// Each node's newest point from the answer to [`query`], sorted by node (not yet judged).
pub fn parse(body: &str, now: i64) -> Result<Vec<AgentPoint>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("query did not answer JSON: {e}"))?;
    if let Some(e) = v["results"][0]["error"].as_str().or(v["error"].as_str()) {
        return Err(format!("query: {e}"));
    }
    let mut out: Vec<AgentPoint> = v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let columns: Vec<&str> = s["columns"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let row = s["values"][0].as_array()?;
            let field = |name: &str| {
                columns
                    .iter()
                    .position(|c| *c == name)
                    .and_then(|i| row.get(i))
                    .and_then(Value::as_i64)
            };
            let ts = field("time")?;
            Some(AgentPoint {
                node: s["tags"]["node"].as_str().unwrap_or_default().to_string(),
                newest: super::collect::rfc3339(ts),
                age_seconds: now - ts,
                netns: field("netns"),
                sockets: field("sockets"),
                processes: field("processes"),
                problem: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(out)
}

/// What status concludes about the agents.
#[derive(Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The points of the nodes judged, each with its problem if any.
    pub agents: Vec<AgentPoint>,
    /// Why the pipeline is not healthy, one clause per kind of problem; None when it is.
    pub error: Option<String>,
}

/// Judges the points against the nodes the cluster has now (`None`: the nodes could not be
/// listed, so every node with a point is judged). A node is healthy when its newest point is at
/// most `stale` seconds old and shows a network namespace entered and more than zero sockets.
pub fn judge(
    points: Vec<AgentPoint>,
    nodes: Option<&[String]>,
    stale: i64,
    lookback: i64,
) -> Judgement {
    let mut agents: Vec<AgentPoint> = match nodes {
        Some(nodes) => points
            .into_iter()
            .filter(|p| nodes.contains(&p.node))
            .collect(),
        None => points,
    };
    let silent: Vec<&str> = nodes
        .unwrap_or_default()
        .iter()
        .filter(|n| !agents.iter().any(|a| &a.node == *n))
        .map(String::as_str)
        .collect();
    let mut late = Vec::new();
    let mut blind = Vec::new();
    for a in &mut agents {
        a.problem = problem(a, stale);
        match &a.problem {
            None => {}
            Some(_) if a.age_seconds > stale => {
                late.push(format!("{} ({}s ago)", a.node, a.age_seconds))
            }
            Some(p) => blind.push(format!("{}: {p}", a.node)),
        }
    }
    let mut clauses = Vec::new();
    if agents.is_empty() && silent.is_empty() {
        clauses.push(format!(
            "no kovenant_agent point in the last {}: no agent has written",
            span(lookback)
        ));
    }
    if !late.is_empty() {
        clauses.push(format!(
            "no kovenant_agent point newer than {stale}s (three agent windows) from node {}",
            late.join(", ")
        ));
    }
    if !silent.is_empty() {
        clauses.push(format!(
            "no kovenant_agent point in the last {} from node {}",
            span(lookback),
            silent.join(", ")
        ));
    }
    clauses.extend(blind);
    Judgement {
        agents,
        error: (!clauses.is_empty()).then(|| clauses.join("; ")),
    }
}

/// Why one node's newest point does not show a live agent with a real view, if it does not.
fn problem(a: &AgentPoint, stale: i64) -> Option<String> {
    if a.age_seconds > stale {
        return Some(format!("newest point {}s ago", a.age_seconds));
    }
    let (Some(netns), Some(sockets)) = (a.netns, a.sockets) else {
        return Some(
            "the agent does not report netns and sockets (an agent older than this kovenant: \
             kovenant install rolls it)"
                .into(),
        );
    };
    // One namespace is a real view: the agent stops at start unless it sees the node's
    // processes (hostPID) and may enter their namespaces (src/agent/kernel/rights.rs), so a
    // node whose processes all share the host's (only hostNetwork pods; the sandbox, whose
    // kwok pods have no process) is not an agent blind to its pods.
    if netns == 0 {
        return Some(
            "the agent entered no network namespace (setns failed: check the agent's log)".into(),
        );
    }
    if sockets == 0 {
        return Some(
            "the agent read 0 sockets (sock_diag answered nothing: check the agent's log)".into(),
        );
    }
    None
}

/// `1h`, `90m`, `45s`.
fn span(seconds: i64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(node: &str, age: i64, netns: Option<i64>, sockets: Option<i64>) -> AgentPoint {
        AgentPoint {
            node: node.into(),
            newest: String::new(),
            age_seconds: age,
            netns,
            sockets,
            processes: Some(10),
            problem: None,
        }
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn points_of_nodes_that_are_gone_are_not_judged() {
        let points = vec![
            point("a", 5, Some(4), Some(9)),
            point("gone", 900, None, None),
        ];
        let j = judge(points, Some(&nodes(&["a"])), 30, 3600);
        assert_eq!(j.error, None);
        assert_eq!(j.agents.len(), 1);
        assert_eq!(j.agents[0].node, "a");
    }

    #[test]
    fn a_node_without_a_point_fails_and_so_does_an_empty_cluster_of_points() {
        let j = judge(
            vec![point("a", 5, Some(4), Some(9))],
            Some(&nodes(&["a", "b"])),
            30,
            3600,
        );
        assert_eq!(
            j.error.as_deref(),
            Some("no kovenant_agent point in the last 1h from node b")
        );
        let j = judge(Vec::new(), None, 30, 3600);
        assert_eq!(
            j.error.as_deref(),
            Some("no kovenant_agent point in the last 1h: no agent has written")
        );
    }

    #[test]
    fn a_fresh_point_must_show_a_real_view() {
        let j = judge(
            vec![
                point("a", 95, Some(4), Some(9)),
                point("b", 5, Some(0), Some(0)),
                point("c", 5, Some(4), Some(0)),
                point("d", 5, None, None),
            ],
            None,
            30,
            3600,
        );
        let e = j.error.expect("unhealthy");
        assert_eq!(
            e,
            "no kovenant_agent point newer than 30s (three agent windows) from node a (95s ago); \
             b: the agent entered no network namespace (setns failed: check the agent's log); \
             c: the agent read 0 sockets (sock_diag answered nothing: check the agent's log); \
             d: the agent does not report netns and sockets (an agent older than this kovenant: \
             kovenant install rolls it)"
        );
        assert!(j.agents.iter().all(|a| a.problem.is_some()));
    }

    #[test]
    fn one_network_namespace_is_a_real_view_of_a_node_without_pod_namespaces() {
        // This machine as the sandbox's node: kwok's pods have no process, so every process
        // shares the host's namespace (a node of hostNetwork pods alone is the same).
        let j = judge(vec![point("vm", 5, Some(1), Some(741))], None, 30, 3600);
        assert_eq!(j.error, None);
        assert_eq!(j.agents[0].problem, None);
    }

    #[test]
    fn the_newest_point_is_read_by_column_name() {
        let body = r#"{"results":[{"statement_id":0,"series":[
            {"name":"kovenant_agent","tags":{"node":"n2"},"columns":["time","lines","netns","processes","sockets"],"values":[[90,3,7,40,120]]},
            {"name":"kovenant_agent","tags":{"node":"n1"},"columns":["time","lines"],"values":[[80,1]]}]}]}"#;
        let p = parse(body, 100).expect("parsed");
        assert_eq!(p[0].node, "n1");
        assert_eq!(
            (p[0].age_seconds, p[0].netns, p[0].sockets),
            (20, None, None)
        );
        assert_eq!(p[1].node, "n2");
        assert_eq!(
            (p[1].age_seconds, p[1].netns, p[1].sockets, p[1].processes),
            (10, Some(7), Some(120), Some(40))
        );
    }
}
