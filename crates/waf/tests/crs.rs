//! The OWASP Core Rule Set loads unmodified, with zero errors: CRS v4 from
//! `../shared/crs` and Debian's CRS 3.3 (package `modsecurity-crs`, which
//! `.ci/run` installs). Both are read in place, never copied.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::{Path, PathBuf};

use rampart_waf::seclang;

fn shared_crs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs")
}

fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    files
}

#[test]
fn crs_v4_loads_with_zero_errors() {
    let crs = shared_crs();
    let mut files = vec![crs.join("crs-setup.conf.example")];
    files.extend(rule_files(&crs.join("rules")));
    let set = seclang::load_files(files.iter().map(PathBuf::as_path)).unwrap_or_else(|e| panic!("{e}"));
    // CRS v4: several hundred rules, the setup's version marker, markers
    // for every paranoia level section.
    assert!(set.rules.len() > 500, "{} rules", set.rules.len());
    assert!(set.components.iter().any(|c| c.starts_with("OWASP_CRS/4")), "{:?}", set.components);
    assert!(set.markers.len() >= 20);
    let sqli = set.rule(942100).expect("libinjection SQLi rule");
    assert_eq!(sqli.operator.as_ref().unwrap().name, "detectSQLi");
    assert!(set.rule(901001).is_some());
}

#[test]
fn debian_crs_3_3_loads_with_zero_errors() {
    let dir = Path::new("/usr/share/modsecurity-crs/rules");
    assert!(dir.is_dir(), "Debian's modsecurity-crs package is not installed (apt-get install modsecurity-crs)");
    let mut files = Vec::new();
    for setup in ["/etc/modsecurity/crs/crs-setup.conf", "/usr/share/modsecurity-crs/crs-setup.conf.example"] {
        if Path::new(setup).is_file() {
            files.push(PathBuf::from(setup));
            break;
        }
    }
    files.extend(rule_files(dir));
    let set = seclang::load_files(files.iter().map(PathBuf::as_path)).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.rules.len() > 400, "{} rules", set.rules.len());
    assert!(set.rule(942100).is_some());
    // Patterns only the bounded backtracking engine runs (docs/waf.md).
    let mut backtracking = Vec::new();
    for r in &set.rules {
        let mut cur = Some(r);
        while let Some(rule) = cur {
            if let Some(op) = rule.operator.as_ref().filter(|o| o.name == "rx") {
                if rampart_waf::operators::is_backtracking(&op.argument) {
                    backtracking.push(rule.id().or(r.id()).unwrap_or(0));
                }
            }
            cur = rule.chained.as_deref();
        }
    }
    eprintln!("CRS 3.3 rules whose patterns need backtracking: {backtracking:?}");
    assert!(backtracking.len() <= 20, "more CRS 3.3 patterns need backtracking than documented: {backtracking:?}");
    // And compiles whole, the way the gateway loads it when no crs_dir is set.
    let engine = rampart_waf::engine::Engine::new(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engine.len(), set.rules.len());
    let loaded = rampart_waf::sources::load(None, &[], &[]).unwrap();
    assert!(loaded.warning.is_none() && loaded.origin.contains("modsecurity-crs"), "{}", loaded.origin);
}

#[test]
fn include_globs_resolve_relative_to_the_including_file_and_loops_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/a.conf"), "SecRule ARGS \"@rx a\" \"id:1\"\n").unwrap();
    std::fs::write(dir.path().join("rules/b.conf"), "SecRule ARGS \"@rx b\" \"id:2\"\n").unwrap();
    std::fs::write(dir.path().join("main.conf"), "Include rules/*.conf\n").unwrap();
    let set = seclang::load_file(&dir.path().join("main.conf")).unwrap();
    assert_eq!(set.rules.len(), 2);
    std::fs::write(dir.path().join("loop.conf"), "Include loop.conf\n").unwrap();
    let e = seclang::load_file(&dir.path().join("loop.conf")).unwrap_err();
    assert!(e.message.contains("include loop"), "{e}");
    std::fs::write(dir.path().join("missing.conf"), "Include nothere.conf\n").unwrap();
    let e = seclang::load_file(&dir.path().join("missing.conf")).unwrap_err();
    assert!(e.to_string().contains("missing.conf:1:"), "{e}");
}

