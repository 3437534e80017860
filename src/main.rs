//! `docker-machine-driver-ec2spot`: a docker-machine driver plugin when started by
//! docker-machine (`MACHINE_PLUGIN_TOKEN=42`), a small CLI otherwise.

use clap::Parser;

use ec2spot::ec2::Ec2Driver;
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
struct Cli {}

fn init_logging() {
    let filter = std::env::var("EC2SPOT_LOG").unwrap_or_else(|_| "ec2spot=debug,warn".into());
    tracing_subscriber::fmt()
        .with_writer(plugin::output::QuietStderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}

fn main() {
    if std::env::var("MACHINE_PLUGIN_TOKEN").as_deref() == Ok("42") {
        init_logging();
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("Error loading RPC server: {e}");
                std::process::exit(1);
            }
        };
        rt.block_on(plugin::launch::run(Ec2Driver::new()));
    }
    if std::env::args_os().len() <= 1 {
        eprintln!("{}", plugin::NOT_A_CLI);
        std::process::exit(1);
    }
    let _cli = Cli::parse();
}
