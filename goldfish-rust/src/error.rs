//! The one error type of the SDK. Every message says what went wrong and how to fix it.

use std::fmt;

/// Errors returned by the SDK. Metric and log calls never return errors (they count and skip);
/// inputs, outputs, contracts and file formats do.
#[derive(thiserror::Error)]
pub enum GoldfishError {
    /// Missing or malformed stage configuration, an undeclared signal, an unknown format.
    #[error("config error: {0}")]
    Config(String),
    /// A filesystem operation failed; `context` names the path and the operation.
    #[error("I/O error: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Data does not match the declared output schema (blocking enforcement), or a data/format mismatch.
    #[error("schema contract violated: {0}")]
    Schema(String),
    /// Output statistics could not be computed or recorded.
    #[error("stats error: {0}")]
    Stats(String),
    /// A name or path would escape the inputs/outputs directory.
    #[error("path security: {0}")]
    PathSecurity(String),
    /// A file is not valid NPY/NPZ/CSV/JSON, uses an unsupported dtype, or exceeds a safety limit.
    #[error("invalid data file: {0}")]
    Format(String),
}

// `fn main() -> Result<(), GoldfishError>` prints the error with Debug; show the readable message.
impl fmt::Debug for GoldfishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<std::io::Error> for GoldfishError {
    fn from(source: std::io::Error) -> Self {
        GoldfishError::Io { context: "I/O operation failed".to_string(), source }
    }
}

impl From<serde_json::Error> for GoldfishError {
    fn from(e: serde_json::Error) -> Self {
        GoldfishError::Format(format!("invalid JSON: {}", e))
    }
}

impl GoldfishError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GoldfishError::Io { context: context.into(), source }
    }

    /// `map_err` helper: `File::open(p).map_err(GoldfishError::io_ctx(format!("open {}", ..)))`.
    pub(crate) fn io_ctx(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| GoldfishError::Io { context, source }
    }
}

/// Result alias used throughout the SDK.
pub type Result<T> = std::result::Result<T, GoldfishError>;
