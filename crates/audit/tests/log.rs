//! The audit log end to end: durability, verification, every kind of
//! tampering, crash recovery (kill -9 in a loop), retention and proofs.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_audit::format::{self, Header, HEADER_LEN};
use rampart_audit::merkle;
use rampart_audit::verify::{check_exported, verify, verify_with, Failure, SavedHead};
use rampart_audit::{read, segment, AuditLog, Keys, Options};
use rampart_core::{Event, Outcome};

fn event(i: usize) -> Event {
    Event::new("web", "request-rejected").outcome(Outcome::Failure).reason(format!("test {i}")).status(400)
}

fn write_log(dir: &Path, n: usize, opts: Options) {
    let log = AuditLog::open_with(dir, opts).unwrap();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    log.flush();
}

fn check(dir: &Path) -> Result<rampart_audit::verify::Report, Failure> {
    let audit = dir.join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    verify(&audit, Some(&keys), &keys.public_key(), None)
}

/// Records of a segment: (offset, length, type).
fn records(path: &Path) -> Vec<(usize, usize, u8)> {
    let b = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while let Ok(Some(r)) = format::decode_record(&b[pos..]) {
        out.push((pos, r.len, r.kind));
        pos += r.len;
    }
    out
}

/// Recomputes the checksum of the record at `o` (length `l`), as an
/// attacker who knows the format would after altering it.
fn fix_crc(b: &mut [u8], o: usize, l: usize) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[o + 4..o + l - 4]);
    let c = crc.finalize().to_be_bytes();
    b[o + l - 4..o + l].copy_from_slice(&c);
}

fn seg(dir: &Path, n: u64) -> std::path::PathBuf {
    segment::segment_path(&dir.join("audit"), n)
}

fn small_segments() -> Options {
    Options { segment_max_bytes: 2000, sth_every_events: 5, ..Options::default() }
}

#[test]
fn appended_events_are_durable_readable_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 25, small_segments());
    let report = check(dir.path()).unwrap();
    assert_eq!(report.tree_size, 25);
    assert!(report.segments > 2, "{report:?}");
    assert!(report.heads >= 5);
    // Reopening continues the same tree.
    write_log(dir.path(), 5, small_segments());
    assert_eq!(check(dir.path()).unwrap().tree_size, 30);
    let keys = Keys::load_or_create(&dir.path().join("audit")).unwrap();
    let events = read::all_events(&dir.path().join("audit"), &keys);
    assert_eq!(events.len(), 30);
    assert_eq!(events[7]["event"]["reason"], "test 7");
    // Encrypted at rest: no plaintext in any segment.
    for n in segment::list(&dir.path().join("audit")) {
        let b = std::fs::read(seg(dir.path(), n)).unwrap();
        assert!(!b.windows(13).any(|w| w == b"request-rejec"), "plaintext in segment {n}");
    }
}

#[test]
fn a_flipped_byte_is_reported_with_segment_record_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, Options { sth_every_events: 100, ..Options::default() });
    let path = seg(dir.path(), 1);
    let recs = records(&path);
    let (off, _, kind) = recs[3];
    assert_eq!(kind, 1);
    let mut b = std::fs::read(&path).unwrap();
    b[off + 20] ^= 0x01;
    std::fs::write(&path, &b).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert_eq!((e.segment, e.record, e.offset), (Some(1), Some(3), Some(off as u64)));
    assert!(e.to_string().contains("checksum"), "{e}");

    // The same flip with the checksum recomputed: the event no longer
    // decrypts at its position.
    let body_len = u32::from_be_bytes(b[off..off + 4].try_into().unwrap()) as usize;
    fix_crc(&mut b, off, 9 + body_len);
    std::fs::write(&path, &b).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert_eq!((e.record, e.offset), (Some(3), Some(off as u64)));
    assert!(e.message.contains("does not decrypt"), "{e}");
}

fn rewrite(path: &Path, f: impl FnOnce(&[u8], &[(usize, usize, u8)]) -> Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    let recs = records(path);
    std::fs::write(path, f(&b, &recs)).unwrap();
}

