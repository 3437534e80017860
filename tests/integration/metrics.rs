//! What the operator sees: the agent's Prometheus metrics scraped during a run of creates
//! against the test EC2 (a capacity failure and the on-demand fallback, a throttled call, a
//! spot interruption notice), checked by value and by Prometheus's own `promtool`; the
//! Grafana dashboard checked against the metrics the agent exports; and `fleet`, from the
//! agent's cache (no EC2 call) and from EC2.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use ec2spot_testkit::bastion::Bastion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` from the store's agent: the body.
async fn scrape(b: &Bastion) -> String {
    let addr = std::fs::read_to_string(ec2spot_agent::paths::metrics_address(b.store()))
        .expect("the agent notes its metrics address");
    let mut s = tokio::net::TcpStream::connect(addr.trim()).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The samples of a scrape: `name{labels}` (labels as written) → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the sample of `name` whose labels include every one of `labels`; 0 if none.
fn value(s: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .filter(|(k, _)| {
            labels
                .iter()
                .all(|(l, v)| k.contains(&format!("{l}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// Runs `promtool check metrics` on `text`: its complaints (empty when clean).
fn promtool(text: &str) -> String {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool missing: run scripts/setup (it installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        String::new()
    } else {
        said
    }
}

/// The plugin's environment with the agent serving metrics on a port of its choice and a
/// short state TTL.
fn env_metrics(b: &Bastion) -> Vec<(String, String)> {
    let mut env = b.env();
    env.push(("EC2SPOT_AGENT_METRICS".into(), "127.0.0.1:0".into()));
    env.push(("EC2SPOT_AGENT_STATE_TTL".into(), "1s".into()));
    env.push(("EC2SPOT_AGENT_IDLE".into(), "60s".into()));
    env
}

async fn dm_ok(b: &Bastion, env: &[(String, String)], args: &[&str]) -> String {
    let out = b.dm_env(args, env.to_vec()).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Scrapes until `ready` holds of the samples (the agent reads prices in the background).
async fn scrape_until(b: &Bastion, ready: impl Fn(&HashMap<String, f64>) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = scrape(b).await;
        if ready(&samples(&text)) || start.elapsed() > Duration::from_secs(20) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_during_creates_counts_what_the_run_met_and_promtool_accepts_it() {
    let b = Bastion::start().await;
    let env = env_metrics(&b);
    let spot = [
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
    ];
    // m1: no spot capacity in its pool, so on-demand.
    b.proxy
        .fail("RunInstances", 500, "InsufficientInstanceCapacity", 1);
    let m1 = [&spot[..], &["--amazonec2-spot-fallback-on-demand", "m1"]].concat();
    dm_ok(&b, &env, &m1).await;
    // m2: spot, its launch throttled once (the SDK retries it).
    b.proxy.fail("RunInstances", 503, "RequestLimitExceeded", 1);
    dm_ok(&b, &env, &[&spot[..], &["m2"]].concat()).await;
    let zone = b.driver("m2")["Zone"].as_str().unwrap().to_string();
    // m3: on-demand as asked, another instance type.
    let m3 = [
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-instance-type",
        "m5.large",
        "m3",
    ];
    dm_ok(&b, &env, &m3).await;
    assert_eq!(b.driver("m1")["Market"], "on-demand");
    assert_eq!(b.driver("m2")["Market"], "spot");
    assert_eq!(b.driver("m3")["Market"], "on-demand");

    let spot_price = ("ec2spot_spot_price_dollars_per_hour", "t3.micro");
    // Every running machine's pool gets its spot price (m3's too: what spot would cost).
    let text = scrape_until(&b, |s| {
        ["t3.micro", "m5.large"]
            .iter()
            .all(|t| value(s, spot_price.0, &[("instance_type", t)]) > 0.0)
    })
    .await;
    println!("{text}");
    assert_eq!(promtool(&text), "", "promtool check metrics");
    let s = samples(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&s, name, labels);
    let runs = "ec2spot_ec2_requests_total";
    let run = |outcome| v(runs, &[("action", "RunInstances"), ("outcome", outcome)]);
    assert_eq!(run("InsufficientInstanceCapacity"), 1.0);
    assert_eq!(run("throttled"), 1.0);
    assert_eq!(run("ok"), 3.0);
    assert_eq!(
        v(
            runs,
            &[("action", "DescribeSpotPriceHistory"), ("outcome", "ok")]
        ),
        2.0,
        "one price read for each of the two pools"
    );
    let pool = [("instance_type", "t3.micro"), ("zone", zone.as_str())];
    let creates = "ec2spot_creates_total";
    let created = |market| {
        v(
            creates,
            &[&[("market", market), ("outcome", "ok")], &pool[..]].concat(),
        )
    };
    assert_eq!(created("fallback"), 1.0);
    assert_eq!(created("spot"), 1.0);
    let m5 = [("instance_type", "m5.large"), ("zone", zone.as_str())];
    let on_demand = [&[("market", "on-demand"), ("outcome", "ok")], &m5[..]].concat();
    assert_eq!(v(creates, &on_demand), 1.0);
    assert_eq!(v(creates, &[]), 3.0);
    assert_eq!(
        v(
            "ec2spot_capacity_failures_total",
            &[
                &[("market", "spot"), ("code", "InsufficientInstanceCapacity")],
                &pool[..]
            ]
            .concat()
        ),
        1.0
    );
    assert_eq!(
        v(
            "ec2spot_create_duration_seconds_count",
            &[("outcome", "ok")]
        ),
        3.0
    );
    assert_eq!(v("ec2spot_machines", &[("state", "running")]), 3.0);
    assert_eq!(v("ec2spot_running_machines", &[("market", "spot")]), 1.0);
    assert_eq!(
        v("ec2spot_running_machines", &[("market", "on-demand")]),
        2.0
    );
    // moto's spot price history answers 0.00001 for every pool; t3.micro costs 0.0104
    // on-demand in us-east-1 (the agent's table).
    assert_eq!(v(spot_price.0, &pool), 0.00001);
    assert_eq!(
        v("ec2spot_on_demand_price_dollars_per_hour", &pool),
        0.0104 * 1.0
    );
    assert_eq!(v("ec2spot_on_demand_price_dollars_per_hour", &m5), 0.096);
    let cost = v("ec2spot_fleet_cost_dollars_per_hour", &[]);
    assert!((cost - (0.0104 + 0.00001 + 0.096)).abs() < 1e-9, "{cost}");
    // The saving is over spot machines only: m3 asked for on-demand.
    let saving = v("ec2spot_fleet_saving_dollars_per_hour", &[]);
    assert!((saving - (0.0104 - 0.00001)).abs() < 1e-9, "{saving}");
    assert_eq!(v("ec2spot_unpriced_machines", &[]), 0.0);
    assert!(v("ec2spot_state_answers_total", &[("answer", "fresh")]) >= 1.0);
    assert!(
        !text.contains("m1") && !text.contains("m2") && !text.contains("\"m3\""),
        "no machine names"
    );
    // Every query of the Grafana dashboard names a metric this agent exports.
    let exported = exported(&text);
    for name in dashboard_metrics() {
        assert!(exported.contains(&name), "the dashboard asks for {name}");
    }

    // fleet, the agent running: from its cache, no EC2 call.
    b.proxy.reset_log();
    let cached = fleet(&b).await;
    println!("{cached}");
    assert_eq!(
        b.proxy.requests().len(),
        0,
        "no EC2 call: {:?}",
        b.proxy.actions()
    );
    assert_eq!(cached["source"], "the agent's cache");
    let rows = cached["machines"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (&rows[0]["name"], &rows[0]["state"], &rows[0]["market"]),
        (&"m1".into(), &"running".into(), &"on-demand".into())
    );
    assert_eq!(rows[0]["price_per_hour"], 0.0104);
    assert_eq!(
        (&rows[1]["name"], &rows[1]["market"]),
        (&"m2".into(), &"spot".into())
    );
    assert_eq!(rows[1]["price_per_hour"], 0.00001);
    assert_eq!(rows[1]["zone"], zone.as_str());
    assert!(rows[1]["interruption"].is_null());
    assert_eq!(
        (
            &rows[2]["name"],
            &rows[2]["market"],
            &rows[2]["instance_type"]
        ),
        (&"m3".into(), &"on-demand".into(), &"m5.large".into())
    );
    assert_eq!(rows[2]["price_per_hour"], 0.096);
    let table = b.cli(&["fleet"], &[]).await;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    println!("{table}");
    assert!(table.contains("NAME  STATE"), "{table}");

    // m2 is marked for interruption (EC2's recorded answers), seen by the next state read.
    dm_ok(&b, &env, &["rm", "-y", "m1", "m3"]).await;
    interrupt(&b, "m2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dm_ok(&b, &env, &["status", "m2"]).await.trim(), "Stopping");
    let text = scrape(&b).await;
    assert_eq!(promtool(&text), "", "promtool check metrics");
    let s = samples(&text);
    assert_eq!(
        value(&s, "ec2spot_spot_interruption_notices_total", &[]),
        1.0
    );

    // fleet without an agent (stopped, and none started for it): from EC2, one read for the
    // machine and one spot price read for its pool.
    let agent = ec2spot_agent::client::AgentClient::connect_running(b.store())
        .await
        .unwrap();
    let pid = agent.status().await.unwrap().pid;
    drop(agent);
    // SAFETY: a plain signal to the agent this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(gone.elapsed() < Duration::from_secs(30), "the agent exits");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.proxy.reset_log();
    let from_ec2 = fleet(&b).await;
    println!("{from_ec2}");
    assert_ne!(from_ec2["source"], "the agent's cache");
    let rows = from_ec2["machines"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (&rows[0]["name"], &rows[0]["market"], &rows[0]["state"]),
        (&"m2".into(), &"spot".into(), &"running".into())
    );
    assert_eq!(rows[0]["interruption"], "marked-for-termination");
    assert_eq!(rows[0]["price_per_hour"], 0.00001);
    let actions = b.proxy.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "DescribeInstances").count(),
        1,
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "DescribeSpotPriceHistory"),
        "{actions:?}"
    );
    b.proxy.clear();
    dm_ok(&b, &env, &["rm", "-y", "m2"]).await;
}

/// Makes the test EC2 answer, for `machine`'s instance, what EC2 answers once AWS marked its
/// spot request for termination (tests/fixtures/ec2).
async fn interrupt(b: &Bastion, machine: &str) {
    let id = b.driver(machine)["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let sir = "sir-0a1b2c3d4e5f67890".to_string();
    let vars = crate::spot::as_ec2_shows(b, &id, &sir).await;
    crate::spot::answer_marked_for_termination(
        b,
        [(id, vars.clone())].into(),
        [(sir, vars)].into(),
    );
}

/// `fleet --json` on the bastion's store.
async fn fleet(b: &Bastion) -> serde_json::Value {
    let out = b.cli(&["fleet", "--json"], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The metric names a scrape declares (`# TYPE name kind`), with a histogram's series.
fn exported(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            out.push(name.to_string());
            if kind == "histogram" {
                for s in ["_bucket", "_count", "_sum"] {
                    out.push(format!("{name}{s}"));
                }
            }
        }
    }
    out
}

/// The shipped Grafana dashboard.
fn dashboard() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana/ec2spot.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("JSON")
}

/// The metric names the dashboard's queries use: the identifiers of each PromQL expression
/// that are ec2spot's (PromQL's functions, keywords and label names are not).
fn dashboard_metrics() -> Vec<String> {
    let mut names = Vec::new();
    for p in dashboard()["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            // Label matchers' values are quoted: drop them first.
            let unquoted: String = expr.split('"').step_by(2).collect::<Vec<_>>().join(" ");
            let words =
                unquoted.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            for w in words.filter(|w| w.starts_with("ec2spot_")) {
                if !names.contains(&w.to_string()) {
                    names.push(w.to_string());
                }
            }
        }
    }
    names
}

/// The dashboard is Grafana dashboard JSON as Grafana's "JSON model" page describes it
/// (<https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/>):
/// the dashboard fields, and panels each with a unique id, a type, a grid position within
/// the 24 columns, a Prometheus data source (the import's input) and queries with a refId
/// and an expression; what it shows covers the list.
#[test]
fn the_dashboard_is_grafana_dashboard_json_over_the_agents_metrics() {
    let d = dashboard();
    for field in [
        "title",
        "uid",
        "schemaVersion",
        "panels",
        "time",
        "templating",
        "annotations",
    ] {
        assert!(!d[field].is_null(), "dashboard field {field}");
    }
    assert!(d["schemaVersion"].as_u64().unwrap() >= 30);
    assert!(d["uid"].as_str().unwrap().len() <= 40);
    let input = &d["__inputs"][0];
    assert_eq!(
        (&input["type"], &input["pluginId"]),
        (&"datasource".into(), &"prometheus".into())
    );
    let var = format!("${{{}}}", input["name"].as_str().unwrap());
    let mut ids = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        let id = p["id"].as_u64().expect("panel id");
        assert!(!ids.contains(&id), "panel ids are unique");
        ids.push(id);
        assert!(
            ["stat", "timeseries", "table", "gauge", "bargauge"]
                .contains(&p["type"].as_str().unwrap())
        );
        assert!(!p["title"].as_str().unwrap().is_empty());
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(x + w <= 24 && g["h"].as_u64().unwrap() > 0 && !g["y"].is_null());
        assert_eq!(p["datasource"]["type"], "prometheus");
        assert_eq!(p["datasource"]["uid"], var.as_str());
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}: queries", p["title"]);
        for t in targets {
            assert!(t["refId"].is_string() && t["expr"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    let names = dashboard_metrics();
    for wanted in [
        "ec2spot_creates_total",
        "ec2spot_capacity_failures_total",
        "ec2spot_ec2_requests_total",
        "ec2spot_ec2_pacing_wait_seconds_total",
        "ec2spot_running_machines",
        "ec2spot_spot_interruption_notices_total",
        "ec2spot_fleet_cost_dollars_per_hour",
        "ec2spot_fleet_saving_dollars_per_hour",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "the dashboard shows {wanted}"
        );
    }
}
