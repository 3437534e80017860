//! The EC2 machine lifecycle (spot and on-demand): flags, persisted config, and the
//! operations docker-machine asks of a driver. It knows nothing of docker-machine's plugin
//! protocol (gob, net/rpc) nor of the agent (gRPC): the binary connects them.
//!
//! Where things happen: [`options`] validates the create options; [`resolve`] is the
//! pre-create check; [`create`] makes a machine ([`keys`], [`security_groups`], then [`spot`]
//! picks the market and pools: [`launch`] for one pool, [`fleet`] for several, [`capacity`]
//! classifies failures, the on-demand fallback is in [`spot`]; [`instance`] waits);
//! [`remove`] takes everything away (and cancels spot requests).
//!
//! GitLab's docker-machine fork: [`labels`] (`UpdateLabels`), [`tls_bootstrap`] and
//! [`user_data`] (the TLS bootstrap delivered by cloud-init).

#![warn(missing_docs)]

pub mod ami;
pub mod aws;
pub mod capacity;
pub mod config;
pub mod context;
pub mod create;
pub mod doctor;
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
pub mod machine_state;
pub mod manager;
pub mod ops;
pub mod option_values;
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
