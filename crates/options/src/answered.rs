//! What EC2 answered before the launch: the pre-create check's resolution of the options to
//! the VPC, the pools, the image and its architecture (found by the EC2 crate's
//! `create::resolve`, remembered between creates by its `state::memory`).

/// What a create will use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answered {
    /// VPC id.
    pub vpc_id: String,
    /// The pools to launch in (instance types × subnets offered there), in preference order.
    pub pools: Vec<Pool>,
    /// Image id.
    pub ami: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
}

impl Answered {
    /// The one pool, when there is exactly one.
    pub fn single_pool(&self) -> Option<&Pool> {
        match self.pools.as_slice() {
            [pool] => Some(pool),
            _ => None,
        }
    }
}

/// One launch pool: an instance type in a subnet (and so in that subnet's zone).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Pool {
    /// Instance type.
    pub instance_type: String,
    /// Subnet id.
    pub subnet_id: String,
    /// The subnet's availability zone.
    pub availability_zone: String,
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {} ({})",
            self.instance_type, self.availability_zone, self.subnet_id
        )
    }
}
