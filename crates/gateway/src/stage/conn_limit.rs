//! Connection limits: overall and per client address (for IPv6, per
//! network of `ip_policy.ipv6_prefix` bits, see [`client_key`]). A slot is
//! held by a [`ConnGuard`] for the life of the connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::netset::client_key;
use crate::reject::Reason;

const SHARDS: usize = 16;

/// Counts open connections. Limits are read at each accept, so a reload
/// that changes them applies to new connections at once.
#[derive(Default)]
pub struct ConnLimiter {
    total: AtomicUsize,
    per_ip: [Mutex<HashMap<IpAddr, usize>>; SHARDS],
}

/// Holds one connection slot; frees it when dropped.
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    /// Takes a slot for `ip` (counted with the rest of its network of
    /// `v6_prefix` bits when IPv6), or says which limit is full.
    pub fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        v6_prefix: u8,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnGuard, Reason> {
        let ip = client_key(ip, v6_prefix);
        if self.total.fetch_add(1, Ordering::AcqRel) >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Reason::TooManyConnections);
        }
        let mut shard = lock(&self.per_ip[shard_of(ip)]);
        let n = shard.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            drop(shard);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Reason::TooManyConnectionsPerIp);
        }
        *n += 1;
        Ok(ConnGuard { limiter: self.clone(), ip })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut shard = lock(&self.limiter.per_ip[shard_of(self.ip)]);
        if let Some(n) = shard.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&self.ip);
            }
        }
        drop(shard);
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
    }
}

fn shard_of(ip: IpAddr) -> usize {
    let h = match ip {
        IpAddr::V4(a) => u32::from(a) as usize,
        IpAddr::V6(a) => (u128::from(a) >> 64) as usize ^ u128::from(a) as usize,
    };
    h.wrapping_mul(0x9E37_79B9) >> 7 & (SHARDS - 1)
}

/// Locks a mutex, recovering from poisoning (a panic elsewhere must not
/// stop the gateway from counting).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits() {
        let l = Arc::new(ConnLimiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = l.acquire(a, 64, 3, 2).unwrap();
        let _g2 = l.acquire(a, 64, 3, 2).unwrap();
        assert_eq!(l.acquire(a, 64, 3, 2).err(), Some(Reason::TooManyConnectionsPerIp));
        let _g3 = l.acquire(b, 64, 3, 2).unwrap();
        assert_eq!(l.acquire(b, 64, 3, 2).err(), Some(Reason::TooManyConnections));
        drop(g1);
        let _g4 = l.acquire(a, 64, 3, 2).unwrap();
        assert_eq!(l.open(), 3);
        drop(_g4);
        assert_eq!(l.open(), 2);
    }

    /// Issue 10, point 8: the addresses of one /64 share the per-client
    /// cap; a mapped IPv4 address is its IPv4 client.
    #[test]
    fn an_ipv6_network_shares_the_per_client_cap() {
        let l = Arc::new(ConnLimiter::default());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _g1 = l.acquire(ip("2001:db8:7:8::1"), 64, 100, 2).unwrap();
        let _g2 = l.acquire(ip("2001:db8:7:8::2"), 64, 100, 2).unwrap();
        assert_eq!(l.acquire(ip("2001:db8:7:8:9::3"), 64, 100, 2).err(), Some(Reason::TooManyConnectionsPerIp));
        let _g3 = l.acquire(ip("2001:db8:7:9::1"), 64, 100, 2).unwrap();
        let _g4 = l.acquire(ip("2001:db8:7:8::2"), 128, 100, 2).unwrap();
        let _g5 = l.acquire(ip("192.0.2.1"), 64, 100, 1).unwrap();
        assert_eq!(l.acquire(ip("::ffff:192.0.2.1"), 64, 100, 1).err(), Some(Reason::TooManyConnectionsPerIp));
        drop(_g1);
        let _g6 = l.acquire(ip("2001:db8:7:8::3"), 64, 100, 2).unwrap();
    }
}
