//! The current spot price of a pool (instance type in a zone), from EC2's spot price history
//! (`DescribeSpotPriceHistory` with a start time of now answers the price in force, per zone:
//! <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html>).
//! The agent reads it for the pools its machines run in, to show what they cost.

use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::Filter;

use crate::aws::error::{Result, aws};

/// The Linux spot price in dollars per hour of `instance_type` in `zone` now, `None` when EC2
/// has none (a type not offered there).
pub async fn current(
    ec2: &aws_sdk_ec2::Client,
    instance_type: &str,
    zone: &str,
) -> Result<Option<f64>> {
    let out = ec2
        .describe_spot_price_history()
        .instance_types(instance_type.into())
        .product_descriptions("Linux/UNIX")
        .filters(
            Filter::builder()
                .name("availability-zone")
                .values(zone)
                .build(),
        )
        .start_time(DateTime::from(std::time::SystemTime::now()))
        .send()
        .await
        .map_err(|e| aws("reading the spot price (DescribeSpotPriceHistory)", e))?;
    Ok(out
        .spot_price_history()
        .iter()
        .filter(|p| p.availability_zone() == Some(zone))
        .max_by_key(|p| p.timestamp().map(|t| t.secs()))
        .and_then(|p| p.spot_price()?.parse().ok()))
}
