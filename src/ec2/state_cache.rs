//! Coalesced, cached state reads (in the agent): questions about instances that arrive within a
//! short window become one `DescribeInstances` for all of them — plus every other instance
//! asked about lately whose entry is getting old — answered from a cache with a short TTL.
//! When EC2 throttles or fails, callers get the last known state with its age instead of an
//! error that would make gitlab-runner think a healthy machine broke.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, Instance};
use tokio::sync::oneshot;
use tracing::debug;

use super::context::Observed;
use super::error::{Error, Result, aws};
use super::instance;

/// Most values one EC2 filter takes.
const FILTER_VALUES: usize = 200;
/// Most instances refreshed by one batch.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone)]
struct Entry {
    instance: Option<Instance>,
    interruption: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    asked: HashMap<String, Instant>,
    waiting: HashMap<String, Vec<oneshot::Sender<Result<Observed>>>>,
    scheduled: bool,
}

/// Shared state reads for one EC2 client.
pub struct StateCache {
    client: aws_sdk_ec2::Client,
    ttl: Duration,
    window: Duration,
    keep: Duration,
    inner: Mutex<Inner>,
}

impl StateCache {
    /// A cache answering from entries younger than `ttl`, batching misses for `window`, and
    /// refreshing instances asked about within `keep`.
    pub fn new(
        client: aws_sdk_ec2::Client,
        ttl: Duration,
        window: Duration,
        keep: Duration,
    ) -> Arc<Self> {
        Arc::new(StateCache {
            client,
            ttl,
            window,
            keep,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Observes instance `id`, from the cache when fresh enough.
    pub async fn observe(self: &Arc<Self>, id: &str) -> Result<Observed> {
        self.ask(id, true).await
    }

    /// Observes instance `id` in the next call (joining the others waiting for it).
    pub async fn observe_fresh(self: &Arc<Self>, id: &str) -> Result<Observed> {
        self.ask(id, false).await
    }

    async fn ask(self: &Arc<Self>, id: &str, cached_ok: bool) -> Result<Observed> {
        let rx = {
            let mut inner = self.inner.lock().expect("state cache");
            let now = Instant::now();
            inner.asked.insert(id.to_string(), now);
            if let Some(e) = inner.entries.get(id).filter(|_| cached_ok) {
                if now.duration_since(e.at) < self.ttl {
                    return Ok(observed(e, now));
                }
            }
            let (tx, rx) = oneshot::channel();
            inner.waiting.entry(id.to_string()).or_default().push(tx);
            if !inner.scheduled {
                inner.scheduled = true;
                tokio::spawn(Arc::clone(self).run_batch());
            }
            rx
        };
        rx.await
            .unwrap_or_else(|_| Err(Error::Other("state cache dropped the question".into())))
    }

    /// Forgets `id` (it was changed or removed).
    pub fn forget(&self, id: &str) {
        let mut inner = self.inner.lock().expect("state cache");
        inner.entries.remove(id);
        inner.asked.remove(id);
    }

    async fn run_batch(self: Arc<Self>) {
        tokio::time::sleep(self.window).await;
        let (ids, waiting) = {
            let mut inner = self.inner.lock().expect("state cache");
            inner.scheduled = false;
            let waiting = std::mem::take(&mut inner.waiting);
            let now = Instant::now();
            let keep = self.keep;
            inner.asked.retain(|_, at| now.duration_since(*at) < keep);
            let mut ids: Vec<String> = waiting.keys().cloned().collect();
            // Refresh-ahead: everything asked about lately whose entry is near the end of its
            // life joins this call, so under steady demand one call per TTL serves them all.
            let stale: Vec<String> = inner
                .asked
                .keys()
                .filter(|id| !waiting.contains_key(*id))
                .filter(|id| {
                    inner
                        .entries
                        .get(*id)
                        .is_none_or(|e| now.duration_since(e.at) >= self.ttl.mul_f64(0.8))
                })
                .cloned()
                .collect();
            ids.extend(stale);
            ids.truncate(MAX_BATCH);
            (ids, waiting)
        };
        let fetched = fetch(&self.client, &ids).await;
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("state cache");
        match fetched {
            Ok(found) => {
                for id in &ids {
                    let (instance, interruption) = found.get(id).cloned().unwrap_or((None, None));
                    inner.entries.insert(
                        id.clone(),
                        Entry {
                            instance,
                            interruption,
                            at: now,
                        },
                    );
                }
                for (id, txs) in waiting {
                    let e = inner.entries.get(&id).cloned();
                    for tx in txs {
                        let answer = match &e {
                            Some(e) => Ok(observed(e, now)),
                            None => {
                                Err(Error::Other(format!("instance {id} was not in the batch")))
                            }
                        };
                        let _ = tx.send(answer);
                    }
                }
            }
            Err(err) => {
                debug!("state batch of {} failed: {err}", ids.len());
                for (id, txs) in waiting {
                    let last = inner.entries.get(&id).cloned();
                    for tx in txs {
                        let _ = tx.send(match &last {
                            Some(e) => Ok(observed(e, now)),
                            None => Err(err.clone()),
                        });
                    }
                }
            }
        }
    }
}

fn observed(e: &Entry, now: Instant) -> Observed {
    Observed {
        instance: e.instance.clone(),
        interruption: e.interruption.clone(),
        age: now.duration_since(e.at),
    }
}

type Found = HashMap<String, (Option<Instance>, Option<String>)>;

/// One `DescribeInstances` by id list (up to 1000 ids).
async fn describe_ids(
    client: &aws_sdk_ec2::Client,
    ids: &[String],
    found: &mut Found,
) -> Result<()> {
    let mut pages = client
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws("reading instance states (DescribeInstances)", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            if let Some(id) = i.instance_id() {
                found.insert(id.to_string(), (Some(i.clone()), None));
            }
        }
    }
    Ok(())
}

/// One `DescribeInstances` for up to 1000 ids, then one spot-request look for the running spot
/// instances among them.
async fn fetch(client: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Found> {
    let mut found: Found = HashMap::new();
    let mut wanted: Vec<String> = ids.to_vec();
    // An id list fails whole when one id is unknown (long terminated): drop the ids EC2 names
    // as unknown and ask again; if it names none we can parse, ask by filter instead.
    for _ in 0..3 {
        if wanted.is_empty() {
            break;
        }
        match describe_ids(client, &wanted, &mut found).await {
            Ok(()) => {
                wanted.clear();
                break;
            }
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
                let text = e.to_string();
                let before = wanted.len();
                wanted.retain(|id| !text.contains(id.as_str()));
                if wanted.len() == before {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    for chunk in wanted.chunks(FILTER_VALUES) {
        let mut pages = client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("reading instance states (DescribeInstances)", e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                if let Some(id) = i.instance_id() {
                    found.insert(id.to_string(), (Some(i.clone()), None));
                }
            }
        }
    }
    let spot_running: Vec<String> = found
        .values()
        .filter_map(|(i, _)| i.as_ref())
        .filter(|i| {
            instance::is_spot(i) && instance::machine_state(i) == crate::plugin::State::Running
        })
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    for chunk in spot_running.chunks(FILTER_VALUES) {
        let out = client
            .describe_spot_instance_requests()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws(
                    "checking for spot interruptions (DescribeSpotInstanceRequests)",
                    e,
                )
            })?;
        for r in out.spot_instance_requests() {
            let (Some(id), Some(code)) = (r.instance_id(), r.status().and_then(|s| s.code()))
            else {
                continue;
            };
            if instance::is_interruption(code) {
                if let Some(entry) = found.get_mut(id) {
                    entry.1 = Some(code.to_string());
                }
            }
        }
    }
    Ok(found)
}
