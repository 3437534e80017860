//! Gob forms of docker-machine's plugin types: `[]mcnflag.Flag` replies, the
//! `*rpcdriver.RPCFlags` argument, and the arguments of GitLab's fork's `UpdateLabels`
//! (`map[string]string`) and `SetTLSBootstrap` (`drivers.TLSBootstrap`). Names and field
//! layouts are docker-machine's.

use std::collections::BTreeMap;

use ec2spot_gob::{Type, Value};

use super::TlsBootstrap;
use super::mcnflag::{Flag, FlagValue, FlagValues};

/// Registered name of `*mcnflag.StringFlag`.
pub const STRING_FLAG: &str = "*mcnflag.StringFlag";
/// Registered name of `*mcnflag.IntFlag`.
pub const INT_FLAG: &str = "*mcnflag.IntFlag";
/// Registered name of `*mcnflag.BoolFlag`.
pub const BOOL_FLAG: &str = "*mcnflag.BoolFlag";
/// Registered name of `*mcnflag.StringSliceFlag`.
pub const STRING_SLICE_FLAG: &str = "*mcnflag.StringSliceFlag";
/// Registered name of `*rpcdriver.RPCFlags`.
pub const RPC_FLAGS: &str = "*rpcdriver.RPCFlags";

fn flag_type(name: &str, value: Option<Type>) -> Type {
    let mut fields = vec![
        ("Name", Type::String),
        ("Usage", Type::String),
        ("EnvVar", Type::String),
    ];
    if let Some(v) = value {
        fields.push(("Value", v));
    }
    Type::structure(name, &fields)
}

/// The type of the `GetCreateFlags` reply: `[]mcnflag.Flag` (a slice of interfaces).
pub fn flags_type() -> Type {
    Type::slice(Type::Interface)
}

/// Encodes the flag list as docker-machine's `[]mcnflag.Flag`.
pub fn flags_to_value(flags: &[Flag]) -> Value {
    let items = flags
        .iter()
        .map(|f| {
            let common = |name: &str, usage: &str, env: &str| {
                vec![
                    ("Name".into(), Value::String(name.into())),
                    ("Usage".into(), Value::String(usage.into())),
                    ("EnvVar".into(), Value::String(env.into())),
                ]
            };
            match f {
                Flag::String {
                    name,
                    usage,
                    env_var,
                    value,
                } => {
                    let mut fields = common(name, usage, env_var);
                    fields.push(("Value".into(), Value::String(value.clone())));
                    Value::interface(
                        STRING_FLAG,
                        flag_type("StringFlag", Some(Type::String)),
                        Value::Struct(fields),
                    )
                }
                Flag::Int {
                    name,
                    usage,
                    env_var,
                    value,
                } => {
                    let mut fields = common(name, usage, env_var);
                    fields.push(("Value".into(), Value::Int(*value)));
                    Value::interface(
                        INT_FLAG,
                        flag_type("IntFlag", Some(Type::Int)),
                        Value::Struct(fields),
                    )
                }
                Flag::Bool {
                    name,
                    usage,
                    env_var,
                } => Value::interface(
                    BOOL_FLAG,
                    flag_type("BoolFlag", None),
                    Value::Struct(common(name, usage, env_var)),
                ),
                Flag::StringSlice {
                    name,
                    usage,
                    env_var,
                    value,
                } => {
                    let mut fields = common(name, usage, env_var);
                    let items = value.iter().map(|s| Value::String(s.clone())).collect();
                    fields.push(("Value".into(), Value::Slice(items)));
                    Value::interface(
                        STRING_SLICE_FLAG,
                        flag_type("StringSliceFlag", Some(Type::slice(Type::String))),
                        Value::Struct(fields),
                    )
                }
            }
        })
        .collect();
    Value::Slice(items)
}

