//! Spot that keeps working: several instance types × subnets through one EC2 Fleet request
//! (ranked by the instance types' order with `capacity-optimized-prioritized`), capacity
//! failures that never wait, the on-demand fallback, and interruption-aware state however the
//! instance was launched — against moto, with AWS-shaped answers from our proxy where moto
//! cannot fail, and recorded EC2 answers (tests/fixtures/ec2) where moto lacks a field.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::ec2_proxy::{Request, recorded};

async fn default_subnets(b: &Bastion, zones: &[&str]) -> Vec<String> {
    let ec2 = b.ec2().await;
    let mut out = Vec::new();
    for z in zones {
        let s = ec2
            .describe_subnets()
            .filters(
                Filter::builder()
                    .name("availability-zone")
                    .values(format!("us-east-1{z}"))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("default-for-az")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.push(s.subnets()[0].subnet_id().unwrap().to_string());
    }
    out
}

/// The (type, subnet) overrides of a recorded CreateFleet request.
fn overrides(r: &Request) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let t = r.param(&format!(
            "LaunchTemplateConfigs.1.Overrides.{n}.InstanceType"
        ));
        let s = r.param(&format!("LaunchTemplateConfigs.1.Overrides.{n}.SubnetId"));
        match (t, s) {
            (Some(t), Some(s)) => out.push((t.to_string(), s.to_string())),
            _ => break,
        }
    }
    out
}

