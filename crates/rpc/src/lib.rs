//! Go's `net/rpc` over HTTP (`rpc.HandleHTTP` / `rpc.DialHTTP`) with the gob codec: the
//! CONNECT handshake, request/response headers, a concurrent server and a client.

#![warn(missing_docs)]

pub mod client;
pub mod handshake;
pub mod header;
pub mod server;

pub use client::{Client, ClientError};
pub use header::{RequestHeader, ResponseHeader, empty_type, request_type, response_type};
pub use server::{Reply, ReplyFuture, Server, Service};
