//! Section 2 of the vs_go bench, RPC round trip: `RPCServerDriver.GetVersion` ×ROUND_TRIPS
//! on one connection, from the Rust client (PluginProcess) and from Go's net/rpc client (the
//! rtclient helper).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ec2spot_testkit::plugin_client::PluginProcess;

use crate::procs::HEARTBEAT;
use crate::stats::{median, percentile};
use crate::table::Row;

pub(crate) const ROUND_TRIPS: usize = 1000;
pub(crate) const ROUND_TRIP_ROUNDS: usize = 3;

struct RoundTrip {
    /// Total of each round of ROUND_TRIPS calls, ms.
    totals_ms: Vec<f64>,
    /// Every call, µs.
    calls_us: Vec<f64>,
}

async fn round_trips(ec2spot: &Path, go: &Path, env: &[(String, String)]) -> [RoundTrip; 2] {
    let e = PluginProcess::start(ec2spot, "ec2spot", env, Some(HEARTBEAT))
        .await
        .expect("start ec2spot");
    let g = PluginProcess::start(go, "baseline", env, Some(HEARTBEAT))
        .await
        .expect("start the Go baseline");
    for p in [&e, &g] {
        for _ in 0..50 {
            assert_eq!(p.version().await.expect("GetVersion"), 1);
        }
    }
    let mut out = [
        RoundTrip {
            totals_ms: Vec::new(),
            calls_us: Vec::new(),
        },
        RoundTrip {
            totals_ms: Vec::new(),
            calls_us: Vec::new(),
        },
    ];
    for round in 0..ROUND_TRIP_ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let p = if which == 0 { &e } else { &g };
            let r = &mut out[which];
            let start = Instant::now();
            for _ in 0..ROUND_TRIPS {
                let t = Instant::now();
                let v = p.version().await.expect("GetVersion");
                r.calls_us.push(t.elapsed().as_secs_f64() * 1e6);
                assert_eq!(v, 1);
            }
            r.totals_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    e.close().await;
    g.close().await;
    out
}

/// The same calls made by Go's own net/rpc client (what docker-machine uses), from the
/// rtclient helper: [ec2spot, Go].
fn round_trips_go_client(
    rtclient: &Path,
    ec2spot: &Path,
    go: &Path,
    env: &[(String, String)],
) -> [RoundTrip; 2] {
    let out = Command::new(rtclient)
        .args(["-n", &ROUND_TRIPS.to_string()])
        .args(["-rounds", &ROUND_TRIP_ROUNDS.to_string()])
        .arg(ec2spot)
        .arg(go)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run rtclient");
    assert!(
        out.status.success(),
        "rtclient failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rtclient JSON");
    let get = |i: usize, k: &str| -> Vec<f64> {
        v["plugins"][i][k]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    [0, 1].map(|i| RoundTrip {
        totals_ms: get(i, "totals_ms"),
        calls_us: get(i, "calls_us"),
    })
}

/// Round trips from the Rust client, then from the Go client (on a blocking thread); the
/// table rows for both.
pub(crate) async fn measure(
    ec2spot: &Path,
    go: &Path,
    rtclient: &Path,
    env: &[(String, String)],
) -> Vec<Row> {
    let mut rows = Vec::new();
    let [re, rg] = round_trips(ec2spot, go, env).await;
    rows.push(Row {
        measure: format!(
            "GetVersion ×{ROUND_TRIPS} on one connection, Rust client (PluginProcess), total (median of {ROUND_TRIP_ROUNDS} rounds)"
        ),
        ec2spot: median(&re.totals_ms),
        go: Some(median(&rg.totals_ms)),
        unit: "ms",
        target: Some(1.0),
    });
    rows.push(Row {
        measure: "GetVersion per call, Rust client, median".into(),
        ec2spot: median(&re.calls_us),
        go: Some(median(&rg.calls_us)),
        unit: "µs",
        target: Some(1.0),
    });
    rows.push(Row {
        measure: "GetVersion per call, Rust client, p90".into(),
        ec2spot: percentile(&re.calls_us, 0.9),
        go: Some(percentile(&rg.calls_us, 0.9)),
        unit: "µs",
        target: Some(1.0),
    });

    let [ge, gg] = {
        let (c, e, g, env) = (
            rtclient.to_path_buf(),
            ec2spot.to_path_buf(),
            go.to_path_buf(),
            env.to_vec(),
        );
        tokio::task::spawn_blocking(move || round_trips_go_client(&c, &e, &g, &env))
            .await
            .unwrap()
    };
    rows.push(Row {
        measure: format!("GetVersion ×{ROUND_TRIPS}, Go net/rpc client (as docker-machine), total"),
        ec2spot: median(&ge.totals_ms),
        go: Some(median(&gg.totals_ms)),
        unit: "ms",
        target: Some(1.0),
    });
    rows.push(Row {
        measure: "GetVersion per call, Go net/rpc client, median".into(),
        ec2spot: median(&ge.calls_us),
        go: Some(median(&gg.calls_us)),
        unit: "µs",
        target: Some(1.0),
    });
    rows
}
