//! Rule evaluation: a loaded [`RuleSet`] compiled once into an [`Engine`]
//! (operators built, transformation pipelines resolved, markers indexed),
//! and a [`Transaction`] per request that holds the request's variables and
//! the `TX` collection, runs the rules of a phase in order and records what
//! matched.
//!
//! Covered so far: variables with keys, regex keys, exclusions and counts;
//! transformation pipelines with `t:none` and default actions; every built
//! operator with macro arguments; actions `setvar` (`=`, `+=`, `-=`, `!`),
//! `chain`, `skipAfter`, `capture`, `deny`/`block`/`pass`/`allow` with
//! `status`, `msg`/`logdata` macros, `ctl:ruleRemoveById`.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::bytes::Regex;

use crate::operators::{self, Operator};
use crate::seclang::{Action, Rule, RuleSet, Selector, Variable};
use crate::transforms::{self, Transform};

/// A rule ready to run.
struct Compiled {
    id: Option<u64>,
    phase: u8,
    variables: Vec<CompiledVar>,
    operator: Option<(Box<dyn Operator>, bool)>,
    transforms: Vec<Transform>,
    /// `multiMatch`: the operator runs after every transformation.
    multi_match: bool,
    /// `capture`: groups of the match go to `TX:0`-`TX:9`.
    capture: bool,
    actions: Vec<Action>,
    chained: Option<Box<Compiled>>,
}

struct CompiledVar {
    var: Variable,
    key_regex: Option<Regex>,
}

/// Why a rule set cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CompileError {
    /// The file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A compiled rule set.
pub struct Engine {
    rules: Vec<Compiled>,
    markers: HashMap<String, usize>,
    /// `SecRuleEngine DetectionOnly`: rules run, nothing is refused.
    detection_only: bool,
}

/// What a transaction decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Refuse with this status.
    Deny(u16),
    /// Stop evaluating and let the request through (`allow`).
    Allow,
}

/// One matched rule, for logs and events.
#[derive(Debug, Clone)]
pub struct Match {
    /// The rule's id.
    pub id: u64,
    /// `msg`, macros expanded.
    pub msg: String,
    /// `logdata`, macros expanded.
    pub data: String,
    /// The variable that matched (`ARGS:q`).
    pub variable: String,
}

impl Engine {
    /// Compiles a loaded rule set.
    pub fn new(set: &RuleSet) -> Result<Self, CompileError> {
        let mut rules = Vec::new();
        for r in &set.rules {
            let default = r.action("phase").and_then(|p| crate::seclang::directives::phase_number(p).ok()).unwrap_or(2);
            let defaults = set.default_actions.get(&default).cloned().unwrap_or_default();
            rules.push(compile(r, &defaults, default)?);
        }
        let markers = set.markers.iter().map(|(n, at)| (n.clone(), *at)).collect();
        Ok(Engine { rules, markers, detection_only: set.engine == crate::seclang::EngineMode::DetectionOnly })
    }

    /// A new transaction.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            engine: self,
            vars: HashMap::new(),
            tx: HashMap::new(),
            removed: Vec::new(),
            matches: Vec::new(),
            verdict: Verdict::Pass,
        }
    }
}

