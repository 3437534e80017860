//! The agent's metrics and their text exposition. Counters are kept as things happen (EC2
//! requests, creates, capacity failures) or read at scrape time from totals the agent keeps
//! anyway (pacing waits, state-cache answers, interruption notices); gauges (machines, prices,
//! cost) are computed at each scrape from the state cache, with no EC2 call. No label names a
//! machine: labels are actions, outcomes, markets, pools (instance type, zone) and states, as
//! many as the bastion's configuration has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ec2spot_ec2::state::cache::{Brief, Seen, Tally};
use ec2spot_ec2::state::machine_state::MachineState;
use prometheus::{
    Counter, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::prices::{self, SpotPrices};

/// What a scrape reads from the agent besides the metrics' own counters.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Every instance the state caches hold.
    pub seen: Vec<Seen>,
    /// How long EC2 calls waited for pacing tokens, in all.
    pub waited: Duration,
    /// How many calls had to wait.
    pub paced: u64,
}

/// A running machine as the cost gauges see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// `spot` or `on-demand`.
    pub market: &'static str,
    /// Its instance type.
    pub instance_type: String,
    /// Its zone.
    pub zone: String,
    /// Its pool's spot price, if read.
    pub spot: Option<f64>,
    /// Its type's on-demand price, if known.
    pub on_demand: Option<f64>,
}

