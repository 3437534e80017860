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
use crate::options::Asked;
use crate::resources::launch::{InstanceSettings, Launch, Market, Profile};
use crate::tags::tag_spec;

/// The idempotency token of a machine's launch on `market`: the same machine id gives the
/// same token, so a retried `RunInstances` returns the first call's instance.
pub fn client_token(machine_id: &str, market: Market) -> String {
    format!("ec2spot-{machine_id}-{}", market.as_str())
}

/// The `RunInstances` request for `launch` with `config`'s settings.
pub fn request(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let s = InstanceSettings::new(asked, launch);
    let mut ebs = EbsBlockDevice::builder()
        .volume_size(s.volume_size)
        .volume_type(VolumeType::from(s.volume_type.as_str()))
        .delete_on_termination(true);
    if let Some(kms) = &s.encryption {
        ebs = ebs.encrypted(true).set_kms_key_id(kms.clone());
    }
    let nic = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&launch.subnet_id)
        .set_groups(s.groups.clone())
        .associate_public_ip_address(s.public_ip)
        .delete_on_termination(true)
        .build();
    let metadata = InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(if s.tokens_required {
            HttpTokensState::Required
        } else {
            HttpTokensState::Optional
        })
        .http_put_response_hop_limit(s.hop_limit)
        .build();
    let req = ec2
        .run_instances()
        .image_id(&s.image_id)
        .instance_type(launch.instance_type.as_str().into())
        .min_count(1)
        .max_count(1)
        .client_token(&launch.client_token)
        .network_interfaces(nic)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&s.device_name)
                .ebs(ebs.build())
                .build(),
        )
        .metadata_options(metadata)
        .monitoring(
            RunInstancesMonitoringEnabled::builder()
                .enabled(s.monitoring)
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance, &s.tags))
        .tag_specifications(tag_spec(ResourceType::Volume, &s.tags))
        .tag_specifications(tag_spec(ResourceType::NetworkInterface, &s.tags))
        .set_key_name(s.key_name.clone())
        .set_ebs_optimized(s.ebs_optimized.then_some(true))
        .set_iam_instance_profile(s.profile.as_ref().map(|p| match p {
            Profile::Arn(arn) => IamInstanceProfileSpecification::builder().arn(arn).build(),
            Profile::Name(n) => IamInstanceProfileSpecification::builder().name(n).build(),
        }))
        .set_user_data(s.user_data.clone());
    if launch.market != Market::Spot {
        return req;
    }
    let spot = SpotMarketOptions::builder()
        .spot_instance_type(SpotInstanceType::OneTime)
        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
        .set_max_price((!asked.spot_price.is_empty()).then(|| asked.spot_price.clone()));
    req.instance_market_options(
        InstanceMarketOptionsRequest::builder()
            .market_type(MarketType::Spot)
            .spot_options(spot.build())
            .build(),
    )
    .tag_specifications(tag_spec(ResourceType::SpotInstancesRequest, &s.tags))
}

/// Launches one instance; returns its id.
pub async fn run(ec2: &aws_sdk_ec2::Client, asked: &Asked, launch: &Launch) -> Result<String> {
    let out = request(ec2, asked, launch).send().await.map_err(|e| {
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
