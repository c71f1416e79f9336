//! A repository in a local directory: backup, incremental runs, restore
//! with every byte checked, wrong passwords, damaged packs.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rampart_backup::backend::LocalDir;
use rampart_backup::repo::Repository;
use rampart_backup::Error;

const PASSWORD: &[u8] = b"test password, not a real one";

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn dataset(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    std::fs::write(root.join("docs/a.txt"), b"hello backups\n").unwrap();
    std::fs::write(root.join("docs/deep/er/empty"), b"").unwrap();
    let big = pseudo_random(3 << 20, 7);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    // The same content again under another name: stored once.
    std::fs::write(root.join("copy.bin"), &big).unwrap();
    std::fs::write(root.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("script.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("docs/a.txt", root.join("link")).unwrap();
}

/// A temporary directory with the dataset in `src` and a new repository
/// in `repo`.
struct Setup {
    tmp: tempfile::TempDir,
    src: PathBuf,
    repo_dir: PathBuf,
    repo: Repository,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    dataset(&src);
    let repo_dir = tmp.path().join("repo");
    let repo = Repository::init(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    Setup { tmp, src, repo_dir, repo }
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.file_type().is_symlink() {
                out.push((rel, std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec(), 0));
            } else if m.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap(), m.permissions().mode() & 0o7777));
            }
        }
    }
    out.sort();
    out
}

fn repo_size(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                n += m.len();
            }
        }
    }
    n
}

#[test]
fn backup_restore_incremental_and_dedup() {
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    let (id1, s1) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert_eq!(s1.summary.files, 5);
    // The duplicated 3 MiB file is stored once.
    let size1 = repo_size(&repo_dir);
    assert!(size1 < 4 << 20, "{size1}");

    // Restore into an empty directory: the same tree, bytes and modes.
    let out = tmp.path().join("out");
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    let restored = r.restore(&id1[..8], &out).unwrap();
    assert_eq!(restored.files, 5);
    assert_eq!(files(&src), files(&out.join("src")));

    // Unchanged re-run: no file is read, no pack is written.
    let mut repo = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    let (_, s2) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert_eq!(s2.summary.files_read, 0);
    assert_eq!(s2.summary.new_blobs, 0);
    assert_eq!(s2.parent.as_deref(), Some(id1.as_str()));
    assert!(repo_size(&repo_dir) < size1 + 4096);

    // One file changed: only it is read, and only its new chunks stored.
    let mut big = std::fs::read(src.join("big.bin")).unwrap();
    big[1 << 20] ^= 0xff;
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let (id3, s3) = repo.backup(std::slice::from_ref(&src), &["daily".into()]).unwrap();
    assert_eq!(s3.summary.files_read, 1);
    assert!(s3.summary.new_bytes < 3 << 20, "{}", s3.summary.new_bytes);
    let out3 = tmp.path().join("out3");
    Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap().restore("latest", &out3).unwrap();
    assert_eq!(files(&src), files(&out3.join("src")));
    assert!(repo.check(true).unwrap().is_empty());
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 3);
    assert_eq!(snaps.last().unwrap().0, id3);
}

#[test]
fn wrong_password_second_init_and_damaged_packs() {
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert!(matches!(Repository::open(Box::new(LocalDir::new(&repo_dir)), b"guess"), Err(Error::WrongPassword)));
    let again = Repository::init(Box::new(LocalDir::new(&repo_dir)), PASSWORD).err().unwrap();
    assert!(again.to_string().contains("already exists"), "{again}");
    let none = Repository::open(Box::new(LocalDir::new(&tmp.path().join("nothing"))), PASSWORD).err().unwrap();
    assert!(none.to_string().contains("no repository here"), "{none}");

    // Flip one bit in the biggest pack: restore names the damaged pack and
    // writes nothing unchecked.
    let mut packs = Vec::new();
    let mut stack = vec![repo_dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                packs.push((e.metadata().unwrap().len(), e.path()));
            }
        }
    }
    packs.sort();
    let (_, victim) = packs.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    let problems = r.check(true).unwrap();
    let name0 = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(problems.iter().any(|p| p.starts_with(&format!("pack {name0}"))), "{problems:?}");
    let err = r.restore("latest", &tmp.path().join("out")).err().unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(matches!(err, Error::Damaged(_)) && err.to_string().contains(&name), "{err}");
}

