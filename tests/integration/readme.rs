//! The README stays true: its option table is the flag table in code, its two set-up commands
//! exist, and CI runs the test command it tells users to run.

use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

#[test]
fn option_table_matches_the_flags_in_code() {
    let readme = read("README.md");
    let begin = "<!-- options:begin (generated from crates/options/src/flags.rs; tests/integration/readme.rs checks it) -->\n";
    let end = "<!-- options:end -->";
    let start = readme.find(begin).expect("README has the options markers") + begin.len();
    let stop = readme[start..].find(end).expect("end marker") + start;
    let want = ec2spot_ec2::options::flags::markdown_table();
    assert!(
        readme[start..stop] == want,
        "README option table is stale; replace it with:\n{want}"
    );
}

#[test]
fn setup_commands_exist_and_ci_runs_the_test_command() {
    let readme = read("README.md");
    for cmd in ["scripts/demo", "scripts/test"] {
        assert!(
            readme.contains(&format!("\n{cmd}\n")),
            "README lacks `{cmd}`"
        );
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(cmd).exists());
    }
    assert!(read(".ci/run").contains("scripts/test"));
}
