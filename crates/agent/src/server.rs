//! The agent process: holds the store's lock (one agent per store), serves the `Agent` gRPC
//! service on a Unix socket only its own user may use, runs every operation with shared EC2
//! clients, token buckets and a state cache, and exits by itself after an idle period — or,
//! once its executable was replaced by a new version, as soon as the operations under way are
//! done (a plugin of the new build then starts an agent of its own).

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider, SharedHttpClient};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::metrics::registry::{Scrape, market_of};
use super::metrics::{Metrics, ec2_calls, exporter, prices};
use super::paths;
use super::proto::agent_server::{Agent, AgentServer};
use super::proto::{
    Build, FleetMachine, FleetReply, FleetRequest, HelloReply, HelloRequest, RunEvent, RunRequest,
    RunResult, StatusReply, StatusRequest, Verdict, run_event,
};
use super::{identity, service};
use ec2spot_ec2::aws::proxy::Proxy;
use ec2spot_ec2::aws::throttle::{Rate, Throttle};
use ec2spot_ec2::aws::{self, ClientSettings};
use ec2spot_ec2::options::config::Config;
use ec2spot_ec2::progress::{Event, Progress};
use ec2spot_ec2::state::cache::{CachePolicy, Seen, StateCache, Tally};
use ec2spot_ec2::state::context::Context;
use ec2spot_ec2::{machine_lock, ops};

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
    /// The oldest state answered while EC2 throttles or cannot be reached.
    pub max_stale: Duration,
    /// An EC2 client (with its credentials and state cache) unused for this long is dropped.
    pub client_idle: Duration,
    /// Run as the store's service (systemd): own the socket (see [`service`](crate::service)).
    pub service: bool,
    /// Serve Prometheus metrics on this address (none: no metrics, nothing counted).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Settings {
    /// Defaults for `store`.
    pub fn new(store: PathBuf) -> Self {
        Settings {
            store,
            idle: Duration::from_secs(600),
            rates: Vec::new(),
            rate_factor: 0.9,
            state_ttl: Duration::from_secs(30),
            state_window: Duration::from_millis(50),
            max_stale: Duration::from_secs(60),
            client_idle: Duration::from_secs(120),
            service: false,
            metrics_listen: None,
        }
    }
}

/// How long an exiting agent waits for its spare key pairs to be deleted.
const SPARE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which EC2 client serves a request: the plugin's client settings and access key id.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Identity {
    settings: ClientSettings,
    access_key_id: String,
}

/// An EC2 client with the credentials it was built with (kept only while it is used).
struct Client {
    secret: String,
    token: String,
    context: Context,
    cache: Arc<StateCache>,
    last_used: Instant,
}

/// What the agent shares among all operations.
struct Shared {
    settings: Settings,
    /// HTTPS clients (connection pools) per proxy and CA bundle.
    http: Mutex<HashMap<(Proxy, Vec<u8>), SharedHttpClient>>,
    throttles: Mutex<HashMap<(String, String), Arc<Throttle>>>,
    clients: Mutex<HashMap<Identity, Client>>,
    in_flight: AtomicUsize,
    operations: AtomicU64,
    last_activity: Mutex<Instant>,
    /// Set once this agent's executable was replaced: it takes no new work and leaves.
    draining: AtomicBool,
    /// The store's agent lock, given up when draining so an agent of the new build can start.
    store_lock: Mutex<Option<std::fs::File>>,
    /// The socket file we bound (device, inode): removed on exit only if still ours.
    socket: (PathBuf, u64, u64),
    /// The metrics, when served.
    metrics: Option<Arc<Metrics>>,
    /// What the state caches count (the metrics' when served).
    tally: Arc<Tally>,
}

