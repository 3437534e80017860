//! examples/iam-policy.json is the least-privilege policy ec2spot needs: it is the one
//! crates/ec2/src/tools/permissions.rs generates, lists exactly the actions ec2spot calls, lets
//! every action that creates a resource happen only with ec2spot's ownership tag in the request,
//! every action that changes or deletes one only on resources that carry it, tags be written
//! only by those creating calls, and passes only a named role to EC2; KMS for encrypted
//! volumes is a separate, optional pair of statements.
//!
//! Every integration test runs under the harness's IAM layer (`ec2spot_testkit::iam`), which
//! evaluates each of the plugin's EC2 requests against the shipped policy *with its
//! conditions*: the resources each action touches with their ARNs (the Service Authorization
//! Reference), the request's tags and its launch template's, the target's tags as moto holds
//! them, `ec2:CreateAction` for tag-on-create. Here: the whole lifecycle (on-demand,
//! single-pool spot, EC2 Fleet spot with on-demand fallback, TLS bootstrap, labels,
//! stop/start/restart, rm, gc --delete) is never denied, also evaluated as GovCloud and China;
//! the same policy with one condition narrowed denies, with EC2's error naming the action;
//! and doctor names a missing permission.

use std::collections::BTreeSet;
use std::process::Output;

use ec2spot_ec2::tools::permissions::{
    self, IMAGE_PERMISSIONS, IMAGE_SID_PREFIX, KMS_PERMISSIONS, OPTIONAL_SID_PREFIX, OWNERSHIP_TAG,
    PERMISSIONS, REFERENCED,
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
        .is_some_and(|s| s.starts_with(OPTIONAL_SID_PREFIX) || s.starts_with(IMAGE_SID_PREFIX))
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An EC2 refusal for lack of permission.
fn denied(text: &str) -> bool {
    text.contains("UnauthorizedOperation")
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
    let kms_and_images: BTreeSet<String> = KMS_PERMISSIONS
        .iter()
        .chain(IMAGE_PERMISSIONS)
        .map(|p| p.action.into())
        .collect();
    assert_eq!(
        actions_of(&policy(), optional),
        kms_and_images,
        "KMS and baked images only, and all of them"
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
        role.starts_with("arn:*:iam::*:role/") && !role.ends_with('*'),
        "{role}"
    );
    assert_eq!(
        strings(&pass["Condition"]["StringEquals"]["iam:PassedToService"]),
        ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]
    );
    // KMS for a customer key: only for AWS resources / through EC2, on one key.
    let grant = by_sid(&format!("{OPTIONAL_SID_PREFIX}Grant"));
    assert_eq!(
        grant["Condition"]["Bool"]["kms:GrantIsForAWSResource"],
        "true"
    );
    let kms_use = by_sid(&format!("{OPTIONAL_SID_PREFIX}Use"));
    assert_eq!(
        strings(&kms_use["Condition"]["StringLike"]["kms:ViaService"]),
        ["ec2.*.amazonaws.com", "ec2.*.amazonaws.com.cn"]
    );
    for s in [&grant, &kms_use] {
        assert!(!s["Resource"].as_str().unwrap().ends_with("/*"), "one key");
    }
}

/// The requests the IAM layer refused so far, as `action on resource` (the message's words).
fn refusals(b: &Bastion) -> Vec<String> {
    b.proxy
        .answered_by("iam")
        .iter()
        .map(|r| {
            let ids: Vec<String> = r
                .params
                .iter()
                .filter(|(k, _)| k.ends_with("Id.1") || k == "KeyName" || k == "GroupId")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {}", r.action, ids.join(" "))
        })
        .collect()
}

