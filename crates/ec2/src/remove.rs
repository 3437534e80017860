//! Removing a machine: everything it owns — instances, spot requests, the key pair it
//! imported, the security groups it created — found by the ids in its config and by its
//! ownership tag (a create killed mid-way saved no ids). Idempotent: what is already gone
//! counts as removed.
//!
//! The steps, in order: [`remove`] terminates the instances, then `cancel_spot_requests`,
//! `delete_launch_templates`, `delete_key_pairs` and `delete_security_groups`; each records
//! what it did in [`Removed`] and its failures, and the removal fails naming them all.

use std::time::Duration;

use aws_sdk_ec2::types::Instance;

use crate::aws::consistency::{FRESH_PATIENCE, retry_fresh_for};
use crate::aws::error::{Error, ErrorKind, Resource, Result, aws};
use crate::create_record::{self, CreateRecord, Kind};
use crate::manager;
use crate::options::{Asked, Made};
use crate::resources::security_group::{self, Deleted};
use crate::resources::{instance, key_pair, launch_template, spot_request};
use crate::state::context::Context;

/// What a removal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Instances terminated.
    pub instances: Vec<String>,
    /// Spot requests cancelled.
    pub spot_requests: Vec<String>,
    /// Launch templates deleted.
    pub launch_templates: Vec<String>,
    /// Key pairs deleted.
    pub key_pairs: Vec<String>,
    /// Security groups deleted.
    pub security_groups: Vec<String>,
    /// Security groups kept because other instances use them.
    pub kept_groups: Vec<String>,
}

impl Removed {
    /// One line for the user.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |what: &str, v: &[String]| {
            if !v.is_empty() {
                parts.push(format!("{what} {}", v.join(", ")));
            }
        };
        add("terminated", &self.instances);
        add("cancelled spot request", &self.spot_requests);
        add("deleted launch template", &self.launch_templates);
        add("deleted key pair", &self.key_pairs);
        add("deleted security group", &self.security_groups);
        add("kept security group (in use)", &self.kept_groups);
        if parts.is_empty() {
            "nothing to remove in EC2".into()
        } else {
            parts.join("; ")
        }
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !s.is_empty() && !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

fn merge(into: &mut Vec<Instance>, found: Vec<Instance>) {
    for i in found {
        if !into.iter().any(|x| x.instance_id() == i.instance_id()) {
            into.push(i);
        }
    }
}

/// Ids of `instances` not terminated yet.
fn live_ids(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .filter(|i| {
            i.state()
                .and_then(|s| s.name())
                .is_none_or(|s| s.as_str() != "terminated")
        })
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Terminates instances `ids`; true when EC2 said one of them does not exist. Terminating is
/// idempotent in EC2 ("if you terminate an instance more than once, each call succeeds",
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html>); an
/// emulator may still fail a second termination (moto: `InvalidNetworkInterfaceID.NotFound`),
/// so a failure is checked against the instance's state: one already on its way out counts.
async fn terminate_all(
    ctx: &Context,
    ids: &[String],
    done: &mut Removed,
    errors: &mut Vec<Error>,
) -> bool {
    let mut not_found = false;
    for id in ids {
        match ctx
            .client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => push_unique(&mut done.instances, id),
            Err(e) => {
                let e = aws("terminating the instance (TerminateInstances)", e);
                if e.is(&[ErrorKind::NotFound(Resource::Instance)]) {
                    not_found = true;
                } else if leaving(ctx, id).await {
                    push_unique(&mut done.instances, id);
                } else {
                    errors.push(e);
                }
            }
        }
    }
    not_found
}

/// Terminates the machine's saved instance `id`, taking "not found" for "not yet" within
/// `patience`; true when EC2 still said it does not exist.
async fn terminate_saved(
    ctx: &Context,
    id: &str,
    patience: Duration,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) -> bool {
    let terminated = retry_fresh_for(
        patience,
        &[ErrorKind::NotFound(Resource::Instance)],
        || async {
            ctx.client
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| aws("terminating the instance (TerminateInstances)", e))
        },
    )
    .await;
    match terminated {
        Ok(_) => {
            push_unique(&mut done.instances, id);
            false
        }
        Err(e) if e.is(&[ErrorKind::NotFound(Resource::Instance)]) => true,
        Err(e) => {
            if leaving(ctx, id).await {
                push_unique(&mut done.instances, id);
            } else {
                errors.push(e);
            }
            false
        }
    }
}

