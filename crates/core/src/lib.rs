//! Rampart's shared vocabulary.
//!
//! - [`Config`]: the schema of `rampart.toml`, its defaults and validation.
//! - [`Event`]: the one record every component reports what it did with,
//!   in Elastic Common Schema field names.
//! - [`HumanDuration`]: durations as people write them (`"10s"`).
//! - [`Schedule`]: recurring times (`"daily 02:30"`).
//!
//! ```
//! let config = rampart_core::Config::from_toml("[limits]\nmax_headers = 50\n", "rampart.toml").unwrap();
//! assert_eq!(config.limits.max_headers, 50);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod duration;
pub mod error;
pub mod event;
pub mod private_fs;
pub mod schedule;

pub use config::Config;
pub use duration::HumanDuration;
pub use error::ConfigError;
pub use event::{Event, Kind, Outcome};
pub use schedule::Schedule;
