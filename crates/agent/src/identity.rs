//! What build a process is, for the handshake between plugin and agent: the version and commit
//! it was built from, and above all the executable file it runs. Installing a new version moves
//! a new file over the old path (`install`, `cargo install`, package managers); processes
//! started before keep running the old file, so "same build" means "same file" (device and
//! inode), and a process whose path now holds another file knows it is outdated.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::proto::Build;

/// Bumped when the agent's messages change meaning.
pub const PROTOCOL: u32 = 2;

/// The version line `--version` prints: `0.1.0 (commit 0123456789ab, built 2026-12-03)`; the
/// commit and date come from build.rs.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EC2SPOT_COMMIT"),
    ", built ",
    env!("EC2SPOT_BUILD_DATE"),
    ")"
);

struct Exe {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// The file this process runs, as it was when first asked (the kernel keeps a replaced file
/// alive for the processes running it; `/proc/self/exe` still leads to it), and the path it
/// was started by: docker-machine runs the plugin by the absolute path it found on `PATH`,
/// and the plugin starts the agent by that same path. That path may be a symbolic link into a
/// versioned install (`/usr/local/bin/… → /opt/ec2spot/versions/A/…`): repointing the link is
/// an upgrade too, so "current" asks what the started-by path leads to now.
fn exe() -> &'static Exe {
    static EXE: OnceLock<Exe> = OnceLock::new();
    EXE.get_or_init(|| {
        let running = std::fs::read_link("/proc/self/exe")
            .or_else(|_| std::env::current_exe())
            .map(|p| strip_deleted(&p))
            .unwrap_or_default();
        let path = started_by().unwrap_or(running);
        let (dev, ino) = std::fs::metadata("/proc/self/exe")
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or((0, 0));
        Exe { path, dev, ino }
    })
}

/// The path this process was started by (`argv[0]`), made absolute, when it names a file
/// (a bare name found on `PATH` does not say which directory it came from).
fn started_by() -> Option<PathBuf> {
    let arg0 = PathBuf::from(std::env::args_os().next()?);
    if !arg0.to_string_lossy().contains('/') {
        return None;
    }
    let path = if arg0.is_absolute() {
        arg0
    } else {
        std::env::current_dir().ok()?.join(arg0)
    };
    std::fs::metadata(&path).is_ok().then_some(path)
}

/// The path of a replaced executable as Linux shows it, without the ` (deleted)` mark.
fn strip_deleted(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s).to_string())
}

/// The executable this process runs.
pub fn exe_path() -> &'static Path {
    &exe().path
}

/// Whether the path this process was started by still leads to the file it runs (not when
/// the file was replaced, nor when a symbolic link on the way now points elsewhere).
pub fn current() -> bool {
    let e = exe();
    std::fs::metadata(&e.path).is_ok_and(|m| m.dev() == e.dev && m.ino() == e.ino)
}

/// This process's build.
pub fn this() -> Build {
    let e = exe();
    Build {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("EC2SPOT_COMMIT").to_string(),
        exe: e.path.to_string_lossy().into_owned(),
        exe_dev: e.dev,
        exe_ino: e.ino,
        current: current(),
    }
}

/// Whether `other` is the same build as this process: same protocol, version and file.
pub fn same(other: &Build) -> bool {
    let e = exe();
    other.protocol == PROTOCOL
        && other.version == env!("CARGO_PKG_VERSION")
        && other.exe_dev == e.dev
        && other.exe_ino == e.ino
}

/// One line for logs: `0.1.0 abc123 /usr/local/bin/… (inode 42)`.
pub fn describe(b: &Build) -> String {
    format!(
        "{} {} {} (inode {}{})",
        b.version,
        b.commit,
        b.exe,
        b.exe_ino,
        if b.current { "" } else { ", replaced since" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_its_own_build_and_current() {
        let b = this();
        assert!(same(&b));
        assert!(b.current, "{}", describe(&b));
        let mut other = b.clone();
        other.exe_ino += 1;
        assert!(!same(&other));
        assert_eq!(
            strip_deleted(Path::new("/x/y (deleted)")),
            PathBuf::from("/x/y")
        );
    }
}
