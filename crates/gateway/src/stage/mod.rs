//! The stages a request passes, in the order DESIGN.md draws them.
//!
//! ```text
//! listener ─▶ conn_limit ─▶ ip_policy (+ bans) ─▶ request_limits ─▶ route
//!   ─▶ probes ─▶ rate_limit ─▶ csrf ─▶ body limit ─▶ waf (phases 1, 2)
//!   ─▶ upstream ─▶ waf (phases 3, 4, 5) ─▶ headers
//! ```
//!
//! Each stage is one file: a runtime type built once from the validated
//! configuration, and a decision method that either lets the request on or
//! returns the [`Reason`](crate::reject::Reason) it is refused for. The
//! caller turns a refusal into the response, the `Event`, the metric and the
//! ban score, so every stage is treated alike (see `docs/specs/stage.md`).
//!
//! Failure policy: every stage fails closed except the shared rate-limit
//! store, which fails open (a Redis outage must not take the site down;
//! it is logged and counted).

pub mod bans;
pub mod conn_limit;
pub mod csrf;
pub mod headers;
pub mod ip_policy;
pub mod path;
pub mod probes;
pub mod rate_limit;
pub mod request_limits;
pub mod waf;
