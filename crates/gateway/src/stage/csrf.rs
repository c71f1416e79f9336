//! CSRF protection for browser routes: a state-changing request (anything
//! but GET, HEAD, OPTIONS, TRACE) must show it comes from the same origin,
//! through `Sec-Fetch-Site: same-origin`, or an `Origin` (else `Referer`)
//! whose scheme, host and port are the request's own. Otherwise 403.
//!
//! This is the check OWASP calls "verifying origin with standard headers";
//! it needs no token and no state.

use http::{request::Parts, Method};

use crate::reject::Reason;

/// `Some(CrossSite)` when a state-changing request cannot show it is
/// same-origin. `scheme` is how the client reached us (`http`/`https`).
pub fn check(head: &Parts, scheme: &str) -> Option<Reason> {
    if matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return None;
    }
    let h = &head.headers;
    if let Some(site) = h.get("sec-fetch-site") {
        return (site.as_bytes() != b"same-origin").then_some(Reason::CrossSite);
    }
    let host =
        h.get(http::header::HOST).map(|v| v.as_bytes()).or_else(|| head.uri.authority().map(|a| a.as_str().as_bytes()));
    let Some(host) = host else {
        return Some(Reason::CrossSite);
    };
    let source = h.get(http::header::ORIGIN).or_else(|| h.get(http::header::REFERER));
    match source {
        Some(v) if same_origin(v.as_bytes(), scheme, host) => None,
        _ => Some(Reason::CrossSite),
    }
}

/// Whether `url` (an Origin or Referer value) has origin `scheme://host`.
fn same_origin(url: &[u8], scheme: &str, host: &[u8]) -> bool {
    let Some(rest) = url.strip_prefix(scheme.as_bytes()).and_then(|r| r.strip_prefix(b"://")) else {
        return false;
    };
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.eq_ignore_ascii_case(host)
        || strip_default_port(authority, scheme).eq_ignore_ascii_case(strip_default_port(host, scheme))
}

fn strip_default_port<'a>(authority: &'a [u8], scheme: &str) -> &'a [u8] {
    let port: &[u8] = if scheme == "https" { b":443" } else { b":80" };
    authority.strip_suffix(port).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/transfer").header("host", "bank.example");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn safe_methods_pass() {
        assert_eq!(check(&head("GET", &[]), "https"), None);
    }

    #[test]
    fn same_origin_passes_and_cross_site_fails() {
        assert_eq!(check(&head("POST", &[("origin", "https://bank.example")]), "https"), None);
        assert_eq!(check(&head("POST", &[("origin", "https://bank.example:443")]), "https"), None);
        assert_eq!(check(&head("POST", &[("referer", "https://bank.example/form?x=1")]), "https"), None);
        assert_eq!(check(&head("POST", &[("sec-fetch-site", "same-origin")]), "https"), None);
        assert_eq!(check(&head("POST", &[("origin", "https://evil.example")]), "https"), Some(Reason::CrossSite));
        assert_eq!(check(&head("POST", &[("origin", "http://bank.example")]), "https"), Some(Reason::CrossSite));
        assert_eq!(check(&head("POST", &[("origin", "https://bank.example.evil")]), "https"), Some(Reason::CrossSite));
        assert_eq!(check(&head("POST", &[("origin", "null")]), "https"), Some(Reason::CrossSite));
        assert_eq!(check(&head("DELETE", &[("sec-fetch-site", "cross-site")]), "https"), Some(Reason::CrossSite));
        assert_eq!(check(&head("POST", &[]), "https"), Some(Reason::CrossSite));
    }
}
