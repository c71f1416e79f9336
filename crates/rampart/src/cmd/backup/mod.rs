//! `rampart backup`: encrypted, deduplicated backups in the repository
//! format of docs/backup-format.md, with restic's command habits.
//!
//! The password comes from `RAMPART_BACKUP_PASSWORD`, `--password-file` or
//! the configuration's `backup.password_file`, never from an argument
//! (arguments show in process listings).
//!
//! - [`sources`]: PostgreSQL and SQLite sources;
//! - [`drill`]: restore drills and their reports;
//! - [`job`]: configured jobs, into every target;
//! - [`schedule`]: jobs and drills on their schedules in `rampart serve`;
//! - [`progress`]: the progress line.

pub mod drill;
pub mod job;
mod progress;
pub mod schedule;
mod sources;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use rampart_backup::repo::Repository;
use zeroize::Zeroizing;

use super::{CliError, ConfigArgs};

/// Encrypted, deduplicated backups.
///
/// Exit status: 0 done, 1 failed (the message says why), 4 the repository
/// is damaged (check names the pack), has lost snapshots or was rolled back
/// (check names the snapshot or series; restore latest and drill refuse).
#[derive(Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    action: Action,
    /// The repository: a directory, or s3:http(s)://HOST/BUCKET/PREFIX
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
    #[arg(long, global = true, value_name = "REPO")]
    repo: Option<String>,
    /// Read the password from this file's first line (else
    /// RAMPART_BACKUP_PASSWORD)
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print JSON
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand)]
enum Action {
    /// Create a repository (with --from-repo: a copy of another one, sharing
    /// its key, for `copy` and `repair`)
    Init {
        /// The repository to be a copy of (opened with the same password)
        #[arg(long, value_name = "REPO")]
        from_repo: Option<String>,
    },
    /// Copy the snapshots a copy lacks, with their packs, into it
    Copy {
        /// The copy (made with `init --from-repo`)
        #[arg(long, value_name = "REPO")]
        to: String,
    },
    /// Replace missing or damaged packs with the same packs from a copy
    Repair {
        /// A copy holding the same packs
        #[arg(long, value_name = "REPO")]
        from: String,
    },
    /// Back up paths, a PostgreSQL database or stdin into a new snapshot
    Run {
        /// Files and directories
        #[arg(required_unless_present_any = ["postgres", "stdin", "job", "sqlite"])]
        paths: Vec<PathBuf>,
        /// A PostgreSQL database, dumped with pg_dump (custom format) and
        /// streamed in; connection from the PG* environment variables
        #[arg(long, value_name = "DATABASE", conflicts_with_all = ["paths", "stdin"])]
        postgres: Option<String>,
        /// Standard input, stored as a file of this name
        #[arg(long, value_name = "NAME", conflicts_with = "paths")]
        stdin: Option<String>,
        /// An SQLite database file, copied consistently while in use (the
        /// sqlite3 tool's online backup) and stored as a file of its name
        #[arg(long, value_name = "FILE", conflicts_with_all = ["paths", "postgres", "stdin"])]
        sqlite: Option<PathBuf>,
        /// A job of the configuration (backup.jobs.NAME): its paths or
        /// database, into every one of its targets
        #[arg(long, value_name = "NAME", conflicts_with_all = ["paths", "postgres", "stdin"])]
        job: Option<String>,
        /// Labels for the snapshot
        #[arg(long)]
        tag: Vec<String>,
        /// Leave out files and directories whose name or path matches
        /// (glob; repeatable)
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
    },
    /// List snapshots
    Snapshots,
    /// Restore a snapshot (an id, a prefix of one, or `latest`)
    Restore {
        /// Snapshot
        snapshot: String,
        /// Where to write it
        #[arg(long, value_name = "DIR")]
        target: PathBuf,
        /// Restore only this path inside the snapshot (and what is below
        /// it); a glob will do; repeatable
        #[arg(long, value_name = "PATH")]
        include: Vec<String>,
    },
    /// Remove snapshots outside a retention policy (and with --prune, the
    /// data only they needed)
    Forget {
        /// Keep the newest N snapshots
        #[arg(long, default_value_t = 0)]
        keep_last: usize,
        /// Keep one snapshot for each of the last N hours
        #[arg(long, default_value_t = 0)]
        keep_hourly: usize,
        /// ... days
        #[arg(long, default_value_t = 0)]
        keep_daily: usize,
        /// ... weeks
        #[arg(long, default_value_t = 0)]
        keep_weekly: usize,
        /// ... months
        #[arg(long, default_value_t = 0)]
        keep_monthly: usize,
        /// ... years
        #[arg(long, default_value_t = 0)]
        keep_yearly: usize,
        /// Prune afterwards
        #[arg(long)]
        prune: bool,
    },
    /// Delete data no snapshot needs (crash-safe: docs/backup-format.md)
    Prune,
    /// Restore the latest snapshot into scratch space, verifying every byte,
    /// and report the recovery time and the snapshot's age
    Drill {
        /// Scratch directory [default: a temporary directory, removed after]
        #[arg(long, value_name = "DIR")]
        scratch: Option<PathBuf>,
        /// Drill every target of this job of the configuration instead
        #[arg(long, value_name = "NAME", conflicts_with = "scratch")]
        job: Option<String>,
    },
    /// Check the repository's structure; with --read-data, every byte
    Check {
        /// Read, decrypt and verify every pack
        #[arg(long)]
        read_data: bool,
    },
}

