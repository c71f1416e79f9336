//! String comparisons (case-sensitive, as ModSecurity): `@streq` (equal),
//! `@beginsWith`, `@endsWith`, `@within` (the input occurs in the
//! argument: `@within GET HEAD POST` for an allowed-method list).
//!
//! `SecRule REQUEST_METHOD "!@within GET HEAD" "id:1,deny"`

use super::{expand, Operator, Vars};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Equals,
    Begins,
    Ends,
    Within,
}

#[derive(Debug)]
struct Cmp {
    kind: Kind,
    arg: String,
    dynamic: bool,
}

impl Operator for Cmp {
    fn matches(&self, input: &[u8], vars: Vars<'_>) -> bool {
        let expanded;
        let arg = if self.dynamic {
            expanded = expand(&self.arg, vars);
            expanded.as_bytes()
        } else {
            self.arg.as_bytes()
        };
        match self.kind {
            Kind::Equals => input == arg,
            Kind::Begins => input.starts_with(arg),
            Kind::Ends => input.ends_with(arg),
            Kind::Within => !input.is_empty() && memchr::memmem::find(arg, input).is_some(),
        }
    }
}

fn make(kind: Kind, arg: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Cmp { kind, arg: arg.to_string(), dynamic: arg.contains("%{") }))
}

/// `@streq`.
pub fn streq(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(Kind::Equals, arg)
}

/// `@beginsWith`.
pub fn begins_with(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(Kind::Begins, arg)
}

/// `@endsWith`.
pub fn ends_with(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(Kind::Ends, arg)
}

/// `@within`.
pub fn within(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(Kind::Within, arg)
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn comparisons() {
        assert!(super::streq("POST").unwrap().matches(b"POST", &no_vars));
        assert!(!super::streq("POST").unwrap().matches(b"post", &no_vars));
        assert!(super::begins_with("/admin").unwrap().matches(b"/admin/x", &no_vars));
        assert!(super::ends_with(".php").unwrap().matches(b"a.php", &no_vars));
        assert!(super::within("GET HEAD POST").unwrap().matches(b"HEAD", &no_vars));
        assert!(!super::within("GET HEAD POST").unwrap().matches(b"", &no_vars));
        let vars = |_: &str| Some("GET".to_string());
        assert!(super::streq("%{tx.method}").unwrap().matches(b"GET", &vars));
    }
}
