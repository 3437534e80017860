//! The binary is a position-independent executable (ELF type `DYN` with an interpreter and the
//! `PIE` flag), its relative relocations are packed where glibc understands that (DT_RELR,
//! glibc >= 2.36), and as such it still answers `--version` and serves docker-machine. Where
//! the kernel randomises addresses, two plugin processes load its code at different addresses.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ec2spot_testkit::plugin_client::PluginProcess;

use crate::PLUGIN;

const ET_DYN: u16 = 3;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_RELR: u64 = 36;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_1_PIE: u64 = 0x0800_0000;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// What the ELF headers of a 64-bit little-endian executable say.
struct Elf {
    kind: u16,
    has_interpreter: bool,
    /// The dynamic section's (tag, value) entries.
    dynamic: Vec<(u64, u64)>,
}

fn read_elf(path: &Path) -> Elf {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!((b[4], b[5]), (2, 1), "64-bit little-endian");
    let (phoff, phentsize, phnum) = (
        u64_at(&b, 32) as usize,
        u16_at(&b, 54) as usize,
        u16_at(&b, 56) as usize,
    );
    let mut elf = Elf {
        kind: u16_at(&b, 16),
        has_interpreter: false,
        dynamic: Vec::new(),
    };
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(&b, ph) {
            PT_INTERP => elf.has_interpreter = true,
            PT_DYNAMIC => {
                let (off, size) = (u64_at(&b, ph + 8) as usize, u64_at(&b, ph + 32) as usize);
                for e in (off..off + size).step_by(16) {
                    let tag = u64_at(&b, e);
                    if tag == 0 {
                        break;
                    }
                    elf.dynamic.push((tag, u64_at(&b, e + 8)));
                }
            }
            _ => {}
        }
    }
    elf
}

/// (major, minor) of the build machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36").
fn glibc() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[test]
fn the_binary_is_a_position_independent_executable_with_packed_relocations() {
    let elf = read_elf(Path::new(PLUGIN));
    assert_eq!(
        elf.kind, ET_DYN,
        "ELF type DYN (EXEC = linked at a fixed address)"
    );
    assert!(
        elf.has_interpreter,
        "an executable (PT_INTERP), not a library"
    );
    let flags_1 = elf
        .dynamic
        .iter()
        .find(|(t, _)| *t == DT_FLAGS_1)
        .map_or(0, |(_, v)| *v);
    assert_ne!(flags_1 & DF_1_PIE, 0, "DF_1_PIE set: {flags_1:#x}");
    let relr = elf.dynamic.iter().any(|(t, _)| *t == DT_RELR);
    let glibc = glibc();
    println!("glibc {glibc:?}, DT_RELR {relr}");
    if glibc.is_some_and(|v| v >= (2, 36)) && option_env!("EC2SPOT_NO_RELR").is_none() {
        assert!(relr, "glibc >= 2.36: relative relocations packed (DT_RELR)");
    }
}

#[test]
fn the_pie_binary_answers_version() {
    let out = Command::new(PLUGIN)
        .arg("--version")
        .env_remove("MACHINE_PLUGIN_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // The commit and build date that follow are checked by release.rs.
    let want = format!(
        "docker-machine-driver-ec2spot {} (commit ",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.starts_with(&want), "{text:?}");
}

/// Where the binary's first mapping starts in process `pid`.
fn load_address(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let exe = std::fs::canonicalize(PLUGIN).unwrap();
    let line = maps
        .lines()
        .find(|l| l.ends_with(exe.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} not mapped:\n{maps}", exe.display()));
    u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_start_serve_and_load_at_random_addresses() {
    let env = [(
        "EC2SPOT_AGENT".to_string(),
        "off".to_string(), // nothing here talks to EC2
    )];
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let p = PluginProcess::start(Path::new(PLUGIN), "ec2spot", &env, None)
            .await
            .expect("plugin starts");
        assert_eq!(p.version().await.unwrap(), 1, "GetVersion answered");
        assert_eq!(p.string("DriverName").await.unwrap(), "ec2spot");
        addresses.push(load_address(p.pid().unwrap()));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), p.close())
                .await
                .unwrap(),
            Some(0)
        );
    }
    println!("load addresses: {addresses:#x?}");
    let randomised = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space")
        .is_ok_and(|v| v.trim() != "0");
    if randomised {
        assert_ne!(
            addresses[0], addresses[1],
            "the kernel randomises addresses: a PIE binary lands elsewhere each time"
        );
    }
}