fn compile(r: &Rule, defaults: &[Action], phase: u8) -> Result<Compiled, CompileError> {
    let err = |message: String| CompileError { file: r.origin.file.to_string(), line: r.origin.line, message };
    // Default transformations first, unless the rule resets with t:none.
    let mut transforms = Vec::new();
    for a in defaults.iter().chain(&r.actions).filter(|a| a.name == "t") {
        let name = a.value.as_deref().unwrap_or("");
        if name.eq_ignore_ascii_case("none") {
            transforms.clear();
            continue;
        }
        transforms.push(
            transforms::lookup(name).ok_or_else(|| err(format!("transformation t:{name} is not implemented yet")))?,
        );
    }
    let operator = match &r.operator {
        Some(op) if matches!(op.name, "pmFromFile" | "pmf") => {
            let dir =
                std::path::Path::new(&*r.origin.file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            Some((operators::pm_from_files(&dir, &op.argument).map_err(err)?, op.negated))
        }
        Some(op) => Some((operators::build(op.name, &op.argument).map_err(err)?, op.negated)),
        None => None,
    };
    let variables = r
        .variables
        .iter()
        .map(|v| {
            let key_regex = match &v.selector {
                Some(Selector::Regex(re)) => Some(
                    regex::bytes::RegexBuilder::new(re)
                        .case_insensitive(true)
                        .build()
                        .map_err(|e| err(format!("variable key /{re}/: {e}")))?,
                ),
                _ => None,
            };
            Ok(CompiledVar { var: v.clone(), key_regex })
        })
        .collect::<Result<_, CompileError>>()?;
    let chained = match &r.chained {
        Some(c) => Some(Box::new(compile(c, &[], phase)?)),
        None => None,
    };
    let mut actions: Vec<Action> = defaults.iter().filter(|a| !matches!(a.name, "t" | "phase")).cloned().collect();
    actions.extend(r.actions.iter().filter(|a| a.name != "t").cloned());
    let multi_match = actions.iter().any(|a| a.name == "multiMatch");
    let capture = actions.iter().any(|a| a.name == "capture");
    Ok(Compiled { id: r.id(), phase, variables, operator, transforms, multi_match, capture, actions, chained })
}

/// One request's evaluation state.
pub struct Transaction<'e> {
    engine: &'e Engine,
    /// Request variables: name (upper case) to (key, value) pairs.
    vars: HashMap<&'static str, Vec<(String, Vec<u8>)>>,
    tx: HashMap<String, String>,
    removed: Vec<(u64, u64)>,
    matches: Vec<Match>,
    verdict: Verdict,
}

