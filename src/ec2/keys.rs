//! The machine's SSH key: generated locally into the machine directory (or copied from
//! `amazonec2-ssh-keypath`) and imported as an EC2 key pair tagged as the machine's.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use base64::Engine;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;

use super::error::{Error, Result, aws};
use super::tags;

/// An SSH key pair in OpenSSH-compatible text forms.
pub struct KeyPair {
    /// PEM (PKCS#1) private key.
    pub private_pem: String,
    /// `ssh-rsa AAAA…` public key line.
    pub public_line: String,
}

/// Generates an RSA-2048 key pair (what amazonec2 generates; every SSH client reads it).
pub fn generate() -> Result<KeyPair> {
    let mut rng = rand::thread_rng();
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| Error::Other(format!("generating an SSH key: {e}")))?;
    let private_pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| Error::Other(format!("encoding the SSH key: {e}")))?
        .to_string();
    let public = key.to_public_key();
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, &public.e().to_bytes_be());
    ssh_mpint(&mut blob, &public.n().to_bytes_be());
    let public_line = format!(
        "ssh-rsa {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    Ok(KeyPair {
        private_pem,
        public_line,
    })
}

fn ssh_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn ssh_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: &[u8] = {
        let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        &be[start..]
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        out.extend_from_slice(&((trimmed.len() + 1) as u32).to_be_bytes());
        out.push(0);
    } else {
        out.extend_from_slice(&(trimmed.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(trimmed);
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
    if user_key.is_none() {
        if let (Ok(_), Ok(line)) = (
            std::fs::metadata(&private),
            std::fs::read_to_string(&public),
        ) {
            if line.starts_with("ssh-") {
                return Ok((private, line.trim().to_string()));
            }
        }
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
    write_file(&private, &private_pem, 0o600)?;
    if !public_line.is_empty() {
        write_file(&public, format!("{public_line}\n").as_bytes(), 0o644)?;
    }
    Ok((private, public_line))
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
    if e.code() != Some("InvalidKeyPair.Duplicate") {
        return Err(e);
    }
    // An earlier attempt of this same create imported it (its machine id says so).
    let ours = tag_list
        .iter()
        .find(|(k, _)| k == tags::MACHINE_ID)
        .map(|(_, v)| v.as_str());
    let out = ec2
        .describe_key_pairs()
        .key_names(name)
        .send()
        .await
        .map_err(|e| aws("checking the existing key pair (DescribeKeyPairs)", e))?;
    let same = out.key_pairs().iter().any(|k| {
        k.tags()
            .iter()
            .any(|t| t.key() == Some(tags::MACHINE_ID) && t.value() == ours)
    });
    if same { Ok(()) } else { Err(e) }
}

/// Deletes key pair `name`; a missing key pair counts as deleted.
pub async fn delete(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<()> {
    match ec2.delete_key_pair().key_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws("deleting the key pair (DeleteKeyPair)", e);
            if e.is_code(&["InvalidKeyPair.NotFound"]) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Names of key pairs carrying this machine's ownership tag.
pub async fn find_by_machine_id(
    ec2: &aws_sdk_ec2::Client,
    machine_id: &str,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_key_pairs()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::MACHINE_ID))
                .values(machine_id)
                .build(),
        )
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
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(public.starts_with("ssh-rsa AAAAB3NzaC1yc2E"), "{public}");
        let blob = base64::engine::general_purpose::STANDARD
            .decode(public.split(' ').nth(1).unwrap())
            .unwrap();
        assert!(blob.len() > 256 + 4 + 7 + 4, "2048-bit modulus in the blob");
    }
}
