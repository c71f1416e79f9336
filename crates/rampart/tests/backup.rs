//! `rampart backup` as a user runs it: round trips, damage, databases,
//! jobs into several targets (a local directory and S3), processes killed
//! in the middle of a backup and of a prune, and schedules in
//! `rampart serve`.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// `rampart backup`: the password only from the environment or a file,
/// a round trip through init, run, snapshots, restore and check, and
/// damage reported with exit 4.
#[test]
fn backup_commands_round_trip_and_report_damage() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(src.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    let repo = dir.path().join("repo");
    let data_dir = dir.path().join("data");
    let run = |args: &[&str], password: Option<&str>| {
        let mut c = rampart();
        c.arg("backup").args(args).arg("--repo").arg(&repo).arg("--data-dir").arg(&data_dir);
        c.env_remove("RAMPART_BACKUP_PASSWORD");
        if let Some(p) = password {
            c.env("RAMPART_BACKUP_PASSWORD", p);
        }
        c.output().unwrap()
    };
    let out = run(&["init"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAMPART_BACKUP_PASSWORD"), "{out:?}");
    assert!(run(&["init"], Some("pw-for-tests")).status.success());
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "pw-for-tests\n").unwrap();
    let out = rampart()
        .args(["backup", "run", "--repo"])
        .arg(&repo)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--password-file")
        .arg(&pwfile)
        .arg(&src)
        .env_remove("RAMPART_BACKUP_PASSWORD")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 files"), "{out:?}");
    let out = run(&["snapshots", "--json"], Some("pw-for-tests"));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let target = dir.path().join("restored");
    let out = rampart()
        .args(["backup", "restore", "latest", "--repo"])
        .arg(&repo)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--target")
        .arg(&target)
        .env("RAMPART_BACKUP_PASSWORD", "pw-for-tests")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(target.join("src/sub/b.bin")).unwrap(), vec![7u8; 300_000]);
    // Selected paths only, by path and by glob.
    for (n, (include, wanted, left_out)) in [
        ("src/sub", "src/sub/b.bin", "src/a.txt"),
        ("src/*.txt", "src/a.txt", "src/sub"),
        ("src/*/b.bin", "src/sub/b.bin", "src/a.txt"),
    ]
    .into_iter()
    .enumerate()
    {
        let part = dir.path().join(format!("part-{n}"));
        let out =
            run(&["restore", "latest", "--include", include, "--target", part.to_str().unwrap()], Some("pw-for-tests"));
        assert!(out.status.success(), "{out:?}");
        assert!(part.join(wanted).is_file() && !part.join(left_out).exists(), "{include}");
    }
    let nowhere = dir.path().join("nowhere");
    let out =
        run(&["restore", "latest", "--include", "nope/*", "--target", nowhere.to_str().unwrap()], Some("pw-for-tests"));
    assert_eq!(out.status.code(), Some(1), "a path to include that matches nothing is an error: {out:?}");
    let out = run(&["check", "--read-data", "--json"], Some("pw-for-tests"));
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, serde_json::json!({"read_data": true, "problems": []}));
    assert_eq!(run(&["snapshots"], Some("not it")).status.code(), Some(1));
    // Retention: a second snapshot, then keep only the newest, and prune.
    std::fs::write(src.join("a.txt"), b"alpha, changed\n").unwrap();
    assert!(run(&["run", src.to_str().unwrap()], Some("pw-for-tests")).status.success());
    assert_eq!(run(&["forget"], Some("pw-for-tests")).status.code(), Some(1), "an empty policy is refused");
    let out = run(&["forget", "--keep-last", "1", "--prune", "--json"], Some("pw-for-tests"));
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert!(report["prune"]["bytes_freed"].as_u64().is_some(), "{report}");
    assert!(run(&["check", "--read-data"], Some("pw-for-tests")).status.success());
    // A restore drill: restored, verified, timed, and removed again.
    let out = run(&["drill", "--json"], Some("pw-for-tests"));
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["files"], 2);
    assert!(report["recovery_time_ms"].as_u64().is_some() && report["snapshot_age_s"].as_u64().is_some());
    // A copy in a second place, kept in step with `copy`.
    let copy = dir.path().join("copy");
    let out = rampart()
        .args(["backup", "init", "--from-repo"])
        .arg(&repo)
        .arg("--repo")
        .arg(&copy)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("RAMPART_BACKUP_PASSWORD", "pw-for-tests")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = run(&["copy", "--to", copy.to_str().unwrap()], Some("pw-for-tests"));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("copied 1 snapshot"), "{out:?}");
    // Damage one pack: check --read-data exits 4 naming it.
    let data = repo.join("data");
    let pack = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 0x80;
    std::fs::write(&pack, &bytes).unwrap();
    let out = run(&["check", "--read-data"], Some("pw-for-tests"));
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name), "{out:?}");
    // ... and repair takes it back from the copy.
    let out = run(&["repair", "--from", copy.to_str().unwrap()], Some("pw-for-tests"));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("repaired 1 pack"), "{out:?}");
    assert!(run(&["check", "--read-data"], Some("pw-for-tests")).status.success());
    // Every operation, the failed ones too, is in the audit log.
    let out = rampart().args(["audit", "tail", "-n", "100", "--json", "--data-dir"]).arg(&data_dir).output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    for action in ["backup-init", "backup-run", "backup-restore", "backup-forget", "backup-check", "backup-drill"] {
        assert!(log.contains(action), "{action} missing from\n{log}");
    }
    assert!(log.lines().any(|l| l.contains("backup-check") && l.contains("failure")), "{log}");
    assert!(!log.contains("pw-for-tests"), "the password never reaches the log");
}

