//! helm-diff's output read per object: one summary line each, and each change with a few lines
//! of context (as `helm diff --context N` shows it), so a one-key change is a few lines, not the
//! whole ConfigMap. The full text stays in the preview for `--diff full` and the JSON plan.
use serde::Serialize;

/// Lines of context shown around each change, as `helm diff --context 3` would.
pub const CONTEXT: usize = 3;

/// How one object of a release changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Added,
    Removed,
    Changed,
    /// helm-diff's "changed ownership".
    Ownership,
}

impl Kind {
    fn mark(self) -> char {
        match self {
            Kind::Added => '+',
            Kind::Removed => '-',
            Kind::Changed | Kind::Ownership => '~',
        }
    }
}

/// One object of helm-diff's report: its header, then its lines (`+ `, `- ` or `  ` prefixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDiff {
    pub namespace: String,
    pub name: String,
    /// The object's kind, e.g. `ConfigMap`.
    pub kind: String,
    pub change: Kind,
    pub lines: Vec<String>,
}

impl ObjectDiff {
    /// Lines added and removed.
    pub fn counts(&self) -> (usize, usize) {
        let added = self.lines.iter().filter(|l| l.starts_with('+')).count();
        let removed = self.lines.iter().filter(|l| l.starts_with('-')).count();
        (added, removed)
    }

    /// `~ prometheus: ConfigMap prometheus-server (+1 -1 lines)`.
    pub fn summary(&self, release: &str) -> String {
        let (added, removed) = self.counts();
        let what = match self.change {
            Kind::Ownership => " (ownership)".to_string(),
            _ if self
                .lines
                .iter()
                .any(|l| l.starts_with("+ Changes suppressed")) =>
            {
                " (content hidden: it holds secrets)".to_string()
            }
            _ => format!(" (+{added} -{removed} lines)"),
        };
        format!(
            "{} {release}: {} {}{what}",
            self.change.mark(),
            self.kind,
            self.name
        )
    }

    /// The changed lines with `context` lines around each, `...` where lines are left out.
    pub fn with_context(&self, context: usize) -> Vec<String> {
        // An added or removed object is all change: its first lines say what it is.
        if self.change != Kind::Changed {
            let mut out: Vec<String> = self.lines.iter().take(2 * context + 1).cloned().collect();
            if self.lines.len() > out.len() {
                out.push("...".into());
            }
            return out;
        }
        let changed: Vec<usize> = (0..self.lines.len())
            .filter(|&i| is_change(&self.lines[i]))
            .collect();
        let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
        let mut out = Vec::new();
        let mut omitting = false;
        for (i, line) in self.lines.iter().enumerate() {
            if near(i) {
                out.push(line.clone());
                omitting = false;
            } else if !omitting {
                out.push("...".into());
                omitting = true;
            }
        }
        out
    }
}

fn is_change(line: &str) -> bool {
    line.starts_with("+ ") || line.starts_with("- ") || line == "+" || line == "-"
}

/// Reads helm-diff's default report: `<namespace>, <name>, <Kind> (<api>) has changed:` (or
/// `has been added:`, `has been removed:`, `changed ownership:`), then that object's lines.
/// Lines before the first header are kept in an object of their own only if there are any.
pub fn parse(text: &str) -> Vec<ObjectDiff> {
    let mut out: Vec<ObjectDiff> = Vec::new();
    for line in text.lines() {
        if let Some(object) = header(line) {
            out.push(object);
        } else if let Some(current) = out.last_mut() {
            current.lines.push(line.to_string());
        }
    }
    out
}

fn header(line: &str) -> Option<ObjectDiff> {
    let (key, change) = [
        (" has changed:", Kind::Changed),
        (" has been added:", Kind::Added),
        (" has been removed:", Kind::Removed),
        (" changed ownership:", Kind::Ownership),
        (
            " has changed, but diff is empty after suppression.",
            Kind::Changed,
        ),
    ]
    .into_iter()
    .find_map(|(suffix, kind)| line.strip_suffix(suffix).map(|k| (k, kind)))?;
    let mut parts = key.splitn(3, ", ");
    let (namespace, name, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = rest.split(" (").next()?;
    if namespace.contains(' ') || name.contains(' ') || kind.is_empty() || kind.contains(' ') {
        return None;
    }
    Some(ObjectDiff {
        namespace: namespace.into(),
        name: name.into(),
        kind: kind.into(),
        change,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGMAP: &str = "\
kovenant, prometheus-server, ConfigMap (v1) has changed:
  # Source: prometheus/templates/cm.yaml
  apiVersion: v1
  kind: ConfigMap
  data:
    prometheus.yml: |
      global:
        evaluation_interval: 1m
-       scrape_interval: 30s
+       scrape_interval: 45s
        scrape_timeout: 10s
      rule_files:
      - /etc/config/recording_rules.yml
      - /etc/config/alerting_rules.yml
      - /etc/config/rules
      - /etc/config/alerts
      scrape_configs:
      - job_name: prometheus
kovenant, kovenant-token, Secret (v1) has been added:
+ Changes suppressed on sensitive content of type Secret
kovenant, old, Service (v1) has been removed:
- apiVersion: v1
- kind: Service
";

    #[test]
    fn reads_each_object_of_the_report() {
        let objects = parse(CONFIGMAP);
        let heads: Vec<(&str, &str, Kind, usize)> = objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.change, o.lines.len()))
            .collect();
        assert_eq!(
            heads,
            [
                ("ConfigMap", "prometheus-server", Kind::Changed, 17),
                ("Secret", "kovenant-token", Kind::Added, 1),
                ("Service", "old", Kind::Removed, 2),
            ]
        );
        assert_eq!(objects[0].namespace, "kovenant");
    }

    #[test]
    fn one_summary_line_per_object() {
        let lines: Vec<String> = parse(CONFIGMAP)
            .iter()
            .map(|o| o.summary("prometheus"))
            .collect();
        assert_eq!(
            lines,
            [
                "~ prometheus: ConfigMap prometheus-server (+1 -1 lines)",
                "+ prometheus: Secret kovenant-token (content hidden: it holds secrets)",
                "- prometheus: Service old (+0 -2 lines)",
            ]
        );
    }

    #[test]
    fn a_change_shows_three_lines_around_it_and_dots_for_the_rest() {
        let cm = &parse(CONFIGMAP)[0];
        assert_eq!(
            cm.with_context(CONTEXT),
            [
                "...",
                "    prometheus.yml: |",
                "      global:",
                "        evaluation_interval: 1m",
                "-       scrape_interval: 30s",
                "+       scrape_interval: 45s",
                "        scrape_timeout: 10s",
                "      rule_files:",
                "      - /etc/config/recording_rules.yml",
                "...",
            ]
        );
    }

    #[test]
    fn text_that_is_not_a_header_is_not_taken_for_one() {
        assert_eq!(parse("+   note: a, b, c has changed:\n"), Vec::new());
        assert!(header("  data, more, Kind (v1) has changed:").is_none());
    }
}
