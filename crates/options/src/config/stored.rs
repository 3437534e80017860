//! `config.json`'s `Driver` object as it is written: one flat object of docker-machine's keys
//! (the `BaseDriver`'s at top level), amazonec2's field names and ec2spot's own, holding what
//! was asked, what EC2 answered and what the create made together. [`Stored::from_parts`] and
//! [`Stored::into_parts`] put them together and take them apart; a file read and written
//! again comes out byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::answered::{Answered, Pool};
use crate::asked::Asked;
use crate::made::Made;

/// `config.json`'s `Driver` object, field by field in the order it is written.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub(crate) struct Stored {
    // --- docker-machine's BaseDriver ---
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "MachineName")]
    pub machine_name: String,
    #[serde(rename = "SSHUser")]
    pub ssh_user: String,
    #[serde(rename = "SSHPort")]
    pub ssh_port: i64,
    #[serde(rename = "SSHKeyPath")]
    pub ssh_key_path: String,
    #[serde(rename = "StorePath")]
    pub store_path: String,
    #[serde(rename = "SwarmMaster")]
    pub swarm_master: bool,
    #[serde(rename = "SwarmHost")]
    pub swarm_host: String,
    #[serde(rename = "SwarmDiscovery")]
    pub swarm_discovery: String,

    // --- amazonec2's fields ---
    /// Stored only when the user gave it (flag or docker-machine's env mapping).
    #[serde(rename = "AccessKey", skip_serializing_if = "String::is_empty")]
    pub access_key: String,
    /// Stored only when the user gave it.
    #[serde(rename = "SecretKey", skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    /// Stored only when the user gave it.
    #[serde(rename = "SessionToken", skip_serializing_if = "String::is_empty")]
    pub session_token: String,
    #[serde(rename = "Region")]
    pub region: String,
    #[serde(rename = "AMI")]
    pub ami: String,
    /// The key pair was the user's (`amazonec2-keypair-name`): never deleted.
    #[serde(rename = "ExistingKey")]
    pub existing_key: bool,
    #[serde(rename = "KeyName")]
    pub key_name: String,
    #[serde(rename = "InstanceId")]
    pub instance_id: String,
    #[serde(rename = "InstanceType")]
    pub instance_type: String,
    #[serde(rename = "PrivateIPAddress")]
    pub private_ip_address: String,
    /// amazonec2's legacy single group id (read for old stores, merged into the list).
    #[serde(rename = "SecurityGroupId", skip_serializing_if = "String::is_empty")]
    pub security_group_id: String,
    #[serde(rename = "SecurityGroupIds")]
    pub security_group_ids: Vec<String>,
    /// amazonec2's legacy single group name (read for old stores, merged into the list).
    #[serde(rename = "SecurityGroupName", skip_serializing_if = "String::is_empty")]
    pub security_group_name: String,
    #[serde(rename = "SecurityGroupNames")]
    pub security_group_names: Vec<String>,
    #[serde(rename = "SecurityGroupReadOnly")]
    pub security_group_read_only: bool,
    #[serde(rename = "OpenPorts")]
    pub open_ports: Vec<String>,
    #[serde(rename = "Tags")]
    pub tags: String,
    #[serde(rename = "DeviceName")]
    pub device_name: String,
    #[serde(rename = "RootSize")]
    pub root_size: i64,
    #[serde(rename = "VolumeType")]
    pub volume_type: String,
    #[serde(rename = "IamInstanceProfile")]
    pub iam_instance_profile: String,
    #[serde(rename = "VpcId")]
    pub vpc_id: String,
    #[serde(rename = "SubnetId")]
    pub subnet_id: String,
    /// The zone as given, then the resolved availability zone name after the pre-create check.
    #[serde(rename = "Zone")]
    pub zone: String,
    #[serde(rename = "RequestSpotInstance")]
    pub request_spot_instance: bool,
    #[serde(rename = "SpotPrice")]
    pub spot_price: String,
    #[serde(rename = "BlockDurationMinutes")]
    pub block_duration_minutes: i64,
    #[serde(rename = "PrivateIPOnly")]
    pub private_ip_only: bool,
    #[serde(rename = "UsePrivateIP")]
    pub use_private_ip: bool,
    #[serde(rename = "UseEbsOptimizedInstance")]
    pub use_ebs_optimized_instance: bool,
    #[serde(rename = "Monitoring")]
    pub monitoring: bool,
    #[serde(rename = "SSHPrivateKeyPath")]
    pub ssh_private_key_path: String,
    #[serde(rename = "RetryCount")]
    pub retry_count: i64,
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    #[serde(rename = "DisableSSL")]
    pub disable_ssl: bool,
    #[serde(rename = "UserDataFile")]
    pub user_data_file: String,

    // --- GitLab fork's fields ---
    #[serde(rename = "MetadataToken")]
    pub metadata_token: String,
    #[serde(rename = "MetadataTokenResponseHopLimit")]
    pub metadata_token_response_hop_limit: i64,
    #[serde(rename = "VolumeEncrypted")]
    pub volume_encrypted: bool,
    #[serde(rename = "VolumeKmsKey")]
    pub volume_kms_key: String,

    // --- ec2spot's own fields ---
    /// Random id generated by `SetConfigFromFlags`, persisted before `Create`: it tags every
    /// resource the machine owns and derives the launch's idempotency token.
    #[serde(rename = "MachineId")]
    pub machine_id: String,
    /// `spot` or `on-demand` once launched.
    #[serde(rename = "Market")]
    pub market: String,
    /// The spot request of the machine's instance, as EC2 named it when the instance ran:
    /// `rm` cancels it without reading the instance first.
    #[serde(
        rename = "SpotInstanceRequestId",
        skip_serializing_if = "String::is_empty"
    )]
    pub spot_request_id: String,
    /// Security groups this machine created (deleted with it when nothing else uses them).
    #[serde(rename = "CreatedSecurityGroupIds")]
    pub created_security_group_ids: Vec<String>,
    /// The key pair `KeyName` was imported by this machine (deleted with it).
    #[serde(rename = "KeyPairImported")]
    pub key_pair_imported: bool,
    /// Interchangeable instance types (`amazonec2-instance-type`, comma-separated).
    #[serde(rename = "InstanceTypes")]
    pub instance_types: Vec<String>,
    /// Subnets to launch in (`amazonec2-subnet-id`, comma-separated).
    #[serde(rename = "SubnetIds")]
    pub subnet_ids: Vec<String>,
    /// Zones to launch in without subnets (`amazonec2-zone`, comma-separated).
    #[serde(rename = "Zones")]
    pub zones: Vec<String>,
    /// Launch on-demand when no spot pool has capacity.
    #[serde(rename = "SpotFallbackOnDemand")]
    pub spot_fallback_on_demand: bool,
    /// EC2 Fleet spot allocation strategy for several pools.
    #[serde(rename = "SpotAllocationStrategy")]
    pub spot_allocation_strategy: String,
    /// The pools the pre-create check found (instance type × subnet), used by `Create`.
    #[serde(rename = "Pools")]
    pub pools: Vec<Pool>,
    /// The image's architecture (`x86_64` or `arm64`), found by the pre-create check.
    #[serde(rename = "Architecture")]
    pub architecture: String,
    /// Ubuntu LTS release of the default image (`amazonec2-ubuntu-release`).
    #[serde(rename = "UbuntuRelease")]
    pub ubuntu_release: String,
    /// Deliver docker-machine's TLS material in the user data (`amazonec2-tls-bootstrap`,
    /// GitLab's fork's TLS bootstrap). The material itself is never stored here.
    #[serde(rename = "TLSBootstrap")]
    pub tls_bootstrap: bool,
    /// The Docker version the TLS bootstrap installs (`amazonec2-docker-version`, a prefix of
    /// the package version); empty: whatever the image's archive serves.
    #[serde(
        rename = "DockerVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_version: String,
    /// What the user said the image's OS is (`amazonec2-ami-os`); empty: not said.
    #[serde(rename = "AMIOS", default, skip_serializing_if = "String::is_empty")]
    pub ami_os: String,
    /// Launch the newest baked image of the resolved image (`amazonec2-use-baked-image`).
    #[serde(
        rename = "UseBakedImage",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub use_baked_image: bool,
    /// The network and image options as the user gave them, before the pre-create check
    /// wrote what it resolved into `VpcId`, `SubnetId`, `Zone` and `AMI` (as amazonec2 does): a
    /// launch refused for a resolved value that is gone resolves again from these.
    #[serde(rename = "AsGiven", default, skip_serializing_if = "Option::is_none")]
    pub as_given: Option<AsGiven>,

    /// Keys this build does not know (written by another version of ec2spot, or by the driver
    /// the machine had before): kept as they are and written back, never dropped.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The options the pre-create check resolves, as the user gave them ("" when not given):
