//! docker-machine's machine state enum (`libmachine/state.State`), sent as a gob int.

use std::fmt;

/// The state of a machine as docker-machine understands it.
///
/// The discriminants are the values on the wire (`GetState` replies with a gob int).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum State {
    /// No state known (`""` in docker-machine's output).
    None = 0,
    /// The machine runs and can take work.
    Running = 1,
    /// Paused (unused by EC2).
    Paused = 2,
    /// Saved (unused by EC2).
    Saved = 3,
    /// Stopped.
    Stopped = 4,
    /// On its way to `Stopped` (or terminated).
    Stopping = 5,
    /// On its way to `Running`.
    Starting = 6,
    /// Broken or gone.
    Error = 7,
    /// A timeout happened while asking for the state.
    Timeout = 8,
}

impl State {
    /// The integer docker-machine expects on the wire.
    pub fn wire(self) -> i64 {
        self as i64
    }

    /// The state for its wire integer (unknown numbers are [`State::None`]).
    pub fn from_wire(n: i64) -> State {
        match n {
            1 => State::Running,
            2 => State::Paused,
            3 => State::Saved,
            4 => State::Stopped,
            5 => State::Stopping,
            6 => State::Starting,
            7 => State::Error,
            8 => State::Timeout,
            _ => State::None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::None => "",
            State::Running => "Running",
            State::Paused => "Paused",
            State::Saved => "Saved",
            State::Stopped => "Stopped",
            State::Stopping => "Stopping",
            State::Starting => "Starting",
            State::Error => "Error",
            State::Timeout => "Timeout",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn wire_values_match_libmachine() {
        let all = [
            State::None,
            State::Running,
            State::Paused,
            State::Saved,
            State::Stopped,
            State::Stopping,
            State::Starting,
            State::Error,
            State::Timeout,
        ];
        for (i, s) in all.iter().enumerate() {
            assert_eq!(s.wire(), i as i64);
        }
        assert_eq!(State::Running.to_string(), "Running");
        assert_eq!(State::None.to_string(), "");
    }
}
