//! The create options: the flag table (every `amazonec2-*` flag), the values given, their
//! checks, and the persisted config they are read into.
//!
//! * [`flags`] — the flag table: names, types, defaults, help texts (the single source of
//!   truth for `GetCreateFlags`, `doctor` and the README's option table).
//! * [`values`] — the option values as given (name → value), with typed getters.
//! * [`apply()`] (apply.rs) — `SetConfigFromFlags`: the values read into a
//!   [`Config`](config::Config), each checked before any AWS call.
//! * [`validate`] — the checks of single values (ids, regions, zones, tags, ports, files, …).
//! * [`error`] — [`OptionError`]: a refused option, naming its flag.
//! * [`config`] — the persisted config (`config.json`'s `Driver`), with the launch pools the
//!   pre-create check found.
//! * [`resolved`] — what the pre-create check resolved the options to.
//! * [`tags`] — the ownership tags every resource a machine makes carries.
//!
//! This crate does not depend on the AWS SDK (the `architecture` test checks it): options are
//! read and refused before anything can call AWS.

#![warn(missing_docs)]

mod apply;
pub mod config;
pub mod error;
pub mod flags;
pub mod resolved;
pub mod tags;
pub mod validate;
pub mod values;

pub use apply::apply;
pub use error::OptionError;
