//! Every IAM permission ec2spot uses, with what needs it, and the least-privilege policy that
//! grants them: the source of `examples/iam-policy.json` ([`policy`]; a test checks the two
//! agree) and of `doctor`'s checks.
//!
//! The policy lets the runner change only what ec2spot made: every action that changes or
//! deletes a resource requires ec2spot's ownership tag on it (`ec2:ResourceTag`), every
//! action that creates one requires the tag in the same request (`aws:RequestTag`), and tags
//! can be written only by those creating calls (`ec2:CreateAction`). References
//! (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>,
//! <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html>,
//! <https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html>).
//!
//! **Every partition.** The region check accepts the `aws`, `aws-us-gov` and `aws-cn`
//! partitions, and one policy serves all three: its ARNs put a wildcard in the partition
//! segment (`arn:*:ec2:*:*:instance/*`), which IAM allows in every segment but the service's
//! ("IAM JSON policy elements: Resource", *Using wildcards in resource ARNs*:
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html>).
//! The values of service conditions name both forms of the endpoint: `kms:ViaService` is
//! `ec2.<region>.amazonaws.com`, and `ec2.<region>.amazonaws.com.cn` in China; EC2's service
//! principal for `iam:PassedToService` is `ec2.amazonaws.com`, and `ec2.amazonaws.com.cn` in
//! China (as AWS's own `AWSEC2SpotServiceRolePolicy` lists it:
//! <https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSEC2SpotServiceRolePolicy.html>).
//! The test harness's IAM layer evaluates a create's requests as GovCloud and China too.
//!
//! **Spot and a customer managed KMS key.** Spot instances are launched and managed by the
//! service-linked role `AWSServiceRoleForEC2Spot` (created by the first spot launch, hence
//! `iam:CreateServiceLinkedRole`), not by the runner's identity. With
//! `--amazonec2-volume-kms-key` naming a customer managed key, the runner's policy (the
//! optional `Ec2spotOptionalKms*` statements) is not enough: the key's own policy must let
//! that role use the key — `kms:Encrypt`, `kms:Decrypt`, `kms:ReEncrypt*`,
//! `kms:GenerateDataKey*`, `kms:DescribeKey`, and `kms:CreateGrant` with
//! `kms:GrantIsForAWSResource` — or spot launches with encrypted volumes fail
//! ("Service-linked role for Spot Instance requests", *Grant access to customer managed keys
//! for use with encrypted AMIs and EBS snapshots*:
//! <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html>).
//! The principal is `arn:<partition>:iam::<account>:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`.
//! Not needed with the AWS managed key `aws/ebs`.

use serde_json::{Value, json};

use crate::tags;

/// One IAM action ec2spot calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The IAM action (`ec2:RunInstances`).
    pub action: &'static str,
    /// Which commands need it.
    pub used_by: &'static str,
}

const fn p(action: &'static str, used_by: &'static str) -> Permission {
    Permission { action, used_by }
}

/// The permissions, reads first.
pub const PERMISSIONS: &[Permission] = &[
    p(
        "ec2:DescribeImages",
        "create (default AMI, --amazonec2-ami check)",
    ),
    p(
        "ec2:DescribeInstanceTypes",
        "create (architecture of the types)",
    ),
    p(
        "ec2:DescribeInstanceTypeOfferings",
        "create (which zones offer each type)",
    ),
    p("ec2:DescribeVpcs", "create (default VPC)"),
    p("ec2:DescribeSubnets", "create (subnets and their zones)"),
    p(
        "ec2:DescribeKeyPairs",
        "create (existing key pairs), rm, gc",
    ),
    p("ec2:DescribeSecurityGroups", "create, rm, gc"),
    p(
        "ec2:DescribeNetworkInterfaces",
        "rm, gc (is a security group still used)",
    ),
    p(
        "ec2:DescribeInstances",
        "create, status, ip, url, ls, start, stop, rm, gc",
    ),
    p(
        "ec2:DescribeSpotInstanceRequests",
        "status (interruption notices), rm, gc",
    ),
    p(
        "ec2:DescribeSpotPriceHistory",
        "agent metrics and fleet (what a machine's pool costs)",
    ),
    p("ec2:DescribeLaunchTemplates", "rm, gc (multi-pool spot)"),
    p("ec2:DescribeVolumes", "gc"),
    p("ec2:ImportKeyPair", "create (the machine's SSH key)"),
    p("ec2:CreateSecurityGroup", "create (the named group, once)"),
    p(
        "ec2:AuthorizeSecurityGroupIngress",
        "create (open SSH, Docker and --amazonec2-open-port ports)",
    ),
    p("ec2:RunInstances", "create"),
    p(
        "ec2:CreateTags",
        "create (tags given at launch), update-labels (GitLab's fork: labels on the machine's instance, volumes, network interface)",
    ),
    p(
        "ec2:CreateLaunchTemplate",
        "create over several types or subnets (one EC2 Fleet request)",
    ),
    p("ec2:CreateFleet", "create over several types or subnets"),
    p(
        "ec2:DeleteLaunchTemplate",
        "create over several pools, rm, gc",
    ),
    p("ec2:StartInstances", "start"),
    p("ec2:StopInstances", "stop, kill"),
    p("ec2:RebootInstances", "restart"),
    p("ec2:TerminateInstances", "rm, gc"),
    p("ec2:CancelSpotInstanceRequests", "rm, gc"),
    p("ec2:DeleteKeyPair", "rm, gc"),
    p("ec2:DeleteSecurityGroup", "rm, gc"),
    p("ec2:DeleteVolume", "gc"),
    p(
        "iam:PassRole",
        "create with --amazonec2-iam-instance-profile (the profile's role)",
    ),
    p(
        "iam:CreateServiceLinkedRole",
        "the first spot launch or EC2 Fleet of an account (AWSServiceRoleForEC2Spot, …Fleet)",
    ),
];