/// `VpcId`, `SubnetId`, `Zone` and `AMI` hold what it resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AsGiven {
    /// `amazonec2-vpc-id`.
    #[serde(rename = "VpcId")]
    pub vpc_id: String,
    /// `amazonec2-subnet-id`.
    #[serde(rename = "SubnetId")]
    pub subnet_id: String,
    /// `amazonec2-zone`.
    #[serde(rename = "Zone")]
    pub zone: String,
    /// `amazonec2-ami`.
    #[serde(rename = "AMI")]
    pub ami: String,
}

/// `value` unless it is empty, else `otherwise`.
fn or(value: &str, otherwise: &str) -> String {
    if value.is_empty() { otherwise } else { value }.to_string()
}

impl Stored {
    /// The file's object for a machine: the options as asked, overwritten where EC2 answered
    /// (`VpcId`, `AMI`, and `SubnetId` and `Zone` of a single pool, as amazonec2 overwrites
    /// them, the options kept in `AsGiven`) and where the create placed the machine.
    pub(crate) fn from_parts(
        asked: &Asked,
        answered: Option<&Answered>,
        made: &Made,
        extra: &Map<String, Value>,
    ) -> Stored {
        let pool = answered.and_then(Answered::single_pool);
        let a = asked;
        Stored {
            ip_address: made.ip_address.clone(),
            ssh_key_path: made.ssh_key_path.clone(),
            ami: answered.map_or(&a.ami, |r| &r.ami).clone(),
            key_name: if a.existing_key {
                &a.key_name
            } else {
                &made.key_name
            }
            .clone(),
            instance_id: made.instance_id.clone(),
            instance_type: or(&made.instance_type, &a.instance_type),
            private_ip_address: made.private_ip_address.clone(),
            security_group_ids: made.security_group_ids.clone(),
            vpc_id: answered.map_or(&a.vpc_id, |r| &r.vpc_id).clone(),
            subnet_id: or(&made.subnet_id, pool.map_or(&a.subnet_id, |p| &p.subnet_id)),
            zone: or(&made.zone, pool.map_or(&a.zone, |p| &p.availability_zone)),
            market: made.market.clone(),
            spot_request_id: made.spot_request_id.clone(),
            created_security_group_ids: made.created_security_group_ids.clone(),
            key_pair_imported: made.key_pair_imported,
            pools: answered.map(|r| r.pools.clone()).unwrap_or_default(),
            architecture: answered.map(|r| r.architecture.clone()).unwrap_or_default(),
            as_given: answered.map(|_| AsGiven {
                vpc_id: a.vpc_id.clone(),
                subnet_id: a.subnet_id.clone(),
                zone: a.zone.clone(),
                ami: a.ami.clone(),
            }),
            extra: extra.clone(),
            ..Stored::asked(asked.clone())
        }
    }

