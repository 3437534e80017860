//! The checks that keep ec2spot's layers apart, run by the `architecture` integration test
//! (and so by CI):
//!
//! * [`crates`] — which workspace crate may depend on which (from `cargo metadata`), a source
//!   scan for crate names a crate must not use, and the declared `rust-version` against what
//!   the dependencies need;
//! * [`modules`] — the module import graph of a crate, its cycles, and the cycles between its
//!   top-level modules (folders);
//! * [`functions`] — how long each function of the shipped code is.

pub mod crates;
pub mod functions;
pub mod modules;
