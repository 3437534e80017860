//! `config.json` across versions: the `Driver` object of a machine's `config.json`, as an
//! earlier build of ec2spot had docker-machine write it, loads into today's build and comes
//! back byte for byte — for each kind of machine (on-demand, spot, EC2 Fleet, TLS bootstrap,
//! and a create that failed after its launch). docker-machine hands that object to the plugin
//! with `SetConfigRaw` and saves what `GetConfigRaw` answers, indented; so what the plugin
//! answers must be the object it was given, whitespace aside.
//!
//! The fixtures under `tests/fixtures/config/` are whole `config.json` files written by
//! GitLab's fork (the `dmclient --gitlab-fork` stand-in) driving the build of the commit that
//! added them; `write_fixtures` (ignored: run it with `-- --ignored`) writes them again.

use std::path::PathBuf;

use ec2spot_ec2::Config;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::workspace_root;

/// The kinds of machine, with the create options that make each.
const KINDS: &[(&str, &[&str])] = &[
    ("on-demand", &[]),
    ("spot", &["--amazonec2-request-spot-instance"]),
    (
        "fleet",
        &[
            "--amazonec2-request-spot-instance",
            "--amazonec2-instance-type",
            "t3.micro,t3a.micro",
            // moto gives a fleet's instance no public address.
            "--amazonec2-use-private-address",
        ],
    ),
    ("tls-bootstrap", &["--amazonec2-tls-bootstrap"]),
    ("failed-create", &[]),
];

fn fixture(kind: &str) -> PathBuf {
    workspace_root()
        .join("tests/fixtures/config")
        .join(format!("{kind}.json"))
}

/// The text of the value of `key` (an object) in the JSON `text`, as written.
fn object_text<'a>(text: &'a str, key: &str) -> &'a str {
    let at = text
        .find(&format!("\"{key}\": {{"))
        .unwrap_or_else(|| panic!("no {key} object"));
    let open = at + text[at..].find('{').unwrap();
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in text[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated {key} object")
}

/// `text` without the whitespace between JSON tokens (docker-machine's indentation).
fn compact(text: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn config_json_of_every_kind_round_trips_byte_for_byte() {
    for (kind, _) in KINDS {
        let path = fixture(kind);
        let file = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (write_fixtures writes it)", path.display()));
        let given = compact(object_text(&file, "Driver"));
        let mut config = Config::default();
        config
            .merge_json(given.as_bytes())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let answered = String::from_utf8(config.to_json()).unwrap();
        assert_eq!(
            answered, given,
            "{kind}: GetConfigRaw differs from the file"
        );
        // Not vacuous: each kind is what it says.
        let is = |key: &str| config_value(&config, key);
        match *kind {
            "on-demand" => assert_eq!(is("Market"), "on-demand"),
            "spot" | "fleet" => assert_eq!(is("Market"), "spot", "{kind}"),
            "tls-bootstrap" => assert_eq!(is("TLSBootstrap"), "true"),
            _ => assert!(!config.made.instance_id.is_empty() && config.made.ip_address.is_empty()),
        }
        if *kind == "fleet" {
            let pools = &config.answered.as_ref().expect("answered").pools;
            assert!(pools.len() > 1, "{pools:?}");
        }
    }
}

fn config_value(config: &Config, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(&config.to_json()).unwrap();
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes the fixtures with this build: each kind of machine created by the fork stand-in on
/// the test EC2, its `config.json` copied, then removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/config; run it when a config.json change is intended"]
async fn write_fixtures() {
    let b = Bastion::start().await;
    std::fs::create_dir_all(fixture("x").parent().unwrap()).unwrap();
    for (kind, options) in KINDS {
        let name = format!("m-{kind}");
        if *kind == "failed-create" {
            // Every instance read fails from the launch on (and so does terminating): the
            // create fails after its launch and the fork saves what the driver reported.
            b.refuse_instance_reads_and_termination();
        }
        let mut args = vec!["--gitlab-fork", "create", "-d", "ec2spot"];
        args.extend_from_slice(options);
        args.push(&name);
        let o = b.dm(&args).await;
        assert_eq!(
            o.status.success(),
            *kind != "failed-create",
            "{kind}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        b.proxy.clear();
        let config = b.store().join("machines").join(&name).join("config.json");
        std::fs::copy(&config, fixture(kind)).unwrap();
        let o = b.dm(&["--gitlab-fork", "rm", "-y", &name]).await;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}
