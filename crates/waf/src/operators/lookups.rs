//! Operators that ask an outside service about the client: `@geoLookup`
//! (a GeoIP database) and `@rbl` (a DNS blocklist).
//!
//! Rampart ships no GeoIP database and makes no DNS queries while a request
//! waits (a blocklist lookup per request would add a network round trip and
//! tell the list's operator who visits), so both never match. CRS uses
//! them only in its optional IP-reputation rules (CRS 3.3's 910 file),
//! which then stay quiet; the gateway's own IP policy and bans do that job.
//!
//! `SecRule REMOTE_ADDR "@geoLookup" "chain,id:1,deny"`

use super::{Operator, Vars};

#[derive(Debug)]
struct NoLookup;

impl Operator for NoLookup {
    fn matches(&self, _: &[u8], _: Vars<'_>) -> bool {
        false
    }
}

/// `@geoLookup`.
pub fn geo_lookup(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(NoLookup))
}

/// `@rbl zone`.
pub fn rbl(arg: &str) -> Result<Box<dyn Operator>, String> {
    if arg.trim().is_empty() {
        return Err("@rbl needs a DNS zone".into());
    }
    Ok(Box::new(NoLookup))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn lookups_never_match() {
        assert!(!super::geo_lookup("").unwrap().matches(b"192.0.2.1", &no_vars));
        assert!(!super::rbl("sbl-xbl.spamhaus.org").unwrap().matches(b"127.0.0.2", &no_vars));
        assert!(super::rbl("").is_err());
    }
}
