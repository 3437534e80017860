//! The agent where users run it: a binary upgraded while the runner works, a bastion behind a
//! proxy, an EC2 that refuses credentials or throttles, options with relative paths — always
//! through the docker-machine stand-in with the agent on (the default), and off where the two
//! paths differ.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::PLUGIN;
use crate::agent_status;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::forward_proxy::ForwardProxy;

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Copies the plugin into `dir` as a new file (as `install` and package upgrades do: write
/// beside, then move over the old path), returning its path.
fn install_plugin(dir: &Path) -> PathBuf {
    let path = dir.join("docker-machine-driver-ec2spot");
    let beside = dir.join(".docker-machine-driver-ec2spot.new");
    std::fs::copy(PLUGIN, &beside).unwrap();
    std::fs::rename(&beside, &path).unwrap();
    path
}

/// Build A serves; the file at the plugin's path is replaced by build B while A runs a create:
/// the next command is served by a new agent of build B, A finishes its create and leaves,
/// nothing is launched twice, and a config key only another version knows survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_hands_the_agent_over_without_losing_work() {
    let b = std::sync::Arc::new(Bastion::start().await);
    let bin = tempfile::tempdir().unwrap();
    install_plugin(bin.path());
    let mut env = b.env();
    env.push(("EC2SPOT_AWS_TIMEOUT".into(), "3".into()));
    let dm = |args: Vec<&'static str>| {
        let (b, env, dir) = (b.clone(), env.clone(), bin.path().to_path_buf());
        async move { b.dm_at(b.store(), &dir, None, &args, env).await }
    };
    ok(
        &dm(vec![
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-request-spot-instance",
            "m1",
        ])
        .await,
        "create m1",
    );
    let a = agent_status(b.store()).await;
    let a_build = a.build.clone().unwrap();
    assert!(a_build.exe.starts_with(&*bin.path().to_string_lossy()));

    // A key only a newer (or older) ec2spot knows.
    let cfg_path = b.store().join("machines/m1/config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["Driver"]["FutureField"] = serde_json::json!({"kept": [1, 2, 3]});
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    // A create in flight on build A: its RunInstances goes unanswered once (retried after 3 s).
    b.proxy.reset_log();
    b.proxy.hold_after("RunInstances", 0, 1);
    let in_flight = tokio::spawn(dm(vec![
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "m2",
    ]));
    wait_until("the held RunInstances", Duration::from_secs(60), || {
        b.proxy.count("RunInstances") >= 1
    })
    .await;

    // The upgrade.
    install_plugin(bin.path());
    let restart = dm(vec!["restart", "m1"]).await;
    ok(&restart, "restart m1 after the upgrade");
    let new = agent_status(b.store()).await;
    let new_build = new.build.clone().unwrap();
    assert_ne!(new.pid, a.pid, "a new agent serves the new build");
    assert_ne!(new_build.exe_ino, a_build.exe_ino);
    assert!(!new.draining);
    assert!(
        alive(a.pid),
        "the old agent is still finishing the create it had"
    );

    let created = in_flight.await.unwrap();
    ok(&created, "the create that was in flight during the upgrade");
    wait_until("the old agent to leave", Duration::from_secs(15), || {
        !alive(a.pid)
    })
    .await;
    assert!(alive(new.pid), "the new agent stays");
    let launched = b
        .proxy
        .requests()
        .iter()
        .filter(|r| r.action == "RunInstances" && !r.faulted)
        .count();
    assert_eq!(launched, 1, "m2 was launched once");
    let live = b.leftovers().await;
    let instances = live.iter().filter(|l| l.starts_with("instance ")).count();
    assert_eq!(instances, 2, "m1 and m2, nothing else: {live:?}");
    assert_eq!(
        b.driver("m1")["FutureField"],
        serde_json::json!({"kept": [1, 2, 3]}),
        "config.json keeps a key this build does not know"
    );

    // The new agent serves what follows; everything goes away.
    ok(&dm(vec!["rm", "-y", "m1", "m2"]).await, "rm");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    assert_eq!(agent_status(b.store()).await.pid, new.pid);
}

