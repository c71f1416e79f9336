//! `@rx`: a regular expression match, compiled once when the rule loads.
//!
//! Rampart uses the `regex` crate, whose engines run in time linear in the
//! input: no pattern can make a request take exponential time (ReDoS). The
//! price is that look-around and back-references are not available; a
//! pattern that needs them fails to build and is named at load (see the
//! test that compiles every `@rx` of the Core Rule Set). Matching is on
//! bytes, not UTF-8 text, as ModSecurity does.
//!
//! `SecRule ARGS "@rx (?i)<script" "id:1,deny"`

use regex::bytes::{Regex, RegexBuilder};

use super::{Operator, Vars};

#[derive(Debug)]
struct Rx(Regex);

impl Operator for Rx {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        self.0.is_match(input)
    }

    fn captures(&self, input: &[u8], _: Vars<'_>) -> Option<Vec<Vec<u8>>> {
        let c = self.0.captures(input)?;
        Some((0..c.len().min(10)).map(|i| c.get(i).map_or_else(Vec::new, |m| m.as_bytes().to_vec())).collect())
    }
}

/// Largest compiled program accepted (CRS's biggest patterns fit well
/// within it).
const SIZE_LIMIT: usize = 64 << 20;

/// `@rx pattern`. Byte semantics (`.` and classes match any byte) unless
/// the pattern spells out non-ASCII characters, which then match as UTF-8.
pub fn rx(arg: &str) -> Result<Box<dyn Operator>, String> {
    let pattern = byte_escapes(arg);
    let build = |unicode: bool| {
        RegexBuilder::new(&pattern).unicode(unicode).size_limit(SIZE_LIMIT).dfa_size_limit(SIZE_LIMIT).build()
    };
    let re = match build(false) {
        Ok(re) => re,
        Err(_) if !arg.is_ascii() => build(true).map_err(|e| format!("@rx: {e}"))?,
        Err(e) => return Err(format!("@rx: {e}")),
    };
    Ok(Box::new(Rx(re)))
}

/// PCRE without UTF mode reads `\x{HH}` as the byte HH; the `regex`
/// crate reads it as a code point, refused inside a byte class. Rewritten
/// as `\xHH`, which both read as the byte.
fn byte_escapes(p: &str) -> std::borrow::Cow<'_, str> {
    if !p.contains("\\x{") {
        return std::borrow::Cow::Borrowed(p);
    }
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && b.get(i + 2) == Some(&b'{') {
                let digits = b[i + 3..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
                if (1..=2).contains(&digits) && b.get(i + 3 + digits) == Some(&b'}') {
                    out.push_str("\\x");
                    if digits == 1 {
                        out.push('0');
                    }
                    out.push_str(&p[i + 3..i + 3 + digits]);
                    i += 4 + digits;
                    continue;
                }
            }
            // Any other escape (including `\\`) is copied whole.
            out.push_str(&p[i..i + 1]);
            let next = p[i + 1..].chars().next().unwrap_or('\\');
            out.push(next);
            i += 1 + next.len_utf8();
            continue;
        }
        let ch = p[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn bytes_regex() {
        let op = super::rx("(?i)<script[^>]*>").unwrap();
        assert!(op.matches(b"x<SCRIPT src=a>", &no_vars));
        assert!(op.matches(b"\xff<script>", &no_vars));
        assert!(!op.matches(b"<scrip", &no_vars));
        assert!(super::rx("(unclosed").is_err());
        assert!(super::rx("[«»]").unwrap().matches("a«b".as_bytes(), &no_vars));
        assert_eq!(super::byte_escapes(r"[^>\x{be}]\\x{bc}\x{1}"), r"[^>\xbe]\\x{bc}\x01");
        assert!(super::rx(r"\x{bc}[^>\x{be}]*").unwrap().matches(b"\xbcabc", &no_vars));
    }
}
