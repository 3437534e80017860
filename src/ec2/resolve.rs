//! The pre-create check: resolves everything a launch needs — VPC, subnet and availability
//! zone, instance type (architecture, spot support, offered in the zone), image and key pair —
//! so that a wrong option fails in seconds, naming the option, before anything is created.

use aws_sdk_ec2::types::{Filter, LocationType};

use super::ami;
use super::config::Config;
use super::error::{Error, Result, aws};
use super::flags::name;
use super::options::OptionError;
use super::tags;

/// What a create will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// VPC id.
    pub vpc_id: String,
    /// Subnet id.
    pub subnet_id: String,
    /// Availability zone name.
    pub availability_zone: String,
    /// Image id.
    pub ami: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
}

fn option(flag: &'static str, message: String) -> Error {
    Error::Option(OptionError { flag, message })
}

fn filter(n: &str, v: &str) -> Filter {
    Filter::builder().name(n).values(v).build()
}

/// The availability zone `zone` names in `region` (`a` → `us-east-1a`), if any.
pub fn zone_name(zone: &str, region: &str) -> Option<String> {
    match zone.len() {
        0 => None,
        1 => Some(format!("{region}{zone}")),
        _ => Some(zone.to_string()),
    }
}

/// Resolves `config`'s options against EC2.
pub async fn resolve(ec2: &aws_sdk_ec2::Client, config: &Config) -> Result<Resolved> {
    let architecture = instance_type_architecture(ec2, config).await?;
    let (vpc_id, subnet_id, availability_zone) = network(ec2, config).await?;
    check_offered(ec2, &config.instance_type, &availability_zone).await?;
    let ami = if config.ami.is_empty() {
        ami::find_default(ec2, &config.region, &architecture).await?
    } else {
        check_image(ec2, &config.ami, &architecture, &config.instance_type).await?;
        config.ami.clone()
    };
    check_key_pair(ec2, config).await?;
    Ok(Resolved {
        vpc_id,
        subnet_id,
        availability_zone,
        ami,
        architecture,
    })
}

/// The instance type's architecture; fails if the type does not exist or cannot be spot.
async fn instance_type_architecture(ec2: &aws_sdk_ec2::Client, config: &Config) -> Result<String> {
    let t = &config.instance_type;
    let out = ec2
        .describe_instance_types()
        .instance_types(t.as_str().into())
        .send()
        .await
        .map_err(|e| {
            let e = aws("checking the instance type (DescribeInstanceTypes)", e);
            if e.code() == Some("InvalidInstanceType") {
                option(
                    name::INSTANCE_TYPE,
                    format!("{t} is not an instance type in {}", config.region),
                )
            } else {
                e
            }
        })?;
    let info = out.instance_types().first().ok_or_else(|| {
        option(
            name::INSTANCE_TYPE,
            format!("{t} is not an instance type in {}", config.region),
        )
    })?;
    if config.request_spot_instance
        && !info.supported_usage_classes().is_empty()
        && !info
            .supported_usage_classes()
            .iter()
            .any(|u| u.as_str() == "spot")
    {
        return Err(option(
            name::INSTANCE_TYPE,
            format!("{t} cannot be launched as a spot instance"),
        ));
    }
    let archs = info
        .processor_info()
        .map(|p| p.supported_architectures())
        .unwrap_or_default();
    let arch = if archs.iter().any(|a| a.as_str() == "arm64") {
        "arm64"
    } else if archs.iter().any(|a| a.as_str() == "x86_64") || archs.is_empty() {
        "x86_64"
    } else {
        return Err(option(
            name::INSTANCE_TYPE,
            format!(
                "{t} has architecture {:?}; only x86_64 and arm64 are supported",
                archs
            ),
        ));
    };
    Ok(arch.to_string())
}

