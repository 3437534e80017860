//! examples/iam-policy.json is the least-privilege policy ec2spot needs: it is the one
//! crates/ec2/src/tools/permissions.rs generates, lists exactly the actions ec2spot calls, lets
//! every action that creates a resource happen only with ec2spot's ownership tag in the request,
//! every action that changes or deletes one only on resources that carry it, tags be written
//! only by those creating calls, and passes only a named role to EC2; KMS for encrypted
//! volumes is a separate, optional pair of statements. A full create / rm works against moto
//! with IAM enforcement on and only that policy, and removing one permission breaks the
//! command that needs it — with an error naming the action — while `doctor` names it first.
//!
//! What moto checks (measured by `what_moto_enforces_of_a_policy` below, moto 5.2.5): the
//! caller and the Action of each statement. It authorises every EC2 call against the
//! resource `*` (its EC2 responses name no resource), so a statement scoped to instance or
//! volume ARNs never applies there; and it evaluates no Condition of an EC2 call (it only
//! evaluates `StringEquals` and only with values a service hands it, which EC2 never does).
//! So the moto runs use the policy with each statement's Resource widened to `*` — same
//! statements, same actions, same conditions — and the resource scoping and the conditions
//! are checked here at the JSON level; in EC2 itself they stay unproven without an account.

use std::collections::BTreeSet;
use std::process::Output;

use ec2spot_ec2::tools::permissions::{
    self, KMS_PERMISSIONS, OPTIONAL_SID_PREFIX, OWNERSHIP_TAG, PERMISSIONS, REFERENCED,
};
use ec2spot_testkit::bastion::Bastion;

const POLICY_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/iam-policy.json");

fn policy() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(POLICY_PATH).unwrap()).expect("the policy is JSON")
}

fn statements(policy: &serde_json::Value) -> Vec<serde_json::Value> {
    policy["Statement"].as_array().unwrap().clone()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().into()).collect(),
        other => panic!("not a string or list: {other}"),
    }
}

fn optional(statement: &serde_json::Value) -> bool {
    statement["Sid"]
        .as_str()
        .is_some_and(|s| s.starts_with(OPTIONAL_SID_PREFIX))
}

/// The actions of the statements `which` selects.
fn actions_of(
    policy: &serde_json::Value,
    which: impl Fn(&serde_json::Value) -> bool,
) -> BTreeSet<String> {
    statements(policy)
        .iter()
        .filter(|s| which(s))
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}

/// The policy as moto can apply it: each statement's Resource widened to `*` (moto checks
/// EC2 calls against the resource `*` only); actions and conditions unchanged.
fn for_moto(mut p: serde_json::Value) -> String {
    for s in p["Statement"].as_array_mut().unwrap() {
        s["Resource"] = "*".into();
    }
    p.to_string()
}