/// A plugin of a build that is no longer installed (it started before the upgrade) is not
/// served by the agent of the new build: it works on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_plugin_is_not_served_by_a_newer_agent() {
    let b = Bastion::start().await;
    let bin = tempfile::tempdir().unwrap();
    install_plugin(bin.path());
    let dir = bin.path().to_path_buf();
    // An old plugin process, started before the upgrade.
    let old =
        ec2spot_testkit::bastion::plugin_at(&dir.join("docker-machine-driver-ec2spot"), b.env())
            .await;
    install_plugin(bin.path());
    ok(
        &b.dm_at(
            b.store(),
            &dir,
            None,
            &["create", "-d", "ec2spot", "m1"],
            b.env(),
        )
        .await,
        "create with the new build",
    );
    let agent = agent_status(b.store()).await;
    let before = agent.operations;
    // The old process asks for m1's state: answered (directly), not by the new agent.
    let cfg = std::fs::read(b.store().join("machines/m1/config.json")).unwrap();
    let driver: serde_json::Value =
        serde_json::from_slice::<serde_json::Value>(&cfg).unwrap()["Driver"].clone();
    old.set_config_raw(&serde_json::to_vec(&driver).unwrap())
        .await
        .unwrap();
    assert_eq!(old.state().await.unwrap().to_string(), "Running");
    old.close().await;
    assert_eq!(
        agent_status(b.store()).await.operations,
        before,
        "the new agent did no work for the old build"
    );
    ok(
        &b.dm_at(b.store(), &dir, None, &["rm", "-y", "m1"], b.env())
            .await,
        "rm",
    );
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The bastion reaches EC2 only through a forward proxy that alone can resolve the endpoint's
/// name, named without a scheme (`HTTP_PROXY=127.0.0.1:PORT`, which Go's `net/http` — so
/// amazonec2 — reads as `http://`): create, status and rm work through it with the agent on
/// and off; the agent uses the plugin's proxy settings, not its own environment; NO_PROXY
/// covering the endpoint (Go's forms) bypasses the proxy, and a loopback endpoint is never
/// proxied (Go's rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bastion_behind_a_proxy() {
    let b = Bastion::start().await;
    let port = b.proxy.url.rsplit(':').next().unwrap().to_string();
    let hidden = "ec2.behind-the-proxy.test";
    let fwd = ForwardProxy::start(&[(hidden, "127.0.0.1")]).await;
    let endpoint = format!("http://{hidden}:{port}");
    let proxied_env = |agent: bool| {
        let mut env = if agent { b.env() } else { b.env_direct() };
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
        env.push((
            "HTTP_PROXY".into(),
            fwd.url.trim_start_matches("http://").to_string(),
        ));
        env
    };
    // The agent is started first, by hand, with no proxy in its own environment (and a dead
    // one, to be sure it never uses its own).
    let mut agent = std::process::Command::new(PLUGIN)
        .args(["agent", "--store"])
        .arg(b.store())
        .args(["--idle", "5s"])
        .env_remove("MACHINE_PLUGIN_TOKEN")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .spawn()
        .unwrap();
    wait_until("the agent's socket", Duration::from_secs(10), || {
        ec2spot_agent::paths::socket(b.store()).exists()
    })
    .await;
    for agent_on in [true, false] {
        let env = proxied_env(agent_on);
        let name = if agent_on { "p-agent" } else { "p-direct" };
        let before = fwd.forwarded();
        ok(
            &b.dm_env(
                &[
                    "create",
                    "-d",
                    "ec2spot",
                    "--amazonec2-request-spot-instance",
                    name,
                ],
                env.clone(),
            )
            .await,
            &format!("create {name} through the proxy"),
        );
        assert_eq!(
            ok(&b.dm_env(&["status", name], env.clone()).await, "status"),
            "Running"
        );
        ok(&b.dm_env(&["rm", "-y", name], env.clone()).await, "rm");
        assert!(
            fwd.forwarded() > before,
            "{name}: EC2 was reached through the proxy"
        );
        assert_eq!(b.leftovers().await, Vec::<String>::new());
        if agent_on {
            // Asked now: the agent idles out (5 s) while the direct round runs.
            assert!(
                agent_status(b.store()).await.operations >= 3,
                "the agent did the agent-on work"
            );
        }
    }
    // Without the proxy the endpoint's name cannot be resolved at all.
    let mut unproxied = proxied_env(false);
    unproxied.retain(|(k, _)| k != "HTTP_PROXY");
    let o = b
        .dm_env(&["create", "-d", "ec2spot", "p-none"], unproxied)
        .await;
    assert!(!o.status.success(), "no proxy, no EC2: {}", text(&o));
    let _ = b
        .dm_env(&["rm", "-f", "-y", "p-none"], b.env_direct())
        .await;

    // NO_PROXY covering the endpoint (a domain matches its subdomains, as in Go): straight to
    // it — which only the proxy can resolve, so the create fails — and the proxy sees nothing.
    for agent_on in [true, false] {
        let mut env = proxied_env(agent_on);
        env.push((
            "NO_PROXY".into(),
            "example.org, behind-the-proxy.test".into(),
        ));
        env.push(("EC2SPOT_AWS_TIMEOUT".into(), "3".into()));
        let before = fwd.forwarded();
        let name = if agent_on { "n-agent" } else { "n-direct" };
        let o = b
            .dm_env(
                &["create", "-d", "ec2spot", "--amazonec2-retries", "0", name],
                env,
            )
            .await;
        assert!(!o.status.success(), "went direct: {}", text(&o));
        assert_eq!(
            fwd.forwarded(),
            before,
            "{name}: NO_PROXY bypassed the proxy"
        );
        let _ = b.dm_env(&["rm", "-f", "-y", name], b.env_direct()).await;
    }
    // A loopback endpoint goes direct, NO_PROXY or not.
    for agent_on in [true, false] {
        let mut env = if agent_on { b.env() } else { b.env_direct() };
        env.push(("HTTP_PROXY".into(), fwd.url.clone()));
        let before = fwd.forwarded();
        let name = if agent_on { "l-agent" } else { "l-direct" };
        ok(
            &b.dm_env(&["create", "-d", "ec2spot", name], env.clone())
                .await,
            "create at a loopback endpoint",
        );
        ok(&b.dm_env(&["rm", "-y", name], env).await, "rm");
        assert_eq!(fwd.forwarded(), before, "{name}: loopback is not proxied");
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    let _ = agent.kill();
    let _ = agent.wait();
}

