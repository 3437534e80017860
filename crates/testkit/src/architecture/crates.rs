//! Crate-level checks: the dependency direction between the workspace's crates (gob → rpc →
//! plugin; options → ec2 → agent; the binary on top, the testkit beside it), read from `cargo metadata`;
//! a scan of each crate's sources for the names of crates it must not use; and the workspace's
//! `rust-version` against the dependency tree's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What a workspace crate must not depend on, directly or through others (normal and build
/// dependencies; dev-dependencies are the tests'). An entry ending in `-` is a prefix.
pub const FORBIDDEN_DEPENDENCIES: &[(&str, &[&str])] = &[
    (
        "ec2spot-redact",
        &[
            "ec2spot-gob",
            "ec2spot-rpc",
            "ec2spot-plugin",
            "ec2spot-ec2",
            "ec2spot-agent",
            "ec2spot-testkit",
        ],
    ),
    // The options: read and refused before any AWS call, so nothing of AWS (nor a runtime).
    (
        "ec2spot-options",
        &[
            "ec2spot-gob",
            "ec2spot-rpc",
            "ec2spot-plugin",
            "ec2spot-ec2",
            "ec2spot-agent",
            "ec2spot-testkit",
            "aws-",
            "tokio",
            "tonic",
            "prost",
        ],
    ),
    (
        "ec2spot-gob",
        &[
            "ec2spot-rpc",
            "ec2spot-plugin",
            "ec2spot-ec2",
            "ec2spot-agent",
            "ec2spot-testkit",
            "aws-",
            "tonic",
            "prost",
        ],
    ),
    (
        "ec2spot-rpc",
        &[
            "ec2spot-plugin",
            "ec2spot-ec2",
            "ec2spot-agent",
            "ec2spot-testkit",
            "aws-",
            "tonic",
            "prost",
        ],
    ),
    (
        "ec2spot-plugin",
        &[
            "ec2spot-ec2",
            "ec2spot-agent",
            "ec2spot-testkit",
            "aws-",
            "tonic",
            "prost",
        ],
    ),
    (
        "ec2spot-ec2",
        &[
            "ec2spot-gob",
            "ec2spot-rpc",
            "ec2spot-plugin",
            "ec2spot-agent",
            "ec2spot-testkit",
            "tonic",
            "tonic-prost",
            "prost",
        ],
    ),
    (
        "ec2spot-agent",
        &[
            "ec2spot-gob",
            "ec2spot-rpc",
            "ec2spot-plugin",
            "ec2spot-testkit",
        ],
    ),
    // The binary ships nothing of the test harness.
    ("ec2spot", &["ec2spot-testkit"]),
];

/// The names a crate's sources must not use as a path (`name::…`), whatever Cargo.toml says:
/// (source directory, forbidden names; an entry ending in `_` is a prefix).
pub const FORBIDDEN_NAMES: &[(&str, &[&str])] = &[
    (
        "crates/options/src",
        &[
            "ec2spot_gob",
            "ec2spot_rpc",
            "ec2spot_plugin",
            "ec2spot_ec2",
            "ec2spot_agent",
            "aws_",
            "tokio",
            "tonic",
            "prost",
        ],
    ),
    (
        "crates/gob/src",
        &[
            "ec2spot_rpc",
            "ec2spot_plugin",
            "ec2spot_ec2",
            "ec2spot_agent",
            "aws_",
            "tonic",
        ],
    ),
    (
        "crates/rpc/src",
        &[
            "ec2spot_plugin",
            "ec2spot_ec2",
            "ec2spot_agent",
            "aws_",
            "tonic",
        ],
    ),
    (
        "crates/plugin/src",
        &["ec2spot_ec2", "ec2spot_agent", "aws_", "tonic", "prost"],
    ),
    (
        "crates/ec2/src",
        &[
            "ec2spot_gob",
            "ec2spot_rpc",
            "ec2spot_plugin",
            "ec2spot_agent",
            "tonic",
            "prost",
        ],
    ),
    (
        "crates/agent/src",
        &["ec2spot_gob", "ec2spot_rpc", "ec2spot_plugin"],
    ),
];

