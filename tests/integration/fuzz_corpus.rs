//! Replays the committed fuzz corpus (fuzz/corpus: the recorded docker-machine traffic plus
//! what `scripts/fuzz` found interesting) through the fuzz targets' entry points, so every
//! test run re-checks those inputs without cargo-fuzz.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn gob_decode_corpus() {
    let n = replay("gob_decode", ec2spot_testkit::fuzzing::gob_decode);
    assert!(n >= 40, "{n} inputs");
}

#[test]
fn rpc_connection_corpus() {
    let n = replay("rpc_connection", ec2spot_testkit::fuzzing::rpc_connection);
    assert!(n >= 20, "{n} inputs");
}

#[test]
fn config_json_corpus() {
    let n = replay("config_json", ec2spot_testkit::fuzzing::config_json);
    assert!(n >= 10, "{n} inputs");
}
