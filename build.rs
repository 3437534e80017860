//! Generates the agent's gRPC code from proto/ with protox (pure Rust: no system protoc needed,
//! so `cargo install` works on a fresh machine), and packs the binary's relative relocations
//! where the C library can load them.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pack_relative_relocations();
    let protos = ["proto/ec2spot/agent/v1/agent.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Links the binary with `-z pack-relative-relocs` (DT_RELR): its ~30 000 relative relocations
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
