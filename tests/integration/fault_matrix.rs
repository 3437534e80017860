//! Every EC2 action of create, start, stop and rm × every fault class, injected by the proxy
//! into that call: the command succeeds or says which step failed with AWS's code, and after
//! `rm` (retried as gitlab-runner does) nothing of ours is left in moto. Each cell runs with the
//! agent on (the default: the work, the retries and the state reads happen in the agent) and
//! with the agent off (the plugin works on its own). With the agent on, every command of a cell
//! must have been served by the cell's agent (`crate::agent_served`): a plugin that fell back
//! to working on its own fails the cell.
//!
//! `EC2SPOT_FAULT_MATRIX=<text>` runs only the cells whose "command action fault" contains
//! `<text>` (e.g. `stop StopInstances` or `throttling`).

use std::path::Path;
use std::process::Output;

use crate::{agent_running, agent_served, plugin_file};
use ec2spot_testkit::bastion::Bastion;

/// The fault classes: (name, HTTP status, code, times) — `hold` = no answer at all.
const FAULTS: &[(&str, u16, &str, usize)] = &[
    ("throttling", 503, "RequestLimitExceeded", 20),
    ("capacity", 400, "InsufficientInstanceCapacity", 1),
    ("auth", 403, "UnauthorizedOperation", 1),
    ("server", 500, "InternalError", 20),
    ("timeout", 0, "Timeout", 20),
    ("not-yet", 400, "InvalidInstanceID.NotFound", 2),
];

/// The EC2 actions each command makes (single-pool spot create; on-demand for start/stop).
const CREATE: &[&str] = &[
    "DescribeInstanceTypes",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeInstanceTypeOfferings",
    "DescribeImages",
    "DescribeKeyPairs",
    "ImportKeyPair",
    "DescribeSecurityGroups",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "RunInstances",
    "DescribeInstances",
];
// (No DescribeSpotInstanceRequests: moto's spot instances name no spot request, so neither the
// create nor the state reads ask about interruptions here; `spot::spot_machines_marked_…`
// covers that read.)
const STOP: &[&str] = &["StopInstances", "DescribeInstances"];
const START: &[&str] = &["StartInstances", "DescribeInstances"];
/// (`rm` terminates the saved instance without reading it first, and deletes the groups its
/// create recorded making without looking them up.)
const RM: &[&str] = &[
    "TerminateInstances",
    "DeleteKeyPair",
    "DescribeNetworkInterfaces",
    "DeleteSecurityGroup",
];

/// Where the EC2 work runs.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Agent,
    Direct,
}

/// The environment of the command under test: a 1 s attempt timeout, so `hold` faults end soon.
fn env(b: &Bastion, mode: Mode) -> Vec<(String, String)> {
    let mut e = setup_env(b, mode);
    e.push(("EC2SPOT_AWS_TIMEOUT".into(), "1".into()));
    e
}

/// The environment of a cell's setup (the create before a `stop`, the `stop` before a
/// `start`): no fault is injected there, so the default timeout — a loaded machine's moto may
/// be slow, and a setup that fails says nothing about the cell.
fn setup_env(b: &Bastion, mode: Mode) -> Vec<(String, String)> {
    match mode {
        Mode::Agent => b.env(),
        Mode::Direct => b.env_direct(),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn inject(b: &Bastion, action: &str, fault: &(&str, u16, &str, usize)) {
    let (_, status, code, times) = *fault;
    if status == 0 {
        b.proxy.hold_after(action, 0, times);
    } else {
        b.proxy.fail(action, status, code, times);
    }
}

/// The command's result is acceptable: success, or an error naming the action and the code —
/// and the fault was injected at all (a command that never makes `action` tests nothing).
fn judge(b: &Bastion, o: &Output, action: &str, code: &str) -> Result<(), String> {
    if !b
        .proxy
        .requests()
        .iter()
        .any(|r| r.action == action && r.faulted)
    {
        return Err(format!(
            "the command made no {action}: the fault was never injected"
        ));
    }
    if o.status.success() {
        return Ok(());
    }
    let t = text(o);
    if t.contains(code) && (t.contains(action) || t.contains("no spot capacity")) {
        Ok(())
    } else {
        Err(format!("error does not name {action} and {code}: {t}"))
    }
}

/// `docker-machine <args>` on the cell's own store: with the agent on, each cell has its own
/// agent, which remembers nothing of the cells before, so a create makes every call.
async fn dm(b: &Bastion, store: &Path, args: &[&str], mut env: Vec<(String, String)>) -> Output {
    env.retain(|(k, _)| k != "MACHINE_STORAGE_PATH");
    env.push((
        "MACHINE_STORAGE_PATH".into(),
        store.to_string_lossy().into_owned(),
    ));
    let plugins = Path::new(ec2spot_testkit::plugin_binary())
        .parent()
        .unwrap();
    b.dm_at(store, plugins, None, args, env).await
}

/// [`dm`] `args` on machine `name`, and with the agent on whether the cell's agent served
/// the command: it ran an operation (each command here runs at least one in the plugin; `rm`
/// of a machine the store does not hold runs none) and made every EC2 call the proxy saw
/// meanwhile.
async fn dm_served(
    b: &Bastion,
    store: &Path,
    mode: Mode,
    name: &str,
    args: &[&str],
    env: Vec<(String, String)>,
) -> (Output, Result<(), String>) {
    if mode == Mode::Direct {
        return (dm(b, store, args, env).await, Ok(()));
    }
    let ran = args[0] != "rm" || store.join("machines").join(name).exists();
    let file = plugin_file();
    let before = agent_running(store).await;
    let seen = b.proxy.requests().len();
    let o = dm(b, store, args, env).await;
    let served = if ran {
        let requests = b.proxy.requests();
        agent_served(
            store,
            file,
            before.as_ref(),
            1,
            requests.get(seen..).unwrap_or_default(),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))
    } else {
        Ok(())
    };
    (o, served)
}

/// `rm -y`, retried like gitlab-runner (here at once) until it succeeds.
async fn rm(b: &Bastion, store: &Path, mode: Mode, name: &str) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..3 {
        let (o, served) = dm_served(
            b,
            store,
            mode,
            name,
            &["rm", "-y", name],
            setup_env(b, mode),
        )
        .await;
        served?;
        if o.status.success() || !store.join("machines").join(name).exists() {
            return Ok(());
        }
        last = text(&o);
    }
    Err(format!("rm kept failing: {last}"))
}

