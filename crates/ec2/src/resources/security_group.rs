//! Security groups: resolved by name in the VPC, created (tagged as ec2spot's) when missing,
//! and — only when ec2spot created them — opened for SSH, Docker and the user's ports where no
//! rule lets those in yet; all safe against concurrent creates racing on the same group. A
//! group the user made is never changed (a missing port is reported) and never deleted; one
//! ec2spot made is deleted with the last of its manager's machines that used it.
//!
//! Where a group ec2spot creates lets SSH and Docker in from: the VPC's address ranges when
//! the machines are reached by private address (`amazonec2-use-private-address`,
//! `amazonec2-private-address-only`), anywhere only when they are reached by public address;
//! `amazonec2-open-port` ports from anywhere, as amazonec2 does.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, Tag,
};

use crate::aws::consistency::retry_fresh;
use crate::aws::error::{Error, ErrorKind, Resource, Result, aws};
use crate::create_record::{self, Kind};
use crate::options::Asked;
use crate::options::validate::parse_port;
use crate::progress::Progress;
use crate::tags;

/// The description of the groups ec2spot creates (amazonec2 writes "Docker Machine"; ours
/// has no characters that form encodings disagree on, which moto's IAM signature check trips
/// over).
pub const DESCRIPTION: &str = "docker-machine_ec2spot";
/// The Docker daemon port docker-machine configures.
pub const DOCKER_PORT: i32 = 2376;
/// Anywhere (IPv4).
pub const ANYWHERE: &str = "0.0.0.0/0";
/// Anywhere (IPv6).
pub const ANYWHERE_V6: &str = "::/0";

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

/// The groups named `names` in `vpc` (those that exist).
pub async fn describe_by_names(
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

/// Whether ec2spot created `g`: it carries ec2spot's machine tag, set at creation (users
/// cannot give tags with ec2spot's prefix through its options).
pub fn is_ours(g: &SecurityGroup) -> bool {
    g.tags().iter().any(|t| t.key() == Some(tags::MACHINE_ID))
}

/// Whether one of `g`'s ingress rules lets in `protocol` traffic on `port`, from any source
/// (addresses, a prefix list, another group): a rule of that protocol (or all, `-1`) whose
/// port range contains it.
pub fn covers(g: &SecurityGroup, port: i32, protocol: &str) -> bool {
    let number = match protocol {
        "tcp" => "6",
        "udp" => "17",
        _ => "",
    };
    g.ip_permissions().iter().any(|p| match p.ip_protocol() {
        Some("-1") => true,
        Some(proto) if proto == protocol || proto == number => {
            p.from_port().unwrap_or(-1) <= port && port <= p.to_port().unwrap_or(-1)
        }
        _ => false,
    })
}

/// The ingress rules of `g` open to anywhere, as `protocol/from-to` (`all` for `-1`).
pub fn open_to_world(g: &SecurityGroup) -> Vec<String> {
    g.ip_permissions()
        .iter()
        .filter(|p| {
            p.ip_ranges().iter().any(|r| r.cidr_ip() == Some(ANYWHERE))
                || p.ipv6_ranges()
                    .iter()
                    .any(|r| r.cidr_ipv6() == Some(ANYWHERE_V6))
        })
        .map(|p| match p.ip_protocol() {
            Some("-1") | None => "all traffic".to_string(),
            Some(proto) => {
                let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
                if from == to {
                    format!("{proto}/{from}")
                } else {
                    format!("{proto}/{from}-{to}")
                }
            }
        })
        .collect()
}

/// The sources a new rule for a port gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `0.0.0.0/0`.
    Anywhere,
    /// The VPC's IPv4 and IPv6 blocks.
    Vpc,
}

