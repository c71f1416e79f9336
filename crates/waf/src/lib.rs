//! Rampart's web application firewall: a SecLang engine that runs the OWASP
//! Core Rule Set (CRS) unmodified.
//!
//! This first part is the SecLang loader: [`seclang::load_file`] reads a
//! rule set (with `Include` globs, line continuations and ModSecurity's
//! quoting) into a [`seclang::RuleSet`] of parsed rules, naming file, line
//! and the offending text on any error. Operators, transformations, actions
//! and the request pipeline build on it.
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
pub mod names;
pub mod operators;
pub mod request;
pub mod seclang;
pub mod transforms;
