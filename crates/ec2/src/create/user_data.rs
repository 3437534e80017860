//! The instance's user data: the file of `amazonec2-userdata` as it is, or — with the TLS
//! bootstrap — a MIME multi-part document (cloud-init's format for several parts) holding the
//! bootstrap's cloud-config and the user's file as a part of its own, never replacing it.
//!
//! The user's part keeps its meaning: its content type is the one cloud-init would give the
//! file alone (`#!` → `text/x-shellscript`, `#cloud-config` → `text/cloud-config`, …), a MIME
//! document is kept whole as a nested part, gzip stays gzip. The bootstrap's part comes last
//! and merges into the user's cloud-config by appending to lists (`Merge-Type`), so a user's
//! own `write_files` or `runcmd` is kept rather than replaced.

use crate::aws::error::{Error, Result};
use crate::create::tls_bootstrap::{self, TlsMaterial};
use crate::options::Asked;
use crate::options::flags::name;

/// EC2's limit on user data, before base64: 16 KB
/// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html).
pub const MAX_USER_DATA: usize = crate::options::validate::MAX_USER_DATA as usize;

/// cloud-init's content types by the first line's prefix (its `INCLUSION_TYPES_MAP`); the
/// longest matching prefix wins.
const STARTS_WITH: &[(&str, &str)] = &[
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("## template: jinja", "text/jinja2"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#include-once", "text/x-include-once-url"),
    ("#cloud-config", "text/cloud-config"),
    ("#part-handler", "text/part-handler"),
    ("#upstart-job", "text/upstart-job"),
    ("#include", "text/x-include-url"),
    ("#!", "text/x-shellscript"),
];

/// How the bootstrap's cloud-config merges into what came before it: lists appended, the
/// user's keys kept (cloud-init's default would replace the user's `write_files`/`runcmd`).
pub const MERGE_TYPE: &str = "list(append)+dict(no_replace,recurse_list)+str()";

/// What a user-data file is, for cloud-init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A MIME document (kept whole as a nested part).
    Mime,
    /// gzip-compressed data (`application/x-gzip`, which cloud-init unpacks).
    Gzip,
    /// A part of this content type.
    Part(&'static str),
}

/// The kind of `data`, as cloud-init would see the file alone.
pub fn kind(data: &[u8]) -> Kind {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    let head = String::from_utf8_lossy(&data[..data.len().min(4096)]).to_ascii_lowercase();
    let first = head.trim_start_matches('\u{feff}');
    if first.starts_with("content-type:")
        || first.starts_with("mime-version:")
        || (first.starts_with("from ") && head.contains("\nmime-version:"))
    {
        return Kind::Mime;
    }
    let text = String::from_utf8_lossy(&data[..data.len().min(64)]);
    STARTS_WITH
        .iter()
        .find(|(prefix, _)| text.starts_with(prefix))
        .map(|(_, ty)| Kind::Part(ty))
        // Anything else: cloud-init looks at a text/plain part's start itself, and ignores it
        // when nothing matches, exactly as it treats such a file alone.
        .unwrap_or(Kind::Part(if std::str::from_utf8(data).is_ok() {
            "text/plain"
        } else {
            "application/octet-stream"
        }))
}

/// Whether `data` can go into the document as 7bit text (cloud-init decodes the document as
/// UTF-8 and Python's email module mangles 8bit parts; anything else is base64).
fn seven_bit(data: &[u8]) -> bool {
    data.iter()
        .all(|&c| c == b'\n' || c == b'\t' || (0x20..=0x7e).contains(&c))
        && data.split(|&c| c == b'\n').all(|l| l.len() <= 998)
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / 76 + 1);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// One body part: headers, a blank line, the content.
fn part(content_type: &str, filename: &str, extra: &[(&str, &str)], data: &[u8]) -> String {
    let mut out = String::new();
    let (encoding, body) = if seven_bit(data) {
        out.push_str(&format!(
            "Content-Type: {content_type}; charset=\"us-ascii\"\n"
        ));
        // The line break before a boundary belongs to the boundary (RFC 2046 5.1.1): one more
        // keeps the content's own last line break.
        let mut text = String::from_utf8(data.to_vec()).expect("7bit is ASCII");
        text.push('\n');
        ("7bit", text)
    } else {
        if content_type.starts_with("text/") {
            out.push_str(&format!(
                "Content-Type: {content_type}; charset=\"utf-8\"\n"
            ));
        } else {
            out.push_str(&format!("Content-Type: {content_type}\n"));
        }
        ("base64", base64_lines(data))
    };
    out.push_str("MIME-Version: 1.0\n");
    out.push_str(&format!("Content-Transfer-Encoding: {encoding}\n"));
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{filename}\"\n\n"
    ));
    out.push_str(&body);
    out
}

/// The user's file as a body part of the document.
fn user_part(data: &[u8]) -> Vec<u8> {
    const NAME: &str = "amazonec2-userdata";
    match kind(data) {
        // A MIME document is a complete entity already (headers, blank line, body): it becomes
        // a nested part as it is, minus an mbox "From " line.
        Kind::Mime => {
            let mut d = data.to_vec();
            if d.starts_with(b"From ") {
                let end = d
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(d.len(), |i| i + 1);
                d.drain(..end);
            }
            if !d.ends_with(b"\n") {
                d.push(b'\n');
            }
            d.push(b'\n');
            d
        }
        Kind::Gzip => part("application/x-gzip", NAME, &[], data).into_bytes(),
        Kind::Part(ty) => part(ty, NAME, &[], data).into_bytes(),
    }
}

