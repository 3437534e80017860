//! The checks of single option values, each refusing a bad value with the flag's name: ids,
//! region and zone names, instance types, prices, endpoints, tags, ports, files; and the
//! splitting of comma-separated lists.

use std::path::Path;

use super::error::{OptionError, err};
use super::flags::{PINNED_RELEASE, name};
use crate::tags;

/// Largest user-data file AWS accepts (before base64).
pub const MAX_USER_DATA: u64 = 16 * 1024;

/// Volume types EBS offers for a root volume.
pub const VOLUME_TYPES: &[&str] = &["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];

/// The spot allocation strategies EC2 Fleet accepts.
pub const SPOT_ALLOCATION_STRATEGIES: &[&str] = &[
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
    "diversified",
];

/// Splits a comma-separated option into its trimmed, non-empty, distinct entries.
pub fn split_list(v: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !out.iter().any(|x| x == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// Parses `amazonec2-tags` (`k1,v1,k2,v2`) into pairs.
pub fn parse_tags(tags: &str) -> Result<Vec<(String, String)>, OptionError> {
    if tags.trim().is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = tags.split(',').collect();
    if !parts.len().is_multiple_of(2) {
        return err(
            name::TAGS,
            format!(
                "needs key,value pairs but has {} elements (last: {:?}); example: team,ci,env,prod",
                parts.len(),
                parts.last().unwrap_or(&"")
            ),
        );
    }
    let mut out = Vec::with_capacity(parts.len() / 2);
    for pair in parts.chunks(2) {
        let (k, v) = (pair[0].trim(), pair[1].trim());
        if let Some(problem) = tag_problem(k, v) {
            return err(name::TAGS, problem);
        }
        out.push((k.to_string(), v.to_string()));
    }
    // Counted as a resource carries them: the user's, `Name` and ec2spot's ownership tags.
    let total = tags::machine_tags("machine", "id", "manager", &out).len();
    if total > MAX_TAGS {
        return err(
            name::TAGS,
            format!(
                "gives {} tags; with the {} ec2spot adds (Name, ownership) a resource would carry {total}, more than AWS's limit of {MAX_TAGS} tags per resource",
                out.len(),
                total - out.len(),
            ),
        );
    }
    Ok(out)
}

/// What is wrong with a tag EC2 would refuse or that would clash with ours (`None` = fine):
/// keys of 1 to 128 characters without AWS's `aws:` prefix or our own, values of at most
/// 256 (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
pub fn tag_problem(key: &str, value: &str) -> Option<String> {
    let key_chars = key.chars().count();
    if key_chars == 0 || key_chars > 128 {
        return Some(format!(
            "tag key {key:?} must be 1 to 128 characters (AWS's limit)"
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Some(format!(
            "tag key {key:?}: the aws: prefix is reserved by AWS"
        ));
    }
    if key.starts_with(tags::PREFIX) {
        return Some(format!(
            "tag key {key:?}: the {} prefix is reserved for ec2spot's ownership tags",
            tags::PREFIX
        ));
    }
    if value.chars().count() > 256 {
        return Some(format!(
            "the value of tag {key:?} is longer than 256 characters (AWS's limit)"
        ));
    }
    None
}

/// The most tags AWS allows on one resource
/// (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions>).
pub const MAX_TAGS: usize = 50;

/// Parses an `amazonec2-open-port` entry (`port` or `port/proto`) into (port, protocol).
pub fn parse_port(p: &str) -> Result<(i32, String), String> {
    let (port, proto) = match p.split_once('/') {
        Some((port, proto)) => (port, proto.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(format!("{p:?}: protocol must be tcp or udp"));
    }
    match port.trim().parse::<i32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok((n, proto)),
        _ => Err(format!(
            "{p:?} is not a port (1-65535, optionally /tcp or /udp)"
        )),
    }
}

pub(crate) fn check_id(flag: &'static str, v: &str, prefix: &str) -> Result<(), OptionError> {
    if v.is_empty() {
        return Ok(());
    }
    let ok = v.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.chars().all(|c| c.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        err(
            flag,
            format!("{v:?} is not an id of the form {prefix}0123abcd"),
        )
    }
}

/// Whether `region` has the shape of an AWS region name in any partition: lowercase letters,
/// then one or more dash-separated lowercase words, then a number (`us-east-1`,
/// `us-gov-west-1`, `cn-northwest-1`, `us-isob-east-1`, `eu-isoe-west-1`, `eusc-de-east-1`,
/// `mx-central-1`, …). Every partition's `regionRegex` (the SDK's partition table,
/// aws-sdk-ec2 1.274 `src/endpoint_lib.rs`: `^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`,
/// `^cn\-\w+\-\d+$`, `^eusc\-(de)\-\w+\-\d+$`, `^us\-gov\-\w+\-\d+$`, `^us\-iso\-…`,
/// `^us\-isob\-…`, `^eu\-isoe\-…`, `^us\-isof\-…`) is a special case of this shape; a
/// list of prefixes would reject the next partition or region AWS opens.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((last, rest)) = parts.split_last() else {
        return false;
    };
    let word = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
    let alnum = |p: &&str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    parts.len() >= 3
        && !last.is_empty()
        && last.chars().all(|c| c.is_ascii_digit())
        && word(&rest[0])
        && rest[0].len() >= 2
        && rest[1..].iter().all(alnum)
        && rest[1..].iter().any(word)
}

pub(crate) fn validate_region(region: &str, custom_endpoint: bool) -> Result<(), OptionError> {
    // With a custom endpoint (a private EC2, moto) any name of the same characters goes.
    let charset_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if is_region_name(region) || (custom_endpoint && charset_ok) {
        Ok(())
    } else {
        err(
            name::REGION,
            format!(
                "{region:?} is not an AWS region name such as us-east-1, eu-central-2 or us-gov-west-1"
            ),
        )
    }
}

pub(crate) fn validate_zone(zone: &str, region: &str) -> Result<(), OptionError> {
    if zone.is_empty() {
        return Ok(());
    }
    if zone.len() == 1 && zone.chars().all(|c| c.is_ascii_lowercase()) {
        return Ok(());
    }
    let charset_ok = zone
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if charset_ok && zone.starts_with(region) && zone.len() > region.len() {
        return Ok(());
    }
    err(
        name::ZONE,
        format!(
            "{zone:?} is neither a zone letter (a, b, c…) nor an availability zone of region {region} (e.g. {region}a)"
        ),
    )
}

pub(crate) fn validate_instance_type(t: &str) -> Result<(), OptionError> {
    let ok = t.split_once('.').is_some_and(|(family, size)| {
        let good = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        good(family) && good(size)
    });
    if ok {
        Ok(())
    } else {
        err(
            name::INSTANCE_TYPE,
            format!("{t:?} is not an instance type such as t3.micro or m7g.large"),
        )
    }
}

pub(crate) fn validate_price(p: &str) -> Result<(), OptionError> {
    let number = p
        .parse::<f64>()
        .ok()
        .filter(|_| p.chars().all(|c| c.is_ascii_digit() || c == '.'));
    match number {
        Some(v) if (0.001..=10_000.0).contains(&v) => Ok(()),
        Some(v) => err(
            name::SPOT_PRICE,
            format!(
                "{v} is out of range: a maximum price in USD per hour is at least 0.001 (leave it empty to pay the spot price, capped at on-demand)"
            ),
        ),
        None => err(
            name::SPOT_PRICE,
            format!(
                "{p:?} is not a price in USD per hour such as 0.05 (leave it empty to pay the spot price, capped at on-demand)"
            ),
        ),
    }
}

pub(crate) fn validate_endpoint(e: &str) -> Result<(), OptionError> {
    let bad = || {
        err(
            name::ENDPOINT,
            format!("{e:?} is not a host name or an http(s):// URL"),
        )
    };
    let rest = match e.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return bad(),
        None => e,
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return bad(),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if host.is_empty() || !port_ok || e.contains(char::is_whitespace) {
        return bad();
    }
    Ok(())
}

/// The endpoint URL the SDK gets: a bare host name gets a scheme (http when
/// `amazonec2-insecure-transport` is set).
pub fn endpoint_url(endpoint: &str, disable_ssl: bool) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else if disable_ssl {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    }
}

/// `path` made absolute against this process's working directory (the plugin's, which is the
/// user's `docker-machine` working directory): the file is read later, possibly by the agent,
/// whose working directory is another.
pub(crate) fn absolute(flag: &'static str, path: String) -> Result<String, OptionError> {
    if path.is_empty() || Path::new(&path).is_absolute() {
        return Ok(path);
    }
    match std::path::absolute(&path) {
        Ok(p) => Ok(p.to_string_lossy().into_owned()),
        Err(e) => err(flag, format!("cannot make {path} absolute: {e}")),
    }
}

pub(crate) fn readable_file(flag: &'static str, path: &Path) -> Result<u64, OptionError> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(_) => err(flag, format!("{} is not a file", path.display())),
        Err(e) => err(flag, format!("cannot read {}: {e}", path.display())),
    }
}

/// Checks an `amazonec2-ubuntu-release` value: an LTS release, `YY.04` with an even `YY`
/// from 16.04 on (Canonical publishes LTS releases only in April of even years).
pub fn check_release(release: &str) -> std::result::Result<(), OptionError> {
    let lts = release.split_once('.').is_some_and(|(y, m)| {
        y.len() == 2 && m == "04" && y.parse::<u32>().is_ok_and(|y| y >= 16 && y % 2 == 0)
    });
    if lts {
        Ok(())
    } else {
        Err(OptionError {
            flag: name::UBUNTU_RELEASE,
            message: format!(
                "{release:?} is not an Ubuntu LTS release; use YY.04 with an even YY (e.g. {PINNED_RELEASE} or 22.04), or give an image with --{}",
                name::AMI
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_of_every_partition_pass_and_others_do_not() {
        // Every region of the SDK's partition table (aws-sdk-ec2 1.274) and a few to come.
        for r in [
            "us-east-1",
            "ap-southeast-7",
            "ca-west-1",
            "il-central-1",
            "mx-central-1",
            "me-central-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "us-isof-south-1",
            "eusc-de-east-1",
            "xy-newplace-1",
            "abc-de-north-12",
        ] {
            assert!(is_region_name(r), "{r}");
            validate_region(r, false).unwrap_or_else(|e| panic!("{r}: {e}"));
        }
        for r in [
            "",
            "Mars",
            "us",
            "us-east",
            "us-east-1a",
            "US-EAST-1",
            "us_east_1",
            "us--east-1",
            "-us-east-1",
            "us-east-1-",
            "1-east-1",
            "u-east-1",
            "us-1-1",
            "us-east-x",
        ] {
            assert!(!is_region_name(r), "{r:?}");
            let e = validate_region(r, false).expect_err(r);
            assert_eq!(e.flag, name::REGION);
        }
        // A private endpoint may name its regions as it likes (same characters).
        assert!(validate_region("local", true).is_ok());
        assert!(validate_region("Local!", true).is_err());
    }

    #[test]
    fn more_than_fifty_tags_with_ours_are_refused_naming_the_flag() {
        let tags = |n: usize| {
            (0..n)
                .map(|i| format!("k{i},v{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Ours: Name and three ownership tags, so 46 of the user's is the most.
        assert_eq!(parse_tags(&tags(46)).unwrap().len(), 46);
        let e = parse_tags(&tags(47)).unwrap_err();
        assert_eq!(e.flag, name::TAGS);
        assert!(e.message.contains("51") && e.message.contains("50"), "{e}");
        // The user's Name replaces ours: it does not count twice.
        let with_name = format!("Name,ci,{}", tags(46));
        assert_eq!(parse_tags(&with_name).unwrap().len(), 47);
        assert!(parse_tags(&format!("Name,ci,{}", tags(47))).is_err());
    }

    #[test]
    fn only_lts_releases_are_accepted() {
        for ok in ["24.04", "22.04", "20.04", "26.04", PINNED_RELEASE] {
            assert!(check_release(ok).is_ok(), "{ok}");
        }
        for bad in [
            "23.10", "25.04", "noble", "24", "24.4", "14.04", "", "24.04.1",
        ] {
            let e = check_release(bad).unwrap_err();
            assert_eq!(e.flag, name::UBUNTU_RELEASE, "{bad}");
        }
    }
}

/// Why `v` cannot be an `amazonec2-docker-version` (`None` = it can): empty, or a prefix of a
/// Debian/RPM package version (digits first; letters, digits and `.+~:-`), at most 64
/// characters — it is matched against the archive's versions and `dockerd --version`.
pub fn docker_version_problem(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let ok = v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
    (!ok).then(|| {
        format!(
            "{v:?} is not a package version prefix (e.g. 26.1.3, 20.10 or \
             5:27.3.1-1~ubuntu.24.04~noble): digits first, then letters, digits and .+~:-"
        )
    })
}

/// An operating system `amazonec2-ami-os` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmiOs {
    /// The option's value.
    pub name: &'static str,
    /// Why the TLS bootstrap cannot start Docker on it (`None` = it can).
    pub bootstrap_problem: Option<&'static str>,
}

const fn os(name: &'static str, bootstrap_problem: Option<&'static str>) -> AmiOs {
    AmiOs {
        name,
        bootstrap_problem,
    }
}

/// The values of `amazonec2-ami-os`: Linux with systemd and cloud-init (the bootstrap works),
/// and the images it cannot work on, with the reason.
pub const AMI_OSES: &[AmiOs] = &[
    os("ubuntu", None),
    os("debian", None),
    os("amazonlinux", None),
    os("rhel", None),
    os("fedora", None),
    os("suse", None),
    os("other-systemd", None),
    os(
        "alpine",
        Some(
            "has no systemd (OpenRC starts its services), and the bootstrap starts dockerd with a systemd drop-in",
        ),
    ),
    os(
        "bottlerocket",
        Some("reads TOML user data, not cloud-init's multi-part document"),
    ),
    os(
        "flatcar",
        Some("reads Ignition user data, not cloud-init's multi-part document"),
    ),
    os("windows", Some("has no cloud-init and no systemd")),
];

/// The `amazonec2-ami-os` entry named `name` (lower case).
pub fn ami_os(name: &str) -> Option<AmiOs> {
    AMI_OSES.iter().copied().find(|o| o.name == name)
}
