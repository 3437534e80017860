//! Every IAM permission ec2spot uses, with what needs it: the source of
//! `examples/iam-policy.json` (a test checks the two agree) and of `doctor`'s checks.

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
    p("ec2:DescribeLaunchTemplates", "rm, gc (multi-pool spot)"),
    p("ec2:DescribeVolumes", "gc"),
    p("ec2:ImportKeyPair", "create (the machine's SSH key)"),
    p("ec2:CreateSecurityGroup", "create (the named group, once)"),
    p(
        "ec2:AuthorizeSecurityGroupIngress",
        "create (open SSH, Docker and --amazonec2-open-port ports)",
    ),
    p("ec2:RunInstances", "create"),
    p("ec2:CreateTags", "create (tags given at launch)"),
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

/// The permission named `action`.
pub fn get(action: &str) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|p| p.action == action)
}
