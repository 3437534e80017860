//! The default image: the newest build of one pinned Ubuntu LTS release (or the release
//! `amazonec2-ubuntu-release` names) for the instance type's architecture, looked up in the
//! region with a name filter narrow enough that EC2 answers with that release's builds only.
//!
//! Why pinned: a lookup of "the newest LTS" switches every create to a new release the day
//! Canonical publishes it, before Docker's installer and docker-machine's provisioning may
//! support it — then every create fails and gitlab-runner retries in a loop. A release of
//! ec2spot moves [`PINNED_RELEASE`](crate::options::flags::PINNED_RELEASE) after checking the new LTS works.
//!
//! Canonical documents both ways to find its images
//! (<https://documentation.ubuntu.com/aws/aws-how-to/instances/find-ubuntu-images/>):
//! `DescribeImages` with owner 099720109477 and a name filter, or the public SSM parameter
//! `/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id`. The
//! SSM route would need aws-sdk-ssm (another SDK crate as large as a build step of its own)
//! and a second permission (`ssm:GetParameter`) on every runner's role, for one call an hour;
//! a filtered `DescribeImages` answers the same question with what ec2spot already has.
//!
//! The answer is remembered with the rest of a pre-create check's answer, in one memory
//! (`state::memory`, one rule for expiry, refresh and forgetting on refusal): a launch EC2
//! refuses for the image forgets it with the rest.

use aws_sdk_ec2::types::Filter;

use crate::aws::error::{Error, Result, aws};
use crate::options::error::OptionError;
use crate::options::flags::name;

/// Canonical's account publishing Ubuntu images in a region.
pub fn canonical_owner(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "837727238323"
    } else if region.starts_with("us-gov-") {
        "513442679011"
    } else {
        "099720109477"
    }
}

/// Canonical's name for an EC2 architecture (`x86_64` → `amd64`).
fn deb_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        other => other,
    }
}

/// The `name` filter value: one release's server builds for one architecture, on EBS (gp2
/// volumes for older releases, gp3 since 24.04: `hvm-ssd` and `hvm-ssd-gp3`), e.g.
/// `ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-*`. The codename is left to the
/// wildcard so a release needs no table; Pro, minimal, EKS and daily images have other
/// prefixes and do not match.
pub fn name_pattern(release: &str, arch: &str) -> String {
    format!(
        "ubuntu/images/hvm-ssd*/ubuntu-*-{release}-{}-server-*",
        deb_arch(arch)
    )
}

/// One candidate image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// AMI id.
    pub id: String,
    /// Image name, e.g. `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423`.
    pub name: String,
    /// ISO-8601 creation date.
    pub created: String,
}

/// The build serial of a Canonical server image name of `release` for `arch` (`20250115`,
/// or `(20250115, 1)` for a respin `20250115.1`); `None` for any other image.
pub fn build_of(image_name: &str, release: &str, arch: &str) -> Option<(u64, u64)> {
    let rest = image_name.strip_prefix("ubuntu/images/hvm-ssd")?;
    let (volume, file) = rest.split_once('/')?;
    if !(volume.is_empty() || volume == "-gp3") {
        return None;
    }
    let file = file.strip_prefix("ubuntu-")?;
    let (_codename, rest) = file.split_once('-')?;
    let serial = rest.strip_prefix(&format!("{release}-{}-server-", deb_arch(arch)))?;
    let (day, respin) = serial.split_once('.').unwrap_or((serial, "0"));
    if day.len() != 8 {
        return None;
    }
    Some((day.parse().ok()?, respin.parse().ok()?))
}

/// The newest build of `release` for `arch`: by build serial, then creation date (moto gives
/// images without one its start time), then id.
pub fn pick<'a>(candidates: &'a [Candidate], release: &str, arch: &str) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter_map(|c| build_of(&c.name, release, arch).map(|b| (b, c)))
        .max_by(|(ba, a), (bb, b)| {
            ba.cmp(bb)
                .then(a.created.cmp(&b.created))
                .then(a.id.cmp(&b.id))
        })
        .map(|(_, c)| c)
}

/// Finds the default image for `arch` (`x86_64` or `arm64`) and Ubuntu `release` in
/// `region`.
pub async fn find_default(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    arch: &str,
    release: &str,
) -> Result<String> {
    lookup(ec2, region, arch, release).await
}

