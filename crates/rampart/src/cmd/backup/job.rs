//! Configured jobs (`[backup.jobs.NAME]`): a snapshot of the job's source
//! into every one of its targets, retention, and drills of every target.
//! Used by `rampart backup run --job` and by the schedules of
//! `rampart serve`; each target's outcome is an audit event, and a target
//! that fails never keeps the others from their snapshot.

use std::path::Path;

use rampart_backup::repo::{KeepPolicy, Repository};
use rampart_core::config::{BackupJob, Keep};
use rampart_core::{Event, Outcome};
use zeroize::Zeroizing;

use crate::cmd::CliError;

/// What happened at one target.
pub struct TargetOutcome {
    /// The repository location.
    pub target: String,
    /// A one-line summary, or why it failed.
    pub result: Result<String, CliError>,
}

/// Outcomes of a job, one per target.
pub struct JobOutcome(pub Vec<TargetOutcome>);

impl JobOutcome {
    /// The failures, as `target: reason`.
    pub fn failures(&self) -> Vec<String> {
        self.0.iter().filter_map(|t| t.result.as_ref().err().map(|e| format!("{}: {e}", t.target))).collect()
    }
}

fn open(target: &str, password: &[u8], data_dir: &Path) -> Result<Repository, CliError> {
    let backend = rampart_backup::backend::open(target).map_err(super::fail)?;
    let mut r = Repository::open(backend, password).map_err(super::fail)?;
    r.set_state_dir(&super::state_dir(data_dir));
    Ok(r)
}

/// Backs the job's source up into every target (and, with `retention`,
/// applies the job's `keep` policy afterwards). `data_dir` keeps this
/// client's record of each target's newest snapshots.
pub fn backup(
    name: &str,
    job: &BackupJob,
    password: &Zeroizing<Vec<u8>>,
    retention: bool,
    data_dir: &Path,
    record: &dyn Fn(Event),
) -> JobOutcome {
    let mut outcomes = Vec::new();
    for target in &job.targets {
        let result: Result<String, CliError> = (|| {
            let mut r = open(target, password, data_dir)?;
            r.set_excludes(&job.exclude).map_err(super::fail)?;
            let (id, snap) = if let Some(db) = &job.postgres {
                super::sources::postgres(&mut r, db, &job.tags)?
            } else if let Some(db) = &job.sqlite {
                super::sources::sqlite(&mut r, db, &job.tags)?
            } else {
                r.backup(&job.paths, &job.tags).map_err(super::fail)?
            };
            let mut text =
                format!("snapshot {} saved ({} files, {} bytes)", &id[..8], snap.summary.files, snap.summary.bytes);
            if let (true, Some(keep)) = (retention, &job.keep) {
                let removed = r.forget(&policy(keep)).map_err(super::fail)?;
                if !removed.is_empty() {
                    let p = r.prune().map_err(super::fail)?;
                    text.push_str(&format!(
                        "; retention removed {} snapshot(s), {:.1} MiB",
                        removed.len(),
                        p.bytes_freed as f64 / 1048576.0
                    ));
                }
            }
            for w in r.take_warnings() {
                text.push_str(&format!("; warning: {w}"));
            }
            Ok(text)
        })();
        let event = Event::new("file", "backup-run")
            .label("backup.job", name.to_string())
            .label("backup.repository", target.clone());
        record(match &result {
            Ok(text) => event.outcome(Outcome::Success).message(text.clone()),
            Err(e) => event.outcome(Outcome::Failure).reason(e.to_string()),
        });
        outcomes.push(TargetOutcome { target: target.clone(), result });
    }
    JobOutcome(outcomes)
}

/// Drills the latest snapshot in every target of the job.
pub fn drill(
    name: &str,
    job: &BackupJob,
    password: &Zeroizing<Vec<u8>>,
    data_dir: &Path,
    record: &dyn Fn(Event),
) -> JobOutcome {
    let mut outcomes = Vec::new();
    for target in &job.targets {
        let result = open(target, password, data_dir).and_then(|r| super::drill::run(&r, None, |s| of_job(job, s)));
        let event = Event::new("file", "backup-drill")
            .label("backup.job", name.to_string())
            .label("backup.repository", target.clone());
        record(match &result {
            Ok(report) => event
                .outcome(Outcome::Success)
                .label("backup.recovery_time_ms", report.recovery_time_ms.to_string())
                .label("backup.snapshot_age_s", report.snapshot_age_s.to_string())
                .message(report.text()),
            Err(e) => event.outcome(Outcome::Failure).reason(e.to_string()),
        });
        outcomes.push(TargetOutcome { target: target.clone(), result: result.map(|r| r.text()) });
    }
    JobOutcome(outcomes)
}

/// Whether snapshot `s` is one of `job`'s (its source, or its paths).
fn of_job(job: &BackupJob, s: &rampart_backup::repo::Snapshot) -> bool {
    if let Some(db) = &job.postgres {
        return s.source == format!("postgres:{db}");
    }
    if let Some(db) = &job.sqlite {
        return s.source == format!("sqlite:{}", db.display());
    }
    s.source == "files" && s.paths == job.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()
}

/// The repository's retention policy for a job's `keep`.
pub fn policy(k: &Keep) -> KeepPolicy {
    KeepPolicy {
        last: k.last,
        hourly: k.hourly,
        daily: k.daily,
        weekly: k.weekly,
        monthly: k.monthly,
        yearly: k.yearly,
    }
}
