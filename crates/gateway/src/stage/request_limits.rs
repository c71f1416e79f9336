//! Protocol limits checked on the request head: target length, header
//! count and header bytes. (Timeouts and the body limit are enforced while
//! reading; see `server.rs` and `body.rs`.)

use http::request::Parts;
use rampart_core::config::Limits;

use crate::reject::Reason;

/// Head limits of one configuration.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    max_uri: usize,
    max_headers: usize,
    max_header_bytes: usize,
}

impl RequestLimits {
    /// From `[limits]`.
    pub fn build(limits: &Limits) -> Self {
        RequestLimits {
            max_uri: limits.max_uri_bytes,
            max_headers: limits.max_headers,
            max_header_bytes: limits.max_header_bytes,
        }
    }

    /// `Some(reason)` when the head is over a limit.
    pub fn check(&self, head: &Parts) -> Option<Reason> {
        // A reverse proxy serves origin-form targets: CONNECT (a tunnel
        // request, authority-form) is not for it.
        if head.method == http::Method::CONNECT {
            return Some(Reason::Malformed);
        }
        let target = head.uri.path_and_query().map_or(0, |p| p.as_str().len());
        if target > self.max_uri {
            return Some(Reason::UriTooLong);
        }
        if head.headers.len() > self.max_headers {
            return Some(Reason::HeadersTooLarge);
        }
        // Name, ": ", value, CRLF: what the head occupied on the wire.
        let bytes: usize = target + head.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>();
        if bytes > self.max_header_bytes {
            return Some(Reason::HeadersTooLarge);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_is_refused() {
        let limits = RequestLimits::build(&rampart_core::config::Limits::default());
        let mut p = parts("http://example.com:443", &[]);
        p.method = http::Method::CONNECT;
        assert_eq!(limits.check(&p), Some(Reason::Malformed));
    }

    fn parts(uri: &str, headers: &[(&str, String)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (n, v) in headers {
            b = b.header(*n, v.as_str());
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn each_limit_has_its_reason() {
        let l = RequestLimits { max_uri: 50, max_headers: 3, max_header_bytes: 200 };
        assert_eq!(l.check(&parts("/ok", &[])), None);
        assert_eq!(l.check(&parts(&format!("/{}", "a".repeat(60)), &[])), Some(Reason::UriTooLong));
        let many: Vec<_> = (0..4).map(|i| ("x-h", i.to_string())).collect();
        assert_eq!(l.check(&parts("/", &many)), Some(Reason::HeadersTooLarge));
        assert_eq!(l.check(&parts("/", &[("x-big", "v".repeat(300))])), Some(Reason::HeadersTooLarge));
    }
}
