//! [`Ec2Driver`]: docker-machine's driver methods for one EC2 machine, the plugin contract's
//! [`Driver`] on top of the EC2 lifecycle. Methods that need no AWS answer from the config; the
//! others run an [`ops`] operation through the [`Backend`] (the store's agent or this process).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ec2spot_ec2::create::tls_bootstrap::TlsMaterial;
use ec2spot_ec2::ops::{self, Input, Op, Outcome};
use ec2spot_ec2::options::config::Config;
use ec2spot_ec2::state::machine_state::MachineState;
use ec2spot_ec2::{create::user_data, labels, options, options::flags, resources::security_group};
use ec2spot_plugin::{Driver, DriverError, DriverResult, Flag, FlagValues, State, TlsBootstrap};
use tracing::debug;

use crate::backend::Backend;
use crate::convert;

pub use ops::HOST_NOT_RUNNING;

/// The name docker-machine knows this driver by (`docker-machine-driver-ec2spot`).
pub const DRIVER_NAME: &str = "ec2spot";

/// The EC2 spot driver for one machine.
#[derive(Default)]
pub struct Ec2Driver {
    config: Config,
    backend: Backend,
    /// Set when this process saw the instance running (after create, start, or a state read),
    /// so address questions need no API call.
    known_running: bool,
    /// GitLab's fork's TLS material for the coming `Create`: kept in memory only.
    tls: Option<TlsMaterial>,
}

impl std::fmt::Debug for Ec2Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Driver")
            .field("machine", &self.config.asked.machine_name)
            .finish_non_exhaustive()
    }
}

fn err(e: impl std::fmt::Display) -> DriverError {
    DriverError::from_display(e)
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
        PathBuf::from(&self.config.asked.store_path)
            .join("machines")
            .join(&self.config.asked.machine_name)
    }

    /// Whether the machine is (or will be) a one-time spot instance, which EC2 cannot stop.
    fn is_spot(&self) -> bool {
        self.config.made.market == "spot"
            || (self.config.made.market.is_empty() && self.config.asked.request_spot_instance)
    }

    /// Runs `op` where the EC2 work happens (see [`run_with`](Self::run_with)).
    async fn run(&mut self, op: Op) -> Result<Outcome, ec2spot_ec2::aws::error::Error> {
        self.run_with(op, &Input::default()).await
    }

    /// Runs `op` with `input` through the backend, its progress lines printed for
    /// docker-machine.
    async fn run_with(
        &mut self,
        op: Op,
        input: &Input,
    ) -> Result<Outcome, ec2spot_ec2::aws::error::Error> {
        self.backend
            .run(
                op,
                input,
                &mut self.config,
                Arc::new(ec2spot_plugin::output::say),
            )
            .await
    }

    fn refuse_spot(&self, what: &str) -> DriverResult<()> {
        if self.is_spot() {
            return Err(DriverError(format!(
                "{} is a one-time spot instance, which EC2 cannot {what}; `docker-machine rm` terminates it",
                self.config.asked.machine_name
            )));
        }
        Ok(())
    }
}

impl Driver for Ec2Driver {
    fn driver_name(&self) -> String {
        DRIVER_NAME.to_string()
    }

    fn create_flags(&self) -> Vec<Flag> {
        convert::create_flags()
    }

    fn set_config_raw(&mut self, json: &[u8]) -> DriverResult<()> {
        self.config.merge_json(json).map_err(err)
    }

    fn config_raw(&self) -> DriverResult<Vec<u8>> {
        Ok(self.config.to_json())
    }

    fn set_config_from_flags(&mut self, values: &FlagValues) -> DriverResult<()> {
        let warnings =
            options::apply(&mut self.config.asked, &convert::option_values(values)).map_err(err)?;
        for w in warnings {
            ec2spot_plugin::output::say(&w);
        }
        if self.config.asked.machine_id.is_empty() {
            self.config.asked.machine_id = new_machine_id();
        }
        self.backend.reset();
        self.config.answered = None;
        self.tls = None;
        Ok(())
    }

    fn machine_name(&self) -> String {
        self.config.asked.machine_name.clone()
    }

