//! The plugin's side of the agent: connect to the store's agent (starting it on first need;
//! one winner when many plugins start one at once) and run EC2 operations through it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::debug;

use super::proto::agent_client::AgentClient as Grpc;
use super::proto::{
    Credentials, HelloRequest, RunRequest, RunResult, StatusReply, StatusRequest, Verdict,
    run_event,
};
use super::{identity, paths, service};
use ec2spot_ec2::aws;
use ec2spot_ec2::aws::error::Error;
use ec2spot_ec2::ops::{Input, Op, Outcome};
use ec2spot_ec2::options::config::Config;
use ec2spot_ec2::progress::Progress;

/// Why an operation through the agent did not produce an answer.
#[derive(Debug)]
pub enum AgentError {
    /// The operation ran and failed (the error is the answer).
    Op(Error),
    /// The agent could not be reached or went away: work directly instead.
    Unavailable(String),
}

/// Why a plugin works without the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAgent {
    /// What serves (or would serve) the store's socket is not this user's: nothing was sent
    /// to it. Worth a warning.
    Untrusted(String),
    /// No agent could be had (none starts, another build, …).
    Unavailable(String),
}

impl std::fmt::Display for NoAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAgent::Untrusted(why) | NoAgent::Unavailable(why) => f.write_str(why),
        }
    }
}

/// This process's effective uid.
fn euid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why the store's agent directory `dir` cannot be trusted with this user's credentials: it
/// belongs to another user, or others may write to it (and so replace the socket).
fn untrusted_dir(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir).ok()?;
    if m.file_type().is_symlink() {
        return Some(format!("{} is a symbolic link", dir.display()));
    }
    if m.uid() != euid() {
        return Some(format!(
            "{} belongs to uid {}, not to this user (uid {})",
            dir.display(),
            m.uid(),
            euid()
        ));
    }
    (m.mode() & 0o022 != 0).then(|| {
        format!(
            "{} is writable by other users (mode {:o})",
            dir.display(),
            m.mode() & 0o7777
        )
    })
}

/// Checks that the peer on `stream` runs under this user (`SO_PEERCRED`).
fn peer_is_us(stream: &UnixStream, socket: &Path) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    if uid == euid() {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{} is served by uid {uid}, not by this user (uid {})",
            socket.display(),
            euid()
        ),
    ))
}

/// A connection to a store's agent.
#[derive(Clone)]
pub struct AgentClient {
    grpc: Grpc<Channel>,
}

async fn dial(socket: &Path) -> Result<Grpc<Channel>, NoAgent> {
    // Fail fast when nothing listens; tonic would otherwise connect lazily. Nothing is sent
    // before the peer is known to be this user's.
    let probe = UnixStream::connect(socket)
        .await
        .map_err(|e| NoAgent::Unavailable(e.to_string()))?;
    peer_is_us(&probe, socket).map_err(|e| NoAgent::Untrusted(e.to_string()))?;
    drop(probe);
    let path = socket.to_path_buf();
    let channel = Endpoint::try_from("http://ec2spot-agent.invalid")
        .map_err(|e| NoAgent::Unavailable(e.to_string()))?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = UnixStream::connect(&path).await?;
                peer_is_us(&stream, &path)?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| NoAgent::Unavailable(e.to_string()))?;
    Ok(Grpc::new(channel).max_decoding_message_size(16 << 20))
}

