//! The driver's create flags: every `amazonec2-*` flag of docker-machine's amazonec2 driver
//! (same names, types, environment variables and help texts), GitLab's fork flags, and ours.
//!
//! This table is the single source of truth: `GetCreateFlags` sends it (converted by the
//! binary), option parsing reads it, and the README's option table is checked against it.

use super::values::{OptionValue, OptionValues};

/// The Ubuntu LTS release of the default image. Move it only after checking that Docker's
/// installer (get.docker.com) and docker-machine's provisioning work on the new release.
pub const PINNED_RELEASE: &str = "24.04";

/// The type and default of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string flag with its default.
    String(&'static str),
    /// An int flag with its default.
    Int(i64),
    /// A bool flag (default false).
    Bool,
    /// A repeatable string flag with its defaults.
    StringSlice(&'static [&'static str]),
}

/// One create flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    /// Option name without dashes.
    pub name: &'static str,
    /// Type and default.
    pub kind: Kind,
    /// Environment variable docker-machine reads as the default ("" = none).
    pub env: &'static str,
    /// Help text as `docker-machine create --help` shows it.
    pub usage: &'static str,
    /// How our default or behaviour differs from amazonec2's ("" = it does not).
    pub difference: &'static str,
}

const fn f(name: &'static str, kind: Kind, env: &'static str, usage: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        env,
        usage,
        difference: "",
    }
}

const fn d(
    name: &'static str,
    kind: Kind,
    env: &'static str,
    usage: &'static str,
    difference: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        env,
        usage,
        difference,
    }
}

/// Flag names, so code never spells them twice.
pub mod name {
    #![allow(missing_docs)]
    pub const ACCESS_KEY: &str = "amazonec2-access-key";
    pub const SECRET_KEY: &str = "amazonec2-secret-key";
    pub const SESSION_TOKEN: &str = "amazonec2-session-token";
    pub const AMI: &str = "amazonec2-ami";
    pub const REGION: &str = "amazonec2-region";
    pub const VPC_ID: &str = "amazonec2-vpc-id";
    pub const ZONE: &str = "amazonec2-zone";
    pub const SUBNET_ID: &str = "amazonec2-subnet-id";
    pub const SECURITY_GROUP_READONLY: &str = "amazonec2-security-group-readonly";
    pub const SECURITY_GROUP: &str = "amazonec2-security-group";
    pub const OPEN_PORT: &str = "amazonec2-open-port";
    pub const TAGS: &str = "amazonec2-tags";
    pub const INSTANCE_TYPE: &str = "amazonec2-instance-type";
    pub const DEVICE_NAME: &str = "amazonec2-device-name";
    pub const ROOT_SIZE: &str = "amazonec2-root-size";
    pub const VOLUME_TYPE: &str = "amazonec2-volume-type";
    pub const IAM_INSTANCE_PROFILE: &str = "amazonec2-iam-instance-profile";
    pub const SSH_PORT: &str = "amazonec2-ssh-port";
    pub const SSH_USER: &str = "amazonec2-ssh-user";
    pub const REQUEST_SPOT_INSTANCE: &str = "amazonec2-request-spot-instance";
    pub const SPOT_PRICE: &str = "amazonec2-spot-price";
    pub const BLOCK_DURATION_MINUTES: &str = "amazonec2-block-duration-minutes";
    pub const PRIVATE_ADDRESS_ONLY: &str = "amazonec2-private-address-only";
    pub const USE_PRIVATE_ADDRESS: &str = "amazonec2-use-private-address";
    pub const MONITORING: &str = "amazonec2-monitoring";
    pub const USE_EBS_OPTIMIZED_INSTANCE: &str = "amazonec2-use-ebs-optimized-instance";
    pub const SSH_KEYPATH: &str = "amazonec2-ssh-keypath";
    pub const KEYPAIR_NAME: &str = "amazonec2-keypair-name";
    pub const RETRIES: &str = "amazonec2-retries";
    pub const ENDPOINT: &str = "amazonec2-endpoint";
    pub const INSECURE_TRANSPORT: &str = "amazonec2-insecure-transport";
    pub const USERDATA: &str = "amazonec2-userdata";
    pub const METADATA_TOKEN: &str = "amazonec2-metadata-token";
    pub const METADATA_TOKEN_HOP_LIMIT: &str = "amazonec2-metadata-token-response-hop-limit";
    pub const VOLUME_ENCRYPTED: &str = "amazonec2-volume-encrypted";
    pub const VOLUME_KMS_KEY: &str = "amazonec2-volume-kms-key";
    pub const SPOT_FALLBACK_ON_DEMAND: &str = "amazonec2-spot-fallback-on-demand";
    pub const SPOT_ALLOCATION_STRATEGY: &str = "amazonec2-spot-allocation-strategy";
    pub const UBUNTU_RELEASE: &str = "amazonec2-ubuntu-release";
    pub const TLS_BOOTSTRAP: &str = "amazonec2-tls-bootstrap";
    pub const DOCKER_VERSION: &str = "amazonec2-docker-version";
    pub const AMI_OS: &str = "amazonec2-ami-os";
    pub const USE_BAKED_IMAGE: &str = "amazonec2-use-baked-image";
}