/// What EC2 needs, on the caller's behalf, to encrypt a volume with a customer managed key
/// (`amazonec2-volume-kms-key`): optional, in statements of their own.
pub const KMS_PERMISSIONS: &[Permission] = &[
    p(
        "kms:CreateGrant",
        "create with --amazonec2-volume-kms-key (EC2 lets EBS use the key)",
    ),
    p(
        "kms:Decrypt",
        "create with --amazonec2-volume-kms-key (EC2 on your behalf)",
    ),
    p(
        "kms:DescribeKey",
        "create with --amazonec2-volume-kms-key (EC2 on your behalf)",
    ),
    p(
        "kms:GenerateDataKeyWithoutPlaintext",
        "create with --amazonec2-volume-kms-key (EC2 on your behalf)",
    ),
    p(
        "kms:ReEncryptFrom",
        "create with --amazonec2-volume-kms-key (EC2 on your behalf)",
    ),
    p(
        "kms:ReEncryptTo",
        "create with --amazonec2-volume-kms-key (EC2 on your behalf)",
    ),
];

/// What `image build`, `image prune` and `gc` (an interrupted build's image) need besides
/// a create's and rm's permissions: optional, in statements of their own.
pub const IMAGE_PERMISSIONS: &[Permission] = &[
    p(
        "ec2:CreateImage",
        "image build (the AMI of the stopped builder)",
    ),
    p(
        "ec2:CreateTags",
        "image build (the image's and snapshots' tags at creation; `ready` when available)",
    ),
    p(
        "ec2:DeregisterImage",
        "image prune, gc (an interrupted build's image)",
    ),
    p(
        "ec2:DeleteSnapshot",
        "image prune, gc (the deregistered image's snapshots)",
    ),
];

/// The `Sid` prefix of the statements needed only for baked images.
pub const IMAGE_SID_PREFIX: &str = "Ec2spotOptionalImage";

/// The permission named `action`.
pub fn get(action: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .chain(KMS_PERMISSIONS)
        .find(|p| p.action == action)
}

/// The tag whose presence the policy's conditions require: every resource ec2spot creates
/// carries it from its creation on.
pub const OWNERSHIP_TAG: &str = tags::MACHINE_ID;

/// Stands for the role of `amazonec2-iam-instance-profile` in the policy (the user puts in
/// its name).
pub const ROLE_PLACEHOLDER: &str = "REPLACE-WITH-THE-ROLE-OF-THE-MACHINES-INSTANCE-PROFILE";

/// Stands for the key id of `amazonec2-volume-kms-key` in the policy.
pub const KMS_KEY_PLACEHOLDER: &str = "REPLACE-WITH-THE-KEY-ID-OF-amazonec2-volume-kms-key";

/// The `Sid` prefix of the statements needed only with `amazonec2-volume-kms-key`.
pub const OPTIONAL_SID_PREFIX: &str = "Ec2spotOptionalKms";

/// The partition segment of the policy's ARNs: any (see the module's docs).
pub const PARTITION: &str = "*";

/// The endpoints of EC2 as `kms:ViaService` names them, in the standard and GovCloud
/// partitions and in China.
pub const EC2_VIA_SERVICE: &[&str] = &["ec2.*.amazonaws.com", "ec2.*.amazonaws.com.cn"];

/// EC2's service principal, and China's.
pub const EC2_PRINCIPALS: &[&str] = &["ec2.amazonaws.com", "ec2.amazonaws.com.cn"];

