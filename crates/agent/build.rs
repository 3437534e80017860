//! Generates the agent's gRPC code from proto/ with protox (pure Rust: no system protoc needed,
//! so `cargo install` works on a fresh machine), and the build identity the agent's handshake
//! and `--version` show.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    build_identity();
    let protos = ["proto/ec2spot/agent/v1/agent.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Messages that carry credentials, a driver config (which may hold them), a proxy URL
        // (which may hold a password) or TLS keys get a redacting `Debug` by hand
        // (src/proto_debug.rs) instead of the derived one.
        .skip_debug([
            ".ec2spot.agent.v1.Credentials",
            ".ec2spot.agent.v1.ClientSettings",
            ".ec2spot.agent.v1.RunRequest",
            ".ec2spot.agent.v1.RunResult",
            ".ec2spot.agent.v1.TlsBootstrap",
        ])
        .compile_fds(fds)?;
    Ok(())
}

/// The build's identity for `--version` and the agent handshake: `EC2SPOT_COMMIT` (the git
/// commit, with `-dirty` when the tree had changes; `unknown` outside a git checkout) and
/// `EC2SPOT_BUILD_DATE` (UTC, from `SOURCE_DATE_EPOCH` when set, for reproducible builds).
fn build_identity() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let commit = if dirty && commit != "unknown" {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=EC2SPOT_COMMIT={commit}");
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(index) = git(&["rev-parse", "--git-path", "index"]) {
        println!("cargo:rerun-if-changed={index}");
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=EC2SPOT_BUILD_DATE={}", utc_date(secs));
}

/// `YYYY-MM-DD` of a Unix time (civil-from-days, Howard Hinnant's algorithm).
fn utc_date(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
