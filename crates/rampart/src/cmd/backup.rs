//! `rampart backup`: encrypted, deduplicated backups in the repository
//! format of docs/backup-format.md, with restic's command habits.
//!
//! The password comes from `RAMPART_BACKUP_PASSWORD` or `--password-file`,
//! never from an argument (arguments show in process listings).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use rampart_backup::backend::LocalDir;
use rampart_backup::repo::Repository;
use zeroize::Zeroizing;

use super::{CliError, ConfigArgs};

/// Encrypted, deduplicated backups.
///
/// Exit status: 0 done, 1 failed (the message says why), 4 the repository
/// is damaged (check names the pack).
#[derive(Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    action: Action,
    /// The repository (a directory)
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
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
        #[arg(long, value_name = "DIR")]
        from_repo: Option<PathBuf>,
    },
    /// Copy the snapshots a copy lacks, with their packs, into it
    Copy {
        /// The copy (made with `init --from-repo`)
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Replace missing or damaged packs with the same packs from a copy
    Repair {
        /// A copy holding the same packs
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
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
    },
    /// Check the repository's structure; with --read-data, every byte
    Check {
        /// Read, decrypt and verify every pack
        #[arg(long)]
        read_data: bool,
    },
}

pub fn run(args: BackupArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    if let Action::Run { job: Some(name), .. } = &args.action {
        return run_job(&args, &config, name);
    }
    let repo_dir = args.repo.clone().ok_or_else(|| CliError::Other("--repo DIR is required".into()))?;
    // Every operation, and every failure, is an audit event.
    let data_dir = config.data_dir();
    let operation = args.action.name();
    let result = execute(args, &repo_dir);
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let mut event = rampart_core::Event::new("file", format!("backup-{operation}"))
        .label("backup.repository", repo_dir.display().to_string())
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

/// Runs the command; on success, a one-line summary for the audit event.
fn execute(args: BackupArgs, repo_dir: &Path) -> Result<(ExitCode, String), CliError> {
    let repo_dir = repo_dir.to_path_buf();
    let password = password(args.password_file.as_deref())?;
    let backend = Box::new(LocalDir::new(&repo_dir));
    let fail = |e: rampart_backup::Error| match e {
        rampart_backup::Error::Damaged(_) | rampart_backup::Error::MissingBlob(_) => CliError::Tampered(e.to_string()),
        e => CliError::Other(e.to_string()),
    };
    let summary;
    match args.action {
        Action::Copy { to } => {
            let r = Repository::open(backend, &password).map_err(fail)?;
            let mut dest = Repository::open(Box::new(LocalDir::new(&to)), &password).map_err(fail)?;
            let copied = r.copy_to(&mut dest).map_err(fail)?;
            summary = format!("copied {} snapshot(s) to {}", copied.len(), to.display());
            println!("{summary}");
        }
        Action::Repair { from } => {
            let r = Repository::open(backend, &password).map_err(fail)?;
            let other = Repository::open(Box::new(LocalDir::new(&from)), &password).map_err(fail)?;
            let repaired = r.repair_from(&other).map_err(fail)?;
            summary = format!("repaired {} pack(s) from {}: {}", repaired.len(), from.display(), repaired.join(" "));
            println!("{summary}");
        }
        Action::Init { from_repo: Some(from) } => {
            let src = Repository::open(Box::new(LocalDir::new(&from)), &password).map_err(fail)?;
            let r = Repository::init_copy_of(backend, &password, &src).map_err(fail)?;
            summary = format!("created repository {} (a copy of {})", r.config().id, from.display());
            println!("{summary} at {}", repo_dir.display());
        }
        Action::Init { from_repo: None } => {
            let r = Repository::init(backend, &password).map_err(fail)?;
            summary = format!("created repository {}", r.config().id);
            println!("{summary} at {}", repo_dir.display());
        }
        Action::Run { paths, postgres, stdin, sqlite, tag, exclude, job: _ } => {
            let mut r = Repository::open(backend, &password).map_err(fail)?;
            r.set_excludes(&exclude).map_err(fail)?;
            if let Some(p) = progress_line("backed up", None) {
                r.set_progress(p);
            }
            let start = Instant::now();
            let (id, snap) = if let Some(db) = &postgres {
                backup_postgres(&mut r, db, &tag)?
            } else if let Some(db) = &sqlite {
                backup_sqlite(&mut r, db, &tag)?
            } else if let Some(name) = &stdin {
                r.backup_stream(name, std::io::stdin().lock(), "stdin", &tag, || Ok(())).map_err(fail)?
            } else {
                r.backup(&paths, &tag).map_err(fail)?
            };
            clear_progress();
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
            let r = Repository::open(backend, &password).map_err(fail)?;
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
        Action::Restore { snapshot, target } => {
            let mut r = Repository::open(backend, &password).map_err(fail)?;
            let total = r.snapshot(&snapshot).ok().map(|(_, s)| s.summary.bytes);
            if let Some(p) = progress_line("restored", total) {
                r.set_progress(p);
            }
            let start = Instant::now();
            let done = r.restore(&snapshot, &target);
            clear_progress();
            let done = done.map_err(fail)?;
            summary = format!(
                "snapshot {snapshot} restored to {}: {} files, {} bytes",
                target.display(),
                done.files,
                done.bytes
            );
            let secs = start.elapsed().as_secs_f64();
            println!(
                "restored {} files, {:.1} MiB, every byte verified, in {secs:.2} s ({:.0} MiB/s) to {}",
                done.files,
                done.bytes as f64 / 1048576.0,
                done.bytes as f64 / 1048576.0 / secs.max(1e-9),
                target.display()
            );
        }
        Action::Forget { keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, prune } => {
            let mut r = Repository::open(backend, &password).map_err(fail)?;
            let policy = rampart_backup::repo::KeepPolicy {
                last: keep_last,
                hourly: keep_hourly,
                daily: keep_daily,
                weekly: keep_weekly,
                monthly: keep_monthly,
                yearly: keep_yearly,
            };
            let removed = r.forget(&policy).map_err(fail)?;
            println!("removed {} snapshot(s)", removed.len());
            let mut text = format!("removed snapshots: {}", removed.join(" "));
            if prune {
                text.push_str("; ");
                text.push_str(&report_prune(&r.prune().map_err(fail)?));
            }
            summary = text;
        }
        Action::Prune => {
            let mut r = Repository::open(backend, &password).map_err(fail)?;
            summary = report_prune(&r.prune().map_err(fail)?);
        }
        Action::Drill { scratch } => {
            let r = Repository::open(backend, &password).map_err(fail)?;
            let (id, snap) = r.snapshot("latest").map_err(fail)?;
            if let Some(db) = snap.source.strip_prefix("postgres:") {
                summary = drill_postgres(&r, &id, &snap, db, args.json)?;
                return Ok((ExitCode::SUCCESS, summary));
            }
            let dir = match scratch {
                Some(d) => d,
                None => std::env::temp_dir().join(format!("rampart-drill-{}-{}", std::process::id(), &id[..8])),
            };
            if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
                return Err(CliError::Other(format!("{}: the scratch directory is not empty", dir.display())));
            }
            let start = Instant::now();
            let restored = r.restore(&id, &dir);
            let rto = start.elapsed();
            let _ = std::fs::remove_dir_all(&dir);
            let done = restored.map_err(fail)?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            let age_s = now.saturating_sub(snap.time) / 1_000_000_000;
            let report = serde_json::json!({
                "snapshot": id,
                "files": done.files,
                "bytes": done.bytes,
                "verified": true,
                "recovery_time_ms": rto.as_millis() as u64,
                "snapshot_age_s": age_s,
            });
            summary = report.to_string();
            if args.json {
                println!("{report}");
            } else {
                println!(
                    "drill passed: snapshot {} restored and verified ({} files, {:.1} MiB) in {:.2} s; recovery point {} s old",
                    &id[..8],
                    done.files,
                    done.bytes as f64 / 1048576.0,
                    rto.as_secs_f64(),
                    age_s
                );
            }
        }
        Action::Check { read_data } => {
            let r = Repository::open(backend, &password).map_err(fail)?;
            let problems = r.check(read_data).map_err(fail)?;
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                return Err(CliError::Tampered(format!("{} problem(s) found", problems.len())));
            }
            summary = format!("no problems found{}", if read_data { " (all data read and verified)" } else { "" });
            println!("{summary}");
        }
    }
    Ok((ExitCode::SUCCESS, summary))
}

