//! `docker-machine create` on EC2: the pre-create check, then the machine.
//!
//! * [`resolve`] — the pre-create check: network, zones, instance types, image, key pair,
//!   resolved (and checked) before anything is made.
//! * [`flow`] — the create itself: SSH key, security groups, one launch, the wait; on failure
//!   everything it made is removed.
//! * [`market`] — where the machine lands: spot or on-demand over its pools, and the
//!   on-demand fallback when every spot pool is full.
//! * [`fleet`] — a launch over several pools: one EC2 Fleet request.
//! * [`wait`] — until the instance runs with an address.
//! * [`user_data`] and [`tls_bootstrap`] — the instance's user data, and in it GitLab's fork's
//!   TLS bootstrap (cloud-init).

pub mod baked;
pub mod fleet;
pub mod flow;
pub mod market;
pub mod resolve;
pub mod tls_bootstrap;
pub mod user_data;
pub mod wait;

pub use flow::{GROUP_RELEASE_TIMEOUT, RUN_TIMEOUT, create, ingress_ports};
