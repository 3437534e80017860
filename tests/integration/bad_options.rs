//! Every option given a wrong value — of the wrong type, out of range, malformed, or in a bad
//! combination — is refused by SetConfigFromFlags with one line naming the option, before any
//! AWS call.

use ec2spot_ec2::options::flags::{FLAGS, Kind};
use ec2spot_plugin::FlagValue;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::plugin_client::{create_skeleton, docker_machine_values};

fn s(v: &str) -> FlagValue {
    FlagValue::String(v.into())
}

/// Wrong values beyond type errors: (flag given, value, flag the error must name).
fn format_cases() -> Vec<(Vec<(&'static str, FlagValue)>, &'static str)> {
    use ec2spot_ec2::options::flags::name::*;
    vec![
        (vec![(SPOT_PRICE, s("cheap"))], SPOT_PRICE),
        (vec![(SPOT_PRICE, s("0"))], SPOT_PRICE),
        (vec![(SPOT_PRICE, s("-1"))], SPOT_PRICE),
        (vec![(ROOT_SIZE, FlagValue::Int(0))], ROOT_SIZE),
        (vec![(ROOT_SIZE, FlagValue::Int(-3))], ROOT_SIZE),
        (vec![(ROOT_SIZE, FlagValue::Int(100_000))], ROOT_SIZE),
        (vec![(TAGS, s("a,b,c"))], TAGS),
        (vec![(TAGS, s("aws:cost,1"))], TAGS),
        (vec![(TAGS, s("ec2spot:machine-id,x"))], TAGS),
        (vec![(TAGS, s(",v"))], TAGS),
        // 47 of the user's + Name + 3 ownership tags = 51 > AWS's 50 per resource.
        (vec![(TAGS, s(&too_many_tags()))], TAGS),
        (vec![(KEYPAIR_NAME, s("team"))], KEYPAIR_NAME),
        (
            vec![(INSECURE_TRANSPORT, FlagValue::Bool(true))],
            INSECURE_TRANSPORT,
        ),
        (vec![(METADATA_TOKEN, s("sometimes"))], METADATA_TOKEN),
        (
            vec![(METADATA_TOKEN_HOP_LIMIT, FlagValue::Int(0))],
            METADATA_TOKEN_HOP_LIMIT,
        ),
        (
            vec![(METADATA_TOKEN_HOP_LIMIT, FlagValue::Int(65))],
            METADATA_TOKEN_HOP_LIMIT,
        ),
        (vec![(USERDATA, s("/nonexistent/cloud-init"))], USERDATA),
        (vec![(DOCKER_VERSION, s("latest"))], DOCKER_VERSION),
        (vec![(DOCKER_VERSION, s("20.10;reboot"))], DOCKER_VERSION),
        (vec![(AMI_OS, s("plan9"))], AMI_OS),
        // An image without systemd (Alpine: OpenRC) cannot start dockerd with the drop-in.
        (
            vec![
                (AMI_OS, s("alpine")),
                (TLS_BOOTSTRAP, FlagValue::Bool(true)),
            ],
            TLS_BOOTSTRAP,
        ),
        (
            vec![
                (AMI_OS, s("flatcar")),
                (TLS_BOOTSTRAP, FlagValue::Bool(true)),
            ],
            TLS_BOOTSTRAP,
        ),
        (vec![(USERDATA, s("/"))], USERDATA),
        (
            vec![(BLOCK_DURATION_MINUTES, FlagValue::Int(60))],
            BLOCK_DURATION_MINUTES,
        ),
        (vec![(REGION, s("Mars"))], REGION),
        (vec![(REGION, s(""))], REGION),
        (vec![(REGION, s("us-east"))], REGION),
        (vec![(REGION, s("us-east-1a"))], REGION),
        (vec![(AMI, s("ubuntu"))], AMI),
        (vec![(SUBNET_ID, s("sub-1"))], SUBNET_ID),
        (vec![(SUBNET_ID, s("subnet-0a,sg-1"))], SUBNET_ID),
        (vec![(VPC_ID, s("vpc-zz"))], VPC_ID),
        (vec![(ZONE, s("eu-west-1a"))], ZONE),
        (vec![(ZONE, s("a,!"))], ZONE),
        (vec![(INSTANCE_TYPE, s("large"))], INSTANCE_TYPE),
        (vec![(INSTANCE_TYPE, s(""))], INSTANCE_TYPE),
        (vec![(VOLUME_TYPE, s("ssd"))], VOLUME_TYPE),
        (vec![(DEVICE_NAME, s("sda1"))], DEVICE_NAME),
        (vec![(SSH_PORT, FlagValue::Int(0))], SSH_PORT),
        (vec![(SSH_PORT, FlagValue::Int(70_000))], SSH_PORT),
        (vec![(SSH_USER, s("two words"))], SSH_USER),
        (
            vec![(OPEN_PORT, FlagValue::StringSlice(vec!["http".into()]))],
            OPEN_PORT,
        ),
        (
            vec![(OPEN_PORT, FlagValue::StringSlice(vec!["80/sctp".into()]))],
            OPEN_PORT,
        ),
        (
            vec![(
                SECURITY_GROUP,
                FlagValue::StringSlice(vec!["tab\tname".into()]),
            )],
            SECURITY_GROUP,
        ),
        (vec![(RETRIES, FlagValue::Int(-2))], RETRIES),
        (vec![(RETRIES, FlagValue::Int(1000))], RETRIES),
        (vec![(ENDPOINT, s("ftp://x"))], ENDPOINT),
        (vec![(ENDPOINT, s("http://host:99999"))], ENDPOINT),
        (vec![(ACCESS_KEY, s("AKIDEXAMPLE"))], SECRET_KEY),
        (vec![(SECRET_KEY, s("secret"))], ACCESS_KEY),
        (vec![(SESSION_TOKEN, s("token"))], SESSION_TOKEN),
        (vec![(SSH_KEYPATH, s("/nonexistent/key"))], SSH_KEYPATH),
        (vec![(SSH_KEYPATH, s("/etc/hostname"))], SSH_KEYPATH), // no .pub next to it
        (
            vec![(SPOT_ALLOCATION_STRATEGY, s("cheapest"))],
            SPOT_ALLOCATION_STRATEGY,
        ),
        (
            vec![(
                VOLUME_KMS_KEY,
                FlagValue::StringSlice(vec!["a".into(), "b".into()]),
            )],
            VOLUME_KMS_KEY,
        ),
    ]
}

/// 47 `k,v` pairs: one more than fits beside ec2spot's own tags.
fn too_many_tags() -> String {
    (0..47)
        .map(|i| format!("team{i},ci"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A value of the wrong type for every flag.
fn type_cases() -> Vec<(Vec<(&'static str, FlagValue)>, &'static str)> {
    FLAGS
        .iter()
        .map(|f| {
            let wrong = match f.kind {
                Kind::String(_) => FlagValue::StringSlice(vec!["a".into(), "b".into()]),
                Kind::Int(_) => s("twelve"),
                Kind::Bool => s("maybe"),
                Kind::StringSlice(_) => FlagValue::Int(3),
            };
            (vec![(f.name, wrong)], f.name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_option_refuses_wrong_values_naming_itself_before_any_aws_call() {
    let b = Bastion::start().await;
    let p = b.plugin_env(b.env_direct()).await;
    let flags = p.create_flags().await.unwrap();
    let cases: Vec<_> = type_cases().into_iter().chain(format_cases()).collect();
    let covered: std::collections::HashSet<&str> = cases.iter().map(|(_, f)| *f).collect();
    assert_eq!(covered.len(), FLAGS.len(), "every flag has a case");
    let mut table = Vec::new();
    for (given, flag) in &cases {
        p.set_config_raw(&create_skeleton("bad", b.store().to_str().unwrap()))
            .await
            .unwrap();
        let values = docker_machine_values(&flags, given);
        let err = p
            .set_config_from_flags(&values)
            .await
            .expect_err(&format!("{given:?} accepted"))
            .to_string();
        assert!(err.starts_with(&format!("--{flag}: ")), "{given:?} → {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        table.push(format!(
            "{:<48} {err}",
            format!("{:?}", given[0].1)
                .chars()
                .take(48)
                .collect::<String>()
        ));
    }
    p.close().await;
    assert_eq!(b.proxy.requests().len(), 0, "no AWS call");
    println!(
        "{} wrong values refused:\n{}",
        cases.len(),
        table.join("\n")
    );
}
