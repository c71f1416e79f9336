//! `@rx`: a regular expression match, compiled once when the rule loads.
//!
//! Rampart uses the `regex` crate, whose engines run in time linear in the
//! input: no pattern can make a request take exponential time (ReDoS).
//! Matching is on bytes, not UTF-8 text, as ModSecurity does. Every CRS v4
//! pattern builds this way (a test compiles all of them).
//!
//! Look-around and back-references are beyond a linear-time engine. A
//! pattern that needs them (none in CRS v4; in Debian's CRS 3.3, the
//! look-arounds and possessive quantifiers of a few 920, 942 and 953 rules,
//! counted by a test) falls back to `fancy-regex`, a backtracking
//! engine, with its work bounded: at most [`BACKTRACK_LIMIT`] backtracking
//! steps per evaluation, after which the pattern counts as not matched (as
//! ModSecurity does when PCRE hits its match limit). It too matches bytes.
//!
//! `SecRule ARGS "@rx (?i)<script" "id:1,deny"`

use std::cell::RefCell;

use regex::bytes::RegexBuilder;
use regex_automata::{meta, util::syntax, Input};
use thread_local::ThreadLocal;

use super::{Operator, Vars};

/// A compiled pattern with one search cache per thread: the gateway's
/// workers each keep their own, so no two threads ever share (or wait for)
/// a cache, which the `regex` crate's internal pool would make them do.
struct Rx {
    re: meta::Regex,
    caches: ThreadLocal<RefCell<meta::Cache>>,
}

impl std::fmt::Debug for Rx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Rx").field(&self.re).finish()
    }
}

impl Rx {
    fn build(pattern: &str, unicode: bool) -> Result<Self, Box<meta::BuildError>> {
        let re = meta::Builder::new()
            .syntax(syntax::Config::new().unicode(unicode).utf8(false))
            .configure(
                meta::Config::new()
                    .utf8_empty(false)
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .hybrid_cache_capacity(SIZE_LIMIT),
            )
            .build(pattern)
            .map_err(Box::new)?;
        Ok(Rx { re, caches: ThreadLocal::new() })
    }

    fn with_cache<T>(&self, f: impl FnOnce(&meta::Regex, &mut meta::Cache) -> T) -> T {
        let cell = self.caches.get_or(|| RefCell::new(self.re.create_cache()));
        match cell.try_borrow_mut() {
            Ok(mut cache) => f(&self.re, &mut cache),
            // Re-entered on this thread (not done by the engine): a
            // fresh cache rather than a panic.
            Err(_) => f(&self.re, &mut self.re.create_cache()),
        }
    }
}

/// A pattern only a backtracking engine can run (look-around,
/// back-references).
#[derive(Debug)]
struct Backtracking(fancy_regex::Regex);

/// A pattern with macros (`^%{tx.allowed_charsets}$`, CRS 3.3): expanded
/// per evaluation and compiled once per distinct expansion (a few at most:
/// the values come from the rule set's settings).
#[derive(Debug)]
struct WithMacros {
    pattern: String,
    cache: std::sync::Mutex<Vec<(String, std::sync::Arc<dyn Operator>)>>,
}

/// Distinct expansions kept per pattern.
const MACRO_CACHE: usize = 16;

impl WithMacros {
    fn built(&self, vars: Vars<'_>) -> Option<std::sync::Arc<dyn Operator>> {
        let expanded = super::expand(&self.pattern, vars);
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, op)) = cache.iter().find(|(p, _)| *p == expanded) {
            return Some(op.clone());
        }
        // A pattern that does not build after expansion never matches.
        let op: std::sync::Arc<dyn Operator> = rx(&expanded.replace("%{", "%\\{")).ok()?.into();
        if cache.len() >= MACRO_CACHE {
            cache.remove(0);
        }
        cache.push((expanded, op.clone()));
        Some(op)
    }
}

impl Operator for WithMacros {
    fn matches(&self, input: &[u8], vars: Vars<'_>) -> bool {
        self.built(vars).is_some_and(|op| op.matches(input, vars))
    }

    fn captures(&self, input: &[u8], vars: Vars<'_>) -> Option<Vec<Vec<u8>>> {
        self.built(vars)?.captures(input, vars)
    }
}

/// Most backtracking steps one evaluation may take.
pub const BACKTRACK_LIMIT: usize = 100_000;

impl Operator for Backtracking {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        self.0.is_match(input).unwrap_or(false)
    }

    fn captures(&self, input: &[u8], _: Vars<'_>) -> Option<Vec<Vec<u8>>> {
        let c = self.0.captures(input).ok()??;
        Some((0..c.len().min(10)).map(|i| c.get(i).map_or_else(Vec::new, |m| m.as_bytes().to_vec())).collect())
    }
}

impl Operator for Rx {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        self.with_cache(|re, cache| re.search_half_with(cache, &Input::new(input).earliest(true)).is_some())
    }

    fn captures(&self, input: &[u8], vars: Vars<'_>) -> Option<Vec<Vec<u8>>> {
        // Most values do not match: the match test (DFA, prefilters) is far
        // cheaper than finding groups, which only a match needs.
        if !self.matches(input, vars) {
            return None;
        }
        self.with_cache(|re, cache| {
            let mut caps = re.create_captures();
            re.search_captures_with(cache, &Input::new(input), &mut caps);
            if !caps.is_match() {
                return None;
            }
            let n = caps.group_len().min(10);
            Some((0..n).map(|i| caps.get_group(i).map_or_else(Vec::new, |sp| input[sp.range()].to_vec())).collect())
        })
    }
}