    /// The options' own keys (the rest empty).
    fn asked(a: Asked) -> Stored {
        Stored {
            machine_name: a.machine_name,
            ssh_user: a.ssh_user,
            ssh_port: a.ssh_port,
            store_path: a.store_path,
            swarm_master: a.swarm_master,
            swarm_host: a.swarm_host,
            swarm_discovery: a.swarm_discovery,
            access_key: a.access_key,
            secret_key: a.secret_key,
            session_token: a.session_token,
            region: a.region,
            existing_key: a.existing_key,
            security_group_names: a.security_group_names,
            security_group_read_only: a.security_group_read_only,
            open_ports: a.open_ports,
            tags: a.tags,
            device_name: a.device_name,
            root_size: a.root_size,
            volume_type: a.volume_type,
            iam_instance_profile: a.iam_instance_profile,
            request_spot_instance: a.request_spot_instance,
            spot_price: a.spot_price,
            block_duration_minutes: a.block_duration_minutes,
            private_ip_only: a.private_ip_only,
            use_private_ip: a.use_private_ip,
            use_ebs_optimized_instance: a.use_ebs_optimized_instance,
            monitoring: a.monitoring,
            ssh_private_key_path: a.ssh_private_key_path,
            retry_count: a.retry_count,
            endpoint: a.endpoint,
            disable_ssl: a.disable_ssl,
            user_data_file: a.user_data_file,
            metadata_token: a.metadata_token,
            metadata_token_response_hop_limit: a.metadata_token_response_hop_limit,
            volume_encrypted: a.volume_encrypted,
            volume_kms_key: a.volume_kms_key,
            machine_id: a.machine_id,
            instance_types: a.instance_types,
            subnet_ids: a.subnet_ids,
            zones: a.zones,
            spot_fallback_on_demand: a.spot_fallback_on_demand,
            spot_allocation_strategy: a.spot_allocation_strategy,
            ubuntu_release: a.ubuntu_release,
            tls_bootstrap: a.tls_bootstrap,
            docker_version: a.docker_version,
            ami_os: a.ami_os,
            use_baked_image: a.use_baked_image,
            ..Stored::default()
        }
    }

