//! docker-machine's create flags (`libmachine/mcnflag`) and the values it sends back
//! (`rpcdriver.RPCFlags`).
//!
//! These are plain Rust types; [`super::wire`] turns them into gob values and back.

use std::collections::BTreeMap;

use ec2spot_redact::{REDACTED, Redacted, is_secret_option};

/// One create flag as `GetCreateFlags` announces it.
///
/// docker-machine turns each into a command-line option `--<name>` (with `EnvVar` as its
/// environment default) and validates the user's options against this list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// `*mcnflag.StringFlag`.
    String {
        /// Option name without dashes.
        name: String,
        /// Help text.
        usage: String,
        /// Environment variable docker-machine reads as the default ("" = none).
        env_var: String,
        /// Default value.
        value: String,
    },
    /// `*mcnflag.IntFlag`.
    Int {
        /// Option name without dashes.
        name: String,
        /// Help text.
        usage: String,
        /// Environment variable docker-machine reads as the default ("" = none).
        env_var: String,
        /// Default value.
        value: i64,
    },
    /// `*mcnflag.BoolFlag` (always defaults to false).
    Bool {
        /// Option name without dashes.
        name: String,
        /// Help text.
        usage: String,
        /// Environment variable docker-machine reads as the default ("" = none).
        env_var: String,
    },
    /// `*mcnflag.StringSliceFlag` (repeatable option).
    StringSlice {
        /// Option name without dashes.
        name: String,
        /// Help text.
        usage: String,
        /// Environment variable docker-machine reads as the default ("" = none).
        env_var: String,
        /// Default values.
        value: Vec<String>,
    },
}

impl Flag {
    /// The option name.
    pub fn name(&self) -> &str {
        match self {
            Flag::String { name, .. }
            | Flag::Int { name, .. }
            | Flag::Bool { name, .. }
            | Flag::StringSlice { name, .. } => name,
        }
    }
}

/// One value of the `SetConfigFromFlags` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// A string option.
    String(String),
    /// An int option.
    Int(i64),
    /// A bool option.
    Bool(bool),
    /// A repeatable string option.
    StringSlice(Vec<String>),
}

impl FlagValue {
    /// Go's name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            FlagValue::String(_) => "string",
            FlagValue::Int(_) => "int",
            FlagValue::Bool(_) => "bool",
            FlagValue::StringSlice(_) => "[]string",
        }
    }
}

/// The option values docker-machine sends with `SetConfigFromFlags`: every driver flag (with
/// its default when the user gave none) plus docker-machine's own create options (`swarm-*`,
/// `engine-*`, `driver`), which a driver ignores. `Debug` hides the values of credential
/// options ([`is_secret_option`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FlagValues(pub BTreeMap<String, FlagValue>);

impl std::fmt::Debug for FlagValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.0 {
            if is_secret_option(name) {
                map.entry(name, &Redacted);
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// A flag value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: expected a {expected} value, got {got} {value}")]
pub struct FlagTypeError {
    /// The flag.
    pub flag: String,
    /// The type the driver declared.
    pub expected: &'static str,
    /// The type received.
    pub got: &'static str,
    /// The value received, rendered for the message.
    pub value: String,
}

impl FlagValues {
    /// Looks a value up by flag name.
    pub fn get(&self, name: &str) -> Option<&FlagValue> {
        self.0.get(name)
    }

    /// Sets a value (used by clients and tests).
    pub fn insert(&mut self, name: impl Into<String>, value: FlagValue) {
        self.0.insert(name.into(), value);
    }

    /// A string flag; `None` when absent. An int or bool is rendered as text.
    pub fn string(&self, name: &str) -> Result<Option<String>, FlagTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(FlagValue::String(s)) => Ok(Some(s.clone())),
            Some(FlagValue::Int(i)) => Ok(Some(i.to_string())),
            Some(FlagValue::Bool(b)) => Ok(Some(b.to_string())),
            Some(v @ FlagValue::StringSlice(_)) => Err(self.type_error(name, "string", v)),
        }
    }

    /// An int flag; `None` when absent. A string holding a decimal integer is accepted.
    pub fn int(&self, name: &str) -> Result<Option<i64>, FlagTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(FlagValue::Int(i)) => Ok(Some(*i)),
            Some(v @ FlagValue::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.type_error(name, "int", v)),
            Some(v) => Err(self.type_error(name, "int", v)),
        }
    }

    /// A bool flag; `None` when absent. Strings `true`/`false`/`1`/`0` are accepted.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FlagTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(FlagValue::Bool(b)) => Ok(Some(*b)),
            Some(v @ FlagValue::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => Ok(Some(true)),
                "false" | "0" | "f" | "" => Ok(Some(false)),
                _ => Err(self.type_error(name, "bool", v)),
            },
            Some(v) => Err(self.type_error(name, "bool", v)),
        }
    }

    /// A string-slice flag; `None` when absent. A single string becomes a one-element list.
    pub fn string_slice(&self, name: &str) -> Result<Option<Vec<String>>, FlagTypeError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(FlagValue::StringSlice(v)) => Ok(Some(v.clone())),
            Some(FlagValue::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(FlagValue::String(s)) => Ok(Some(vec![s.clone()])),
            Some(v) => Err(self.type_error(name, "[]string", v)),
        }
    }

    fn type_error(&self, name: &str, expected: &'static str, v: &FlagValue) -> FlagTypeError {
        FlagTypeError {
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
        let mut v = FlagValues::default();
        v.insert("a", FlagValue::String("12".into()));
        v.insert("b", FlagValue::Bool(true));
        v.insert("c", FlagValue::StringSlice(vec!["x".into()]));
        v.insert("d", FlagValue::String("nope".into()));
        assert_eq!(v.int("a").unwrap(), Some(12));
        assert_eq!(v.bool("b").unwrap(), Some(true));
        assert_eq!(v.string_slice("c").unwrap(), Some(vec!["x".to_string()]));
        assert_eq!(v.string("missing").unwrap(), None);
        let err = v.int("d").unwrap_err().to_string();
        assert!(err.starts_with("--d: expected a int value"), "{err}");
        assert!(v.string("c").is_err());
    }
}
