//! Creating a machine: SSH key, security groups, one launch, wait until it runs with an
//! address. When any step fails, everything this create made is removed before the error
//! (which names the step and carries AWS's code) is returned.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::consistency::{FRESH_PATIENCE, retry_fresh_for};
use crate::aws::error::{Error, ErrorKind, Resource, Result};
use crate::create::market::{self, Placed};
use crate::create::resolve::Resolved;
use crate::create::tls_bootstrap::TlsMaterial;
use crate::create::wait::wait_running;
use crate::create::{resolve, user_data};
use crate::create_record::{self, Kind};
use crate::options::config::{Config, Pool};
use crate::options::validate::{parse_port, parse_tags};
use crate::progress::Progress;
use crate::resources::launch::{Launch, Market};
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
    let mut c = Steps::new(ctx, config, resolved, tls, progress, resume)?;
    let groups_made = c.prepare(config, resolved, resume).await?;
    // An earlier attempt of this create (in an agent that died) may have launched already:
    // adopt that instance instead of launching a second one. (The key pair and groups above
    // are recorded either way, so `rm` removes them.)
    if resume {
        if let Some(id) = earlier_instance(ctx, config).await? {
            return adopt(ctx, config, &id, progress).await;
        }
        c.template = market::template(
            &ctx.client,
            config,
            &c.launch,
            &resolved.pools,
            &c.ownership,
        )
        .await?;
    }
    // What this create just made may be unknown to EC2's launch for a moment.
    c.launch.not_yet = just_made(
        config.key_pair_imported && c.key.fresh,
        groups_made,
        c.template.is_some(),
    );
    // Recorded first: an `rm` after this process dies knows a launch may exist.
    create_record::note(config, Kind::Instance, None);
    let Some(placed) = c.launch_or_adopt(config, resolved).await? else {
        return Ok(()); // an earlier attempt's instance, adopted and running
    };
    c.launched(config, placed).await
}

/// The key pair a create launches with, chosen before anything is made.
struct KeyChoice {
    /// The key pair's name in EC2.
    name: String,
    /// The public key, as imported when the key pair is the machine's own.
    public_line: String,
    /// Taken from the agent's spares (imported ahead of this create).
    spare: bool,
    /// Imported by an earlier attempt of this create (in an agent that died).
    recorded: bool,
    /// From the user's key file (`amazonec2-ssh-keypath`): no spare is used or refilled.
    users: bool,
    /// Imported moments ago: the launch may not see it yet.
    fresh: bool,
}

/// Chooses the create's key pair and installs its private key in the machine's directory
/// (`config.ssh_key_path`): the user's key pair, one an earlier attempt of this create
/// imported, the agent's spare (no import, and no wait until the launch sees a new key pair;
/// not when the user named a key, nor on a resumed create), or one this create imports.
fn choose_key(ctx: &Context, config: &mut Config, resume: bool) -> Result<KeyChoice> {
    let dir = PathBuf::from(&config.store_path)
        .join("machines")
        .join(&config.machine_name);
    let user_key = (!config.ssh_private_key_path.is_empty())
        .then(|| PathBuf::from(&config.ssh_private_key_path));
    let recorded = resume
        .then(|| create_record::read(config))
        .flatten()
        .and_then(|r| r.made(Kind::KeyPair).pop())
        .filter(|_| !config.existing_key);
    let spare = (!config.existing_key && user_key.is_none() && recorded.is_none())
        .then(|| ctx.take_spare_key())
        .flatten();
    let (key_path, public_line) = match &spare {
        Some(s) => key_pair::install_given(&dir, &s.key)?,
        None => key_pair::install(&dir, user_key.as_deref())?,
    };
    config.ssh_key_path = key_path.to_string_lossy().into_owned();
    let name = match (&spare, &recorded) {
        _ if config.existing_key => config.key_name.clone(),
        (Some(s), _) => s.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => config.machine_name.clone(),
    };
    Ok(KeyChoice {
        name,
        public_line,
        fresh: spare
            .as_ref()
            .is_none_or(|s| s.imported.elapsed() < FRESH_PATIENCE),
        spare: spare.is_some(),
        recorded: recorded.is_some(),
        users: user_key.is_some(),
    })
}

