//! Section 1 of the vs_go bench, start-up: exec → first reply, i.e. until the plugin has
//! answered its first RPC (`GetVersion`, the first call docker-machine makes) through the real
//! protocol — address line read, TCP connect, HTTP CONNECT handshake, gob request and reply.
//! The address line alone leaves out what a plugin does after printing it: ec2spot prints it
//! as soon as it listens, before it sets up logging and its runtime and serves (src/main.rs),
//! so work merely moved behind the print would look like a gain. ec2spot and Go starts
//! interleaved.

use std::path::Path;
use std::time::{Duration, Instant};

use ec2spot_testkit::plugin_client::PluginProcess;

use crate::procs::{Kind, driver_name};
use crate::stats::{median, percentile};
use crate::table::Row;

const WARM_STARTS: usize = 3;

/// Execs `bin` as docker-machine does (token and driver name in the environment, stdin
/// /dev/null, stdout and stderr pipes) and times exec → the reply to `GetVersion`, in ms;
/// then closes it (untimed).
pub(crate) async fn exec_to_first_reply(bin: &Path, kind: Kind, env: &[(String, String)]) -> f64 {
    let t = Instant::now();
    let p = PluginProcess::start(bin, driver_name(kind), env, None)
        .await
        .unwrap_or_else(|e| panic!("{} does not start: {e}", bin.display()));
    let version = p.version().await.expect("GetVersion");
    let took = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(version, 1, "{} answered GetVersion", bin.display());
    let _ = tokio::time::timeout(Duration::from_secs(10), p.close()).await;
    took
}

/// `starts` timed starts of each binary (after the warm-up ones); the table rows: median and
/// p90.
pub(crate) async fn measure(
    ec2spot: &Path,
    go: &Path,
    env: &[(String, String)],
    starts: usize,
) -> Vec<Row> {
    let (mut ec2spot_ms, mut go_ms) = (Vec::new(), Vec::new());
    for i in 0..WARM_STARTS + starts {
        // Alternate which goes first so neither always follows the other.
        let order = if i % 2 == 0 {
            [Kind::Ec2spot, Kind::Go]
        } else {
            [Kind::Go, Kind::Ec2spot]
        };
        for kind in order {
            let (bin, out) = match kind {
                Kind::Ec2spot => (ec2spot, &mut ec2spot_ms),
                Kind::Go => (go, &mut go_ms),
            };
            let ms = exec_to_first_reply(bin, kind, env).await;
            if i >= WARM_STARTS {
                out.push(ms);
            }
        }
    }
    vec![
        Row {
            measure: format!("start-up exec→first reply (GetVersion), median ({starts} starts)"),
            ec2spot: median(&ec2spot_ms),
            go: Some(median(&go_ms)),
            unit: "ms",
            target: Some(0.5),
        },
        Row {
            measure: "start-up exec→first reply (GetVersion), p90".into(),
            ec2spot: percentile(&ec2spot_ms, 0.9),
            go: Some(percentile(&go_ms, 0.9)),
            unit: "ms",
            target: Some(0.5),
        },
    ]
}
