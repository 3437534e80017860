//! `docker-machine-driver-ec2spot`: a docker-machine driver plugin when started by
//! docker-machine (`MACHINE_PLUGIN_TOKEN=42`), a small CLI otherwise.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use ec2spot::driver::Ec2Driver;
use ec2spot::logging;
use ec2spot_agent::{paths, server};
use ec2spot_ec2::aws::throttle;
use ec2spot_plugin as plugin;

const ABOUT: &str = "\
ec2spot: a docker-machine driver that runs GitLab Runner's autoscaled CI machines on AWS EC2
spot instances. It is a drop-in replacement for docker-machine's amazonec2 driver: it accepts
every amazonec2-* option, launches spot (or on-demand) instances that are tagged at launch,
fails fast when there is no capacity, and leaves nothing behind on `docker-machine rm`.";

const AFTER_HELP: &str = "\
USE WITH DOCKER-MACHINE
  Put this binary on docker-machine's PATH, then:
    docker-machine create -d ec2spot --amazonec2-request-spot-instance \\
        --amazonec2-region eu-central-1 --amazonec2-instance-type m7i.large my-machine
  docker-machine starts the binary itself; running it by hand does nothing useful.

USE WITH GITLAB RUNNER (docker+machine executor)
  In config.toml change only the driver and keep your MachineOptions:
    [runners.machine]
      MachineDriver = \"ec2spot\"      # was \"amazonec2\"
      MachineOptions = [\"amazonec2-request-spot-instance=true\", \"amazonec2-spot-price=\", ...]

DEBUGGING
  docker-machine --debug <command> (or MACHINE_DEBUG=1) shows this driver's debug lines.
  EC2SPOT_LOG=trace (tracing filter syntax) makes them more verbose.";

#[derive(Parser, Debug)]
#[command(name = "docker-machine-driver-ec2spot", version = ec2spot_agent::identity::VERSION_LINE, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local agent of a docker-machine store: it runs the EC2 work of every plugin
    /// process, sharing rate limits, state reads and clients. Plugins start it on first need;
    /// it can also run as a service (examples/ec2spot-agent.service).
    Agent(AgentArgs),
    /// List what carries this bastion's ownership tags but belongs to no machine of its
    /// docker-machine store (after `rm -f`, a wiped store, …); with --delete, remove it.
    /// Another bastion's resources are never touched. For a bastion whose store is lost, give
    /// its manager id (tag ec2spot:manager) with --manager.
    Gc(GcArgs),
    /// Check what a create with these amazonec2-* options would meet: the options,
    /// credentials, region, VPC, subnets, image, instance types, and every permission
    /// (EC2 DryRun). Creates nothing. Example:
    /// `docker-machine-driver-ec2spot doctor --amazonec2-region eu-west-1 --amazonec2-instance-type t3.large,t3a.large`
    Doctor(DoctorArgs),
    /// The store's machines: name, state, market, type, zone, age, price per hour,
    /// interruption notice. From the store's agent's cache while it runs (no EC2 call),
    /// from EC2 otherwise.
    Fleet(FleetArgs),
    /// Baked images: `image build [--pull IMAGE]… [--amazonec2-… options]` launches a builder
    /// with the usual options, installs Docker (and pulls the images), makes an AMI tagged as
    /// ec2spot's and removes the builder; `image list`; `image prune --keep N`.
    Image(ImageArgs),
}

#[derive(clap::Args, Debug)]
struct FleetArgs {
    /// The docker-machine store (default: $MACHINE_STORAGE_PATH or ~/.docker/machine).
    #[arg(long)]
    store: Option<PathBuf>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Read EC2 even while the agent runs.
    #[arg(long)]
    ec2: bool,
}

#[derive(clap::Args)]
struct ImageArgs {
    /// build, list or prune
    #[arg(value_parser = ["build", "list", "prune"])]
    action: String,
    /// The docker-machine store (its manager id tags the builder and the image).
    #[arg(long)]
    store: Option<PathBuf>,
    /// build: an image to pull into the baked image (repeatable), e.g. the runner's helper.
    #[arg(long = "pull", value_name = "IMAGE")]
    pulls: Vec<String>,
    /// build: the builder's proxy, as docker-machine takes it for the engine
    /// (`--engine-env HTTP_PROXY=http://proxy:3128`; the proxy variables only).
    #[arg(long = "engine-env", value_name = "KEY=VALUE", value_parser = ec2spot_ec2::tools::image::parse_engine_env)]
    engine_env: Vec<(String, String)>,
    /// prune: how many of the newest ready images of each recipe to keep.
    #[arg(long, default_value_t = 2)]
    keep: usize,
    /// build: how long to wait for the builder to power off and for the image.
    #[arg(long, default_value_t = 30)]
    timeout_minutes: u64,
    /// The amazonec2-* options (region, network, instance type, docker version, …).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    options: Vec<String>,
}

