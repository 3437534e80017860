//! The local ec2spot agent: one long-lived process per docker-machine store that hosts the EC2
//! operations of every plugin process (gRPC over a Unix socket in the store, mode 0600), so
//! they share EC2 clients, token buckets and coalesced state reads.
//!
//! * [`server`] — the agent process: socket, lock, idle exit, the `Agent` gRPC service.
//! * [`client`] — the plugin side: connect (starting the agent on first need) and run operations.
//! * [`paths`] — where the socket, lock and log live.

pub mod client;
pub mod paths;
mod proto_debug;
pub mod server;

/// Generated gRPC code (proto/ec2spot/agent/v1/agent.proto).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("ec2spot.agent.v1");
}

use crate::ec2::ops::Op;

/// The wire form of an operation.
pub fn op_to_proto(op: Op) -> proto::Operation {
    use proto::Operation as P;
    match op {
        Op::PreCreateCheck => P::PreCreateCheck,
        Op::Create => P::Create,
        Op::ResumeCreate => P::ResumeCreate,
        Op::Remove => P::Remove,
        Op::State => P::State,
        Op::Url => P::Url,
        Op::Ip => P::Ip,
        Op::Start => P::Start,
        Op::Stop => P::Stop,
        Op::Restart => P::Restart,
        Op::Kill => P::Kill,
    }
}

/// The operation of a wire value.
pub fn op_from_proto(op: proto::Operation) -> Option<Op> {
    use proto::Operation as P;
    Some(match op {
        P::Unspecified => return None,
        P::PreCreateCheck => Op::PreCreateCheck,
        P::Create => Op::Create,
        P::ResumeCreate => Op::ResumeCreate,
        P::Remove => Op::Remove,
        P::State => Op::State,
        P::Url => Op::Url,
        P::Ip => Op::Ip,
        P::Start => Op::Start,
        P::Stop => Op::Stop,
        P::Restart => Op::Restart,
        P::Kill => Op::Kill,
    })
}
