//! `gc`: finds what carries a manager's ownership tags but belongs to no machine of the
//! docker-machine store (a `rm -f` after a failed `rm`, a store wiped by hand, …) and, when
//! asked, removes it. Other bastions' resources (another manager id) are never touched. The
//! manager id is the store's, or given (`gc --manager`) for a bastion whose store is lost:
//! with no store, everything carrying that id is an orphan.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, KeyPairInfo, Tag};

use crate::aws::error::{Result, aws};
use crate::resources::security_group::{self, Deleted};
use crate::resources::spare_key;
use crate::{manager, tags};

/// One resource gc found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// `instance`, `volume`, `key pair`, `security group`, `launch template`, `spot request`.
    pub kind: &'static str,
    /// Its id (or name for key pairs).
    pub id: String,
    /// The machine it belonged to (name, from its tag).
    pub machine: String,
    /// What gc did or would do.
    pub action: String,
}

/// The values of driver field `field` (e.g. `MachineId`) over the machines in `store` (from
/// their config.json).
fn driver_fields(store: &Path, field: &str) -> HashSet<String> {
    let mut values = HashSet::new();
    let Ok(dirs) = std::fs::read_dir(store.join("machines")) else {
        return values;
    };
    for d in dirs.flatten() {
        let Ok(raw) = std::fs::read(d.path().join("config.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw) else {
            continue;
        };
        if let Some(value) = v["Driver"][field].as_str().filter(|s| !s.is_empty()) {
            values.insert(value.to_string());
        }
    }
    values
}

/// The machine ids of the machines in `store`.
pub fn known_machines(store: &Path) -> HashSet<String> {
    driver_fields(store, "MachineId")
}

fn tag_value(tags: &[Tag], key: &str) -> String {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

/// The filter for what the bastion with `manager` made.
fn ours(manager: &str) -> Filter {
    tags::tagged(tags::MANAGER, manager)
}

/// The manager id gc works for: `given`, else the store's; `None` when neither exists (gc
/// never creates one).
pub fn manager_of(store: &Path, given: Option<&str>) -> Option<String> {
    match given {
        Some(id) => Some(id.to_string()),
        None => manager::read(&store.to_string_lossy()),
    }
}

/// Lists (and with `delete`, removes) in one region the orphans of `manager`: what carries
/// its tag but belongs to no machine of `store`. Kinds are gone through one after the other,
/// in this order: what an instance used is judged (and freed) after the instance.
pub async fn collect(
    ec2: &aws_sdk_ec2::Client,
    store: &Path,
    manager: &str,
    delete: bool,
) -> Result<Vec<Orphan>> {
    let sweep = Sweep {
        ec2,
        manager,
        delete,
        known: known_machines(store),
    };
    let instances = sweep.instances().await?;
    let mut out = instances.orphans;
    out.extend(sweep.spot_requests().await?);
    out.extend(sweep.key_pairs(store, &instances.keys).await?);
    out.extend(sweep.launch_templates().await?);
    out.extend(sweep.volumes().await?);
    out.extend(sweep.building_images().await?);
    out.extend(sweep.security_groups(&instances.terminated).await?);
    Ok(out)
}

/// One region's gc: the EC2 client, whose resources it looks at, whether it deletes them,
/// and the machines of the store (whose resources are never orphans).
struct Sweep<'a> {
    ec2: &'a aws_sdk_ec2::Client,
    manager: &'a str,
    delete: bool,
    known: HashSet<String>,
}

/// The orphaned instances and what the later kinds need to know of them.
struct OrphanInstances {
    /// One line per orphaned instance.
    orphans: Vec<Orphan>,
    /// The orphaned instances gc terminates (or, in a dry run, would): they do not keep a
    /// security group of ours.
    terminated: Vec<String>,
    /// The key pairs the orphaned instances were launched with (a spare key pair carries no
    /// machine's tag: it is the machine's whose instance names it), with their machine names.
    keys: HashMap<String, String>,
}

impl Sweep<'_> {
    /// Whether a resource carrying `resource_tags` is an orphan: gc's rule for every kind
    /// (for key pairs, see [`Sweep::key_pair_orphaned`]). It is one when its machine id tag
    /// names no machine of the store.
    fn orphaned(&self, resource_tags: &[Tag]) -> bool {
        !self
            .known
            .contains(&tag_value(resource_tags, tags::MACHINE_ID))
    }

    /// What gc did to an orphan (`done`), or in a dry run would do.
    fn action(&self, done: &str) -> String {
        if self.delete {
            done.to_string()
        } else {
            format!("would be {done}")
        }
    }

    /// The line reporting an orphan of `kind` whose machine's name is in `resource_tags`.
    fn report(&self, kind: &'static str, id: String, resource_tags: &[Tag], done: &str) -> Orphan {
        Orphan {
            kind,
            id,
            machine: tag_value(resource_tags, tags::MACHINE_NAME),
            action: self.action(done),
        }
    }

    /// Finds the orphaned instances that are not terminated and, with `delete`, terminates
    /// them one by one.
    async fn instances(&self) -> Result<OrphanInstances> {
        let instances = self
            .ec2
            .describe_instances()
            .filters(ours(self.manager))
            .filters(crate::resources::instance::not_terminated(false))
            .send()
            .await
            .map_err(|e| aws("listing instances (DescribeInstances)", e))?;
        let mut found = OrphanInstances {
            orphans: Vec::new(),
            terminated: Vec::new(),
            keys: HashMap::new(),
        };
        for i in instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| self.orphaned(i.tags()))
        {
            let id = i.instance_id().unwrap_or_default().to_string();
            if let Some(k) = i.key_name() {
                found
                    .keys
                    .insert(k.to_string(), tag_value(i.tags(), tags::MACHINE_NAME));
            }
            if self.delete {
                self.ec2
                    .terminate_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map_err(|e| aws("terminating (TerminateInstances)", e))?;
            }
            found.terminated.push(id.clone());
            found
                .orphans
                .push(self.report("instance", id, i.tags(), "terminated"));
        }
        Ok(found)
    }

    /// Finds the orphaned live spot requests and, with `delete`, cancels them one by one.
    async fn spot_requests(&self) -> Result<Vec<Orphan>> {
        let sirs = self
            .ec2
            .describe_spot_instance_requests()
            .filters(ours(self.manager))
            .filters(crate::resources::spot_request::live())
            .send()
            .await
            .map_err(|e| aws("listing spot requests (DescribeSpotInstanceRequests)", e))?;
        let mut out = Vec::new();
        for r in sirs
            .spot_instance_requests()
            .iter()
            .filter(|r| self.orphaned(r.tags()))
        {
            let id = r.spot_instance_request_id().unwrap_or_default().to_string();
            if self.delete {
                self.ec2
                    .cancel_spot_instance_requests()
                    .spot_instance_request_ids(&id)
                    .send()
                    .await
                    .map_err(|e| aws("cancelling (CancelSpotInstanceRequests)", e))?;
            }
            out.push(self.report("spot request", id, r.tags(), "cancelled"));
        }
        Ok(out)
    }

    /// Finds the orphaned key pairs (the machines' and the spare ones) and, with `delete`,
    /// deletes them one by one. `launched` are the orphaned instances' key pairs.
    async fn key_pairs(
        &self,
        store: &Path,
        launched: &HashMap<String, String>,
    ) -> Result<Vec<Orphan>> {
        let keys = self
            .ec2
            .describe_key_pairs()
            .filters(ours(self.manager))
            .send()
            .await
            .map_err(|e| aws("listing key pairs (DescribeKeyPairs)", e))?;
        let named = driver_fields(store, "KeyName");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut out = Vec::new();
        for k in keys
            .key_pairs()
            .iter()
            .filter(|k| self.key_pair_orphaned(k, &named, launched, now))
        {
            let name = k.key_name().unwrap_or_default().to_string();
            if self.delete {
                crate::resources::key_pair::delete(self.ec2, &name).await?;
            }
            let machine = launched
                .get(&name)
                .cloned()
                .unwrap_or_else(|| tag_value(k.tags(), tags::MACHINE_NAME));
            out.push(Orphan {
                kind: "key pair",
                id: name,
                machine,
                action: self.action("deleted"),
            });
        }
        Ok(out)
    }

    /// Whether key pair `k` is an orphan. A machine's is judged as every resource is. A spare
    /// key pair (see `spare_key`) is a machine's once a machine's config names it (`named`) or
    /// its instance was launched with it (`launched`: an orphan's then), else an agent's until
    /// it is older than `spare_key::GC_AGE` (`now` in unix seconds).
    fn key_pair_orphaned(
        &self,
        k: &KeyPairInfo,
        named: &HashSet<String>,
        launched: &HashMap<String, String>,
        now: u64,
    ) -> bool {
        if !tag_value(k.tags(), tags::MACHINE_ID).starts_with(spare_key::ID_PREFIX) {
            return self.orphaned(k.tags());
        }
        let name = k.key_name().unwrap_or_default();
        !named.contains(name)
            && (launched.contains_key(name)
                || spare_key::abandoned(&tag_value(k.tags(), spare_key::SINCE), now))
    }

    /// Finds the orphaned launch templates and, with `delete`, deletes them one by one.
    async fn launch_templates(&self) -> Result<Vec<Orphan>> {
        let templates = self
            .ec2
            .describe_launch_templates()
            .filters(ours(self.manager))
            .send()
            .await
            .map_err(|e| aws("listing launch templates (DescribeLaunchTemplates)", e))?;
        let mut out = Vec::new();
        for t in templates
            .launch_templates()
            .iter()
            .filter(|t| self.orphaned(t.tags()))
        {
            let id = t.launch_template_id().unwrap_or_default().to_string();
            if self.delete {
                crate::resources::launch_template::delete(self.ec2, &id).await?;
            }
            out.push(self.report("launch template", id, t.tags(), "deleted"));
        }
        Ok(out)
    }

    /// Finds the images of interrupted `image build`s (still tagged `building`, of a builder
    /// no build is waiting for: its machine id is no store machine's) and, with `delete`,
    /// deregisters them and deletes their snapshots. A `ready` image is a product, never an
    /// orphan (`image prune` removes old ones).
    async fn building_images(&self) -> Result<Vec<Orphan>> {
        use crate::create::baked;
        let images = self
            .ec2
            .describe_images()
            .owners("self")
            .filters(ours(self.manager))
            .filters(tags::tagged(baked::STATE, "building"))
            .send()
            .await
            .map_err(|e| aws("listing images (DescribeImages)", e))?;
        let mut out = Vec::new();
        for i in images.images().iter().filter(|i| self.orphaned(i.tags())) {
            if self.delete {
                crate::tools::image::delete(self.ec2, i).await?;
            }
            let id = i.image_id().unwrap_or_default().to_string();
            out.push(self.report("image", id, i.tags(), "deregistered, snapshots deleted"));
        }
        Ok(out)
    }

    /// Finds the orphaned volumes no instance holds (`available`) and, with `delete`,
    /// deletes them one by one.
    async fn volumes(&self) -> Result<Vec<Orphan>> {
        let volumes = self
            .ec2
            .describe_volumes()
            .filters(ours(self.manager))
            .filters(Filter::builder().name("status").values("available").build())
            .send()
            .await
            .map_err(|e| aws("listing volumes (DescribeVolumes)", e))?;
        let mut out = Vec::new();
        for v in volumes.volumes().iter().filter(|v| self.orphaned(v.tags())) {
            let id = v.volume_id().unwrap_or_default().to_string();
            if self.delete {
                self.ec2
                    .delete_volume()
                    .volume_id(&id)
                    .send()
                    .await
                    .map_err(|e| aws("deleting (DeleteVolume)", e))?;
            }
            out.push(self.report("volume", id, v.tags(), "deleted"));
        }
        Ok(out)
    }

    /// Goes through every security group of ours (see [`Sweep::group_action`] for which
    /// go); `terminated` are the orphaned instances gc terminates.
    async fn security_groups(&self, terminated: &[String]) -> Result<Vec<Orphan>> {
        let groups = self
            .ec2
            .describe_security_groups()
            .filters(ours(self.manager))
            .send()
            .await
            .map_err(|e| aws("listing security groups (DescribeSecurityGroups)", e))?;
        let mut out = Vec::new();
        for g in groups.security_groups() {
            let id = g.group_id().unwrap_or_default().to_string();
            let action = self.group_action(&id, terminated).await?;
            out.push(Orphan {
                kind: "security group",
                id,
                machine: g.group_name().unwrap_or_default().to_string(),
                action,
            });
        }
        Ok(out)
    }

    /// Decides (and with `delete`, does) what becomes of security group `id`, and says it.
    /// Security groups are shared by name between machines: one of ours goes only when no
    /// network interface (but those of instances gc is terminating) uses it.
    async fn group_action(&self, id: &str, terminated: &[String]) -> Result<String> {
        let users = security_group::users(self.ec2, id).await?;
        let others: Vec<String> = users
            .iter()
            .filter(|u| !terminated.contains(u))
            .cloned()
            .collect();
        // Instances shutting down (another machine's `rm` moments ago) release it soon: like
        // gc's own, they are waited for.
        let others = security_group::staying(self.ec2, &others).await?;
        Ok(if !others.is_empty() {
            format!(
                "kept: used by {}",
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if self.delete {
            match security_group::delete_if_unused(
                self.ec2,
                id,
                terminated,
                Duration::from_secs(300),
                false,
            )
            .await?
            {
                Deleted::Yes => "deleted".to_string(),
                Deleted::InUse(by) => format!("kept: used by {}", by.join(", ")),
            }
        } else {
            self.action("deleted")
        })
    }
}