#[test]
fn forget_and_prune_keep_what_snapshots_need() {
    use rampart_backup::repo::KeepPolicy;
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    // Three versions of a big file that then goes away.
    for seed in 1..=3u64 {
        std::fs::write(src.join("churn.bin"), pseudo_random(2 << 20, seed)).unwrap();
        repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    }
    std::fs::remove_file(src.join("churn.bin")).unwrap();
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    // Another series (other paths): the policy keeps its own newest too.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x"), b"x").unwrap();
    let (other_id, _) = repo.backup(std::slice::from_ref(&other), &[]).unwrap();
    let before = repo_size(&repo_dir);
    assert!(repo.forget(&KeepPolicy::default()).is_err(), "an empty policy is refused");
    let removed = repo.forget(&KeepPolicy { last: 1, ..Default::default() }).unwrap();
    assert_eq!(removed.len(), 4);
    let kept: Vec<String> = repo.snapshots().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.contains(&other_id));
    let old_indexes: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(repo_dir.join("index"))
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    let pruned = repo.prune().unwrap();
    assert!(pruned.bytes_freed >= 6 << 20, "{pruned:?}");
    let after = repo_size(&repo_dir);
    assert!(after + (6 << 20) <= before, "{before} -> {after}");
    // A crash between writing the new index and deleting the old ones
    // leaves both: the new one supersedes them, so nothing points at the
    // deleted packs.
    for (path, bytes) in &old_indexes {
        std::fs::write(path, bytes).unwrap();
    }
    // What is left restores exactly and checks clean, from a fresh open.
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    assert!(r.check(true).unwrap().is_empty());
    let out = tmp.path().join("out");
    let newest_of_src = kept.iter().find(|id| **id != other_id).unwrap();
    r.restore(newest_of_src, &out).unwrap();
    assert_eq!(files(&src), files(&out.join("src")));
    // A second prune has nothing to do.
    let mut r = r;
    let again = r.prune().unwrap();
    assert_eq!((again.packs_deleted, again.packs_repacked), (0, 0));
}

#[test]
fn excludes_leave_files_and_directories_out() {
    let Setup { tmp, src, mut repo, .. } = setup();
    std::fs::create_dir_all(src.join("node_modules/x")).unwrap();
    std::fs::write(src.join("node_modules/x/big.js"), b"junk").unwrap();
    std::fs::write(src.join("docs/scratch.tmp"), b"junk").unwrap();
    assert!(repo.set_excludes(&["[".into()]).is_err(), "a bad pattern is an error");
    repo.set_excludes(&["node_modules".into(), "*.tmp".into()]).unwrap();
    let (_, s) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert_eq!(s.summary.files, 5);
    let out = tmp.path().join("out");
    repo.restore("latest", &out).unwrap();
    assert!(!out.join("src/node_modules").exists() && !out.join("src/docs/scratch.tmp").exists());
    assert!(out.join("src/docs/a.txt").exists());
}

#[test]
fn copies_share_packs_and_repair_each_other() {
    let Setup { tmp, src, repo_dir: a_dir, repo: mut a } = setup();
    let b_dir = tmp.path().join("b");
    let (id, _) = a.backup(std::slice::from_ref(&src), &[]).unwrap();
    let mut b = Repository::init_copy_of(Box::new(LocalDir::new(&b_dir)), b"another password", &a).unwrap();
    assert_eq!(a.copy_to(&mut b).unwrap(), vec![id.clone()]);
    assert!(a.copy_to(&mut b).unwrap().is_empty(), "nothing left to copy");
    let out = tmp.path().join("from-b");
    Repository::open(Box::new(LocalDir::new(&b_dir)), b"another password").unwrap().restore(&id, &out).unwrap();
    assert_eq!(files(&src), files(&out.join("src")));
    // A repository that is not a copy is refused.
    let mut c = Repository::init(Box::new(LocalDir::new(&tmp.path().join("c"))), PASSWORD).unwrap();
    assert!(a.copy_to(&mut c).unwrap_err().to_string().contains("not a copy"));

    // Damage and delete packs of A: repair brings them back from B.
    let mut packs = Vec::new();
    let mut stack = vec![a_dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                packs.push(e.path());
            }
        }
    }
    let mut bytes = std::fs::read(&packs[0]).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(&packs[0], &bytes).unwrap();
    let a = Repository::open(Box::new(LocalDir::new(&a_dir)), PASSWORD).unwrap();
    assert!(!a.check(true).unwrap().is_empty());
    let repaired = a.repair_from(&b).unwrap();
    assert_eq!(repaired.len(), 1);
    assert!(a.check(true).unwrap().is_empty());
}

