//! The binary's log lines: a plugin's on stderr (docker-machine shows them with `--debug`), the
//! agent's in its log file, in the format docker-machine asks for (plain, or JSON lines for
//! GitLab's fork); `EC2SPOT_LOG` filters them, except that the crates whose debug output can
//! carry credentials never go below `info`.

use std::path::Path;

use ec2spot_plugin::output::{JsonLines, LogFormat, QuietStderr, log_format};

/// Crates whose debug and trace output can carry credentials (signed requests, canonical
/// requests with the session token): kept at `info` whatever the user's filter says.
const QUIET_CRATES: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_smithy_types",
    "aws_runtime",
    "aws_config",
    "aws_credential_types",
    "aws_sdk_ec2",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "tower",
    "rustls",
];

/// The log filter for `user_filter` (`EC2SPOT_LOG`), with the credential-bearing crates capped.
pub fn log_filter(user_filter: &str) -> tracing_subscriber::EnvFilter {
    let mut directives = user_filter.to_string();
    for c in QUIET_CRATES {
        directives.push_str(&format!(",{c}=info"));
    }
    tracing_subscriber::EnvFilter::new(directives)
}

/// The plugin's debug lines on stderr: plain, or one JSON object each when docker-machine
/// (GitLab's fork) asks for `MACHINE_PLUGIN_LOG_FORMAT=json`.
pub fn init_plugin() {
    let filter = std::env::var("EC2SPOT_LOG").unwrap_or_else(|_| "ec2spot=debug,warn".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(QuietStderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(log_filter(&filter));
    match log_format() {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.event_format(JsonLines).init(),
    }
}

/// The agent's lines, appended to `log` (stderr when it cannot be opened), in the format of
/// the plugin that started it (or of the service's environment).
pub fn init_agent(log: &Path, cap: u64) {
    let log = crate::log_file::RotatingLog::open(log, cap);
    let filter = std::env::var("EC2SPOT_LOG").unwrap_or_else(|_| "ec2spot=info,warn".into());
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(log_filter(&filter));
    let json = log_format() == LogFormat::Json;
    match (log, json) {
        (Ok(f), false) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        (Ok(f), true) => builder
            .event_format(JsonLines)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        (Err(_), false) => builder.with_writer(QuietStderr).init(),
        (Err(_), true) => builder
            .event_format(JsonLines)
            .with_writer(QuietStderr)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_bearing_crates_stay_at_info_whatever_the_filter() {
        let filter = log_filter("trace").to_string();
        for c in QUIET_CRATES {
            assert!(filter.contains(&format!("{c}=info")), "{c}: {filter}");
        }
        assert!(filter.contains("trace"), "{filter}");
    }
}
