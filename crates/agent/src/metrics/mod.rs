//! The agent's Prometheus metrics (off unless `agent --metrics-listen` is given).
//!
//! * [`registry`] — the metrics themselves: what is counted, and the scrape-time gauges
//!   (machines, prices, cost and saving per hour) rendered in Prometheus's text format.
//! * [`ec2_calls`] — an SDK interceptor counting every EC2 request attempt by action and
//!   outcome.
//! * [`prices`] — on-demand prices (a table shipped here, its source cited) and the spot
//!   prices the agent read.
//! * [`exporter`] — the HTTP endpoint (`GET /metrics`).

pub mod ec2_calls;
pub mod exporter;
pub mod prices;
pub mod registry;

pub use registry::Metrics;
