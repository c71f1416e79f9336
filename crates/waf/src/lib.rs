//! Rampart's web application firewall: a SecLang engine that runs the OWASP
//! Core Rule Set (CRS) unmodified.
//!
//! - [`seclang`] reads a rule set (with `Include` globs, line continuations
//!   and ModSecurity's quoting), naming file, line and text on any error;
//! - [`sources`] finds the rules: a configured CRS, Debian's, or the
//!   built-in baseline;
//! - [`engine`] compiles them once ([`operators`], [`transforms`]) and runs
//!   a [`engine::Transaction`] per request;
//! - [`request`] and [`body`] turn a request and a response into the
//!   variables the rules read;
//! - [`log`] writes matches as ModSecurity-style log lines.
//!
//! ```
//! let rules = rampart_waf::seclang::load_str(
//!     r#"SecRule ARGS "@rx attack" "id:1,phase:2,deny,t:lowercase""#,
//!     "inline.conf",
//! ).unwrap();
//! assert_eq!(rules.rules[0].id(), Some(1));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod engine;
pub mod log;
pub mod names;
pub mod operators;
pub mod request;
pub mod seclang;
pub mod sources;
pub mod transforms;
