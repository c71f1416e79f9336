//! IP policy: allow and deny lists, and which peers are trusted proxies.
//!
//! Deny wins over allow. An empty allow list allows everyone. Lists come
//! from `ip_policy.allow`/`deny` and from the files in `allow_files` and
//! `deny_files` (reloaded when they change).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;
use rampart_core::config::{parse_net_list, IpPolicy as Config};
use rampart_core::ConfigError;

use crate::netset::{canonical, NetSet};
use crate::reject::Reason;

/// The compiled IP policy.
#[derive(Clone, Debug, Default)]
pub struct IpPolicy {
    allow: NetSet,
    deny: NetSet,
    trusted: NetSet,
    /// `ip_policy.ipv6_prefix`.
    v6_prefix: u8,
}

impl IpPolicy {
    /// Compiles the policy, reading the list files.
    pub fn build(config: &Config) -> Result<Self, ConfigError> {
        let allow = with_files(&config.allow, &config.allow_files)?;
        let deny = with_files(&config.deny, &config.deny_files)?;
        Ok(IpPolicy {
            allow: NetSet::new(&allow),
            deny: NetSet::new(&deny),
            trusted: NetSet::new(&config.trusted_proxies),
            v6_prefix: config.ipv6_prefix,
        })
    }

    /// `Some(IpDenied)` when `ip` may not connect.
    pub fn check(&self, ip: IpAddr) -> Option<Reason> {
        if self.deny.contains(ip) || (!self.allow.is_empty() && !self.allow.contains(ip)) {
            Some(Reason::IpDenied)
        } else {
            None
        }
    }

    /// Whether `ip` is a trusted proxy whose forwarding headers count.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(ip)
    }

    /// What `ip` is counted as (its IPv6 network, see
    /// [`client_key`](crate::netset::client_key)) where one client's
    /// events or requests are budgeted.
    pub fn client_key(&self, ip: IpAddr) -> IpAddr {
        crate::netset::client_key(ip, self.v6_prefix)
    }

    /// Whether any proxy is trusted at all.
    pub fn has_trusted(&self) -> bool {
        !self.trusted.is_empty()
    }
}

fn with_files(inline: &[IpNet], files: &[std::path::PathBuf]) -> Result<Vec<IpNet>, ConfigError> {
    let mut nets = inline.to_vec();
    for f in files {
        nets.extend(read_list(f)?);
    }
    Ok(nets)
}

fn read_list(path: &Path) -> Result<Vec<IpNet>, ConfigError> {
    let text = rampart_core::config::read_bounded(path, rampart_core::config::MAX_FILE_BYTES)?;
    parse_net_list(&text, &path.display().to_string())
}

/// An X-Forwarded-For hop from a trusted proxy that names no address: the
/// request cannot say who its client is (and taking the proxy for the
/// client would put all its clients in one rate-limit bucket and one ban
/// score), so it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreadableHop;

/// The client address of a request: the peer, unless the peer is a trusted
/// proxy, in which case X-Forwarded-For (`lines`, each a comma-separated
/// list, in order) is walked from the right and the first address that is
/// not itself a trusted proxy is the client. Hops may carry a port and
/// brackets (see [`parse_hop`]); empty list elements are skipped (RFC 9110
/// 5.6.1); any other hop that is reached and names no address is an error.
pub fn client_ip<'a>(
    peer: IpAddr,
    lines: impl IntoIterator<Item = &'a [u8]>,
    policy: &IpPolicy,
) -> Result<IpAddr, UnreadableHop> {
    if !policy.is_trusted(peer) {
        return Ok(peer);
    }
    let lines: Vec<&[u8]> = lines.into_iter().collect();
    let mut client = peer;
    for line in lines.into_iter().rev() {
        let line = std::str::from_utf8(line).map_err(|_| UnreadableHop)?;
        for hop in line.rsplit(',') {
            let hop = hop.trim_matches([' ', '\t']);
            if hop.is_empty() {
                continue;
            }
            client = parse_hop(hop).ok_or(UnreadableHop)?;
            if !policy.is_trusted(client) {
                return Ok(client);
            }
        }
    }
    Ok(client)
}

/// One X-Forwarded-For hop: an IPv4 or IPv6 address, optionally with a
/// port (`192.0.2.1:5678`, `[2001:db8::1]:443`) or in brackets
/// (`[2001:db8::1]`), as proxies write them. An IPv4 address with leading
/// zeros (`001.002.003.004`) is read as decimal, as the proxies that write
/// them mean it (never as octal, as `inet_aton` would: no proxy means
/// that); other legacy forms (`127.1`, `0x7f.0.0.1`), zone indices and
/// names like `unknown` are not addresses. IPv4-mapped IPv6 addresses are
/// their IPv4 address.
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        // IPv4, with a port or leading zeros (a bare IPv6 address has
        // parsed above; one with a port must be in brackets).
        let addr = match hop.split_once(':') {
            Some((addr, port)) if is_port(port) => addr,
            Some(_) => return None,
            None => hop,
        };
        IpAddr::V4(decimal_v4(addr)?)
    };
    Some(canonical(ip))
}

fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

