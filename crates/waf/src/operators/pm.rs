//! `@pm`: any of the space-separated phrases occurs in the input, without
//! regard to case; one Aho-Corasick automaton built at load, so the work is
//! linear in the input whatever the number of phrases.
//!
//! `SecRule REQUEST_HEADERS:User-Agent "@pm sqlmap nikto" "id:1,deny"`

use aho_corasick::AhoCorasick;

use super::{Operator, Vars};

#[derive(Debug)]
struct Pm(AhoCorasick);

impl Operator for Pm {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        self.0.is_match(input)
    }
}

/// `@pm phrase phrase ...`.
pub fn pm(arg: &str) -> Result<Box<dyn Operator>, String> {
    phrases(arg.split_whitespace())
}

/// An operator matching any of `phrases` (also used by `@pmFromFile`).
pub fn phrases<'a>(phrases: impl IntoIterator<Item = &'a str>) -> Result<Box<dyn Operator>, String> {
    let list: Vec<&str> = phrases.into_iter().filter(|p| !p.is_empty()).collect();
    if list.is_empty() {
        return Err("@pm needs at least one phrase".into());
    }
    let ac = AhoCorasick::builder().ascii_case_insensitive(true).build(list).map_err(|e| e.to_string())?;
    Ok(Box::new(Pm(ac)))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn any_phrase_without_case() {
        let op = super::pm("sqlmap nikto").unwrap();
        assert!(op.matches(b"Mozilla Nikto/2.1", &no_vars));
        assert!(!op.matches(b"curl/8", &no_vars));
        assert!(super::pm("  ").is_err());
    }
}