    /// The file's object taken apart: the reverse of [`Stored::from_parts`].
    pub(crate) fn into_parts(self) -> (Asked, Option<Answered>, Made, Map<String, Value>) {
        let answered = self.answered();
        let asked = self.to_asked();
        let made = self.to_made(&asked, answered.as_ref());
        (asked, answered, made, self.extra)
    }

    /// What the pre-create check found, when it ran (`AsGiven` is written with its answers).
    fn answered(&self) -> Option<Answered> {
        let s = self;
        (s.as_given.is_some() || !s.pools.is_empty() || !s.architecture.is_empty()).then(|| {
            Answered {
                vpc_id: s.vpc_id.clone(),
                pools: s.pools.clone(),
                ami: s.ami.clone(),
                architecture: s.architecture.clone(),
            }
        })
    }

    /// The options: the network and image as `AsGiven` keeps them, or, in a file without it
    /// (amazonec2's, or written before the pre-create check), as the top-level keys hold them.
    fn to_asked(&self) -> Asked {
        let s = self.clone();
        let given = s.as_given.unwrap_or(AsGiven {
            vpc_id: s.vpc_id,
            subnet_id: s.subnet_id,
            zone: s.zone,
            ami: s.ami,
        });
        Asked {
            machine_name: s.machine_name,
            store_path: s.store_path,
            ssh_user: s.ssh_user,
            ssh_port: s.ssh_port,
            swarm_master: s.swarm_master,
            swarm_host: s.swarm_host,
            swarm_discovery: s.swarm_discovery,
            access_key: s.access_key,
            secret_key: s.secret_key,
            session_token: s.session_token,
            region: s.region,
            ami: given.ami,
            existing_key: s.existing_key,
            key_name: if s.existing_key {
                s.key_name
            } else {
                String::new()
            },
            instance_type: if s.instance_types.is_empty() {
                s.instance_type
            } else {
                s.instance_types.join(",")
            },
            security_group_names: s.security_group_names,
            security_group_read_only: s.security_group_read_only,
            open_ports: s.open_ports,
            tags: s.tags,
            device_name: s.device_name,
            root_size: s.root_size,
            volume_type: s.volume_type,
            iam_instance_profile: s.iam_instance_profile,
            vpc_id: given.vpc_id,
            subnet_id: given.subnet_id,
            zone: given.zone,
            request_spot_instance: s.request_spot_instance,
            spot_price: s.spot_price,
            block_duration_minutes: s.block_duration_minutes,
            private_ip_only: s.private_ip_only,
            use_private_ip: s.use_private_ip,
            use_ebs_optimized_instance: s.use_ebs_optimized_instance,
            monitoring: s.monitoring,
            ssh_private_key_path: s.ssh_private_key_path,
            retry_count: s.retry_count,
            endpoint: s.endpoint,
            disable_ssl: s.disable_ssl,
            user_data_file: s.user_data_file,
            metadata_token: s.metadata_token,
            metadata_token_response_hop_limit: s.metadata_token_response_hop_limit,
            volume_encrypted: s.volume_encrypted,
            volume_kms_key: s.volume_kms_key,
            machine_id: s.machine_id,
            instance_types: s.instance_types,
            subnet_ids: s.subnet_ids,
            zones: s.zones,
            spot_fallback_on_demand: s.spot_fallback_on_demand,
            spot_allocation_strategy: s.spot_allocation_strategy,
            ubuntu_release: s.ubuntu_release,
            tls_bootstrap: s.tls_bootstrap,
            docker_version: s.docker_version,
            ami_os: s.ami_os,
            use_baked_image: s.use_baked_image,
        }
    }