/// What EC2 answers when no pool of an instant fleet had capacity: no instance, one error each.
fn no_capacity(r: &Request, code: &str) -> (u16, String) {
    let lt = r
        .param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId")
        .unwrap_or("lt-0");
    let lifecycle =
        if r.param("TargetCapacitySpecification.DefaultTargetCapacityType") == Some("spot") {
            "spot"
        } else {
            "on-demand"
        };
    let items: String = overrides(r)
        .iter()
        .map(|(t, s)| {
            format!(
                "<item><launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>{lt}</launchTemplateId><version>1</version></launchTemplateSpecification><overrides><instanceType>{t}</instanceType><subnetId>{s}</subnetId></overrides></launchTemplateAndOverrides><lifecycle>{lifecycle}</lifecycle><errorCode>{code}</errorCode><errorMessage>There is no Spot capacity available that matches your request.</errorMessage></item>"
            )
        })
        .collect();
    (
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>5b2a9c4e-0000-0000-0000-000000000000</requestId><fleetId>fleet-0f1e2d3c-0000-0000-0000-000000000000</fleetId><errorSet>{items}</errorSet><fleetInstanceSet/></CreateFleetResponse>"
        ),
    )
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_types_and_subnets_go_through_one_fleet_request() {
    let b = Bastion::start().await;
    let subnets = default_subnets(&b, &["a", "b", "c"]).await.join(",");
    let t = Instant::now();
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-instance-type",
        "m5.large,c5.large,m6i.large",
        "--amazonec2-subnet-id",
        &subnets,
        "--amazonec2-use-private-address",
        "--amazonec2-spot-allocation-strategy",
        "capacity-optimized",
        "--amazonec2-tags",
        "team,ci",
        "f1",
    ])
    .await;
    println!(
        "multi-pool create: {:.2}s, {} calls: {}",
        t.elapsed().as_secs_f64(),
        b.proxy.actions().len(),
        b.proxy.actions().join(", ")
    );
    let reqs = b.proxy.requests();
    assert_eq!(
        b.proxy.count("RunInstances"),
        0,
        "several pools: no RunInstances"
    );
    let fleet = reqs
        .iter()
        .find(|r| r.action == "CreateFleet")
        .expect("one CreateFleet");
    assert_eq!(fleet.param("Type"), Some("instant"));
    assert_eq!(
        fleet.param("SpotOptions.AllocationStrategy"),
        Some("capacity-optimized")
    );
    assert_eq!(
        fleet.param("TargetCapacitySpecification.TotalTargetCapacity"),
        Some("1")
    );
    assert_eq!(
        fleet.param("TargetCapacitySpecification.DefaultTargetCapacityType"),
        Some("spot")
    );
    assert!(
        fleet.params.iter().all(|(k, _)| !k.contains("MaxPrice")),
        "no max price unless asked"
    );
    let pools = overrides(fleet);
    assert_eq!(pools.len(), 9, "3 types × 3 subnets: {pools:?}");
    // The launch template carries what RunInstances would: IMDSv2, tags, image, groups.
    let lt = reqs
        .iter()
        .find(|r| r.action == "CreateLaunchTemplate")
        .unwrap();
    assert_eq!(
        lt.param("LaunchTemplateData.MetadataOptions.HttpTokens"),
        Some("required")
    );
    assert_eq!(
        lt.param("LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit"),
        Some("2")
    );
    assert_eq!(
        lt.param("TagSpecification.1.ResourceType"),
        Some("launch-template")
    );
    assert!(
        lt.params
            .iter()
            .any(|(k, v)| k.starts_with("LaunchTemplateData.TagSpecification") && v == "volume")
    );
    assert_eq!(
        b.proxy.count("DeleteLaunchTemplate"),
        1,
        "the template goes right after the fleet call"
    );

    let d = b.driver("f1");
    assert_eq!(d["Market"], "spot");
    assert!(["m5.large", "c5.large", "m6i.large"].contains(&d["InstanceType"].as_str().unwrap()));
    assert_eq!(d["InstanceTypes"].as_array().unwrap().len(), 3);
    let ec2 = b.ec2().await;
    let out = ec2
        .describe_instances()
        .instance_ids(d["InstanceId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(
        i.instance_type().unwrap().as_str(),
        d["InstanceType"].as_str().unwrap()
    );
    assert_eq!(i.subnet_id(), d["SubnetId"].as_str());
    assert!(
        i.tags().iter().any(|t| t.key() == Some("team")),
        "tags from the template"
    );
    assert!(
        b.leftovers()
            .await
            .iter()
            .all(|l| !l.starts_with("launch template"))
    );

    b.dm_ok(&["rm", "-y", "f1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_lists_make_pools_and_the_default_strategy_is_price_capacity_optimized() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-instance-type",
        "m5.large,m5a.large",
        "--amazonec2-zone",
        "a,b",
        "--amazonec2-spot-price",
        "0.08",
        "--amazonec2-use-private-address",
        "z1",
    ])
    .await;
    let fleet = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "CreateFleet")
        .unwrap();
    assert_eq!(
        fleet.param("SpotOptions.AllocationStrategy"),
        Some("price-capacity-optimized")
    );
    assert_eq!(overrides(&fleet).len(), 4);
    assert_eq!(
        fleet.param("LaunchTemplateConfigs.1.Overrides.1.MaxPrice"),
        Some("0.08"),
        "a cap only when asked"
    );
    assert!(
        priorities(&fleet).iter().all(Option::is_none),
        "priorities only for the prioritized strategy"
    );
    b.dm_ok(&["rm", "-y", "z1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The `Priority` of each override of a recorded CreateFleet request.
fn priorities(r: &Request) -> Vec<Option<f64>> {
    (1..=overrides(r).len())
        .map(|n| {
            r.param(&format!("LaunchTemplateConfigs.1.Overrides.{n}.Priority"))
                .map(|p| p.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prioritized_fleet_ranks_the_pools_in_the_order_of_the_instance_types() {
    let b = Bastion::start().await;
    // No spot capacity at first, so the on-demand fallback's fleet is seen too.
    b.proxy.respond_after("CreateFleet", 0, 1, |r| {
        no_capacity(r, "InsufficientInstanceCapacity")
    });
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-spot-fallback-on-demand",
        "--amazonec2-spot-allocation-strategy",
        "capacity-optimized-prioritized",
        "--amazonec2-instance-type",
        "c5.large,m5.large,m5a.large",
        "--amazonec2-zone",
        "a,b",
        "--amazonec2-use-private-address",
        "p1",
    ])
    .await;
    let fleets: Vec<Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "CreateFleet" && !r.refused)
        .collect();
    assert_eq!(fleets.len(), 2, "spot, then on-demand");
    assert_eq!(
        fleets[0].param("SpotOptions.AllocationStrategy"),
        Some("capacity-optimized-prioritized")
    );
    assert_eq!(
        fleets[1].param("OnDemandOptions.AllocationStrategy"),
        Some("prioritized"),
        "the fallback honours the same order"
    );
    for fleet in &fleets {
        let ranked: Vec<(String, Option<f64>)> = overrides(fleet)
            .into_iter()
            .map(|(t, _)| t)
            .zip(priorities(fleet))
            .collect();
        let want: Vec<(String, Option<f64>)> = [
            ("c5.large", 1.0),
            ("c5.large", 1.0),
            ("m5.large", 2.0),
            ("m5.large", 2.0),
            ("m5a.large", 3.0),
            ("m5a.large", 3.0),
        ]
        .iter()
        .map(|(t, p)| (t.to_string(), Some(*p)))
        .collect();
        assert_eq!(ranked, want, "first type first, every zone of a type alike");
    }
    b.dm_ok(&["rm", "-y", "p1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spot_capacity_anywhere_falls_back_to_on_demand_when_allowed() {
    let b = Bastion::start().await;
    b.proxy.respond_after("CreateFleet", 0, 1, |r| {
        no_capacity(r, "InsufficientInstanceCapacity")
    });
    let t = Instant::now();
    let out = b
        .dm(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-request-spot-instance",
            "--amazonec2-spot-fallback-on-demand",
            "--amazonec2-instance-type",
            "m5.large,c5.large",
            "--amazonec2-zone",
            "a,b",
            "--amazonec2-use-private-address",
            "fb1",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    println!(
        "fallback create: {:.2}s, {} calls: {}",
        t.elapsed().as_secs_f64(),
        b.proxy.actions().len(),
        b.proxy.actions().join(", ")
    );
    assert!(
        stdout(&out).contains("launching on-demand instead"),
        "{}",
        stdout(&out)
    );
    let fleets: Vec<Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "CreateFleet" && !r.refused)
        .collect();
    assert_eq!(fleets.len(), 2);
    assert_eq!(
        fleets[1].param("TargetCapacitySpecification.DefaultTargetCapacityType"),
        Some("on-demand")
    );
    assert_eq!(
        overrides(&fleets[1]),
        overrides(&fleets[0]),
        "the same pools"
    );
    let d = b.driver("fb1");
    assert_eq!(d["Market"], "on-demand");
    let inspect = b
        .dm_ok(&["inspect", "fb1", "-f", "{{.Driver.Market}}"])
        .await;
    assert_eq!(inspect.trim(), "on-demand");
    let ec2 = b.ec2().await;
    let i = ec2
        .describe_instances()
        .instance_ids(d["InstanceId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        i.reservations()[0].instances()[0]
            .instance_lifecycle()
            .is_none(),
        "on-demand instance"
    );
    b.dm_ok(&["rm", "-y", "fb1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());

    // One pool (RunInstances) falls back the same way.
    b.proxy.reset_log();
    b.proxy
        .fail("RunInstances", 500, "InsufficientInstanceCapacity", 1);
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "--amazonec2-spot-fallback-on-demand",
        "fb2",
    ])
    .await;
    let runs: Vec<Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "RunInstances")
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "no SDK retry of a capacity error, then on-demand"
    );
    assert_eq!(
        runs[0].param("InstanceMarketOptions.MarketType"),
        Some("spot")
    );
    assert_eq!(runs[1].param("InstanceMarketOptions.MarketType"), None);
    assert_eq!(b.driver("fb2")["Market"], "on-demand");
    b.dm_ok(&["rm", "-y", "fb2"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spot_capacity_without_fallback_fails_at_once_naming_every_pool() {
    use ec2spot_plugin::FlagValue;
    let b = Bastion::start().await;
    b.proxy.respond_after("CreateFleet", 0, 1, |r| {
        no_capacity(r, "InsufficientInstanceCapacity")
    });
    let p = b.plugin().await;
    p.set_config_raw(&ec2spot_testkit::plugin_client::create_skeleton(
        "nf1",
        b.store().to_str().unwrap(),
    ))
    .await
    .unwrap();
    let flags = p.create_flags().await.unwrap();
    let values = ec2spot_testkit::plugin_client::docker_machine_values(
        &flags,
        &[
            ("amazonec2-request-spot-instance", FlagValue::Bool(true)),
            (
                "amazonec2-instance-type",
                FlagValue::String("m5.large,c5.large".into()),
            ),
            ("amazonec2-zone", FlagValue::String("a,b".into())),
        ],
    );
    p.set_config_from_flags(&values).await.unwrap();
    p.call("PreCreateCheck").await.unwrap();
    let t = Instant::now();
    let err = p.call("Create").await.unwrap_err().to_string();
    let took = t.elapsed();
    println!("Create failed after {:.2}s: {err}", took.as_secs_f64());
    p.close().await;
    assert!(err.contains("no spot capacity in any pool"), "{err}");
    for want in [
        "m5.large in us-east-1a",
        "m5.large in us-east-1b",
        "c5.large in us-east-1a",
        "c5.large in us-east-1b",
    ] {
        assert!(err.contains(want), "{want} missing: {err}");
    }
    assert_eq!(
        err.matches("InsufficientInstanceCapacity").count(),
        4,
        "{err}"
    );
    // Nothing waited: after the fleet call only the cleanup ran.
    let actions = b.proxy.actions();
    let after = &actions[actions.iter().position(|a| a == "CreateFleet").unwrap() + 1..];
    assert!(
        after
            .iter()
            .all(|a| a != "CreateFleet" && a != "RunInstances"),
        "{after:?}"
    );
    // The template is deleted by the create (retried while the strict layer plays it unknown
    // yet), which records it, and not again by the cleanup that follows: on EC2 a second
    // deletion by id is "not found", which the cleanup would wait out.
    let cleanup = after.iter().position(|a| a == "DescribeInstances").unwrap();
    assert!(after[..cleanup].contains(&"DeleteLaunchTemplate".to_string()));
    assert!(
        !after[cleanup..].contains(&"DeleteLaunchTemplate".to_string()),
        "{after:?}"
    );
    assert!(took.as_secs_f64() < 10.0, "no waiting at all: {took:?}");
    assert_eq!(b.leftovers().await, Vec::<String>::new());

    // The same with one pool, where EC2 answers RunInstances with HTTP 500: never retried.
    b.proxy.reset_log();
    b.proxy
        .fail("RunInstances", 500, "InsufficientInstanceCapacity", 5);
    let out = b
        .dm(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-request-spot-instance",
            "nf2",
        ])
        .await;
    assert!(
        stderr(&out).contains("no spot capacity in any pool: t3.micro in us-east-1a"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.proxy.count("RunInstances"), 1);
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_types_of_different_architectures_are_refused_before_any_launch() {
    let b = Bastion::start().await;
    let out = b
        .dm(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-instance-type",
            "m5.large,m7g.large,c5.large",
            "mix",
        ])
        .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out)
            .contains("--amazonec2-instance-type: m7g.large is arm64 but m5.large is x86_64"),
        "{}",
        stderr(&out)
    );
    assert!(b.proxy.actions().iter().all(|a| a.starts_with("Describe")));
}

/// Makes the test EC2 answer, for each instance of `by_instance` and spot request of
/// `by_request`, what EC2 answers once AWS marked the request for termination (the recorded
/// answers in tests/fixtures/ec2, filled with the variables of [`as_ec2_shows`]).
pub(crate) fn answer_marked_for_termination(
    b: &Bastion,
    by_instance: HashMap<String, Vec<(&'static str, String)>>,
    by_request: HashMap<String, Vec<(&'static str, String)>>,
) {
    b.proxy
        .respond_after("DescribeInstances", 0, 1000, move |r| {
            let items: Vec<_> = asked(r, "InstanceId", "instance-id")
                .iter()
                .filter_map(|i| by_instance.get(i).cloned())
                .collect();
            let xml = recorded(
                "ec2/describe-instances-spot-running.xml",
                "reservationSet",
                &items,
            );
            (200, xml)
        });
    b.proxy
        .respond_after("DescribeSpotInstanceRequests", 0, 1000, move |r| {
            let items: Vec<_> = asked(r, "SpotInstanceRequestId", "spot-instance-request-id")
                .iter()
                .filter_map(|s| by_request.get(s).cloned())
                .collect();
            let xml = recorded(
                "ec2/describe-spot-instance-requests-marked-for-termination.xml",
                "spotInstanceRequestSet",
                &items,
            );
            (200, xml)
        });
}

/// What EC2 shows of the spot instance `id` that moto runs: moto's fields, plus the id of the
/// spot request EC2 makes for every spot instance (moto gives none), for the recorded answers
/// in tests/fixtures/ec2.
pub(crate) async fn as_ec2_shows(b: &Bastion, id: &str, sir: &str) -> Vec<(&'static str, String)> {
    let out = b
        .ec2()
        .await
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    let s = |v: Option<&str>| v.unwrap_or_default().to_string();
    let private_ip = s(i.private_ip_address());
    let public_ip = s(i.public_ip_address());
    let tags: String = i
        .tags()
        .iter()
        .map(|t| {
            format!(
                "<item><key>{}</key><value>{}</value></item>",
                s(t.key()),
                s(t.value())
            )
        })
        .collect();
    vec![
        ("instance_id", id.to_string()),
        ("spot_request_id", sir.to_string()),
        ("image_id", s(i.image_id())),
        ("instance_type", s(i.instance_type().map(|t| t.as_str()))),
        ("zone", s(i.placement().and_then(|p| p.availability_zone()))),
        ("subnet_id", s(i.subnet_id())),
        ("vpc_id", s(i.vpc_id())),
        ("private_ip_dashed", private_ip.replace('.', "-")),
        ("public_ip_dashed", public_ip.replace('.', "-")),
        ("private_ip", private_ip),
        ("public_ip", public_ip),
        ("key_name", s(i.key_name())),
        ("client_token", s(i.client_token())),
        ("tags", tags),
    ]
}

/// The values of a request's ids (`{prefix}.N`) and of its filters named `filter`.
pub(crate) fn asked(r: &Request, prefix: &str, filter: &str) -> Vec<String> {
    let mut out: Vec<String> = (1..)
        .map_while(|n| r.param(&format!("{prefix}.{n}")))
        .map(str::to_string)
        .collect();
    for n in 1.. {
        let Some(name) = r.param(&format!("Filter.{n}.Name")) else {
            break;
        };
        if name == filter {
            out.extend(
                (1..)
                    .map_while(|v| r.param(&format!("Filter.{n}.Value.{v}")))
                    .map(str::to_string),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_machines_marked_for_interruption_report_stopping_however_launched() {
    let b = Bastion::start().await;
    // int1: one pool, so RunInstances; fl1: two types, so an instant EC2 Fleet.
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "int1",
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
        "fl1",
    ])
    .await;
    assert_eq!(b.proxy.taken("RunInstances"), 1);
    assert_eq!(b.proxy.taken("CreateFleet"), 1);
    let machines = ["int1", "fl1"];
    let id = |m: &str| b.driver(m)["InstanceId"].as_str().unwrap().to_string();

    // moto's instances name no spot request, so there is nothing to ask; the strict test EC2
    // names each one's (as EC2 does), and each state read looks at that one request, by id
    // (no instance-id filter over all requests).
    b.proxy.reset_log();
    for m in machines {
        let out = b.dm_env(&["status", m], b.env_direct()).await;
        assert_eq!(stdout(&out).trim(), "Running", "{m}: {}", stderr(&out));
    }
    let looks: Vec<ec2spot_testkit::ec2_proxy::Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeSpotInstanceRequests")
        .collect();
    if ec2spot_testkit::strict::Strictness::from_env().consistency {
        assert_eq!(looks.len(), machines.len());
        assert!(
            looks
                .iter()
                .all(|r| r.param("Filter.1.Name") == Some("spot-instance-request-id"))
        );
    } else {
        assert_eq!(looks.len(), 0);
    }

    // EC2's answers (recorded, see tests/fixtures/ec2): each instance names the spot request
    // EC2 made for it, and AWS has marked that request for termination.
    let mut by_instance: HashMap<String, Vec<(&'static str, String)>> = HashMap::new();
    let mut by_request: HashMap<String, Vec<(&'static str, String)>> = HashMap::new();
    for (n, m) in machines.iter().enumerate() {
        let sir = format!("sir-0a1b2c3d4e5f6789{n}");
        let vars = as_ec2_shows(&b, &id(m), &sir).await;
        by_instance.insert(id(m), vars.clone());
        by_request.insert(sir, vars);
    }
    answer_marked_for_termination(&b, by_instance, by_request);

    // Without the agent: each status reads EC2 and asks about the request the instance names.
    b.proxy.reset_log();
    for m in machines {
        let out = b.dm_env(&["status", m], b.env_direct()).await;
        assert_eq!(stdout(&out).trim(), "Stopping", "{m}: {}", stderr(&out));
    }
    let asks: Vec<Request> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeSpotInstanceRequests")
        .collect();
    assert_eq!(asks.len(), 2, "one per status");
    for (n, r) in asks.iter().enumerate() {
        assert_eq!(r.param("Filter.1.Name"), Some("spot-instance-request-id"));
        assert_eq!(
            asked(r, "SpotInstanceRequestId", "spot-instance-request-id"),
            [format!("sir-0a1b2c3d4e5f6789{n}")]
        );
        assert!(
            asked(r, "InstanceId", "instance-id").is_empty(),
            "by request, not by instance"
        );
    }

    // With the agent: once its cached observations (from the creates) are out of date.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    for m in machines {
        assert_eq!(b.dm_ok(&["status", m]).await.trim(), "Stopping", "{m}");
        let url = b.dm(&["url", m]).await;
        assert!(
            stderr(&url).contains("Host is not running"),
            "{}",
            stderr(&url)
        );
        let config = b.dm(&["config", m]).await;
        assert!(
            !config.status.success(),
            "gitlab-runner's usability check fails, so it drops the machine"
        );
    }
    // rm without the agent, whose cache still holds the recorded request ids moto never knew.
    b.proxy.clear();
    for m in machines {
        let out = b.dm_env(&["rm", "-y", m], b.env_direct()).await;
        assert!(out.status.success(), "{m}: {}", stderr(&out));
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_pool_create_killed_mid_launch_leaves_no_template_after_rm() {
    use ec2spot_plugin::FlagValue;
    let b = Bastion::start().await;
    let p = b.plugin().await;
    p.set_config_raw(&ec2spot_testkit::plugin_client::create_skeleton(
        "kf1",
        b.store().to_str().unwrap(),
    ))
    .await
    .unwrap();
    let flags = p.create_flags().await.unwrap();
    let values = ec2spot_testkit::plugin_client::docker_machine_values(
        &flags,
        &[
            ("amazonec2-request-spot-instance", FlagValue::Bool(true)),
            (
                "amazonec2-instance-type",
                FlagValue::String("m5.large,c5.large".into()),
            ),
        ],
    );
    p.set_config_from_flags(&values).await.unwrap();
    p.call("PreCreateCheck").await.unwrap();
    let saved = p.config_raw().await.unwrap();
    b.proxy.hold_after("CreateFleet", 0, 10);
    let create = tokio::spawn(async move {
        let r = p.call("Create").await;
        (p, r)
    });
    let t0 = Instant::now();
    while b.proxy.count("CreateFleet") == 0 {
        assert!(t0.elapsed().as_secs() < 30, "{:?}", b.proxy.actions());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    create.abort(); // SIGKILL with the template made and the fleet call in flight
    let _ = create.await;
    b.proxy.clear();
    assert!(
        b.leftovers()
            .await
            .iter()
            .any(|l| l.starts_with("launch template"))
    );
    let p = b.plugin().await;
    p.set_config_raw(&saved).await.unwrap();
    p.call("Remove").await.unwrap();
    p.close().await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}
