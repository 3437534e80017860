//! The pre-create check: resolves everything a launch needs — VPC, subnet and availability
//! zone, instance type (architecture, spot support, offered in the zone), image and key pair —
//! so that a wrong option fails in seconds, naming the option, before anything is created.
//! Lookups that do not need another's answer go at once (each is a round trip from the
//! bastion): the instance types, the VPC or subnets, the zone offerings, the image and the key
//! pair in the first round; the image (by architecture) and the subnets (by VPC) in the second.
//! [`remembered`] answers from what the process remembers when it can.

use aws_sdk_ec2::types::{Filter, LocationType};

use crate::aws::error::{Error, ErrorKind, Resource, Result, aws};
pub use crate::options::Answered;
use crate::options::Asked;
use crate::options::answered::Pool;
use crate::options::error::OptionError;
use crate::options::flags::name;
use crate::resources::image;
use crate::state::context::Context;
use crate::tags;

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

/// The instance types of `config` (its list, or the single value of an older config).
pub fn instance_types(asked: &Asked) -> Vec<String> {
    if asked.instance_types.is_empty() {
        crate::options::validate::split_list(&asked.instance_type)
    } else {
        asked.instance_types.clone()
    }
}

fn subnet_ids(asked: &Asked) -> Vec<String> {
    if asked.subnet_ids.is_empty() {
        crate::options::validate::split_list(&asked.subnet_id)
    } else {
        asked.subnet_ids.clone()
    }
}

fn zones(asked: &Asked) -> Vec<String> {
    if asked.zones.is_empty() {
        crate::options::validate::split_list(&asked.zone)
    } else {
        asked.zones.clone()
    }
}

/// Resolves `config`'s options against EC2: every lookup that does not need another's answer
/// at once; errors are reported in the order the options are checked (types, network, image,
/// key pair), whichever lookup failed first.
pub async fn resolve(ec2: &aws_sdk_ec2::Client, asked: &Asked) -> Result<Answered> {
    let types = instance_types(asked);
    // Without subnets given, the zones are known before any call: their offerings go at once.
    let upfront_azs = subnet_ids(asked).is_empty().then(|| network_zones(asked));
    let machine = async {
        if asked.ami.is_empty() {
            let architecture = architecture(ec2, asked, &types).await?;
            let ami = default_image(ec2, asked, &architecture).await?;
            Ok::<_, Error>((architecture, ami, Ok(())))
        } else {
            let (architecture, image) = tokio::join!(
                architecture(ec2, asked, &types),
                check_image(ec2, &asked.ami)
            );
            let architecture = architecture?;
            let image = image.and_then(|image_arch| match image_arch {
                Some(a) if a != architecture => Err(option(
                    name::AMI,
                    format!(
                        "{} is a {a} image but --{} {} is {architecture}",
                        asked.ami,
                        name::INSTANCE_TYPE,
                        types[0]
                    ),
                )),
                _ => Ok(()),
            });
            Ok((architecture, asked.ami.clone(), image))
        }
    };
    let place = async {
        let upfront = async {
            match &upfront_azs {
                Some(azs) => offerings(ec2, &types, azs).await.map(Some),
                None => Ok(None),
            }
        };
        let (net, offered) = tokio::join!(network(ec2, asked), upfront);
        let (vpc_id, subnets) = net?;
        let offered = match offered? {
            Some(o) => o,
            None => {
                let azs: Vec<String> = subnets.iter().map(|(_, az)| az.clone()).collect();
                offerings(ec2, &types, &azs).await?
            }
        };
        Ok::<_, Error>((vpc_id, pools(&types, &subnets, &offered)?))
    };
    let (machine, place, key) = tokio::join!(machine, place, check_key_pair(ec2, asked));
    let (architecture, ami, image) = machine?;
    let (vpc_id, pools) = place?;
    image?;
    key?;
    Ok(Answered {
        vpc_id,
        pools,
        ami,
        architecture,
    })
}

/// The option set a pre-create answer depends on (the memory's key): everything [`resolve`]
/// and the TLS bootstrap's image check read, except the machine's own name and id.
pub fn option_key(asked: &Asked) -> String {
    format!(
        "{:?}",
        (
            (&asked.region, crate::aws::endpoint(asked)),
            (instance_types(asked), subnet_ids(asked), zones(asked)),
            (&asked.vpc_id, &asked.ami, &asked.ubuntu_release),
            (asked.request_spot_instance, asked.tls_bootstrap),
            (asked.existing_key, &asked.key_name),
        )
    )
}

