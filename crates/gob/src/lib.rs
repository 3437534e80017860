//! Go's `encoding/gob` wire format, as `net/rpc` uses it: usable by a client and a server.
//!
//! * [`Decoder`] turns the messages of one stream direction into dynamic [`Value`]s,
//!   remembering the peer's type definitions, following interface values across message
//!   boundaries, and bounding every resource (see [`Limits`]).
//! * [`Encoder`] turns ([`Type`], [`Value`]) pairs into messages, defining each type once per
//!   stream.
//!
//! Why our own codec: the one candidate crate, `gobwire` 0.1.0, decoded every recorded
//! docker-machine stream correctly, but hostile input could overflow its stack (deeply nested
//! type definitions abort the process) and make it allocate gigabytes from a few hundred bytes
//! (type trees built without a budget). This codec keeps types as an id table, decodes by
//! walking the data, and only rebuilds the (budgeted) type of a received interface value.
//!
//! # Layout
//! `wire.rs` (integers, lengths, messages), `types.rs` (type ids and definitions), `value.rs`
//! (dynamic values), `decode.rs` and `stream.rs` (bytes → values), `encode.rs` (values →
//! bytes), `error.rs`.

#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
mod stream;
mod types;
mod value;
pub mod wire;

pub use decode::{Decoder, Limits, decode_stream};
pub use encode::Encoder;
pub use error::{Error, Result};
pub use stream::StreamDecoder;
pub use types::{Field, StructType, Type, WireType, id};
pub use value::{Interface, Value};
