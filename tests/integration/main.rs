//! ec2spot's integration tests: one test binary (one link of the AWS SDK instead of one per
//! file), one module per concern. They drive the real plugin binary the way docker-machine
//! does — through `dmclient dm` (tests/go/dmclient) or the Rust plugin client — against a
//! private moto behind the fault proxy; the shared harness is `ec2spot-testkit`.
//!
//! Run one module: `MOTO_SERVER=$PWD/.venv/bin/moto_server cargo test --test integration spot::`.

/// The plugin binary under test (Cargo builds it before this test binary).
const PLUGIN: &str = env!("CARGO_BIN_EXE_docker-machine-driver-ec2spot");

mod agent;
mod agent_bastion;
mod architecture;
mod bad_options;
mod crash_matrix;
mod ec2_lifecycle;
mod examples;
mod fast_create;
mod fault_matrix;
mod fuzz_corpus;
mod gc;
mod gitlab_fork;
mod go_conformance;
mod gob_robustness;
mod iam;
mod images;
mod pie;
mod plugin_protocol;
mod process_start;
mod readme;
mod release;
mod secrets;
mod security_groups;
mod spot;
mod wire_fixtures;

/// The status of the agent serving `store` (one must be running).
async fn agent_status(store: &std::path::Path) -> ec2spot_agent::proto::StatusReply {
    ec2spot_agent::client::AgentClient::connect_running(store)
        .await
        .expect("an agent answers")
        .status()
        .await
        .expect("status")
}

/// The harness finds the binary this test binary was built with (bastions start it).
#[test]
fn the_harness_drives_the_binary_cargo_built() {
    assert_eq!(ec2spot_testkit::plugin_binary(), PLUGIN);
}
