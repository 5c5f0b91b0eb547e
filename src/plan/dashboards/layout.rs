//! Places a rendered dashboard's panels on Grafana's 24-column grid and numbers them.
// Templates give each panel its width and height only; positions and ids follow from the order
// of the panels, so adding or moving a panel never means renumbering the rest by hand.
use serde_json::{Value, json};

/// Grafana's grid is 24 columns wide.
const COLUMNS: u64 = 24;

/// Flows the panels left to right, top to bottom; a row panel starts a new line and spans it.
pub(super) fn arrange(dashboard: &mut Value) {
    let Some(panels) = dashboard.get_mut("panels").and_then(Value::as_array_mut) else {
        return;
    };
    let (mut x, mut y, mut line_height) = (0u64, 0u64, 0u64);
    for (index, panel) in panels.iter_mut().enumerate() {
        let is_row = panel.get("type").and_then(Value::as_str) == Some("row");
        let (w, h) = if is_row { (COLUMNS, 1) } else { size(panel) };
        if is_row || x + w > COLUMNS {
            y += line_height;
            x = 0;
            line_height = 0;
        }
        if let Some(obj) = panel.as_object_mut() {
            obj.insert("id".into(), json!(index + 1));
            obj.insert("gridPos".into(), json!({"h": h, "w": w, "x": x, "y": y}));
        }
        x += w;
        line_height = line_height.max(h);
        if is_row {
            y += line_height;
            x = 0;
            line_height = 0;
        }
    }
}

/// A panel's width and height from its template, clamped to the grid; 12x8 when missing.
fn size(panel: &Value) -> (u64, u64) {
    let get = |key: &str, default: u64| {
        panel
            .get("gridPos")
            .and_then(|g| g.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(default)
    };
    (get("w", 12).clamp(1, COLUMNS), get("h", 8).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_panels_and_wraps_at_the_grid_edge() {
        let mut d = json!({"panels": [
            {"type": "row"},
            {"type": "stat", "gridPos": {"w": 12, "h": 4}},
            {"type": "stat", "gridPos": {"w": 12, "h": 6}},
            {"type": "timeseries", "gridPos": {"w": 24, "h": 8}},
            {"type": "row"},
            {"type": "table"}
        ]});
        arrange(&mut d);
        let pos: Vec<(u64, Value)> = d["panels"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|p| (p["id"].as_u64().unwrap_or(0), p["gridPos"].clone()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            pos,
            vec![
                (1, json!({"h": 1, "w": 24, "x": 0, "y": 0})),
                (2, json!({"h": 4, "w": 12, "x": 0, "y": 1})),
                (3, json!({"h": 6, "w": 12, "x": 12, "y": 1})),
                (4, json!({"h": 8, "w": 24, "x": 0, "y": 7})),
                (5, json!({"h": 1, "w": 24, "x": 0, "y": 15})),
                (6, json!({"h": 8, "w": 12, "x": 0, "y": 16})),
            ]
        );
    }
}
