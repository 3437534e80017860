//! Client-side rate limits: token buckets mirroring EC2's per-account request buckets, applied
//! to every HTTP request an SDK client sends (retries included), so concurrent work queues
//! instead of being throttled. The agent shares one set of buckets among all plugin processes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// A request bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Bucket size.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

const fn rate(burst: f64, per_second: f64) -> Rate {
    Rate { burst, per_second }
}

/// EC2's request buckets, by class, with AWS's default sizes (burst, refill per second), from
/// "Request throttling for the Amazon EC2 API",
/// <https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>, section
/// "Request token bucket sizes and refill rates". A class sizes buckets; EC2 keeps one bucket
/// per action ("each API is evaluated individually"; "limits are applied to individual API
/// actions, not API action categories"), and so does [`Throttle`].
pub const AWS_RATES: &[(&str, Rate)] = &[
    // Uncategorized actions: each has numbers of its own.
    ("RunInstances", rate(5.0, 2.0)),
    ("StartInstances", rate(5.0, 2.0)),
    ("TerminateInstances", rate(100.0, 5.0)),
    ("CreateTags", rate(100.0, 10.0)),
    ("DeleteVolume", rate(100.0, 5.0)),
    // "Resource-intensive actions".
    ("ResourceIntensive", rate(50.0, 5.0)),
    // "Mutating actions": every mutating action not in another class.
    ("Mutating", rate(50.0, 5.0)),
    // "Non-mutating actions": Describe*, List*, Search*, Get* not in another class.
    ("Describe", rate(100.0, 20.0)),
    // "Unfiltered and unpaginated non-mutating actions": the actions of
    // [`UNFILTERED_ACTIONS`] asked with neither a filter nor pagination.
    ("UnfilteredDescribe", rate(50.0, 10.0)),
];

/// Every EC2 action ec2spot calls, and the class EC2's page puts it in. An action missing
/// here falls in `Describe` (`Describe*`, `Get*`, `List*`, `Search*`) or `Mutating`, as the
/// page's category definitions say; tests check that a machine's whole life uses only these.
///
/// Not modelled: the *resource* token buckets of RunInstances (1000 instances, 2 per second),
/// StartInstances (1000 / 2), StopInstances and TerminateInstances (1000 / 20). ec2spot
/// launches, starts and stops one instance per call, so the request buckets above are the
/// tighter limit. The page gives `CreateFleet` no bucket of its own (it is a mutating
/// action); whether the instances an instant fleet launches also draw on RunInstances'
/// resource bucket is not documented.
pub const ACTIONS: &[(&str, &str)] = &[
    ("AuthorizeSecurityGroupIngress", "ResourceIntensive"),
    ("CancelSpotInstanceRequests", "ResourceIntensive"),
    ("CreateFleet", "Mutating"),
    ("CreateImage", "Mutating"),
    ("CreateLaunchTemplate", "Mutating"),
    ("CreateSecurityGroup", "Mutating"),
    ("CreateTags", "CreateTags"),
    ("DeleteKeyPair", "Mutating"),
    ("DeleteLaunchTemplate", "Mutating"),
    ("DeleteSecurityGroup", "Mutating"),
    ("DeleteVolume", "DeleteVolume"),
    ("DeleteSnapshot", "Mutating"),
    ("DeregisterImage", "Mutating"),
    ("DescribeImages", "Describe"),
    ("DescribeInstanceTypeOfferings", "Describe"),
    ("DescribeInstanceTypes", "Describe"),
    ("DescribeInstances", "Describe"),
    ("DescribeKeyPairs", "Describe"),
    ("DescribeLaunchTemplates", "Describe"),
    ("DescribeNetworkInterfaces", "Describe"),
    ("DescribeSecurityGroups", "Describe"),
    ("DescribeSpotInstanceRequests", "Describe"),
    ("DescribeSpotPriceHistory", "Describe"),
    ("DescribeSubnets", "Describe"),
    ("DescribeVolumes", "Describe"),
    ("DescribeVpcs", "Describe"),
    // Not resource-intensive: the page lists CreateKeyPair there, not ImportKeyPair.
    ("ImportKeyPair", "Mutating"),
    ("RebootInstances", "Mutating"),
    ("RunInstances", "RunInstances"),
    ("StartInstances", "StartInstances"),
    ("StopInstances", "Mutating"),
    ("TerminateInstances", "TerminateInstances"),
];

