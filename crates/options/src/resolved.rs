//! What the pre-create check resolves the options to: the VPC, the pools, the image and its
//! architecture (found by the EC2 crate's `create::resolve`, remembered between creates by its
//! `state::memory`).

use crate::config::Pool;

/// What a create will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// VPC id.
    pub vpc_id: String,
    /// The pools to launch in (instance types × subnets offered there), in preference order.
    pub pools: Vec<Pool>,
    /// Image id.
    pub ami: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
}