pub fn run(args: BackupArgs) -> Result<ExitCode, CliError> {
    // No transparent huge pages for this process: a backup's buffers are
    // touched sparsely, and 2 MiB pages put a third more on its peak
    // memory (docs/decisions.md, 20). Where the kernel refuses, nothing
    // else changes.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let config = args.config.load()?;
    match &args.action {
        Action::Run { job: Some(name), .. } => return run_job(&args, &config, name, "backup"),
        Action::Drill { job: Some(name), .. } => return run_job(&args, &config, name, "drill"),
        _ => {}
    }
    let repo = args.repo.clone().ok_or_else(|| CliError::Other("--repo REPO is required".into()))?;
    // Every operation, and every failure, is an audit event.
    let data_dir = config.data_dir();
    let operation = args.action.name();
    let result = password(args.password_file.as_deref(), &config).and_then(|pw| execute(args, &repo, &pw, &data_dir));
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let mut event = rampart_core::Event::new("file", format!("backup-{operation}"))
        .label("backup.repository", repo.clone())
        .label("user.name", user)
        .label("process.pid", std::process::id().to_string());
    event = match &result {
        Ok((_, message)) => event.outcome(rampart_core::Outcome::Success).message(message.clone()),
        Err(e) => event.outcome(rampart_core::Outcome::Failure).reason(e.to_string()),
    };
    super::record_event(&data_dir, event);
    result.map(|(code, _)| code)
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Init { .. } => "init",
            Action::Copy { .. } => "copy",
            Action::Repair { .. } => "repair",
            Action::Run { .. } => "run",
            Action::Snapshots => "list",
            Action::Restore { .. } => "restore",
            Action::Forget { .. } => "forget",
            Action::Prune => "prune",
            Action::Drill { .. } => "drill",
            Action::Check { .. } => "check",
        }
    }
}

/// A repository error as the command line reports it: damage exits 4.
fn fail(e: rampart_backup::Error) -> CliError {
    match e {
        rampart_backup::Error::Damaged(_)
        | rampart_backup::Error::MissingBlob(_)
        | rampart_backup::Error::MissingPack(_)
        | rampart_backup::Error::Rollback(_) => CliError::Tampered(e.to_string()),
        e => CliError::Other(e.to_string()),
    }
}

/// Where this client keeps its record of the newest snapshots it wrote or
/// saw in each repository (docs/backup-format.md, "Heads: rollback and
/// deletion").
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backup-heads")
}

/// Opens the repository at `location`, with this client's record of it
/// kept under `data_dir`.
fn open(location: &str, password: &[u8], data_dir: &Path) -> Result<Repository, CliError> {
    let mut r = Repository::open(rampart_backup::backend::open(location).map_err(fail)?, password).map_err(fail)?;
    r.set_state_dir(&state_dir(data_dir));
    Ok(r)
}

/// Prints what went wrong without stopping the work.
fn print_warnings(r: &Repository) {
    for w in r.take_warnings() {
        eprintln!("warning: {w}");
    }
}

