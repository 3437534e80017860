//! Section 4 of the vs_go bench, `ls`-style fan-out: N plugins started at once, each answering
//! `GetURL` for an existing moto instance; wall time to the last answer and the N processes'
//! total RSS then.

use std::path::Path;
use std::time::Instant;

use ec2spot_testkit::plugin_client::PluginProcess;

use crate::procs::{
    AMI, HEARTBEAT, INSTANCE_TYPE, Kind, driver_name, find_agent, plugin_env, stop_agent,
};
use crate::stats::{median, mib, proc_status_kib, pss_kib};
use crate::table::Row;

pub(crate) const FAN_OUT: [usize; 2] = [10, 50];
/// Fan-outs per N and variant; the rows are their medians.
pub(crate) const FAN_OUT_RUNS: usize = 7;

struct FanOut {
    wall_ms: f64,
    rss_kib: f64,
    pss_kib: f64,
    anon_kib: f64,
    agent_rss_kib: Option<f64>,
    agent_pss_kib: Option<f64>,
    failures: usize,
    first_error: Option<String>,
}

/// Starts one plugin per config at once; each answers GetURL after SetConfigRaw. Wall time is
/// first exec → last answer; RSS is the sum of VmRSS of all of them right then.
async fn fan_out(
    bin: &Path,
    kind: Kind,
    env: &[(String, String)],
    configs: &[Vec<u8>],
    agent_store: Option<&Path>,
) -> FanOut {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for cfg in configs {
        let (bin, env, cfg) = (bin.to_path_buf(), env.to_vec(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            let p = PluginProcess::start(&bin, driver_name(kind), &env, Some(HEARTBEAT))
                .await
                .map_err(|e| e.to_string())?;
            if let Err(e) = p.set_config_raw(&cfg).await {
                return Ok((p, Err(e.to_string())));
            }
            let url = p.string("GetURL").await.map_err(|e| e.to_string());
            Ok::<_, String>((p, url))
        }));
    }
    let mut plugins = Vec::new();
    let mut failures = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await.expect("task") {
            Ok((p, Ok(url))) if url.starts_with("tcp://") => plugins.push(p),
            Ok((p, r)) => {
                failures += 1;
                first_error.get_or_insert(format!("GetURL: {r:?}"));
                plugins.push(p);
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    let pids: Vec<u32> = plugins.iter().filter_map(|p| p.pid()).collect();
    let rss_kib = pids
        .iter()
        .filter_map(|&pid| proc_status_kib(pid, "VmRSS"))
        .sum::<u64>() as f64;
    let pss_kib = pids.iter().filter_map(|&pid| pss_kib(pid)).sum::<u64>() as f64;
    let anon_kib = pids
        .iter()
        .filter_map(|&pid| proc_status_kib(pid, "RssAnon"))
        .sum::<u64>() as f64;
    let agent = agent_store.and_then(find_agent);
    let agent_rss_kib = agent
        .and_then(|pid| proc_status_kib(pid, "VmRSS"))
        .map(|k| k as f64);
    let agent_pss_kib = agent.and_then(crate::stats::pss_kib).map(|k| k as f64);
    let closes: Vec<_> = plugins
        .into_iter()
        .map(|p| tokio::spawn(p.close()))
        .collect();
    for c in closes {
        let _ = c.await;
    }
    FanOut {
        wall_ms,
        rss_kib,
        pss_kib,
        anon_kib,
        agent_rss_kib,
        agent_pss_kib,
        failures,
        first_error,
    }
}

/// The median of each figure over `runs` (failures summed, the first error kept).
fn medians(runs: Vec<FanOut>) -> FanOut {
    let m = |f: &dyn Fn(&FanOut) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let agent = |f: &dyn Fn(&FanOut) -> Option<f64>| {
        let v: Vec<f64> = runs.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    FanOut {
        wall_ms: m(&|r| r.wall_ms),
        rss_kib: m(&|r| r.rss_kib),
        pss_kib: m(&|r| r.pss_kib),
        anon_kib: m(&|r| r.anon_kib),
        agent_rss_kib: agent(&|r| r.agent_rss_kib),
        agent_pss_kib: agent(&|r| r.agent_pss_kib),
        failures: runs.iter().map(|r| r.failures).sum(),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
    }
}

/// `n` running on-demand instances made straight in moto, with the config ec2spot would have
/// saved for each (the Go baseline reads `InstanceId`, `IPAddress` and `Region` of the same).
async fn fleet(ec2: &aws_sdk_ec2::Client, n: usize, store: &str) -> Vec<Vec<u8>> {
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(INSTANCE_TYPE.into())
        .min_count(n as i32)
        .max_count(n as i32)
        .send()
        .await
        .expect("RunInstances for the fan-out fleet");
    out.instances()
        .iter()
        .enumerate()
        .map(|(k, i)| {
            serde_json::json!({
                "MachineName": format!("fan-{n}-{k:03}"), "StorePath": store,
                "SSHUser": "ubuntu", "SSHPort": 22, "Region": "us-east-1",
                "InstanceId": i.instance_id().unwrap_or_default(),
                "InstanceType": INSTANCE_TYPE, "Market": "on-demand",
                "IPAddress": i.public_ip_address().unwrap_or("54.0.0.1"),
                "MachineId": format!("{k:032x}"), "RetryCount": 5
            })
            .to_string()
            .into_bytes()
        })
        .collect()
}

/// The fan-out for each N in FAN_OUT against moto directly (at `moto_url`, with `ec2` making
/// the fleet): Go, ec2spot agent off, ec2spot agent on. Returns the table rows and a note per
/// variant that had failures.
pub(crate) async fn measure(
    ec2spot: &Path,
    go: &Path,
    ec2: &aws_sdk_ec2::Client,
    moto_url: &str,
) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for n in FAN_OUT {
        let store = tempfile::tempdir().unwrap();
        let configs = fleet(ec2, n, &store.path().to_string_lossy()).await;
        let direct_env = plugin_env(moto_url, store.path(), false);
        let agent_env = plugin_env(moto_url, store.path(), true);
        // Each run: Go, ec2spot direct, ec2spot with a warm agent (started by one untimed
        // GetURL before the first run).
        let _ = fan_out(ec2spot, Kind::Ec2spot, &agent_env, &configs[..1], None).await;
        let (mut gs, mut ds, mut as_) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..FAN_OUT_RUNS {
            gs.push(fan_out(go, Kind::Go, &direct_env, &configs, None).await);
            ds.push(fan_out(ec2spot, Kind::Ec2spot, &direct_env, &configs, None).await);
            as_.push(
                fan_out(
                    ec2spot,
                    Kind::Ec2spot,
                    &agent_env,
                    &configs,
                    Some(store.path()),
                )
                .await,
            );
        }
        let (g, d, a) = (medians(gs), medians(ds), medians(as_));
        if let Some(pid) = find_agent(store.path()) {
            stop_agent(pid);
        }
        for (what, f) in [
            ("Go", &g),
            ("ec2spot agent off", &d),
            ("ec2spot agent on", &a),
        ] {
            if f.failures > 0 {
                notes.push(format!(
                    "fan-out N={n} {what}: {} of {n} failed (first: {})",
                    f.failures,
                    f.first_error.as_deref().unwrap_or("?")
                ));
            }
        }
        rows.push(Row {
            measure: format!("fan-out N={n}: first exec → last GetURL, agent off"),
            ec2spot: d.wall_ms,
            go: Some(g.wall_ms),
            unit: "ms",
            target: None,
        });
        rows.push(Row {
            measure: format!("fan-out N={n}: first exec → last GetURL, agent on (warm)"),
            ec2spot: a.wall_ms,
            go: Some(g.wall_ms),
            unit: "ms",
            target: None,
        });
        rows.push(Row {
            measure: format!("fan-out N={n}: total RSS of the {n} plugins, agent off"),
            ec2spot: mib(d.rss_kib),
            go: Some(mib(g.rss_kib)),
            unit: "MiB",
            target: Some(0.5),
        });
        rows.push(Row {
            measure: format!(
                "fan-out N={n}: total PSS of the {n} plugins, agent off (shared pages split)"
            ),
            ec2spot: mib(d.pss_kib),
            go: Some(mib(g.pss_kib)),
            unit: "MiB",
            target: None,
        });
        rows.push(Row {
            measure: format!("fan-out N={n}: total RssAnon of the {n} plugins, agent off"),
            ec2spot: mib(d.anon_kib),
            go: Some(mib(g.anon_kib)),
            unit: "MiB",
            target: None,
        });
        rows.push(Row {
            measure: format!("fan-out N={n}: total RSS of the {n} plugins, agent on"),
            ec2spot: mib(a.rss_kib),
            go: Some(mib(g.rss_kib)),
            unit: "MiB",
            target: Some(0.5),
        });
        rows.push(Row {
            measure: format!("fan-out N={n}: {n} plugins + agent RSS, agent on"),
            ec2spot: mib(a.rss_kib + a.agent_rss_kib.unwrap_or(f64::NAN)),
            go: Some(mib(g.rss_kib)),
            unit: "MiB",
            target: Some(0.5),
        });
        let agent_pss = a.agent_pss_kib.unwrap_or(f64::NAN);
        rows.push(Row {
            measure: format!("fan-out N={n}: total PSS of the {n} plugins + the agent, agent on"),
            ec2spot: mib(a.pss_kib + agent_pss),
            go: Some(mib(g.pss_kib)),
            unit: "MiB",
            target: Some(0.5),
        });
        rows.push(Row {
            measure: format!(
                "fan-out N={n}: PSS per plugin with its share of the agent (agent PSS / {n}), agent on"
            ),
            ec2spot: mib((a.pss_kib + agent_pss) / n as f64),
            go: Some(mib(g.pss_kib / n as f64)),
            unit: "MiB",
            target: Some(0.5),
        });
    }
    (rows, notes)
}
