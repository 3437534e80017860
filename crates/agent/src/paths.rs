//! Where the agent of a docker-machine store keeps its socket, lock and log.

use std::path::{Path, PathBuf};

/// Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The agent's directory in a store: `<store>/ec2spot`.
pub fn dir(store: &Path) -> PathBuf {
    store.join("ec2spot")
}

/// The agent's socket.
pub fn socket(store: &Path) -> PathBuf {
    dir(store).join("agent.sock")
}

/// The lock the running agent holds (one agent per store).
pub fn lock(store: &Path) -> PathBuf {
    dir(store).join("agent.lock")
}

/// The agent's log.
pub fn log(store: &Path) -> PathBuf {
    dir(store).join("agent.log")
}

/// Whether the socket path fits a Unix socket address.
pub fn socket_fits(store: &Path) -> bool {
    socket(store).as_os_str().len() <= MAX_SOCKET_PATH
}

/// Where a running agent notes the address its metrics are served on.
pub fn metrics_address(store: &Path) -> PathBuf {
    dir(store).join("metrics-address")
}
