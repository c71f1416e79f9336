//! Why the gateway refused a request or a connection.
//!
//! Every refusal has one [`Reason`]: it picks the status code, the metrics
//! label, the event's `event.reason` and how much it counts toward a ban.

/// What a refusal counts as when scoring a client for a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offense {
    /// A protocol or rate limit was crossed.
    Limit,
    /// A probe for a well-known sensitive path.
    Probe,
    /// A known scanner's user agent.
    Scanner,
    /// Refused by the web application firewall.
    Waf,
    /// Not held against the client (our own failure, or already banned).
    None,
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $status:literal, $offense:ident; )*) => {
        /// Why a request or connection was refused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in metrics order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// Label used in metrics and events (`body_too_large`).
            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// HTTP status sent to the client (for connection-level refusals:
            /// on plain HTTP only; TLS connections are closed).
            pub const fn status(self) -> u16 {
                match self { $(Reason::$variant => $status,)* }
            }

            /// How it counts toward a ban.
            pub const fn offense(self) -> Offense {
                match self { $(Reason::$variant => Offense::$offense,)* }
            }
        }
    };
}

reasons! {
    /// The request could not be parsed.
    Malformed = "malformed_request", 400, Limit;
    /// The request headers did not arrive in time (slowloris).
    HeaderTimeout = "header_timeout", 408, Limit;
    /// The request body stalled (slow POST).
    BodyTimeout = "body_timeout", 408, Limit;
    /// Too many headers, or too many header bytes.
    HeadersTooLarge = "headers_too_large", 431, Limit;
    /// The request target is too long.
    UriTooLong = "uri_too_long", 414, Limit;
    /// The body is larger than the route allows.
    BodyTooLarge = "body_too_large", 413, Limit;
    /// The gateway has as many connections as it allows.
    TooManyConnections = "too_many_connections", 503, None;
    /// This client has as many connections as it may.
    TooManyConnectionsPerIp = "too_many_connections_per_ip", 503, Limit;
    /// The client address is denied by the IP policy.
    IpDenied = "ip_denied", 403, None;
    /// The client is banned.
    Banned = "banned", 403, None;
    /// The client exceeded a rate limit.
    RateLimited = "rate_limited", 429, Limit;
    /// A cross-site state-changing request (CSRF).
    CrossSite = "cross_site_request", 403, Limit;
    /// A probe for a well-known sensitive path.
    Probe = "probe_path", 404, Probe;
    /// A known scanner's user agent.
    Scanner = "scanner_user_agent", 403, Scanner;
    /// The web application firewall's rules refused the request.
    WafBlocked = "waf_blocked", 403, Waf;
    /// The WAF could not parse the body (or found its envelope ambiguous),
    /// so it could not inspect what the application will read.
    BodyUnparseable = "body_unparseable", 400, Waf;
    /// The request carries more arguments than the WAF inspects.
    TooManyArguments = "too_many_arguments", 400, Waf;
    /// A trusted proxy's X-Forwarded-For hop names no address, so the
    /// client is unknown (not held against the proxy, which sent it).
    ForwardedForUnreadable = "forwarded_for_unreadable", 400, None;
    /// Inspecting the request would take longer than the WAF's budget.
    InspectionBudget = "waf_budget_exceeded", 400, Limit;
    /// The path is one backends read differently (invalid UTF-8 after
    /// decoding, control characters).
    AmbiguousPath = "ambiguous_path", 400, Limit;
    /// The web application firewall's rules refused the response.
    WafResponseBlocked = "waf_response_blocked", 403, None;
    /// No route matches the host and path.
    NoRoute = "no_route", 404, None;
    /// Buffered request bodies already fill the gateway's budget.
    BufferFull = "body_buffer_full", 503, None;
    /// No upstream address could be reached.
    UpstreamUnavailable = "upstream_unavailable", 502, None;
    /// The upstream did not answer in time.
    UpstreamTimeout = "upstream_timeout", 504, None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()));
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn statuses_match_the_http_meaning() {
        assert_eq!(Reason::BodyTooLarge.status(), 413);
        assert_eq!(Reason::UriTooLong.status(), 414);
        assert_eq!(Reason::HeadersTooLarge.status(), 431);
        assert_eq!(Reason::RateLimited.status(), 429);
        assert_eq!(Reason::HeaderTimeout.status(), 408);
    }
}
