//! The `docker-machine-driver-ec2spot` binary's library: the one place that knows docker-machine's
//! plugin contract, the EC2 lifecycle and both ways of running it (the store's agent, or this
//! process), and connects them. `src/main.rs` is the command line on top.
//!
//! # Layout
//! * [`driver`] — [`Ec2Driver`](driver::Ec2Driver): the plugin contract's `Driver` on top of the
//!   EC2 lifecycle's operations.
//! * [`backend`] — where an operation runs: the store's agent, or this process.
//! * [`convert`] — plugin ⇄ EC2 types (flags, option values, states, TLS material).
//! * [`fleet`] — the `fleet` subcommand: the store's machines, from the agent or EC2.
//! * [`logging`] — the plugin's and the agent's log lines.
//!
//! The layers below, each a crate that knows only the ones before it (ARCHITECTURE.md):
//! `ec2spot-gob` → `ec2spot-rpc` → `ec2spot-plugin`; `ec2spot-ec2` → `ec2spot-agent`.

#![warn(missing_docs)]

pub mod backend;
pub mod convert;
pub mod driver;
pub mod fleet;
pub mod log_file;
pub mod logging;
