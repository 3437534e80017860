//! The create options: the flag table (every `amazonec2-*` flag), the values given, their
//! checks, and the persisted config they are read into.
//!
//! * [`flags`] — the flag table: names, types, defaults, help texts (the single source of
//!   truth for `GetCreateFlags`, `doctor` and the README's option table).
//! * [`values`] — the option values as given (name → value), with typed getters.
//! * [`apply()`] (apply.rs) — `SetConfigFromFlags`: the values read into a
//!   [`Asked`], each checked before any AWS call.
//! * [`validate`] — the checks of single values (ids, regions, zones, tags, ports, files, …).
//! * [`error`] — [`OptionError`]: a refused option, naming its flag.
//! * [`asked`] — [`Asked`]: what the user asked for (set once, never changed after).
//! * [`answered`] — [`Answered`]: what EC2 answered before the launch (the pre-create check).
//! * [`made`] — [`Made`]: what a create made (ids, addresses, where it landed).
//! * [`config`] — the three together as the persisted config (`config.json`'s `Driver`, with
//!   the keys docker-machine and amazonec2 gave it).
//! * [`tags`] — the ownership tags every resource a machine makes carries.
//!
//! This crate does not depend on the AWS SDK (the `architecture` test checks it): options are
//! read and refused before anything can call AWS.

#![warn(missing_docs)]

pub mod answered;
mod apply;
pub mod asked;
pub mod config;
pub mod error;
pub mod flags;
pub mod made;
pub mod tags;
pub mod validate;
pub mod values;

pub use answered::Answered;
pub use apply::apply;
pub use asked::Asked;
pub use error::OptionError;
pub use made::Made;
