//! docker-machine's driver-plugin contract: process launch (token, address line, heartbeat
//! watchdog, `Close`), the RPC method table, mcnflag types and machine states. It talks to a
//! [`Driver`] and knows nothing of AWS.
//!
//! # Layout
//! * [`launch`] — what a plugin process does at start: the token check, the address line,
//!   serving, the heartbeat watchdog, `Close`.
//! * `service.rs` — [`DriverService`]: the RPC method table (`RPCServerDriver.*`), one call
//!   at a time into the [`Driver`].
//! * `driver.rs` — the [`Driver`] trait: what docker-machine asks of a driver.
//! * [`mcnflag`] — create flags and the option values docker-machine sends back.
//! * [`wire`] — those types as gob values.
//! * `state.rs` — [`State`], docker-machine's machine states.
//! * [`output`] — the plugin's output lines (plain, or JSON for GitLab's fork).

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
