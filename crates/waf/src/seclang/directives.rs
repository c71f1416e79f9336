//! The second layer: what each directive means, one function each, and the
//! table that dispatches on the name (case-insensitive, as ModSecurity).

use super::parser::{snippet, Directive};
use super::rule::{self, Rule, Variable};
use super::{EngineMode, ParseError, RuleSet};

type Handler = fn(&mut RuleSet, &Directive) -> Result<(), String>;

/// Directives with their own meaning, alphabetical.
const TABLE: &[(&str, Handler)] = &[
    ("SecAction", sec_action),
    ("SecComponentSignature", sec_component_signature),
    ("SecDefaultAction", sec_default_action),
    ("SecMarker", sec_marker),
    ("SecRule", sec_rule),
    ("SecRuleEngine", sec_rule_engine),
    ("SecRuleRemoveById", sec_rule_remove_by_id),
    ("SecRuleRemoveByMsg", sec_rule_remove_by_msg),
    ("SecRuleRemoveByTag", sec_rule_remove_by_tag),
    ("SecRuleUpdateActionById", sec_rule_update_action_by_id),
    ("SecRuleUpdateTargetById", sec_rule_update_target_by_id),
    ("SecRuleUpdateTargetByTag", sec_rule_update_target_by_tag),
];

/// Engine settings kept by name for the engine to read: (directive, kind
/// of value).
const SETTINGS: &[(&str, Value)] = &[
    ("SecArgumentSeparator", Value::Text),
    ("SecArgumentsLimit", Value::Number),
    ("SecAuditEngine", Value::Text),
    ("SecAuditLog", Value::Text),
    ("SecAuditLog2", Value::Text),
    ("SecAuditLogDirMode", Value::Text),
    ("SecAuditLogFileMode", Value::Text),
    ("SecAuditLogFormat", Value::Text),
    ("SecAuditLogParts", Value::Text),
    ("SecAuditLogRelevantStatus", Value::Text),
    ("SecAuditLogStorageDir", Value::Text),
    ("SecAuditLogType", Value::Text),
    ("SecCollectionTimeout", Value::Number),
    ("SecCookieFormat", Value::Number),
    ("SecDataDir", Value::Text),
    ("SecDebugLog", Value::Text),
    ("SecDebugLogLevel", Value::Number),
    ("SecHttpBlKey", Value::Text),
    ("SecPcreMatchLimit", Value::Number),
    ("SecPcreMatchLimitRecursion", Value::Number),
    ("SecRequestBodyAccess", Value::OnOff),
    ("SecRequestBodyInMemoryLimit", Value::Number),
    ("SecRequestBodyJsonDepthLimit", Value::Number),
    ("SecRequestBodyLimit", Value::Number),
    ("SecRequestBodyLimitAction", Value::Text),
    ("SecRequestBodyNoFilesLimit", Value::Number),
    ("SecResponseBodyAccess", Value::OnOff),
    ("SecResponseBodyLimit", Value::Number),
    ("SecResponseBodyLimitAction", Value::Text),
    ("SecResponseBodyMimeType", Value::List),
    ("SecResponseBodyMimeTypesClear", Value::Text),
    ("SecServerSignature", Value::Text),
    ("SecStatusEngine", Value::Text),
    ("SecTmpDir", Value::Text),
    ("SecTmpSaveUploadedFiles", Value::OnOff),
    ("SecUnicodeMapFile", Value::List),
    ("SecUploadDir", Value::Text),
    ("SecUploadFileLimit", Value::Number),
    ("SecUploadFileMode", Value::Text),
    ("SecUploadKeepFiles", Value::Text),
    ("SecWebAppId", Value::Text),
    ("SecXmlExternalEntity", Value::OnOff),
];

#[derive(Clone, Copy)]
enum Value {
    Text,
    Number,
    OnOff,
    List,
}

