//! Plugin process lifecycle: listen on 127.0.0.1, print the address as the first stdout line,
//! serve RPC, exit 1 when docker-machine stops heartbeating for 10 s, exit 0 after `Close`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

use super::{Driver, DriverService, SERVICE_NAMES};
use ec2spot_rpc::Server;

/// How long the plugin lives without a `Heartbeat` (docker-machine sends one every 5 s).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds 127.0.0.1:0 and prints the address as the first stdout line — before anything else
/// is set up, so docker-machine can connect as early as possible (connections wait in the
/// kernel's backlog until [`run`] serves them). Exits 1 if it cannot listen.
pub fn listen() -> std::net::TcpListener {
    let fail = |e: std::io::Error| -> ! {
        eprintln!("Error loading RPC server: {e}");
        std::process::exit(1)
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(e));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(e));
    listener.set_nonblocking(true).unwrap_or_else(|e| fail(e));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{addr}");
    let _ = out.flush();
    listener
}

/// Runs `driver` as a docker-machine plugin on `listener` (from [`listen`]) until `Close`
/// (exit 0) or heartbeat loss (exit 1).
pub async fn run<D: Driver>(driver: D, listener: std::net::TcpListener) -> ! {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error loading RPC server: {e}");
            std::process::exit(1);
        }
    };
    let (beats, beat_rx) = watch::channel(0u64);
    let service = Arc::new(DriverService::new(driver, beats));
    let mut server = Server::new();
    for name in SERVICE_NAMES {
        server.register(name, service.clone());
    }
    let server = Arc::new(server);
    tokio::spawn(Arc::clone(&server).serve(listener));
    tokio::spawn(watchdog(beat_rx, HEARTBEAT_TIMEOUT));
    server.closed().await;
    debug!("Closing plugin on server side");
    std::process::exit(0)
}

/// Exits the process with status 1 when no heartbeat arrives within `timeout`.
async fn watchdog(mut beats: watch::Receiver<u64>, timeout: Duration) {
    loop {
        match tokio::time::timeout(timeout, beats.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return,
            Err(_) => {
                // docker-machine is gone: its pipes may be closed, so nothing here may block or panic.
                debug!("no heartbeat from docker-machine for {timeout:?}: exiting");
                std::process::exit(1);
            }
        }
    }
}
