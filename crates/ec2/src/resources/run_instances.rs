//! The launch: one `RunInstances` call carrying everything — spot market options, tags on
//! instance, volume and network interface, IMDS settings, block device, addressing — with an
//! idempotency token so a retried call cannot launch twice.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, MarketType,
    ResourceType, RunInstancesMonitoringEnabled, SpotInstanceType, SpotMarketOptions, VolumeType,
};

use crate::aws::error::{Error, Result, aws};
use crate::options::config::Config;
use crate::tags::tag_spec;

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
    /// Raw user data (base64-encoded here).
    pub user_data: Option<Vec<u8>>,
    /// Tags for instance, volumes, network interface (and spot request).
    pub tags: Vec<(String, String)>,
    /// Market.
    pub market: Market,
    /// Idempotency token.
    pub client_token: String,
    /// The "not found" codes that mean "made moments ago, EC2 does not see it yet" for what
    /// this launch names (the key pair, groups or template its create just made): the launch
    /// is tried again on them (`aws::consistency`).
    pub not_yet: Vec<&'static str>,
}

/// The idempotency token of a machine's launch on `market`: the same machine id gives the
/// same token, so a retried `RunInstances` returns the first call's instance.
pub fn client_token(machine_id: &str, market: Market) -> String {
    format!("ec2spot-{machine_id}-{}", market.as_str())
}

/// The `RunInstances` request for `launch` with `config`'s settings.
pub fn request(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    launch: &Launch,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let mut ebs = EbsBlockDevice::builder()
        .volume_size(config.root_size as i32)
        .volume_type(VolumeType::from(config.volume_type.as_str()))
        .delete_on_termination(true);
    if config.volume_encrypted {
        ebs = ebs.encrypted(true);
        if !config.volume_kms_key.is_empty() {
            ebs = ebs.kms_key_id(&config.volume_kms_key);
        }
    }
    let nic = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&launch.subnet_id)
        .set_groups((!launch.group_ids.is_empty()).then(|| launch.group_ids.clone()))
        .associate_public_ip_address(!config.private_ip_only)
        .delete_on_termination(true)
        .build();
    let metadata = InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(if config.metadata_token == "optional" {
            HttpTokensState::Optional
        } else {
            HttpTokensState::Required
        })
        .http_put_response_hop_limit(config.metadata_token_response_hop_limit as i32)
        .build();
    let mut req = ec2
        .run_instances()
        .image_id(&launch.ami)
        .instance_type(launch.instance_type.as_str().into())
        .min_count(1)
        .max_count(1)
        .client_token(&launch.client_token)
        .network_interfaces(nic)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&config.device_name)
                .ebs(ebs.build())
                .build(),
        )
        .metadata_options(metadata)
        .monitoring(
            RunInstancesMonitoringEnabled::builder()
                .enabled(config.monitoring)
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance, &launch.tags))
        .tag_specifications(tag_spec(ResourceType::Volume, &launch.tags))
        .tag_specifications(tag_spec(ResourceType::NetworkInterface, &launch.tags));
    if !launch.key_name.is_empty() {
        req = req.key_name(&launch.key_name);
    }
    if config.use_ebs_optimized_instance {
        req = req.ebs_optimized(true);
    }
    if !config.iam_instance_profile.is_empty() {
        let p = &config.iam_instance_profile;
        let spec = if p.starts_with("arn:") {
            IamInstanceProfileSpecification::builder().arn(p).build()
        } else {
            IamInstanceProfileSpecification::builder().name(p).build()
        };
        req = req.iam_instance_profile(spec);
    }
    if let Some(data) = &launch.user_data {
        use base64::Engine;
        req = req.user_data(base64::engine::general_purpose::STANDARD.encode(data));
    }
    if launch.market == Market::Spot {
        let mut spot = SpotMarketOptions::builder()
            .spot_instance_type(SpotInstanceType::OneTime)
            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate);
        if !config.spot_price.is_empty() {
            spot = spot.max_price(&config.spot_price);
        }
        req = req
            .instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(spot.build())
                    .build(),
            )
            .tag_specifications(tag_spec(ResourceType::SpotInstancesRequest, &launch.tags));
    }
    req
}

/// Launches one instance; returns its id.
pub async fn run(ec2: &aws_sdk_ec2::Client, config: &Config, launch: &Launch) -> Result<String> {
    let out = request(ec2, config, launch).send().await.map_err(|e| {
        aws(
            &format!(
                "launching a {} {} instance (RunInstances)",
                launch.market.as_str(),
                launch.instance_type
            ),
            e,
        )
    })?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .ok_or_else(|| Error::Other("RunInstances answered without an instance".into()))
}
