//! Errors shared by every crate that reads configuration.

use std::path::PathBuf;

/// A configuration that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the
    /// wrong type.
    #[error("{origin}: {}{message}{}", key_prefix(key), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Parse {
        /// The file.
        origin: String,
        /// Dotted path of the key, when known.
        key: String,
        /// Line in the file, when known.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// A value has the right type but cannot be used.
    #[error("{origin}: {}{value}: expected {expected}", key_eq(key))]
    Invalid {
        /// The file (and line, for list files).
        origin: String,
        /// Dotted path of the key.
        key: String,
        /// The value found.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn key_eq(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key} = ")
    }
}

impl ConfigError {
    /// Sets the file name of an error found by validation.
    pub fn with_origin(mut self, file: &str) -> Self {
        if let ConfigError::Invalid { origin, .. } = &mut self {
            if origin.is_empty() {
                *origin = file.to_string();
            }
        }
        self
    }
}
