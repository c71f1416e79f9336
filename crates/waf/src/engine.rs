//! Rule evaluation: a loaded [`RuleSet`] compiled once into an [`Engine`]
//! (operators built, transformation pipelines resolved, actions sorted into
//! what they do, markers indexed), and a [`Transaction`] per request that
//! holds the request's variables and the `TX` collection, runs the rules of
//! a phase in order and records what matched.
//!
//! A transaction may be tuned before it runs, which is how the gateway
//! applies a route's settings: [`Transaction::set_mode`],
//! [`Transaction::pin_tx`] (a `TX` value the rules cannot change, such as
//! the paranoia level), [`Transaction::remove_rules`] and
//! [`Transaction::remove_target`] (rule exclusions).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap as StdHashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use regex::bytes::Regex;

use crate::operators::{self, Operator};
use crate::seclang::{Action, EngineMode, Rule, RuleSet, Selector, Variable};
use crate::transforms::{self, Transform};

/// A rule ready to run.
struct Compiled {
    meta: Arc<Meta>,
    phase: u8,
    variables: Vec<CompiledVar>,
    operator: Option<(Box<dyn Operator>, bool)>,
    transforms: Vec<Transform>,
    /// Which distinct transformation pipeline this is (0: none), the key of
    /// a transaction's cache of transformed values.
    chain: u32,
    /// `multiMatch`: the operator runs after every transformation.
    multi_match: bool,
    /// `capture`: groups of the match go to `TX:0`-`TX:9`.
    capture: bool,
    setvars: Vec<SetVar>,
    ctls: Vec<Ctl>,
    disruptive: Option<Disruptive>,
    skip_after: Option<String>,
    skip: usize,
    /// Whether a match is logged (`log`, the default, or `nolog`).
    log: bool,
    chained: Option<Box<Compiled>>,
    /// Which of the engine's [`Engine::ctl_tags`] this rule carries, one
    /// bit each: `ctl:ruleRemove...ByTag` then costs a bit test per rule
    /// instead of string comparisons with every tag (CRS removes a target
    /// by tag on most requests).
    tag_mask: u64,
}

/// What a rule says about itself, for logs.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `id`.
    pub id: Option<u64>,
    /// `msg`, macros not expanded.
    pub msg: Option<String>,
    /// `logdata`, macros not expanded.
    pub logdata: Option<String>,
    /// `tag`s.
    pub tags: Vec<String>,
    /// `severity`.
    pub severity: Option<String>,
    /// `ver`.
    pub ver: Option<String>,
    /// The file it was read from.
    pub file: String,
    /// Its line.
    pub line: usize,
}

struct CompiledVar {
    var: Variable,
    key_regex: Option<Regex>,
    /// Indices (in the rule's list) of the exclusions of this collection.
    exclusions: Vec<usize>,
    /// Whether the collection is one of [`STABLE`].
    stable: bool,
    /// Its position in the transaction's variable table.
    index: usize,
    /// `TX:key`: the key in lower case, for a direct lookup.
    tx_key: Option<String>,
}

/// A `setvar`, parsed once: `tx.key=value`, `tx.key=+n`, `tx.key=-n`,
/// `!tx.key`. A name holding a macro is parsed per evaluation.
#[derive(Debug, Clone)]
enum SetVar {
    Parsed { key: String, remove: bool, op: u8, value: String },
    Dynamic(String),
}

impl SetVar {
    fn parse(spec: &str) -> SetVar {
        let (target, value) = match spec.split_once('=') {
            Some((t, v)) => (t.trim(), Some(v)),
            None => (spec.trim(), None),
        };
        if target.contains("%{") {
            return SetVar::Dynamic(spec.to_string());
        }
        let (remove, target) = match target.strip_prefix('!') {
            Some(t) => (true, t),
            None => (false, target),
        };
        let Some(key) = target.to_ascii_lowercase().strip_prefix("tx.").map(str::to_string) else {
            return SetVar::Dynamic(spec.to_string());
        };
        let value = value.unwrap_or("1");
        let (op, value) = match value.as_bytes().first() {
            Some(b'+') => (b'+', &value[1..]),
            Some(b'-') => (b'-', &value[1..]),
            _ => (b'=', value),
        };
        SetVar::Parsed { key, remove, op, value: value.to_string() }
    }
}

/// A disruptive action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Disruptive {
    Deny(u16),
    Drop,
    Allow,
    Redirect(String),
    Pass,
}

/// A `ctl:` action.
#[derive(Debug, Clone)]
enum Ctl {
    RuleEngine(EngineMode),
    RemoveById(Vec<(u64, u64)>),
    RemoveByTag(String),
    RemoveByMsg(String),
    RemoveTarget(RuleSel, Target),
    BodyProcessor(String),
    ForceBodyVariable(bool),
    BodyAccess(bool),
    /// Options that change nothing here (`auditEngine`, `auditLogParts`...).
    Ignored,
}

/// Which rules a target exclusion applies to.
#[derive(Debug, Clone)]
enum RuleSel {
    Ids(Vec<(u64, u64)>),
    Tag(String),
    Msg(String),
}

/// A variable excluded from some rules: name in canonical spelling, key
/// (lower case) or all keys.
#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    key: Option<String>,
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
    mode: EngineMode,
    body_access: bool,
    phases: [bool; 6],
    /// The tags `ctl:ruleRemoveByTag` / `ruleRemoveTargetByTag` name
    /// (the first 64: one bit each in [`Compiled::tag_mask`]).
    ctl_tags: Vec<String>,
    /// `SecArgumentsLimit` (1,000, ModSecurity's recommended value, when
    /// the rule set does not say).
    arguments_limit: usize,
}

