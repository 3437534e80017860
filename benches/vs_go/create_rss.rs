//! Section 3 of the vs_go bench, peak RSS over a create against moto (through the recording
//! proxy, to count EC2 calls): ec2spot with the agent off, the Go baseline, and ec2spot with the
//! agent on.

use std::path::Path;
use std::time::Instant;

use ec2spot_plugin::FlagValue;
use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};

use crate::procs::{
    AMI, HEARTBEAT, INSTANCE_TYPE, Kind, driver_name, find_agent, plugin_env, stop_agent,
};
use crate::stats::{median, mib, proc_status_kib, pss_kib};
use crate::table::Row;
use ec2spot_testkit::ec2_proxy;

pub(crate) const CREATE_RUNS: usize = 7;

#[derive(Default, Clone)]
struct CreateRss {
    plugin_hwm_kib: Vec<f64>,
    plugin_anon_kib: Vec<f64>,
    plugin_pss_kib: Vec<f64>,
    agent_hwm_kib: Vec<f64>,
    /// The agent's PSS after the create: all of it is this one plugin's share.
    agent_pss_kib: Vec<f64>,
    ec2_calls: Vec<f64>,
    seconds: Vec<f64>,
}

/// One create through the plugin protocol (GetCreateFlags → SetConfigFromFlags →
/// PreCreateCheck → Create) against moto; VmHWM read right before `Close`.
async fn create_once(
    bin: &Path,
    kind: Kind,
    proxy: &ec2_proxy::Ec2Proxy,
    agent: bool,
    name: &str,
    into: &mut CreateRss,
) {
    let store = tempfile::tempdir().expect("store");
    let env = plugin_env(&proxy.url, store.path(), agent);
    proxy.reset_log();
    let t = Instant::now();
    let p = PluginProcess::start(bin, driver_name(kind), &env, Some(HEARTBEAT))
        .await
        .expect("start plugin");
    let store_s = store.path().to_string_lossy();
    p.set_config_raw(&create_skeleton(name, &store_s))
        .await
        .expect("SetConfigRaw");
    let flags = p.create_flags().await.expect("GetCreateFlags");
    let values = docker_machine_values(
        &flags,
        &[
            ("amazonec2-ami", FlagValue::String(AMI.into())),
            (
                "amazonec2-instance-type",
                FlagValue::String(INSTANCE_TYPE.into()),
            ),
            ("amazonec2-region", FlagValue::String("us-east-1".into())),
        ],
    );
    p.set_config_from_flags(&values)
        .await
        .expect("SetConfigFromFlags");
    p.call("PreCreateCheck").await.expect("PreCreateCheck");
    if let Err(e) = p.call("Create").await {
        panic!(
            "{} Create failed: {e}\nstderr: {:?}",
            bin.display(),
            p.stderr_lines()
        );
    }
    into.seconds.push(t.elapsed().as_secs_f64());
    into.ec2_calls.push(proxy.requests().len() as f64);
    let pid = p.pid().expect("pid");
    into.plugin_hwm_kib
        .push(proc_status_kib(pid, "VmHWM").expect("VmHWM") as f64);
    into.plugin_anon_kib
        .push(proc_status_kib(pid, "RssAnon").expect("RssAnon") as f64);
    into.plugin_pss_kib.push(pss_kib(pid).expect("Pss") as f64);
    let agent_pid = if agent && kind == Kind::Ec2spot {
        let pid = find_agent(store.path());
        match pid.and_then(|pid| Some((proc_status_kib(pid, "VmHWM")?, pss_kib(pid)?))) {
            Some((hwm, pss)) => {
                into.agent_hwm_kib.push(hwm as f64);
                into.agent_pss_kib.push(pss as f64);
            }
            None => eprintln!("note: no agent process found for {}", store_s),
        }
        pid
    } else {
        None
    };
    p.close().await;
    if let Some(pid) = agent_pid {
        stop_agent(pid);
    }
}

/// CREATE_RUNS creates of each variant (agent off, Go, agent on, in turn); the table rows
/// (medians).
pub(crate) async fn measure(ec2spot: &Path, go: &Path, proxy: &ec2_proxy::Ec2Proxy) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut direct = CreateRss::default();
    let mut agent = CreateRss::default();
    let mut gocr = CreateRss::default();
    for run in 0..CREATE_RUNS {
        create_once(
            ec2spot,
            Kind::Ec2spot,
            proxy,
            false,
            &format!("direct-{run}"),
            &mut direct,
        )
        .await;
        create_once(go, Kind::Go, proxy, false, &format!("go-{run}"), &mut gocr).await;
        create_once(
            ec2spot,
            Kind::Ec2spot,
            proxy,
            true,
            &format!("agent-{run}"),
            &mut agent,
        )
        .await;
    }
    let go_hwm = mib(median(&gocr.plugin_hwm_kib));
    rows.push(Row {
        measure: "create: plugin peak RSS (VmHWM), agent off".into(),
        ec2spot: mib(median(&direct.plugin_hwm_kib)),
        go: Some(go_hwm),
        unit: "MiB",
        target: Some(0.5),
    });
    rows.push(Row {
        measure: "create: plugin peak RSS (VmHWM), agent on".into(),
        ec2spot: mib(median(&agent.plugin_hwm_kib)),
        go: Some(go_hwm),
        unit: "MiB",
        target: Some(0.5),
    });
    rows.push(Row {
        measure: "create: plugin RssAnon (private, not file-backed) before Close, agent off".into(),
        ec2spot: mib(median(&direct.plugin_anon_kib)),
        go: Some(mib(median(&gocr.plugin_anon_kib))),
        unit: "MiB",
        target: None,
    });
    rows.push(Row {
        measure: "create: agent process peak RSS (fresh agent, one create)".into(),
        ec2spot: mib(median(&agent.agent_hwm_kib)),
        go: None,
        unit: "MiB",
        target: None,
    });
    rows.push(Row {
        measure: "create: plugin + agent peak RSS, agent on".into(),
        ec2spot: mib(median(&agent.plugin_hwm_kib) + median(&agent.agent_hwm_kib)),
        go: Some(go_hwm),
        unit: "MiB",
        target: None,
    });
    rows.push(Row {
        measure: "create: plugin PSS + the agent's share (all of its PSS: it served this one plugin), agent on".into(),
        ec2spot: mib(median(&agent.plugin_pss_kib) + median(&agent.agent_pss_kib)),
        go: Some(mib(median(&gocr.plugin_pss_kib))),
        unit: "MiB",
        target: None,
    });
    rows.push(Row {
        measure: "create: EC2 API calls, agent off".into(),
        ec2spot: median(&direct.ec2_calls),
        go: Some(median(&gocr.ec2_calls)),
        unit: "",
        target: None,
    });
    rows.push(Row {
        measure: "create: wall time (start → Create answered), agent off".into(),
        ec2spot: median(&direct.seconds),
        go: Some(median(&gocr.seconds)),
        unit: "s",
        target: None,
    });
    rows
}