impl Shared {
    /// What an agent shares that holds the store's agent `lock` and bound `socket` (its
    /// path, device and inode), before any request.
    fn new(settings: Settings, lock: std::fs::File, socket: (PathBuf, u64, u64)) -> Self {
        let metrics = settings.metrics_listen.map(|_| Metrics::new());
        Shared {
            tally: metrics
                .as_ref()
                .map_or_else(Arc::default, |m| Arc::clone(&m.tally)),
            metrics,
            settings,
            http: Mutex::new(HashMap::new()),
            throttles: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            operations: AtomicU64::new(0),
            last_activity: Mutex::new(Instant::now()),
            draining: AtomicBool::new(false),
            store_lock: Mutex::new(Some(lock)),
            socket,
        }
    }

    fn touch(&self) {
        *self.last_activity.lock().expect("activity") = Instant::now();
    }

    /// The context for a request: one EC2 client (and state cache) per client settings and
    /// credentials identity; one set of token buckets per region and endpoint.
    fn context(
        &self,
        settings: &ClientSettings,
        creds: &super::proto::Credentials,
    ) -> Result<Context, String> {
        let id = Identity {
            settings: settings.clone(),
            access_key_id: creds.access_key_id.clone(),
        };
        let mut clients = self.clients.lock().expect("clients");
        if let Some(c) = clients.get_mut(&id)
            && c.secret == creds.secret_access_key
            && c.token == creds.session_token
        {
            c.last_used = Instant::now();
            return Ok(c.context.clone());
        }
        let throttle = Arc::clone(
            self.throttles
                .lock()
                .expect("throttles")
                .entry((settings.region.clone(), settings.endpoint_url.clone()))
                .or_insert_with(|| Throttle::new(&self.settings.rates, self.settings.rate_factor)),
        );
        let http = self.http_client(settings)?;
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
        let client = self.counted(
            aws::build(
                settings,
                SharedCredentialsProvider::new(credentials),
                Some((&throttle, http)),
            )
            .map_err(|e| e.to_string())?,
        );
        let cache = StateCache::counted(
            client.clone(),
            CachePolicy {
                ttl: self.settings.state_ttl,
                window: self.settings.state_window,
                keep: Duration::from_secs(600),
                max_stale: self.settings.max_stale,
            },
            // Read now: a fresh store gets its id with its first create.
            ec2spot_ec2::manager::read(&self.settings.store.to_string_lossy()),
            Arc::clone(&self.tally),
        );
        let context = Context::cached(client, Arc::clone(&cache), Arc::default());
        if let Some(old) = clients.insert(
            id,
            Client {
                secret: creds.secret_access_key.clone(),
                token: creds.session_token.clone(),
                context: context.clone(),
                cache,
                last_used: Instant::now(),
            },
        ) {
            old.cache.close();
            let old = old.context;
            tokio::spawn(async move { old.close_spare_key().await });
        }
        Ok(context)
    }

    /// The HTTPS client (connection pool) for `settings`' proxy and CA bundle, shared.
    fn http_client(&self, settings: &ClientSettings) -> Result<SharedHttpClient, String> {
        let mut http = self.http.lock().expect("http clients");
        let key = (settings.proxy.clone(), settings.ca_bundle.clone());
        if let Some(h) = http.get(&key) {
            return Ok(h.clone());
        }
        let h = aws::http_client(settings).map_err(|e| e.to_string())?;
        http.insert(key, h.clone());
        Ok(h)
    }

    /// `client`, counting its requests into the metrics when they are served.
    fn counted(&self, client: aws_sdk_ec2::Client) -> aws_sdk_ec2::Client {
        match &self.metrics {
            Some(m) => aws_sdk_ec2::Client::from_conf(
                client
                    .config()
                    .to_builder()
                    .interceptor(ec2_calls::CountCalls(Arc::clone(m)))
                    .build(),
            ),
            None => client,
        }
    }

    /// Every instance the state caches hold, as last seen.
    fn seen(&self) -> Vec<Seen> {
        let clients = self.clients.lock().expect("clients");
        clients.values().flat_map(|c| c.cache.snapshot()).collect()
    }