/// What a transaction decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Refuse with this status.
    Deny(u16),
    /// Close the connection without an answer.
    Drop,
    /// Send the client elsewhere (302 to this URL).
    Redirect(String),
    /// Stop evaluating and let the request through (`allow`).
    Allow,
}

/// One matched rule, for logs and events.
#[derive(Debug, Clone)]
pub struct Match {
    /// What the rule says about itself.
    pub rule: Arc<Meta>,
    /// The rule's id.
    pub id: u64,
    /// The phase it ran in.
    pub phase: u8,
    /// `msg`, macros expanded.
    pub msg: String,
    /// `logdata`, macros expanded.
    pub data: String,
    /// The variable that matched (`ARGS:q`).
    pub variable: String,
    /// Whether the rule asked to be logged.
    pub log: bool,
    /// Whether this match decided the transaction.
    pub disruptive: bool,
}

impl Engine {
    /// Compiles a loaded rule set.
    pub fn new(set: &RuleSet) -> Result<Self, CompileError> {
        let mut rules = Vec::new();
        let mut phases = [false; 6];
        let mut chains = StdHashMap::new();
        for r in &set.rules {
            let phase = r.action("phase").and_then(|p| crate::seclang::directives::phase_number(p).ok()).unwrap_or(2);
            let defaults = set.default_actions.get(&phase).cloned().unwrap_or_default();
            phases[usize::from(phase.min(5))] = true;
            rules.push(compile(r, &defaults, phase, &mut chains)?);
        }
        let markers = set.markers.iter().map(|(n, at)| (n.clone(), *at)).collect();
        let body_access = set.settings.get("SecRequestBodyAccess").is_none_or(|v| v.eq_ignore_ascii_case("on"));
        let mut ctl_tags: Vec<String> = Vec::new();
        for r in &rules {
            let mut cur = Some(r);
            while let Some(c) = cur {
                for ctl in &c.ctls {
                    if let Ctl::RemoveByTag(t) | Ctl::RemoveTarget(RuleSel::Tag(t), _) = ctl {
                        if !ctl_tags.contains(t) && ctl_tags.len() < 64 {
                            ctl_tags.push(t.clone());
                        }
                    }
                }
                cur = c.chained.as_deref();
            }
        }
        for r in &mut rules {
            let mut cur = Some(r);
            while let Some(c) = cur {
                c.tag_mask = tag_mask(&ctl_tags, &c.meta.tags);
                cur = c.chained.as_deref_mut();
            }
        }
        let arguments_limit = set.settings.get("SecArgumentsLimit").and_then(|v| v.trim().parse().ok()).unwrap_or(1000);
        Ok(Engine { rules, markers, mode: set.engine, body_access, phases, ctl_tags, arguments_limit })
    }

    /// The bit of `tag` in [`Compiled::tag_mask`], 0 for a tag no rule's
    /// `ctl` names (then tags are compared as strings).
    fn tag_bit(&self, tag: &str) -> u64 {
        self.ctl_tags.iter().position(|t| t == tag).map_or(0, |i| 1 << i)
    }

    /// A new transaction.
    pub fn transaction(self: &Arc<Self>) -> Transaction {
        Transaction {
            engine: self.clone(),
            vars: vec![Vec::new(); crate::names::VARIABLES.len()],
            tx: HashMap::with_capacity_and_hasher(128, Default::default()),
            last_matched: Vec::new(),
            current: 0,
            transformed: RefCell::new(HashMap::with_capacity_and_hasher(128, Default::default())),
            pinned: Vec::new(),
            removed: Vec::new(),
            removed_tags: Vec::new(),
            removed_msgs: Vec::new(),
            removed_targets: Vec::new(),
            matches: Vec::new(),
            verdict: Verdict::Pass,
            mode: self.mode,
            body_processor: None,
            force_body_variable: false,
            body_access: self.body_access,
            arguments: 0,
            arguments_limit: self.arguments_limit,
            budget: None,
            over_budget: false,
        }
    }

    /// How many rules (chains counted once).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule runs in `phase` (the gateway reads response bodies
    /// only when phase 4 has rules).
    pub fn has_phase(&self, phase: u8) -> bool {
        self.phases.get(usize::from(phase)).copied().unwrap_or(false)
    }
}

/// Distinct transformation pipelines, numbered from 1.
type Chains = StdHashMap<Vec<usize>, u32>;

/// Whether rule `r` carries `tag`, whose bit is `bit` (0: not one of the
/// engine's ctl tags, compared as a string).
fn has_tag(r: &Compiled, tag: &str, bit: u64) -> bool {
    if bit != 0 {
        r.tag_mask & bit != 0
    } else {
        r.meta.tags.iter().any(|t| t == tag)
    }
}

/// One bit for each of `ctl_tags` that `tags` holds.
fn tag_mask(ctl_tags: &[String], tags: &[String]) -> u64 {
    ctl_tags.iter().enumerate().filter(|(_, t)| tags.contains(t)).fold(0, |m, (i, _)| m | (1 << i))
}

