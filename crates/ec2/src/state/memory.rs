//! What a process remembers between creates, so that a create with options seen before starts
//! at the launch: what the pre-create check resolved, per option set, and the security groups
//! found complete (existing, with their ports open), per VPC, names and ports. The agent keeps
//! one memory per EC2 client (credentials identity) for every plugin of the store; a plugin on
//! its own keeps one for the `docker-machine create` it serves (pre-create check and create run
//! in one plugin process).
//!
//! An entry is used for [`TTL`]; once older than [`REFRESH_AFTER`] it is still used, and the
//! caller refreshes it in the background (`create::resolve::remembered`). What a remembered
//! answer can get wrong, EC2 refuses at the launch (a deleted group, subnet or image), and the
//! create then looks again without the memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::options::Answered;

/// How long a remembered answer is used.
pub const TTL: Duration = Duration::from_secs(600);

/// Age after which a remembered pre-create answer is refreshed in the background.
pub const REFRESH_AFTER: Duration = Duration::from_secs(60);

struct Entry<T> {
    value: T,
    at: Instant,
    refreshing: bool,
}

/// One kind of remembered answer, by key, under the memory's one rule: an answer is used for
/// [`TTL`]; past [`REFRESH_AFTER`] the first caller to recall it is told to refresh it (and
/// the next ones are not); an answer EC2 refused is forgotten.
struct Shelf<T> {
    entries: HashMap<String, Entry<T>>,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Shelf {
            entries: HashMap::new(),
        }
    }
}

impl<T: Clone> Shelf<T> {
    /// The answer for `key` if one younger than [`TTL`] is kept, and whether this caller
    /// refreshes it.
    fn recall(&mut self, key: &str) -> Option<(T, bool)> {
        let e = self.entries.get_mut(key)?;
        let age = e.at.elapsed();
        if age >= TTL {
            self.entries.remove(key);
            return None;
        }
        let refresh = age >= REFRESH_AFTER && !e.refreshing;
        if refresh {
            e.refreshing = true;
        }
        Some((e.value.clone(), refresh))
    }

    /// Keeps `value` as the answer for `key`, new.
    fn remember(&mut self, key: &str, value: T) {
        self.entries.insert(
            key.to_string(),
            Entry {
                value,
                at: Instant::now(),
                refreshing: false,
            },
        );
    }

    /// Forgets every answer `refused` says EC2 no longer stands by.
    fn forget_where(&mut self, refused: impl Fn(&str, &T) -> bool) {
        self.entries.retain(|k, e| !refused(k, &e.value));
    }
}

/// A remembered pre-create answer, and whether the caller should refresh it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recalled {
    /// The answer.
    pub resolved: Answered,
    /// It is older than [`REFRESH_AFTER`] and nobody refreshes it yet: the caller should (and
    /// is now counted as doing so).
    pub refresh: bool,
}

/// What the process remembers (see the module documentation).
#[derive(Default)]
pub struct Memory {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Pre-create answers (network, pools, image), per option set.
    resolved: Shelf<Answered>,
    /// Security group ids found complete, per VPC, names and ports.
    groups: Shelf<Vec<String>>,
}

impl Memory {
    /// The pre-create answer for option set `key`, if one younger than [`TTL`] is remembered.
    pub fn recall(&self, key: &str) -> Option<Recalled> {
        let (resolved, refresh) = self.inner.lock().expect("memory").resolved.recall(key)?;
        Some(Recalled { resolved, refresh })
    }

    /// Remembers the pre-create answer for option set `key`.
    pub fn remember(&self, key: &str, resolved: Answered) {
        let mut inner = self.inner.lock().expect("memory");
        inner.resolved.remember(key, resolved);
    }

    /// Forgets the pre-create answer for option set `key` (EC2 refused what it named, or a
    /// refresh found it wrong now).
    pub fn forget(&self, key: &str) {
        let mut inner = self.inner.lock().expect("memory");
        inner.resolved.forget_where(|k, _| k == key);
    }

    /// The ids of the security groups `key` names, if they were found complete less than
    /// [`TTL`] ago. (Not refreshed in the background: a group EC2 refuses at the launch is
    /// forgotten, and the create makes or opens it again.)
    pub fn groups(&self, key: &str) -> Option<Vec<String>> {
        let mut inner = self.inner.lock().expect("memory");
        inner.groups.recall(key).map(|(ids, _)| ids)
    }

    /// Remembers that the security groups `key` names are complete, with these ids.
    pub fn remember_groups(&self, key: &str, ids: Vec<String>) {
        let mut inner = self.inner.lock().expect("memory");
        inner.groups.remember(key, ids);
    }

    /// Forgets every remembered group set that holds group `id` (it was deleted, or EC2 no
    /// longer knows it).
    pub fn forget_group(&self, id: &str) {
        let mut inner = self.inner.lock().expect("memory");
        inner
            .groups
            .forget_where(|_, ids| ids.iter().any(|g| g == id));
    }

    /// How many answers are remembered (pre-create answers, group sets).
    pub fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("memory");
        (inner.resolved.entries.len(), inner.groups.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(ami: &str) -> Answered {
        Answered {
            vpc_id: "vpc-1".into(),
            pools: Vec::new(),
            ami: ami.into(),
            architecture: "x86_64".into(),
        }
    }

    /// Makes the answer for `key` as old as `by`.
    fn age(m: &Memory, key: &str, by: Duration) {
        let mut inner = m.inner.lock().unwrap();
        inner.resolved.entries.get_mut(key).unwrap().at = Instant::now() - by;
    }

    #[test]
    fn answers_are_recalled_per_key_and_refreshed_by_one_caller() {
        let m = Memory::default();
        assert_eq!(m.recall("a"), None);
        m.remember("a", resolved("ami-1"));
        let r = m.recall("a").unwrap();
        assert_eq!(r.resolved.ami, "ami-1");
        assert!(!r.refresh, "young answers need no refresh");
        assert_eq!(m.recall("b"), None);
        // Aged past REFRESH_AFTER: the first caller refreshes, the next ones do not.
        age(&m, "a", REFRESH_AFTER + Duration::from_secs(1));
        assert!(m.recall("a").unwrap().refresh);
        assert!(!m.recall("a").unwrap().refresh);
        m.remember("a", resolved("ami-2"));
        assert!(!m.recall("a").unwrap().refresh);
        // Past TTL: gone.
        age(&m, "a", TTL + Duration::from_secs(1));
        assert_eq!(m.recall("a"), None);
        assert_eq!(m.len().0, 0);
    }

    #[test]
    fn a_deleted_group_is_forgotten_in_every_set_holding_it() {
        let m = Memory::default();
        m.remember_groups("x", vec!["sg-1".into(), "sg-2".into()]);
        m.remember_groups("y", vec!["sg-3".into()]);
        m.forget_group("sg-2");
        assert_eq!(m.groups("x"), None);
        assert_eq!(m.groups("y"), Some(vec!["sg-3".into()]));
        m.forget_group("sg-3");
        assert_eq!(m.len(), (0, 0));
    }
}
