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

/// EC2's request bucket classes ("Request throttling for the Amazon EC2 API").
pub fn bucket_of(action: &str) -> &'static str {
    match action {
        "RunInstances" => "RunInstances",
        "StartInstances" => "StartInstances",
        "TerminateInstances" => "TerminateInstances",
        "CreateTags" | "DeleteTags" => "CreateTags",
        "AuthorizeSecurityGroupIngress"
        | "RevokeSecurityGroupIngress"
        | "CancelSpotInstanceRequests"
        | "CreateKeyPair"
        | "ImportKeyPair"
        | "RequestSpotInstances" => "ResourceIntensive",
        a if a.starts_with("Describe") || a.starts_with("Get") || a.starts_with("List") => {
            "Describe"
        }
        _ => "Mutating",
    }
}

/// AWS's published defaults per bucket class (burst, refill per second).
pub const AWS_RATES: &[(&str, Rate)] = &[
    (
        "RunInstances",
        Rate {
            burst: 5.0,
            per_second: 2.0,
        },
    ),
    (
        "StartInstances",
        Rate {
            burst: 5.0,
            per_second: 2.0,
        },
    ),
    (
        "TerminateInstances",
        Rate {
            burst: 100.0,
            per_second: 5.0,
        },
    ),
    (
        "CreateTags",
        Rate {
            burst: 100.0,
            per_second: 10.0,
        },
    ),
    (
        "ResourceIntensive",
        Rate {
            burst: 50.0,
            per_second: 5.0,
        },
    ),
    (
        "Mutating",
        Rate {
            burst: 50.0,
            per_second: 5.0,
        },
    ),
    (
        "Describe",
        Rate {
            burst: 100.0,
            per_second: 20.0,
        },
    ),
];

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

/// Token buckets for one EC2 account and region, and counters of what went through them.
#[derive(Debug)]
pub struct Throttle {
    buckets: Mutex<HashMap<&'static str, Bucket>>,
    calls: Mutex<HashMap<String, u64>>,
    waits: AtomicU64,
}

impl Throttle {
    /// Buckets with `rates` (missing classes get AWS's defaults) scaled by `factor` (e.g. 0.9
    /// to leave AWS's buckets some room for other clients of the account).
    pub fn new(rates: &[(String, Rate)], factor: f64) -> Arc<Self> {
        let now = Instant::now();
        let mut buckets = HashMap::new();
        for (class, default) in AWS_RATES {
            let rate = rates
                .iter()
                .find(|(c, _)| c == class)
                .map(|(_, r)| *r)
                .unwrap_or(*default);
            let rate = Rate {
                burst: (rate.burst * factor).max(1.0),
                per_second: rate.per_second * factor,
            };
            // Start nearly empty: how much of the account's bucket others (or an agent that just
            // died) used is unknown, and the sustained rate alone never overruns it.
            buckets.insert(
                *class,
                Bucket {
                    rate,
                    tokens: 1.0,
                    last: now,
                },
            );
        }
        Arc::new(Throttle {
            buckets: Mutex::new(buckets),
            calls: Mutex::new(HashMap::new()),
            waits: AtomicU64::new(0),
        })
    }

    /// Takes a token for `action`, waiting for one if the bucket is empty.
    pub async fn acquire(&self, action: &str) {
        *self
            .calls
            .lock()
            .expect("calls")
            .entry(action.to_string())
            .or_default() += 1;
        let class = bucket_of(action);
        let mut waited = false;
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().expect("buckets");
                let Some(b) = buckets.get_mut(class) else {
                    return;
                };
                let now = Instant::now();
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
            tokio::time::sleep(wait).await;
        }
    }

    /// EC2 throttled a call of `action` anyway (other clients of the account, network jitter
    /// bunching paced calls): empty its bucket so the next calls back off.
    pub fn throttled(&self, action: &str) {
        let class = bucket_of(action);
        if let Some(b) = self.buckets.lock().expect("buckets").get_mut(class) {
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

/// The EC2 action of a query-protocol request (`Action=…` in the form body).
fn action_of(request: &HttpRequest) -> String {
    let body = request.body().bytes().unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("Unknown")
        .to_string()
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
            let action = action_of(&request);
            throttle.acquire(&action).await;
            let response = inner.call(request).await;
            // EC2 answers RequestLimitExceeded with HTTP 503.
            if matches!(&response, Ok(r) if r.status().as_u16() == 503) {
                throttle.throttled(&action);
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
        let start = Instant::now();
        for _ in 0..9 {
            t.acquire("RunInstances").await;
        }
        // One at once (a fresh bucket starts nearly empty), then 8 more at 50 per second.
        let took = start.elapsed().as_secs_f64();
        assert!(took >= 0.15, "{took}");
        assert_eq!(t.calls()["RunInstances"], 9);
        assert_eq!(t.waits(), 8);
        // Once idle, it fills up to its burst: 5 at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        for _ in 0..5 {
            t.acquire("RunInstances").await;
        }
        assert!(start.elapsed().as_secs_f64() < 0.05);
        assert_eq!(t.waits(), 8);
        assert_eq!(bucket_of("DescribeInstances"), "Describe");
        assert_eq!(bucket_of("ImportKeyPair"), "ResourceIntensive");
        assert!(parse_rate("RunInstances=3/1").is_ok());
        assert!(parse_rate("Bogus=3/1").is_err());
        assert!(parse_rate("RunInstances=0/1").is_err());
    }
}
