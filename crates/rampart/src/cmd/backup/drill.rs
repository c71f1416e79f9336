//! Restore drills: the latest snapshot restored into scratch space and
//! verified (every byte against its chunk id; a PostgreSQL dump restored
//! into a scratch database and queried), with the recovery time and the
//! snapshot's age (the recovery point) measured.

use std::path::PathBuf;
use std::time::Instant;

use rampart_backup::repo::{Repository, Snapshot};
use serde::Serialize;

use crate::cmd::CliError;

/// What a drill found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The snapshot restored.
    pub snapshot: String,
    /// Its source (`files`, `postgres:app`, ...).
    pub source: String,
    /// Files restored (1 for a database dump).
    pub files: u64,
    /// Bytes restored, every one verified.
    pub bytes: u64,
    /// Tables found in the restored database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    /// Always true in a report: a failed verification is an error.
    pub verified: bool,
    /// How long the restore and its checks took.
    pub recovery_time_ms: u64,
    /// How old the snapshot was: the data a disaster now would lose.
    pub snapshot_age_s: u64,
}

impl Report {
    /// One line for people.
    pub fn text(&self) -> String {
        let what = match self.tables {
            Some(t) => format!("restored into a scratch database ({t} tables)"),
            None => format!("restored and verified ({} files, {:.1} MiB)", self.files, self.bytes as f64 / 1048576.0),
        };
        format!(
            "drill passed: snapshot {} {what} in {:.2} s; recovery point {} s old",
            &self.snapshot[..8.min(self.snapshot.len())],
            self.recovery_time_ms as f64 / 1000.0,
            self.snapshot_age_s
        )
    }
}

fn age_s(snap: &Snapshot) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    now.saturating_sub(snap.time) / 1_000_000_000
}

/// Drills the latest snapshot of `r` that `select` accepts (into
/// `scratch`, else a private temporary directory removed afterwards).
pub fn run(r: &Repository, scratch: Option<PathBuf>, select: impl Fn(&Snapshot) -> bool) -> Result<Report, CliError> {
    // The latest snapshot must be the latest written: not after a deletion
    // or a rollback (docs/backup-format.md, "Heads: rollback and deletion").
    let problems = r.verify_heads().map_err(super::fail)?;
    if !problems.is_empty() {
        return Err(CliError::Tampered(format!(
            "no drill: the latest snapshot here may not be the latest written: {}",
            problems.join("; ")
        )));
    }
    let (id, snap) = r
        .snapshots()
        .map_err(super::fail)?
        .into_iter()
        .rev()
        .find(|(_, s)| select(s))
        .ok_or_else(|| CliError::Other("no snapshot to drill".into()))?;
    if let Some(db) = snap.source.strip_prefix("postgres:") {
        return postgres(r, &id, &snap, db);
    }
    // A directory of our own (mode 0700), unless one is given.
    let temp;
    let dir = match scratch {
        Some(d) => d,
        None => {
            temp = private_temp_dir("rampart-drill-")?;
            temp.path().join("restore")
        }
    };
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(CliError::Other(format!("{}: the scratch directory is not empty", dir.display())));
    }
    let start = Instant::now();
    let restored = r.restore(&id, &dir);
    let rto = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let done = restored.map_err(super::fail)?;
    Ok(Report {
        snapshot: id,
        source: snap.source.clone(),
        files: done.files,
        bytes: done.bytes,
        tables: None,
        verified: true,
        recovery_time_ms: rto.as_millis() as u64,
        snapshot_age_s: age_s(&snap),
    })
}

/// A PostgreSQL drill: the dump restored with pg_restore into a scratch
/// database, a check query run, the database dropped.
fn postgres(r: &Repository, id: &str, snap: &Snapshot, db: &str) -> Result<Report, CliError> {
    let start = Instant::now();
    let scratch = format!("rampart_drill_{}_{}", std::process::id(), &id[..8]);
    let temp = private_temp_dir("rampart-drill-")?;
    let dump = temp.path().join(format!("{scratch}.pgdump"));
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
        let bytes = r.restore_stream(id, &format!("{db}.pgdump"), &mut f).map_err(super::fail)?;
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
    Ok(Report {
        snapshot: id.to_string(),
        source: snap.source.clone(),
        files: 1,
        bytes,
        tables: Some(tables.parse().unwrap_or(0)),
        verified: true,
        recovery_time_ms: start.elapsed().as_millis() as u64,
        snapshot_age_s: age_s(snap),
    })
}

/// A new temporary directory only this user can enter, removed on drop.
pub fn private_temp_dir(prefix: &str) -> Result<tempfile::TempDir, CliError> {
    tempfile::Builder::new().prefix(prefix).tempdir().map_err(|e| CliError::Other(format!("temporary directory: {e}")))
}