fn compile(r: &Rule, defaults: &[Action], phase: u8, chains: &mut Chains) -> Result<Compiled, CompileError> {
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
        Some(op) if matches!(op.name, "ipMatchFromFile" | "ipMatchF") => {
            let dir =
                std::path::Path::new(&*r.origin.file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            Some((operators::ip_match_from_file(&dir, &op.argument).map_err(err)?, op.negated))
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
            let exclusions =
                r.variables.iter().enumerate().filter(|(_, x)| x.exclude && x.name == v.name).map(|(i, _)| i).collect();
            let index = crate::names::variable_index(v.name).unwrap_or(usize::MAX);
            let tx_key = match &v.selector {
                Some(Selector::Key(k)) if v.name == "TX" => Some(k.to_ascii_lowercase()),
                _ => None,
            };
            Ok(CompiledVar { var: v.clone(), key_regex, exclusions, stable: STABLE.contains(&v.name), index, tx_key })
        })
        .collect::<Result<_, CompileError>>()?;
    let chained = match &r.chained {
        Some(c) => Some(Box::new(compile(c, &[], phase, chains)?)),
        None => None,
    };
    let chain = if transforms.is_empty() {
        0
    } else {
        let key: Vec<usize> = transforms.iter().map(|t| *t as usize).collect();
        let next = u32::try_from(chains.len() + 1).unwrap_or(u32::MAX);
        *chains.entry(key).or_insert(next)
    };
    // The rule's own actions after the defaults: the last one written wins.
    let actions: Vec<&Action> =
        defaults.iter().filter(|a| !matches!(a.name, "t" | "phase")).chain(r.actions.iter()).collect();
    let last = |n: &str| actions.iter().rev().find(|a| a.name == n).and_then(|a| a.value.clone());
    let default_disruptive = defaults.iter().rev().find(|a| is_disruptive(a.name)).map(|a| a.name);
    let status = last("status").and_then(|s| s.parse().ok());
    let disruptive = actions.iter().rev().find(|a| is_disruptive(a.name)).and_then(|a| {
        // `block` does what the phase's default action does.
        let name = if a.name == "block" { default_disruptive? } else { a.name };
        Some(match name {
            "deny" => Disruptive::Deny(status.unwrap_or(403)),
            "drop" => Disruptive::Drop,
            "allow" => Disruptive::Allow,
            "redirect" => Disruptive::Redirect(a.value.clone().unwrap_or_default()),
            _ => Disruptive::Pass,
        })
    });
    let ctls = r
        .actions
        .iter()
        .filter(|a| a.name == "ctl")
        .map(|a| parse_ctl(a.value.as_deref().unwrap_or("")).map_err(&err))
        .collect::<Result<_, _>>()?;
    let meta = Meta {
        id: r.id(),
        msg: last("msg"),
        logdata: last("logdata"),
        tags: r.actions_named("tag").map(str::to_string).collect(),
        severity: last("severity"),
        ver: last("ver"),
        file: r.origin.file.to_string(),
        line: r.origin.line,
    };
    Ok(Compiled {
        meta: Arc::new(meta),
        tag_mask: 0,
        phase,
        variables,
        operator,
        transforms,
        chain,
        multi_match: actions.iter().any(|a| a.name == "multiMatch"),
        capture: actions.iter().any(|a| a.name == "capture"),
        setvars: r
            .actions
            .iter()
            .filter(|a| a.name == "setvar")
            .filter_map(|a| a.value.as_deref())
            .map(SetVar::parse)
            .collect(),
        ctls,
        disruptive,
        skip_after: last("skipAfter"),
        skip: last("skip").and_then(|s| s.parse().ok()).unwrap_or(0),
        log: actions.iter().rev().find(|a| matches!(a.name, "log" | "nolog")).is_none_or(|a| a.name == "log"),
        chained,
    })
}

fn is_disruptive(name: &str) -> bool {
    matches!(name, "deny" | "block" | "drop" | "pass" | "allow" | "redirect")
}

fn id_ranges(text: &str) -> Vec<(u64, u64)> {
    text.split([' ', ','])
        .filter(|p| !p.is_empty())
        .filter_map(|part| {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
        })
        .collect()
}

fn parse_target(text: &str) -> Result<Target, String> {
    let v = crate::seclang::rule::parse_variables(text)?;
    let [v] = <[Variable; 1]>::try_from(v).map_err(|_| format!("one target expected, got `{text}`"))?;
    let key = match v.selector {
        Some(Selector::Key(k)) => Some(k.to_ascii_lowercase()),
        Some(Selector::Regex(_)) => return Err(format!("regex targets are not supported in ctl: `{text}`")),
        None => None,
    };
    Ok(Target { name: v.name, key })
}

fn parse_ctl(text: &str) -> Result<Ctl, String> {
    let (option, value) = text.split_once('=').ok_or_else(|| format!("ctl:{text}: expected OPTION=VALUE"))?;
    let on = |v: &str| v.eq_ignore_ascii_case("on");
    let target = |v: &str| -> Result<(String, Target), String> {
        let (sel, t) = v.split_once(';').ok_or_else(|| format!("ctl:{text}: expected RULE;TARGET"))?;
        Ok((sel.to_string(), parse_target(t)?))
    };
    Ok(match option {
        "ruleEngine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            _ => return Err(format!("ctl:ruleEngine={value}: expected On, Off or DetectionOnly")),
        }),
        "ruleRemoveById" => Ctl::RemoveById(id_ranges(value)),
        "ruleRemoveByTag" => Ctl::RemoveByTag(value.to_string()),
        "ruleRemoveByMsg" => Ctl::RemoveByMsg(value.to_string()),
        "ruleRemoveTargetById" => {
            let (sel, t) = target(value)?;
            Ctl::RemoveTarget(RuleSel::Ids(id_ranges(&sel)), t)
        }
        "ruleRemoveTargetByTag" => {
            let (sel, t) = target(value)?;
            Ctl::RemoveTarget(RuleSel::Tag(sel), t)
        }
        "ruleRemoveTargetByMsg" => {
            let (sel, t) = target(value)?;
            Ctl::RemoveTarget(RuleSel::Msg(sel), t)
        }
        "requestBodyProcessor" => Ctl::BodyProcessor(value.to_ascii_uppercase()),
        "forceRequestBodyVariable" => Ctl::ForceBodyVariable(on(value)),
        "requestBodyAccess" => Ctl::BodyAccess(on(value)),
        "auditEngine" | "auditLogParts" | "debugLogLevel" | "responseBodyAccess" | "requestBodyLimit"
        | "hashEngine" | "hashEnforcement" | "parseXmlIntoArgs" => Ctl::Ignored,
        _ => return Err(format!("ctl:{option} is not supported")),
    })
}

