//! What a create launched, on disk: written just before the launch call ("launching") and
//! after it ("launched" and the instance id), cleared when the machine is removed. `rm` reads
//! it to know what EC2 may not list yet — EC2's reads are eventually consistent
//! (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>), so an instance
//! launched moments ago can be "not found" by id and missing from a search by tag:
//!
//! * no record: nothing was launched (or by an older ec2spot): "not found" is believed;
//! * "launching": a create died in its launch call (or it went unanswered): the machine's
//!   tag is searched until the instance shows up or the patience runs out;
//! * "launched": the instance id, even when the create died before docker-machine saved it,
//!   and when: "not found" for it is "not yet" for a while after.
//!
//! The file is `<store>/ec2spot/launches/<machine id>` (one line: phase, unix seconds,
//! instance id); a store-less config keeps none.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::options::config::Config;

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The launch call was made; its answer is not recorded.
    Launching,
    /// The launch returned this instance.
    Launched(String),
}

/// A create's launch, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    /// How far the launch got.
    pub phase: Phase,
    /// When it was recorded.
    pub at: SystemTime,
}

impl LaunchRecord {
    /// How long ago it was recorded.
    pub fn age(&self) -> Duration {
        self.at.elapsed().unwrap_or_default()
    }
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
            .join("launches")
            .join(id),
    )
}

/// Records `phase` for `config`'s machine (best effort: a store that cannot be written to only
/// loses this help).
pub fn write(config: &Config, phase: &Phase) {
    let Some(p) = path(config) else {
        return;
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let line = match phase {
        Phase::Launching => format!("launching {secs}\n"),
        Phase::Launched(id) => format!("launched {secs} {id}\n"),
    };
    let written = p
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, line)?;
            std::fs::rename(&tmp, &p)
        });
    if let Err(e) = written {
        tracing::debug!("recording the launch in {}: {e}", p.display());
    }
}

/// The record of `config`'s machine, if there is one.
pub fn read(config: &Config) -> Option<LaunchRecord> {
    let text = std::fs::read_to_string(path(config)?).ok()?;
    let mut words = text.split_whitespace();
    let phase = words.next()?;
    let at = UNIX_EPOCH + Duration::from_secs(words.next()?.parse().ok()?);
    let phase = match phase {
        "launching" => Phase::Launching,
        "launched" => Phase::Launched(words.next()?.to_string()),
        _ => return None,
    };
    Some(LaunchRecord { phase, at })
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
    fn a_launch_is_recorded_read_back_and_cleared() {
        let store = tempfile::tempdir().unwrap();
        let config = Config {
            store_path: store.path().to_string_lossy().into_owned(),
            machine_id: "0123abcd".into(),
            ..Config::default()
        };
        assert_eq!(read(&config), None);
        write(&config, &Phase::Launching);
        assert_eq!(read(&config).unwrap().phase, Phase::Launching);
        write(&config, &Phase::Launched("i-0abc".into()));
        let r = read(&config).unwrap();
        assert_eq!(r.phase, Phase::Launched("i-0abc".into()));
        assert!(r.age() < Duration::from_secs(60));
        clear(&config);
        assert_eq!(read(&config), None);
    }
}