/// How the plugin starts an agent: the executable at this plugin's path (its own build — a
/// plugin whose file was replaced is refused by agents and never starts one), `agent --store
/// <store>`, with an environment holding nothing but the log settings and `SSL_CERT_*`.
fn spawn(store: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(identity::exe_path());
    cmd.arg("agent").arg("--store").arg(store);
    // Settings for an agent the plugin starts (a service unit passes them as options instead).
    for (var, option) in [
        ("EC2SPOT_AGENT_IDLE", "--idle"),
        ("EC2SPOT_AGENT_STATE_TTL", "--state-ttl"),
        ("EC2SPOT_AGENT_MAX_STALE", "--max-stale"),
        ("EC2SPOT_AGENT_CLIENT_IDLE", "--client-idle"),
        ("EC2SPOT_AGENT_LOG_MAX", "--log-max"),
        ("EC2SPOT_AGENT_METRICS", "--metrics-listen"),
    ] {
        if let Ok(v) = std::env::var(var) {
            cmd.arg(option).arg(v);
        }
    }
    // A clean environment: credentials come with each request, never for the agent's whole
    // life (in /proc/PID/environ). Passed on: the log filter and format, and where the
    // system's root certificates are (read by the HTTPS client's trust store).
    cmd.env_clear();
    for var in [
        "EC2SPOT_LOG",
        "MACHINE_PLUGIN_LOG_FORMAT",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Its own process group, away from docker-machine's signals: it outlives this plugin.
        .process_group(0);
    let mut child = cmd.spawn()?;
    // Reap it from a thread so it never lingers as a zombie of a long-lived plugin.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// What an agent said to this plugin's hello.
enum Met {
    /// Same build: it serves us.
    Serves(Grpc<Channel>),
    /// Its executable was replaced and it is leaving (it gave up the socket): start ours.
    Leaving,
    /// It will not serve this build; work directly.
    Refuses(String),
}

/// Dials `socket` and says hello; `Err` when nothing (or nothing that knows hello) answers, or
/// what answers is not this user's.
async fn meet(socket: &Path) -> Result<Met, NoAgent> {
    let mut grpc = dial(socket).await?;
    let reply = grpc
        .hello(HelloRequest {
            build: Some(identity::this()),
        })
        .await;
    let reply = match reply {
        Ok(r) => r.into_inner(),
        // An agent from before the handshake: of another build by definition. It leaves when
        // idle; until then this plugin works on its own.
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            return Ok(Met::Refuses(
                "the agent is of an older build (no handshake)".into(),
            ));
        }
        Err(s) => return Err(NoAgent::Unavailable(s.to_string())),
    };
    Ok(
        match Verdict::try_from(reply.verdict).unwrap_or(Verdict::Unspecified) {
            Verdict::Serve => Met::Serves(grpc),
            Verdict::Draining => Met::Leaving,
            _ => Met::Refuses(reply.reason),
        },
    )
}

impl AgentClient {
    /// Connects to the agent of `store` — one of this plugin's own build — starting one if
    /// none answers or the one that answers is leaving. Concurrent callers may each start one;
    /// the store's lock lets exactly one of them serve. `Err` means: work directly — and,
    /// when the store's agent directory or socket is another user's, send it nothing.
    pub async fn connect(store: &Path) -> Result<AgentClient, NoAgent> {
        use NoAgent::Unavailable;
        if !paths::socket_fits(store) {
            return Err(Unavailable(format!(
                "the store path {} is too long for a Unix socket",
                store.display()
            )));
        }
        if !identity::current() {
            return Err(Unavailable(format!(
                "this plugin's executable {} was replaced by another build",
                identity::exe_path().display()
            )));
        }
        let dir = paths::dir(store);
        if let Some(why) = untrusted_dir(&dir) {
            return Err(NoAgent::Untrusted(why));
        }
        let socket = paths::socket(store);
        match meet(&socket).await {
            Ok(Met::Serves(grpc)) => return Ok(AgentClient { grpc }),
            Ok(Met::Refuses(why)) => return Err(Unavailable(why)),
            Err(e @ NoAgent::Untrusted(_)) => return Err(e),
            Ok(Met::Leaving) | Err(_) => {}
        }
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Unavailable(e.to_string()))?;
        }
        if let Some(why) = untrusted_dir(&dir) {
            return Err(NoAgent::Untrusted(why));
        }
        // One starter at a time: when an agent dies under a burst, dozens of plugins notice at
        // once; the first starts the new agent, the others find it running.
        let _starting = StartLock::take(
            &paths::dir(store).join("agent.start.lock"),
            Duration::from_secs(30),
        )
        .await
        .map_err(Unavailable)?;
        let mut spawned = false;
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(15) {
            match meet(&socket).await {
                Ok(Met::Serves(grpc)) => return Ok(AgentClient { grpc }),
                Ok(Met::Refuses(why)) => return Err(Unavailable(why)),
                Ok(Met::Leaving) => last = "the agent is leaving".into(),
                Err(e @ NoAgent::Untrusted(_)) => return Err(e),
                Err(e) => last = e.to_string(),
            }
            // A store the service agent claims gets no agent of ours: it is (re)starting.
            if !spawned && !service::claimed(store) {
                spawn(store).map_err(|e| Unavailable(format!("starting the agent: {e}")))?;
                spawned = true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Unavailable(format!("the agent did not start: {last}")))
    }

    /// Connects to a running agent only (tests, status).
    pub async fn connect_running(store: &Path) -> Result<AgentClient, String> {
        Ok(AgentClient {
            grpc: dial(&paths::socket(store))
                .await
                .map_err(|e| e.to_string())?,
        })
    }

    /// The machines the agent's caches hold (no EC2 call).
    pub async fn fleet(&self) -> Result<super::proto::FleetReply, String> {
        self.grpc
            .clone()
            .fleet(super::proto::FleetRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|e| e.to_string())
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

    /// Runs `op` (with `input`) on `config`'s machine in the agent, printing its progress
    /// through `progress`'s sink as it arrives and updating `config` with what the operation
    /// recorded.
    pub async fn run(
        &self,
        op: Op,
        input: &Input,
        config: &mut Config,
        progress: &Progress,
    ) -> Result<Outcome, AgentError> {
        let creds = aws::credentials(&config.asked)
            .await
            .map_err(AgentError::Op)?;
        let settings = aws::settings(&config.asked).await.map_err(AgentError::Op)?;
        let mut request = RunRequest {
            operation: super::op_to_proto(op) as i32,
            config_json: config.to_json(),
            settings: Some(super::settings_to_proto(&settings)),
            build: Some(identity::this()),
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
            ..RunRequest::default()
        };
        super::input_to_proto(input, &mut request);
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
                    if let Some(e) = relayed(&r) {
                        return Err(AgentError::Op(e));
                    }
                    debug!(
                        "agent: {op:?} answered from an observation {:.1}s old",
                        r.observed_seconds_ago
                    );
                    return Ok(Outcome {
                        state: super::state_from_proto(r.state),
                        text: r.text,
                        age: Duration::from_secs_f64(r.observed_seconds_ago.max(0.0)),
                    });
                }
            }
        }
    }
}

/// An exclusive `flock` held while one plugin starts the agent (released on drop).
struct StartLock(#[allow(dead_code)] std::fs::File);

impl StartLock {
    async fn take(path: &Path, limit: Duration) -> Result<StartLock, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let start = Instant::now();
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(StartLock(f)),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!("{}: {e}", path.display()));
                }
            }
            if start.elapsed() >= limit {
                return Err("another plugin is still starting the agent".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The store a config belongs to, when it has one the agent can serve.
pub fn store_of(config: &Config) -> Option<PathBuf> {
    (!config.asked.store_path.is_empty()).then(|| PathBuf::from(&config.asked.store_path))
}

/// The failure a run's result reports, if any: the agent's text, with AWS's code so that its
/// kind ([`Error::kind`]) is the one the agent met.
pub(crate) fn relayed(r: &RunResult) -> Option<Error> {
    (!r.error.is_empty()).then(|| Error::Relayed {
        text: r.error.clone(),
        code: r.error_code.clone(),
    })
}