/// Collections that are only ever appended to during a transaction, so a
/// (collection, index) names the same value throughout.
const STABLE: &[&str] = &[
    "ARGS",
    "ARGS_GET",
    "ARGS_GET_NAMES",
    "ARGS_NAMES",
    "ARGS_POST",
    "ARGS_POST_NAMES",
    "FILES",
    "FILES_NAMES",
    "MULTIPART_PART_HEADERS",
    "QUERY_STRING",
    "REQUEST_BASENAME",
    "REQUEST_BODY",
    "REQUEST_COOKIES",
    "REQUEST_COOKIES_NAMES",
    "REQUEST_FILENAME",
    "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "XML",
];

/// Transformed values by (collection, index, pipeline); `None` when the
/// pipeline left the value unchanged.
type TransformCache = HashMap<(usize, usize, u32), Option<Vec<u8>>>;

/// One request's evaluation state.
pub struct Transaction {
    engine: Arc<Engine>,
    /// Request variables: name to (key, value) pairs.
    vars: Vec<Vec<(String, Vec<u8>)>>,
    tx: HashMap<String, String>,
    /// Transformed request values, by (collection, index, pipeline): CRS
    /// runs the same pipelines over the same values in rule after rule.
    transformed: RefCell<TransformCache>,
    /// What the last matching rule matched: (variable name, value).
    last_matched: Vec<(String, Vec<u8>)>,
    /// Which of them is MATCHED_VAR now.
    current: usize,
    pinned: Vec<String>,
    removed: Vec<(u64, u64)>,
    /// Tags removed by `ctl`, with their bit (0: compared as strings).
    removed_tags: Vec<(String, u64)>,
    removed_msgs: Vec<String>,
    /// Targets removed by `ctl` or the route, with the tag's bit for a
    /// removal by tag.
    removed_targets: Vec<(RuleSel, Target, u64)>,
    matches: Vec<Match>,
    verdict: Verdict,
    mode: EngineMode,
    body_processor: Option<String>,
    force_body_variable: bool,
    body_access: bool,
    /// Arguments (ARGS) added so far, and how many are inspected at most.
    arguments: usize,
    arguments_limit: usize,
    /// The longest one phase may take, and whether one took longer (the
    /// rest of its rules did not run).
    budget: Option<std::time::Duration>,
    over_budget: bool,
}

impl Transaction {
    /// At most `n` arguments are taken; more makes
    /// [`Transaction::arguments_exceeded`] true.
    pub fn set_arguments_limit(&mut self, n: usize) {
        self.arguments_limit = n;
    }

    /// Each phase stops after `budget`: a request whose inspection would
    /// take longer is not let through half-inspected; the caller refuses
    /// it when [`Transaction::over_budget`] says so.
    pub fn set_budget(&mut self, budget: std::time::Duration) {
        self.budget = Some(budget);
    }

    /// Whether a phase ran out of its budget before its last rule.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// Arguments (and cookies) counted so far.
    pub fn arguments(&self) -> usize {
        self.arguments
    }

    /// The most arguments taken.
    pub fn arguments_limit(&self) -> usize {
        self.arguments_limit
    }

    /// How many more arguments may be added.
    pub fn arguments_left(&self) -> usize {
        self.arguments_limit.saturating_sub(self.arguments)
    }

    /// Whether the request carried more arguments than the limit (those
    /// past it were not added: the request must not be let through as if
    /// inspected).
    pub fn arguments_exceeded(&self) -> bool {
        self.arguments > self.arguments_limit
    }

    /// Counts one argument; `false` when it is past the limit.
    pub(crate) fn count_argument(&mut self) -> bool {
        self.arguments = self.arguments.saturating_add(1);
        self.arguments <= self.arguments_limit
    }

    /// Adds a value to a collection (`ARGS`, key `q`) or sets a single
    /// variable (`REQUEST_METHOD`, key empty).
    pub fn add(&mut self, name: &'static str, key: &str, value: &[u8]) {
        if let Some(slot) = crate::names::variable_index(name).and_then(|i| self.vars.get_mut(i)) {
            slot.push((key.to_string(), value.to_vec()));
        }
    }

    /// Replaces a variable's values with one value.
    pub fn set(&mut self, name: &'static str, value: &[u8]) {
        if let Some(slot) = crate::names::variable_index(name).and_then(|i| self.vars.get_mut(i)) {
            *slot = vec![(String::new(), value.to_vec())];
        }
    }