/// `docker-machine` as GitLab's fork (`--gitlab-fork`), which must succeed.
async fn fork_ok(b: &Bastion, args: &[&str]) -> String {
    let mut all = vec!["--gitlab-fork"];
    all.extend_from_slice(args);
    let o = b.dm_env(&all, b.env()).await;
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

/// What EC2 answers when no pool of an instant fleet had capacity (as in `spot.rs`).
fn no_capacity(r: &ec2spot_testkit::ec2_proxy::Request) -> (u16, String) {
    let lt = r
        .param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId")
        .unwrap_or("lt-0");
    let mut items = String::new();
    for m in 1.. {
        let Some(t) = r.param(&format!(
            "LaunchTemplateConfigs.1.Overrides.{m}.InstanceType"
        )) else {
            break;
        };
        let s = r
            .param(&format!("LaunchTemplateConfigs.1.Overrides.{m}.SubnetId"))
            .unwrap_or_default();
        items.push_str(&format!(
            "<item><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>{lt}</launchTemplateId><version>1</version></launchTemplateSpecification><overrides><instanceType>{t}</instanceType><subnetId>{s}</subnetId></overrides></launchTemplateAndOverrides><lifecycle>spot</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>There is no Spot capacity available that matches your request.</errorMessage></item>"
        ));
    }
    (
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>5b2a9c4e-0000-0000-0000-000000000000</requestId><fleetId>fleet-0f1e2d3c-0000-0000-0000-000000000000</fleetId><errorSet>{items}</errorSet><fleetInstanceSet/></CreateFleetResponse>"
        ),
    )
}

/// Every request of the plugin was judged (none signed by the harness slipped into the count),
/// and the layer refused none.
fn assert_never_denied(b: &Bastion, what: &str) {
    let judged = b
        .proxy
        .requests()
        .iter()
        .filter(|r| r.access_key_id() != Some(ec2spot_testkit::moto::HARNESS_ACCESS_KEY))
        .count();
    assert!(
        judged > 0,
        "{what}: the plugin made no request the layer judged"
    );
    assert_eq!(
        refusals(b),
        Vec::<String>::new(),
        "{what}: denied under the shipped policy"
    );
}

/// On-demand: create, status, stop, start, restart; GitLab's fork: TLS bootstrap and labels
/// (`update-labels`, the runner's heartbeat); then rm — under only the shipped policy with its
/// conditions evaluated, agent on: no request denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_tls_and_labels_under_the_shipped_policy_are_never_denied() {
    let b = Bastion::start().await;
    for args in [
        &["create", "-d", "ec2spot", "od1"][..],
        &["status", "od1"],
        &["stop", "od1"],
        &["start", "od1"],
        &["restart", "od1"],
    ] {
        b.dm_ok(args).await;
    }
    fork_ok(
        &b,
        &[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-tls-bootstrap",
            "tls1",
        ],
    )
    .await;
    fork_ok(
        &b,
        &[
            "update-labels",
            "--label",
            "runner_manager_heartbeat=1700000000",
            "--label",
            "team=ci",
            "tls1",
        ],
    )
    .await;
    assert!(
        b.proxy.count("CreateTags") >= 1,
        "labels went through CreateTags"
    );
    for m in ["od1", "tls1"] {
        println!("{}", b.dm_ok(&["rm", "-y", m]).await);
    }
    assert_never_denied(&b, "on-demand, TLS bootstrap, labels");
    // What is left is not the layer's business (a group kept "in use" is issue 21's rm).
    println!("left: {:?}", b.leftovers().await);
}

/// Spot: one pool (RunInstances with spot market options), EC2 Fleet over several pools, and
/// an EC2 Fleet that finds no spot capacity and falls back to on-demand (its second fleet
/// request, with the same launch template); then rm of each — never denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_and_ec2_fleet_under_the_shipped_policy_are_never_denied() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "sp1",
    ])
    .await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-instance-type",
        "m5.large,c5.large",
        "--amazonec2-zone",
        "a,b",
        "--amazonec2-use-private-address",
        "--amazonec2-tags",
        "team,ci",
        "fl1",
    ])
    .await;
    // The spot fleet finds no capacity (answered before the layers, as a fault); the
    // on-demand fallback's fleet is judged.
    b.proxy.respond_after("CreateFleet", 0, 1, no_capacity);
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-spot-fallback-on-demand",
        "--amazonec2-instance-type",
        "c5.large,m5.large",
        "--amazonec2-zone",
        "a,b",
        "--amazonec2-use-private-address",
        "fb1",
    ])
    .await;
    assert!(
        b.proxy.count("CreateFleet") >= 3,
        "two fleets and a fallback"
    );
    for m in ["sp1", "fl1", "fb1"] {
        println!("{}", b.dm_ok(&["rm", "-y", m]).await);
    }
    assert_never_denied(&b, "spot, EC2 Fleet, fallback");
    println!("left: {:?}", b.leftovers().await);
}

