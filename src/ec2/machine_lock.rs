//! One changing operation per machine at a time, across processes: an `rm` that arrives while
//! the machine's `create` still runs (gitlab-runner killed docker-machine, the create went on)
//! waits for it instead of racing it — whether the two run in one agent, in two agents (an old
//! one finishing its work after an upgrade) or in plugins working on their own.
//!
//! The lock is an advisory `flock` on a file in the machine's directory, which docker-machine
//! removes with the machine: nothing accumulates, and a crashed holder releases it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::config::Config;

/// Machine locks this process holds now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many machine locks this process holds.
pub fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A held machine lock (released on drop).
#[derive(Debug)]
pub struct MachineLock {
    _file: File,
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lock file of `config`'s machine, when the machine has a directory in a store.
pub fn path(config: &Config) -> Option<PathBuf> {
    if config.store_path.is_empty() || config.machine_name.is_empty() {
        return None;
    }
    let dir = Path::new(&config.store_path)
        .join("machines")
        .join(&config.machine_name);
    dir.is_dir().then(|| dir.join(".ec2spot.lock"))
}

/// Takes the lock of `config`'s machine, waiting for another holder to finish. `None` when the
/// machine has no directory (nothing to coordinate with) or the file cannot be opened.
pub async fn lock(config: &Config) -> Option<MachineLock> {
    let path = path(config)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| tracing::debug!("machine lock {}: {e}", path.display()))
        .ok()?;
    let mut pause = Duration::from_millis(10);
    loop {
        match file.try_lock() {
            Ok(()) => {
                HELD.fetch_add(1, Ordering::Relaxed);
                return Some(MachineLock { _file: file });
            }
            Err(TryLockError::WouldBlock) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            Err(TryLockError::Error(e)) => {
                tracing::debug!("machine lock {}: {e}", path.display());
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first() {
        let store = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(store.path().join("machines/m1")).unwrap();
        let config = Config {
            store_path: store.path().to_string_lossy().into_owned(),
            machine_name: "m1".into(),
            ..Config::default()
        };
        let first = lock(&config).await.expect("locked");
        let before = held();
        let second = tokio::time::timeout(Duration::from_millis(200), lock(&config)).await;
        assert!(second.is_err(), "the second holder waited");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(2), lock(&config))
            .await
            .expect("free once the first let go");
        assert!(second.is_some());
        assert_eq!(held(), before);
        let gone = Config {
            machine_name: "not-in-the-store".into(),
            ..config.clone()
        };
        assert!(lock(&gone).await.is_none());
    }
}
