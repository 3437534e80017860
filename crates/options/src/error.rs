//! A refused option: the error every option check returns, naming the flag.

/// A refused option: one line naming the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct OptionError {
    /// The flag (without dashes).
    pub flag: &'static str,
    /// What is wrong and what would be right.
    pub message: String,
}

/// `Err` of a refused `flag`.
pub(crate) fn err<T>(flag: &'static str, message: impl Into<String>) -> Result<T, OptionError> {
    Err(OptionError {
        flag,
        message: message.into(),
    })
}
