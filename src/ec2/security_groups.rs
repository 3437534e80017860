//! Security groups: resolved by name in the VPC, created (tagged) when missing, opened for
//! SSH, Docker and the user's ports — all safe against concurrent creates racing on the same
//! group — and deleted with the machine that created them once nothing uses them.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, SecurityGroup, Tag, TagSpecification,
};

use super::error::{Error, Result, aws};
use super::tags;

/// The description of the groups ec2spot creates (amazonec2 writes "Docker Machine"; ours
/// has no characters that form encodings disagree on, which moto's IAM signature check trips
/// over).
pub const DESCRIPTION: &str = "docker-machine_ec2spot";
/// The Docker daemon port docker-machine configures.
pub const DOCKER_PORT: i32 = 2376;

/// The groups a launch uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Groups {
    /// Group ids, in the order of the names.
    pub ids: Vec<String>,
    /// The ids of groups this call created.
    pub created: Vec<String>,
}

fn filter(n: &str, v: &str) -> Filter {
    Filter::builder().name(n).values(v).build()
}

async fn describe_by_names(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    names: &[String],
) -> Result<Vec<SecurityGroup>> {
    let out = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .set_values(Some(names.to_vec()))
                .build(),
        )
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .map_err(|e| aws("finding the security groups (DescribeSecurityGroups)", e))?;
    Ok(out.security_groups().to_vec())
}

/// Resolves `names` in `vpc`, creating the missing ones with `tag_list`, and (unless
/// `read_only`) adds an ingress rule from anywhere for each `(port, protocol)` not yet open.
pub async fn ensure(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    names: &[String],
    read_only: bool,
    ports: &[(i32, String)],
    tag_list: &[(String, String)],
) -> Result<Groups> {
    let mut groups = Groups::default();
    if names.is_empty() {
        return Ok(groups);
    }
    let mut found = describe_by_names(ec2, vpc, names).await?;
    for name in names {
        if found.iter().any(|g| g.group_name() == Some(name.as_str())) {
            continue;
        }
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .set_tags(Some(
                tag_list
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        match ec2
            .create_security_group()
            .group_name(name)
            .description(DESCRIPTION)
            .vpc_id(vpc)
            .tag_specifications(spec)
            .send()
            .await
        {
            Ok(out) => {
                let id = out.group_id().unwrap_or_default().to_string();
                groups.created.push(id.clone());
                found.push(
                    SecurityGroup::builder()
                        .group_name(name)
                        .group_id(id)
                        .build(),
                );
            }
            Err(e) => {
                let e = aws(
                    &format!("creating security group {name} (CreateSecurityGroup)"),
                    e,
                );
                if e.code() != Some("InvalidGroup.Duplicate") {
                    return Err(e);
                }
                // Another create made it a moment ago: use theirs.
                let again = describe_by_names(ec2, vpc, std::slice::from_ref(name)).await?;
                if again.is_empty() {
                    return Err(e);
                }
                found.extend(again);
            }
        }
    }
    for name in names {
        let g = found
            .iter()
            .find(|g| g.group_name() == Some(name.as_str()))
            .ok_or_else(|| {
                Error::Other(format!(
                    "security group {name} vanished while being resolved"
                ))
            })?;
        let id = g.group_id().unwrap_or_default().to_string();
        if !read_only {
            authorize_missing(ec2, g, &id, ports).await?;
        }
        groups.ids.push(id);
    }
    Ok(groups)
}

fn is_open(g: &SecurityGroup, port: i32, proto: &str) -> bool {
    g.ip_permissions().iter().any(|p| {
        let proto_ok = p.ip_protocol() == Some(proto) || p.ip_protocol() == Some("-1");
        let port_ok = p.ip_protocol() == Some("-1")
            || (p.from_port().unwrap_or(-1) <= port && port <= p.to_port().unwrap_or(-1));
        let cidr_ok = p
            .ip_ranges()
            .iter()
            .any(|r| r.cidr_ip() == Some("0.0.0.0/0"));
        proto_ok && port_ok && cidr_ok
    })
}

async fn authorize_missing(
    ec2: &aws_sdk_ec2::Client,
    g: &SecurityGroup,
    id: &str,
    ports: &[(i32, String)],
) -> Result<()> {
    let mut perms = Vec::new();
    for (port, proto) in ports {
        if is_open(g, *port, proto)
            || perms.iter().any(|p: &IpPermission| {
                p.from_port() == Some(*port) && p.ip_protocol() == Some(proto.as_str())
            })
        {
            continue;
        }
        perms.push(
            IpPermission::builder()
                .ip_protocol(proto)
                .from_port(*port)
                .to_port(*port)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        );
    }
    if perms.is_empty() {
        return Ok(());
    }
    // All rules in one call; if another create added one meanwhile, add them one by one.
    match ec2
        .authorize_security_group_ingress()
        .group_id(id)
        .set_ip_permissions(Some(perms.clone()))
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) => {
            let e = aws("opening ports (AuthorizeSecurityGroupIngress)", e);
            if e.code() != Some("InvalidPermission.Duplicate") {
                return Err(e);
            }
        }
    }
    for p in perms {
        if let Err(e) = ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .ip_permissions(p)
            .send()
            .await
        {
            let e = aws("opening ports (AuthorizeSecurityGroupIngress)", e);
            if e.code() != Some("InvalidPermission.Duplicate") {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Ids of security groups created by the machine with `machine_id`.
pub async fn find_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_security_groups()
        .filters(filter(&format!("tag:{}", tags::MACHINE_ID), machine_id))
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the machine's security groups by tag (DescribeSecurityGroups)",
                e,
            )
        })?;
    Ok(out
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect())
}