impl std::fmt::Debug for ImageArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageArgs")
            .field("action", &self.action)
            .field("store", &self.store)
            .field("pulls", &self.pulls)
            .field(
                "options",
                &format_args!("<{} not shown>", self.options.len()),
            )
            .finish()
    }
}

/// `Debug` shows how many options were given, not them: they may hold credentials.
#[derive(clap::Args)]
struct DoctorArgs {
    /// The docker-machine store (default: $MACHINE_STORAGE_PATH or ~/.docker/machine).
    #[arg(long)]
    store: Option<PathBuf>,
    /// amazonec2-* options as given to `docker-machine create` (their environment
    /// variables are read too, as docker-machine does).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    options: Vec<String>,
}

impl std::fmt::Debug for DoctorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoctorArgs")
            .field("store", &self.store)
            .field(
                "options",
                &format_args!("<{} not shown>", self.options.len()),
            )
            .finish()
    }
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    /// The docker-machine store (default: $MACHINE_STORAGE_PATH or ~/.docker/machine).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Regions to look in (default: every region of the store's machines, else
    /// $AWS_DEFAULT_REGION / $AWS_REGION, else us-east-1). Repeatable.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// EC2 endpoint URL (default: AWS's, or $AWS_ENDPOINT_URL).
    #[arg(long)]
    endpoint: Option<String>,
    /// Remove what was found (default: only list it).
    #[arg(long)]
    delete: bool,
    /// The manager id to collect for: the value of the tag ec2spot:manager (default: the
    /// store's own, kept in <store>/ec2spot/manager-id). Give it for a bastion whose store or
    /// disk is lost: every resource carrying it that no machine of --store knows is an orphan.
    #[arg(long, value_name = "ID")]
    manager: Option<String>,
}

#[derive(clap::Args, Debug)]
struct AgentArgs {
    /// The docker-machine store (default: $MACHINE_STORAGE_PATH or ~/.docker/machine).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Exit after this long without operations (e.g. 600, 10m, 30s; 0 = as soon as none is
    /// under way; never = stay until stopped, as a service).
    #[arg(long, default_value = "10m", value_parser = parse_idle)]
    idle: Duration,
    /// A token bucket size: CLASS=burst/per_second (classes: RunInstances, StartInstances,
    /// TerminateInstances, CreateTags, DeleteVolume, ResourceIntensive, Mutating, Describe,
    /// UnfilteredDescribe); each EC2 action has its own bucket of its class's size. Repeatable.
    #[arg(long = "rate", value_parser = throttle::parse_rate)]
    rates: Vec<(String, throttle::Rate)>,
    /// Scale of every bucket (below 1 leaves room for other clients of the account).
    #[arg(long, default_value_t = 0.9)]
    rate_factor: f64,
    /// How long one EC2 observation answers state questions (0 = none: every question reads
    /// EC2). 30 s: gitlab-runner's `config` checks the machine's Docker daemon itself over TLS
    /// and keeps a positive answer for 5 min, and EC2 posts a spot interruption notice 2 min
    /// ahead — read within this.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    state_ttl: Duration,
    /// While EC2 throttles or cannot be reached, answer the last known state only if it is
    /// younger than this (0 = never answer a stale state; never when EC2 refuses the
    /// credentials).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    max_stale: Duration,
    /// The most `<store>/ec2spot/agent.log` holds before it becomes `agent.log.1` (replacing
    /// the one before): bytes, or with K or M (at most twice this on disk).
    #[arg(long, default_value = "10M", value_parser = parse_size)]
    log_max: u64,
    /// Run as the store's service (the systemd unit): plugins start no agent of their own
    /// while it runs, one they started leaves for it, and it waits for the store instead of
    /// exiting when another agent holds it.
    #[arg(long)]
    service: bool,
    /// Drop an EC2 client (its credentials, state cache and spare key pair) unused for this
    /// long (0 = right after each use).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    client_idle: Duration,
    /// Serve Prometheus metrics at http://ADDRESS/metrics: a port (9742 or :9742) listens on
    /// 127.0.0.1 only, HOST:PORT where given (0.0.0.0:9742 for every interface). Off unless
    /// given. Plugins pass $EC2SPOT_AGENT_METRICS to an agent they start.
    #[arg(long, value_name = "ADDRESS", value_parser = ec2spot_agent::metrics::exporter::parse_listen)]
    metrics_listen: Option<std::net::SocketAddr>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 10m or 600"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"))
}

