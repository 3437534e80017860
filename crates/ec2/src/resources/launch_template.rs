//! The machine's launch template, made for a launch over several pools (EC2 Fleet takes its
//! instance settings from one): everything `RunInstances` would carry except type, subnet and
//! market, tagged as the machine's at creation, deleted right after the fleet call (a killed
//! create's template is found by its tag and deleted by `rm` or `gc`).

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest,
    RequestLaunchTemplateData, ResourceType, VolumeType,
};

use crate::aws::error::{Error, ErrorKind, Resource, Result, aws, unless_gone};
use crate::create_record::{self, Kind};
use crate::options::Asked;
use crate::resources::launch::{InstanceSettings, Launch, Profile};
use crate::tags::{tag_list, tag_spec};

/// The launch template data: everything `RunInstances` would carry except type, subnet and
/// market, which the fleet sets per pool.
fn template_data(asked: &Asked, launch: &Launch) -> RequestLaunchTemplateData {
    let s = InstanceSettings::new(asked, launch);
    let mut ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
        .volume_size(s.volume_size)
        .volume_type(VolumeType::from(s.volume_type.as_str()))
        .delete_on_termination(true);
    if let Some(kms) = &s.encryption {
        ebs = ebs.encrypted(true).set_kms_key_id(kms.clone());
    }
    let nic = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
        .device_index(0)
        .set_groups(s.groups.clone())
        .associate_public_ip_address(s.public_ip)
        .delete_on_termination(true)
        .build();
    let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
        .http_tokens(if s.tokens_required {
            LaunchTemplateHttpTokensState::Required
        } else {
            LaunchTemplateHttpTokensState::Optional
        })
        .http_put_response_hop_limit(s.hop_limit)
        .build();
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&s.image_id)
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&s.device_name)
                .ebs(ebs.build())
                .build(),
        )
        .network_interfaces(nic)
        .metadata_options(metadata)
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder()
                .enabled(s.monitoring)
                .build(),
        )
        .set_key_name(s.key_name.clone())
        .set_ebs_optimized(s.ebs_optimized.then_some(true))
        .set_iam_instance_profile(s.profile.as_ref().map(|p| {
            let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
            match p {
                Profile::Arn(arn) => spec.arn(arn).build(),
                Profile::Name(n) => spec.name(n).build(),
            }
        }))
        .set_user_data(s.user_data.clone());
    for resource in [
        ResourceType::Instance,
        ResourceType::Volume,
        ResourceType::NetworkInterface,
    ] {
        data = data.tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(resource)
                .set_tags(Some(tag_list(&s.tags)))
                .build(),
        );
    }
    data.build()
}

/// The launch template's name for a machine.
pub fn name(machine_id: &str) -> String {
    format!("ec2spot-{machine_id}")
}

/// Makes the machine's launch template, tagged as the machine's. A template an earlier
/// attempt of this create left (its agent died) is used as it is: the fleet request that
/// attempt may have sent carries the same idempotency token, and EC2 answers a token reused
/// with another template with `IdempotentParameterMismatch`
/// (https://docs.aws.amazon.com/AWSEC2/latest/devguide/ec2-api-idempotency.html). Returns its id.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
    ownership: &[(String, String)],
) -> Result<String> {
    let name = name(&asked.machine_id);
    create_record::note(asked, Kind::Template, None);
    let created = ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(template_data(asked, launch))
        .tag_specifications(tag_spec(ResourceType::LaunchTemplate, ownership))
        .send()
        .await
        .map_err(|e| aws("creating the launch template (CreateLaunchTemplate)", e))
        .map(|out| {
            out.launch_template()
                .and_then(|t| t.launch_template_id())
                .unwrap_or_default()
                .to_string()
        });
    create_record::settle(asked, Kind::Template, created.as_deref());
    match created {
        Ok(id) => Ok(id),
        Err(e) => {
            if !e.is(&[ErrorKind::Duplicate(Resource::TemplateName)]) {
                return Err(e);
            }
            // An earlier attempt of this create made it (maybe moments ago: listed once EC2
            // sees it).
            let found = crate::aws::consistency::retry_fresh(
                &[ErrorKind::NotFound(Resource::Template)],
                || async {
                    let found = find_by_machine_id(ec2, &asked.machine_id).await?;
                    found.into_iter().next().ok_or_else(|| Error::Aws {
                        step: "finding the launch template an earlier attempt made (DescribeLaunchTemplates)".into(),
                        code: "InvalidLaunchTemplateId.NotFound".into(),
                        message: "EC2 says it exists and does not list it yet".into(),
                    })
                },
            )
            .await;
            found.map_err(|_| e)
        }
    }
}

/// Deletes launch template `id` (missing counts as deleted).
pub async fn delete(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<()> {
    delete_within(ec2, id, std::time::Duration::ZERO).await
}

/// Deletes the template `id` this create made moments ago: "not found" is taken for "not
/// yet" (EC2's eventual consistency, `aws::consistency`) — a template deleted too early would
/// otherwise stay.
pub async fn delete_made(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<()> {
    delete_within(ec2, id, crate::aws::consistency::FRESH_PATIENCE).await
}

async fn delete_within(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    patience: std::time::Duration,
) -> Result<()> {
    let deleted = crate::aws::consistency::retry_fresh_for(
        patience,
        &[ErrorKind::NotFound(Resource::Template)],
        || async {
            ec2.delete_launch_template()
                .launch_template_id(id)
                .send()
                .await
                .map_err(|e| aws("deleting the launch template (DeleteLaunchTemplate)", e))
        },
    )
    .await;
    // Deleted already: moto answers a second deletion by id with the name's code.
    match deleted {
        Err(e) if e.is(&[ErrorKind::NotFound(Resource::TemplateName)]) => Ok(()),
        deleted => unless_gone(deleted, Resource::Template).map(drop),
    }
}

/// Launch templates carrying the machine's ownership tag (left by a killed create).
pub async fn find_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_launch_templates()
        .filters(crate::tags::machine(machine_id))
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
