//! A real S3-compatible server for tests: moto's server mode (PyPI
//! `moto[server]`, installed by `.ci/run`), started on a free loopback
//! port and stopped on drop. A missing moto fails the test: it is not
//! skipped.
#![allow(dead_code)] // Each test binary uses its own part.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3 server.
pub struct S3Server {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
}

impl S3Server {
    /// Starts a server on a port the system picks, and waits until it
    /// says where it listens.
    pub fn start() -> S3Server {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; .ci/run installs it)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let line = lines.next().expect("moto_server exited").unwrap();
            if let Some(at) = line.split("Running on http://").nth(1) {
                break at.trim().parse::<SocketAddr>().unwrap();
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let server = S3Server { child, addr };
        // These variables are read by every S3 client of the process and
        // its children; the server takes any credentials.
        std::env::set_var("AWS_ACCESS_KEY_ID", "test-key");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test-secret");
        server
    }

    /// Creates `bucket`.
    pub fn bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(s, "PUT /{bucket} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", self.addr)
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }

    /// The keys under `prefix` in `bucket` (the first thousand).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let Ok(mut s) = TcpStream::connect(self.addr) else { return Vec::new() };
        let request = format!(
            "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.addr
        );
        if s.write_all(request.as_bytes()).is_err() {
            return Vec::new();
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string).collect()
    }

    /// The repository location `s3:http://ADDR/BUCKET/PREFIX`.
    pub fn location(&self, bucket: &str, prefix: &str) -> String {
        format!("s3:http://{}/{bucket}/{prefix}", self.addr)
    }

    /// Stops the server now (a target that disappears).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