/// The ports the machine's groups must let in and from where a rule ec2spot adds lets them
/// in: `ports` (SSH, Docker, swarm, `amazonec2-open-port`, from create) — the open ports from
/// anywhere as amazonec2 does, the others from the VPC when the machines are reached by
/// private address.
pub fn plan(asked: &Asked, ports: &[(i32, String)]) -> Vec<(i32, String, Source)> {
    let private = asked.use_private_ip || asked.private_ip_only;
    let opened: Vec<(i32, String)> = asked
        .open_ports
        .iter()
        .filter_map(|p| parse_port(p).ok())
        .collect();
    let mut out: Vec<(i32, String, Source)> = Vec::new();
    for (port, proto) in ports {
        if out.iter().any(|(p, pr, _)| p == port && pr == proto) {
            continue;
        }
        let source = if !private || opened.contains(&(*port, proto.clone())) {
            Source::Anywhere
        } else {
            Source::Vpc
        };
        out.push((*port, proto.clone(), source));
    }
    out
}

/// The VPC's associated IPv4 and IPv6 blocks.
async fn vpc_blocks(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Result<(Vec<String>, Vec<String>)> {
    let out = ec2
        .describe_vpcs()
        .vpc_ids(vpc)
        .send()
        .await
        .map_err(|e| aws("reading the VPC's address ranges (DescribeVpcs)", e))?;
    let Some(v) = out.vpcs().first() else {
        return Err(Error::Other(format!("VPC {vpc} not found")));
    };
    // Blocks being added or removed are not (yet) the VPC's
    // (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcCidrBlockState.html).
    let associated = |s: Option<&str>| s.is_none_or(|s| s == "associated");
    let mut v4: Vec<String> = v
        .cidr_block_association_set()
        .iter()
        .filter(|a| {
            associated(
                a.cidr_block_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str()),
            )
        })
        .filter_map(|a| a.cidr_block().map(str::to_string))
        .collect();
    if v4.is_empty() {
        v4.extend(v.cidr_block().map(str::to_string));
    }
    let v6: Vec<String> = v
        .ipv6_cidr_block_association_set()
        .iter()
        .filter(|a| {
            associated(
                a.ipv6_cidr_block_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str()),
            )
        })
        .filter_map(|a| a.ipv6_cidr_block().map(str::to_string))
        .collect();
    if v4.is_empty() && v6.is_empty() {
        return Err(Error::Other(format!("VPC {vpc} has no address range")));
    }
    Ok((v4, v6))
}

/// Resolves `config`'s group names in `vpc`, creating the missing ones with `tag_list`, and
/// (unless `amazonec2-security-group-readonly`) lets each port of `ports` in where no rule
/// does yet — in groups ec2spot created only; for another group a missing port is reported
/// through `progress` and the group left as it is.
pub async fn ensure(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    asked: &Asked,
    ports: &[(i32, String)],
    tag_list: &[(String, String)],
    progress: &Progress,
) -> Result<Groups> {
    let names = &asked.security_group_names;
    let mut groups = Groups::default();
    if names.is_empty() {
        return Ok(groups);
    }
    let mut found = describe_by_names(ec2, vpc, names).await?;
    for name in names {
        if found.iter().any(|g| g.group_name() == Some(name.as_str())) {
            continue;
        }
        match create(ec2, vpc, asked, name, tag_list).await? {
            Made::Ours(g) => {
                groups
                    .created
                    .push(g.group_id().unwrap_or_default().to_string());
                found.push(g);
            }
            Made::Theirs(g) => found.extend(g),
        }
    }
    let wanted = plan(asked, ports);
    let mut blocks = None;
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
        groups.ids.push(id.clone());
        if asked.security_group_read_only {
            continue;
        }
        open_missing(ec2, vpc, g, &wanted, &mut blocks, progress).await?;
    }
    Ok(groups)
}

/// A group `ensure` looked for and did not find: made by this create, or by another create
/// a moment before.
enum Made {
    /// Created now, as EC2 would describe it.
    Ours(SecurityGroup),
    /// Another create's, found once EC2 lists it.
    Theirs(Vec<SecurityGroup>),
}