/// A size: bytes, or with K or M (binary).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, factor) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1024),
        Some('M' | 'm') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n * factor),
        _ => Err(format!("{s:?} is not a size such as 10M, 512K or 65536")),
    }
}

/// `--idle`: a duration, or `never`.
fn parse_idle(s: &str) -> Result<Duration, String> {
    if s.trim().eq_ignore_ascii_case("never") {
        // Long enough to be never, short enough to add to an Instant.
        return Ok(Duration::from_secs(100 * 365 * 24 * 3600));
    }
    parse_duration(s)
}

fn default_store() -> PathBuf {
    if let Some(p) = std::env::var_os("MACHINE_STORAGE_PATH") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".docker").join("machine")
}

/// The runtime of a plugin process: one thread. docker-machine asks one question at a time
/// (plus heartbeats), and the work is waiting on EC2 or the agent; every extra thread would
/// cost each of the many plugin processes a stack and a malloc arena.
fn plugin_runtime() -> tokio::runtime::Runtime {
    // One malloc arena: blocking-pool threads (file reads) need no arena of their own.
    // SAFETY: mallopt(3) takes two integers; called before the runtime starts any thread.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    built(tokio::runtime::Builder::new_current_thread().enable_all())
}

/// The runtime of the agent and the other subcommands.
fn runtime() -> tokio::runtime::Runtime {
    built(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all(),
    )
}

/// The runtime `builder` makes, or exit 1 with docker-machine's wording.
fn built(builder: &mut tokio::runtime::Builder) -> tokio::runtime::Runtime {
    builder.build().unwrap_or_else(|e| {
        eprintln!("Error loading RPC server: {e}");
        std::process::exit(1)
    })
}

fn run_agent(args: AgentArgs) -> ! {
    let store = args.store.unwrap_or_else(default_store);
    let _ = std::fs::create_dir_all(paths::dir(&store));
    logging::init_agent(&paths::log(&store), args.log_max);
    let mut settings = server::Settings::new(store);
    settings.idle = args.idle;
    settings.rates = args.rates;
    settings.rate_factor = args.rate_factor;
    settings.state_ttl = args.state_ttl;
    settings.max_stale = args.max_stale;
    settings.client_idle = args.client_idle;
    settings.service = args.service;
    settings.metrics_listen = args.metrics_listen;
    match runtime().block_on(server::serve(settings)) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("ec2spot agent: {e}");
            std::process::exit(1);
        }
    }
}

fn run_image(args: ImageArgs) -> ! {
    use ec2spot_ec2::tools::{doctor, image};
    let values = match doctor::parse_args(&args.options) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("image: {e}");
            std::process::exit(2)
        }
    };
    if let Some(e) = args.pulls.iter().find_map(|p| image::check_pull(p).err()) {
        eprintln!("image: {e}");
        std::process::exit(2)
    }
    let store = args.store.clone().unwrap_or_else(default_store);
    let mut config = ec2spot_ec2::Config::default();
    config.asked.machine_name = "ec2spot-image-builder".into();
    config.asked.store_path = store.to_string_lossy().into_owned();
    if let Err(e) = ec2spot_ec2::options::apply(&mut config.asked, &values) {
        eprintln!("image: {e}");
        std::process::exit(2)
    }
    std::process::exit(runtime().block_on(image_in(args, config)))
}

/// Runs `image build|list|prune` with `config`: the exit code.
async fn image_in(args: ImageArgs, mut config: ec2spot_ec2::Config) -> i32 {
    use ec2spot_ec2::tools::image;
    let ec2 = match ec2spot_ec2::aws::client(&config.asked).await {
        Ok(ec2) => ec2,
        Err(e) => {
            eprintln!("image: {e}");
            return 1;
        }
    };
    let done = match args.action.as_str() {
        "build" => {
            use rand::RngCore;
            let mut id = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut id);
            config.asked.machine_id = id.iter().map(|x| format!("{x:02x}")).collect();
            let ctx = ec2spot_ec2::state::context::Context::direct(ec2);
            let progress = ec2spot_ec2::progress::Progress::to(std::sync::Arc::new(|l: &str| {
                eprintln!("{l}")
            }));
            let timeout = Duration::from_secs(args.timeout_minutes * 60);
            image::build(
                &ctx,
                &mut config,
                (args.pulls, args.engine_env),
                timeout,
                &progress,
            )
            .await
            .map(|ami| vec![ami])
        }
        "list" => image::list(&ec2)
            .await
            .map(|images| images.iter().map(image::line).collect()),
        _ => image::prune(&ec2, args.keep).await,
    };
    match done {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            0
        }
        Err(e) => {
            eprintln!("image {}: {e}", args.action);
            1
        }
    }
}

