//! Progress on a terminal: files, bytes, rate and time left, redrawn at
//! most ten times a second on standard error.

use std::io::IsTerminal;
use std::time::Instant;

/// A progress callback for a repository, or none when standard error is
/// not a terminal.
pub fn line(verb: &'static str, total: Option<u64>) -> Option<rampart_backup::repo::Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let start = Instant::now();
    let mut last = Instant::now();
    Some(Box::new(move |files, bytes| {
        if last.elapsed().as_millis() < 100 {
            return;
        }
        last = Instant::now();
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        let rate = bytes as f64 / secs;
        let eta = match total {
            Some(t) if rate > 0.0 && t > bytes => format!(", {:.0} s left", (t - bytes) as f64 / rate),
            _ => String::new(),
        };
        eprint!("\r{verb} {files} files, {:.1} MiB, {:.0} MiB/s{eta}   ", bytes as f64 / 1048576.0, rate / 1048576.0);
    }))
}

/// Clears the progress line, if one was drawn.
pub fn clear() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}
