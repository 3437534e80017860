//! The plugin processes of the vs_go bench: which binary is which, the environment every
//! plugin gets, and finding and stopping the ec2spot agent.

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) const AMI: &str = "ami-0e86e20dae9224db8";
pub(crate) const INSTANCE_TYPE: &str = "t3.micro";
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);

/// moto's default VPC: moto answers `default-vpc: none` to DescribeAccountAttributes where EC2
/// names it, so the Go baseline (which makes amazonec2's calls) is handed the id EC2 would name.
pub(crate) static DEFAULT_VPC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Ec2spot,
    Go,
}

/// The pid of the ec2spot agent serving `store` (a `… agent --store <store>` process).
pub(crate) fn find_agent(store: &Path) -> Option<u32> {
    let want = store.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_agent = args.iter().any(|a| *a == b"agent");
        let serves_store = args.windows(2).any(|w| w[0] == b"--store" && w[1] == want);
        if is_agent && serves_store {
            return Some(pid);
        }
    }
    None
}

/// Ends an agent this bench caused to start (by its pid) and waits for it to go.
pub(crate) fn stop_agent(pid: u32) {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: as above.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

/// Environment for every plugin: moto (or nothing) as the endpoint, dummy credentials, no
/// shared config files, the store.
pub(crate) fn plugin_env(endpoint: &str, store: &Path, agent: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ("AWS_CONFIG_FILE".into(), "/nonexistent/vs_go/config".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            "/nonexistent/vs_go/credentials".into(),
        ),
        (
            "MACHINE_STORAGE_PATH".into(),
            store.to_string_lossy().into_owned(),
        ),
        // Safety net: an agent we miss still goes away on its own.
        ("EC2SPOT_AGENT_IDLE".into(), "60s".into()),
    ];
    if !agent {
        env.push(("EC2SPOT_AGENT".into(), "off".into()));
    }
    if let Some(vpc) = DEFAULT_VPC.get() {
        env.push(("BASELINE_DEFAULT_VPC".into(), vpc.clone()));
    }
    env
}

pub(crate) fn driver_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Ec2spot => "ec2spot",
        Kind::Go => "baseline",
    }
}