/// The policy without `action`, as moto can apply it.
fn without(action: &str) -> String {
    let mut p = policy();
    for s in p["Statement"].as_array_mut().unwrap() {
        s["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a.as_str() != Some(action));
    }
    for_moto(p)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An EC2 refusal for lack of permission (AWS says UnauthorizedOperation, moto AccessDenied).
fn denied(text: &str) -> bool {
    ["UnauthorizedOperation", "AccessDenied"]
        .iter()
        .any(|c| text.contains(c))
}

#[test]
fn the_example_is_the_generated_policy() {
    let generated = permissions::policy();
    if std::env::var_os("EC2SPOT_WRITE_POLICY").is_some() {
        std::fs::write(POLICY_PATH, permissions::policy_json()).unwrap();
    }
    assert_eq!(policy(), generated);
    assert_eq!(
        std::fs::read_to_string(POLICY_PATH).unwrap(),
        permissions::policy_json(),
        "examples/iam-policy.json differs from ec2spot_ec2::tools::permissions::policy(); \
         EC2SPOT_WRITE_POLICY=1 cargo test --test iam the_example rewrites it"
    );
}

#[test]
fn the_policy_grants_exactly_what_ec2spot_calls() {
    let listed: BTreeSet<String> = PERMISSIONS.iter().map(|p| p.action.to_string()).collect();
    assert_eq!(actions_of(&policy(), |s| !optional(s)), listed);
    let kms: BTreeSet<String> = KMS_PERMISSIONS.iter().map(|p| p.action.into()).collect();
    assert_eq!(
        actions_of(&policy(), optional),
        kms,
        "KMS only, and all of it"
    );
    assert!(
        !actions_of(&policy(), |_| true)
            .iter()
            .any(|a| a.contains('*')),
        "no wildcards in actions"
    );
}

/// Whether `action` only reads.
fn reads(action: &str) -> bool {
    action.starts_with("ec2:Describe")
}

#[test]
fn every_statement_that_changes_something_carries_a_condition() {
    let arn_type = |arn: &str| {
        arn.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/*")
            .to_string()
    };
    let mut table = Vec::new();
    for s in statements(&policy()) {
        let sid = s["Sid"].as_str().unwrap().to_string();
        let acts = strings(&s["Action"]);
        let resources = strings(&s["Resource"]);
        let condition = s.get("Condition").cloned();
        table.push(format!(
            "{sid:<30} {:<70} {}",
            acts.join(" "),
            condition.as_ref().map_or("—".into(), |c| c.to_string())
        ));
        if acts.iter().all(|a| reads(a)) {
            assert_eq!(
                resources,
                ["*"],
                "{sid}: reads (EC2 has no resource-level Describe)"
            );
            continue;
        }
        assert!(
            !resources.iter().any(|r| r == "*") || condition.is_some(),
            "{sid}: a change allowed on any resource without a condition"
        );
        if condition.is_some() {
            continue;
        }
        // The only unconditioned changing statements: what a launch or a new group merely
        // refers to (image, subnet, groups, key pair, template, VPC), which it does not change.
        let referenced: Vec<String> = REFERENCED
            .iter()
            .map(|t| t.to_string())
            .chain(["vpc".to_string()])
            .collect();
        for r in &resources {
            assert!(
                referenced.contains(&arn_type(r)),
                "{sid}: {r} unconditioned"
            );
        }
        for a in &acts {
            assert!(
                [
                    "ec2:RunInstances",
                    "ec2:CreateFleet",
                    "ec2:CreateSecurityGroup"
                ]
                .contains(&a.as_str()),
                "{sid}: {a} unconditioned"
            );
        }
    }
    println!("{}", table.join("\n"));

    let by_sid = |sid: &str| {
        statements(&policy())
            .into_iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    };
    // Creation only with the ownership tag in the request.
    let create = by_sid("Ec2spotCreateOnlyTagged");
    assert_eq!(
        create["Condition"]["Null"][format!("aws:RequestTag/{OWNERSHIP_TAG}")],
        "false"
    );
    for a in [
        "ImportKeyPair",
        "CreateSecurityGroup",
        "CreateLaunchTemplate",
        "RunInstances",
        "CreateFleet",
    ] {
        assert!(
            strings(&create["Action"]).contains(&format!("ec2:{a}")),
            "{a}"
        );
    }
    // Changes and deletions only on resources that carry it.
    let change = by_sid("Ec2spotChangeOnlyOwned");
    assert_eq!(
        change["Condition"]["Null"][format!("ec2:ResourceTag/{OWNERSHIP_TAG}")],
        "false"
    );
    for a in [
        "TerminateInstances",
        "StopInstances",
        "StartInstances",
        "RebootInstances",
        "DeleteKeyPair",
        "DeleteSecurityGroup",
        "DeleteLaunchTemplate",
        "CancelSpotInstanceRequests",
        "AuthorizeSecurityGroupIngress",
        "DeleteVolume",
    ] {
        let a = format!("ec2:{a}");
        assert!(strings(&change["Action"]).contains(&a), "{a}");
        // …and nowhere else.
        let elsewhere: Vec<String> = statements(&policy())
            .iter()
            .filter(|s| s["Sid"] != "Ec2spotChangeOnlyOwned" && strings(&s["Action"]).contains(&a))
            .map(|s| s["Sid"].to_string())
            .collect();
        assert!(elsewhere.is_empty(), "{a} also in {elsewhere:?}");
    }
    // Tags only by the creating calls.
    let tag = by_sid("Ec2spotTagOnlyWhenCreating");
    assert_eq!(strings(&tag["Action"]), ["ec2:CreateTags"]);
    assert_eq!(
        strings(&tag["Condition"]["StringEquals"]["ec2:CreateAction"]),
        strings(&create["Action"])
            .iter()
            .map(|a| a.trim_start_matches("ec2:").to_string())
            .collect::<Vec<_>>()
    );
    // A named role, to EC2 only.
    let pass = by_sid("Ec2spotPassMachineRole");
    let role = pass["Resource"].as_str().unwrap();
    assert!(
        role.starts_with("arn:aws:iam::*:role/") && !role.ends_with('*'),
        "{role}"
    );
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ec2.amazonaws.com"
    );
    // KMS for a customer key: only for AWS resources / through EC2, on one key.
    let grant = by_sid(&format!("{OPTIONAL_SID_PREFIX}Grant"));
    assert_eq!(
        grant["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
        "true"
    );
    let kms_use = by_sid(&format!("{OPTIONAL_SID_PREFIX}Use"));
    assert_eq!(
        kms_use["Condition"]["StringLike"]["kms:ViaService"],
        "ec2.*.amazonaws.com"
    );
    for s in [&grant, &kms_use] {
        assert!(!s["Resource"].as_str().unwrap().ends_with("/*"), "one key");
    }
}

/// An EC2 client for moto with `creds` (access key id, secret).
fn client_as(b: &Bastion, (id, secret): &(String, String)) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .endpoint_url(&b.moto.url)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            id.as_str(),
            secret.as_str(),
            None,
            None,
            "test",
        ))
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// What moto 5.2.5 enforces of a policy on EC2 calls, each observed: the Action (yes), a
/// Resource narrower than `*` (the statement never applies), a Condition that cannot hold
/// (ignored: `StringEquals` on a key EC2 calls never carry, `Null` on a tag the resource
/// lacks, `Bool`, `StringLike`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_moto_enforces_of_a_policy() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    // An untagged instance: fails every ownership-tag condition.
    let run = ec2
        .run_instances()
        .image_id("ami-0e86e20dae9224db8")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let id = run.instances()[0].instance_id().unwrap().to_string();
    let statement = |action: &str, resource: &str, condition: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["ec2:{action}"],"Resource":"{resource}"{condition}}}]}}"#
        )
    };
    let tag_null =
        format!(r#","Condition":{{"Null":{{"ec2:ResourceTag/{OWNERSHIP_TAG}":"false"}}}}"#);
    let region = r#","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}"#;
    let bool_false = r#","Condition":{"Bool":{"aws:SecureTransport":"true"}}"#;
    let users = [
        ("action-only", statement("DescribeVpcs", "*", "")),
        ("other-action", statement("DescribeSubnets", "*", "")),
        (
            "scoped-resource",
            statement("DescribeVpcs", "arn:aws:ec2:*:*:vpc/*", ""),
        ),
        ("string-equals", statement("DescribeVpcs", "*", region)),
        ("bool", statement("DescribeVpcs", "*", bool_false)),
        ("null-tag", statement("StopInstances", "*", &tag_null)),
    ]
    .map(|(name, p)| (name, b.moto.iam_user(name, &p)));
    b.moto.enforce_iam(true);
    let mut seen = Vec::new();
    for (name, creds) in &users {
        let c = client_as(&b, creds);
        let r = if *name == "null-tag" {
            c.stop_instances()
                .instance_ids(&id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        } else {
            c.describe_vpcs()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        };
        let allowed = match r {
            Ok(()) => true,
            Err(e) if denied(&e) => false,
            Err(e) => panic!("{name}: {e}"),
        };
        seen.push((*name, allowed));
    }
    b.moto.enforce_iam(false);
    println!("moto allowed: {seen:?}");
    assert_eq!(
        seen,
        [
            ("action-only", true),      // the Action is checked…
            ("other-action", false),    // …and only it grants
            ("scoped-resource", false), // a resource ARN never matches moto's `*`
            ("string-equals", true),    // a condition that cannot hold is not evaluated
            ("bool", true),
            ("null-tag", true), // the instance has no ec2spot tag, moto stops it anyway
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_rm_work_with_only_the_policy_and_one_missing_permission_breaks_them() {
    let b = Bastion::start().await;
    let full = b.moto.iam_user("runner", &for_moto(policy()));
    let no_run = b
        .moto
        .iam_user("runner-no-run", &without("ec2:RunInstances"));
    let no_term = b
        .moto
        .iam_user("runner-no-terminate", &without("ec2:TerminateInstances"));
    b.moto.enforce_iam(true);
    let env_of = |(id, secret): &(String, String)| {
        let mut env = b.env();
        env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && k != "AWS_SECRET_ACCESS_KEY");
        env.push(("AWS_ACCESS_KEY_ID".into(), id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), secret.clone()));
        env
    };
    let cli = |creds: &(String, String), args: &'static [&'static str]| {
        let (id, secret) = creds.clone();
        let b = &b;
        async move {
            b.cli(
                args,
                &[
                    ("AWS_ACCESS_KEY_ID", id.as_str()),
                    ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
                ],
            )
            .await
        }
    };

    // Enforcement is real: unknown credentials are refused.
    let refused = b.dm(&["create", "-d", "ec2spot", "nobody"]).await;
    assert!(!refused.status.success(), "{}", text(&refused));

    // doctor with the policy: no problem.
    let doc = cli(&full, &["doctor", "--amazonec2-request-spot-instance"]).await;
    println!("doctor, full policy:\n{}", text(&doc));
    assert!(doc.status.success(), "{}", text(&doc));
    assert!(!text(&doc).contains("[FAIL]"), "{}", text(&doc));

    // Full on-demand lifecycle with only the policy (spot: m3 below).
    for args in [
        &["create", "-d", "ec2spot", "m1"][..],
        &["status", "m1"],
        &["stop", "m1"],
        &["start", "m1"],
        &["restart", "m1"],
        &["rm", "-y", "m1"],
    ] {
        let o = b.dm_env(args, env_of(&full)).await;
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }

    // Without ec2:RunInstances: doctor names it, create fails naming it, nothing is left.
    let doc = cli(&no_run, &["doctor", "--amazonec2-request-spot-instance"]).await;
    println!("doctor, no RunInstances:\n{}", text(&doc));
    assert_eq!(doc.status.code(), Some(1), "{}", text(&doc));
    assert!(
        text(&doc).contains("[FAIL] permission ec2:RunInstances: denied"),
        "{}",
        text(&doc)
    );
    let o = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-request-spot-instance",
                "m2",
            ],
            env_of(&no_run),
        )
        .await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("RunInstances") && denied(&text(&o)),
        "{}",
        text(&o)
    );

    // Without ec2:TerminateInstances: create works, rm fails naming it and keeps the machine;
    // once an admin grants the permission, rm removes it. (The keys, given through
    // AWS_ACCESS_KEY_ID, are the machine's: docker-machine maps that variable to
    // --amazonec2-access-key, which amazonec2 and ec2spot store.)
    let o = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-request-spot-instance",
                "m3",
            ],
            env_of(&no_term),
        )
        .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = b.dm_env(&["rm", "-y", "m3"], env_of(&no_term)).await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("TerminateInstances") && denied(&text(&o)),
        "{}",
        text(&o)
    );
    b.moto.enforce_iam(false);
    b.moto.iam_attach(
        "runner-no-terminate",
        "terminate",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:TerminateInstances"],"Resource":"*"}]}"#,
    );
    b.moto.enforce_iam(true);
    let o = b.dm_env(&["rm", "-y", "m3"], env_of(&no_term)).await;
    assert!(o.status.success(), "{}", text(&o));

    b.moto.enforce_iam(false);
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}