/// Creates group `name` in `vpc`, tagged at creation and recorded for `rm`; a group of that
/// name another create made meanwhile (`InvalidGroup.Duplicate`) is used instead.
async fn create(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    asked: &Asked,
    name: &str,
    tag_list: &[(String, String)],
) -> Result<Made> {
    create_record::note(asked, Kind::Group, None);
    let made = ec2
        .create_security_group()
        .group_name(name)
        .description(DESCRIPTION)
        .vpc_id(vpc)
        .tag_specifications(crate::tags::tag_spec(ResourceType::SecurityGroup, tag_list))
        .send()
        .await
        .map_err(|e| {
            aws(
                &format!("creating security group {name} (CreateSecurityGroup)"),
                e,
            )
        });
    create_record::settle(
        asked,
        Kind::Group,
        made.as_ref().map(|o| o.group_id().unwrap_or_default()),
    );
    match made {
        Ok(out) => Ok(Made::Ours(
            SecurityGroup::builder()
                .group_name(name)
                .group_id(out.group_id().unwrap_or_default())
                .set_tags(Some(
                    tag_list
                        .iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        )),
        Err(e) if !e.is(&[ErrorKind::Duplicate(Resource::Group)]) => Err(e),
        Err(_) => {
            // Another create made it a moment ago: use theirs, once EC2 lists it.
            let again = retry_fresh(&[ErrorKind::NotFound(Resource::Group)], || async {
                let g = describe_by_names(ec2, vpc, &[name.to_string()]).await?;
                if g.is_empty() {
                    return Err(Error::Aws {
                        step: format!("finding security group {name} another create just made (DescribeSecurityGroups)"),
                        code: "InvalidGroup.NotFound".into(),
                        message: "EC2 says it exists and does not list it yet".into(),
                    });
                }
                Ok(g)
            })
            .await?;
            Ok(Made::Theirs(again))
        }
    }
}

/// Lets in what `wanted` lists and group `g` does not yet — in a group ec2spot created only;
/// for another group the missing ports are reported through `progress` and the group left
/// as it is. `blocks`: the VPC's address ranges, read once when a rule needs them.
async fn open_missing(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    g: &SecurityGroup,
    wanted: &[(i32, String, Source)],
    blocks: &mut Option<(Vec<String>, Vec<String>)>,
    progress: &Progress,
) -> Result<()> {
    let name = g.group_name().unwrap_or_default();
    let id = g.group_id().unwrap_or_default();
    let missing: Vec<&(i32, String, Source)> = wanted
        .iter()
        .filter(|(port, proto, _)| !covers(g, *port, proto))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_ours(g) {
        let list: Vec<String> = missing
            .iter()
            .map(|(p, pr, _)| format!("{pr}/{p}"))
            .collect();
        progress.say(&format!(
            "Security group {name} ({id}) lets nothing in on {}; ec2spot leaves groups it did not create as they are: add rules for them (from the bastion's address) if docker-machine cannot reach the machine",
            list.join(", ")
        ));
        return Ok(());
    }
    if blocks.is_none() && missing.iter().any(|(_, _, s)| *s == Source::Vpc) {
        *blocks = Some(vpc_blocks(ec2, vpc).await?);
    }
    let perms: Vec<IpPermission> = missing
        .iter()
        .map(|(port, proto, source)| rule(*port, proto, source, blocks.as_ref()))
        .collect();
    // An ec2spot group still missing its ports was made moments ago — by this create, or by
    // one beside it whose rules have not landed yet — and may be unknown to the next call
    // (EC2's eventual consistency): "not found" is "not yet" for it.
    let not_yet = [ErrorKind::NotFound(Resource::Group)];
    retry_fresh(&not_yet, || authorize(ec2, id, perms.clone())).await
}

/// The ingress rule for `port` from `source` (`blocks`: the VPC's, when it is the source).
fn rule(
    port: i32,
    proto: &str,
    source: &Source,
    blocks: Option<&(Vec<String>, Vec<String>)>,
) -> IpPermission {
    let rule = IpPermission::builder()
        .ip_protocol(proto)
        .from_port(port)
        .to_port(port);
    match (source, blocks) {
        (Source::Vpc, Some((v4, v6))) => rule
            .set_ip_ranges(Some(
                v4.iter()
                    .map(|c| IpRange::builder().cidr_ip(c).build())
                    .collect(),
            ))
            .set_ipv6_ranges(Some(
                v6.iter()
                    .map(|c| Ipv6Range::builder().cidr_ipv6(c).build())
                    .collect(),
            ))
            .build(),
        _ => rule
            .ip_ranges(IpRange::builder().cidr_ip(ANYWHERE).build())
            .build(),
    }
}

/// Adds `perms` to group `id`: in one call; if another create added one meanwhile, one by one.
async fn authorize(ec2: &aws_sdk_ec2::Client, id: &str, perms: Vec<IpPermission>) -> Result<()> {
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
            if !e.is(&[ErrorKind::Duplicate(Resource::Permission)]) {
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
            if !e.is(&[ErrorKind::Duplicate(Resource::Permission)]) {
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
        .filters(tags::machine(machine_id))
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

/// Describes the groups `ids`; those that are gone are left out.
async fn describe_ids(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<SecurityGroup>> {
    let step = "reading the machine's security groups (DescribeSecurityGroups)";
    match ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.to_vec()))
        .send()
        .await
    {
        Ok(out) => Ok(out.security_groups().to_vec()),
        Err(e) => {
            let e = aws(step, e);
            if !e.is(&[ErrorKind::NotFound(Resource::Group)]) || ids.len() == 1 {
                return if e.is(&[ErrorKind::NotFound(Resource::Group)]) {
                    Ok(Vec::new())
                } else {
                    Err(e)
                };
            }
            // One of them is gone: EC2 then fails the whole call with InvalidGroup.NotFound
            // (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroups.html,
            // "Errors"); ask for each.
            let mut found = Vec::new();
            for id in ids {
                found.extend(Box::pin(describe_ids(ec2, std::slice::from_ref(id))).await?);
            }
            Ok(found)
        }
    }
}

/// Those of `ids` that ec2spot may delete with a machine: groups it created — for the
/// manager `manager` (shared by this bastion's machines) or for the machine `machine_id`
/// itself — as their tags say. A group the user made, or another bastion's, is never among
/// them, whatever a config lists; groups already gone are left out.
pub async fn deletable(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    manager: &str,
    machine_id: &str,
) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tagged = |g: &SecurityGroup, key: &str, value: &str| {
        !value.is_empty()
            && g.tags()
                .iter()
                .any(|t| t.key() == Some(key) && t.value() == Some(value))
    };
    Ok(describe_ids(ec2, ids)
        .await?
        .iter()
        .filter(|g| tagged(g, tags::MANAGER, manager) || tagged(g, tags::MACHINE_ID, machine_id))
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

/// Those of `users` (instance or interface ids) that are not on their way out: interfaces of
/// no instance, and instances neither shutting down nor terminated (or not listed).
pub async fn staying(ec2: &aws_sdk_ec2::Client, users: &[String]) -> Result<Vec<String>> {
    let instances: Vec<String> = users
        .iter()
        .filter(|u| u.starts_with("i-"))
        .cloned()
        .collect();
    let mut staying: Vec<String> = users
        .iter()
        .filter(|u| !u.starts_with("i-"))
        .cloned()
        .collect();
    if instances.is_empty() {
        return Ok(staying);
    }
    let out = ec2
        .describe_instances()
        .filters(filter_values("instance-id", &instances))
        .send()
        .await
        .map_err(|e| {
            aws(
                "checking who uses the security group (DescribeInstances)",
                e,
            )
        })?;
    let leaving: Vec<&str> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.state()
                .and_then(|s| s.name())
                .is_some_and(|s| matches!(s.as_str(), "shutting-down" | "terminated"))
        })
        .filter_map(|i| i.instance_id())
        .collect();
    staying.extend(
        instances
            .into_iter()
            .filter(|i| !leaving.contains(&i.as_str())),
    );
    Ok(staying)
}

fn filter_values(n: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(n)
        .set_values(Some(values.to_vec()))
        .build()
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
    made_lately: bool,
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
        // Another machine's instance still shutting down holds the group for a while too
        // (its `rm` may have found it in use by this one): it is waited for like ours.
        let staying = staying(ec2, &others).await?;
        if !staying.is_empty() {
            return Ok(Deleted::InUse(staying));
        }
        if users.is_empty() {
            match ec2.delete_security_group().group_id(id).send().await {
                Ok(_) => return Ok(Deleted::Yes),
                Err(e) => {
                    let e = aws("deleting the security group (DeleteSecurityGroup)", e);
                    // "Not found" for a group made moments ago is "not yet" (EC2's eventual
                    // consistency) for a while.
                    let not_yet =
                        made_lately && start.elapsed() < crate::aws::consistency::FRESH_PATIENCE;
                    if e.is(&[ErrorKind::NotFound(Resource::Group)]) && !not_yet {
                        return Ok(Deleted::Yes);
                    }
                    if e.is(&[ErrorKind::NotFound(Resource::Group)]) {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    if !e.is(&[ErrorKind::InUse]) || start.elapsed() >= patience {
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

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{PrefixListId, UserIdGroupPair};

    use super::*;

    fn group(rules: Vec<IpPermission>) -> SecurityGroup {
        SecurityGroup::builder()
            .set_ip_permissions(Some(rules))
            .build()
    }

    fn range(proto: &str, from: i32, to: i32) -> aws_sdk_ec2::types::builders::IpPermissionBuilder {
        IpPermission::builder()
            .ip_protocol(proto)
            .from_port(from)
            .to_port(to)
    }

    #[test]
    fn a_rule_from_any_source_covers_the_ports_in_its_range() {
        let from_prefix_list = group(vec![
            range("tcp", 20, 30)
                .prefix_list_ids(PrefixListId::builder().prefix_list_id("pl-1").build())
                .build(),
        ]);
        assert!(covers(&from_prefix_list, 22, "tcp"));
        assert!(!covers(&from_prefix_list, 2376, "tcp"));
        assert!(!covers(&from_prefix_list, 22, "udp"));
        let from_group = group(vec![
            range("6", 2376, 2376)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
                .build(),
        ]);
        assert!(covers(&from_group, 2376, "tcp"), "protocol by number");
        let all = group(vec![
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build(),
        ]);
        assert!(covers(&all, 22, "tcp") && covers(&all, 53, "udp"));
        assert!(!covers(&group(vec![]), 22, "tcp"));
        assert!(open_to_world(&from_prefix_list).is_empty());
        let world = group(vec![
            range("tcp", 22, 22)
                .ip_ranges(IpRange::builder().cidr_ip(ANYWHERE).build())
                .build(),
            IpPermission::builder()
                .ip_protocol("-1")
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6(ANYWHERE_V6).build())
                .build(),
        ]);
        assert_eq!(open_to_world(&world), ["tcp/22", "all traffic"]);
    }

    #[test]
    fn ssh_and_docker_from_the_vpc_only_when_reached_privately_open_ports_from_anywhere() {
        let ports = [
            (22, "tcp".to_string()),
            (2376, "tcp".to_string()),
            (8080, "tcp".to_string()),
        ];
        let mut asked = Asked {
            open_ports: vec!["8080".into()],
            ..Asked::default()
        };
        let sources =
            |c: &Asked| -> Vec<Source> { plan(c, &ports).into_iter().map(|(_, _, s)| s).collect() };
        assert_eq!(sources(&asked), vec![Source::Anywhere; 3]);
        asked.use_private_ip = true;
        assert_eq!(
            sources(&asked),
            [Source::Vpc, Source::Vpc, Source::Anywhere]
        );
        asked.use_private_ip = false;
        asked.private_ip_only = true;
        assert_eq!(
            sources(&asked),
            [Source::Vpc, Source::Vpc, Source::Anywhere]
        );
        // Opened explicitly: from anywhere even when it is the SSH port.
        asked.open_ports = vec!["22".into()];
        assert_eq!(sources(&asked)[0], Source::Anywhere);
    }
}