/// Says how docker-machine's TLS material reaches the machine when the bootstrap is asked for.
fn say_bootstrap(config: &Config, tls: Option<&TlsMaterial>, progress: &Progress) {
    match (config.tls_bootstrap, tls) {
        (true, Some(_)) => progress.say(
            "TLS bootstrap: certificates and Docker drop-in go in the user data; cloud-init starts Docker with TLS on 2376",
        ),
        (true, None) => progress.say(
            "No TLS material from docker-machine (not GitLab's fork with TLS bootstrap): it provisions over SSH as usual",
        ),
        _ => {}
    }
}

/// An instance an earlier attempt of this resumed create launched: the one it recorded, or
/// one carrying the machine's tag — looked for until EC2 lists it when that attempt called
/// the launch lately (eventual consistency), so nothing is launched a second time.
async fn earlier_instance(ctx: &Context, config: &Config) -> Result<Option<String>> {
    let record = create_record::read(config).unwrap_or_default();
    if let Some(id) = record.made(Kind::Instance).pop() {
        return Ok(Some(id));
    }
    let patience = if record.unanswered(Kind::Instance, Duration::from_secs(600)) {
        FRESH_PATIENCE
    } else {
        Duration::ZERO
    };
    adoptable(ctx, config, patience).await
}

/// One create's working state between its steps.
struct Steps<'a> {
    ctx: &'a Context,
    progress: &'a Progress,
    /// The machine's tags (ownership and the user's) for what the launch makes.
    tag_list: Vec<(String, String)>,
    /// The ownership tags alone (the launch template).
    ownership: Vec<(String, String)>,
    /// The bastion's manager id.
    manager: String,
    key: KeyChoice,
    launch: Launch,
    /// The launch template (several pools), deleted once the launch returns.
    template: Option<String>,
}

impl<'a> Steps<'a> {
    /// Everything decided before anything is made: the tags, the user data (composed and
    /// checked against EC2's size limit first), the key pair, the launch's settings.
    fn new(
        ctx: &'a Context,
        config: &mut Config,
        resolved: &Resolved,
        tls: Option<&TlsMaterial>,
        progress: &'a Progress,
        resume: bool,
    ) -> Result<Self> {
        let manager = manager::manager_id(&config.store_path);
        let tag_list = tags::machine_tags(
            &config.machine_name,
            &config.machine_id,
            &manager,
            &parse_tags(&config.tags)?,
        );
        let user_data = user_data::compose(config, tls)?;
        let key = choose_key(ctx, config, resume)?;
        say_bootstrap(config, tls, progress);
        let ownership = tags::ownership_tags(&config.machine_name, &config.machine_id, &manager);
        let launch = Launch {
            ami: resolved.ami.clone(),
            instance_type: String::new(),
            subnet_id: String::new(),
            group_ids: Vec::new(),
            key_name: key.name.clone(),
            user_data,
            tags: tag_list.clone(),
            market: Market::OnDemand,
            client_token: String::new(),
            not_yet: Vec::new(),
        };
        Ok(Steps {
            ctx,
            progress,
            tag_list,
            ownership,
            manager,
            key,
            launch,
            template: None,
        })
    }

