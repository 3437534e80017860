//! The `RPCServerDriver` method table: decodes each call's argument, runs the matching
//! [`Driver`] method and encodes the reply as docker-machine's Go client expects it.

use std::sync::Arc;

use tokio::sync::{Mutex, watch};

use super::wire::{
    flags_to_value, flags_type, labels_from_value, rpc_flags_from_value, tls_bootstrap_from_value,
};
use super::{API_VERSION, Driver, DriverResult};
use ec2spot_gob::{Type, Value};
use ec2spot_rpc::{Reply, ReplyFuture, Service};

/// The names the driver is registered under: current (`RPCServerDriver`) and pre-0.5.1.
pub const SERVICE_NAMES: [&str; 2] = ["RPCServerDriver", "RpcServerDriver"];

/// Every method docker-machine's client can call (its `Upgrade` constant has no server side),
/// GitLab's fork's three last.
pub const METHODS: [&str; 26] = [
    "Close",
    "GetCreateFlags",
    "GetMachineName",
    "GetConfigRaw",
    "SetConfigRaw",
    "SetConfigFromFlags",
    "GetVersion",
    "DriverName",
    "GetURL",
    "GetIP",
    "GetSSHHostname",
    "GetSSHKeyPath",
    "GetSSHPort",
    "GetSSHUsername",
    "GetState",
    "PreCreateCheck",
    "Create",
    "Remove",
    "Start",
    "Stop",
    "Restart",
    "Kill",
    "Heartbeat",
    "UpdateLabels",
    "TLSBootstrapRequested",
    "SetTLSBootstrap",
];

/// Serves a [`Driver`] as docker-machine's `RPCServerDriver`.
pub struct DriverService<D> {
    driver: Arc<Mutex<D>>,
    heartbeats: watch::Sender<u64>,
}

impl<D: Driver> DriverService<D> {
    /// Wraps `driver`; every `Heartbeat` call bumps `heartbeats`.
    pub fn new(driver: D, heartbeats: watch::Sender<u64>) -> Self {
        DriverService {
            driver: Arc::new(Mutex::new(driver)),
            heartbeats,
        }
    }
}

fn string(r: DriverResult<String>) -> Reply {
    match r {
        Ok(s) => Reply::ok(Type::String, Value::String(s)),
        Err(e) => Reply::error(e.0),
    }
}

fn int(r: DriverResult<i64>) -> Reply {
    match r {
        Ok(i) => Reply::ok(Type::Int, Value::Int(i)),
        Err(e) => Reply::error(e.0),
    }
}

fn void(r: DriverResult<()>) -> Reply {
    match r {
        Ok(()) => Reply::void(),
        Err(e) => Reply::error(e.0),
    }
}

impl<D: Driver> Service for DriverService<D> {
    fn has_method(&self, method: &str) -> bool {
        METHODS.contains(&method)
    }

    fn call(&self, method: &str, arg: Value) -> ReplyFuture {
        let driver = Arc::clone(&self.driver);
        let method = method.to_string();
        // Checked here, not in the future, so a heartbeat is recorded the moment it is read.
        if method == "Heartbeat" && matches!(arg, Value::Struct(_)) {
            self.heartbeats.send_modify(|n| *n += 1);
        }
        Box::pin(async move {
            match method.as_str() {
                "SetConfigRaw" => {
                    let Value::Bytes(json) = arg else {
                        return Reply::error(format!(
                            "gob: decoding into local type []uint8, received remote type {}",
                            arg.kind()
                        ));
                    };
                    void(driver.lock().await.set_config_raw(&json))
                }
                "SetConfigFromFlags" => match rpc_flags_from_value(&arg) {
                    Ok(flags) => void(driver.lock().await.set_config_from_flags(&flags)),
                    Err(e) => Reply::error(e),
                },
                "UpdateLabels" => match labels_from_value(&arg) {
                    Ok(labels) => void(driver.lock().await.update_labels(&labels).await),
                    Err(e) => Reply::error(e),
                },
                "SetTLSBootstrap" => match tls_bootstrap_from_value(&arg) {
                    Ok(b) => void(driver.lock().await.set_tls_bootstrap(b)),
                    Err(e) => Reply::error(e),
                },
                _ if !matches!(arg, Value::Struct(_)) => Reply::error(
                    "gob: type mismatch in decoder: want struct type struct {}; got non-struct",
                ),
                "GetVersion" => Reply::ok(Type::Int, Value::Int(API_VERSION)),
                "TLSBootstrapRequested" => match driver.lock().await.tls_bootstrap_requested() {
                    Ok(b) => Reply::ok(Type::Bool, Value::Bool(b)),
                    Err(e) => Reply::error(e.0),
                },
                "Heartbeat" => Reply::void(),
                "Close" => Reply {
                    close_after: true,
                    ..Reply::void()
                },
                "GetCreateFlags" => {
                    let flags = driver.lock().await.create_flags();
                    Reply::ok(flags_type(), flags_to_value(&flags))
                }
                "GetConfigRaw" => match driver.lock().await.config_raw() {
                    Ok(json) => Reply::ok(Type::Bytes, Value::Bytes(json)),
                    Err(e) => Reply::error(e.0),
                },
                "DriverName" => string(Ok(driver.lock().await.driver_name())),
                "GetMachineName" => string(Ok(driver.lock().await.machine_name())),
                "GetSSHKeyPath" => string(Ok(driver.lock().await.ssh_key_path())),
                "GetSSHUsername" => string(Ok(driver.lock().await.ssh_username())),
                "GetSSHPort" => int(driver.lock().await.ssh_port()),
                "GetURL" => string(driver.lock().await.url().await),
                "GetIP" => string(driver.lock().await.ip().await),
                "GetSSHHostname" => string(driver.lock().await.ssh_hostname().await),
                "GetState" => int(driver.lock().await.state().await.map(|s| s.wire())),
                "PreCreateCheck" => void(driver.lock().await.pre_create_check().await),
                "Create" => void(driver.lock().await.create().await),
                "Remove" => void(driver.lock().await.remove().await),
                "Start" => void(driver.lock().await.start().await),
                "Stop" => void(driver.lock().await.stop().await),
                "Restart" => void(driver.lock().await.restart().await),
                "Kill" => void(driver.lock().await.kill().await),
                other => Reply::error(format!("rpc: can't find method {other}")),
            }
        })
    }
}
