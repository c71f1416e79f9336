//! Verification of a tampered log always ends, and always with the first
//! failure (issue 10, point 6: the parallel readers used to block forever
//! in `send` once the consumer had stopped at an early failure, so
//! `rampart audit verify` hung on about half the runs).
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rampart_audit::format::{self, HEADER_LEN};
use rampart_audit::verify::{verify, Failure, Report};
use rampart_audit::{segment, AuditLog, Keys, Options};
use rampart_core::{Event, Outcome};

/// How long one verification of this small log may take before the test
/// calls it hung (it takes milliseconds; the margin is for a loaded CI).
const DEADLINE: Duration = Duration::from_secs(30);
/// Runs per tamper class: the hang depended on thread timing.
const RUNS: usize = 20;

/// A log of many small segments, so that several segments after the
/// damaged one are loaded (and queued) when the check stops.
fn many_segments() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log =
        AuditLog::open_with(dir.path(), Options { segment_max_bytes: 1500, sth_every_events: 3, ..Options::default() })
            .unwrap();
    for i in 0..240 {
        let e = Event::new("web", "request-rejected").outcome(Outcome::Failure).reason(format!("test {i}")).status(400);
        log.append(e).unwrap();
    }
    log.flush();
    drop(log);
    assert!(segment::list(&dir.path().join("audit")).len() >= 30);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Verifies on another thread; panics if it does not finish in time.
fn verify_in_time(audit: &Path) -> Result<Report, Failure> {
    let (tx, rx) = mpsc::channel();
    let dir: PathBuf = audit.to_path_buf();
    std::thread::spawn(move || {
        let keys = Keys::load_or_create(&dir).unwrap();
        let _ = tx.send(verify(&dir, Some(&keys), &keys.public_key(), None));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r,
        Err(_) => panic!("verification of {} did not finish within {DEADLINE:?}: hung", audit.display()),
    }
}

/// Records of a segment: (offset, length, type).
fn records(b: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while let Ok(Some(r)) = format::decode_record(&b[pos..]) {
        out.push((pos, r.len, r.kind));
        pos += r.len;
    }
    out
}

/// The first two event records of a segment.
fn two_events(b: &[u8]) -> ((usize, usize), (usize, usize)) {
    let ev: Vec<_> = records(b).into_iter().filter(|r| r.2 == format::TYPE_EVENT).map(|r| (r.0, r.1)).collect();
    assert!(ev.len() >= 2, "segment has too few events for the test");
    (ev[0], ev[1])
}

fn tamper(audit: &Path, class: &str) {
    let path = |n: u64| segment::segment_path(audit, n);
    let read = |n: u64| std::fs::read(path(n)).unwrap();
    match class {
        "flipped byte" => {
            let mut b = read(2);
            let ((o, _), _) = two_events(&b);
            b[o + 20] ^= 0x01;
            std::fs::write(path(2), b).unwrap();
        }
        "deleted middle segment" => std::fs::remove_file(path(3)).unwrap(),
        "swapped segments" => {
            let (a, b) = (read(2), read(3));
            std::fs::write(path(2), b).unwrap();
            std::fs::write(path(3), a).unwrap();
        }
        "swapped records" | "removed record" | "duplicated record" => {
            let b = read(2);
            let ((o1, l1), (o2, l2)) = two_events(&b);
            let (e1, e2) = (&b[o1..o1 + l1], &b[o2..o2 + l2]);
            let middle: &[u8] = match class {
                "swapped records" => &[e2, e1].concat(),
                "removed record" => e2,
                _ => &[e1, e1, e2].concat(),
            };
            std::fs::write(path(2), [&b[..o1], middle, &b[o2 + l2..]].concat()).unwrap();
        }
        other => unreachable!("{other}"),
    }
}

#[test]
fn verification_of_a_tampered_log_always_ends_with_the_first_failure() {
    let pristine = many_segments();
    assert!(verify_in_time(&pristine.path().join("audit")).is_ok());
    for class in [
        "flipped byte",
        "deleted middle segment",
        "swapped segments",
        "swapped records",
        "removed record",
        "duplicated record",
    ] {
        for run in 0..RUNS {
            let dir = tempfile::tempdir().unwrap();
            let audit = dir.path().join("audit");
            copy_dir(&pristine.path().join("audit"), &audit);
            tamper(&audit, class);
            let e = verify_in_time(&audit).err().unwrap_or_else(|| panic!("{class}, run {run}: verified"));
            // The first failure: in the damaged segment, never a later one.
            let expected = if class == "deleted middle segment" { 4 } else { 2 };
            assert_eq!(e.segment, Some(expected), "{class}, run {run}: {e}");
        }
    }
}
