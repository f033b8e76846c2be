//! A bound on the nesting depth of request bodies, checked on the raw
//! bytes before any parser sees them. The API's bodies nest a few levels;
//! a body of thousands of `[` must get a 400, never recursion deep enough
//! to exhaust a worker's stack. serde_json has its own limit, but a
//! dependency enabling its `unbounded_depth` feature would silently remove
//! it; this check does not depend on that.

/// Deepest nesting of arrays and objects a request body may have.
pub const MAX_DEPTH: usize = 32;

/// Whether `body` nests arrays and objects deeper than [`MAX_DEPTH`].
/// Brackets inside strings do not count. The scan is linear and keeps no
/// stack, so it is safe on any input; malformed JSON is left to the parser.
pub fn too_deep(body: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_but_not_brackets_in_strings() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(deep(MAX_DEPTH).as_bytes()));
        assert!(too_deep(deep(MAX_DEPTH + 1).as_bytes()));
        assert!(too_deep("[".repeat(100_000).as_bytes()), "unclosed still counts");
        let quoted = format!(r#"{{"a":"{}","b":"\"[[["}}"#, "[".repeat(1000));
        assert!(!too_deep(quoted.as_bytes()));
        assert!(!too_deep(br#"{"grants":[{"to":"a@b.c","rights":"view"}]}"#));
    }
}
