//! Launching over several pools: one EC2 Fleet `instant` request (target capacity 1) over
//! every instance type × subnet, with a launch template of ours that is tagged at creation and
//! deleted as soon as the fleet call returns (a killed create's template is found by its tag).

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
    FleetOnDemandAllocationStrategy, FleetType, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest,
    OnDemandOptionsRequest, RequestLaunchTemplateData, ResourceType, SpotAllocationStrategy,
    SpotInstanceInterruptionBehavior, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest, VolumeType,
};

use super::capacity::{PoolFailure, is_capacity};
use super::config::Config;
use super::error::{Error, Result, aws};
use super::launch::{Launch, Market};
use super::resolve::Pool;
use super::tags;

/// A fleet launch that produced an instance.
#[derive(Debug, Clone)]
pub struct Launched {
    /// Instance id.
    pub instance_id: String,
    /// The pool it landed in.
    pub pool: Pool,
    /// The fleet id.
    pub fleet_id: String,
}

fn tags_of(list: &[(String, String)]) -> Vec<Tag> {
    list.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The launch template data: everything `RunInstances` would carry except type, subnet and
/// market, which the fleet sets per pool.
fn template_data(config: &Config, launch: &Launch) -> RequestLaunchTemplateData {
    let mut ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
        .volume_size(config.root_size as i32)
        .volume_type(VolumeType::from(config.volume_type.as_str()))
        .delete_on_termination(true);
    if config.volume_encrypted {
        ebs = ebs.encrypted(true);
        if !config.volume_kms_key.is_empty() {
            ebs = ebs.kms_key_id(&config.volume_kms_key);
        }
    }
    let nic = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
        .device_index(0)
        .set_groups((!launch.group_ids.is_empty()).then(|| launch.group_ids.clone()))
        .associate_public_ip_address(!config.private_ip_only)
        .delete_on_termination(true)
        .build();
    let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
        .http_tokens(if config.metadata_token == "optional" {
            LaunchTemplateHttpTokensState::Optional
        } else {
            LaunchTemplateHttpTokensState::Required
        })
        .http_put_response_hop_limit(config.metadata_token_response_hop_limit as i32)
        .build();
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&launch.ami)
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&config.device_name)
                .ebs(ebs.build())
                .build(),
        )
        .network_interfaces(nic)
        .metadata_options(metadata)
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder()
                .enabled(config.monitoring)
                .build(),
        );
    for resource in [
        ResourceType::Instance,
        ResourceType::Volume,
        ResourceType::NetworkInterface,
    ] {
        data = data.tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(resource)
                .set_tags(Some(tags_of(&launch.tags)))
                .build(),
        );
    }
    if !launch.key_name.is_empty() {
        data = data.key_name(&launch.key_name);
    }
    if config.use_ebs_optimized_instance {
        data = data.ebs_optimized(true);
    }
    if !config.iam_instance_profile.is_empty() {
        let p = &config.iam_instance_profile;
        let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        data = data.iam_instance_profile(if p.starts_with("arn:") {
            spec.arn(p).build()
        } else {
            spec.name(p).build()
        });
    }
    if let Some(ud) = &launch.user_data {
        use base64::Engine;
        data = data.user_data(base64::engine::general_purpose::STANDARD.encode(ud));
    }
    data.build()
}

/// The launch template's name for a machine.
pub fn template_name(machine_id: &str) -> String {
    format!("ec2spot-{machine_id}")
}

