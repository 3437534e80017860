//! What EC2 operations run with: the SDK client and the way instance state is read — directly
//! (one plugin process, one call per question) or through the agent's shared cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::error::Result;
use crate::resources::instance;
use crate::resources::spare_key::{Spare, SpareKeys};
use crate::state::cache::StateCache;
use crate::state::memory::Memory;
use crate::state::observed::Observed;

/// The EC2 client and state reader of an operation.
#[derive(Clone)]
pub struct Context {
    /// The SDK client (rate-limited in the agent).
    pub client: aws_sdk_ec2::Client,
    cache: Option<Arc<StateCache>>,
    /// What this process remembers between creates.
    pub memory: Arc<Memory>,
    /// The agent's spare key pair (none for a plugin on its own: it would outlive the create).
    spares: Option<Arc<SpareKeys>>,
}

impl Context {
    /// Reads state with a call per question.
    pub fn direct(client: aws_sdk_ec2::Client) -> Self {
        Context {
            client,
            cache: None,
            memory: Arc::default(),
            spares: None,
        }
    }

    /// Reads state through `cache` (coalesced, shared, tolerant of throttling), and
    /// remembers between creates in `memory` (the agent keeps both per EC2 client).
    pub fn cached(
        client: aws_sdk_ec2::Client,
        cache: Arc<StateCache>,
        memory: Arc<Memory>,
    ) -> Self {
        Context {
            client,
            cache: Some(cache),
            memory,
            spares: Some(Arc::default()),
        }
    }

    /// The spare key pair ready for a create, if this is the agent and one is.
    pub fn take_spare_key(&self) -> Option<Spare> {
        self.spares.as_ref()?.take(&self.client)
    }

    /// Has the agent import a spare key pair for the next create (tagged for `manager`).
    pub fn refill_spare_key(&self, manager: &str) {
        if let Some(s) = &self.spares {
            s.refill(&self.client, manager);
        }
    }

    /// Deletes a spare key pair that is getting old (the agent asks now and then).
    pub fn expire_spare_key(&self) {
        if let Some(s) = &self.spares {
            s.expire(&self.client);
        }
    }

    /// Deletes the spare key pair and makes no more: the agent is done with this client.
    pub async fn close_spare_key(&self) {
        if let Some(s) = &self.spares {
            s.close(&self.client).await;
        }
    }

    /// Observes instance `id` (and its spot interruption status).
    pub async fn observe(&self, id: &str) -> Result<Observed> {
        if let Some(cache) = &self.cache {
            return cache.observe(id).await;
        }
        let found = instance::describe(&self.client, id).await?;
        let interruption = match &found {
            Some(i) => instance::interruptions(&self.client, &[i])
                .await?
                .remove(id),
            None => None,
        };
        Ok(Observed {
            instance: found,
            interruption,
            age: Duration::ZERO,
        })
    }

    /// Observes instance `id` as it is at some moment from now until `by` (it serves polling
    /// for a launch): alone, one call at `by`, without the spot interruption check; in the
    /// agent, the first shared call that starts by then.
    pub async fn observe_fresh_by(&self, id: &str, by: Instant) -> Result<Observed> {
        if let Some(cache) = &self.cache {
            return cache.observe_fresh_by(id, by).await;
        }
        tokio::time::sleep_until(by.into()).await;
        let found = instance::describe(&self.client, id).await?;
        Ok(Observed {
            instance: found,
            interruption: None,
            age: Duration::ZERO,
        })
    }

    /// Forgets what is known of `id` (after changing it).
    pub fn forget(&self, id: &str) {
        if let Some(cache) = &self.cache {
            cache.forget(id);
        }
    }
}
