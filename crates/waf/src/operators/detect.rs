//! `@detectSQLi` and `@detectXSS`: libinjection's tokenizing detectors
//! (through `libinjectionrs`, a Rust port with libinjection's semantics and
//! fingerprints), which catch injections that regexes written for known
//! payloads miss.
//!
//! `SecRule ARGS "@detectSQLi" "id:942100,block"`

use super::{Operator, Vars};

#[derive(Debug)]
struct Sqli;

impl Operator for Sqli {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        libinjectionrs::detect_sqli(input).is_injection()
    }
}

#[derive(Debug)]
struct Xss;

impl Operator for Xss {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        libinjectionrs::detect_xss(input).is_injection()
    }
}

/// `@detectSQLi`.
pub fn detect_sqli(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Sqli))
}

/// `@detectXSS`.
pub fn detect_xss(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Xss))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn classic_payloads_and_harmless_text() {
        let sqli = super::detect_sqli("").unwrap();
        assert!(sqli.matches(b"1' or '1'='1", &no_vars));
        assert!(sqli.matches(b"1 UNION SELECT password FROM users--", &no_vars));
        assert!(!sqli.matches(b"shoes", &no_vars));
        let xss = super::detect_xss("").unwrap();
        assert!(xss.matches(b"<script>alert(1)</script>", &no_vars));
        assert!(xss.matches(b"<img src=x onerror=alert(1)>", &no_vars));
        assert!(!xss.matches(b"hello world", &no_vars));
    }
}
