//! The WAF log: one text line per matched rule, in the shape ModSecurity
//! writes to the web server's error log, so tools that read those lines
//! (go-ftw, log shippers' ModSecurity parsers) read Rampart's unchanged:
//!
//! ```text
//! 2026-11-25T20:00:00Z [client 192.0.2.1] Rampart: Access denied with code 403 (phase 2). Matched variable `ARGS:id' [file "REQUEST-942-APPLICATION-ATTACK-SQLI.conf"] [line "46"] [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [data "Matched Data: s&1c found within ARGS:id: 1' or 1=1--"] [severity "CRITICAL"] [ver "OWASP_CRS/4.29.0"] [tag "attack-sqli"] [hostname "example.com"] [uri "/"] [unique_id "9f0c..."]
//! ```
//!
//! Every quoted value is escaped (`"` and `\` with a backslash, control
//! bytes as `\xHH`), so an attacker's input can neither end a field nor
//! start a new line.

use std::fmt::Write;

use crate::engine::Match;

/// What the log line says about the request.
pub struct Context<'a> {
    /// RFC 3339 time.
    pub timestamp: &'a str,
    /// The client address.
    pub client: &'a str,
    /// The `Host` the client asked for.
    pub hostname: &'a str,
    /// The request path (no query: it may hold secrets).
    pub uri: &'a str,
    /// The transaction id.
    pub unique_id: &'a str,
}

/// The log line of one match (without the newline).
pub fn line(m: &Match, status: Option<u16>, c: &Context<'_>) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{} [client {}] Rampart: ", c.timestamp, escape(c.client));
    match status.filter(|_| m.disruptive) {
        Some(code) => {
            let _ = write!(out, "Access denied with code {code} (phase {}). ", m.phase);
        }
        None => out.push_str("Warning. "),
    }
    if !m.variable.is_empty() {
        let _ = write!(out, "Matched variable `{}' ", escape(&m.variable));
    }
    let file = m.rule.file.rsplit('/').next().unwrap_or("");
    field(&mut out, "file", file);
    field(&mut out, "line", &m.rule.line.to_string());
    field(&mut out, "id", &m.id.to_string());
    field(&mut out, "msg", &m.msg);
    field(&mut out, "data", &m.data);
    if let Some(s) = &m.rule.severity {
        field(&mut out, "severity", s);
    }
    if let Some(v) = &m.rule.ver {
        field(&mut out, "ver", v);
    }
    for t in &m.rule.tags {
        field(&mut out, "tag", t);
    }
    field(&mut out, "hostname", c.hostname);
    field(&mut out, "uri", c.uri);
    field(&mut out, "unique_id", c.unique_id);
    out.pop();
    out
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "[{name} \"{}\"] ", escape(value));
}

/// `s` with quotes, backslashes and control characters escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The rule ids in a log text (`[id "942100"]`), in order, as go-ftw reads
/// them.
pub fn ids(text: &str) -> Vec<u64> {
    text.split("[id \"").skip(1).filter_map(|rest| rest.split('"').next()?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::seclang::load_str;

    #[test]
    fn lines_carry_the_fields_and_cannot_be_forged() {
        let set = load_str(
            r#"SecRule ARGS "@rx evil" "id:42,phase:2,deny,status:403,msg:'bad %{MATCHED_VAR}',logdata:'%{MATCHED_VAR}',tag:'attack-x',severity:'CRITICAL'""#,
            "/rules/x.conf",
        )
        .unwrap();
        let e = std::sync::Arc::new(Engine::new(&set).unwrap());
        let mut t = e.transaction();
        t.add("ARGS", "q", b"evil\"] [id \"1\"]\nforged");
        t.run_phase(2);
        let c = Context { timestamp: "T", client: "192.0.2.1", hostname: "h", uri: "/p", unique_id: "u1" };
        let l = line(&t.matches()[0], Some(403), &c);
        assert!(l.starts_with(
            "T [client 192.0.2.1] Rampart: Access denied with code 403 (phase 2). Matched variable `ARGS:q'"
        ));
        assert!(l.contains("[file \"x.conf\"] [line \"1\"] [id \"42\"]"), "{l}");
        assert!(l.contains("[tag \"attack-x\"]") && l.ends_with("[unique_id \"u1\"]"), "{l}");
        assert!(!l.contains('\n'));
        assert_eq!(ids(&l), vec![42], "the forged id stays inside an escaped value: {l}");
    }
}
