//! GitLab's docker-machine fork's TLS bootstrap on EC2 (`amazonec2-tls-bootstrap`): the fork
//! hands over the CA, the machine's server certificate and key and the systemd drop-in that
//! starts dockerd with TLS on 2376; we deliver them in the instance's user data as a
//! cloud-config, and a script part that cloud-init runs before the user's own scripts: it
//! installs Docker when the image lacks it and starts it with the drop-in. docker-machine then skips SSH provisioning and waits for the TLS
//! handshake instead.
//!
//! Docker comes from the image's own package archive: Ubuntu's `docker.io` (the default image
//! is Ubuntu LTS), or `docker` through dnf/yum (Amazon Linux). Ubuntu's archive is mirrored
//! inside each EC2 region and its key is already trusted, so there is no third-party
//! repository to add, no extra key to fetch and no egress to download.docker.com (which a
//! private subnet may not have); Docker's install script, which docker-machine runs over SSH,
//! does all three. The install goes through the proxy docker-machine gives the engine
//! (`--engine-env HTTP_PROXY=…`, in the drop-in's `Environment=`), installs the version of
//! `amazonec2-docker-version` when one is pinned, and links `dockerd` to where the drop-in
//! starts it (Debian's `docker.io` puts it in `/usr/sbin`). An image that already has dockerd
//! (at the pinned version, if any) installs nothing.
//!
//! A custom `amazonec2-ami` must be Linux with cloud-init (MIME multi-part user data,
//! `write_files`, script parts) and systemd, and either dockerd or apt-get, dnf or yum with a
//! `docker.io`/`docker` package reachable; `amazonec2-ami-os` names images that cannot work.

use aws_sdk_ec2::types::PlatformValues;
use ec2spot_redact::{ByteCount, SecretBytes};

use crate::aws::error::{Error, Result, aws};
use crate::options::error::OptionError;
use crate::options::flags::name;

/// The TLS material GitLab's fork hands over for a create (`drivers.TLSBootstrap`, converted
/// by the binary): the CA certificate, the machine's server certificate and key (valid for
/// the machine name), and the systemd drop-in that starts dockerd with them on 2376. The
/// server key is a secret: `Debug` shows only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificate (PEM).
    pub ca_cert: Vec<u8>,
    /// The machine's server certificate (PEM).
    pub server_cert: Vec<u8>,
    /// The machine's server key (PEM, secret).
    pub server_key: Vec<u8>,
    /// The systemd drop-in for docker.service.
    pub daemon_dropin: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_cert", &ByteCount(&self.ca_cert))
            .field("server_cert", &ByteCount(&self.server_cert))
            .field("server_key", &SecretBytes(&self.server_key))
            .field(
                "daemon_dropin",
                &String::from_utf8_lossy(&self.daemon_dropin),
            )
            .finish()
    }
}

/// Where docker-machine's systemd provisioners put the Docker daemon drop-in.
pub const DROPIN_PATH: &str = "/etc/systemd/system/docker.service.d/10-machine.conf";

/// Where the drop-in expects the TLS files and dockerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    /// The dockerd binary `ExecStart` runs.
    pub dockerd: String,
    /// `--tlscacert`.
    pub ca_cert: String,
    /// `--tlscert`.
    pub server_cert: String,
    /// `--tlskey`.
    pub server_key: String,
}

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Other(format!(
        "TLS bootstrap from docker-machine (--{}): {field} {why}",
        name::TLS_BOOTSTRAP
    ))
}

/// A path we can write and name in a shell script without quoting.
fn plain_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains("/../")
        && p.len() < 256
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
}

/// The value of `--flag value` or `--flag=value` among `args`.
fn option_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            args.get(i + 1).copied()
        } else {
            a.strip_prefix(flag).and_then(|r| r.strip_prefix('='))
        }
    })
}

