//! Request body processors: one file each. Each turns a body into
//! `(name, value)` arguments, or an error message that becomes
//! `REQBODY_ERROR`/`REQBODY_ERROR_MSG` (the body is then not parsed further,
//! and never makes the engine panic). Work is linear in the body and depth
//! is bounded.

pub mod json;
pub mod multipart;
pub mod xml;

/// Deepest nesting a body processor follows.
pub const MAX_DEPTH: usize = 64;
