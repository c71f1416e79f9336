//! The path as routes and probe lists see it. Backends decode and clean
//! paths before they route, each in its own way, so the gateway judges the
//! path that the most liberal of them will act on: `//api/x`, `/./api/x`,
//! `/%61pi/x`, `/a/../api/x` (every backend), `/api%2Fx` (WSGI servers
//! decode `%2F`), `/api;v=1/x` and `/api..;/x` (Java servlet containers
//! drop `;` parameters), `/api\x` (Windows and some Node routers read `\`
//! as `/`), `/api./x` and `/api%20/x` (Windows drops trailing dots and
//! spaces) all meet `/api`'s rules.
//!
//! So: percent-encodings are decoded (a second and third time when the
//! result still holds one: some stacks decode twice), `\` is `/`, each
//! segment loses its `;` parameters and trailing dots and spaces, empty
//! and `.` segments are dropped and `..` resolved (never above the root).
//! A path whose decoded bytes are not UTF-8 (overlong `%c0%ae`) or hold
//! control characters is read differently by different backends and is
//! refused. The request is forwarded unchanged.

use std::borrow::Cow;

/// Why a path is refused: backends disagree on what it means.
#[derive(Debug, PartialEq, Eq)]
pub struct Ambiguous;

/// The normalised path for matching; borrowed when already normal.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, Ambiguous> {
    normalize_with(path, true)
}

/// [`normalize`], or when not `strict`, a lossy reading of an ambiguous
/// path (invalid UTF-8 as U+FFFD, control characters kept) instead of an
/// error.
pub fn normalize_with(path: &str, strict: bool) -> Result<Cow<'_, str>, Ambiguous> {
    let b = path.as_bytes();
    let suspicious = b.iter().any(|c| matches!(c, b'%' | b'\\' | b';' | b' ' | b'\t') || c.is_ascii_control())
        || b.windows(2).any(|w| w == b"//" || w == b"/." || w == b"./")
        || b.ends_with(b".");
    if !suspicious {
        return Ok(Cow::Borrowed(path));
    }
    let mut bytes = percent_decode(b);
    for _ in 0..2 {
        if !has_escape(&bytes) {
            break;
        }
        bytes = percent_decode(&bytes);
    }
    let decoded = match String::from_utf8(bytes) {
        Ok(d) => d,
        Err(_) if strict => return Err(Ambiguous),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if strict && decoded.chars().any(char::is_control) {
        return Err(Ambiguous);
    }
    let decoded = decoded.replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for raw in decoded.split('/') {
        let seg = raw.split(';').next().unwrap_or("");
        let seg = match seg {
            "." | ".." => seg,
            s => s.trim_end_matches(['.', ' ']),
        };
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (decoded.ends_with('/') && !out.ends_with('/')) {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Whether `b` holds a `%HH` escape.
fn has_escape(b: &[u8]) -> bool {
    b.windows(3).any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// `%HH` decoded, everything else kept (a `%` without two hex digits too).
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().into_owned()
    }

    #[test]
    fn tricks_that_reach_the_same_backend_path_normalise_alike() {
        for p in ["/api/x", "//api/x", "/./api/x", "/%61pi/x", "/b/../api/x", "/api//x", "/api/./x", "/../api/x"] {
            assert_eq!(n(p), "/api/x", "{p}");
        }
        assert_eq!(n("/.env"), "/.env");
        assert_eq!(n("/%2e%65nv"), "/.env");
        assert_eq!(n("/dir/"), "/dir/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/%zz"), "/%zz");
        assert_eq!(n("/x%"), "/x%");
        assert_eq!(n("/é/%41"), "/é/A");
        assert!(matches!(normalize("/plain/path"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize("/app.js"), Ok(Cow::Borrowed(_))));
    }

    /// Each of these reached a lenient catch-all route instead of
    /// `/admin`'s (an outside review, with werkzeug and Node behind).
    #[test]
    fn route_escapes_normalise_to_the_route_they_aim_at() {
        for p in
            ["/admin;x", "/admin..;/", "/admin%2fx", "/%2fadmin", "/admin%3bx", "/admin%20", "/admin.", "/admin\\x"]
        {
            let got = n(p);
            assert!(got == "/admin" || got == "/admin/" || got.starts_with("/admin/"), "{p} -> {got}");
        }
        assert_eq!(n("/admin%2Fdelete"), "/admin/delete");
        assert_eq!(n("/adm%2569n/x"), "/admin/x", "double encoding");
        assert_eq!(n("/x/..;/admin"), "/admin");
    }

    #[test]
    fn paths_backends_disagree_on_are_refused() {
        for p in ["/%c0%ae/admin", "/admin%09", "/admin%00.html", "/a%ff", "/admin%0d%0a"] {
            assert_eq!(normalize(p), Err(Ambiguous), "{p}");
            assert!(normalize_with(p, false).is_ok(), "{p}");
        }
        assert_eq!(normalize_with("/admin%0d%0a/x", false).unwrap(), "/admin\r\n/x");
    }
}
