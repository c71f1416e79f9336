//! `@ipMatch 10.0.0.0/8,192.0.2.7,2001:db8::/32`: the input is an address
//! in one of the networks (IPv4 and IPv6).
//!
//! `SecRule REMOTE_ADDR "@ipMatch 127.0.0.1,::1" "id:1,allow"`

use std::net::IpAddr;

use super::{Operator, Vars};

#[derive(Debug)]
struct IpMatch(Vec<ipnet::IpNet>);

impl Operator for IpMatch {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        let Some(ip) = std::str::from_utf8(input).ok().and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
            return false;
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// `@ipMatch`.
pub fn ip_match(arg: &str) -> Result<Box<dyn Operator>, String> {
    let nets = arg
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("@ipMatch: {s:?} is not an address or network"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nets.is_empty() {
        return Err("@ipMatch needs at least one address".into());
    }
    Ok(Box::new(IpMatch(nets)))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn v4_and_v6() {
        let op = super::ip_match("10.0.0.0/8, 192.0.2.7,2001:db8::/32").unwrap();
        assert!(op.matches(b"10.1.2.3", &no_vars));
        assert!(op.matches(b"2001:db8::1", &no_vars));
        assert!(!op.matches(b"192.0.2.8", &no_vars));
        assert!(!op.matches(b"not an ip", &no_vars));
        assert!(super::ip_match("300.1.1.1").is_err());
    }
}
