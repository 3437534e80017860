//! Creating a machine: SSH key, security groups, one launch, wait until it runs with an
//! address. When any step fails, everything this create made is removed before the error
//! (which names the step and carries AWS's code) is returned.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::consistency::{FRESH_PATIENCE, retry_fresh_for};
use crate::aws::error::{Error, Result};
use crate::create::resolve::Resolved;
use crate::create::tls_bootstrap::TlsMaterial;
use crate::create::wait::wait_running;
use crate::create::{market, resolve, user_data};
use crate::create_record::{self, Kind};
use crate::options::config::Config;
use crate::options::validate::{parse_port, parse_tags};
use crate::progress::Progress;
use crate::resources::run_instances::{Launch, Market};
use crate::resources::security_group::{self, DOCKER_PORT, Groups};
use crate::resources::{instance, key_pair};
use crate::state::context::Context;
use crate::{manager, remove, tags};

/// How long a launched instance may take to run and get its address.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long removal waits for a terminating instance to release a security group.
pub const GROUP_RELEASE_TIMEOUT: Duration = Duration::from_secs(180);

/// The ports the machine's security groups open: SSH, Docker, swarm (for a swarm master), and
/// `amazonec2-open-port`.
pub fn ingress_ports(config: &Config) -> Vec<(i32, String)> {
    let mut ports = vec![
        (config.ssh_port as i32, "tcp".to_string()),
        (DOCKER_PORT, "tcp".to_string()),
    ];
    if config.swarm_master {
        let port = config
            .swarm_host
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<i32>().ok())
            .unwrap_or(3376);
        ports.push((port, "tcp".into()));
    }
    for p in &config.open_ports {
        if let Ok(p) = parse_port(p) {
            ports.push(p);
        }
    }
    ports
}

/// The machine's security groups: as found complete by an earlier create of this process
/// (when `remembered_ok`), else resolved (created, opened) and then remembered.
async fn ensure_groups(
    ctx: &Context,
    config: &Config,
    resolved: &Resolved,
    tag_list: &[(String, String)],
    progress: &Progress,
    remembered_ok: bool,
) -> Result<Groups> {
    let ports = ingress_ports(config);
    let key = format!(
        "{}|{:?}|{:?}|{}",
        resolved.vpc_id,
        config.security_group_names,
        security_group::plan(config, &ports),
        config.security_group_read_only
    );
    if remembered_ok && let Some(ids) = ctx.memory.groups(&key) {
        return Ok(Groups {
            ids,
            created: Vec::new(),
        });
    }
    let groups = security_group::ensure(
        &ctx.client,
        &resolved.vpc_id,
        config,
        &ports,
        tag_list,
        progress,
    )
    .await?;
    ctx.memory.remember_groups(&key, groups.ids.clone());
    Ok(groups)
}

/// Records the groups a launch uses, and those it created (for `rm`).
fn record_groups(config: &mut Config, groups: &Groups) {
    config
        .created_security_group_ids
        .extend(groups.created.iter().cloned());
    config.security_group_ids = groups.ids.clone();
}

/// Creates the machine described by `config` (already resolved by the pre-create check);
/// records what it makes in `config` as it goes.
/// `tls` is GitLab's fork's TLS material, delivered in the user data.
/// `resume` says an earlier attempt of this create may have got somewhere (its agent died):
/// an instance it launched is then adopted instead of launching a second one.
pub async fn create(
    ctx: &Context,
    config: &mut Config,
    resolved: &Resolved,
    tls: Option<&TlsMaterial>,
    progress: &Progress,
    resume: bool,
) -> Result<()> {
    match create_steps(ctx, config, resolved, tls, progress, resume).await {
        Ok(()) => Ok(()),
        Err(e) => {
            progress.say(&format!("Create failed ({e}); removing what it made"));
            match remove::remove(ctx, config, GROUP_RELEASE_TIMEOUT).await {
                Ok(done) => {
                    progress.say(&format!("Cleanup: {}", done.summary()));
                    config.instance_id.clear();
                    config.spot_request_id.clear();
                    Err(e)
                }
                Err(cleanup) => Err(Error::Other(format!(
                    "{e}; and the cleanup failed too: {cleanup}"
                ))),
            }
        }
    }
}