impl Transaction<'_> {
    /// Adds a value to a collection (`ARGS`, key `q`) or sets a single
    /// variable (`REQUEST_METHOD`, key empty).
    pub fn add(&mut self, name: &'static str, key: &str, value: &[u8]) {
        self.vars.entry(name).or_default().push((key.to_string(), value.to_vec()));
    }

    /// A `TX` variable.
    pub fn tx(&self, key: &str) -> Option<&str> {
        self.tx.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    /// Rules that matched so far.
    pub fn matches(&self) -> &[Match] {
        &self.matches
    }

    /// The decision so far.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Runs the rules of `phase`; stops at a disruptive decision.
    pub fn run_phase(&mut self, phase: u8) -> Verdict {
        let rules = &self.engine.rules;
        let mut i = 0;
        while i < rules.len() && self.verdict == Verdict::Pass {
            let r = &rules[i];
            i += 1;
            if r.phase != phase || r.id.is_some_and(|id| self.removed.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id)))
            {
                continue;
            }
            let Some(matched) = self.evaluate(r) else { continue };
            let mut cur = r;
            let mut all = true;
            let mut last = matched;
            while let Some(next) = &cur.chained {
                match self.evaluate(next) {
                    Some(m) => last = m,
                    None => {
                        all = false;
                        break;
                    }
                }
                cur = next;
            }
            if !all {
                continue;
            }
            if let Some(skip) = self.act(r, &last) {
                if let Some(&at) = self.engine.markers.get(&skip) {
                    i = i.max(at);
                }
            }
        }
        self.verdict.clone()
    }

    /// Evaluates one rule's operator over its variables; on a match, runs
    /// its non-disruptive actions and returns the matched variable's name.
    fn evaluate(&mut self, r: &Compiled) -> Option<String> {
        let targets = self.targets(r);
        let Some((op, negated)) = &r.operator else {
            self.side_effects(r, "", b"");
            return Some(String::new());
        };
        // Every target is tried (not just up to the first match): a chained
        // rule may inspect all of them through MATCHED_VARS. Side effects
        // run after the operator has seen every target.
        let mut matched: Vec<(String, Vec<u8>)> = Vec::new();
        let mut captured: Option<Vec<Vec<u8>>> = None;
        {
            let lookup = |k: &str| self.macro_value(k);
            let test = |v: &[u8], captured: &mut Option<Vec<Vec<u8>>>| -> bool {
                if r.capture && !*negated {
                    match op.captures(v, &lookup) {
                        Some(c) => {
                            *captured = Some(c);
                            true
                        }
                        None => false,
                    }
                } else {
                    op.matches(v, &lookup) != *negated
                }
            };
            for (name, value) in targets {
                let mut v: Cow<'_, [u8]> = Cow::Borrowed(&value);
                // multiMatch: the operator also sees the value before the
                // transformations and after each one that changed it.
                if r.multi_match && test(&v, &mut captured) {
                    matched.push((name, v.into_owned()));
                    continue;
                }
                let mut hit = false;
                for t in &r.transforms {
                    let next = t(&v).into_owned();
                    let changed = next != *v;
                    v = Cow::Owned(next);
                    if r.multi_match && changed && test(&v, &mut captured) {
                        hit = true;
                        break;
                    }
                }
                if hit || (!r.multi_match || r.transforms.is_empty()) && test(&v, &mut captured) {
                    // As ModSecurity: MATCHED_VAR(S) hold the transformed
                    // value, which is what chained rules (CRS 944120) expect.
                    matched.push((name, v.into_owned()));
                }
            }
        }
        if let Some(groups) = captured {
            for (i, g) in groups.iter().enumerate() {
                self.tx.insert(i.to_string(), String::from_utf8_lossy(g).into_owned());
            }
        }
        for (name, v) in &matched {
            self.tx.insert("matched_var".into(), String::from_utf8_lossy(v).into_owned());
            self.tx.insert("matched_var_name".into(), name.clone());
            self.side_effects(r, name, v);
        }
        let last = matched.last()?.0.clone();
        self.vars
            .insert("MATCHED_VARS_NAMES", matched.iter().map(|(n, _)| (n.clone(), n.clone().into_bytes())).collect());
        if let Some((n, v)) = matched.last() {
            self.vars.insert("MATCHED_VAR", vec![(String::new(), v.clone())]);
            self.vars.insert("MATCHED_VAR_NAME", vec![(String::new(), n.clone().into_bytes())]);
        }
        self.vars.insert("MATCHED_VARS", matched);
        Some(last)
    }

    /// The value of a macro: `tx.x`, `request_headers.host`, `matched_var`,
    /// `remote_addr`...
    fn macro_value(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        if let Some(rest) = k.strip_prefix("tx.") {
            return self.tx.get(rest).cloned();
        }
        if k == "matched_var" || k == "matched_var_name" {
            return self.tx.get(&k).cloned();
        }
        let (coll, sub) = match k.split_once('.') {
            Some((c, s)) => (c.to_ascii_uppercase(), Some(s)),
            None => (k.to_ascii_uppercase(), None),
        };
        let values = self.vars.iter().find(|(n, _)| **n == coll.as_str())?.1;
        let found = match sub {
            Some(s) => values.iter().find(|(key, _)| key.eq_ignore_ascii_case(s)),
            None => values.first(),
        };
        found.map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// `text` with its macros expanded.
    fn expand(&self, text: &str) -> String {
        operators::expand(text, &|k: &str| self.macro_value(k))
    }

    /// The (name, value) pairs a rule's variable list selects.
    fn targets(&self, r: &Compiled) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for cv in r.variables.iter().filter(|v| !v.var.exclude) {
            let v = &cv.var;
            let values: Vec<(String, Vec<u8>)> = if v.name == "TX" {
                self.tx.iter().map(|(k, val)| (k.clone(), val.clone().into_bytes())).collect()
            } else {
                self.vars.get(v.name).cloned().unwrap_or_default()
            };
            let selected: Vec<(String, Vec<u8>)> = values
                .into_iter()
                .filter(|(k, _)| match (&v.selector, &cv.key_regex) {
                    (Some(Selector::Key(want)), _) => k.eq_ignore_ascii_case(want),
                    (Some(Selector::Regex(_)), Some(re)) => re.is_match(k.as_bytes()),
                    _ => true,
                })
                .filter(|(k, _)| {
                    !r.variables.iter().filter(|x| x.var.exclude && x.var.name == v.name).any(|x| {
                        match (&x.var.selector, &x.key_regex) {
                            (Some(Selector::Key(ex)), _) => k.eq_ignore_ascii_case(ex),
                            (Some(Selector::Regex(_)), Some(re)) => re.is_match(k.as_bytes()),
                            _ => true,
                        }
                    })
                })
                .collect();
            if v.count {
                out.push((format!("&{}", v.name), selected.len().to_string().into_bytes()));
            } else {
                for (k, val) in selected {
                    let name = if k.is_empty() { v.name.to_string() } else { format!("{}:{k}", v.name) };
                    out.push((name, val));
                }
            }
        }
        out
    }

    /// `capture` and `setvar` of a matching rule.
    fn side_effects(&mut self, r: &Compiled, _name: &str, value: &[u8]) {
        let _ = value;
        for a in r.actions.iter().filter(|a| a.name == "setvar") {
            if let Some(spec) = &a.value {
                self.setvar(spec);
            }
        }
    }

    fn setvar(&mut self, spec: &str) {
        let spec = self.expand(spec);
        let (target, value) = match spec.split_once('=') {
            Some((t, v)) => (t.trim(), Some(v)),
            None => (spec.trim(), None),
        };
        let (remove, target) = match target.strip_prefix('!') {
            Some(t) => (true, t),
            None => (false, target),
        };
        let Some(key) = target.to_ascii_lowercase().strip_prefix("tx.").map(str::to_string) else { return };
        if remove {
            self.tx.remove(&key);
            return;
        }
        let value = value.unwrap_or("1");
        let current = self.tx.get(&key).map_or(0, |v| operators::numeric_value(v.as_bytes()));
        let new = if let Some(n) = value.strip_prefix('+') {
            (current + operators::numeric_value(n.as_bytes())).to_string()
        } else if let Some(n) = value.strip_prefix('-') {
            (current - operators::numeric_value(n.as_bytes())).to_string()
        } else {
            value.to_string()
        };
        self.tx.insert(key, new);
    }

    /// The actions of a fully matched rule (or chain): logging, ctl,
    /// disruptive decision. Returns a `skipAfter` marker.
    fn act(&mut self, r: &Compiled, variable: &str) -> Option<String> {
        let get = |n: &str| r.actions.iter().rev().find(|a| a.name == n).and_then(|a| a.value.clone());
        if let Some(id) = r.id {
            let logs = !r.actions.iter().any(|a| a.name == "nolog");
            if logs {
                self.matches.push(Match {
                    id,
                    msg: get("msg").map(|m| self.expand(&m)).unwrap_or_default(),
                    data: get("logdata").map(|m| self.expand(&m)).unwrap_or_default(),
                    variable: variable.to_string(),
                });
            }
        }
        for a in r.actions.iter().filter(|a| a.name == "ctl") {
            if let Some(ids) = a.value.as_deref().and_then(|v| v.strip_prefix("ruleRemoveById=")) {
                for part in ids.split([' ', ',']).filter(|p| !p.is_empty()) {
                    let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                    if let (Ok(lo), Ok(hi)) = (lo.parse(), hi.parse()) {
                        self.removed.push((lo, hi));
                    }
                }
            }
        }
        // The last disruptive action written wins (the rule's over defaults).
        let disruptive = r
            .actions
            .iter()
            .rev()
            .find(|a| matches!(a.name, "deny" | "block" | "drop" | "pass" | "allow" | "redirect"));
        match disruptive.map(|a| a.name).filter(|_| !self.engine.detection_only) {
            Some("deny" | "drop") => {
                let status = get("status").and_then(|s| s.parse().ok()).unwrap_or(403);
                self.verdict = Verdict::Deny(status);
            }
            Some("allow") => self.verdict = Verdict::Allow,
            _ => {}
        }
        get("skipAfter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seclang::load_str;

    fn engine(rules: &str) -> Engine {
        Engine::new(&load_str(rules, "t.conf").unwrap()).unwrap()
    }

    #[test]
    fn anomaly_scoring_the_way_crs_does_it() {
        let e = engine(
            r#"SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:900,phase:1,nolog,pass,setvar:tx.threshold=5,setvar:tx.score=0"
SecRule ARGS "@detectSQLi" "id:942100,phase:2,block,capture,t:none,t:urlDecodeUni,msg:'SQL Injection Attack Detected via libinjection',logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}',setvar:'tx.score=+%{tx.critical}',setvar:tx.critical=5"
SecRule ARGS|!ARGS:safe "@rx (?i)<script" "id:941100,phase:2,block,t:none,t:lowercase,setvar:'tx.score=+5'"
SecRule TX:SCORE "@ge %{tx.threshold}" "id:949110,phase:2,deny,status:403,msg:'Inbound Anomaly Score Exceeded (Total Score: %{TX.SCORE})'"
"#,
        );
        let mut t = e.transaction();
        t.add("ARGS", "q", b"shoes");
        assert_eq!(t.run_phase(1), Verdict::Pass);
        assert_eq!(t.run_phase(2), Verdict::Pass);
        assert!(t.matches().is_empty());

        let mut t = e.transaction();
        t.add("ARGS", "safe", b"<SCRIPT>");
        t.add("ARGS", "q", b"<Script>alert(1)");
        t.run_phase(1);
        assert_eq!(t.run_phase(2), Verdict::Deny(403));
        let ids: Vec<u64> = t.matches().iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![941100, 949110]);
        assert_eq!(t.matches()[1].msg, "Inbound Anomaly Score Exceeded (Total Score: 5)");
        assert_eq!(t.matches()[0].variable, "ARGS:q");
    }

    #[test]
    fn chains_counts_skip_after_and_ctl() {
        let e = engine(
            r#"SecRule &ARGS "@gt 2" "id:1,phase:1,deny,status:400"
SecRule REQUEST_METHOD "@streq POST" "id:2,phase:1,pass,chain,msg:'post with x'"
    SecRule ARGS:x "@rx ^bad$" "setvar:tx.flag=1"
SecRule TX:FLAG "@eq 1" "id:3,phase:1,pass,skipAfter:END"
SecRule ARGS "@unconditionalMatch" "id:4,phase:1,deny,status:418"
SecMarker END
SecRule REQUEST_METHOD "@streq DELETE" "id:5,phase:1,pass,ctl:ruleRemoveById=6"
SecRule REQUEST_METHOD "@rx ." "id:6,phase:1,deny,status:405"
"#,
        );
        let mut t = e.transaction();
        for k in ["a", "b", "c"] {
            t.add("ARGS", k, b"1");
        }
        assert_eq!(t.run_phase(1), Verdict::Deny(400));

        let mut t = e.transaction();
        t.add("REQUEST_METHOD", "", b"POST");
        t.add("ARGS", "x", b"bad");
        assert_eq!(t.run_phase(1), Verdict::Deny(405), "rule 4 skipped, rule 6 still runs");
        assert_eq!(t.tx("flag"), Some("1"));
        assert!(t.matches().iter().any(|m| m.id == 2 && m.msg == "post with x"));

        let mut t = e.transaction();
        t.add("REQUEST_METHOD", "", b"DELETE");
        t.add("ARGS", "x", b"fine");
        assert_eq!(t.run_phase(1), Verdict::Deny(418));
    }
}