impl Priced {
    /// What it costs per hour: the price of its market, if known.
    pub fn hourly(&self) -> Option<f64> {
        if self.market == "spot" {
            self.spot
        } else {
            self.on_demand
        }
    }
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// State-cache answers and interruption notices, shared by every cache of the agent.
    pub tally: Arc<Tally>,
    /// Spot prices read for the machines' pools.
    pub spot_prices: SpotPrices,
    requests: IntCounterVec,
    pacing_wait: Counter,
    paced: IntCounter,
    answers: IntCounterVec,
    interruptions: IntCounter,
    creates: IntCounterVec,
    capacity_failures: IntCounterVec,
    create_seconds: HistogramVec,
    machines: IntGaugeVec,
    running: IntGaugeVec,
    spot_price: GaugeVec,
    on_demand_price: GaugeVec,
    cost: Gauge,
    saving: Gauge,
    unpriced: IntGauge,
    /// One scrape at a time (gauges are reset and refilled).
    scraping: Mutex<()>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

/// Registers `m` in `r`, returning it.
fn reg<M: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: M) -> M {
    r.register(Box::new(m.clone()))
        .expect("unique metric names");
    m
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Arc<Self> {
        let r = Registry::new();
        let cv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntCounterVec::new(opts(name, help), labels).expect("valid"),
            )
        };
        let gv = |name: &str, help: &str, labels: &[&str]| {
            reg(&r, GaugeVec::new(opts(name, help), labels).expect("valid"))
        };
        let m = Metrics {
            requests: cv(
                "ec2spot_ec2_requests_total",
                "EC2 request attempts by action and outcome (ok, throttled, AWS's error code, unanswered).",
                &["action", "outcome"],
            ),
            pacing_wait: reg(&r, Counter::with_opts(opts("ec2spot_ec2_pacing_wait_seconds_total", "Seconds EC2 requests waited for the agent's rate-limit tokens.")).expect("valid")),
            paced: reg(&r, IntCounter::with_opts(opts("ec2spot_ec2_paced_requests_total", "EC2 requests that waited for a rate-limit token.")).expect("valid")),
            answers: cv(
                "ec2spot_state_answers_total",
                "Machine state questions by how the agent's cache answered: fresh (a read made for it), cached (within the TTL), stale (last known state while EC2 throttled or failed).",
                &["answer"],
            ),
            interruptions: reg(&r, IntCounter::with_opts(opts("ec2spot_spot_interruption_notices_total", "Spot instances first seen with an interruption notice.")).expect("valid")),
            creates: cv(
                "ec2spot_creates_total",
                "Creates by market (spot, on-demand, fallback: on-demand after no spot capacity), pool and outcome (ok, or what failed).",
                &["market", "instance_type", "zone", "outcome"],
            ),
            capacity_failures: cv(
                "ec2spot_capacity_failures_total",
                "Launches refused for capacity, price or spot quota, by market, pool and AWS's code.",
                &["market", "instance_type", "zone", "code"],
            ),
            create_seconds: reg(&r, HistogramVec::new(
                HistogramOpts::new("ec2spot_create_duration_seconds", "Seconds a create spent in the agent (EC2 calls and waiting for the instance; not docker-machine's provisioning over SSH).")
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
                &["outcome"],
            ).expect("valid")),
            machines: reg(&r, IntGaugeVec::new(opts("ec2spot_machines", "Machines in the agent's state cache by state (running, starting, stopping, stopped, error, gone)."), &["state"]).expect("valid")),
            running: reg(&r, IntGaugeVec::new(opts("ec2spot_running_machines", "Running machines by market and pool."), &["market", "instance_type", "zone"]).expect("valid")),
            spot_price: gv(
                "ec2spot_spot_price_dollars_per_hour",
                "Spot price of each pool a running machine is in (EC2's spot price history, Linux).",
                &["instance_type", "zone"],
            ),
            on_demand_price: gv(
                "ec2spot_on_demand_price_dollars_per_hour",
                "On-demand price of each running machine's instance type (the agent's table: us-east-1, Linux).",
                &["instance_type", "zone"],
            ),
            cost: reg(&r, Gauge::with_opts(opts("ec2spot_fleet_cost_dollars_per_hour", "What the running machines whose price is known cost per hour.")).expect("valid")),
            saving: reg(&r, Gauge::with_opts(opts("ec2spot_fleet_saving_dollars_per_hour", "On-demand price minus spot price, summed over running spot machines whose both prices are known.")).expect("valid")),
            unpriced: reg(&r, IntGauge::with_opts(opts("ec2spot_unpriced_machines", "Running machines whose hourly price is not known (left out of cost and saving).")).expect("valid")),
            tally: Arc::default(),
            spot_prices: SpotPrices::default(),
            scraping: Mutex::new(()),
            registry: r,
        };
        Arc::new(m)
    }

    /// One EC2 request attempt.
    pub fn ec2_request(&self, action: &str, outcome: &str) {
        self.requests.with_label_values(&[action, outcome]).inc();
    }

    /// A create's end: its market (`spot`, `on-demand`, `fallback`), pool and outcome.
    pub fn create(&self, market: &str, pool: (&str, &str), outcome: &str, took: Duration) {
        self.creates
            .with_label_values(&[market, pool.0, pool.1, outcome])
            .inc();
        let class = if outcome == "ok" { "ok" } else { "failed" };
        self.create_seconds
            .with_label_values(&[class])
            .observe(took.as_secs_f64());
    }

    /// A pool refused a launch for capacity.
    pub fn capacity_failure(&self, market: &str, instance_type: &str, zone: &str, code: &str) {
        self.capacity_failures
            .with_label_values(&[market, instance_type, zone, code])
            .inc();
    }

    /// The running machines of `seen` with their prices.
    pub fn priced(&self, seen: &[Seen]) -> Vec<Priced> {
        seen.iter()
            .filter_map(|s| s.instance.as_ref())
            .filter(|i| i.state == MachineState::Running)
            .map(|i| Priced {
                market: market_of(i),
                instance_type: i.instance_type.clone(),
                zone: i.zone.clone(),
                spot: self.spot_prices.get(&i.instance_type, &i.zone),
                on_demand: prices::on_demand(&i.instance_type, &i.zone),
            })
            .collect()
    }

    /// The metrics in Prometheus's text format (version 0.0.4), the gauges computed from
    /// `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let _one = self.scraping.lock().expect("scrape");
        catch_up_f(&self.pacing_wait, scrape.waited.as_secs_f64());
        catch_up(&self.paced, scrape.paced);
        let t = &self.tally;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (answer, n) in [
            ("fresh", load(&t.fresh)),
            ("cached", load(&t.cached)),
            ("stale", load(&t.stale)),
        ] {
            catch_up(&self.answers.with_label_values(&[answer]), n);
        }
        catch_up(&self.interruptions, load(&t.interruptions));
        self.machine_gauges(scrape);
        let mut out = String::new();
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding");
        out
    }

    fn machine_gauges(&self, scrape: &Scrape) {
        self.machines.reset();
        for state in [
            "running", "starting", "stopping", "stopped", "error", "gone",
        ] {
            self.machines.with_label_values(&[state]).set(0);
        }
        for s in &scrape.seen {
            let state = s.instance.as_ref().map_or("gone", |i| state_label(i.state));
            self.machines.with_label_values(&[state]).inc();
        }
        self.running.reset();
        self.spot_price.reset();
        self.on_demand_price.reset();
        let (mut cost, mut saving, mut unpriced) = (0.0, 0.0, 0);
        let mut pools: HashMap<(&str, String, String), i64> = HashMap::new();
        let priced = self.priced(&scrape.seen);
        for p in &priced {
            *pools
                .entry((p.market, p.instance_type.clone(), p.zone.clone()))
                .or_default() += 1;
            let pool = [p.instance_type.as_str(), p.zone.as_str()];
            if let Some(price) = p.spot {
                self.spot_price.with_label_values(&pool).set(price);
            }
            if let Some(price) = p.on_demand {
                self.on_demand_price.with_label_values(&pool).set(price);
            }
            match p.hourly() {
                Some(h) => cost += h,
                None => unpriced += 1,
            }
            if p.market == "spot"
                && let (Some(s), Some(o)) = (p.spot, p.on_demand)
            {
                saving += o - s;
            }
        }
        for ((market, t, z), n) in pools {
            self.running.with_label_values(&[market, &t, &z]).set(n);
        }
        self.cost.set(cost);
        self.saving.set(saving);
        self.unpriced.set(unpriced);
    }
}

/// `spot` for a spot instance, else `on-demand`.
pub fn market_of(i: &Brief) -> &'static str {
    if i.spot { "spot" } else { "on-demand" }
}

/// A machine state as a label.
pub fn state_label(s: MachineState) -> &'static str {
    match s {
        MachineState::Running => "running",
        MachineState::Starting => "starting",
        MachineState::Stopping => "stopping",
        MachineState::Stopped => "stopped",
        MachineState::Error | MachineState::None => "error",
    }
}

/// Brings counter `c` up to `total` (a total kept elsewhere, which only grows).
fn catch_up(c: &IntCounter, total: u64) {
    c.inc_by(total.saturating_sub(c.get()));
}

fn catch_up_f(c: &Counter, total: f64) {
    let d = total - c.get();
    if d > 0.0 {
        c.inc_by(d);
    }
}