/// EC2 refuses the credentials (`AuthFailure`) while a machine was terminated behind the
/// agent's back: `status` must not answer Running from what the agent saw before. While EC2
/// throttles, the last known state stands in — only while it is younger than the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_state_has_a_bound_and_never_hides_a_refusal() {
    let b = Bastion::start().await;
    let mut env = b.env();
    env.push(("EC2SPOT_AGENT_STATE_TTL".into(), "1s".into()));
    env.push(("EC2SPOT_AGENT_MAX_STALE".into(), "4s".into()));
    let create = |name: &'static str| {
        let (b, env) = (&b, env.clone());
        async move {
            ok(
                &b.dm_env(
                    &["create", "-d", "ec2spot", "--amazonec2-retries", "-1", name],
                    env,
                )
                .await,
                "create",
            );
        }
    };
    create("gone").await;
    create("busy").await;
    assert_eq!(
        ok(&b.dm_env(&["status", "gone"], env.clone()).await, "status"),
        "Running"
    );

    // Terminated behind the agent's back, and EC2 now refuses the credentials.
    let id = b.driver("gone")["InstanceId"].as_str().unwrap().to_string();
    b.ec2()
        .await
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    b.proxy.fail("DescribeInstances", 401, "AuthFailure", 1000);
    tokio::time::sleep(Duration::from_millis(1300)).await; // past the TTL
    let o = b.dm_env(&["status", "gone"], env.clone()).await;
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Running"),
        "a refused read must not answer Running: {}",
        text(&o)
    );
    assert!(text(&o).contains("AuthFailure"), "{}", text(&o));
    b.proxy.clear();
    let o = b.dm_env(&["status", "gone"], env.clone()).await;
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Running"),
        "{}",
        text(&o)
    );

    // Throttled: the last known state, within the bound only.
    assert_eq!(
        ok(&b.dm_env(&["status", "busy"], env.clone()).await, "status"),
        "Running"
    );
    let seen = Instant::now();
    b.proxy
        .fail("DescribeInstances", 503, "RequestLimitExceeded", 1000);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let o = b.dm_env(&["status", "busy"], env.clone()).await;
    assert_eq!(
        ok(&o, "status while throttled, within the bound"),
        "Running"
    );
    let bound = Duration::from_secs(4);
    tokio::time::sleep(
        (seen + bound + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    )
    .await;
    let o = b.dm_env(&["status", "busy"], env.clone()).await;
    assert!(
        !o.status.success() && text(&o).contains("RequestLimitExceeded"),
        "past the bound EC2's error comes through: {}",
        text(&o)
    );
    b.proxy.clear();
    ok(&b.dm_env(&["rm", "-y", "gone", "busy"], env).await, "rm");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// `amazonec2-userdata` and `amazonec2-ssh-keypath` given relative to the user's working
/// directory are read there, although the agent that launches runs elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_are_the_users_not_the_agents() {
    let b = Bastion::start().await;
    // The agent starts from another directory (the first plugin's).
    let elsewhere = tempfile::tempdir().unwrap();
    let plugin_dir = PathBuf::from(PLUGIN).parent().unwrap().to_path_buf();
    ok(
        &b.dm_at(
            b.store(),
            &plugin_dir,
            Some(elsewhere.path()),
            &["create", "-d", "ec2spot", "first"],
            b.env(),
        )
        .await,
        "create from elsewhere",
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("boot.sh"), "#!/bin/sh\necho relative\n").unwrap();
    let key = ec2spot_ec2::resources::key_pair::generate().unwrap();
    std::fs::write(work.path().join("mykey"), &key.private_pem).unwrap();
    std::fs::write(
        work.path().join("mykey.pub"),
        format!("{}\n", key.public_line),
    )
    .unwrap();
    b.proxy.reset_log();
    ok(
        &b.dm_at(
            b.store(),
            &plugin_dir,
            Some(work.path()),
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-userdata",
                "boot.sh",
                "--amazonec2-ssh-keypath",
                "mykey",
                "second",
            ],
            b.env(),
        )
        .await,
        "create with relative paths",
    );
    let run = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "RunInstances")
        .expect("RunInstances");
    use base64::Engine;
    let ud = base64::engine::general_purpose::STANDARD
        .decode(run.param("UserData").expect("user data sent"))
        .unwrap();
    assert!(String::from_utf8_lossy(&ud).contains("echo relative"));
    let import = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "ImportKeyPair" && r.param("KeyName") == Some("second"))
        .expect("ImportKeyPair of the user's key");
    let material = base64::engine::general_purpose::STANDARD
        .decode(import.param("PublicKeyMaterial").unwrap())
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&material).trim(), key.public_line);
    let d = b.driver("second");
    assert!(
        Path::new(d["UserDataFile"].as_str().unwrap()).is_absolute(),
        "{d}"
    );
    ok(&b.dm(&["rm", "-y", "first", "second"]).await, "rm");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// A proxy URL's password (here one holding `@`, in a URL with and without a scheme) appears in