/// The pre-create answer: from what `ctx` remembers for these options when it can (the key
/// pair named after the machine is then checked by its import), else from EC2 — and then
/// remembered. A remembered answer older than a minute is refreshed in the background.
/// Returns whether it was remembered.
pub async fn remembered(ctx: &Context, asked: &Asked) -> Result<(Answered, bool)> {
    let key = option_key(asked);
    if let Some(r) = ctx.memory.recall(&key) {
        if r.refresh {
            let (ec2, memory, asked) = (
                ctx.client.clone(),
                std::sync::Arc::clone(&ctx.memory),
                asked.clone(),
            );
            tokio::spawn(async move {
                match checked(&ec2, &asked).await {
                    Ok(fresh) => memory.remember(&key, fresh),
                    // What no longer resolves is looked up again by the next create, which
                    // then reports it.
                    Err(_) => memory.forget(&key),
                }
            });
        }
        return Ok((r.resolved, true));
    }
    let fresh = checked(&ctx.client, asked).await?;
    ctx.memory.remember(&key, fresh.clone());
    Ok((fresh, false))
}

/// [`resolve`], then the TLS bootstrap's image check when it is asked for.
async fn checked(ec2: &aws_sdk_ec2::Client, asked: &Asked) -> Result<Answered> {
    let r = resolve(ec2, asked).await?;
    if asked.tls_bootstrap {
        crate::create::tls_bootstrap::check_image(ec2, &r.ami).await?;
    }
    Ok(r)
}

/// The default Ubuntu image for `architecture` and the configured release.
async fn default_image(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    architecture: &str,
) -> Result<String> {
    let release = if asked.ubuntu_release.is_empty() {
        crate::options::flags::PINNED_RELEASE // a asked saved before the option existed
    } else {
        asked.ubuntu_release.as_str()
    };
    image::find_default(ec2, &asked.region, architecture, release).await
}

/// The zones a machine without given subnets launches in: the given ones, else the region's
/// first.
fn network_zones(asked: &Asked) -> Vec<String> {
    let wanted: Vec<String> = zones(asked)
        .iter()
        .filter_map(|z| zone_name(z, &asked.region))
        .collect();
    if wanted.is_empty() {
        vec![format!("{}a", asked.region)]
    } else {
        wanted
    }
}

/// The common architecture of the instance types; fails if a type does not exist, cannot be
/// spot, or differs in architecture from the first (one image serves them all).
async fn architecture(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    types: &[String],
) -> Result<String> {
    let not_a_type = |t: &str| {
        option(
            name::INSTANCE_TYPE,
            format!("{t} is not an instance type in {}", asked.region),
        )
    };
    let out = ec2
        .describe_instance_types()
        .set_instance_types(Some(types.iter().map(|t| t.as_str().into()).collect()))
        .send()
        .await
        .map_err(|e| {
            let e = aws("checking the instance types (DescribeInstanceTypes)", e);
            if e.is(&[ErrorKind::NotFound(Resource::InstanceType)]) {
                let odd = types
                    .iter()
                    .find(|t| e.to_string().contains(t.as_str()))
                    .unwrap_or(&types[0]);
                not_a_type(odd)
            } else {
                e
            }
        })?;
    let mut first: Option<(String, String)> = None;
    for t in types {
        let info = out
            .instance_types()
            .iter()
            .find(|i| i.instance_type().map(|x| x.as_str()) == Some(t.as_str()))
            .ok_or_else(|| not_a_type(t))?;
        if asked.request_spot_instance
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
                format!("{t} has architecture {archs:?}; only x86_64 and arm64 are supported"),
            ));
        };
        if let Some((t0, a0)) = unlike_the_first(&mut first, t, arch) {
            return Err(option(
                name::INSTANCE_TYPE,
                format!(
                    "{t} is {arch} but {t0} is {a0}: the types of one machine must share an architecture (one image)"
                ),
            ));
        }
    }
    Ok(first.map(|(_, a)| a).unwrap_or_else(|| "x86_64".into()))
}

/// The VPC and the (subnet, zone) pairs to launch in.
async fn network(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
) -> Result<(String, Vec<(String, String)>)> {
    let ids = subnet_ids(asked);
    if !ids.is_empty() {
        return given_subnets(ec2, asked, &ids).await;
    }
    let vpc = vpc(ec2, asked).await?;
    let pairs = zone_subnets(ec2, &vpc, &network_zones(asked)).await?;
    Ok((vpc, pairs))
}

