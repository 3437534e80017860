//! The ec2spot demo: drives one machine's whole life through the real plugin protocol, the way
//! docker-machine does (a fresh plugin process per command), against the EC2 endpoint in
//! `AWS_ENDPOINT_URL` — `scripts/demo` starts a local moto for it.
//!
//! Usage: demo <path to docker-machine-driver-ec2spot> [machine name]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ec2spot_plugin::FlagValue;
use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};

struct Demo {
    plugin: PathBuf,
    store: PathBuf,
    name: String,
    start: Instant,
}

impl Demo {
    fn step(&self, what: &str) -> Instant {
        println!(
            "\n[{:6.2}s] $ docker-machine {what}",
            self.start.elapsed().as_secs_f64()
        );
        Instant::now()
    }

    fn done(&self, t: Instant, result: &str) {
        println!("          {result}  ({} ms)", t.elapsed().as_millis());
    }

    async fn plugin(&self) -> PluginProcess {
        let env: Vec<(String, String)> = Vec::new();
        PluginProcess::start(&self.plugin, "ec2spot", &env, Some(Duration::from_secs(5)))
            .await
            .expect("plugin starts")
    }

    fn show_output(&self, p: &PluginProcess) {
        for line in p.stdout_lines() {
            println!("          ({}) {line}", self.name);
        }
    }

    fn config_path(&self) -> PathBuf {
        self.store
            .join("machines")
            .join(&self.name)
            .join("config.json")
    }

    fn save(&self, driver_json: &[u8]) {
        let driver: serde_json::Value = serde_json::from_slice(driver_json).expect("driver JSON");
        // A whole libmachine host, so that a real docker-machine can read the store too.
        let host = serde_json::json!({
            "ConfigVersion": 3,
            "Driver": driver,
            "DriverName": "ec2spot",
            "HostOptions": {
                "Driver": "",
                "Memory": 0,
                "Disk": 0,
                "EngineOptions": {"InstallURL": "https://get.docker.com", "StorageDriver": "", "TlsVerify": true},
                "SwarmOptions": {"IsSwarm": false, "Master": false, "Host": "tcp://0.0.0.0:3376", "Image": "swarm:latest", "Strategy": "spread"},
                "AuthOptions": {
                    "StorePath": self.store.join("machines").join(&self.name),
                    "CertDir": self.store.join("certs"),
                    "CaCertPath": self.store.join("certs/ca.pem"),
                    "ClientCertPath": self.store.join("certs/cert.pem"),
                    "ClientKeyPath": self.store.join("certs/key.pem"),
                    "ServerCertPath": self.store.join("machines").join(&self.name).join("server.pem"),
                    "ServerKeyPath": self.store.join("machines").join(&self.name).join("server-key.pem"),
                }
            },
            "Name": self.name
        });
        std::fs::create_dir_all(self.config_path().parent().unwrap()).unwrap();
        std::fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(&host).unwrap(),
        )
        .unwrap();
    }

    fn saved_driver(&self) -> Vec<u8> {
        let host: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.config_path()).unwrap()).unwrap();
        serde_json::to_vec_pretty(&host["Driver"]).unwrap()
    }

    /// A command on a stored machine: a new plugin process loaded with the saved config.
    async fn load(&self) -> PluginProcess {
        let p = self.plugin().await;
        p.set_config_raw(&self.saved_driver())
            .await
            .expect("SetConfigRaw");
        p
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let plugin = PathBuf::from(
        args.next()
            .expect("usage: demo <plugin binary> [machine name]"),
    );
    let name = args.next().unwrap_or_else(|| "demo-1".into());
    let store = tempfile_dir();
    let d = Demo {
        plugin,
        store,
        name,
        start: Instant::now(),
    };
    println!(
        "ec2spot demo: EC2 at {}, docker-machine store {}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        d.store.display()
    );

    // create: docker-machine's sequence in one plugin process (docker-machine itself would go
    // on to provision the machine over SSH, which an emulator cannot offer).
    let t = d.step(&format!(
        "create -d ec2spot --amazonec2-request-spot-instance --amazonec2-instance-type {TYPES} --amazonec2-use-private-address {}",
        d.name
    ));
    let p = d.plugin().await;
    p.set_config_raw(&create_skeleton(&d.name, d.store.to_str().unwrap()))
        .await
        .unwrap();
    let flags = p.create_flags().await.unwrap();
    println!(
        "          GetCreateFlags: {} amazonec2-* flags",
        flags.len()
    );
    let values = docker_machine_values(
        &flags,
        &[
            ("amazonec2-request-spot-instance", FlagValue::Bool(true)),
            ("amazonec2-instance-type", FlagValue::String(TYPES.into())),
            // As on most runner fleets (and moto gives fleet instances no public address).
            ("amazonec2-use-private-address", FlagValue::Bool(true)),
        ],
    );
    p.set_config_from_flags(&values).await.unwrap();
    if let Err(e) = p.call("PreCreateCheck").await {
        d.show_output(&p);
        eprintln!("Error with pre-create check: {e}");
        std::process::exit(3);
    }
    d.save(&p.config_raw().await.unwrap());
    let created = p.call("Create").await;
    d.show_output(&p);
    if let Err(e) = created {
        eprintln!("Error creating machine: {e}");
        std::process::exit(1);
    }
    d.save(&p.config_raw().await.unwrap());
    let state = p.state().await.unwrap();
    p.close().await;
    d.done(t, &format!("created; state {state}"));

    for cmd in ["status", "url", "ip", "inspect"] {
        let t = d.step(&format!("{cmd} {}", d.name));
        let p = d.load().await;
        let out = match cmd {
            "status" => p.state().await.map(|s| s.to_string()),
            "url" => p.string("GetURL").await,
            "ip" => p.string("GetIP").await,
            _ => p.config_raw().await.map(|raw| {
                let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                format!(
                    "InstanceId={} InstanceType={} Market={} Zone={} AMI={} IPAddress={}",
                    v["InstanceId"].as_str().unwrap_or(""),
                    v["InstanceType"].as_str().unwrap_or(""),
                    v["Market"].as_str().unwrap_or(""),
                    v["Zone"].as_str().unwrap_or(""),
                    v["AMI"].as_str().unwrap_or(""),
                    v["IPAddress"].as_str().unwrap_or("")
                )
            }),
        };
        p.close().await;
        d.done(t, &out.unwrap_or_else(|e| format!("error: {e}")));
    }

    if let Some(dm) = docker_machine() {
        // The commands that need no SSH, by the real docker-machine on the same store.
        for args in [vec!["ls"], vec!["status", &d.name], vec!["url", &d.name]] {
            let t = d.step(&format!("{} (by {})", args.join(" "), dm.join(" ")));
            let out = std::process::Command::new(&dm[0])
                .args(&dm[1..])
                .arg("--storage-path")
                .arg(&d.store)
                .args(&args)
                .env("PATH", path_with_plugin(&d.plugin))
                .output();
            let text = match out {
                Ok(o) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("could not run it: {e}"),
            };
            d.done(t, text.trim_end());
        }
    }

    let t = d.step(&format!("stop {}", d.name));
    let p = d.load().await;
    let out = p.call("Stop").await;
    p.close().await;
    d.done(
        t,
        &match out {
            Ok(_) => "stopped".to_string(),
            Err(e) => format!("refused at once, no AWS call: {e}"),
        },
    );

    let t = d.step(&format!("rm -y {}", d.name));
    let p = d.load().await;
    let removed = p.call("Remove").await;
    d.show_output(&p);
    p.close().await;
    if let Err(e) = removed {
        eprintln!("Error removing host: {e}");
        std::process::exit(1);
    }
    std::fs::remove_dir_all(d.store.join("machines").join(&d.name)).ok();
    d.done(t, "removed");

    let t = d.step("(check) what is left in EC2");
    let left = leftovers().await;
    d.done(
        t,
        &if left.is_empty() {
            "nothing: no instance, key pair, security group, launch template, volume or spot request".to_string()
        } else {
            format!("LEFT: {left:?}")
        },
    );
    std::fs::remove_dir_all(&d.store).ok();
    if !left.is_empty() {
        std::process::exit(1);
    }
}

