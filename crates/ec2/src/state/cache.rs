//! Coalesced, cached state reads (in the agent). A question the cache cannot answer waits for
//! a read already under way for that instance, or gathers with others for a short window into
//! one `DescribeInstances`, which reads every other instance asked about lately too (a call
//! costs the same for one id or a thousand, and each one postpones the next). While several
//! machines are asked about within a TTL (a busy runner), all of them are read again shortly
//! before their entries expire, so questions are answered from memory without waiting for a
//! call; a quiet cache is only read on demand. The first question of a cache that knows its
//! store's manager id also reads, once and beside it, every live machine carrying that id, so
//! an agent that starts next to many machines does not meet each one with a miss. A question
//! that must see a newer state (a poll for a launch to finish) names how long it may wait: it
//! rides along with any call that starts by then, so concurrent creates and refreshes share
//! calls. When EC2 throttles or cannot be reached, callers get the last known state with its
//! age instead of an error that would make gitlab-runner think a healthy machine broke — but
//! only while that state is younger than a bound, and never when EC2 refuses the credentials:
//! a machine terminated meanwhile must not stay "Running" and get jobs. Entries of machines
//! nobody asks about any more are dropped, and a closed cache stops reading.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, Instance};
use tokio::sync::oneshot;
use tracing::debug;

use crate::aws::error::{Error, Result, aws};
use crate::resources::instance;
use crate::state::machine_state::MachineState;
use crate::state::observed::Observed;

/// Most values one EC2 filter takes.
const FILTER_VALUES: usize = 200;
/// Most instances refreshed by one batch.
const MAX_BATCH: usize = 1000;
/// The refresher reads every entry when the oldest reaches this share of the TTL...
const REFRESH_AGE: f64 = 0.9;
/// ...if at least this many machines were asked about within the last TTL: a read ahead then
/// replaces the one their next questions would make, while for fewer it would only add one.
const BUSY_MACHINES: usize = 2;

/// A question waiting for a read: where its answer goes, and whether it is a launch poll
/// (which needs the instance only, not its spot interruption notice).
struct Answer {
    tx: oneshot::Sender<Result<Observed>>,
    poll: bool,
}

/// What one state call reads: the instances, how many questions wait for the next call, and
/// the spot requests already known of running spot instances among them (instance, request).
struct Batch {
    ids: Vec<String>,
    left: usize,
    known: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Entry {
    instance: Option<Instance>,
    interruption: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Instances asked about, with the last time: the refresher keeps these fresh.
    asked: HashMap<String, Instant>,
    /// Questions for the next call.
    waiting: HashMap<String, Vec<Answer>>,
    /// Instances being read now, with the questions that will take that read's answer.
    reading: HashMap<String, Vec<Answer>>,
    /// When `forget` dropped an instance: a read begun before must not bring it back.
    forgotten: HashMap<String, Instant>,
    /// When the earliest planned call starts.
    next_call: Option<Instant>,
    /// Whether the refresher runs.
    refreshing: bool,
    /// Set by `close`: the refresher stops.
    closed: bool,
    /// The store's machines were read by their manager tag (or are being read).
    seeded: bool,
    /// Instances seen with a spot interruption notice (each counted once).
    noticed: HashSet<String>,
}

/// How a cache answered state questions, and the interruption notices it saw (counters for
/// the agent's metrics; they only grow).
#[derive(Debug, Default)]
pub struct Tally {
    /// Answered by a read made for the question (or one it rode along with).
    pub fresh: AtomicU64,
    /// Answered from memory, within the TTL.
    pub cached: AtomicU64,
    /// Answered with the last known state while EC2 throttled or failed (within `max_stale`).
    pub stale: AtomicU64,
    /// Instances first seen with a spot interruption notice.
    pub interruptions: AtomicU64,
}

/// One instance as the cache last saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The instance id.
    pub id: String,
    /// What the instance was, in brief; `None` when EC2 did not know it.
    pub instance: Option<Brief>,
    /// Its spot interruption notice (the spot request's status code), if any.
    pub interruption: Option<String>,
    /// How long ago it was read.
    pub age: Duration,
}