    /// What the create made. A value it placed (instance type, subnet, zone) is taken as made
    /// when the machine was launched, or when it differs from what asking and answering give.
    fn to_made(&self, asked: &Asked, answered: Option<&Answered>) -> Made {
        let s = self.clone();
        let launched = !s.instance_id.is_empty() || !s.market.is_empty();
        let pool = answered.and_then(Answered::single_pool);
        let placed = |stored: String, otherwise: &str| {
            if launched || stored != otherwise {
                stored
            } else {
                String::new()
            }
        };
        Made {
            instance_id: s.instance_id,
            ip_address: s.ip_address,
            private_ip_address: s.private_ip_address,
            ssh_key_path: s.ssh_key_path,
            key_name: if s.existing_key {
                String::new()
            } else {
                s.key_name
            },
            key_pair_imported: s.key_pair_imported,
            security_group_ids: s.security_group_ids,
            created_security_group_ids: s.created_security_group_ids,
            market: s.market,
            spot_request_id: s.spot_request_id,
            instance_type: placed(s.instance_type, &asked.instance_type),
            subnet_id: placed(s.subnet_id, pool.map_or(&asked.subnet_id, |p| &p.subnet_id)),
            zone: placed(s.zone, pool.map_or(&asked.zone, |p| &p.availability_zone)),
        }
    }

    /// Folds amazonec2's legacy single-value security group fields into the lists.
    pub(crate) fn normalized(mut self) -> Self {
        let id = std::mem::take(&mut self.security_group_id);
        if !id.is_empty() && !self.security_group_ids.contains(&id) {
            self.security_group_ids.insert(0, id);
        }
        let name = std::mem::take(&mut self.security_group_name);
        if !name.is_empty() && !self.security_group_names.contains(&name) {
            self.security_group_names.insert(0, name);
        }
        self
    }
}
