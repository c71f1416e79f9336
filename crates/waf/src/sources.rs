//! Where rules come from, in order of preference: a Core Rule Set directory
//! the configuration names; Debian's `modsecurity-crs` package when it is
//! installed; otherwise Rampart's built-in baseline rules (never silently
//! no protection at all).
//!
//! A CRS directory is read the way the CRS project documents it: its
//! `crs-setup.conf` when there is one (not the `.example`), then
//! `rules/*.conf` in name order. When there is no setup file, a short
//! prelude stands in for it: engine on, body access on, the CRS default
//! actions, and `tx.crs_setup_version` (which CRS checks).

use std::path::{Path, PathBuf};

use crate::seclang::{self, parser, ParseError, RuleSet};

/// Debian's package of the Core Rule Set.
pub const DEBIAN_CRS: &str = "/usr/share/modsecurity-crs";
/// Where Debian keeps the CRS setup file.
pub const DEBIAN_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";

/// The built-in baseline rules (SecLang).
pub const BASELINE: &str = include_str!("../rules/baseline.conf");

/// What stands in for a missing `crs-setup.conf`.
const PRELUDE: &str = "\
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess On
SecDefaultAction \"phase:1,log,auditlog,pass\"
SecDefaultAction \"phase:2,log,auditlog,pass\"
SecAction \"id:900990,phase:1,pass,t:none,nolog,setvar:tx.crs_setup_version=1\"
";

/// A loaded rule set and where it came from.
pub struct Loaded {
    /// The rules.
    pub set: RuleSet,
    /// What was loaded, for logs (`CRS at /usr/share/modsecurity-crs`).
    pub origin: String,
    /// Set when the baseline is in use: how to add the CRS.
    pub warning: Option<String>,
    /// Every file read, for reload on change.
    pub files: Vec<PathBuf>,
}

/// Loads the rules the configuration asks for: `before` files (settings
/// and exclusions that must precede the rule set, as CRS's REQUEST-900
/// file), then `crs_dir`, else Debian's CRS, else the baseline; then
/// `after` files.
pub fn load(crs_dir: Option<&Path>, before: &[PathBuf], after: &[PathBuf]) -> Result<Loaded, ParseError> {
    let debian = Path::new(DEBIAN_CRS);
    let mut set = RuleSet::default();
    let mut files = Vec::new();
    let (origin, warning) = match crs_dir {
        Some(dir) => {
            files.extend(load_crs_into(&mut set, dir, None, before)?);
            (format!("rules from {}", dir.display()), None)
        }
        None if debian.join("rules").is_dir() => {
            files.extend(load_crs_into(&mut set, debian, Some(Path::new(DEBIAN_SETUP)), before)?);
            (format!("OWASP CRS from {DEBIAN_CRS} (Debian's modsecurity-crs)"), None)
        }
        None => {
            for f in before {
                parser::load_into(&mut set, f, 0)?;
                files.push(f.clone());
            }
            parser::parse_into(&mut set, BASELINE, "built-in baseline.conf", None, 0)?;
            let warning = "no Core Rule Set configured or installed: the WAF runs Rampart's built-in baseline \
                           rules only; set waf.crs_dir to a CRS checkout, or install Debian's modsecurity-crs"
                .to_string();
            ("Rampart's built-in baseline rules".to_string(), Some(warning))
        }
    };
    for f in after {
        parser::load_into(&mut set, f, 0)?;
        files.push(f.clone());
    }
    seclang::directives::finish(&set)?;
    Ok(Loaded { set, origin, warning, files })
}