/// Reads the paths the drop-in's (last, non-empty) `ExecStart=` uses.
pub fn daemon_paths(dropin: &str) -> Result<DaemonPaths> {
    let exec = dropin
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .ok_or_else(|| bad("DaemonDropin", "has no ExecStart= line starting dockerd"))?;
    let args: Vec<&str> = exec.split_whitespace().collect();
    let take = |flag: &str| -> Result<String> {
        let v = option_value(&args, flag).ok_or_else(|| {
            bad(
                "DaemonDropin",
                format!("starts dockerd without {flag}: where the file goes is unknown"),
            )
        })?;
        if !plain_path(v) {
            return Err(bad(
                "DaemonDropin",
                format!("gives {flag} {v:?}, not a plain absolute path"),
            ));
        }
        Ok(v.to_string())
    };
    let dockerd = args[0].trim_start_matches(['-', '@', '+', '!', ':']);
    if !plain_path(dockerd) {
        return Err(bad(
            "DaemonDropin",
            format!("starts {dockerd:?}, not a plain absolute path to dockerd"),
        ));
    }
    Ok(DaemonPaths {
        dockerd: dockerd.to_string(),
        ca_cert: take("--tlscacert")?,
        server_cert: take("--tlscert")?,
        server_key: take("--tlskey")?,
    })
}

/// Checks the material docker-machine handed over and finds where it goes.
pub fn validate(b: &TlsMaterial) -> Result<DaemonPaths> {
    let text = |field: &str, v: &[u8]| -> Result<String> {
        if v.is_empty() {
            return Err(bad(field, "is empty"));
        }
        String::from_utf8(v.to_vec()).map_err(|_| bad(field, "is not text (PEM expected)"))
    };
    if !text("CACert", &b.ca_cert)?.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("CACert", "is not a PEM certificate"));
    }
    if !text("ServerCert", &b.server_cert)?.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("ServerCert", "is not a PEM certificate"));
    }
    let key = text("ServerKey", &b.server_key)?;
    if !(key.contains("-----BEGIN ") && key.contains("PRIVATE KEY-----")) {
        return Err(bad("ServerKey", "is not a PEM private key"));
    }
    let dropin = text("DaemonDropin", &b.daemon_dropin)?;
    if !dropin.contains("[Service]") {
        return Err(bad("DaemonDropin", "is not a systemd drop-in ([Service])"));
    }
    daemon_paths(&dropin)
}

/// The environment variables that name a proxy, as Go's `httpproxy` and apt read them.
pub const PROXY_VARIABLES: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Whether the start script can put `value` in single quotes: no quote, backslash or control
/// character.
pub fn quotable(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c == '\'' || c == '\\' || c.is_control())
}