/// A PostgreSQL database through the real server (127.0.0.1:5432): dumped
/// with pg_dump into a snapshot, then drilled: restored with pg_restore
/// into a scratch database and queried. A failing dump writes no snapshot.
#[test]
fn backup_of_a_postgres_database_and_its_drill() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("rampart_bk_{}", std::process::id());
    let pg = |args: &[&str]| {
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-tA"])
            .args(args)
            .env("PGHOST", "127.0.0.1")
            .env("PGUSER", "postgres")
            .output()
            .expect("psql (PostgreSQL client) must be installed");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    pg(&["-d", "test", "-c", &format!("DROP DATABASE IF EXISTS {db}")]);
    pg(&["-d", "test", "-c", &format!("CREATE DATABASE {db}")]);
    pg(&["-d", &db, "-c", "CREATE TABLE orders (id int primary key, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 1000) g"]);
    let repo = dir.path().join("repo");
    let data_dir = dir.path().join("data");
    let backup = |args: &[&str]| {
        backup_cmd(&data_dir)
            .args(args)
            .arg("--repo")
            .arg(&repo)
            .env("PGHOST", "127.0.0.1")
            .env("PGUSER", "postgres")
            .output()
            .unwrap()
    };
    assert!(backup(&["init"]).status.success());
    let out = backup(&["run", "--postgres", &db]);
    assert!(out.status.success(), "{out:?}");
    let out = backup(&["run", "--postgres", "no_such_database_here"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump failed"), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&backup(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "the failed dump left no snapshot");
    let out = backup(&["drill", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tables"], 1, "{report}");
    assert_eq!(report["source"], format!("postgres:{db}"));
    pg(&["-d", "test", "-c", &format!("DROP DATABASE IF EXISTS {db}")]);
}

/// A configured job writes its snapshot to every target; a target that is
/// gone is reported (exit 1, an audit event) and the others still get it.
#[test]
fn backup_job_with_a_vanished_target() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("x.txt"), b"x\n").unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let data_dir = dir.path().join("data");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n[backup.jobs.files]\npaths = [{:?}]\ntargets = [{:?}, {:?}]\nexclude = [\"*.tmp\"]\n",
            data_dir, src, a, b
        ),
    )
    .unwrap();
    let cmd = |args: &[&str]| {
        rampart()
            .arg("backup")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .env("RAMPART_BACKUP_PASSWORD", "pw")
            .output()
            .unwrap()
    };
    for t in [&a, &b] {
        assert!(cmd(&["init", "--repo", t.to_str().unwrap()]).status.success());
    }
    let out = cmd(&["run", "--job", "files"]);
    assert!(out.status.success(), "{out:?}");
    // A drill of every target: one report per target.
    let out = cmd(&["drill", "--job", "files", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let reports: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r["ok"] == true && r["message"].as_str().unwrap().starts_with("drill passed")));
    // Target b disappears; the job still backs up to a.
    std::fs::remove_dir_all(&b).unwrap();
    let out = cmd(&["run", "--job", "files"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 2 target(s) failed") && err.contains(&b.display().to_string()), "{err}");
    let list: serde_json::Value =
        serde_json::from_slice(&cmd(&["snapshots", "--json", "--repo", a.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = rampart().args(["audit", "tail", "-n", "50", "--json", "--data-dir"]).arg(&data_dir).output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.lines().any(|l| l.contains("backup-run") && l.contains("failure")), "{log}");
    assert!(cmd(&["run", "--job", "nope"]).status.code() == Some(1));
}

/// An SQLite database in use is copied consistently, and restores to a
/// database that opens with every row.
#[test]
fn backup_of_an_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let sql = |db: &std::path::Path, q: &str| {
        let out = Command::new("sqlite3").arg(db).arg(q).output().expect("the sqlite3 tool must be installed");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sql(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) INSERT INTO t SELECT x, 'row ' || x FROM c;");
    let repo = dir.path().join("repo");
    let data_dir = dir.path().join("data");
    let cmd = |args: &[&str]| backup_cmd(&data_dir).args(args).arg("--repo").arg(&repo).output().unwrap();
    assert!(cmd(&["init"]).status.success());
    let out = cmd(&["run", "--sqlite", db.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let target = dir.path().join("out");
    assert!(cmd(&["restore", "latest", "--target", target.to_str().unwrap()]).status.success());
    assert_eq!(sql(&target.join("app.db"), "SELECT count(*) FROM t"), "5000");
    let out = cmd(&["run", "--sqlite", dir.path().join("missing.db").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[path = "../../backup/tests/support/s3_server.rs"]
mod s3_server;
use s3_server::S3Server;

/// Incompressible files: `count` of `mb` MiB each, different for each seed.
fn random_files(dir: &std::path::Path, count: usize, mb: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let mut x = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut data = vec![0u8; mb << 20];
        for word in data.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.join(format!("file-{i}.bin")), data).unwrap();
    }
}

fn backup_cmd(data_dir: &std::path::Path) -> Command {
    let mut c = rampart();
    c.arg("backup").arg("--data-dir").arg(data_dir).env("RAMPART_BACKUP_PASSWORD", "pw-for-tests");
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn count(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if !e.file_name().to_string_lossy().starts_with(".tmp") {
                n += 1;
            }
        }
    }
    n
}

/// Waits for `cond` (polling), then kills `child` with SIGKILL; returns
/// whether the condition was seen before the child ended by itself.
fn kill_when(child: &mut std::process::Child, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if cond() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn same_tree(a: &std::path::Path, b: &std::path::Path) {
    let mut names: Vec<_> =
        std::fs::read_dir(a).unwrap().flatten().filter(|e| e.path().is_file()).map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        assert_eq!(std::fs::read(a.join(&n)).unwrap(), std::fs::read(b.join(&n)).unwrap(), "{n:?}");
    }
}

/// kill -9 in the middle of a backup loses nothing: the repository checks
/// clean, the dead process's lock does not block anyone, prune removes
/// the packs it left, and the next backup restores byte for byte.
#[test]
fn a_backup_killed_mid_run_leaves_a_sound_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (src, repo, data_dir) = (dir.path().join("src"), dir.path().join("repo"), dir.path().join("data"));
    random_files(&src, 2, 1, 1);
    let r = repo.to_str().unwrap();
    ok({
        let mut c = backup_cmd(&data_dir);
        c.args(["init", "--repo", r]);
        c
    });
    ok({
        let mut c = backup_cmd(&data_dir);
        c.args(["run", "--repo", r]).arg(&src);
        c
    });
    let packs_before = count(&repo.join("data"));
    random_files(&src, 6, 8, 2);
    let mut child = backup_cmd(&data_dir)
        .args(["run", "--repo", r])
        .arg(&src)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(kill_when(&mut child, || count(&repo.join("data")) > packs_before), "the backup ended before the kill");
    assert!(count(&repo.join("locks")) >= 1, "the killed process left its lock");

    let run = |args: &[&str]| {
        let mut c = backup_cmd(&data_dir);
        c.args(args).args(["--repo", r]);
        ok(c)
    };
    let list: serde_json::Value = serde_json::from_str(&run(&["snapshots", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "no snapshot from the killed run");
    run(&["check", "--read-data"]);
    // The lock of a process that is gone does not block an exclusive one.
    let pruned = run(&["prune"]);
    assert!(pruned.contains("pack(s) deleted") && !pruned.contains(" 0 pack(s) deleted"), "{pruned}");
    assert_eq!(count(&repo.join("locks")), 0);
    run(&["check", "--read-data"]);
    let mut c = backup_cmd(&data_dir);
    c.args(["run", "--repo", r]).arg(&src);
    ok(c);
    let out = dir.path().join("out");
    let mut c = backup_cmd(&data_dir);
    c.args(["restore", "latest", "--repo", r, "--target"]).arg(&out);
    ok(c);
    same_tree(&src, &out.join("src"));
}

/// kill -9 at each moment of a prune that changes the repository (new
/// packs written; superseding index written; old indexes going; unused
/// packs going): every snapshot still restores, and the next prune
/// finishes the work.
#[test]
fn a_prune_killed_at_any_moment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, prepared, data_dir) = (dir.path().join("src"), dir.path().join("prepared"), dir.path().join("data"));
    let p = prepared.to_str().unwrap();
    ok({
        let mut c = backup_cmd(&data_dir);
        c.args(["init", "--repo", p]);
        c
    });
    // Three snapshots whose packs mix data that stays and data that goes.
    for seed in 0..3 {
        random_files(&src, 3, 3, 10 + seed);
        random_files(&src.join("keep"), 1, 2, 0);
        let mut c = backup_cmd(&data_dir);
        c.args(["run", "--repo", p]).arg(&src);
        ok(c);
    }
    let mut c = backup_cmd(&data_dir);
    c.args(["forget", "--keep-last", "1", "--repo", p]);
    ok(c);

    // The moments: the process stops there (RAMPART_BACKUP_PAUSE_AT) and
    // is killed with SIGKILL.
    let moments = [
        "prune: new packs written",
        "prune: superseding index written",
        "prune: an old index deleted",
        "prune: an unused pack deleted",
    ];
    for (i, moment) in moments.iter().enumerate() {
        let repo = dir.path().join(format!("repo-{i}"));
        assert!(Command::new("cp").arg("-a").arg(&prepared).arg(&repo).status().unwrap().success());
        let r = repo.to_str().unwrap();
        let mut child = backup_cmd(&data_dir)
            .args(["prune", "--repo", r])
            .env("RAMPART_BACKUP_PAUSE_AT", moment)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        assert!(lines.any(|l| l.unwrap().contains(&format!("paused at {moment}"))), "never reached {moment}");
        child.kill().unwrap();
        child.wait().unwrap();
        for step in [&["check", "--read-data"][..], &["prune"], &["check", "--read-data"]] {
            let mut c = backup_cmd(&data_dir);
            c.args(step).args(["--repo", r]);
            let out = c.output().unwrap();
            assert!(out.status.success(), "after a kill when {moment}: {step:?}: {out:?}");
        }
        let out = dir.path().join(format!("out-{i}"));
        let mut c = backup_cmd(&data_dir);
        c.args(["restore", "latest", "--repo", r, "--target"]).arg(&out);
        ok(c);
        same_tree(&src, &out.join("src"));
        same_tree(&src.join("keep"), &out.join("src/keep"));
    }
}

/// A job into S3 and a directory: the S3 server dies in the middle of
/// the run; the directory still gets its snapshot, the failure names the
/// S3 target (exit 1, an audit event).
#[test]
fn a_job_survives_its_s3_target_dying_mid_run() {
    let mut s3 = S3Server::start();
    s3.bucket("jobs");
    let dir = tempfile::tempdir().unwrap();
    let (src, local, data_dir) = (dir.path().join("src"), dir.path().join("local"), dir.path().join("data"));
    let remote = s3.location("jobs", "app");
    random_files(&src, 1, 1, 3);
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {data_dir:?}\n[backup.jobs.site]\npaths = [{src:?}]\ntargets = [{remote:?}, {local:?}]\n"),
    )
    .unwrap();
    let job = || {
        let mut c = backup_cmd(&data_dir);
        c.arg("--config").arg(&cfg);
        c
    };
    for target in [remote.as_str(), local.to_str().unwrap()] {
        let mut c = job();
        c.args(["init", "--repo", target]);
        ok(c);
    }
    let mut c = job();
    c.args(["run", "--job", "site"]);
    ok(c);
    let mut c = job();
    c.args(["snapshots", "--json", "--repo", &remote]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&ok(c)).unwrap().as_array().unwrap().len(), 1);

    random_files(&src, 6, 8, 4);
    let packs = s3.keys("jobs", "app/data/").len();
    let child = job()
        .args(["run", "--job", "site"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The server goes as soon as the run has stored its first new pack.
    let deadline = Instant::now() + Duration::from_secs(120);
    while s3.keys("jobs", "app/data/").len() <= packs {
        assert!(Instant::now() < deadline, "no new pack reached the S3 server");
        std::thread::sleep(Duration::from_millis(5));
    }
    s3.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 2 target(s) failed") && err.contains(&remote), "{err}");
    let mut c = job();
    c.args(["snapshots", "--json", "--repo", local.to_str().unwrap()]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&ok(c)).unwrap().as_array().unwrap().len(), 2);
    let mut c = job();
    c.args(["check", "--read-data", "--repo", local.to_str().unwrap()]);
    ok(c);
    let log = audit_text(&data_dir);
    assert!(log.lines().any(|l| l.contains("\"backup-run\"") && l.contains("failure") && l.contains(&remote)), "{log}");
}

/// `rampart serve` runs a job and its drills on their schedules into a
/// directory and S3, applies retention, and raises alerts: for a run that
/// was missed while it was down, and for runs that fail when the S3
/// server is gone.
#[test]
fn serve_runs_backups_and_drills_on_schedule_and_alerts() {
    let mut s3 = S3Server::start();
    s3.bucket("scheduled");
    let dir = tempfile::tempdir().unwrap();
    let (src, local, data_dir) = (dir.path().join("src"), dir.path().join("local"), dir.path().join("data"));
    let remote = s3.location("scheduled", "site");
    random_files(&src, 2, 1, 5);
    let pw = dir.path().join("backup.pass");
    std::fs::write(&pw, "pw-for-tests\n").unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {data_dir:?}\n[backup]\npassword_file = {pw:?}\n[backup.jobs.site]\npaths = [{src:?}]\n\
             targets = [{local:?}, {remote:?}]\nschedule = \"every 2s\"\ndrill = \"every 3s\"\nkeep = {{ last = 2 }}\n"
        ),
    )
    .unwrap();
    for target in [local.to_str().unwrap(), remote.as_str()] {
        let mut c = backup_cmd(&data_dir);
        c.args(["init", "--repo", target]);
        ok(c);
    }
    // The last run, as far as the schedule knows, was an hour ago.
    std::fs::create_dir_all(&data_dir).unwrap();
    let hour_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600;
    std::fs::write(
        data_dir.join("backup-schedule.json"),
        format!("{{\"jobs\":{{\"site\":{{\"backup\":{hour_ago}}}}}}}"),
    )
    .unwrap();

    let server = serve(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let wait_for = |what: &str, found: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = audit_text(&data_dir);
            if found(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {what} in:\n{log}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let has = |log: &str, action: &str, outcome: &str, target: &str| {
        log.lines().any(|l| l.contains(&format!("\"{action}\"")) && l.contains(outcome) && l.contains(target))
    };
    let log = wait_for("missed-run alert", &|log| has(log, "backup-missed", "alert", "site"));
    assert!(log.contains("s before it could run"), "{log}");
    wait_for("run into both targets and a drill of each", &|log| {
        [local.to_str().unwrap(), remote.as_str()]
            .iter()
            .all(|t| has(log, "backup-run", "success", t) && has(log, "backup-drill", "success", t))
    });
    // Retention keeps the last two.
    wait_for("a third run", &|log| log.matches("\"backup-run\"").count() >= 6);

    // The S3 server goes: the next runs and drills fail there and alert,
    // and the directory goes on getting its snapshots.
    let local_runs = |log: &str| {
        log.lines()
            .filter(|l| l.contains("\"backup-run\"") && l.contains("success") && l.contains(local.to_str().unwrap()))
            .count()
    };
    let before = local_runs(&audit_text(&data_dir));
    s3.kill();
    wait_for("failure alerts", &|log| {
        has(log, "backup-failed", "alert", &remote) && has(log, "drill-failed", "alert", &remote)
    });
    wait_for("more snapshots in the directory", &|log| local_runs(log) > before + 1);
    stop(server);
    let mut c = backup_cmd(&data_dir);
    c.args(["snapshots", "--json", "--repo", local.to_str().unwrap()]);
    let list: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "keep.last = 2");
    let mut c = backup_cmd(&data_dir);
    c.args(["check", "--read-data", "--repo", local.to_str().unwrap()]);
    ok(c);
}

/// The review's rollback and file-mode findings, as a user meets them: a
/// repository readable by its owner only; the newest snapshot deleted
/// makes `check` (with and without --read-data), `restore latest` and
/// `drill` exit 4 naming it, while an id still restores; the whole
/// repository put back to an earlier copy is caught by this client's own
/// record; a deleted pack makes restore exit 4 (not 1).
#[test]
fn backup_rollback_deleted_snapshots_and_packs_exit_4() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"old\n").unwrap();
    let repo = dir.path().join("repo");
    let data_dir = dir.path().join("data");
    let run = |args: &[&str]| {
        let mut c = backup_cmd(&data_dir);
        c.args(args).arg("--repo").arg(&repo);
        c.output().unwrap()
    };
    let run_ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_ok(&["init"]);
    run_ok(&["run", src.to_str().unwrap()]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&repo), 0o700);
    let key = std::fs::read_dir(repo.join("keys")).unwrap().next().unwrap().unwrap().path();
    assert_eq!((mode(&repo.join("keys")), mode(&key), mode(&repo.join("config"))), (0o700, 0o600, 0o600));
    let saved = dir.path().join("saved");
    assert!(Command::new("cp").arg("-a").arg(&repo).arg(&saved).status().unwrap().success());
    std::fs::write(src.join("a.txt"), b"new\n").unwrap();
    run_ok(&["run", src.to_str().unwrap()]);
    let list: serde_json::Value = serde_json::from_str(&run_ok(&["snapshots", "--json"])).unwrap();
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    let (old, newest) = (&ids[0], &ids[1]);
    run_ok(&["check"]);

    // The newest snapshot deleted.
    let snapshot = repo.join("snapshots").join(newest);
    let kept = std::fs::read(&snapshot).unwrap();
    std::fs::remove_file(&snapshot).unwrap();
    for args in [&["check"][..], &["check", "--read-data"], &["drill"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(newest.as_str()), "{args:?}: {out:?}");
    }
    let target = dir.path().join("latest");
    let out = run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`latest` is refused"), "{out:?}");
    assert!(!target.join("src").exists(), "nothing restored");
    let by_id = dir.path().join("by-id");
    run_ok(&["restore", old, "--target", by_id.to_str().unwrap()]);
    assert_eq!(std::fs::read(by_id.join("src/a.txt")).unwrap(), b"old\n");
    std::fs::write(&snapshot, &kept).unwrap();
    run_ok(&["check"]);

    // The whole repository put back to the earlier copy, records and
    // all: this client saw further.
    std::fs::remove_dir_all(&repo).unwrap();
    assert!(Command::new("cp").arg("-a").arg(&saved).arg(&repo).status().unwrap().success());
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("rolled back"), "{out:?}");
    let out = run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // Another client (data directory) has no such memory.
    let fresh = dir.path().join("fresh-data");
    let out = backup_cmd(&fresh).args(["check", "--repo"]).arg(&repo).output().unwrap();
    assert!(out.status.success(), "{out:?}");

    // A deleted pack: restore by id exits 4, naming it.
    let pack = std::fs::read_dir(repo.join("data"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(&pack).unwrap();
    let out = backup_cmd(&fresh)
        .args(["restore", old, "--repo"])
        .arg(&repo)
        .arg("--target")
        .arg(dir.path().join("no-pack"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name), "{out:?}");
}
