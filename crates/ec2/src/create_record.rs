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
use crate::options::Asked;

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

fn path(asked: &Asked) -> Option<PathBuf> {
    let id: String = asked
        .machine_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if asked.store_path.is_empty() || id.is_empty() {
        return None;
    }
    Some(
        PathBuf::from(&asked.store_path)
            .join("ec2spot")
            .join("creates")
            .join(id),
    )
}

/// Records a step of `asked`'s create: a call that makes `kind` (`id` none) or what it made
/// (best effort: a store that cannot be written to only loses this help).
pub fn note(asked: &Asked, kind: Kind, id: Option<&str>) {
    let line = match id {
        Some(id) => format!("{} made {id}", kind.word()),
        None => format!("{} call", kind.word()),
    };
    append(asked, &line);
}

/// Records that the create deleted `id` of `kind` itself (its launch template, once the
/// launch returned): `rm` does not delete it a second time.
pub fn deleted(asked: &Asked, kind: Kind, id: &str) {
    append(asked, &format!("{} gone {id}", kind.word()));
}

/// Appends `step` to the record, stamped with the time.
fn append(asked: &Asked, step: &str) {
    let Some(p) = path(asked) else {
        return;
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let line = format!("{secs} {step}\n");
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
pub fn settle(asked: &Asked, kind: Kind, outcome: std::result::Result<&str, &Error>) {
    match outcome {
        Ok(id) => note(asked, kind, Some(id)),
        Err(e) if !e.is(&[ErrorKind::Unavailable]) => refused(asked, kind),
        Err(_) => {}
    }
}

/// Forgets what an earlier step said of `kind` made by calls this create knows failed: the
/// call launched or made nothing (a refusal), so `rm` need not look for it.
pub fn refused(asked: &Asked, kind: Kind) {
    let Some(p) = path(asked) else {
        return;
    };
    let Some(mut r) = read(asked) else {
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
pub fn read(asked: &Asked) -> Option<CreateRecord> {
    let text = std::fs::read_to_string(path(asked)?).ok()?;
    let mut steps: Vec<(SystemTime, Kind, Option<String>)> = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(at), Some(kind), Some(state)) = (
            w.next().and_then(|t| t.parse().ok()),
            w.next().and_then(Kind::of),
            w.next(),
        ) else {
            continue;
        };
        let at = UNIX_EPOCH + Duration::from_secs(at);
        match (state, w.next()) {
            ("made", Some(id)) => steps.push((at, kind, Some(id.to_string()))),
            // Deleted by the create itself: neither made nor to be searched for.
            ("gone", Some(id)) => forget(&mut steps, kind, id),
            ("call", _) => steps.push((at, kind, None)),
            _ => {}
        }
    }
    Some(CreateRecord { steps })
}

/// Forgets `id` of `kind` and the call that made it: what the create deleted itself is
/// neither made nor to be searched for.
fn forget(steps: &mut Vec<(SystemTime, Kind, Option<String>)>, kind: Kind, id: &str) {
    let Some(at) = steps
        .iter()
        .position(|(_, k, i)| *k == kind && i.as_deref() == Some(id))
    else {
        return;
    };
    steps.remove(at);
    if let Some(call) = steps[..at]
        .iter()
        .rposition(|(_, k, i)| *k == kind && i.is_none())
    {
        steps.remove(call);
    }
}

/// Forgets the record (nothing of the machine is left in EC2).
pub fn clear(asked: &Asked) {
    if let Some(p) = path(asked) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_is_recorded_read_back_and_cleared() {
        let store = tempfile::tempdir().unwrap();
        let asked = Asked {
            store_path: store.path().to_string_lossy().into_owned(),
            machine_id: "0123abcd".into(),
            ..Asked::default()
        };
        assert_eq!(read(&asked), None);
        let lately = Duration::from_secs(60);
        note(&asked, Kind::KeyPair, None);
        note(&asked, Kind::Group, None);
        note(&asked, Kind::KeyPair, Some("m1"));
        note(&asked, Kind::Instance, None);
        let r = read(&asked).unwrap();
        assert_eq!(r.made(Kind::KeyPair), ["m1"]);
        assert!(!r.unanswered(Kind::KeyPair, lately));
        assert!(r.unanswered(Kind::Group, lately));
        assert!(r.unanswered(Kind::Instance, lately));
        refused(&asked, Kind::Instance);
        assert!(!read(&asked).unwrap().unanswered(Kind::Instance, lately));
        note(&asked, Kind::Instance, None);
        note(&asked, Kind::Instance, Some("i-0abc"));
        let r = read(&asked).unwrap();
        assert_eq!(r.made(Kind::Instance), ["i-0abc"]);
        assert!(r.age_of("i-0abc").unwrap() < lately);
        assert!(!r.unanswered(Kind::Instance, lately));
        // A template the create deleted itself is neither made nor unanswered for `rm`.
        note(&asked, Kind::Template, None);
        note(&asked, Kind::Template, Some("lt-1"));
        deleted(&asked, Kind::Template, "lt-1");
        let r = read(&asked).unwrap();
        assert!(r.made(Kind::Template).is_empty());
        assert!(!r.unanswered(Kind::Template, lately));
        assert_eq!(r.made(Kind::Instance), ["i-0abc"], "the rest is kept");
        clear(&asked);
        assert_eq!(read(&asked), None);
    }
}
