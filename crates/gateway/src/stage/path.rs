//! The path as routes and probe lists see it. Backends decode and clean
//! paths before they route, so the gateway must judge the same path the
//! backend will act on: `//api/x`, `/./api/x`, `/%61pi/x` and `/a/../api/x`
//! all reach `/api/x` at most backends and must meet `/api`'s rules.
//!
//! Percent-encoded unreserved characters are decoded, empty and `.`
//! segments dropped and `..` resolved (never above the root). Encoded `/`
//! and other reserved characters stay encoded: decoding them changes what
//! the path means. The request is forwarded unchanged.

use std::borrow::Cow;

/// The normalised path for matching; borrowed when already normal.
pub fn normalize(path: &str) -> Cow<'_, str> {
    let b = path.as_bytes();
    let suspicious = b.contains(&b'%') || b.windows(2).any(|w| w == b"//" || w == b"/.");
    if !suspicious {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
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
    Cow::Owned(out)
}

fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c as char);
                    i += 3;
                    continue;
                }
            }
        }
        // `path` is valid UTF-8 and we only skip ASCII: push char by char.
        let ch = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricks_that_reach_the_same_backend_path_normalise_alike() {
        for p in ["/api/x", "//api/x", "/./api/x", "/%61pi/x", "/b/../api/x", "/api//x", "/api/./x", "/../api/x"] {
            assert_eq!(normalize(p), "/api/x", "{p}");
        }
        assert_eq!(normalize("/.env"), "/.env");
        assert_eq!(normalize("/%2e%65nv"), "/.env");
        assert_eq!(normalize("/a%2Fb"), "/a%2Fb", "encoded slash stays");
        assert_eq!(normalize("/dir/"), "/dir/");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("/%zz"), "/%zz");
        assert_eq!(normalize("/x%"), "/x%");
        assert_eq!(normalize("/é/%41"), "/é/A");
        assert!(matches!(normalize("/plain/path"), Cow::Borrowed(_)));
    }
}
