//! Probes and scanners: requests for paths only attackers ask for
//! (`/.env`, `/.git/config`, `/wp-login.php`) and known scanner user agents
//! (sqlmap, nikto, ...). Both are refused and count toward a ban.
//!
//! Matching is one Aho-Corasick automaton each, built at load time:
//! probe paths match as case-insensitive prefixes of the path, scanner
//! names anywhere in the User-Agent.

use aho_corasick::{AhoCorasick, Anchored, Input, StartKind};
use rampart_core::config::Bans;

use crate::reject::Reason;

/// The compiled probe and scanner matchers.
#[derive(Clone, Debug)]
pub struct Probes {
    paths: Option<AhoCorasick>,
    agents: Option<AhoCorasick>,
}

impl Probes {
    /// From `[bans]` (`probe_paths`, `scanner_user_agents`).
    pub fn build(bans: &Bans) -> Self {
        let build = |pats: &[String], kind| {
            (!pats.is_empty())
                .then(|| AhoCorasick::builder().ascii_case_insensitive(true).start_kind(kind).build(pats).ok())
                .flatten()
        };
        Probes {
            paths: build(&bans.probe_paths, StartKind::Anchored),
            agents: build(&bans.scanner_user_agents, StartKind::Unanchored),
        }
    }

    /// `Some(reason)` when the request is a probe or comes from a scanner.
    pub fn check(&self, path: &str, user_agent: Option<&[u8]>) -> Option<Reason> {
        if let Some(ac) = &self.paths {
            if ac.find(Input::new(path).anchored(Anchored::Yes)).is_some() {
                return Some(Reason::Probe);
            }
        }
        if let (Some(ac), Some(ua)) = (&self.agents, user_agent) {
            if ac.is_match(ua) {
                return Some(Reason::Scanner);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lists_catch_common_probes_and_scanners() {
        let p = Probes::build(&Bans::default());
        assert_eq!(p.check("/.env", None), Some(Reason::Probe));
        assert_eq!(p.check("/.git/config", None), Some(Reason::Probe));
        assert_eq!(p.check("/WP-LOGIN.PHP", None), Some(Reason::Probe));
        assert_eq!(p.check("/app/.env", None), None, "prefix only");
        assert_eq!(p.check("/", Some(b"sqlmap/1.7.2#stable (https://sqlmap.org)")), Some(Reason::Scanner));
        assert_eq!(p.check("/", Some(b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")), None);
    }

    #[test]
    fn empty_lists_match_nothing() {
        let p = Probes::build(&Bans { probe_paths: vec![], scanner_user_agents: vec![], ..Bans::default() });
        assert_eq!(p.check("/.env", Some(b"nikto")), None);
    }
}