/// The files of a CRS directory (or a single rule file), in load order,
/// and whether a setup file is among them.
pub fn crs_files(path: &Path, setup: Option<&Path>) -> Result<(Vec<PathBuf>, bool), ParseError> {
    if path.is_file() {
        return Ok((vec![path.to_path_buf()], true));
    }
    let rules = if path.join("rules").is_dir() { path.join("rules") } else { path.to_path_buf() };
    let mut files = Vec::new();
    let candidates =
        [setup.map(Path::to_path_buf), Some(path.join("crs-setup.conf")), Some(rules.join("crs-setup.conf"))];
    let has_setup = match candidates.into_iter().flatten().find(|p| p.is_file()) {
        Some(s) => {
            files.push(s);
            true
        }
        None => false,
    };
    let mut confs: Vec<PathBuf> = std::fs::read_dir(&rules)
        .map_err(|e| ParseError {
            file: rules.display().to_string(),
            line: 0,
            text: String::new(),
            message: format!("cannot read the rule directory: {e}"),
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && !p.ends_with("crs-setup.conf"))
        .collect();
    confs.sort();
    if confs.is_empty() {
        return Err(ParseError {
            file: rules.display().to_string(),
            line: 0,
            text: String::new(),
            message: "no *.conf rule files here".into(),
        });
    }
    files.extend(confs);
    Ok((files, has_setup))
}

/// Loads a CRS directory (see [`crs_files`]) with the prelude when it has
/// no setup file.
pub fn load_crs(path: &Path, setup: Option<&Path>) -> Result<(RuleSet, Vec<PathBuf>), ParseError> {
    let mut set = RuleSet::default();
    let files = load_crs_into(&mut set, path, setup, &[])?;
    seclang::directives::finish(&set)?;
    Ok((set, files))
}

/// The setup file (or the prelude), `before`, then the rules, into `set`.
fn load_crs_into(
    set: &mut RuleSet,
    path: &Path,
    setup: Option<&Path>,
    before: &[PathBuf],
) -> Result<Vec<PathBuf>, ParseError> {
    let (mut files, has_setup) = crs_files(path, setup)?;
    let rules = if has_setup { files.split_off(1) } else { std::mem::take(&mut files) };
    if has_setup {
        parser::load_into(set, &files[0], 0)?;
    } else {
        parser::parse_into(set, PRELUDE, "prelude (no crs-setup.conf)", None, 0)?;
    }
    for f in before.iter().chain(&rules) {
        parser::load_into(set, f, 0)?;
        files.push(f.clone());
    }
    Ok(files)
}

/// Most bytes of one rule or data file (the whole CRS is about 1 MB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a rule or data file (`Include`, `@pmFromFile`), refusing what is
/// not a regular file (`/dev/zero`, a FIFO) or is larger than
/// [`MAX_FILE_BYTES`]: a configuration mistake must not read forever.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        let msg = format!("larger than {MAX_FILE_BYTES} bytes");
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_special_files_are_not_read() {
        let e = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = crate::seclang::load_files([Path::new("/dev/zero")]).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.conf");
        std::fs::write(&f, "SecRule ARGS \"@pmFromFile /dev/zero\" \"id:1,phase:2,deny\"\n").unwrap();
        let set = crate::seclang::load_files([f.as_path()]);
        let compiled = set
            .map_err(|e| e.to_string())
            .and_then(|s| crate::engine::Engine::new(&s).map(|_| ()).map_err(|e| e.to_string()));
        assert!(compiled.unwrap_err().contains("not a regular file"));
    }
    use crate::engine::{Engine, Verdict};
    use crate::request::{self, RequestData};

    fn run(e: &std::sync::Arc<Engine>, uri: &str) -> (Verdict, Vec<u64>) {
        let mut t = e.transaction();
        let headers = vec![("Host".to_string(), b"example.com".to_vec())];
        let v = request::inspect(
            &mut t,
            &RequestData {
                method: "GET",
                uri,
                protocol: "HTTP/1.1",
                headers: &headers,
                body: b"",
                remote_addr: "192.0.2.1",
                unique_id: "u",
            },
        );
        (v, t.matches().iter().filter(|m| m.log).map(|m| m.id).collect())
    }

    #[test]
    fn baseline_blocks_common_attacks_and_passes_benign_requests() {
        let loaded = load(None, &[], &[]);
        let set = match loaded {
            // On a machine with Debian's CRS the baseline is not what loads;
            // test the baseline text itself.
            Ok(l) if l.warning.is_some() => l.set,
            _ => seclang::load_str(BASELINE, "baseline.conf").unwrap(),
        };
        let e = std::sync::Arc::new(Engine::new(&set).unwrap());
        for benign in ["/search?q=shoes&page=2&sort=price", "/a/b.html", "/?name=O%27Brien%20and%20sons"] {
            assert_eq!(run(&e, benign).0, Verdict::Pass, "{benign}");
        }
        for (attack, id) in [
            ("/?id=1%27%20or%201=1--", 10200),
            ("/?q=%3Cscript%3Ealert(1)%3C/script%3E", 10201),
            ("/?file=../../etc/passwd", 10300),
            ("/?host=x;cat%20/etc/hosts", 10400),
            ("/?x=${jndi:ldap://e/a}", 10402),
        ] {
            let (v, ids) = run(&e, attack);
            assert_eq!(v, Verdict::Deny(403), "{attack}: {ids:?}");
            assert!(ids.contains(&id) && ids.contains(&10900), "{attack}: {ids:?}");
        }
    }

    #[test]
    fn a_crs_directory_without_setup_gets_the_prelude() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("rules/A.conf"),
            "SecRule &TX:crs_setup_version \"@eq 0\" \"id:1,phase:1,deny,status:500\"\n",
        )
        .unwrap();
        let (set, files) = load_crs(dir.path(), None).unwrap();
        assert_eq!(files.len(), 1);
        let e = std::sync::Arc::new(Engine::new(&set).unwrap());
        assert_eq!(run(&e, "/").0, Verdict::Pass);
        let err = load_crs(&dir.path().join("missing"), None).err().unwrap();
        assert!(err.to_string().contains("cannot read the rule directory"), "{err}");
    }
}