    /// The key pair imported, and the groups then the launch template (several pools) made,
    /// at once: a template may name a key pair that does not exist yet — EC2 checks its
    /// parameters at the launch, not when it is made
    /// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-template-restrictions.html).
    /// What was made is recorded in `config` before any error returns, so the cleanup
    /// removes it. On a resumed create the template waits (made only when nothing was
    /// launched before). Returns whether groups were made.
    async fn prepare(
        &mut self,
        config: &mut Config,
        resolved: &Resolved,
        resume: bool,
    ) -> Result<bool> {
        let (ctx, progress, key) = (self.ctx, self.progress, &self.key);
        let shared: &Config = config;
        let import = async {
            if shared.existing_key {
                return Ok(false);
            }
            if key.spare || key.recorded {
                progress.say(&format!("Using key pair {}, imported before", key.name));
                create_record::note(shared, Kind::KeyPair, Some(&key.name));
                return Ok(true);
            }
            progress.say("Importing the SSH key as key pair");
            import_recorded(
                &ctx.client,
                shared,
                &key.name,
                &key.public_line,
                &self.tag_list,
            )
            .await
            .map(|()| true)
        };
        let groups_then_template = async {
            let groups =
                ensure_groups(ctx, shared, resolved, &self.tag_list, progress, true).await?;
            if resume {
                return Ok::<_, Error>((groups, Ok(None))); // made later, unless launched before
            }
            let mut l = self.launch.clone();
            l.group_ids = groups.ids.clone();
            let template =
                market::template(&ctx.client, shared, &l, &resolved.pools, &self.ownership).await;
            Ok((groups, template))
        };
        let (imported, groups) = tokio::join!(import, groups_then_template);
        if let Ok(true) = imported {
            config.key_name = self.key.name.clone();
            config.key_pair_imported = true;
        }
        let (groups, template) = groups?;
        record_groups(config, &groups);
        imported?;
        self.template = template?;
        self.launch.group_ids = groups.ids;
        Ok(!groups.created.is_empty())
    }

    /// The launch, and the two refusals it recovers from. `IdempotentParameterMismatch`: the
    /// token was used before with other parameters — an earlier attempt of this create (in an
    /// agent that died) launched already, so its instance is adopted (`None`: adopted and
    /// running), never a second one launched. A refusal for something looked up before that is
    /// gone: looked up again ([`Steps::look_up_again`]) and launched once more (with new
    /// tokens: the first call made nothing).
    async fn launch_or_adopt(
        &mut self,
        config: &mut Config,
        resolved: &Resolved,
    ) -> Result<Option<Placed>> {
        let ec2 = &self.ctx.client;
        let first = market::launch(
            ec2,
            config,
            &self.launch,
            &resolved.pools,
            self.template.as_deref(),
            "",
            self.progress,
        )
        .await;
        let placed = match first {
            Err(e) if e.is(&[ErrorKind::TokenMismatch]) => {
                market::drop_template(ec2, self.template.take(), self.progress).await;
                return match adoptable(self.ctx, config, FRESH_PATIENCE).await? {
                    Some(i) => adopt(self.ctx, config, &i, self.progress)
                        .await
                        .map(|()| None),
                    None => Err(e.context(
                        "an earlier attempt of this create launched with other parameters, and its instance cannot be found",
                    )),
                };
            }
            Err(e) if e.is(REFUSED_LOOKUPS) => {
                let pools = self.look_up_again(config, e).await?;
                market::launch(
                    ec2,
                    config,
                    &self.launch,
                    &pools,
                    self.template.as_deref(),
                    "-2",
                    self.progress,
                )
                .await
            }
            other => other,
        };
        match placed {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                create_record::settle(config, Kind::Instance, Err(&e));
                market::drop_template(ec2, self.template.take(), self.progress).await;
                Err(e)
            }
        }
    }

    /// What was looked up before — remembered from an earlier create, or changed since — no
    /// longer exists (`refused`): a group (the last machine sharing it took it away), the
    /// subnet, the image, the user's key pair, the agent's spare key pair. Forget it, look
    /// everything up again once, make the groups and the template if need be; returns the
    /// pools to launch in. What no longer resolves is reported naming its option.
    async fn look_up_again(&mut self, config: &mut Config, refused: Error) -> Result<Vec<Pool>> {
        let (ctx, ec2, progress) = (self.ctx, &self.ctx.client, self.progress);
        progress.say(&format!(
            "EC2 refused what was looked up before ({}); looking it up again",
            refused.code().unwrap_or_default()
        ));
        if self.key.spare && refused.is(&[ErrorKind::NotFound(Resource::KeyPair)]) {
            // The spare key pair is gone (e.g. `gc` of another bastion's store): the
            // machine imports its own, as without the agent.
            self.key.name = config.machine_name.clone();
            import_recorded(
                ec2,
                config,
                &self.key.name,
                &self.key.public_line,
                &self.tag_list,
            )
            .await?;
            config.key_name = self.key.name.clone();
            self.launch.key_name = self.key.name.clone();
        }
        let given = resolve::as_given(config);
        ctx.memory.forget(&resolve::option_key(&given));
        for id in &self.launch.group_ids {
            ctx.memory.forget_group(id);
        }
        market::drop_template(ec2, self.template.take(), progress).await;
        let (again, _) = resolve::remembered(ctx, &given).await?;
        resolve::record(config, &again);
        self.launch.ami = again.ami.clone();
        let groups = ensure_groups(ctx, config, &again, &self.tag_list, progress, false).await?;
        record_groups(config, &groups);
        self.launch.not_yet = just_made(config.key_pair_imported, !groups.created.is_empty(), true);
        self.launch.group_ids = groups.ids;
        self.template =
            market::template(ec2, config, &self.launch, &again.pools, &self.ownership).await?;
        Ok(again.pools)
    }

    /// Records the launched instance, has the agent import the next create's key pair while
    /// it boots (when this one needed a key pair of its own: not with the user's key), and
    /// waits for it to run while the template, which served its one launch, goes.
    async fn launched(mut self, config: &mut Config, placed: Placed) -> Result<()> {
        let id = placed.instance_id.clone();
        create_record::note(config, Kind::Instance, Some(&id));
        if !config.existing_key && !self.key.users {
            self.ctx.refill_spare_key(&self.manager);
        }
        config.instance_id = id.clone();
        config.market = placed.market.as_str().to_string();
        config.instance_type = placed.pool.instance_type.clone();
        config.subnet_id = placed.pool.subnet_id.clone();
        if !placed.pool.availability_zone.is_empty() {
            config.zone = placed.pool.availability_zone.clone();
        }
        self.progress.say(&format!(
            "Instance {id} launched ({} {}); waiting for it to run",
            placed.market.as_str(),
            placed.pool
        ));
        let (waited, ()) = tokio::join!(
            wait(self.ctx, config, &id, self.progress),
            market::drop_template(&self.ctx.client, self.template.take(), self.progress)
        );
        waited
    }
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

