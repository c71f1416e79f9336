//! IP policy: allow and deny lists, and which peers are trusted proxies.
//!
//! Deny wins over allow. An empty allow list allows everyone. Lists come
//! from `ip_policy.allow`/`deny` and from the files in `allow_files` and
//! `deny_files` (reloaded when they change).

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use rampart_core::config::{parse_net_list, IpPolicy as Config};
use rampart_core::ConfigError;

use crate::netset::NetSet;
use crate::reject::Reason;

/// The compiled IP policy.
#[derive(Clone, Debug, Default)]
pub struct IpPolicy {
    allow: NetSet,
    deny: NetSet,
    trusted: NetSet,
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
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_net_list(&text, &path.display().to_string())
}

/// The client address of a request: the peer, unless the peer is a trusted
/// proxy, in which case X-Forwarded-For is walked from the right and the
/// first address that is not itself a trusted proxy is the client.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&[u8]>, policy: &IpPolicy) -> IpAddr {
    let Some(xff) = forwarded_for.filter(|_| policy.is_trusted(peer)) else {
        return peer;
    };
    let Ok(xff) = std::str::from_utf8(xff) else {
        return peer;
    };
    let mut client = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !policy.is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
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

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let p = policy(&[], &[], &["10.0.0.0/8"]);
        let xff = Some(&b"203.0.113.9, 10.1.1.1"[..]);
        assert_eq!(client_ip("198.51.100.1".parse().unwrap(), xff, &p), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("10.2.2.2".parse().unwrap(), xff, &p), "203.0.113.9".parse::<IpAddr>().unwrap());
        // A client cannot spoof by prepending: the rightmost untrusted hop wins.
        let spoof = Some(&b"1.1.1.1, 203.0.113.9"[..]);
        assert_eq!(client_ip("10.2.2.2".parse().unwrap(), spoof, &p), "203.0.113.9".parse::<IpAddr>().unwrap());
        let junk = Some(&b"garbage"[..]);
        assert_eq!(client_ip("10.2.2.2".parse().unwrap(), junk, &p), "10.2.2.2".parse::<IpAddr>().unwrap());
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
