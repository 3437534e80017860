//! The boot test (issue 24): the user data a TLS-bootstrap create sent to EC2 (GitLab's fork
//! through the docker-machine stand-in, against moto) seeded into a Debian 12 system
//! container booted with systemd and cloud-init (`ec2spot_testkit::boot`). The test's client,
//! holding docker-machine's client certificate of the same CA, completes the TLS handshake
//! and reads `/version`; the user's own script ran after Docker started (and failed, which
//! stops nothing). Two paths: Docker installed at boot from Debian's archive, reachable only
//! through the proxy given with `--engine-env HTTP_PROXY=…` (the container's only way out),
//! and a baked image — baked by `image build`'s own user data, booted on the stock image
//! through the same proxy until it powered itself off. Opt-in: `EC2SPOT_BOOT_TEST=1` (`.ci/run` sets it);
//! `cargo bench --bench boot_time --profile dev` prints the seconds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gitlab_fork::{fork_ok, launched_user_data};
use ec2spot_ec2::tools::image::Recipe;
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
    let args = boot::bootstrap_create_args(&script, proxy, name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
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

/// Bakes an image as `image build`'s builder would: its user data (Docker from the archive
/// through the proxy, no pulls: no registry here) booted on `stock` until it powers off. The
/// builder, whose root is the baked image.
fn bake(stock: &Path) -> Machine {
    let recipe = Recipe {
        base_ami: "ami-debian12".into(),
        docker_version: String::new(),
        pulls: Vec::new(),
        proxy: vec![(
            "HTTP_PROXY".into(),
            format!("http://127.0.0.1:{PROXY_PORT}"),
        )],
    };
    let name = format!("builder-{}", std::process::id());
    let mut m = Machine::boot(stock, &name, recipe.script().as_bytes());
    assert!(
        m.wait_for_poweroff(Duration::from_secs(900)),
        "the builder did not power off; console:\n{}",
        m.console()
    );
    assert!(m.proxy.carried() > 0, "Docker came through the proxy");
    let root = m.root();
    // A link to /usr/sbin/dockerd: absolute, so looked at, not followed, from outside.
    assert!(
        std::fs::symlink_metadata(root.join("usr/bin/dockerd")).is_ok(),
        "dockerd where drop-ins start it; console:\n{}",
        m.console()
    );
    assert!(
        !root.join("var/lib/cloud/instance").exists(),
        "cloud-init's per-instance state cleared"
    );
    assert!(
        std::fs::symlink_metadata(
            root.join("etc/systemd/system/multi-user.target.wants/docker.service")
        )
        .is_err(),
        "Docker left for the drop-in to start"
    );
    assert!(
        std::fs::symlink_metadata(
            root.join("etc/systemd/system/sockets.target.wants/docker.socket")
        )
        .is_ok(),
        "the socket starts Docker on first use (docker-machine's provisioner)"
    );
    m
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
    let stock = cache.join("stock");
    let builder = tokio::task::spawn_blocking(move || bake(&stock))
        .await
        .unwrap();
    let b = Bastion::start().await;
    for (image, proxy) in [("stock", true), ("baked", false)] {
        let name = format!("boot-{image}-{}", std::process::id());
        let raw = bootstrap_create(&b, &name, proxy).await;
        eprintln!("boot ({image}): the user data is {} bytes", raw.len());
        let certs = b.store().join("machines").join(&name);
        let img = if proxy {
            cache.join(image)
        } else {
            builder.root()
        };
        let n = name.clone();
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
