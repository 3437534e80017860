//! The contract between the plugin protocol and a machine driver: what docker-machine asks of
//! a driver, without any gob or RPC in sight.

use std::collections::BTreeMap;
use std::future::Future;

use ec2spot_redact::{ByteCount, SecretBytes};

use super::{Flag, FlagValues, State};

/// The error text of GitLab's fork for a driver without labels (`drivers.ErrLabelsNotSupported`).
pub const LABELS_NOT_SUPPORTED: &str = "driver does not support labels";

/// The error text of GitLab's fork for a driver that cannot deliver the TLS bootstrap
/// (`drivers.ErrTLSBootstrapNotSupported`).
pub const TLS_BOOTSTRAP_NOT_SUPPORTED: &str =
    "driver does not support delivering the TLS bootstrap at create time";

/// An error a driver method returns. docker-machine only ever sees its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError(pub String);

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DriverError {}

impl DriverError {
    /// Wraps any error's display text.
    pub fn from_display(e: impl std::fmt::Display) -> Self {
        DriverError(e.to_string())
    }
}

/// Result of a driver method.
pub type DriverResult<T> = Result<T, DriverError>;

/// What GitLab's docker-machine fork hands a driver before `Create` when the driver asked for
/// the TLS bootstrap (`drivers.TLSBootstrap`): the CA certificate, the machine's server
/// certificate and key (valid for the machine name), and the systemd drop-in that starts
/// dockerd with them on 2376. The server key is a secret: `Debug` shows only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsBootstrap {
    /// `CACert`: PEM.
    pub ca_cert: Vec<u8>,
    /// `ServerCert`: PEM.
    pub server_cert: Vec<u8>,
    /// `ServerKey`: PEM (secret).
    pub server_key: Vec<u8>,
    /// `DaemonDropin`: the systemd drop-in for docker.service.
    pub daemon_dropin: Vec<u8>,
}

impl std::fmt::Debug for TlsBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsBootstrap")
            .field("ca_cert", &ByteCount(&self.ca_cert))
            .field("server_cert", &ByteCount(&self.server_cert))
            .field("server_key", &SecretBytes(&self.server_key))
            .field(
                "daemon_dropin",
                &String::from_utf8_lossy(&self.daemon_dropin),
            )
            .finish()
    }
}

/// A docker-machine driver: one per plugin process, configured by `SetConfigRaw` /
/// `SetConfigFromFlags`, then asked to create, inspect or change one machine.
///
/// The plugin layer calls one method at a time (it serialises calls on a lock); `Heartbeat`,
/// `GetVersion` and `Close` never reach the driver.
pub trait Driver: Send + 'static {
    /// The name docker-machine stores and later uses to find the plugin binary.
    fn driver_name(&self) -> String;
    /// The create flags (`GetCreateFlags`).
    fn create_flags(&self) -> Vec<Flag>;
    /// Merges the driver JSON from config.json or docker-machine's create skeleton.
    fn set_config_raw(&mut self, json: &[u8]) -> DriverResult<()>;
    /// The driver JSON to store in config.json.
    fn config_raw(&self) -> DriverResult<Vec<u8>>;
    /// Reads and validates the create options.
    fn set_config_from_flags(&mut self, flags: &FlagValues) -> DriverResult<()>;
    /// The machine's name.
    fn machine_name(&self) -> String;
    /// The SSH port docker-machine connects to.
    fn ssh_port(&self) -> DriverResult<i64>;
    /// The SSH user.
    fn ssh_username(&self) -> String;
    /// The private key docker-machine uses ("" = none).
    fn ssh_key_path(&self) -> String;
    /// The host SSH connects to.
    fn ssh_hostname(&mut self) -> impl Future<Output = DriverResult<String>> + Send;
    /// The machine's IP address.
    fn ip(&mut self) -> impl Future<Output = DriverResult<String>> + Send;
    /// The Docker URL (`tcp://ip:2376`); the error text `Host is not running` is special to
    /// docker-machine's `ls`.
    fn url(&mut self) -> impl Future<Output = DriverResult<String>> + Send;
    /// The machine's state.
    fn state(&mut self) -> impl Future<Output = DriverResult<State>> + Send;
    /// Checks everything `create` needs before anything is created.
    fn pre_create_check(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Creates the machine.
    fn create(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Removes the machine and everything it owns.
    fn remove(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Starts a stopped machine.
    fn start(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Stops the machine gracefully.
    fn stop(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Reboots the machine.
    fn restart(&mut self) -> impl Future<Output = DriverResult<()>> + Send;
    /// Stops the machine forcibly.
    fn kill(&mut self) -> impl Future<Output = DriverResult<()>> + Send;

    // --- GitLab's docker-machine fork; the defaults are the fork's answers for a driver
    // without the feature, so a driver implements only what it supports. ---

    /// `UpdateLabels`: applies provider-side labels to the machine.
    fn update_labels(
        &mut self,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = DriverResult<()>> + Send {
        let _ = labels;
        async { Err(DriverError(LABELS_NOT_SUPPORTED.into())) }
    }
    /// `TLSBootstrapRequested`: whether the driver delivers the TLS material at create time.
    fn tls_bootstrap_requested(&self) -> DriverResult<bool> {
        Ok(false)
    }
    /// `SetTLSBootstrap`: the TLS material for the coming `Create`.
    fn set_tls_bootstrap(&mut self, bootstrap: TlsBootstrap) -> DriverResult<()> {
        let _ = bootstrap;
        Err(DriverError(TLS_BOOTSTRAP_NOT_SUPPORTED.into()))
    }
}
