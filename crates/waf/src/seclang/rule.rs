//! The third layer: a `SecRule`'s three parts, variables, operator and
//! actions, parsed and checked against the known names.

use crate::names;

use super::parser::Origin;

/// Which part of a variable list entry selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `ARGS:name` (case-insensitive key).
    Key(String),
    /// `ARGS:/regex/`.
    Regex(String),
}

/// One entry of a variable list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// `&ARGS`: the number of values instead of the values.
    pub count: bool,
    /// `!ARGS:x`: an exclusion from the others.
    pub exclude: bool,
    /// The collection or variable name, canonical spelling.
    pub name: &'static str,
    /// The key or key pattern, if any.
    pub selector: Option<Selector>,
}

/// An operator with its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// `!@rx`: match when the operator does not.
    pub negated: bool,
    /// Canonical name (`rx` when none was written).
    pub name: &'static str,
    /// The argument as written (macros expanded later).
    pub argument: String,
}

/// One action with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Canonical name.
    pub name: &'static str,
    /// The value, quotes removed (`msg:'x'` gives `x`).
    pub value: Option<String>,
}

/// A `SecRule`, `SecAction` or chained rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Where it was written.
    pub origin: Origin,
    /// What it inspects (empty for `SecAction`).
    pub variables: Vec<Variable>,
    /// How (`None` for `SecAction`: it always matches).
    pub operator: Option<Operator>,
    /// What it does.
    pub actions: Vec<Action>,
    /// The next rule of the chain, when `chain` is among the actions.
    pub chained: Option<Box<Rule>>,
}

impl Rule {
    /// The first value of an action.
    pub fn action(&self, name: &str) -> Option<&str> {
        self.actions.iter().find(|a| a.name == name).and_then(|a| a.value.as_deref())
    }

    /// Every value of an action (`tag` is repeated).
    pub fn actions_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.actions.iter().filter(move |a| a.name == name).filter_map(|a| a.value.as_deref())
    }

    /// The rule id.
    pub fn id(&self) -> Option<u64> {
        self.action("id")?.parse().ok()
    }

    /// Whether `chain` is among its actions.
    pub fn chains(&self) -> bool {
        self.actions.iter().any(|a| a.name == "chain")
    }

    /// The last rule of its chain (where the next chained rule goes).
    pub fn chain_end(&mut self) -> &mut Rule {
        match self.chained {
            Some(ref mut next) => next.chain_end(),
            None => self,
        }
    }
}

/// Parses a variable list: `ARGS|!ARGS:x|&TX:y|REQUEST_COOKIES:/re|gex/`.
pub fn parse_variables(text: &str) -> Result<Vec<Variable>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let (mut count, mut exclude) = (false, false);
        loop {
            match b.get(i) {
                Some(b'&') => count = true,
                Some(b'!') => exclude = true,
                _ => break,
            }
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b':' && b[i] != b'|' {
            i += 1;
        }
        let raw = &text[start..i];
        let name = names::lookup(names::VARIABLES, raw).ok_or_else(|| format!("unknown variable \"{raw}\""))?;
        let mut selector = None;
        if b.get(i) == Some(&b':') {
            i += 1;
            if name == "XML" {
                // An XPath expression: up to the next `|`.
                let s = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                selector = Some(Selector::Key(text[s..i].to_string()));
            } else if b.get(i) == Some(&b'/') {
                let s = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'/' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(format!("unterminated /regex/ selector of {name}"));
                }
                selector = Some(Selector::Regex(text[s..i].to_string()));
                i += 1;
            } else if b.get(i) == Some(&b'\'') {
                let s = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                if i >= b.len() {
                    return Err(format!("unterminated quoted selector of {name}"));
                }
                selector = Some(Selector::Key(text[s..i].to_string()));
                i += 1;
            } else {
                let s = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                selector = Some(Selector::Key(text[s..i].to_string()));
            }
        }
        out.push(Variable { count, exclude, name, selector });
        match b.get(i) {
            None => break,
            Some(b'|') => i += 1,
            Some(_) => return Err(format!("unexpected text after {name} in the variable list")),
        }
    }
    if out.is_empty() {
        return Err("empty variable list".into());
    }
    Ok(out)
}

