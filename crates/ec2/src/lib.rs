//! The EC2 machine lifecycle (spot and on-demand): the create options, the persisted config,
//! and the operations docker-machine asks of a driver. It knows nothing of docker-machine's
//! plugin protocol (gob, net/rpc) nor of the agent (gRPC): the binary connects them, and the
//! agent runs the same [`ops::run`] for every plugin of a store.
//!
//! # Layout
//! Each folder uses only the ones listed before it (the `architecture` integration test
//! checks that no module import cycle exists, within a folder or between them):
//! * [`tags`], [`progress`], [`manager`] — the ownership tags every resource carries, progress
//!   lines, the bastion's manager id.
//! * [`options`] — the `ec2spot-options` crate (re-exported): the flag table, the option
//!   values, their checks, the persisted [`Config`]; it has no AWS SDK, so a bad option is
//!   refused before any AWS call.
//! * [`aws`] — the EC2 client, its HTTPS client and rate limits, error classification.
//! * [`create_record`] — what a create made, on disk, for an `rm` after it died.
//! * [`resources`] — one file per EC2 resource kind: instance, launch (`RunInstances`),
//!   launch template, spot request, key pair, security group, image.
//! * [`state`] — the machine's state and how it is read (directly, or the agent's cache).
//! * [`remove`] — taking a machine away; spot requests are cancelled in
//!   [`remove::cancel_spot_requests`](remove).
//! * [`create`] — the pre-create check and the create (market choice, fleet, fallback, wait,
//!   user data and TLS bootstrap).
//! * [`labels`] — GitLab's fork's `UpdateLabels`.
//! * [`machine_lock`] — one changing operation per machine at a time.
//! * [`ops`] — every operation docker-machine can ask for, the entry point of both paths.
//! * [`tools`] — `doctor`, `gc` and the IAM permissions.

#![warn(missing_docs)]

pub mod aws;
pub mod create;
pub mod create_record;
pub mod labels;
pub mod machine_lock;
pub mod manager;
pub mod ops;
pub mod progress;
pub mod remove;
pub mod resources;
pub mod state;
pub mod tags;
pub mod tools;

pub use aws::error::{Error, ErrorKind, Resource, Result};
pub use ec2spot_options as options;
pub use options::config::Config;