/// Runs the command; on success, a one-line summary for the audit event.
fn execute(
    args: BackupArgs,
    location: &str,
    password: &Zeroizing<Vec<u8>>,
    data_dir: &Path,
) -> Result<(ExitCode, String), CliError> {
    let backend = || rampart_backup::backend::open(location).map_err(fail);
    let open_here = || open(location, password, data_dir);
    let open_other = |location: &str| open(location, password, data_dir);
    let json = args.json;
    // Prints the text for people, or the value with --json.
    let say = |text: &str, value: serde_json::Value| {
        if json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    let summary;
    match args.action {
        Action::Copy { to } => {
            let r = open_here()?;
            let mut dest = open_other(&to)?;
            let copied = r.copy_to(&mut dest).map_err(fail)?;
            print_warnings(&dest);
            summary = format!("copied {} snapshot(s) to {to}", copied.len());
            say(&summary, serde_json::json!({"copied": copied, "to": to}));
        }
        Action::Repair { from } => {
            let r = open_here()?;
            let other = open_other(&from)?;
            let repaired = r.repair_from(&other).map_err(fail)?;
            summary = format!("repaired {} pack(s) from {from}: {}", repaired.len(), repaired.join(" "));
            say(&summary, serde_json::json!({"repaired": repaired, "from": from}));
        }
        Action::Init { from_repo: Some(from) } => {
            let src = open_other(&from)?;
            let r = Repository::init_copy_of(backend()?, password, &src).map_err(fail)?;
            summary = format!("created repository {} (a copy of {from})", r.config().id);
            say(
                &format!("{summary} at {location}"),
                serde_json::json!({"repository": r.config().id, "location": location, "copy_of": from}),
            );
        }
        Action::Init { from_repo: None } => {
            let r = Repository::init(backend()?, password).map_err(fail)?;
            summary = format!("created repository {}", r.config().id);
            say(
                &format!("{summary} at {location}"),
                serde_json::json!({"repository": r.config().id, "location": location}),
            );
        }
        Action::Run { paths, postgres, stdin, sqlite, tag, exclude, job: _ } => {
            let mut r = open_here()?;
            r.set_excludes(&exclude).map_err(fail)?;
            if let Some(p) = progress::line("backed up", None) {
                r.set_progress(p);
            }
            let start = Instant::now();
            let (id, snap) = if let Some(db) = &postgres {
                sources::postgres(&mut r, db, &tag)?
            } else if let Some(db) = &sqlite {
                sources::sqlite(&mut r, db, &tag)?
            } else if let Some(name) = &stdin {
                r.backup_stream(name, std::io::stdin().lock(), "stdin", &tag, || Ok(())).map_err(fail)?
            } else {
                r.backup(&paths, &tag).map_err(fail)?
            };
            progress::clear();
            print_warnings(&r);
            let s = &snap.summary;
            summary = format!("snapshot {id}: {} files, {} bytes, {} new bytes", s.files, s.bytes, s.new_bytes);
            if args.json {
                println!("{}", serde_json::json!({"snapshot": id, "summary": s}));
            } else {
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "snapshot {} saved: {} files, {} dirs, {:.1} MiB ({} files read, {:.1} MiB new) in {secs:.2} s ({:.0} MiB/s)",
                    &id[..8],
                    s.files,
                    s.dirs,
                    s.bytes as f64 / 1048576.0,
                    s.files_read,
                    s.new_bytes as f64 / 1048576.0,
                    s.bytes as f64 / 1048576.0 / secs.max(1e-9)
                );
            }
        }
        Action::Snapshots => {
            let r = open_here()?;
            let all = r.snapshots().map_err(fail)?;
            summary = format!("{} snapshots listed", all.len());
            if args.json {
                let list: Vec<_> = all.iter().map(|(id, s)| serde_json::json!({"id": id, "snapshot": s})).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!("{:<10} {:<22} {:<12} paths", "id", "time (UTC)", "host");
                for (id, s) in &all {
                    let when = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(s.time);
                    let when = humantime::format_rfc3339_seconds(when).to_string();
                    println!("{:<10} {:<22} {:<12} {}", &id[..8], when, s.hostname, s.paths.join(" "));
                }
                println!("{} snapshots", all.len());
            }
        }
        Action::Restore { snapshot, target, include } => {
            let mut r = open_here()?;
            let total = r.snapshot(&snapshot).ok().map(|(_, s)| s.summary.bytes);
            if let Some(p) = progress::line("restored", total) {
                r.set_progress(p);
            }
            let start = Instant::now();
            let done = r.restore_selected(&snapshot, &target, &include);
            progress::clear();
            print_warnings(&r);
            let done = done.map_err(fail)?;
            summary = format!(
                "snapshot {snapshot} restored to {}: {} files, {} bytes",
                target.display(),
                done.files,
                done.bytes
            );
            let secs = start.elapsed().as_secs_f64();
            say(
                &format!(
                    "restored {} files, {:.1} MiB, every byte verified, in {secs:.2} s ({:.0} MiB/s) to {}",
                    done.files,
                    done.bytes as f64 / 1048576.0,
                    done.bytes as f64 / 1048576.0 / secs.max(1e-9),
                    target.display()
                ),
                serde_json::json!({"snapshot": snapshot, "target": target, "files": done.files, "bytes": done.bytes,
                    "verified": true, "seconds": secs}),
            );
        }
        Action::Forget { keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, prune } => {
            let mut r = open_here()?;
            let policy = rampart_backup::repo::KeepPolicy {
                last: keep_last,
                hourly: keep_hourly,
                daily: keep_daily,
                weekly: keep_weekly,
                monthly: keep_monthly,
                yearly: keep_yearly,
            };
            let removed = r.forget(&policy).map_err(fail)?;
            print_warnings(&r);
            let mut text = format!("removed {} snapshot(s)", removed.len());
            let mut value = serde_json::json!({"removed": removed});
            if prune {
                let p = r.prune().map_err(fail)?;
                text.push_str(&format!("\n{}", prune_text(&p)));
                value["prune"] = prune_json(&p);
            }
            say(&text, value);
            summary = format!("removed snapshots: {}", removed.join(" "));
        }
        Action::Prune => {
            let mut r = open_here()?;
            let p = r.prune().map_err(fail)?;
            summary = prune_text(&p);
            say(&summary, prune_json(&p));
        }
        Action::Drill { scratch, job: _ } => {
            let r = open_here()?;
            let report = drill::run(&r, scratch, |_| true)?;
            say(&report.text(), serde_json::to_value(&report).unwrap_or_default());
            summary = serde_json::to_string(&report).unwrap_or_default();
        }
        Action::Check { read_data } => {
            let r = open_here()?;
            let problems = r.check(read_data).map_err(fail)?;
            print_warnings(&r);
            if json {
                println!("{}", serde_json::json!({"read_data": read_data, "problems": problems}));
            }
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                return Err(CliError::Tampered(format!("{} problem(s) found", problems.len())));
            }
            summary = format!("no problems found{}", if read_data { " (all data read and verified)" } else { "" });
            if !json {
                println!("{summary}");
            }
        }
    }
    Ok((ExitCode::SUCCESS, summary))
}

