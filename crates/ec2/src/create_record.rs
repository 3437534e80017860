//! What a create made, on disk: a line before each call that makes something (its outcome is
//! unknown if the process dies in it) and a line with the id after. `rm` reads it when the
//! config docker-machine saved names nothing (the create died): EC2's reads are eventually
//! consistent (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>),
//! so a key pair, group, template or instance made moments ago can be "not found" by id and
//! missing from a search by tag. With the record `rm`:
//!
//! * removes what the record names by id, taking "not found" for "not yet" for a while;
//! * searches the machine's tag until what a call without a recorded answer may have made
//!   shows up, or the patience runs out;
//! * believes "none" at once for what was never asked for (no line).
//!
//! The file is `<store>/ec2spot/creates/<machine id>`, lines `<unix seconds> <kind> <state>
//! [<id>]` appended (one write each, so the key pair's and the groups' concurrent steps do not
//! mix); it is cleared when the machine is removed. A store-less config keeps none.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::aws::error::{Error, ErrorKind};
use crate::options::config::Config;

/// What a step makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The imported key pair (by name).
    KeyPair,
    /// A security group the create made.
    Group,
    /// The launch template.
    Template,
    /// The instance.
    Instance,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::KeyPair => "key-pair",
            Kind::Group => "group",
            Kind::Template => "template",
            Kind::Instance => "instance",
        }
    }

    fn of(word: &str) -> Option<Kind> {
        Some(match word {
            "key-pair" => Kind::KeyPair,
            "group" => Kind::Group,
            "template" => Kind::Template,
            "instance" => Kind::Instance,
            _ => return None,
        })
    }
}

/// A create's steps, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRecord {
    /// (when, kind, id): `None` for a call made, `Some` for what it returned.
    steps: Vec<(SystemTime, Kind, Option<String>)>,
}

impl CreateRecord {
    /// The ids of `kind` the create made.
    pub fn made(&self, kind: Kind) -> Vec<String> {
        self.steps
            .iter()
            .filter(|(_, k, id)| *k == kind && id.is_some())
            .filter_map(|(_, _, id)| id.clone())
            .collect()
    }

    /// Whether a call making `kind` was made within `lately` and did not record an answer:
    /// what it made, if anything, may not be listed yet.
    pub fn unanswered(&self, kind: Kind, lately: Duration) -> bool {
        let calls = self
            .steps
            .iter()
            .filter(|(at, k, id)| *k == kind && id.is_none() && age(*at) < lately)
            .count();
        calls > self.made(kind).len()
    }

    /// How long ago `id` was recorded as made (none if it was not).
    pub fn age_of(&self, id: &str) -> Option<Duration> {
        self.steps
            .iter()
            .find(|(_, _, i)| i.as_deref() == Some(id))
            .map(|(at, _, _)| age(*at))
    }
}

fn age(at: SystemTime) -> Duration {
    at.elapsed().unwrap_or_default()
}

fn path(config: &Config) -> Option<PathBuf> {
    let id: String = config
        .machine_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if config.store_path.is_empty() || id.is_empty() {
        return None;
    }
    Some(
        PathBuf::from(&config.store_path)
            .join("ec2spot")
            .join("creates")
            .join(id),
    )
}

/// Records a step of `config`'s create: a call that makes `kind` (`id` none) or what it made
/// (best effort: a store that cannot be written to only loses this help).
pub fn note(config: &Config, kind: Kind, id: Option<&str>) {
    let Some(p) = path(config) else {
        return;
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let line = match id {
        Some(id) => format!("{secs} {} made {id}\n", kind.word()),
        None => format!("{secs} {} call\n", kind.word()),
    };
    let written = p
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                // Never through a symbolic link someone put in the store.
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&p)?
                .write_all(line.as_bytes())
        });
    if let Err(e) = written {
        tracing::debug!("recording the create in {}: {e}", p.display());
    }
}

/// Records the outcome of a step that makes `kind`: what it made, or — for a refusal
/// (throttled, no capacity, invalid), which made nothing — that `rm` need not look for it. No
/// answer (timeout, connection lost, EC2's own failure) may have made it all the same: the
/// recorded call stays, and `rm` searches for what it may have made.
pub fn settle(config: &Config, kind: Kind, outcome: std::result::Result<&str, &Error>) {
    match outcome {
        Ok(id) => note(config, kind, Some(id)),
        Err(e) if !e.is(&[ErrorKind::Unavailable]) => refused(config, kind),
        Err(_) => {}
    }
}

/// Forgets what an earlier step said of `kind` made by calls this create knows failed: the
/// call launched or made nothing (a refusal), so `rm` need not look for it.
pub fn refused(config: &Config, kind: Kind) {
    let Some(p) = path(config) else {
        return;
    };
    let Some(mut r) = read(config) else {
        return;
    };
    if let Some(pos) = r
        .steps
        .iter()
        .rposition(|(_, k, id)| *k == kind && id.is_none())
    {
        r.steps.remove(pos);
    }
    let text: String = r
        .steps
        .iter()
        .map(|(at, k, id)| {
            let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            match id {
                Some(id) => format!("{secs} {} made {id}\n", k.word()),
                None => format!("{secs} {} call\n", k.word()),
            }
        })
        .collect();
    let _ = std::fs::write(p, text);
}

/// The record of `config`'s create, if there is one.
pub fn read(config: &Config) -> Option<CreateRecord> {
    let text = std::fs::read_to_string(path(config)?).ok()?;
    let steps = text
        .lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let at = UNIX_EPOCH + Duration::from_secs(w.next()?.parse().ok()?);
            let kind = Kind::of(w.next()?)?;
            let id = match w.next()? {
                "made" => Some(w.next()?.to_string()),
                _ => None,
            };
            Some((at, kind, id))
        })
        .collect();
    Some(CreateRecord { steps })
}

/// Forgets the record (nothing of the machine is left in EC2).
pub fn clear(config: &Config) {
    if let Some(p) = path(config) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_is_recorded_read_back_and_cleared() {
        let store = tempfile::tempdir().unwrap();
        let config = Config {
            store_path: store.path().to_string_lossy().into_owned(),
            machine_id: "0123abcd".into(),
            ..Config::default()
        };
        assert_eq!(read(&config), None);
        let lately = Duration::from_secs(60);
        note(&config, Kind::KeyPair, None);
        note(&config, Kind::Group, None);
        note(&config, Kind::KeyPair, Some("m1"));
        note(&config, Kind::Instance, None);
        let r = read(&config).unwrap();
        assert_eq!(r.made(Kind::KeyPair), ["m1"]);
        assert!(!r.unanswered(Kind::KeyPair, lately));
        assert!(r.unanswered(Kind::Group, lately));
        assert!(r.unanswered(Kind::Instance, lately));
        refused(&config, Kind::Instance);
        assert!(!read(&config).unwrap().unanswered(Kind::Instance, lately));
        note(&config, Kind::Instance, None);
        note(&config, Kind::Instance, Some("i-0abc"));
        let r = read(&config).unwrap();
        assert_eq!(r.made(Kind::Instance), ["i-0abc"]);
        assert!(r.age_of("i-0abc").unwrap() < lately);
        assert!(!r.unanswered(Kind::Instance, lately));
        clear(&config);
        assert_eq!(read(&config), None);
    }
}
