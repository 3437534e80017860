//! The create options as given (`amazonec2-*` name → value), before [`apply`](crate::options::apply)
//! reads them into a [`Config`](crate::options::config::Config): what docker-machine sends with
//! `SetConfigFromFlags` (converted by the binary) or what `doctor` parsed from its command
//! line. Typed getters accept the forms docker-machine may send a value in.

use std::collections::BTreeMap;

use ec2spot_redact::{REDACTED, debug_options, is_secret_option};

/// One option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// A string option.
    String(String),
    /// An int option.
    Int(i64),
    /// A bool option.
    Bool(bool),
    /// A repeatable string option.
    StringSlice(Vec<String>),
}

impl OptionValue {
    /// Go's name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            OptionValue::String(_) => "string",
            OptionValue::Int(_) => "int",
            OptionValue::Bool(_) => "bool",
            OptionValue::StringSlice(_) => "[]string",
        }
    }
}

/// Option values by name. `Debug` hides the values of credential options
/// ([`is_secret_option`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OptionValues(pub BTreeMap<String, OptionValue>);

impl std::fmt::Debug for OptionValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_options(f, &self.0)
    }
}

/// An option value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: expected a {expected} value, got {got} {value}")]
pub struct OptionTypeError {
    /// The option.
    pub flag: String,
    /// The type the flag declares.
    pub expected: &'static str,
    /// The type received.
    pub got: &'static str,
    /// The value received, rendered for the message.
    pub value: String,
}

impl OptionValues {
    /// Looks a value up by option name.
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.0.get(name)
    }

    /// Sets a value.
    pub fn insert(&mut self, name: impl Into<String>, value: OptionValue) {
        self.0.insert(name.into(), value);
    }

    /// A string option; `None` when absent. An int or bool is rendered as text.
    pub fn string(&self, name: &str) -> Result<Option<String>, OptionTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(OptionValue::String(s)) => Ok(Some(s.clone())),
            Some(OptionValue::Int(i)) => Ok(Some(i.to_string())),
            Some(OptionValue::Bool(b)) => Ok(Some(b.to_string())),
            Some(v @ OptionValue::StringSlice(_)) => Err(self.type_error(name, "string", v)),
        }
    }

    /// An int option; `None` when absent. A string holding a decimal integer is accepted.
    pub fn int(&self, name: &str) -> Result<Option<i64>, OptionTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(OptionValue::Int(i)) => Ok(Some(*i)),
            Some(v @ OptionValue::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.type_error(name, "int", v)),
            Some(v) => Err(self.type_error(name, "int", v)),
        }
    }

    /// A bool option; `None` when absent. Strings `true`/`false`/`1`/`0` are accepted.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, OptionTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(OptionValue::Bool(b)) => Ok(Some(*b)),
            Some(v @ OptionValue::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => Ok(Some(true)),
                "false" | "0" | "f" | "" => Ok(Some(false)),
                _ => Err(self.type_error(name, "bool", v)),
            },
            Some(v) => Err(self.type_error(name, "bool", v)),
        }
    }

    /// A string-slice option; `None` when absent. A single string becomes a one-element list.
    pub fn string_slice(&self, name: &str) -> Result<Option<Vec<String>>, OptionTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(OptionValue::StringSlice(v)) => Ok(Some(v.clone())),
            Some(OptionValue::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(OptionValue::String(s)) => Ok(Some(vec![s.clone()])),
            Some(v) => Err(self.type_error(name, "[]string", v)),
        }
    }

    fn type_error(&self, name: &str, expected: &'static str, v: &OptionValue) -> OptionTypeError {
        OptionTypeError {
            flag: name.to_string(),
            expected,
            got: v.type_name(),
            value: if is_secret_option(name) {
                REDACTED.to_string()
            } else {
                format!("{v:?}")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_accept_compatible_forms_and_name_the_flag() {
        let mut v = OptionValues::default();
        v.insert("a", OptionValue::String("12".into()));
        v.insert("b", OptionValue::Bool(true));
        v.insert("c", OptionValue::StringSlice(vec!["x".into()]));
        v.insert("d", OptionValue::String("nope".into()));
        assert_eq!(v.int("a").unwrap(), Some(12));
        assert_eq!(v.bool("b").unwrap(), Some(true));
        assert_eq!(v.string_slice("c").unwrap(), Some(vec!["x".to_string()]));
        assert_eq!(v.string("missing").unwrap(), None);
        let err = v.int("d").unwrap_err().to_string();
        assert!(err.starts_with("--d: expected a int value"), "{err}");
        assert!(v.string("c").is_err());
    }
}
