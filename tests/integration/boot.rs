//! The boot test (issue 24): the user data a TLS-bootstrap create sent to EC2 (GitLab's fork
//! through the docker-machine stand-in, against moto) seeded into a Debian 12 system
//! container booted with systemd and cloud-init (`ec2spot_testkit::boot`). The test's client,
//! holding docker-machine's client certificate of the same CA, completes the TLS handshake
//! and reads `/version`; the user's own script ran after Docker started (and failed, which
//! stops nothing). Two paths: Docker installed at boot from Debian's archive, reachable only
//! through the proxy given with `--engine-env HTTP_PROXY=…` (the container's only way out),
//! and a baked image with Docker in it. Opt-in: `EC2SPOT_BOOT_TEST=1` (`.ci/run` sets it);
//! `cargo bench --bench boot_time --profile dev` prints the seconds.

use std::path::PathBuf;
use std::time::Duration;

use crate::gitlab_fork::{fork_ok, launched_user_data};
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::boot::{self, Machine, PROXY_PORT};

/// The user's own script: records whether Docker was up when it ran, then fails.
const USER_SCRIPT: &str = "#!/bin/sh\n\
    echo \"$(systemctl is-active docker.service) $(docker version --format '{{.Server.Version}}' 2>&1)\" \
    > /var/tmp/user-script-saw\n\
    exit 3\n";

/// A fork create of `name` with the bootstrap and the user's script (and the proxy as the
/// engine's environment): the user data it launched with.
async fn bootstrap_create(b: &Bastion, name: &str, proxy: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("userdata.sh");
    std::fs::write(&script, USER_SCRIPT).unwrap();
    let proxy_env = format!("HTTP_PROXY=http://127.0.0.1:{PROXY_PORT}");
    let mut args = vec![
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-tls-bootstrap",
        "--amazonec2-userdata",
        script.to_str().unwrap(),
    ];
    if proxy {
        args.extend(["--engine-env", proxy_env.as_str()]);
    }
    args.push(name);
    fork_ok(b, b.env(), &[], &args).await;
    launched_user_data(b).expect("user data in RunInstances")
}

/// What one boot showed.
struct Booted {
    version: String,
    ready: Duration,
    user_saw: Option<String>,
    carried: usize,
}

/// Boots `image` with `user_data` as machine `name` until dockerd answers over TLS.
fn boot_until_docker(image: PathBuf, name: String, user_data: Vec<u8>, certs: PathBuf) -> Booted {
    let mut m = Machine::boot(&image, &name, &user_data);
    let (version, ready) = m.wait_for_docker(&certs, Duration::from_secs(900));
    let user_saw = m.wait_for_file("/var/tmp/user-script-saw", Duration::from_secs(120));
    Booted {
        version,
        ready,
        user_saw,
        carried: m.proxy.carried(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bootstrap_boots_with_systemd_and_cloud_init() {
    if !boot::enabled() {
        eprintln!("skipped: EC2SPOT_BOOT_TEST=1 runs it (root, systemd-nspawn, debootstrap)");
        return;
    }
    let cache = tokio::task::spawn_blocking(boot::rootfs_cache)
        .await
        .unwrap();
    let b = Bastion::start().await;
    for (image, proxy) in [("stock", true), ("baked", false)] {
        let name = format!("boot-{image}-{}", std::process::id());
        let raw = bootstrap_create(&b, &name, proxy).await;
        let certs = b.store().join("machines").join(&name);
        let (img, n) = (cache.join(image), name.clone());
        let booted = tokio::task::spawn_blocking(move || boot_until_docker(img, n, raw, certs))
            .await
            .unwrap();
        assert!(
            booted.version.contains("\"ApiVersion\""),
            "{}",
            booted.version
        );
        let saw = booted.user_saw.expect("the user's script ran");
        assert!(
            saw.starts_with("active "),
            "the user's script ran before Docker was up: {saw}"
        );
        if proxy {
            assert!(booted.carried > 0, "Docker came through the proxy");
        } else {
            assert_eq!(booted.carried, 0, "a baked image installs nothing");
        }
        eprintln!(
            "boot ({image}): TLS handshake and /version {:.1} s after the container started",
            booted.ready.as_secs_f64()
        );
        fork_ok(&b, b.env(), &[], &["rm", "-y", &name]).await;
    }
}
