//! Progress lines for the user: docker-machine shows the plugin's stdout as `(machine) line`.

use std::time::Instant;

/// Prints one line per step with the seconds since the operation started.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
}

impl Progress {
    /// Starts the clock.
    pub fn start() -> Self {
        Progress {
            start: Instant::now(),
        }
    }

    /// Prints `message [N.Ns]` on stdout.
    pub fn say(&self, message: &str) {
        crate::plugin::output::say(&format!(
            "{message} [{:.1}s]",
            self.start.elapsed().as_secs_f64()
        ));
    }
}