/// `cargo metadata` of the workspace at `root` (all platforms' dependencies, the lock file as
/// it is).
pub fn metadata(root: &Path) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package id → name.
fn names(meta: &Value) -> BTreeMap<String, String> {
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_string(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The names of the workspace's packages.
pub fn workspace_members(meta: &Value) -> BTreeSet<String> {
    let names = names(meta);
    meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| names.get(id.as_str()?).cloned())
        .collect()
}

/// Package name → the names of everything it depends on through normal and build
/// dependencies, directly or not.
pub fn shipped_dependencies(meta: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let names = names(meta);
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let from = node["id"].as_str().unwrap_or_default();
        let deps = direct.entry(from.to_string()).or_default();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let shipped = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if shipped {
                deps.insert(dep["pkg"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    for (id, name) in &names {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = direct.get(id).into_iter().flatten().collect();
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) {
                todo.extend(direct.get(next).into_iter().flatten());
            }
        }
        let deps: BTreeSet<String> = seen.iter().filter_map(|d| names.get(d).cloned()).collect();
        out.entry(name.clone())
            .or_insert_with(BTreeSet::new)
            .extend(deps);
    }
    out
}

fn matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix(['-', '_']) {
        Some(_) => name.starts_with(pattern),
        None => name == pattern,
    }
}

/// Every dependency that breaks [`FORBIDDEN_DEPENDENCIES`]: `crate → dependency` lines.
pub fn forbidden_dependencies(
    deps: &BTreeMap<String, BTreeSet<String>>,
    rules: &[(&str, &[&str])],
) -> Vec<String> {
    let mut out = Vec::new();
    for (krate, forbidden) in rules {
        for dep in deps.get(*krate).into_iter().flatten() {
            if forbidden.iter().any(|f| matches(dep, f)) {
                out.push(format!("{krate} → {dep}"));
            }
        }
    }
    out
}

/// Every use of a forbidden name in the sources under `root/<dir>` ([`FORBIDDEN_NAMES`]):
/// `file:line: name` lines. Comments and string literals do not count.
pub fn forbidden_names(root: &Path, rules: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = Vec::new();
    for (dir, forbidden) in rules {
        for file in super::modules::rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let code = super::modules::strip_comments_and_strings(&text);
            for (n, line) in code.lines().enumerate() {
                for ident in path_roots(line) {
                    if forbidden.iter().any(|f| matches(ident, f)) {
                        let shown = file.strip_prefix(root).unwrap_or(&file);
                        out.push(format!("{}:{}: {ident}", shown.display(), n + 1));
                    }
                }
            }
        }
    }
    out
}

/// The identifiers of `line` that start a path (`ident::`) or follow `extern crate`.
fn path_roots(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let before = line[..start].trim_end();
            let after_path = before.ends_with("::");
            let ident = &line[start..i];
            if !after_path && (line[i..].starts_with("::") || before.ends_with("extern crate")) {
                out.push(ident);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A `rust-version` as numbers (`1.94.1` → [1, 94, 1]; missing parts are 0).
pub fn version(v: &str) -> [u64; 3] {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    [
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    ]
}

/// The highest `rust-version` among the packages that are not the workspace's, with the
/// package declaring it.
pub fn highest_dependency_rust_version(meta: &Value) -> Option<(String, String)> {
    let members = workspace_members(meta);
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| !members.contains(p["name"].as_str().unwrap_or_default()))
        .filter_map(|p| {
            Some((
                p["rust_version"].as_str()?.to_string(),
                p["name"].as_str()?.to_string(),
            ))
        })
        .max_by_key(|(v, _)| version(v))
}

/// The `rust-version` each workspace package declares.
pub fn workspace_rust_versions(meta: &Value) -> BTreeMap<String, Option<String>> {
    let members = workspace_members(meta);
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| members.contains(p["name"].as_str().unwrap_or_default()))
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["rust_version"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_dependency_is_found_through_others() {
        let meta = serde_json::json!({
            "packages": [
                {"id": "a", "name": "ec2spot-ec2"},
                {"id": "b", "name": "helper"},
                {"id": "c", "name": "tonic"},
                {"id": "d", "name": "tempfile"},
            ],
            "resolve": {"nodes": [
                {"id": "a", "deps": [
                    {"pkg": "b", "dep_kinds": [{"kind": null}]},
                    {"pkg": "d", "dep_kinds": [{"kind": "dev"}]},
                ]},
                {"id": "b", "deps": [{"pkg": "c", "dep_kinds": [{"kind": "build"}]}]},
                {"id": "c", "deps": []},
                {"id": "d", "deps": []},
            ]}
        });
        let deps = shipped_dependencies(&meta);
        assert_eq!(
            deps["ec2spot-ec2"],
            ["helper", "tonic"].map(String::from).into()
        );
        assert_eq!(
            forbidden_dependencies(&deps, &[("ec2spot-ec2", &["tonic", "tempfile"])]),
            ["ec2spot-ec2 → tonic"]
        );
        assert!(forbidden_dependencies(&deps, &[("ec2spot-ec2", &["aws-"])]).is_empty());
    }

    #[test]
    fn names_count_only_as_paths_outside_comments_and_strings() {
        assert_eq!(path_roots("use tonic::Status;"), ["tonic"]);
        assert_eq!(
            path_roots("let x = aws_sdk_ec2::Client::new();"),
            ["aws_sdk_ec2"]
        );
        assert!(path_roots("let tonic = 1; crate::x::tonic::y").len() == 1);
        let code = super::super::modules::strip_comments_and_strings(
            "// tonic::x\nlet s = \"aws_sdk::y\"; /* prost::z */ ok::w",
        );
        let roots: Vec<&str> = code.lines().flat_map(path_roots).collect();
        assert_eq!(roots, ["ok"]);
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version("1.94.1") > version("1.94"));
        assert!(version("1.100") > version("1.94.1"));
        assert_eq!(version("1.85"), [1, 85, 0]);
    }
}
