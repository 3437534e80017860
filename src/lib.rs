//! ec2spot: a docker-machine driver plugin that runs GitLab Runner's autoscaled CI machines
//! on AWS EC2 spot instances, a drop-in replacement for docker-machine's `amazonec2` driver.
//!
//! Layers, each ignorant of the ones below it:
//! * [`gob`] — Go's gob encoding;
//! * [`rpc`] — Go's `net/rpc` over HTTP CONNECT;
//! * [`plugin`] — docker-machine's driver-plugin contract, talking to a [`plugin::Driver`];
//! * [`ec2`] — the EC2 driver behind that trait;
//! * [`agent`] — the local agent that runs the EC2 work of all plugin processes of a store.
//!
//! Beside them, [`redact`] keeps secrets out of `Debug` output.

#![warn(missing_docs)]

pub use ec2spot_agent as agent;
pub mod backend;
pub mod convert;
pub mod driver;
pub mod fuzzing;
pub use ec2spot_ec2 as ec2;
pub use ec2spot_gob as gob;
pub use ec2spot_plugin as plugin;
pub use ec2spot_redact as redact;
pub use ec2spot_rpc as rpc;
