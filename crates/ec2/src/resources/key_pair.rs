//! The machine's SSH key: generated locally into the machine directory (or copied from
//! `amazonec2-ssh-keypath`) and imported as an EC2 key pair tagged as the machine's.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::aws::error::{Error, ErrorKind, Resource, Result, aws, unless_gone};
use crate::tags;

/// An SSH key pair in OpenSSH's text forms. Not `Debug`: it holds a private key.
pub struct KeyPair {
    /// OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted.
    pub private_pem: String,
    /// `ssh-ed25519 AAAA…` public key line.
    pub public_line: String,
}

/// Generates an Ed25519 key pair: microseconds (an RSA key takes a good part of a second and
/// would hold up the create and the agent's threads). EC2 imports Ed25519 keys for Linux
/// instances (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-key-pairs.html);
/// OpenSSH (docker-machine's external SSH client, Ubuntu's sshd) has taken them since 6.5,
/// and Go's golang.org/x/crypto/ssh (docker-machine's native client) parses OpenSSH-format
/// Ed25519 private keys since 2016.
pub fn generate() -> Result<KeyPair> {
    let key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .map_err(|e| Error::Other(format!("generating an SSH key: {e}")))?;
    let private_pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::Other(format!("encoding the SSH key: {e}")))?
        .to_string();
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Other(format!("encoding the SSH key: {e}")))?;
    Ok(KeyPair {
        private_pem,
        public_line,
    })
}

/// Writes `contents` to `path` with `mode`, replacing any previous file.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))?;
    f.write_all(contents)
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))
}

/// Puts the machine's key into `dir` as `id_rsa` (mode 0600) and `id_rsa.pub`: a new key, or
/// a copy of the user's. Returns the private key path and the public key line.
pub fn install(dir: &Path, user_key: Option<&Path>) -> Result<(PathBuf, String)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Other(format!("creating {}: {e}", dir.display())))?;
    let private = dir.join("id_rsa");
    let public = dir.join("id_rsa.pub");
    // A key an earlier attempt of this create made (e.g. in an agent that died) is kept, so
    // the key pair it may already have imported still matches.
    if user_key.is_none()
        && let (Ok(_), Ok(line)) = (
            std::fs::metadata(&private),
            std::fs::read_to_string(&public),
        )
        && line.starts_with("ssh-")
    {
        return Ok((private, line.trim().to_string()));
    }
    let (private_pem, public_line) = match user_key {
        None => {
            let k = generate()?;
            (k.private_pem.into_bytes(), k.public_line)
        }
        Some(path) => {
            let key = std::fs::read(path)
                .map_err(|e| Error::Other(format!("reading {}: {e}", path.display())))?;
            let pub_path = PathBuf::from(format!("{}.pub", path.display()));
            let public = std::fs::read_to_string(&pub_path).unwrap_or_default();
            (key, public.trim().to_string())
        }
    };
    write_pair(dir, &private_pem, &public_line)
}

/// Puts `key` (the agent's spare, imported already) into `dir` as the machine's key.
pub fn install_given(dir: &Path, key: &KeyPair) -> Result<(PathBuf, String)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Other(format!("creating {}: {e}", dir.display())))?;
    write_pair(dir, key.private_pem.as_bytes(), &key.public_line)
}

/// Writes `id_rsa` (0600) and, when there is a public line, `id_rsa.pub` into `dir`.
fn write_pair(dir: &Path, private_pem: &[u8], public_line: &str) -> Result<(PathBuf, String)> {
    let private = dir.join("id_rsa");
    write_file(&private, private_pem, 0o600)?;
    if !public_line.is_empty() {
        write_file(
            &dir.join("id_rsa.pub"),
            format!("{public_line}\n").as_bytes(),
            0o644,
        )?;
    }
    Ok((private, public_line.to_string()))
}

/// Imports `public_line` as key pair `name`, tagged with `tag_list`.
pub async fn import(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    public_line: &str,
    tag_list: &[(String, String)],
) -> Result<()> {
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::KeyPair)
        .set_tags(Some(
            tag_list
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    let imported = ec2
        .import_key_pair()
        .key_name(name)
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(public_line.as_bytes()))
        .tag_specifications(spec)
        .send()
        .await;
    let Err(e) = imported else { return Ok(()) };
    let e = aws("importing the SSH key (ImportKeyPair)", e);
    if !e.is(&[ErrorKind::Duplicate(Resource::KeyPair)]) {
        return Err(e);
    }
    // An earlier attempt of this same create imported it (its machine id says so).
    let ours = tag_list
        .iter()
        .find(|(k, _)| k == tags::MACHINE_ID)
        .map(|(_, v)| v.as_str());
    // (It may have been imported moments ago: EC2 then says it exists and cannot show it yet.)
    let out =
        crate::aws::consistency::retry_fresh(&[ErrorKind::NotFound(Resource::KeyPair)], || async {
            ec2.describe_key_pairs()
                .key_names(name)
                .send()
                .await
                .map_err(|e| aws("checking the existing key pair (DescribeKeyPairs)", e))
        })
        .await?;
    let same = out.key_pairs().iter().any(|k| {
        k.tags()
            .iter()
            .any(|t| t.key() == Some(tags::MACHINE_ID) && t.value() == ours)
    });
    if same { Ok(()) } else { Err(e) }
}

/// Deletes key pair `name`; a missing key pair counts as deleted.
pub async fn delete(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<()> {
    let deleted = ec2.delete_key_pair().key_name(name).send().await;
    let deleted = deleted.map_err(|e| aws("deleting the key pair (DeleteKeyPair)", e));
    unless_gone(deleted, Resource::KeyPair).map(drop)
}

/// Names of key pairs carrying this machine's ownership tag.
pub async fn find_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_key_pairs()
        .filters(tags::machine(machine_id))
        .send()
        .await
        .map_err(|e| {
            aws(
                "finding the machine's key pairs by tag (DescribeKeyPairs)",
                e,
            )
        })?;
    Ok(out
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_key_files_are_private_and_openssh_shaped() {
        let dir = tempfile::tempdir().unwrap();
        let (path, public) = install(dir.path(), None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(
            public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"),
            "{public}"
        );
        // The private key file decodes back to the same public key.
        let back = PrivateKey::from_openssh(&pem).unwrap();
        assert_eq!(back.public_key().to_openssh().unwrap(), public);
        // A second key is another key.
        let (_, other) = install(tempfile::tempdir().unwrap().path(), None).unwrap();
        assert_ne!(other, public);
    }

    /// OpenSSH itself (docker-machine's external SSH client) reads the private key and derives
    /// the same public key from it.
    #[test]
    fn openssh_reads_the_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let (path, public) = install(dir.path(), None).unwrap();
        let Ok(out) = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
        else {
            panic!("ssh-keygen (Debian's openssh-client) is needed for this test");
        };
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), public);
    }
}
