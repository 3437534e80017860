//! The binary's own commands around the lifecycle, and what they share.
//!
//! * [`doctor`] — checks what a create with given options would meet (creates nothing).
//! * [`image`] — baked images: `image build`, `list`, `prune`.
//! * [`gc`] — finds (and removes) what carries a bastion's tags but belongs to no machine.
//! * [`permissions`] — every IAM permission ec2spot uses, and the least-privilege policy.

pub mod doctor;
pub mod gc;
pub mod image;
pub mod permissions;