/// How long a search by the machine's tag for `kind` keeps looking before "none" is believed:
/// after a recorded call that made `kind` without a recorded answer (the create died in it),
/// [`FRESH_PATIENCE`] — reads by filter are eventually consistent too, so what it made may not
/// be listed yet; else not at all.
fn patience_for(record: &CreateRecord, kind: Kind) -> Duration {
    if record.unanswered(kind, LATELY) {
        FRESH_PATIENCE
    } else {
        Duration::ZERO
    }
}

/// What `search` finds, asked again while it finds nothing until `patience` runs out.
async fn listed_within<T, F, Fut>(patience: Duration, mut search: F) -> Result<Vec<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>>>,
{
    let found = retry_fresh_for(patience, &[ErrorKind::NotListedYet], || {
        let f = search();
        async move {
            let found = f.await?;
            if found.is_empty() {
                return Err(Error::Aws {
                    step: "searching by the machine's tag".into(),
                    code: "ec2spot.NoneListedYet".into(),
                    message: "none listed (yet)".into(),
                });
            }
            Ok(found)
        }
    })
    .await;
    match found {
        Err(e) if e.is(&[ErrorKind::NotListedYet]) => Ok(Vec::new()),
        other => other,
    }
}

/// How long after its launch a machine's instance may still be unknown to EC2's calls (a
/// longer-gone instance — terminated over an hour ago — is "not found" for good).
const LATELY: Duration = Duration::from_secs(600);

/// Whether instance `id` is shutting down or terminated (false when that cannot be read).
async fn leaving(ctx: &Context, id: &str) -> bool {
    ctx.forget(id);
    ctx.observe(id).await.is_ok_and(|seen| {
        seen.instance
            .and_then(|i| i.state().and_then(|s| s.name()).cloned())
            .is_some_and(|s| matches!(s.as_str(), "shutting-down" | "terminated"))
    })
}

/// Removes everything the machine (`asked`, with what it `made`) owns. `group_patience` bounds the wait for a
/// terminating instance to release a security group before it can be deleted.
pub async fn remove(
    ctx: &Context,
    asked: &Asked,
    made: &Made,
    group_patience: Duration,
) -> Result<Removed> {
    let ec2 = &ctx.client;
    let mut done = Removed::default();
    let mut errors: Vec<Error> = Vec::new();
    // What the create recorded: ids docker-machine never saved (the create died), and which
    // calls went unanswered (what they made may not be listed yet).
    let record = create_record::read(asked).unwrap_or_default();
    // A create that finished saved every id; one that died mid-way is found by its tag.
    let search_tags = made.instance_id.is_empty() && !asked.machine_id.is_empty();
    let made = &with_record(asked, made, &record);
    let machine = (asked, made);
    let instances =
        terminate_instances(ctx, machine, &record, search_tags, &mut done, &mut errors).await;
    cancel_spot_requests(
        ec2,
        machine,
        &instances,
        search_tags,
        &mut done,
        &mut errors,
    )
    .await;
    delete_launch_templates(ec2, asked, &record, search_tags, &mut done, &mut errors).await;
    delete_key_pairs(ec2, machine, &record, search_tags, &mut done, &mut errors).await;
    delete_security_groups(
        ec2,
        machine,
        (&instances, &record),
        search_tags,
        group_patience,
        &mut done,
        &mut errors,
    )
    .await;
    // A create remembering a group this removal deleted would launch into nothing.
    for g in &done.security_groups {
        ctx.memory.forget_group(g);
    }

    if errors.is_empty() {
        create_record::clear(asked);
        Ok(done)
    } else {
        let text = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::Other(format!(
            "removing machine {}: {text} (done so far: {})",
            asked.machine_name,
            done.summary()
        )))
    }
}

/// `made` with the instance and key pair a create recorded but never saved (it died).
fn with_record(asked: &Asked, made: &Made, record: &CreateRecord) -> Made {
    let mut made = made.clone();
    if made.instance_id.is_empty()
        && let Some(id) = record.made(Kind::Instance).pop()
    {
        made.instance_id = id;
    }
    if !asked.existing_key
        && let Some(name) = record.made(Kind::KeyPair).pop()
    {
        made.key_name = name;
        made.key_pair_imported = true;
    }
    made
}

