//! `rampart audit ...`: verify the tamper-evident log, prove inclusion and
//! consistency, export checkpoints, read and search events.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use rampart_audit::format::{from_hex, to_hex, SignedHead};
use rampart_audit::{merkle, read, verify, Keys};
use serde_json::{json, Value};

use super::{CliError, ConfigArgs};

/// Verify, prove, export, read and search the audit log.
///
/// Exit status: 0 success, 1 a command failed (a missing log, a bad
/// argument), 2 invalid configuration, 4 verification failed: the log or a
/// proof does not check.
#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand)]
enum Action {
    /// Rebuild the tree from the segments and check every signed head
    ///
    /// Checks every record, signed tree head and segment header signature
    /// with keys/signing.pub, and that the log extends the head its writer
    /// saved last (DATA_DIR/audit/head.json): an event altered, removed,
    /// inserted or moved, a segment removed, swapped or cut, the newest
    /// segments or the whole log removed, all fail.
    ///
    /// Without --head it cannot tell the data directory's own history
    /// apart from a forgery made with it: someone who can write the data
    /// directory can put back an older copy of the whole log with its
    /// head.json, and the holder of keys/signing.key can rewrite and
    /// re-sign everything. A head exported earlier with `audit checkpoint`
    /// and kept elsewhere catches both: pass it with --head.
    ///
    /// Exit status: 0 the log verifies, 1 no log or a bad argument, 4
    /// verification failed (the first failure, with segment, record and
    /// byte offset).
    Verify {
        /// Also check that the log extends this exported head (kept
        /// elsewhere: the only check against a rolled-back data directory)
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the inclusion proof of event INDEX against the latest signed head
    Prove {
        /// Leaf index of the event
        index: u64,
    },
    /// Print the consistency proof between two tree sizes
    Consistency {
        /// The older tree size
        old_size: u64,
        /// The newer tree size (default: the latest signed head's)
        new_size: Option<u64>,
    },
    /// Check a proof (from `prove` or `consistency`) against exported heads
    CheckProof {
        /// The proof file (JSON)
        proof: PathBuf,
        /// The exported head the proof must lead to
        #[arg(long, value_name = "FILE")]
        head: PathBuf,
        /// For a consistency proof: the older exported head
        #[arg(long, value_name = "FILE")]
        old_head: Option<PathBuf>,
    },
    /// Manage checkpoints (signed tree heads published elsewhere)
    Checkpoint {
        /// Write the latest signed head and the public key to FILE
        #[arg(long, value_name = "FILE")]
        export: PathBuf,
    },
    /// Show the last events
    Tail {
        /// How many
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing new events
        #[arg(short = 'f', long)]
        follow: bool,
        /// One JSON event a line
        #[arg(long)]
        json: bool,
    },
    /// Find events by time and field values
    Search {
        /// From (RFC 3339, or a duration ago such as "1h")
        #[arg(long)]
        since: Option<String>,
        /// Until (RFC 3339, or a duration ago)
        #[arg(long)]
        until: Option<String>,
        /// field=value, dotted paths (event.action=client-banned); all must match
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// At most this many (the newest)
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// One JSON event a line
        #[arg(long)]
        json: bool,
    },
}

struct Log {
    data_dir: PathBuf,
    dir: PathBuf,
    keys: Keys,
}

pub fn run(args: AuditArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    let data_dir = config.data_dir();
    let dir = data_dir.join("audit");
    if !dir.join("keys").exists() {
        return Err(CliError::Other(format!(
            "no audit log in {} (has `rampart serve` run with this data directory?)",
            dir.display()
        )));
    }
    // Loaded, never created here: a command that checks the log must not
    // replace a key that is missing.
    let keys = Keys::load(&dir).map_err(|e| CliError::Other(e.to_string()))?;
    let log = Log { data_dir, dir, keys };
    match args.action {
        Action::Verify { head, json } => verify_cmd(&log, head.as_deref(), json),
        Action::Prove { index } => prove(&log, index),
        Action::Consistency { old_size, new_size } => consistency(&log, old_size, new_size),
        Action::CheckProof { proof, head, old_head } => check_proof(&proof, &head, old_head.as_deref()),
        Action::Checkpoint { export } => checkpoint(&log, &export),
        Action::Tail { lines, follow, json } => tail(&log, lines, follow, json),
        Action::Search { since, until, fields, limit, json } => search(&log, since, until, fields, limit, json),
    }
}

fn tampered(f: verify::Failure) -> CliError {
    CliError::Tampered(format!("verification failed: {f}"))
}

fn verify_cmd(log: &Log, head: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    // The published public key, not the one derived from the private key:
    // what a verifier elsewhere would use (the library checks it is usable
    // and that it is the private key's).
    let public = rampart_audit::keys::read_public_key(&log.dir).ok_or_else(|| {
        CliError::Tampered(format!(
            "verification failed: {}: missing or not a hex Ed25519 public key",
            log.dir.join("keys/signing.pub").display()
        ))
    })?;
    let mut leaves = Vec::new();
    let start = std::time::Instant::now();
    let report = verify::verify(&log.dir, Some(&log.keys), &public, Some(&mut leaves)).map_err(tampered)?;
    if let Some(h) = head {
        let exported = read_head(h)?;
        verify::check_exported(&log.dir, &exported.head, &public, &report, &leaves).map_err(tampered)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let saved_size = report.saved_head.as_ref().map_or(0, |h| h.tree_size);
    if json {
        println!(
            "{}",
            json!({"ok": true, "segments": report.segments, "events": report.events, "signed_heads": report.heads,
                   "tree_size": report.tree_size, "root": to_hex(&report.root), "retention_base": report.base_size,
                   "saved_head_size": saved_size, "exported_head_checked": head.is_some(), "seconds": secs})
        );
    } else {
        println!(
            "ok: {} events in {} segment(s), {} signed heads checked, tree size {}, root {}{} ({secs:.2} s)",
            report.events,
            report.segments,
            report.heads,
            report.tree_size,
            to_hex(&report.root),
            if report.base_size > 0 {
                format!(", {} older events removed by retention", report.base_size)
            } else {
                String::new()
            },
        );
        if report.last_head.as_ref().is_some_and(|h| h.tree_size < report.tree_size) {
            println!(
                "note: the last {} events are not yet covered by a signed head",
                report.tree_size - report.last_head.map_or(0, |h| h.tree_size)
            );
        }
        match head {
            Some(h) => println!("the log extends the exported head in {}", h.display()),
            None => println!(
                "checked against the head saved in the data directory (tree size {saved_size}); a rollback of the \
                 whole data directory, or a log re-signed with its own signing key, needs an exported head: \
                 `rampart audit verify --head FILE`"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The latest signed head found in the log. When no writer runs, opening
/// the log first seals what a stopped writer left unsigned.
fn latest_head(log: &Log) -> Result<(SignedHead, Vec<merkle::Hash>, u64), CliError> {
    if let Ok(writer) = rampart_audit::AuditLog::open(&log.data_dir) {
        writer.flush();
    }
    let public = log.keys.public_key();
    let mut leaves = Vec::new();
    let report = verify::verify(&log.dir, Some(&log.keys), &public, Some(&mut leaves)).map_err(tampered)?;
    let head = report.last_head.ok_or_else(|| CliError::Other("the log has no signed tree head yet".into()))?;
    Ok((head, leaves, report.base_size))
}

/// The tree as it can be known: the retention base's frontier, then the
/// remaining leaves.
fn tree_base(log: &Log) -> Result<merkle::Frontier, CliError> {
    match rampart_audit::retention::read_base(&log.dir).map_err(CliError::Other)? {
        Some(b) => b.frontier().ok_or_else(|| CliError::Tampered("base.json: bad frontier".into())),
        None => Ok(merkle::Frontier::new()),
    }
}

fn prove(log: &Log, index: u64) -> Result<ExitCode, CliError> {
    let (head, leaves, base) = latest_head(log)?;
    if index >= head.tree_size || index < base {
        return Err(CliError::Other(format!(
            "index {index} is not in [{base}, {}) covered by the latest signed head",
            head.tree_size
        )));
    }
    let frontier = tree_base(log)?;
    let tree = merkle::Partial::new(&frontier, &leaves);
    let proof =
        tree.inclusion_proof(index, head.tree_size).ok_or_else(|| CliError::Other("cannot build the proof".into()))?;
    let out = json!({
        "kind": "inclusion", "index": index, "tree_size": head.tree_size,
        "leaf_hash": to_hex(&leaves[(index - base) as usize]),
        "proof": proof.iter().map(|h| to_hex(h)).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

fn consistency(log: &Log, old: u64, new: Option<u64>) -> Result<ExitCode, CliError> {
    let (head, leaves, base) = latest_head(log)?;
    let new = new.unwrap_or(head.tree_size);
    let present = base + leaves.len() as u64;
    if old < base.max(1) || old > new || new > present {
        return Err(CliError::Other(format!("need {} <= OLD_SIZE <= NEW_SIZE <= {present}", base.max(1))));
    }
    let frontier = tree_base(log)?;
    let tree = merkle::Partial::new(&frontier, &leaves);
    let proof = tree.consistency_proof(old, new).ok_or_else(|| CliError::Other("cannot build the proof".into()))?;
    let out = json!({
        "kind": "consistency", "old_size": old, "new_size": new,
        "proof": proof.iter().map(|h| to_hex(h)).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Exported {
    #[serde(flatten)]
    head: SignedHead,
    public_key: String,
}

fn read_head(path: &Path) -> Result<Exported, CliError> {
    let text = std::fs::read(path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&text).map_err(|e| CliError::Other(format!("{}: not an exported head: {e}", path.display())))
}

fn checkpoint(log: &Log, export: &Path) -> Result<ExitCode, CliError> {
    let (head, _, _) = latest_head(log)?;
    let out = Exported { head, public_key: to_hex(&log.keys.public_key()) };
    let text = serde_json::to_string_pretty(&out).unwrap_or_default();
    std::fs::write(export, text + "\n").map_err(|e| CliError::Other(format!("{}: {e}", export.display())))?;
    println!("exported the signed head of tree size {} to {}", out.head.tree_size, export.display());
    Ok(ExitCode::SUCCESS)
}

fn hashes(v: &Value) -> Option<Vec<merkle::Hash>> {
    v.as_array()?.iter().map(|h| from_hex::<32>(h.as_str()?)).collect()
}

fn check_proof(proof: &Path, head: &Path, old_head: Option<&Path>) -> Result<ExitCode, CliError> {
    let text = std::fs::read(proof).map_err(|e| CliError::Other(format!("{}: {e}", proof.display())))?;
    let p: Value = serde_json::from_slice(&text).map_err(|e| CliError::Other(format!("{}: {e}", proof.display())))?;
    let head = read_head(head)?;
    let public = from_hex::<32>(&head.public_key).ok_or_else(|| CliError::Other("bad public key in head".into()))?;
    if !rampart_audit::keys::is_usable_public_key(&public) {
        return Err(CliError::Tampered(
            "the head's public key is all zero or of small order: it proves nothing".into(),
        ));
    }
    if !head.head.verify(&public) {
        return Err(CliError::Tampered("the head's signature is invalid".into()));
    }
    let bad = || CliError::Other(format!("{}: malformed proof", proof.display()));
    let path = hashes(&p["proof"]).ok_or_else(bad)?;
    let ok = match p["kind"].as_str() {
        Some("inclusion") => {
            let leaf = from_hex::<32>(p["leaf_hash"].as_str().ok_or_else(bad)?).ok_or_else(bad)?;
            let index = p["index"].as_u64().ok_or_else(bad)?;
            merkle::verify_inclusion(&leaf, index, head.head.tree_size, &path, &head.head.root)
        }
        Some("consistency") => {
            let old =
                read_head(old_head.ok_or_else(|| CliError::Other("a consistency proof needs --old-head".into()))?)?;
            old.head.verify(&public)
                && merkle::verify_consistency(
                    old.head.tree_size,
                    head.head.tree_size,
                    &old.head.root,
                    &head.head.root,
                    &path,
                )
        }
        _ => return Err(bad()),
    };
    if ok {
        println!("ok: the proof checks against the signed head of tree size {}", head.head.tree_size);
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Tampered("the proof does not check against the head".into()))
    }
}

/// Records that someone read the log: through the running writer's inbox,
/// or directly when no writer runs.
fn record_read(log: &Log, what: &str, query: &str) {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let event = rampart_core::Event::new("file", "audit-log-read")
        .outcome(rampart_core::Outcome::Success)
        .message(format!("audit log {what}"))
        .label("audit.query", query)
        .label("user.name", user)
        .label("process.pid", std::process::id().to_string());
    match rampart_audit::AuditLog::open(&log.data_dir) {
        Ok(writer) => {
            let _ = writer.append(event);
        }
        Err(_) => {
            let name = format!(
                "{:020}-{}.json",
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
                std::process::id()
            );
            // Written to a temporary name with mode 0600, then renamed: the
            // writer only takes `.json` files, whole.
            let _ = rampart_audit::keys::write_private(
                &log.dir.join("inbox").join(name),
                event.to_json().to_string().as_bytes(),
            );
        }
    }
}

fn print_event(index: u64, e: &Value, json: bool) {
    if json {
        let mut e = e.clone();
        if let Value::Object(m) = &mut e {
            m.insert("rampart.audit.index".into(), json!(index));
        }
        println!("{e}");
        return;
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!(
        "#{index:<8} {} {:<24} {:<8} {} {} {}",
        s(&e["@timestamp"]),
        s(&e["event"]["action"]),
        s(&e["event"]["outcome"]),
        s(&e["source"]["ip"]),
        s(&e["url"]["path"]),
        [s(&e["event"]["reason"]), s(&e["message"])]
            .iter()
            .filter(|x| !x.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    );
}

fn tail(log: &Log, n: usize, follow: bool, json: bool) -> Result<ExitCode, CliError> {
    record_read(log, "tail", &format!("tail -n {n}{}", if follow { " -f" } else { "" }));
    let all = read::events(&log.dir, &log.keys, 0, u64::MAX);
    let mut next = all.last().map_or(0, |s| s.index + 1);
    for s in all.iter().skip(all.len().saturating_sub(n)) {
        print_event(s.index, &s.event, json);
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let from = next;
        for s in read::events(&log.dir, &log.keys, 0, u64::MAX).into_iter().filter(|s| s.index >= from) {
            print_event(s.index, &s.event, json);
            next = s.index + 1;
        }
    }
}

/// RFC 3339, or a duration ago ("90m").
fn parse_time(s: &str) -> Result<u64, CliError> {
    let now = SystemTime::now();
    let t = match humantime::parse_rfc3339_weak(s) {
        Ok(t) => t,
        Err(_) => match humantime::parse_duration(s) {
            Ok(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
            Err(_) => {
                return Err(CliError::Other(format!(
                    "{s}: expected a time such as 2026-01-31T12:00:00Z or a duration ago such as 1h"
                )))
            }
        },
    };
    Ok(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

fn field<'a>(e: &'a Value, path: &str) -> Option<&'a Value> {
    // Dotted names exist both as nested objects (event.action) and as flat
    // keys (labels: ban.count); try the flat key at each level.
    if let Some(v) = e.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    field(e.get(head)?, rest).or_else(|| {
        let mut parts = path.splitn(3, '.');
        let (a, b) = (parts.next()?, parts.next()?);
        field(e.get(format!("{a}.{b}").as_str())?, parts.next()?)
    })
}

fn matches(e: &Value, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match field(e, k) {
        Some(Value::String(s)) => s == v,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(v)),
        Some(other) => *other.to_string() == **v,
        None => false,
    })
}

fn search(
    log: &Log,
    since: Option<String>,
    until: Option<String>,
    fields: Vec<String>,
    limit: usize,
    json: bool,
) -> Result<ExitCode, CliError> {
    let since_ms = since.as_deref().map(parse_time).transpose()?.unwrap_or(0);
    let until_ms = until.as_deref().map(parse_time).transpose()?.unwrap_or(u64::MAX);
    let filters = fields
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::Other(format!("--field {f}: expected KEY=VALUE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    record_read(log, "search", &format!("since={since:?} until={until:?} fields={fields:?}"));
    let found: Vec<_> = read::events(&log.dir, &log.keys, since_ms, until_ms)
        .into_iter()
        .filter(|s| matches(&s.event, &filters))
        .collect();
    for s in found.iter().skip(found.len().saturating_sub(limit)) {
        print_event(s.index, &s.event, json);
    }
    if !json {
        eprintln!("{} event(s)", found.len().min(limit));
    }
    Ok(ExitCode::SUCCESS)
}