async fn create_steps(
    ctx: &Context,
    config: &mut Config,
    resolved: &Resolved,
    tls: Option<&TlsMaterial>,
    progress: &Progress,
    resume: bool,
) -> Result<()> {
    let ec2 = &ctx.client;
    let manager = manager::manager_id(&config.store_path);
    let tag_list = tags::machine_tags(
        &config.machine_name,
        &config.machine_id,
        &manager,
        &parse_tags(&config.tags)?,
    );
    let dir = PathBuf::from(&config.store_path)
        .join("machines")
        .join(&config.machine_name);
    // Composed (and checked against EC2's size limit) before anything is made.
    let user_data = user_data::compose(config, tls)?;

    let user_key = (!config.ssh_private_key_path.is_empty())
        .then(|| PathBuf::from(&config.ssh_private_key_path));
    // A key pair an earlier attempt of this create (in an agent that died) imported or took.
    let recorded_key = resume
        .then(|| create_record::read(config))
        .flatten()
        .and_then(|r| r.made(Kind::KeyPair).pop())
        .filter(|_| !config.existing_key);
    // The agent's spare key pair, imported ahead of this create: no import, and no wait until
    // the launch sees a new key pair. Not when the user named a key, nor on a resumed create.
    let spare = (!config.existing_key && user_key.is_none() && recorded_key.is_none())
        .then(|| ctx.take_spare_key())
        .flatten();
    let (key_path, public_line) = match &spare {
        Some(s) => key_pair::install_given(&dir, &s.key)?,
        None => key_pair::install(&dir, user_key.as_deref())?,
    };
    // A key pair imported moments ago may be unknown to the launch for a moment.
    let key_fresh = spare
        .as_ref()
        .is_none_or(|s| s.imported.elapsed() < FRESH_PATIENCE);
    config.ssh_key_path = key_path.to_string_lossy().into_owned();
    match (config.tls_bootstrap, tls) {
        (true, Some(_)) => progress.say(
            "TLS bootstrap: certificates and Docker drop-in go in the user data; cloud-init starts Docker with TLS on 2376",
        ),
        (true, None) => progress.say(
            "No TLS material from docker-machine (not GitLab's fork with TLS bootstrap): it provisions over SSH as usual",
        ),
        _ => {}
    }
    let ownership = tags::ownership_tags(&config.machine_name, &config.machine_id, &manager);
    let mut key_name = match (&spare, &recorded_key) {
        _ if config.existing_key => config.key_name.clone(),
        (Some(s), _) => s.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => config.machine_name.clone(),
    };
    let mut launch = Launch {
        ami: resolved.ami.clone(),
        instance_type: String::new(),
        subnet_id: String::new(),
        group_ids: Vec::new(),
        key_name: key_name.clone(),
        user_data,
        tags: tag_list.clone(),
        market: Market::OnDemand,
        client_token: String::new(),
        not_yet: Vec::new(),
    };
    // The key pair, and the groups then the launch template (several pools), at once: a
    // template may name a key pair that does not exist yet — EC2 checks its parameters at the
    // launch, not when it is made
    // (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-template-restrictions.html).
    let import = async {
        if config.existing_key {
            return Ok(false);
        }
        if spare.is_some() || recorded_key.is_some() {
            progress.say(&format!("Using key pair {key_name}, imported before"));
            create_record::note(config, Kind::KeyPair, Some(&key_name));
            return Ok(true);
        }
        progress.say("Importing the SSH key as key pair");
        import_recorded(ec2, config, &key_name, &public_line, &tag_list)
            .await
            .map(|()| true)
    };
    let groups_then_template = async {
        let groups = ensure_groups(ctx, config, resolved, &tag_list, progress, true).await?;
        if resume {
            return Ok::<_, Error>((groups, Ok(None))); // made below, unless there is an instance
        }
        let mut l = launch.clone();
        l.group_ids = groups.ids.clone();
        let template = market::template(ec2, config, &l, &resolved.pools, &ownership).await;
        Ok((groups, template))
    };
    let (imported, groups) = tokio::join!(import, groups_then_template);
    // What was made is recorded before any error returns, so the cleanup removes it.
    if let Ok(true) = imported {
        config.key_name = key_name.clone();
        config.key_pair_imported = true;
    }
    let (groups, template) = groups?;
    record_groups(config, &groups);
    imported?;
    let mut template = template?;
    launch.group_ids = groups.ids;
    let groups_made = !groups.created.is_empty();
    // An earlier attempt of this create (in an agent that died) may have launched already:
    // adopt that instance instead of launching a second one. (The key pair and groups above
    // are recorded either way, so `rm` removes them.)
    if resume {
        // The earlier attempt recorded what it launched, or at least that it called the
        // launch: its instance is then looked for until EC2 lists it (eventual consistency)
        // — never launched a second time.
        let record = create_record::read(config).unwrap_or_default();
        if let Some(id) = record.made(Kind::Instance).pop() {
            return adopt(ctx, config, &id, progress).await;
        }
        let patience = if record.unanswered(Kind::Instance, Duration::from_secs(600)) {
            FRESH_PATIENCE
        } else {
            Duration::ZERO
        };
        if let Some(i) = adoptable(ctx, config, patience).await? {
            return adopt(ctx, config, &i, progress).await;
        }
        template = market::template(ec2, config, &launch, &resolved.pools, &ownership).await?;
    }
    // What this create just made may be unknown to EC2's launch for a moment.
    launch.not_yet = just_made(
        config.key_pair_imported && key_fresh,
        groups_made,
        template.is_some(),
    );
    // Recorded first: an `rm` after this process dies knows a launch may exist.
    create_record::note(config, Kind::Instance, None);

    let placed = match market::launch(
        ec2,
        config,
        &launch,
        &resolved.pools,
        template.as_deref(),
        "",
        progress,
    )
    .await
    {
        // The launch's idempotency token was used before with other parameters: an earlier
        // attempt of this create (in an agent that died) launched already. Adopt what it
        // launched — never launch a second instance.
        Err(e) if e.code() == Some("IdempotentParameterMismatch") => {
            market::drop_template(ec2, template, progress).await;
            return match adoptable(ctx, config, FRESH_PATIENCE).await? {
                Some(i) => adopt(ctx, config, &i, progress).await,
                None => Err(e.context(
                    "an earlier attempt of this create launched with other parameters, and its instance cannot be found",
                )),
            };
        }
        // What was looked up before — remembered from an earlier create, or changed since —
        // no longer exists: a group (the last machine sharing it took it away), the subnet,
        // the image, the user's key pair. Forget it, look everything up again once, make the
        // groups if need be, and launch once more (with new tokens: the first call made
        // nothing). What no longer resolves is then reported naming its option.
        Err(e) if e.is_code(REFUSED_LOOKUPS) => {
            progress.say(&format!(
                "EC2 refused what was looked up before ({}); looking it up again",
                e.code().unwrap_or_default()
            ));
            if spare.is_some() && e.code() == Some("InvalidKeyPair.NotFound") {
                // The spare key pair is gone (e.g. `gc` of another bastion's store): the
                // machine imports its own, as without the agent.
                key_name = config.machine_name.clone();
                import_recorded(ec2, config, &key_name, &public_line, &tag_list).await?;
                config.key_name = key_name.clone();
                launch.key_name = key_name.clone();
            }
            let given = resolve::as_given(config);
            ctx.memory.forget(&resolve::option_key(&given));
            for id in &launch.group_ids {
                ctx.memory.forget_group(id);
            }
            market::drop_template(ec2, template.take(), progress).await;
            let (again, _) = resolve::remembered(ctx, &given).await?;
            resolve::record(config, &again);
            launch.ami = again.ami.clone();
            let groups = ensure_groups(ctx, config, &again, &tag_list, progress, false).await?;
            record_groups(config, &groups);
            launch.not_yet = just_made(config.key_pair_imported, !groups.created.is_empty(), true);
            launch.group_ids = groups.ids;
            template = market::template(ec2, config, &launch, &again.pools, &ownership).await?;
            market::launch(
                ec2,
                config,
                &launch,
                &again.pools,
                template.as_deref(),
                "-2",
                progress,
            )
            .await
        }
        other => other,
    };
    let placed = match placed {
        Ok(p) => p,
        Err(e) => {
            create_record::settle(config, Kind::Instance, Err(&e));
            market::drop_template(ec2, template, progress).await;
            return Err(e);
        }
    };
    let id = placed.instance_id.clone();
    create_record::note(config, Kind::Instance, Some(&id));
    // The next create's key pair is imported while this instance boots (when this one needed
    // a key pair of its own: not with the user's key).
    if !config.existing_key && user_key.is_none() {
        ctx.refill_spare_key(&manager);
    }
    config.instance_id = id.clone();
    config.market = placed.market.as_str().to_string();
    config.instance_type = placed.pool.instance_type.clone();
    config.subnet_id = placed.pool.subnet_id.clone();
    if !placed.pool.availability_zone.is_empty() {
        config.zone = placed.pool.availability_zone.clone();
    }
    progress.say(&format!(
        "Instance {id} launched ({} {}); waiting for it to run",
        placed.market.as_str(),
        placed.pool
    ));
    // The template served its one launch: it goes while the instance boots.
    let (waited, ()) = tokio::join!(
        wait(ctx, config, &id, progress),
        market::drop_template(ec2, template, progress)
    );
    waited
}

