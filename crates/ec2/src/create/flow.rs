//! Creating a machine: SSH key, security groups, one launch, wait until it runs with an
//! address. When any step fails, everything this create made is removed before the error
//! (which names the step and carries AWS's code) is returned.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::consistency::{FRESH_PATIENCE, retry_fresh_for};
use crate::aws::error::{Error, ErrorKind, Resource, Result};
use crate::create::market::{self, Placed};
use crate::create::tls_bootstrap::TlsMaterial;
use crate::create::wait::wait_running;
use crate::create::{resolve, user_data};
use crate::create_record::{self, Kind};
use crate::options::answered::Answered;
use crate::options::validate::{parse_port, parse_tags};
use crate::options::{Asked, Made};
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
pub fn ingress_ports(asked: &Asked) -> Vec<(i32, String)> {
    let mut ports = vec![
        (asked.ssh_port as i32, "tcp".to_string()),
        (DOCKER_PORT, "tcp".to_string()),
    ];
    if asked.swarm_master {
        let port = asked
            .swarm_host
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<i32>().ok())
            .unwrap_or(3376);
        ports.push((port, "tcp".into()));
    }
    for p in &asked.open_ports {
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
    asked: &Asked,
    answered: &Answered,
    tag_list: &[(String, String)],
    progress: &Progress,
    remembered_ok: bool,
) -> Result<Groups> {
    let ports = ingress_ports(asked);
    let key = format!(
        "{}|{:?}|{:?}|{}",
        answered.vpc_id,
        asked.security_group_names,
        security_group::plan(asked, &ports),
        asked.security_group_read_only
    );
    if remembered_ok && let Some(ids) = ctx.memory.groups(&key) {
        return Ok(Groups {
            ids,
            created: Vec::new(),
        });
    }
    let groups = security_group::ensure(
        &ctx.client,
        &answered.vpc_id,
        asked,
        &ports,
        tag_list,
        progress,
    )
    .await?;
    ctx.memory.remember_groups(&key, groups.ids.clone());
    Ok(groups)
}

/// Records the groups a launch uses, and those it created (for `rm`).
fn record_groups(made: &mut Made, groups: &Groups) {
    made.created_security_group_ids
        .extend(groups.created.iter().cloned());
    made.security_group_ids = groups.ids.clone();
}

/// A create that failed: why, and what it made (removed again by its cleanup, unless the
/// error says the cleanup failed too).
#[derive(Debug)]
pub struct Failed {
    /// Why the create failed.
    pub error: Error,
    /// What it made.
    pub made: Made,
}

/// Creates the machine `asked` for where the pre-create check `answered`; returns what it
/// made. `answered` is looked up again when EC2 refuses what it holds (gone since).
/// `tls` is GitLab's fork's TLS material, delivered in the user data.
/// `resume` says an earlier attempt of this create may have got somewhere (its agent died):
/// an instance it launched is then adopted instead of launching a second one.
/// On failure everything it made is removed, and what it made comes back with the error.
pub async fn create(
    ctx: &Context,
    asked: &Asked,
    answered: &mut Answered,
    tls: Option<&TlsMaterial>,
    progress: &Progress,
    resume: bool,
) -> std::result::Result<Made, Failed> {
    let mut made = Made::default();
    let Err(e) = create_steps(ctx, asked, answered, &mut made, tls, progress, resume).await else {
        return Ok(made);
    };
    progress.say(&format!("Create failed ({e}); removing what it made"));
    let error = match remove::remove(ctx, asked, &made, GROUP_RELEASE_TIMEOUT).await {
        Ok(done) => {
            progress.say(&format!("Cleanup: {}", done.summary()));
            made.instance_id.clear();
            made.spot_request_id.clear();
            e
        }
        Err(cleanup) => Error::Other(format!("{e}; and the cleanup failed too: {cleanup}")),
    };
    Err(Failed { error, made })
}

