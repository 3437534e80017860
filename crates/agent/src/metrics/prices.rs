//! What a machine costs per hour: the on-demand price of its instance type (a table shipped
//! here), and the spot price of its pool (read from EC2 by the agent, kept an hour).
//!
//! The table: Linux, shared tenancy, in US East (N. Virginia), as listed on AWS's "Amazon EC2
//! On-Demand Pricing" page, <https://aws.amazon.com/ec2/pricing/on-demand/> (2025). The
//! figures were compared with independent public tables of the same prices for the common
//! types (m5, c5, c6i, c6a, c7i, c7g, m6a, t3), not with AWS's Price List API, which the tests
//! cannot reach: a snapshot, stale when AWS changes a price. Other
//! regions, and types not listed, have no on-demand price here: their saving is not shown
//! rather than guessed. AWS's Price List API would cover every region, but needs
//! `pricing:GetProducts` (another service and permission) and answers megabytes per type.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The region the table covers.
pub const TABLE_REGION: &str = "us-east-1";

/// Dollars per hour, on-demand, Linux, in [`TABLE_REGION`].
pub const ON_DEMAND_US_EAST_1: &[(&str, f64)] = &[
    ("c5.2xlarge", 0.34),
    ("c5.4xlarge", 0.68),
    ("c5.large", 0.085),
    ("c5.xlarge", 0.17),
    ("c5a.large", 0.077),
    ("c6a.large", 0.0765),
    ("c6a.xlarge", 0.153),
    ("c6g.large", 0.068),
    ("c6i.2xlarge", 0.34),
    ("c6i.large", 0.085),
    ("c6i.xlarge", 0.17),
    ("c7g.large", 0.0725),
    ("c7i.large", 0.08925),
    ("c7i.xlarge", 0.1785),
    ("m5.2xlarge", 0.384),
    ("m5.4xlarge", 0.768),
    ("m5.large", 0.096),
    ("m5.xlarge", 0.192),
    ("m5a.large", 0.086),
    ("m5a.xlarge", 0.172),
    ("m6a.large", 0.0864),
    ("m6a.xlarge", 0.1728),
    ("m6g.large", 0.077),
    ("m6i.2xlarge", 0.384),
    ("m6i.large", 0.096),
    ("m6i.xlarge", 0.192),
    ("m7g.large", 0.0816),
    ("m7i.2xlarge", 0.4032),
    ("m7i.large", 0.1008),
    ("m7i.xlarge", 0.2016),
    ("r5.large", 0.126),
    ("r6i.large", 0.126),
    ("t2.large", 0.0928),
    ("t2.medium", 0.0464),
    ("t2.micro", 0.0116),
    ("t2.small", 0.023),
    ("t3.2xlarge", 0.3328),
    ("t3.large", 0.0832),
    ("t3.medium", 0.0416),
    ("t3.micro", 0.0104),
    ("t3.nano", 0.0052),
    ("t3.small", 0.0208),
    ("t3.xlarge", 0.1664),
    ("t3a.2xlarge", 0.3008),
    ("t3a.large", 0.0752),
    ("t3a.medium", 0.0376),
    ("t3a.micro", 0.0094),
    ("t3a.small", 0.0188),
    ("t3a.xlarge", 0.1504),
    ("t4g.large", 0.0672),
    ("t4g.medium", 0.0336),
    ("t4g.micro", 0.0084),
    ("t4g.small", 0.0168),
];

/// The region of availability zone `zone` (`us-east-1a` → `us-east-1`).
pub fn region_of(zone: &str) -> &str {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase())
}

/// The on-demand price of `instance_type` in the region of `zone`, when the table has it.
pub fn on_demand(instance_type: &str, zone: &str) -> Option<f64> {
    (region_of(zone) == TABLE_REGION)
        .then(|| {
            ON_DEMAND_US_EAST_1
                .binary_search_by(|(t, _)| (*t).cmp(instance_type))
                .ok()
                .map(|i| ON_DEMAND_US_EAST_1[i].1)
        })
        .flatten()
}

/// How long a spot price read stands before it is read again.
pub const SPOT_PRICE_AGE: Duration = Duration::from_secs(3600);

/// A pool: instance type, zone.
type Pool = (String, String);

/// The spot prices read, by pool, with when (none: EC2 had none, or the read failed).
#[derive(Debug, Default)]
pub struct SpotPrices {
    known: Mutex<HashMap<Pool, (Option<f64>, Instant)>>,
    reading: Mutex<HashSet<Pool>>,
}

impl SpotPrices {
    /// The spot price of a pool, if read.
    pub fn get(&self, instance_type: &str, zone: &str) -> Option<f64> {
        let known = self.known.lock().expect("spot prices");
        known
            .get(&(instance_type.to_string(), zone.to_string()))
            .and_then(|(p, _)| *p)
    }

    /// Whether a pool's price is to be read now (unknown or old, and no read under way); if
    /// so, it is marked as being read.
    pub fn claim(&self, instance_type: &str, zone: &str) -> bool {
        let pool = (instance_type.to_string(), zone.to_string());
        let due = self
            .known
            .lock()
            .expect("spot prices")
            .get(&pool)
            .is_none_or(|(_, at)| at.elapsed() >= SPOT_PRICE_AGE);
        due && self.reading.lock().expect("spot prices").insert(pool)
    }

    /// Notes a read's result (`None`: EC2 had no price; a failed read is noted as none too
    /// and tried again after [`SPOT_PRICE_AGE`]).
    pub fn set(&self, instance_type: &str, zone: &str, price: Option<f64>) {
        let pool = (instance_type.to_string(), zone.to_string());
        self.reading.lock().expect("spot prices").remove(&pool);
        self.known
            .lock()
            .expect("spot prices")
            .insert(pool, (price, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_answers_its_region_only() {
        assert!(ON_DEMAND_US_EAST_1.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(on_demand("t3.micro", "us-east-1a"), Some(0.0104));
        assert_eq!(on_demand("t3.micro", "eu-west-1a"), None);
        assert_eq!(on_demand("x9.huge", "us-east-1a"), None);
        assert_eq!(region_of("us-east-1b"), "us-east-1");
        let s = SpotPrices::default();
        assert!(s.claim("t3.micro", "us-east-1a"));
        assert!(!s.claim("t3.micro", "us-east-1a"), "being read");
        s.set("t3.micro", "us-east-1a", Some(0.003));
        assert!(!s.claim("t3.micro", "us-east-1a"), "fresh");
        assert_eq!(s.get("t3.micro", "us-east-1a"), Some(0.003));
    }
}
