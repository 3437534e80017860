//! What a create made: the ids of the machine's instance, key pair, groups, spot request and
//! where it landed. [`create`] returns it (also when it fails part-way, with the error, so
//! what it made is known); `rm`, `gc` and the state calls take it.
//!
//! [`create`]: ../../ec2spot_ec2/create/fn.create.html

/// The ids and addresses of what a create made (`""` or empty until made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    /// The instance.
    pub instance_id: String,
    /// The address docker-machine connects to (public, or private with
    /// `amazonec2-use-private-address`).
    pub ip_address: String,
    /// The instance's private address.
    pub private_ip_address: String,
    /// The SSH private key installed in the machine's directory.
    pub ssh_key_path: String,
    /// The key pair the machine launched with, when not the user's (`amazonec2-keypair-name`).
    pub key_name: String,
    /// `key_name` was imported for this machine (deleted with it).
    pub key_pair_imported: bool,
    /// The security groups the instance has.
    pub security_group_ids: Vec<String>,
    /// Security groups this machine created (deleted with it when nothing else uses them).
    pub created_security_group_ids: Vec<String>,
    /// `spot` or `on-demand` once launched.
    pub market: String,
    /// The spot request of the machine's instance, as EC2 named it when the instance ran: `rm`
    /// cancels it without reading the instance first.
    pub spot_request_id: String,
    /// The instance type it landed on.
    pub instance_type: String,
    /// The subnet it landed in.
    pub subnet_id: String,
    /// The availability zone it landed in.
    pub zone: String,
}

impl Made {
    /// The machine was launched (an instance id or a market is known).
    pub fn launched(&self) -> bool {
        !self.instance_id.is_empty() || !self.market.is_empty()
    }
}