async fn cell(
    b: &Bastion,
    mode: Mode,
    command: &str,
    action: &str,
    fault: &(&str, u16, &str, usize),
    n: usize,
) -> Result<(), String> {
    let name = format!("fm{n}");
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let spot = command == "create";
    let mut create: Vec<&str> = vec!["create", "-d", "ec2spot", "--amazonec2-retries", "2"];
    if spot {
        create.push("--amazonec2-request-spot-instance");
    }
    create.push(&name);
    let result = if command == "create" {
        b.proxy.reset_log();
        inject(b, action, fault);
        let (o, served) = dm_served(b, store, mode, &name, &create, env(b, mode)).await;
        b.proxy.clear();
        judge(b, &o, action, fault.2).and(served)
    } else {
        let (o, served) = dm_served(b, store, mode, &name, &create, setup_env(b, mode)).await;
        if !o.status.success() {
            return Err(format!("setup create failed: {}", text(&o)));
        }
        served?;
        if command == "start" {
            let (o, served) =
                dm_served(b, store, mode, &name, &["stop", &name], setup_env(b, mode)).await;
            if !o.status.success() {
                return Err(format!("setup stop failed: {}", text(&o)));
            }
            served?;
        }
        b.proxy.reset_log();
        inject(b, action, fault);
        let args: Vec<&str> = [command, "-y", &name]
            .iter()
            .filter(|a| command == "rm" || **a != "-y")
            .copied()
            .collect();
        let (o, served) = dm_served(b, store, mode, &name, &args, env(b, mode)).await;
        b.proxy.clear();
        judge(b, &o, action, fault.2).and(served)
    };
    let cleanup = rm(b, store, mode, &name).await;
    let left = b.leftovers().await;
    result?;
    cleanup?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("left behind: {left:?}"))
    }
}

async fn matrix(mode: Mode, commands: &[(&str, &[&str])]) -> (usize, Vec<String>) {
    let only = std::env::var("EC2SPOT_FAULT_MATRIX").unwrap_or_default();
    let b = Bastion::start().await;
    let mut tried = 0;
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (command, actions) in commands {
        for action in *actions {
            let mut row = format!("{command:>6} {action:<32}");
            for fault in FAULTS {
                if !format!("{command} {action} {}", fault.0).contains(&only) {
                    row.push_str(&format!(" {:>10}", "-"));
                    continue;
                }
                tried += 1;
                let t = std::time::Instant::now();
                let outcome = cell(&b, mode, command, action, fault, tried).await;
                eprintln!(
                    "{command} {action} {}: {:.1}s",
                    fault.0,
                    t.elapsed().as_secs_f64()
                );
                match outcome {
                    Ok(()) => row.push_str(&format!(" {:>10}", "ok")),
                    Err(e) => {
                        row.push_str(&format!(" {:>10}", "FAIL"));
                        failed.push(format!("{command} {action} {}: {e}", fault.0));
                        b.proxy.clear();
                        b.purge().await;
                    }
                }
            }
            rows.push(row);
        }
    }
    let header = format!(
        "{:>6} {:<32}{}",
        "",
        "",
        FAULTS
            .iter()
            .map(|f| format!(" {:>10}", f.0))
            .collect::<String>()
    );
    println!("{header}\n{}", rows.join("\n"));
    (tried, failed)
}

fn report(mode: Mode, what: &str, tried: usize, failed: &[String]) {
    let mode = match mode {
        Mode::Agent => "agent on",
        Mode::Direct => "agent off",
    };
    println!(
        "{what}, {mode}: {} of {tried} cells passed",
        tried - failed.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_create_agent_on() {
    let (tried, failed) = matrix(Mode::Agent, &[("create", CREATE)]).await;
    report(Mode::Agent, "create", tried, &failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_create_agent_off() {
    let (tried, failed) = matrix(Mode::Direct, &[("create", CREATE)]).await;
    report(Mode::Direct, "create", tried, &failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_stop_start_and_rm_agent_on() {
    let (tried, failed) =
        matrix(Mode::Agent, &[("stop", STOP), ("start", START), ("rm", RM)]).await;
    report(Mode::Agent, "stop/start/rm", tried, &failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_stop_start_and_rm_agent_off() {
    let (tried, failed) = matrix(
        Mode::Direct,
        &[("stop", STOP), ("start", START), ("rm", RM)],
    )
    .await;
    report(Mode::Direct, "stop/start/rm", tried, &failed);
}
