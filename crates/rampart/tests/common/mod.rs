//! What the command-line tests share: the built binary, a running
//! `rampart serve`, HTTP requests, the audit log's text.
#![allow(dead_code)] // Each test binary uses its own part.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The audit log of a data directory as text, one JSON event a line.
pub fn audit_text(data_dir: &std::path::Path) -> String {
    let audit = data_dir.join("audit");
    let keys = rampart_audit::Keys::load_or_create(&audit).unwrap();
    rampart_audit::read::all_events(&audit, &keys).iter().map(|v| v.to_string() + "\n").collect()
}

pub fn rampart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
    c.env("RAMPART_LOG", "info").env_remove("RAMPART_CONFIG");
    c
}

/// A running `rampart serve` whose addresses were read from its log.
pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &std::path::Path, args: &[&str]) -> Server {
    let mut child = rampart()
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut http, mut https, mut admin) = (None, None, None);
    while let Some(Ok(line)) = lines.next() {
        if line.contains("rampart is serving") {
            let field = |name: &str| -> SocketAddr {
                let plain: String = strip_ansi(&line);
                let start = plain.find(&format!("{name}=")).unwrap() + name.len() + 1;
                plain[start..].split_whitespace().next().unwrap().parse().unwrap()
            };
            http = Some(field("http"));
            https = Some(field("https"));
            admin = Some(field("admin"));
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    std::thread::spawn(move || for _ in lines {});
    // The demo banner is printed right after the log line.
    std::thread::sleep(Duration::from_millis(300));
    Server { child, http: http.expect("serving line"), https: https.unwrap(), admin: admin.unwrap() }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One HTTP/1.1 request; returns the status and the whole response.
/// Stops the server with SIGTERM, asserts a clean exit, and returns its stdout.
pub fn stop(mut server: Server) -> String {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut out = String::new();
    server.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

pub fn http(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    (out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), out)
}