use Kind::{Bool, Int, String as Str, StringSlice};
use name::*;

/// Every create flag, in the order `GetCreateFlags` announces them.
pub const FLAGS: &[FlagSpec] = &[
    f(ACCESS_KEY, Str(""), "AWS_ACCESS_KEY_ID", "AWS Access Key"),
    f(
        SECRET_KEY,
        Str(""),
        "AWS_SECRET_ACCESS_KEY",
        "AWS Secret Key",
    ),
    f(
        SESSION_TOKEN,
        Str(""),
        "AWS_SESSION_TOKEN",
        "AWS Session Token",
    ),
    d(
        AMI,
        Str(""),
        "AWS_AMI",
        "AWS machine image",
        "empty = the newest build of Canonical's Ubuntu LTS release `amazonec2-ubuntu-release` \
         for the instance type's architecture, looked up at create time (amazonec2: a 2018 \
         Ubuntu 16.04 table)",
    ),
    d(
        REGION,
        Str("us-east-1"),
        "AWS_DEFAULT_REGION",
        "AWS region",
        "any region name is accepted (amazonec2: only the 19 regions it knew in 2019)",
    ),
    f(VPC_ID, Str(""), "AWS_VPC_ID", "AWS VPC id"),
    d(
        ZONE,
        Str(""),
        "AWS_ZONE",
        "AWS zone for instance (i.e. a,b,c,d,e)",
        "default empty: the subnet's own zone, or `a` without a subnet (amazonec2: `a`, which \
         had to be changed by hand to match the subnet); full zone names and comma-separated \
         lists are accepted",
    ),
    d(
        SUBNET_ID,
        Str(""),
        "AWS_SUBNET_ID",
        "AWS VPC subnet id",
        "a comma-separated list spreads launches over the subnets' zones (one VPC)",
    ),
    f(
        SECURITY_GROUP_READONLY,
        Bool,
        "AWS_SECURITY_GROUP_READONLY",
        "Skip adding default rules to security groups",
    ),
    f(
        SECURITY_GROUP,
        StringSlice(&["docker-machine"]),
        "AWS_SECURITY_GROUP",
        "AWS VPC security group",
    ),
    f(
        OPEN_PORT,
        StringSlice(&[]),
        "",
        "Make the specified port number accessible from the Internet",
    ),
    d(
        TAGS,
        Str(""),
        "AWS_TAGS",
        "AWS Tags (e.g. key1,value1,key2,value2)",
        "applied at launch to the instance, its volumes and network interface; an odd list is \
         an error (amazonec2: tagged only the instance, after launch, dropping an odd element)",
    ),
    d(
        INSTANCE_TYPE,
        Str("t3.micro"),
        "AWS_INSTANCE_TYPE",
        "AWS instance type",
        "default t3.micro (amazonec2: t2.micro); a comma-separated list of interchangeable \
         types of one architecture launches in whichever has spot capacity",
    ),
    f(
        DEVICE_NAME,
        Str("/dev/sda1"),
        "AWS_DEVICE_NAME",
        "AWS root device name",
    ),
    f(
        ROOT_SIZE,
        Int(16),
        "AWS_ROOT_SIZE",
        "AWS root disk size (in GB)",
    ),
    d(
        VOLUME_TYPE,
        Str("gp3"),
        "AWS_VOLUME_TYPE",
        "Amazon EBS volume type",
        "default gp3: faster and 20% cheaper than gp2 (amazonec2: gp2)",
    ),
    f(
        IAM_INSTANCE_PROFILE,
        Str(""),
        "AWS_INSTANCE_PROFILE",
        "AWS IAM Instance Profile",
    ),
    f(SSH_PORT, Int(22), "AWS_SSH_PORT", "SSH port"),
    f(SSH_USER, Str("ubuntu"), "AWS_SSH_USER", "SSH username"),
    d(
        REQUEST_SPOT_INSTANCE,
        Bool,
        "",
        "Set this flag to request spot instance",
        "one RunInstances call with spot market options that fails at once when there is no \
         capacity (amazonec2: RequestSpotInstances and a 10-minute wait)",
    ),
    d(
        SPOT_PRICE,
        Str(""),
        "",
        "AWS spot instance bid price (in dollar)",
        "default empty = no maximum price: you pay the spot price, never more than on-demand \
         (amazonec2: 0.50)",
    ),
    d(
        BLOCK_DURATION_MINUTES,
        Int(0),
        "",
        "AWS spot instance duration in minutes (60, 120, 180, 240, 300, or 360)",
        "a value above 0 is refused: AWS retired spot blocks",
    ),
    f(
        PRIVATE_ADDRESS_ONLY,
        Bool,
        "",
        "Only use a private IP address",
    ),
    f(
        USE_PRIVATE_ADDRESS,
        Bool,
        "",
        "Force the usage of private IP address",
    ),
    f(
        MONITORING,
        Bool,
        "",
        "Set this flag to enable CloudWatch monitoring",
    ),
    f(
        USE_EBS_OPTIMIZED_INSTANCE,
        Bool,
        "",
        "Create an EBS optimized instance",
    ),
    f(
        SSH_KEYPATH,
        Str(""),
        "AWS_SSH_KEYPATH",
        "SSH Key for Instance",
    ),
    f(
        KEYPAIR_NAME,
        Str(""),
        "AWS_KEYPAIR_NAME",
        "AWS keypair to use; requires --amazonec2-ssh-keypath",
    ),
    d(
        RETRIES,
        Int(5),
        "",
        "Set retry count for recoverable failures (use -1 to disable)",
        "retries of throttled or failed AWS calls with backoff; -1 really disables retries \
         (amazonec2: -1 meant 3 retries)",
    ),
    f(
        ENDPOINT,
        Str(""),
        "AWS_ENDPOINT",
        "Optional endpoint URL (hostname only or fully qualified URI)",
    ),
    f(
        INSECURE_TRANSPORT,
        Bool,
        "AWS_INSECURE_TRANSPORT",
        "Disable SSL when sending requests",
    ),
    f(
        USERDATA,
        Str(""),
        "AWS_USERDATA",
        "path to file with cloud-init user data",
    ),
    d(
        METADATA_TOKEN,
        Str("required"),
        "AWS_METADATA_TOKEN",
        "Whether the metadata token is required or optional",
        "default required (IMDSv2 only); GitLab's fork flag, absent upstream (IMDSv1 open)",
    ),
    d(
        METADATA_TOKEN_HOP_LIMIT,
        Int(2),
        "AWS_METADATA_TOKEN_RESPONSE_HOP_LIMIT",
        "The number of network hops that the metadata token can travel",
        "default 2, so containers on the machine reach the metadata service; GitLab's fork flag",
    ),
    f(
        VOLUME_ENCRYPTED,
        Bool,
        "AWS_VOLUME_ENCRYPTED",
        "Encrypt the root EBS volume",
    ),
    f(
        VOLUME_KMS_KEY,
        Str(""),
        "AWS_VOLUME_KMS_KEY",
        "KMS key (id, alias or ARN) to encrypt the root EBS volume with",
    ),
    d(
        SPOT_FALLBACK_ON_DEMAND,
        Bool,
        "AWS_SPOT_FALLBACK_ON_DEMAND",
        "Launch on-demand when no spot pool has capacity",
        "new: ec2spot only",
    ),
    d(
        SPOT_ALLOCATION_STRATEGY,
        Str("price-capacity-optimized"),
        "AWS_SPOT_ALLOCATION_STRATEGY",
        "Spot allocation strategy over several instance types or subnets \
         (price-capacity-optimized, capacity-optimized, lowest-price, diversified, or \
         capacity-optimized-prioritized: the order of --amazonec2-instance-type is the \
         priority, first highest, also for the on-demand fallback)",
        "new: ec2spot only",
    ),
    d(
        UBUNTU_RELEASE,
        Str(PINNED_RELEASE),
        "AWS_UBUNTU_RELEASE",
        "Ubuntu LTS release (YY.04) of the default image when --amazonec2-ami is empty",
        "new: ec2spot only; the default moves only with a release of ec2spot",
    ),
    d(
        TLS_BOOTSTRAP,
        Bool,
        "AWS_TLS_BOOTSTRAP",
        "Deliver docker-machine's TLS certificates and Docker daemon drop-in in the user data \
         (cloud-init), so GitLab's docker-machine fork skips SSH provisioning",
        "new: ec2spot only; takes effect with GitLab's docker-machine fork (TLS bootstrap), \
         other docker-machines provision over SSH as usual",
    ),
    d(
        DOCKER_VERSION,
        Str(""),
        "AWS_DOCKER_VERSION",
        "Docker version the TLS bootstrap installs from the image's package archive (a prefix \
         of the package version, e.g. 26.1.3 or 20.10); empty: whatever the archive serves",
        "new: ec2spot only; used by --amazonec2-tls-bootstrap",
    ),
    d(
        AMI_OS,
        Str(""),
        "AWS_AMI_OS",
        "Operating system of --amazonec2-ami (ubuntu, debian, amazonlinux, rhel, fedora, suse, \
         other-systemd, alpine, bottlerocket, flatcar, windows): lets --amazonec2-tls-bootstrap \
         refuse an image it cannot start Docker on before any AWS call; empty: not said",
        "new: ec2spot only",
    ),
    d(
        USE_BAKED_IMAGE,
        Bool,
        "AWS_USE_BAKED_IMAGE",
        "Launch the newest image `docker-machine-driver-ec2spot image build` baked from the \
         image this create would launch (with the same --amazonec2-docker-version), if there \
         is one",
        "new: ec2spot only",
    ),
];

