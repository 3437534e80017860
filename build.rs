//! Generates the agent's gRPC code from proto/ with protox (pure Rust: no system protoc needed,
//! so `cargo install` works on a fresh machine), and links the binary for a fast start and few
//! resident pages: a position-independent executable with packed relocations, the functions
//! plugin processes run next to each other, and the unwinder linked in.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pack_relative_relocations();
    link_map();
    order_hot_functions();
    static_unwinder();
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
        // (src/agent/proto_debug.rs) instead of the derived one.
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

/// Links the binary with `-z pack-relative-relocs` (DT_RELR). The binary is a
/// position-independent executable (Rust's default, kept on purpose: the long-lived agent
/// receives every plugin's credentials, and its code should not sit at an address known in
/// advance); the loader adjusts its ~30 000 relative relocations at every start. Packed, they
/// take ~10 KB instead of ~700 KB, which every plugin process otherwise reads at start-up
/// (start-up time and resident memory). Only for a native build against glibc 2.36 or newer,
/// the first whose loader understands DT_RELR (the linker then records that requirement);
/// `EC2SPOT_NO_RELR=1` turns it off.
fn pack_relative_relocations() {
    println!("cargo:rerun-if-env-changed=EC2SPOT_NO_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if std::env::var_os("EC2SPOT_NO_RELR").is_some()
        || var("TARGET") != var("HOST")
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return;
    }
    // `getconf GNU_LIBC_VERSION` prints e.g. "glibc 2.36".
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    if (major, minor) >= (2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// `EC2SPOT_LINK_MAP=<file>` makes the linker write where each function landed in the binary
/// (`scripts/hot-functions` uses it to see which functions a plugin process runs).
fn link_map() {
    println!("cargo:rerun-if-env-changed=EC2SPOT_LINK_MAP");
    if let Some(path) = std::env::var_os("EC2SPOT_LINK_MAP") {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,-Map={}",
            path.to_string_lossy()
        );
    }
}

/// The functions a plugin process runs, in the order it first runs them
/// (`scripts/hot-functions/run` writes the list by tracing the demo).
const HOT_FUNCTIONS: &str = "link/hot-functions.txt";

/// Links a release binary with `HOT_FUNCTIONS` as lld's symbol-ordering file: those functions
/// come first in `.text`, so the few hundred KB of code a plugin process runs fill a few
/// hundred KB of pages instead of touching most of the binary's 7 MB (the kernel maps code in
/// 64 KB blocks around each page a process touches: resident memory and start-up time).
/// Names missing from this build (another compiler, changed code) are skipped, so a stale
/// list costs only the benefit. Only where the linker is surely rustc's own lld (x86_64 Linux
/// with rustc >= 1.90 and no linker configured); `EC2SPOT_NO_ORDER=1` turns it off.
fn order_hot_functions() {
    println!("cargo:rerun-if-changed={HOT_FUNCTIONS}");
    println!("cargo:rerun-if-env-changed=EC2SPOT_NO_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let configured_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || var("RUSTFLAGS").contains("link");
    if std::env::var_os("EC2SPOT_NO_ORDER").is_some()
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("HOST") != var("TARGET")
        || configured_linker
        || rustc_minor_version() < 90
    {
        return;
    }
    let path = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(HOT_FUNCTIONS);
    if path.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            path.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The `y` of rustc 1.y (0 when it cannot be told).
fn rustc_minor_version() -> u32 {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return 0;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0)
}

/// Links GCC's unwinder (`libgcc_eh.a`) into the binary instead of loading `libgcc_s.so.1`
/// at start: that library's constructor probes the CPU with `cpuid`, which in a virtual
/// machine (where CI runners live) traps to the hypervisor; it was ~30% of the user-space
/// time of a plugin's start-up. Rust's std asks the linker for `-lgcc_s`; a `libgcc_s.so`
/// linker script in a directory searched first answers with the static archive. Panics,
/// `catch_unwind` and backtraces work the same. Only for a native x86_64 Linux build whose C
/// compiler has `libgcc_eh.a`; `EC2SPOT_SHARED_LIBGCC=1` turns it off.
fn static_unwinder() {
    println!("cargo:rerun-if-env-changed=EC2SPOT_SHARED_LIBGCC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if std::env::var_os("EC2SPOT_SHARED_LIBGCC").is_some()
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("HOST") != var("TARGET")
    {
        return;
    }
    let Ok(out) = std::process::Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let archive = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // A compiler without the file prints just its name back.
    if !archive.is_absolute() || !archive.is_file() {
        return;
    }
    let dir = std::path::Path::new(&var("OUT_DIR")).join("static-unwinder");
    let script = format!("INPUT({})\n", archive.display());
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(dir.join("libgcc_s.so"), script).is_ok()
    {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