fn run_doctor(args: DoctorArgs) -> ! {
    use ec2spot_ec2::tools::doctor;
    let values = match doctor::parse_args(&args.options) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("doctor: {e}");
            std::process::exit(2)
        }
    };
    let store = args.store.unwrap_or_else(default_store);
    let checks = runtime().block_on(doctor::run(&values, &store.to_string_lossy()));
    for c in &checks {
        println!("{c}");
    }
    let problems = checks
        .iter()
        .filter(|c| c.verdict == doctor::Verdict::Problem)
        .count();
    if problems == 0 {
        println!("No problems found: a create with these options should work.");
        std::process::exit(0)
    }
    println!("{problems} problem(s) found.");
    std::process::exit(1)
}

fn run_fleet(args: FleetArgs) -> ! {
    use ec2spot::fleet;
    let store = args.store.unwrap_or_else(default_store);
    let machines = fleet::machines(&store);
    let (rows, source) = runtime().block_on(async {
        if !args.ec2
            && let Some(rows) = fleet::from_agent(&store, &machines).await
        {
            return (rows, "the agent's cache");
        }
        (fleet::from_ec2(&machines).await, "EC2")
    });
    if args.json {
        println!("{}", fleet::json(&rows, source));
    } else {
        print!("{}", fleet::table(&rows, source));
    }
    std::process::exit(0)
}

fn run_gc(args: GcArgs) -> ! {
    let store = args.store.unwrap_or_else(default_store);
    let manager = gc_manager(&store, args.manager.as_deref());
    let regions = gc_regions(args.regions, &store);
    let code = runtime().block_on(gc_in(
        &regions,
        &store,
        &manager,
        args.endpoint.as_deref(),
        args.delete,
    ));
    std::process::exit(code)
}

/// The manager id gc collects for, said on stdout: `given` (`--manager`; exit 2 if it is
/// not one), else the store's; exit 0 when neither exists, as nothing can be found then.
fn gc_manager(store: &std::path::Path, given: Option<&str>) -> String {
    use ec2spot_ec2::{manager, tags, tools::gc};
    if let Some(id) = given
        && let Err(e) = manager::check(id)
    {
        eprintln!("gc: --manager: {e}");
        std::process::exit(2);
    }
    let Some(manager) = gc::manager_of(store, given) else {
        println!(
            "no manager id in {}: no machine was ever created from this store, so nothing \
             of its can be in EC2. For a bastion whose store or disk is lost, give --manager ID \
             (the value of the tag {} on its resources; README: \"A lost bastion\").",
            manager::id_file(&store.to_string_lossy()).display(),
            tags::MANAGER
        );
        std::process::exit(0)
    };
    println!(
        "manager id {manager} (tag {}; {})",
        tags::MANAGER,
        if given.is_some() {
            "given with --manager".to_string()
        } else {
            format!(
                "from {}",
                manager::id_file(&store.to_string_lossy()).display()
            )
        }
    );
    manager
}

/// The regions gc looks in: `given` (`--region`), else those of the store's machines, else
/// $AWS_DEFAULT_REGION / $AWS_REGION, else us-east-1.
fn gc_regions(given: Vec<String>, store: &std::path::Path) -> Vec<String> {
    let mut regions = given;
    if regions.is_empty()
        && let Ok(dirs) = std::fs::read_dir(store.join("machines"))
    {
        for d in dirs.flatten() {
            let region = std::fs::read(d.path().join("config.json"))
                .ok()
                .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                .and_then(|v| v["Driver"]["Region"].as_str().map(str::to_string));
            if let Some(r) = region.filter(|r| !r.is_empty() && !regions.contains(r)) {
                regions.push(r);
            }
        }
    }
    if regions.is_empty() {
        regions.push(
            std::env::var("AWS_DEFAULT_REGION")
                .or_else(|_| std::env::var("AWS_REGION"))
                .unwrap_or_else(|_| "us-east-1".into()),
        );
    }
    regions
}

