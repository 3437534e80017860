//! `gc`: finds what carries a manager's ownership tags but belongs to no machine of the
//! docker-machine store (a `rm -f` after a failed `rm`, a store wiped by hand, …) and, when
//! asked, removes it. Other bastions' resources (another manager id) are never touched. The
//! manager id is the store's, or given (`gc --manager`) for a bastion whose store is lost:
//! with no store, everything carrying that id is an orphan.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;

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

fn tag_value(tags: &[aws_sdk_ec2::types::Tag], key: &str) -> String {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

fn ours(manager: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", tags::MANAGER))
        .values(manager)
        .build()
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
/// its tag but belongs to no machine of `store`.
pub async fn collect(
    ec2: &aws_sdk_ec2::Client,
    store: &Path,
    manager: &str,
    delete: bool,
) -> Result<Vec<Orphan>> {
    let known = known_machines(store);
    let orphaned = |t: &[aws_sdk_ec2::types::Tag]| !known.contains(&tag_value(t, tags::MACHINE_ID));
    let verb = |done: &str| {
        if delete {
            done.to_string()
        } else {
            format!("would be {done}")
        }
    };
    let mut out = Vec::new();

    let instances = ec2
        .describe_instances()
        .filters(ours(manager))
        .filters(crate::resources::instance::not_terminated(false))
        .send()
        .await
        .map_err(|e| aws("listing instances (DescribeInstances)", e))?;
    // The orphaned instances gc terminates (or, in a dry run, would): they do not keep a
    // security group of ours.
    let mut terminated = Vec::new();
    // The key pairs the orphaned instances were launched with (a spare key pair carries no
    // machine's tag: it is the machine's whose instance names it), with their machine names.
    let mut orphan_keys = std::collections::HashMap::new();
    for i in instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| orphaned(i.tags()))
    {
        let id = i.instance_id().unwrap_or_default().to_string();
        if let Some(k) = i.key_name() {
            orphan_keys.insert(k.to_string(), tag_value(i.tags(), tags::MACHINE_NAME));
        }
        if delete {
            ec2.terminate_instances()
                .instance_ids(&id)
                .send()
                .await
                .map_err(|e| aws("terminating (TerminateInstances)", e))?;
        }
        terminated.push(id.clone());
        out.push(Orphan {
            kind: "instance",
            id,
            machine: tag_value(i.tags(), tags::MACHINE_NAME),
            action: verb("terminated"),
        });
    }

    let sirs = ec2
        .describe_spot_instance_requests()
        .filters(ours(manager))
        .filters(crate::resources::spot_request::live())
        .send()
        .await
        .map_err(|e| aws("listing spot requests (DescribeSpotInstanceRequests)", e))?;
    for r in sirs
        .spot_instance_requests()
        .iter()
        .filter(|r| orphaned(r.tags()))
    {
        let id = r.spot_instance_request_id().unwrap_or_default().to_string();
        if delete {
            ec2.cancel_spot_instance_requests()
                .spot_instance_request_ids(&id)
                .send()
                .await
                .map_err(|e| aws("cancelling (CancelSpotInstanceRequests)", e))?;
        }
        out.push(Orphan {
            kind: "spot request",
            id,
            machine: tag_value(r.tags(), tags::MACHINE_NAME),
            action: verb("cancelled"),
        });
    }

    let keys = ec2
        .describe_key_pairs()
        .filters(ours(manager))
        .send()
        .await
        .map_err(|e| aws("listing key pairs (DescribeKeyPairs)", e))?;
    // A spare key pair (see `spare_key`) is a machine's once a machine's config names it or
    // its instance was launched with it (an orphan's then), else an agent's until it is older
    // than `spare_key::GC_AGE`.
    let key_names = driver_fields(store, "KeyName");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let key_orphaned = |k: &aws_sdk_ec2::types::KeyPairInfo| {
        if !tag_value(k.tags(), tags::MACHINE_ID).starts_with(spare_key::ID_PREFIX) {
            return orphaned(k.tags());
        }
        let name = k.key_name().unwrap_or_default();
        !key_names.contains(name)
            && (orphan_keys.contains_key(name)
                || spare_key::abandoned(&tag_value(k.tags(), spare_key::SINCE), now))
    };
    for k in keys.key_pairs().iter().filter(|k| key_orphaned(k)) {
        let name = k.key_name().unwrap_or_default().to_string();
        if delete {
            crate::resources::key_pair::delete(ec2, &name).await?;
        }
        let machine = orphan_keys
            .get(&name)
            .cloned()
            .unwrap_or_else(|| tag_value(k.tags(), tags::MACHINE_NAME));
        out.push(Orphan {
            kind: "key pair",
            id: name,
            machine,
            action: verb("deleted"),
        });
    }

    let templates = ec2
        .describe_launch_templates()
        .filters(ours(manager))
        .send()
        .await
        .map_err(|e| aws("listing launch templates (DescribeLaunchTemplates)", e))?;
    for t in templates
        .launch_templates()
        .iter()
        .filter(|t| orphaned(t.tags()))
    {
        let id = t.launch_template_id().unwrap_or_default().to_string();
        if delete {
            crate::resources::launch_template::delete(ec2, &id).await?;
        }
        out.push(Orphan {
            kind: "launch template",
            id,
            machine: tag_value(t.tags(), tags::MACHINE_NAME),
            action: verb("deleted"),
        });
    }

    let volumes = ec2
        .describe_volumes()
        .filters(ours(manager))
        .filters(Filter::builder().name("status").values("available").build())
        .send()
        .await
        .map_err(|e| aws("listing volumes (DescribeVolumes)", e))?;
    for v in volumes.volumes().iter().filter(|v| orphaned(v.tags())) {
        let id = v.volume_id().unwrap_or_default().to_string();
        if delete {
            ec2.delete_volume()
                .volume_id(&id)
                .send()
                .await
                .map_err(|e| aws("deleting (DeleteVolume)", e))?;
        }
        out.push(Orphan {
            kind: "volume",
            id,
            machine: tag_value(v.tags(), tags::MACHINE_NAME),
            action: verb("deleted"),
        });
    }

    // Security groups are shared by name between machines: one of ours goes only when no
    // network interface (but those of instances gc is terminating) uses it.
    let groups = ec2
        .describe_security_groups()
        .filters(ours(manager))
        .send()
        .await
        .map_err(|e| aws("listing security groups (DescribeSecurityGroups)", e))?;
    for g in groups.security_groups() {
        let id = g.group_id().unwrap_or_default().to_string();
        let users = security_group::users(ec2, &id).await?;
        let others: Vec<String> = users
            .iter()
            .filter(|u| !terminated.contains(u))
            .cloned()
            .collect();
        // Instances shutting down (another machine's `rm` moments ago) release it soon: like
        // gc's own, they are waited for.
        let others = security_group::staying(ec2, &others).await?;
        let action = if !others.is_empty() {
            format!(
                "kept: used by {}",
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if delete {
            match security_group::delete_if_unused(
                ec2,
                &id,
                &terminated,
                Duration::from_secs(300),
                false,
            )
            .await?
            {
                Deleted::Yes => "deleted".to_string(),
                Deleted::InUse(by) => format!("kept: used by {}", by.join(", ")),
            }
        } else {
            verb("deleted")
        };
        out.push(Orphan {
            kind: "security group",
            id,
            machine: g.group_name().unwrap_or_default().to_string(),
            action,
        });
    }
    Ok(out)
}
