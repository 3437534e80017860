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
mod agent_service;
mod architecture;
mod bad_options;
mod baked_images;
mod boot;
mod config_files;
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
mod metrics;
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

/// The status of the agent serving `store`, if one is running.
async fn agent_running(store: &std::path::Path) -> Option<ec2spot_agent::proto::StatusReply> {
    let agent = ec2spot_agent::client::AgentClient::connect_running(store)
        .await
        .ok()?;
    agent.status().await.ok()
}

/// The plugin binary's file (device, inode). Another build written over it (a `cargo build`
/// in the same tree) makes a running agent leave and plugins started before work on their own.
fn plugin_file() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(ec2spot_testkit::plugin_binary()).ok()?;
    Some((m.dev(), m.ino()))
}

/// Whether the agent of `store` did the work of what the plugin ran since `before` (the
/// agent's status then; `None`: none was running): an agent answers now, it ran at least
/// `operations` more operations, and it counted at least as many calls of each EC2 action as
/// `requests` — what the EC2 proxy recorded meanwhile — holds. A plugin that works on its own
/// (`EC2SPOT_AGENT=off`, or no agent to be had) runs no operation in the agent and makes calls
/// the proxy records and no agent counts. An agent with another pid than `before`'s replaced
/// it meanwhile and counts from zero. Returns the agent's status, the next check's `before` —
/// `None` when the plugin binary is no longer `file` (its [`plugin_file`] when the work began):
/// the agent left and the plugin may have worked on its own for that reason, so the work
/// proves nothing either way.
async fn agent_served(
    store: &std::path::Path,
    file: Option<(u64, u64)>,
    before: Option<&ec2spot_agent::proto::StatusReply>,
    operations: u64,
    requests: &[ec2spot_testkit::ec2_proxy::Request],
) -> Result<Option<ec2spot_agent::proto::StatusReply>, String> {
    if plugin_file() != file {
        eprintln!(
            "{}: the plugin binary was replaced meanwhile (another build): not checked whether \
             the agent served it",
            store.display()
        );
        return Ok(None);
    }
    let Some(now) = agent_running(store).await else {
        return Err(format!(
            "no agent answers for {} after the plugin's work",
            store.display()
        ));
    };
    let before = before.filter(|b| b.pid == now.pid);
    let ran = now
        .operations
        .saturating_sub(before.map_or(0, |b| b.operations));
    if ran < operations {
        return Err(format!(
            "the agent (pid {}) ran {ran} operations, the plugin at least {operations}: \
             the plugin worked without it",
            now.pid
        ));
    }
    let mut made: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    // Agents import and delete their spare key pairs on their own schedule (another store's
    // agent deletes its spare when it exits, in this window maybe); a plugin working on its
    // own never makes one, so they tell nothing about who served the plugin.
    for r in requests
        .iter()
        .filter(|r| !ec2spot_testkit::bastion::spare_key_request(r))
    {
        *made.entry(r.action.as_str()).or_default() += 1;
    }
    for (action, n) in made {
        let calls =
            |s: &ec2spot_agent::proto::StatusReply| s.ec2_calls.get(action).copied().unwrap_or(0);
        let counted = calls(&now).saturating_sub(before.map_or(0, calls));
        // The agent refreshes a remembered pre-create answer in the background (a minute after
        // it was looked up): a lookup of that refresh counted before the window may reach EC2
        // in it. Commands' own calls get no such allowance.
        let background = matches!(
            action,
            "DescribeInstanceTypes"
                | "DescribeVpcs"
                | "DescribeSubnets"
                | "DescribeInstanceTypeOfferings"
                | "DescribeImages"
                | "DescribeKeyPairs"
        );
        if counted + u64::from(background) < n {
            return Err(format!(
                "EC2 received {n} {action}, the agent (pid {}) made {counted}: \
                 the plugin made the others itself",
                now.pid
            ));
        }
    }
    Ok(Some(now))
}

/// The harness finds the binary this test binary was built with (bastions start it).
#[test]
fn the_harness_drives_the_binary_cargo_built() {
    assert_eq!(ec2spot_testkit::plugin_binary(), PLUGIN);
}
