//! The plugin's output: info lines on stdout (docker-machine shows them as `(machine) line`),
//! debug lines on stderr (shown with `docker-machine --debug`). Writing never fails loudly:
//! once docker-machine is gone its pipes are closed, and the plugin must still reach its
//! heartbeat watchdog's exit rather than die (or hang) on a broken pipe.

use std::io::Write;

/// Prints one info line for the user; a closed or broken stdout is ignored.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A stderr writer for `tracing` that swallows write errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QuietStderr
    }
}

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
