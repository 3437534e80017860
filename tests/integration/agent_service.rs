//! The agent as the shipped systemd unit runs it (`examples/ec2spot-agent.service`): its
//! `ExecStart` command line as written (the binary and store paths swapped for the test's), under
//! a stand-in for systemd with the unit's restart policy — `Restart=always`, `RestartSec=2`, and
//! systemd's default start limit (more than 5 starts within 10 s fails the unit). An upgrade —
//! a new file moved over the `ExecStart` path, or a symlink there repointed from `versions/A` to
//! `versions/B` — while a create is in flight: the service agent finishes the create and exits,
//! the restart brings up the new build, plugins meanwhile start no agent of their own, nothing
//! is launched twice, and the unit restarts once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{PLUGIN, agent_running, agent_status};
use ec2spot_testkit::bastion::Bastion;

/// systemd's default start limit: `StartLimitBurst=5` within `StartLimitIntervalSec=10`.
const START_LIMIT: (usize, Duration) = (5, Duration::from_secs(10));

/// The unit's `ExecStart` (continuation lines joined), split into words.
fn exec_start() -> Vec<String> {
    let unit = include_str!("../../examples/ec2spot-agent.service");
    let mut line = String::new();
    let mut lines = unit.lines().skip_while(|l| !l.starts_with("ExecStart="));
    for l in lines.by_ref() {
        let l = l.trim();
        match l.strip_suffix('\\') {
            Some(part) => line.push_str(part),
            None => {
                line.push_str(l);
                break;
            }
        }
        line.push(' ');
    }
    let words: Vec<String> = line
        .trim_start_matches("ExecStart=")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(words.len() > 2, "ExecStart in the unit: {line}");
    words
}

fn restart_sec() -> Duration {
    let unit = include_str!("../../examples/ec2spot-agent.service");
    let secs = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestartSec="))
        .expect("RestartSec in the unit");
    assert!(
        unit.lines().any(|l| l == "Restart=always"),
        "the unit restarts always"
    );
    Duration::from_secs(secs.trim().parse().unwrap())
}

/// A stand-in for systemd running the unit: starts `ExecStart` (with `binary` and `store` in
/// place of the unit's), restarts it `RestartSec` after every exit, and stops at the start
/// limit as systemd would (the unit then failed).
struct Supervisor {
    starts: Arc<Mutex<Vec<Instant>>>,
    child: Arc<Mutex<Option<u32>>>,
    failed: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Supervisor {
    fn start(binary: &Path, store: &Path) -> Supervisor {
        let words = exec_start();
        let args: Vec<String> = words[1..]
            .iter()
            .map(|w| {
                if w == "/home/gitlab-runner/.docker/machine" {
                    store.to_string_lossy().into_owned()
                } else if w == "127.0.0.1:9742" {
                    // The unit's metrics port: any free one here, so tests never share it.
                    "127.0.0.1:0".to_string()
                } else {
                    w.clone()
                }
            })
            .collect();
        assert!(args.iter().any(|a| a == &*store.to_string_lossy()));
        let s = Supervisor {
            starts: Arc::default(),
            child: Arc::default(),
            failed: Arc::default(),
            stop: Arc::default(),
        };
        let (starts, child, failed, stop) = (
            s.starts.clone(),
            s.child.clone(),
            s.failed.clone(),
            s.stop.clone(),
        );
        let binary = binary.to_path_buf();
        let pause = restart_sec();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            loop {
                {
                    let mut starts = starts.lock().unwrap();
                    let now = Instant::now();
                    starts.push(now);
                    let recent = starts
                        .iter()
                        .filter(|t| now.duration_since(**t) < START_LIMIT.1)
                        .count();
                    if recent > START_LIMIT.0 {
                        failed.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                let mut c = std::process::Command::new(&binary)
                    .args(&args)
                    .env_clear()
                    .spawn()
                    .expect("ExecStart runs");
                *child.lock().unwrap() = Some(c.id());
                let _ = c.wait();
                *child.lock().unwrap() = None;
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(pause);
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
        });
        s
    }

    fn pid(&self) -> Option<u32> {
        *self.child.lock().unwrap()
    }

    fn starts(&self) -> usize {
        self.starts.lock().unwrap().len()
    }

    /// `systemctl stop`: SIGTERM to the service, no restart.
    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) with a pid this supervisor started and a signal number.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
}

async fn wait_until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Copies the plugin to `path` as a new file (written beside, then moved over).
fn install_copy(path: &Path) {
    let beside = path.with_extension("new");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(PLUGIN, &beside).unwrap();
    std::fs::rename(&beside, path).unwrap();
}

/// Points the symlink `link` at `target` in one step (a new link moved over the old).
fn repoint(link: &Path, target: &Path) {
    let beside = link.with_extension("new");
    let _ = std::fs::remove_file(&beside);
    std::os::unix::fs::symlink(target, &beside).unwrap();
    std::fs::rename(&beside, link).unwrap();
}

/// The scenario, with `upgrade` making the new build the one at the `ExecStart` path.
async fn hand_over(bin: &Path, upgrade: impl FnOnce()) {
    let b = Arc::new(Bastion::start().await);
    let binary = bin.join("docker-machine-driver-ec2spot");
    let unit = Supervisor::start(&binary, b.store());
    wait_until(
        "the service agent",
        Duration::from_secs(20),
        async || match (agent_running(b.store()).await, unit.pid()) {
            (Some(s), Some(pid)) => s.pid == pid,
            _ => false,
        },
    )
    .await;
    let first = unit.pid().unwrap();
    let mut env = b.env();
    env.push(("EC2SPOT_AWS_TIMEOUT".into(), "3".into()));
    let dm = |args: Vec<&'static str>| {
        let (b, env, dir) = (b.clone(), env.clone(), bin.to_path_buf());
        async move { b.dm_at(b.store(), &dir, None, &args, env).await }
    };
    ok(
        &dm(vec!["create", "-d", "ec2spot", "m1"]).await,
        "create m1",
    );
    let served = agent_status(b.store()).await;
    assert_eq!(served.pid, first, "the service served the create");
    assert!(served.operations > 0);