/// Applies one directive to the set.
pub fn apply(set: &mut RuleSet, d: Directive) -> Result<(), ParseError> {
    let err = |message: String| ParseError {
        file: d.origin.file.to_string(),
        line: d.origin.line,
        text: snippet(&d.text),
        message,
    };
    if let Some((_, handler)) = TABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(&d.name)) {
        return handler(set, &d).map_err(err);
    }
    if let Some((name, kind)) = SETTINGS.iter().find(|(n, _)| n.eq_ignore_ascii_case(&d.name)) {
        let value = d.args.join(" ");
        let ok = match kind {
            Value::Text => d.args.len() == 1,
            Value::List => !d.args.is_empty(),
            Value::Number => d.args.len() == 1 && value.parse::<u64>().is_ok(),
            Value::OnOff => matches!(value.to_ascii_lowercase().as_str(), "on" | "off"),
        };
        if !ok {
            let want = match kind {
                Value::Text => "one value",
                Value::List => "at least one value",
                Value::Number => "a non-negative integer",
                Value::OnOff => "On or Off",
            };
            return Err(err(format!("{name} expects {want}, got {value:?}")));
        }
        set.settings.insert((*name).to_string(), value);
        return Ok(());
    }
    Err(err(format!("unknown directive \"{}\"", d.name)))
}

/// Checks that apply to the whole set once loaded.
pub fn finish(set: &RuleSet) -> Result<(), ParseError> {
    if let Some(last) = set.rules.last() {
        let mut r = last;
        while let Some(next) = &r.chained {
            r = next;
        }
        if r.chains() {
            return Err(ParseError {
                file: r.origin.file.to_string(),
                line: r.origin.line,
                text: String::new(),
                message: "the last rule says `chain` but no rule follows".into(),
            });
        }
    }
    Ok(())
}

fn args<const N: usize>(d: &Directive) -> Result<[&str; N], String> {
    let v: Vec<&str> = d.args.iter().map(String::as_str).collect();
    v.try_into().map_err(|v: Vec<&str>| format!("{} takes {N} argument(s), got {}", d.name, v.len()))
}

/// Whether the previous rule's chain is open, so this rule continues it.
fn open_chain(set: &mut RuleSet) -> Option<&mut Rule> {
    let last = set.rules.last_mut()?;
    let end = last.chain_end();
    end.chains().then_some(end)
}

fn add_rule(set: &mut RuleSet, rule: Rule) -> Result<(), String> {
    if let Some(end) = open_chain(set) {
        if rule.id().is_some() {
            return Err("a chained rule must not have an id".into());
        }
        end.chained = Some(Box::new(rule));
        return Ok(());
    }
    let id = rule.id().ok_or("a rule needs an id (id:N)")?;
    if set.rules.iter().any(|r| r.id() == Some(id)) {
        return Err(format!("id {id} is used twice"));
    }
    if let Some(p) = rule.action("phase") {
        phase_number(p)?;
    }
    set.rules.push(rule);
    Ok(())
}

/// `phase:2`, or the names ModSecurity accepts.
pub fn phase_number(p: &str) -> Result<u8, String> {
    match p {
        "request" => Ok(2),
        "response" => Ok(4),
        "logging" => Ok(5),
        _ => p.parse().map_err(|_| format!("phase {p:?} is not 1-5")).and_then(check_phase),
    }
}

fn check_phase(n: u8) -> Result<u8, String> {
    (1..=5).contains(&n).then_some(n).ok_or_else(|| format!("phase {n} is not 1-5"))
}

fn sec_rule(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let (vars, op, actions) = match d.args.as_slice() {
        [v, o] => (v, o, None),
        [v, o, a] => (v, o, Some(a)),
        _ => return Err(format!("SecRule takes VARIABLES OPERATOR [ACTIONS], got {} argument(s)", d.args.len())),
    };
    let rule = Rule {
        origin: d.origin.clone(),
        variables: rule::parse_variables(vars)?,
        operator: Some(rule::parse_operator(op)?),
        actions: actions.map(|a| rule::parse_actions(a)).transpose()?.unwrap_or_default(),
        chained: None,
    };
    add_rule(set, rule)
}

fn sec_action(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [actions] = args::<1>(d)?;
    let rule = Rule {
        origin: d.origin.clone(),
        variables: Vec::new(),
        operator: None,
        actions: rule::parse_actions(actions)?,
        chained: None,
    };
    add_rule(set, rule)
}

fn sec_marker(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [name] = args::<1>(d)?;
    set.markers.push((name.to_string(), set.rules.len()));
    Ok(())
}

