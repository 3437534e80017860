//! `docker-machine-driver-ec2spot fleet`: the store's machines as a table (or JSON) — name,
//! state, market, type, zone, age, price per hour, interruption notice. While the store's
//! agent runs, from its state cache (no EC2 call; a machine it has not seen lately shows no
//! state); otherwise from EC2, one read per machine.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ec2spot_agent::client::AgentClient;
use ec2spot_agent::metrics::prices;
use ec2spot_agent::proto::FleetMachine;
use ec2spot_ec2::Config;
use ec2spot_ec2::resources::spot_price;
use ec2spot_ec2::state::context::Context;
use serde_json::{Value, json};

/// One machine of the store.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The machine's name.
    pub name: String,
    /// Its EC2 instance.
    pub instance_id: String,
    /// EC2's state (`running`, …), `gone`, or empty when not known.
    pub state: String,
    /// `spot` or `on-demand`.
    pub market: String,
    /// Instance type.
    pub instance_type: String,
    /// Availability zone.
    pub zone: String,
    /// Seconds since launch, when known.
    pub age: Option<u64>,
    /// Spot price of its pool, dollars per hour.
    pub spot_price: Option<f64>,
    /// On-demand price of its type, dollars per hour.
    pub on_demand_price: Option<f64>,
    /// The interruption notice (spot request status code), if any.
    pub interruption: String,
}

impl Row {
    /// What it costs per hour: the price of its market.
    pub fn price(&self) -> Option<f64> {
        if self.market == "spot" {
            self.spot_price
        } else {
            self.on_demand_price
        }
    }
}

