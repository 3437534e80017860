//! Reading an instance: describe it (by id or by our ownership tag), pick the address SSH and
//! Docker use, and read the spot interruption notices of running spot instances.

use std::collections::HashMap;

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};

use crate::aws::error::{ErrorKind, Resource, Result, aws};
use crate::options::Asked;
use crate::tags;

/// Whether the instance was launched on the spot market.
pub fn is_spot(instance: &Instance) -> bool {
    instance
        .instance_lifecycle()
        .is_some_and(|l| l.as_str() == "spot")
}

/// The address docker-machine connects to: private with `amazonec2-private-address-only` or
/// `amazonec2-use-private-address`, else public.
pub fn address(instance: &Instance, asked: &Asked) -> Option<String> {
    let a = if asked.private_ip_only || asked.use_private_ip {
        instance.private_ip_address()
    } else {
        instance.public_ip_address()
    };
    a.filter(|a| !a.is_empty()).map(str::to_string)
}

/// Spot request status codes saying AWS is taking the instance back (or has), from "Spot
/// request status" (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-request-status.html>):
/// `marked-for-stop`, `marked-for-termination`, `marked-for-hibernation`,
/// `instance-terminated-by-price`, `instance-stopped-no-capacity`, … — not the `…-by-user`
/// codes of a stop or termination the account asked for.
pub fn is_interruption(code: &str) -> bool {
    (code.starts_with("marked-for-")
        || code.starts_with("instance-terminated-")
        || code.starts_with("instance-stopped-"))
        && !code.ends_with("-by-user")
}

/// The spot request to ask about an interruption notice of `instance`, if any.
///
/// Decided from the instance itself (DescribeInstances, "Instance",
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Instance.html>):
/// - not `InstanceLifecycle=spot`: an on-demand instance is never interrupted;
/// - not `running`: its state already says it (`stopping`/`shutting-down` → `Stopping`, then
///   `stopped`/`terminated` with `StateReason` `Server.SpotInstanceShutdown` /
///   `Server.SpotInstanceTermination`,
///   <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html>);
/// - running: EC2 shows the two-minute notice only in the status of the instance's spot request
///   (`marked-for-termination`, …), and every spot instance has one — "Amazon EC2 creates a
///   Spot Instance request on your behalf for every Spot Instance that is specified in the EC2
///   Fleet", and RunInstances with spot market options makes one too
///   (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-spot-instances-work.html>) —
///   whose id the instance carries (`SpotInstanceRequestId`). An instance naming none (moto's)
///   is not asked about.
pub fn spot_request_to_check(instance: &Instance) -> Option<&str> {
    let running = instance.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running);
    if !is_spot(instance) || !running {
        return None;
    }
    instance
        .spot_instance_request_id()
        .filter(|s| !s.is_empty())
}

/// For the running spot instances among `instances` whose spot request AWS has marked for
/// interruption: instance id → the request's status code. One `DescribeSpotInstanceRequests`
/// per 200 requests, by request id (a `spot-instance-request-id` filter: a request EC2 no
/// longer knows is simply absent, and filtered reads use the larger request bucket), and none
/// when no instance names a request.
pub async fn interruptions(
    ec2: &aws_sdk_ec2::Client,
    instances: &[&Instance],
) -> Result<HashMap<String, String>> {
    let wanted: Vec<(String, String)> = instances
        .iter()
        .filter_map(|i| {
            Some((
                i.instance_id()?.to_string(),
                spot_request_to_check(i)?.to_string(),
            ))
        })
        .collect();
    interruptions_of(ec2, &wanted).await
}

/// Like [`interruptions`], for (instance id, spot request id) pairs known beforehand — so the
/// look can go beside the `DescribeInstances` that reads the instances, not after it.
pub async fn interruptions_of(
    ec2: &aws_sdk_ec2::Client,
    pairs: &[(String, String)],
) -> Result<HashMap<String, String>> {
    let wanted: HashMap<&str, &str> = pairs
        .iter()
        .map(|(i, sir)| (sir.as_str(), i.as_str()))
        .collect();
    let ids: Vec<String> = wanted.keys().map(|s| s.to_string()).collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let found = ec2
            .describe_spot_instance_requests()
            .filters(
                Filter::builder()
                    .name("spot-instance-request-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws(
                    "checking for spot interruptions (DescribeSpotInstanceRequests)",
                    e,
                )
            })?;
        for r in found.spot_instance_requests() {
            let (Some(sir), Some(code)) = (
                r.spot_instance_request_id(),
                r.status().and_then(|s| s.code()),
            ) else {
                continue;
            };
            if let Some(id) = wanted.get(sir).filter(|_| is_interruption(code)) {
                out.insert(id.to_string(), code.to_string());
            }
        }
    }
    Ok(out)
}

/// Describes one instance by id; `Ok(None)` when EC2 does not know it.
pub async fn describe(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<Instance>> {
    match ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .cloned()),
        Err(e) => {
            let e = aws("reading the instance (DescribeInstances)", e);
            if e.is(&[
                ErrorKind::NotFound(Resource::Instance),
                ErrorKind::Malformed(Resource::Instance),
            ]) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Instances (not yet terminated) carrying this machine's ownership tag.
pub async fn find_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<Instance>> {
    let out = ec2
        .describe_instances()
        .filters(tags::machine(machine_id))
        .filters(not_terminated(true))
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the machine's instances by tag (DescribeInstances)",
                e,
            )
        })?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect())
}

/// The filter for instances not terminated (`shutting-down` ones too when `shutting_down`).
pub fn not_terminated(shutting_down: bool) -> Filter {
    let mut f = Filter::builder()
        .name("instance-state-name")
        .values("pending")
        .values("running")
        .values("stopping")
        .values("stopped");
    if shutting_down {
        f = f.values("shutting-down");
    }
    f.build()
}
