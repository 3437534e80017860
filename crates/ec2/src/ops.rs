//! The driver's EC2 operations on one machine's config, run the same way in a plugin process
//! (direct) and in the agent (for every plugin of a store): one code path for the EC2 logic.

use std::collections::BTreeMap;

use tracing::debug;

use crate::aws::error::{Error, Result, aws};
use crate::create;
use crate::create::resolve;
use crate::create::tls_bootstrap::TlsMaterial;
use crate::create::wait::wait_running;
use crate::options::config::{Answered, Asked, Config, Made};
use crate::progress::Progress;
use crate::resources::{instance, security_group};
use crate::state::context::Context;
use crate::state::machine_state::MachineState;
use crate::{labels, remove};

/// docker-machine's special error text for `GetURL` on a machine that is not running.
pub const HOST_NOT_RUNNING: &str = "Host is not running";

/// An operation that talks to EC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Resolve and check everything a create needs.
    PreCreateCheck,
    /// Create the machine.
    Create,
    /// Create the machine again after the agent running its create died: adopt what that
    /// attempt launched instead of launching twice.
    ResumeCreate,
    /// Remove the machine and all it owns.
    Remove,
    /// Read the state.
    State,
    /// Read the Docker URL (requires Running).
    Url,
    /// Read the IP address.
    Ip,
    /// Start a stopped machine.
    Start,
    /// Stop gracefully.
    Stop,
    /// Reboot.
    Restart,
    /// Stop forcibly.
    Kill,
    /// Apply labels as tags (GitLab's fork's `UpdateLabels`).
    UpdateLabels,
}

/// What an operation takes besides the machine's config: what docker-machine hands over in
/// the same command and never stores in config.json.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// `UpdateLabels`: the labels.
    pub labels: BTreeMap<String, String>,
    /// `Create`: the TLS material of GitLab's fork's TLS bootstrap (its `Debug` hides the key).
    pub tls: Option<TlsMaterial>,
}

impl Op {
    /// Whether the operation changes the machine (and so runs alone: one such operation per
    /// machine at a time).
    pub fn changes(self) -> bool {
        !matches!(self, Op::State | Op::Url | Op::Ip | Op::PreCreateCheck)
    }
}

/// What an operation answers besides the updated config.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The state (State, Url).
    pub state: MachineState,
    /// The URL or IP (Url, Ip).
    pub text: String,
    /// Age of the EC2 observation behind the answer.
    pub age: std::time::Duration,
}

impl Outcome {
    fn done() -> Self {
        Outcome {
            state: MachineState::None,
            text: String::new(),
            age: std::time::Duration::ZERO,
        }
    }
}

/// Runs `op` (with `input`) on the machine described by `config`, updating it.
pub async fn run(
    ctx: &Context,
    op: Op,
    input: &Input,
    config: &mut Config,
    progress: &Progress,
) -> Result<Outcome> {
    match op {
        Op::PreCreateCheck => {
            config.answered = Some(pre_create_check(ctx, &config.asked, progress).await?);
            Ok(Outcome::done())
        }
        Op::Create | Op::ResumeCreate => {
            create(ctx, input, config, progress, op == Op::ResumeCreate).await
        }
        Op::UpdateLabels => update_labels(ctx, input, &config.asked, &mut config.made).await,
        Op::Remove => remove_machine(ctx, &config.asked, &config.made, progress).await,
        Op::State => {
            let (state, age) = live_state(ctx, &config.asked, &mut config.made).await?;
            Ok(Outcome {
                state,
                text: String::new(),
                age,
            })
        }
        Op::Url => url(ctx, &config.asked, &mut config.made).await,
        Op::Ip => ip(ctx, &config.asked, &mut config.made).await,
        Op::Start => start(ctx, &config.asked, &mut config.made).await,
        Op::Stop | Op::Kill => stop(ctx, &config.asked, &mut config.made, op == Op::Kill).await,
        Op::Restart => {
            let id = instance_id(ctx, &config.asked, &mut config.made).await?;
            let rebooted = ctx.client.reboot_instances().instance_ids(&id).send().await;
            ctx.forget(&id);
            rebooted.map_err(|e| aws("rebooting the instance (RebootInstances)", e))?;
            Ok(Outcome::done())
        }
    }
}