    /// A variable's first value.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.vars.get(crate::names::variable_index(name)?).and_then(|v| v.first()).map(|(_, v)| v.as_slice())
    }

    /// A `TX` variable.
    pub fn tx(&self, key: &str) -> Option<&str> {
        self.tx.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    /// Sets a `TX` variable that no rule can change afterwards: the
    /// gateway's paranoia level and thresholds win over the rule set's
    /// defaults.
    pub fn pin_tx(&mut self, key: &str, value: &str) {
        let key = key.to_ascii_lowercase();
        self.tx.insert(key.clone(), value.to_string());
        self.pinned.push(key);
    }

    /// Runs the rules in this mode rather than the rule set's
    /// `SecRuleEngine`.
    pub fn set_mode(&mut self, mode: EngineMode) {
        self.mode = mode;
    }

    /// The mode now (a rule may change it with `ctl:ruleEngine`).
    pub fn mode(&self) -> EngineMode {
        self.mode
    }

    /// Leaves the rules with ids in `lo..=hi` out of this transaction.
    pub fn remove_rules(&mut self, lo: u64, hi: u64) {
        self.removed.push((lo, hi));
    }

    /// Leaves `target` (`ARGS:password`, `REQUEST_COOKIES`) out of the rules
    /// with ids in `lo..=hi`.
    pub fn remove_target(&mut self, lo: u64, hi: u64, target: &str) -> Result<(), String> {
        let t = parse_target(target)?;
        self.removed_targets.push((RuleSel::Ids(vec![(lo, hi)]), t, 0));
        Ok(())
    }

    /// The body processor rules asked for (`ctl:requestBodyProcessor`).
    pub fn body_processor(&self) -> Option<&str> {
        self.body_processor.as_deref()
    }

    /// Whether `REQUEST_BODY` is filled whatever the processor.
    pub fn force_body_variable(&self) -> bool {
        self.force_body_variable
    }

    /// Whether the request body is inspected at all.
    pub fn body_access(&self) -> bool {
        self.body_access
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
        if self.mode == EngineMode::Off || !self.engine.has_phase(phase) {
            return self.verdict.clone();
        }
        let engine = self.engine.clone();
        let rules = &engine.rules;
        let deadline = self.budget.map(|b| std::time::Instant::now() + b);
        let mut i = 0;
        while i < rules.len() && self.verdict == Verdict::Pass {
            let r = &rules[i];
            i += 1;
            // The clock is read every eighth rule: cheap, and no rule
            // runs long on values the limits have already bounded.
            if i % 8 == 0 && deadline.is_some_and(|d| std::time::Instant::now() > d) {
                self.over_budget = true;
                break;
            }
            if r.phase != phase || self.is_removed(r) {
                continue;
            }
            let Some(matched) = self.evaluate(r) else { continue };
            let mut cur = r;
            let mut last = matched;
            let mut all = true;
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
            self.act(r, phase, &last);
            if let Some(at) = r.skip_after.as_ref().and_then(|m| engine.markers.get(m)) {
                i = i.max(*at);
            } else if r.skip > 0 {
                // `skip:N` jumps over the next N rules of this phase.
                let mut n = r.skip;
                while n > 0 && i < rules.len() {
                    if rules[i].phase == phase {
                        n -= 1;
                    }
                    i += 1;
                }
            }
        }
        self.verdict.clone()
    }

    fn is_removed(&self, r: &Compiled) -> bool {
        let meta = &r.meta;
        if let Some(id) = meta.id {
            if self.removed.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id)) {
                return true;
            }
        }
        self.removed_tags.iter().any(|(tag, bit)| has_tag(r, tag, *bit))
            || (!self.removed_msgs.is_empty() && meta.msg.as_ref().is_some_and(|m| self.removed_msgs.contains(m)))
    }

    /// Target exclusions that apply to rule `r`.
    fn excluded_targets(&self, r: &Compiled) -> Vec<&Target> {
        let meta = &r.meta;
        self.removed_targets
            .iter()
            .filter(|(sel, _, bit)| match sel {
                RuleSel::Ids(ranges) => {
                    meta.id.is_some_and(|id| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id)))
                }
                RuleSel::Tag(t) => has_tag(r, t, *bit),
                RuleSel::Msg(m) => meta.msg.as_deref() == Some(m.as_str()),
            })
            .map(|(_, t, _)| t)
            .collect()
    }

    /// Evaluates one rule's operator over its variables; on a match, runs
    /// its `setvar`s and returns the last matched variable's name.
    fn evaluate(&mut self, r: &Compiled) -> Option<String> {
        let Some((op, negated)) = &r.operator else {
            self.side_effects(r);
            return Some(String::new());
        };
        // Every target is tried (not just up to the first match): a chained
        // rule may inspect all of them through MATCHED_VARS. Side effects
        // run after the operator has seen every target.
        // Each match keeps its own capture groups: the rule's actions run
        // once per matched value, seeing that value's TX:0-9 (CRS 920450
        // records every header name this way).
        let mut matched: Vec<(String, Vec<u8>)> = Vec::new();
        let mut captures: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        {
            let this = &*self;
            let lookup = |k: &str| this.macro_value(k);
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
            let excluded = if this.removed_targets.is_empty() { Vec::new() } else { this.excluded_targets(r) };
            this.for_each_target(r, &excluded, |name, key, value, slot| {
                let mut captured = None;
                let mut v: Cow<'_, [u8]> = Cow::Borrowed(value);
                let mut hit;
                let cache_key = slot.filter(|_| r.chain != 0 && !r.multi_match).map(|(c, i)| (c, i, r.chain));
                if let Some(k) = cache_key {
                    // The cache holds `None` for a value the pipeline leaves
                    // unchanged: no copy at all.
                    {
                        let cache = this.transformed.borrow();
                        if let Some(t) = cache.get(&k) {
                            let t = t.as_deref().unwrap_or(value);
                            if test(t, &mut captured) {
                                let name = if key.is_empty() { name.to_string() } else { format!("{name}:{key}") };
                                matched.push((name, t.to_vec()));
                                captures.push(captured);
                            }
                            return;
                        }
                    }
                    let mut t: Cow<'_, [u8]> = Cow::Borrowed(value);
                    for f in &r.transforms {
                        if let Cow::Owned(next) = f(&t) {
                            t = Cow::Owned(next);
                        }
                    }
                    if test(&t, &mut captured) {
                        let name = if key.is_empty() { name.to_string() } else { format!("{name}:{key}") };
                        matched.push((name, t.to_vec()));
                        captures.push(captured);
                    }
                    let stored = match t {
                        Cow::Borrowed(_) => None,
                        Cow::Owned(v) => Some(v),
                    };
                    this.transformed.borrow_mut().insert(k, stored);
                    return;
                }
                // multiMatch: the operator also sees the value before the
                // transformations and after each one that changed it.
                if r.multi_match {
                    hit = test(&v, &mut captured);
                    if !hit {
                        for t in &r.transforms {
                            // A transformation that changed nothing returns
                            // its input borrowed: nothing new to test.
                            let Cow::Owned(next) = t(&v) else { continue };
                            v = Cow::Owned(next);
                            if test(&v, &mut captured) {
                                hit = true;
                                break;
                            }
                        }
                    }
                } else {
                    for t in &r.transforms {
                        if let Cow::Owned(next) = t(&v) {
                            v = Cow::Owned(next);
                        }
                    }
                    hit = test(&v, &mut captured);
                }
                if hit {
                    // As ModSecurity: MATCHED_VAR(S) hold the transformed
                    // value, which is what chained rules (CRS 944120) expect.
                    let name = if key.is_empty() { name.to_string() } else { format!("{name}:{key}") };
                    matched.push((name, v.into_owned()));
                    captures.push(captured);
                }
            });
        }
        if matched.is_empty() {
            return None;
        }
        // MATCHED_VAR(S) are read from the last match list, kept as is
        // (no copies into collections); the actions run once per matched
        // value, seeing that value as MATCHED_VAR.
        self.last_matched = matched;
        for (i, captured) in captures.into_iter().enumerate() {
            if let Some(groups) = captured {
                for (n, g) in groups.iter().enumerate() {
                    self.tx.insert(n.to_string(), String::from_utf8_lossy(g).into_owned());
                }
            }
            self.current = i;
            self.side_effects(r);
        }
        self.current = self.last_matched.len() - 1;
        self.last_matched.last().map(|(n, _)| n.clone())
    }

    /// Calls `f(variable, key, value, slot)` for every value a rule's
    /// variable list selects (counts as one value each), without copying.
    /// `slot` names a request value that never changes during the
    /// transaction (collection and index), which may be cached.
    fn for_each_target(
        &self,
        r: &Compiled,
        excluded: &[&Target],
        mut f: impl FnMut(&str, &str, &[u8], Option<(usize, usize)>),
    ) {
        let kept = |cv: &CompiledVar, name: &str, key: &str| {
            (excluded.is_empty()
                || !excluded
                    .iter()
                    .any(|t| t.name == name && t.key.as_deref().is_none_or(|k| k.eq_ignore_ascii_case(key))))
                && !cv.exclusions.iter().any(|&i| {
                    let x = &r.variables[i];
                    match (&x.var.selector, &x.key_regex) {
                        (Some(Selector::Key(ex)), _) => key.eq_ignore_ascii_case(ex),
                        (Some(Selector::Regex(_)), Some(re)) => re.is_match(key.as_bytes()),
                        _ => true,
                    }
                })
        };
        let selects = |cv: &CompiledVar, key: &str| match (&cv.var.selector, &cv.key_regex) {
            (Some(Selector::Key(want)), _) => key.eq_ignore_ascii_case(want),
            (Some(Selector::Regex(_)), Some(re)) => re.is_match(key.as_bytes()),
            _ => true,
        };
        for cv in r.variables.iter().filter(|v| !v.var.exclude) {
            let name = cv.var.name;
            // `TX:key`: one lookup, not a scan of every TX variable (CRS
            // reads dozens of them by name in every transaction).
            if let Some(k) = &cv.tx_key {
                let found = self.tx.get_key_value(k.as_str()).filter(|(key, _)| kept(cv, name, key));
                if cv.var.count {
                    f(&format!("&{name}"), "", if found.is_some() { b"1" } else { b"0" }, None);
                } else if let Some((key, v)) = found {
                    f(name, key, v.as_bytes(), None);
                }
                continue;
            }
            if cv.var.count {
                let n = if name == "TX" {
                    self.tx.keys().filter(|k| selects(cv, k) && kept(cv, name, k)).count()
                } else {
                    self.vars
                        .get(cv.index)
                        .map_or(0, |vs| vs.iter().filter(|(k, _)| selects(cv, k) && kept(cv, name, k)).count())
                };
                f(&format!("&{name}"), "", n.to_string().as_bytes(), None);
                continue;
            }
            if name == "TX" {
                for (k, v) in &self.tx {
                    if selects(cv, k) && kept(cv, name, k) {
                        f(name, k, v.as_bytes(), None);
                    }
                }
            } else if name.starts_with("MATCHED_VAR") {
                let list = &self.last_matched;
                let current = list.get(self.current);
                match name {
                    "MATCHED_VARS" => {
                        for (n, v) in list.iter().filter(|(n, _)| selects(cv, n) && kept(cv, name, n)) {
                            f(name, n, v, None);
                        }
                    }
                    "MATCHED_VARS_NAMES" => {
                        for (n, _) in list.iter().filter(|(n, _)| selects(cv, n) && kept(cv, name, n)) {
                            f(name, n, n.as_bytes(), None);
                        }
                    }
                    "MATCHED_VAR" => {
                        if let Some((_, v)) = current {
                            f(name, "", v, None);
                        }
                    }
                    _ => {
                        if let Some((n, _)) = current {
                            f(name, "", n.as_bytes(), None);
                        }
                    }
                }
            } else if let Some(values) = self.vars.get(cv.index) {
                for (i, (k, v)) in values.iter().enumerate() {
                    if selects(cv, k) && kept(cv, name, k) {
                        f(name, k, v, cv.stable.then_some((name.as_ptr() as usize, i)));
                    }
                }
            }
        }
    }

    /// The value of a macro: `tx.x`, `request_headers.host`, `matched_var`,
    /// `remote_addr`...
    fn macro_value(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        if let Some(rest) = k.strip_prefix("tx.") {
            return self.tx.get(rest).cloned();
        }
        if k == "matched_var" || k == "matched_var_name" {
            let (n, v) = self.last_matched.get(self.current)?;
            return Some(if k == "matched_var" { String::from_utf8_lossy(v).into_owned() } else { n.clone() });
        }
        let (coll, sub) = match k.split_once('.') {
            Some((c, s)) => (c.to_ascii_uppercase(), Some(s)),
            None => (k.to_ascii_uppercase(), None),
        };
        let values = self.vars.get(crate::names::variable_index(&coll)?)?;
        let found = match sub {
            Some(s) => values.iter().find(|(key, _)| key.eq_ignore_ascii_case(s)),
            None => values.first(),
        };
        found.map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// `text` with its macros expanded.
    fn expand(&self, text: &str) -> String {
        if !text.contains("%{") {
            return text.to_string();
        }
        operators::expand(text, &|k: &str| self.macro_value(k))
    }

    /// The `setvar`s of a matching rule.
    fn side_effects(&mut self, r: &Compiled) {
        for sv in &r.setvars {
            match sv {
                SetVar::Parsed { key, remove, op, value } => {
                    let value = if value.contains("%{") {
                        Cow::Owned(self.expand(value))
                    } else {
                        Cow::Borrowed(value.as_str())
                    };
                    self.assign(key, *remove, *op, &value);
                }
                SetVar::Dynamic(spec) => {
                    let spec = self.expand(spec);
                    if let SetVar::Parsed { key, remove, op, value } = SetVar::parse(&spec) {
                        self.assign(&key, remove, op, &value);
                    }
                }
            }
        }
    }

    fn assign(&mut self, key: &str, remove: bool, op: u8, value: &str) {
        if !self.pinned.is_empty() && self.pinned.iter().any(|p| p == key) {
            return;
        }
        if remove {
            self.tx.remove(key);
            return;
        }
        let new = match op {
            b'+' | b'-' => {
                let current = self.tx.get(key).map_or(0, |v| operators::numeric_value(v.as_bytes()));
                let n = operators::numeric_value(value.as_bytes());
                (if op == b'+' { current + n } else { current - n }).to_string()
            }
            _ => value.to_string(),
        };
        match self.tx.get_mut(key) {
            Some(slot) => *slot = new,
            None => {
                self.tx.insert(key.to_string(), new);
            }
        }
    }

    /// The actions of a fully matched rule (or chain): logging, ctl,
    /// disruptive decision.
    fn act(&mut self, r: &Compiled, phase: u8, variable: &str) {
        for c in r.ctls.iter().chain(r.chained.iter().flat_map(|c| chain_ctls(c))) {
            self.ctl(c);
        }
        let decided = match r.disruptive.as_ref().filter(|_| self.mode == EngineMode::On) {
            Some(Disruptive::Deny(s)) => Some(Verdict::Deny(*s)),
            Some(Disruptive::Drop) => Some(Verdict::Drop),
            Some(Disruptive::Redirect(url)) => Some(Verdict::Redirect(self.expand(url))),
            Some(Disruptive::Allow) => Some(Verdict::Allow),
            Some(Disruptive::Pass) | None => None,
        };
        if let Some(id) = r.meta.id {
            let expand = |t: &Option<String>| t.as_deref().map(|m| self.expand(m)).unwrap_or_default();
            let m = Match {
                rule: r.meta.clone(),
                id,
                phase,
                msg: expand(&r.meta.msg),
                data: expand(&r.meta.logdata),
                variable: variable.to_string(),
                log: r.log,
                disruptive: matches!(decided, Some(Verdict::Deny(_) | Verdict::Drop | Verdict::Redirect(_))),
            };
            self.matches.push(m);
        }
        if let Some(v) = decided {
            self.verdict = v;
        }
    }

    fn ctl(&mut self, c: &Ctl) {
        match c {
            Ctl::RuleEngine(m) => self.mode = *m,
            Ctl::RemoveById(r) => self.removed.extend(r.iter().copied()),
            Ctl::RemoveByTag(t) => self.removed_tags.push((t.clone(), self.engine.tag_bit(t))),
            Ctl::RemoveByMsg(m) => self.removed_msgs.push(m.clone()),
            Ctl::RemoveTarget(sel, t) => {
                let bit = if let RuleSel::Tag(tag) = sel { self.engine.tag_bit(tag) } else { 0 };
                self.removed_targets.push((sel.clone(), t.clone(), bit));
            }
            Ctl::BodyProcessor(p) => self.body_processor = Some(p.clone()),
            Ctl::ForceBodyVariable(on) => self.force_body_variable = *on,
            Ctl::BodyAccess(on) => self.body_access = *on,
            Ctl::Ignored => {}
        }
    }
}