/// no output of a command that fails at the proxy — unreachable, or not a URL at all — with the
/// agent on and off, nor in the agent's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_password_is_never_shown() {
    let b = Bastion::start().await;
    let proxies = [
        ("bob:pa@ss-w0rd@127.0.0.1:9", false),
        ("http://bob:pa@ss-w0rd@[::1", true),
    ];
    for agent_on in [true, false] {
        for (n, (proxy, named)) in proxies.iter().enumerate() {
            let mut env = if agent_on { b.env() } else { b.env_direct() };
            env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
            // An endpoint only a proxy could reach.
            env.push((
                "AWS_ENDPOINT_URL".into(),
                "http://ec2.behind-the-proxy.test:80".into(),
            ));
            env.push(("HTTP_PROXY".into(), proxy.to_string()));
            env.push(("MACHINE_DEBUG".into(), "1".into()));
            let name = format!("pw{n}-{}", if agent_on { "agent" } else { "direct" });
            let o = b
                .dm_env(
                    &["create", "-d", "ec2spot", "--amazonec2-retries", "0", &name],
                    env,
                )
                .await;
            let out = text(&o);
            assert!(!o.status.success(), "{out}");
            if *named {
                assert!(
                    out.contains("bob:…@"),
                    "the bad proxy is named, its password hidden: {out}"
                );
            }
            for secret in ["ss-w0rd", "pa@ss"] {
                assert!(!out.contains(secret), "{name} shows {secret:?}: {out}");
            }
            let _ = b.dm_env(&["rm", "-f", "-y", &name], b.env_direct()).await;
        }
    }
    let log = std::fs::read_to_string(ec2spot_agent::paths::log(b.store())).unwrap_or_default();
    assert!(!log.contains("ss-w0rd"), "{log}");
}
