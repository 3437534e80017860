//! The EC2 client: region, endpoint, credentials and retry policy from the machine's config.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, Region, SharedHttpClient};

use super::capacity::NoRetryOnCapacity;
use super::config::Config;
use super::error::{Error, Result};
use super::options::endpoint_url;
use super::throttle::Throttle;

/// The retry policy for `amazonec2-retries`: that many retries after the first attempt, with
/// exponential backoff and jitter for throttling and transient errors; `-1` (and `0`) means a
/// single attempt.
pub fn retry_config(retries: i64) -> RetryConfig {
    if retries <= 0 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(retries as u32 + 1)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(10))
    }
}

/// How long one attempt of an EC2 call may take: 30 s, or `EC2SPOT_AWS_TIMEOUT` seconds.
pub fn attempt_timeout() -> Duration {
    std::env::var("EC2SPOT_AWS_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30))
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(attempt_timeout())
        .build()
}

fn static_credentials(config: &Config) -> Option<Credentials> {
    (!config.access_key.is_empty() && !config.secret_key.is_empty()).then(|| {
        let token = (!config.session_token.is_empty()).then(|| config.session_token.clone());
        Credentials::new(
            config.access_key.clone(),
            config.secret_key.clone(),
            token,
            None,
            "amazonec2-access-key",
        )
    })
}

/// Builds the EC2 client a plugin process uses on its own.
///
/// Credentials: the access/secret key options when given, else the standard AWS chain
/// (environment, shared config and credentials files with profiles and SSO, web identity,
/// container and instance roles). Endpoint: `amazonec2-endpoint` when given, else
/// `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL`, else AWS's.
pub async fn client(config: &Config) -> aws_sdk_ec2::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .retry_config(retry_config(config.retry_count))
        .timeout_config(timeouts());
    if let Some(c) = static_credentials(config) {
        loader = loader.credentials_provider(c);
    }
    if !config.endpoint.is_empty() {
        loader = loader.endpoint_url(endpoint_url(&config.endpoint, config.disable_ssl));
    }
    let shared = loader.load().await;
    let conf = aws_sdk_ec2::config::Builder::from(&shared)
        .retry_classifier(NoRetryOnCapacity)
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// The credentials a plugin hands the agent: the key options, or what the standard chain finds
/// in the plugin's environment.
pub async fn credentials(config: &Config) -> Result<Credentials> {
    if let Some(c) = static_credentials(config) {
        return Ok(c);
    }
    // The environment comes first in the standard chain too; checking it alone spares a
    // plugin loading the whole SDK configuration (and the system's root certificates) on
    // every command.
    if let Ok(c) =
        aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new()
            .provide_credentials()
            .await
    {
        return Ok(c);
    }
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .load()
        .await;
    let provider = shared
        .credentials_provider()
        .ok_or_else(|| Error::Other("no AWS credentials provider".into()))?;
    provider.provide_credentials().await.map_err(|e| {
        Error::Other(format!(
            "no AWS credentials ({e}): give --amazonec2-access-key and --amazonec2-secret-key, or configure the \
             standard chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, ~/.aws, an instance role)"
        ))
    })
}

/// The endpoint URL a plugin hands the agent: the option, else the environment's, else AWS's ("").
pub fn endpoint(config: &Config) -> String {
    if !config.endpoint.is_empty() {
        return endpoint_url(&config.endpoint, config.disable_ssl);
    }
    let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return String::new();
    }
    ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

/// An HTTPS client like the SDK's default (hyper 1, rustls with aws-lc), for wrapping in a
/// [`Throttle`].
pub fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// Builds an EC2 client from explicit parts (in the agent: nothing comes from its environment),
/// sending every request through `throttle`.
pub fn client_from_parts(
    region: &str,
    endpoint: &str,
    credentials: Credentials,
    retries: i64,
    http: SharedHttpClient,
    throttle: &Arc<Throttle>,
) -> aws_sdk_ec2::Client {
    let mut b = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials)
        .retry_config(retry_config(retries))
        // Waiting for a token happens inside the HTTP call: it must count against no timeout,
        // and the stalled-upload guard would take it for a stuck connection.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(attempt_timeout())
                .build(),
        )
        .stalled_stream_protection(aws_sdk_ec2::config::StalledStreamProtectionConfig::disabled())
        .retry_classifier(NoRetryOnCapacity)
        .http_client(throttle.http_client(http));
    if !endpoint.is_empty() {
        b = b.endpoint_url(endpoint);
    }
    aws_sdk_ec2::Client::from_conf(b.build())
}
