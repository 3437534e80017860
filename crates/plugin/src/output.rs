//! The plugin's output: info lines on stdout (docker-machine shows them as `(machine) line`),
//! debug lines on stderr (shown with `docker-machine --debug`). Writing never fails loudly:
//! once docker-machine is gone its pipes are closed, and the plugin must still reach its
//! heartbeat watchdog's exit rather than die (or hang) on a broken pipe.
//!
//! GitLab's docker-machine fork sets `MACHINE_PLUGIN_LOG_FORMAT` (`text` or `json`); with
//! `json` every line after the address line is one JSON object in logrus's shape
//! (`level`, `msg`, `time`, then the event's own fields), which the fork re-emits with the
//! machine's name. Unset or `text`: plain lines, as upstream docker-machine expects.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable GitLab's fork sets for its plugins.
pub const LOG_FORMAT_ENV: &str = "MACHINE_PLUGIN_LOG_FORMAT";

/// How output lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain lines (upstream docker-machine; the fork's `text`).
    Text,
    /// One JSON object per line (the fork's `json`).
    Json,
}

impl LogFormat {
    /// The format `MACHINE_PLUGIN_LOG_FORMAT`'s value asks for: `json` (any case), else text.
    pub fn from_env_value(v: Option<&str>) -> LogFormat {
        match v {
            Some(v) if v.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// This process's format, read from the environment once.
pub fn log_format() -> LogFormat {
    static FORMAT: OnceLock<LogFormat> = OnceLock::new();
    *FORMAT.get_or_init(|| LogFormat::from_env_value(std::env::var(LOG_FORMAT_ENV).ok().as_deref()))
}

/// Prints one info line for the user; a closed or broken stdout is ignored.
pub fn say(line: &str) {
    let text = match log_format() {
        LogFormat::Text => line.to_string(),
        LogFormat::Json => json_line("info", line, Map::new()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// The current time as RFC 3339 (UTC), as the text log lines show it.
fn now() -> String {
    let mut s = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut s));
    s
}

/// One JSON log line in logrus's shape: `level`, `msg`, `time`, then `fields` (a field that
/// would shadow one of those three is renamed `fields.<name>`, as logrus does).
pub fn json_line(level: &str, msg: &str, fields: Map<String, Value>) -> String {
    let mut obj = Map::new();
    for (k, v) in fields {
        let k = if matches!(k.as_str(), "level" | "msg" | "time") {
            format!("fields.{k}")
        } else {
            k
        };
        obj.insert(k, v);
    }
    obj.insert("level".into(), Value::String(level.into()));
    obj.insert("msg".into(), Value::String(msg.into()));
    obj.insert("time".into(), Value::String(now()));
    Value::Object(obj).to_string()
}

/// logrus's name for a tracing level.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct JsonFields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().into(), Value::String(text));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().into(), Value::String(value.into()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), value.into());
    }
}

/// A `tracing` event format that writes each event as one [`json_line`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut v = JsonFields::default();
        event.record(&mut v);
        // Lines of the libraries below us (the AWS SDK's warnings about the environment, say)
        // are diagnostics, never the user's output: the fork re-emits a line at its level,
        // and a warning would land in what `url` or `inspect` print.
        let meta = event.metadata();
        let level = if meta.target().starts_with("ec2spot") {
            *meta.level()
        } else {
            (*meta.level()).max(Level::DEBUG) // more verbose is greater
        };
        writeln!(
            writer,
            "{}",
            json_line(level_name(&level), &v.message, v.fields)
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_logrus_shaped() {
        let mut fields = Map::new();
        fields.insert("instance".into(), Value::String("i-1".into()));
        fields.insert("msg".into(), Value::String("shadow".into()));
        let line = json_line("info", "Running at 10.0.0.1 [1.0s]", fields);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "Running at 10.0.0.1 [1.0s]");
        assert_eq!(v["instance"], "i-1");
        assert_eq!(v["fields.msg"], "shadow");
        let time = v["time"].as_str().unwrap();
        assert!(time.len() >= 20 && time.ends_with('Z'), "{time}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn format_comes_from_the_fork_variable() {
        assert_eq!(LogFormat::from_env_value(Some("json")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("JSON ")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("text")), LogFormat::Text);
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Text);
    }
}
