//! `cargo bench --bench boot_time --profile dev`: seconds from a system container's start to docker-machine's
//! TLS handshake and `/version`, for the user data of a TLS-bootstrap create (GitLab's fork
//! through the docker-machine stand-in, against moto), booted by systemd and cloud-init in a
//! Debian 12 container (`ec2spot_testkit::boot`, the boot test's machinery): Docker installed
//! at boot from Debian's archive through a proxy, and a baked image with Docker in it.
//! Printed, not asserted. Opt-in like the boot test: `EC2SPOT_BOOT_TEST=1` (root,
//! systemd-nspawn, debootstrap); `BOOT_TIME_ROUNDS` rounds (default 1).

use std::time::Duration;

use base64::Engine;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::boot::{self, Machine};

const USER_SCRIPT: &str =
    "#!/bin/sh\nsystemctl is-active docker.service > /var/tmp/user-script-saw\n";

/// A fork create of `name` with the bootstrap: the user data it launched with.
async fn create(b: &Bastion, name: &str, proxy: bool, script: &std::path::Path) -> Vec<u8> {
    let args = boot::bootstrap_create_args(script, proxy, name);
    let args: Vec<&str> = ["--gitlab-fork"]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    let o = b.dm_env(&args, b.env()).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = b
        .proxy
        .requests()
        .into_iter()
        .rfind(|r| r.action == "RunInstances")
        .expect("RunInstances");
    base64::engine::general_purpose::STANDARD
        .decode(r.param("UserData").expect("UserData"))
        .unwrap()
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench boot_time --profile dev`");
        return;
    }
    if !boot::enabled() {
        println!(
            "boot_time: skipped (EC2SPOT_BOOT_TEST=1 runs it: root, systemd-nspawn, debootstrap)"
        );
        return;
    }
    let rounds: usize = std::env::var("BOOT_TIME_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = boot::rootfs_cache();
    let b = rt.block_on(Bastion::start());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("userdata.sh");
    std::fs::write(&script, USER_SCRIPT).unwrap();
    println!(
        "| image | Docker | round | container start → TLS handshake + /version | user script saw Docker | proxy connections |"
    );
    println!("|---|---|---|---|---|---|");
    for (image, proxy, docker) in [
        ("baked", false, "in the image"),
        ("stock", true, "installed at boot through the proxy"),
    ] {
        for round in 1..=rounds {
            let name = format!("bench-{image}-{round}-{}", std::process::id());
            let raw = rt.block_on(create(&b, &name, proxy, &script));
            let certs = b.store().join("machines").join(&name);
            let mut m = Machine::boot(&cache.join(image), &name, &raw);
            let (_, ready) = m.wait_for_docker(&certs, Duration::from_secs(900));
            let saw = m
                .wait_for_file("/var/tmp/user-script-saw", Duration::from_secs(60))
                .unwrap_or_default();
            println!(
                "| {image} | {docker} | {round} | {:.1} s | {} | {} |",
                ready.as_secs_f64(),
                saw.trim(),
                m.proxy.carried()
            );
            drop(m);
            let _ = rt.block_on(b.dm_env(&["--gitlab-fork", "rm", "-y", &name], b.env()));
        }
    }
}