#[test]
fn locks_keep_prune_away_from_running_work() {
    let Setup { tmp: _tmp, src, repo_dir: dir, repo: mut a } = setup();
    a.backup(std::slice::from_ref(&src), &[]).unwrap();
    let mut b = Repository::open(Box::new(LocalDir::new(&dir)), PASSWORD).unwrap();
    {
        let _running = a.lock(false).unwrap();
        let err = b.prune().unwrap_err().to_string();
        assert!(err.contains("locked") && err.contains("pid"), "{err}");
        // Shared locks do not exclude each other.
        let _also = b.lock(false).unwrap();
    }
    // Released on drop: prune runs, and leaves no lock behind.
    b.prune().unwrap();
    assert_eq!(std::fs::read_dir(dir.join("locks")).map(|d| d.count()).unwrap_or(0), 0);
}

/// `dir/..` (or `.`, or `/`) has no name of its own: the snapshot names it
/// as the directory it is, and restores it.
#[test]
fn a_path_without_a_name_is_stored_under_the_directory_it_is() {
    let Setup { tmp, src, mut repo, .. } = setup();
    let (id, _) = repo.backup(&[src.join("docs").join("..")], &[]).unwrap();
    let out = tmp.path().join("out");
    repo.restore(&id, &out).unwrap();
    assert_eq!(files(&src), files(&out.join("src")));
}

/// A key file planted in the storage with absurd Argon2id parameters
/// (`t=4294967295` used to hang every command) neither hangs nor stops the
/// repository's own key opening it; with no usable key, its bounds are
/// the error.
#[test]
fn a_planted_key_file_with_absurd_parameters_is_refused() {
    let Setup { tmp, repo_dir, .. } = setup();
    let key = std::fs::read_dir(repo_dir.join("keys")).unwrap().next().unwrap().unwrap().path();
    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    file["t"] = serde_json::json!(u32::MAX);
    // Sorted first, so tried first.
    std::fs::write(repo_dir.join("keys/0000"), serde_json::to_vec(&file).unwrap()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = repo_dir.clone();
    std::thread::spawn(move || {
        let opened = Repository::open(Box::new(LocalDir::new(&dir)), PASSWORD).map(|_| ());
        let wrong = Repository::open(Box::new(LocalDir::new(&dir)), b"not it").err().map(|e| e.to_string());
        let _ = tx.send((opened.map_err(|e| e.to_string()), wrong));
    });
    let (opened, wrong) = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("no hang");
    assert_eq!(opened, Ok(()));
    let wrong = wrong.unwrap();
    assert!(wrong.contains("keys/0000") && wrong.contains("exceed the bounds"), "{wrong}");
    drop(tmp);
}

/// A deleted pack is damage, named: restore says which pack is missing
/// (the command line exits 4 for it, as docs/cli.md says).
#[test]
fn a_deleted_pack_is_reported_as_missing() {
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    let mut packs = Vec::new();
    let mut stack = vec![repo_dir.join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                packs.push((e.metadata().unwrap().len(), e.path()));
            }
        }
    }
    packs.sort();
    let (_, victim) = packs.last().unwrap();
    std::fs::remove_file(victim).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    let err = r.restore("latest", &tmp.path().join("out")).err().unwrap();
    assert!(matches!(&err, Error::MissingPack(p) if *p == name), "{err}");
    for read_data in [false, true] {
        let problems = r.check(read_data).unwrap();
        assert!(problems.iter().any(|p| p.contains(&name) && p.contains("missing")), "{problems:?}");
    }
}

/// The review's rollback: deleting the newest snapshot object left
/// `check` clean and made `latest` restore older data. Now each series'
/// record names its snapshots: the deletion is a problem, `latest` is
/// refused, and an id still restores.
#[test]
fn a_deleted_newest_snapshot_is_detected_and_latest_refused() {
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    let (old, _) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    std::fs::write(src.join("docs/a.txt"), b"newer\n").unwrap();
    let (newest, _) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert!(repo.check(true).unwrap().is_empty());
    std::fs::remove_file(repo_dir.join("snapshots").join(&newest)).unwrap();
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    for read_data in [false, true] {
        let problems = r.check(read_data).unwrap();
        assert!(problems.iter().any(|p| p.contains(&newest) && p.contains("missing")), "{problems:?}");
    }
    let err = r.restore("latest", &tmp.path().join("out")).unwrap_err();
    assert!(matches!(err, Error::Rollback(_)) && err.to_string().contains(&newest), "{err}");
    assert!(!tmp.path().join("out").exists(), "nothing restored");
    r.restore(&old, &tmp.path().join("by-id")).unwrap();
    assert_eq!(std::fs::read(tmp.path().join("by-id/src/docs/a.txt")).unwrap(), b"hello backups\n");
    // A backup meanwhile does not make the deletion go away.
    let mut r = r;
    r.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert!(r.check(false).unwrap().iter().any(|p| p.contains(&newest)));

    // Deleting the records with it: the series' remaining snapshots have
    // no record, which is reported too.
    let Setup { tmp: _tmp, src, repo_dir, mut repo } = setup();
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    let (newest, _) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    std::fs::remove_file(repo_dir.join("snapshots").join(&newest)).unwrap();
    std::fs::remove_dir_all(repo_dir.join("heads")).unwrap();
    let problems = repo.check(false).unwrap();
    assert!(problems.iter().any(|p| p.contains("has no record")), "{problems:?}");
    assert!(matches!(repo.snapshot("latest"), Err(Error::Rollback(_))));
}

