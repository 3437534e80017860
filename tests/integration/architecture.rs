//! The house keeps its rooms (ARCHITECTURE.md): the crates depend on each other in one
//! direction only (the EC2 lifecycle never on the plugin contract, gob, net/rpc or the agent;
//! the plugin contract never on anything of AWS; the binary never on the test harness), no
//! crate's sources name a crate it must not use, no crate has a module import cycle — between
//! files or between folders — `rust-version` says what the dependencies really need, and no
//! function of the shipped code is longer than a reader can hold (80 lines).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ec2spot_testkit::architecture::crates::{
    FORBIDDEN_DEPENDENCIES, FORBIDDEN_NAMES, forbidden_dependencies, forbidden_names,
    highest_dependency_rust_version, metadata, shipped_dependencies, version, workspace_members,
    workspace_rust_versions,
};
use ec2spot_testkit::architecture::functions::functions_under;
use ec2spot_testkit::architecture::modules::{describe, module_graph};
use ec2spot_testkit::workspace_root;

#[test]
fn crates_depend_on_each_other_in_one_direction_only() {
    let meta = metadata(workspace_root());
    let members = workspace_members(&meta);
    for (krate, _) in FORBIDDEN_DEPENDENCIES {
        assert!(
            members.contains(*krate),
            "{krate} is not in the workspace: {members:?}"
        );
    }
    let deps = shipped_dependencies(&meta);
    // Not vacuous: the dependencies are read (the binary depends on every layer).
    for layer in [
        "ec2spot-plugin",
        "ec2spot-ec2",
        "ec2spot-agent",
        "ec2spot-gob",
    ] {
        assert!(deps["ec2spot"].contains(layer), "{:?}", deps["ec2spot"]);
    }
    assert!(deps["ec2spot-ec2"].contains("aws-sdk-ec2"));
    assert!(deps["ec2spot-ec2"].contains("ec2spot-options"));
    let broken = forbidden_dependencies(&deps, FORBIDDEN_DEPENDENCIES);
    assert!(
        broken.is_empty(),
        "dependencies across the layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_crate_names_a_crate_it_must_not_use() {
    let root = workspace_root();
    for (dir, _) in FORBIDDEN_NAMES {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    let found = forbidden_names(root, FORBIDDEN_NAMES);
    assert!(
        found.is_empty(),
        "names across the layers:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_crate_has_a_module_import_cycle_between_files_or_folders() {
    let root = workspace_root();
    let mut roots = vec![root.join("src/lib.rs")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        roots.push(entry.path().join("src/lib.rs"));
    }
    roots.sort();
    let mut problems = Vec::new();
    for lib in &roots {
        let g = module_graph(lib);
        let shown = lib.strip_prefix(root).unwrap_or(lib).display().to_string();
        println!(
            "{shown}: {} modules, {} dependencies between them",
            g.modules.len(),
            g.edges.len()
        );
        for c in g.module_cycles() {
            problems.push(format!("{shown}: module cycle:\n  {}", describe(&c)));
        }
        for c in g.folder_cycles() {
            problems.push(format!("{shown}: folder cycle:\n  {}", describe(&c)));
        }
    }
    // Not vacuous: the EC2 crate's graph is read.
    let ec2 = module_graph(&root.join("crates/ec2/src/lib.rs"));
    assert!(
        ec2.modules.len() > 30 && ec2.edges.len() > 80,
        "{:?}",
        ec2.edges.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The options crate's rules are not vacuous: an options crate that depended on the AWS SDK,
/// or named it in its sources, would fail the two checks above.
#[test]
fn the_options_crate_naming_the_sdk_is_caught() {
    let deps = BTreeMap::from([(
        "ec2spot-options".to_string(),
        BTreeSet::from(["serde".to_string(), "aws-sdk-ec2".to_string()]),
    )]);
    assert_eq!(
        forbidden_dependencies(&deps, FORBIDDEN_DEPENDENCIES),
        vec!["ec2spot-options → aws-sdk-ec2".to_string()]
    );
    let tree = tempfile::tempdir().unwrap();
    let src = tree.path().join("crates/options/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("apply.rs"),
        "// aws_sdk_ec2::Client in a comment does not count\n\
         fn f() {\n    let c: aws_sdk_ec2::Client = todo!();\n}\n",
    )
    .unwrap();
    assert_eq!(
        forbidden_names(tree.path(), FORBIDDEN_NAMES),
        vec!["crates/options/src/apply.rs:3: aws_sdk_ec2".to_string()]
    );
}

#[test]
fn rust_version_is_what_the_dependencies_need() {
    let meta = metadata(workspace_root());
    let (needed, by) = highest_dependency_rust_version(&meta).expect("dependencies declare one");
    for (krate, declared) in workspace_rust_versions(&meta) {
        let declared = declared.unwrap_or_else(|| panic!("{krate} declares no rust-version"));
        assert_eq!(
            version(&declared),
            version(&needed),
            "{krate} declares rust-version {declared}, but {by} needs {needed}: set \
             [workspace.package] rust-version in Cargo.toml to {needed}"
        );
    }
}

/// The most lines a function of the shipped code (the binary and every crate's `src/`, the test
/// harness included; tests not) may take: one screen, split where its steps have names.
const MAX_FUNCTION_LINES: usize = 80;

/// Functions still over the limit, with the length they may not exceed: the list only shrinks
/// (it is empty: add nothing to it).
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[];

#[test]
fn no_function_is_over_80_lines() {
    let root = workspace_root();
    let mut dirs = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        dirs.push(entry.path().join("src"));
    }
    dirs.sort();
    let mut all = Vec::new();
    for d in &dirs {
        all.extend(functions_under(d));
    }
    // Not vacuous: the EC2 crate's functions are read, `create` among them.
    assert!(all.len() > 500, "{} functions read", all.len());
    assert!(all.iter().any(|f| f.name == "create_steps"));
    let mut problems = Vec::new();
    for f in all.iter().filter(|f| f.lines > MAX_FUNCTION_LINES) {
        let file = f
            .file
            .strip_prefix(root)
            .unwrap_or(&f.file)
            .display()
            .to_string();
        let allowed = LONG_FUNCTIONS
            .iter()
            .find(|(p, n, _)| *p == file && *n == f.name)
            .map(|(_, _, max)| *max);
        println!("{file}:{} fn {}: {} lines", f.line, f.name, f.lines);
        if allowed.is_none_or(|max| f.lines > max) {
            problems.push(format!(
                "{file}:{} fn {} is {} lines (at most {MAX_FUNCTION_LINES}: split it where its steps have names)",
                f.line, f.name, f.lines
            ));
        }
    }
    // An entry whose function is now short enough (or gone) leaves the list.
    for (file, name, _) in LONG_FUNCTIONS {
        let still = all.iter().any(|f| {
            f.lines > MAX_FUNCTION_LINES
                && f.name == *name
                && f.file.strip_prefix(root).unwrap_or(&f.file) == Path::new(file)
        });
        if !still {
            problems.push(format!(
                "{file} fn {name} is no longer over {MAX_FUNCTION_LINES} lines: take it off LONG_FUNCTIONS"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