/// Decodes a `[]mcnflag.Flag` reply (for clients).
pub fn flags_from_value(v: &Value) -> Result<Vec<Flag>, String> {
    let items = v.as_slice().ok_or("GetCreateFlags reply is not a slice")?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(Some(iface)) = item.as_interface() else {
            return Err("flag is not an interface value".into());
        };
        let s = |k: &str| {
            iface
                .value
                .field(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (name, usage, env_var) = (s("Name"), s("Usage"), s("EnvVar"));
        out.push(match iface.name.as_str() {
            STRING_FLAG => Flag::String {
                name,
                usage,
                env_var,
                value: s("Value"),
            },
            INT_FLAG => Flag::Int {
                name,
                usage,
                env_var,
                value: iface
                    .value
                    .field("Value")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            },
            BOOL_FLAG => Flag::Bool {
                name,
                usage,
                env_var,
            },
            STRING_SLICE_FLAG => Flag::StringSlice {
                name,
                usage,
                env_var,
                value: iface
                    .value
                    .field("Value")
                    .and_then(Value::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            },
            other => return Err(format!("unknown flag type {other}")),
        });
    }
    Ok(out)
}

/// The `SetConfigFromFlags` argument type as docker-machine sends it: an interface.
pub fn rpc_flags_type() -> Type {
    Type::Interface
}

/// Encodes option values as docker-machine's `*rpcdriver.RPCFlags` (for clients).
pub fn rpc_flags_to_value(values: &FlagValues) -> Value {
    let pairs = values
        .0
        .iter()
        .map(|(k, v)| {
            let inner = match v {
                FlagValue::String(s) => {
                    Value::interface("string", Type::String, Value::String(s.clone()))
                }
                FlagValue::Int(i) => Value::interface("int", Type::Int, Value::Int(*i)),
                FlagValue::Bool(b) => Value::interface("bool", Type::Bool, Value::Bool(*b)),
                FlagValue::StringSlice(items) => Value::interface(
                    "[]string",
                    Type::slice(Type::String),
                    Value::Slice(items.iter().map(|s| Value::String(s.clone())).collect()),
                ),
            };
            (Value::String(k.clone()), inner)
        })
        .collect();
    let ty = Type::structure(
        "RPCFlags",
        &[("Values", Type::map(Type::String, Type::Interface))],
    );
    Value::interface(
        RPC_FLAGS,
        ty,
        Value::structure([("Values", Value::Map(pairs))]),
    )
}

/// Decodes the `SetConfigFromFlags` argument. Accepts the interface docker-machine sends and,
/// leniently, a bare `RPCFlags` struct. Values of other integer kinds count as ints; values
/// of kinds docker-machine never sends are refused with the key named.
pub fn rpc_flags_from_value(v: &Value) -> Result<FlagValues, String> {
    let inner = match v {
        Value::Interface(Some(i)) => &i.value,
        Value::Interface(None) => return Err("SetConfigFromFlags: nil options".into()),
        s @ Value::Struct(_) => s,
        other => {
            return Err(format!(
                "gob: local interface type *drivers.DriverOptions can only be decoded from remote interface type; received concrete type {}",
                other.kind()
            ));
        }
    };
    let mut out = FlagValues::default();
    let Some(map) = inner.field("Values") else {
        return Ok(out);
    };
    let pairs = map.as_map().ok_or("RPCFlags.Values is not a map")?;
    for (k, v) in pairs {
        let key = k
            .as_str()
            .ok_or("RPCFlags.Values has a non-string key")?
            .to_string();
        let value = match v {
            Value::Interface(None) => continue,
            Value::Interface(Some(i)) => &i.value,
            other => other,
        };
        let fv = match value {
            Value::String(s) => FlagValue::String(s.clone()),
            Value::Bool(b) => FlagValue::Bool(*b),
            Value::Int(_) | Value::Uint(_) => FlagValue::Int(
                value
                    .as_i64()
                    .ok_or_else(|| format!("option {key}: integer out of range"))?,
            ),
            Value::Slice(items) => FlagValue::StringSlice(
                items
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(String::from)
                            .ok_or_else(|| format!("option {key}: list holds a {}", s.kind()))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return Err(format!(
                    "option {key}: unsupported value kind {}",
                    other.kind()
                ));
            }
        };
        out.insert(key, fv);
    }
    Ok(out)
}

/// The fields of GitLab's fork's `drivers.TLSBootstrap`, in declaration order.
const TLS_BOOTSTRAP_FIELDS: [&str; 4] = ["CACert", "ServerCert", "ServerKey", "DaemonDropin"];

/// The `SetTLSBootstrap` argument type: the struct `TLSBootstrap` with four `[]byte` fields
/// (gob names a struct type on the wire by its bare Go name).
pub fn tls_bootstrap_type() -> Type {
    let fields: Vec<(&str, Type)> = TLS_BOOTSTRAP_FIELDS
        .iter()
        .map(|f| (*f, Type::Bytes))
        .collect();
    Type::structure("TLSBootstrap", &fields)
}

/// Encodes a [`TlsBootstrap`] as the fork's `drivers.TLSBootstrap` (for clients).
pub fn tls_bootstrap_to_value(b: &TlsBootstrap) -> Value {
    Value::structure([
        ("CACert", Value::Bytes(b.ca_cert.clone())),
        ("ServerCert", Value::Bytes(b.server_cert.clone())),
        ("ServerKey", Value::Bytes(b.server_key.clone())),
        ("DaemonDropin", Value::Bytes(b.daemon_dropin.clone())),
    ])
}

/// Decodes the `SetTLSBootstrap` argument. Absent fields are empty (gob omits zero fields).
pub fn tls_bootstrap_from_value(v: &Value) -> Result<TlsBootstrap, String> {
    if !matches!(v, Value::Struct(_)) {
        return Err(format!(
            "gob: type mismatch in decoder: want struct type drivers.TLSBootstrap; got {}",
            v.kind()
        ));
    }
    let field = |name: &str| -> Result<Vec<u8>, String> {
        match v.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(Value::String(s)) => Ok(s.clone().into_bytes()),
            Some(other) => Err(format!(
                "TLSBootstrap.{name}: expected []byte, got {}",
                other.kind()
            )),
        }
    };
    Ok(TlsBootstrap {
        ca_cert: field("CACert")?,
        server_cert: field("ServerCert")?,
        server_key: field("ServerKey")?,
        daemon_dropin: field("DaemonDropin")?,
    })
}

/// The `UpdateLabels` argument type: `map[string]string`.
pub fn labels_type() -> Type {
    Type::map(Type::String, Type::String)
}

/// Encodes labels as `map[string]string` (for clients).
pub fn labels_to_value(labels: &BTreeMap<String, String>) -> Value {
    Value::Map(
        labels
            .iter()
            .map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone())))
            .collect(),
    )
}