/// Makes the machine's launch template, tagged as the machine's. A template an earlier
/// attempt of this create left (its agent died) is used as it is: the fleet request that
/// attempt may have sent carries the same idempotency token, and EC2 answers a token reused
/// with another template with `IdempotentParameterMismatch`
/// (https://docs.aws.amazon.com/AWSEC2/latest/devguide/ec2-api-idempotency.html). Returns its id.
pub async fn create_template(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    launch: &Launch,
    ownership: &[(String, String)],
) -> Result<String> {
    let name = template_name(&config.machine_id);
    let created = ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(template_data(config, launch))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(tags_of(ownership)))
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(out) => Ok(out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .unwrap_or_default()
            .to_string()),
        Err(e) => {
            let e = aws("creating the launch template (CreateLaunchTemplate)", e);
            if e.code() != Some("InvalidLaunchTemplateName.AlreadyExistsException") {
                return Err(e);
            }
            let found = find_templates_by_machine_id(ec2, &config.machine_id).await?;
            found.into_iter().next().ok_or(e)
        }
    }
}

/// Launches one instance over `pools` on `launch.market` with the template `template_id`.
/// `Ok(Err(failures))` when every pool failed for capacity reasons; other failures are errors.
pub async fn launch(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    launch: &Launch,
    pools: &[Pool],
    template_id: &str,
) -> Result<std::result::Result<Launched, Vec<PoolFailure>>> {
    create_fleet(ec2, config, launch, pools, template_id).await
}

/// Whether the user ranked the instance types (`capacity-optimized-prioritized`).
fn prioritized(config: &Config) -> bool {
    config.spot_allocation_strategy == "capacity-optimized-prioritized"
}

/// Each pool's override priority: with `capacity-optimized-prioritized`, the position of its
/// instance type in `amazonec2-instance-type` (1 for the first; every subnet of a type shares
/// it), else none. EC2: "The lower the number, the higher the priority"; spot capacity comes
/// first and priorities are honoured on a best-effort basis, and the on-demand fallback's
/// `prioritized` strategy follows them strictly
/// (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-fleet-allocation-strategy.html>,
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_FleetLaunchTemplateOverridesRequest.html>).
fn priorities(config: &Config, pools: &[Pool]) -> Vec<Option<f64>> {
    if !prioritized(config) {
        return vec![None; pools.len()];
    }
    let types = super::resolve::instance_types(config);
    pools
        .iter()
        .map(|p| {
            let rank = types
                .iter()
                .position(|t| *t == p.instance_type)
                .unwrap_or(types.len());
            Some((rank + 1) as f64)
        })
        .collect()
}

