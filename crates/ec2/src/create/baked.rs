//! Baked images (`docker-machine-driver-ec2spot image build`): the tags an ec2spot-built AMI
//! carries, and the newest one built from a base image, which a create with
//! `amazonec2-use-baked-image` launches instead of the base.

use aws_sdk_ec2::types::{Filter, Image};

use crate::aws::error::{Result, aws};

/// The recipe's hash (base image, Docker version, pulled images).
pub const RECIPE: &str = "ec2spot:image-recipe";
/// The image it was built from.
pub const BASE: &str = "ec2spot:image-base";
/// `amazonec2-docker-version` of the build ("" = the archive's).
pub const DOCKER: &str = "ec2spot:image-docker-version";
/// `building` from CreateImage until the image is available, then `ready`; `gc` deregisters
/// a `building` image of its manager (an interrupted build).
pub const STATE: &str = "ec2spot:image-state";

fn tag(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The value of tag `key` of `image` ("" without it).
pub fn tag_of(image: &Image, key: &str) -> String {
    image
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

/// The newest ready baked image of this account built from `base` with `docker_version`.
pub async fn newest(
    ec2: &aws_sdk_ec2::Client,
    base: &str,
    docker_version: &str,
) -> Result<Option<Image>> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(tag(BASE, base))
        .filters(tag(STATE, "ready"))
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .map_err(|e| aws("finding the baked image (DescribeImages)", e))?;
    Ok(out
        .images()
        .iter()
        .filter(|i| tag_of(i, DOCKER) == docker_version)
        .max_by_key(|i| i.creation_date().unwrap_or_default().to_string())
        .cloned())
}