/// Terminates the machine's instances: the saved id without reading it first — terminating
/// a terminated instance succeeds, and what `rm` needs to know of it (its spot request) was
/// saved when it ran — plus whatever carries the machine's tag (`search_tags`). "Not found"
/// for an id EC2 launched moments ago can be eventual consistency rather than absence: then
/// the machine's tag decides. Returns the instances EC2 listed.
async fn terminate_instances(
    ctx: &Context,
    (asked, made): (&Asked, &Made),
    record: &CreateRecord,
    search_tags: bool,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) -> Vec<Instance> {
    let mut instances = Vec::new();
    let mut unsure = false;
    if !made.instance_id.is_empty() {
        // EC2 may not know an instance launched moments ago (eventual consistency): for a
        // machine made lately, "not found" means "not yet" for a while.
        let patience = if record
            .age_of(&made.instance_id)
            .is_some_and(|age| age < LATELY)
        {
            FRESH_PATIENCE
        } else {
            Duration::ZERO
        };
        unsure |= terminate_saved(ctx, &made.instance_id, patience, done, errors).await;
    }
    if search_tags {
        let patience = patience_for(record, Kind::Instance);
        match listed_within(patience, || {
            instance::find_by_machine_id(&ctx.client, &asked.machine_id)
        })
        .await
        {
            Ok(found) => {
                unsure |= terminate_all(ctx, &live_ids(&found), done, errors).await;
                merge(&mut instances, found);
            }
            Err(e) => errors.push(e),
        }
    }
    if unsure && !asked.machine_id.is_empty() {
        terminate_tagged(ctx, asked, &mut instances, done, errors).await;
    }
    instances
}

