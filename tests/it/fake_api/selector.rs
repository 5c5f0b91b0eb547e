//! Label and field selectors as the API server reads them (`a=b`, `a!=b`, `a in (x,y)`, `!a`).
use serde_json::Value;

/// Splits on commas that are not inside parentheses.
fn terms(selector: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(selector[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(selector[start..].trim());
    out.into_iter().filter(|t| !t.is_empty()).collect()
}

fn set(text: &str) -> Vec<String> {
    text.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

/// Whether the labels of `obj` match a label selector.
pub fn labels_match(selector: &str, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    terms(selector).iter().all(|t| {
        if let Some((k, v)) = t.split_once(" notin ") {
            get(k.trim()).is_none_or(|x| !set(v).iter().any(|s| s == x))
        } else if let Some((k, v)) = t.split_once(" in ") {
            get(k.trim()).is_some_and(|x| set(v).iter().any(|s| s == x))
        } else if let Some((k, v)) = t.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = t.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(t).is_some()
        }
    })
}

/// Whether `obj` matches a field selector (`metadata.name=x`, `spec.nodeName!=y`).
pub fn fields_match(selector: &str, obj: &Value) -> bool {
    terms(selector).iter().all(|t| {
        let (path, want, negate) = match t.split_once("!=") {
            Some((p, v)) => (p, v, true),
            None => match t.split_once("==").or_else(|| t.split_once('=')) {
                Some((p, v)) => (p, v, false),
                None => return true,
            },
        };
        let mut cur = obj;
        for part in path.trim().split('.') {
            cur = &cur[part];
        }
        let have = cur.as_str().unwrap_or_default();
        (have == want.trim()) != negate
    })
}