    // A create in flight on the old build: its RunInstances goes unanswered once.
    b.proxy.reset_log();
    b.proxy.hold_after("RunInstances", 0, 1);
    let in_flight = tokio::spawn(dm(vec!["create", "-d", "ec2spot", "m2"]));
    wait_until(
        "the held RunInstances",
        Duration::from_secs(60),
        async || b.proxy.count("RunInstances") >= 1,
    )
    .await;

    upgrade();
    ok(
        &dm(vec!["restart", "m1"]).await,
        "restart m1 after the upgrade",
    );
    ok(
        &in_flight.await.unwrap(),
        "the create in flight during the upgrade",
    );
    let now = agent_status(b.store()).await;
    assert_ne!(now.pid, first, "the old build's agent left");
    assert_eq!(Some(now.pid), unit.pid(), "the agent serving is the unit's");
    assert!(!unit.failed.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(unit.starts(), 2, "one restart: the upgrade, no loop");
    let launched = b
        .proxy
        .requests()
        .iter()
        .filter(|r| r.action == "RunInstances" && !r.faulted && !r.refused)
        .count();
    assert_eq!(launched, 1, "m2 was launched once");
    let live = b.leftovers().await;
    let instances = live.iter().filter(|l| l.starts_with("instance ")).count();
    assert_eq!(instances, 2, "m1 and m2, nothing else: {live:?}");

    ok(&dm(vec!["rm", "-y", "m1", "m2"]).await, "rm");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    assert_eq!(agent_status(b.store()).await.pid, now.pid);
    unit.stop();
    wait_until("the service to stop", Duration::from_secs(20), async || {
        unit.pid().is_none()
    })
    .await;
    assert!(
        !ec2spot_agent::service::claimed(b.store()),
        "a stopped service gives the store back to plugin-started agents"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_unit_a_replaced_binary_hands_over_once() {
    let bin = tempfile::tempdir().unwrap();
    let binary = bin.path().join("docker-machine-driver-ec2spot");
    install_copy(&binary);
    hand_over(bin.path(), || install_copy(&binary)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_unit_a_repointed_version_symlink_hands_over_once() {
    let root = tempfile::tempdir().unwrap();
    let (a, b): (PathBuf, PathBuf) = (
        root.path().join("versions/A/docker-machine-driver-ec2spot"),
        root.path().join("versions/B/docker-machine-driver-ec2spot"),
    );
    install_copy(&a);
    install_copy(&b);
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("docker-machine-driver-ec2spot");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    hand_over(&bin, || repoint(&link, &b)).await;
}
