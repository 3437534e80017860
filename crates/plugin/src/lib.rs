//! docker-machine's driver-plugin contract: process launch (token, address line, heartbeat
//! watchdog, `Close`), the RPC method table, mcnflag types and machine states. It talks to a
//! [`Driver`] and knows nothing of AWS.

#![warn(missing_docs)]

mod driver;
pub mod launch;
pub mod mcnflag;
pub mod output;
mod service;
mod state;
pub mod wire;

pub use driver::{
    Driver, DriverError, DriverResult, LABELS_NOT_SUPPORTED, TLS_BOOTSTRAP_NOT_SUPPORTED,
    TlsBootstrap,
};
pub use mcnflag::{Flag, FlagValue, FlagValues};
pub use service::{DriverService, METHODS, SERVICE_NAMES};
pub use state::State;

/// The plugin API version docker-machine requires (`GetVersion`).
pub const API_VERSION: i64 = 1;

/// What the stock Go plugin helper prints (to stderr) when run without docker-machine.
pub const NOT_A_CLI: &str = "This is a Docker Machine plugin binary.\n\
Plugin binaries are not intended to be invoked directly.\n\
Please use this plugin through the main 'docker-machine' binary.\n\
(API version: 1)";