/// What a snapshot tells of an instance: what the metrics and `fleet` show, taken under the
/// cache's lock without copying the whole instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    /// Its state for docker-machine.
    pub state: MachineState,
    /// EC2's name of its state (`running`, …).
    pub ec2_state: String,
    /// Its instance type.
    pub instance_type: String,
    /// Its availability zone.
    pub zone: String,
    /// A spot instance.
    pub spot: bool,
    /// When it was launched (Unix seconds, 0 when not said).
    pub launched_unix: i64,
}

impl Brief {
    /// `i` in brief.
    pub fn of(i: &Instance) -> Brief {
        Brief {
            state: MachineState::of(i),
            ec2_state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default()
                .to_string(),
            spot: instance::is_spot(i),
            launched_unix: i.launch_time().map_or(0, |t| t.secs()),
        }
    }
}

/// Shared state reads for one EC2 client.
pub struct StateCache {
    client: aws_sdk_ec2::Client,
    ttl: Duration,
    window: Duration,
    keep: Duration,
    max_stale: Duration,
    /// The manager id of the agent's store: its machines carry it as a tag.
    manager: Option<String>,
    inner: Mutex<Inner>,
    tally: Arc<Tally>,
}

/// How a [`StateCache`] answers.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// How long an observation answers questions.
    pub ttl: Duration,
    /// How long misses are gathered into one call.
    pub window: Duration,
    /// Instances asked about within this long are kept fresh (while the cache is busy) and
    /// kept at all.
    pub keep: Duration,
    /// The oldest observation that may stand in when EC2 throttles or cannot be reached.
    pub max_stale: Duration,
}

/// The manager tag's filter and the live states: every machine of one store.
fn of_manager(manager: &str) -> Vec<Filter> {
    vec![
        crate::tags::tagged(crate::tags::MANAGER, manager),
        instance::not_terminated(false),
    ]
}

impl StateCache {
    /// A cache reading through `client` as `policy` says, for the store whose manager id is
    /// `manager` (when it has one).
    pub fn new(
        client: aws_sdk_ec2::Client,
        policy: CachePolicy,
        manager: Option<String>,
    ) -> Arc<Self> {
        Self::counted(client, policy, manager, Arc::default())
    }

    /// Like [`new`](Self::new), counting its answers in `tally` (which may outlive it).
    pub fn counted(
        client: aws_sdk_ec2::Client,
        policy: CachePolicy,
        manager: Option<String>,
        tally: Arc<Tally>,
    ) -> Arc<Self> {
        Arc::new(StateCache {
            client,
            ttl: policy.ttl,
            window: policy.window,
            keep: policy.keep,
            max_stale: policy.max_stale,
            manager,
            inner: Mutex::new(Inner::default()),
            tally,
        })
    }

    /// Every instance the cache holds, as last seen (no EC2 call).
    pub fn snapshot(&self) -> Vec<Seen> {
        let inner = self.inner.lock().expect("state cache");
        let now = Instant::now();
        inner
            .entries
            .iter()
            .map(|(id, e)| Seen {
                id: id.clone(),
                instance: e.instance.as_ref().map(Brief::of),
                interruption: e.interruption.clone(),
                age: now.duration_since(e.at),
            })
            .collect()
    }