#[test]
fn deleted_inserted_and_reordered_events_are_caught() {
    for case in ["delete", "insert", "reorder"] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 10, Options { sth_every_events: 100, ..Options::default() });
        let path = seg(dir.path(), 1);
        rewrite(&path, |b, recs| {
            let (o2, l2, _) = recs[2];
            let (o3, l3, _) = recs[3];
            let mut out = b[..o2].to_vec();
            match case {
                "delete" => out.extend_from_slice(&b[o3..]),
                "insert" => {
                    out.extend_from_slice(&b[o2..o2 + l2]);
                    out.extend_from_slice(&b[o3..o3 + l3]);
                    out.extend_from_slice(&b[o3..]);
                }
                _ => {
                    out.extend_from_slice(&b[o3..o3 + l3]);
                    out.extend_from_slice(&b[o2..o2 + l2]);
                    out.extend_from_slice(&b[o3 + l3..]);
                }
            }
            out
        });
        let e = check(dir.path()).unwrap_err();
        assert_eq!(e.segment, Some(1), "{case}: {e}");
        assert!(matches!(e.record, Some(2..=4)), "{case}: {e}");
        assert!(e.message.contains("altered, inserted or moved"), "{case}: {e}");
    }
}

#[test]
fn without_encryption_the_signed_heads_catch_changes() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, Options { encrypt: false, sth_every_events: 4, ..Options::default() });
    let path = seg(dir.path(), 1);
    // Alter the text of event 1 and fix its checksum.
    rewrite(&path, |b, recs| {
        let mut out = b.to_vec();
        let (o, l, _) = *recs.iter().filter(|r| r.2 == format::TYPE_EVENT).nth(1).unwrap();
        let body = &mut out[o + 5..o + l - 4];
        let pos = body.windows(6).position(|w| w == b"test 1").unwrap();
        body[pos + 5] = b'9';
        fix_crc(&mut out, o, l);
        out
    });
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("leaf hash does not match the signed head"), "{e}");
    assert!(e.message.contains("between index 0 and 4"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, Options { encrypt: false, sth_every_events: 4, ..Options::default() });
    let path = seg(dir.path(), 1);
    rewrite(&path, |b, recs| {
        let (o, l, _) = recs[1];
        [&b[..o], &b[o + l..]].concat()
    });
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("covers 4 events but 3 precede it"), "{e}");
}

#[test]
fn truncation_swapped_and_missing_segments_are_caught() {
    // A closed segment cut short loses its seal.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, small_segments());
    let path = seg(dir.path(), 1);
    let recs = records(&path);
    let (o, _, _) = recs[recs.len() - 1];
    let b = std::fs::read(&path).unwrap();
    std::fs::write(&path, &b[..o]).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("no seal") || e.message.contains("events precede it"), "{e}");

    // A segment removed from the middle.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, small_segments());
    std::fs::remove_file(seg(dir.path(), 2)).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("segment 0000000000000002 is missing"), "{e}");

    // A segment from another log, renamed into place.
    let other = tempfile::tempdir().unwrap();
    write_log(other.path(), 30, small_segments());
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, small_segments());
    std::fs::copy(seg(other.path(), 2), seg(dir.path(), 2)).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert_eq!(e.segment, Some(2));
    assert!(e.message.contains("another log"), "{e}");
}

#[test]
fn a_truncated_tail_is_caught_against_an_exported_head() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, Options { sth_every_events: 5, ..Options::default() });
    let audit = dir.path().join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    let exported = check(dir.path()).unwrap().last_head.unwrap();
    assert_eq!(exported.tree_size, 20);
    // Cut the last segment back to its 10th event's head, cleanly.
    let n = *segment::list(&audit).last().unwrap();
    let path = seg(dir.path(), n);
    let mut sizes = Vec::new();
    let b = std::fs::read(&path).unwrap();
    let header = Header::decode(&b).unwrap();
    segment::scan(&b, &header, Some(&keys), |item| {
        if let segment::Item::Head { offset, head, .. } = item {
            sizes.push((head.tree_size, offset));
        }
        true
    });
    let _ = sizes;
    // Simplest clean cut: drop the last segment entirely (the previous one
    // is sealed, so the log alone still verifies).
    let segs = segment::list(&audit);
    if segs.len() > 1 {
        std::fs::remove_file(&path).unwrap();
    } else {
        let recs = records(&path);
        let cut = recs.iter().filter(|r| r.2 == 2).nth(1).map(|r| r.0 + r.1).unwrap();
        std::fs::write(&path, &b[..cut]).unwrap();
    }
    // The saved head catches it by itself...
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("the saved head (head.json) covers 20"), "{e}");
    // ...and so does the exported head, without it.
    let mut leaves = Vec::new();
    let report = verify_with(&audit, Some(&keys), &keys.public_key(), Some(&mut leaves), SavedHead::Ignored).unwrap();
    assert!(report.tree_size < 20);
    let e = check_exported(&audit, &exported, &keys.public_key(), &report, &leaves).unwrap_err();
    assert!(e.message.contains("truncated"), "{e}");
}

