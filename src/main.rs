//! `docker-machine-driver-ec2spot`: a docker-machine driver plugin when started by
//! docker-machine (`MACHINE_PLUGIN_TOKEN=42`), a small CLI otherwise.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use ec2spot::ec2::Ec2Driver;
use ec2spot::ec2::throttle;
use ec2spot::plugin;

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
#[command(name = "docker-machine-driver-ec2spot", version, about = ABOUT, after_help = AFTER_HELP)]
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
}

#[derive(clap::Args, Debug)]
struct AgentArgs {
    /// The docker-machine store (default: $MACHINE_STORAGE_PATH or ~/.docker/machine).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Exit after this long without operations (e.g. 600, 10m, 30s, 0 = never).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    idle: Duration,
    /// A token bucket: CLASS=burst/per_second (classes: RunInstances, StartInstances,
    /// TerminateInstances, CreateTags, ResourceIntensive, Mutating, Describe). Repeatable.
    #[arg(long = "rate", value_parser = throttle::parse_rate)]
    rates: Vec<(String, throttle::Rate)>,
    /// Scale of every bucket (below 1 leaves room for other clients of the account).
    #[arg(long, default_value_t = 0.9)]
    rate_factor: f64,
    /// How long one EC2 observation answers state questions.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    state_ttl: Duration,
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
    Ok(if secs == 0.0 {
        Duration::MAX / 4
    } else {
        Duration::from_secs_f64(secs)
    })
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

fn init_logging() {
    let filter = std::env::var("EC2SPOT_LOG").unwrap_or_else(|_| "ec2spot=debug,warn".into());
    tracing_subscriber::fmt()
        .with_writer(plugin::output::QuietStderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error loading RPC server: {e}");
            std::process::exit(1);
        }
    }
}

fn run_agent(args: AgentArgs) -> ! {
    let store = args.store.unwrap_or_else(default_store);
    let _ = std::fs::create_dir_all(ec2spot::agent::paths::dir(&store));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ec2spot::agent::paths::log(&store));
    let filter = std::env::var("EC2SPOT_LOG").unwrap_or_else(|_| "ec2spot=info,warn".into());
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    match log {
        Ok(f) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        Err(_) => builder.with_writer(plugin::output::QuietStderr).init(),
    }
    let mut settings = ec2spot::agent::server::Settings::new(store);
    settings.idle = args.idle;
    settings.rates = args.rates;
    settings.rate_factor = args.rate_factor;
    settings.state_ttl = args.state_ttl;
    match runtime().block_on(ec2spot::agent::server::serve(settings)) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("ec2spot agent: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    if std::env::var("MACHINE_PLUGIN_TOKEN").as_deref() == Ok("42") {
        init_logging();
        runtime().block_on(plugin::launch::run(Ec2Driver::new()));
    }
    if std::env::args_os().len() <= 1 {
        eprintln!("{}", plugin::NOT_A_CLI);
        std::process::exit(1);
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Agent(args)) => run_agent(args),
        None => {
            eprintln!("{}", plugin::NOT_A_CLI);
            std::process::exit(1);
        }
    }
}
