//! What a runner admin downloads stays right: `--version` names the commit and the build date
//! (the identity the agent handshake uses too), and `scripts/release`'s packaging — the control
//! file, the tarball, the `.deb` layout, the unpacked start — works on the binary under test.
//! The glibc 2.17 build itself takes 15-25 minutes and is run by hand (TESTING.md).

use std::path::Path;
use std::process::Command;

use super::PLUGIN;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(ROOT)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let out = Command::new(PLUGIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let line = line.trim();
    let rest = line
        .strip_prefix(&format!(
            "docker-machine-driver-ec2spot {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("--version printed {line:?}"));
    let (commit, rest) = rest.split_once(", built ").expect("a build date");
    let date = rest.strip_suffix(')').expect("closing parenthesis");
    let d: Vec<&str> = date.split('-').collect();
    assert!(
        d.len() == 3
            && d[0].len() == 4
            && d[1].len() == 2
            && d[2].len() == 2
            && d.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "build date {date:?} is not YYYY-MM-DD"
    );
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        // In a checkout (CI, a developer's tree) the binary names the commit it was built from.
        Some(head) => assert!(
            commit == head || commit == format!("{head}-dirty"),
            "--version names commit {commit:?}, the checkout is at {head}"
        ),
        None => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn the_control_file_and_the_release_script_agree_with_cargo() {
    let control = std::fs::read_to_string(Path::new(ROOT).join("packaging/deb/control")).unwrap();
    let field = |name: &str| {
        control
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("packaging/deb/control lacks {name}"))
            .to_string()
    };
    assert_eq!(field("Package"), "docker-machine-driver-ec2spot");
    assert_eq!(
        field("Version"),
        "@VERSION@",
        "the script fills the version in"
    );
    assert_eq!(field("Architecture"), "amd64");
    assert!(field("Maintainer").contains('@'));
    assert!(!field("Description").is_empty());
    let script = std::fs::read_to_string(Path::new(ROOT).join("scripts/release")).unwrap();
    let glibc = script
        .lines()
        .find_map(|l| l.strip_prefix("GLIBC="))
        .expect("scripts/release sets GLIBC");
    assert_eq!(
        field("Depends"),
        format!("libc6 (>= {glibc})"),
        "the package depends on the glibc the binary is built for"
    );
    assert_eq!(
        Path::new(PLUGIN).file_name().unwrap(),
        "docker-machine-driver-ec2spot"
    );
    let syntax = Command::new("bash")
        .args(["-n", "scripts/release"])
        .current_dir(ROOT)
        .status()
        .unwrap();
    assert!(syntax.success(), "scripts/release has a bash syntax error");
}

/// The script's packaging half on the debug build: the artifacts it names, a valid control
/// file with Cargo's version, the binary in /usr/bin, and the unpacked `.deb` answering
/// `--version` and a plugin start (the script checks both and fails otherwise).
#[test]
fn the_release_script_packages_a_binary_that_starts() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        panic!("dpkg-deb is missing (Debian's dpkg; .ci/run installs it)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let out = Command::new("scripts/release")
        .args(["--package-only", PLUGIN])
        .env("DIST", &dist)
        .env("DEB_COMPRESSION", "none")
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/release --package-only failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("the unpacked .deb serves a plugin start"),
        "{stdout}"
    );
    let v = env!("CARGO_PKG_VERSION");
    let tarball = format!("docker-machine-driver-ec2spot-{v}-x86_64-linux.tar.gz");
    let deb = format!("docker-machine-driver-ec2spot_{v}_amd64.deb");
    let mut names: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["SHA256SUMS".to_string(), tarball.clone(), deb.clone()]
    );
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    for name in [&tarball, &deb] {
        assert!(
            sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
            "SHA256SUMS lacks {name}: {sums}"
        );
    }
    let info = Command::new("dpkg-deb")
        .args(["--field"])
        .arg(dist.join(&deb))
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains(&format!("Version: {v}\n")), "{info}");
    assert!(info.contains("Installed-Size: "), "{info}");
    let contents = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(dist.join(&deb))
        .output()
        .unwrap();
    let contents = String::from_utf8_lossy(&contents.stdout);
    for path in [
        "./usr/bin/docker-machine-driver-ec2spot",
        "./usr/share/doc/docker-machine-driver-ec2spot/examples/ec2spot-agent.service",
        "./usr/share/doc/docker-machine-driver-ec2spot/copyright",
    ] {
        assert!(
            contents.contains(path),
            "the .deb lacks {path}:\n{contents}"
        );
    }
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(dist.join(&tarball))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    let dir = tarball.trim_end_matches(".tar.gz");
    for f in ["docker-machine-driver-ec2spot", "LICENSE", "README.md"] {
        assert!(
            listing.lines().any(|l| l == format!("{dir}/{f}")),
            "the tarball lacks {dir}/{f}:\n{listing}"
        );
    }
}
