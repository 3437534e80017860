//! examples/iam-policy.json is the least-privilege policy ec2spot needs: it lists exactly the
//! actions ec2spot calls (src/ec2/permissions.rs), a full create / rm works against moto with
//! IAM enforcement on and only that policy attached, and removing one permission breaks the
//! command that needs it — with an error naming the action — while `doctor` names it first.

mod support;

use std::collections::BTreeSet;
use std::process::Output;

use ec2spot::ec2::permissions::PERMISSIONS;
use support::bastion::Bastion;

fn policy() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/iam-policy.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("the policy is JSON")
}

fn actions(policy: &serde_json::Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The policy without `action`.
fn without(action: &str) -> String {
    let mut p = policy();
    for s in p["Statement"].as_array_mut().unwrap() {
        s["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a.as_str() != Some(action));
    }
    p.to_string()
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
fn the_policy_grants_exactly_what_ec2spot_calls() {
    let listed: BTreeSet<String> = PERMISSIONS.iter().map(|p| p.action.to_string()).collect();
    assert_eq!(actions(&policy()), listed);
    assert!(
        !actions(&policy()).iter().any(|a| a.contains('*')),
        "no wildcards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_rm_work_with_only_the_policy_and_one_missing_permission_breaks_them() {
    let b = Bastion::start().await;
    let full = b.moto.iam_user("runner", &policy().to_string());
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