/// The `ctl`s written on the chained rules of a chain (they apply once the
/// whole chain matched).
fn chain_ctls(c: &Compiled) -> Box<dyn Iterator<Item = &Ctl> + '_> {
    Box::new(c.ctls.iter().chain(c.chained.iter().flat_map(|n| chain_ctls(n))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seclang::load_str;

    fn engine(rules: &str) -> Arc<Engine> {
        Arc::new(Engine::new(&load_str(rules, "t.conf").unwrap()).unwrap())
    }

    #[test]
    fn a_phase_stops_at_its_budget_and_says_so() {
        let rules: String = (1..=64)
            .map(|i| format!("SecRule ARGS \"@rx (?:a|b)+c\" \"id:{i},phase:2,pass,t:none,t:lowercase,t:urlDecode\"\n"))
            .collect();
        let e = engine(&rules);
        let mut t = e.transaction();
        t.add("ARGS", "q", "ab".repeat(200_000).as_bytes());
        t.set_budget(std::time::Duration::ZERO);
        t.run_phase(2);
        assert!(t.over_budget());
        let mut t = e.transaction();
        t.add("ARGS", "q", b"abc");
        t.run_phase(2);
        assert!(!t.over_budget());
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
        assert!(t.matches().iter().all(|m| !m.log), "only the nolog setup rule");

        let mut t = e.transaction();
        t.add("ARGS", "safe", b"<SCRIPT>");
        t.add("ARGS", "q", b"<Script>alert(1)");
        t.run_phase(1);
        assert_eq!(t.run_phase(2), Verdict::Deny(403));
        let logged: Vec<&Match> = t.matches().iter().filter(|m| m.log).collect();
        let ids: Vec<u64> = logged.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![941100, 949110]);
        assert_eq!(logged[1].msg, "Inbound Anomaly Score Exceeded (Total Score: 5)");
        assert!(logged[1].disruptive);
        assert_eq!(logged[0].variable, "ARGS:q");

        // The same attack in detection-only mode: matched, not refused.
        let mut t = e.transaction();
        t.set_mode(EngineMode::DetectionOnly);
        t.add("ARGS", "q", b"<Script>alert(1)");
        t.run_phase(1);
        assert_eq!(t.run_phase(2), Verdict::Pass);
        assert!(t.matches().iter().any(|m| m.id == 949110));

        // A pinned threshold wins over the rule set's own.
        let mut t = e.transaction();
        t.pin_tx("threshold", "10");
        t.add("ARGS", "q", b"<Script>alert(1)");
        t.run_phase(1);
        assert_eq!(t.run_phase(2), Verdict::Pass);
    }

    #[test]
    fn chains_counts_skips_and_ctl() {
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

    #[test]
    fn target_and_tag_removal_block_default_and_skip() {
        let e = engine(
            r#"SecDefaultAction "phase:2,log,deny,status:406"
SecRule REQUEST_HEADERS:X-Off "@streq 1" "id:1,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=sqli;ARGS:password,ctl:ruleRemoveByTag=noisy"
SecRule ARGS "@rx drop" "id:2,phase:2,block,tag:sqli"
SecRule ARGS "@rx noisy" "id:3,phase:2,block,tag:noisy"
SecRule ARGS "@rx skipme" "id:4,phase:2,pass,skip:1"
SecRule ARGS "@rx ." "id:5,phase:2,deny,status:409"
"#,
        );
        let run = |off: bool, args: &[(&str, &str)]| {
            let mut t = e.transaction();
            if off {
                t.add("REQUEST_HEADERS", "X-Off", b"1");
            }
            for (k, v) in args {
                t.add("ARGS", k, v.as_bytes());
            }
            t.run_phase(1);
            t.run_phase(2)
        };
        assert_eq!(run(false, &[("password", "drop")]), Verdict::Deny(406), "block takes the default's deny");
        assert_eq!(run(true, &[("password", "drop")]), Verdict::Deny(409), "password no longer seen by 2");
        assert_eq!(run(true, &[("user", "drop")]), Verdict::Deny(406));
        assert_eq!(run(true, &[("a", "noisy")]), Verdict::Deny(409), "rule 3 removed by tag");
        assert_eq!(run(false, &[("a", "skipme")]), Verdict::Pass, "skip:1 jumps over rule 5");

        let mut t = e.transaction();
        t.remove_target(2, 2, "ARGS:password").unwrap();
        t.remove_rules(5, 5);
        t.add("ARGS", "password", b"drop");
        t.run_phase(1);
        assert_eq!(t.run_phase(2), Verdict::Pass);
    }

    #[test]
    fn unsupported_ctl_is_a_compile_error() {
        let set = load_str(r#"SecAction "id:1,phase:1,pass,ctl:frobnicate=On""#, "t.conf").unwrap();
        let e = Engine::new(&set).err().unwrap();
        assert!(e.to_string().contains("ctl:frobnicate"), "{e}");
    }
}