/// The ARNs of EC2 resources of `types` (`instance`, `volume`, …; images have no account).
fn ec2_arns(types: &[&str]) -> Value {
    types
        .iter()
        .map(|t| {
            let account = if *t == "image" || *t == "snapshot" {
                ""
            } else {
                "*"
            };
            Value::String(format!("arn:{PARTITION}:ec2:*:{account}:{t}/*"))
        })
        .collect()
}

/// The resources ec2spot creates (and tags at creation).
const CREATED: &[&str] = &[
    "key-pair",
    "security-group",
    "launch-template",
    "instance",
    "volume",
    "network-interface",
    "spot-instances-request",
    "fleet",
];

/// The actions that create them.
const CREATING: &[&str] = &[
    "ImportKeyPair",
    "CreateSecurityGroup",
    "CreateLaunchTemplate",
    "RunInstances",
    "CreateFleet",
];

/// The actions that change or delete an existing resource, and the resources they act on.
const CHANGING: &[&str] = &[
    "AuthorizeSecurityGroupIngress",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "CancelSpotInstanceRequests",
    "DeleteKeyPair",
    "DeleteSecurityGroup",
    "DeleteLaunchTemplate",
    "DeleteVolume",
];
const CHANGED: &[&str] = &[
    "instance",
    "security-group",
    "spot-instances-request",
    "key-pair",
    "launch-template",
    "volume",
];

/// The resources a launch only refers to (EC2 authorises the caller on them too): the
/// image, subnet, security groups and key pair it names, the fleet's launch template. Not
/// changed by the launch, and often not ec2spot's (the user's key pair and groups).
pub const REFERENCED: &[&str] = &[
    "image",
    "subnet",
    "security-group",
    "key-pair",
    "launch-template",
];

/// One statement of the policy (fields in the order people read them).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    /// Its name.
    pub sid: String,
    /// Always `Allow`.
    pub effect: &'static str,
    /// The IAM actions.
    pub action: Vec<String>,
    /// The resource ARNs (or `*`).
    pub resource: Value,
    /// What must hold for the statement to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

fn statement(
    sid: &str,
    action: Vec<String>,
    resource: Value,
    condition: Option<Value>,
) -> Statement {
    Statement {
        sid: sid.into(),
        effect: "Allow",
        action,
        resource,
        condition,
    }
}

fn actions(names: &[&str]) -> Vec<String> {
    names.iter().map(|a| format!("ec2:{a}")).collect()
}

/// The statements of `examples/iam-policy.json`: every permission ec2spot needs, each as
/// narrow as EC2's IAM allows.
pub fn statements() -> Vec<Statement> {
    let mut all = vec![reads_statement()];
    all.extend(creating_statements());
    all.extend(tagging_statements());
    all.push(changing_statement());
    all.extend(iam_statements());
    all.extend(kms_statements());
    all.extend(image_statements());
    all
}

/// The condition key requiring ec2spot's ownership tag in a creating request.
fn request_tag() -> String {
    format!("aws:RequestTag/{OWNERSHIP_TAG}")
}

/// The condition key requiring ec2spot's ownership tag on an existing resource.
fn resource_tag() -> String {
    format!("ec2:ResourceTag/{OWNERSHIP_TAG}")
}

/// Every `Describe*` read, on any resource.
fn reads_statement() -> Statement {
    let reads: Vec<String> = PERMISSIONS
        .iter()
        .filter(|p| p.action.starts_with("ec2:Describe"))
        .map(|p| p.action.to_string())
        .collect();
    statement("Ec2spotReads", reads, "*".into(), None)
}

/// Creating resources: only with the ownership tag in the request; the launches may refer
/// to resources that are not ec2spot's, and security groups are created in a VPC.
fn creating_statements() -> Vec<Statement> {
    vec![
        statement(
            "Ec2spotCreateOnlyTagged",
            actions(CREATING),
            ec2_arns(CREATED),
            Some(json!({ "Null": { request_tag(): "false" } })),
        ),
        statement(
            "Ec2spotLaunchReferences",
            actions(&["RunInstances", "CreateFleet"]),
            ec2_arns(REFERENCED),
            None,
        ),
        statement(
            "Ec2spotGroupsInVpcs",
            actions(&["CreateSecurityGroup"]),
            ec2_arns(&["vpc"]),
            None,
        ),
    ]
}

/// Writing tags: by the creating calls, and labels (no tag of ec2spot's own) on what it owns.
fn tagging_statements() -> Vec<Statement> {
    vec![
        statement(
            "Ec2spotTagOnlyWhenCreating",
            actions(&["CreateTags"]),
            ec2_arns(CREATED),
            Some(json!({ "StringEquals": { "ec2:CreateAction": CREATING } })),
        ),
        statement(
            "Ec2spotLabelOnlyOwned",
            actions(&["CreateTags"]),
            ec2_arns(&["instance", "volume", "network-interface"]),
            Some(json!({
                "Null": { resource_tag(): "false" },
                "ForAllValues:StringNotLike": { "aws:TagKeys": [format!("{}*", tags::PREFIX)] }
            })),
        ),
    ]
}

