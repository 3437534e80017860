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
    /// A failure the store's agent met, as the agent described it, with AWS's code ("" when
    /// none): its kind is the one the agent met.
    #[error("{text}")]
    Relayed {
        /// The agent's text of the error.
        text: String,
        /// AWS's code.
        code: String,
    },
    /// Anything else, with a complete sentence.
    #[error("{0}")]
    Other(String),
}

/// What a failure means to the code that meets it: the variants callers branch on, read from
/// AWS's error code (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist — or, for an id made moments ago, not yet (EC2's eventual
    /// consistency): `….NotFound`, `….NotFoundException`, an image `….Unavailable`, an
    /// unknown instance type.
    NotFound(Resource),
    /// The id does not have the resource's form (`….Malformed`).
    Malformed(Resource),
    /// It exists already (`….Duplicate`, `….AlreadyExistsException`).
    Duplicate(Resource),
    /// Something else still uses it (`DependencyViolation`).
    InUse,
    /// A search by the machine's tag found nothing yet (ec2spot's own, never AWS's).
    NotListedYet,
    /// EC2 throttled the call.
    Throttled,
    /// EC2 failed, gave no answer in time, or could not be reached: the call may or may not
    /// have been carried out.
    Unavailable,
    /// The credentials, or the policy, refuse the call.
    Unauthorized,
    /// No capacity in the pool, none at the price, or the spot quota used up.
    Capacity,
    /// The idempotency token was used before with other parameters.
    TokenMismatch,
    /// The resource would have too many tags.
    TagLimit,
    /// An option is wrong.
    InvalidOption,
    /// Anything else: the message says what.
    Other,
}

/// The kind of EC2 resource a failure names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `InvalidInstanceID`.
    Instance,
    /// `InvalidInstanceType`.
    InstanceType,
    /// `InvalidGroup`.
    Group,
    /// `InvalidPermission` (a security group rule).
    Permission,
    /// `InvalidKeyPair`.
    KeyPair,
    /// `InvalidSubnetID`.
    Subnet,
    /// `InvalidVpcID`.
    Vpc,
    /// `InvalidAMIID`.
    Image,
    /// `InvalidLaunchTemplateId`: a template named by its id.
    Template,
    /// `InvalidLaunchTemplateName`: a template named by its name (moto also answers a
    /// deletion by id of a deleted template so).
    TemplateName,
    /// `InvalidSpotInstanceRequestID`.
    SpotRequest,
    /// Another.
    Other,
}

/// The codes of EC2 throttling a call (EC2 answers `RequestLimitExceeded` with HTTP 503).
const THROTTLED: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

/// The codes of EC2's own failures, and ec2spot's for no answer or no connection (see [`aws`]).
const UNAVAILABLE: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "Timeout",
    "ConnectionFailed",
];

/// The codes of refused credentials or permissions.
const UNAUTHORIZED: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "Blocked",
    "OptInRequired",
    "ExpiredToken",
    "RequestExpired",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
];

impl ErrorKind {
    /// The kind of AWS's error `code`.
    pub fn of(code: &str) -> ErrorKind {
        let bare = code.strip_prefix("Server.").unwrap_or(code);
        match bare {
            c if THROTTLED.contains(&c) => return ErrorKind::Throttled,
            c if UNAVAILABLE.contains(&c) => return ErrorKind::Unavailable,
            c if UNAUTHORIZED.contains(&c) => return ErrorKind::Unauthorized,
            c if crate::aws::capacity::is_capacity(c) => return ErrorKind::Capacity,
            "IdempotentParameterMismatch" => return ErrorKind::TokenMismatch,
            "DependencyViolation" => return ErrorKind::InUse,
            "TagLimitExceeded" => return ErrorKind::TagLimit,
            "InvalidInstanceType" => return ErrorKind::NotFound(Resource::InstanceType),
            "ec2spot.NoneListedYet" => return ErrorKind::NotListedYet,
            _ => {}
        }
        let Some((prefix, what)) = bare.split_once('.') else {
            return ErrorKind::Other;
        };
        let resource = match prefix {
            "InvalidInstanceID" => Resource::Instance,
            "InvalidGroup" => Resource::Group,
            "InvalidPermission" => Resource::Permission,
            "InvalidKeyPair" => Resource::KeyPair,
            "InvalidSubnetID" => Resource::Subnet,
            "InvalidVpcID" => Resource::Vpc,
            "InvalidAMIID" => Resource::Image,
            "InvalidLaunchTemplateId" => Resource::Template,
            "InvalidLaunchTemplateName" => Resource::TemplateName,
            "InvalidSpotInstanceRequestID" => Resource::SpotRequest,
            _ => Resource::Other,
        };
        match what {
            "NotFound" | "NotFoundException" => ErrorKind::NotFound(resource),
            "Unavailable" if resource == Resource::Image => ErrorKind::NotFound(resource),
            "Malformed" => ErrorKind::Malformed(resource),
            "Duplicate" | "AlreadyExistsException" => ErrorKind::Duplicate(resource),
            _ => ErrorKind::Other,
        }
    }
}

