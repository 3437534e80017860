//! The EC2 driver behind the plugin's [`Driver`](crate::plugin::Driver) trait: flags,
//! persisted config, and the machine lifecycle on EC2 (spot and on-demand).

pub mod config;
mod driver;
pub mod flags;
pub mod options;
pub mod tags;

pub use config::Config;
pub use driver::Ec2Driver;

/// The name docker-machine knows this driver by (`docker-machine-driver-ec2spot`).
pub const DRIVER_NAME: &str = "ec2spot";
