//! Spot that keeps working: several instance types × subnets through one EC2 Fleet request,
//! capacity failures that never wait, the on-demand fallback, and interruption-aware state —
//! against moto, with AWS-shaped answers from our proxy where moto cannot fail.

mod support;

use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use support::bastion::Bastion;
use support::ec2_proxy::Request;

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
    b.dm_ok(&["rm", "-y", "z1"]).await;
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
        .filter(|r| r.action == "CreateFleet")
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
    use ec2spot::plugin::FlagValue;
    let b = Bastion::start().await;
    b.proxy.respond_after("CreateFleet", 0, 1, |r| {
        no_capacity(r, "InsufficientInstanceCapacity")
    });
    let p = b.plugin().await;
    p.set_config_raw(&ec2spot::plugin::client::create_skeleton(
        "nf1",
        b.store().to_str().unwrap(),
    ))
    .await
    .unwrap();
    let flags = p.create_flags().await.unwrap();
    let values = ec2spot::plugin::client::docker_machine_values(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_machine_marked_for_interruption_is_not_running() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "int1",
    ])
    .await;
    let id = b.driver("int1")["InstanceId"].as_str().unwrap().to_string();
    assert_eq!(b.dm_ok(&["status", "int1"]).await.trim(), "Running");
    // AWS gives its two-minute notice: the instance's spot request is marked for termination.
    let iid = id.clone();
    b.proxy.respond_after("DescribeSpotInstanceRequests", 0, 100, move |_| {
        (200, format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSpotInstanceRequestsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId><spotInstanceRequestSet><item><spotInstanceRequestId>sir-0123456789abcdef0</spotInstanceRequestId><state>active</state><status><code>marked-for-termination</code><updateTime>2026-11-27T12:00:00.000Z</updateTime><message>Your Spot Instance is marked for termination.</message></status><instanceId>{iid}</instanceId><type>one-time</type></item></spotInstanceRequestSet></DescribeSpotInstanceRequestsResponse>"
        ))
    });
    // The agent answers from observations up to 10 s old by default; wait one out.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert_eq!(b.dm_ok(&["status", "int1"]).await.trim(), "Stopping");
    let url = b.dm(&["url", "int1"]).await;
    assert!(
        stderr(&url).contains("Host is not running"),
        "{}",
        stderr(&url)
    );
    let config = b.dm(&["config", "int1"]).await;
    assert!(
        !config.status.success(),
        "gitlab-runner's usability check fails, so it drops the machine"
    );
    b.proxy.clear();
    b.dm_ok(&["rm", "-y", "int1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_pool_create_killed_mid_launch_leaves_no_template_after_rm() {
    use ec2spot::plugin::FlagValue;
    let b = Bastion::start().await;
    let p = b.plugin().await;
    p.set_config_raw(&ec2spot::plugin::client::create_skeleton(
        "kf1",
        b.store().to_str().unwrap(),
    ))
    .await
    .unwrap();
    let flags = p.create_flags().await.unwrap();
    let values = ec2spot::plugin::client::docker_machine_values(
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
