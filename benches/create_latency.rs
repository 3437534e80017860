//! `cargo bench --bench create_latency`: what a GitLab job waits for from the driver — a
//! `docker-machine create` through the docker-machine stand-in (`dmclient dm`, Go) against
//! moto behind our proxy, every EC2 call answered 80 ms late (a bastion's round trip to EC2).
//!
//! For each variant it reports, as medians over the rounds (CREATE_LATENCY_ROUNDS, default 7):
//! the time from the command's start until docker-machine's first `GetState` is answered (the
//! machine is then running: provisioning starts), the whole command, the EC2 calls, and the
//! **sequential** round trips before that first answer — the longest chain of calls each made
//! after the one before it was answered (`ec2_proxy::sequential_round_trips`), which no
//! concurrency can shorten. Variants: ec2spot with the agent (cold: no agent running yet;
//! warm: the next create, same options), ec2spot without it, and the Go stdlib baseline
//! making amazonec2's calls in amazonec2's order (tests/go/baseline), all in the same run.
//!
//! `CREATE_LATENCY_TRACE=1` prints every EC2 call of every create with its times;
//! `CREATE_LATENCY_README=1` writes the table into README.md (between its `create_latency`
//! markers).
//!
//! Targets (issue 17): warm ≤ 3 sequential round trips and ≤ 0.5 s to the first `GetState`;
//! cold ≤ 6 round trips. On the strict test EC2 (issue 21) the round trips counted are the
//! driver's own — without EC2's waits: calls refused as "not found yet" and the reads while
//! an instance is pending (see [`waits`]) — and the time is counted beyond the pending window.
//! The bench prints whether each holds, and exits 1 when one does not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::ec2_proxy::{Request, sequential_round_trips};

const PLUGIN: &str = env!("CARGO_BIN_EXE_docker-machine-driver-ec2spot");
const AMI: &str = "ami-0e86e20dae9224db8";
const DELAY: Duration = Duration::from_millis(80);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    AgentCold,
    AgentWarm,
    Direct,
    Go,
}

impl Variant {
    fn label(self, types: &str) -> String {
        match self {
            Variant::AgentCold => format!("ec2spot, agent, cold ({types})"),
            Variant::AgentWarm => format!("ec2spot, agent, warm ({types})"),
            Variant::Direct => format!("ec2spot, agent off ({types})"),
            Variant::Go => "Go baseline, amazonec2's calls (1 type, on-demand)".into(),
        }
    }
}

/// One measured create.
struct Run {
    to_first_state_ms: f64,
    command_ms: f64,
    calls: usize,
    chain: Vec<String>,
    /// Of the chain, the round trips EC2's timing forced (see [`waits`]).
    waits: usize,
}

