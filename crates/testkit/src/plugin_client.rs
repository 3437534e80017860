//! The docker-machine side of the plugin contract, in Rust: start a plugin binary exactly as
//! docker-machine does (token in the environment, address on the first stdout line), keep it
//! alive with heartbeats, and call its methods. Used by our tests, benchmarks and demo.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use ec2spot_gob::{Type, Value};
use ec2spot_plugin::wire::{
    flags_from_value, labels_to_value, labels_type, rpc_flags_to_value, rpc_flags_type,
    tls_bootstrap_to_value, tls_bootstrap_type,
};
use ec2spot_plugin::{Flag, FlagValue, FlagValues, State, TlsBootstrap};
use ec2spot_rpc::{Client, ClientError, empty_type};

/// A running plugin process and its connection.
pub struct PluginProcess {
    child: Child,
    client: Arc<Client>,
    /// The address it printed.
    pub address: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Why starting a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binary could not be run.
    #[error("starting the plugin: {0}")]
    Spawn(std::io::Error),
    /// No address line within 10 s.
    #[error("the plugin printed no address within 10 s")]
    NoAddress,
    /// Connecting failed.
    #[error("connecting to the plugin: {0}")]
    Connect(ClientError),
}

const SERVICE: &str = "RPCServerDriver";

impl PluginProcess {
    /// Starts `binary` with `envs` added to this process's environment, as docker-machine does
    /// (`MACHINE_PLUGIN_TOKEN=42`, `MACHINE_PLUGIN_DRIVER_NAME=<driver>`), connects, and
    /// heartbeats every `heartbeat` (docker-machine: 5 s; `None` = never).
    pub async fn start(
        binary: &Path,
        driver_name: &str,
        envs: &[(String, String)],
        heartbeat: Option<Duration>,
    ) -> Result<PluginProcess, StartError> {
        let mut cmd = Command::new(binary);
        cmd.env("MACHINE_PLUGIN_TOKEN", "42")
            .env("MACHINE_PLUGIN_DRIVER_NAME", driver_name)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(StartError::Spawn)?;
        let mut out = BufReader::new(child.stdout.take().expect("piped")).lines();
        let address = tokio::time::timeout(Duration::from_secs(10), out.next_line())
            .await
            .ok()
            .and_then(|l| l.ok().flatten())
            .ok_or(StartError::NoAddress)?
            .trim()
            .to_string();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let so = Arc::clone(&stdout);
        tokio::spawn(async move {
            while let Ok(Some(l)) = out.next_line().await {
                so.lock().expect("lines").push(l);
            }
        });
        let mut err_lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let se = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(l)) = err_lines.next_line().await {
                se.lock().expect("lines").push(l);
            }
        });
        let client = Arc::new(Client::dial(&address).await.map_err(StartError::Connect)?);
        let hb_client = Arc::clone(&client);
        let heartbeat = tokio::spawn(async move {
            let Some(every) = heartbeat else { return };
            loop {
                tokio::time::sleep(every).await;
                if hb_client
                    .call(
                        &format!("{SERVICE}.Heartbeat"),
                        &empty_type(),
                        &Value::empty_struct(),
                    )
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(PluginProcess {
            child,
            client,
            address,
            stdout,
            stderr,
            heartbeat,
        })
    }

    /// The stdout lines after the address (what docker-machine shows as `(machine) line`).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("lines").clone()
    }

    /// The stderr lines (docker-machine's debug output).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("lines").clone()
    }

    /// Stops heartbeating, as a docker-machine that died would (the connection stays open).
    pub fn stop_heartbeats(&self) {
        self.heartbeat.abort();
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Calls `method` with the empty-struct argument.
    pub async fn call(&self, method: &str) -> Result<Value, ClientError> {
        self.call_with(method, &empty_type(), &Value::empty_struct())
            .await
    }

    /// Calls `method` with an argument.
    pub async fn call_with(
        &self,
        method: &str,
        ty: &Type,
        arg: &Value,
    ) -> Result<Value, ClientError> {
        self.client
            .call(&format!("{SERVICE}.{method}"), ty, arg)
            .await
    }

    /// `GetVersion`.
    pub async fn version(&self) -> Result<i64, ClientError> {
        Ok(self.call("GetVersion").await?.as_i64().unwrap_or(-1))
    }

    /// `SetConfigRaw`.
    pub async fn set_config_raw(&self, json: &[u8]) -> Result<(), ClientError> {
        self.call_with("SetConfigRaw", &Type::Bytes, &Value::Bytes(json.to_vec()))
            .await
            .map(|_| ())
    }

    /// `GetConfigRaw`.
    pub async fn config_raw(&self) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .call("GetConfigRaw")
            .await?
            .as_bytes()
            .unwrap_or_default()
            .to_vec())
    }

    /// `GetCreateFlags`.
    pub async fn create_flags(&self) -> Result<Vec<Flag>, ClientError> {
        flags_from_value(&self.call("GetCreateFlags").await?).map_err(ClientError::Io)
    }

    /// `SetConfigFromFlags`.
    pub async fn set_config_from_flags(&self, values: &FlagValues) -> Result<(), ClientError> {
        self.call_with(
            "SetConfigFromFlags",
            &rpc_flags_type(),
            &rpc_flags_to_value(values),
        )
        .await
        .map(|_| ())
    }

    /// `UpdateLabels` (GitLab's fork).
    pub async fn update_labels(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        self.call_with("UpdateLabels", &labels_type(), &labels_to_value(labels))
            .await
            .map(|_| ())
    }

    /// `TLSBootstrapRequested` (GitLab's fork).
    pub async fn tls_bootstrap_requested(&self) -> Result<bool, ClientError> {
        Ok(self
            .call("TLSBootstrapRequested")
            .await?
            .as_bool()
            .unwrap_or(false))
    }

    /// `SetTLSBootstrap` (GitLab's fork).
    pub async fn set_tls_bootstrap(&self, b: &TlsBootstrap) -> Result<(), ClientError> {
        self.call_with(
            "SetTLSBootstrap",
            &tls_bootstrap_type(),
            &tls_bootstrap_to_value(b),
        )
        .await
        .map(|_| ())
    }

    /// A string-returning method (`DriverName`, `GetURL`, `GetIP`, …).
    pub async fn string(&self, method: &str) -> Result<String, ClientError> {
        Ok(self
            .call(method)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// `GetState`.
    pub async fn state(&self) -> Result<State, ClientError> {
        let n = self.call("GetState").await?.as_i64().unwrap_or(0);
        Ok(State::from_wire(n))
    }

    /// `Close`, then waits for the process to exit; returns its exit code.
    pub async fn close(mut self) -> Option<i32> {
        let _ = self.call("Close").await;
        self.heartbeat.abort();
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// Stops heartbeating (as a dead docker-machine would) and waits up to `limit` for the
    /// process to exit on its own; returns its exit code.
    pub async fn abandon(mut self, limit: Duration) -> Option<i32> {
        self.heartbeat.abort();
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub async fn kill(mut self) {
        self.heartbeat.abort();
        let _ = self.child.kill().await;
    }
}

/// Builds the option map docker-machine sends with `SetConfigFromFlags`: every flag's default
/// (bool flags false), docker-machine's own create options, then `overrides`.
pub fn docker_machine_values(flags: &[Flag], overrides: &[(&str, FlagValue)]) -> FlagValues {
    let mut v = FlagValues::default();
    for f in flags {
        let value = match f {
            Flag::String { value, .. } => FlagValue::String(value.clone()),
            Flag::Int { value, .. } => FlagValue::Int(*value),
            Flag::Bool { .. } => FlagValue::Bool(false),
            Flag::StringSlice { value, .. } => FlagValue::StringSlice(value.clone()),
        };
        v.insert(f.name(), value);
    }
    for (k, val) in [
        ("driver", FlagValue::String("ec2spot".into())),
        (
            "engine-install-url",
            FlagValue::String("https://get.docker.com".into()),
        ),
        ("engine-storage-driver", FlagValue::String(String::new())),
        ("swarm", FlagValue::Bool(false)),
        ("swarm-master", FlagValue::Bool(false)),
        ("swarm-host", FlagValue::String("tcp://0.0.0.0:3376".into())),
        ("swarm-discovery", FlagValue::String(String::new())),
        ("swarm-image", FlagValue::String("swarm:latest".into())),
        ("swarm-strategy", FlagValue::String("spread".into())),
        ("swarm-addr", FlagValue::String(String::new())),
        ("swarm-experimental", FlagValue::Bool(false)),
    ] {
        v.insert(k, val);
    }
    for (k, val) in overrides {
        v.insert(*k, val.clone());
    }
    v
}

/// The driver JSON docker-machine sends on create before anything else.
pub fn create_skeleton(machine_name: &str, store_path: &str) -> Vec<u8> {
    serde_json::json!({
        "IPAddress": "", "MachineName": machine_name, "SSHUser": "", "SSHPort": 0, "SSHKeyPath": "",
        "StorePath": store_path, "SwarmMaster": false, "SwarmHost": "", "SwarmDiscovery": ""
    })
    .to_string()
    .into_bytes()
}
