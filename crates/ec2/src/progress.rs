//! Progress lines for the user, sent to a sink the caller gives: a plugin prints them on its
//! stdout (docker-machine shows them as `(machine) line`); in the agent they travel back to
//! the plugin that asked, which prints them.

use std::sync::Arc;
use std::time::Instant;

/// Where progress lines go.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Something an operation met that the agent counts (its metrics), beside the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A launch in one pool failed for capacity, price or spot quota (`code`: AWS's).
    CapacityFailure {
        /// The market asked for (`spot` or `on-demand`).
        market: String,
        /// The pool's instance type.
        instance_type: String,
        /// The pool's availability zone.
        zone: String,
        /// AWS's error code.
        code: String,
    },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Reports one line per step with the seconds since the operation started.
#[derive(Clone)]
pub struct Progress {
    start: Instant,
    sink: Sink,
    events: Option<EventSink>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Sends lines to `sink`.
    pub fn to(sink: Sink) -> Self {
        Progress {
            start: Instant::now(),
            sink,
            events: None,
        }
    }

    /// Also sends events to `events`.
    pub fn with_events(mut self, events: EventSink) -> Self {
        self.events = Some(events);
        self
    }

    /// Reports an event (to the events sink, if any).
    pub fn event(&self, event: &Event) {
        if let Some(events) = &self.events {
            events(event);
        }
    }

    /// Passes on a line already formatted elsewhere (the agent's).
    pub fn relay(&self, line: &str) {
        (self.sink)(line);
    }

    /// Reports `message [N.Ns]`.
    pub fn say(&self, message: &str) {
        (self.sink)(&format!(
            "{message} [{:.1}s]",
            self.start.elapsed().as_secs_f64()
        ));
    }
}
