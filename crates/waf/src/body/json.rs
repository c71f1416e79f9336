//! The JSON body processor: every scalar becomes an argument named by its
//! path (`json.user.name`, array items by index: `json.tags.0`), values as
//! text (`true`, `12`, strings without quotes).
//!
//! `SecRule ARGS:json.user.name "@rx <script" "id:1,deny"`

use serde_json::Value;

use super::MAX_DEPTH;

/// The arguments of a JSON body, or why it is not JSON.
pub fn parse(body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("JSON parsing error: {e}"))?;
    let mut out = Vec::new();
    walk(&v, "json", 0, &mut out)?;
    Ok(out)
}

fn walk(v: &Value, path: &str, depth: usize, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("JSON nested deeper than {MAX_DEPTH}"));
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk(x, &format!("{path}.{k}"), depth + 1, out)?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}.{i}"), depth + 1, out)?;
            }
        }
        Value::String(s) => out.push((path.to_string(), s.as_bytes().to_vec())),
        Value::Null => out.push((path.to_string(), Vec::new())),
        other => out.push((path.to_string(), other.to_string().into_bytes())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_and_values() {
        let a = super::parse(br#"{"user":{"name":"<b>","age":3},"tags":["x",true],"n":null}"#).unwrap();
        assert!(a.contains(&("json.user.name".into(), b"<b>".to_vec())));
        assert!(a.contains(&("json.user.age".into(), b"3".to_vec())));
        assert!(a.contains(&("json.tags.1".into(), b"true".to_vec())));
        assert!(super::parse(b"{not json").unwrap_err().starts_with("JSON parsing error"));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(super::parse(deep.as_bytes()).is_err());
    }
}
