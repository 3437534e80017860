//! Every EC2 request attempt the agent makes, counted by action and outcome (`ok`,
//! `throttled`, AWS's error code, or `unanswered` when no response came): an SDK interceptor
//! added to each of the agent's EC2 clients when metrics are on. Retries are attempts of their
//! own, so a throttled call that then succeeds counts once as each.

use std::sync::Arc;

use aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use super::registry::Metrics;

/// Counts attempts into [`Metrics`].
#[derive(Debug, Clone)]
pub struct CountCalls(pub Arc<Metrics>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "ec2spot::metrics::CountCalls"
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let action = cfg.load::<Metadata>().map_or("Unknown", |m| m.name());
        let outcome = match ctx.response() {
            None => "unanswered".to_string(),
            Some(r) if r.status().is_success() => "ok".to_string(),
            Some(r) => {
                let body = r.body().bytes().unwrap_or_default();
                outcome_of(r.status().as_u16(), &String::from_utf8_lossy(body))
            }
        };
        self.0.ec2_request(action, &outcome);
        Ok(())
    }
}

/// The outcome of a failed request: `throttled` for EC2's throttling codes, else the error
/// code in its body (`<Code>…</Code>`), else `http_<status>`.
pub fn outcome_of(status: u16, body: &str) -> String {
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.trim())
        .filter(|c| !c.is_empty() && c.len() <= 64 && !c.contains('<'));
    match code {
        Some("RequestLimitExceeded" | "Throttling" | "ThrottlingException") => "throttled".into(),
        Some(code) => code.to_string(),
        None if status == 503 => "throttled".into(),
        None => format!("http_{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::outcome_of;

    #[test]
    fn outcomes_name_the_code() {
        let body = |c: &str| {
            format!(
                "<Response><Errors><Error><Code>{c}</Code><Message>m</Message></Error></Errors></Response>"
            )
        };
        assert_eq!(outcome_of(503, &body("RequestLimitExceeded")), "throttled");
        assert_eq!(
            outcome_of(500, &body("InsufficientInstanceCapacity")),
            "InsufficientInstanceCapacity"
        );
        assert_eq!(outcome_of(503, ""), "throttled");
        assert_eq!(outcome_of(502, "oops"), "http_502");
    }
}