/// Result of the EC2 driver.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// AWS's error code, if this is an AWS failure.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            Error::Capacity { failures, .. } => failures.first().map(|f| f.code.as_str()),
            Error::Relayed { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    /// What this failure means to its caller (see [`ErrorKind`]): the one thing callers branch
    /// on. AWS's code stays in the error for messages.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Aws { code, .. } => ErrorKind::of(code),
            Error::Capacity { .. } => ErrorKind::Capacity,
            Error::Relayed { code, .. } => ErrorKind::of(code),
            Error::Option(_) => ErrorKind::InvalidOption,
            Error::Other(_) => ErrorKind::Other,
        }
    }

    /// Whether this failure is one of `kinds`.
    pub fn is(&self, kinds: &[ErrorKind]) -> bool {
        kinds.contains(&self.kind())
    }

    /// Whether EC2 throttled the call or could not be reached (it may answer a moment later),
    /// as opposed to refusing it: only then may an old observation stand in for a new one.
    /// Authentication and authorization failures never count: the caller must see them.
    pub fn is_transient(&self) -> bool {
        self.is(&[ErrorKind::Throttled, ErrorKind::Unavailable])
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

/// Whether a call on `resource` was done: succeeded (`Some`), or found it gone already (`None`,
/// "not found": a deletion of what no longer exists has nothing left to do). Every other
/// failure is returned.
pub fn unless_gone<T>(result: Result<T>, resource: Resource) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is(&[ErrorKind::NotFound(resource)]) => Ok(None),
        Err(e) => Err(e),
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

    #[test]
    fn codes_have_the_kinds_callers_branch_on() {
        use Resource::*;
        for (c, k) in [
            ("InvalidGroup.NotFound", ErrorKind::NotFound(Group)),
            ("InvalidKeyPair.NotFound", ErrorKind::NotFound(KeyPair)),
            (
                "InvalidLaunchTemplateName.NotFoundException",
                ErrorKind::NotFound(TemplateName),
            ),
            (
                "InvalidLaunchTemplateId.NotFound",
                ErrorKind::NotFound(Template),
            ),
            ("InvalidAMIID.Unavailable", ErrorKind::NotFound(Image)),
            ("InvalidAMIID.Malformed", ErrorKind::Malformed(Image)),
            ("InvalidInstanceType", ErrorKind::NotFound(InstanceType)),
            ("InvalidKeyPair.Duplicate", ErrorKind::Duplicate(KeyPair)),
            (
                "InvalidLaunchTemplateName.AlreadyExistsException",
                ErrorKind::Duplicate(TemplateName),
            ),
            (
                "InvalidPermission.Duplicate",
                ErrorKind::Duplicate(Permission),
            ),
            ("DependencyViolation", ErrorKind::InUse),
            ("IdempotentParameterMismatch", ErrorKind::TokenMismatch),
            ("InsufficientInstanceCapacity", ErrorKind::Capacity),
            ("Server.InsufficientInstanceCapacity", ErrorKind::Capacity),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("Timeout", ErrorKind::Unavailable),
            ("UnauthorizedOperation", ErrorKind::Unauthorized),
            ("InvalidParameterValue", ErrorKind::Other),
        ] {
            assert_eq!(code(c).kind(), k, "{c}");
        }
        assert_eq!(
            Error::Option(OptionError {
                flag: "amazonec2-region",
                message: "x".into()
            })
            .kind(),
            ErrorKind::InvalidOption
        );
    }
}
