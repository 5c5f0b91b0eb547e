//! InfluxDB line protocol: escaping of measurement names, tag keys and tag values.

/// Appends `,key=value` with the value escaped; nothing when the value is empty (the
/// contract omits empty tags).
pub fn push_tag(out: &mut String, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(',');
    escape_into(out, key, false);
    out.push('=');
    escape_into(out, value, false);
}

/// Appends `name` escaped as a measurement name (commas and spaces only).
pub fn push_measurement(out: &mut String, name: &str) {
    escape_into(out, name, true);
}

/// Escapes commas, spaces, `=` (tags only) and backslashes. Line breaks and other control
/// characters cannot be carried by line protocol at all; they become escaped spaces.
fn escape_into(out: &mut String, s: &str, measurement: bool) {
    // The usual name needs no escape: printable ASCII without `,`, `=` and `\\`.
    if s.bytes()
        .all(|b| b > b' ' && b < 0x7f && b != b',' && b != b'=' && b != b'\\')
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            ',' | ' ' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '=' if !measurement => out.push_str("\\="),
            c if c.is_control() => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

/// Appends ` a=1i,b=2i` for the named integer fields.
pub fn push_fields(out: &mut String, fields: &[(&str, u64)]) {
    for (i, (name, value)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        out.push_str(name);
        out.push('=');
        out.push_str(itoa::Buffer::new().format(*value));
        out.push('i');
    }
}

/// Appends ` <timestamp>\n`.
pub fn push_timestamp(out: &mut String, ns: i64) {
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(ns));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_influxdb_reads_it() {
        let mut s = String::new();
        push_measurement(&mut s, "a b,c=d");
        push_tag(&mut s, "k=1", "v 1,2=3\\");
        push_tag(&mut s, "empty", "");
        push_tag(&mut s, "nl", "x\ny");
        push_fields(&mut s, &[("n", 1), ("m", 22)]);
        push_timestamp(&mut s, 5);
        assert_eq!(
            s,
            "a\\ b\\,c=d,k\\=1=v\\ 1\\,2\\=3\\\\,nl=x\\ y n=1i,m=22i 5\n"
        );
    }
}