    /// What a scrape needs from the agent.
    fn scrape(&self) -> Scrape {
        let (mut waited, mut paced) = (Duration::ZERO, 0);
        for t in self.throttles.lock().expect("throttles").values() {
            waited += t.waited();
            paced += t.waits();
        }
        Scrape {
            seen: self.seen(),
            waited,
            paced,
        }
    }

    /// Reads the spot price of every pool a running machine is in whose price is unknown or
    /// old (metrics only), each with the EC2 client that saw the machine.
    fn read_prices(&self) {
        let Some(m) = &self.metrics else { return };
        let clients = self.clients.lock().expect("clients");
        for c in clients.values() {
            for p in m.priced(&c.cache.snapshot()) {
                if p.instance_type.is_empty() || !m.spot_prices.claim(&p.instance_type, &p.zone) {
                    continue;
                }
                let (m, ec2) = (Arc::clone(m), c.context.client.clone());
                tokio::spawn(async move {
                    let price = ec2spot_ec2::resources::spot_price::current(
                        &ec2,
                        &p.instance_type,
                        &p.zone,
                    )
                    .await;
                    if let Err(e) = &price {
                        info!("spot price of {} in {}: {e}", p.instance_type, p.zone);
                    }
                    m.spot_prices
                        .set(&p.instance_type, &p.zone, price.ok().flatten());
                });
            }
        }
    }

    /// The machines of the state caches for `fleet`.
    fn fleet(&self) -> FleetReply {
        let machines = self
            .seen()
            .into_iter()
            .map(|s| self.fleet_machine(s))
            .collect();
        FleetReply {
            machines,
            metrics: self.metrics.is_some(),
        }
    }

    fn fleet_machine(&self, s: Seen) -> FleetMachine {
        let Some(i) = &s.instance else {
            return FleetMachine {
                instance_id: s.id,
                observed_seconds_ago: s.age.as_secs_f64(),
                spot_price: -1.0,
                on_demand_price: -1.0,
                ..FleetMachine::default()
            };
        };
        let (instance_type, zone) = (i.instance_type.clone(), i.zone.clone());
        let spot = self
            .metrics
            .as_ref()
            .and_then(|m| m.spot_prices.get(&instance_type, &zone));
        FleetMachine {
            instance_id: s.id,
            ec2_state: i.ec2_state.clone(),
            market: market_of(i).to_string(),
            launched_unix: i.launched_unix,
            interruption: s.interruption.unwrap_or_default(),
            observed_seconds_ago: s.age.as_secs_f64(),
            spot_price: spot.unwrap_or(-1.0),
            on_demand_price: prices::on_demand(&instance_type, &zone).unwrap_or(-1.0),
            known: true,
            instance_type,
            zone,
        }
    }

    /// Drops the clients (credentials, state caches) nobody used for `client_idle`, and the
    /// HTTPS clients no remaining client uses: rotating credentials must not grow the agent.
    fn evict(&self) {
        let idle = self.settings.client_idle;
        let mut clients = self.clients.lock().expect("clients");
        clients.retain(|_, c| {
            let keep = c.last_used.elapsed() < idle;
            if keep {
                c.context.expire_spare_key();
            } else {
                c.cache.close();
                let context = c.context.clone();
                tokio::spawn(async move { context.close_spare_key().await });
            }
            keep
        });
        let used: Vec<(Proxy, Vec<u8>)> = clients
            .keys()
            .map(|id| (id.settings.proxy.clone(), id.settings.ca_bundle.clone()))
            .collect();
        self.http
            .lock()
            .expect("http clients")
            .retain(|k, _| used.contains(k));
    }