/// Four decimal octets of one to three digits each, leading zeros allowed.
fn decimal_v4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if !(1..=3).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str], trusted: &[&str]) -> IpPolicy {
        let p = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect::<Vec<IpNet>>();
        IpPolicy::build(&Config { allow: p(allow), deny: p(deny), trusted_proxies: p(trusted), ..Config::default() })
            .unwrap()
    }

    #[test]
    fn deny_wins_and_empty_allow_allows_all() {
        let p = policy(&[], &["192.0.2.0/24"], &[]);
        assert_eq!(p.check("192.0.2.1".parse().unwrap()), Some(Reason::IpDenied));
        assert_eq!(p.check("198.51.100.1".parse().unwrap()), None);
        let p = policy(&["10.0.0.0/8"], &["10.9.0.0/16"], &[]);
        assert_eq!(p.check("10.1.1.1".parse().unwrap()), None);
        assert_eq!(p.check("10.9.1.1".parse().unwrap()), Some(Reason::IpDenied));
        assert_eq!(p.check("11.0.0.1".parse().unwrap()), Some(Reason::IpDenied));
        assert_eq!(p.check("2001:db8::1".parse().unwrap()), Some(Reason::IpDenied));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(peer: &str, lines: &[&str], p: &IpPolicy) -> Result<IpAddr, UnreadableHop> {
        client_ip(ip(peer), lines.iter().map(|l| l.as_bytes()), p)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let p = policy(&[], &[], &["10.0.0.0/8"]);
        let xff = ["203.0.113.9, 10.1.1.1"];
        assert_eq!(client("198.51.100.1", &xff, &p), Ok(ip("198.51.100.1")));
        assert_eq!(client("10.2.2.2", &xff, &p), Ok(ip("203.0.113.9")));
        // A client cannot spoof by prepending: the rightmost untrusted hop wins.
        assert_eq!(client("10.2.2.2", &["1.1.1.1, 203.0.113.9"], &p), Ok(ip("203.0.113.9")));
        // Several lines are one list, in order.
        assert_eq!(client("10.2.2.2", &["1.1.1.1", "203.0.113.9, 10.3.3.3"], &p), Ok(ip("203.0.113.9")));
        // No header, or only trusted hops: the proxy (a health check).
        assert_eq!(client("10.2.2.2", &[], &p), Ok(ip("10.2.2.2")));
        assert_eq!(client("10.2.2.2", &["10.4.4.4"], &p), Ok(ip("10.4.4.4")));
        // Junk left of the client is never looked at.
        assert_eq!(client("10.2.2.2", &["garbage, 203.0.113.9"], &p), Ok(ip("203.0.113.9")));
        // Untrusted peers' headers are not even read.
        assert_eq!(client("198.51.100.1", &["garbage"], &p), Ok(ip("198.51.100.1")));
    }

    /// Issue 10, point 16: hops with ports, brackets or leading zeros name
    /// their client; a hop that names nobody refuses the request instead of
    /// making the proxy the client.
    #[test]
    fn forwarded_for_hops_in_the_forms_proxies_write() {
        let p = policy(&[], &[], &["10.0.0.0/8"]);
        let peer = "10.2.2.2";
        for (hop, want) in [
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("001.002.003.004", "1.2.3.4"),
            ("010.000.000.001:80", "10.0.0.1"),
            ("::ffff:192.0.2.9", "192.0.2.9"),
            ("[::ffff:192.0.2.9]:1", "192.0.2.9"),
            ("\t203.0.113.9 ", "203.0.113.9"),
        ] {
            assert_eq!(parse_hop(hop.trim()), Some(ip(want)), "{hop}");
            assert_eq!(client(peer, &[hop], &p), Ok(ip(want)), "{hop}");
        }
        // 010.0.0.1 is a trusted proxy's address read as decimal, so the
        // walk goes on to the next hop left.
        assert_eq!(client(peer, &["203.0.113.9, 010.000.000.001:80"], &p), Ok(ip("203.0.113.9")));
        // Empty list elements are skipped.
        assert_eq!(client(peer, &["203.0.113.9, , "], &p), Ok(ip("203.0.113.9")));
        for bad in [
            "garbage",
            "unknown",
            "_hidden",
            "1.2.3.4:",
            "1.2.3.4:99999",
            "1.2.3.4:x",
            "1.2.3",
            "127.1",
            "0x7f.0.0.1",
            "1.2.3.4.5",
            "256.1.1.1",
            "0001.2.3.4",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[1.2.3.4]",
            "fe80::1%eth0",
            "2001:db8::1:443:1:2:3:4:5",
        ] {
            assert_eq!(parse_hop(bad), None, "{bad}");
            assert_eq!(client(peer, &[bad], &p), Err(UnreadableHop), "{bad}");
            assert_eq!(client(peer, &[&format!("198.51.100.1, {bad}")], &p), Err(UnreadableHop), "{bad}");
        }
        assert_eq!(client_ip(ip(peer), [&b"\xff1.2.3.4"[..]], &p), Err(UnreadableHop));
    }

    #[test]
    fn list_files_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("deny.txt");
        std::fs::write(&f, "# bad actors\n198.51.100.0/24\n").unwrap();
        let p = IpPolicy::build(&Config { deny_files: vec![f.clone()], ..Config::default() }).unwrap();
        assert_eq!(p.check("198.51.100.3".parse().unwrap()), Some(Reason::IpDenied));
        std::fs::write(&f, "198.51.100.0/24\n300.1.1.1\n").unwrap();
        let e = IpPolicy::build(&Config { deny_files: vec![f], ..Config::default() }).unwrap_err().to_string();
        assert!(e.contains("deny.txt:2"), "{e}");
    }
}
