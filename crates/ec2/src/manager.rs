//! The manager identity: an id kept in the docker-machine store and carried by every
//! resource as the value of the tag [`MANAGER`](crate::tags::MANAGER) (`ec2spot:manager`), so
//! that cleaning up on one bastion never touches another's — and so that the resources of a
//! bastion whose disk is gone can still be found: the id is in the tag, visible in the EC2
//! console, and `gc --manager ID` takes it. The id names the host it was made on
//! (`mgr-<host>-<random>`) so a person can tell which bastion a tag value belongs to.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the manager id of `store_path` is kept.
pub fn id_file(store_path: &str) -> PathBuf {
    Path::new(store_path).join("ec2spot").join("manager-id")
}

/// The manager id of the store at `store_path`, if it has one. Reads only: a dry run or a
/// check never creates it.
pub fn read(store_path: &str) -> Option<String> {
    if store_path.is_empty() {
        return None;
    }
    let id = std::fs::read_to_string(id_file(store_path)).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The manager id of the store at `store_path`, created on first use ("" without a store).
/// Only what creates resources calls this.
pub fn manager_id(store_path: &str) -> String {
    if store_path.is_empty() {
        return String::new();
    }
    if let Some(id) = read(store_path) {
        return id;
    }
    let id = new_id(&host_name());
    let file = id_file(store_path);
    let dir = file.parent().expect("the id file is in a directory");
    let _ = std::fs::create_dir_all(dir);
    // Write to a temporary file and link it into place: concurrent first uses agree.
    let tmp = dir.join(format!(".manager-id.{}", std::process::id()));
    let written =
        std::fs::File::create(&tmp).and_then(|mut f| f.write_all(format!("{id}\n").as_bytes()));
    if written.is_ok() && std::fs::hard_link(&tmp, &file).is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return id;
    }
    let _ = std::fs::remove_file(&tmp);
    read(store_path).unwrap_or(id)
}

/// A new manager id for a store on `host`: `mgr-<host>-<16 hex digits>`, the host reduced to
/// characters every AWS tag value accepts (letters, digits, `.`, `-`) and 40 of them at most.
pub fn new_id(host: &str) -> String {
    let host: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    if host.is_empty() {
        format!("mgr-{}", random_hex(8))
    } else {
        format!("mgr-{host}-{}", random_hex(8))
    }
}

/// Checks a manager id given by hand (`gc --manager`): non-empty, and only characters a tag
/// value of ours can hold, so a typo cannot match more than it names.
pub fn check(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the manager id is empty".into());
    }
    if id.contains('*') || id.contains('?') {
        return Err(format!(
            "{id:?}: no wildcards; give the exact value of the tag {}",
            crate::tags::MANAGER
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:@/+=".contains(c))
    {
        return Err(format!(
            "{id:?} is not a manager id (the value of the tag {}, e.g. mgr-bastion-1f2e3d4c5b6a7980)",
            crate::tags::MANAGER
        ));
    }
    Ok(())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_store_and_never_made_by_a_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_str().unwrap();
        assert_eq!(read(p), None);
        assert!(!d.path().join("ec2spot").exists(), "a read writes nothing");
        let a = manager_id(p);
        assert!(a.starts_with("mgr-"), "{a}");
        assert!(check(&a).is_ok(), "{a}");
        assert_eq!(manager_id(p), a);
        assert_eq!(read(p), Some(a));
        assert_eq!(manager_id(""), "");
        assert_eq!(read(""), None);
    }

    #[test]
    fn ids_name_the_host() {
        let id = new_id("CI-Bastion-1.eu-west-1.compute.internal");
        assert!(id.starts_with("mgr-ci-bastion-1-"), "{id}");
        assert_eq!(id.len(), "mgr-ci-bastion-1-".len() + 16);
        assert_eq!(new_id("").len(), "mgr-".len() + 16);
        assert!(new_id(&"x".repeat(300)).len() <= 4 + 40 + 1 + 16);
        assert!(check("mgr-*").is_err());
        assert!(check("").is_err());
        assert!(check("a b").is_err());
    }
}
