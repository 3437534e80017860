//! Progress lines for the user, sent to a sink the caller gives: a plugin prints them on its
//! stdout (docker-machine shows them as `(machine) line`); in the agent they travel back to
//! the plugin that asked, which prints them.

use std::sync::Arc;
use std::time::Instant;

/// Where progress lines go.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Reports one line per step with the seconds since the operation started.
#[derive(Clone)]
pub struct Progress {
    start: Instant,
    sink: Sink,
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
