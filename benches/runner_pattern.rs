//! gitlab-runner's docker-machine command pattern against moto, through real plugin processes,
//! with and without the agent: EC2 API calls per machine-hour and command latency.
//!
//! Run: `cargo bench --bench runner_pattern --profile dev` (or without `--profile dev` for a
//! release build). Arguments after `--`: machine counts (default `10 50 200`).
//!
//! `RUNNER_PATTERN_CALLS=1` also prints what the EC2 calls were, per action (DescribeInstances
//! by how many ids it asked and which filters); `RUNNER_PATTERN_CALLS=timeline` adds every
//! DescribeInstances, RunInstances and TerminateInstances with its time (s) and its id, or how
//! many ids it asked.
//!
//! `RUNNER_PATTERN_COMPRESSION=<factor>` sets the time compression (see `compression`).
//!
//! `RUNNER_PATTERN_STATE_TTL=<simulated seconds>` runs the agent with another state TTL than
//! its default 30 s (compressed like the rest): what staler answers would save.
//!
//! `-- --soak [N]` (default 200): the agent alone for a compressed hour with credentials that
//! rotate every 5 simulated minutes (as an instance role's do, much faster): the agent's
//! resident memory and what it holds (EC2 clients, HTTPS clients, cached states, machine locks)
//! every 10 simulated minutes — it must stay flat.
//!
//! `-- --metrics [N]` (default 200): the agent with its Prometheus metrics off, then on (scraped
//! every 15 simulated seconds, as a Prometheus job would), for the same compressed hour: the
//! agent's CPU time and resident memory in each, and their ratio.
//!
//! Model (RUNNER.md §2.5), per machine: a job every 5 minutes, each job runs `config` twice
//! and `url` (GetURL: the EC2 state and address) and `inspect` (no EC2); one machine in ten is
//! replaced per job slot (MaxBuilds): `stop`, `rm`, `create`. Time is compressed — 30× for up to
//! 50 machines, less beyond so a 2-core machine keeps up (200 machines: 7.5×) — and the agent's
//! state TTL is compressed the same way (30 s → 1 s at 30×) so its cache gets no advantage.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    InstanceMarketOptionsRequest, MarketType, ResourceType, Tag, TagSpecification,
};
use ec2spot_plugin::FlagValue;
use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};
use ec2spot_testkit::{ec2_proxy, moto};
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

const PLUGIN: &str = env!("CARGO_BIN_EXE_docker-machine-driver-ec2spot");
const SIM_MINUTES: f64 = 30.0;
const JOB_EVERY_SIM_SECS: f64 = 300.0;

/// What a run simulates.
#[derive(Clone, Copy)]
struct Plan {
    minutes: f64,
    /// New credentials (another access key id) every this many simulated seconds.
    rotate_every: Option<f64>,
    /// The agent's log at its default level, capped at this many bytes (`--log-max`).
    log_cap: Option<u64>,
    /// Look at the agent every 10 simulated minutes.
    sample: bool,
    /// Serve the agent's metrics on this loopback port and scrape them.
    metrics_port: Option<u16>,
}

/// One look at the agent during a soak.
struct Sample {
    sim_minutes: f64,
    rss_kib: u64,
    /// The agent's CPU time so far (user + system), in clock ticks.
    cpu_ticks: u64,
    clients: u64,
    http_clients: u64,
    cached_states: u64,
    machine_locks: u64,
    /// Bytes in `agent.log` and `agent.log.1`.
    log_bytes: (u64, u64),
}

/// The sizes of the agent's log and its one rotated predecessor in `store`.
fn log_bytes(store: &Path) -> (u64, u64) {
    let log = ec2spot_agent::paths::log(store);
    let old = std::path::PathBuf::from(format!("{}.1", log.display()));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (size(&log), size(&old))
}

#[derive(Default)]
struct Row {
    n: usize,
    mode: &'static str,
    commands: usize,
    failures: usize,
    calls: usize,
    describe_instances: usize,
    latencies_ms: Vec<f64>,
    create_ms: Vec<f64>,
    samples: Vec<Sample>,
    /// Metrics scrapes that answered, and the size of the last one.
    scrapes: (usize, usize),
}

