//! Errors of the gob codec.

/// A gob encoding or decoding failure. Malformed input always ends here, never in a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the underlying stream failed.
    #[error("gob: {0}")]
    Io(#[from] std::io::Error),
    /// A message ended in the middle of a value (Go: `unexpected EOF`).
    #[error("gob: unexpected end of message")]
    UnexpectedEnd,
    /// A message length beyond the configured limit.
    #[error("gob: message of {0} bytes exceeds the limit of {1}")]
    MessageTooBig(u64, usize),
    /// The input breaks the format (bad integer, impossible length, unknown type id, …).
    #[error("gob: {0}")]
    Malformed(String),
    /// The input is well-formed but exceeds a resource limit of this decoder.
    #[error("gob: {0}")]
    Limit(String),
    /// A value does not fit the type it is encoded as.
    #[error("gob: cannot encode {value} as {ty}")]
    Encode {
        /// What the value was.
        value: String,
        /// The type it was meant to be.
        ty: String,
    },
}

/// Result of a gob operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Malformed(msg.into()))
}
