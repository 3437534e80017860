//! [`Ec2Driver`]: the docker-machine driver methods, delegating AWS work to the lifecycle
//! modules.

use std::path::PathBuf;

use crate::plugin::{Driver, DriverError, DriverResult, Flag, FlagValues, State};

use super::config::Config;
use super::{DRIVER_NAME, flags, options};

/// The EC2 spot driver for one machine.
#[derive(Debug, Default)]
pub struct Ec2Driver {
    config: Config,
}

impl Ec2Driver {
    /// A driver with an empty config (docker-machine sends it with `SetConfigRaw`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The current config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The machine's directory in the docker-machine store.
    pub fn machine_dir(&self) -> PathBuf {
        PathBuf::from(&self.config.store_path)
            .join("machines")
            .join(&self.config.machine_name)
    }
}

fn err(e: impl std::fmt::Display) -> DriverError {
    DriverError::from_display(e)
}

impl Driver for Ec2Driver {
    fn driver_name(&self) -> String {
        DRIVER_NAME.to_string()
    }

    fn create_flags(&self) -> Vec<Flag> {
        flags::create_flags()
    }

    fn set_config_raw(&mut self, json: &[u8]) -> DriverResult<()> {
        self.config.merge_json(json).map_err(err)
    }

    fn config_raw(&self) -> DriverResult<Vec<u8>> {
        Ok(self.config.to_json())
    }

    fn set_config_from_flags(&mut self, values: &FlagValues) -> DriverResult<()> {
        let warnings = options::apply(&mut self.config, values).map_err(err)?;
        for w in warnings {
            println!("{w}");
        }
        if self.config.machine_id.is_empty() {
            self.config.machine_id = new_machine_id();
        }
        Ok(())
    }

    fn machine_name(&self) -> String {
        self.config.machine_name.clone()
    }

    fn ssh_port(&self) -> DriverResult<i64> {
        Ok(if self.config.ssh_port == 0 {
            22
        } else {
            self.config.ssh_port
        })
    }

    fn ssh_username(&self) -> String {
        if self.config.ssh_user.is_empty() {
            "ubuntu".into()
        } else {
            self.config.ssh_user.clone()
        }
    }

    fn ssh_key_path(&self) -> String {
        if self.config.ssh_key_path.is_empty() {
            self.machine_dir()
                .join("id_rsa")
                .to_string_lossy()
                .into_owned()
        } else {
            self.config.ssh_key_path.clone()
        }
    }

    async fn ssh_hostname(&mut self) -> DriverResult<String> {
        self.ip().await
    }

    async fn ip(&mut self) -> DriverResult<String> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn url(&mut self) -> DriverResult<String> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn state(&mut self) -> DriverResult<State> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn pre_create_check(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn create(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn remove(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn start(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn stop(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn restart(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }

    async fn kill(&mut self) -> DriverResult<()> {
        Err(DriverError("not implemented yet".into()))
    }
}

/// 128 random bits as hex.
fn new_machine_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