#[test]
fn a_torn_tail_is_cut_on_reopen_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 8, Options::default());
    let n = *segment::list(&dir.path().join("audit")).last().unwrap();
    let path = seg(dir.path(), n);
    let mut b = std::fs::read(&path).unwrap();
    b.extend_from_slice(&[0, 0, 1, 0, 1, 0xde, 0xad]); // a record cut mid-body
    std::fs::write(&path, &b).unwrap();
    write_log(dir.path(), 2, Options::default());
    let report = check(dir.path()).unwrap();
    assert_eq!(report.tree_size, 10);
}

/// The child side of the kill -9 test: appends durable events forever and
/// prints the number acknowledged after each.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("RAMPART_AUDIT_CRASH_DIR") else { return };
    let log = AuditLog::open_with(Path::new(&dir), Options { sth_every_events: 50, ..Options::default() }).unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        log.append(event(i)).unwrap();
        use std::io::Write;
        let _ = writeln!(out, "{}", i + 1);
        let _ = out.flush();
    }
}

#[test]
fn kill_9_in_a_loop_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_total = 0u64;
    for round in 0..8 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env("RAMPART_AUDIT_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(n) = line.trim().parse::<u64>() {
                    last = n;
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(150 + 37 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked_total += reader.join().unwrap();
        let report = check(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            report.tree_size >= acked_total,
            "round {round}: {} events, {acked_total} acknowledged",
            report.tree_size
        );
        // Reopen after the crash: the log is whole and writable again.
        let log = AuditLog::open(dir.path()).unwrap();
        drop(log);
        // Unacknowledged events may be there too; count from what exists.
        acked_total = check(dir.path()).unwrap().tree_size;
    }
    assert!(acked_total > 100, "the child wrote too little to mean anything: {acked_total}");
}

#[test]
fn inclusion_and_consistency_proofs_check_against_signed_heads() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12, Options::default());
    let audit = dir.path().join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    let old = check(dir.path()).unwrap().last_head.unwrap();
    write_log(dir.path(), 9, Options::default());
    let new = check(dir.path()).unwrap().last_head.unwrap();
    let (base, leaves) = read::leaves(&audit, &keys);
    assert_eq!(base, 0);
    assert_eq!(leaves.len(), 21);
    let p = merkle::inclusion_proof(&leaves, 5);
    assert!(merkle::verify_inclusion(&leaves[5], 5, 21, &p, &new.root));
    let c = merkle::consistency_proof(&leaves, old.tree_size as usize);
    assert!(merkle::verify_consistency(old.tree_size, new.tree_size, &old.root, &new.root, &c));
}

