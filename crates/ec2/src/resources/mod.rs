//! The EC2 resources a machine is made of, one file per kind: how each is made (tagged as the
//! machine's at creation), found (by id or by the machine's tag) and deleted. The create flow
//! ([`create`](crate::create)) and the removal ([`remove`](crate::remove)) put them together.
//!
//! * [`instance`] — reading instances: by id or tag, their address, spot interruption notices.
//! * [`launch`] — what one launch needs, and what a launch and a launch template both say
//!   about the instance, decided once.
//! * [`run_instances`] — the launch: one `RunInstances` call with everything (market, tags,
//!   block device, metadata options) and an idempotency token.
//! * [`launch_template`] — the template a launch over several pools (EC2 Fleet) needs.
//! * [`spot_request`] — spot requests: finding and cancelling them.
//! * [`spot_price`] — a pool's spot price now.
//! * [`key_pair`] — the machine's SSH key pair.
//! * [`spare_key`] — the agent's key pair imported ahead of the next create.
//! * [`security_group`] — security groups: resolved by name, created and opened when ours.
//! * [`image`] — the default image (Ubuntu LTS) lookup.

pub mod image;
pub mod instance;
pub mod key_pair;
pub mod launch;
pub mod launch_template;
pub mod run_instances;
pub mod security_group;
pub mod spare_key;
pub mod spot_price;
pub mod spot_request;