/// The non-mutating actions that take the smaller `UnfilteredDescribe` bucket when asked
/// without a filter and without pagination (same page). Ids alone (`InstanceId.1=…`) are
/// neither, so a read by id counts as unfiltered here: the safe reading.
pub const UNFILTERED_ACTIONS: &[&str] = &[
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
];

/// The class EC2 sizes `action`'s bucket by; `unfiltered` when the request has neither a
/// filter nor pagination.
pub fn class_of(action: &str, unfiltered: bool) -> &'static str {
    if unfiltered && UNFILTERED_ACTIONS.contains(&action) {
        return "UnfilteredDescribe";
    }
    if let Some((_, class)) = ACTIONS.iter().find(|(a, _)| *a == action) {
        return class;
    }
    if ["Describe", "Get", "List", "Search"]
        .iter()
        .any(|p| action.starts_with(p))
    {
        "Describe"
    } else {
        "Mutating"
    }
}

/// The bucket a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketId {
    /// The EC2 action.
    pub action: String,
    /// The bucket: the action, with ` (unfiltered)` for the smaller bucket.
    pub key: String,
    /// The class that sizes it.
    pub class: &'static str,
}

/// The bucket of a query-protocol request, from its form body (`Action=…&Filter.1.Name=…`).
pub fn bucket_of(form: &str) -> BucketId {
    let mut action = "Unknown";
    let mut narrowed = false;
    for kv in form.split('&') {
        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
        if let Some(a) = kv.strip_prefix("Action=") {
            action = a;
        }
        if key.starts_with("Filter.") || key == "MaxResults" || key == "NextToken" {
            narrowed = true;
        }
    }
    let class = class_of(action, !narrowed);
    let key = if class == "UnfilteredDescribe" {
        format!("{action} (unfiltered)")
    } else {
        action.to_string()
    };
    BucketId {
        action: action.to_string(),
        key,
        class,
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

/// Token buckets for one EC2 account and region — one per action (and one more for the
/// unfiltered reads of [`UNFILTERED_ACTIONS`]), sized by its class — and counters of what
/// went through them.
#[derive(Debug)]
pub struct Throttle {
    /// Each class's rate, scaled.
    rates: HashMap<&'static str, Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
    calls: Mutex<HashMap<String, u64>>,
    waits: AtomicU64,
    /// Microseconds calls spent waiting for tokens.
    waited_us: AtomicU64,
}

impl Throttle {
    /// Buckets with `rates` per class (missing classes get AWS's defaults) scaled by `factor`
    /// (e.g. 0.9 to leave AWS's buckets some room for other clients of the account).
    pub fn new(rates: &[(String, Rate)], factor: f64) -> Arc<Self> {
        let rates = AWS_RATES
            .iter()
            .map(|(class, default)| {
                let rate = rates
                    .iter()
                    .find(|(c, _)| c == class)
                    .map(|(_, r)| *r)
                    .unwrap_or(*default);
                let rate = Rate {
                    burst: (rate.burst * factor).max(1.0),
                    per_second: rate.per_second * factor,
                };
                (*class, rate)
            })
            .collect();
        Arc::new(Throttle {
            rates,
            buckets: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            waits: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
        })
    }

    /// Takes a token from `bucket`, waiting for one if it is empty, and counts the call then
    /// — when it goes to EC2, not when it starts waiting (a call that waited through one
    /// command's end reaches EC2 in the next, and is counted there).
    pub async fn acquire(&self, bucket: &BucketId) {
        self.take_token(bucket).await;
        *self
            .calls
            .lock()
            .expect("calls")
            .entry(bucket.action.clone())
            .or_default() += 1;
    }

    /// Takes a token from `bucket`, waiting for one if it is empty.
    async fn take_token(&self, bucket: &BucketId) {
        let Some(rate) = self.rates.get(bucket.class).copied() else {
            return;
        };
        let mut waited = false;
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().expect("buckets");
                let now = Instant::now();
                // A new bucket starts nearly empty: how much of the account's bucket others
                // (or an agent that just died) used is unknown, and the sustained rate alone
                // never overruns it.
                let b = buckets.entry(bucket.key.clone()).or_insert(Bucket {
                    rate,
                    tokens: 1.0,
                    last: now,
                });
                b.tokens = (b.tokens
                    + now.duration_since(b.last).as_secs_f64() * b.rate.per_second)
                    .min(b.rate.burst);
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return;
                }
                if b.rate.per_second <= 0.0 {
                    return; // a zero rate means "no limit" rather than "never"
                }
                Duration::from_secs_f64((1.0 - b.tokens) / b.rate.per_second)
            };
            if !waited {
                waited = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            let slept = Instant::now();
            tokio::time::sleep(wait).await;
            self.waited_us
                .fetch_add(slept.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// EC2 throttled a call anyway (other clients of the account, network jitter bunching
    /// paced calls): empty its bucket so the next calls back off.
    pub fn throttled(&self, bucket: &BucketId) {
        if let Some(b) = self.buckets.lock().expect("buckets").get_mut(&bucket.key) {
            b.tokens = b.tokens.min(0.0) - 1.0;
        }
    }

    /// Calls made so far, by action.
    pub fn calls(&self) -> HashMap<String, u64> {
        self.calls.lock().expect("calls").clone()
    }

    /// Calls that had to wait for a token.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// How long calls waited for tokens in all.
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }

    /// Wraps `inner` so every request first takes a token of its action's bucket.
    pub fn http_client(self: &Arc<Self>, inner: SharedHttpClient) -> ThrottledHttpClient {
        ThrottledHttpClient {
            inner,
            throttle: Arc::clone(self),
        }
    }
}

/// Parses `CLASS=burst/per_second` (e.g. `RunInstances=5/2`).
pub fn parse_rate(s: &str) -> Result<(String, Rate), String> {
    let (class, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected CLASS=burst/per_second"))?;
    let (burst, per) = rest
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected CLASS=burst/per_second"))?;
    if !AWS_RATES.iter().any(|(c, _)| *c == class) {
        let known: Vec<&str> = AWS_RATES.iter().map(|(c, _)| *c).collect();
        return Err(format!(
            "{class:?} is not a bucket class; use one of {}",
            known.join(", ")
        ));
    }
    let burst: f64 = burst.parse().map_err(|_| format!("{s:?}: bad burst"))?;
    let per_second: f64 = per.parse().map_err(|_| format!("{s:?}: bad refill rate"))?;
    if burst < 1.0 || per_second <= 0.0 {
        return Err(format!(
            "{s:?}: burst must be at least 1 and the refill rate positive"
        ));
    }
    Ok((class.to_string(), Rate { burst, per_second }))
}

/// The bucket of a query-protocol request.
fn bucket_of_request(request: &HttpRequest) -> BucketId {
    let body = request.body().bytes().unwrap_or_default();
    bucket_of(&String::from_utf8_lossy(body))
}

/// An SDK HTTP client that rate-limits requests with a [`Throttle`].
#[derive(Debug, Clone)]
pub struct ThrottledHttpClient {
    inner: SharedHttpClient,
    throttle: Arc<Throttle>,
}

impl HttpClient for ThrottledHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(ThrottledConnector {
            inner,
            throttle: Arc::clone(&self.throttle),
        })
    }
}

#[derive(Debug)]
struct ThrottledConnector {
    inner: SharedHttpConnector,
    throttle: Arc<Throttle>,
}

impl HttpConnector for ThrottledConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let throttle = Arc::clone(&self.throttle);
        HttpConnectorFuture::new(async move {
            let bucket = bucket_of_request(&request);
            throttle.acquire(&bucket).await;
            let response = inner.call(request).await;
            // EC2 answers RequestLimitExceeded with HTTP 503.
            if matches!(&response, Ok(r) if r.status().as_u16() == 503) {
                throttle.throttled(&bucket);
            }
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_then_the_refill_rate() {
        let t = Throttle::new(
            &[(
                "RunInstances".into(),
                Rate {
                    burst: 5.0,
                    per_second: 50.0,
                },
            )],
            1.0,
        );
        let run = bucket_of("Action=RunInstances&Version=2016-11-15");
        let start = Instant::now();
        for _ in 0..9 {
            t.acquire(&run).await;
        }
        // One at once (a fresh bucket starts nearly empty), then 8 more at 50 per second.
        let took = start.elapsed().as_secs_f64();
        assert!(took >= 0.15, "{took}");
        assert_eq!(t.calls()["RunInstances"], 9);
        assert_eq!(t.waits(), 8);
        assert!(t.waited() >= Duration::from_millis(140), "{:?}", t.waited());
        // Once idle, it fills up to its burst: 5 at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        for _ in 0..5 {
            t.acquire(&run).await;
        }
        assert!(start.elapsed().as_secs_f64() < 0.05);
        assert_eq!(t.waits(), 8);
        assert!(parse_rate("RunInstances=3/1").is_ok());
        assert!(parse_rate("UnfilteredDescribe=100/20").is_ok());
        assert!(parse_rate("Bogus=3/1").is_err());
        assert!(parse_rate("RunInstances=0/1").is_err());
    }

    #[tokio::test]
    async fn each_action_has_its_own_bucket() {
        let t = Throttle::new(&[], 1.0);
        // RunInstances' bucket is empty after one call (a new bucket holds one token)...
        let run = bucket_of("Action=RunInstances");
        t.acquire(&run).await;
        // ...which does not hold up another mutating action or a read.
        let start = Instant::now();
        for form in [
            "Action=CreateFleet",
            "Action=CreateLaunchTemplate",
            "Action=DescribeSubnets&Filter.1.Name=vpc-id",
            "Action=DescribeVpcs&Filter.1.Name=is-default",
        ] {
            t.acquire(&bucket_of(form)).await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
        assert_eq!(t.waits(), 0);
    }

    #[test]
    fn buckets_follow_ec2s_table() {
        let b = |form: &str| bucket_of(form);
        assert_eq!(b("Action=RunInstances").class, "RunInstances");
        assert_eq!(b("Action=CreateFleet&Type=instant").class, "Mutating");
        assert_eq!(b("Action=ImportKeyPair").class, "Mutating");
        assert_eq!(
            b("Action=AuthorizeSecurityGroupIngress").class,
            "ResourceIntensive"
        );
        assert_eq!(
            b("Action=CancelSpotInstanceRequests").class,
            "ResourceIntensive"
        );
        assert_eq!(b("Action=DeleteVolume").class, "DeleteVolume");
        assert_eq!(b("Action=StopInstances").class, "Mutating");
        assert_eq!(b("Action=DescribeImages&Owner.1=x").class, "Describe");
        // The smaller bucket for the listed reads asked with neither filter nor pagination.
        let by_id = b("Action=DescribeInstances&InstanceId.1=i-1");
        assert_eq!(by_id.class, "UnfilteredDescribe");
        assert_eq!(by_id.key, "DescribeInstances (unfiltered)");
        let filtered = b("Action=DescribeInstances&Filter.1.Name=tag%3Aa&Filter.1.Value.1=b");
        assert_eq!(filtered.class, "Describe");
        assert_eq!(filtered.key, "DescribeInstances");
        assert_eq!(
            b("Action=DescribeSpotInstanceRequests&MaxResults=5").class,
            "Describe"
        );
        assert_eq!(b("Action=DescribeSubnets").class, "Describe", "not listed");
        // Actions outside the table fall in their category by name.
        assert_eq!(b("Action=GetConsoleOutput").class, "Describe");
        assert_eq!(b("Action=ModifyVolume").class, "Mutating");
        for (action, class) in ACTIONS {
            assert!(
                AWS_RATES.iter().any(|(c, _)| c == class),
                "{action}: {class} has no rate"
            );
        }
    }
}