    /// Deletes every client's spare key pair (the agent is leaving), waiting at most
    /// [`SPARE_CLOSE_TIMEOUT`].
    async fn close_spare_keys(&self) {
        let contexts: Vec<Context> = {
            let clients = self.clients.lock().expect("clients");
            clients.values().map(|c| c.context.clone()).collect()
        };
        let closing = async {
            for c in &contexts {
                c.close_spare_key().await;
            }
        };
        if tokio::time::timeout(SPARE_CLOSE_TIMEOUT, closing)
            .await
            .is_err()
        {
            info!("spare key pairs not all deleted in {SPARE_CLOSE_TIMEOUT:?}; gc finds them");
        }
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Stops taking work because this agent's executable was replaced: gives up the socket
    /// path and the store lock (so a plugin of the new build can start its agent), and leaves
    /// once the operations under way are done.
    fn drain(&self, why: &str) {
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        info!(
            "draining ({why}): finishing {} operation(s), taking no new work",
            self.in_flight.load(Ordering::SeqCst)
        );
        self.remove_socket();
        self.store_lock.lock().expect("store lock").take();
    }

    /// Removes the socket file if it is still the one this agent bound.
    fn remove_socket(&self) {
        let (path, dev, ino) = &self.socket;
        if std::fs::metadata(path).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Whether a plugin of build `plugin` may have its work done here, and if not, why.
    fn verdict(&self, plugin: &Build) -> (Verdict, String) {
        if !self.draining() && !identity::current() {
            self.drain("its executable was replaced");
        }
        if self.draining() {
            return (
                Verdict::Draining,
                format!(
                    "the agent's executable {} was replaced; it is leaving",
                    identity::exe_path().display()
                ),
            );
        }
        if identity::same(plugin) {
            (Verdict::Serve, String::new())
        } else {
            (
                Verdict::Refused,
                format!(
                    "the agent runs {}, the plugin {}",
                    identity::describe(&identity::this()),
                    identity::describe(plugin)
                ),
            )
        }
    }
}

struct Service {
    shared: Arc<Shared>,
}

type RunStream = Pin<Box<dyn Stream<Item = Result<RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for Service {
    type RunStream = RunStream;

    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let plugin = request.into_inner().build.unwrap_or_default();
        let (verdict, reason) = self.shared.verdict(&plugin);
        if verdict != Verdict::Serve {
            info!(
                "hello from {}: {verdict:?} ({reason})",
                identity::describe(&plugin)
            );
        }
        Ok(Response::new(HelloReply {
            build: Some(identity::this()),
            verdict: verdict as i32,
            reason,
        }))
    }

    async fn run(&self, request: Request<RunRequest>) -> Result<Response<RunStream>, Status> {
        let r = request.into_inner();
        let (verdict, reason) = self.shared.verdict(&r.build.clone().unwrap_or_default());
        match verdict {
            Verdict::Serve => {}
            Verdict::Draining => return Err(Status::unavailable(reason)),
            _ => return Err(Status::failed_precondition(reason)),
        }
        let op = super::proto::Operation::try_from(r.operation)
            .ok()
            .and_then(super::op_from_proto)
            .ok_or_else(|| Status::invalid_argument("unknown operation"))?;
        let mut config = Config::default();
        config
            .merge_json(&r.config_json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let input = super::input_from_proto(&r);
        let creds = r
            .credentials
            .ok_or_else(|| Status::invalid_argument("no credentials"))?;
        let settings = super::settings_from_proto(
            r.settings
                .ok_or_else(|| Status::invalid_argument("no client settings"))?,
        );
        let context = self
            .shared
            .context(&settings, &creds)
            .map_err(Status::invalid_argument)?;
        drop(creds);
        let shared = Arc::clone(&self.shared);
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        shared.operations.fetch_add(1, Ordering::Relaxed);
        shared.touch();
        info!("{op:?} for machine {}", config.asked.machine_name);
        let (tx, rx) = mpsc::channel(64);
        // The operation runs to its end even if the plugin goes away: a create finishes (or
        // cleans up) rather than stopping half-way.
        tokio::spawn(perform(shared, context, op, input, config, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn fleet(&self, _: Request<FleetRequest>) -> Result<Response<FleetReply>, Status> {
        Ok(Response::new(self.shared.fleet()))
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
        let (clients, cached_states) = {
            let clients = self.shared.clients.lock().expect("clients");
            (
                clients.len() as u64,
                clients.values().map(|c| c.cache.len() as u64).sum(),
            )
        };
        Ok(Response::new(StatusReply {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            operations: self.shared.operations.load(Ordering::Relaxed),
            ec2_calls: calls,
            throttle_waits: waits,
            build: Some(identity::this()),
            draining: self.shared.draining(),
            in_flight: self.shared.in_flight.load(Ordering::SeqCst) as u64,
            clients,
            http_clients: self.shared.http.lock().expect("http clients").len() as u64,
            cached_states,
            machine_locks: machine_lock::held() as u64,
        }))
    }
}

/// Runs operation `op` for a `run` request to its end, sending its progress lines and then
/// its result to `tx`, and counts it done.
async fn perform(
    shared: Arc<Shared>,
    context: Context,
    op: ops::Op,
    input: ops::Input,
    mut config: Config,
    tx: mpsc::Sender<Result<RunEvent, Status>>,
) {
    // One changing operation per machine at a time, also across processes.
    let serial = if op.changes() {
        machine_lock::lock(&config.asked).await
    } else {
        None
    };
    let lines = tx.clone();
    let mut progress = Progress::to(Arc::new(move |line: &str| {
        let _ = lines.try_send(Ok(RunEvent {
            event: Some(run_event::Event::Progress(line.to_string())),
        }));
    }));
    if let Some(m) = &shared.metrics {
        let m = Arc::clone(m);
        progress = progress.with_events(Arc::new(move |e: &Event| match e {
            Event::CapacityFailure {
                market,
                instance_type,
                zone,
                code,
            } => m.capacity_failure(market, instance_type, zone, code),
        }));
    }
    let started = Instant::now();
    let result = ops::run(&context, op, &input, &mut config, &progress).await;
    if let Some(m) = &shared.metrics
        && matches!(op, ops::Op::Create | ops::Op::ResumeCreate)
    {
        count_create(m, &config, &result, started.elapsed());
    }
    match serial {
        Some(lock) if op == ops::Op::Remove && result.is_ok() => lock.remove(),
        other => drop(other),
    }
    let reply = run_result(op, result, &config);
    let _ = tx
        .send(Ok(RunEvent {
            event: Some(run_event::Event::Result(reply)),
        }))
        .await;
    shared.touch();
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// Counts a create's end: the market it got (`fallback` for on-demand after asking for
/// spot), its pool and outcome (`ok`, else AWS's code or `capacity`, `error`).
fn count_create(
    m: &Metrics,
    config: &Config,
    result: &ec2spot_ec2::aws::error::Result<ops::Outcome>,
    took: Duration,
) {
    use ec2spot_ec2::aws::error::Error;
    let (asked, made) = (&config.asked, &config.made);
    let wanted = if asked.request_spot_instance {
        "spot"
    } else {
        "on-demand"
    };
    let market = match (result, made.market.as_str()) {
        (Ok(_), "on-demand") if asked.request_spot_instance => "fallback",
        (Ok(_), "spot") => "spot",
        (Ok(_), "on-demand") => "on-demand",
        _ => wanted,
    };
    let outcome = match result {
        Ok(_) => "ok",
        Err(Error::Capacity { .. }) => "capacity",
        Err(e @ Error::Aws { .. }) => e.code().unwrap_or("error"),
        Err(_) => "error",
    };
    // Where it landed; for a create that did not land, the first pool it was to try.
    let first_pool = config.answered.as_ref().and_then(|a| a.pools.first());
    let first = |s: &str| s.split(',').next().unwrap_or_default().trim().to_string();
    let pool = if made.instance_type.is_empty() {
        first_pool.map_or_else(
            || (first(&asked.instance_type), first(&asked.zone)),
            |p| (p.instance_type.clone(), p.availability_zone.clone()),
        )
    } else {
        (made.instance_type.clone(), made.zone.clone())
    };
    m.create(market, (&pool.0, &pool.1), outcome, took);
}

/// The answer to a `run` request: the operation's outcome and the machine's config after it.
fn run_result(
    op: ops::Op,
    result: ec2spot_ec2::aws::error::Result<ops::Outcome>,
    config: &Config,
) -> RunResult {
    match result {
        Ok(o) => RunResult {
            config_json: config.to_json(),
            error: String::new(),
            state: super::state_to_proto(o.state),
            text: o.text,
            observed_seconds_ago: o.age.as_secs_f64(),
            error_code: String::new(),
        },
        Err(e) => {
            info!(
                "{op:?} for machine {} failed: {e}",
                config.asked.machine_name
            );
            RunResult {
                config_json: config.to_json(),
                error: e.to_string(),
                error_code: e.code().unwrap_or_default().to_string(),
                ..RunResult::default()
            }
        }
    }
}

/// Takes the store's agent lock without waiting; `None` when another agent holds it.
fn take_lock(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether a connecting process runs as this agent's user.
fn same_user(s: &UnixStream) -> bool {
    // SAFETY: geteuid takes no arguments, cannot fail and only reads this process's ids.
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

/// Binds the agent's socket so that only its user can ever connect: created with mode 0600
/// (no moment with looser permissions) inside the 0700 agent directory.
fn bind_private(socket: &Path) -> Result<UnixListener, String> {
    // SAFETY: umask only swaps this process's file-creation mask; it is restored at once. Other
    // threads creating files meanwhile get a stricter mask, never a looser one.
    let old = unsafe { libc::umask(0o077) };
    let l = UnixListener::bind(socket);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l.map_err(|e| format!("binding {}: {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok(l)
}

/// Runs the agent for `settings.store` until it has been idle for `settings.idle`, or, once
/// its executable was replaced, until the operations under way are done. Returns at once (Ok)
/// when another agent already serves the store.
pub async fn serve(settings: Settings) -> Result<(), String> {
    let Some(lock) = claim_store(&settings).await? else {
        return Ok(());
    };
    let socket = paths::socket(&settings.store);
    let _ = std::fs::remove_file(&socket); // a crashed (or drained) agent's; we hold the lock
    let listener = bind_private(&socket)?;
    let bound = std::fs::metadata(&socket).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared::new(
        settings.clone(),
        lock,
        (socket.clone(), bound.dev(), bound.ino()),
    ));
    serve_metrics(&shared, &settings).await?;
    info!(
        "agent {} ({}) serving {}",
        std::process::id(),
        identity::describe(&identity::this()),
        socket.display()
    );
    let idle = until_leaving(Arc::clone(&shared), settings);
    let incoming = UnixListenerStream::new(listener).filter(|s| match s {
        Ok(s) => same_user(s),
        Err(_) => true,
    });
    let server = tonic::transport::Server::builder()
        .add_service(AgentServer::new(Service { shared }))
        .serve_with_incoming_shutdown(incoming, idle);
    server.await.map_err(|e| e.to_string())
}

/// Starts the metrics endpoint when asked for, and notes its address in the agent directory
/// (`metrics-address`: a port 0 is the one the system chose).
async fn serve_metrics(shared: &Arc<Shared>, settings: &Settings) -> Result<(), String> {
    let (Some(addr), Some(_)) = (settings.metrics_listen, &shared.metrics) else {
        let _ = std::fs::remove_file(paths::metrics_address(&settings.store));
        return Ok(());
    };
    let listener = exporter::bind(addr).await?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::fs::write(paths::metrics_address(&settings.store), bound.to_string())
        .map_err(|e| format!("noting the metrics address: {e}"))?;
    info!("metrics at http://{bound}/metrics");
    let scraped = Arc::clone(shared);
    let render = Arc::new(move || {
        let m = scraped.metrics.as_ref().expect("metrics on");
        m.render(&scraped.scrape())
    });
    tokio::spawn(exporter::serve(listener, render));
    Ok(())
}

/// Makes the agent directory (0700) and takes the store's agent lock; `None` when another
/// agent serves the store. The service claims the store first and waits for the lock.
async fn claim_store(settings: &Settings) -> Result<Option<std::fs::File>, String> {
    let dir = paths::dir(&settings.store);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    loop {
        if settings.service {
            // Claimed before the lock: an agent a plugin started sees it and leaves.
            service::mark(&settings.store).map_err(|e| format!("service marker: {e}"))?;
        }
        match take_lock(&paths::lock(&settings.store)).map_err(|e| format!("agent lock: {e}"))? {
            Some(lock) => return Ok(Some(lock)),
            // The service waits for the store; it does not exit into a restart loop.
            None if settings.service => tokio::time::sleep(Duration::from_millis(200)).await,
            None => {
                info!("another agent serves {}", settings.store.display());
                return Ok(None);
            }
        }
    }
}

/// Resolves when the agent is to leave, which stops the server: on SIGTERM, once drained,
/// or after `settings.idle` without operations. Looks around every tick (at most a second).
async fn until_leaving(shared: Arc<Shared>, settings: Settings) {
    let tick = settings
        .idle
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        if terminated_within(terminate.as_mut(), tick).await {
            // Stopped (`systemctl stop`, a kill): plugins may start agents again.
            info!("terminated: exiting");
            if settings.service {
                service::unmark(&settings.store);
            }
            shared.remove_socket();
            shared.close_spare_keys().await;
            return;
        }
        housekeeping(&shared, &settings);
        let quiet = shared.last_activity.lock().expect("activity").elapsed();
        let busy = shared.in_flight.load(Ordering::SeqCst) > 0;
        if !busy && shared.draining() {
            info!("drained: exiting");
            shared.close_spare_keys().await;
            return;
        }
        if !busy && quiet >= settings.idle {
            info!("idle for {quiet:?}: exiting");
            shared.remove_socket();
            shared.close_spare_keys().await;
            return;
        }
    }
}

/// Waits `tick`; whether SIGTERM came meanwhile (`terminate`: its stream, when it could be
/// set up).
async fn terminated_within(
    terminate: Option<&mut tokio::signal::unix::Signal>,
    tick: Duration,
) -> bool {
    match terminate {
        Some(t) => tokio::select! {
            _ = t.recv() => true,
            _ = tokio::time::sleep(tick) => false,
        },
        None => {
            tokio::time::sleep(tick).await;
            false
        }
    }
}

/// An agent's chores every tick: the service renews its claim on the store (an agent a
/// plugin started drains once the service claims it), unused clients are dropped, and an
/// agent whose executable was replaced drains.
fn housekeeping(shared: &Shared, settings: &Settings) {
    if settings.service {
        let _ = service::mark(&settings.store);
    } else if !shared.draining() && service::claimed(&settings.store) {
        shared.drain("the store's service agent takes it over");
    }
    shared.evict();
    shared.read_prices();
    if !shared.draining() && !identity::current() {
        shared.drain("its executable was replaced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failures_kind_crosses_the_agent() {
        use ec2spot_ec2::aws::error::{Error, ErrorKind};
        use ec2spot_ec2::ops::{Op, Outcome};
        let config = ec2spot_ec2::Config::default();
        let met = Error::Aws {
            step: "launching spot (RunInstances)".into(),
            code: "InsufficientInstanceCapacity".into(),
            message: "no room".into(),
        };
        let answer = run_result(Op::Create, Err(met.clone()), &config);
        let relayed = crate::client::relayed(&answer).expect("a failure");
        assert_eq!(relayed.to_string(), met.to_string());
        assert_eq!(relayed.kind(), ErrorKind::Capacity);
        assert_eq!(relayed.code(), Some("InsufficientInstanceCapacity"));
        let other = run_result(Op::Create, Err(Error::Other("x".into())), &config);
        assert_eq!(
            crate::client::relayed(&other).unwrap().kind(),
            ErrorKind::Other
        );
        let done = run_result(
            Op::State,
            Ok(Outcome {
                state: ec2spot_ec2::state::machine_state::MachineState::Running,
                text: String::new(),
                age: std::time::Duration::ZERO,
            }),
            &config,
        );
        assert!(crate::client::relayed(&done).is_none());
    }
}