/// The subnets the user gave (`amazonec2-subnet-id`): each must exist, all in one VPC (the
/// one given, if any), and in the zones given, if any.
async fn given_subnets(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    ids: &[String],
) -> Result<(String, Vec<(String, String)>)> {
    let wanted: Vec<String> = zones(asked)
        .iter()
        .filter_map(|z| zone_name(z, &asked.region))
        .collect();
    let out = ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            let e = aws("finding the subnets (DescribeSubnets)", e);
            if e.is(&[
                ErrorKind::NotFound(Resource::Subnet),
                ErrorKind::Malformed(Resource::Subnet),
            ]) {
                let odd = ids
                    .iter()
                    .find(|s| e.to_string().contains(s.as_str()))
                    .unwrap_or(&ids[0]);
                option(
                    name::SUBNET_ID,
                    format!("{odd} does not exist in {}", asked.region),
                )
            } else {
                e
            }
        })?;
    let mut vpc: Option<(String, String)> = None;
    let mut pairs = Vec::new();
    for id in ids {
        let subnet = out
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(id.as_str()))
            .ok_or_else(|| {
                option(
                    name::SUBNET_ID,
                    format!("{id} does not exist in {}", asked.region),
                )
            })?;
        let v = subnet.vpc_id().unwrap_or_default().to_string();
        let az = subnet.availability_zone().unwrap_or_default().to_string();
        check_subnet_vpc(asked, id, &v, &mut vpc)?;
        if !wanted.is_empty() && !wanted.contains(&az) {
            return Err(option(
                name::ZONE,
                format!(
                    "{} contradicts --{} {id}, which is in {az}; drop --{} (the subnets' zones are used)",
                    wanted.join(","),
                    name::SUBNET_ID,
                    name::ZONE
                ),
            ));
        }
        pairs.push((id.clone(), az));
    }
    let vpc = vpc.map(|(_, v)| v).unwrap_or_default();
    Ok((vpc, pairs))
}

/// Subnet `id` of VPC `v` is in the VPC given (if any) and in the same VPC as the subnets
/// before it (`first`: the first subnet and its VPC, set by the first call).
fn check_subnet_vpc(
    asked: &Asked,
    id: &str,
    v: &str,
    first: &mut Option<(String, String)>,
) -> Result<()> {
    if !asked.vpc_id.is_empty() && asked.vpc_id != v {
        return Err(option(
            name::SUBNET_ID,
            format!("{id} is in {v}, not in --{} {}", name::VPC_ID, asked.vpc_id),
        ));
    }
    if let Some((id0, v0)) = unlike_the_first(first, id, v) {
        return Err(option(
            name::SUBNET_ID,
            format!(
                "{id} is in {v} but {id0} is in {v0}: the subnets of one machine must share a VPC"
            ),
        ));
    }
    Ok(())
}

/// Keeps the first `(item, value)` in `first`; for a later item whose value differs, the first
/// one (what the two must share, and does not).
fn unlike_the_first<'a>(
    first: &'a mut Option<(String, String)>,
    item: &str,
    value: &str,
) -> Option<&'a (String, String)> {
    let kept = first.get_or_insert_with(|| (item.to_string(), value.to_string()));
    (kept.1 != value).then_some(kept)
}

/// The VPC to launch in: the one given (`amazonec2-vpc-id`, which must exist), or the
/// region's default VPC.
async fn vpc(ec2: &aws_sdk_ec2::Client, asked: &Asked) -> Result<String> {
    if asked.vpc_id.is_empty() {
        let out = ec2
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send()
            .await
            .map_err(|e| aws("finding the default VPC (DescribeVpcs)", e))?;
        return out
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                option(
                    name::VPC_ID,
                    format!(
                        "{} has no default VPC; give --{} or --{}",
                        asked.region,
                        name::VPC_ID,
                        name::SUBNET_ID
                    ),
                )
            });
    }
    let missing = || {
        option(
            name::VPC_ID,
            format!("{} does not exist in {}", asked.vpc_id, asked.region),
        )
    };
    let out = ec2
        .describe_vpcs()
        .vpc_ids(&asked.vpc_id)
        .send()
        .await
        .map_err(|e| {
            let e = aws("finding the VPC (DescribeVpcs)", e);
            if e.is(&[
                ErrorKind::NotFound(Resource::Vpc),
                ErrorKind::Malformed(Resource::Vpc),
            ]) {
                missing()
            } else {
                e
            }
        })?;
    if out.vpcs().is_empty() {
        return Err(missing());
    }
    Ok(asked.vpc_id.clone())
}

