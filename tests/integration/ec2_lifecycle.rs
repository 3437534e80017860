//! The machine lifecycle against moto, driven the way users meet it: `docker-machine`
//! (our `dmclient dm` stand-in) loading the plugin from PATH, or the plugin protocol directly.

use aws_sdk_ec2::types::Filter;
use ec2spot_testkit::bastion::Bastion;

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

async fn instance(b: &Bastion, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = b
        .ec2()
        .await
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_machine_full_lifecycle_leaves_nothing() {
    let b = Bastion::start().await;
    let out = b
        .dm_ok(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-request-spot-instance",
            "--amazonec2-tags",
            "team,ci,cost-center,42",
            "m1",
        ])
        .await;
    assert!(
        out.contains("(m1) Launching spot t3.micro in us-east-1a"),
        "{out}"
    );

    let d = b.driver("m1");
    let id = d["InstanceId"].as_str().unwrap().to_string();
    assert!(id.starts_with("i-"), "{d}");
    assert_eq!(d["Market"], "spot");
    assert_eq!(b.config("m1")["DriverName"], "ec2spot");

    let i = instance(&b, &id).await;
    assert_eq!(i.instance_type().unwrap().as_str(), "t3.micro");
    assert_eq!(
        i.image_id(),
        Some("ami-0e86e20dae9224db8"),
        "newest Ubuntu LTS for x86_64 from the fixture images"
    );
    assert_eq!(i.instance_lifecycle().map(|l| l.as_str()), Some("spot"));
    assert_eq!(i.key_name(), Some("m1"));
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1a")
    );
    let md = i.metadata_options().unwrap();
    assert_eq!(md.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(md.http_put_response_hop_limit(), Some(2));
    assert_eq!(tag(i.tags(), "Name"), Some("m1"));
    assert_eq!(tag(i.tags(), "team"), Some("ci"));
    assert_eq!(tag(i.tags(), "cost-center"), Some("42"));
    assert_eq!(tag(i.tags(), "ec2spot:machine-id"), d["MachineId"].as_str());
    assert_eq!(d["IPAddress"].as_str(), i.public_ip_address());
    let groups: Vec<_> = i.network_interfaces()[0]
        .groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    assert_eq!(groups, vec!["docker-machine"]);
    assert_eq!(
        i.network_interfaces()[0].subnet_id(),
        d["SubnetId"].as_str()
    );

    let ec2 = b.ec2().await;
    let vols = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vol = &vols.volumes()[0];
    assert_eq!(tag(vol.tags(), "ec2spot:machine-name"), Some("m1"));
    assert_eq!(vol.size(), Some(16));
    assert_eq!(vol.volume_type().map(|t| t.as_str()), Some("gp3"));

    // The commands gitlab-runner runs.
    assert_eq!(b.dm_ok(&["status", "m1"]).await.trim(), "Running");
    let url = b.dm_ok(&["url", "m1"]).await;
    assert_eq!(
        url.trim(),
        format!("tcp://{}:2376", i.public_ip_address().unwrap())
    );
    assert_eq!(
        b.dm_ok(&["ip", "m1"]).await.trim(),
        i.public_ip_address().unwrap()
    );
    let inspect = b
        .dm_ok(&["inspect", "m1", "-f", "{{.Driver.InstanceId}}"])
        .await;
    assert_eq!(inspect.trim(), id);

    // A one-time spot instance cannot be stopped: the answer comes at once, without EC2.
    b.proxy.reset_log();
    let stop = b.dm(&["stop", "m1"]).await;
    assert!(!stop.status.success());
    assert!(
        String::from_utf8_lossy(&stop.stderr).contains("one-time spot instance"),
        "{stop:?}"
    );
    assert_eq!(b.proxy.count("StopInstances"), 0);

    b.dm_ok(&["rm", "-y", "m1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    assert!(!b.store().join("machines/m1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_machine_stops_starts_restarts_and_kills() {
    let b = Bastion::start().await;
    // The user's own key (imported as the machine's key pair) and an explicit image.
    let dir = tempfile::tempdir().unwrap();
    let key = ec2spot_ec2::resources::key_pair::generate().unwrap();
    let key_path = dir.path().join("id_ci");
    std::fs::write(&key_path, &key.private_pem).unwrap();
    std::fs::write(dir.path().join("id_ci.pub"), &key.public_line).unwrap();
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-zone",
        "b",
        "--amazonec2-ami",
        "ami-785db401",
        "--amazonec2-ssh-keypath",
        key_path.to_str().unwrap(),
        "od1",
    ])
    .await;
    let import = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "ImportKeyPair")
        .unwrap();
    use base64::Engine;
    let material = base64::engine::general_purpose::STANDARD
        .decode(import.param("PublicKeyMaterial").unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(material).unwrap(), key.public_line);
    assert_eq!(import.param("KeyName"), Some("od1"));
    let d = b.driver("od1");
    assert_eq!(d["Market"], "on-demand");
    let id = d["InstanceId"].as_str().unwrap().to_string();
    let i = instance(&b, &id).await;
    assert!(i.instance_lifecycle().is_none(), "on-demand");
    assert_eq!(i.image_id(), Some("ami-785db401"));
    assert_eq!(
        std::fs::read_to_string(d["SSHKeyPath"].as_str().unwrap()).unwrap(),
        key.private_pem
    );
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1b"),
        "zone letter → the zone's default subnet"
    );

    let out = b.dm_ok(&["stop", "od1"]).await;
    assert!(out.contains("was stopped"), "{out}");
    assert_eq!(b.dm_ok(&["status", "od1"]).await.trim(), "Stopped");
    // docker-machine ls shows a stopped machine through GetURL's special error.
    let ls = b.dm_ok(&["ls"]).await;
    assert!(
        ls.lines()
            .any(|l| l.starts_with("od1") && l.contains("Stopped")),
        "{ls}"
    );
    let url = b.dm(&["url", "od1"]).await;
    assert!(
        String::from_utf8_lossy(&url.stderr).contains("Host is not running"),
        "{url:?}"
    );

    b.dm_ok(&["start", "od1"]).await;
    assert_eq!(b.dm_ok(&["status", "od1"]).await.trim(), "Running");
    let ip_after_start = instance(&b, &id)
        .await
        .public_ip_address()
        .unwrap()
        .to_string();
    assert_eq!(
        b.driver("od1")["IPAddress"].as_str(),
        Some(ip_after_start.as_str()),
        "start refreshes the saved address"
    );

    b.proxy.reset_log();
    b.dm_ok(&["restart", "od1"]).await;
    assert_eq!(b.proxy.count("RebootInstances"), 1);

    b.proxy.reset_log();
    b.dm_ok(&["kill", "od1"]).await;
    let stops: Vec<_> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "StopInstances")
        .collect();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].param("Force"), Some("true"));
    assert_eq!(b.dm_ok(&["status", "od1"]).await.trim(), "Stopped");

    b.dm_ok(&["rm", "-y", "od1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    // rm is idempotent: the driver's Remove on a machine already gone succeeds.
    let p = b.plugin().await;
    p.set_config_raw(&serde_json::to_vec(&d).unwrap())
        .await
        .unwrap();
    p.call("Remove").await.expect("second remove succeeds");
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_option_reaches_ec2() {
    let b = Bastion::start().await;
    b.moto.create_instance_profile("ci-runner");
    let dir = tempfile::tempdir().unwrap();
    let userdata = dir.path().join("cloud-init.yml");
    std::fs::write(&userdata, "#cloud-config\npackages: [git]\n").unwrap();
    let ec2 = b.ec2().await;

    // A VPC and subnet of our own, in zone c: the subnet's zone is used without --amazonec2-zone.
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.9.1.0/24")
        .availability_zone("us-east-1c")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();

    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-vpc-id",
        &vpc,
        "--amazonec2-subnet-id",
        &subnet,
        "--amazonec2-instance-type",
        "m7g.large",
        "--amazonec2-request-spot-instance",
        "--amazonec2-spot-price",
        "0.05",
        "--amazonec2-security-group",
        "ci-a",
        "--amazonec2-security-group",
        "ci-b",
        "--amazonec2-open-port",
        "8080",
        "--amazonec2-open-port",
        "53/udp",
        "--amazonec2-ssh-port",
        "2222",
        "--amazonec2-ssh-user",
        "admin",
        "--amazonec2-device-name",
        "/dev/xvda",
        "--amazonec2-root-size",
        "30",
        "--amazonec2-volume-type",
        "gp2",
        "--amazonec2-volume-encrypted",
        "--amazonec2-volume-kms-key",
        "alias/ci",
        "--amazonec2-iam-instance-profile",
        "ci-runner",
        "--amazonec2-monitoring",
        "--amazonec2-use-ebs-optimized-instance",
        "--amazonec2-use-private-address",
        "--amazonec2-userdata",
        userdata.to_str().unwrap(),
        "--amazonec2-metadata-token",
        "optional",
        "--amazonec2-metadata-token-response-hop-limit",
        "1",
        "--amazonec2-retries",
        "3",
        "all1",
    ])
    .await;
    let d = b.driver("all1");
    let id = d["InstanceId"].as_str().unwrap().to_string();
    let i = instance(&b, &id).await;
    assert_eq!(i.subnet_id(), Some(subnet.as_str()));
    assert_eq!(i.vpc_id(), Some(vpc.as_str()));
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1c")
    );
    assert_eq!(
        i.image_id(),
        Some("ami-0c4e709339fa8521a"),
        "arm64 type → the arm64 Ubuntu LTS image"
    );
    assert_eq!(i.instance_type().unwrap().as_str(), "m7g.large");
    assert!(
        i.iam_instance_profile()
            .and_then(|p| p.arn())
            .unwrap()
            .ends_with("instance-profile/ci-runner")
    );
    assert_eq!(
        i.monitoring().and_then(|m| m.state()).map(|s| s.as_str()),
        Some("enabled")
    );
    assert_eq!(i.ebs_optimized(), Some(true));
    let md = i.metadata_options().unwrap();
    assert_eq!(md.http_tokens().map(|t| t.as_str()), Some("optional"));
    assert_eq!(md.http_put_response_hop_limit(), Some(1));
    assert_eq!(
        d["IPAddress"].as_str(),
        i.private_ip_address(),
        "use-private-address → private IP"
    );
    assert!(i.public_ip_address().is_some());
    assert_eq!(
        i.block_device_mappings()[0].device_name(),
        Some("/dev/xvda")
    );
    let vol = ec2
        .describe_volumes()
        .volume_ids(
            i.block_device_mappings()[0]
                .ebs()
                .unwrap()
                .volume_id()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .volumes()[0]
        .clone();
    assert_eq!(
        (
            vol.size(),
            vol.volume_type().map(|v| v.as_str().to_string())
        ),
        (Some(30), Some("gp2".into()))
    );
    assert_eq!(
        (vol.encrypted(), vol.kms_key_id()),
        (Some(true), Some("alias/ci"))
    );
    let ud = ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(ud.user_data().unwrap().value().unwrap())
        .unwrap();
    assert_eq!(raw, std::fs::read(&userdata).unwrap());
    // moto does not keep spot options: the request itself shows the cap.
    let run = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "RunInstances")
        .unwrap();
    assert_eq!(
        run.param("InstanceMarketOptions.SpotOptions.MaxPrice"),
        Some("0.05")
    );
    assert_eq!(run.param("InstanceMarketOptions.MarketType"), Some("spot"));
    assert!(
        run.param("ClientToken")
            .unwrap()
            .contains(d["MachineId"].as_str().unwrap())
    );

    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .unwrap();
    for name in ["ci-a", "ci-b"] {
        let g = groups
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .unwrap_or_else(|| panic!("{name}"));
        let open: Vec<(i32, String)> = g
            .ip_permissions()
            .iter()
            .map(|p| {
                (
                    p.from_port().unwrap_or(0),
                    p.ip_protocol().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for want in [(2222, "tcp"), (2376, "tcp"), (8080, "tcp"), (53, "udp")] {
            assert!(
                open.contains(&(want.0, want.1.to_string())),
                "{name}: {want:?} not in {open:?}"
            );
        }
        assert!(
            !open.contains(&(22, "tcp".into())),
            "the SSH rule follows --amazonec2-ssh-port"
        );
    }
    let p = b.plugin().await;
    p.set_config_raw(&serde_json::to_vec(&d).unwrap())
        .await
        .unwrap();
    assert_eq!(p.call("GetSSHPort").await.unwrap().as_i64(), Some(2222));
    assert_eq!(p.string("GetSSHUsername").await.unwrap(), "admin");
    p.close().await;
    assert_eq!(d["RetryCount"], 3);

    b.dm_ok(&["rm", "-y", "all1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_runner_aws_guide_options_work_unchanged() {
    // RUNNER.md §3: the MachineOptions of GitLab's AWS autoscaling guide, with real values.
    let b = Bastion::start().await;
    let ec2 = b.moto.ec2_in("eu-central-1").await;
    let vpc = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("availability-zone")
                .values("eu-central-1b")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let opts = [
        "amazonec2-access-key=EXAMPLE-ACCESS-KEY",
        "amazonec2-secret-key=example-secret",
        "amazonec2-session-token=example-session-token",
        "amazonec2-region=eu-central-1",
        &format!("amazonec2-vpc-id={vpc}"),
        &format!("amazonec2-subnet-id={subnet}"),
        "amazonec2-use-private-address=true",
        "amazonec2-tags=runner-manager-name,gitlab-aws-autoscaler,gitlab,true,gitlab-runner-autoscale,true",
        "amazonec2-security-group=gitlab-runners",
        "amazonec2-instance-type=m4.2xlarge",
        "amazonec2-request-spot-instance=true",
        "amazonec2-spot-price=",
    ]
    .map(|o| format!("--{o}"));
    let mut args = vec![
        "--bugsnag-api-token=no-report",
        "create",
        "--driver",
        "ec2spot",
    ];
    args.extend(opts.iter().map(String::as_str));
    args.push("runner-abc123-gitlab-docker-machine-1795800000-deadbeef");
    b.dm_ok(&args).await;
    let name = "runner-abc123-gitlab-docker-machine-1795800000-deadbeef";
    let d = b.driver(name);
    let out = ec2
        .describe_instances()
        .instance_ids(d["InstanceId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.subnet_id(), Some(subnet.as_str()));
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("eu-central-1b"),
        "no zone option needed"
    );
    assert_eq!(d["IPAddress"].as_str(), i.private_ip_address());
    assert_eq!(tag(i.tags(), "gitlab-runner-autoscale"), Some("true"));
    assert_eq!(i.instance_lifecycle().map(|l| l.as_str()), Some("spot"));
    let run = b
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action == "RunInstances")
        .unwrap();
    assert_eq!(
        run.param("InstanceMarketOptions.SpotOptions.MaxPrice"),
        None,
        "empty price: no cap but on-demand"
    );
    assert_eq!(
        b.proxy.count("CreateFleet"),
        0,
        "one type, one subnet: the single-pool path"
    );
    // The key options sign the requests and are kept (the user passed them), as amazonec2 does.
    assert!(
        run.header("authorization")
            .unwrap()
            .contains("Credential=EXAMPLE-ACCESS-KEY/")
    );
    assert_eq!(
        run.header("x-amz-security-token"),
        Some("example-session-token")
    );
    assert_eq!(
        (d["AccessKey"].as_str(), d["SessionToken"].as_str()),
        (Some("EXAMPLE-ACCESS-KEY"), Some("example-session-token"))
    );
    // The runner's per-job commands.
    b.dm_ok(&["config", name]).await;
    assert!(b.dm_ok(&["url", name]).await.starts_with("tcp://"));
    let cert_dir = b
        .dm_ok(&[
            "inspect",
            name,
            "-f",
            "{{.HostOptions.AuthOptions.StorePath}}",
        ])
        .await;
    assert!(cert_dir.trim().ends_with(name));
    let _ = b.dm(&["stop", name]).await; // the runner ignores stop's result
    b.dm_ok(&["rm", "-y", name]).await;
    assert_eq!(leftovers_in(&ec2).await, Vec::<String>::new());
}

async fn leftovers_in(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    ec2spot_testkit::bastion::leftovers(ec2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_key_pair_read_only_group_private_only_and_endpoint_flag() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let dir = tempfile::tempdir().unwrap();
    let key = ec2spot_ec2::resources::key_pair::generate().unwrap();
    let key_path = dir.path().join("team_key");
    std::fs::write(&key_path, &key.private_pem).unwrap();
    std::fs::write(dir.path().join("team_key.pub"), &key.public_line).unwrap();
    ec2.import_key_pair()
        .key_name("team-key")
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(
            key.public_line.as_bytes(),
        ))
        .send()
        .await
        .unwrap();
    // The endpoint option wins over AWS_ENDPOINT_URL (pointed at a closed port here), and a
    // bare host:port with insecure transport means plain http.
    let mut env = b.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()));
    let endpoint = b.proxy.url.trim_start_matches("http://").to_string();
    let out = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-endpoint",
                &endpoint,
                "--amazonec2-insecure-transport",
                "--amazonec2-keypair-name",
                "team-key",
                "--amazonec2-ssh-keypath",
                key_path.to_str().unwrap(),
                "--amazonec2-security-group",
                "locked",
                "--amazonec2-security-group-readonly",
                "--amazonec2-private-address-only",
                "k1",
            ],
            env.clone(),
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let d = b.driver("k1");
    let i = instance(&b, d["InstanceId"].as_str().unwrap()).await;
    assert_eq!(i.key_name(), Some("team-key"));
    assert_eq!(i.public_ip_address(), None, "private-address-only");
    assert_eq!(d["IPAddress"].as_str(), i.private_ip_address());
    let copied = std::fs::read_to_string(d["SSHKeyPath"].as_str().unwrap()).unwrap();
    assert_eq!(
        copied, key.private_pem,
        "the user's key is copied into the machine directory"
    );
    let g = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("locked")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        g.security_groups()[0].ip_permissions().is_empty(),
        "read-only: no rules added"
    );
    assert_eq!(b.proxy.count("ImportKeyPair"), 0);

    let rm = b.dm_env(&["rm", "-y", "k1"], env).await;
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(
        b.leftovers().await,
        vec!["key pair team-key".to_string()],
        "the user's key pair stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_standard_chain_and_are_not_stored() {
    let b = Bastion::start().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[ci]\naws_access_key_id = chainkey\naws_secret_access_key = chainsecret\n",
    )
    .unwrap();
    let mut env: Vec<(String, String)> = b
        .env()
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("AWS_ACCESS_KEY")
                && !k.starts_with("AWS_SECRET")
                && k != "AWS_SHARED_CREDENTIALS_FILE"
        })
        .collect();
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        creds.to_string_lossy().into_owned(),
    ));
    env.push(("AWS_PROFILE".into(), "ci".into()));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return; // the test process itself carries credentials: the chain would find those first
    }
    let out = b
        .dm_env(&["create", "-d", "ec2spot", "c1"], env.clone())
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let d = b.driver("c1");
    assert!(d["InstanceId"].as_str().unwrap().starts_with("i-"));
    assert!(
        d.get("AccessKey").is_none() && d.get("SecretKey").is_none(),
        "no secrets stored: {d}"
    );
    let text = std::fs::read_to_string(b.store().join("machines/c1/config.json")).unwrap();
    assert!(!text.contains("chainsecret"));
    b.dm_env(&["rm", "-y", "c1"], env).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_that_fails_leaves_nothing_and_says_why() {
    let b = Bastion::start().await;
    for (status, code) in [
        (400, "InsufficientInstanceCapacity"),
        (403, "UnauthorizedOperation"),
    ] {
        b.proxy.fail("RunInstances", status, code, 1);
        let out = b
            .dm(&[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-request-spot-instance",
                "f1",
            ])
            .await;
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("RunInstances") && err.contains(code), "{err}");
        assert_eq!(b.leftovers().await, Vec::<String>::new(), "after {code}");
        b.dm_ok(&["rm", "-y", "f1"]).await;
    }
    // amazonec2-retries maps to SDK attempts: 5 retries ride out two throttles…
    b.proxy.reset_log();
    b.proxy.fail("RunInstances", 503, "RequestLimitExceeded", 2);
    b.dm_ok(&["create", "-d", "ec2spot", "--amazonec2-retries", "5", "r5"])
        .await;
    assert_eq!(b.proxy.count("RunInstances"), 3);
    b.dm_ok(&["rm", "-y", "r5"]).await;
    // …and -1 means one attempt.
    b.proxy.reset_log();
    b.proxy.fail("RunInstances", 503, "RequestLimitExceeded", 1);
    let out = b
        .dm(&["create", "-d", "ec2spot", "--amazonec2-retries", "-1", "r0"])
        .await;
    assert!(
        stderr(&out).contains("RequestLimitExceeded"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.proxy.count("RunInstances"), 1);
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_fail_before_anything_is_created() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let subnet_1a = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("availability-zone")
                .values("us-east-1a")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["--amazonec2-subnet-id", "subnet-0123456789abcdef0"],
            "--amazonec2-subnet-id",
            3,
        ),
        (
            vec!["--amazonec2-subnet-id", &subnet_1a, "--amazonec2-zone", "b"],
            "--amazonec2-zone",
            3,
        ),
        (
            vec!["--amazonec2-zone", "e"],
            "--amazonec2-instance-type: t3.micro is not offered in us-east-1e",
            3,
        ),
        (
            vec!["--amazonec2-instance-type", "t9.huge"],
            "--amazonec2-instance-type",
            3,
        ),
        (
            vec![
                "--amazonec2-instance-type",
                "m7g.large",
                "--amazonec2-ami",
                "ami-785db401",
            ],
            "--amazonec2-ami",
            3,
        ),
        (
            vec!["--amazonec2-ami", "ami-0000000000000000f"],
            "--amazonec2-ami",
            3,
        ),
        (
            vec!["--amazonec2-vpc-id", "vpc-0123456789abcdef0"],
            "--amazonec2-vpc-id",
            3,
        ),
        (
            vec![
                "--amazonec2-keypair-name",
                "nope",
                "--amazonec2-ssh-keypath",
                "/etc/hostname",
            ],
            "--amazonec2-keypair-name",
            3,
        ),
        (
            vec!["--amazonec2-block-duration-minutes", "60"],
            "--amazonec2-block-duration-minutes",
            1,
        ),
        (
            vec!["--amazonec2-spot-price", "cheap"],
            "--amazonec2-spot-price",
            1,
        ),
    ];
    for (opts, want, code) in cases {
        b.proxy.reset_log();
        let mut args = vec!["create", "-d", "ec2spot"];
        args.extend(opts.iter().copied());
        args.push("bad");
        let out = b.dm(&args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{opts:?}: {err}");
        assert!(err.contains(want), "{opts:?}: {err}");
        let mutating: Vec<String> = b
            .proxy
            .actions()
            .into_iter()
            .filter(|a| !a.starts_with("Describe"))
            .collect();
        assert!(mutating.is_empty(), "{opts:?}: {mutating:?}");
        let _ = std::fs::remove_dir_all(b.store().join("machines/bad"));
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_one_new_security_group() {
    let b = Bastion::start().await;
    let names = ["p1", "p2", "p3", "p4"];
    let runs = names.map(|n| {
        let b = &b;
        async move {
            b.dm(&[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-security-group",
                "race",
                n,
            ])
            .await
        }
    });
    let outs = futures_join_all(runs).await;
    for (n, o) in names.iter().zip(&outs) {
        assert!(o.status.success(), "{n}: {}", stderr(o));
    }
    let ec2 = b.ec2().await;
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values("race").build())
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1, "one group for all");
    // The group stays while any machine uses it and goes with the last one, whoever made it.
    for (k, n) in names.iter().enumerate() {
        b.dm_ok(&["rm", "-y", n]).await;
        let left = b.leftovers().await;
        let has_group = left.iter().any(|l| l.contains("(race)"));
        assert_eq!(
            has_group,
            k < names.len() - 1,
            "after removing {n}: {left:?}"
        );
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

async fn futures_join_all<F: std::future::Future>(fs: [F; 4]) -> Vec<F::Output> {
    let [a, b, c, d] = fs;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    vec![a, b, c, d]
}

/// docker-machine's create up to the save before `Create`, through the plugin protocol.
async fn prepare_create(
    b: &Bastion,
    env: Vec<(String, String)>,
    name: &str,
    opts: &[(&str, ec2spot_plugin::FlagValue)],
) -> (ec2spot_testkit::plugin_client::PluginProcess, Vec<u8>) {
    use ec2spot_testkit::plugin_client::{create_skeleton, docker_machine_values};
    let p = b.plugin_env(env).await;
    assert_eq!(p.version().await.unwrap(), 1);
    p.set_config_raw(&create_skeleton(name, b.store().to_str().unwrap()))
        .await
        .unwrap();
    let flags = p.create_flags().await.unwrap();
    p.set_config_from_flags(&docker_machine_values(&flags, opts))
        .await
        .unwrap();
    p.call("PreCreateCheck").await.unwrap();
    let saved = p.config_raw().await.unwrap();
    (p, saved)
}

/// Kills a plugin (SIGKILL) right after its create's RunInstances, then runs `rm` from the
/// config docker-machine saved before Create (no instance id), as gitlab-runner would.
async fn kill_after_launch_then_rm(b: &Bastion, env: Vec<(String, String)>, hold: bool) {
    use ec2spot_plugin::FlagValue;
    let (p, saved) = prepare_create(
        b,
        env.clone(),
        "k9",
        &[("amazonec2-request-spot-instance", FlagValue::Bool(true))],
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&saved).contains("\"InstanceId\":\"i-"),
        "saved before Create: no instance id"
    );
    if hold {
        // Freeze the create at its first look at the new instance.
        b.proxy.hold_after("DescribeInstances", 0, 1000);
    }
    let create = tokio::spawn(async move {
        let r = p.call("Create").await;
        (p, r)
    });
    let t0 = std::time::Instant::now();
    // A launch EC2 took up and answered (the strict test EC2 may first refuse one while the
    // new key pair propagates).
    let launched = || {
        b.proxy
            .requests()
            .iter()
            .any(|r| r.action == "RunInstances" && !r.refused && r.answered.is_some())
    };
    while !launched() || (hold && b.proxy.count("DescribeInstances") < 1) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "create never launched: {:?}",
            b.proxy.actions()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    create.abort(); // drops the plugin process: SIGKILL (kill_on_drop)
    let _ = create.await;
    b.proxy.clear();
    let left = b.leftovers().await;
    assert!(
        left.iter().any(|l| l.starts_with("instance")),
        "the launch happened: {left:?}"
    );
    let p = b.plugin_env(env).await;
    p.set_config_raw(&saved).await.unwrap();
    p.call("Remove").await.unwrap();
    let out = p.stdout_lines().join("\n");
    p.close().await;
    assert_eq!(
        b.leftovers().await,
        Vec::<String>::new(),
        "rm output: {out}"
    );
    assert_eq!(b.proxy.count("RunInstances"), 1, "launched once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_killed_after_launch_is_removed_by_a_later_rm() {
    // Without the agent the killed plugin's create dies with it; rm finds its instance,
    // key pair and security group by their tag.
    let b = Bastion::start().await;
    kill_after_launch_then_rm(&b, b.env_direct(), true).await;
    // With the agent the create goes on there; rm waits for it, then removes everything.
    let b = Bastion::start().await;
    kill_after_launch_then_rm(&b, b.env(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_calls_of_a_spot_create_and_rm() {
    let b = Bastion::start().await;
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "seq1",
    ])
    .await;
    // The calls EC2 took up (a call the strict test EC2 refused as "not found yet", while a
    // new id propagates, and its retry count once) for this create: not the agent's import of
    // a spare key pair for the next one (one at most).
    let spare = ec2spot_testkit::bastion::spare_key_request;
    let log = b.proxy.requests();
    assert!(log.iter().filter(|r| spare(r)).count() <= 1);
    let create: Vec<String> = log
        .iter()
        .filter(|r| !r.faulted && !r.refused && !spare(r))
        .map(|r| r.action.clone())
        .collect();
    b.proxy.reset_log();
    b.dm_ok(&["rm", "-y", "seq1"]).await;
    let rm = b.proxy.actions_taken();
    println!("spot create: {} calls: {}", create.len(), create.join(", "));
    println!("rm: {} calls: {}", rm.len(), rm.join(", "));
    assert_eq!(create.iter().filter(|a| *a == "RunInstances").count(), 1);
    assert!(
        !create
            .iter()
            .any(|a| a == "RequestSpotInstances" || a == "CreateTags")
    );
    // No spot-request polling: at most one look at the request per state read (the create's
    // wait and docker-machine's GetState; they share one when close enough), for an
    // interruption notice — and only at the request the instance names, which moto's
    // instances do not (tests/integration/spot.rs replays EC2's answers for that).
    let spot_looks = create
        .iter()
        .filter(|a| *a == "DescribeSpotInstanceRequests")
        .count();
    assert!(spot_looks <= 2, "{create:?}");
    let run_at = create.iter().position(|a| a == "RunInstances").unwrap();
    assert!(
        !create[..run_at]
            .iter()
            .any(|a| a == "DescribeSpotInstanceRequests")
    );
    // Once running, docker-machine's own GetState needs one call; GetURL/GetIP none in-process.
    assert!(create.len() <= 16, "{create:?}");
    assert_eq!(rm.iter().filter(|a| *a == "TerminateInstances").count(), 1);
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}