fn sec_default_action(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [actions] = args::<1>(d)?;
    let actions = rule::parse_actions(actions)?;
    let phase = actions
        .iter()
        .find(|a| a.name == "phase")
        .and_then(|a| a.value.as_deref())
        .ok_or("SecDefaultAction needs a phase")?;
    let phase = phase_number(phase)?;
    set.default_actions.insert(phase, actions);
    Ok(())
}

fn sec_rule_engine(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [mode] = args::<1>(d)?;
    set.engine = match mode.to_ascii_lowercase().as_str() {
        "on" => EngineMode::On,
        "off" => EngineMode::Off,
        "detectiononly" => EngineMode::DetectionOnly,
        _ => return Err(format!("SecRuleEngine expects On, Off or DetectionOnly, got {mode:?}")),
    };
    Ok(())
}

fn sec_component_signature(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [sig] = args::<1>(d)?;
    set.components.push(sig.to_string());
    Ok(())
}

/// Ids and ranges: `1 2 100-199`, or one quoted argument holding several.
fn id_ranges(d: &Directive, args: &[String]) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    for word in args.iter().flat_map(|a| a.split([' ', ','])).filter(|w| !w.is_empty()) {
        let (lo, hi) = word.split_once('-').unwrap_or((word, word));
        let parse =
            |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{}: {word:?} is not an id or id range", d.name));
        out.push((parse(lo)?, parse(hi)?));
    }
    if out.is_empty() {
        return Err(format!("{} needs at least one id", d.name));
    }
    Ok(out)
}

fn sec_rule_remove_by_id(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let ranges = id_ranges(d, &d.args)?;
    remove_rules(set, |r| r.id().is_some_and(|id| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id))));
    Ok(())
}

fn sec_rule_remove_by_tag(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [tag] = args::<1>(d)?;
    remove_rules(set, |r| r.actions_named("tag").any(|t| t == tag));
    Ok(())
}

fn sec_rule_remove_by_msg(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [msg] = args::<1>(d)?;
    remove_rules(set, |r| r.action("msg") == Some(msg));
    Ok(())
}

/// Removes the rules `gone` selects, keeping every marker before the same
/// rule it stood before (markers count the rules ahead of them).
fn remove_rules(set: &mut RuleSet, gone: impl Fn(&Rule) -> bool) {
    let removed: Vec<bool> = set.rules.iter().map(&gone).collect();
    for (_, at) in &mut set.markers {
        *at -= removed[..*at].iter().filter(|r| **r).count();
    }
    let mut i = 0;
    set.rules.retain(|_| {
        i += 1;
        !removed[i - 1]
    });
}

fn update_targets(rules: &mut [Rule], targets: &str, which: impl Fn(&Rule) -> bool) -> Result<usize, String> {
    let vars: Vec<Variable> = rule::parse_variables(targets)?;
    let mut n = 0;
    for r in rules.iter_mut().filter(|r| which(r)) {
        r.variables.extend(vars.iter().cloned());
        n += 1;
    }
    Ok(n)
}

fn sec_rule_update_target_by_id(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let (ids, targets) = match d.args.as_slice() {
        [i, t] | [i, t, _] => (i, t),
        _ => return Err("SecRuleUpdateTargetById takes ID TARGETS [REPLACED]".into()),
    };
    let ranges = id_ranges(d, std::slice::from_ref(ids))?;
    update_targets(&mut set.rules, targets, |r| {
        r.id().is_some_and(|id| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id)))
    })?;
    Ok(())
}

fn sec_rule_update_target_by_tag(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let (tag, targets) = match d.args.as_slice() {
        [t, v] | [t, v, _] => (t, v),
        _ => return Err("SecRuleUpdateTargetByTag takes TAG TARGETS [REPLACED]".into()),
    };
    update_targets(&mut set.rules, targets, |r| r.actions_named("tag").any(|t| t == tag))?;
    Ok(())
}