/// A progress line on standard error when it is a terminal: files, bytes,
/// rate and, when the total is known, the time left; redrawn at most ten
/// times a second.
fn progress_line(verb: &'static str, total: Option<u64>) -> Option<rampart_backup::repo::Progress> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let start = Instant::now();
    let mut last = Instant::now();
    Some(Box::new(move |files, bytes| {
        if last.elapsed().as_millis() < 100 {
            return;
        }
        last = Instant::now();
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        let rate = bytes as f64 / secs;
        let eta = match total {
            Some(t) if rate > 0.0 && t > bytes => format!(", {:.0} s left", (t - bytes) as f64 / rate),
            _ => String::new(),
        };
        eprint!("\r{verb} {files} files, {:.1} MiB, {:.0} MiB/s{eta}   ", bytes as f64 / 1048576.0, rate / 1048576.0);
    }))
}

/// Clears the progress line, if one was drawn.
fn clear_progress() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// Dumps database `db` with pg_dump into a new snapshot; a failed dump
/// writes none.
fn backup_postgres(
    r: &mut Repository,
    db: &str,
    tags: &[String],
) -> Result<(String, rampart_backup::repo::Snapshot), CliError> {
    let mut child = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--dbname", db])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| CliError::Other(format!("pg_dump: {e} (is the PostgreSQL client installed?)")))?;
    let out = child.stdout.take().ok_or_else(|| CliError::Other("pg_dump: no output".into()))?;
    let mut child_err = child.stderr.take();
    r.backup_stream(&format!("{db}.pgdump"), out, &format!("postgres:{db}"), tags, || {
        let status = child.wait().map_err(|e| rampart_backup::Error::Repository(format!("pg_dump: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let mut msg = String::new();
        if let Some(e) = child_err.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut msg);
        }
        Err(rampart_backup::Error::Repository(format!("pg_dump failed ({status}): {}", msg.trim())))
    })
    .map_err(|e| CliError::Other(e.to_string()))
}

/// Copies an SQLite database with the online backup API (through the
/// `sqlite3` tool, so a database in use is copied consistently) into
/// scratch space, then into a snapshot.
fn backup_sqlite(
    r: &mut Repository,
    db: &Path,
    tags: &[String],
) -> Result<(String, rampart_backup::repo::Snapshot), CliError> {
    // sqlite3 would create a missing database (and back up an empty one).
    if !db.is_file() {
        return Err(CliError::Other(format!("{}: no such SQLite database", db.display())));
    }
    let name = db.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "database.sqlite".into());
    let scratch = std::env::temp_dir().join(format!("rampart-sqlite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&scratch);
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(format!(".backup '{}'", scratch.display().to_string().replace('\'', "''")))
        .output()
        .map_err(|e| CliError::Other(format!("sqlite3: {e} (is the sqlite3 tool installed?)")))?;
    if !out.status.success() || !scratch.is_file() {
        let _ = std::fs::remove_file(&scratch);
        return Err(CliError::Other(format!(
            "sqlite3 backup of {} failed: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let file = std::fs::File::open(&scratch).map_err(|e| CliError::Other(format!("{}: {e}", scratch.display())));
    let result = file.and_then(|f| {
        r.backup_stream(&name, f, &format!("sqlite:{}", db.display()), tags, || Ok(()))
            .map_err(|e| CliError::Other(e.to_string()))
    });
    let _ = std::fs::remove_file(&scratch);
    result
}

/// `run --job NAME`: the job's snapshot into every one of its targets; a
/// target that fails is reported (and recorded) and the others still get
/// their snapshot.
fn run_job(args: &BackupArgs, config: &rampart_core::Config, name: &str) -> Result<ExitCode, CliError> {
    let job = config
        .backup
        .jobs
        .get(name)
        .ok_or_else(|| CliError::Other(format!("no backup job {name:?} in the configuration (backup.jobs)")))?;
    let password = password(args.password_file.as_deref())?;
    let data_dir = config.data_dir();
    let mut failures = Vec::new();
    for target in &job.targets {
        let result = (|| {
            let mut r = Repository::open(Box::new(LocalDir::new(target)), &password)
                .map_err(|e| CliError::Other(e.to_string()))?;
            r.set_excludes(&job.exclude).map_err(|e| CliError::Other(e.to_string()))?;
            match &job.postgres {
                Some(db) => backup_postgres(&mut r, db, &job.tags),
                None => r.backup(&job.paths, &job.tags).map_err(|e| CliError::Other(e.to_string())),
            }
        })();
        let mut event = rampart_core::Event::new("file", "backup-run")
            .label("backup.job", name.to_string())
            .label("backup.repository", target.display().to_string());
        match &result {
            Ok((id, snap)) => {
                println!(
                    "{}: snapshot {} saved ({} files, {} bytes)",
                    target.display(),
                    &id[..8],
                    snap.summary.files,
                    snap.summary.bytes
                );
                event = event.outcome(rampart_core::Outcome::Success).message(format!("snapshot {id}"));
            }
            Err(e) => {
                eprintln!("{}: backup failed: {e}", target.display());
                failures.push(format!("{}: {e}", target.display()));
                event = event.outcome(rampart_core::Outcome::Failure).reason(e.to_string());
            }
        }
        super::record_event(&data_dir, event);
    }
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

/// A PostgreSQL drill: the dump restored with pg_restore into a scratch
/// database, a check query run, the database dropped.
fn drill_postgres(
    r: &Repository,
    id: &str,
    snap: &rampart_backup::repo::Snapshot,
    db: &str,
    json: bool,
) -> Result<String, CliError> {
    let start = Instant::now();
    let scratch = format!("rampart_drill_{}", std::process::id());
    let dump = std::env::temp_dir().join(format!("{scratch}.pgdump"));
    let run = |cmd: &mut std::process::Command| -> Result<String, CliError> {
        let out = cmd.output().map_err(|e| CliError::Other(format!("{cmd:?}: {e}")))?;
        if !out.status.success() {
            return Err(CliError::Other(format!(
                "drill failed: {:?}: {}",
                cmd.get_program(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let result = (|| {
        let mut f = std::fs::File::create(&dump).map_err(|e| CliError::Other(format!("{}: {e}", dump.display())))?;
        let bytes =
            r.restore_stream(id, &format!("{db}.pgdump"), &mut f).map_err(|e| CliError::Tampered(e.to_string()))?;
        drop(f);
        run(std::process::Command::new("createdb").arg(&scratch))?;
        run(std::process::Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "--dbname", &scratch])
            .arg(&dump))?;
        let tables = run(std::process::Command::new("psql").args([
            "-tA",
            "--dbname",
            &scratch,
            "-c",
            "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        ]))?;
        Ok::<_, CliError>((bytes, tables))
    })();
    let _ = std::fs::remove_file(&dump);
    let _ = std::process::Command::new("dropdb").args(["--if-exists", &scratch]).output();
    let (bytes, tables) = result?;
    let rto = start.elapsed();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let age_s = now.saturating_sub(snap.time) / 1_000_000_000;
    let report = serde_json::json!({
        "snapshot": id,
        "source": snap.source,
        "bytes": bytes,
        "verified": true,
        "tables": tables.parse::<u64>().unwrap_or(0),
        "recovery_time_ms": rto.as_millis() as u64,
        "snapshot_age_s": age_s,
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "drill passed: database {db} from snapshot {} restored into a scratch database ({tables} tables) in {:.2} s; recovery point {age_s} s old",
            &id[..8],
            rto.as_secs_f64()
        );
    }
    Ok(report.to_string())
}

fn report_prune(p: &rampart_backup::repo::Pruned) -> String {
    let text = format!(
        "pruned: {} pack(s) deleted, {} repacked, {:.1} MiB of unused data removed",
        p.packs_deleted,
        p.packs_repacked,
        p.bytes_freed as f64 / 1048576.0
    );
    println!("{text}");
    text
}

/// The repository password: `--password-file`'s first line, or
/// RAMPART_BACKUP_PASSWORD.
fn password(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, CliError> {
    if let Some(f) = file {
        let text = Zeroizing::new(std::fs::read(f).map_err(|e| CliError::Other(format!("{}: {e}", f.display())))?);
        let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(CliError::Other(format!("{}: the password file is empty", f.display())));
        }
        return Ok(Zeroizing::new(line.to_vec()));
    }
    match std::env::var_os("RAMPART_BACKUP_PASSWORD") {
        Some(p) if !p.is_empty() => Ok(Zeroizing::new(p.into_encoded_bytes())),
        _ => Err(CliError::Other(
            "no repository password: set RAMPART_BACKUP_PASSWORD or pass --password-file FILE".into(),
        )),
    }
}
