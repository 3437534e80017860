//! Crashes at every step of a create: the plugin SIGKILLed after each EC2 call, docker-machine
//! gone (the plugin only loses its heartbeats) — each with the agent on (the agent goes on with
//! the create; the `rm` waits for it) and off — and the agent SIGKILLed after each call; then a
//! fresh `rm` from the config docker-machine saved before Create leaves nothing, and nothing
//! was launched twice.

use crate::agent_status;
use std::time::{Duration, Instant};

use ec2spot_plugin::FlagValue;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};
use ec2spot_testkit::process::{alive, kill_hard};

const OPTS: &[(&str, bool)] = &[("amazonec2-request-spot-instance", true)];

/// docker-machine's create up to its save before `Create`.
async fn prepare(b: &Bastion, env: Vec<(String, String)>, name: &str) -> (PluginProcess, Vec<u8>) {
    let p = b.plugin_env(env).await;
    p.set_config_raw(&create_skeleton(name, b.store().to_str().unwrap()))
        .await
        .unwrap();
    let flags = p.create_flags().await.unwrap();
    let opts: Vec<(&str, FlagValue)> = OPTS
        .iter()
        .map(|(k, v)| (*k, FlagValue::Bool(*v)))
        .collect();
    p.set_config_from_flags(&docker_machine_values(&flags, &opts))
        .await
        .unwrap();
    p.call("PreCreateCheck").await.unwrap();
    let saved = p.config_raw().await.unwrap();
    (p, saved)
}

async fn wait_for_requests(b: &Bastion, n: usize) {
    let t = Instant::now();
    while b.proxy.requests().len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {:?}",
            b.proxy.actions()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rm(b: &Bastion, env: Vec<(String, String)>, saved: &[u8]) -> Result<(), String> {
    let p = b.plugin_env(env).await;
    p.set_config_raw(saved).await.map_err(|e| e.to_string())?;
    let r = p
        .call("Remove")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    p.close().await;
    r
}

fn instances_launched(b: &Bastion) -> usize {
    b.proxy
        .requests()
        .iter()
        .filter(|r| r.action == "RunInstances" && !r.faulted)
        .count()
}

/// How many EC2 calls an undisturbed create makes.
async fn calls_of_a_create(b: &Bastion) -> usize {
    let (p, saved) = prepare(b, b.env_direct(), "count").await;
    b.proxy.reset_log();
    p.call("Create").await.unwrap();
    let n = b.proxy.requests().len();
    p.close().await;
    rm(b, b.env_direct(), &saved).await.unwrap();
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    n
}

/// The plugin's environment with the agent on or off; a call held unanswered is given up after
/// `timeout` seconds (the agent goes on with a create whose plugin died; the `rm` waits for it).
fn env(b: &Bastion, agent: bool, timeout: u32) -> Vec<(String, String)> {
    let mut e = if agent { b.env() } else { b.env_direct() };
    e.push(("EC2SPOT_AWS_TIMEOUT".into(), timeout.to_string()));
    e
}

fn mode(agent: bool) -> &'static str {
    if agent { "agent on" } else { "agent off" }
}

