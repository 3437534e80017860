//! What a machine's state is, and how it is read from EC2: directly (one plugin process, one
//! call per question) or through the agent's shared cache (coalesced, tolerant of throttling).
//!
//! * [`machine_state`] — [`MachineState`](machine_state::MachineState): docker-machine's view
//!   of an EC2 instance state.
//! * [`observed`] — [`Observed`](observed::Observed): what one look at an instance saw.
//! * [`context`] — [`Context`](context::Context): the EC2 client and state reader an operation
//!   runs with (direct or cached).
//! * [`cache`] — [`StateCache`](cache::StateCache): the agent's coalesced, cached reads.
//! * [`memory`] — [`Memory`](memory::Memory): what a process remembers between creates (the
//!   pre-create answers, the security groups found complete).

pub mod cache;
pub mod context;
pub mod machine_state;
pub mod memory;
pub mod observed;
