//! The manager identity: a random id kept in the docker-machine store, carried by every
//! resource's ownership tags so that cleaning up on one bastion never touches another's.

use std::io::Write;
use std::path::Path;

/// The manager id of the store at `store_path`, created on first use ("" without a store).
pub fn manager_id(store_path: &str) -> String {
    if store_path.is_empty() {
        return String::new();
    }
    let dir = Path::new(store_path).join("ec2spot");
    let file = dir.join("manager-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return id;
        }
    }
    let id = format!("mgr-{}", random_hex(8));
    let _ = std::fs::create_dir_all(&dir);
    // Write to a temporary file and link it into place: concurrent first uses agree.
    let tmp = dir.join(format!(".manager-id.{}", std::process::id()));
    let written =
        std::fs::File::create(&tmp).and_then(|mut f| f.write_all(format!("{id}\n").as_bytes()));
    if written.is_ok() && std::fs::hard_link(&tmp, &file).is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return id;
    }
    let _ = std::fs::remove_file(&tmp);
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_string())
        .unwrap_or(id)
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_per_store() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_str().unwrap();
        let a = super::manager_id(p);
        assert!(a.starts_with("mgr-") && a.len() == 20, "{a}");
        assert_eq!(super::manager_id(p), a);
        assert_eq!(super::manager_id(""), "");
    }
}
