//! What ec2spot's tests, benchmarks, demo and fuzz targets share (never part of the binary):
//! a docker-machine stand-in, a local EC2 and the fault proxy in front of it.
//!
//! # Layout
//! * [`plugin_client`] — docker-machine's side of the plugin contract in Rust: start a plugin
//!   binary as docker-machine does, heartbeat it, call its methods.
//! * [`goclient`] — builds and runs `dmclient` (tests/go/dmclient), the Go stand-in for
//!   docker-machine.
//! * [`moto`] — a private moto server (the local EC2 emulator).
//! * [`ec2_proxy`] — the fault proxy between the plugin and moto: records calls, injects
//!   failures, emulates EC2's token buckets, answers with recorded EC2 responses.
//! * [`strict`] — the layer of the proxy that makes the test EC2 as strict as EC2 where moto
//!   forgives (eventual consistency, termination and launch timing, spot rules); on unless
//!   `EC2SPOT_TEST_STRICT=off`.
//! * [`iam`] — the layer of the proxy that evaluates every plugin call against an IAM policy
//!   (the shipped one by default), conditions included.
//! * [`forward_proxy`] — an HTTP forward proxy (`HTTPS_PROXY`) that counts what goes through.
//! * [`bastion`] — one test's world: moto, proxy, a docker-machine store, the plugin on PATH.
//! * [`process`] — other processes by pid.
//! * [`fuzzing`] — the fuzz targets' entry points, replayed over their corpus by the tests.
//! * [`readme`] — the README's generated blocks (benchmark tables).
//! * [`architecture`] — the checks that keep the layers apart: crate dependencies, names a
//!   crate must not use, module import cycles, the declared `rust-version`.

#![warn(missing_docs)]

use std::path::Path;
use std::sync::OnceLock;

pub mod architecture;
pub mod bastion;
pub mod boot;
pub mod ec2_proxy;
pub mod forward_proxy;
pub mod fuzzing;
pub mod goclient;
pub mod iam;
pub mod moto;
pub mod plugin_client;
pub mod process;
pub mod readme;
pub mod strict;

/// The repository (workspace) root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/testkit is two levels below the workspace root")
}

/// The plugin binary under test, `docker-machine-driver-ec2spot`: what Cargo names in
/// `CARGO_BIN_EXE_docker-machine-driver-ec2spot` when it runs the root package's tests and
/// benchmarks (it builds the binary first), or else the binary beside the running test's
/// directory (`target/<profile>/deps/<test>` → `target/<profile>/`).
pub fn plugin_binary() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("CARGO_BIN_EXE_docker-machine-driver-ec2spot") {
            return p;
        }
        let exe = std::env::current_exe().expect("the test's own executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test runs from target/<profile>/deps");
        let p = profile_dir.join("docker-machine-driver-ec2spot");
        assert!(
            p.exists(),
            "{} does not exist: build the binary (cargo build) or run through cargo test",
            p.display()
        );
        p.to_string_lossy().into_owned()
    })
}