/// Decodes the `UpdateLabels` argument.
pub fn labels_from_value(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let pairs = v.as_map().ok_or_else(|| {
        format!(
            "gob: decoding into local type map[string]string, received remote type {}",
            v.kind()
        )
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        match (k.as_str(), v.as_str()) {
            (Some(k), Some(v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(format!(
                    "gob: decoding into local type map[string]string, received map[{}]{}",
                    k.kind(),
                    v.kind()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ec2spot_gob::{Decoder, Encoder, wire::split_messages};

    fn round_trip(ty: &Type, v: &Value) -> Value {
        let bytes = Encoder::new().encode_to_vec(ty, v).unwrap();
        let mut dec = Decoder::new();
        let mut out = None;
        for m in split_messages(&bytes, 1 << 20).unwrap() {
            dec.push_message(m.to_vec()).unwrap();
            if let Some(v) = dec.next_value().unwrap() {
                out = Some(v);
            }
        }
        out.unwrap()
    }

    #[test]
    fn flags_round_trip() {
        let flags = vec![
            Flag::String {
                name: "a".into(),
                usage: "u".into(),
                env_var: "E".into(),
                value: "".into(),
            },
            Flag::Int {
                name: "b".into(),
                usage: "u".into(),
                env_var: "".into(),
                value: 16,
            },
            Flag::Bool {
                name: "c".into(),
                usage: "u".into(),
                env_var: "".into(),
            },
            Flag::StringSlice {
                name: "d".into(),
                usage: "u".into(),
                env_var: "".into(),
                value: vec!["x".into()],
            },
            Flag::StringSlice {
                name: "e".into(),
                usage: "u".into(),
                env_var: "".into(),
                value: vec![],
            },
        ];
        let back = round_trip(&flags_type(), &flags_to_value(&flags));
        assert_eq!(flags_from_value(&back).unwrap(), flags);
    }

    #[test]
    fn rpc_flags_round_trip() {
        let mut v = FlagValues::default();
        v.insert("s", FlagValue::String("x".into()));
        v.insert("i", FlagValue::Int(-4));
        v.insert("b", FlagValue::Bool(true));
        v.insert("l", FlagValue::StringSlice(vec![]));
        v.insert("m", FlagValue::StringSlice(vec!["a".into(), "b".into()]));
        let back = round_trip(&rpc_flags_type(), &rpc_flags_to_value(&v));
        assert_eq!(rpc_flags_from_value(&back).unwrap(), v);
    }

    #[test]
    fn fork_arguments_round_trip() {
        let b = TlsBootstrap {
            ca_cert: b"ca".to_vec(),
            server_cert: Vec::new(),
            server_key: b"key".to_vec(),
            daemon_dropin: b"[Service]\n".to_vec(),
        };
        let back = round_trip(&tls_bootstrap_type(), &tls_bootstrap_to_value(&b));
        assert_eq!(tls_bootstrap_from_value(&back).unwrap(), b);
        assert!(tls_bootstrap_from_value(&Value::Int(1)).is_err());

        let labels: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "".into())]
            .into_iter()
            .collect();
        let back = round_trip(&labels_type(), &labels_to_value(&labels));
        assert_eq!(labels_from_value(&back).unwrap(), labels);
        assert!(labels_from_value(&Value::empty_struct()).is_err());
    }

    #[test]
    fn tls_bootstrap_debug_hides_the_key() {
        let b = TlsBootstrap {
            server_key: b"-----BEGIN RSA PRIVATE KEY-----secret".to_vec(),
            ..Default::default()
        };
        let shown = format!("{b:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
