//! Capacity failures: the AWS error codes that mean "no room (or no price) for this pool right
//! now". They are never retried and never waited on: the launch tries every pool at once, may
//! fall back to on-demand, and otherwise fails in seconds naming each pool and code.

use aws_sdk_ec2::config::interceptors::InterceptorContext;
use aws_sdk_ec2::config::retry::{ClassifyRetry, RetryAction};

use crate::options::config::Pool;

/// Codes meaning a pool has no capacity, or none at the allowed price, or the account's spot
/// quota is used up — the failures an on-demand fallback can help with.
pub const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "InsufficientCapacityOnHost",
    "capacity-not-available",
    "price-too-low",
];

/// Whether `code` is a capacity, price or spot-quota failure.
pub fn is_capacity(code: &str) -> bool {
    let bare = code.strip_prefix("Server.").unwrap_or(code);
    CAPACITY_CODES.contains(&bare)
}

/// One pool's failed launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFailure {
    /// The pool.
    pub pool: Pool,
    /// AWS's code.
    pub code: String,
    /// AWS's message.
    pub message: String,
}

/// Renders failures as `m5.large in us-east-1a (subnet-1): Code; …`.
pub fn describe(failures: &[PoolFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.pool, f.code))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An SDK retry classifier that forbids retrying capacity failures: EC2 answers some of them
/// with HTTP 500, which the standard policy would retry with backoff. (Any classifier's
/// "forbidden" wins over the others' verdicts.)
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRetryOnCapacity;

impl ClassifyRetry for NoRetryOnCapacity {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(body) = ctx.response().and_then(|r| r.body().bytes()) else {
            return RetryAction::NoActionIndicated;
        };
        let text = String::from_utf8_lossy(body);
        let code = text
            .split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next());
        match code {
            Some(code) if is_capacity(code) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ec2spot: never retry capacity failures"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_capacity_codes() {
        for c in [
            "InsufficientInstanceCapacity",
            "Server.InsufficientInstanceCapacity",
            "SpotMaxPriceTooLow",
            "UnfulfillableCapacity",
            "MaxSpotInstanceCountExceeded",
        ] {
            assert!(is_capacity(c), "{c}");
        }
        for c in [
            "UnauthorizedOperation",
            "RequestLimitExceeded",
            "InvalidParameterValue",
            "",
        ] {
            assert!(!is_capacity(c), "{c}");
        }
    }
}
