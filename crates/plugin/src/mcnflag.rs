//! docker-machine's create flags (`libmachine/mcnflag`) and the values it sends back
//! (`rpcdriver.RPCFlags`).
//!
//! These are plain Rust types; [`super::wire`] turns them into gob values and back.

use std::collections::BTreeMap;

use ec2spot_redact::debug_options;

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

/// The option values docker-machine sends with `SetConfigFromFlags`: every driver flag (with
/// its default when the user gave none) plus docker-machine's own create options (`swarm-*`,
/// `engine-*`, `driver`), which a driver ignores. `Debug` hides the values of credential
/// options ([`is_secret_option`](ec2spot_redact::is_secret_option)).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FlagValues(pub BTreeMap<String, FlagValue>);

impl std::fmt::Debug for FlagValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_options(f, &self.0)
    }
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
}
