//! The driver's persisted configuration: the `Driver` object of docker-machine's
//! `config.json`, exchanged with `SetConfigRaw` / `GetConfigRaw`.
//!
//! A machine's configuration is three things, each decided in one place: what the user
//! [`Asked`] (`SetConfigFromFlags`), what EC2 [`Answered`] before the launch (the pre-create
//! check), and what the create [`Made`]. The file holds them together in one flat object
//! ([`stored`]): key names are docker-machine's (the `BaseDriver` keys at top level) and the
//! amazonec2 driver's field names for the rest, so `docker-machine inspect -f
//! '{{.Driver.InstanceId}}'` keeps working; our additions have names of their own.

mod stored;

use serde_json::{Map, Value};

pub use crate::answered::{Answered, Pool};
pub use crate::asked::Asked;
pub use crate::made::Made;
use stored::Stored;

/// A machine's configuration: what survives between docker-machine commands. Its `Debug`
/// output hides the credentials ([`SECRET_FIELDS`]).
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    /// The options, as asked.
    pub asked: Asked,
    /// What the pre-create check found (`None` before it ran).
    pub answered: Option<Answered>,
    /// What the create made.
    pub made: Made,
    /// Keys this build does not know (written by another version of ec2spot, or by the driver
    /// the machine had before): kept as they are and written back, never dropped.
    pub extra: Map<String, Value>,
}

/// The JSON keys of the fields that hold credentials: `Debug` prints
/// [`REDACTED`](ec2spot_redact::REDACTED) for them.
pub const SECRET_FIELDS: &[&str] = &["AccessKey", "SecretKey", "SessionToken"];

/// Every field by its JSON key (new fields are included without touching this), the secret
/// ones redacted; `{:#?}` spreads it over lines.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_fields("Config", self, f)
    }
}

/// Every field by its `config.json` key, the credentials redacted.
impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = Config {
            asked: self.clone(),
            ..Default::default()
        };
        debug_fields("Asked", &whole, f)
    }
}

/// `config`'s fields by their JSON keys, the secret ones redacted, under `name`.
fn debug_fields(name: &str, config: &Config, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(config.stored()) else {
        return write!(f, "{name} {{ .. }}");
    };
    for k in SECRET_FIELDS {
        if let Some(v) = fields.get_mut(*k) {
            *v = Value::String(ec2spot_redact::REDACTED.into());
        }
    }
    if f.alternate() {
        write!(f, "{name} {:#}", Value::Object(fields))
    } else {
        write!(f, "{name} {}", Value::Object(fields))
    }
}

/// Why a driver JSON could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or not an object.
    #[error("driver config is not a JSON object: {0}")]
    Syntax(String),
    /// A key holds a value of the wrong type.
    #[error("driver config field {field}: {message}")]
    Field {
        /// The JSON key.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The answers of the pre-create check, or none yet (empty).
    pub fn answered_or_default(&self) -> Answered {
        self.answered.clone().unwrap_or_default()
    }

    fn stored(&self) -> Stored {
        Stored::from_parts(&self.asked, self.answered.as_ref(), &self.made, &self.extra)
    }

    fn from_stored(stored: Stored) -> Config {
        let (asked, answered, made, extra) = stored.normalized().into_parts();
        Config {
            asked,
            answered,
            made,
            extra,
        }
    }

    /// Merges a driver JSON into this config the way Go's `json.Unmarshal` does into an
    /// existing struct: keys are matched case-insensitively, missing keys keep their current
    /// value, `null` clears a list and leaves anything else alone. Unlike Go, unknown keys are
    /// kept (in [`Config::extra`]) and written back by [`Config::to_json`].
    pub fn merge_json(&mut self, raw: &[u8]) -> Result<(), ConfigError> {
        let incoming: Value =
            serde_json::from_slice(raw).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let Value::Object(incoming) = incoming else {
            return Err(ConfigError::Syntax("expected an object".into()));
        };
        let Value::Object(mut current) =
            serde_json::to_value(self.stored()).expect("config serializes")
        else {
            unreachable!("the stored config serializes to an object")
        };
        // Keys skipped when empty must still be matchable.
        for k in [
            "AccessKey",
            "SecretKey",
            "SessionToken",
            "SecurityGroupId",
            "SecurityGroupName",
        ] {
            current.entry(k).or_insert(Value::String(String::new()));
        }
        for (key, value) in incoming {
            let Some(known) = find_key(&current, &key) else {
                current.insert(key, value);
                continue;
            };
            let slot = current.get_mut(&known).expect("key exists");
            match value {
                Value::Null if slot.is_array() => *slot = Value::Array(Vec::new()),
                Value::Null => {}
                value if self.extra.contains_key(&known) => *slot = value,
                value => {
                    check_type(&known, slot, &value)?;
                    *slot = value;
                }
            }
        }
        let merged: Stored = serde_json::from_value(Value::Object(current))
            .map_err(|e| ConfigError::Syntax(e.to_string()))?;
        *self = Config::from_stored(merged);
        Ok(())
    }

    /// The JSON `GetConfigRaw` answers.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.stored()).expect("config serializes")
    }
}

