//! Crashes at every step of a create: the plugin SIGKILLed after each EC2 call, docker-machine
//! gone (the plugin only loses its heartbeats) — each with the agent on (the agent goes on with
//! the create; the `rm` waits for it) and off — and the agent SIGKILLed after each call; then a
//! fresh `rm` from the config docker-machine saved before Create leaves nothing, and nothing
//! was launched twice. With the agent on, the agent must have served every operation and made
//! every EC2 call (`crate::agent_served`) — after an agent's death, a new agent: a plugin that
//! fell back to working on its own fails the cell.

use crate::{agent_running, agent_served, agent_status, plugin_file};
use ec2spot_agent::proto::StatusReply;
use std::time::{Duration, Instant};

use ec2spot_plugin::FlagValue;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};
use ec2spot_testkit::process::{alive, kill_hard};

/// The create the cells crash: spot in one pool (`RunInstances`), or spot over two instance
/// types (a launch template and an EC2 Fleet request).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    Spot,
    Fleet,
}

impl Shape {
    fn opts(self) -> Vec<(&'static str, FlagValue)> {
        let mut o = vec![("amazonec2-request-spot-instance", FlagValue::Bool(true))];
        if self == Shape::Fleet {
            o.push((
                "amazonec2-instance-type",
                FlagValue::String("t3.micro,t3.small".into()),
            ));
            // moto gives an EC2 Fleet's instances no public address.
            o.push(("amazonec2-use-private-address", FlagValue::Bool(true)));
        }
        o
    }
}

/// [`prepare`], and with the agent on whether the store's agent ran its pre-create check and
/// made its EC2 calls; the agent's status after it (`None` with the agent off).
async fn prepare_served(
    b: &Bastion,
    agent: bool,
    env: Vec<(String, String)>,
    name: &str,
    shape: Shape,
) -> (PluginProcess, Vec<u8>, Option<StatusReply>) {
    let file = plugin_file();
    let before = agent_running(b.store()).await;
    let seen = b.proxy.requests().len();
    let (p, saved) = prepare(b, env, name, shape).await;
    if !agent {
        return (p, saved, None);
    }
    let requests = b.proxy.requests();
    let status = agent_served(
        b.store(),
        file,
        before.as_ref(),
        1,
        requests.get(seen..).unwrap_or_default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}'s pre-create check: {e}"));
    (p, saved, status)
}

/// docker-machine's create up to its save before `Create`.
async fn prepare(
    b: &Bastion,
    env: Vec<(String, String)>,
    name: &str,
    shape: Shape,
) -> (PluginProcess, Vec<u8>) {
    let p = b.plugin_env(env).await;
    p.set_config_raw(&create_skeleton(name, b.store().to_str().unwrap()))
        .await
        .unwrap();
    let flags = p.create_flags().await.unwrap();
    let opts = shape.opts();
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
        // (A launch the strict test EC2 refused as "not yet" launched nothing.)
        .filter(|r| {
            (r.action == "RunInstances" || r.action == "CreateFleet") && !r.faulted && !r.refused
        })
        .count()
}

