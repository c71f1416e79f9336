//! Sinks deliver every event at least once, in order, through outages:
//! a JSON-lines file, and a real rsyslog receiving RFC 5424 over TCP.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_audit::sink::{self, Sink, Target};
use rampart_audit::AuditLog;
use rampart_core::Event;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn file_sink_delivers_everything_and_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let log = AuditLog::open(dir.path()).unwrap();
    for i in 0..50 {
        log.append(Event::new("web", "request-rejected").reason(format!("n{i}"))).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    sink::spawn(log.dir(), vec![Sink { name: "file".into(), target: Target::File(out.clone()) }], stop.clone())
        .unwrap();
    wait_for("50 lines", || lines(&out).len() >= 50);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(400));
    for i in 50..60 {
        log.append(Event::new("web", "request-rejected").reason(format!("n{i}"))).unwrap();
    }
    // A new follower resumes from the saved cursor: no repeats of 0..50.
    let stop = Arc::new(AtomicBool::new(false));
    sink::spawn(log.dir(), vec![Sink { name: "file".into(), target: Target::File(out.clone()) }], stop.clone())
        .unwrap();
    wait_for("60 lines", || lines(&out).len() >= 60);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reasons: Vec<String> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["reason"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..60).map(|i| format!("n{i}")).collect();
    assert_eq!(reasons, want);
}

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rsyslog(dir: &Path, port: u16, out: &Path) -> Rsyslog {
    let conf = dir.join("rsyslog.conf");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{}\")\nmodule(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
             template(name=\"raw\" type=\"string\" string=\"%APP-NAME% %PRI% %msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{}\" template=\"raw\")\n",
            work.display(),
            out.display()
        ),
    )
    .unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .spawn()
        .expect("rsyslogd (Debian package rsyslog) must be installed; .ci/run installs it");
    Rsyslog(child)
}

#[test]
fn syslog_sink_survives_an_outage_of_a_real_rsyslog() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = dir.path().join("received.log");
    let log = AuditLog::open(dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    sink::spawn(
        log.dir(),
        vec![Sink { name: "siem".into(), target: Target::Syslog(format!("127.0.0.1:{port}")) }],
        stop.clone(),
    )
    .unwrap();
    // The receiver is down: events wait in the log.
    for i in 0..30 {
        log.append(Event::new("web", "request-rejected").reason(format!("down{i}"))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    let server = rsyslog(dir.path(), port, &out);
    for i in 0..30 {
        log.append(Event::new("web", "request-rejected").reason(format!("up{i}"))).unwrap();
    }
    wait_for("60 messages in rsyslog's file", || lines(&out).len() >= 60);
    drop(server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let got = lines(&out);
    assert!(got[0].starts_with("rampart 110 {"), "app name, facility 13 (log audit), severity 6: {}", got[0]);
    for i in 0..30 {
        assert!(got.iter().any(|l| l.contains(&format!("\"down{i}\""))), "down{i} lost");
        assert!(got.iter().any(|l| l.contains(&format!("\"up{i}\""))), "up{i} lost");
    }
    let first: serde_json::Value = serde_json::from_str(got[0].splitn(3, ' ').nth(2).unwrap()).unwrap();
    assert_eq!(first["event"]["action"], "request-rejected");
}