async fn create_fleet(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    launch: &Launch,
    pools: &[Pool],
    template_id: &str,
) -> Result<std::result::Result<Launched, Vec<PoolFailure>>> {
    let spot = launch.market == Market::Spot;
    let priorities = priorities(config, pools);
    let overrides: Vec<FleetLaunchTemplateOverridesRequest> = pools
        .iter()
        .zip(&priorities)
        .map(|(p, priority)| {
            let o = FleetLaunchTemplateOverridesRequest::builder()
                .instance_type(p.instance_type.as_str().into())
                .subnet_id(&p.subnet_id)
                .set_priority(*priority);
            if spot && !config.spot_price.is_empty() {
                o.max_price(&config.spot_price).build()
            } else {
                o.build()
            }
        })
        .collect();
    let capacity = TargetCapacitySpecificationRequest::builder().total_target_capacity(1);
    let capacity = if spot {
        capacity
            .default_target_capacity_type(DefaultTargetCapacityType::Spot)
            .spot_target_capacity(1)
    } else {
        capacity
            .default_target_capacity_type(DefaultTargetCapacityType::OnDemand)
            .on_demand_target_capacity(1)
    };
    let mut req = ec2
        .create_fleet()
        .r#type(FleetType::Instant)
        .client_token(&launch.client_token)
        .target_capacity_specification(capacity.build())
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_id(template_id)
                        .version("$Latest")
                        .build(),
                )
                .set_overrides(Some(overrides))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Fleet)
                .set_tags(Some(tags_of(&launch.tags)))
                .build(),
        );
    if spot {
        req = req.spot_options(
            SpotOptionsRequest::builder()
                .allocation_strategy(SpotAllocationStrategy::from(
                    config.spot_allocation_strategy.as_str(),
                ))
                .instance_interruption_behavior(SpotInstanceInterruptionBehavior::Terminate)
                .build(),
        );
    } else {
        req = req.on_demand_options(
            OnDemandOptionsRequest::builder()
                .allocation_strategy(if prioritized(config) {
                    FleetOnDemandAllocationStrategy::Prioritized
                } else {
                    FleetOnDemandAllocationStrategy::LowestPrice
                })
                .build(),
        );
    }
    let out = req.send().await.map_err(|e| {
        aws(
            &format!(
                "launching {} over {} pools (CreateFleet)",
                launch.market.as_str(),
                pools.len()
            ),
            e,
        )
    })?;
    let fleet_id = out.fleet_id().unwrap_or_default().to_string();
    for inst in out.instances() {
        if let Some(id) = inst.instance_ids().first() {
            let o = inst
                .launch_template_and_overrides()
                .and_then(|l| l.overrides());
            let subnet = o.and_then(|o| o.subnet_id()).unwrap_or_default();
            let itype = inst
                .instance_type()
                .map(|t| t.as_str())
                .or(o.and_then(|o| o.instance_type()).map(|t| t.as_str()))
                .unwrap_or_default();
            let pool = pools
                .iter()
                .find(|p| p.subnet_id == subnet && p.instance_type == itype)
                .cloned()
                .unwrap_or_else(|| Pool {
                    instance_type: itype.to_string(),
                    subnet_id: subnet.to_string(),
                    availability_zone: String::new(),
                });
            return Ok(Ok(Launched {
                instance_id: id.clone(),
                pool,
                fleet_id,
            }));
        }
    }
    let failures: Vec<PoolFailure> = out
        .errors()
        .iter()
        .map(|e| {
            let o = e
                .launch_template_and_overrides()
                .and_then(|l| l.overrides());
            let subnet = o.and_then(|o| o.subnet_id()).unwrap_or_default();
            let itype = o
                .and_then(|o| o.instance_type())
                .map(|t| t.as_str())
                .unwrap_or_default();
            let pool = pools
                .iter()
                .find(|p| p.subnet_id == subnet && p.instance_type == itype)
                .cloned()
                .unwrap_or_else(|| Pool {
                    instance_type: itype.to_string(),
                    subnet_id: subnet.to_string(),
                    availability_zone: String::new(),
                });
            PoolFailure {
                pool,
                code: e.error_code().unwrap_or("Unknown").to_string(),
                message: e.error_message().unwrap_or("").to_string(),
            }
        })
        .collect();
    if !failures.is_empty() && failures.iter().all(|f| is_capacity(&f.code)) {
        return Ok(Err(failures));
    }
    if failures.is_empty() {
        return Err(Error::Other(format!(
            "CreateFleet {fleet_id} launched nothing and reported no error"
        )));
    }
    let first = &failures[0];
    Err(Error::Aws {
        step: format!(
            "launching {} over {} pools (CreateFleet)",
            launch.market.as_str(),
            pools.len()
        ),
        code: first.code.clone(),
        message: super::capacity::describe(&failures),
    })
}

/// Deletes launch template `id` (missing counts as deleted).
pub async fn delete_template(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<()> {
    match ec2
        .delete_launch_template()
        .launch_template_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws("deleting the launch template (DeleteLaunchTemplate)", e);
            if e.is_code(&[
                "InvalidLaunchTemplateId.NotFound",
                "InvalidLaunchTemplateName.NotFoundException",
            ]) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Launch templates carrying the machine's ownership tag (left by a killed create).
pub async fn find_templates_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_launch_templates()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", tags::MACHINE_ID))
                .values(machine_id)
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the machine's launch templates by tag (DescribeLaunchTemplates)",
                e,
            )
        })?;
    Ok(out
        .launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_id().map(str::to_string))
        .collect())
}