/// Looks a flag up by name.
pub fn spec(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|s| s.name == name)
}

/// Every flag at its default (bool flags false): the values of a create given no option.
pub fn defaults() -> OptionValues {
    let mut values = OptionValues::default();
    for s in FLAGS {
        let value = match s.kind {
            Kind::String(v) => OptionValue::String(v.into()),
            Kind::Int(v) => OptionValue::Int(v),
            Kind::Bool => OptionValue::Bool(false),
            Kind::StringSlice(v) => {
                OptionValue::StringSlice(v.iter().map(|s| s.to_string()).collect())
            }
        };
        values.insert(s.name, value);
    }
    values
}

/// The README's option table (Markdown), generated from [`FLAGS`] so it cannot drift.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Option | Type | Default | Env | Description | Difference from amazonec2 |\n|---|---|---|---|---|---|\n",
    );
    for s in FLAGS {
        let (ty, default) = match s.kind {
            Kind::String(v) => (
                "string",
                if v.is_empty() {
                    String::new()
                } else {
                    format!("`{v}`")
                },
            ),
            Kind::Int(v) => ("int", format!("`{v}`")),
            Kind::Bool => ("bool", "`false`".to_string()),
            Kind::StringSlice(v) => (
                "list",
                v.iter()
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let env = if s.env.is_empty() {
            String::new()
        } else {
            format!("`{}`", s.env)
        };
        out.push_str(&format!(
            "| `--{}` | {ty} | {default} | {env} | {} | {} |\n",
            s.name,
            s.usage.replace('|', "\\|"),
            s.difference.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for s in FLAGS {
            assert!(s.name.starts_with("amazonec2-"), "{}", s.name);
            assert!(seen.insert(s.name), "duplicate {}", s.name);
            assert!(!s.usage.is_empty());
        }
        assert_eq!(FLAGS.len(), 43);
    }
}
