//! ec2spot against a baseline docker-machine plugin written in Go with only the standard
//! library (tests/go/baseline: net/rpc + encoding/gob, docker-machine's plugin lifecycle),
//! both built and run in this one invocation:
//!
//! 1. start-up: exec → first reply (`GetVersion` answered through net/rpc; interleaved starts);
//! 2. RPC round trip: `RPCServerDriver.GetVersion` ×1000 on one connection;
//! 3. peak RSS (VmHWM) and PSS of the plugin process over a create against moto (median of 7)
//!    — ec2spot with the agent off (the plugin does the EC2 work) and on (the agent does it:
//!    its PSS counts as the plugin's share);
//! 4. `ls`-style fan-out: N plugins started at once, each answering `GetURL` for an existing
//!    moto instance; wall time to the last answer and the N processes' total RSS and PSS then,
//!    with the agent's PSS split over the N plugins it served (median of 7 fan-outs).
//!
//! `VS_GO_README=1` rewrites README.md's benchmark table (between its `vs_go` markers) with
//! this run's table; `VS_GO_MACHINE` names the machine in the line above it.
//!
//! Run: `MOTO_SERVER=$PWD/.venv/bin/moto_server cargo bench --bench vs_go --profile dev`.
//! `EC2SPOT_BIN=<path>` measures another ec2spot binary (e.g. a release build) instead of the
//! one cargo built for this profile. `VS_GO_STARTS` (default 200) sets the starts per binary:
//! a start takes a few ms, and with fewer the median moves with the machine's noise.

mod create_rss;
mod fan_out;
mod go;
mod procs;
mod round_trip;
mod startup;
mod stats;
mod table;

use std::path::PathBuf;
use std::time::Instant;

use create_rss::CREATE_RUNS;
use ec2spot_testkit::{ec2_proxy, moto};
use procs::plugin_env;
use round_trip::{ROUND_TRIP_ROUNDS, ROUND_TRIPS};
use table::{describe_binary, describe_go, markdown_table, print_report};

const CARGO_PLUGIN: &str = env!("CARGO_BIN_EXE_docker-machine-driver-ec2spot");

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench <name>`");
        return;
    }
    let began = Instant::now();
    let ec2spot = std::env::var_os("EC2SPOT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CARGO_PLUGIN));
    assert!(ec2spot.exists(), "{} does not exist", ec2spot.display());
    let starts: usize = std::env::var("VS_GO_STARTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (go, rtclient) = tokio::task::spawn_blocking(|| (go::baseline(), go::rtclient()))
        .await
        .unwrap();
    eprintln!(
        "ec2spot: {}\nGo baseline: {}",
        describe_binary(&ec2spot),
        describe_go(&go)
    );
    let mut rows = Vec::new();

    // 1. Start-up (no endpoint needed: nothing talks to EC2).
    let idle_store = tempfile::tempdir().unwrap();
    let env = plugin_env("http://127.0.0.1:9", idle_store.path(), true);
    eprintln!("[1/4] start-up: {starts} interleaved starts each");
    rows.extend(startup::measure(&ec2spot, &go, &env, starts).await);

    // 2. Round trips.
    eprintln!(
        "[2/4] GetVersion ×{ROUND_TRIPS}, {ROUND_TRIP_ROUNDS} rounds each, Rust and Go clients"
    );
    rows.extend(round_trip::measure(&ec2spot, &go, &rtclient, &env).await);

    // 3. Creates against moto (through the recording proxy, to count EC2 calls).
    eprintln!("[3/4] create against moto, {CREATE_RUNS} runs per variant");
    let moto = tokio::task::spawn_blocking(moto::Moto::start)
        .await
        .unwrap();
    let proxy = ec2_proxy::Ec2Proxy::start(&moto.url).await;
    // Warm moto's us-east-1 backend so the first measured create pays no set-up.
    let ec2 = moto.ec2().await;
    let _ = ec2.describe_instances().send().await;
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
        .expect("DescribeVpcs");
    if let Some(v) = vpcs.vpcs().first().and_then(|v| v.vpc_id()) {
        let _ = procs::DEFAULT_VPC.set(v.to_string());
    }
    rows.extend(create_rss::measure(&ec2spot, &go, &proxy).await);

    // 4. Fan-out against moto directly.
    eprintln!("[4/4] ls-style fan-out");
    let (fan_out_rows, notes) = fan_out::measure(&ec2spot, &go, &ec2, &moto.url).await;
    rows.extend(fan_out_rows);
    drop(proxy);
    drop(moto);

    print_report(&ec2spot, &go, &rows, &notes);
    // VS_GO_README=1: the README's table is this run's (never edited by hand).
    if std::env::var("VS_GO_README").as_deref() == Ok("1") {
        let version = std::process::Command::new(&ec2spot)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let size = std::fs::metadata(&ec2spot).map(|m| m.len()).unwrap_or(0);
        let body = format!(
            "Measured by `cargo bench --bench vs_go` on {} with `{version}` ({}, {:.1} MB{}):\n\n{}",
            std::env::var("VS_GO_MACHINE").unwrap_or_else(|_| "this machine".into()),
            if ec2spot.to_string_lossy().contains("/release/") {
                "release profile"
            } else {
                "debug build"
            },
            size as f64 / 1e6,
            std::env::var("VS_GO_BINARY_NOTE")
                .map(|n| format!(", {n}"))
                .unwrap_or_default(),
            markdown_table(&rows)
        );
        match ec2spot_testkit::readme::write_block("vs_go", &body) {
            Ok(()) => eprintln!("README.md: the vs_go table was rewritten"),
            Err(e) => eprintln!("README.md not rewritten: {e}"),
        }
    }
    eprintln!("bench took {:.0} s", began.elapsed().as_secs_f64());
}
