//! SecLang, ModSecurity's rule language, in three layers as its manual
//! describes it: [`parser`] turns text into directives (lines,
//! continuations, quoting, `Include`), [`directives`] gives each directive
//! its meaning (one function each, one table), and [`rule`] parses a
//! `SecRule`'s variables, operator and actions. Every error names the file,
//! the line and the text:
//!
//! ```text
//! crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf:46: unknown transformation "urlDecodeUnii": `SecRule ...`
//! ```

pub mod directives;
pub mod parser;
pub mod rule;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use rule::{Action, Operator, Rule, Selector, Variable};

/// A rule set that cannot be loaded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file.
    pub file: String,
    /// The line (0 when the file itself could not be read).
    pub line: usize,
    /// The start of the offending logical line.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else if self.text.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}:{}: {}: `{}`", self.file, self.line, self.message, self.text)
        }
    }
}

/// `SecRuleEngine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineMode {
    /// Rules run and disruptive actions apply.
    #[default]
    On,
    /// Rules run; nothing is blocked.
    DetectionOnly,
    /// Rules do not run.
    Off,
}

/// Everything a rule set says.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Rules in order (chains hang off their first rule).
    pub rules: Vec<Rule>,
    /// `SecMarker` names, with the number of rules before each.
    pub markers: Vec<(String, usize)>,
    /// `SecDefaultAction` per phase (1 to 5).
    pub default_actions: BTreeMap<u8, Vec<Action>>,
    /// `SecRuleEngine`.
    pub engine: EngineMode,
    /// Other engine settings (`SecRequestBodyLimit`, ...), by directive.
    pub settings: BTreeMap<String, String>,
    /// `SecComponentSignature` values.
    pub components: Vec<String>,
}

impl RuleSet {
    /// The rule with `id`.
    pub fn rule(&self, id: u64) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id() == Some(id))
    }
}

/// Loads a rule file (and what it includes).
pub fn load_file(path: &Path) -> Result<RuleSet, ParseError> {
    let mut set = RuleSet::default();
    parser::load_into(&mut set, path, 0)?;
    directives::finish(&set)?;
    Ok(set)
}

/// Loads several files in order into one set (a setup file, then rules).
pub fn load_files<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<RuleSet, ParseError> {
    let mut set = RuleSet::default();
    for p in paths {
        parser::load_into(&mut set, p, 0)?;
    }
    directives::finish(&set)?;
    Ok(set)
}

/// Loads rules from text; `origin` names it in errors.
pub fn load_str(text: &str, origin: &str) -> Result<RuleSet, ParseError> {
    let mut set = RuleSet::default();
    parser::parse_into(&mut set, text, origin, None, 0)?;
    directives::finish(&set)?;
    Ok(set)
}