/// VPC, subnet and availability zone.
async fn network(ec2: &aws_sdk_ec2::Client, config: &Config) -> Result<(String, String, String)> {
    let wanted_az = zone_name(&config.zone, &config.region);
    if !config.subnet_id.is_empty() {
        let out = ec2
            .describe_subnets()
            .subnet_ids(&config.subnet_id)
            .send()
            .await
            .map_err(|e| {
                let e = aws("finding the subnet (DescribeSubnets)", e);
                if e.is_not_found() {
                    option(
                        name::SUBNET_ID,
                        format!("{} does not exist in {}", config.subnet_id, config.region),
                    )
                } else {
                    e
                }
            })?;
        let subnet = out.subnets().first().ok_or_else(|| {
            option(
                name::SUBNET_ID,
                format!("{} does not exist in {}", config.subnet_id, config.region),
            )
        })?;
        let vpc = subnet.vpc_id().unwrap_or_default().to_string();
        let az = subnet.availability_zone().unwrap_or_default().to_string();
        if !config.vpc_id.is_empty() && config.vpc_id != vpc {
            return Err(option(
                name::SUBNET_ID,
                format!(
                    "{} is in {vpc}, not in --{} {}",
                    config.subnet_id,
                    name::VPC_ID,
                    config.vpc_id
                ),
            ));
        }
        if let Some(want) = wanted_az {
            if want != az {
                return Err(option(
                    name::ZONE,
                    format!(
                        "{} ({want}) contradicts --{} {}, which is in {az}; drop --{} (the subnet's zone is used)",
                        config.zone,
                        name::SUBNET_ID,
                        config.subnet_id,
                        name::ZONE
                    ),
                ));
            }
        }
        return Ok((vpc, config.subnet_id.clone(), az));
    }
    let vpc = if config.vpc_id.is_empty() {
        let out = ec2
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send()
            .await
            .map_err(|e| aws("finding the default VPC (DescribeVpcs)", e))?;
        out.vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                option(
                    name::VPC_ID,
                    format!(
                        "{} has no default VPC; give --{} or --{}",
                        config.region,
                        name::VPC_ID,
                        name::SUBNET_ID
                    ),
                )
            })?
    } else {
        let out = ec2
            .describe_vpcs()
            .vpc_ids(&config.vpc_id)
            .send()
            .await
            .map_err(|e| {
                let e = aws("finding the VPC (DescribeVpcs)", e);
                if e.is_not_found() {
                    option(
                        name::VPC_ID,
                        format!("{} does not exist in {}", config.vpc_id, config.region),
                    )
                } else {
                    e
                }
            })?;
        if out.vpcs().is_empty() {
            return Err(option(
                name::VPC_ID,
                format!("{} does not exist in {}", config.vpc_id, config.region),
            ));
        }
        config.vpc_id.clone()
    };
    let az = wanted_az.unwrap_or_else(|| format!("{}a", config.region));
    let out = ec2
        .describe_subnets()
        .filters(filter("vpc-id", &vpc))
        .filters(filter("availability-zone", &az))
        .send()
        .await
        .map_err(|e| aws("finding a subnet (DescribeSubnets)", e))?;
    let mut subnets: Vec<_> = out.subnets().iter().collect();
    subnets.sort_by_key(|s| {
        (
            !s.default_for_az().unwrap_or(false),
            s.subnet_id().unwrap_or_default().to_string(),
        )
    });
    let subnet = subnets.first().and_then(|s| s.subnet_id()).ok_or_else(|| {
        option(
            name::ZONE,
            format!(
                "VPC {vpc} has no subnet in {az}; give --{} or another --{}",
                name::SUBNET_ID,
                name::ZONE
            ),
        )
    })?;
    Ok((vpc, subnet.to_string(), az))
}

async fn check_offered(ec2: &aws_sdk_ec2::Client, instance_type: &str, az: &str) -> Result<()> {
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(filter("location", az))
        .filters(filter("instance-type", instance_type))
        .send()
        .await
        .map_err(|e| {
            aws(
                "checking the instance type is offered (DescribeInstanceTypeOfferings)",
                e,
            )
        })?;
    if out.instance_type_offerings().is_empty() {
        return Err(option(
            name::INSTANCE_TYPE,
            format!("{instance_type} is not offered in {az}"),
        ));
    }
    Ok(())
}

async fn check_image(
    ec2: &aws_sdk_ec2::Client,
    ami: &str,
    arch: &str,
    instance_type: &str,
) -> Result<()> {
    let out = ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map_err(|e| {
            let e = aws("checking the image (DescribeImages)", e);
            if e.is_not_found() || e.code() == Some("InvalidAMIID.Malformed") {
                option(
                    name::AMI,
                    format!("{ami} does not exist or is not visible to this account"),
                )
            } else {
                e
            }
        })?;
    let image = out.images().first().ok_or_else(|| {
        option(
            name::AMI,
            format!("{ami} does not exist or is not visible to this account"),
        )
    })?;
    if let Some(image_arch) = image.architecture() {
        if image_arch.as_str() != arch {
            return Err(option(
                name::AMI,
                format!(
                    "{ami} is a {} image but --{} {instance_type} is {arch}",
                    image_arch.as_str(),
                    name::INSTANCE_TYPE
                ),
            ));
        }
    }
    Ok(())
}

async fn check_key_pair(ec2: &aws_sdk_ec2::Client, config: &Config) -> Result<()> {
    let key_name = if config.existing_key {
        config.key_name.clone()
    } else {
        config.machine_name.clone()
    };
    let found = ec2.describe_key_pairs().key_names(&key_name).send().await;
    let pairs = match found {
        Ok(out) => out.key_pairs().to_vec(),
        Err(e) => {
            let e = aws("checking the key pair (DescribeKeyPairs)", e);
            if e.is_not_found() {
                Vec::new()
            } else {
                return Err(e);
            }
        }
    };
    if config.existing_key {
        if pairs.is_empty() {
            return Err(option(
                name::KEYPAIR_NAME,
                format!("key pair {key_name} does not exist in {}", config.region),
            ));
        }
    } else if let Some(kp) = pairs.first() {
        let ours = kp.tags().iter().any(|t| {
            t.key() == Some(tags::MACHINE_ID) && t.value() == Some(config.machine_id.as_str())
        });
        if !ours {
            return Err(Error::Other(format!(
                "there is already a key pair named {key_name} in {}; remove it or use another machine name",
                config.region
            )));
        }
    }
    Ok(())
}
