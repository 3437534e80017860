//! Waiting for a launched (or started) instance to run with the address SSH and Docker use.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Instance, InstanceStateName};

use crate::aws::error::{Error, Result};
use crate::options::Asked;
use crate::resources::instance::address;
use crate::state::context::Context;

/// How long a running instance may lack the address SSH needs before the wait gives up.
pub const NO_ADDRESS_GRACE: Duration = Duration::from_secs(15);

/// Polls until the instance runs and has the address SSH will use. The first look goes at
/// once (the launch answer says "pending"; an instance may run by the time it is asked), the
/// next 250 ms later, and the interval grows to 2 s (amazonec2: a fixed 3 s), so
/// docker-machine's own checks pass at their first try. Each look may happen
/// early, in a call the agent makes anyway (see `Context::observe_fresh_by`). An instance that
/// ends up stopped or terminated (e.g. a spot instance reclaimed at once) fails the wait with
/// EC2's reason.
pub async fn wait_running(
    ctx: &Context,
    id: &str,
    asked: &Asked,
    timeout: Duration,
) -> Result<Instance> {
    let start = Instant::now();
    let mut delay = Duration::ZERO;
    let mut running_since: Option<Instant> = None;
    loop {
        // Right after a launch EC2 may not know the id yet (eventual consistency): keep polling.
        let by = Instant::now() + delay;
        delay = (delay * 2).clamp(Duration::from_millis(250), Duration::from_secs(2));
        if let Some(instance) = ctx.observe_fresh_by(id, by).await?.instance {
            let state = instance.state().and_then(|s| s.name()).cloned();
            match state {
                Some(InstanceStateName::Running) if address(&instance, asked).is_some() => {
                    return Ok(instance);
                }
                Some(InstanceStateName::Running) => {
                    // EC2 assigns addresses at launch: one still missing after a while never comes.
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= NO_ADDRESS_GRACE {
                        return Err(Error::Other(format!(
                            "instance {id} runs but has no {} IP address; use --amazonec2-use-private-address \
                             or --amazonec2-private-address-only, or a subnet that gives public addresses",
                            if asked.private_ip_only || asked.use_private_ip {
                                "private"
                            } else {
                                "public"
                            }
                        )));
                    }
                }
                Some(
                    InstanceStateName::Terminated
                    | InstanceStateName::ShuttingDown
                    | InstanceStateName::Stopped,
                ) => {
                    let reason = instance
                        .state_reason()
                        .map(|r| {
                            format!("{}: {}", r.code().unwrap_or("?"), r.message().unwrap_or(""))
                        })
                        .unwrap_or_else(|| "no reason given".into());
                    return Err(Error::Other(format!(
                        "waiting for instance {id} to run: it is {} ({reason})",
                        state.map(|s| s.as_str().to_string()).unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
        if start.elapsed() >= timeout {
            return Err(Error::Other(format!(
                "waiting for instance {id} to run: no running instance with an address after {}s",
                timeout.as_secs()
            )));
        }
    }
}
