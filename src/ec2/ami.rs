//! The default image: the newest Canonical Ubuntu LTS server image for the instance type's
//! architecture, looked up in the region at create time (no hard-coded AMI table).

use aws_sdk_ec2::types::Filter;

use super::error::{Error, Result, aws};
use super::flags::name;
use super::options::OptionError;

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

/// The Ubuntu release (`(24, 4)` for 24.04) of a Canonical server image name, when it is an
/// LTS release (even year, April). Minimal, Pro, EKS and testing images do not match.
pub fn lts_release(image_name: &str) -> Option<(u32, u32)> {
    let rest = image_name.strip_prefix("ubuntu/images/")?;
    let file = rest.rsplit('/').next()?;
    if !file.starts_with("ubuntu-") || !file.contains("-server-") {
        return None;
    }
    file.split('-').find_map(|part| {
        let (y, m) = part.split_once('.')?;
        let (y, m) = (y.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (m == 4 && y % 2 == 0 && y >= 14).then_some((y, m))
    })
}

/// Picks the newest LTS release, and its newest build.
pub fn pick(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates
        .iter()
        .filter_map(|c| lts_release(&c.name).map(|r| (r, c)))
        .max_by(|(ra, a), (rb, b)| {
            ra.cmp(rb)
                .then(a.created.cmp(&b.created))
                .then(a.id.cmp(&b.id))
        })
        .map(|(_, c)| c)
}

/// Finds the default image for `arch` (`x86_64` or `arm64`).
pub async fn find_default(ec2: &aws_sdk_ec2::Client, region: &str, arch: &str) -> Result<String> {
    let filter = |n: &str, v: &str| Filter::builder().name(n).values(v).build();
    let out = ec2
        .describe_images()
        .owners(canonical_owner(region))
        .filters(filter("name", "ubuntu/images/*"))
        .filters(filter("architecture", arch))
        .filters(filter("state", "available"))
        .filters(filter("root-device-type", "ebs"))
        .send()
        .await
        .map_err(|e| aws("finding the default Ubuntu image (DescribeImages)", e))?;
    let candidates: Vec<Candidate> = out
        .images()
        .iter()
        .map(|i| Candidate {
            id: i.image_id().unwrap_or_default().to_string(),
            name: i.name().unwrap_or_default().to_string(),
            created: i.creation_date().unwrap_or_default().to_string(),
        })
        .filter(|c| !c.id.is_empty())
        .collect();
    match pick(&candidates) {
        Some(c) => Ok(c.id.clone()),
        None => Err(Error::Option(OptionError {
            flag: name::AMI,
            message: format!(
                "no Canonical Ubuntu LTS image for {arch} found in {region}; give an image id with --{}",
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
    fn picks_newest_lts_build() {
        let all = [
            c(
                "ami-1",
                "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250101",
                "2025-01-01T00:00:00Z",
            ),
            c(
                "ami-2",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423",
                "2024-04-23T00:00:00Z",
            ),
            c(
                "ami-3",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
                "2025-06-10T00:00:00Z",
            ),
            c(
                "ami-4",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-oracular-24.10-amd64-server-20250701",
                "2025-07-01T00:00:00Z",
            ),
            c(
                "ami-5",
                "ubuntu/images-testing/hvm-ssd-gp3/ubuntu-noble-daily-24.04-amd64-server-20250801",
                "2025-08-01T00:00:00Z",
            ),
            c(
                "ami-6",
                "ubuntu-minimal/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-minimal-20250801",
                "2025-08-01T00:00:00Z",
            ),
        ];
        assert_eq!(pick(&all).unwrap().id, "ami-3");
        // Without creation dates (moto), the build stamp decides.
        let undated: Vec<Candidate> = all
            .iter()
            .map(|x| Candidate {
                created: String::new(),
                ..x.clone()
            })
            .collect();
        assert_eq!(pick(&undated).unwrap().id, "ami-3");
        assert_eq!(
            lts_release("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"),
            Some((16, 4))
        );
        assert_eq!(
            lts_release("ubuntu/images/hvm-ssd/ubuntu-trusty-14.04-amd64-server-20170727"),
            Some((14, 4))
        );
        assert!(pick(&all[3..4]).is_none());
        assert_eq!(canonical_owner("cn-north-1"), "837727238323");
    }
}