/// Parses an operator: `@rx ^a`, `!@eq 0`, or a bare regex (`@rx` implied).
pub fn parse_operator(text: &str) -> Result<Operator, String> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let Some(named) = rest.strip_prefix('@') else {
        return Ok(Operator { negated, name: "rx", argument: rest.to_string() });
    };
    let (raw, arg) = named.split_once(char::is_whitespace).unwrap_or((named, ""));
    let name = names::lookup(names::OPERATORS, raw).ok_or_else(|| format!("unknown operator \"@{raw}\""))?;
    Ok(Operator { negated, name, argument: arg.trim_start().to_string() })
}

/// Parses an action list: `id:1,phase:2,msg:'a, b',t:none,setvar:'tx.x=1'`.
pub fn parse_actions(text: &str) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == ':' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let name = name.trim().to_string();
        let mut value = None;
        if chars.peek() == Some(&':') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ') {
                chars.next();
            }
            let mut v = String::new();
            if chars.peek() == Some(&'\'') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '\\' && chars.peek() == Some(&'\'') {
                        v.push('\'');
                        chars.next();
                    } else if c == '\'' {
                        closed = true;
                        break;
                    } else {
                        v.push(c);
                    }
                }
                if !closed {
                    return Err(format!("unterminated quote in the value of \"{name}\""));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim_end().to_string();
            }
            value = Some(v);
        }
        let canonical = names::lookup(names::ACTIONS, &name).ok_or_else(|| format!("unknown action \"{name}\""))?;
        if canonical == "t" {
            let t = value.as_deref().unwrap_or("");
            if names::lookup(names::TRANSFORMATIONS, t).is_none() {
                return Err(format!("unknown transformation \"{t}\""));
            }
        }
        out.push(Action { name: canonical, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_with_counts_exclusions_and_regex_keys() {
        let v = parse_variables("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|_ga/|&TX:x|XML:/*|ARGS:'a b'").unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(
            v[1],
            Variable {
                count: false,
                exclude: true,
                name: "REQUEST_COOKIES",
                selector: Some(Selector::Regex("__utm|_ga".into()))
            }
        );
        assert!(v[2].count);
        assert_eq!(v[3].selector, Some(Selector::Key("/*".into())));
        assert_eq!(v[4].selector, Some(Selector::Key("a b".into())));
        assert_eq!(parse_variables("ARGZ").unwrap_err(), "unknown variable \"ARGZ\"");
        assert!(parse_variables("ARGS:/unterminated").is_err());
        assert_eq!(parse_variables("args_names").unwrap()[0].name, "ARGS_NAMES");
    }

    #[test]
    fn operators_default_to_rx_and_may_be_negated() {
        assert_eq!(parse_operator("@eq 0").unwrap(), Operator { negated: false, name: "eq", argument: "0".into() });
        assert_eq!(parse_operator("!@rx ^a b").unwrap().argument, "^a b");
        assert_eq!(parse_operator("^GET$").unwrap().name, "rx");
        assert_eq!(parse_operator("@unconditionalMatch").unwrap().argument, "");
        assert_eq!(parse_operator("@nope x").unwrap_err(), "unknown operator \"@nope\"");
    }

    #[test]
    fn actions_with_quoted_values_and_checked_names() {
        let a = parse_actions("id:942100,  phase:2,msg:'SQL, detected',t:none,t:urlDecodeUni,setvar:'tx.score=+%{tx.critical}',ctl:ruleRemoveTargetById=1;ARGS:x,nolog").unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(a[2].value.as_deref(), Some("SQL, detected"));
        assert_eq!(a[5].value.as_deref(), Some("tx.score=+%{tx.critical}"));
        assert_eq!(a[6].value.as_deref(), Some("ruleRemoveTargetById=1;ARGS:x"));
        assert_eq!(a[7], Action { name: "nolog", value: None });
        assert_eq!(parse_actions("t:urlDecodeUnii").unwrap_err(), "unknown transformation \"urlDecodeUnii\"");
        assert_eq!(parse_actions("t:base64decode").unwrap()[0].value.as_deref(), Some("base64decode"));
        assert!(parse_actions("msg:'open").is_err());
        assert_eq!(parse_actions("frobnicate").unwrap_err(), "unknown action \"frobnicate\"");
    }
}