/// Collects `manager`'s orphans region after region, a line for each on stdout, then a
/// summary; the exit code (1 at the first region where gc fails, its error on stderr).
async fn gc_in(
    regions: &[String],
    store: &std::path::Path,
    manager: &str,
    endpoint: Option<&str>,
    delete: bool,
) -> i32 {
    use ec2spot_ec2::tools::gc;
    let mut found = 0;
    for region in regions {
        let asked = ec2spot_ec2::options::Asked {
            region: region.clone(),
            endpoint: endpoint.map(str::to_string).unwrap_or_default(),
            retry_count: 5,
            ..Default::default()
        };
        let ec2 = match ec2spot_ec2::aws::client(&asked).await {
            Ok(ec2) => ec2,
            Err(e) => {
                eprintln!("gc in {region}: {e}");
                return 1;
            }
        };
        match gc::collect(&ec2, store, manager, delete).await {
            Ok(orphans) => {
                for o in &orphans {
                    println!(
                        "{region}\t{}\t{}\t{}\t{}",
                        o.kind, o.id, o.machine, o.action
                    );
                }
                found += orphans.len();
            }
            Err(e) => {
                eprintln!("gc in {region}: {e}");
                return 1;
            }
        }
    }
    if found == 0 {
        println!(
            "nothing of this bastion's is left outside its machines ({})",
            regions.join(", ")
        );
    } else if !delete {
        println!("{found} found; run again with --delete to remove them");
    }
    0
}

/// Rust's own start-up already ignores SIGPIPE (a closed pipe is an error to handle, not
/// death), opens closed standard descriptors on /dev/null (so a socket never becomes
/// "stdout"), and exits with 101 on a panic.
fn main() {
    run();
    std::process::exit(0)
}

/// What the binary does: serve docker-machine, or run a subcommand.
fn run() {
    if std::env::var("MACHINE_PLUGIN_TOKEN").as_deref() == Ok("42") {
        let listener = plugin::launch::listen();
        logging::init_plugin();
        plugin_runtime().block_on(plugin::launch::run(Ec2Driver::new(), listener));
    }
    if std::env::args_os().len() <= 1 {
        eprintln!("{}", plugin::NOT_A_CLI);
        std::process::exit(1);
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Agent(args)) => run_agent(args),
        Some(Command::Gc(args)) => run_gc(args),
        Some(Command::Doctor(args)) => run_doctor(args),
        Some(Command::Fleet(args)) => run_fleet(args),
        Some(Command::Image(args)) => run_image(args),
        None => {
            eprintln!("{}", plugin::NOT_A_CLI);
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// `0` is zero for every duration (issue 22: it meant "forever", so `--max-stale 0` was
    /// unbounded staleness); only `--idle` has a "forever", spelled `never`.
    #[test]
    fn zero_durations_are_zero_and_never_is_spelled_out() {
        use std::time::Duration;
        for zero in ["0", "0s", "0ms", "0m"] {
            assert_eq!(super::parse_duration(zero), Ok(Duration::ZERO), "{zero}");
            assert_eq!(super::parse_idle(zero), Ok(Duration::ZERO), "{zero}");
        }
        assert_eq!(super::parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(
            super::parse_duration("never").is_err(),
            "no forever for TTLs"
        );
        assert!(super::parse_idle("never").unwrap() > Duration::from_secs(50 * 365 * 86400));
        let agent = |args: &[&str]| {
            let mut argv = vec!["docker-machine-driver-ec2spot", "agent"];
            argv.extend(args);
            match Cli::try_parse_from(argv).expect("parses").command {
                Some(super::Command::Agent(a)) => a,
                other => panic!("parsed as {other:?}"),
            }
        };
        let a = agent(&["--max-stale", "0", "--state-ttl", "0", "--client-idle", "0"]);
        assert_eq!(
            (a.max_stale, a.state_ttl, a.client_idle),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
        // The shipped unit's command line.
        let unit = include_str!("../examples/ec2spot-agent.service");
        assert!(unit.contains("--idle never"), "{unit}");
    }

    /// clap checks the whole command tree (conflicting names, bad defaults) only when asked.
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn doctor_takes_amazonec2_options_verbatim() {
        let cli = Cli::try_parse_from([
            "docker-machine-driver-ec2spot",
            "doctor",
            "--amazonec2-region",
            "eu-west-1",
            "--amazonec2-instance-type=t3.large,t3a.large",
        ])
        .expect("doctor accepts amazonec2 options");
        match cli.command {
            Some(super::Command::Doctor(args)) => assert_eq!(
                args.options,
                [
                    "--amazonec2-region",
                    "eu-west-1",
                    "--amazonec2-instance-type=t3.large,t3a.large"
                ]
            ),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn doctor_args_debug_hides_the_options() {
        let cli = Cli::try_parse_from([
            "docker-machine-driver-ec2spot",
            "doctor",
            "--amazonec2-secret-key",
            "ExampleSecretKey/debug",
        ])
        .unwrap();
        let text = format!("{cli:?}");
        assert!(!text.contains("ExampleSecretKey"), "{text}");
        assert!(text.contains("<2 not shown>"), "{text}");
    }
}