/// After EC2 said "no such instance" for the machine's: terminates what carries its tag. An
/// instance EC2 still lists is retried a few times (a launch moments ago is not visible
/// everywhere at once).
async fn terminate_tagged(
    ctx: &Context,
    asked: &Asked,
    instances: &mut Vec<Instance>,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) {
    for attempt in 1..=4u32 {
        let found = match instance::find_by_machine_id(&ctx.client, &asked.machine_id).await {
            Ok(found) => found,
            Err(e) => {
                errors.push(e);
                return;
            }
        };
        let again = terminate_all(ctx, &live_ids(&found), done, errors).await;
        let listed: Vec<String> = found
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        merge(instances, found);
        if !again {
            return;
        }
        if attempt == 4 {
            errors.push(Error::Aws {
                step: "terminating the instance (TerminateInstances)".into(),
                code: "InvalidInstanceID.NotFound".into(),
                message: format!(
                    "EC2 says the machine's instance does not exist but still lists {}",
                    listed.join(", ")
                ),
            });
        } else {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
}

/// Cancels the spot requests of the machine's instances, and (for a create killed mid-way)
/// the live ones carrying its tag. One-time requests close when their instance goes;
/// cancelling them anyway is harmless, and one a killed create left open must not launch
/// later. The saved instance's request is the one saved with it; a spot instance saved
/// without one (EC2 Fleet's, in moto, or a machine an older ec2spot made) has its request
/// found by instance id.
async fn cancel_spot_requests(
    ec2: &aws_sdk_ec2::Client,
    (asked, made): (&Asked, &Made),
    instances: &[Instance],
    search_tags: bool,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) {
    let mut ids = Vec::new();
    // An instant EC2 Fleet's spot requests are one-time and untagged (CreateFleet tags only
    // the fleet and its instances): they close with their instance, and the shipped IAM
    // policy (cancel only what carries the machine's tag) rightly refuses to cancel them.
    let fleet = launched_by_fleet(asked);
    if !fleet {
        push_unique(&mut ids, &made.spot_request_id);
        for i in instances {
            if let Some(sir) = i.spot_instance_request_id() {
                push_unique(&mut ids, sir);
            }
        }
    }
    let mut unnamed: Vec<String> = instances
        .iter()
        .filter(|i| !fleet && instance::is_spot(i) && i.spot_instance_request_id().is_none())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    if !fleet
        && made.spot_request_id.is_empty()
        && made.market == "spot"
        && !instances
            .iter()
            .any(|i| i.instance_id() == Some(made.instance_id.as_str()))
    {
        push_unique(&mut unnamed, &made.instance_id);
    }
    if !unnamed.is_empty() {
        match spot_request::of_instances(ec2, unnamed).await {
            Ok(found) => found.iter().for_each(|id| push_unique(&mut ids, id)),
            Err(e) => errors.push(e),
        }
    }
    // Open requests carrying the machine's tag (a killed create's).
    if search_tags {
        match spot_request::of_machine(ec2, &asked.machine_id).await {
            Ok(found) => found.iter().for_each(|id| push_unique(&mut ids, id)),
            Err(e) => errors.push(e),
        }
    }
    if !ids.is_empty() {
        match spot_request::cancel(ec2, &ids).await {
            Ok(true) => done.spot_requests = ids,
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
    }
}

/// Whether the machine launches over several pools, through an instant EC2 Fleet: the pools
/// are its instance types × subnets (one per zone without subnets), so only a list of more
/// than one gives several.
fn launched_by_fleet(asked: &Asked) -> bool {
    [&asked.instance_types, &asked.subnet_ids, &asked.zones]
        .iter()
        .any(|l| l.len() > 1)
}

/// Deletes the launch templates a multi-pool create left (killed, or its delete failed).
async fn delete_launch_templates(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    record: &CreateRecord,
    search_tags: bool,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) {
    // The template a dead create made (maybe moments ago) is deleted by its id.
    for t in record.made(Kind::Template) {
        match launch_template::delete_made(ec2, &t).await {
            Ok(()) => push_unique(&mut done.launch_templates, &t),
            Err(e) => errors.push(e),
        }
    }
    if (search_tags || launched_by_fleet(asked)) && !asked.machine_id.is_empty() {
        let patience = patience_for(record, Kind::Template);
        match listed_within(patience, || {
            launch_template::find_by_machine_id(ec2, &asked.machine_id)
        })
        .await
        {
            Ok(found) => {
                for t in found {
                    if done.launch_templates.contains(&t) {
                        continue;
                    }
                    match launch_template::delete(ec2, &t).await {
                        Ok(()) => done.launch_templates.push(t),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
}

/// Deletes the key pair the machine imported (never a key pair the user named).
async fn delete_key_pairs(
    ec2: &aws_sdk_ec2::Client,
    (asked, made): (&Asked, &Made),
    record: &CreateRecord,
    search_tags: bool,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) {
    let mut key_pairs = Vec::new();
    if made.key_pair_imported && !asked.existing_key {
        push_unique(&mut key_pairs, &made.key_name);
    }
    if search_tags {
        let patience = patience_for(record, Kind::KeyPair);
        match listed_within(patience, || {
            key_pair::find_by_machine_id(ec2, &asked.machine_id)
        })
        .await
        {
            Ok(found) => found.iter().for_each(|k| push_unique(&mut key_pairs, k)),
            Err(e) => errors.push(e),
        }
    }
    for k in key_pairs {
        match key_pair::delete(ec2, &k).await {
            Ok(()) => done.key_pairs.push(k),
            Err(e) => errors.push(e),
        }
    }
}

/// Deletes the security groups ec2spot created (this machine, or another of this manager's
/// machines sharing a group by name) once nothing else uses them — by their tags, never a
/// group the user made even if a config lists it.
async fn delete_security_groups(
    ec2: &aws_sdk_ec2::Client,
    (asked, made): (&Asked, &Made),
    (instances, record): (&[Instance], &CreateRecord),
    search_tags: bool,
    group_patience: Duration,
    done: &mut Removed,
    errors: &mut Vec<Error>,
) {
    let mut candidates = Vec::new();
    made.created_security_group_ids
        .iter()
        .chain(&made.security_group_ids)
        .for_each(|g| push_unique(&mut candidates, g));
    // Groups a dead create made (maybe moments ago, not visible yet): ours by the record.
    let made = record.made(Kind::Group);
    candidates.retain(|g| !made.contains(g));
    if search_tags {
        let patience = patience_for(record, Kind::Group);
        match listed_within(patience, || {
            security_group::find_by_machine_id(ec2, &asked.machine_id)
        })
        .await
        {
            Ok(found) => found
                .iter()
                .filter(|g| !made.contains(g))
                .for_each(|g| push_unique(&mut candidates, g)),
            Err(e) => errors.push(e),
        }
    }
    let manager = manager::manager_id(&asked.store_path);
    let mut groups =
        match security_group::deletable(ec2, &candidates, &manager, &asked.machine_id).await {
            Ok(g) => g,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
    groups.extend(made.iter().cloned());
    // Only instances on their way out release a group: those this removal terminated (the
    // machine's own among them, which it did not read) and those already leaving; waiting for
    // one whose termination failed would only run out the patience.
    let mut leaving: Vec<String> = done.instances.clone();
    for i in instances {
        let going = i
            .state()
            .and_then(|s| s.name())
            .is_some_and(|s| matches!(s.as_str(), "shutting-down" | "terminated"));
        if going && let Some(id) = i.instance_id() {
            push_unique(&mut leaving, id);
        }
    }
    for g in groups {
        let fresh = made.contains(&g);
        match security_group::delete_if_unused(ec2, &g, &leaving, group_patience, fresh).await {
            Ok(Deleted::Yes) => done.security_groups.push(g),
            Ok(Deleted::InUse(_)) => done.kept_groups.push(g),
            Err(e) => errors.push(e),
        }
    }
}