/// `forget` removes snapshots legitimately: the records follow, so
/// check stays clean and `latest` works; a snapshot missing before the
/// forget stays reported.
#[test]
fn forget_updates_the_records() {
    use rampart_backup::repo::KeepPolicy;
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    let state = tmp.path().join("state");
    repo.set_state_dir(&state);
    let mut ids = Vec::new();
    for n in 0..4 {
        std::fs::write(src.join("n"), format!("{n}")).unwrap();
        ids.push(repo.backup(std::slice::from_ref(&src), &[]).unwrap().0);
    }
    let removed = repo.forget(&KeepPolicy { last: 2, ..Default::default() }).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(repo.check(false).unwrap().is_empty());
    assert_eq!(repo.snapshot("latest").unwrap().0, ids[3]);
    // One missing before a forget: still reported after it.
    std::fs::remove_file(repo_dir.join("snapshots").join(&ids[2])).unwrap();
    repo.forget(&KeepPolicy { last: 2, ..Default::default() }).unwrap();
    let problems = repo.check(false).unwrap();
    assert!(problems.iter().any(|p| p.contains(&ids[2])), "{problems:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A consistent rollback of the whole repository (records and all) looks
/// sound from the repository alone; the client's own record catches it.
#[test]
fn a_whole_repository_rollback_is_caught_by_the_client_record() {
    let Setup { tmp, src, repo_dir, mut repo } = setup();
    let state = tmp.path().join("state");
    repo.set_state_dir(&state);
    repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    let saved = tmp.path().join("saved");
    copy_dir(&repo_dir, &saved);
    std::fs::write(src.join("docs/a.txt"), b"newer\n").unwrap();
    let (newest, _) = repo.backup(std::slice::from_ref(&src), &[]).unwrap();
    let state_file = repo.state_file().unwrap().to_path_buf();
    assert!(state_file.exists());
    assert_eq!(std::fs::metadata(&state_file).unwrap().permissions().mode() & 0o777, 0o600);
    drop(repo);
    std::fs::remove_dir_all(&repo_dir).unwrap();
    copy_dir(&saved, &repo_dir);
    // Without the client's record: nothing to see.
    let mut r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    assert!(r.check(false).unwrap().is_empty());
    // With it (the same location, named another way): the rollback.
    let mut r2 = Repository::open(Box::new(LocalDir::new(&repo_dir.join("../repo"))), PASSWORD).unwrap();
    r2.set_state_dir(&state);
    let problems = r2.check(false).unwrap();
    assert!(problems.iter().any(|p| p.contains("rolled back") && p.contains(&newest)), "{problems:?}");
    assert!(matches!(r2.restore("latest", &tmp.path().join("out")), Err(Error::Rollback(_))));
    // A backup into the rolled-back repository does not hide it either.
    r2.backup(std::slice::from_ref(&src), &[]).unwrap();
    assert!(!r2.check(false).unwrap().is_empty());
    // A client that first looks now trusts what it sees (and remembers it).
    r.set_state_dir(&tmp.path().join("another-client"));
    assert!(r.verify_heads().unwrap().is_empty());
}

/// Backups of one series running at once (shared locks) each get their
/// snapshot into the records: deleting any one of them is reported.
#[test]
fn concurrent_backups_all_reach_the_records() {
    let Setup { tmp: _tmp, src, repo_dir, .. } = setup();
    let ids: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
                    (0..2).map(|_| r.backup(std::slice::from_ref(&src), &[]).unwrap().0).collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), 6);
    let r = Repository::open(Box::new(LocalDir::new(&repo_dir)), PASSWORD).unwrap();
    assert!(r.check(false).unwrap().is_empty());
    for id in &ids {
        let path = repo_dir.join("snapshots").join(id);
        let aside = repo_dir.join("aside");
        std::fs::rename(&path, &aside).unwrap();
        assert!(r.check(false).unwrap().iter().any(|p| p.contains(id.as_str())), "{id} is in a record");
        std::fs::rename(&aside, &path).unwrap();
    }
}
