//! Ownership tags as EC2 takes them: the keys and values are the options crate's
//! ([`ec2spot_options::tags`]); here they become tag specifications, attached at creation.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

pub use ec2spot_options::tags::{
    MACHINE_ID, MACHINE_NAME, MANAGER, NAME, PREFIX, machine_tags, ownership_tags,
};

/// The filter for what carries `key` = `value`: `machine(machine_id)` for one machine's
/// resources, the bastion's with [`MANAGER`] — the one way every resource is found by tag.
pub fn tagged(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The filter for the resources of the machine with `machine_id` (its ownership tag).
pub fn machine(machine_id: &str) -> Filter {
    tagged(MACHINE_ID, machine_id)
}

/// The tag specification giving `resource` the `tags` at creation.
pub fn tag_spec(resource: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tag_list(tags)))
        .build()
}

/// `tags` as EC2 tags.
pub fn tag_list(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}
