//! The plugin seen from Go: `dmclient` (tests/go/dmclient) starts
//! docker-machine-driver-ec2spot exactly as docker-machine does and talks to
//! it through Go's own `net/rpc` and `encoding/gob`, with the gob type names
//! docker-machine registers. These tests hold the plugin to what the stock
//! docker-machine expects (shared/wire/PROTOCOL.md) and to amazonec2's
//! create flags as recorded from the real driver.

use ec2spot_testkit::goclient;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::PLUGIN;

/// amazonec2's GetCreateFlags reply as recorded from the real driver
/// (copy of the reply in shared/wire/console/goclient-conformance-amazonec2.json).
const RECORDED_FLAGS: &str = include_str!("../go/testdata/amazonec2-create-flags.json");

/// docker-machine's own create flags that are always in the
/// SetConfigFromFlags map (string slices only when given).
const DOCKER_MACHINE_KEYS: &[&str] = &[
    "driver",
    "engine-install-url",
    "engine-storage-driver",
    "swarm",
    "swarm-master",
    "swarm-host",
    "swarm-discovery",
    "swarm-image",
    "swarm-strategy",
    "swarm-addr",
    "swarm-experimental",
];

/// The BaseDriver keys every Go driver keeps at the top of its JSON.
const BASE_DRIVER_KEYS: &[&str] = &[
    "IPAddress",
    "MachineName",
    "SSHUser",
    "SSHPort",
    "SSHKeyPath",
    "StorePath",
    "SwarmMaster",
    "SwarmHost",
    "SwarmDiscovery",
];

/// Environment for every plugin run: fixed credentials and no instance
/// metadata look-ups, so nothing leaves this machine.
fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/ec2spot-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ec2spot-test/credentials",
        ),
    ]
}

/// SetConfigFromFlags overrides for the tour: enough for PreCreateCheck to
/// go to the (blackhole) EC2 endpoint; the endpoint before that is a closed
/// local port.
fn tour_flags() -> Value {
    json!({
        "amazonec2-access-key": "testing",
        "amazonec2-secret-key": "testing",
        "amazonec2-region": "us-east-1",
        "amazonec2-vpc-id": "vpc-0123456789abcdef0",
        "amazonec2-subnet-id": "subnet-0123456789abcdef0",
        "amazonec2-ami": "ami-0123456789abcdef0",
        "amazonec2-endpoint": "http://127.0.0.1:9"
    })
}

/// The conformance report, produced once per test process.
fn tour() -> &'static Value {
    static TOUR: OnceLock<Value> = OnceLock::new();
    TOUR.get_or_init(|| {
        let store = tempfile::Builder::new()
            .prefix("ec2spot-conformance-")
            .tempdir()
            .expect("temp dir");
        let store_arg = store.path().to_str().expect("utf-8 temp path").to_string();
        let flags = tour_flags().to_string();
        let args = [
            "conformance",
            "-exec",
            PLUGIN,
            "-driver",
            "ec2spot",
            "-store",
            &store_arg,
            "-flags",
            &flags,
        ];
        let (report, output) = goclient::run_dmclient_json(args, &aws_env());
        if let Some(fatal) = report.get("fatal").and_then(Value::as_str) {
            panic!(
                "conformance tour aborted: {fatal}\nreport: {report:#}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        report
    })
}

/// The first step of the tour with this method label.
fn step<'a>(report: &'a Value, method: &str) -> &'a Value {
    steps(report, method)
        .next()
        .unwrap_or_else(|| panic!("no step {method} in {report:#}"))
}

fn steps<'a>(report: &'a Value, method: &str) -> impl Iterator<Item = &'a Value> + use<'a> {
    let method = method.to_string();
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(move |s| s["method"] == method.as_str())
}

fn assert_ok(step: &Value) -> &Value {
    assert!(step["error"].is_null(), "step failed: {step:#}");
    &step["reply"]
}

fn assert_server_error(report: &Value, method: &str, text: &str) {
    let s = step(report, method);
    assert_eq!(s["error"], text, "{method}: {s:#}");
    assert_eq!(
        s["error_type"], "server",
        "{method} must be an rpc.ServerError: {s:#}"
    );
}