/// One subnet of `vpc` in each of `azs` (the zone's default subnet first, then by id).
async fn zone_subnets(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    azs: &[String],
) -> Result<Vec<(String, String)>> {
    let out = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc))
        .filters(
            Filter::builder()
                .name("availability-zone")
                .set_values(Some(azs.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws("finding subnets (DescribeSubnets)", e))?;
    let mut pairs = Vec::new();
    for az in azs {
        let mut subnets: Vec<_> = out
            .subnets()
            .iter()
            .filter(|s| s.availability_zone() == Some(az.as_str()))
            .collect();
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
        pairs.push((subnet.to_string(), az.clone()));
    }
    Ok(pairs)
}

/// The (instance type, zone) pairs EC2 offers among `types` × `azs`.
async fn offerings(
    ec2: &aws_sdk_ec2::Client,
    types: &[String],
    azs: &[String],
) -> Result<Vec<(String, String)>> {
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(
            Filter::builder()
                .name("location")
                .set_values(Some(azs.to_vec()))
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-type")
                .set_values(Some(types.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            aws(
                "checking the instance types are offered (DescribeInstanceTypeOfferings)",
                e,
            )
        })?;
    Ok(out
        .instance_type_offerings()
        .iter()
        .filter_map(|o| {
            Some((
                o.instance_type()?.as_str().to_string(),
                o.location()?.to_string(),
            ))
        })
        .collect())
}

/// Every (type, subnet) pool whose type is `offered` in the subnet's zone; an error if none is.
fn pools(
    types: &[String],
    subnets: &[(String, String)],
    offered: &[(String, String)],
) -> Result<Vec<Pool>> {
    let is_offered = |t: &str, az: &str| offered.iter().any(|(ot, oaz)| ot == t && oaz == az);
    let mut pools = Vec::new();
    for t in types {
        for (subnet, az) in subnets {
            if is_offered(t, az) {
                pools.push(Pool {
                    instance_type: t.clone(),
                    subnet_id: subnet.clone(),
                    availability_zone: az.clone(),
                });
            }
        }
    }
    if pools.is_empty() {
        let azs: Vec<&str> = subnets.iter().map(|(_, az)| az.as_str()).collect();
        return Err(option(
            name::INSTANCE_TYPE,
            format!("{} is not offered in {}", types.join(", "), azs.join(", ")),
        ));
    }
    Ok(pools)
}

/// Checks image `ami` exists; returns its architecture when EC2 names one.
async fn check_image(ec2: &aws_sdk_ec2::Client, ami: &str) -> Result<Option<String>> {
    let out = ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map_err(|e| {
            let e = aws("checking the image (DescribeImages)", e);
            if e.is(&[
                ErrorKind::NotFound(Resource::Image),
                ErrorKind::Malformed(Resource::Image),
            ]) {
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
    Ok(image.architecture().map(|a| a.as_str().to_string()))
}

async fn check_key_pair(ec2: &aws_sdk_ec2::Client, asked: &Asked) -> Result<()> {
    let key_name = if asked.existing_key {
        asked.key_name.clone()
    } else {
        asked.machine_name.clone()
    };
    let found = ec2.describe_key_pairs().key_names(&key_name).send().await;
    let pairs = match found {
        Ok(out) => out.key_pairs().to_vec(),
        Err(e) => {
            let e = aws("checking the key pair (DescribeKeyPairs)", e);
            if e.is(&[ErrorKind::NotFound(Resource::KeyPair)]) {
                Vec::new()
            } else {
                return Err(e);
            }
        }
    };
    if asked.existing_key {
        if pairs.is_empty() {
            return Err(option(
                name::KEYPAIR_NAME,
                format!("key pair {key_name} does not exist in {}", asked.region),
            ));
        }
    } else if let Some(kp) = pairs.first() {
        let ours = kp.tags().iter().any(|t| {
            t.key() == Some(tags::MACHINE_ID) && t.value() == Some(asked.machine_id.as_str())
        });
        if !ours {
            return Err(Error::Other(format!(
                "there is already a key pair named {key_name} in {}; remove it or use another machine name",
                asked.region
            )));
        }
    }
    Ok(())
}
