//! Builds and runs `dmclient` (tests/go/dmclient), the Go stand-in for
//! docker-machine: `conformance`/`watchdog`/`startup` measure a plugin over
//! the real Go `net/rpc` + `encoding/gob` stack, and `dm` is a mini
//! docker-machine CLI.
//!
//! The binary is built once per test process into `target/dmclient/dmclient`
//! (skipped while it is newer than every Go source). Parallel test processes
//! each build into their own temporary file and rename it into place, so they
//! never see a half-written binary.
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The repository root.
pub fn repo_root() -> PathBuf {
    crate::workspace_root().to_path_buf()
}

/// The Go sources of dmclient.
pub fn source_dir() -> PathBuf {
    repo_root().join("tests").join("go").join("dmclient")
}

/// Cargo's target directory (`$CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// Where the built binary goes.
pub fn output_dir() -> PathBuf {
    target_dir().join("dmclient")
}

fn newest_source(dir: &Path, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            newest_source(&path, newest);
        } else if (path.extension() == Some(OsStr::new("go"))
            || path.file_name() == Some(OsStr::new("go.mod")))
            && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
        {
            *newest = (*newest).max(modified);
        }
    }
}

/// `go build`s the stdlib-only module in `src` into `out/<name>` (skipped while the binary is
/// newer than every Go source), through a temporary file renamed into place so parallel
/// builders never see a half-written binary. No network: no module downloads.
pub fn go_build(src: &Path, out: &Path, name: &str) -> PathBuf {
    let bin = out.join(name);
    let mut newest = SystemTime::UNIX_EPOCH;
    newest_source(src, &mut newest);
    if std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > newest)
    {
        return bin;
    }
    std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let tmp = out.join(format!("{name}.{}.{nanos}.tmp", std::process::id()));
    let mut cmd = Command::new("go");
    cmd.args(["build", "-trimpath", "-o"])
        .arg(&tmp)
        .arg(".")
        .current_dir(src)
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local");
    if std::env::var_os("HOME").is_none() {
        // Go needs somewhere for its caches.
        if std::env::var_os("GOCACHE").is_none() {
            cmd.env("GOCACHE", out.join("go-build"));
        }
        if std::env::var_os("GOPATH").is_none() {
            cmd.env("GOPATH", out.join("gopath"));
        }
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("Go toolchain missing: run .ci/run or apt-get install golang-go")
        }
        Err(e) => panic!("cannot run `go build` in {}: {e}", src.display()),
    };
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "`go build` of {} failed ({}):\n{}{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&tmp, &bin).unwrap_or_else(|e| panic!("move {name} into place: {e}"));
    bin
}

fn build() -> PathBuf {
    go_build(&source_dir(), &output_dir(), "dmclient")
}

/// The dmclient binary, built on first use in this process.
pub fn dmclient() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build)
}

/// Runs a command with stdin from /dev/null and kills it after `timeout`
/// (then panics with what it printed so far).
pub fn output_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain the pipes in threads so a chatty child cannot block.
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut buf).ok();
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut buf).ok();
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            let stdout = out_thread.join().unwrap_or_default();
            let stderr = err_thread.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {timeout:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Runs dmclient with extra environment variables (added to ours), with a
/// 120 s limit.
pub fn run_dmclient<I, S>(args: I, envs: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(dmclient());
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output_with_timeout(cmd, Duration::from_secs(120))
}

/// Runs dmclient and parses its stdout as one JSON value (the reports of
/// `conformance`, `watchdog` and `startup`). Panics with the output if it
/// is not JSON.
pub fn run_dmclient_json<I, S>(args: I, envs: &[(&str, &str)]) -> (serde_json::Value, Output)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = run_dmclient(args, envs);
    match serde_json::from_slice(&output.stdout) {
        Ok(value) => (value, output),
        Err(e) => panic!(
            "dmclient printed no JSON ({e}; {}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// `PATH` with `dir` in front, so that `dm` finds a plugin binary there.
pub fn path_with(dir: &Path) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).expect("PATH")
}

/// Runs `dmclient dm --storage-path <store> <args...>` with `PATH` starting
/// with `plugin_dir` (where `docker-machine-driver-<name>` lives).
pub fn run_dm<I, S>(store: &Path, plugin_dir: &Path, args: I, envs: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_dm_in(store, plugin_dir, None, args, envs)
}

/// Like [`run_dm`], in working directory `cwd` (the test's own when `None`).
pub fn run_dm_in<I, S>(
    store: &Path,
    plugin_dir: &Path,
    cwd: Option<&Path>,
    args: I,
    envs: &[(&str, &str)],
) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(dmclient());
    cmd.arg("dm").arg("--storage-path").arg(store).args(args);
    cmd.env("PATH", path_with(plugin_dir));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output_with_timeout(cmd, Duration::from_secs(600))
}
