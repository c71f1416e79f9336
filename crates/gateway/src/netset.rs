//! Sets of IP networks with a lookup in O(log n), for allow/deny lists that
//! may hold many thousands of entries.

use std::net::IpAddr;

use ipnet::IpNet;

/// A set of networks, stored as merged, sorted address ranges.
#[derive(Clone, Debug, Default)]
pub struct NetSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl NetSet {
    /// Builds the set; overlapping and adjacent networks are merged.
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        NetSet { v4: merge(v4), v6: merge(v6) }
    }

    /// Whether the set holds no network.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is in one of the networks. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`) are looked up as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }
    }
}

/// The address with IPv4-mapped IPv6 turned into IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key a client is counted by (rate limits, bans, connections per
/// client): IPv4 addresses as they are, IPv6 addresses as the first
/// address of their network of `v6_prefix` bits (`ip_policy.ipv6_prefix`),
/// since one subscriber usually holds a whole /64 and can rotate through
/// it. IPv4-mapped addresses count as IPv4 first.
pub fn client_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(a) => {
            let keep = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
        v4 => v4,
    }
}

fn merge<T: Ord + Copy + num::One>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        if let Some(last) = out.last_mut() {
            if lo <= last.1 || T::succ(last.1) == Some(lo) {
                if hi > last.1 {
                    last.1 = hi;
                }
                continue;
            }
        }
        out.push((lo, hi));
    }
    out
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges[i - 1].1 >= x
}

mod num {
    pub trait One: Sized {
        fn succ(v: Self) -> Option<Self>;
    }
    impl One for u32 {
        fn succ(v: Self) -> Option<Self> {
            v.checked_add(1)
        }
    }
    impl One for u128 {
        fn succ(v: Self) -> Option<Self> {
            v.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> NetSet {
        let nets: Vec<IpNet> = nets.iter().map(|s| s.parse().unwrap()).collect();
        NetSet::new(&nets)
    }

    #[test]
    fn contains_v4_and_v6() {
        let s = set(&["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(s.contains("10.200.1.1".parse().unwrap()));
        assert!(s.contains("192.0.2.7".parse().unwrap()));
        assert!(!s.contains("192.0.2.8".parse().unwrap()));
        assert!(s.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!s.contains("2001:db9::".parse().unwrap()));
        assert!(s.contains("::ffff:10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn client_keys_group_ipv6_by_prefix_and_unmap_ipv4() {
        let key = |s: &str, p| client_key(s.parse().unwrap(), p);
        assert_eq!(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff:1:2:3", 64));
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3", 64), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 56), key("2001:db8:1:ff::1", 56));
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
        assert_eq!(key("2001:db8::1", 0), "::".parse::<IpAddr>().unwrap());
        assert_eq!(key("::ffff:192.0.2.1", 64), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(key("192.0.2.1", 64), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
    }

    #[test]
    fn merges_overlaps_and_neighbours() {
        let s = set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "0.0.0.0/32", "255.255.255.255/32"]);
        assert_eq!(s.v4.len(), 3);
        assert!(s.contains("10.0.1.255".parse().unwrap()));
        assert!(s.contains("255.255.255.255".parse().unwrap()));
        assert!(!s.contains("10.0.2.0".parse().unwrap()));
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        let mut rng = fastrand::Rng::with_seed(7);
        let nets: Vec<IpNet> = (0..300)
            .map(|_| IpNet::new(IpAddr::from(rng.u32(..).to_be_bytes()), rng.u8(8..=32)).unwrap().trunc())
            .collect();
        let s = NetSet::new(&nets);
        for _ in 0..20_000 {
            let ip = IpAddr::from(rng.u32(..).to_be_bytes());
            assert_eq!(s.contains(ip), nets.iter().any(|n| n.contains(&ip)), "{ip}");
        }
    }
}