/// How many EC2 calls an undisturbed create makes.
async fn calls_of_a_create(b: &Bastion, shape: Shape) -> usize {
    let (p, saved) = prepare(b, b.env_direct(), "count", shape).await;
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

async fn plugin_killed_after_each_ec2_call_of_create(agent: bool, shape: Shape) {
    let b = Bastion::start().await;
    let calls = calls_of_a_create(&b, shape).await;
    let mut rows = Vec::new();
    for k in 1..=calls {
        let (p, saved, served) =
            prepare_served(&b, agent, env(&b, agent, 2), &format!("c{k}"), shape).await;
        let file = plugin_file();
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
        if agent {
            // The create (finished by the agent after the plugin died) and the rm.
            agent_served(b.store(), file, served.as_ref(), 2, &b.proxy.requests())
                .await
                .unwrap_or_else(|e| panic!("killed at call {k} ({action}), create and rm: {e}"));
        }
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
        "plugin SIGKILLed during each of the {calls} calls of a {shape:?} create, {}:\n{}",
        mode(agent),
        rows.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_after_each_ec2_call_of_create_agent_on() {
    plugin_killed_after_each_ec2_call_of_create(true, Shape::Spot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_after_each_ec2_call_of_create_agent_off() {
    plugin_killed_after_each_ec2_call_of_create(false, Shape::Spot).await;
}

/// The EC2 Fleet create (launch template, `CreateFleet`) killed at each call without the agent:
/// `rm` leaves nothing, the template included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_killed_after_each_ec2_call_of_a_fleet_create_agent_off() {
    plugin_killed_after_each_ec2_call_of_create(false, Shape::Fleet).await;
}

async fn docker_machine_killed_mid_create(agent: bool) {
    let b = Bastion::start().await;
    for k in [1, 4, 6] {
        let (p, saved, served) =
            prepare_served(&b, agent, env(&b, agent, 15), &format!("h{k}"), Shape::Spot).await;
        let file = plugin_file();
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
        if agent {
            // The create (finished by the agent after the plugin left) and the rm.
            agent_served(b.store(), file, served.as_ref(), 2, &b.proxy.requests())
                .await
                .unwrap_or_else(|e| panic!("docker-machine lost at call {k}, create and rm: {e}"));
        }
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

/// Whether an agent other than `old` (the status of the agent SIGKILLed mid-create, which had
/// been at `before` when the create began) ran the operation that completed the create and
/// made every EC2 call of it the old agent had not counted. Returns the new agent's status
/// (`None`: not checked, see [`agent_served`]).
async fn completed_by_a_new_agent(
    b: &Bastion,
    file: Option<(u64, u64)>,
    before: Option<&StatusReply>,
    old: &StatusReply,
) -> Result<Option<StatusReply>, String> {
    let before = before.filter(|s| s.pid == old.pid);
    let mut old_made: std::collections::HashMap<&str, u64> = old
        .ec2_calls
        .iter()
        .map(|(action, n)| {
            let was = before.and_then(|s| s.ec2_calls.get(action)).copied();
            (action.as_str(), n.saturating_sub(was.unwrap_or(0)))
        })
        .collect();
    let rest: Vec<_> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| match old_made.get_mut(r.action.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    let new = agent_served(b.store(), file, None, 1, &rest).await?;
    if let Some(new) = &new
        && new.pid == old.pid
    {
        return Err(format!(
            "the agent answering is the killed one (pid {})",
            old.pid
        ));
    }
    Ok(new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_after_each_ec2_call_of_create() {
    agent_killed_after_each_ec2_call(Shape::Spot).await;
}

/// The EC2 Fleet create resumed by a new agent after the old one died at each call: the
/// resumed create finds the template and the fleet's instance of the dead attempt (the same
/// idempotency token), never launches twice, and `rm` leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_after_each_ec2_call_of_a_fleet_create() {
    agent_killed_after_each_ec2_call(Shape::Fleet).await;
}

async fn agent_killed_after_each_ec2_call(shape: Shape) {
    let b = Bastion::start().await;
    let calls = calls_of_a_create(&b, shape).await;
    let mut rows = Vec::new();
    for k in 1..=calls {
        let (p, saved, served) = prepare_served(&b, true, b.env(), &format!("a{k}"), shape).await;
        let file = plugin_file();
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
        let old = agent_status(b.store()).await;
        kill_hard(old.pid);
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
        // A new agent served the rest of the create: the calls the old one had not made.
        let new = completed_by_a_new_agent(&b, file, served.as_ref(), &old)
            .await
            .unwrap_or_else(|e| panic!("agent killed at call {k} ({action}): {e}"));
        let (file, seen) = (plugin_file(), b.proxy.requests().len());
        rm(&b, b.env(), &cfg).await.unwrap();
        agent_served(
            b.store(),
            file,
            new.as_ref(),
            1,
            b.proxy.requests().get(seen..).unwrap_or_default(),
        )
        .await
        .unwrap_or_else(|e| panic!("agent killed at call {k} ({action}), rm: {e}"));
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
        "agent SIGKILLed during each of the {calls} calls of a {shape:?} create:\n{}",
        rows.join("\n")
    );
}

/// An earlier attempt of a create (in an agent that died, its record lost with the store's
/// disk) launched with the same idempotency token and other parameters: EC2 answers the launch
/// `IdempotentParameterMismatch` ("Ensuring idempotency in Amazon EC2 API requests"). The create
/// adopts that attempt's instance, found by the machine's tag, and launches nothing; `rm`
/// leaves nothing. One pool and EC2 Fleet, agent on and off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_parameter_mismatch_adopts_the_earlier_launch() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let mut rows = Vec::new();
    for (n, (shape, agent)) in [
        (Shape::Spot, true),
        (Shape::Spot, false),
        (Shape::Fleet, true),
        (Shape::Fleet, false),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("ipm{n}");
        let (p, saved) = prepare(&b, env(&b, agent, 10), &name, shape).await;
        // (The driver's raw config, as docker-machine saved it before Create.)
        let driver: serde_json::Value = serde_json::from_slice(&saved).unwrap();
        let machine_id = driver["MachineId"].as_str().unwrap().to_string();
        // What the earlier attempt launched, tagged as this machine's.
        let tags = [
            ("Name", name.as_str()),
            (ec2spot_ec2::tags::MACHINE_NAME, name.as_str()),
            (ec2spot_ec2::tags::MACHINE_ID, machine_id.as_str()),
        ];
        let earlier = ec2
            .run_instances()
            .image_id("ami-0e86e20dae9224db8")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                            .collect(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let earlier = earlier.instances()[0].instance_id().unwrap().to_string();
        let launch = match shape {
            Shape::Spot => "RunInstances",
            Shape::Fleet => "CreateFleet",
        };
        b.proxy.reset_log();
        b.proxy.fail(launch, 400, "IdempotentParameterMismatch", 1);
        let r = p
            .call("Create")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        b.proxy.clear();
        let cfg = p.config_raw().await.unwrap();
        p.close().await;
        let cell = format!("{shape:?}, {}", mode(agent));
        assert!(r.is_ok(), "{cell}: {r:?}");
        let adopted: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(adopted["InstanceId"], earlier.as_str(), "{cell}: adopted");
        assert_eq!(instances_launched(&b), 0, "{cell}: launched nothing more");
        rm(&b, env(&b, agent, 10), &cfg).await.unwrap();
        let left = b.leftovers().await;
        assert!(left.is_empty(), "{cell}: left {left:?}");
        rows.push(format!("{cell}: adopted {earlier}, nothing left after rm"));
    }
    println!(
        "IdempotentParameterMismatch at the launch:\n{}",
        rows.join("\n")
    );
}
