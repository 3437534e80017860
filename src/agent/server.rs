//! The agent process: holds the store's lock (one agent per store), serves the `Agent` gRPC
//! service on a Unix socket only its own user may use, runs every operation with shared EC2
//! clients, token buckets and a state cache, and exits by itself after an idle period.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::{Credentials, SharedHttpClient};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::paths;
use super::proto::agent_server::{Agent, AgentServer};
use super::proto::{RunEvent, RunRequest, RunResult, StatusReply, StatusRequest, run_event};
use crate::ec2::config::Config;
use crate::ec2::context::Context;
use crate::ec2::progress::Progress;
use crate::ec2::state_cache::StateCache;
use crate::ec2::throttle::{Rate, Throttle};
use crate::ec2::{aws, ops};

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The docker-machine store it serves.
    pub store: PathBuf,
    /// Exit after this long without operations.
    pub idle: Duration,
    /// Token bucket overrides per class.
    pub rates: Vec<(String, Rate)>,
    /// Scale of every bucket (e.g. 0.9 leaves AWS's buckets room for other clients).
    pub rate_factor: f64,
    /// How long a state observation answers questions.
    pub state_ttl: Duration,
    /// How long state questions are gathered into one call.
    pub state_window: Duration,
}

impl Settings {
    /// Defaults for `store`.
    pub fn new(store: PathBuf) -> Self {
        Settings {
            store,
            idle: Duration::from_secs(600),
            rates: Vec::new(),
            rate_factor: 0.9,
            state_ttl: Duration::from_secs(15),
            state_window: Duration::from_millis(50),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Identity {
    region: String,
    endpoint: String,
    access_key_id: String,
    retries: i64,
}

struct Client {
    secret: String,
    token: String,
    context: Context,
}

/// What the agent shares among all operations.
struct Shared {
    settings: Settings,
    http: SharedHttpClient,
    throttles: Mutex<HashMap<(String, String), Arc<Throttle>>>,
    clients: Mutex<HashMap<Identity, Client>>,
    in_flight: AtomicUsize,
    operations: AtomicU64,
    /// One lock per machine: a `rm` arriving while that machine's create still runs (the
    /// runner killed docker-machine, the agent went on) waits for it instead of racing it.
    machines: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    last_activity: Mutex<Instant>,
}

impl Shared {
    fn touch(&self) {
        *self.last_activity.lock().expect("activity") = Instant::now();
    }

    /// The context for a machine: one EC2 client (and state cache) per region, endpoint and
    /// credentials identity; one set of token buckets per region and endpoint.
    fn context(
        &self,
        config: &Config,
        endpoint: &str,
        creds: &super::proto::Credentials,
    ) -> Context {
        let id = Identity {
            region: config.region.clone(),
            endpoint: endpoint.to_string(),
            access_key_id: creds.access_key_id.clone(),
            retries: config.retry_count,
        };
        let mut clients = self.clients.lock().expect("clients");
        if let Some(c) = clients.get(&id) {
            if c.secret == creds.secret_access_key && c.token == creds.session_token {
                return c.context.clone();
            }
        }
        let throttle = Arc::clone(
            self.throttles
                .lock()
                .expect("throttles")
                .entry((id.region.clone(), id.endpoint.clone()))
                .or_insert_with(|| Throttle::new(&self.settings.rates, self.settings.rate_factor)),
        );
        let expiry = (creds.expires_unix > 0)
            .then(|| std::time::UNIX_EPOCH + Duration::from_secs(creds.expires_unix as u64));
        let token = (!creds.session_token.is_empty()).then(|| creds.session_token.clone());
        let credentials = Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            token,
            expiry,
            "ec2spot-plugin",
        );
        let client = aws::client_from_parts(
            &id.region,
            endpoint,
            credentials,
            id.retries,
            self.http.clone(),
            &throttle,
        );
        let cache = StateCache::new(
            client.clone(),
            self.settings.state_ttl,
            self.settings.state_window,
            Duration::from_secs(600),
        );
        let context = Context::cached(client, cache);
        clients.insert(
            id,
            Client {
                secret: creds.secret_access_key.clone(),
                token: creds.session_token.clone(),
                context: context.clone(),
            },
        );
        context
    }
}

struct Service {
    shared: Arc<Shared>,
}

type RunStream = Pin<Box<dyn Stream<Item = Result<RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for Service {
    type RunStream = RunStream;

    async fn run(&self, request: Request<RunRequest>) -> Result<Response<RunStream>, Status> {
        let r = request.into_inner();
        let op = super::proto::Operation::try_from(r.operation)
            .ok()
            .and_then(super::op_from_proto)
            .ok_or_else(|| Status::invalid_argument("unknown operation"))?;
        let mut config = Config::default();
        config
            .merge_json(&r.config_json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let creds = r
            .credentials
            .ok_or_else(|| Status::invalid_argument("no credentials"))?;
        let context = self.shared.context(&config, &r.endpoint_url, &creds);
        let shared = Arc::clone(&self.shared);
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        shared.operations.fetch_add(1, Ordering::Relaxed);
        shared.touch();
        info!("{op:?} for machine {}", config.machine_name);
        let (tx, rx) = mpsc::channel(64);
        // The operation runs to its end even if the plugin goes away: a create finishes (or
        // cleans up) rather than stopping half-way.
        let changes = !matches!(op, ops::Op::State | ops::Op::Url | ops::Op::Ip);
        let machine_lock = changes.then(|| {
            let key = if config.machine_id.is_empty() {
                config.machine_name.clone()
            } else {
                config.machine_id.clone()
            };
            Arc::clone(
                shared
                    .machines
                    .lock()
                    .expect("machines")
                    .entry(key)
                    .or_default(),
            )
        });
        tokio::spawn(async move {
            let _serial = match &machine_lock {
                Some(l) => Some(l.lock().await),
                None => None,
            };
            let lines = tx.clone();
            let progress = Progress::to(Arc::new(move |line: &str| {
                let _ = lines.try_send(Ok(RunEvent {
                    event: Some(run_event::Event::Progress(line.to_string())),
                }));
            }));
            let result = ops::run(&context, op, &mut config, &progress).await;
            let reply = match result {
                Ok(o) => RunResult {
                    config_json: config.to_json(),
                    error: String::new(),
                    state: o.state.wire() as i32,
                    text: o.text,
                    observed_seconds_ago: o.age.as_secs_f64(),
                },
                Err(e) => {
                    info!("{op:?} for machine {} failed: {e}", config.machine_name);
                    RunResult {
                        config_json: config.to_json(),
                        error: e.to_string(),
                        ..RunResult::default()
                    }
                }
            };
            let _ = tx
                .send(Ok(RunEvent {
                    event: Some(run_event::Event::Result(reply)),
                }))
                .await;
            shared.touch();
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let mut calls: HashMap<String, u64> = HashMap::new();
        let mut waits = 0;
        for t in self.shared.throttles.lock().expect("throttles").values() {
            for (k, v) in t.calls() {
                *calls.entry(k).or_default() += v;
            }
            waits += t.waits();
        }
        Ok(Response::new(StatusReply {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            operations: self.shared.operations.load(Ordering::Relaxed),
            ec2_calls: calls,
            throttle_waits: waits,
        }))
    }
}

/// Takes the store's agent lock without waiting; `None` when another agent holds it.
fn take_lock(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock(2) on a descriptor `f` owns and keeps open; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(Some(f))
    } else {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(e)
        }
    }
}

/// Whether a connecting process runs as this agent's user.
fn same_user(s: &UnixStream) -> bool {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    match s.peer_cred() {
        Ok(c) if c.uid() == me => true,
        Ok(c) => {
            warn!("refused a connection from uid {}", c.uid());
            false
        }
        Err(_) => false,
    }
}

/// Runs the agent for `settings.store` until it has been idle for `settings.idle`. Returns at
/// once (Ok) when another agent already serves the store.
pub async fn serve(settings: Settings) -> Result<(), String> {
    let dir = paths::dir(&settings.store);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let Some(lock) =
        take_lock(&paths::lock(&settings.store)).map_err(|e| format!("agent lock: {e}"))?
    else {
        info!("another agent serves {}", settings.store.display());
        return Ok(());
    };
    let socket = paths::socket(&settings.store);
    let _ = std::fs::remove_file(&socket); // a crashed agent's; we hold the lock
    let listener = {
        // SAFETY: umask(2) only swaps the process's file-creation mask (no memory is passed);
        // the old mask is put back right after the bind.
        let old = unsafe { libc::umask(0o077) };
        let l = UnixListener::bind(&socket);
        // SAFETY: as above: restores the mask read a moment ago.
        unsafe { libc::umask(old) };
        l.map_err(|e| format!("binding {}: {e}", socket.display()))?
    };
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let http = aws::default_http_client();
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        http,
        throttles: Mutex::new(HashMap::new()),
        clients: Mutex::new(HashMap::new()),
        in_flight: AtomicUsize::new(0),
        operations: AtomicU64::new(0),
        machines: Mutex::new(HashMap::new()),
        last_activity: Mutex::new(Instant::now()),
    });
    info!("agent {} serving {}", std::process::id(), socket.display());
    let idle = {
        let shared = Arc::clone(&shared);
        let socket = socket.clone();
        async move {
            let tick = settings
                .idle
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(tick).await;
                let quiet = shared.last_activity.lock().expect("activity").elapsed();
                if shared.in_flight.load(Ordering::SeqCst) == 0 && quiet >= settings.idle {
                    info!("idle for {quiet:?}: exiting");
                    let _ = std::fs::remove_file(&socket);
                    return;
                }
            }
        }
    };
    let incoming = UnixListenerStream::new(listener).filter(|s| match s {
        Ok(s) => same_user(s),
        Err(_) => true,
    });
    let server = tonic::transport::Server::builder()
        .add_service(AgentServer::new(Service { shared }))
        .serve_with_incoming_shutdown(incoming, idle);
    let result = server.await.map_err(|e| e.to_string());
    drop(lock);
    result
}