async fn lookup(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    arch: &str,
    release: &str,
) -> Result<String> {
    let filter = |n: &str, v: &str| Filter::builder().name(n).values(v).build();
    let mut pages = ec2
        .describe_images()
        .owners(canonical_owner(region))
        .filters(filter("name", &name_pattern(release, arch)))
        .filters(filter("architecture", arch))
        .filters(filter("state", "available"))
        .filters(filter("root-device-type", "ebs"))
        .filters(filter("virtualization-type", "hvm"))
        .into_paginator()
        .send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("finding the default Ubuntu image (DescribeImages)", e))?;
        candidates.extend(page.images().iter().filter_map(|i| {
            Some(Candidate {
                id: i.image_id().filter(|s| !s.is_empty())?.to_string(),
                name: i.name().unwrap_or_default().to_string(),
                created: i.creation_date().unwrap_or_default().to_string(),
            })
        }));
    }
    match pick(&candidates, release, arch) {
        Some(c) => Ok(c.id.clone()),
        None => Err(Error::Option(OptionError {
            flag: name::UBUNTU_RELEASE,
            message: format!(
                "Canonical publishes no Ubuntu {release} server image for {arch} in {region}; choose another --{} or give an image with --{}",
                name::UBUNTU_RELEASE,
                name::AMI
            ),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str, created: &str) -> Candidate {
        Candidate {
            id: id.into(),
            name: name.into(),
            created: created.into(),
        }
    }

    #[test]
    fn picks_the_newest_build_of_the_release_and_architecture() {
        let all = [
            c(
                "ami-jammy",
                "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260801",
                "2026-08-01T00:00:00Z",
            ),
            c(
                "ami-old",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423",
                "2024-04-23T00:00:00Z",
            ),
            // A respin of the newest build, copied to the region before the original.
            c(
                "ami-new",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610.1",
                "2025-06-09T00:00:00Z",
            ),
            c(
                "ami-new0",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
                "2025-06-10T00:00:00Z",
            ),
            c(
                "ami-arm",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250801",
                "2025-08-01T00:00:00Z",
            ),
            c(
                "ami-next",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-resolute-26.04-amd64-server-20260701",
                "2026-07-01T00:00:00Z",
            ),
            c(
                "ami-daily",
                "ubuntu/images-testing/hvm-ssd-gp3/ubuntu-noble-daily-24.04-amd64-server-20250801",
                "2025-08-01T00:00:00Z",
            ),
            c(
                "ami-minimal",
                "ubuntu-minimal/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-minimal-20250801",
                "2025-08-01T00:00:00Z",
            ),
            c(
                "ami-pro",
                "ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-pro-server-20250801",
                "2025-08-01T00:00:00Z",
            ),
            c(
                "ami-instance-store",
                "ubuntu/images/hvm-instance/ubuntu-noble-24.04-amd64-server-20250801",
                "2025-08-01T00:00:00Z",
            ),
        ];
        assert_eq!(pick(&all, "24.04", "x86_64").unwrap().id, "ami-new");
        assert_eq!(pick(&all, "24.04", "arm64").unwrap().id, "ami-arm");
        assert_eq!(pick(&all, "22.04", "x86_64").unwrap().id, "ami-jammy");
        assert_eq!(pick(&all, "26.04", "x86_64").unwrap().id, "ami-next");
        assert!(pick(&all, "20.04", "x86_64").is_none());
        // Without creation dates (moto), the build serial decides.
        let undated: Vec<Candidate> = all
            .iter()
            .map(|x| Candidate {
                created: String::new(),
                ..x.clone()
            })
            .collect();
        assert_eq!(pick(&undated, "24.04", "x86_64").unwrap().id, "ami-new");
        assert_eq!(canonical_owner("cn-north-1"), "837727238323");
    }

    #[test]
    fn the_name_filter_holds_one_release_and_architecture() {
        assert_eq!(
            name_pattern("24.04", "x86_64"),
            "ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-*"
        );
        assert_eq!(
            name_pattern("22.04", "arm64"),
            "ubuntu/images/hvm-ssd*/ubuntu-*-22.04-arm64-server-*"
        );
    }
}
