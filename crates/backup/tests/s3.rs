//! A repository in S3-compatible object storage, against a real S3 server
//! (moto's server mode) started for the test.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

#[path = "support/s3_server.rs"]
mod s3_server;

use rampart_backup::backend;
use rampart_backup::repo::{KeepPolicy, Repository};
use s3_server::S3Server;

const PASSWORD: &[u8] = b"test password, not a real one";

fn tree(root: &std::path::Path, seed: u8) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("small.txt"), format!("small {seed}\n")).unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed).collect();
    std::fs::write(root.join("sub/big.bin"), big).unwrap();
}

#[test]
fn backup_restore_check_and_prune_in_s3() {
    let server = S3Server::start();
    server.bucket("backups");
    let location = server.location("backups", "team/app");
    let src = tempfile::tempdir().unwrap();
    tree(src.path(), 1);

    let mut repo = Repository::init(backend::open(&location).unwrap(), PASSWORD).unwrap();
    // A second init at the same place is refused.
    assert!(Repository::init(backend::open(&location).unwrap(), PASSWORD).is_err());
    let (first, _) = repo.backup(&[src.path().to_path_buf()], &[]).unwrap();
    tree(src.path(), 2);
    let (second, snap) = repo.backup(&[src.path().to_path_buf()], &[]).unwrap();
    assert_eq!(snap.parent.as_deref(), Some(first.as_str()));

    // Reopened from the bucket: restore, every byte checked.
    let repo = Repository::open(backend::open(&location).unwrap(), PASSWORD).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    let out = tempfile::tempdir().unwrap();
    let done = repo.restore(&second, out.path()).unwrap();
    assert_eq!(done.files, 2);
    let name = src.path().file_name().unwrap();
    assert_eq!(std::fs::read(out.path().join(name).join("sub/big.bin")).unwrap(), {
        std::fs::read(src.path().join("sub/big.bin")).unwrap()
    });
    assert!(repo.check(true).unwrap().is_empty());

    // Retention and prune in the bucket.
    let mut repo = repo;
    let removed = repo.forget(&KeepPolicy { last: 1, ..Default::default() }).unwrap();
    assert_eq!(removed, vec![first]);
    let pruned = repo.prune().unwrap();
    assert!(pruned.bytes_freed > 0);
    let repo = Repository::open(backend::open(&location).unwrap(), PASSWORD).unwrap();
    assert!(repo.check(true).unwrap().is_empty());

    // The objects sit under the prefix, with the format's names.
    let raw = backend::open(&location).unwrap();
    let names = raw.list("").unwrap();
    assert!(names.iter().any(|n| n == "config"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("data/")), "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with("team/")), "{names:?}");
    assert!(!raw.exists("locks/none").unwrap());
}

#[test]
fn a_vanished_server_is_an_error_that_names_it() {
    let mut server = S3Server::start();
    server.bucket("gone");
    let location = server.location("gone", "");
    let mut repo = Repository::init(backend::open(&location).unwrap(), PASSWORD).unwrap();
    let src = tempfile::tempdir().unwrap();
    tree(src.path(), 3);
    server.kill();
    let err = repo.backup(&[src.path().to_path_buf()], &[]).unwrap_err().to_string();
    assert!(err.contains(&server.addr.to_string()), "{err}");
}

/// A directory repository and its copy in S3: `copy` brings the copy up
/// to date, and `repair` takes a damaged pack back from it.
#[test]
fn a_copy_in_s3_is_kept_in_step_and_repairs_the_original() {
    let server = S3Server::start();
    server.bucket("copies");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src, 4);
    let local = tmp.path().join("repo");
    let mut repo = Repository::init(backend::open(local.to_str().unwrap()).unwrap(), PASSWORD).unwrap();
    let (id, _) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    let remote = server.location("copies", "offsite");
    let mut copy = Repository::init_copy_of(backend::open(&remote).unwrap(), PASSWORD, &repo).unwrap();
    assert_eq!(repo.copy_to(&mut copy).unwrap(), vec![id.clone()]);
    assert!(repo.copy_to(&mut copy).unwrap().is_empty(), "nothing new to copy");

    // A flipped bit in a local pack: check names it, repair fixes it from S3.
    let pack = walk(&local.join("data")).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    assert!(!repo.check(true).unwrap().is_empty());
    let repaired = repo.repair_from(&copy).unwrap();
    assert_eq!(repaired.len(), 1);
    assert!(repo.check(true).unwrap().is_empty());
    let out = tmp.path().join("out");
    Repository::open(backend::open(&remote).unwrap(), PASSWORD).unwrap().restore(&id, &out).unwrap();
    assert_eq!(std::fs::read(out.join("src/sub/big.bin")).unwrap(), std::fs::read(src.join("sub/big.bin")).unwrap());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}
