//! What one look at an instance saw, and how long ago.

use std::time::Duration;

use aws_sdk_ec2::types::Instance;

/// One EC2 observation of an instance.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The instance, `None` when EC2 does not know it.
    pub instance: Option<Instance>,
    /// For a running spot instance marked for interruption: its spot request status code.
    pub interruption: Option<String>,
    /// How old the observation is (zero when just read).
    pub age: Duration,
}
