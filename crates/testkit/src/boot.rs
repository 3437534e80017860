//! Boots the user data of a TLS-bootstrap create in a system container, as an EC2 instance
//! would: a Debian 12 root file system made by `scripts/boot-rootfs` (debootstrap from Debian's
//! archive, cached in `target/boot-cache/`), a NoCloud seed holding the user data,
//! `systemd-nspawn -b` (systemd as PID 1, the image's own cloud-init) in a network namespace
//! of its own with only a loopback — the only way out is [`BootProxy`], the proxy a private
//! subnet's machines would use. The test's client reaches dockerd's TLS port from inside that
//! namespace (`nsenter --net … curl`).
//!
//! Needs root, `systemd-nspawn`, `debootstrap`, `nsenter`, `curl` (scripts/setup installs
//! them); opt-in with `EC2SPOT_BOOT_TEST=1` (`.ci/run` sets it). Nothing outside the test's
//! temp dir and the repository's `target/boot-cache/` changes: the namespace, the container
//! and its copy of the root file system go with [`Machine`]'s drop.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether the boot test runs here (`EC2SPOT_BOOT_TEST=1`).
pub fn enabled() -> bool {
    std::env::var("EC2SPOT_BOOT_TEST").is_ok_and(|v| v == "1")
}

/// The repository's root (this crate is `crates/testkit`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cached root file systems, built on first use: `<dir>/stock` (systemd and cloud-init,
/// no Docker) and `<dir>/baked` (plus Debian's `docker.io`).
pub fn rootfs_cache() -> PathBuf {
    let out = Command::new(repo().join("scripts/boot-rootfs"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/boot-rootfs");
    assert!(out.status.success(), "scripts/boot-rootfs failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs `cmd`, panicking with its output unless it succeeds.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with only a loopback, held by a `sleep` of ours.
struct NetNs {
    holder: Child,
}

impl NetNs {
    fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up && exec sleep 86400"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare -n");
        let ns = NetNs { holder };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ns.lo_up() {
            assert!(
                Instant::now() < deadline,
                "loopback of the namespace not up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ns
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    fn lo_up(&self) -> bool {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .args(["ip", "-o", "link", "show", "lo", "up"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Enters the network namespace at `path` on this thread (`setns`).
fn enter_netns(path: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A listener on `127.0.0.1:port` inside the namespace at `ns` (bound on a thread that enters
/// it; the socket stays there, the rest of the process does not).
fn listen_in(ns: &str, port: u16) -> TcpListener {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns).expect("setns");
        TcpListener::bind(("127.0.0.1", port)).expect("bind in the namespace")
    })
    .join()
    .expect("listener thread")
}

/// An HTTP forward proxy (absolute-form requests and `CONNECT`), listening inside a
/// container's namespace and connecting out from the host's: what a private subnet's proxy
/// is to its machines. It counts the connections it carried.
#[derive(Clone)]
pub struct BootProxy {
    carried: Arc<AtomicUsize>,
}

/// The port the proxy listens on inside the namespace.
pub const PROXY_PORT: u16 = 3128;

/// docker-machine's `create` arguments for a TLS-bootstrap machine `name` with the user's
/// `script` (`amazonec2-userdata`), and, with `proxy`, the engine's environment pointing at
/// the test's proxy (`--engine-env HTTP_PROXY=…`, which the bootstrap's install uses too).
pub fn bootstrap_create_args(script: &Path, proxy: bool, name: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-tls-bootstrap",
        "--amazonec2-userdata",
    ]
    .map(String::from)
    .to_vec();
    args.push(script.to_string_lossy().into_owned());
    if proxy {
        args.push("--engine-env".into());
        args.push(format!("HTTP_PROXY=http://127.0.0.1:{PROXY_PORT}"));
    }
    args.push(name.into());
    args
}

impl BootProxy {
    fn start(ns: &str) -> BootProxy {
        let listener = listen_in(ns, PROXY_PORT);
        let carried = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&carried);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let count = Arc::clone(&count);
                std::thread::spawn(move || {
                    if forward(conn).is_ok() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        BootProxy { carried }
    }

    /// The connections carried so far.
    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// Reads the request head; connects where it points; passes the rest through both ways.
fn forward(mut client: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || head.len() > 65536 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let upstream = if method == "CONNECT" {
        let s = TcpStream::connect(target)?;
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        s
    } else {
        let rest = target
            .strip_prefix("http://")
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let host = rest.split('/').next().unwrap_or(rest);
        let addr = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let mut s = TcpStream::connect(addr)?;
        s.write_all(&head)?;
        s
    };
    splice(client, upstream)
}

/// Copies both ways until each side is done.
fn splice(a: TcpStream, b: TcpStream) -> std::io::Result<()> {
    let (mut a2, mut b2) = (a.try_clone()?, b.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(Shutdown::Write);
    });
    let (mut a, mut b) = (a, b);
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// A booted system container.
pub struct Machine {
    /// The machine's name (the container's and its hostname).
    pub name: String,
    nspawn: Option<Child>,
    /// When `systemd-nspawn` was started.
    pub started: Instant,
    /// The proxy the container can reach (and nothing else).
    pub proxy: BootProxy,
    ns: NetNs,
    dir: tempfile::TempDir,
}

impl Machine {
    /// Boots a copy of `image` (a directory of [`rootfs_cache`]) with `user_data` in its
    /// NoCloud seed, as instance `name`.
    pub fn boot(image: &Path, name: &str, user_data: &[u8]) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        run(Command::new("cp").arg("-a").arg(image).arg(&root));
        let seed = root.join("var/lib/cloud/seed/nocloud");
        std::fs::create_dir_all(&seed).unwrap();
        std::fs::write(
            seed.join("meta-data"),
            format!("instance-id: i-{name}\nlocal-hostname: {name}\n"),
        )
        .unwrap();
        std::fs::write(seed.join("user-data"), user_data).unwrap();
        // The image has no locales (debootstrap's minbase): cloud-init's locale module is off.
        std::fs::write(
            root.join("etc/cloud/cloud.cfg.d/91-ec2spot-boot-test.cfg"),
            "locale: false\n",
        )
        .unwrap();
        let ns = NetNs::new();
        let proxy = BootProxy::start(&ns.path());
        let console = std::fs::File::create(dir.path().join("console.log")).unwrap();
        let started = Instant::now();
        let nspawn = Command::new("systemd-nspawn")
            .args(["-q", "--register=no", "--keep-unit", "--console=read-only"])
            .arg(format!("--machine={name}"))
            .arg(format!("--network-namespace-path={}", ns.path()))
            .arg("--capability=CAP_NET_ADMIN")
            // The namespace is the container's own: dockerd may turn on IP forwarding in it.
            .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network")
            .arg("-D")
            .arg(&root)
            .arg("-b")
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("systemd-nspawn");
        Machine {
            name: name.to_string(),
            nspawn: Some(nspawn),
            started,
            proxy,
            ns,
            dir,
        }
    }

    /// A file of the container's, if it is there.
    pub fn file(&self, path: &str) -> Option<String> {
        let p = self
            .dir
            .path()
            .join("root")
            .join(path.trim_start_matches('/'));
        std::fs::read_to_string(p).ok()
    }

    /// What the container printed on its console.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// `GET /version` over TLS on dockerd's port, from inside the container's namespace,
    /// verifying the server as `name` against `certs/ca.pem` and presenting `certs/cert.pem`
    /// and `key.pem` (docker-machine's client certificate): the body, or `None`.
    pub fn docker_version(&self, certs: &Path) -> Option<String> {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.path()))
            .args(["curl", "-sf", "--max-time", "5"])
            .arg("--cacert")
            .arg(certs.join("ca.pem"))
            .arg("--cert")
            .arg(certs.join("cert.pem"))
            .arg("--key")
            .arg(certs.join("key.pem"))
            .arg("--resolve")
            .arg(format!("{}:2376:127.0.0.1", self.name))
            .arg(format!("https://{}:2376/version", self.name))
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && body.contains("\"ApiVersion\"")).then_some(body)
    }

    /// Tries the TLS handshake and `/version` every second (as the fork does) until it
    /// answers or `limit` passes: the answer and the time since the container started.
    pub fn wait_for_docker(&mut self, certs: &Path, limit: Duration) -> (String, Duration) {
        loop {
            if let Some(body) = self.docker_version(certs) {
                return (body, self.started.elapsed());
            }
            let exited = self
                .nspawn
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && self.started.elapsed() < limit,
                "no TLS handshake after {:?} (container exit: {exited:?}); console:\n{}",
                self.started.elapsed(),
                self.console()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The container's root file system (a copy of the image it booted, changed by the boot).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Waits up to `limit` for the container to power itself off: whether it exited 0.
    pub fn wait_for_poweroff(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let child = self.nspawn.as_mut().expect("the container's nspawn");
        loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                self.nspawn = None;
                return status.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits up to `limit` for a file of the container's.
    pub fn wait_for_file(&self, path: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.file(path) {
                return Some(t);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl Drop for Machine {
    /// Powers the container off (nspawn's SIGTERM), killing it after 60 s.
    fn drop(&mut self) {
        if let Some(mut c) = self.nspawn.take() {
            // SAFETY: kill on the pid of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
