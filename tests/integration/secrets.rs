//! Secrets stay secret: the access key, secret key and session token never appear in
//! docker-machine's output (also with --debug and trace logging), the agent's log, error
//! messages, or the `Debug` output of any type that carries them (config, option values, the
//! agent's messages and settings); machine private keys are 0600; the plugin listens on
//! 127.0.0.1 only.

use std::os::unix::fs::PermissionsExt;

use ec2spot_testkit::bastion::Bastion;

const ACCESS: &str = "EXAMPLEACCESSKEY7Q4Z";
const SECRET: &str = "ExampleSecretKey/Zq9wX8rT7yU6iO5pA4sD3fG2hJ1kL0";
const TOKEN: &str = "ExampleSessionTokenFwoGZXIvYXdzEBYaDHhq4ZRi";

fn env(b: &Bastion) -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = b
        .env()
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET") && k != "EC2SPOT_LOG"
        })
        .collect();
    e.push(("EC2SPOT_LOG".into(), "trace".into()));
    e.push(("MACHINE_DEBUG".into(), "1".into()));
    e
}

fn assert_clean(what: &str, text: &str) {
    for s in [ACCESS, SECRET, TOKEN] {
        assert!(!text.contains(s), "{what} shows a secret ({}…)", &s[..8]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_output_logs_or_errors() {
    let b = Bastion::start().await;
    let creds = [
        "--amazonec2-access-key",
        ACCESS,
        "--amazonec2-secret-key",
        SECRET,
        "--amazonec2-session-token",
        TOKEN,
    ];
    let mut all = String::new();
    let mut run = |o: std::process::Output| {
        all.push_str(&String::from_utf8_lossy(&o.stdout));
        all.push_str(&String::from_utf8_lossy(&o.stderr));
        o
    };
    let mut args = vec![
        "--debug",
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
    ];
    args.extend(creds);
    args.push("sec1");
    let o = run(b.dm_env(&args, env(&b)).await);
    assert!(o.status.success());
    for cmd in [
        &["--debug", "status", "sec1"][..],
        &["--debug", "url", "sec1"],
        &["--debug", "ip", "sec1"],
        &["--debug", "stop", "sec1"],
    ] {
        run(b.dm_env(cmd, env(&b)).await);
    }
    // Errors from AWS: a throttled, a refused and a failed call.
    b.proxy.fail("DescribeInstances", 403, "AuthFailure", 50);
    run(b.dm_env(&["--debug", "status", "sec1"], env(&b)).await);
    b.proxy.clear();
    let mut bad = vec!["--debug", "create", "-d", "ec2spot"];
    bad.extend(creds);
    bad.extend(["--amazonec2-instance-type", "t9.huge", "sec2"]);
    run(b.dm_env(&bad, env(&b)).await);
    run(b.dm_env(&["--debug", "rm", "-y", "sec1"], env(&b)).await);
    assert!(all.contains("DBG |"), "debug output was on");
    assert_clean(
        "docker-machine's output with --debug and EC2SPOT_LOG=trace",
        &all,
    );
    let log = std::fs::read_to_string(ec2spot_agent::paths::log(b.store())).unwrap();
    assert!(!log.is_empty());
    assert_clean("the agent's log", &log);
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[test]
fn debug_output_of_every_type_that_carries_credentials_hides_them() {
    use ec2spot_agent::proto::{
        ClientSettings, Credentials, RunEvent, RunRequest, RunResult, TlsBootstrap, run_event,
    };
    use ec2spot_ec2::options::config::Config;
    use ec2spot_ec2::options::flags::name::{ACCESS_KEY, SECRET_KEY, SESSION_TOKEN};
    use ec2spot_ec2::options::values::OptionValue;
    use ec2spot_plugin::FlagValue;

    let mut shown: Vec<(&str, String)> = Vec::new();
    let mut show = |what: &'static str, plain: String, pretty: String| {
        shown.push((what, plain));
        shown.push((what, pretty));
    };

    // The driver config, set by the options and read back from a config.json.
    let mut config = Config::default();
    config.asked.machine_name = "sec-debug".into();
    config.asked.access_key = ACCESS.into();
    config.asked.secret_key = SECRET.into();
    config.asked.session_token = TOKEN.into();
    show("Config", format!("{config:?}"), format!("{config:#?}"));
    let json = config.to_json();
    assert!(
        String::from_utf8_lossy(&json).contains(SECRET),
        "the store keeps them"
    );
    config = Config::default();
    config.merge_json(&json).unwrap();
    assert_eq!(config.asked.secret_key, SECRET);
    show(
        "merged Config",
        format!("{config:?}"),
        format!("{config:#?}"),
    );

    // docker-machine's option values, as sent and as `doctor` reads them.
    let flags = ec2spot::convert::create_flags();
    let given = [
        (ACCESS_KEY, FlagValue::String(ACCESS.into())),
        (SECRET_KEY, FlagValue::String(SECRET.into())),
        (SESSION_TOKEN, FlagValue::String(TOKEN.into())),
    ];
    let values = ec2spot_testkit::plugin_client::docker_machine_values(&flags, &given);
    show("FlagValues", format!("{values:?}"), format!("{values:#?}"));
    let args: Vec<String> = [
        "--amazonec2-access-key",
        ACCESS,
        "--amazonec2-secret-key",
        SECRET,
        "--amazonec2-session-token",
        TOKEN,
    ]
    .map(String::from)
    .to_vec();
    let parsed = ec2spot_ec2::tools::doctor::parse_args(&args).unwrap();
    show(
        "doctor's FlagValues",
        format!("{parsed:?}"),
        format!("{parsed:#?}"),
    );
    // A credential of the wrong type: the error does not echo it.
    let mut wrong = ec2spot::convert::option_values(&values);
    wrong.insert(SECRET_KEY, OptionValue::StringSlice(vec![SECRET.into()]));
    show("OptionValues", format!("{wrong:?}"), format!("{wrong:#?}"));
    let e = wrong.string(SECRET_KEY).unwrap_err();
    show("OptionTypeError", e.to_string(), format!("{e:?}"));
    let e = ec2spot_ec2::options::apply(&mut Default::default(), &wrong).unwrap_err();
    show("OptionError", e.to_string(), format!("{e:?}"));

    // The agent's messages and settings.
    let creds = Credentials {
        access_key_id: ACCESS.into(),
        secret_access_key: SECRET.into(),
        session_token: TOKEN.into(),
        expires_unix: 0,
    };
    show("Credentials", format!("{creds:?}"), format!("{creds:#?}"));
    let request = RunRequest {
        operation: 2,
        config_json: json.clone(),
        credentials: Some(creds),
        settings: Some(ClientSettings {
            endpoint_url: "http://127.0.0.1:9".into(),
            proxy_url: format!("http://proxyuser:{SECRET}@proxy.internal:3128"),
            ..ClientSettings::default()
        }),
        tls_bootstrap: Some(TlsBootstrap {
            server_key: SECRET.as_bytes().to_vec(),
            ..TlsBootstrap::default()
        }),
        ..RunRequest::default()
    };
    show(
        "RunRequest",
        format!("{request:?}"),
        format!("{request:#?}"),
    );
    let result = RunResult {
        config_json: json,
        ..RunResult::default()
    };
    let event = RunEvent {
        event: Some(run_event::Event::Result(result.clone())),
    };
    show("RunResult", format!("{result:?}"), format!("{event:#?}"));
    let settings = ec2spot_agent::server::Settings::new("/tmp/store".into());
    show(
        "Settings",
        format!("{settings:?}"),
        format!("{settings:#?}"),
    );

    for (what, text) in &shown {
        assert_clean(&format!("{what}'s Debug/Display output"), text);
    }
    // Not vacuous: the outputs say what they hide and still show the rest.
    let all: String = shown.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("<redacted>") && all.contains("sec-debug") && all.contains("127.0.0.1:9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_are_0600_and_the_plugin_listens_on_loopback_only() {
    let b = Bastion::start().await;
    b.dm_ok(&["create", "-d", "ec2spot", "k1"]).await;
    let key = b.store().join("machines/k1/id_rsa");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let p = b.plugin().await;
    assert!(p.address.starts_with("127.0.0.1:"), "{}", p.address);
    let port: u16 = p.address.rsplit(':').next().unwrap().parse().unwrap();
    // The kernel's view: the listening socket is bound to 127.0.0.1, not 0.0.0.0.
    let tcp = std::fs::read_to_string(format!("/proc/{}/net/tcp", p.pid().unwrap())).unwrap();
    let listening: Vec<&str> = tcp
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
        .collect();
    let local = format!(":{port:04X}");
    let ours: Vec<&&str> = listening
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&local))
        })
        .collect();
    assert_eq!(ours.len(), 1, "{listening:?}");
    assert!(
        ours[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .starts_with("0100007F:"),
        "bound to 127.0.0.1: {}",
        ours[0]
    );
    p.close().await;
    b.dm_ok(&["rm", "-y", "k1"]).await;
}
