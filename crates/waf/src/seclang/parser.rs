//! The first layer: text into directives. Assembles logical lines (`#`
//! comments, blank lines, `\` continuations), splits each into the
//! directive name and its arguments with Apache's quoting rules, and
//! follows `Include` (globs, relative to the including file) with a depth
//! cap that guards against include loops.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{directives, ParseError, RuleSet};

/// How deep `Include` may nest (a loop would otherwise never end).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a directive came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file (or a name for inline text).
    pub file: Arc<str>,
    /// The line its logical line starts on (1-based).
    pub line: usize,
}

/// One directive as written: name, arguments, where.
#[derive(Debug)]
pub struct Directive {
    /// The directive's name.
    pub name: String,
    /// Its arguments, quotes removed.
    pub args: Vec<String>,
    /// The logical line as written (continuations joined), for errors.
    pub text: String,
    /// Where it starts.
    pub origin: Origin,
}

/// Parses `text` (from `origin`) into `set`; `dir` resolves relative
/// `Include` paths.
pub fn parse_into(
    set: &mut RuleSet,
    text: &str,
    origin: &str,
    dir: Option<&Path>,
    depth: usize,
) -> Result<(), ParseError> {
    let file: Arc<str> = origin.into();
    for (line_no, logical) in logical_lines(text) {
        let o = Origin { file: file.clone(), line: line_no };
        let err =
            |message: String| ParseError { file: o.file.to_string(), line: o.line, text: snippet(&logical), message };
        let mut words = split_args(&logical).map_err(err)?;
        if words.is_empty() {
            continue;
        }
        let name = words.remove(0);
        if name.eq_ignore_ascii_case("Include") {
            let [pattern] = words.as_slice() else {
                return Err(err("Include takes one path or glob".into()));
            };
            include(set, pattern, dir, depth).map_err(|e| match e {
                IncludeError::Nested(p) => p,
                IncludeError::Here(m) => err(m),
            })?;
            continue;
        }
        let d = Directive { name, args: words, text: logical.clone(), origin: o.clone() };
        directives::apply(set, d)?;
    }
    Ok(())
}

enum IncludeError {
    Nested(ParseError),
    Here(String),
}

fn include(set: &mut RuleSet, pattern: &str, dir: Option<&Path>, depth: usize) -> Result<(), IncludeError> {
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(IncludeError::Here(format!(
            "Include nested more than {MAX_INCLUDE_DEPTH} deep (an include loop?)"
        )));
    }
    let full: PathBuf = match dir {
        Some(d) if Path::new(pattern).is_relative() => d.join(pattern),
        _ => PathBuf::from(pattern),
    };
    let text = full.to_string_lossy().into_owned();
    let mut paths: Vec<PathBuf> = glob::glob(&text)
        .map_err(|e| IncludeError::Here(format!("bad glob {text:?}: {e}")))?
        .filter_map(Result::ok)
        .collect();
    paths.sort();
    if paths.is_empty() && !text.contains(['*', '?', '[']) {
        return Err(IncludeError::Here(format!("{text}: no such file")));
    }
    for p in paths {
        load_into(set, &p, depth + 1).map_err(IncludeError::Nested)?;
    }
    Ok(())
}

/// Reads and parses a file into `set`.
pub fn load_into(set: &mut RuleSet, path: &Path, depth: usize) -> Result<(), ParseError> {
    let text = crate::sources::read_file(path).map_err(|e| ParseError {
        file: path.display().to_string(),
        line: 0,
        text: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_into(set, &text, &path.display().to_string(), path.parent(), depth)
}

/// Logical lines with the number of the line each starts on: comments and
/// blank lines dropped, a trailing `\` joins the next line.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if current.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start = i + 1;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push((start, std::mem::take(&mut current).trim().to_string()));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push((start, current.trim().to_string()));
    }
    out
}

/// Splits a directive line into words. Quoted words (`"` or `'`) may hold
/// spaces; inside them a backslash before the quote character escapes it
/// and every other backslash is kept (regexes keep their escapes).
pub fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    closed = true;
                    break;
                } else {
                    word.push(c);
                }
            }
            if !closed {
                return Err(format!("unterminated {first}-quoted argument"));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("text right after a closing quote".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// The start of a line, for error messages.
pub fn snippet(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if line.chars().count() > 120 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_line_numbers() {
        let text = "# comment\n\nSecRule ARGS \"@rx a\" \\\n    \"id:1,\\\n    phase:2\"\n  # indented comment\nSecAction \"id:2\"\n";
        let lines = logical_lines(text);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, 3);
        assert_eq!(lines[0].1, "SecRule ARGS \"@rx a\"     \"id:1,    phase:2\"");
        assert_eq!(lines[1].0, 7);
    }

    #[test]
    fn quoting_as_apache_does() {
        let w = split_args(r#"SecRule ARGS "@rx \d+ \"x\" \w" 'id:1'"#).unwrap();
        assert_eq!(w, vec!["SecRule", "ARGS", r#"@rx \d+ "x" \w"#, "id:1"]);
        assert!(split_args(r#"SecRule ARGS "@rx unterminated"#).is_err());
        assert!(split_args(r#"SecRule "a"b"#).is_err());
    }
}
