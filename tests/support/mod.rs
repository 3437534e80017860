//! Helpers shared by the integration tests.

pub mod bastion;
pub mod ec2_proxy;
pub mod forward_proxy;
pub mod goclient;
pub mod moto;
pub mod process;
