//! Operators (`@name arg`): one file per operator (or family), each with
//! its tests, and this table. An operator is built once when its rule
//! loads (regexes compiled, phrase automata built) and then only
//! evaluated. Arguments holding macros (`@lt %{tx.paranoia_level}`) are
//! expanded per evaluation through the [`Vars`] given.

mod contains;
mod detect;
mod ip_match;
mod lookups;
mod numeric;
mod pm;
mod rx;

pub use rx::{is_backtracking, BACKTRACK_LIMIT};
mod strings;
mod unconditional;
mod validate;

/// Looks up a variable for macro expansion (`tx.paranoia_level`).
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A built operator.
pub trait Operator: Send + Sync + std::fmt::Debug {
    /// Whether `input` matches.
    fn matches(&self, input: &[u8], vars: Vars<'_>) -> bool;

    /// For `capture`: on a match, what `TX:0` to `TX:9` become (the match
    /// and its groups; by default the whole input).
    fn captures(&self, input: &[u8], vars: Vars<'_>) -> Option<Vec<Vec<u8>>> {
        self.matches(input, vars).then(|| vec![input.to_vec()])
    }
}

/// Builds an operator from its argument.
pub type Build = fn(&str) -> Result<Box<dyn Operator>, String>;

/// Every implemented operator, alphabetical.
pub const TABLE: &[(&str, Build)] = &[
    ("beginsWith", strings::begins_with),
    ("contains", contains::contains),
    ("containsWord", contains::contains_word),
    ("detectSQLi", detect::detect_sqli),
    ("detectXSS", detect::detect_xss),
    ("endsWith", strings::ends_with),
    ("eq", numeric::eq),
    ("ge", numeric::ge),
    ("geoLookup", lookups::geo_lookup),
    ("gt", numeric::gt),
    ("ipMatch", ip_match::ip_match),
    ("le", numeric::le),
    ("lt", numeric::lt),
    ("noMatch", unconditional::no_match),
    ("pm", pm::pm),
    ("rbl", lookups::rbl),
    ("rx", rx::rx),
    ("streq", strings::streq),
    ("strmatch", contains::strmatch),
    ("unconditionalMatch", unconditional::unconditional_match),
    ("validateByteRange", validate::validate_byte_range),
    ("validateUrlEncoding", validate::validate_url_encoding),
    ("validateUtf8Encoding", validate::validate_utf8_encoding),
    ("within", strings::within),
];

/// Operators whose argument names files next to the rule file: the
/// engine builds them ([`pm_from_files`], [`ip_match_from_file`]).
pub const FROM_FILES: &[&str] = &["ipMatchF", "ipMatchFromFile", "pmf", "pmFromFile"];

/// Operators the loader knows that are not built yet (named, never
/// silently skipped).
pub const NOT_YET: &[&str] = &[
    "fuzzyHash",
    "gsbLookup",
    "inspectFile",
    "rsub",
    "rxGlobal",
    "validateDTD",
    "validateSchema",
    "verifyCC",
    "verifyCPF",
    "verifySSN",
];

/// Builds operator `name` with `arg`.
pub fn build(name: &str, arg: &str) -> Result<Box<dyn Operator>, String> {
    let (_, f) = TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("operator @{name} is not implemented yet"))?;
    f(arg)
}

/// `@pmFromFile a.data b.data`: the phrases of the files (one a line, `#`
/// comments and blank lines skipped), paths relative to `dir` (the rule
/// file's directory), built into one automaton.
pub fn pm_from_files(dir: &std::path::Path, arg: &str) -> Result<Box<dyn Operator>, String> {
    let mut phrases = Vec::new();
    for name in arg.split_whitespace() {
        let path = dir.join(name);
        let text = crate::sources::read_file(&path).map_err(|e| format!("@pmFromFile {}: {e}", path.display()))?;
        phrases
            .extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    }
    pm::phrases(phrases.iter().map(String::as_str)).map_err(|e| format!("@pmFromFile {arg}: {e}"))
}

/// `@ipMatchFromFile list.txt` (alias `@ipMatchF`): the addresses and
/// networks of the file, one a line, `#` comments and blank lines skipped,
/// the path relative to `dir` (the rule file's directory).
pub fn ip_match_from_file(dir: &std::path::Path, arg: &str) -> Result<Box<dyn Operator>, String> {
    let path = dir.join(arg.trim());
    let text = crate::sources::read_file(&path).map_err(|e| format!("@ipMatchFromFile {}: {e}", path.display()))?;
    let list: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    ip_match::ip_match(&list.join(",")).map_err(|e| format!("@ipMatchFromFile {}: {e}", path.display()))
}

/// A value read as an integer the way ModSecurity does (C's `atoi`).
pub fn numeric_value(s: &[u8]) -> i64 {
    numeric::atoi(s)
}

/// Expands `%{collection.key}` macros in `text`; unknown ones become empty.
pub fn expand(text: &str, vars: Vars<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + 2 + end];
                out.push_str(&vars(&name.to_ascii_lowercase()).unwrap_or_default());
                rest = &rest[start + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
pub(crate) fn no_vars(_: &str) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_alphabetical_and_covers_the_vocabulary() {
        let names: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        assert_eq!(names, sorted);
        for n in crate::names::OPERATORS {
            let built = TABLE.iter().any(|(t, _)| t == n) || FROM_FILES.contains(n);
            assert!(built != NOT_YET.contains(n), "@{n} must be either built or listed as not yet");
        }
    }

    #[test]
    fn macros_expand() {
        let vars = |k: &str| (k == "tx.paranoia_level").then(|| "2".to_string());
        assert_eq!(expand("%{TX.paranoia_level} and %{tx.none}!", &vars), "2 and !");
        assert_eq!(expand("open %{x", &vars), "open %{x");
    }
}