/// Largest compiled program accepted (CRS's biggest patterns fit well
/// within it).
const SIZE_LIMIT: usize = 64 << 20;

/// `@rx pattern`. Byte semantics (`.` and classes match any byte) unless
/// the pattern spells out non-ASCII characters, which then match as UTF-8.
pub fn rx(arg: &str) -> Result<Box<dyn Operator>, String> {
    if arg.contains("%{") {
        return Ok(Box::new(WithMacros { pattern: arg.to_string(), cache: Default::default() }));
    }
    let pattern = byte_escapes(arg);
    let build = |unicode: bool| Rx::build(&pattern, unicode);
    let re = match build(false) {
        Ok(re) => re,
        Err(_) if !arg.is_ascii() => build(true).map_err(|e| format!("@rx: {e}"))?,
        Err(e) => {
            // PCRE syntax the linear engine lacks: look-around,
            // back-references, possessive quantifiers, atomic groups.
            let re = fancy_regex::RegexBuilder::new(&pattern)
                .backtrack_limit(BACKTRACK_LIMIT)
                .build()
                .map_err(|fe| format!("@rx: {e} (nor as a backtracking pattern: {fe})"))?;
            return Ok(Box::new(Backtracking(re)));
        }
    };
    Ok(Box::new(re))
}

/// Whether `pattern` needs the bounded backtracking engine.
pub fn is_backtracking(pattern: &str) -> bool {
    let p = byte_escapes(pattern);
    !pattern.contains("%{")
        && RegexBuilder::new(&p).unicode(false).size_limit(SIZE_LIMIT).build().is_err()
        && (pattern.is_ascii() || RegexBuilder::new(&p).size_limit(SIZE_LIMIT).build().is_err())
}

/// PCRE syntax rewritten where the `regex` crate reads it differently:
///
/// - PCRE without UTF mode reads `\x{HH}` as the byte HH; the `regex` crate
///   reads it as a code point, refused inside a byte class. Rewritten as
///   `\xHH`, which both read as the byte.
/// - Inside a character class, PCRE reads `[` (not opening `[:name:]`),
///   `&` and `~` literally; the `regex` crate reads `[` as a nested class
///   and `&&`, `~~` as set operations. They are escaped.
fn byte_escapes(p: &str) -> std::borrow::Cow<'_, str> {
    if !p.contains("\\x{") && !p.contains('[') {
        return std::borrow::Cow::Borrowed(p);
    }
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    // Inside a class, and where it started (a `]` right after the opening
    // `[` or `[^` is literal).
    let mut class: Option<usize> = None;
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
            out.push('\\');
            let next = p[i + 1..].chars().next().unwrap_or('\\');
            out.push(next);
            i += 1 + next.len_utf8();
            continue;
        }
        match (class, b[i]) {
            (None, b'[') => {
                out.push('[');
                i += 1;
                if b.get(i) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                class = Some(i);
                if b.get(i) == Some(&b']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            (Some(_), b']') => class = None,
            (Some(_), b'[') if b.get(i + 1) == Some(&b':') => {
                // A POSIX class `[:alpha:]`, copied whole.
                if let Some(end) = p[i..].find(":]") {
                    out.push_str(&p[i..i + end + 2]);
                    i += end + 2;
                    continue;
                }
                out.push_str("\\[");
                i += 1;
                continue;
            }
            (Some(_), b'[' | b'&' | b'~') => {
                out.push('\\');
            }
            _ => {}
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
    fn pcre_class_literals() {
        assert_eq!(super::byte_escapes(r"[^a[\]{}]"), r"[^a\[\]{}]");
        assert_eq!(super::byte_escapes(r"[]a]"), r"[\]a]");
        assert_eq!(super::byte_escapes(r"[[:alpha:]&&~]x[&]"), r"[[:alpha:]\&\&\~]x[\&]");
        let op = super::rx(r#"^[^e"(),/:;<=>?![\x5c\]{}]+$"#).unwrap();
        assert!(op.matches(b"abc", &no_vars));
        assert!(!op.matches(b"a[c", &no_vars));
    }

    #[test]
    fn macros_expand_per_evaluation() {
        let op = super::rx("^%{tx.charsets}$").unwrap();
        let vars = |k: &str| (k == "tx.charsets").then(|| "utf-8|latin1".to_string());
        assert!(op.matches(b"utf-8", &vars));
        assert!(!op.matches(b"utf-16", &vars));
        assert!(!op.matches(b"utf-8", &no_vars));
    }

    #[test]
    fn look_behind_falls_back_to_bounded_backtracking() {
        let op = super::rx(r"(?<!&amp);").unwrap();
        assert!(op.matches(b"a;b", &no_vars));
        assert!(!op.matches(b"&amp;", &no_vars));
        // A pattern that backtracks catastrophically stops at the limit.
        let evil = super::rx(r"^(?=a)(a+)+$").unwrap();
        let input = [b"a".repeat(40), b"b".to_vec()].concat();
        let t = std::time::Instant::now();
        assert!(!evil.matches(&input, &no_vars));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(super::rx(r"(a)\1").is_ok(), "back-references build too");
    }

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
