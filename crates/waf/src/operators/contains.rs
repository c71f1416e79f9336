//! `@contains` (the argument occurs in the input), `@containsWord` (it
//! occurs with no word character on either side) and `@strmatch` (the
//! argument, taken literally without macros, occurs in the input).
//!
//! `SecRule ARGS "@containsWord select" "id:1"`

use super::{expand, Operator, Vars};

#[derive(Debug)]
struct Contains {
    arg: String,
    word: bool,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Operator for Contains {
    fn matches(&self, input: &[u8], vars: Vars<'_>) -> bool {
        let expanded = if self.arg.contains("%{") { Some(expand(&self.arg, vars)) } else { None };
        let needle = expanded.as_deref().unwrap_or(&self.arg).as_bytes();
        if needle.is_empty() {
            return true;
        }
        if needle.len() > input.len() {
            return false;
        }
        memchr::memmem::find_iter(input, needle).any(|i| {
            !self.word
                || ((i == 0 || !is_word(input[i - 1])) && input.get(i + needle.len()).is_none_or(|b| !is_word(*b)))
        })
    }
}

/// `@strmatch`: a literal substring (no macro expansion).
pub fn strmatch(arg: &str) -> Result<Box<dyn Operator>, String> {
    if arg.is_empty() {
        return Err("@strmatch needs a string".into());
    }
    Ok(Box::new(Literal(arg.as_bytes().to_vec())))
}

#[derive(Debug)]
struct Literal(Vec<u8>);

impl Operator for Literal {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        memchr::memmem::find(input, &self.0).is_some()
    }
}

/// `@contains`.
pub fn contains(arg: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Contains { arg: arg.to_string(), word: false }))
}

/// `@containsWord`.
pub fn contains_word(arg: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Contains { arg: arg.to_string(), word: true }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn strmatch_is_literal() {
        let op = super::strmatch("%{tx.x}").unwrap();
        assert!(op.matches(b"a %{tx.x} b", &no_vars));
        assert!(!op.matches(b"a b", &no_vars));
        assert!(super::strmatch("").is_err());
    }

    use super::super::no_vars;

    #[test]
    fn substring_and_word() {
        assert!(super::contains("etc/passwd").unwrap().matches(b"../../etc/passwd", &no_vars));
        assert!(super::contains_word("select").unwrap().matches(b"1 select 2", &no_vars));
        assert!(!super::contains_word("select").unwrap().matches(b"selection", &no_vars));
        assert!(super::contains_word("select").unwrap().matches(b"select", &no_vars));
    }
}