#[test]
fn retention_removes_old_segments_and_what_remains_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { retention_max_bytes: Some(5000), ..small_segments() };
    write_log(dir.path(), 60, opts.clone());
    // Retention runs at each rotation and when the log opens.
    write_log(dir.path(), 1, opts);
    let audit = dir.path().join("audit");
    assert!(audit.join("base.json").exists());
    assert!(segment::list(&audit)[0] > 1);
    let report = check(dir.path()).unwrap();
    assert_eq!(report.tree_size, 61);
    assert!(report.base_size > 0);
    let keys = Keys::load_or_create(&audit).unwrap();
    let events = read::all_events(&audit, &keys);
    assert_eq!(events.len() as u64, 61 - report.base_size);
    // Proofs for the remaining events still check against the signed head.
    let head = report.last_head.clone().unwrap();
    let base = rampart_audit::retention::read_base(&audit).unwrap().unwrap().frontier().unwrap();
    let (_, leaves) = read::leaves(&audit, &keys);
    let tree = merkle::Partial::new(&base, &leaves);
    let i = report.base_size + 3;
    let p = tree.inclusion_proof(i, head.tree_size).unwrap();
    assert!(merkle::verify_inclusion(&leaves[3], i, head.tree_size, &p, &head.root));
    // Tampering with the base is caught.
    let base = std::fs::read_to_string(audit.join("base.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["frontier"][0] = serde_json::json!("00".repeat(32));
    std::fs::write(audit.join("base.json"), v.to_string()).unwrap();
    assert!(check(dir.path()).unwrap_err().message.contains("base.json"));
}

/// Writes the frozen fixture of the current format version into
/// `tests/data/vN` (run once per version, by hand:
/// `RAMPART_WRITE_FIXTURE=1 cargo test -p rampart-audit --test log write_fixture`).
#[test]
fn write_fixture() {
    if std::env::var("RAMPART_WRITE_FIXTURE").is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { encrypt: false, sth_every_events: 4, segment_max_bytes: 1500, ..Options::default() };
    write_log(dir.path(), 12, opts);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/v{}", format::VERSION));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("segments")).unwrap();
    std::fs::create_dir_all(out.join("keys")).unwrap();
    let audit = dir.path().join("audit");
    for n in segment::list(&audit) {
        std::fs::copy(segment::segment_path(&audit, n), out.join(format!("segments/{n:016x}.seg"))).unwrap();
    }
    std::fs::copy(audit.join("keys/signing.pub"), out.join("keys/signing.pub")).unwrap();
    std::fs::copy(audit.join("head.json"), out.join("head.json")).unwrap();
}

fn fixture_copy(version: u16) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/v{version}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("segments")).unwrap();
    for e in std::fs::read_dir(src.join("segments")).unwrap().flatten() {
        std::fs::copy(e.path(), dir.path().join("segments").join(e.file_name())).unwrap();
    }
    if src.join("head.json").exists() {
        std::fs::copy(src.join("head.json"), dir.path().join("head.json")).unwrap();
    }
    dir
}

#[test]
fn the_frozen_version_1_log_still_verifies_and_its_tampered_copy_does_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1");
    let public = rampart_audit::keys::read_public_key(&src).expect("fixture public key");
    let dir = fixture_copy(1);
    // A version 1 log has no saved head: only a copy of its segments.
    let report = verify_with(dir.path(), None, &public, None, SavedHead::Ignored).unwrap();
    assert_eq!(report.tree_size, 12);
    // The tampered copy: one byte of an event changed (checksum recomputed).
    let path = dir.path().join("segments/0000000000000001.seg");
    rewrite(&path, |b, recs| {
        let mut out = b.to_vec();
        let (o, l, _) = recs[0];
        let body = &mut out[o + 5..o + l - 4];
        let pos = body.windows(6).position(|w| w == b"test 0").unwrap();
        body[pos + 5] = b'7';
        fix_crc(&mut out, o, l);
        out
    });
    let e = verify_with(dir.path(), None, &public, None, SavedHead::Ignored).unwrap_err();
    assert!(e.message.contains("leaf hash does not match the signed head"), "{e}");
    assert_eq!(e.segment, Some(1));
}

#[test]
fn damage_before_the_tail_is_refused_on_reopen_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, Options { sth_every_events: 3, ..Options::default() });
    let n = *segment::list(&dir.path().join("audit")).last().unwrap();
    let path = seg(dir.path(), n);
    let recs = records(&path);
    let before = std::fs::read(&path).unwrap();
    let mut b = before.clone();
    b[recs[2].0 + 12] ^= 0x40;
    std::fs::write(&path, &b).unwrap();
    let err = AuditLog::open(dir.path()).err().expect("refused").to_string();
    assert!(err.contains("records follow it"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b, "nothing was cut");
}