/// The round trips of a sequential `chain` that EC2's documented timing forces on any driver,
/// not the driver's choice: a call refused as "not found yet" (a new id still propagating,
/// marked "(not yet)"), and after the launch every call but the last — the launch poll reads
/// again only while EC2 shows the instance pending, and what else follows the launch (the
/// template's deletion) is made beside the poll, never before it. What is left are the
/// driver's own round trips, the ones the targets count.
fn waits(chain: &[String]) -> usize {
    let refused = chain.iter().filter(|c| c.ends_with("(not yet)")).count();
    let launched = chain
        .iter()
        .rposition(|c| c == "RunInstances" || c == "CreateFleet");
    let after = launched.map_or(0, |i| chain.len() - i - 1);
    refused + after.saturating_sub(1)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A directory holding the plugins as docker-machine finds them on PATH.
fn plugin_dir(baseline: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(PLUGIN, dir.path().join("docker-machine-driver-ec2spot")).unwrap();
    std::os::unix::fs::symlink(baseline, dir.path().join("docker-machine-driver-baseline"))
        .unwrap();
    dir
}

/// Copies docker-machine's CA and client certificates from `seed` into `store`: a bastion
/// made them long ago, and their RSA keys are no part of a create.
fn seed_certs(seed: &Path, store: &Path) {
    let from = seed.join("certs");
    let to = store.join("certs");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[allow(clippy::too_many_arguments)]
async fn create(
    b: &Bastion,
    store: &Path,
    plugins: &Path,
    variant: Variant,
    name: &str,
    types: &str,
    env: &[(String, String)],
) -> Run {
    let times = tempfile::NamedTempFile::new().unwrap();
    let mut env = env.to_vec();
    env.retain(|(k, _)| k != "MACHINE_STORAGE_PATH" && k != "DMCLIENT_POLL");
    env.push(("DMCLIENT_POLL".into(), "3s".into())); // docker-machine's
    env.push((
        "DMCLIENT_TIMES".into(),
        times.path().to_string_lossy().into_owned(),
    ));
    env.push((
        "MACHINE_STORAGE_PATH".into(),
        store.to_string_lossy().into_owned(),
    ));
    if variant == Variant::Direct {
        env.push(("EC2SPOT_AGENT".into(), "off".into()));
    }
    let mut args: Vec<String> = vec!["create".into(), "-d".into()];
    if variant == Variant::Go {
        args.extend(["baseline".into(), "--amazonec2-ami".into(), AMI.into()]);
    } else {
        args.extend([
            "ec2spot".into(),
            "--amazonec2-ami".into(),
            AMI.into(),
            "--amazonec2-instance-type".into(),
            types.into(),
            "--amazonec2-request-spot-instance".into(),
            // moto gives an EC2 Fleet's instances no public address.
            "--amazonec2-use-private-address".into(),
        ]);
    }
    args.push(name.into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    b.proxy.reset_log();
    let t0 = Instant::now();
    let out = b.dm_at(store, plugins, None, &argv, env).await;
    let command_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "{variant:?} create failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let marks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(times.path()).unwrap()).expect("dmclient times");
    let first = marks["first_get_state"]
        .as_f64()
        .expect("dmclient saw a GetState");
    let cutoff = t0 + Duration::from_secs_f64(first / 1000.0);
    let requests: Vec<Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.received < cutoff)
        .collect();
    if std::env::var_os("CREATE_LATENCY_TRACE").is_some() {
        eprintln!("{variant:?} {name}: marks {marks}");
        for r in &requests {
            let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
            eprintln!(
                "  {:>7.1} → {:>7.1} ms  {}",
                ms(r.received),
                r.answered.map(ms).unwrap_or(f64::NAN),
                r.action
            );
        }
    }
    // A call EC2 refused as "not found yet" (a new id still propagating) is marked.
    // The agent's spare key pair for the next create is imported while this one's instance
    // boots: nothing of this create waits on it.
    let waited_on: Vec<Request> = requests
        .iter()
        .filter(|r| !ec2spot_testkit::bastion::spare_key_request(r))
        .cloned()
        .collect();
    let chain: Vec<String> = sequential_round_trips(&waited_on)
        .into_iter()
        .map(|r| {
            if r.refused {
                format!("{} (not yet)", r.action)
            } else {
                r.action
            }
        })
        .collect();
    Run {
        to_first_state_ms: first,
        command_ms,
        calls: requests.len(),
        waits: waits(&chain),
        chain,
    }
}

async fn remove(
    b: &Bastion,
    store: &Path,
    plugins: &Path,
    names: &[String],
    env: &[(String, String)],
) {
    b.proxy.set_delay(Duration::ZERO);
    let mut env = env.to_vec();
    env.retain(|(k, _)| k != "MACHINE_STORAGE_PATH");
    env.push((
        "MACHINE_STORAGE_PATH".into(),
        store.to_string_lossy().into_owned(),
    ));
    let mut args = vec!["rm", "-y"];
    args.extend(names.iter().map(String::as_str));
    let out = b.dm_at(store, plugins, None, &args, env).await;
    assert!(
        out.status.success(),
        "rm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.proxy.set_delay(DELAY);
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench create_latency`");
        return;
    }
    let rounds: usize = std::env::var("CREATE_LATENCY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let began = Instant::now();
    let baseline: PathBuf = tokio::task::spawn_blocking(|| {
        ec2spot_testkit::goclient::go_build(
            &ec2spot_testkit::workspace_root().join("tests/go/baseline"),
            &ec2spot_testkit::goclient::target_dir().join("vs_go_baseline"),
            "baseline",
        )
    })
    .await
    .unwrap();
    // EC2's consistency and timing as the strict test EC2 plays them (a new id unknown for
    // 1 s, an instance pending for 1.5 s: `EC2SPOT_TEST_CONSISTENCY_MS`, `…_PENDING_MS`), for
    // every variant alike; not the IAM layer, which judges calls (the baseline's amazonec2
    // calls need a wider policy) and whose own look-ups in moto would add to every answer.
    let strictness = ec2spot_testkit::strict::Strictness::from_env();
    let b = Bastion::start_strict(
        &[],
        ec2spot_testkit::strict::Strictness {
            iam: false,
            ..strictness
        },
    )
    .await;
    let ec2 = b.moto.ec2().await;
    // moto answers `default-vpc: none` where EC2 names the default VPC (the baseline's first
    // call): hand the baseline the id EC2 would name.
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let default_vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let mut env = b.env();
    env.push(("BASELINE_DEFAULT_VPC".into(), default_vpc));
    env.push(("EC2SPOT_AGENT_IDLE".into(), "120s".into()));
    let plugins = plugin_dir(&baseline);

    // A seed store whose certificates every measured store starts with. Its create (by the
    // baseline, as amazonec2 would) makes the security group `docker-machine` with SSH and
    // Docker open, which nobody removes: a bastion's state after its first machine.
    let seed = tempfile::tempdir().unwrap();
    b.proxy.set_delay(Duration::ZERO);
    let seed_name = "seed".to_string();
    let _ = create(
        &b,
        seed.path(),
        plugins.path(),
        Variant::Go,
        &seed_name,
        "t3.micro",
        &env,
    )
    .await;
    remove(&b, seed.path(), plugins.path(), &[seed_name], &env).await;

    let configs = [
        ("t3.micro", "1 type"),
        ("t3.micro,t3.small", "2 types, EC2 Fleet"),
    ];
    let variants = [
        Variant::AgentCold,
        Variant::AgentWarm,
        Variant::Direct,
        Variant::Go,
    ];
    let mut results: Vec<(String, Variant, Vec<Run>)> = Vec::new();
    for (types, label) in configs {
        for v in variants {
            if v == Variant::Go && types != configs[0].0 {
                continue;
            }
            results.push((v.label(label), v, Vec::new()));
        }
    }
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let mut i = 0;
        for (types, _) in configs {
            // Agent: a fresh store (no agent), a cold create, then a warm one.
            let store = tempfile::tempdir().unwrap();
            seed_certs(seed.path(), store.path());
            let names = [format!("cold-{round}"), format!("warm-{round}")];
            let cold = create(
                &b,
                store.path(),
                plugins.path(),
                Variant::AgentCold,
                &names[0],
                types,
                &env,
            )
            .await;
            // A new agent's RunInstances bucket holds one token and refills at 1.8 a second
            // (aws/throttle.rs): the next create comes 2 s later, as a runner's next would, so
            // it measures the create rather than EC2's pacing.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let warm = create(
                &b,
                store.path(),
                plugins.path(),
                Variant::AgentWarm,
                &names[1],
                types,
                &env,
            )
            .await;
            remove(&b, store.path(), plugins.path(), &names, &env).await;
            results[i].2.push(cold);
            results[i + 1].2.push(warm);
            // Agent off.
            let store = tempfile::tempdir().unwrap();
            seed_certs(seed.path(), store.path());
            let name = format!("direct-{round}");
            let direct = create(
                &b,
                store.path(),
                plugins.path(),
                Variant::Direct,
                &name,
                types,
                &env,
            )
            .await;
            remove(&b, store.path(), plugins.path(), &[name], &env).await;
            results[i + 2].2.push(direct);
            i += 3;
            if types == configs[0].0 {
                let store = tempfile::tempdir().unwrap();
                seed_certs(seed.path(), store.path());
                let name = format!("go-{round}");
                let go = create(
                    &b,
                    store.path(),
                    plugins.path(),
                    Variant::Go,
                    &name,
                    types,
                    &env,
                )
                .await;
                remove(&b, store.path(), plugins.path(), &[name], &env).await;
                results[i].2.push(go);
                i += 1;
            }
        }
    }

    let strict = if strictness.consistency {
        let w = ec2spot_testkit::strict::Windows::from_env();
        format!(
            "EC2 as strict as EC2 (TESTING.md): a new id unknown for {} ms, an instance pending for {} ms",
            w.consistency.as_millis(),
            w.pending.as_millis()
        )
    } else {
        "moto as it is (EC2SPOT_TEST_STRICT=off: new ids known at once, instances running at once)"
            .into()
    };
    let mut table = format!(
        "Every EC2 call answered {} ms late; {strict}; medians of {rounds} rounds; the plugin a {} build, moto on the same 2-core machine.\n\n",
        DELAY.as_millis(),
        if PLUGIN.contains("/release/") {
            "release"
        } else {
            "debug"
        }
    );
    table.push_str("| create | to first GetState answered | whole command | EC2 calls | sequential round trips (max) | of which EC2's waits | the driver's own (max) | first GetState vs Go baseline |\n");
    table.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let go_first = {
        let go = results.iter().find(|(_, v, _)| *v == Variant::Go).unwrap();
        median(&mut go.2.iter().map(|r| r.to_first_state_ms).collect::<Vec<_>>())
    };
    let mut verdicts = Vec::new();
    let mut chains = Vec::new();
    for (label, v, runs) in &results {
        let first = median(&mut runs.iter().map(|r| r.to_first_state_ms).collect::<Vec<_>>());
        let command = median(&mut runs.iter().map(|r| r.command_ms).collect::<Vec<_>>());
        let calls = median(&mut runs.iter().map(|r| r.calls as f64).collect::<Vec<_>>());
        let seq = median(
            &mut runs
                .iter()
                .map(|r| r.chain.len() as f64)
                .collect::<Vec<_>>(),
        );
        let seq_max = runs.iter().map(|r| r.chain.len()).max().unwrap_or(0);
        let waits = median(&mut runs.iter().map(|r| r.waits as f64).collect::<Vec<_>>());
        let own = median(
            &mut runs
                .iter()
                .map(|r| (r.chain.len() - r.waits) as f64)
                .collect::<Vec<_>>(),
        );
        let own_max = runs
            .iter()
            .map(|r| r.chain.len() - r.waits)
            .max()
            .unwrap_or(0);
        table.push_str(&format!(
            "| {label} | {first:.0} ms | {command:.0} ms | {calls:.0} | {seq:.0} ({seq_max}) | {waits:.0} | {own:.0} ({own_max}) | {:.2}× |\n",
            first / go_first
        ));
        chains.push(format!("- {label}: {}", runs[0].chain.join(" → ")));
        let (limit, time_limit) = match v {
            Variant::AgentWarm => (Some(3), Some(500.0)),
            Variant::AgentCold => (Some(6), None),
            _ => (None, None),
        };
        if let Some(limit) = limit {
            verdicts.push((
                format!(
                    "{label}: ≤ {limit} sequential round trips of the driver's own (max {own_max}; {seq_max} with EC2's waits)"
                ),
                own_max <= limit,
            ));
        }
        // (On the strict EC2 the time includes EC2's propagation waits, which no public page
        // bounds: it is reported above, the 0.5 s target is the lenient EC2's.)
        if let Some(t) = time_limit.filter(|_| !strictness.consistency) {
            verdicts.push((
                format!("{label}: ≤ {t:.0} ms to the first GetState ({first:.0} ms)"),
                first <= t,
            ));
        }
    }
    table.push_str(
        "\nThe sequential round trips of each variant's first run (until the first GetState). EC2's waits are the calls refused as not found yet, and after the launch every call but the read that finds the instance running: the poll reads while EC2 shows it pending, and the template's deletion goes beside the poll. Any driver waits there; those counts follow EC2's timing, not the driver's design.\n\n",
    );
    table.push_str(&chains.join("\n"));
    table.push('\n');
    println!("\n{table}");
    println!("Targets (issue 17):");
    for (what, held) in &verdicts {
        println!("- {what}: {}", if *held { "met" } else { "NOT MET" });
    }
    if std::env::var("CREATE_LATENCY_README").as_deref() == Ok("1") {
        match ec2spot_testkit::readme::write_block("create_latency", &table) {
            Ok(()) => eprintln!("README.md: the create_latency table was rewritten"),
            Err(e) => eprintln!("README.md not rewritten: {e}"),
        }
    }
    let ok = verdicts.iter().all(|(_, held)| *held);
    eprintln!("bench took {:.0} s", began.elapsed().as_secs_f64());
    if !ok {
        std::process::exit(1);
    }
}
