//! Secrets in `Debug` output: types that hold credentials print [`REDACTED`] in their place
//! (the config, docker-machine's option values, the agent's messages), so a `{:?}` in a log
//! line or a panic message never shows one.

#![warn(missing_docs)]

use std::fmt;

/// What a secret prints as.
pub const REDACTED: &str = "<redacted>";

/// A `Debug` placeholder for a field that holds a secret: prints [`REDACTED`].
pub struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Whether an option named `name` carries a credential, by the names docker-machine drivers
/// give them (`amazonec2-secret-key`, `amazonec2-access-key`, `amazonec2-session-token`,
/// `digitalocean-access-token`, `vmwarevsphere-password`, …). Errs on the side of hiding:
/// `amazonec2-metadata-token` (a mode, not a secret) is hidden too.
pub fn is_secret_option(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "token",
        "access-key",
        "api-key",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Writes docker-machine option values as a `Debug` map, the value of each credential option
/// ([`is_secret_option`]) as [`REDACTED`].
pub fn debug_options<'a, V: fmt::Debug + 'a>(
    f: &mut fmt::Formatter<'_>,
    options: impl IntoIterator<Item = (&'a String, &'a V)>,
) -> fmt::Result {
    let mut map = f.debug_map();
    for (name, value) in options {
        if is_secret_option(name) {
            map.entry(name, &Redacted);
        } else {
            map.entry(name, value);
        }
    }
    map.finish()
}

/// A `Debug` stand-in for bytes that are not secret but too long to show: `N bytes`.
pub struct ByteCount<'a>(pub &'a [u8]);

impl fmt::Debug for ByteCount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// A `Debug` stand-in for secret bytes (a private key): `<N bytes, redacted>`.
pub struct SecretBytes<'a>(pub &'a [u8]);

impl fmt::Debug for SecretBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes, redacted>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_options_are_recognised_and_others_are_not() {
        for n in [
            "amazonec2-access-key",
            "amazonec2-secret-key",
            "amazonec2-session-token",
            "digitalocean-access-token",
            "vmwarevsphere-password",
        ] {
            assert!(is_secret_option(n), "{n}");
        }
        for n in [
            "amazonec2-region",
            "amazonec2-ssh-keypath",
            "amazonec2-tags",
        ] {
            assert!(!is_secret_option(n), "{n}");
        }
        assert_eq!(format!("{:?}", Redacted), "<redacted>");
        assert_eq!(format!("{:?}", SecretBytes(b"key")), "<3 bytes, redacted>");
        assert_eq!(format!("{:?}", ByteCount(b"pem")), "3 bytes");
    }
}
