//! The examples stay true: every option in examples/gitlab-runner/config.toml is one ec2spot
//! accepts, with the meaning its comments claim.

use ec2spot_ec2::{Config, options, tools::doctor};

#[test]
fn the_runner_example_options_are_valid_and_mean_what_they_say() {
    let toml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/gitlab-runner/config.toml"
    ))
    .unwrap();
    assert!(toml.contains("MachineDriver = \"ec2spot\""));
    let args: Vec<String> = toml
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("\"amazonec2-"))
        .map(|l| format!("--{}", l.trim_end_matches(',').trim_matches('"')))
        .collect();
    assert!(args.len() >= 10, "{args:?}");
    let values = doctor::parse_args(&args).unwrap_or_else(|e| panic!("{e}"));
    let mut c = Config::default();
    options::apply(&mut c.asked, &values).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.asked.request_spot_instance);
    assert!(c.asked.spot_fallback_on_demand);
    assert_eq!(
        c.asked.instance_types.len(),
        4,
        "{:?}",
        c.asked.instance_types
    );
    assert_eq!(c.asked.subnet_ids.len(), 3, "{:?}", c.asked.subnet_ids);
    assert_eq!(c.asked.metadata_token, "required");
    assert_eq!(c.asked.metadata_token_response_hop_limit, 2);
    assert!(c.asked.spot_price.is_empty());
    assert!(c.asked.tags.contains("cost-center"));
}

#[test]
fn doctor_reads_options_as_docker_machine_does() {
    let args: Vec<String> = [
        "--amazonec2-region=eu-west-1",
        "--amazonec2-request-spot-instance",
        "--amazonec2-open-port",
        "8080",
        "--amazonec2-open-port=9090",
        "--amazonec2-root-size",
        "40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let values = doctor::parse_args(&args).unwrap();
    let mut c = Config::default();
    options::apply(&mut c.asked, &values).unwrap();
    assert_eq!(c.asked.region, "eu-west-1");
    assert!(c.asked.request_spot_instance);
    assert_eq!(c.asked.open_ports, ["8080", "9090"]);
    assert_eq!(c.asked.root_size, 40);
    for (bad, names) in [
        (
            vec!["--amazonec2-root-size", "big"],
            "--amazonec2-root-size",
        ),
        (vec!["--amazonec2-nope=1"], "--amazonec2-nope"),
        (vec!["--amazonec2-region"], "--amazonec2-region"),
        (vec!["region"], "region"),
    ] {
        let args: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
        let e = doctor::parse_args(&args).unwrap_err();
        assert!(e.contains(names), "{e}");
    }
}