/// `Create` (or a create resumed after the agent that ran it died): the pre-create check's
/// answers, looked up again when this process has none, then the launch.
async fn create(
    ctx: &Context,
    input: &Input,
    config: &mut Config,
    progress: &Progress,
    resume: bool,
) -> Result<Outcome> {
    let mut answered = match config.answered.take() {
        Some(a) if !a.pools.is_empty() => a,
        _ => pre_create_check(ctx, &config.asked, progress).await?,
    };
    // The create's last read (the instance running) stays cached: docker-machine's
    // GetState right after it is answered without another DescribeInstances.
    let tls = input.tls.as_ref();
    let created = create::create(ctx, &config.asked, &mut answered, tls, progress, resume).await;
    config.answered = Some(answered);
    match created {
        Ok(made) => config.made = made,
        Err(failed) => {
            config.made = failed.made;
            return Err(failed.error);
        }
    }
    Ok(Outcome::done())
}

/// GitLab's fork's `UpdateLabels`: the labels as tags of the instance and its volumes.
async fn update_labels(
    ctx: &Context,
    input: &Input,
    asked: &Asked,
    made: &mut Made,
) -> Result<Outcome> {
    let id = instance_id(ctx, asked, made).await?;
    let tagged = labels::apply(ctx, asked, &id, &input.labels).await?;
    debug!(
        "labels {:?} set on {}",
        input.labels.keys().collect::<Vec<_>>(),
        tagged.join(", ")
    );
    Ok(Outcome::done())
}

/// `Remove`: everything the machine made, then what was known of its instance forgotten.
async fn remove_machine(
    ctx: &Context,
    asked: &Asked,
    made: &Made,
    progress: &Progress,
) -> Result<Outcome> {
    if made.instance_id.is_empty() && asked.machine_id.is_empty() {
        progress.say(
            "Nothing to remove in EC2: the machine has neither an instance id nor a machine id",
        );
        return Ok(Outcome::done());
    }
    let done = remove::remove(ctx, asked, made, create::GROUP_RELEASE_TIMEOUT).await;
    // Whatever the removal got to, what was known of the instance is out of date.
    ctx.forget(&made.instance_id);
    let done = done?;
    progress.say(&format!("Removed: {}", done.summary()));
    Ok(Outcome::done())
}

/// `GetURL`: Docker's address on the machine, only while it runs.
async fn url(ctx: &Context, asked: &Asked, made: &mut Made) -> Result<Outcome> {
    let (state, age) = live_state(ctx, asked, made).await?;
    if state != MachineState::Running {
        return Err(Error::Other(HOST_NOT_RUNNING.into()));
    }
    let text = if made.ip_address.is_empty() {
        String::new()
    } else {
        format!("tcp://{}:{}", made.ip_address, security_group::DOCKER_PORT)
    };
    Ok(Outcome { state, text, age })
}

/// `GetIP`: the address docker-machine reaches the instance at, remembered in the config.
async fn ip(ctx: &Context, asked: &Asked, made: &mut Made) -> Result<Outcome> {
    let id = instance_id(ctx, asked, made).await?;
    let seen = ctx.observe(&id).await?;
    let i = seen.instance.ok_or_else(|| gone(&id))?;
    let ip = instance::address(&i, asked)
        .ok_or_else(|| Error::Other(format!("instance {id} has no IP address yet")))?;
    made.ip_address = ip.clone();
    Ok(Outcome {
        state: MachineState::of(&i),
        text: ip,
        age: seen.age,
    })
}

/// `Start`: the instance started and waited for, with its (possibly new) address.
async fn start(ctx: &Context, asked: &Asked, made: &mut Made) -> Result<Outcome> {
    let id = instance_id(ctx, asked, made).await?;
    let started = ctx.client.start_instances().instance_ids(&id).send().await;
    // Even a failed call may have reached EC2 (a lost answer): read it afresh.
    ctx.forget(&id);
    started.map_err(|e| aws("starting the instance (StartInstances)", e))?;
    // A restarted instance may get a new public address.
    made.ip_address.clear();
    let running = wait_running(ctx, &id, asked, create::RUN_TIMEOUT).await?;
    made.ip_address = instance::address(&running, asked).unwrap_or_default();
    Ok(Outcome {
        state: MachineState::Running,
        ..Outcome::done()
    })
}

