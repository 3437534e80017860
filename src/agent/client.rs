//! The plugin's side of the agent: connect to the store's agent (starting it on first need;
//! one winner when many plugins start one at once) and run EC2 operations through it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::debug;

use super::paths;
use super::proto::agent_client::AgentClient as Grpc;
use super::proto::{Credentials, RunRequest, StatusReply, StatusRequest, run_event};
use crate::ec2::aws;
use crate::ec2::config::Config;
use crate::ec2::error::Error;
use crate::ec2::ops::{Op, Outcome};
use crate::ec2::progress::Progress;
use crate::plugin::State;

/// Why an operation through the agent did not produce an answer.
#[derive(Debug)]
pub enum AgentError {
    /// The operation ran and failed (the error is the answer).
    Op(Error),
    /// The agent could not be reached or went away: work directly instead.
    Unavailable(String),
}

/// A connection to a store's agent.
#[derive(Clone)]
pub struct AgentClient {
    grpc: Grpc<Channel>,
}

async fn dial(socket: &Path) -> Result<Grpc<Channel>, String> {
    // Fail fast when nothing listens; tonic would otherwise connect lazily.
    UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let path = socket.to_path_buf();
    let channel = Endpoint::try_from("http://ec2spot-agent.invalid")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Grpc::new(channel).max_decoding_message_size(16 << 20))
}

/// How the plugin starts an agent: this same binary, `agent --store <store>`.
fn spawn(store: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("agent").arg("--store").arg(store);
    // Settings for an agent the plugin starts (a service unit passes them as options instead).
    for (var, option) in [
        ("EC2SPOT_AGENT_IDLE", "--idle"),
        ("EC2SPOT_AGENT_STATE_TTL", "--state-ttl"),
    ] {
        if let Ok(v) = std::env::var(var) {
            cmd.arg(option).arg(v);
        }
    }
    cmd.env_remove("MACHINE_PLUGIN_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own session: it outlives this plugin and docker-machine.
    // SAFETY: between fork and exec the closure calls only setsid(2), which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Reap it from a thread so it never lingers as a zombie of a long-lived plugin.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

impl AgentClient {
    /// Connects to the agent of `store`, starting one if none answers. Concurrent callers may
    /// each start one; the store's lock lets exactly one of them serve.
    pub async fn connect(store: &Path) -> Result<AgentClient, String> {
        if !paths::socket_fits(store) {
            return Err(format!(
                "the store path {} is too long for a Unix socket",
                store.display()
            ));
        }
        let socket = paths::socket(store);
        if let Ok(grpc) = dial(&socket).await {
            return Ok(AgentClient { grpc });
        }
        std::fs::create_dir_all(paths::dir(store)).map_err(|e| e.to_string())?;
        // One starter at a time: when an agent dies under a burst, dozens of plugins notice at
        // once; the first starts the new agent, the others find it running.
        let _starting = StartLock::take(
            &paths::dir(store).join("agent.start.lock"),
            Duration::from_secs(30),
        )
        .await?;
        if let Ok(grpc) = dial(&socket).await {
            return Ok(AgentClient { grpc });
        }
        spawn(store).map_err(|e| format!("starting the agent: {e}"))?;
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(15) {
            match dial(&socket).await {
                Ok(grpc) => return Ok(AgentClient { grpc }),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("the agent did not start: {last}"))
    }

    /// Connects to a running agent only (tests, status).
    pub async fn connect_running(store: &Path) -> Result<AgentClient, String> {
        Ok(AgentClient {
            grpc: dial(&paths::socket(store)).await?,
        })
    }

    /// The agent's status.
    pub async fn status(&self) -> Result<StatusReply, String> {
        self.grpc
            .clone()
            .status(StatusRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|e| e.to_string())
    }

    /// Runs `op` on `config`'s machine in the agent, printing its progress through `progress`'s
    /// sink as it arrives and updating `config` with what the operation recorded.
    pub async fn run(
        &self,
        op: Op,
        config: &mut Config,
        progress: &Progress,
    ) -> Result<Outcome, AgentError> {
        let creds = aws::credentials(config).await.map_err(AgentError::Op)?;
        let request = RunRequest {
            operation: super::op_to_proto(op) as i32,
            config_json: config.to_json(),
            endpoint_url: aws::endpoint(config),
            credentials: Some(Credentials {
                access_key_id: creds.access_key_id().to_string(),
                secret_access_key: creds.secret_access_key().to_string(),
                session_token: creds.session_token().unwrap_or_default().to_string(),
                expires_unix: creds
                    .expiry()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            }),
        };
        let mut stream = self
            .grpc
            .clone()
            .run(request)
            .await
            .map_err(|e| AgentError::Unavailable(e.to_string()))?
            .into_inner();
        loop {
            let event = stream
                .message()
                .await
                .map_err(|e| AgentError::Unavailable(e.to_string()))?;
            let Some(event) = event.and_then(|e| e.event) else {
                return Err(AgentError::Unavailable(
                    "the agent ended the operation without a result".into(),
                ));
            };
            match event {
                run_event::Event::Progress(line) => progress.relay(&line),
                run_event::Event::Result(r) => {
                    if !r.config_json.is_empty() {
                        let mut updated = Config::default();
                        updated.merge_json(&r.config_json).map_err(|e| {
                            AgentError::Op(Error::Other(format!(
                                "agent answered a bad config: {e}"
                            )))
                        })?;
                        *config = updated;
                    }
                    if !r.error.is_empty() {
                        return Err(AgentError::Op(Error::Other(r.error)));
                    }
                    debug!(
                        "agent: {op:?} answered from an observation {:.1}s old",
                        r.observed_seconds_ago
                    );
                    return Ok(Outcome {
                        state: State::from_wire(i64::from(r.state)),
                        text: r.text,
                        age: Duration::from_secs_f64(r.observed_seconds_ago.max(0.0)),
                    });
                }
            }
        }
    }
}

/// An exclusive `flock` held while one plugin starts the agent.
struct StartLock(std::fs::File);

impl StartLock {
    async fn take(path: &Path, limit: Duration) -> Result<StartLock, String> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let start = Instant::now();
        loop {
            // SAFETY: flock(2) on a descriptor `f` owns and keeps open; no memory is passed.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(StartLock(f));
            }
            if start.elapsed() >= limit {
                return Err("another plugin is still starting the agent".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: flock(2) on the descriptor this lock owns, still open; no memory is passed.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The store a config belongs to, when it has one the agent can serve.
pub fn store_of(config: &Config) -> Option<PathBuf> {
    (!config.store_path.is_empty()).then(|| PathBuf::from(&config.store_path))
}
