//! The local ec2spot agent: one long-lived process per docker-machine store that hosts the EC2
//! operations of every plugin process (gRPC over a Unix socket in the store, mode 0600), so
//! they share EC2 clients, token buckets and coalesced state reads.
//!
//! # Layout
//! * [`server`] — the agent process: socket, lock, idle exit, the `Agent` gRPC service.
//! * [`client`] — the plugin side: connect (starting the agent on first need) and run operations.
//! * [`metrics`] — Prometheus metrics (`agent --metrics-listen`) and machine prices.
//! * [`identity`] — what build a process is (the handshake: only the same build serves).
//! * [`paths`] — where the socket, lock and log live.
//! * [`service`] — the store's service agent (systemd) owns the socket: its marker.

#![warn(missing_docs)]

pub mod client;
pub mod identity;
pub mod metrics;
pub mod paths;
mod proto_debug;
pub mod server;
pub mod service;

/// Generated gRPC code (proto/ec2spot/agent/v1/agent.proto).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("ec2spot.agent.v1");
}

use std::time::Duration;

use ec2spot_ec2::aws::ClientSettings;
use ec2spot_ec2::aws::proxy::Proxy;
use ec2spot_ec2::create::tls_bootstrap::TlsMaterial;
use ec2spot_ec2::ops::{Input, Op};
use ec2spot_ec2::state::machine_state::MachineState;

/// The wire form of client settings.
pub fn settings_to_proto(s: &ClientSettings) -> proto::ClientSettings {
    proto::ClientSettings {
        region: s.region.clone(),
        endpoint_url: s.endpoint_url.clone(),
        use_fips: s.use_fips,
        use_dual_stack: s.use_dual_stack,
        retries: s.retries,
        attempt_timeout_ms: s.attempt_timeout.as_millis() as u64,
        proxy_url: s.proxy.url.clone(),
        no_proxy: s.proxy.no_proxy.clone(),
        ca_bundle: s.ca_bundle.clone(),
    }
}

/// The client settings of a wire value.
pub fn settings_from_proto(p: proto::ClientSettings) -> ClientSettings {
    ClientSettings {
        region: p.region,
        endpoint_url: p.endpoint_url,
        use_fips: p.use_fips,
        use_dual_stack: p.use_dual_stack,
        retries: p.retries,
        attempt_timeout: Duration::from_millis(p.attempt_timeout_ms.max(1)),
        proxy: Proxy {
            url: p.proxy_url,
            no_proxy: p.no_proxy,
        },
        ca_bundle: p.ca_bundle,
    }
}

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
        Op::UpdateLabels => P::UpdateLabels,
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
        P::UpdateLabels => Op::UpdateLabels,
    })
}

/// Puts an operation's input into its request.
pub fn input_to_proto(input: &Input, request: &mut proto::RunRequest) {
    request.labels = input
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    request.tls_bootstrap = input.tls.as_ref().map(|b| proto::TlsBootstrap {
        ca_cert: b.ca_cert.clone(),
        server_cert: b.server_cert.clone(),
        server_key: b.server_key.clone(),
        daemon_dropin: b.daemon_dropin.clone(),
    });
}

/// An operation's input from its request.
pub fn input_from_proto(request: &proto::RunRequest) -> Input {
    Input {
        labels: request
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tls: request.tls_bootstrap.as_ref().map(|b| TlsMaterial {
            ca_cert: b.ca_cert.clone(),
            server_cert: b.server_cert.clone(),
            server_key: b.server_key.clone(),
            daemon_dropin: b.daemon_dropin.clone(),
        }),
    }
}

/// The wire form of a machine state: docker-machine's number for it (`RunResult.state`).
pub fn state_to_proto(s: MachineState) -> i32 {
    match s {
        MachineState::None => 0,
        MachineState::Running => 1,
        MachineState::Stopped => 4,
        MachineState::Stopping => 5,
        MachineState::Starting => 6,
        MachineState::Error => 7,
    }
}

/// The machine state of a wire value (an unknown number is [`MachineState::None`]).
pub fn state_from_proto(n: i32) -> MachineState {
    match n {
        1 => MachineState::Running,
        4 => MachineState::Stopped,
        5 => MachineState::Stopping,
        6 => MachineState::Starting,
        7 => MachineState::Error,
        _ => MachineState::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_travel_as_docker_machines_numbers() {
        for (s, n) in [
            (MachineState::None, 0),
            (MachineState::Running, 1),
            (MachineState::Stopped, 4),
            (MachineState::Stopping, 5),
            (MachineState::Starting, 6),
            (MachineState::Error, 7),
        ] {
            assert_eq!(state_to_proto(s), n, "{s:?}");
            assert_eq!(state_from_proto(n), s);
        }
        assert_eq!(state_from_proto(42), MachineState::None);
    }
}
