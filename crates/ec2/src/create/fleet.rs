//! Launching over several pools: one EC2 Fleet `instant` request (target capacity 1) over
//! every instance type × subnet, with the machine's launch template
//! ([`launch_template`](crate::resources::launch_template)), which the caller deletes as soon
//! as the fleet call returns.

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
    FleetOnDemandAllocationStrategy, FleetType, OnDemandOptionsRequest, ResourceType,
    SpotAllocationStrategy, SpotInstanceInterruptionBehavior, SpotOptionsRequest,
    TargetCapacitySpecificationRequest,
};

use aws_sdk_ec2::operation::create_fleet::CreateFleetOutput;
use aws_sdk_ec2::operation::create_fleet::builders::CreateFleetFluentBuilder;

use crate::aws::capacity::{PoolFailure, is_capacity};
use crate::aws::error::{Error, Result, aws};
use crate::options::{Asked, answered::Pool};
use crate::resources::launch::{Launch, Market};
use crate::tags::tag_spec;

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

/// Whether the user ranked the instance types (`capacity-optimized-prioritized`).
fn prioritized(asked: &Asked) -> bool {
    asked.spot_allocation_strategy == "capacity-optimized-prioritized"
}

/// Each pool's override priority: with `capacity-optimized-prioritized`, the position of its
/// instance type in `amazonec2-instance-type` (1 for the first; every subnet of a type shares
/// it), else none. EC2: "The lower the number, the higher the priority"; spot capacity comes
/// first and priorities are honoured on a best-effort basis, and the on-demand fallback's
/// `prioritized` strategy follows them strictly
/// (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-fleet-allocation-strategy.html>,
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_FleetLaunchTemplateOverridesRequest.html>).
fn priorities(asked: &Asked, pools: &[Pool]) -> Vec<Option<f64>> {
    if !prioritized(asked) {
        return vec![None; pools.len()];
    }
    let types = crate::create::resolve::instance_types(asked);
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

/// Launches one instance over `pools` on `launch.market` with the template `template_id`: one
/// `CreateFleet` (instant). `Ok(Err(failures))` when every pool failed for capacity reasons;
/// other failures are errors.
pub async fn launch(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
    pools: &[Pool],
    template_id: &str,
) -> Result<std::result::Result<Launched, Vec<PoolFailure>>> {
    let step = format!(
        "launching {} over {} pools (CreateFleet)",
        launch.market.as_str(),
        pools.len()
    );
    let out = request(ec2, asked, launch, pools, template_id)
        .send()
        .await
        .map_err(|e| aws(&step, e))?;
    let fleet_id = out.fleet_id().unwrap_or_default().to_string();
    if let Some(launched) = launched(&out, pools, &fleet_id) {
        return Ok(Ok(launched));
    }
    let failures = failures(&out, pools);
    if !failures.is_empty() && failures.iter().all(|f| is_capacity(&f.code)) {
        return Ok(Err(failures));
    }
    if failures.is_empty() {
        return Err(Error::Other(format!(
            "CreateFleet {fleet_id} launched nothing and reported no error"
        )));
    }
    Err(Error::Aws {
        step,
        code: failures[0].code.clone(),
        message: crate::aws::capacity::describe(&failures),
    })
}

/// The `CreateFleet` request: target capacity 1 on the launch's market, one override per
/// pool, the template's latest version, the fleet tagged at creation.
fn request(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
    pools: &[Pool],
    template_id: &str,
) -> CreateFleetFluentBuilder {
    let spot = launch.market == Market::Spot;
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
    let req = ec2
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
                .set_overrides(Some(overrides(asked, pools, spot)))
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Fleet, &launch.tags));
    if spot {
        req.spot_options(
            SpotOptionsRequest::builder()
                .allocation_strategy(SpotAllocationStrategy::from(
                    asked.spot_allocation_strategy.as_str(),
                ))
                .instance_interruption_behavior(SpotInstanceInterruptionBehavior::Terminate)
                .build(),
        )
    } else {
        req.on_demand_options(
            OnDemandOptionsRequest::builder()
                .allocation_strategy(if prioritized(asked) {
                    FleetOnDemandAllocationStrategy::Prioritized
                } else {
                    FleetOnDemandAllocationStrategy::LowestPrice
                })
                .build(),
        )
    }
}

/// One override per pool: its type and subnet, its priority, and the user's spot price.
fn overrides(
    asked: &Asked,
    pools: &[Pool],
    spot: bool,
) -> Vec<FleetLaunchTemplateOverridesRequest> {
    pools
        .iter()
        .zip(priorities(asked, pools))
        .map(|(p, priority)| {
            let o = FleetLaunchTemplateOverridesRequest::builder()
                .instance_type(p.instance_type.as_str().into())
                .subnet_id(&p.subnet_id)
                .set_priority(priority);
            if spot && !asked.spot_price.is_empty() {
                o.max_price(&asked.spot_price).build()
            } else {
                o.build()
            }
        })
        .collect()
}

/// The instance the fleet launched, and the pool it landed in.
fn launched(out: &CreateFleetOutput, pools: &[Pool], fleet_id: &str) -> Option<Launched> {
    out.instances().iter().find_map(|inst| {
        let id = inst.instance_ids().first()?;
        let o = inst
            .launch_template_and_overrides()
            .and_then(|l| l.overrides());
        let subnet = o.and_then(|o| o.subnet_id()).unwrap_or_default();
        let itype = inst
            .instance_type()
            .map(|t| t.as_str())
            .or(o.and_then(|o| o.instance_type()).map(|t| t.as_str()))
            .unwrap_or_default();
        Some(Launched {
            instance_id: id.clone(),
            pool: pool_of(pools, itype, subnet),
            fleet_id: fleet_id.to_string(),
        })
    })
}

/// What each pool that launched nothing answered.
fn failures(out: &CreateFleetOutput, pools: &[Pool]) -> Vec<PoolFailure> {
    out.errors()
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
            PoolFailure {
                pool: pool_of(pools, itype, subnet),
                code: e.error_code().unwrap_or("Unknown").to_string(),
                message: e.error_message().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// The pool of `pools` with this type and subnet (its zone known), or a pool of them alone.
fn pool_of(pools: &[Pool], instance_type: &str, subnet: &str) -> Pool {
    pools
        .iter()
        .find(|p| p.subnet_id == subnet && p.instance_type == instance_type)
        .cloned()
        .unwrap_or_else(|| Pool {
            instance_type: instance_type.to_string(),
            subnet_id: subnet.to_string(),
            availability_zone: String::new(),
        })
}
