//! What a verification without an exported head catches (issue 10, point
//! 9): the newest segments or the whole log removed (against the head the
//! writer saved in `head.json`), an unusable public key, and a segment
//! header altered (its creation time is signed since format version 2).
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::Path;

use rampart_audit::format::{self, Header, HEADER_LEN};
use rampart_audit::verify::{verify, Failure, Report};
use rampart_audit::{head, segment, AuditLog, Keys, Options};
use rampart_core::Event;

fn write_log(dir: &Path, n: usize) {
    let log = AuditLog::open_with(dir, Options { segment_max_bytes: 2000, sth_every_events: 5, ..Options::default() })
        .unwrap();
    for i in 0..n {
        log.append(Event::new("web", "request-rejected").reason(format!("test {i}"))).unwrap();
    }
    log.flush();
}

fn check(dir: &Path) -> Result<Report, Failure> {
    let audit = dir.join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    verify(&audit, Some(&keys), &keys.public_key(), None)
}

fn segments(dir: &Path) -> Vec<u64> {
    segment::list(&dir.join("audit"))
}

fn seg(dir: &Path, n: u64) -> std::path::PathBuf {
    segment::segment_path(&dir.join("audit"), n)
}

#[test]
fn the_writer_saves_every_head_it_signs() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 23);
    let report = check(dir.path()).unwrap();
    let saved = head::read(&dir.path().join("audit")).unwrap().unwrap();
    assert_eq!(saved.tree_size, 23);
    assert_eq!(Some(&saved), report.last_head.as_ref());
    assert_eq!(report.saved_head, Some(saved));
    // A new, empty log has one too: the head of the empty tree.
    let empty = tempfile::tempdir().unwrap();
    drop(AuditLog::open(empty.path()).unwrap());
    assert_eq!(head::read(&empty.path().join("audit")).unwrap().unwrap().tree_size, 0);
    assert_eq!(check(empty.path()).unwrap().tree_size, 0);
}

#[test]
fn removing_the_newest_segments_is_caught_without_an_exported_head() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let all = segments(dir.path());
    assert!(all.len() > 3);
    // The newest two: what is left is sealed and verifies by itself.
    for n in &all[all.len() - 2..] {
        std::fs::remove_file(seg(dir.path(), *n)).unwrap();
    }
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("but the saved head (head.json) covers 40"), "{e}");
}

#[test]
fn removing_the_whole_log_or_its_saved_head_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    for n in segments(dir.path()) {
        std::fs::remove_file(seg(dir.path(), n)).unwrap();
        let _ = std::fs::remove_file(segment::index_path(&dir.path().join("audit"), n));
    }
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("no segment left"), "{e}");
    std::fs::remove_file(head::path(&dir.path().join("audit"))).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("no saved head (head.json)"), "{e}");

    // The saved head alone removed, the log intact: still not "ok".
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    std::fs::remove_file(head::path(&dir.path().join("audit"))).unwrap();
    assert!(check(dir.path()).unwrap_err().message.contains("no saved head"));
}

#[test]
fn a_saved_head_that_the_log_does_not_extend_is_caught() {
    // A log rewritten from event 3 on (here: another log's events, signed
    // with the same key) no longer hashes to the saved head.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 12);
    let audit = dir.path().join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    let saved = head::read(&audit).unwrap().unwrap();
    let forged = keys.sign(saved.tree_size, saved.timestamp_ms, [7; 32]);
    head::save(&audit, &forged).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("do not hash to the saved head"), "{e}");
    // A head that is not signed by the log's key.
    let mut unsigned = saved.clone();
    unsigned.signature[0] ^= 1;
    head::save(&audit, &unsigned).unwrap();
    assert!(check(dir.path()).unwrap_err().message.contains("signature of the saved head is invalid"));
    head::save(&audit, &saved).unwrap();
    assert!(check(dir.path()).is_ok());
}

