//! `rampart audit verify` against tampered logs, as a user runs it (issue
//! 10, points 6 and 9): it always ends, with exit 4 and the first failure;
//! removing the newest segments or the whole log, a zeroed `signing.pub`
//! and an altered segment creation time are failures, not "ok".
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use rampart_audit::format::{Header, HEADER_LEN};
use rampart_audit::{segment, AuditLog, Options};
use rampart_core::Event;

mod common;
use common::rampart;

/// A data directory holding a log of many small segments.
fn data_dir_with_log(events: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with(
        &dir.path().join("data"),
        Options { segment_max_bytes: 1500, sth_every_events: 3, ..Options::default() },
    )
    .unwrap();
    for i in 0..events {
        log.append(Event::new("web", "request-rejected").reason(format!("test {i}"))).unwrap();
    }
    log.flush();
    dir
}

fn audit_dir(dir: &Path) -> PathBuf {
    dir.join("data/audit")
}

/// Runs `rampart audit ARGS` on the data directory; fails the test if it
/// does not end within a minute (it takes milliseconds).
fn audit(dir: &Path, args: &[&str]) -> Output {
    let mut child = rampart()
        .current_dir(dir)
        .arg("audit")
        .args(args)
        .args(["--data-dir", "data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rampart audit {args:?} did not end within a minute: hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_tampered(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{what}: {out:?}");
    assert!(err.contains("verification failed"), "{what}: {err}");
}

#[test]
fn verify_on_a_tampered_log_always_exits_4_and_never_hangs() {
    let dir = data_dir_with_log(200);
    let seg = |n: u64| segment::segment_path(&audit_dir(dir.path()), n);
    assert!(segment::list(&audit_dir(dir.path())).len() >= 20);
    let ok = audit(dir.path(), &["verify"]);
    assert!(ok.status.success(), "{ok:?}");
    let original = std::fs::read(seg(2)).unwrap();
    let mut flipped = original.clone();
    flipped[HEADER_LEN + 120] ^= 0x01;
    std::fs::write(seg(2), &flipped).unwrap();
    for run in 0..20 {
        let out = audit(dir.path(), &["verify"]);
        assert_tampered(&out, &format!("flipped byte, run {run}"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("audit segment 0000000000000002.seg"), "{out:?}");
    }
    std::fs::write(seg(2), &original).unwrap();
    std::fs::rename(seg(3), dir.path().join("aside.seg")).unwrap();
    for run in 0..20 {
        assert_tampered(&audit(dir.path(), &["verify"]), &format!("deleted middle segment, run {run}"));
    }
}

#[test]
fn verify_says_what_it_checked_against() {
    let dir = data_dir_with_log(10);
    let out = audit(dir.path(), &["verify"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("checked against the head saved in the data directory (tree size 10)"), "{text}");
    assert!(text.contains("--head"), "{text}");
    let help = rampart().args(["audit", "verify", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("older copy of the whole log"), "{help}");
}

#[test]
fn removing_the_newest_segments_or_the_whole_log_exits_4() {
    let dir = data_dir_with_log(60);
    let audit_path = audit_dir(dir.path());
    let all = segment::list(&audit_path);
    for n in &all[all.len() - 2..] {
        std::fs::remove_file(segment::segment_path(&audit_path, *n)).unwrap();
    }
    let out = audit(dir.path(), &["verify"]);
    assert_tampered(&out, "newest segments removed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("covers 60"), "{out:?}");
    for n in segment::list(&audit_path) {
        std::fs::remove_file(segment::segment_path(&audit_path, n)).unwrap();
    }
    assert_tampered(&audit(dir.path(), &["verify"]), "whole log removed");
    let _ = std::fs::remove_file(audit_path.join("head.json"));
    assert_tampered(&audit(dir.path(), &["verify"]), "whole log and its saved head removed");
}

#[test]
fn a_zeroed_signing_pub_exits_4() {
    let dir = data_dir_with_log(10);
    let public = audit_dir(dir.path()).join("keys/signing.pub");
    std::fs::write(&public, "00".repeat(32) + "\n").unwrap();
    let out = audit(dir.path(), &["verify"]);
    assert_tampered(&out, "zeroed signing.pub");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signing.pub"), "{out:?}");
    std::fs::remove_file(&public).unwrap();
    assert_tampered(&audit(dir.path(), &["verify"]), "signing.pub removed");
    assert!(!public.exists(), "verify must not recreate the key it checks with");
}

#[test]
fn an_altered_segment_creation_time_exits_4() {
    let dir = data_dir_with_log(30);
    let path = segment::segment_path(&audit_dir(dir.path()), 1);
    let mut b = std::fs::read(&path).unwrap();
    let mut h = Header::decode(&b).unwrap();
    h.created_ms = 1;
    b[..HEADER_LEN].copy_from_slice(&h.encode());
    std::fs::write(&path, b).unwrap();
    let out = audit(dir.path(), &["verify"]);
    assert_tampered(&out, "created_ms altered");
    assert!(String::from_utf8_lossy(&out.stderr).contains("header signature is invalid"), "{out:?}");
}

/// A read of the log recorded while another process writes it goes to the
/// inbox as a file only its owner can read.
#[cfg(unix)]
#[test]
fn inbox_files_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = data_dir_with_log(3);
    let audit_path = audit_dir(dir.path());
    // Holding the writer's lock, as a running `rampart serve` does.
    let lock = std::fs::File::options().write(true).open(audit_path.join("LOCK")).unwrap();
    lock.try_lock().unwrap();
    let out = audit(dir.path(), &["search", "--since", "1h"]);
    assert!(out.status.success(), "{out:?}");
    let files: Vec<_> = std::fs::read_dir(audit_path.join("inbox")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
}