async fn plugin_killed_after_each_ec2_call_of_create(agent: bool) {
    let b = Bastion::start().await;
    let calls = calls_of_a_create(&b).await;
    let mut rows = Vec::new();
    for k in 1..=calls {
        let (p, saved) = prepare(&b, env(&b, agent, 2), &format!("c{k}")).await;
        b.proxy.reset_log();
        b.proxy.hold_nth(k);
        let create = tokio::spawn(async move {
            let _ = p.call("Create").await;
            p
        });
        wait_for_requests(&b, k).await;
        let action = b.proxy.actions()[k - 1].clone();
        create.abort(); // SIGKILL: the process dies with call k in flight
        let _ = create.await;
        b.proxy.clear();
        rm(&b, env(&b, agent, 2), &saved)
            .await
            .unwrap_or_else(|e| panic!("rm after kill at {k} ({action}): {e}"));
        let left = b.leftovers().await;
        assert!(
            left.is_empty(),
            "{}: killed at call {k} ({action}): left {left:?}",
            mode(agent)
        );
        assert!(
            instances_launched(&b) <= 1,
            "{}: killed at call {k} ({action}): launched twice",
            mode(agent)
        );
        rows.push(format!("{k:>2} {action}: nothing left"));
    }
    println!(
        "plugin SIGKILLed during each of the {calls} calls of a create, {}:\n{}",
        mode(agent),
        rows.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_after_each_ec2_call_of_create_agent_on() {
    plugin_killed_after_each_ec2_call_of_create(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_after_each_ec2_call_of_create_agent_off() {
    plugin_killed_after_each_ec2_call_of_create(false).await;
}

async fn docker_machine_killed_mid_create(agent: bool) {
    let b = Bastion::start().await;
    for k in [1, 4, 6] {
        let (p, saved) = prepare(&b, env(&b, agent, 15), &format!("h{k}")).await;
        b.proxy.reset_log();
        b.proxy.hold_nth(k);
        let pid = p.pid().unwrap();
        // docker-machine dies: no more heartbeats, no Close (the connection stays as is).
        p.stop_heartbeats();
        let t = Instant::now();
        let create = tokio::spawn(async move {
            let _ = p.call("Create").await;
        });
        wait_for_requests(&b, k).await;
        while alive(pid) {
            assert!(
                t.elapsed() < Duration::from_secs(12),
                "{}: the plugin outlived its heartbeats",
                mode(agent)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "{}, call {k}: plugin gone {:.1}s after docker-machine",
            mode(agent),
            t.elapsed().as_secs_f64()
        );
        create.abort();
        b.proxy.clear();
        rm(&b, env(&b, agent, 15), &saved).await.unwrap();
        assert_eq!(
            b.leftovers().await,
            Vec::<String>::new(),
            "{}: after losing docker-machine at call {k}",
            mode(agent)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_machine_killed_mid_create_the_plugin_exits_in_11s_agent_on() {
    docker_machine_killed_mid_create(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_machine_killed_mid_create_the_plugin_exits_in_11s_agent_off() {
    docker_machine_killed_mid_create(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_after_each_ec2_call_of_create() {
    let b = Bastion::start().await;
    let calls = calls_of_a_create(&b).await;
    let mut rows = Vec::new();
    for k in 1..=calls {
        let (p, saved) = prepare(&b, b.env(), &format!("a{k}")).await;
        b.proxy.reset_log();
        b.proxy.hold_nth(k);
        let create = tokio::spawn(async move {
            let r = p
                .call("Create")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            (p, r)
        });
        wait_for_requests(&b, k).await;
        let action = b.proxy.actions()[k - 1].clone();
        let pid = agent_status(b.store()).await.pid;
        kill_hard(pid);
        b.proxy.clear();
        // The plugin replaces the agent and resumes its create.
        let (p, r) = create.await.unwrap();
        let cfg = p.config_raw().await.unwrap();
        p.close().await;
        let launched = instances_launched(&b);
        assert!(
            r.is_ok(),
            "create after the agent died at call {k} ({action}): {r:?}"
        );
        assert_eq!(
            launched, 1,
            "killed at {k} ({action}): launched {launched} times"
        );
        rm(&b, b.env(), &cfg).await.unwrap();
        let _ = saved;
        let left = b.leftovers().await;
        assert!(
            left.is_empty(),
            "agent killed at call {k} ({action}): left {left:?}"
        );
        rows.push(format!(
            "{k:>2} {action}: create completed, launched once, nothing left after rm"
        ));
    }
    println!(
        "agent SIGKILLed during each of the {calls} calls of a create:\n{}",
        rows.join("\n")
    );
}
