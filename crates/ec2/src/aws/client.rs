//! The EC2 client, built one way for both paths (a plugin working on its own, and the agent
//! working for plugins): [`ClientSettings`] hold everything the SDK's defaults would take from
//! the environment and the shared config files — region, endpoint, FIPS and dual-stack,
//! proxies, extra CA certificates, retries and timeouts — resolved once, in the plugin, from
//! the plugin's environment. The agent gets them with each request and never consults its own
//! environment for a plugin's work.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{
    Credentials, ProvideCredentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;

use crate::aws::capacity::NoRetryOnCapacity;
use crate::aws::error::{Error, Result};
use crate::aws::http;
use crate::aws::proxy::Proxy;
use crate::aws::throttle::Throttle;
use crate::options::Asked;
use crate::options::validate::endpoint_url;

/// How an EC2 client is built, besides its credentials.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    /// The region.
    pub region: String,
    /// The endpoint URL ("" = AWS's for the region).
    pub endpoint_url: String,
    /// AWS's FIPS endpoints (`AWS_USE_FIPS_ENDPOINT`, profile `use_fips_endpoint`).
    pub use_fips: bool,
    /// AWS's dual-stack endpoints (`AWS_USE_DUALSTACK_ENDPOINT`, profile
    /// `use_dualstack_endpoint`).
    pub use_dual_stack: bool,
    /// `amazonec2-retries`.
    pub retries: i64,
    /// How long one attempt of a call may take.
    pub attempt_timeout: Duration,
    /// The proxy for the endpoint's scheme, if any.
    pub proxy: Proxy,
    /// Extra trusted certificates (PEM) from `AWS_CA_BUNDLE` or the profile's `ca_bundle`.
    pub ca_bundle: Vec<u8>,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("use_fips", &self.use_fips)
            .field("use_dual_stack", &self.use_dual_stack)
            .field("retries", &self.retries)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("proxy", &self.proxy)
            .field("ca_bundle_bytes", &self.ca_bundle.len())
            .finish()
    }
}

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

fn static_credentials(asked: &Asked) -> Option<Credentials> {
    (!asked.access_key.is_empty() && !asked.secret_key.is_empty()).then(|| {
        let token = (!asked.session_token.is_empty()).then(|| asked.session_token.clone());
        Credentials::new(
            asked.access_key.clone(),
            asked.secret_key.clone(),
            token,
            None,
            "amazonec2-access-key",
        )
    })
}

/// The SDK's view of this process's environment and shared config files for `config`'s region:
/// what `aws_config::defaults` resolves (profile, endpoint URLs, FIPS, dual-stack, the
/// credential chain). Nothing is sent anywhere by loading it.
async fn sdk_config(asked: &Asked) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(asked.region.clone()));
    if let Some(c) = static_credentials(asked) {
        loader = loader.credentials_provider(c);
    }
    loader.load().await
}

/// A setting as the SDK's generated config resolves it for EC2: `<env>_EC2`, `<env>`, the
/// profile's `services` section for ec2, then the profile's own key.
fn service_setting(sdk: &SdkConfig, env: &str, profile: &str) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id("EC2")
        .env(env)
        .profile(profile)
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .filter(|v| !v.is_empty())
}

/// Resolves the client settings for `config` from this process's environment (and shared
/// config files), as the SDK's defaults would. Run in the plugin, never in the agent.
fn settings_from(asked: &Asked, sdk: &SdkConfig) -> Result<ClientSettings> {
    let endpoint_url = if !asked.endpoint.is_empty() {
        endpoint_url(&asked.endpoint, asked.disable_ssl)
    } else {
        service_setting(sdk, "AWS_ENDPOINT_URL", "endpoint_url")
            .or_else(|| sdk.endpoint_url().map(str::to_string))
            .unwrap_or_default()
    };
    let ca_bundle = match service_setting(sdk, "AWS_CA_BUNDLE", "ca_bundle") {
        Some(path) => std::fs::read(&path).map_err(|e| {
            Error::Other(format!(
                "reading the CA bundle {path} (AWS_CA_BUNDLE or the profile's ca_bundle): {e}"
            ))
        })?,
        None => Vec::new(),
    };
    let use_fips = sdk.use_fips().unwrap_or(false);
    let use_dual_stack = sdk.use_dual_stack().unwrap_or(false);
    let target = if endpoint_url.is_empty() {
        aws_endpoint(&asked.region, use_fips, use_dual_stack)
    } else {
        endpoint_url.clone()
    };
    Ok(ClientSettings {
        region: asked.region.clone(),
        proxy: Proxy::from_env(&target),
        endpoint_url,
        use_fips,
        use_dual_stack,
        retries: asked.retry_count,
        attempt_timeout: attempt_timeout(),
        ca_bundle,
    })
}