fn prune_text(p: &rampart_backup::repo::Pruned) -> String {
    format!(
        "pruned: {} pack(s) deleted, {} repacked, {:.1} MiB of unused data removed",
        p.packs_deleted,
        p.packs_repacked,
        p.bytes_freed as f64 / 1048576.0
    )
}

fn prune_json(p: &rampart_backup::repo::Pruned) -> serde_json::Value {
    serde_json::json!({"packs_deleted": p.packs_deleted, "packs_repacked": p.packs_repacked, "bytes_freed": p.bytes_freed})
}

/// The repository password: `--password-file`'s first line, else
/// RAMPART_BACKUP_PASSWORD, else the first line of the configuration's
/// `backup.password_file`.
pub fn password(file: Option<&Path>, config: &rampart_core::Config) -> Result<Zeroizing<Vec<u8>>, CliError> {
    if let Some(f) = file {
        return password_file(f);
    }
    match std::env::var_os("RAMPART_BACKUP_PASSWORD") {
        Some(p) if !p.is_empty() => Ok(Zeroizing::new(p.into_encoded_bytes())),
        _ => match &config.backup.password_file {
            Some(f) => password_file(f),
            None => Err(CliError::Other(
                "no repository password: set RAMPART_BACKUP_PASSWORD, pass --password-file FILE or set \
                 backup.password_file"
                    .into(),
            )),
        },
    }
}

fn password_file(f: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let text = Zeroizing::new(std::fs::read(f).map_err(|e| CliError::Other(format!("{}: {e}", f.display())))?);
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(CliError::Other(format!("{}: the password file is empty", f.display())));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

/// `run --job NAME`: the job's snapshot into every one of its targets; a
/// target that fails is reported (and recorded) and the others still get
/// their snapshot. `drill --job NAME`: a drill of every target.
fn run_job(args: &BackupArgs, config: &rampart_core::Config, name: &str, task: &str) -> Result<ExitCode, CliError> {
    let job = config
        .backup
        .jobs
        .get(name)
        .ok_or_else(|| CliError::Other(format!("no backup job {name:?} in the configuration (backup.jobs)")))?;
    let password = password(args.password_file.as_deref(), config)?;
    let data_dir = config.data_dir();
    let record = |e| super::record_event(&data_dir, e);
    let outcome = if task == "drill" {
        job::drill(name, job, &password, &data_dir, &record)
    } else {
        job::backup(name, job, &password, false, &data_dir, &record)
    };
    for t in &outcome.0 {
        match (&t.result, args.json) {
            (Ok(text), false) => println!("{}: {text}", t.target),
            (Ok(text), true) => println!("{}", serde_json::json!({"target": t.target, "ok": true, "message": text})),
            (Err(e), json) => {
                if json {
                    println!("{}", serde_json::json!({"target": t.target, "ok": false, "error": e.to_string()}));
                }
                eprintln!("{}: {task} failed: {e}", t.target);
            }
        }
    }
    let failures = outcome.failures();
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Other(format!(
            "job {name}: {} of {} target(s) failed: {}",
            failures.len(),
            job.targets.len(),
            failures.join("; ")
        )))
    }
}