/// The credentials of simulated second `t`: a new (temporary) access key every `rotate`.
fn credentials_at(t: f64, rotate: Option<f64>) -> Vec<(String, String)> {
    let Some(every) = rotate else {
        return vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ];
    };
    let period = (t / every) as u64;
    vec![
        (
            "AWS_ACCESS_KEY_ID".into(),
            format!("ASIAROTATING{period:08}"),
        ),
        ("AWS_SECRET_ACCESS_KEY".into(), format!("secret-{period}")),
        ("AWS_SESSION_TOKEN".into(), format!("token-{period}")),
    ]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A process's CPU time so far (user + system), in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces): state is field 3, utime
            // and stime are fields 14 and 15.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn command(env: &[(String, String)], config: &[u8], method: &str) -> Result<(), String> {
    let p = PluginProcess::start(
        Path::new(PLUGIN),
        "ec2spot",
        env,
        Some(Duration::from_secs(5)),
    )
    .await
    .map_err(|e| e.to_string())?;
    p.set_config_raw(config).await.map_err(|e| e.to_string())?;
    let r = match method {
        "inspect" => p.config_raw().await.map(|_| ()),
        "stop" => p.call("Stop").await.map(|_| ()).or(Ok(())), // spot: refused at once, as the runner expects
        "rm" => p.call("Remove").await.map(|_| ()),
        _ => p.string("GetURL").await.map(|_| ()),
    };
    p.close().await;
    r.map_err(|e| e.to_string())
}

async fn create(env: &[(String, String)], store: &str, name: &str) -> Result<Vec<u8>, String> {
    let p = PluginProcess::start(
        Path::new(PLUGIN),
        "ec2spot",
        env,
        Some(Duration::from_secs(5)),
    )
    .await
    .map_err(|e| e.to_string())?;
    p.set_config_raw(&create_skeleton(name, store))
        .await
        .map_err(|e| e.to_string())?;
    let flags = p.create_flags().await.map_err(|e| e.to_string())?;
    let values = docker_machine_values(
        &flags,
        &[("amazonec2-request-spot-instance", FlagValue::Bool(true))],
    );
    p.set_config_from_flags(&values)
        .await
        .map_err(|e| e.to_string())?;
    p.call("PreCreateCheck").await.map_err(|e| e.to_string())?;
    p.call("Create").await.map_err(|e| e.to_string())?;
    let cfg = p.config_raw().await.map_err(|e| e.to_string())?;
    p.close().await;
    Ok(cfg)
}

/// N running spot machines made straight in moto, with the configs ec2spot would have saved
/// and the store's manager tag it would have set.
async fn fleet(ec2: &aws_sdk_ec2::Client, n: usize, store: &str) -> Vec<Vec<u8>> {
    let manager = ec2spot_ec2::manager::manager_id(store);
    let mut configs = Vec::new();
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(100);
        let out = ec2
            .run_instances()
            .image_id("ami-0e86e20dae9224db8")
            .instance_type("t3.micro".into())
            .min_count(batch as i32)
            .max_count(batch as i32)
            .instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("ec2spot:bench").value("1").build())
                    .tags(
                        Tag::builder()
                            .key(ec2spot_ec2::tags::MANAGER)
                            .value(&manager)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("fleet");
        for i in out.instances() {
            let id = i.instance_id().unwrap();
            let ip = i.public_ip_address().unwrap_or("54.0.0.1");
            let name = format!("bench-{made:04}");
            configs.push(
                serde_json::json!({
                    "MachineName": name, "StorePath": store, "SSHUser": "ubuntu", "SSHPort": 22,
                    "Region": "us-east-1", "InstanceId": id, "InstanceType": "t3.micro", "Market": "spot",
                    "RequestSpotInstance": true, "IPAddress": ip, "MachineId": format!("{:032x}", made), "RetryCount": 5
                })
                .to_string()
                .into_bytes(),
            );
            made += 1;
        }
    }
    configs
}

