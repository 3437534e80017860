//! The EC2 driver behind the plugin's [`Driver`](crate::plugin::Driver) trait: flags,
//! persisted config, and the machine lifecycle on EC2 (spot and on-demand).
//!
//! Where things happen: [`options`] validates the create options; [`resolve`] is the
//! pre-create check; [`create`] makes a machine ([`keys`], [`security_groups`], then [`spot`]
//! picks the market and pools: [`launch`] for one pool, [`fleet`] for several, [`capacity`]
//! classifies failures, the on-demand fallback is in [`spot`]; [`instance`] waits);
//! [`remove`] takes everything away (and cancels spot requests).
//!
//! GitLab's docker-machine fork: [`labels`] (`UpdateLabels`), [`tls_bootstrap`] and
//! [`user_data`] (the TLS bootstrap delivered by cloud-init).

pub mod ami;
pub mod aws;
pub mod capacity;
pub mod config;
pub mod context;
pub mod create;
pub mod doctor;
mod driver;
pub mod error;
pub mod flags;
pub mod fleet;
pub mod gc;
pub mod http;
pub mod instance;
pub mod keys;
pub mod labels;
pub mod launch;
pub mod machine_lock;
pub mod manager;
pub mod ops;
pub mod options;
pub mod permissions;
pub mod progress;
pub mod remove;
pub mod resolve;
pub mod security_groups;
pub mod spot;
pub mod state_cache;
pub mod tags;
pub mod throttle;
pub mod tls_bootstrap;
pub mod user_data;

pub use config::Config;
pub use driver::{Ec2Driver, HOST_NOT_RUNNING};

/// The name docker-machine knows this driver by (`docker-machine-driver-ec2spot`).
pub const DRIVER_NAME: &str = "ec2spot";