/// The environment variables of the drop-in's `Environment=` lines (docker-machine's
/// `--engine-env`, written by the fork as Go-quoted `"KEY=value"` words) that name a proxy:
/// the install uses them too, as dockerd will. A value the start script could not quote
/// safely is refused, naming the variable.
pub fn proxy_env(dropin: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in dropin.lines() {
        let Some(words) = line.trim().strip_prefix("Environment=") else {
            continue;
        };
        for word in words.split_whitespace() {
            let word = word.trim_matches('"');
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            if !PROXY_VARIABLES.contains(&k) {
                continue;
            }
            if !quotable(v) {
                return Err(bad(
                    "DaemonDropin",
                    format!("sets {k} to a value with a quote, backslash or control character"),
                ));
            }
            out.retain(|(have, _): &(String, String)| have != k);
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

/// cloud-init runs the user data's scripts in the order of their file names (the
/// `scripts_user` module: `runparts` over `sorted(os.listdir(...))`) and goes on after a
/// failure; `(` sorts before every other character cloud-init keeps in a name
/// (`FN_ALLOWED`: letters, digits, `_-.()`), so this part runs before the user's own
/// scripts and the `runcmd` script of their cloud-config.
pub const START_PART_NAME: &str = "(ec2spot)-docker-tls.sh";

/// The start script: run by cloud-init before the user's own scripts, it installs Docker from
/// the image's package archive when `dockerd` is missing (or not `docker_version`), through
/// the drop-in's proxy if it names one, puts `dockerd` where the drop-in starts it, and starts
/// Docker with the drop-in.
pub fn start_script(b: &TlsMaterial, docker_version: &str) -> Result<String> {
    let paths = validate(b)?;
    let dropin = String::from_utf8_lossy(&b.daemon_dropin);
    // apt reads only the lower-case names, dnf and dockerd either: both are set, the name
    // the drop-in gives winning over its other case.
    let given = proxy_env(&dropin)?;
    let mut env = String::new();
    for upper in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        let lower = upper.to_ascii_lowercase();
        let value = |k: &str| given.iter().find(|(g, _)| g == k).map(|(_, v)| v);
        for (k, other) in [(upper, lower.as_str()), (lower.as_str(), upper)] {
            if let Some(v) = value(k).or_else(|| value(other)) {
                env.push_str(&format!("export {k}='{v}'\n"));
            }
        }
    }
    Ok(format!(
        include_str!("start_script.sh"),
        flag = name::TLS_BOOTSTRAP,
        env = env,
        dockerd = paths.dockerd,
        version = docker_version,
    ))
}

/// A YAML literal block can hold `content` exactly: printable ASCII lines, the first not
/// starting with a space (which would change the block's indentation).
fn literal_ok(content: &[u8]) -> bool {
    !content.is_empty()
        && !content.starts_with(b" ")
        && !content.starts_with(b"\n")
        && content
            .iter()
            .all(|&c| c == b'\n' || (0x20..=0x7e).contains(&c))
}

/// One `write_files` entry; text as a literal block (readable on the machine with
/// `cloud-init query userdata`), anything else base64.
fn write_file(out: &mut String, path: &str, permissions: &str, content: &[u8]) {
    use base64::Engine;
    out.push_str(&format!(
        "- path: {path}\n  owner: root:root\n  permissions: '{permissions}'\n"
    ));
    if literal_ok(content) {
        let trailing = content.iter().rev().take_while(|&&c| c == b'\n').count();
        let chomp = match trailing {
            0 => "|-",
            1 => "|",
            _ => "|+",
        };
        out.push_str(&format!("  content: {chomp}\n"));
        let text = std::str::from_utf8(content).expect("ASCII");
        let body = text.strip_suffix('\n').unwrap_or(text);
        for line in body.split('\n') {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
    } else {
        out.push_str("  encoding: b64\n  content: ");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(content));
        out.push('\n');
    }
}

/// The cloud-config part: the certificates and key where the drop-in expects them (the key
/// 0600) and the drop-in, written in cloud-init's first stage, long before the start script.
pub fn cloud_config(b: &TlsMaterial) -> Result<String> {
    let paths = validate(b)?;
    let mut out = format!(
        "#cloud-config\n\
         # ec2spot --{}: docker-machine's TLS material and Docker daemon drop-in;\n\
         # the script part {START_PART_NAME} installs Docker if the image lacks it and\n\
         # starts it with TLS, before the user's own scripts.\n\
         write_files:\n",
        name::TLS_BOOTSTRAP
    );
    write_file(&mut out, &paths.ca_cert, "0644", &b.ca_cert);
    write_file(&mut out, &paths.server_cert, "0644", &b.server_cert);
    write_file(&mut out, &paths.server_key, "0600", &b.server_key);
    write_file(&mut out, DROPIN_PATH, "0644", &b.daemon_dropin);
    Ok(out)
}

/// Image names of Linux distributions that boot without cloud-init (their user data is
/// Bottlerocket's TOML or Ignition), lower case.
const NO_CLOUD_INIT: &[&str] = &["bottlerocket", "flatcar", "fedora-coreos", "talos"];

/// Image names of Linux distributions with cloud-init but without systemd (OpenRC), lower
/// case: the start script's `systemctl` would fail.
const NO_SYSTEMD: &[&str] = &["alpine"];

/// Why the TLS bootstrap cannot work on an image (`None` = it can): Windows and macOS have no
/// cloud-init, nor do the container-host distributions in [`NO_CLOUD_INIT`].
pub fn image_problem(
    platform: Option<&str>,
    architecture: Option<&str>,
    name: &str,
) -> Option<String> {
    if platform.is_some_and(|p| p.eq_ignore_ascii_case("windows")) {
        return Some("is a Windows image, which has no cloud-init".into());
    }
    if let Some(a) = architecture.filter(|a| a.ends_with("_mac")) {
        return Some(format!("is a macOS image ({a}), which has no cloud-init"));
    }
    if let Some(a) = architecture.filter(|a| !matches!(*a, "x86_64" | "arm64")) {
        return Some(format!(
            "has architecture {a}; only x86_64 and arm64 are supported"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if let Some(d) = NO_SYSTEMD.iter().find(|d| lower.contains(*d)) {
        return Some(format!(
            "{name:?} looks like {d}, which has no systemd to start dockerd with the drop-in"
        ));
    }
    NO_CLOUD_INIT
        .iter()
        .find(|d| lower.contains(*d))
        .map(|d| format!("{name:?} looks like {d}, which boots without cloud-init"))
}

/// Refuses `--amazonec2-tls-bootstrap` for an image whose OS cannot run the cloud-init part.
pub async fn check_image(ec2: &aws_sdk_ec2::Client, ami: &str) -> Result<()> {
    let out = ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map_err(|e| {
            aws(
                "checking the image for the TLS bootstrap (DescribeImages)",
                e,
            )
        })?;
    let Some(image) = out.images().first() else {
        return Ok(()); // the pre-create check already names a missing image
    };
    let platform = image.platform().map(|p| match p {
        PlatformValues::Windows => "windows",
        other => other.as_str(),
    });
    let problem = image_problem(
        platform,
        image.architecture().map(|a| a.as_str()),
        image.name().unwrap_or_default(),
    );
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::Option(OptionError {
            flag: name::TLS_BOOTSTRAP,
            message: format!(
                "cannot deliver the TLS bootstrap: --{} {ami} {why}; use a Linux image with \
                 cloud-init and systemd, or drop --{}",
                name::AMI,
                name::TLS_BOOTSTRAP
            ),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drop-in GitLab's fork generates (its Google COS template).
    const FORK_DROPIN: &str = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=ec2spot \nEnvironment=\n";

    fn material() -> TlsMaterial {
        TlsMaterial {
            ca_cert: b"-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n".to_vec(),
            server_cert: b"-----BEGIN CERTIFICATE-----\nU0U=\n-----END CERTIFICATE-----\n".to_vec(),
            server_key: b"-----BEGIN RSA PRIVATE KEY-----\nS0U=\n-----END RSA PRIVATE KEY-----\n"
                .to_vec(),
            daemon_dropin: FORK_DROPIN.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_the_forks_dropin() {
        let p = daemon_paths(FORK_DROPIN).unwrap();
        assert_eq!(p.dockerd, "/usr/bin/dockerd");
        assert_eq!(p.ca_cert, "/etc/docker/ca.pem");
        assert_eq!(p.server_cert, "/etc/docker/server.pem");
        assert_eq!(p.server_key, "/etc/docker/server-key.pem");
        let eq = "[Service]\nExecStart=/opt/d/dockerd --tlscacert=/a/ca.pem --tlscert=/a/c.pem --tlskey=/a/k.pem\n";
        assert_eq!(daemon_paths(eq).unwrap().server_key, "/a/k.pem");
    }

    /// Spoils one field of the material.
    type Spoil = fn(&mut TlsMaterial);

    #[test]
    fn bad_material_names_the_field() {
        let cases: [(Spoil, &str); 5] = [
            (|b| b.ca_cert.clear(), "CACert"),
            (|b| b.server_cert = b"junk".to_vec(), "ServerCert"),
            (|b| b.server_key = vec![0xff, 0xfe], "ServerKey"),
            (
                |b| {
                    b.daemon_dropin =
                        b"[Service]\nExecStart=/usr/bin/dockerd --tlsverify\n".to_vec()
                },
                "DaemonDropin",
            ),
            (
                |b| {
                    b.daemon_dropin =
                        b"[Service]\nExecStart=/usr/bin/dockerd --tlscacert /a;rm --tlscert /b --tlskey /c\n"
                            .to_vec()
                },
                "DaemonDropin",
            ),
        ];
        for (spoil, field) in cases {
            let mut b = material();
            spoil(&mut b);
            let e = validate(&b).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
            assert!(e.contains(name::TLS_BOOTSTRAP), "{e}");
        }
    }

    #[test]
    fn cloud_config_holds_the_files_verbatim() {
        let b = material();
        let cc = cloud_config(&b).unwrap();
        assert!(cc.starts_with("#cloud-config\n"), "{cc}");
        assert!(
            cc.contains("- path: /etc/docker/server-key.pem\n  owner: root:root\n  permissions: '0600'\n  content: |\n    -----BEGIN RSA PRIVATE KEY-----\n    S0U=\n"),
            "{cc}"
        );
        // The drop-in's trailing space after the labels survives in the literal block.
        assert!(cc.contains("--label provider=ec2spot \n"), "{cc}");
        assert!(!cc.contains("runcmd"), "{cc}");
        let mut odd = b.clone();
        odd.daemon_dropin = format!("{FORK_DROPIN}# \u{e9}t\u{e9}\n").into_bytes();
        let cc = cloud_config(&odd).unwrap();
        assert!(cc.contains("  encoding: b64\n"), "{cc}");
    }

    #[test]
    fn the_proxy_of_the_engine_reaches_the_install() {
        let mut b = material();
        b.daemon_dropin = FORK_DROPIN
            .replace(
                "Environment=\n",
                "Environment=\"HTTP_PROXY=http://10.0.0.5:3128\" \"no_proxy=169.254.169.254,.internal\" \"FOO=bar\" \n",
            )
            .into_bytes();
        let s = start_script(&b, "").unwrap();
        for line in [
            "export HTTP_PROXY='http://10.0.0.5:3128'\n",
            "export http_proxy='http://10.0.0.5:3128'\n",
            "export NO_PROXY='169.254.169.254,.internal'\n",
            "export no_proxy='169.254.169.254,.internal'\n",
        ] {
            assert!(s.contains(line), "{line}: {s}");
        }
        assert!(!s.contains("FOO") && !s.contains("HTTPS_PROXY"), "{s}");
        b.daemon_dropin = FORK_DROPIN
            .replace(
                "Environment=\n",
                "Environment=\"HTTP_PROXY=http://a';reboot;'\"\n",
            )
            .into_bytes();
        let e = start_script(&b, "").unwrap_err().to_string();
        assert!(
            e.contains("HTTP_PROXY") && e.contains("DaemonDropin"),
            "{e}"
        );
    }

    #[test]
    fn the_start_script_pins_the_version_and_finds_dockerd() {
        let s = start_script(&material(), "20.10.24").unwrap();
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(s.contains("want='20.10.24'\n"), "{s}");
        assert!(s.contains("dockerd=/usr/bin/dockerd\n"), "{s}");
        assert!(s.contains("/usr/sbin/dockerd"), "{s}");
        assert!(
            !s.contains("_PROXY") && !s.contains("_proxy"),
            "no proxy: {s}"
        );
        let s = start_script(&material(), "").unwrap();
        assert!(s.contains("want=''\n"), "{s}");
    }

    #[test]
    fn refuses_images_without_cloud_init() {
        assert!(image_problem(None, Some("x86_64"), "ubuntu/images/x").is_none());
        assert!(image_problem(None, Some("arm64"), "al2023-ami-2023.6").is_none());
        for (platform, arch, name) in [
            (Some("windows"), Some("x86_64"), "Windows_Server-2022"),
            (None, Some("arm64_mac"), "amzn-ec2-macos-14"),
            (None, Some("i386"), "old"),
            (None, Some("x86_64"), "bottlerocket-aws-ecs-1-x86_64-v1.20"),
            (None, Some("x86_64"), "Flatcar-stable-3815.2.0-hvm"),
            (
                None,
                Some("x86_64"),
                "alpine-3.20.3-x86_64-uefi-cloudinit-r0",
            ),
        ] {
            assert!(
                image_problem(platform, arch, name).is_some(),
                "{name} accepted"
            );
        }
    }
}