/// The store's machines with their configs (name order).
pub fn machines(store: &Path) -> Vec<(String, Config)> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(store.join("machines"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some(driver) = std::fs::read(d.path().join("config.json"))
            .ok()
            .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
            .map(|v| v["Driver"].clone())
            .filter(|d| d.is_object())
        else {
            continue;
        };
        let mut config = Config::default();
        if config.merge_json(driver.to_string().as_bytes()).is_ok() {
            let name = d.file_name().to_string_lossy().into_owned();
            out.push((name, config));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A row from the store alone.
fn row_of(name: &str, c: &Config) -> Row {
    Row {
        name: name.to_string(),
        instance_id: c.made.instance_id.clone(),
        market: c.made.market.clone(),
        instance_type: c.made.instance_type.clone(),
        zone: c.made.zone.clone(),
        ..Row::default()
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The rows from the running agent's cache; `None` when no agent runs.
pub async fn from_agent(store: &Path, machines: &[(String, Config)]) -> Option<Vec<Row>> {
    let agent = AgentClient::connect_running(store).await.ok()?;
    let reply = agent.fleet().await.ok()?;
    let seen: HashMap<&str, &FleetMachine> = reply
        .machines
        .iter()
        .map(|m| (m.instance_id.as_str(), m))
        .collect();
    let known = |p: f64| (p >= 0.0).then_some(p);
    Some(
        machines
            .iter()
            .map(|(name, c)| {
                let mut r = row_of(name, c);
                if let Some(m) = seen.get(c.made.instance_id.as_str()) {
                    r.state = if m.known {
                        m.ec2_state.clone()
                    } else {
                        "gone".into()
                    };
                    if m.known {
                        r.market = m.market.clone();
                        r.instance_type = m.instance_type.clone();
                        r.zone = m.zone.clone();
                    }
                    r.age =
                        (m.launched_unix > 0).then(|| (now_unix() - m.launched_unix).max(0) as u64);
                    r.spot_price = known(m.spot_price);
                    r.on_demand_price = known(m.on_demand_price);
                    r.interruption = m.interruption.clone();
                }
                r
            })
            .collect(),
    )
}

/// The rows read from EC2: each machine's instance (and its interruption notice), and the
/// spot price of each spot pool, with the clients the machines' configs make.
pub async fn from_ec2(machines: &[(String, Config)]) -> Vec<Row> {
    let mut clients: HashMap<(String, String), Context> = HashMap::new();
    let mut spot: HashMap<(String, String), Option<f64>> = HashMap::new();
    let mut rows = Vec::new();
    for (name, c) in machines {
        let mut r = row_of(name, c);
        let key = (c.asked.region.clone(), c.asked.endpoint.clone());
        let ec2 = match clients.get(&key) {
            Some(ec2) => ec2.clone(),
            None => match ec2spot_ec2::aws::client(&c.asked).await {
                Ok(ec2) => clients.entry(key).or_insert(Context::direct(ec2)).clone(),
                Err(e) => {
                    eprintln!("fleet: {name}: {e}");
                    rows.push(r);
                    continue;
                }
            },
        };
        observe(&ec2, &mut r, &mut spot).await;
        rows.push(r);
    }
    rows
}

/// Fills `r` from EC2.
async fn observe(ec2: &Context, r: &mut Row, spot: &mut HashMap<(String, String), Option<f64>>) {
    if r.instance_id.is_empty() {
        return;
    }
    let (i, interruption) = match ec2.observe(&r.instance_id).await {
        Ok(o) => match o.instance {
            Some(i) => (i, o.interruption),
            None => {
                r.state = "gone".into();
                return;
            }
        },
        Err(e) => {
            eprintln!("fleet: {}: {e}", r.name);
            return;
        }
    };
    use ec2spot_agent::metrics::registry::market_of;
    let brief = ec2spot_ec2::state::cache::Brief::of(&i);
    r.market = market_of(&brief).to_string();
    r.age = (brief.launched_unix > 0).then(|| (now_unix() - brief.launched_unix).max(0) as u64);
    (r.state, r.instance_type, r.zone) = (brief.ec2_state, brief.instance_type, brief.zone);
    r.on_demand_price = prices::on_demand(&r.instance_type, &r.zone);
    r.interruption = interruption.unwrap_or_default();
    let pool = (r.instance_type.clone(), r.zone.clone());
    if r.market == "spot" && !spot.contains_key(&pool) {
        let price = spot_price::current(&ec2.client, &pool.0, &pool.1)
            .await
            .ok()
            .flatten();
        spot.insert(pool.clone(), price);
    }
    r.spot_price = spot.get(&pool).copied().flatten();
}

fn money(p: Option<f64>) -> String {
    p.map_or("-".into(), |p| format!("${p:.5}"))
}

fn age(s: Option<u64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

/// The rows as a table, with a heading line saying where they come from.
pub fn table(rows: &[Row], source: &str) -> String {
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            [
                r.name.clone(),
                dash(&r.state),
                dash(&r.market),
                dash(&r.instance_type),
                dash(&r.zone),
                age(r.age),
                money(r.price()),
                dash(&r.interruption),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "STATE",
        "MARKET",
        "TYPE",
        "ZONE",
        "AGE",
        "PRICE/H",
        "INTERRUPTION",
    ];
    let mut widths = head.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |v: Vec<&str>| {
        v.iter()
            .zip(widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = format!("# {} machine(s), from {source}\n", rows.len());
    out += &line(head.to_vec());
    out.push('\n');
    for c in &cells {
        out += &line(c.iter().map(String::as_str).collect());
        out.push('\n');
    }
    let priced: Vec<f64> = rows
        .iter()
        .filter(|r| r.state == "running")
        .filter_map(Row::price)
        .collect();
    out += &format!(
        "# running, priced: {} machine(s), ${:.4}/h\n",
        priced.len(),
        priced.iter().sum::<f64>()
    );
    out
}

/// The rows as JSON, for scripts.
pub fn json(rows: &[Row], source: &str) -> Value {
    let machines: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "instance_id": r.instance_id,
                "state": r.state,
                "market": r.market,
                "instance_type": r.instance_type,
                "zone": r.zone,
                "age_seconds": r.age,
                "price_per_hour": r.price(),
                "spot_price_per_hour": r.spot_price,
                "on_demand_price_per_hour": r.on_demand_price,
                "interruption": (!r.interruption.is_empty()).then_some(&r.interruption),
            })
        })
        .collect();
    json!({ "source": source, "machines": machines })
}