fn sec_rule_update_action_by_id(set: &mut RuleSet, d: &Directive) -> Result<(), String> {
    let [ids, actions] = args::<2>(d)?;
    let ranges = id_ranges(d, &[ids.to_string()])?;
    let new = rule::parse_actions(actions)?;
    for r in set
        .rules
        .iter_mut()
        .filter(|r| r.id().is_some_and(|id| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id))))
    {
        for a in &new {
            // Single-valued actions are replaced; lists (tag, t, setvar...) grow.
            let single = matches!(
                a.name,
                "msg"
                    | "logdata"
                    | "severity"
                    | "status"
                    | "phase"
                    | "deny"
                    | "block"
                    | "pass"
                    | "allow"
                    | "drop"
                    | "redirect"
                    | "ver"
                    | "rev"
                    | "maturity"
                    | "accuracy"
            );
            if single {
                r.actions.retain(|x| x.name != a.name);
            }
            r.actions.push(a.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load_str;

    #[test]
    fn rules_chains_markers_and_defaults() {
        let set = load_str(
            "SecRuleEngine DetectionOnly\n\
             SecDefaultAction \"phase:2,log,auditlog,pass\"\n\
             SecRule ARGS \"@rx a\" \"id:1,phase:2,deny,chain\"\n\
             SecRule REQUEST_METHOD \"@streq POST\" \"t:none\"\n\
             SecMarker END\n\
             SecAction \"id:2,phase:1,nolog,pass,setvar:tx.x=1\"\n\
             SecRequestBodyLimit 13107200\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(set.engine, super::EngineMode::DetectionOnly);
        assert_eq!(set.rules.len(), 2);
        assert!(set.rules[0].chained.is_some());
        assert_eq!(set.markers, vec![("END".to_string(), 1)]);
        assert_eq!(set.settings["SecRequestBodyLimit"], "13107200");
        assert!(set.default_actions.contains_key(&2));
    }

    #[test]
    fn errors_name_file_line_and_text() {
        let e =
            load_str("SecRule ARGS \"@rx a\" \"id:1\"\n\nSecRule ARGS \"@rx b\" \"id:2,t:urlDecodeUnii\"\n", "x.conf")
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:3: unknown transformation \"urlDecodeUnii\": `SecRule ARGS \"@rx b\" \"id:2,t:urlDecodeUnii\"`"
        );
        let e = load_str("SecFrobnicate On\n", "x.conf").unwrap_err();
        assert!(e.to_string().starts_with("x.conf:1: unknown directive \"SecFrobnicate\""));
        assert!(load_str("SecRule ARGS \"@rx a\" \"id:1,chain\"\n", "x")
            .unwrap_err()
            .message
            .contains("no rule follows"));
        assert!(load_str("SecRule ARGS \"@rx a\" \"id:1\"\nSecRule ARGS \"@rx a\" \"id:1\"\n", "x")
            .unwrap_err()
            .message
            .contains("twice"));
        assert!(load_str("SecRequestBodyLimit lots\n", "x").unwrap_err().message.contains("integer"));
    }

    #[test]
    fn removals_and_updates() {
        let set = load_str(
            "SecRule ARGS \"@rx a\" \"id:10,tag:attack-sqli,msg:'m'\"\n\
             SecRule ARGS \"@rx a\" \"id:11,tag:other\"\n\
             SecRule ARGS \"@rx a\" \"id:12\"\n\
             SecRuleUpdateTargetById 11 \"!ARGS:foo\"\n\
             SecRuleUpdateActionById 12 \"msg:'new',tag:t2\"\n\
             SecRuleRemoveByTag attack-sqli\n",
            "x",
        )
        .unwrap();
        assert!(set.rule(10).is_none());
        assert_eq!(set.rule(11).unwrap().variables.len(), 2);
        assert_eq!(set.rule(12).unwrap().action("msg"), Some("new"));
        let set =
            load_str("SecRule ARGS \"@rx a\" \"id:5\"\nSecRule ARGS \"@rx a\" \"id:7\"\nSecRuleRemoveById 1-6\n", "x")
                .unwrap();
        assert_eq!(set.rules.len(), 1);
    }

    #[test]
    fn removals_keep_markers_before_the_same_rule() {
        let set = load_str(
            "SecRule ARGS \"@rx a\" \"id:1\"\nSecRule ARGS \"@rx a\" \"id:2\"\nSecMarker M\n\
             SecRule ARGS \"@rx a\" \"id:3\"\nSecRuleRemoveById 1\n",
            "x",
        )
        .unwrap();
        assert_eq!(set.markers, vec![("M".to_string(), 1)]);
        assert_eq!(set.rules[set.markers[0].1].id(), Some(3));
    }
}