/// Random damage to a segment never panics the readers: verify reports,
/// recovery refuses or cuts, reading stops.
#[test]
fn random_damage_never_panics_the_readers() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, Options { sth_every_events: 7, ..Options::default() });
    let audit = dir.path().join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    let n = segment::list(&audit)[0];
    let path = seg(dir.path(), n);
    let original = std::fs::read(&path).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    for round in 0..300 {
        let mut b = original.clone();
        match round % 3 {
            0 => {
                for _ in 0..rng.usize(1..8) {
                    let i = rng.usize(..b.len());
                    b[i] = rng.u8(..);
                }
            }
            1 => b.truncate(rng.usize(..b.len())),
            _ => {
                let i = rng.usize(..b.len());
                b.splice(i..i, (0..rng.usize(1..40)).map(|_| rng.u8(..)));
            }
        }
        std::fs::write(&path, &b).unwrap();
        let _ = verify(&audit, Some(&keys), &keys.public_key(), None);
        let _ = read::all_events(&audit, &keys);
        let header = format::Header::decode(&b);
        if let Ok(h) = header {
            let _ = segment::check_segment(&b, &h, Some(&keys), 2);
            let _ = segment::check_segment_stream(&b[..], Some(&keys), &mut Vec::new(), b.len() as u64);
        }
    }
    std::fs::write(&path, &original).unwrap();
    assert!(check(dir.path()).is_ok());
}

/// Every file the log creates is its owner's only (0600), every directory
/// 0700, the data directory included when the log creates it (issue 10,
/// point 15): keys, segments, indexes (also rebuilt ones), the lock, the
/// saved head, sink cursors and a sink's output file.
#[cfg(unix)]
#[test]
fn files_are_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt;
    fn walk(p: &Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
        let m = std::fs::metadata(p).unwrap();
        out.push((p.to_path_buf(), m.permissions().mode() & 0o777, m.is_dir()));
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                walk(&e.path(), out);
            }
        }
    }
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("new/data");
    write_log(&data, 30, small_segments());
    let audit = data.join("audit");
    // An index rebuilt on reopen.
    std::fs::remove_file(segment::index_path(&audit, 1)).unwrap();
    write_log(&data, 1, small_segments());
    assert!(segment::index_path(&audit, 1).exists());
    let out = top.path().join("events.jsonl");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sink =
        rampart_audit::sink::Sink { name: "file".into(), target: rampart_audit::sink::Target::File(out.clone()) };
    rampart_audit::sink::spawn(&audit, vec![sink], stop.clone()).unwrap();
    let start = std::time::Instant::now();
    while !rampart_audit::sink::cursor_path(&audit, "file").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the sink delivered nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    walk(&top.path().join("new"), &mut seen);
    walk(&out, &mut seen);
    let wrong: Vec<_> = seen
        .iter()
        .filter(|(_, mode, dir)| *mode != if *dir { 0o700 } else { 0o600 })
        .map(|(p, mode, _)| format!("{} {mode:o}", p.display()))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(seen.len() > 10, "{seen:?}");
}

#[test]
fn the_frozen_version_2_log_still_verifies_and_its_tampered_copies_do_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2");
    let public = rampart_audit::keys::read_public_key(&src).expect("fixture public key");
    let dir = fixture_copy(2);
    let report = verify(dir.path(), None, &public, None).unwrap();
    assert_eq!(report.tree_size, 12);
    assert_eq!(report.saved_head.map(|h| h.tree_size), Some(12));
    // One byte of an event changed (checksum recomputed).
    let path = dir.path().join("segments/0000000000000001.seg");
    let original = std::fs::read(&path).unwrap();
    rewrite(&path, |b, recs| {
        let mut out = b.to_vec();
        let (o, l, _) = *recs.iter().find(|r| r.2 == format::TYPE_EVENT).unwrap();
        let body = &mut out[o + 5..o + l - 4];
        let pos = body.windows(6).position(|w| w == b"test 0").unwrap();
        body[pos + 5] = b'7';
        fix_crc(&mut out, o, l);
        out
    });
    let e = verify(dir.path(), None, &public, None).unwrap_err();
    assert!(e.message.contains("leaf hash does not match the signed head"), "{e}");
    // The newest segment removed.
    std::fs::write(&path, original).unwrap();
    let last = segment::list(dir.path()).pop().unwrap();
    std::fs::remove_file(segment::segment_path(dir.path(), last)).unwrap();
    let e = verify(dir.path(), None, &public, None).unwrap_err();
    assert!(e.message.contains("saved head (head.json) covers 12"), "{e}");
}
