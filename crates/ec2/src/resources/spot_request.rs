//! Spot instance requests: every spot instance has one ("Amazon EC2 creates a Spot Instance
//! request on your behalf for every Spot Instance",
//! <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-spot-instances-work.html>). A
//! one-time request closes when its instance goes; one a killed create left open is found by
//! the machine's tag. Finding them and cancelling them is here; `rm` does it in
//! [`remove::cancel_spot_requests`](crate::remove), `gc` for orphans.

use aws_sdk_ec2::types::Filter;

use crate::aws::error::{Resource, Result, aws, unless_gone};
use crate::tags::MACHINE_ID;

/// The filter for spot requests still alive (`open` or `active`).
pub fn live() -> Filter {
    Filter::builder()
        .name("state")
        .values("open")
        .values("active")
        .build()
}

/// The live spot requests of instances `instance_ids` (for spot instances that do not name
/// theirs: EC2 Fleet's, in moto).
pub async fn of_instances(
    ec2: &aws_sdk_ec2::Client,
    instance_ids: Vec<String>,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_spot_instance_requests()
        .filters(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(instance_ids))
                .build(),
        )
        .filters(live())
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the instance's spot request (DescribeSpotInstanceRequests)",
                e,
            )
        })?;
    Ok(ids(out.spot_instance_requests()))
}

/// The live spot requests carrying machine `machine_id`'s ownership tag (a killed create's).
pub async fn of_machine(ec2: &aws_sdk_ec2::Client, machine_id: &str) -> Result<Vec<String>> {
    let out = ec2
        .describe_spot_instance_requests()
        .filters(
            Filter::builder()
                .name(format!("tag:{MACHINE_ID}"))
                .values(machine_id)
                .build(),
        )
        .filters(live())
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the machine's spot requests (DescribeSpotInstanceRequests)",
                e,
            )
        })?;
    Ok(ids(out.spot_instance_requests()))
}

fn ids(requests: &[aws_sdk_ec2::types::SpotInstanceRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| r.spot_instance_request_id().map(str::to_string))
        .collect()
}

/// Cancels spot requests `ids` in one call: `true` when cancelled, `false` when EC2 knows
/// (one of) them no more (already gone: nothing to cancel).
pub async fn cancel(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<bool> {
    let cancelled = ec2
        .cancel_spot_instance_requests()
        .set_spot_instance_request_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            aws(
                "cancelling the spot request (CancelSpotInstanceRequests)",
                e,
            )
        });
    Ok(unless_gone(cancelled, Resource::SpotRequest)?.is_some())
}