/// `gc --delete` of what a wiped store left behind (a spot machine and an on-demand one) —
/// never denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_delete_under_the_shipped_policy_is_never_denied() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "lost1",
    ])
    .await;
    b.dm_ok(&["create", "-d", "ec2spot", "lost2"]).await;
    for m in ["lost1", "lost2"] {
        std::fs::remove_dir_all(b.store().join("machines").join(m)).unwrap();
    }
    let store = b.store().to_string_lossy().into_owned();
    let o = b.cli(&["gc", "--store", &store, "--delete"], &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(b.proxy.count("TerminateInstances") >= 1, "{}", text(&o));
    assert_never_denied(&b, "gc --delete");
    assert_eq!(b.leftovers().await, Vec::<String>::new(), "{}", text(&o));
}

/// The same calls evaluated as made in GovCloud (`aws-us-gov`, us-gov-west-1) and China
/// (`aws-cn`, cn-north-1): the policy's ARNs name no partition, so no request is denied there
/// either. (moto serves one partition; the layer builds each request's ARNs and context in the
/// other.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_policy_works_in_every_partition() {
    let b = Bastion::start().await;
    let mut layers = Vec::new();
    for (partition, region) in [("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")] {
        let layer = ec2spot_testkit::iam::IamLayer::in_partition(
            permissions::policy(),
            &b.moto.url,
            partition,
            region,
        );
        b.proxy.add_layer(layer.clone());
        layers.push((partition, layer));
    }
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "p1",
    ])
    .await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-instance-type",
        "m5.large,c5.large",
        "--amazonec2-use-private-address",
        "p2",
    ])
    .await;
    b.dm_ok(&["stop", "p2"]).await;
    for m in ["p1", "p2"] {
        println!("{}", b.dm_ok(&["rm", "-y", m]).await);
    }
    for (partition, layer) in &layers {
        assert!(
            layer.denials().is_empty(),
            "{partition}: {:?}",
            layer.denials()
        );
    }
    assert_never_denied(&b, "GovCloud and China");
}

/// The shipped policy with one condition narrowed: `Ec2spotTagOnlyWhenCreating` without
/// `RunInstances` in its `ec2:CreateAction` list. An on-demand create tags its instance,
/// volume and network interface at launch, which EC2 authorises as `ec2:CreateTags` with
/// `ec2:CreateAction` = `RunInstances`: refused, and docker-machine's error says
/// `UnauthorizedOperation` and names the action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_with_one_condition_narrowed_denies_naming_the_action() {
    let b = Bastion::start().await;
    let mut narrowed = permissions::policy();
    for s in narrowed["Statement"].as_array_mut().unwrap() {
        if s["Sid"] == "Ec2spotTagOnlyWhenCreating" {
            let list = s["Condition"]["StringEquals"]["ec2:CreateAction"]
                .as_array_mut()
                .unwrap();
            list.retain(|a| a != "RunInstances");
        }
    }
    let layer = ec2spot_testkit::iam::IamLayer::with_policy(narrowed, &b.moto.url);
    b.proxy.add_layer(layer.clone());
    let o = b.dm(&["create", "-d", "ec2spot", "n1"]).await;
    println!("{}", text(&o));
    assert!(!o.status.success(), "{}", text(&o));
    let denials = layer.denials();
    assert!(!denials.is_empty());
    assert_eq!(denials[0].action, "ec2:CreateTags", "{denials:?}");
    assert!(
        denials[0]
            .resource
            .starts_with("arn:aws:ec2:us-east-1:123456789012:"),
        "{denials:?}"
    );
    assert!(denied(&text(&o)), "{}", text(&o));
    assert!(text(&o).contains("RunInstances"), "{}", text(&o));
    assert!(
        text(&o).contains("is not authorized to perform: ec2:CreateTags on resource: arn:aws:ec2:us-east-1:123456789012:"),
        "{}",
        text(&o)
    );
    assert!(
        b.proxy
            .answered_by("iam")
            .iter()
            .all(|r| r.action == "RunInstances")
    );
    // The shipped policy itself allows the same create.
    let shipped_only = Bastion::start().await;
    shipped_only.dm_ok(&["create", "-d", "ec2spot", "n2"]).await;
    shipped_only.dm_ok(&["rm", "-y", "n2"]).await;
    assert_never_denied(&shipped_only, "the shipped policy");
}

