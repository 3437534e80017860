//! A machine's state as docker-machine asks for it (`GetState`), the few of docker-machine's
//! states an EC2 instance can be in, from the instance's EC2 state; the binary turns it into
//! the plugin contract's state.

use aws_sdk_ec2::types::{Instance, InstanceStateName};

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

impl MachineState {
    /// The state of an EC2 instance (amazonec2's mapping). A spot instance AWS stopped or
    /// terminated (interrupted) is therefore never `Running`.
    pub fn of(instance: &Instance) -> MachineState {
        match instance.state().and_then(|s| s.name()) {
            Some(InstanceStateName::Pending) => MachineState::Starting,
            Some(InstanceStateName::Running) => MachineState::Running,
            Some(InstanceStateName::Stopping) | Some(InstanceStateName::ShuttingDown) => {
                MachineState::Stopping
            }
            Some(InstanceStateName::Stopped) => MachineState::Stopped,
            _ => MachineState::Error,
        }
    }
}