/// `Stop`, or `Kill` (`force`): `StopInstances`, and what was known of the instance forgotten.
async fn stop(ctx: &Context, asked: &Asked, made: &mut Made, force: bool) -> Result<Outcome> {
    let id = instance_id(ctx, asked, made).await?;
    let stopped = ctx
        .client
        .stop_instances()
        .instance_ids(&id)
        .force(force)
        .send()
        .await;
    ctx.forget(&id);
    stopped.map_err(|e| {
        aws(
            if force {
                "stopping the instance forcibly (StopInstances)"
            } else {
                "stopping the instance (StopInstances)"
            },
            e,
        )
    })?;
    Ok(Outcome::done())
}

/// Resolves the launch (network, image, types, pools) `asked` for.
pub async fn pre_create_check(
    ctx: &Context,
    asked: &Asked,
    progress: &Progress,
) -> Result<Answered> {
    if asked.machine_id.is_empty() {
        return Err(Error::Other(
            "SetConfigFromFlags must run before PreCreateCheck".into(),
        ));
    }
    progress.say(&format!(
        "Checking {} for network, image and instance type",
        asked.region
    ));
    let (mut r, remembered) = resolve::remembered(ctx, asked).await?;
    if asked.use_baked_image {
        use_baked_image(ctx, asked, &mut r, progress).await?;
    }
    let pools: Vec<String> = r.pools.iter().map(|p| p.to_string()).collect();
    progress.say(&format!(
        "Will launch {} from {} in {}{}: {}",
        r.architecture,
        r.ami,
        r.vpc_id,
        if remembered {
            " (as resolved for these options before)"
        } else {
            ""
        },
        pools.join(", ")
    ));
    Ok(r)
}

/// `amazonec2-use-baked-image`: the newest baked image of the resolved image replaces it,
/// said to the user either way.
async fn use_baked_image(
    ctx: &Context,
    asked: &Asked,
    r: &mut Answered,
    progress: &Progress,
) -> Result<()> {
    use create::baked;
    match baked::newest(&ctx.client, &r.ami, &asked.docker_version).await? {
        Some(image) => {
            let id = image.image_id().unwrap_or_default().to_string();
            progress.say(&format!(
                "Using the baked image {id} ({}, built {} from {}, recipe {})",
                image.name().unwrap_or_default(),
                image.creation_date().unwrap_or_default(),
                r.ami,
                baked::tag_of(&image, baked::RECIPE)
            ));
            r.ami = id;
        }
        None => progress.say(&format!(
            "No baked image of {} yet (docker-machine-driver-ec2spot image build): launching it as it is",
            r.ami
        )),
    }
    Ok(())
}

/// The error for an instance EC2 no longer knows.
fn gone(id: &str) -> Error {
    Error::Other(format!("instance {id} no longer exists in EC2"))
}

/// The machine's instance id; for a create that died before saving it, the instance carrying
/// the machine's tag.
async fn instance_id(ctx: &Context, asked: &Asked, made: &mut Made) -> Result<String> {
    if !made.instance_id.is_empty() {
        return Ok(made.instance_id.clone());
    }
    if !asked.machine_id.is_empty()
        && let Some(i) = instance::find_by_machine_id(&ctx.client, &asked.machine_id)
            .await?
            .first()
    {
        made.instance_id = i.instance_id().unwrap_or_default().to_string();
        return Ok(made.instance_id.clone());
    }
    Err(Error::Other(format!(
        "machine {} has no EC2 instance (its create did not finish); remove it with docker-machine rm",
        asked.machine_name
    )))
}

/// The machine's state from EC2 (refreshing its saved address); a spot instance AWS has marked
/// for interruption counts as `Stopping`, so gitlab-runner's `config` check drops it.
async fn live_state(
    ctx: &Context,
    asked: &Asked,
    made: &mut Made,
) -> Result<(MachineState, std::time::Duration)> {
    let id = instance_id(ctx, asked, made).await?;
    let seen = ctx.observe(&id).await?;
    let i = seen.instance.ok_or_else(|| gone(&id))?;
    if let Some(a) = instance::address(&i, asked) {
        made.ip_address = a;
    }
    let state = MachineState::of(&i);
    debug!(
        "instance {id} is {:?}: {state:?} (seen {:.1}s ago)",
        i.state().and_then(|s| s.name()),
        seen.age.as_secs_f64()
    );
    if state == MachineState::Running
        && let Some(code) = seen.interruption
    {
        debug!("spot interruption notice ({code}): reporting Stopping");
        return Ok((MachineState::Stopping, seen.age));
    }
    Ok((state, seen.age))
}