/// Changing or deleting a resource: only one carrying the ownership tag.
fn changing_statement() -> Statement {
    statement(
        "Ec2spotChangeOnlyOwned",
        actions(CHANGING),
        ec2_arns(CHANGED),
        Some(json!({ "Null": { resource_tag(): "false" } })),
    )
}

/// IAM: passing the machines' role to EC2, and creating the spot and fleet service roles.
fn iam_statements() -> Vec<Statement> {
    vec![
        statement(
            "Ec2spotPassMachineRole",
            vec!["iam:PassRole".into()],
            format!("arn:{PARTITION}:iam::*:role/{ROLE_PLACEHOLDER}").into(),
            Some(json!({ "StringEquals": { "iam:PassedToService": EC2_PRINCIPALS } })),
        ),
        statement(
            "Ec2spotSpotServiceRoles",
            vec!["iam:CreateServiceLinkedRole".into()],
            "*".into(),
            Some(json!({
                "StringEquals": {
                    "iam:AWSServiceName": ["spot.amazonaws.com", "ec2fleet.amazonaws.com"]
                }
            })),
        ),
    ]
}

/// The optional statements for `amazonec2-volume-kms-key`: EC2 may grant EBS the key and
/// use it on the caller's behalf.
fn kms_statements() -> Vec<Statement> {
    let kms_key = Value::String(format!("arn:{PARTITION}:kms:*:*:key/{KMS_KEY_PLACEHOLDER}"));
    let kms_use: Vec<String> = KMS_PERMISSIONS
        .iter()
        .map(|p| p.action.to_string())
        .filter(|a| a != "kms:CreateGrant")
        .collect();
    vec![
        statement(
            &format!("{OPTIONAL_SID_PREFIX}Grant"),
            vec!["kms:CreateGrant".into()],
            kms_key.clone(),
            Some(json!({ "Bool": { "kms:GrantIsForAWSResource": "true" } })),
        ),
        statement(
            &format!("{OPTIONAL_SID_PREFIX}Use"),
            kms_use,
            kms_key,
            Some(json!({ "StringLike": { "kms:ViaService": EC2_VIA_SERVICE } })),
        ),
    ]
}

/// The optional statements for baked images: the image and its snapshots only with the
/// ownership tag, made only from an instance of ec2spot's; after creation only its
/// `ec2spot:image-state` tag changes; deregistered and deleted only when they carry it.
fn image_statements() -> Vec<Statement> {
    let sid = |s: &str| format!("{IMAGE_SID_PREFIX}{s}");
    vec![
        statement(
            &sid("CreateOnlyTagged"),
            actions(&["CreateImage"]),
            ec2_arns(&["image", "snapshot"]),
            Some(json!({ "Null": { request_tag(): "false" } })),
        ),
        statement(
            &sid("FromOwnedInstance"),
            actions(&["CreateImage"]),
            ec2_arns(&["instance"]),
            Some(json!({ "Null": { resource_tag(): "false" } })),
        ),
        statement(
            &sid("TagWhenCreating"),
            actions(&["CreateTags"]),
            ec2_arns(&["image", "snapshot"]),
            Some(json!({ "StringEquals": { "ec2:CreateAction": ["CreateImage"] } })),
        ),
        statement(
            &sid("MarkReady"),
            actions(&["CreateTags"]),
            ec2_arns(&["image"]),
            Some(json!({
                "Null": { resource_tag(): "false" },
                "ForAllValues:StringEquals": { "aws:TagKeys": [crate::create::baked::STATE] }
            })),
        ),
        statement(
            &sid("DeleteOnlyOwned"),
            actions(&["DeregisterImage", "DeleteSnapshot"]),
            ec2_arns(&["image", "snapshot"]),
            Some(json!({ "Null": { resource_tag(): "false" } })),
        ),
    ]
}

/// The policy as JSON text, as `examples/iam-policy.json` holds it.
pub fn policy_json() -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Policy {
        version: &'static str,
        statement: Vec<Statement>,
    }
    let mut text = serde_json::to_string_pretty(&Policy {
        version: "2012-10-17",
        statement: statements(),
    })
    .expect("the policy serialises");
    text.push('\n');
    text
}

/// The policy as a JSON value.
pub fn policy() -> Value {
    serde_json::from_str(&policy_json()).expect("the policy is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_changing_and_creating_action_is_one_ec2spot_calls() {
        for a in CREATING.iter().chain(CHANGING).chain(&["CreateTags"]) {
            assert!(get(&format!("ec2:{a}")).is_some(), "{a}");
        }
    }
}
