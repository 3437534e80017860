//! The boundary between docker-machine's plugin contract (`ec2spot-plugin`) and the EC2
//! lifecycle (`ec2spot-ec2`): each crate has its own types and knows nothing of the other's;
//! these functions turn one into the other.

use ec2spot_ec2::create::tls_bootstrap::TlsMaterial;
use ec2spot_ec2::options::flags::{FLAGS, FlagSpec, Kind};
use ec2spot_ec2::options::values::{OptionValue, OptionValues};
use ec2spot_ec2::state::machine_state::MachineState;
use ec2spot_plugin::{Flag, FlagValue, FlagValues, State, TlsBootstrap};

/// The create flags as `GetCreateFlags` sends them, from the EC2 lifecycle's flag table.
pub fn create_flags() -> Vec<Flag> {
    FLAGS.iter().map(flag).collect()
}

/// The wire form of one flag.
pub fn flag(spec: &FlagSpec) -> Flag {
    let (name, usage, env_var) = (spec.name.into(), spec.usage.into(), spec.env.into());
    match spec.kind {
        Kind::String(v) => Flag::String {
            name,
            usage,
            env_var,
            value: v.into(),
        },
        Kind::Int(v) => Flag::Int {
            name,
            usage,
            env_var,
            value: v,
        },
        Kind::Bool => Flag::Bool {
            name,
            usage,
            env_var,
        },
        Kind::StringSlice(v) => Flag::StringSlice {
            name,
            usage,
            env_var,
            value: v.iter().map(|s| s.to_string()).collect(),
        },
    }
}

/// The option values docker-machine sent (`SetConfigFromFlags`), for option parsing.
pub fn option_values(values: &FlagValues) -> OptionValues {
    OptionValues(
        values
            .0
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    FlagValue::String(s) => OptionValue::String(s.clone()),
                    FlagValue::Int(i) => OptionValue::Int(*i),
                    FlagValue::Bool(b) => OptionValue::Bool(*b),
                    FlagValue::StringSlice(v) => OptionValue::StringSlice(v.clone()),
                };
                (name.clone(), value)
            })
            .collect(),
    )
}

/// docker-machine's state for a machine's state.
pub fn state(s: MachineState) -> State {
    match s {
        MachineState::None => State::None,
        MachineState::Running => State::Running,
        MachineState::Stopped => State::Stopped,
        MachineState::Stopping => State::Stopping,
        MachineState::Starting => State::Starting,
        MachineState::Error => State::Error,
    }
}

/// The TLS material of GitLab's fork's `SetTLSBootstrap`.
pub fn tls_material(b: TlsBootstrap) -> TlsMaterial {
    TlsMaterial {
        ca_cert: b.ca_cert,
        server_cert: b.server_cert,
        server_key: b.server_key,
        daemon_dropin: b.daemon_dropin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_keeps_its_name_type_default_and_environment_variable() {
        let flags = create_flags();
        assert_eq!(flags.len(), FLAGS.len());
        for (f, spec) in flags.iter().zip(FLAGS) {
            assert_eq!(f.name(), spec.name);
            let same = match (f, spec.kind) {
                (Flag::String { value, env_var, .. }, Kind::String(d)) => {
                    value == d && env_var == spec.env
                }
                (Flag::Int { value, env_var, .. }, Kind::Int(d)) => {
                    *value == d && env_var == spec.env
                }
                (Flag::Bool { env_var, .. }, Kind::Bool) => env_var == spec.env,
                (Flag::StringSlice { value, env_var, .. }, Kind::StringSlice(d)) => {
                    value == d && env_var == spec.env
                }
                _ => false,
            };
            assert!(same, "{f:?} is not {spec:?}");
        }
    }

    #[test]
    fn option_values_keep_every_value_and_its_type() {
        let mut given = FlagValues::default();
        given.insert("s", FlagValue::String("x".into()));
        given.insert("i", FlagValue::Int(-3));
        given.insert("b", FlagValue::Bool(true));
        given.insert("l", FlagValue::StringSlice(vec!["a".into(), "b".into()]));
        let v = option_values(&given);
        assert_eq!(v.0.len(), 4);
        assert_eq!(v.get("s"), Some(&OptionValue::String("x".into())));
        assert_eq!(v.get("i"), Some(&OptionValue::Int(-3)));
        assert_eq!(v.get("b"), Some(&OptionValue::Bool(true)));
        assert_eq!(
            v.get("l"),
            Some(&OptionValue::StringSlice(vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn states_map_to_docker_machines_of_the_same_name() {
        for (s, want) in [
            (MachineState::None, State::None),
            (MachineState::Running, State::Running),
            (MachineState::Stopped, State::Stopped),
            (MachineState::Stopping, State::Stopping),
            (MachineState::Starting, State::Starting),
            (MachineState::Error, State::Error),
        ] {
            assert_eq!(state(s), want);
            assert_eq!(format!("{s:?}"), format!("{want:?}"));
        }
    }

    #[test]
    fn tls_material_is_taken_whole() {
        let b = TlsBootstrap {
            ca_cert: b"ca".to_vec(),
            server_cert: b"cert".to_vec(),
            server_key: b"key".to_vec(),
            daemon_dropin: b"dropin".to_vec(),
        };
        let m = tls_material(b);
        assert_eq!(
            (
                &m.ca_cert[..],
                &m.server_cert[..],
                &m.server_key[..],
                &m.daemon_dropin[..]
            ),
            (&b"ca"[..], &b"cert"[..], &b"key"[..], &b"dropin"[..])
        );
    }
}
