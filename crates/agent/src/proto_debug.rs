//! `Debug` for the agent's messages that carry secrets (their derived one is turned off in
//! build.rs): the credentials print as [`REDACTED`](ec2spot_redact::REDACTED) — all of them,
//! the access key id too — and a driver config (which may hold the user's keys) as its size.

use std::fmt;

use super::proto::{ClientSettings, Credentials, RunRequest, RunResult, TlsBootstrap};
use ec2spot_ec2::aws::proxy::redact_userinfo;
use ec2spot_redact::Redacted;

/// A driver config in a message: its size only.
struct ConfigJson<'a>(&'a [u8]);

impl fmt::Debug for ConfigJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes of driver config>", self.0.len())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &Redacted)
            .field("secret_access_key", &Redacted)
            .field("session_token", &Redacted)
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

impl fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunRequest")
            .field("operation", &self.operation())
            .field("config_json", &ConfigJson(&self.config_json))
            .field("credentials", &self.credentials)
            .field("settings", &self.settings)
            .field("build", &self.build)
            .field("labels", &self.labels)
            .field("tls_bootstrap", &self.tls_bootstrap)
            .finish()
    }
}

impl fmt::Debug for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunResult")
            .field("config_json", &ConfigJson(&self.config_json))
            .field("error", &self.error)
            .field("state", &self.state)
            .field("text", &self.text)
            .field("observed_seconds_ago", &self.observed_seconds_ago)
            .finish()
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("use_fips", &self.use_fips)
            .field("use_dual_stack", &self.use_dual_stack)
            .field("retries", &self.retries)
            .field("attempt_timeout_ms", &self.attempt_timeout_ms)
            .field("proxy_url", &redact_userinfo(&self.proxy_url))
            .field("no_proxy", &self.no_proxy)
            .field("ca_bundle_bytes", &self.ca_bundle.len())
            .finish()
    }
}

impl fmt::Debug for TlsBootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsBootstrap")
            .field("ca_cert_bytes", &self.ca_cert.len())
            .field("server_cert_bytes", &self.server_cert.len())
            .field("server_key", &Redacted)
            .field("daemon_dropin_bytes", &self.daemon_dropin.len())
            .finish()
    }
}
