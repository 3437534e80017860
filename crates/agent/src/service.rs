//! Who owns a store's agent socket when the agent also runs as a service
//! (`examples/ec2spot-agent.service`, `agent --service`): the service does. It keeps a marker,
//! `<store>/ec2spot/agent.service`, touched every second while it runs, waits (rather than
//! exits) when a plugin-started agent holds the store, and leaves the marker when it drains
//! for an upgrade, so systemd's restart brings up the new build. While the marker is fresh:
//!
//! * plugins start no agent of their own: they wait for the service's socket, or work
//!   without the agent;
//! * a plugin-started agent drains and leaves, handing the store to the service.
//!
//! A stopped service (SIGTERM) removes the marker; a marker untouched for [`FRESH`] belongs to
//! a service that is gone, and plugins start agents again.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::paths;

/// How long a marker counts after its last touch (systemd restarts a drained service in 2 s).
pub const FRESH: Duration = Duration::from_secs(10);

/// The marker's path.
pub fn marker(store: &Path) -> PathBuf {
    paths::dir(store).join("agent.service")
}

/// Writes (or touches) the marker with this process's pid.
pub fn mark(store: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(marker(store))?;
    write!(f, "{}", std::process::id())
}

/// Removes the marker (the service was stopped).
pub fn unmark(store: &Path) {
    let _ = std::fs::remove_file(marker(store));
}

/// Whether a service agent claims `store`: its marker was touched within [`FRESH`].
pub fn claimed(store: &Path) -> bool {
    std::fs::symlink_metadata(marker(store))
        .ok()
        .filter(|m| m.file_type().is_file())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < FRESH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_marker_claims_the_store_and_a_removed_one_does_not() {
        let store = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(paths::dir(store.path())).unwrap();
        assert!(!claimed(store.path()));
        mark(store.path()).unwrap();
        assert!(claimed(store.path()));
        let pid = std::fs::read_to_string(marker(store.path())).unwrap();
        assert_eq!(pid, std::process::id().to_string());
        unmark(store.path());
        assert!(!claimed(store.path()));
        // A symlink in the marker's place is not followed.
        let elsewhere = store.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, marker(store.path())).unwrap();
        assert!(mark(store.path()).is_err());
        assert!(!elsewhere.exists());
        assert!(!claimed(store.path()));
    }
}
