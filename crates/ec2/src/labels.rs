//! `UpdateLabels` (GitLab's docker-machine fork, `docker-machine update-labels`; a newer
//! runner's heartbeat sets `runner_manager_heartbeat`): the labels become EC2 tags on the
//! machine's instance, its volumes and its network interfaces, the resources its launch
//! tagged. Given keys are set or overwritten; other tags stay.

use std::collections::BTreeMap;

use crate::aws::error::{Error, ErrorKind, Result, aws};
use crate::options::Asked;
use crate::options::validate::tag_problem;
use crate::state::context::Context;

/// EC2's limit of tags per resource
/// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
pub const MAX_TAGS: usize = 50;

/// Checks `labels` against AWS's tag rules before any call; the error names the label.
pub fn validate(labels: &BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    if labels.len() > MAX_TAGS {
        return Err(Error::Other(format!(
            "update-labels: {} labels, but EC2 allows at most {MAX_TAGS} tags per resource",
            labels.len()
        )));
    }
    labels
        .iter()
        .map(|(k, v)| match tag_problem(k, v) {
            None => Ok((k.clone(), v.clone())),
            Some(why) => Err(Error::Other(format!("update-labels: label {k:?}: {why}"))),
        })
        .collect()
}

/// The ids of what the instance's launch tagged: the instance, its EBS volumes and its
/// network interfaces.
pub fn resources(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    let mut ids: Vec<String> = i.instance_id().map(str::to_string).into_iter().collect();
    ids.extend(
        i.block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
            .map(str::to_string),
    );
    ids.extend(
        i.network_interfaces()
            .iter()
            .filter_map(|n| n.network_interface_id())
            .map(str::to_string),
    );
    ids
}

/// Tags instance `instance_id` and its volumes and interfaces with `labels`.
pub async fn apply(
    ctx: &Context,
    asked: &Asked,
    instance_id: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let tags = validate(labels)?;
    let seen = ctx.observe(instance_id).await?;
    let instance = seen.instance.ok_or_else(|| {
        Error::Other(format!(
            "machine {}: instance {instance_id} no longer exists in EC2",
            asked.machine_name
        ))
    })?;
    let ids = resources(&instance);
    if tags.is_empty() {
        return Ok(ids);
    }
    let mut req = ctx.client.create_tags().set_resources(Some(ids.clone()));
    for (k, v) in tags {
        req = req.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    req.send().await.map_err(|e| {
        let e = aws("tagging the machine with its labels (CreateTags)", e);
        if e.is(&[ErrorKind::TagLimit]) {
            Error::Other(format!(
                "{e} (EC2 allows at most {MAX_TAGS} tags per resource, ec2spot's own included)"
            ))
        } else {
            e
        }
    })?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_follow_awss_tag_rules() {
        assert_eq!(
            validate(&labels(&[("runner_manager_heartbeat", "1700000000")])).unwrap(),
            vec![("runner_manager_heartbeat".into(), "1700000000".into())]
        );
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        for bad in [
            labels(&[("aws:x", "1")]),
            labels(&[("ec2spot:machine-id", "1")]),
            labels(&[("", "1")]),
            labels(&[(long_key.as_str(), "1")]),
            labels(&[("k", long_value.as_str())]),
        ] {
            let e = validate(&bad).unwrap_err().to_string();
            assert!(e.starts_with("update-labels: label "), "{e}");
        }
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate(&many).unwrap_err().to_string().contains("50"));
    }
}
