//! A machine's state as docker-machine asks for it (`GetState`), the few of docker-machine's
//! states an EC2 instance can be in; the binary turns it into the plugin contract's state.

/// The state of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineState {
    /// No state known, or none asked for (an operation that answers no state).
    None,
    /// The machine runs and can take work.
    Running,
    /// Stopped.
    Stopped,
    /// On its way to `Stopped` (or terminated), or about to be interrupted.
    Stopping,
    /// On its way to `Running`.
    Starting,
    /// Broken or gone.
    Error,
}
