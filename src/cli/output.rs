//! Text tables and JSON output.

use serde::Serialize;

/// Prints `v` as pretty JSON on stdout.
pub fn json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into()));
}

/// Prints rows as an aligned table with a header line.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A JSON field as display text, trying several names.
pub fn field(v: &serde_json::Value, names: &[&str]) -> String {
    for n in names {
        match v.get(*n) {
            Some(serde_json::Value::String(s)) => return s.clone(),
            Some(serde_json::Value::Null) | None => continue,
            Some(serde_json::Value::Number(n)) if names.iter().any(|x| x.ends_with("_at") || *x == "at") => {
                return n
                    .as_i64()
                    .map(crate::policy::format_time)
                    .unwrap_or_else(|| n.to_string());
            }
            Some(serde_json::Value::Array(a)) => {
                return a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            Some(other) => return other.to_string(),
        }
    }
    "-".into()
}

/// Appends one CSV record (RFC 4180: fields with a comma, quote or line
/// break are quoted, quotes doubled) and its line break to `out`.
pub fn csv_line(out: &mut String, fields: impl Iterator<Item = String>) {
    let cells: Vec<String> = fields
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}
