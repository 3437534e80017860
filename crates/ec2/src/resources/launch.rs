//! One launch: what it needs besides the machine's options ([`Launch`]: image, pool, groups,
//! key pair, user data, market, idempotency token), and what a `RunInstances` call and a
//! launch template both say about the instance ([`InstanceSettings`]: root volume, network
//! interface, metadata options, monitoring, instance profile, …), decided here once; the two
//! requests only copy it into their own types
//! ([`run_instances`](super::run_instances), [`launch_template`](super::launch_template)).

use base64::Engine;

use crate::aws::error::ErrorKind;
use crate::options::Asked;

/// Which market to launch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// One-time spot instance, terminated on interruption.
    Spot,
    /// On-demand.
    OnDemand,
}

impl Market {
    /// The name stored in config and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::OnDemand => "on-demand",
        }
    }
}

/// Everything one launch needs besides the config's own settings.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Image id.
    pub ami: String,
    /// Instance type.
    pub instance_type: String,
    /// Subnet id.
    pub subnet_id: String,
    /// Security group ids.
    pub group_ids: Vec<String>,
    /// Key pair name ("" = none).
    pub key_name: String,
    /// Raw user data (base64-encoded for the request).
    pub user_data: Option<Vec<u8>>,
    /// Tags for instance, volumes, network interface (and spot request).
    pub tags: Vec<(String, String)>,
    /// Market.
    pub market: Market,
    /// Idempotency token.
    pub client_token: String,
    /// The "not found" kinds that mean "made moments ago, EC2 does not see it yet" for what
    /// this launch names (the key pair, groups or template its create just made): the launch
    /// is tried again on them (`aws::consistency`).
    pub not_yet: Vec<ErrorKind>,
}

/// The instance settings of one launch, whatever request carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    /// Image id.
    pub image_id: String,
    /// The root volume's device name (`amazonec2-device-name`).
    pub device_name: String,
    /// Root volume size in GiB (`amazonec2-root-size`).
    pub volume_size: i32,
    /// Root volume type (`amazonec2-volume-type`).
    pub volume_type: String,
    /// Encrypted root volume (GitLab's fork's `amazonec2-volume-encrypted`), with the KMS key
    /// when one is given (`amazonec2-volume-kms-key`).
    pub encryption: Option<Option<String>>,
    /// Security groups of the network interface (none given: the VPC's default).
    pub groups: Option<Vec<String>>,
    /// A public address on the interface (not `amazonec2-private-address-only`).
    pub public_ip: bool,
    /// IMDSv2 tokens required (`amazonec2-metadata-token` other than `optional`).
    pub tokens_required: bool,
    /// IMDS PUT response hop limit (`amazonec2-metadata-token-response-hop-limit`).
    pub hop_limit: i32,
    /// Detailed monitoring (`amazonec2-monitoring`).
    pub monitoring: bool,
    /// EBS-optimised (`amazonec2-use-ebs-optimized-instance`).
    pub ebs_optimized: bool,
    /// Key pair name, if any.
    pub key_name: Option<String>,
    /// The instance profile (`amazonec2-iam-instance-profile`), by ARN or by name.
    pub profile: Option<Profile>,
    /// User data, base64-encoded as both calls take it.
    pub user_data: Option<String>,
    /// Tags for the instance, its volumes and its network interface.
    pub tags: Vec<(String, String)>,
}

/// An instance profile as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// Given as an ARN (`arn:…`).
    Arn(String),
    /// Given by name.
    Name(String),
}

impl InstanceSettings {
    /// The settings of `launch` with `config`'s options.
    pub fn new(asked: &Asked, launch: &Launch) -> Self {
        let profile = &asked.iam_instance_profile;
        InstanceSettings {
            image_id: launch.ami.clone(),
            device_name: asked.device_name.clone(),
            volume_size: asked.root_size as i32,
            volume_type: asked.volume_type.clone(),
            encryption: asked
                .volume_encrypted
                .then(|| (!asked.volume_kms_key.is_empty()).then(|| asked.volume_kms_key.clone())),
            groups: (!launch.group_ids.is_empty()).then(|| launch.group_ids.clone()),
            public_ip: !asked.private_ip_only,
            tokens_required: asked.metadata_token != "optional",
            hop_limit: asked.metadata_token_response_hop_limit as i32,
            monitoring: asked.monitoring,
            ebs_optimized: asked.use_ebs_optimized_instance,
            key_name: (!launch.key_name.is_empty()).then(|| launch.key_name.clone()),
            profile: if profile.is_empty() {
                None
            } else if profile.starts_with("arn:") {
                Some(Profile::Arn(profile.clone()))
            } else {
                Some(Profile::Name(profile.clone()))
            },
            user_data: launch
                .user_data
                .as_ref()
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
            tags: launch.tags.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            ami: "ami-1".into(),
            instance_type: "t3.micro".into(),
            subnet_id: "subnet-1".into(),
            group_ids: Vec::new(),
            key_name: String::new(),
            user_data: Some(b"#!/bin/sh\n".to_vec()),
            tags: vec![("k".into(), "v".into())],
            market: Market::Spot,
            client_token: "t".into(),
            not_yet: Vec::new(),
        }
    }

    #[test]
    fn options_decide_each_setting_once() {
        let mut asked = Asked {
            root_size: 16,
            metadata_token: "optional".into(),
            iam_instance_profile: "arn:aws:iam::1:instance-profile/p".into(),
            volume_encrypted: true,
            ..Asked::default()
        };
        let s = InstanceSettings::new(&asked, &launch());
        assert_eq!(s.volume_size, 16);
        assert!(!s.tokens_required);
        assert_eq!(s.encryption, Some(None));
        assert_eq!(s.groups, None);
        assert_eq!(s.key_name, None);
        assert_eq!(
            s.profile,
            Some(Profile::Arn("arn:aws:iam::1:instance-profile/p".into()))
        );
        assert_eq!(s.user_data.as_deref(), Some("IyEvYmluL3NoCg=="));
        asked.metadata_token = "required".into();
        asked.iam_instance_profile = "p".into();
        asked.volume_kms_key = "key".into();
        let s = InstanceSettings::new(&asked, &launch());
        assert!(s.tokens_required);
        assert_eq!(s.profile, Some(Profile::Name("p".into())));
        assert_eq!(s.encryption, Some(Some("key".into())));
    }
}
