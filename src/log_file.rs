//! The agent's log file, bounded: `agent.log` grows to a cap, then becomes `agent.log.1`
//! (replacing the one before) and a new `agent.log` starts — at most twice the cap on disk,
//! however long the agent runs. Both are opened without following a symlink (an account that
//! can write the store must not redirect the agent's writes) and with mode 0600.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The default cap of one log file.
pub const DEFAULT_CAP: u64 = 10 * 1024 * 1024;

/// A size-capped, rotated log file.
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    written: u64,
    cap: u64,
}

/// Opens `path` for appending, refusing a symlink, creating it 0600.
fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl RotatingLog {
    /// Opens (appends to) the log at `path`, rotating once it holds `cap` bytes.
    pub fn open(path: &Path, cap: u64) -> std::io::Result<RotatingLog> {
        let file = open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            written,
            cap: cap.max(1),
        })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let old = PathBuf::from(format!("{}.1", self.path.display()));
        std::fs::rename(&self.path, &old)?;
        self.file = open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.cap {
            // A failed rotation keeps writing where it can rather than losing the line.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_at_its_cap_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.log");
        let mut log = RotatingLog::open(&path, 100).unwrap();
        for i in 0..50 {
            writeln!(log, "line {i:03} of the agent's log").unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("agent.log.1")).unwrap();
        assert!(
            current.len() <= 100 && old.len() <= 100,
            "{current:?} {old:?}"
        );
        assert!(
            current.ends_with("line 049 of the agent's log\n"),
            "{current}"
        );
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "agent.log and agent.log.1 only");
    }

    #[test]
    fn a_symlink_in_the_logs_place_is_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        let path = dir.path().join("agent.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(RotatingLog::open(&path, 100).is_err());
        std::fs::remove_file(&path).unwrap();
        let _log = RotatingLog::open(&path, 100).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