/// Imports the machine's key pair `name`, recorded (the call, then its outcome) for `rm`.
async fn import_recorded(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    name: &str,
    public_line: &str,
    tag_list: &[(String, String)],
) -> Result<()> {
    create_record::note(config, Kind::KeyPair, None);
    let imported = key_pair::import(ec2, name, public_line, tag_list).await;
    create_record::settle(config, Kind::KeyPair, imported.as_ref().map(|()| name));
    imported
}

/// The codes of a launch refused for something the pre-create check (or an earlier create)
/// looked up that is gone now (API error codes,
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>).
const REFUSED_LOOKUPS: &[&str] = &[
    "InvalidGroup.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable",
    "InvalidKeyPair.NotFound",
];

/// The "not found" codes a launch may meet for what its create made moments ago: EC2's
/// reads and launches are eventually consistent
/// (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>), so a key pair,
/// group or template made just before may be unknown to the launch for a moment.
fn just_made(key_pair: bool, groups: bool, template: bool) -> Vec<&'static str> {
    let mut codes = Vec::new();
    if key_pair {
        codes.push("InvalidKeyPair.NotFound");
    }
    if groups {
        codes.push("InvalidGroup.NotFound");
    }
    if template {
        codes.extend([
            "InvalidLaunchTemplateId.NotFound",
            "InvalidLaunchTemplateName.NotFoundException",
        ]);
    }
    codes
}