fn find_key(map: &Map<String, Value>, key: &str) -> Option<String> {
    if map.contains_key(key) {
        return Some(key.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// Rejects a value whose JSON type cannot go into the field (Go's `UnmarshalTypeError`).
fn check_type(field: &str, current: &Value, value: &Value) -> Result<(), ConfigError> {
    let ok = match current {
        Value::String(_) => value.is_string(),
        Value::Bool(_) => value.is_boolean(),
        Value::Number(_) => value.as_i64().is_some(),
        Value::Array(_) => value.is_array(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        let want = match current {
            Value::String(_) => "a string",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "an integer",
            _ => "a list",
        };
        Err(ConfigError::Field {
            field: field.to_string(),
            message: format!("expected {want}, got {value}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_bare_create_json_and_keeps_unset_fields() {
        let mut c = Config::default();
        c.asked.region = "eu-west-1".into();
        c.merge_json(br#"{"IPAddress":"","MachineName":"m1","SSHUser":"","SSHPort":0,"SSHKeyPath":"","StorePath":"/s","SwarmMaster":false,"SwarmHost":"","SwarmDiscovery":""}"#)
            .unwrap();
        assert_eq!(c.asked.machine_name, "m1");
        assert_eq!(c.asked.store_path, "/s");
        assert_eq!(c.asked.region, "eu-west-1");
    }

    #[test]
    fn reads_amazonec2_config_json_with_legacy_and_unknown_keys() {
        let raw = br#"{
        "IPAddress": "1.2.3.4", "MachineName": "m1", "SSHPort": 22,
        "Id": "b8c19d7f953e21f19b74cedfac5087af", "SSHKeyID": 0, "ReservationId": "",
        "InstanceId": "i-1", "SecurityGroupId": "sg-old", "SecurityGroupIds": ["sg-new"],
        "OpenPorts": null, "instancetype": "m4.large", "SecretKey": "s"
        }"#;
        let mut c = Config::default();
        c.merge_json(raw).unwrap();
        assert_eq!(c.made.instance_id, "i-1");
        assert_eq!(
            c.made.instance_type, "m4.large",
            "keys match case-insensitively like Go"
        );
        assert_eq!(c.made.security_group_ids, vec!["sg-old", "sg-new"]);
        assert_eq!(c.asked.secret_key, "s");
        assert!(c.asked.open_ports.is_empty());
        assert_eq!(c.extra["ReservationId"], "", "unknown keys are kept");
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let raw = br#"{"MachineName":"m1","FutureField":{"a":[1,2]},"FutureFlag":true}"#;
        let mut c = Config::default();
        c.merge_json(raw).unwrap();
        let back: Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(back["FutureField"], serde_json::json!({"a": [1, 2]}));
        assert_eq!(back["FutureFlag"], true);
        assert_eq!(back["MachineName"], "m1");
        // A later merge may change an unknown key's type without complaint (it is not ours).
        c.merge_json(br#"{"FutureFlag":"yes"}"#).unwrap();
        assert_eq!(c.extra["FutureFlag"], "yes");
        let mut d = Config::default();
        d.merge_json(&c.to_json()).unwrap();
        assert_eq!(d, c);
    }

    #[test]
    fn round_trips_and_omits_empty_secrets() {
        let mut c = Config::default();
        c.asked.machine_name = "m".into();
        c.made.instance_id = "i-9".into();
        c.made.security_group_ids = vec!["sg-1".into()];
        let json = c.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(!text.contains("SecretKey"), "{text}");
        assert!(
            text.starts_with(r#"{"IPAddress":"","MachineName":"m""#),
            "{text}"
        );
        let mut back = Config::default();
        back.merge_json(&json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn debug_shows_every_field_but_the_credentials() {
        let mut c = Config::default();
        c.asked.machine_name = "m1".into();
        c.asked.access_key = "AKIDSECRETVALUE1".into();
        c.asked.secret_key = "secret/value/2".into();
        c.asked.session_token = "token-value-3".into();
        for text in [format!("{c:?}"), format!("{c:#?}")] {
            for secret in ["AKIDSECRETVALUE1", "secret/value/2", "token-value-3"] {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(text.contains(r#""SecretKey""#) && text.contains("<redacted>"));
            assert!(text.contains(r#""MachineName""#) && text.contains("m1"));
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut c = Config::default();
        let err = c
            .merge_json(br#"{"SSHPort":"22"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SSHPort"), "{err}");
        assert!(c.merge_json(b"[1]").is_err());
        assert!(c.merge_json(b"{").is_err());
    }

    /// The three parts survive the file: the options as given (not what the pre-create check
    /// or the launch wrote over them), the answers, and what was made.
    #[test]
    fn asked_answered_and_made_come_back_apart() {
        let pool = |t: &str, s: &str, z: &str| Pool {
            instance_type: t.into(),
            subnet_id: s.into(),
            availability_zone: z.into(),
        };
        let mut c = Config::default();
        c.asked.machine_name = "m".into();
        c.asked.instance_type = "m5.large,m6i.large".into();
        c.asked.instance_types = vec!["m5.large".into(), "m6i.large".into()];
        c.asked.zone = "a".into();
        c.asked.zones = vec!["a".into()];
        c.asked.existing_key = true;
        c.asked.key_name = "users-key".into();
        let answered = Answered {
            vpc_id: "vpc-1".into(),
            pools: vec![pool("m5.large", "subnet-1", "eu-west-1a")],
            ami: "ami-1".into(),
            architecture: "x86_64".into(),
        };
        c.answered = Some(answered.clone());
        let mut back = Config::default();
        back.merge_json(&c.to_json()).unwrap();
        assert_eq!(back, c, "resolved, not launched");
        let text = String::from_utf8(c.to_json()).unwrap();
        assert!(text.contains(r#""SubnetId":"subnet-1""#), "{text}");
        assert!(
            text.contains(r#""AsGiven":{"VpcId":"","SubnetId":"","Zone":"a""#),
            "{text}"
        );

        c.made = Made {
            instance_id: "i-1".into(),
            market: "spot".into(),
            instance_type: "m5.large".into(),
            subnet_id: "subnet-1".into(),
            zone: "eu-west-1a".into(),
            security_group_ids: vec!["sg-1".into()],
            ..Made::default()
        };
        let mut back = Config::default();
        back.merge_json(&c.to_json()).unwrap();
        assert_eq!(back, c, "launched");
        assert_eq!(back.asked.instance_type, "m5.large,m6i.large");
        assert_eq!(back.asked.key_name, "users-key");
        assert!(
            back.made.key_name.is_empty(),
            "the user's key pair is not made"
        );
        assert_eq!(back.answered, Some(answered));
    }

    #[test]
    fn asked_alone_hides_the_credentials_too() {
        let mut c = Config::default();
        c.asked.secret_key = "secret/value/2".into();
        let text = format!("{:?}", c.asked);
        assert!(
            !text.contains("secret/value/2") && text.starts_with("Asked {"),
            "{text}"
        );
    }
}