/// The wire type of a recorded flag, from the shape of its JSON.
fn recorded_type(flag: &Value) -> &'static str {
    match flag.get("Value") {
        None => "bool",
        Some(Value::String(_)) => "string",
        Some(Value::Number(_)) => "int",
        Some(Value::Array(_)) | Some(Value::Null) => "stringslice",
        Some(other) => panic!("unexpected recorded value {other}"),
    }
}

fn recorded_flags() -> Vec<Value> {
    serde_json::from_str(RECORDED_FLAGS).expect("recorded flags JSON")
}

#[test]
fn recorded_flags_copy_matches_the_recording() {
    let recording =
        goclient::repo_root().join("../shared/wire/console/goclient-conformance-amazonec2.json");
    let Ok(text) = std::fs::read_to_string(&recording) else {
        eprintln!(
            "{} not present; skipping the comparison",
            recording.display()
        );
        return;
    };
    let report: Value = serde_json::from_str(&text).expect("recording JSON");
    let reply = &step(&report, "GetCreateFlags")["reply"];
    assert_eq!(reply, &Value::Array(recorded_flags()));
    assert_eq!(recorded_flags().len(), 32);
}

#[test]
fn bare_run_without_token_prints_the_plugin_notice() {
    let mut cmd = Command::new(PLUGIN);
    cmd.env_remove("MACHINE_PLUGIN_TOKEN");
    let out = goclient::output_with_timeout(cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "This is a Docker Machine plugin binary.\n\
             Plugin binaries are not intended to be invoked directly.\n\
             Please use this plugin through the main 'docker-machine' binary.\n\
             (API version: 1)\n"
        ),
        "stderr: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing may go to stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn version_and_help_options() {
    let mut cmd = Command::new(PLUGIN);
    cmd.arg("--version").env_remove("MACHINE_PLUGIN_TOKEN");
    let out = goclient::output_with_timeout(cmd, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--version: {out:?}");
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version: {stdout}"
    );

    let mut cmd = Command::new(PLUGIN);
    cmd.arg("--help").env_remove("MACHINE_PLUGIN_TOKEN");
    let out = goclient::output_with_timeout(cmd, Duration::from_secs(20));
    let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success(), "--help: {out:?}");
    assert!(
        help.contains("docker-machine"),
        "--help must mention docker-machine: {help}"
    );
    assert!(
        help.contains("gitlab-runner") || help.contains("gitlab runner"),
        "--help must mention gitlab-runner: {help}"
    );
}

#[test]
fn handshake_and_identity() {
    let r = tour();
    assert!(r["exec_to_address_ms"].as_f64().unwrap() < 10_000.0);
    assert_eq!(assert_ok(step(r, "GetVersion")), 1);
    assert_ok(step(r, "SetConfigRaw"));
    assert_eq!(assert_ok(step(r, "GetMachineName")), "conf1");
    assert_eq!(
        assert_ok(step(r, "DriverName")),
        "ec2spot",
        "DriverName must be the binary's suffix"
    );
}