/// AWS's EC2 endpoint for `region` (what the proxy decision is made for when no endpoint is
/// configured): `ec2[-fips].<region>.amazonaws.com[.cn]`, or `ec2[-fips].<region>.api.aws`
/// with dual-stack (https://docs.aws.amazon.com/general/latest/gr/ec2-service.html).
fn aws_endpoint(region: &str, fips: bool, dual_stack: bool) -> String {
    let service = if fips { "ec2-fips" } else { "ec2" };
    let domain = match (dual_stack, region.starts_with("cn-")) {
        (true, false) => "api.aws",
        (true, true) => "api.amazonwebservices.com.cn",
        (false, false) => "amazonaws.com",
        (false, true) => "amazonaws.com.cn",
    };
    format!("https://{service}.{region}.{domain}")
}

/// The client settings a plugin hands the agent with each request.
pub async fn settings(asked: &Asked) -> Result<ClientSettings> {
    settings_from(asked, &sdk_config(asked).await)
}

/// Builds the EC2 client a plugin process (or `doctor`, `gc`) uses on its own.
///
/// Credentials: the access/secret key options when given, else the standard AWS chain
/// (environment, shared config and credentials files with profiles and SSO, web identity,
/// container and instance roles), refreshed as they expire. Endpoint: `amazonec2-endpoint` when
/// given, else `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL` / the profile's, else AWS's.
pub async fn client(asked: &Asked) -> Result<aws_sdk_ec2::Client> {
    let sdk = sdk_config(asked).await;
    let settings = settings_from(asked, &sdk)?;
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| Error::Other("no AWS credentials provider".into()))?;
    build(&settings, credentials, None)
}

/// The credentials a plugin hands the agent: the key options, or what the standard chain finds
/// in the plugin's environment.
pub async fn credentials(asked: &Asked) -> Result<Credentials> {
    if let Some(c) = static_credentials(asked) {
        return Ok(c);
    }
    // The environment comes first in the standard chain too; checking it alone spares a
    // plugin loading the whole SDK configuration on every command.
    if let Ok(c) =
        aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new()
            .provide_credentials()
            .await
    {
        return Ok(c);
    }
    let sdk = sdk_config(asked).await;
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| Error::Other("no AWS credentials provider".into()))?;
    provider.provide_credentials().await.map_err(|e| {
        Error::Other(format!(
            "no AWS credentials ({e}): give --amazonec2-access-key and --amazonec2-secret-key, or configure the \
             standard chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, ~/.aws, an instance role)"
        ))
    })
}

/// The endpoint URL a plugin would use from its options and environment ("" = AWS's), for
/// display.
pub fn endpoint(asked: &Asked) -> String {
    if !asked.endpoint.is_empty() {
        return endpoint_url(&asked.endpoint, asked.disable_ssl);
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

/// The HTTPS client for `settings` (its proxy and trusted certificates).
pub fn http_client(settings: &ClientSettings) -> Result<SharedHttpClient> {
    http::client(&settings.proxy, &settings.ca_bundle)
}

/// Builds an EC2 client from `settings` and `credentials`, with nothing from this process's
/// environment. Through `throttle` (the agent's token buckets) every request first waits for
/// its bucket, and an attempt's time limit then applies to reading the answer only.
pub fn build(
    settings: &ClientSettings,
    credentials: SharedCredentialsProvider,
    throttle: Option<(&Arc<Throttle>, SharedHttpClient)>,
) -> Result<aws_sdk_ec2::Client> {
    let mut b = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .retry_config(retry_config(settings.retries))
        .retry_classifier(NoRetryOnCapacity)
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dual_stack);
    let timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(5));
    b = match throttle {
        Some((throttle, http)) => b
            // Waiting for a token happens inside the HTTP call: it must count against no
            // timeout, and the stalled-upload guard would take it for a stuck connection.
            .timeout_config(timeouts.read_timeout(settings.attempt_timeout).build())
            .stalled_stream_protection(
                aws_sdk_ec2::config::StalledStreamProtectionConfig::disabled(),
            )
            .http_client(throttle.http_client(http)),
        None => b
            .timeout_config(
                timeouts
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .build(),
            )
            .http_client(http_client(settings)?),
    };
    if !settings.endpoint_url.is_empty() {
        b = b.endpoint_url(&settings.endpoint_url);
    }
    Ok(aws_sdk_ec2::Client::from_conf(b.build()))
}