/// The agent's state TTL in simulated seconds (its default, or `RUNNER_PATTERN_STATE_TTL`).
fn state_ttl_secs() -> f64 {
    std::env::var("RUNNER_PATTERN_STATE_TTL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0)
}

/// Time compression for `n` machines (at most 30×, 3× for 200), or
/// `RUNNER_PATTERN_COMPRESSION`. Only the simulated clock is compressed, not EC2's answer
/// times, so compression distorts the agent's figures both ways: a call overlaps another
/// more often (a launch poll cannot share the state read under way), and a read's own time
/// stretches the refresher's period. At 7.5× (200 machines, a 15 s TTL) the agent's
/// DescribeInstances came out 13 % lower than at 3× (184 against 211): 3× it is.
fn compression(n: usize) -> f64 {
    std::env::var("RUNNER_PATTERN_COMPRESSION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or((600.0 / n as f64).min(30.0))
}

async fn run(n: usize, agent: bool, plan: Plan) -> Row {
    let c = compression(n);
    let moto = tokio::task::spawn_blocking(moto::Moto::start)
        .await
        .unwrap();
    let proxy = ec2_proxy::Ec2Proxy::start(&moto.url).await;
    let store = tempfile::tempdir().unwrap();
    let store_s = store.path().to_str().unwrap().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), proxy.url.clone()),
        ("EC2SPOT_LOG".into(), "warn".into()),
        ("EC2SPOT_AGENT_IDLE".into(), "5s".into()),
        (
            "EC2SPOT_AGENT_STATE_TTL".into(),
            format!("{}ms", (state_ttl_secs() * 1000.0 / c) as u64),
        ),
        // The agent's other clocks compressed alike.
        (
            "EC2SPOT_AGENT_CLIENT_IDLE".into(),
            format!("{}ms", (120_000.0 / c) as u64),
        ),
    ];
    if !agent {
        env.push(("EC2SPOT_AGENT".into(), "off".into()));
    }
    if let Some(port) = plan.metrics_port {
        env.push(("EC2SPOT_AGENT_METRICS".into(), format!("127.0.0.1:{port}")));
    }
    if let Some(cap) = plan.log_cap {
        env.retain(|(k, _)| k != "EC2SPOT_LOG");
        env.push(("EC2SPOT_LOG".into(), "ec2spot=info,warn".into()));
        env.push(("EC2SPOT_AGENT_LOG_MAX".into(), cap.to_string()));
    }
    let ec2 = moto.ec2().await;
    let configs = fleet(&ec2, n, &store_s).await;
    // Warm moto's region backend and, in agent mode, start the agent before the clock runs.
    let first: Vec<(String, String)> = env
        .iter()
        .cloned()
        .chain(credentials_at(0.0, plan.rotate_every))
        .collect();
    let _ = command(&first, &configs[0], "url").await;
    proxy.reset_log();

    let env = Arc::new(env);
    let limit = Arc::new(Semaphore::new(48));
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let wall = Duration::from_secs_f64(plan.minutes * 60.0 / c);
    let slots = (plan.minutes * 60.0 / JOB_EVERY_SIM_SECS) as usize;
    let start = Instant::now();
    // The agent, looked at every 10 simulated minutes (soak runs).
    let sampler = (agent && plan.sample).then(|| {
        let store = store.path().to_path_buf();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut minute = 0.0;
            while minute <= plan.minutes {
                let at = start + Duration::from_secs_f64(minute * 60.0 / c);
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                if let Ok(client) =
                    ec2spot_agent::client::AgentClient::connect_running(&store).await
                    && let Ok(st) = client.status().await
                {
                    samples.push(Sample {
                        sim_minutes: minute,
                        rss_kib: rss_kib(st.pid),
                        cpu_ticks: cpu_ticks(st.pid),
                        clients: st.clients,
                        http_clients: st.http_clients,
                        cached_states: st.cached_states,
                        machine_locks: st.machine_locks,
                        log_bytes: log_bytes(&store),
                    });
                }
                minute += 10.0;
            }
            samples
        })
    });
    // Prometheus's part: a scrape every 15 simulated seconds while the schedule runs.
    let scraper = plan.metrics_port.map(|port| {
        let every = Duration::from_secs_f64(15.0 / c);
        tokio::spawn(async move {
            let (mut scrapes, mut bytes) = (0usize, 0usize);
            while start.elapsed() < wall {
                tokio::time::sleep(every).await;
                if let Ok(body) = scrape(port).await {
                    scrapes += 1;
                    bytes = body.len();
                }
            }
            (scrapes, bytes)
        })
    });
    let mut tasks = Vec::new();
    for (m, cfg) in configs.iter().enumerate() {
        // One machine's jobs in order; a replaced machine's later jobs use its successor.
        let jobs: Vec<(f64, bool)> = (0..slots)
            .map(|slot| {
                (
                    slot as f64 * JOB_EVERY_SIM_SECS + rng.gen_range(0.0..JOB_EVERY_SIM_SECS),
                    rng.gen_range(0..10) == 0,
                )
            })
            .collect();
        let (env, mut cfg, limit, store_s) = (
            Arc::clone(&env),
            cfg.clone(),
            Arc::clone(&limit),
            store_s.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut fails = 0;
            for (slot, (sim_t, replace)) in jobs.into_iter().enumerate() {
                let steps: &[(&str, f64)] = if replace {
                    &[("stop", 0.0), ("rm", 2.0), ("create", 3.0)]
                } else {
                    &[
                        ("config", 0.0),
                        ("config", 1.0),
                        ("url", 2.0),
                        ("inspect", 3.0),
                    ]
                };
                for (cmd, offset) in steps {
                    let at = Duration::from_secs_f64((sim_t + offset) / c);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(start + at)).await;
                    let _permit = limit.acquire().await.unwrap();
                    let env: Vec<(String, String)> = env
                        .iter()
                        .cloned()
                        .chain(credentials_at(sim_t + offset, plan.rotate_every))
                        .collect();
                    let t = Instant::now();
                    let r = match *cmd {
                        "create" => create(&env, &store_s, &format!("new-{m}-{slot}"))
                            .await
                            .map(|c| cfg = c),
                        c => command(&env, &cfg, c).await,
                    };
                    if let Err(e) = r {
                        fails += 1;
                        if fails == 1 {
                            eprintln!("{cmd}: {e}");
                        }
                    }
                    lat.push((*cmd, t.elapsed().as_secs_f64() * 1000.0));
                }
            }
            (lat, fails)
        }));
    }
    let mut row = Row {
        n,
        mode: if agent { "agent" } else { "direct" },
        ..Row::default()
    };
    for t in tasks {
        let (lat, fails) = t.await.unwrap();
        row.commands += lat.len();
        row.failures += fails;
        for (cmd, ms) in lat {
            if cmd == "create" {
                row.create_ms.push(ms);
            } else if cmd == "config" || cmd == "url" {
                row.latencies_ms.push(ms);
            }
        }
    }
    let took = start.elapsed();
    if let Some(scraper) = scraper {
        row.scrapes = scraper.await.unwrap();
    }
    if let Some(sampler) = sampler {
        row.samples = sampler.await.unwrap();
    }
    row.calls = proxy.requests().len();
    row.describe_instances = proxy.count("DescribeInstances");
    if std::env::var_os("RUNNER_PATTERN_CALLS").is_some() {
        // What the calls were: per action, and DescribeInstances by shape (ids asked, filters).
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for r in proxy.requests() {
            let key = if r.action == "DescribeInstances" {
                let ids = r
                    .params
                    .iter()
                    .filter(|(k, _)| k.starts_with("InstanceId."))
                    .count();
                let filters: Vec<&str> = r
                    .params
                    .iter()
                    .filter(|(k, _)| k.starts_with("Filter.") && k.ends_with(".Name"))
                    .map(|(_, v)| v.as_str())
                    .collect();
                format!("DescribeInstances ids={} filters={filters:?}", ids.min(2))
            } else {
                r.action.clone()
            };
            *by.entry(key).or_default() += 1;
        }
        for (k, n) in by {
            eprintln!("  N={n:<5} {} {k}", row.mode);
        }
        if std::env::var("RUNNER_PATTERN_CALLS").as_deref() == Ok("timeline") {
            let t0 = proxy.requests().first().map(|r| r.received);
            for r in proxy.requests() {
                if r.action == "DescribeInstances"
                    || r.action == "RunInstances"
                    || r.action == "TerminateInstances"
                {
                    let ids: Vec<&str> = r
                        .params
                        .iter()
                        .filter(|(k, _)| k.starts_with("InstanceId."))
                        .map(|(_, v)| v.as_str())
                        .collect();
                    eprintln!(
                        "TL {} {:8.3} {} {}",
                        row.mode,
                        r.received.duration_since(t0.unwrap()).as_secs_f64(),
                        r.action,
                        if ids.len() == 1 {
                            ids[0].to_string()
                        } else {
                            ids.len().to_string()
                        }
                    );
                }
            }
        }
    }
    if took > wall + Duration::from_secs(30) {
        eprintln!(
            "note: N={n} {} ran {:.0}s for a {:.0}s schedule (the machine was saturated)",
            row.mode,
            took.as_secs_f64(),
            wall.as_secs_f64()
        );
    }
    row
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench <name>`");
        return;
    }
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if std::env::args().any(|a| a == "--soak") {
        soak(ns.first().copied().unwrap_or(200)).await;
        return;
    }
    if std::env::args().any(|a| a == "--metrics") {
        metrics_cost(ns.first().copied().unwrap_or(200)).await;
        return;
    }
    let ns = if ns.is_empty() { vec![10, 50, 200] } else { ns };
    let hours = SIM_MINUTES / 60.0;
    println!(
        "gitlab-runner pattern: a job per machine every 5 min (config ×2, url, inspect), 1 in 10 jobs replaces its machine (stop, rm, create); {SIM_MINUTES} simulated minutes, compressed up to 30× (N=200: {}×, N=50: {}×); agent state TTL {} s\n",
        compression(200),
        compression(50),
        state_ttl_secs()
    );
    println!(
        "{:>5} {:>7} {:>6} {:>5} {:>9} {:>8} {:>14} {:>12} {:>8} {:>8}",
        "N",
        "mode",
        "cmds",
        "fail",
        "EC2 calls",
        "Describe",
        "calls/mach·h",
        "DI/mach·h",
        "p50 ms",
        "p99 ms"
    );
    for n in ns {
        let mut pair = Vec::new();
        for agent in [false, true] {
            let mut r = run(
                n,
                agent,
                Plan {
                    minutes: SIM_MINUTES,
                    rotate_every: None,
                    log_cap: None,
                    sample: false,
                    metrics_port: None,
                },
            )
            .await;
            let machine_hours = n as f64 * hours;
            let (p50, p99) = (
                percentile(&mut r.latencies_ms, 0.5),
                percentile(&mut r.latencies_ms, 0.99),
            );
            println!(
                "{:>5} {:>7} {:>6} {:>5} {:>9} {:>8} {:>14.1} {:>12.1} {:>8.1} {:>8.1}",
                r.n,
                r.mode,
                r.commands,
                r.failures,
                r.calls,
                r.describe_instances,
                r.calls as f64 / machine_hours,
                r.describe_instances as f64 / machine_hours,
                p50,
                p99
            );
            pair.push(r);
        }
        let ratio = pair[1].describe_instances as f64 / pair[0].describe_instances.max(1) as f64;
        println!(
            "{:>5} agent/direct DescribeInstances: {:.1}%  all EC2 calls: {:.1}%",
            n,
            ratio * 100.0,
            pair[1].calls as f64 / pair[0].calls.max(1) as f64 * 100.0
        );
    }
}

/// The agent for a compressed hour at `n` machines with credentials rotating every 5
/// simulated minutes: its memory and holdings over time.
async fn soak(n: usize) {
    let plan = Plan {
        minutes: 60.0,
        rotate_every: Some(300.0),
        // Small enough to rotate several times in the hour (an info line per operation).
        log_cap: Some(64 * 1024),
        sample: true,
        metrics_port: None,
    };
    println!(
        "soak: N = {n}, the runner pattern for {} simulated minutes ({:.1}× compressed), new credentials every {} simulated minutes, agent on\n",
        plan.minutes,
        compression(n),
        plan.rotate_every.unwrap() / 60.0
    );
    let r = run(n, true, plan).await;
    println!(
        "{:>8} {:>10} {:>8} {:>13} {:>14} {:>14} {:>10} {:>12}",
        "sim min",
        "RSS KiB",
        "clients",
        "HTTP clients",
        "cached states",
        "machine locks",
        "agent.log",
        "agent.log.1"
    );
    for s in &r.samples {
        println!(
            "{:>8.0} {:>10} {:>8} {:>13} {:>14} {:>14} {:>10} {:>12}",
            s.sim_minutes,
            s.rss_kib,
            s.clients,
            s.http_clients,
            s.cached_states,
            s.machine_locks,
            s.log_bytes.0,
            s.log_bytes.1
        );
    }
    let cap = plan.log_cap.unwrap_or(u64::MAX);
    let largest = r
        .samples
        .iter()
        .map(|s| s.log_bytes.0.max(s.log_bytes.1))
        .max()
        .unwrap_or(0);
    let rotated = r.samples.iter().any(|s| s.log_bytes.1 > 0);
    println!("\nagent log: largest file {largest} B against a cap of {cap} B; rotated: {rotated}");
    if largest > cap {
        eprintln!("the agent's log grew past its cap");
        std::process::exit(1);
    }
    // Growth is judged from the first look after a full job cycle (every machine asked about
    // once) to the end: before that the agent is still filling its cache.
    if let (Some(first), Some(last)) = (r.samples.get(1), r.samples.last()) {
        println!(
            "\nagent RSS {} KiB at {} sim min -> {} KiB at {} sim min: {:+.1}%; commands {}, failures {}",
            first.rss_kib,
            first.sim_minutes,
            last.rss_kib,
            last.sim_minutes,
            (last.rss_kib as f64 / first.rss_kib.max(1) as f64 - 1.0) * 100.0,
            r.commands,
            r.failures
        );
    }
}

/// One scrape of the agent's metrics on loopback `port` (HTTP/1.0, so the answer ends with the
/// connection).
async fn scrape(port: u16) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    if !body.starts_with("HTTP/1.") || !body.contains(" 200 ") {
        return Err(std::io::Error::other(
            body.lines().next().unwrap_or("").to_string(),
        ));
    }
    Ok(body)
}

/// The runner pattern at `n` machines for a compressed hour with the agent's metrics off, then
/// on and scraped: the agent's CPU time and resident memory at the end of each, and the ratios.
async fn metrics_cost(n: usize) {
    println!(
        "metrics cost: N = {n}, the runner pattern for 60 simulated minutes ({:.1}x compressed), agent on; metrics off, then on and scraped every 15 simulated seconds\n",
        compression(n)
    );
    let mut rows = Vec::new();
    for metrics in [false, true] {
        let port = metrics.then(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        });
        let plan = Plan {
            minutes: 60.0,
            rotate_every: None,
            log_cap: None,
            sample: true,
            metrics_port: port,
        };
        let r = run(n, true, plan).await;
        let last = r
            .samples
            .last()
            .map_or((0, 0), |s| (s.cpu_ticks, s.rss_kib));
        rows.push((metrics, r.commands, r.failures, last, r.scrapes));
    }
    println!(
        "{:>8} {:>6} {:>5} {:>14} {:>9} {:>8} {:>12}",
        "metrics", "cmds", "fail", "agent CPU (s)", "RSS KiB", "scrapes", "scrape bytes"
    );
    let hz = 100.0; // USER_HZ on Linux
    for (metrics, cmds, fails, (ticks, rss), (scrapes, bytes)) in &rows {
        println!(
            "{:>8} {:>6} {:>5} {:>14.2} {:>9} {:>8} {:>12}",
            if *metrics { "on" } else { "off" },
            cmds,
            fails,
            *ticks as f64 / hz,
            rss,
            scrapes,
            bytes
        );
    }
    let (off, on) = (&rows[0], &rows[1]);
    println!(
        "\nmetrics on / off: agent CPU {:+.1}%, RSS {:+.1}%",
        (on.3.0 as f64 / off.3.0.max(1) as f64 - 1.0) * 100.0,
        (on.3.1 as f64 / off.3.1.max(1) as f64 - 1.0) * 100.0
    );
    if on.4.0 == 0 {
        eprintln!("no scrape answered: the metrics were not on");
        std::process::exit(1);
    }
}