/// Interchangeable instance types the spot create spreads over.
const TYPES: &str = "t3.micro,t3a.micro,t3.small";

/// The docker-machine to use for the SSH-free commands: `$DOCKER_MACHINE` (a command line),
/// else `docker-machine` on PATH, else none (our protocol client does everything).
fn docker_machine() -> Option<Vec<String>> {
    if let Ok(cmd) = std::env::var("DOCKER_MACHINE") {
        let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        return (!words.is_empty()).then_some(words);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("docker-machine"))
            .find(|p| p.is_file())
            .map(|p| vec![p.to_string_lossy().into_owned()])
    })
}

/// PATH with the plugin's directory first, so docker-machine finds this build.
fn path_with_plugin(plugin: &std::path::Path) -> std::ffi::OsString {
    let dir = std::fs::canonicalize(plugin)
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_default();
    let mut paths = vec![dir];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ec2spot-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn leftovers() -> Vec<String> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let mut left = Vec::new();
    if let Ok(out) = ec2.describe_instances().send().await {
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if state != "terminated" {
                left.push(format!("instance {}", i.instance_id().unwrap_or_default()));
            }
        }
    }
    if let Ok(out) = ec2.describe_key_pairs().send().await {
        left.extend(
            out.key_pairs()
                .iter()
                .map(|k| format!("key pair {}", k.key_name().unwrap_or_default())),
        );
    }
    if let Ok(out) = ec2.describe_security_groups().send().await {
        left.extend(
            out.security_groups()
                .iter()
                .filter(|g| g.group_name() != Some("default"))
                .map(|g| format!("security group {}", g.group_name().unwrap_or_default())),
        );
    }
    if let Ok(out) = ec2.describe_launch_templates().send().await {
        left.extend(out.launch_templates().iter().map(|t| {
            format!(
                "launch template {}",
                t.launch_template_name().unwrap_or_default()
            )
        }));
    }
    if let Ok(out) = ec2.describe_spot_instance_requests().send().await {
        left.extend(
            out.spot_instance_requests()
                .iter()
                .filter(|r| {
                    r.state()
                        .is_some_and(|s| matches!(s.as_str(), "open" | "active"))
                })
                .map(|r| {
                    format!(
                        "spot request {}",
                        r.spot_instance_request_id().unwrap_or_default()
                    )
                }),
        );
    }
    if let Ok(out) = ec2.describe_volumes().send().await {
        left.extend(
            out.volumes()
                .iter()
                .map(|v| format!("volume {}", v.volume_id().unwrap_or_default())),
        );
    }
    left
}
