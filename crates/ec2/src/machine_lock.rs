//! One changing operation per machine at a time, across processes: an `rm` that arrives while
//! the machine's `create` still runs (gitlab-runner killed docker-machine, the create went on)
//! waits for it instead of racing it — whether the two run in one agent, in two agents (an old
//! one finishing its work after an upgrade) or in plugins working on their own.
//!
//! The lock is an advisory `flock` on `<store>/ec2spot/locks/<machine>.lock`: a crashed holder
//! releases it, and a removed machine's file is deleted by the removal (so nothing accumulates).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::options::Asked;

/// Machine locks this process holds now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many machine locks this process holds.
pub fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A held machine lock (released on drop).
#[derive(Debug)]
pub struct MachineLock {
    file: File,
    path: PathBuf,
}

impl MachineLock {
    /// Deletes the lock file (the machine is gone), then releases the lock. Whoever waits for
    /// it finds the file gone once it gets the lock, and takes a new one.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        let _ = &self.file;
        HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lock file of `config`'s machine, when the machine belongs to a store.
pub fn path(asked: &Asked) -> Option<PathBuf> {
    if asked.store_path.is_empty() || asked.machine_name.is_empty() {
        return None;
    }
    // docker-machine's names are letters, digits, `.`, `-` and `_`; anything else is kept out
    // of the path.
    let name: String = asked
        .machine_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(
        Path::new(&asked.store_path)
            .join("ec2spot")
            .join("locks")
            .join(format!("{name}.lock")),
    )
}

/// Whether the open `file` is still the one at `path` (not deleted by a removal meanwhile).
fn still_there(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Takes the lock of `config`'s machine, waiting for another holder to finish. `None` when the
/// machine belongs to no store, or the lock file cannot be made (then nothing is serialised,
/// as before locks existed; the reason is logged).
pub async fn lock(asked: &Asked) -> Option<MachineLock> {
    let path = path(asked)?;
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        tracing::debug!("machine lock {}: {e}", dir.display());
        return None;
    }
    let mut pause = Duration::from_millis(10);
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            // Never through a symbolic link someone put in the store.
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| tracing::debug!("machine lock {}: {e}", path.display()))
            .ok()?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
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
        if still_there(&file, &path) {
            HELD.fetch_add(1, Ordering::Relaxed);
            return Some(MachineLock { file, path });
        }
        // The holder removed the machine and its lock file: lock the current file instead.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(store: &Path, name: &str) -> Asked {
        Asked {
            store_path: store.to_string_lossy().into_owned(),
            machine_name: name.into(),
            ..Asked::default()
        }
    }

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first() {
        let store = tempfile::tempdir().unwrap();
        let c = config(store.path(), "m1");
        let first = lock(&c).await.expect("locked");
        let second = tokio::time::timeout(Duration::from_millis(200), lock(&c)).await;
        assert!(second.is_err(), "the second holder waited");
        let other = tokio::time::timeout(
            Duration::from_millis(200),
            lock(&config(store.path(), "m2")),
        )
        .await
        .expect("another machine's lock is free");
        assert!(other.is_some());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(2), lock(&c))
            .await
            .expect("free once the first let go");
        assert!(second.is_some());
        assert!(lock(&config(Path::new(""), "m1")).await.is_none());
    }

    #[tokio::test]
    async fn a_waiter_behind_a_removal_takes_a_fresh_lock() {
        let store = tempfile::tempdir().unwrap();
        let c = config(store.path(), "gone");
        let first = lock(&c).await.unwrap();
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { lock(&c).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.remove();
        let second = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap()
            .expect("locked");
        assert!(
            still_there(&second.file, &second.path),
            "holds the file at the path"
        );
        // And it excludes a third.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), lock(&c))
                .await
                .is_err()
        );
    }
}