/// Waits for the launched instance `id` to run and records its addresses.
async fn wait(ctx: &Context, config: &mut Config, id: &str, progress: &Progress) -> Result<()> {
    let running = wait_running(ctx, id, config, RUN_TIMEOUT).await?;
    config.ip_address = instance::address(&running, config).unwrap_or_default();
    config.private_ip_address = running.private_ip_address().unwrap_or_default().to_string();
    config.spot_request_id = running
        .spot_instance_request_id()
        .unwrap_or_default()
        .to_string();
    config.market = if instance::is_spot(&running) {
        Market::Spot
    } else {
        Market::OnDemand
    }
    .as_str()
    .to_string();
    if let Some(t) = running.instance_type() {
        config.instance_type = t.as_str().to_string();
    }
    if let Some(s) = running.subnet_id() {
        config.subnet_id = s.to_string();
    }
    if let Some(z) = running.placement().and_then(|p| p.availability_zone()) {
        config.zone = z.to_string();
    }
    progress.say(&format!("Running at {}", config.ip_address));
    Ok(())
}

/// The id of the instance an earlier attempt of this create launched, looked for by the
/// machine's tag until `patience` runs out: EC2's reads are eventually consistent, so a fresh
/// instance may take seconds to show up in `DescribeInstances`
/// (https://docs.aws.amazon.com/AWSEC2/latest/devguide/eventual-consistency.html).
async fn adoptable(ctx: &Context, config: &Config, patience: Duration) -> Result<Option<String>> {
    let found = retry_fresh_for(patience, &["InvalidInstanceID.NotFound"], || async {
        let found = instance::find_by_machine_id(&ctx.client, &config.machine_id).await?;
        found
            .into_iter()
            .find_map(|i| i.instance_id().map(str::to_string))
            .ok_or_else(|| Error::Aws {
                step: "finding the instance an earlier attempt launched (DescribeInstances)".into(),
                code: "InvalidInstanceID.NotFound".into(),
                message: "none listed (yet)".into(),
            })
    })
    .await;
    match found {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.is_code(&["InvalidInstanceID.NotFound"]) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes over instance `id`, which an earlier attempt of this create launched.
async fn adopt(ctx: &Context, config: &mut Config, id: &str, progress: &Progress) -> Result<()> {
    create_record::note(config, Kind::Instance, Some(id));
    config.instance_id = id.to_string();
    progress.say(&format!(
        "Instance {id} was launched by an earlier attempt of this create; waiting for it to run"
    ));
    wait(ctx, config, id, progress).await
}