    fn ssh_port(&self) -> DriverResult<i64> {
        Ok(if self.config.asked.ssh_port == 0 {
            22
        } else {
            self.config.asked.ssh_port
        })
    }

    fn ssh_username(&self) -> String {
        if self.config.asked.ssh_user.is_empty() {
            "ubuntu".into()
        } else {
            self.config.asked.ssh_user.clone()
        }
    }

    fn ssh_key_path(&self) -> String {
        if self.config.made.ssh_key_path.is_empty() {
            self.machine_dir()
                .join("id_rsa")
                .to_string_lossy()
                .into_owned()
        } else {
            self.config.made.ssh_key_path.clone()
        }
    }

    async fn ssh_hostname(&mut self) -> DriverResult<String> {
        self.ip().await
    }

    async fn ip(&mut self) -> DriverResult<String> {
        if !self.config.made.ip_address.is_empty() {
            return Ok(self.config.made.ip_address.clone());
        }
        Ok(self.run(Op::Ip).await.map_err(err)?.text)
    }

    async fn url(&mut self) -> DriverResult<String> {
        if self.known_running && !self.config.made.ip_address.is_empty() {
            return Ok(format!(
                "tcp://{}:{}",
                self.config.made.ip_address,
                security_group::DOCKER_PORT
            ));
        }
        let o = self.run(Op::Url).await.map_err(err)?;
        self.known_running = o.state == MachineState::Running;
        Ok(o.text)
    }

    async fn state(&mut self) -> DriverResult<State> {
        let o = self.run(Op::State).await.map_err(err)?;
        self.known_running = o.state == MachineState::Running;
        Ok(convert::state(o.state))
    }

    async fn pre_create_check(&mut self) -> DriverResult<()> {
        self.run(Op::PreCreateCheck).await.map_err(err).map(|_| ())
    }

    async fn create(&mut self) -> DriverResult<()> {
        let input = Input {
            tls: self.tls.clone(),
            ..Input::default()
        };
        self.run_with(Op::Create, &input).await.map_err(err)?;
        self.known_running = true;
        Ok(())
    }

    async fn remove(&mut self) -> DriverResult<()> {
        self.run(Op::Remove).await.map_err(err).map(|_| ())
    }

    async fn start(&mut self) -> DriverResult<()> {
        self.refuse_spot("start again")?;
        self.run(Op::Start).await.map_err(err)?;
        self.known_running = true;
        Ok(())
    }

    async fn stop(&mut self) -> DriverResult<()> {
        self.refuse_spot("stop")?;
        self.known_running = false;
        self.run(Op::Stop).await.map_err(err).map(|_| ())
    }

    async fn restart(&mut self) -> DriverResult<()> {
        self.run(Op::Restart).await.map_err(err).map(|_| ())
    }

    async fn kill(&mut self) -> DriverResult<()> {
        self.refuse_spot("stop")?;
        self.known_running = false;
        self.run(Op::Kill).await.map_err(err).map(|_| ())
    }

    async fn update_labels(&mut self, labels: &BTreeMap<String, String>) -> DriverResult<()> {
        // Checked here too, so bad labels fail without starting an agent or calling AWS.
        labels::validate(labels).map_err(err)?;
        let input = Input {
            labels: labels.clone(),
            ..Input::default()
        };
        self.run_with(Op::UpdateLabels, &input)
            .await
            .map_err(err)
            .map(|_| ())
    }

    fn tls_bootstrap_requested(&self) -> DriverResult<bool> {
        Ok(self.config.asked.tls_bootstrap)
    }

    fn set_tls_bootstrap(&mut self, bootstrap: TlsBootstrap) -> DriverResult<()> {
        if !self.config.asked.tls_bootstrap {
            return Err(DriverError(format!(
                "--{} is not set: this machine is provisioned over SSH, so the TLS material is not taken",
                flags::name::TLS_BOOTSTRAP
            )));
        }
        let material = convert::tls_material(bootstrap);
        // The material and the whole user data are checked now, before Create makes anything.
        user_data::compose(&self.config.asked, Some(&material)).map_err(err)?;
        debug!("TLS bootstrap material taken for the create: {material:?}");
        self.tls = Some(material);
        Ok(())
    }
}

/// 128 random bits as hex.
fn new_machine_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
