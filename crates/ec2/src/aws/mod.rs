//! Talking to EC2: the SDK client (built the same way in a plugin and in the agent), its HTTPS
//! client and proxy, the client-side rate limits, and what AWS's answers mean.
//!
//! * `client.rs` — [`ClientSettings`] and building the EC2 client from them ([`client()`],
//!   [`settings()`], [`credentials()`]).
//! * [`http`] — the HTTPS client under it (rustls, extra CA bundle, proxy).
//! * [`proxy`] — the proxy, chosen from the environment as Go's `net/http` chooses it.
//! * [`throttle`] — token buckets mirroring EC2's request buckets.
//! * [`error`] — [`Error`](error::Error): every failure, naming the step and AWS's code.
//! * [`capacity`] — the codes that mean "no capacity in this pool", never retried.
//! * [`consistency`] — retrying a step that names an id EC2 handed out moments ago.

pub mod capacity;
mod client;
pub mod consistency;
pub mod error;
pub mod http;
pub mod proxy;
pub mod throttle;

pub use client::{
    ClientSettings, attempt_timeout, build, client, credentials, endpoint, http_client,
    retry_config, settings,
};
