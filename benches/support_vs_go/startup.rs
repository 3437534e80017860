//! Section 1 of the vs_go bench, start-up: exec → address line on stdout, ec2spot and Go
//! starts interleaved.

use std::path::Path;

use crate::procs::{Kind, exec_to_address};
use crate::stats::{median, percentile};
use crate::table::Row;

const WARM_STARTS: usize = 3;

struct Startup {
    ec2spot_ms: Vec<f64>,
    go_ms: Vec<f64>,
}

fn startup(ec2spot: &Path, go: &Path, env: &[(String, String)], starts: usize) -> Startup {
    let mut r = Startup {
        ec2spot_ms: Vec::new(),
        go_ms: Vec::new(),
    };
    for i in 0..WARM_STARTS + starts {
        // Alternate which goes first so neither always follows the other.
        let order = if i % 2 == 0 {
            [Kind::Ec2spot, Kind::Go]
        } else {
            [Kind::Go, Kind::Ec2spot]
        };
        for kind in order {
            let (bin, out) = match kind {
                Kind::Ec2spot => (ec2spot, &mut r.ec2spot_ms),
                Kind::Go => (go, &mut r.go_ms),
            };
            let ms = exec_to_address(bin, kind, env);
            if i >= WARM_STARTS {
                out.push(ms);
            }
        }
    }
    r
}

/// `starts` timed starts of each binary (after the warm-up ones), on a blocking thread; the
/// table rows: median and p90.
pub(crate) async fn measure(
    ec2spot: &Path,
    go: &Path,
    env: &[(String, String)],
    starts: usize,
) -> Vec<Row> {
    let s = {
        let (e, g, env) = (ec2spot.to_path_buf(), go.to_path_buf(), env.to_vec());
        tokio::task::spawn_blocking(move || startup(&e, &g, &env, starts))
            .await
            .unwrap()
    };
    vec![
        Row {
            measure: format!("start-up exec→address, median ({starts} starts)"),
            ec2spot: median(&s.ec2spot_ms),
            go: Some(median(&s.go_ms)),
            unit: "ms",
            target: Some(0.5),
        },
        Row {
            measure: "start-up exec→address, p90".into(),
            ec2spot: percentile(&s.ec2spot_ms, 0.9),
            go: Some(percentile(&s.go_ms, 0.9)),
            unit: "ms",
            target: Some(0.5),
        },
    ]
}