/// Those of `ids` that ec2spot created for the manager `manager` (shared groups of this
/// bastion's machines).
pub async fn owned_by_manager(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    manager: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.to_vec()))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let e = aws(
                "reading the machine's security groups (DescribeSecurityGroups)",
                e,
            );
            return if e.is_code(&["InvalidGroup.NotFound"]) {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
    };
    Ok(out
        .security_groups()
        .iter()
        .filter(|g| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some(tags::MANAGER) && t.value() == Some(manager))
        })
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect())
}

/// Who uses group `id`: the instance of each network interface in it, or the interface itself
/// when it belongs to no instance (load balancers, Lambda, …).
pub async fn users(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>> {
    let out = ec2
        .describe_network_interfaces()
        .filters(filter("group-id", id))
        .send()
        .await
        .map_err(|e| {
            aws(
                "checking who uses the security group (DescribeNetworkInterfaces)",
                e,
            )
        })?;
    Ok(out
        .network_interfaces()
        .iter()
        .map(|n| {
            n.attachment()
                .and_then(|a| a.instance_id())
                .map(str::to_string)
                .unwrap_or_else(|| n.network_interface_id().unwrap_or_default().to_string())
        })
        .collect())
}

/// What happened to a group on removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// It is gone.
    Yes,
    /// Other instances still use it; it stays.
    InUse(Vec<String>),
}

/// Deletes group `id` unless a network interface other than those of the `leaving`
/// instances (being terminated) uses it. Waits up to `patience` for `leaving` to release it
/// (EC2 refuses to delete a group of an instance that is still shutting down).
pub async fn delete_if_unused(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    leaving: &[String],
    patience: Duration,
) -> Result<Deleted> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let users = users(ec2, id).await?;
        let others: Vec<String> = users
            .iter()
            .filter(|u| !leaving.contains(u))
            .cloned()
            .collect();
        if !others.is_empty() {
            return Ok(Deleted::InUse(others));
        }
        if users.is_empty() {
            match ec2.delete_security_group().group_id(id).send().await {
                Ok(_) => return Ok(Deleted::Yes),
                Err(e) => {
                    let e = aws("deleting the security group (DeleteSecurityGroup)", e);
                    if e.is_code(&["InvalidGroup.NotFound"]) {
                        return Ok(Deleted::Yes);
                    }
                    if e.code() != Some("DependencyViolation") || start.elapsed() >= patience {
                        return Err(e);
                    }
                }
            }
        } else if start.elapsed() >= patience {
            return Err(Error::Other(format!(
                "security group {id} is still attached to instance(s) {} being terminated",
                users.join(", ")
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
