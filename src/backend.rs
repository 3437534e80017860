//! Where a plugin process's EC2 work runs: in the store's agent (the default: shared clients,
//! rate limits and state reads) or in this process (`EC2SPOT_AGENT=off`, no store, or no
//! agent to be had). The one place that knows both paths; either way the same
//! [`ec2spot_ec2::ops::run`] does the work.

use std::time::Duration;

use ec2spot_agent::client::{AgentClient, AgentError, NoAgent, store_of};
use ec2spot_ec2::aws::error::Error;
use ec2spot_ec2::ops::{self, Input, Op, Outcome};
use ec2spot_ec2::options::config::Config;
use ec2spot_ec2::progress::{Progress, Sink};
use ec2spot_ec2::state::context::Context;
use ec2spot_ec2::{aws, machine_lock};
use tracing::debug;

/// The backend of one plugin process, chosen at its first operation.
#[derive(Default)]
pub struct Backend {
    chosen: Option<Chosen>,
    /// Why the store's agent was not used, to say once (it is not this user's).
    warning: Option<String>,
}

enum Chosen {
    /// In this process.
    Direct(Context),
    /// In the store's agent.
    Agent(AgentClient),
}

/// Whether the agent is switched off (`EC2SPOT_AGENT=off`).
fn agent_disabled() -> bool {
    std::env::var("EC2SPOT_AGENT").is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}

async fn direct(config: &Config) -> Result<Chosen, Error> {
    Ok(Chosen::Direct(Context::direct(
        aws::client(&config.asked).await?,
    )))
}

/// Where the work runs, and a warning when the store's agent is not this user's.
async fn choose(config: &Config) -> Result<(Chosen, Option<String>), Error> {
    if agent_disabled() {
        return Ok((direct(config).await?, None));
    }
    let Some(store) = store_of(config) else {
        return Ok((direct(config).await?, None));
    };
    match AgentClient::connect(&store).await {
        Ok(c) => Ok((Chosen::Agent(c), None)),
        Err(NoAgent::Untrusted(why)) => Ok((
            direct(config).await?,
            Some(format!(
                "not using the ec2spot agent: {why}; working without it"
            )),
        )),
        Err(why) => {
            debug!("ec2spot agent unavailable ({why}); working directly");
            Ok((direct(config).await?, None))
        }
    }
}

impl Backend {
    /// Forgets the choice (new options may name another store or credentials).
    pub fn reset(&mut self) {
        self.chosen = None;
    }

    /// Runs `op` with `input` on `config`'s machine where the EC2 work happens, its progress
    /// lines to `say`; when the agent goes away mid-way, runs it here (operations are safe to
    /// repeat: a create resumes from what it finds by its tag).
    pub async fn run(
        &mut self,
        op: Op,
        input: &Input,
        config: &mut Config,
        say: Sink,
    ) -> Result<Outcome, Error> {
        if self.chosen.is_none() {
            let (chosen, warning) = choose(config).await?;
            self.chosen = Some(chosen);
            self.warning = warning;
        }
        let progress = &Progress::to(say);
        if let Some(w) = self.warning.take() {
            progress.say(&w);
        }
        // A crashed agent is replaced (the next plugin start would do it anyway). Right after
        // a crash its socket may still accept for a moment, so reconnect a few times before
        // working on our own.
        let mut op = op;
        for attempt in 0..4u32 {
            let Some(Chosen::Agent(agent)) = &self.chosen else {
                break;
            };
            match agent.run(op, input, config, progress).await {
                Ok(o) => return Ok(o),
                Err(AgentError::Op(e)) => return Err(e),
                Err(AgentError::Unavailable(why)) => {
                    debug!("ec2spot agent went away ({why})");
                    if op == Op::Create {
                        op = Op::ResumeCreate;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
                    let reconnected = match (attempt < 3, store_of(config)) {
                        (true, Some(store)) => AgentClient::connect(&store)
                            .await
                            .map_err(|why| debug!("no new agent ({why})"))
                            .ok(),
                        _ => None,
                    };
                    self.chosen = match reconnected {
                        Some(c) => Some(Chosen::Agent(c)),
                        None => {
                            debug!("working directly");
                            Some(direct(config).await?)
                        }
                    };
                }
            }
        }
        let Some(Chosen::Direct(ctx)) = &self.chosen else {
            unreachable!("backend chosen above")
        };
        // One changing operation per machine at a time, also with the agent's.
        let serial = if op.changes() {
            machine_lock::lock(&config.asked).await
        } else {
            None
        };
        let result = ops::run(ctx, op, input, config, progress).await;
        match serial {
            Some(lock) if op == Op::Remove && result.is_ok() => lock.remove(),
            other => drop(other),
        }
        result
    }
}