/// A boundary that appears nowhere in the parts.
fn boundary(parts: &[&[u8]]) -> String {
    use rand::RngCore;
    loop {
        let mut b = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let candidate = format!("==ec2spot-{hex}==");
        if !parts.iter().any(|p| {
            p.windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        }) {
            return candidate;
        }
    }
}

/// The multi-part document of `parts` (each a complete body part).
fn multipart(parts: &[&[u8]]) -> Vec<u8> {
    let b = boundary(parts);
    let mut out = format!("Content-Type: multipart/mixed; boundary=\"{b}\"\nMIME-Version: 1.0\n\n")
        .into_bytes();
    for p in parts {
        out.extend_from_slice(format!("--{b}\n").as_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(format!("--{b}--\n").as_bytes());
    out
}

/// The user data of `config`'s launch: `None` without `amazonec2-userdata` and without TLS
/// material; the user's file alone without material; with material the multi-part document.
/// Refuses a document over EC2's 16 KB, naming both options.
pub fn compose(asked: &Asked, tls: Option<&TlsMaterial>) -> Result<Option<Vec<u8>>> {
    let user = if asked.user_data_file.is_empty() {
        None
    } else {
        Some(std::fs::read(&asked.user_data_file).map_err(|e| {
            Error::Other(format!(
                "reading --{} {}: {e}",
                name::USERDATA,
                asked.user_data_file
            ))
        })?)
    };
    let Some(tls) = tls else {
        return Ok(user);
    };
    let ours = part(
        "text/cloud-config",
        "ec2spot-tls-bootstrap.yaml",
        &[("Merge-Type", MERGE_TYPE)],
        tls_bootstrap::cloud_config(tls)?.as_bytes(),
    )
    .into_bytes();
    let start = part(
        "text/x-shellscript",
        tls_bootstrap::START_PART_NAME,
        &[],
        tls_bootstrap::start_script(tls, &asked.docker_version)?.as_bytes(),
    )
    .into_bytes();
    let doc = match user.as_deref() {
        Some(u) if !u.is_empty() => multipart(&[&user_part(u), &ours, &start]),
        _ => multipart(&[&ours, &start]),
    };
    if doc.len() > MAX_USER_DATA {
        let theirs = user
            .as_ref()
            .map(|u| format!(" (the file of --{} is {} bytes)", name::USERDATA, u.len()))
            .unwrap_or_default();
        return Err(Error::Other(format!(
            "the user data with the TLS bootstrap of --{} is {} bytes{theirs}; EC2 accepts at \
             most {MAX_USER_DATA} (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html): \
             shorten --{} or drop --{}",
            name::TLS_BOOTSTRAP,
            doc.len(),
            name::USERDATA,
            name::TLS_BOOTSTRAP
        )));
    }
    Ok(Some(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_cloud_init() {
        assert_eq!(
            kind(b"#!/bin/sh\necho hi\n"),
            Kind::Part("text/x-shellscript")
        );
        assert_eq!(
            kind(b"#cloud-config\nruncmd: []\n"),
            Kind::Part("text/cloud-config")
        );
        assert_eq!(
            kind(b"#cloud-config-archive\n- type: x\n"),
            Kind::Part("text/cloud-config-archive")
        );
        assert_eq!(
            kind(b"#include-once\nhttp://x\n"),
            Kind::Part("text/x-include-once-url")
        );
        assert_eq!(
            kind(b"Content-Type: multipart/mixed; boundary=x\n"),
            Kind::Mime
        );
        assert_eq!(
            kind(b"MIME-Version: 1.0\nContent-Type: text/x-shellscript\n"),
            Kind::Mime
        );
        assert_eq!(kind(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(kind(b"just words"), Kind::Part("text/plain"));
        assert_eq!(kind(&[0xff, 0x00]), Kind::Part("application/octet-stream"));
    }

    #[test]
    fn parts_are_7bit_or_base64() {
        let p = part(
            "text/x-shellscript",
            "f",
            &[],
            b"#!/bin/sh\necho \xc3\xa9\n",
        );
        assert!(p.contains("Content-Transfer-Encoding: base64\n"), "{p}");
        assert!(p.contains("charset=\"utf-8\""), "{p}");
        let p = part("text/x-shellscript", "f", &[], b"#!/bin/sh\necho e\n");
        assert!(p.contains("Content-Transfer-Encoding: 7bit\n"), "{p}");
        assert!(p.ends_with("echo e\n\n"), "{p}");
    }

    #[test]
    fn boundary_avoids_the_content() {
        let doc = multipart(&[b"Content-Type: text/plain\n\n==ec2spot-\n"]);
        let text = String::from_utf8(doc).unwrap();
        let b = text
            .split("boundary=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        assert_eq!(text.matches(b).count(), 3, "{text}");
        assert!(text.ends_with(&format!("--{b}--\n")));
    }
}
