//! The EC2 client: region, endpoint, credentials and retry policy from the machine's config.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{Credentials, Region};

use super::capacity::NoRetryOnCapacity;
use super::config::Config;
use super::options::endpoint_url;

/// Builds the EC2 client for `config`.
///
/// Credentials: the access/secret key options when given, else the standard AWS chain
/// (environment, shared config and credentials files with profiles and SSO, web identity,
/// container and instance roles). Endpoint: `amazonec2-endpoint` when given, else
/// `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL`, else AWS's. Retries: `amazonec2-retries`
/// retries after the first attempt, with exponential backoff and jitter for throttling and
/// transient errors; `-1` (and `0`) means a single attempt.
pub async fn client(config: &Config) -> aws_sdk_ec2::Client {
    let retry = if config.retry_count <= 0 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(config.retry_count as u32 + 1)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(10))
    };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if !config.access_key.is_empty() && !config.secret_key.is_empty() {
        let token = (!config.session_token.is_empty()).then(|| config.session_token.clone());
        loader = loader.credentials_provider(Credentials::new(
            config.access_key.clone(),
            config.secret_key.clone(),
            token,
            None,
            "amazonec2-access-key",
        ));
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
