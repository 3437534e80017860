//! Other processes by pid (agents, plugins whose `Child` a test gave away): std's `Child`
//! only reaches a process through its handle.

use std::path::Path;

/// Whether process `pid` exists (a zombie not yet reaped counts, as with `kill(pid, 0)`).
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills process `pid` with SIGKILL.
pub fn kill_hard(pid: u32) {
    let pid = i32::try_from(pid).expect("a pid fits in pid_t");
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}