#[test]
fn create_flags_are_amazonec2_flags_with_documented_differences() {
    let r = tour();
    assert_ok(step(r, "GetCreateFlags"));
    let ours = r["create_flags"].as_array().expect("create_flags");
    let find = |name: &str| ours.iter().find(|f| f["name"] == name);

    // Where our defaults differ from amazonec2's, on purpose; any other
    // difference fails.
    let differences = [
        ("amazonec2-spot-price", json!("")),
        ("amazonec2-volume-type", json!("gp3")),
        ("amazonec2-instance-type", json!("t3.micro")),
        ("amazonec2-zone", json!("")),
    ];
    let mut problems = Vec::new();
    for rec in recorded_flags() {
        let name = rec["Name"].as_str().unwrap();
        let Some(f) = find(name) else {
            problems.push(format!("{name}: missing"));
            continue;
        };
        let want_type = recorded_type(&rec);
        if f["type"] != want_type {
            problems.push(format!(
                "{name}: type {} (amazonec2: {want_type})",
                f["type"]
            ));
        }
        if f["envvar"] != rec["EnvVar"] {
            problems.push(format!(
                "{name}: EnvVar {} (amazonec2: {})",
                f["envvar"], rec["EnvVar"]
            ));
        }
        if f["usage"] != rec["Usage"] {
            problems.push(format!(
                "{name}: Usage {} (amazonec2: {})",
                f["usage"], rec["Usage"]
            ));
        }
        let recorded_default = rec.get("Value").cloned().unwrap_or(Value::Null);
        let (want, source) = match differences.iter().find(|(n, _)| *n == name) {
            Some((_, documented)) => (documented.clone(), "documented difference"),
            None => (recorded_default, "amazonec2"),
        };
        if f["value"] != want {
            problems.push(format!("{name}: default {} ({source}: {want})", f["value"]));
        }
    }
    // GitLab's fork flags and ours.
    for (name, ty, default) in [
        ("amazonec2-metadata-token", "string", json!("required")),
        (
            "amazonec2-metadata-token-response-hop-limit",
            "int",
            json!(2),
        ),
        ("amazonec2-volume-encrypted", "bool", Value::Null),
        ("amazonec2-volume-kms-key", "string", json!("")),
        ("amazonec2-spot-fallback-on-demand", "bool", Value::Null),
        (
            "amazonec2-spot-allocation-strategy",
            "string",
            json!("price-capacity-optimized"),
        ),
    ] {
        match find(name) {
            None => problems.push(format!("{name}: missing")),
            Some(f) => {
                if f["type"] != ty || f["value"] != default {
                    problems.push(format!(
                        "{name}: {} {} (want {ty} {default})",
                        f["type"], f["value"]
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "create flags differ from amazonec2's:\n{}",
        problems.join("\n")
    );
}

#[test]
fn set_config_from_flags_takes_docker_machines_map() {
    let r = tour();
    assert_ok(step(r, "SetConfigFromFlags"));
    let scff = &r["set_config_from_flags"];
    let flags = r["create_flags"].as_array().unwrap().len();
    // Every plugin flag plus docker-machine's 11 (43 for amazonec2's 32).
    assert_eq!(
        scff["entries"],
        flags + DOCKER_MACHINE_KEYS.len(),
        "{scff:#}"
    );
    for key in DOCKER_MACHINE_KEYS {
        assert!(
            scff["values"].get(key).is_some(),
            "{key} missing from {scff:#}"
        );
    }
    assert_eq!(scff["values"]["driver"], "ec2spot");
}

#[test]
fn driver_json_keeps_base_driver_keys_and_round_trips() {
    let r = tour();
    let raw = &r["config_raw"];
    assert!(raw.is_object(), "GetConfigRaw must be a JSON object: {r:#}");
    for key in BASE_DRIVER_KEYS {
        assert!(
            raw.get(key).is_some(),
            "{key} missing at the top level of {raw:#}"
        );
    }
    assert_eq!(raw["MachineName"], "conf1");
    assert_eq!(raw["StorePath"], r["store"]);
    let rt = &r["config_roundtrip"];
    assert!(rt["error"].is_null(), "{rt:#}");
    assert_eq!(
        rt["equal"], true,
        "SetConfigRaw(config.json form) then GetConfigRaw changed the JSON: {rt:#}"
    );
}

#[test]
fn ssh_getters() {
    let r = tour();
    let key = Path::new(r["store"].as_str().unwrap())
        .join("machines")
        .join("conf1")
        .join("id_rsa");
    assert_eq!(assert_ok(step(r, "GetSSHKeyPath")), key.to_str().unwrap());
    assert_eq!(assert_ok(step(r, "GetSSHPort")), 22);
    assert_eq!(assert_ok(step(r, "GetSSHUsername")), "ubuntu");
    assert_ok(step(r, "Heartbeat"));
}

#[test]
fn bad_requests_get_go_net_rpc_errors_and_the_connection_survives() {
    let r = tour();
    assert_server_error(
        r,
        "RPCServerDriver.Upgrade",
        "rpc: can't find method RPCServerDriver.Upgrade",
    );
    assert_server_error(
        r,
        "NoSuchService.GetVersion",
        "rpc: can't find service NoSuchService.GetVersion",
    );
    assert_server_error(r, "nodot", "rpc: service/method request ill-formed: nodot");
    assert_server_error(
        r,
        "RPCServerDriver.GetVersion (string argument)",
        "gob: type mismatch in decoder: want struct type struct {}; got non-struct",
    );
    assert_eq!(
        assert_ok(step(r, "RpcServerDriver.GetVersion")),
        1,
        "the pre-0.5.1 service name must work"
    );
    let last = steps(r, "GetVersion").last().unwrap();
    assert_eq!(
        assert_ok(last),
        1,
        "connection unusable after the error cases"
    );
}

#[test]
fn heartbeats_are_answered_during_a_slow_call() {
    let r = tour();
    assert_ok(step(r, "SetConfigFromFlags (blackhole endpoint)"));
    let slow = &r["slow_call"];
    assert!(
        slow["finished_error"].is_null() && slow["finished_after_ms"].is_null(),
        "PreCreateCheck against an endpoint that never answers returned after {} ms \
         (error: {}) instead of staying pending",
        slow["finished_after_ms"],
        slow["finished_error"]
    );
    let beats = slow["heartbeats"].as_array().unwrap();
    assert_eq!(beats.len(), 5, "{slow:#}");
    for b in beats {
        assert!(b["error"].is_null(), "heartbeat failed: {slow:#}");
        assert_eq!(
            b["slow_call_pending"], true,
            "PreCreateCheck did not stay pending: {slow:#}"
        );
    }
    assert!(
        slow["max_heartbeat_ms"].as_f64().unwrap() < 500.0,
        "{slow:#}"
    );
    assert_eq!(slow["still_pending"], true, "{slow:#}");
}

#[test]
fn close_ends_the_plugin_with_status_0() {
    let r = tour();
    let close = &r["close"];
    assert_eq!(
        close["exited"], true,
        "plugin still running 10 s after Close: {close:#}"
    );
    assert_eq!(close["exit_code"], 0, "{close:#}");
    let ms = close["exit_after_close_reply_ms"].as_f64().unwrap();
    assert!(ms < 2000.0, "plugin exited {ms} ms after the Close reply");
}

#[test]
fn watchdog_ends_a_plugin_without_heartbeats() {
    let (r, _) = goclient::run_dmclient_json(
        ["watchdog", "-exec", PLUGIN, "-driver", "ec2spot"],
        &aws_env(),
    );
    assert!(r.get("fatal").is_none(), "{r:#}");
    assert_eq!(r["get_version"], 1, "{r:#}");
    assert_eq!(r["exited"], true, "{r:#}");
    assert_eq!(r["exit_code"], 1, "{r:#}");
    let s = r["exit_after_address_s"].as_f64().unwrap();
    assert!(
        (9.5..=11.5).contains(&s),
        "exited {s} s after the address line"
    );
}

/// docker-machine exits after an error without calling Close: the plugin
/// loses its client and its stdout/stderr readers, and only its watchdog can
/// end it (PROTOCOL.md 1.7).
#[test]
fn watchdog_ends_a_plugin_whose_docker_machine_is_gone() {
    let (r, _) = goclient::run_dmclient_json(
        [
            "watchdog", "-orphan", "-timeout", "15s", "-exec", PLUGIN, "-driver", "ec2spot",
        ],
        &aws_env(),
    );
    assert!(r.get("fatal").is_none(), "{r:#}");
    assert_eq!(
        r["exited"], true,
        "plugin still running 15 s after its client and output pipes went away: {r:#}"
    );
    assert_eq!(r["exit_code"], 1, "{r:#}");
    let s = r["exit_after_address_s"].as_f64().unwrap();
    assert!(
        (9.5..=11.5).contains(&s),
        "exited {s} s after the address line"
    );
}

#[test]
fn startup_prints_the_address_quickly() {
    let (r, _) = goclient::run_dmclient_json(
        ["startup", "-exec", PLUGIN, "-driver", "ec2spot", "-n", "5"],
        &aws_env(),
    );
    assert_eq!(r["failures"], json!([]), "{r:#}");
    assert!(
        r["exit_codes"].as_array().unwrap().iter().all(|c| c == 0),
        "Close must end each plugin with 0: {r:#}"
    );
    // Generous: a debug build on a busy CI machine (the Go plugin: ~5 ms).
    assert!(r["p50_ms"].as_f64().unwrap() < 1000.0, "{r:#}");
}

#[test]
fn dm_version_runs() {
    let out = goclient::run_dmclient(["dm", "version"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("docker-machine version "),
        "{out:?}"
    );
}

#[test]
fn dm_create_with_unknown_driver_fails_like_docker_machine() {
    let store = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = goclient::run_dm(store.path(), empty.path(), ["create", "-d", "x", "m1"], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Driver \"x\" not found. Do you have the plugin binary \"docker-machine-driver-x\" accessible in your PATH?\n"
    );
    assert!(!store.path().join("machines").join("m1").exists());
}
