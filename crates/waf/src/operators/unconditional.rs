//! `@unconditionalMatch` (always matches) and `@noMatch` (never).
//!
//! `SecRule REQUEST_URI "@unconditionalMatch" "id:1,pass,setvar:tx.seen=1"`

use super::{Operator, Vars};

#[derive(Debug)]
struct Always(bool);

impl Operator for Always {
    fn matches(&self, _: &[u8], _: Vars<'_>) -> bool {
        self.0
    }
}

/// `@unconditionalMatch`.
pub fn unconditional_match(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Always(true)))
}

/// `@noMatch`.
pub fn no_match(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Always(false)))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn always_and_never() {
        assert!(super::unconditional_match("").unwrap().matches(b"x", &no_vars));
        assert!(!super::no_match("").unwrap().matches(b"x", &no_vars));
    }
}
