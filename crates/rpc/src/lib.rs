//! Go's `net/rpc` over HTTP (`rpc.HandleHTTP` / `rpc.DialHTTP`) with the gob codec: the
//! CONNECT handshake, request/response headers, a concurrent server and a client.
//!
//! # Layout
//! * [`handshake`] — the HTTP CONNECT exchange that opens a connection.
//! * [`header`] — net/rpc's request and response headers as gob values.
//! * [`server`] — a concurrent server dispatching calls to [`Service`]s.
//! * [`client`] — a client, as docker-machine's side uses it.

#![warn(missing_docs)]

pub mod client;
pub mod handshake;
pub mod header;
pub mod server;

pub use client::{Client, ClientError};
pub use header::{RequestHeader, ResponseHeader, empty_type, request_type, response_type};
pub use server::{Reply, ReplyFuture, Server, Service};
