//! Errors of the EC2 driver: every message names the step (and the AWS action) that failed
//! and carries AWS's error code and text, or names the option that is wrong.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::options::error::OptionError;

/// A failure of the EC2 driver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An AWS call failed.
    #[error("{step}: {code}: {message}")]
    Aws {
        /// What the driver was doing, with the EC2 action.
        step: String,
        /// AWS's error code (`InsufficientInstanceCapacity`, …), or a transport failure kind.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// An option is wrong (found before or while talking to AWS).
    #[error(transparent)]
    Option(#[from] OptionError),
    /// Every pool refused the launch for capacity, price or spot-quota reasons.
    #[error(
        "launching ({actions}): no {market} capacity in any pool: {}",
        crate::aws::capacity::describe(failures)
    )]
    Capacity {
        /// `spot` or `on-demand`.
        market: String,
        /// The EC2 actions tried (`RunInstances`, `CreateFleet`).
        actions: String,
        /// Each pool tried, with AWS's code.
        failures: Vec<crate::aws::capacity::PoolFailure>,
    },
    /// Anything else, with a complete sentence.
    #[error("{0}")]
    Other(String),
}

/// Result of the EC2 driver.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// AWS's error code, if this is an AWS failure.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            Error::Capacity { failures, .. } => failures.first().map(|f| f.code.as_str()),
            _ => None,
        }
    }

    /// Whether AWS answered one of `codes` (e.g. the "already gone" code of the call made:
    /// only that one counts, so an unrelated NotFound is not taken for success).
    pub fn is_code(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }

    /// Whether EC2 throttled the call or could not be reached (it may answer a moment later),
    /// as opposed to refusing it: only then may an old observation stand in for a new one.
    /// Authentication and authorization failures (`AuthFailure`, `UnauthorizedOperation`,
    /// expired or revoked credentials) never count: the caller must see them.
    /// Codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    pub fn is_transient(&self) -> bool {
        self.is_code(&[
            // throttling (EC2 answers RequestLimitExceeded with HTTP 503)
            "RequestLimitExceeded",
            "Throttling",
            "ThrottlingException",
            "RequestThrottled",
            "RequestThrottledException",
            "TooManyRequestsException",
            "SlowDown",
            // EC2's own server-side failures
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
            "Unavailable",
            // no answer, or no connection (see `aws` below)
            "Timeout",
            "ConnectionFailed",
        ])
    }

    /// Prefixes the message with more context.
    pub fn context(self, what: &str) -> Error {
        match self {
            Error::Aws {
                step,
                code,
                message,
            } => Error::Aws {
                step: format!("{what}: {step}"),
                code,
                message,
            },
            other => Error::Other(format!("{what}: {other}")),
        }
    }
}

/// Converts an SDK failure into an [`Error`] naming `step`.
pub fn aws<E, R>(step: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            Error::Aws {
                step: step.to_string(),
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err.message().unwrap_or("").to_string(),
            }
        }
        SdkError::TimeoutError(_) => Error::Aws {
            step: step.to_string(),
            code: "Timeout".into(),
            message: "no answer from EC2 in time".into(),
        },
        // A read timeout (the agent's limit on an attempt) is a timeout too.
        SdkError::DispatchFailure(d) if d.is_timeout() => Error::Aws {
            step: step.to_string(),
            code: "Timeout".into(),
            message: "no answer from EC2 in time".into(),
        },
        SdkError::DispatchFailure(_) => Error::Aws {
            step: step.to_string(),
            code: "ConnectionFailed".into(),
            message: one_line(&DisplayErrorContext(&e).to_string()),
        },
        _ => Error::Aws {
            step: step.to_string(),
            code: e.code().unwrap_or("Unknown").to_string(),
            message: one_line(&DisplayErrorContext(&e).to_string()),
        },
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> Error {
        Error::Aws {
            step: "reading (DescribeInstances)".into(),
            code: c.into(),
            message: String::new(),
        }
    }

    #[test]
    fn throttling_and_outages_are_transient_refusals_are_not() {
        for c in [
            "RequestLimitExceeded",
            "InternalError",
            "Timeout",
            "ConnectionFailed",
        ] {
            assert!(code(c).is_transient(), "{c}");
        }
        for c in [
            "AuthFailure",
            "UnauthorizedOperation",
            "ExpiredToken",
            "RequestExpired",
            "InvalidClientTokenId",
            "InvalidInstanceID.NotFound",
        ] {
            assert!(!code(c).is_transient(), "{c}");
        }
        assert!(!Error::Other("x".into()).is_transient());
    }
}
