//! The agent's spare key pair: one SSH key imported ahead of the next create, so a warm create
//! launches at once instead of importing a key pair and then waiting until EC2's launch sees
//! it — a key pair imported moments ago is "not found" for a while (eventual consistency,
//! <https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>).
//!
//! The spare is tagged at creation like everything ec2spot makes (`ec2spot:manager`, an
//! `ec2spot:machine-id` of `spare-…`, and [`SINCE`]). The create that takes it writes the
//! private key into its machine directory and records the key pair's name, so `rm` deletes it
//! with the machine. One not taken is deleted when it gets older than [`MAX_AGE`], when the
//! agent drops the EC2 client it was made with, and when the agent exits; one an agent killed
//! hard left behind is an orphan to `gc` once older than [`GC_AGE`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::aws::error::Result;
use crate::resources::key_pair::{self, KeyPair};
use crate::tags;

/// The machine id a spare carries until a machine takes it (then its name is in that
/// machine's config).
pub const ID_PREFIX: &str = "spare-";
/// The start of a spare key pair's name (`ec2spot-spare-<16 hex digits>`).
pub const NAME_PREFIX: &str = "ec2spot-spare-";
/// When the spare was imported (unix seconds): what `gc` judges its age by.
pub const SINCE: &str = "ec2spot:spare-since";
/// A spare older than this is deleted rather than handed out.
pub const MAX_AGE: Duration = Duration::from_secs(20 * 60);
/// A spare no machine names and older than this belongs to no running agent: `gc` removes it.
pub const GC_AGE: Duration = Duration::from_secs(60 * 60);

/// A spare key pair, imported.
pub struct Spare {
    /// The key pair's name in EC2.
    pub name: String,
    /// The key (private and public).
    pub key: KeyPair,
    /// When its import was answered.
    pub imported: Instant,
}

/// An agent's spare key pair for one EC2 client (one account and region).
#[derive(Default)]
pub struct SpareKeys {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    ready: Option<Spare>,
    importing: bool,
    closed: bool,
}

/// The tags a spare gets at its import.
pub fn spare_tags(manager: &str, since_unix: u64) -> Vec<(String, String)> {
    let id: u64 = rand::thread_rng().r#gen();
    let mut t = vec![
        (tags::NAME.to_string(), "ec2spot spare key".to_string()),
        (
            tags::MACHINE_ID.to_string(),
            format!("{ID_PREFIX}{id:016x}"),
        ),
        (SINCE.to_string(), since_unix.to_string()),
    ];
    if !manager.is_empty() {
        t.push((tags::MANAGER.to_string(), manager.to_string()));
    }
    t
}

/// Whether `gc` may remove a spare (tag values given) no machine of the store names: one
/// older than [`GC_AGE`], or without a readable import time.
pub fn abandoned(since_tag: &str, now_unix: u64) -> bool {
    since_tag.parse::<u64>().map_or(true, |since| {
        now_unix.saturating_sub(since) >= GC_AGE.as_secs()
    })
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SpareKeys {
    /// The spare, if one is ready and younger than [`MAX_AGE`] (an older one is deleted).
    pub fn take(self: &Arc<Self>, ec2: &aws_sdk_ec2::Client) -> Option<Spare> {
        let spare = self.inner.lock().expect("spare keys").ready.take()?;
        if spare.imported.elapsed() < MAX_AGE {
            return Some(spare);
        }
        discard(ec2, spare);
        None
    }

    /// Imports a new spare in the background unless one is ready or on its way.
    pub fn refill(self: &Arc<Self>, ec2: &aws_sdk_ec2::Client, manager: &str) {
        {
            let mut inner = self.inner.lock().expect("spare keys");
            if inner.ready.is_some() || inner.importing || inner.closed {
                return;
            }
            inner.importing = true;
        }
        let (this, ec2, manager) = (Arc::clone(self), ec2.clone(), manager.to_string());
        tokio::spawn(async move {
            let made = import(&ec2, &manager).await;
            let mut inner = this.inner.lock().expect("spare keys");
            inner.importing = false;
            match made {
                Ok(spare) if inner.closed => discard(&ec2, spare),
                Ok(spare) => inner.ready = Some(spare),
                Err(e) => tracing::info!("no spare key pair: {e}"),
            }
        });
    }

    /// Deletes the spare once it is older than [`MAX_AGE`] (the agent asks now and then).
    pub fn expire(&self, ec2: &aws_sdk_ec2::Client) {
        let mut inner = self.inner.lock().expect("spare keys");
        if inner
            .ready
            .as_ref()
            .is_some_and(|s| s.imported.elapsed() >= MAX_AGE)
            && let Some(old) = inner.ready.take()
        {
            discard(ec2, old);
        }
    }

    /// Makes no more spares and deletes the one ready (the agent drops this client or exits).
    pub async fn close(&self, ec2: &aws_sdk_ec2::Client) {
        let ready = {
            let mut inner = self.inner.lock().expect("spare keys");
            inner.closed = true;
            inner.ready.take()
        };
        if let Some(s) = ready
            && let Err(e) = key_pair::delete(ec2, &s.name).await
        {
            tracing::info!("spare key pair {} not deleted: {e}", s.name);
        }
    }
}

/// Deletes `spare` in the background.
fn discard(ec2: &aws_sdk_ec2::Client, spare: Spare) {
    let ec2 = ec2.clone();
    tokio::spawn(async move {
        if let Err(e) = key_pair::delete(&ec2, &spare.name).await {
            tracing::info!("spare key pair {} not deleted: {e}", spare.name);
        }
    });
}

async fn import(ec2: &aws_sdk_ec2::Client, manager: &str) -> Result<Spare> {
    let key = key_pair::generate()?;
    let tag_list = spare_tags(manager, now_unix());
    let suffix = &tag_list[1].1[ID_PREFIX.len()..];
    let name = format!("{NAME_PREFIX}{suffix}");
    key_pair::import(ec2, &name, &key.public_line, &tag_list).await?;
    Ok(Spare {
        name,
        key,
        imported: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_leaves_young_spares_alone() {
        let now = 1_800_000_000;
        assert!(!abandoned(&(now - 60).to_string(), now));
        assert!(!abandoned(&(now - GC_AGE.as_secs() + 1).to_string(), now));
        assert!(abandoned(&(now - GC_AGE.as_secs()).to_string(), now));
        assert!(
            abandoned("", now),
            "no import time: nothing says an agent holds it"
        );
    }

    #[test]
    fn a_spare_is_tagged_as_ours_and_as_a_spare() {
        let t = spare_tags("mgr-x", 5);
        let get = |k: &str| t.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.as_str());
        assert!(get(tags::MACHINE_ID).unwrap().starts_with(ID_PREFIX));
        assert_eq!(get(tags::MANAGER), Some("mgr-x"));
        assert_eq!(get(SINCE), Some("5"));
        assert_ne!(spare_tags("m", 5)[1], spare_tags("m", 5)[1]);
    }
}