#[test]
fn the_writer_refuses_to_continue_a_log_shorter_than_its_saved_head() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let audit = dir.path().join("audit");
    let before = std::fs::read(head::path(&audit)).unwrap();
    let last = *segments(dir.path()).last().unwrap();
    std::fs::remove_file(seg(dir.path(), last)).unwrap();
    std::fs::remove_file(seg(dir.path(), last - 1)).unwrap();
    let err = AuditLog::open(dir.path()).err().expect("refused").to_string();
    assert!(err.contains("covers 40") && err.contains("refusing to continue"), "{err}");
    // The evidence is kept: the saved head was not replaced by one of the
    // shortened log.
    assert_eq!(std::fs::read(head::path(&audit)).unwrap(), before);
    assert!(check(dir.path()).is_err());
}

#[test]
fn an_unusable_or_mismatched_public_key_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let audit = dir.path().join("audit");
    let keys = Keys::load_or_create(&audit).unwrap();
    for bad in [[0u8; 32], {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        identity
    }] {
        let e = verify(&audit, None, &bad, None).unwrap_err();
        assert!(e.message.contains("not a valid Ed25519 key"), "{e}");
    }
    let other = Keys::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
    let e = verify(&audit, Some(&keys), &other.public_key(), None).unwrap_err();
    assert!(e.message.contains("not the key of keys/signing.key"), "{e}");
}

/// Sets the creation time of a segment's header, as someone who wants
/// retention to remove it early (or never) would.
fn set_created_ms(path: &Path, ms: u64) {
    let mut b = std::fs::read(path).unwrap();
    let mut h = Header::decode(&b).unwrap();
    h.created_ms = ms;
    b[..HEADER_LEN].copy_from_slice(&h.encode());
    std::fs::write(path, b).unwrap();
}

#[test]
fn an_altered_segment_creation_time_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    set_created_ms(&seg(dir.path(), 2), 1);
    let e = check(dir.path()).unwrap_err();
    assert_eq!((e.segment, e.record), (Some(2), Some(0)), "{e}");
    assert!(e.message.contains("header signature is invalid"), "{e}");

    // Nor does retention believe it: the oldest segment, said to be decades
    // old, is kept.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    set_created_ms(&seg(dir.path(), 1), 1);
    let opts = Options { retention_max_age: Some(std::time::Duration::from_secs(3600)), ..Options::default() };
    drop(AuditLog::open_with(dir.path(), opts).unwrap());
    assert!(seg(dir.path(), 1).exists());
    assert!(!dir.path().join("audit/base.json").exists());
}

#[test]
fn a_segment_rewritten_as_version_1_is_caught() {
    // Dropping the header signature by calling the segment version 1.
    let downgrade = |path: &Path| {
        let b = std::fs::read(path).unwrap();
        let mut h = Header::decode(&b).unwrap();
        let sig = format::decode_record(&b[HEADER_LEN..]).unwrap().unwrap();
        assert_eq!(sig.kind, format::TYPE_HEADER_SIG);
        h.version = 1;
        h.created_ms = 1;
        std::fs::write(path, [&h.encode()[..], &b[HEADER_LEN + sig.len..]].concat()).unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    downgrade(&seg(dir.path(), 2));
    let e = check(dir.path()).unwrap_err();
    assert_eq!(e.segment, Some(2), "{e}");
    assert!(e.message.contains("format version 1 after a segment of version 2"), "{e}");

    // Every segment: the saved head says the log was written as version 2.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    for n in segments(dir.path()) {
        downgrade(&seg(dir.path(), n));
    }
    let e = check(dir.path()).unwrap_err();
    assert!(e.message.contains("rewritten as an older version"), "{e}");
}

#[test]
fn a_version_2_segment_without_its_header_signature_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    let path = seg(dir.path(), 2);
    let b = std::fs::read(&path).unwrap();
    let sig = format::decode_record(&b[HEADER_LEN..]).unwrap().unwrap();
    std::fs::write(&path, [&b[..HEADER_LEN], &b[HEADER_LEN + sig.len..]].concat()).unwrap();
    let e = check(dir.path()).unwrap_err();
    assert_eq!((e.segment, e.record), (Some(2), Some(0)), "{e}");
    assert!(e.message.contains("header signature is missing"), "{e}");
}
