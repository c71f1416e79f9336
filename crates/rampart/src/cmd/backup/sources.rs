//! Sources that are not plain directories: a PostgreSQL database (pg_dump
//! streamed in) and an SQLite database in use (copied with its online
//! backup API).

use std::path::Path;

use rampart_backup::repo::{Repository, Snapshot};

use crate::cmd::CliError;

/// Dumps database `db` with pg_dump into a new snapshot; a failed dump
/// writes none.
pub fn postgres(r: &mut Repository, db: &str, tags: &[String]) -> Result<(String, Snapshot), CliError> {
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
pub fn sqlite(r: &mut Repository, db: &Path, tags: &[String]) -> Result<(String, Snapshot), CliError> {
    // sqlite3 would create a missing database (and back up an empty one).
    if !db.is_file() {
        return Err(CliError::Other(format!("{}: no such SQLite database", db.display())));
    }
    let name = db.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "database.sqlite".into());
    let temp = super::drill::private_temp_dir("rampart-sqlite-")?;
    let scratch = temp.path().join(&name);
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
