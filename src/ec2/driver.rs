//! [`Ec2Driver`]: docker-machine's driver methods for one EC2 machine. The AWS work lives in
//! the modules named for each step; this file maps methods to them.

use std::path::PathBuf;

use tracing::debug;

use crate::plugin::{Driver, DriverError, DriverResult, Flag, FlagValues, State};

use super::config::Config;
use super::error::{Error, aws};
use super::progress::Progress;
use super::resolve::{self, Resolved};
use super::{DRIVER_NAME, aws as client, create, flags, instance, options, remove};

/// docker-machine's special error text for `GetURL` on a machine that is not running.
pub const HOST_NOT_RUNNING: &str = "Host is not running";

/// The EC2 spot driver for one machine.
#[derive(Default)]
pub struct Ec2Driver {
    config: Config,
    ec2: Option<aws_sdk_ec2::Client>,
    resolved: Option<Resolved>,
    /// Set when this process saw the instance running (after create, start, or a state read),
    /// so address questions need no API call.
    known_running: bool,
}

impl std::fmt::Debug for Ec2Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Driver")
            .field("machine", &self.config.machine_name)
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
        PathBuf::from(&self.config.store_path)
            .join("machines")
            .join(&self.config.machine_name)
    }

    async fn client(&mut self) -> aws_sdk_ec2::Client {
        if self.ec2.is_none() {
            self.ec2 = Some(client::client(&self.config).await);
        }
        self.ec2.clone().expect("client set")
    }

    /// Whether the machine is (or will be) a one-time spot instance, which EC2 cannot stop.
    fn is_spot(&self) -> bool {
        self.config.market == "spot"
            || (self.config.market.is_empty() && self.config.request_spot_instance)
    }

    /// The machine's instance id; for a create that died before saving it, the instance
    /// carrying the machine's tag.
    async fn instance_id(&mut self) -> Result<String, Error> {
        if !self.config.instance_id.is_empty() {
            return Ok(self.config.instance_id.clone());
        }
        if !self.config.machine_id.is_empty() {
            let ec2 = self.client().await;
            if let Some(i) = instance::find_by_machine_id(&ec2, &self.config.machine_id)
                .await?
                .first()
            {
                self.config.instance_id = i.instance_id().unwrap_or_default().to_string();
                return Ok(self.config.instance_id.clone());
            }
        }
        Err(Error::Other(format!(
            "machine {} has no EC2 instance (its create did not finish); remove it with docker-machine rm",
            self.config.machine_name
        )))
    }

    async fn describe(&mut self) -> Result<aws_sdk_ec2::types::Instance, Error> {
        let id = self.instance_id().await?;
        let ec2 = self.client().await;
        let found = instance::describe(&ec2, &id).await?;
        let i =
            found.ok_or_else(|| Error::Other(format!("instance {id} no longer exists in EC2")))?;
        self.known_running = instance::machine_state(&i) == State::Running;
        if let Some(a) = instance::address(&i, &self.config) {
            self.config.ip_address = a;
        }
        Ok(i)
    }

    /// The machine's state from EC2; a spot instance AWS has marked for interruption counts as
    /// `Stopping`, so gitlab-runner's `config` check drops it instead of giving it a job.
    async fn live_state(&mut self) -> Result<State, Error> {
        let i = self.describe().await?;
        let state = instance::machine_state(&i);
        debug!(
            "instance {} is {:?}: {state:?}",
            i.instance_id().unwrap_or_default(),
            i.state().and_then(|s| s.name())
        );
        if state == State::Running {
            let ec2 = self.client().await;
            if let Some(code) = instance::interruption(&ec2, &i).await? {
                debug!("spot interruption notice ({code}): reporting Stopping");
                self.known_running = false;
                return Ok(State::Stopping);
            }
        }
        Ok(state)
    }

    fn refuse_spot(&self, what: &str) -> DriverResult<()> {
        if self.is_spot() {
            return Err(DriverError(format!(
                "{} is a one-time spot instance, which EC2 cannot {what}; `docker-machine rm` terminates it",
                self.config.machine_name
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
            crate::plugin::output::say(&w);
        }
        if self.config.machine_id.is_empty() {
            self.config.machine_id = new_machine_id();
        }
        self.ec2 = None;
        self.resolved = None;
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
        if !self.config.ip_address.is_empty() {
            return Ok(self.config.ip_address.clone());
        }
        let i = self.describe().await.map_err(err)?;
        instance::address(&i, &self.config).ok_or_else(|| {
            DriverError(format!(
                "instance {} has no IP address yet",
                i.instance_id().unwrap_or_default()
            ))
        })
    }

    async fn url(&mut self) -> DriverResult<String> {
        if !self.known_running || self.config.ip_address.is_empty() {
            // One look serves both: not running (or about to be taken back) = not usable.
            if self.live_state().await.map_err(err)? != State::Running {
                return Err(DriverError(HOST_NOT_RUNNING.into()));
            }
        }
        if self.config.ip_address.is_empty() {
            return Ok(String::new());
        }
        Ok(format!(
            "tcp://{}:{}",
            self.config.ip_address,
            super::security_groups::DOCKER_PORT
        ))
    }

    async fn state(&mut self) -> DriverResult<State> {
        self.live_state().await.map_err(err)
    }

    async fn pre_create_check(&mut self) -> DriverResult<()> {
        if self.config.machine_id.is_empty() {
            return Err(DriverError(
                "SetConfigFromFlags must run before PreCreateCheck".into(),
            ));
        }
        let progress = Progress::start();
        progress.say(&format!(
            "Checking {} for network, image and instance type",
            self.config.region
        ));
        let ec2 = self.client().await;
        let r = resolve::resolve(&ec2, &self.config).await.map_err(err)?;
        let pools: Vec<String> = r.pools.iter().map(|p| p.to_string()).collect();
        progress.say(&format!(
            "Will launch {} from {} in {}: {}",
            r.architecture,
            r.ami,
            r.vpc_id,
            pools.join(", ")
        ));
        self.config.vpc_id = r.vpc_id.clone();
        if let [pool] = r.pools.as_slice() {
            self.config.subnet_id = pool.subnet_id.clone();
            self.config.zone = pool.availability_zone.clone();
        }
        self.config.ami = r.ami.clone();
        self.resolved = Some(r);
        Ok(())
    }

    async fn create(&mut self) -> DriverResult<()> {
        if self.resolved.is_none() {
            self.pre_create_check().await?;
        }
        let resolved = self.resolved.clone().expect("resolved");
        let progress = Progress::start();
        let ec2 = self.client().await;
        create::create(&ec2, &mut self.config, &resolved, &progress)
            .await
            .map_err(err)?;
        self.known_running = true;
        Ok(())
    }

    async fn remove(&mut self) -> DriverResult<()> {
        if self.config.instance_id.is_empty() && self.config.machine_id.is_empty() {
            crate::plugin::output::say(
                "Nothing to remove in EC2: the machine has neither an instance id nor a machine id",
            );
            return Ok(());
        }
        let progress = Progress::start();
        let ec2 = self.client().await;
        let done = remove::remove(&ec2, &self.config, create::GROUP_RELEASE_TIMEOUT)
            .await
            .map_err(err)?;
        progress.say(&format!("Removed: {}", done.summary()));
        Ok(())
    }

    async fn start(&mut self) -> DriverResult<()> {
        self.refuse_spot("start again")?;
        let id = self.instance_id().await.map_err(err)?;
        let ec2 = self.client().await;
        ec2.start_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(|e| err(aws("starting the instance (StartInstances)", e)))?;
        // A restarted instance may get a new public address.
        self.config.ip_address.clear();
        let running = instance::wait_running(&ec2, &id, &self.config, create::RUN_TIMEOUT)
            .await
            .map_err(err)?;
        self.config.ip_address = instance::address(&running, &self.config).unwrap_or_default();
        self.known_running = true;
        Ok(())
    }

    async fn stop(&mut self) -> DriverResult<()> {
        self.refuse_spot("stop")?;
        let id = self.instance_id().await.map_err(err)?;
        let ec2 = self.client().await;
        ec2.stop_instances()
            .instance_ids(&id)
            .force(false)
            .send()
            .await
            .map_err(|e| err(aws("stopping the instance (StopInstances)", e)))?;
        self.known_running = false;
        Ok(())
    }

    async fn restart(&mut self) -> DriverResult<()> {
        let id = self.instance_id().await.map_err(err)?;
        let ec2 = self.client().await;
        ec2.reboot_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(|e| err(aws("rebooting the instance (RebootInstances)", e)))?;
        Ok(())
    }

    async fn kill(&mut self) -> DriverResult<()> {
        self.refuse_spot("stop")?;
        let id = self.instance_id().await.map_err(err)?;
        let ec2 = self.client().await;
        ec2.stop_instances()
            .instance_ids(&id)
            .force(true)
            .send()
            .await
            .map_err(|e| err(aws("stopping the instance forcibly (StopInstances)", e)))?;
        self.known_running = false;
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