async fn create_steps(
    ctx: &Context,
    asked: &Asked,
    answered: &mut Answered,
    made: &mut Made,
    tls: Option<&TlsMaterial>,
    progress: &Progress,
    resume: bool,
) -> Result<()> {
    let mut c = Steps::new(ctx, asked, made, answered, tls, progress, resume)?;
    let groups_made = c.prepare(made, answered, resume).await?;
    // An earlier attempt of this create (in an agent that died) may have launched already:
    // adopt that instance instead of launching a second one. (The key pair and groups above
    // are recorded either way, so `rm` removes them.)
    if resume {
        if let Some(id) = earlier_instance(ctx, asked).await? {
            return adopt(ctx, asked, made, &id, progress).await;
        }
        c.template =
            market::template(&ctx.client, asked, &c.launch, &answered.pools, &c.ownership).await?;
    }
    // What this create just made may be unknown to EC2's launch for a moment.
    c.launch.not_yet = just_made(
        made.key_pair_imported && c.key.fresh,
        groups_made,
        c.template.is_some(),
    );
    // Recorded first: an `rm` after this process dies knows a launch may exist.
    create_record::note(asked, Kind::Instance, None);
    let Some(placed) = c.launch_or_adopt(made, answered).await? else {
        return Ok(()); // an earlier attempt's instance, adopted and running
    };
    c.launched(made, placed).await
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
/// (`made.ssh_key_path`): the user's key pair, one an earlier attempt of this create
/// imported, the agent's spare (no import, and no wait until the launch sees a new key pair;
/// not when the user named a key, nor on a resumed create), or one this create imports.
fn choose_key(ctx: &Context, asked: &Asked, made: &mut Made, resume: bool) -> Result<KeyChoice> {
    let dir = PathBuf::from(&asked.store_path)
        .join("machines")
        .join(&asked.machine_name);
    let user_key = (!asked.ssh_private_key_path.is_empty())
        .then(|| PathBuf::from(&asked.ssh_private_key_path));
    let recorded = resume
        .then(|| create_record::read(asked))
        .flatten()
        .and_then(|r| r.made(Kind::KeyPair).pop())
        .filter(|_| !asked.existing_key);
    let spare = (!asked.existing_key && user_key.is_none() && recorded.is_none())
        .then(|| ctx.take_spare_key())
        .flatten();
    let (key_path, public_line) = match &spare {
        Some(s) => key_pair::install_given(&dir, &s.key)?,
        None => key_pair::install(&dir, user_key.as_deref())?,
    };
    made.ssh_key_path = key_path.to_string_lossy().into_owned();
    let name = match (&spare, &recorded) {
        _ if asked.existing_key => asked.key_name.clone(),
        (Some(s), _) => s.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => asked.machine_name.clone(),
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
fn say_bootstrap(asked: &Asked, tls: Option<&TlsMaterial>, progress: &Progress) {
    match (asked.tls_bootstrap, tls) {
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
async fn earlier_instance(ctx: &Context, asked: &Asked) -> Result<Option<String>> {
    let record = create_record::read(asked).unwrap_or_default();
    if let Some(id) = record.made(Kind::Instance).pop() {
        return Ok(Some(id));
    }
    let patience = if record.unanswered(Kind::Instance, Duration::from_secs(600)) {
        FRESH_PATIENCE
    } else {
        Duration::ZERO
    };
    adoptable(ctx, asked, patience).await
}

/// One create's working state between its steps.
struct Steps<'a> {
    ctx: &'a Context,
    asked: &'a Asked,
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
        asked: &'a Asked,
        made: &mut Made,
        answered: &Answered,
        tls: Option<&TlsMaterial>,
        progress: &'a Progress,
        resume: bool,
    ) -> Result<Self> {
        let manager = manager::manager_id(&asked.store_path);
        let tag_list = tags::machine_tags(
            &asked.machine_name,
            &asked.machine_id,
            &manager,
            &parse_tags(&asked.tags)?,
        );
        let user_data = user_data::compose(asked, tls)?;
        let key = choose_key(ctx, asked, made, resume)?;
        say_bootstrap(asked, tls, progress);
        let ownership = tags::ownership_tags(&asked.machine_name, &asked.machine_id, &manager);
        let launch = Launch {
            ami: answered.ami.clone(),
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
            asked,
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
    /// What was made is recorded in `made` before any error returns, so the cleanup
    /// removes it. On a resumed create the template waits (made only when nothing was
    /// launched before). Returns whether groups were made.
    async fn prepare(
        &mut self,
        made: &mut Made,
        answered: &Answered,
        resume: bool,
    ) -> Result<bool> {
        let (ctx, asked, progress, key) = (self.ctx, self.asked, self.progress, &self.key);
        let import = async {
            if asked.existing_key {
                return Ok(false);
            }
            if key.spare || key.recorded {
                progress.say(&format!("Using key pair {}, imported before", key.name));
                create_record::note(asked, Kind::KeyPair, Some(&key.name));
                return Ok(true);
            }
            progress.say("Importing the SSH key as key pair");
            import_recorded(
                &ctx.client,
                asked,
                &key.name,
                &key.public_line,
                &self.tag_list,
            )
            .await
            .map(|()| true)
        };
        let groups_then_template = async {
            let groups =
                ensure_groups(ctx, asked, answered, &self.tag_list, progress, true).await?;
            if resume {
                return Ok::<_, Error>((groups, Ok(None))); // made later, unless launched before
            }
            let mut l = self.launch.clone();
            l.group_ids = groups.ids.clone();
            let template =
                market::template(&ctx.client, asked, &l, &answered.pools, &self.ownership).await;
            Ok((groups, template))
        };
        let (imported, groups) = tokio::join!(import, groups_then_template);
        if let Ok(true) = imported {
            made.key_name = self.key.name.clone();
            made.key_pair_imported = true;
        }
        let (groups, template) = groups?;
        record_groups(made, &groups);
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
        made: &mut Made,
        answered: &mut Answered,
    ) -> Result<Option<Placed>> {
        let ec2 = &self.ctx.client;
        let first = market::launch(
            ec2,
            self.asked,
            &self.launch,
            &answered.pools,
            self.template.as_deref(),
            "",
            self.progress,
        )
        .await;
        let placed = match first {
            Err(e) if e.is(&[ErrorKind::TokenMismatch]) => {
                market::drop_template(ec2, self.asked, self.template.take(), self.progress).await;
                return match adoptable(self.ctx, self.asked, FRESH_PATIENCE).await? {
                    Some(i) => adopt(self.ctx, self.asked, made, &i, self.progress)
                        .await
                        .map(|()| None),
                    None => Err(e.context(
                        "an earlier attempt of this create launched with other parameters, and its instance cannot be found",
                    )),
                };
            }
            Err(e) if e.is(REFUSED_LOOKUPS) => {
                self.look_up_again(made, answered, e).await?;
                market::launch(
                    ec2,
                    self.asked,
                    &self.launch,
                    &answered.pools,
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
                create_record::settle(self.asked, Kind::Instance, Err(&e));
                market::drop_template(ec2, self.asked, self.template.take(), self.progress).await;
                Err(e)
            }
        }
    }

    /// What was looked up before — remembered from an earlier create, or changed since — no
    /// longer exists (`refused`): a group (the last machine sharing it took it away), the
    /// subnet, the image, the user's key pair, the agent's spare key pair. Forget it, look
    /// everything up again once (into `answered`), make the groups and the template if need
    /// be. What no longer resolves is reported naming its option.
    async fn look_up_again(
        &mut self,
        made: &mut Made,
        answered: &mut Answered,
        refused: Error,
    ) -> Result<()> {
        let (ctx, asked, ec2, progress) = (self.ctx, self.asked, &self.ctx.client, self.progress);
        progress.say(&format!(
            "EC2 refused what was looked up before ({}); looking it up again",
            refused.code().unwrap_or_default()
        ));
        if self.key.spare && refused.is(&[ErrorKind::NotFound(Resource::KeyPair)]) {
            // The spare key pair is gone (e.g. `gc` of another bastion's store): the
            // machine imports its own, as without the agent.
            self.key.name = asked.machine_name.clone();
            import_recorded(
                ec2,
                asked,
                &self.key.name,
                &self.key.public_line,
                &self.tag_list,
            )
            .await?;
            made.key_name = self.key.name.clone();
            self.launch.key_name = self.key.name.clone();
        }
        ctx.memory.forget(&resolve::option_key(asked));
        for id in &self.launch.group_ids {
            ctx.memory.forget_group(id);
        }
        market::drop_template(ec2, self.asked, self.template.take(), progress).await;
        let (again, _) = resolve::remembered(ctx, asked).await?;
        *answered = again;
        self.launch.ami = answered.ami.clone();
        let groups = ensure_groups(ctx, asked, answered, &self.tag_list, progress, false).await?;
        record_groups(made, &groups);
        self.launch.not_yet = just_made(made.key_pair_imported, !groups.created.is_empty(), true);
        self.launch.group_ids = groups.ids;
        self.template =
            market::template(ec2, asked, &self.launch, &answered.pools, &self.ownership).await?;
        Ok(())
    }

    /// Records the launched instance, has the agent import the next create's key pair while
    /// it boots (when this one needed a key pair of its own: not with the user's key), and
    /// waits for it to run while the template, which served its one launch, goes.
    async fn launched(mut self, made: &mut Made, placed: Placed) -> Result<()> {
        let id = placed.instance_id.clone();
        create_record::note(self.asked, Kind::Instance, Some(&id));
        if !self.asked.existing_key && !self.key.users {
            self.ctx.refill_spare_key(&self.manager);
        }
        made.instance_id = id.clone();
        made.market = placed.market.as_str().to_string();
        made.instance_type = placed.pool.instance_type.clone();
        made.subnet_id = placed.pool.subnet_id.clone();
        if !placed.pool.availability_zone.is_empty() {
            made.zone = placed.pool.availability_zone.clone();
        }
        self.progress.say(&format!(
            "Instance {id} launched ({} {}); waiting for it to run",
            placed.market.as_str(),
            placed.pool
        ));
        let (waited, ()) = tokio::join!(
            wait(self.ctx, self.asked, made, &id, self.progress),
            market::drop_template(
                &self.ctx.client,
                self.asked,
                self.template.take(),
                self.progress
            )
        );
        waited
    }
}

/// Imports the machine's key pair `name`, recorded (the call, then its outcome) for `rm`.
async fn import_recorded(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    name: &str,
    public_line: &str,
    tag_list: &[(String, String)],
) -> Result<()> {
    create_record::note(asked, Kind::KeyPair, None);
    let imported = key_pair::import(ec2, name, public_line, tag_list).await;
    create_record::settle(asked, Kind::KeyPair, imported.as_ref().map(|()| name));
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
async fn wait(
    ctx: &Context,
    asked: &Asked,
    made: &mut Made,
    id: &str,
    progress: &Progress,
) -> Result<()> {
    let running = wait_running(ctx, id, asked, RUN_TIMEOUT).await?;
    made.ip_address = instance::address(&running, asked).unwrap_or_default();
    made.private_ip_address = running.private_ip_address().unwrap_or_default().to_string();
    made.spot_request_id = running
        .spot_instance_request_id()
        .unwrap_or_default()
        .to_string();
    made.market = if instance::is_spot(&running) {
        Market::Spot
    } else {
        Market::OnDemand
    }
    .as_str()
    .to_string();
    if let Some(t) = running.instance_type() {
        made.instance_type = t.as_str().to_string();
    }
    if let Some(s) = running.subnet_id() {
        made.subnet_id = s.to_string();
    }
    if let Some(z) = running.placement().and_then(|p| p.availability_zone()) {
        made.zone = z.to_string();
    }
    progress.say(&format!("Running at {}", made.ip_address));
    Ok(())
}

/// The id of the instance an earlier attempt of this create launched, looked for by the
/// machine's tag until `patience` runs out: EC2's reads are eventually consistent, so a fresh
/// instance may take seconds to show up in `DescribeInstances`
/// (https://docs.aws.amazon.com/AWSEC2/latest/devguide/eventual-consistency.html).
async fn adoptable(ctx: &Context, asked: &Asked, patience: Duration) -> Result<Option<String>> {
    let found = retry_fresh_for(
        patience,
        &[ErrorKind::NotFound(Resource::Instance)],
        || async {
            let found = instance::find_by_machine_id(&ctx.client, &asked.machine_id).await?;
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
async fn adopt(
    ctx: &Context,
    asked: &Asked,
    made: &mut Made,
    id: &str,
    progress: &Progress,
) -> Result<()> {
    create_record::note(asked, Kind::Instance, Some(id));
    made.instance_id = id.to_string();
    progress.say(&format!(
        "Instance {id} was launched by an earlier attempt of this create; waiting for it to run"
    ));
    wait(ctx, asked, made, id, progress).await
}