/// Every `@rx` of CRS v4 builds with the linear-time `regex` engine (no
/// backtracking engine needed, so no ReDoS); any that does not is named.
#[test]
fn every_crs_v4_regex_builds_with_the_linear_time_engine() {
    let crs = shared_crs();
    let mut files = vec![crs.join("crs-setup.conf.example")];
    files.extend(rule_files(&crs.join("rules")));
    let set = seclang::load_files(files.iter().map(PathBuf::as_path)).unwrap();
    let mut total = 0;
    let mut failures = Vec::new();
    for rule in &set.rules {
        let mut r = Some(rule);
        while let Some(x) = r {
            if let Some(op) = x.operator.as_ref().filter(|o| o.name == "rx") {
                total += 1;
                if let Err(e) = rampart_waf::operators::build("rx", &op.argument) {
                    failures.push(format!("{}:{}: {}", x.origin.file, x.origin.line, e.lines().last().unwrap_or("")));
                }
            }
            r = x.chained.as_deref();
        }
    }
    assert!(total > 250, "{total} regexes");
    assert!(failures.is_empty(), "{} of {total} regexes do not build:\n{}", failures.len(), failures.join("\n"));
}

/// Mutated rule text (bytes inserted, deleted, replaced) never panics the
/// loader: it loads or reports an error.
#[test]
fn mutated_rules_never_panic_the_loader() {
    let crs = shared_crs();
    let text = std::fs::read_to_string(crs.join("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf")).unwrap();
    let lines = seclang::parser::logical_lines(&text);
    let alphabet = b"\"'\\ |:,!&@%{}/()#\n";
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..3000 {
        let (_, line) = &lines[rng.usize(..lines.len())];
        let mut bytes = line.clone().into_bytes();
        for _ in 0..rng.usize(1..6) {
            let at = rng.usize(..=bytes.len());
            let c = if rng.bool() { alphabet[rng.usize(..alphabet.len())] } else { rng.u8(32..127) };
            match rng.u8(..3) {
                0 => bytes.insert(at, c),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ if at < bytes.len() => bytes[at] = c,
                _ => bytes.push(c),
            }
        }
        let mutated = String::from_utf8_lossy(&bytes);
        let _ = seclang::load_str(&mutated, "mutated.conf");
    }
}

/// Every CRS v4 rule compiles on its own (a gap would be named by its
/// reason: operators and transformations not built are listed in
/// `operators::NOT_YET` and `transforms::NOT_YET`).
#[test]
fn crs_v4_rules_compile_except_named_gaps() {
    let crs = shared_crs();
    let mut files = vec![crs.join("crs-setup.conf.example")];
    files.extend(rule_files(&crs.join("rules")));
    let set = seclang::load_files(files.iter().map(PathBuf::as_path)).unwrap();
    let mut gaps: std::collections::BTreeMap<String, usize> = Default::default();
    let total = set.rules.len();
    let mut ok = 0;
    for r in &set.rules {
        let one = seclang::RuleSet { rules: vec![r.clone()], ..Default::default() };
        match rampart_waf::engine::Engine::new(&one) {
            Ok(_) => ok += 1,
            Err(e) => *gaps.entry(e.message).or_default() += 1,
        }
    }
    for reason in gaps.keys() {
        assert!(reason.contains("not implemented yet"), "unexpected compile error: {reason}");
    }
    eprintln!("{ok} of {total} CRS rules compile; gaps: {gaps:?}");
    assert_eq!(ok, total, "gaps: {gaps:?}");
}