    /// Counts an instance's notice the first time an entry shows one.
    fn notice(&self, inner: &mut Inner, id: &str, interruption: &Option<String>) {
        if interruption.is_some() && inner.noticed.insert(id.to_string()) {
            self.tally.interruptions.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops the background refresher (the cache's client is being dropped); questions still
    /// in flight are answered.
    pub fn close(&self) {
        self.inner.lock().expect("state cache").closed = true;
    }

    /// How many instance states the cache holds.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("state cache").entries.len()
    }

    /// Whether the cache holds no state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Observes instance `id`, from the cache when fresh enough.
    pub async fn observe(self: &Arc<Self>, id: &str) -> Result<Observed> {
        self.ask(id, true, Instant::now()).await
    }

    /// Observes instance `id` in a call that starts after this question and no later than
    /// `by` (or the batching window, when that ends later): the first call anyone makes.
    pub async fn observe_fresh_by(self: &Arc<Self>, id: &str, by: Instant) -> Result<Observed> {
        self.ask(id, false, by).await
    }

    async fn ask(self: &Arc<Self>, id: &str, cached_ok: bool, by: Instant) -> Result<Observed> {
        let rx = 'question: {
            let mut inner = self.inner.lock().expect("state cache");
            let now = Instant::now();
            inner.asked.insert(id.to_string(), now);
            if !inner.refreshing && !inner.closed {
                inner.refreshing = true;
                tokio::spawn(Arc::clone(self).refresher());
            }
            if cached_ok && !inner.seeded {
                inner.seeded = true;
                if let Some(manager) = self.manager.clone() {
                    tokio::spawn(Arc::clone(self).seed(manager));
                }
            }
            let (tx, rx) = oneshot::channel();
            if cached_ok {
                if let Some(e) = inner.entries.get(id)
                    && now.duration_since(e.at) < self.ttl
                {
                    self.count(&self.tally.cached);
                    return Ok(observed(e, now));
                }
                if let Some(late) = inner.reading.get_mut(id) {
                    late.push(Answer { tx, poll: false });
                    break 'question rx;
                }
            }
            inner
                .waiting
                .entry(id.to_string())
                .or_default()
                .push(Answer {
                    tx,
                    poll: !cached_ok,
                });
            let soon = by.max(now + self.window);
            let at = match inner.next_call {
                // A state question waits the window for others to share its call.
                _ if cached_ok => soon,
                // A launch poll rides a call planned by then; else it goes when it asked to.
                Some(next) if next <= soon => next,
                _ => by.max(now),
            };
            self.plan(&mut inner, at);
            rx
        };
        answer(rx).await
    }

    /// Makes sure a call starts by `at`.
    fn plan(self: &Arc<Self>, inner: &mut Inner, at: Instant) {
        if inner.next_call.is_none_or(|next| at < next) {
            inner.next_call = Some(at);
            let cache = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                cache.call(Some(at)).await;
            });
        }
    }

    /// Reads every live machine carrying the store's manager tag and keeps them as if asked
    /// about: the runner asks about each of its machines every job, and this one call answers
    /// their first questions. An entry newer than this read, or forgotten meanwhile, stays.
    async fn seed(self: Arc<Self>, manager: String) {
        let started = Instant::now();
        let read = self
            .client
            .describe_instances()
            .set_filters(Some(of_manager(&manager)));
        let mut found: Found = HashMap::new();
        let read = read_into(read, &mut found).await;
        if read.is_err() || mark_interruptions(&self.client, &mut found).await.is_err() {
            // Not needed for any answer: the questions read on demand instead.
            debug!("reading the store's machines by their manager tag failed");
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("state cache");
        let n = found.len();
        for (id, (instance, interruption)) in found {
            let newer = inner.entries.get(&id).is_some_and(|e| e.at >= started);
            let forgotten = inner.forgotten.get(&id).is_some_and(|at| *at >= started);
            if newer || forgotten {
                continue;
            }
            inner.asked.entry(id.clone()).or_insert(now);
            self.notice(&mut inner, &id, &interruption);
            inner.entries.insert(
                id,
                Entry {
                    instance,
                    interruption,
                    at: now,
                },
            );
        }
        debug!("read the store's {n} machines by their manager tag");
    }

    /// Forgets `id` (it was changed or removed).
    pub fn forget(&self, id: &str) {
        let mut inner = self.inner.lock().expect("state cache");
        inner.entries.remove(id);
        inner.asked.remove(id);
        inner.forgotten.insert(id.to_string(), Instant::now());
        inner.noticed.remove(id);
    }

    /// Keeps every instance asked about within `keep` fresh while the cache is busy: one call
    /// for all of them when the oldest entry nears the end of its life. Ends when nobody asked
    /// for `keep`.
    async fn refresher(self: Arc<Self>) {
        loop {
            let due = {
                let mut inner = self.inner.lock().expect("state cache");
                let now = Instant::now();
                let keep = self.keep;
                inner.asked.retain(|_, at| now.duration_since(*at) < keep);
                // States of machines nobody asks about any more (removed, or served by
                // another client now) go too.
                let Inner { entries, asked, .. } = &mut *inner;
                entries.retain(|id, e| asked.contains_key(id) || now.duration_since(e.at) < keep);
                let Inner {
                    entries, noticed, ..
                } = &mut *inner;
                noticed.retain(|id| entries.contains_key(id));
                if inner.asked.is_empty() || inner.closed {
                    inner.refreshing = false;
                    return;
                }
                // Instances with a question waiting or a read under way are taken care of.
                let oldest = inner
                    .asked
                    .iter()
                    .filter(|(id, _)| {
                        !inner.reading.contains_key(*id) && !inner.waiting.contains_key(*id)
                    })
                    .map(|(id, asked)| inner.entries.get(id).map_or(*asked, |e| e.at))
                    .min();
                let busy = inner
                    .asked
                    .values()
                    .filter(|at| now.duration_since(**at) < self.ttl)
                    .count()
                    >= BUSY_MACHINES;
                match oldest {
                    // Quiet: look again later; questions meanwhile read on demand.
                    Some(_) if !busy => Some(now + self.ttl.mul_f64(1.0 - REFRESH_AGE)),
                    o => o.map(|at| at + self.ttl.mul_f64(REFRESH_AGE)),
                }
            };
            match due {
                Some(due) if due <= Instant::now() => {
                    if !self.call(None).await {
                        // EC2 refuses or fails: do not add to it.
                        tokio::time::sleep(self.ttl / 2).await;
                    }
                }
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => tokio::time::sleep(self.ttl.mul_f64(1.0 - REFRESH_AGE)).await,
            }
        }
    }

    /// One call: the questions waiting now plus every instance kept fresh. A call planned
    /// (`planned`) for later than one that already answered everybody finds no question and is
    /// not made. False when EC2 failed it.
    async fn call(self: &Arc<Self>, planned: Option<Instant>) -> bool {
        let Some(Batch { ids, left, known }) = self.take_batch(planned) else {
            return true;
        };
        let started = Instant::now();
        let fetched = fetch(&self.client, &ids, &known).await;
        let now = Instant::now();
        debug!(
            "state call for {} instances took {} ms ({left} left for the next)",
            ids.len(),
            now.duration_since(started).as_millis()
        );
        // Running spot instances whose spot request no earlier read knew (just launched, or a
        // request that changed): their notices are read next, and only questions about their
        // state wait for that; launch polls are answered now.
        let follow: Vec<(String, String)> = match &fetched {
            Ok(found) => found
                .iter()
                .filter_map(|(id, (i, _))| {
                    let sir = instance::spot_request_to_check(i.as_ref()?)?;
                    let pair = (id.clone(), sir.to_string());
                    (!known.contains(&pair)).then_some(pair)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        self.answer(&ids, &fetched, &follow, started, now);
        if let Err(err) = &fetched {
            debug!("state call for {} instances failed: {err}", ids.len());
        }
        if !follow.is_empty() {
            self.follow_up(&follow, started).await;
        }
        fetched.is_ok()
    }

    /// The instances the next call reads, moved from waiting to reading: questions first
    /// (beyond one call's worth they wait for the next call, which is planned), then every
    /// instance kept fresh. `None` when there is nothing to read.
    fn take_batch(self: &Arc<Self>, planned: Option<Instant>) -> Option<Batch> {
        let mut inner = self.inner.lock().expect("state cache");
        if let Some(at) = planned {
            if inner.next_call.is_some_and(|next| next <= at) {
                inner.next_call = None;
            }
            if inner.waiting.is_empty() {
                return None;
            }
        }
        let mut waiting = std::mem::take(&mut inner.waiting);
        let now = Instant::now();
        let (ttl, keep) = (self.ttl, self.keep);
        inner
            .forgotten
            .retain(|_, at| now.duration_since(*at) < ttl + keep);
        let mut ids: Vec<String> = waiting.keys().cloned().collect();
        let join: Vec<String> = inner
            .asked
            .keys()
            .filter(|id| !waiting.contains_key(*id) && !inner.reading.contains_key(*id))
            .cloned()
            .collect();
        ids.extend(join);
        if ids.is_empty() {
            return None;
        }
        ids.truncate(MAX_BATCH);
        for id in &ids {
            let txs = waiting.remove(id).unwrap_or_default();
            inner.reading.entry(id.clone()).or_default().extend(txs);
        }
        let left = waiting.len();
        for (id, txs) in waiting {
            inner.waiting.entry(id).or_default().extend(txs);
        }
        if left > 0 {
            self.plan(&mut inner, now + self.window);
        }
        // The spot requests of the running spot instances already known: their
        // interruption notices are read beside the instances, not after them.
        let known: Vec<(String, String)> = ids
            .iter()
            .filter_map(|id| {
                let i = inner.entries.get(id)?.instance.as_ref()?;
                Some((id.clone(), instance::spot_request_to_check(i)?.to_string()))
            })
            .collect();
        Some(Batch { ids, left, known })
    }

    /// Notes what the call `fetched` in the entries and answers the questions about `ids`,
    /// except state questions about instances whose notices are read next (`follow`).
    fn answer(
        &self,
        ids: &[String],
        fetched: &Result<Found>,
        follow: &[(String, String)],
        started: Instant,
        now: Instant,
    ) {
        let mut inner = self.inner.lock().expect("state cache");
        for id in ids {
            // What this read saw, or on failure the last known state (EC2's error if none).
            let seen = match fetched {
                Ok(found) => {
                    let (instance, interruption) = found.get(id).cloned().unwrap_or((None, None));
                    let e = Entry {
                        instance,
                        interruption,
                        at: now,
                    };
                    // A machine changed while the read was under way keeps no entry from it.
                    if inner.forgotten.get(id).is_none_or(|at| *at < started) {
                        self.notice(&mut inner, id, &e.interruption);
                        inner.entries.insert(id.clone(), e.clone());
                    }
                    Ok(e)
                }
                // Throttled or unreachable: the last known state, if it is recent enough.
                Err(err) => inner
                    .entries
                    .get(id)
                    .filter(|e| err.is_transient() && now.duration_since(e.at) < self.max_stale)
                    .cloned()
                    .ok_or_else(|| err.clone()),
            };
            let later = follow.iter().any(|(f, _)| f == id);
            let mut kept = Vec::new();
            for q in inner.reading.remove(id).unwrap_or_default() {
                if later && !q.poll {
                    kept.push(q);
                    continue;
                }
                if let Ok(e) = &seen {
                    let fresh = fetched.is_ok() || e.at >= started;
                    self.count(if fresh {
                        &self.tally.fresh
                    } else {
                        &self.tally.stale
                    });
                }
                let _ = q.tx.send(
                    seen.as_ref()
                        .map(|e| observed(e, now))
                        .map_err(Clone::clone),
                );
            }
            if !kept.is_empty() {
                inner.reading.insert(id.clone(), kept);
            }
        }
    }

    /// Reads the interruption notices of `pairs` (instance, spot request) that the last call
    /// saw for the first time, notes them in the entries, and answers the state questions
    /// that waited for them (with the state alone when the read fails).
    async fn follow_up(&self, pairs: &[(String, String)], started: Instant) {
        let marked = instance::interruptions_of(&self.client, pairs).await;
        if let Err(e) = &marked {
            debug!("reading spot interruption notices failed: {e}");
        }
        let marked = marked.unwrap_or_default();
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("state cache");
        for (id, _) in pairs {
            let forgotten = inner.forgotten.get(id).is_some_and(|at| *at >= started);
            if let Some(e) = inner.entries.get_mut(id)
                && !forgotten
            {
                e.interruption = marked.get(id).cloned();
            }
            let notice = marked.get(id).cloned().filter(|_| !forgotten);
            self.notice(&mut inner, id, &notice);
            let seen = inner.entries.get(id).cloned();
            for q in inner.reading.remove(id).unwrap_or_default() {
                if seen.is_some() {
                    self.count(&self.tally.fresh);
                }
                let _ = q.tx.send(match &seen {
                    Some(e) => Ok(observed(e, now)),
                    None => Err(Error::Other(format!(
                        "instance {id} was forgotten meanwhile"
                    ))),
                });
            }
        }
    }
}

async fn answer(rx: oneshot::Receiver<Result<Observed>>) -> Result<Observed> {
    rx.await
        .unwrap_or_else(|_| Err(Error::Other("state cache dropped the question".into())))
}

fn observed(e: &Entry, now: Instant) -> Observed {
    Observed {
        instance: e.instance.clone(),
        interruption: e.interruption.clone(),
        age: now.duration_since(e.at),
    }
}

type Found = HashMap<String, (Option<Instance>, Option<String>)>;

/// Every page of `read` into `found`.
async fn read_into(
    read: aws_sdk_ec2::operation::describe_instances::builders::DescribeInstancesFluentBuilder,
    found: &mut Found,
) -> Result<()> {
    let mut pages = read.into_paginator().send();
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

/// Notes in `found` the running spot instances whose spot request AWS marked for interruption.
async fn mark_interruptions(client: &aws_sdk_ec2::Client, found: &mut Found) -> Result<()> {
    let instances: Vec<&Instance> = found.values().filter_map(|(i, _)| i.as_ref()).collect();
    let marked = instance::interruptions(client, &instances).await?;
    for (id, code) in marked {
        if let Some(entry) = found.get_mut(&id) {
            entry.1 = Some(code);
        }
    }
    Ok(())
}

/// One `DescribeInstances` for up to 1000 ids and, beside it, one spot-request look for the
/// running spot instances among them whose requests are `known` from an earlier read: no call
/// waits for another, so a launch poll costs one round trip. An instance seen for the first
/// time has its notice read with the next call (a notice comes two minutes ahead; the refresher
/// reads every TTL).
async fn fetch(
    client: &aws_sdk_ec2::Client,
    ids: &[String],
    known: &[(String, String)],
) -> Result<Found> {
    let (read, marked) = tokio::join!(
        read_ids(client, ids),
        instance::interruptions_of(client, known)
    );
    let mut found = read?;
    // A notice read that fails (throttled, say) leaves the states as read: it is asked again
    // with the next read, and a state question must not fail for it.
    let marked = marked.unwrap_or_else(|e| {
        debug!("reading spot interruption notices failed: {e}");
        HashMap::new()
    });
    for (id, code) in marked {
        if let Some(entry) = found.get_mut(&id)
            && entry
                .0
                .as_ref()
                .is_some_and(|i| instance::spot_request_to_check(i).is_some())
        {
            entry.1 = Some(code);
        }
    }
    Ok(found)
}

/// The instances `ids`, read by an `instance-id` filter (200 values a call): an id EC2 does not
/// know — long terminated, or launched so lately that it is not visible everywhere yet
/// (eventual consistency) — is simply absent, where a list of ids would fail whole.
async fn read_ids(client: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Found> {
    let mut found: Found = HashMap::new();
    for chunk in ids.chunks(FILTER_VALUES) {
        let read = client.describe_instances().filters(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(chunk.to_vec()))
                .build(),
        );
        read_into(read, &mut found).await?;
    }
    Ok(found)
}
