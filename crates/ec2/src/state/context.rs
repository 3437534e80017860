//! What EC2 operations run with: the SDK client and the way instance state is read — directly
//! (one plugin process, one call per question) or through the agent's shared cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::error::Result;
use crate::resources::instance;
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
}

impl Context {
    /// Reads state with a call per question.
    pub fn direct(client: aws_sdk_ec2::Client) -> Self {
        Context {
            client,
            cache: None,
            memory: Arc::default(),
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
