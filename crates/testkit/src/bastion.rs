//! A test bastion: a private moto behind our fault proxy, a docker-machine store in a temp
//! directory, and the plugin on PATH, driven through `dmclient dm` (our docker-machine
//! stand-in) or directly through the plugin protocol.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::plugin_client::PluginProcess;
use aws_sdk_ec2::types::Filter;

use crate::ec2_proxy::Ec2Proxy;
use crate::goclient;
use crate::moto::Moto;

/// moto, proxy and store for one test.
pub struct Bastion {
    /// The EC2 emulator.
    pub moto: Moto,
    /// The fault proxy in front of it (the plugin talks to this).
    pub proxy: Ec2Proxy,
    store: tempfile::TempDir,
}

impl Bastion {
    /// Starts moto (with extra moto settings, warmed: see [`Moto::warm`]) and the proxy, with
    /// the strict layers `EC2SPOT_TEST_STRICT` asks for (all by default).
    pub async fn start_with(moto_env: &[(&str, &str)]) -> Bastion {
        Self::start_strict(moto_env, crate::strict::Strictness::from_env()).await
    }

    /// Like [`start_with`](Self::start_with), with the strict layers `strictness` names.
    pub async fn start_strict(
        moto_env: &[(&str, &str)],
        strictness: crate::strict::Strictness,
    ) -> Bastion {
        let moto = tokio::task::spawn_blocking({
            let env: Vec<(String, String)> = moto_env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            move || {
                let refs: Vec<(&str, &str)> =
                    env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                Moto::start_with(&refs)
            }
        })
        .await
        .unwrap();
        moto.warm().await;
        let proxy = Ec2Proxy::start(&moto.url).await;
        crate::strict::install(&proxy, &moto.url, strictness);
        Bastion {
            moto,
            proxy,
            store: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts with default moto settings.
    pub async fn start() -> Bastion {
        Self::start_with(&[]).await
    }

    /// The docker-machine store.
    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// Environment of the plugin (through docker-machine or directly): dummy credentials,
    /// EC2 through the proxy, no metadata service, no shared config files.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_ENDPOINT_URL".into(), self.proxy.url.clone()),
            (
                "AWS_CONFIG_FILE".into(),
                "/nonexistent/ec2spot-test/config".into(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                "/nonexistent/ec2spot-test/credentials".into(),
            ),
            ("DMCLIENT_POLL".into(), "200ms".into()),
            // Agents started by a test's plugins go away soon after it.
            ("EC2SPOT_AGENT_IDLE".into(), "5s".into()),
            (
                "MACHINE_STORAGE_PATH".into(),
                self.store().to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Runs `docker-machine <args>` (the `dmclient dm` stand-in) with the plugin on PATH.
    pub async fn dm(&self, args: &[&str]) -> Output {
        self.dm_env(args, self.env()).await
    }

    /// Like [`dm`](Self::dm) with `env` instead of [`env`](Self::env) (the test process's own
    /// environment is inherited either way).
    pub async fn dm_env(&self, args: &[&str], env: Vec<(String, String)>) -> Output {
        self.dm_store(self.store(), args, env).await
    }

    async fn dm_store(&self, store: &Path, args: &[&str], env: Vec<(String, String)>) -> Output {
        let plugin_dir = PathBuf::from(crate::plugin_binary())
            .parent()
            .unwrap()
            .to_path_buf();
        self.dm_at(store, &plugin_dir, None, args, env).await
    }

    /// Runs `docker-machine <args>` on `store` with the plugin found in `plugin_dir`, in the
    /// working directory `cwd` (the test's own when `None`).
    pub async fn dm_at(
        &self,
        store: &Path,
        plugin_dir: &Path,
        cwd: Option<&Path>,
        args: &[&str],
        env: Vec<(String, String)>,
    ) -> Output {
        let store = store.to_path_buf();
        let plugin_dir = plugin_dir.to_path_buf();
        let cwd = cwd.map(Path::to_path_buf);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<(&str, &str)> =
                env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            goclient::run_dm_in(&store, &plugin_dir, cwd.as_deref(), &args, &refs)
        })
        .await
        .unwrap()
    }

    /// Runs `docker-machine <args>` on another store (another bastion's) against the same
    /// EC2 and proxy.
    pub async fn dm_in(&self, store: &Path, args: &[&str]) -> Output {
        let mut env = self.env();
        env.retain(|(k, _)| k != "MACHINE_STORAGE_PATH");
        env.push((
            "MACHINE_STORAGE_PATH".into(),
            store.to_string_lossy().into_owned(),
        ));
        self.dm_store(store, args, env).await
    }

    /// Runs `docker-machine-driver-ec2spot <args>` as a command-line tool (`gc`, `doctor`)
    /// with [`env`](Self::env) and `extra` on top.
    pub async fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(crate::plugin_binary());
        cmd.args(args).env_remove("MACHINE_PLUGIN_TOKEN");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .expect("cli finishes within 120 s")
            .expect("cli runs")
    }

    /// Like [`dm`](Self::dm) but panics unless it exits 0; returns stdout.
    pub async fn dm_ok(&self, args: &[&str]) -> String {
        let out = self.dm(args).await;
        assert!(
            out.status.success(),
            "docker-machine {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a plugin process directly (heartbeating every 5 s like docker-machine).
    pub async fn plugin(&self) -> PluginProcess {
        self.plugin_env(self.env()).await
    }

    /// Starts a plugin process with `env` instead of [`env`](Self::env).
    pub async fn plugin_env(&self, env: Vec<(String, String)>) -> PluginProcess {
        PluginProcess::start(
            Path::new(crate::plugin_binary()),
            "ec2spot",
            &env,
            Some(std::time::Duration::from_secs(5)),
        )
        .await
        .expect("plugin starts")
    }

    /// [`env`](Self::env) with the agent switched off (every plugin works on its own).
    pub fn env_direct(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push(("EC2SPOT_AGENT".into(), "off".into()));
        env
    }

    /// The saved config.json of `machine`.
    pub fn config(&self, machine: &str) -> serde_json::Value {
        let p = self
            .store()
            .join("machines")
            .join(machine)
            .join("config.json");
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    /// The `Driver` object of `machine`'s config.json.
    pub fn driver(&self, machine: &str) -> serde_json::Value {
        self.config(machine)["Driver"].clone()
    }

    /// An SDK client on moto directly (not through the proxy).
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        self.moto.ec2().await
    }

    /// An SDK client through the proxy, which counts its calls.
    pub fn ec2_proxied(&self) -> aws_sdk_ec2::Client {
        crate::moto::ec2_client(&self.proxy.url, "us-east-1")
    }

    /// Refuses every instance read and every termination from now on
    /// (`UnauthorizedOperation`): a create fails after its launch, and so does its own
    /// cleanup, leaving what a failed create leaves for docker-machine to save.
    pub fn refuse_instance_reads_and_termination(&self) {
        for action in ["DescribeInstances", "TerminateInstances"] {
            self.proxy
                .fail_after(action, 0, 403, "UnauthorizedOperation", 10_000);
        }
    }

    /// Everything ec2spot-made that is still alive in moto's us-east-1: instances not
    /// terminated, key pairs (but an agent's spare), non-default security groups, volumes, open or active spot
    /// requests, launch templates.
    pub async fn leftovers(&self) -> Vec<String> {
        leftovers(&self.ec2().await).await
    }
}

/// Starts the plugin binary at `path` directly (heartbeating every 5 s like docker-machine).
pub async fn plugin_at(path: &Path, env: Vec<(String, String)>) -> PluginProcess {
    PluginProcess::start(
        path,
        "ec2spot",
        &env,
        Some(std::time::Duration::from_secs(5)),
    )
    .await
    .expect("plugin starts")
}

/// Whether key pair `k` is an agent's spare, imported ahead of the next create
/// (`ec2spot_ec2::resources::spare_key`): the agent deletes it when it exits, `gc` when it is
/// abandoned — `tests/integration/fast_create.rs` shows both — so [`leftovers`] leaves it out.
pub fn is_spare(k: &aws_sdk_ec2::types::KeyPairInfo) -> bool {
    k.tags().iter().any(|t| {
        t.key() == Some(ec2spot_ec2::tags::MACHINE_ID)
            && t.value()
                .is_some_and(|v| v.starts_with(ec2spot_ec2::resources::spare_key::ID_PREFIX))
    })
}

/// Whether `r` imports or deletes an agent's spare key pair (see [`is_spare`]): the agent's
/// own housekeeping, on its own schedule, not a command's work.
pub fn spare_key_request(r: &crate::ec2_proxy::Request) -> bool {
    // (A launch names the spare a create took: that is the create's own work.)
    matches!(r.action.as_str(), "ImportKeyPair" | "DeleteKeyPair")
        && r.param("KeyName")
            .is_some_and(|n| n.starts_with(ec2spot_ec2::resources::spare_key::NAME_PREFIX))
}

/// The names of the agents' spare key pairs (see [`is_spare`]).
pub async fn spare_keys(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let out = ec2.describe_key_pairs().send().await.unwrap();
    out.key_pairs()
        .iter()
        .filter(|k| is_spare(k))
        .map(|k| k.key_name().unwrap_or_default().to_string())
        .collect()
}

/// See [`Bastion::leftovers`]; an agent's spare key pair is not counted (see [`is_spare`]).
pub async fn leftovers(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let mut left = Vec::new();
    let out = ec2.describe_instances().send().await.unwrap();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let state = i
            .state()
            .and_then(|s| s.name())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if state != "terminated" {
            left.push(format!(
                "instance {} ({state})",
                i.instance_id().unwrap_or_default()
            ));
        }
    }
    for k in ec2.describe_key_pairs().send().await.unwrap().key_pairs() {
        if !is_spare(k) {
            left.push(format!("key pair {}", k.key_name().unwrap_or_default()));
        }
    }
    for g in ec2
        .describe_security_groups()
        .send()
        .await
        .unwrap()
        .security_groups()
    {
        if g.group_name() != Some("default") {
            left.push(format!(
                "security group {} ({})",
                g.group_id().unwrap_or_default(),
                g.group_name().unwrap_or_default()
            ));
        }
    }
    for v in ec2.describe_volumes().send().await.unwrap().volumes() {
        left.push(format!(
            "volume {} ({:?})",
            v.volume_id().unwrap_or_default(),
            v.state()
        ));
    }
    let sirs = ec2
        .describe_spot_instance_requests()
        .filters(
            Filter::builder()
                .name("state")
                .values("open")
                .values("active")
                .build(),
        )
        .send()
        .await
        .unwrap();
    for r in sirs.spot_instance_requests() {
        left.push(format!(
            "spot request {}",
            r.spot_instance_request_id().unwrap_or_default()
        ));
    }
    for t in ec2
        .describe_launch_templates()
        .send()
        .await
        .unwrap()
        .launch_templates()
    {
        left.push(format!(
            "launch template {}",
            t.launch_template_id().unwrap_or_default()
        ));
    }
    left
}

impl Bastion {
    /// Deletes everything in moto's us-east-1 that a test left (so one failure does not
    /// cascade into the next case).
    pub async fn purge(&self) {
        let ec2 = self.ec2().await;
        let out = ec2.describe_instances().send().await.unwrap();
        let ids: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).map(|s| s.as_str()) != Some("terminated"))
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        if !ids.is_empty() {
            let _ = ec2
                .terminate_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await;
        }
        for k in ec2.describe_key_pairs().send().await.unwrap().key_pairs() {
            let _ = ec2
                .delete_key_pair()
                .key_name(k.key_name().unwrap_or_default())
                .send()
                .await;
        }
        for t in ec2
            .describe_launch_templates()
            .send()
            .await
            .unwrap()
            .launch_templates()
        {
            let _ = ec2
                .delete_launch_template()
                .launch_template_id(t.launch_template_id().unwrap_or_default())
                .send()
                .await;
        }
        for g in ec2
            .describe_security_groups()
            .send()
            .await
            .unwrap()
            .security_groups()
        {
            if g.group_name() != Some("default") {
                let _ = ec2
                    .delete_security_group()
                    .group_id(g.group_id().unwrap_or_default())
                    .send()
                    .await;
            }
        }
        for v in ec2.describe_volumes().send().await.unwrap().volumes() {
            let _ = ec2
                .delete_volume()
                .volume_id(v.volume_id().unwrap_or_default())
                .send()
                .await;
        }
        let sirs = ec2.describe_spot_instance_requests().send().await.unwrap();
        let ids: Vec<String> = sirs
            .spot_instance_requests()
            .iter()
            .filter_map(|r| r.spot_instance_request_id().map(str::to_string))
            .collect();
        if !ids.is_empty() {
            let _ = ec2
                .cancel_spot_instance_requests()
                .set_spot_instance_request_ids(Some(ids))
                .send()
                .await;
        }
    }
}