/// doctor checks each permission by EC2 `DryRun`, which IAM authorises as the call itself:
/// with the shipped policy nothing fails; without `ec2:RunInstances` doctor names it, and a
/// create fails naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_missing_permission() {
    let b = Bastion::start().await;
    let doc = b
        .cli(&["doctor", "--amazonec2-request-spot-instance"], &[])
        .await;
    println!("doctor, shipped policy:\n{}", text(&doc));
    assert!(doc.status.success(), "{}", text(&doc));
    assert!(!text(&doc).contains("[FAIL]"), "{}", text(&doc));
    assert_never_denied(&b, "doctor");

    let mut without_run = permissions::policy();
    for s in without_run["Statement"].as_array_mut().unwrap() {
        s["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a != "ec2:RunInstances");
    }
    b.proxy
        .add_layer(ec2spot_testkit::iam::IamLayer::with_policy(
            without_run,
            &b.moto.url,
        ));
    let doc = b
        .cli(&["doctor", "--amazonec2-request-spot-instance"], &[])
        .await;
    println!("doctor, no RunInstances:\n{}", text(&doc));
    assert_eq!(doc.status.code(), Some(1), "{}", text(&doc));
    assert!(
        text(&doc).contains("[FAIL] permission ec2:RunInstances: denied"),
        "{}",
        text(&doc)
    );
    let o = b
        .dm(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-request-spot-instance",
            "m2",
        ])
        .await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("RunInstances") && denied(&text(&o)),
        "{}",
        text(&o)
    );
}

/// An EC2 client through the proxy signed as the plugin is (`testing`): judged by the layer.
fn judged_client(b: &Bastion) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .endpoint_url(&b.proxy.url)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// The spot request of `machine`'s instance.
async fn spot_request_of(b: &Bastion, machine: &str) -> String {
    let id = b.driver(machine)["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = b
        .ec2_proxied()
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .spot_instance_request_id()
        .expect("a spot instance names its request")
        .to_string()
}

/// Why the policy keeps `ec2:ResourceTag/ec2spot:machine-id` on `CancelSpotInstanceRequests`
/// and `rm` must not cancel an instant fleet's requests: the request a single-pool spot launch
/// makes carries the launch's tags and may be cancelled; the one an instant EC2 Fleet makes
/// carries none, and cancelling it is refused with EC2's error naming action and resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_spot_requests_ec2spot_tagged_may_be_cancelled() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "one",
    ])
    .await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-instance-type",
        "m5.large,c5.large",
        "--amazonec2-use-private-address",
        "fleet",
    ])
    .await;
    assert_never_denied(&b, "the creates");
    let (tagged, untagged) = (
        spot_request_of(&b, "one").await,
        spot_request_of(&b, "fleet").await,
    );
    let ec2 = judged_client(&b);
    let e = ec2
        .cancel_spot_instance_requests()
        .spot_instance_request_ids(&untagged)
        .send()
        .await
        .expect_err("an untagged request");
    let e = format!("{:?}", aws_sdk_ec2::error::DisplayErrorContext(&e));
    assert!(denied(&e), "{e}");
    assert!(
        e.contains(&format!(
            "is not authorized to perform: ec2:CancelSpotInstanceRequests on resource: \
             arn:aws:ec2:us-east-1:123456789012:spot-instances-request/{untagged}"
        )),
        "{e}"
    );
    ec2.cancel_spot_instance_requests()
        .spot_instance_request_ids(&tagged)
        .send()
        .await
        .expect("the launch's own request carries ec2spot's tag");
    assert_eq!(b.proxy.answered_by("iam").len(), 1);
    for m in ["one", "fleet"] {
        b.dm_ok(&["rm", "-y", m]).await;
    }
}