/// The kinds of a launch refused for something the pre-create check (or an earlier create)
/// looked up that is gone now (API error codes,
/// <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>).
const REFUSED_LOOKUPS: &[ErrorKind] = &[
    ErrorKind::NotFound(Resource::Group),
    ErrorKind::NotFound(Resource::Subnet),
    ErrorKind::NotFound(Resource::Image), // also `InvalidAMIID.Unavailable`
    ErrorKind::NotFound(Resource::KeyPair),
];

/// The "not found" kinds a launch may meet for what its create made moments ago: EC2's
/// reads and launches are eventually consistent
/// (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>), so a key pair,
/// group or template made just before may be unknown to the launch for a moment.
fn just_made(key_pair: bool, groups: bool, template: bool) -> Vec<ErrorKind> {
    [
        (key_pair, Resource::KeyPair),
        (groups, Resource::Group),
        (template, Resource::Template),
    ]
    .into_iter()
    .filter(|(made, _)| *made)
    .flat_map(|(_, r)| {
        let by_name = (r == Resource::Template).then_some(Resource::TemplateName);
        [Some(r), by_name].into_iter().flatten()
    })
    .map(ErrorKind::NotFound)
    .collect()
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
    let found = retry_fresh_for(
        patience,
        &[ErrorKind::NotFound(Resource::Instance)],
        || async {
            let found = instance::find_by_machine_id(&ctx.client, &config.machine_id).await?;
            found
                .into_iter()
                .find_map(|i| i.instance_id().map(str::to_string))
                .ok_or_else(|| Error::Aws {
                    step: "finding the instance an earlier attempt launched (DescribeInstances)"
                        .into(),
                    code: "InvalidInstanceID.NotFound".into(),
                    message: "none listed (yet)".into(),
                })
        },
    )
    .await;
    match found {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.is(&[ErrorKind::NotFound(Resource::Instance)]) => Ok(None),
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
