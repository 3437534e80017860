//! Creates that wait on few EC2 round trips (issue 17): the agent remembers what a pre-create
//! check resolved and which security groups are complete, so the next create with the same
//! options starts at the launch, with a key pair the agent imported ahead of it; the first
//! state read goes right after the launch; and a remembered group that is gone is found out
//! at the launch and made again. (The timings are `benches/create_latency.rs`'s.)

use std::time::Duration;

use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::ec2_proxy::Request;

const AMI: &str = "ami-0e86e20dae9224db8";

/// The Describe calls a pre-create check makes, and the group lookup of a create.
const LOOKUPS: [&str; 7] = [
    "DescribeInstanceTypes",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeInstanceTypeOfferings",
    "DescribeImages",
    "DescribeKeyPairs",
    "DescribeSecurityGroups",
];

async fn create(b: &Bastion, name: &str, types: &str, env: Vec<(String, String)>) -> Vec<Request> {
    b.proxy.reset_log();
    let out = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-ami",
                AMI,
                "--amazonec2-instance-type",
                types,
                "--amazonec2-request-spot-instance",
                // moto gives an EC2 Fleet's instances no public address.
                "--amazonec2-use-private-address",
                name,
            ],
            env,
        )
        .await;
    assert!(
        out.status.success(),
        "create {name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    b.proxy.requests()
}

fn actions(log: &[Request]) -> Vec<&str> {
    log.iter().map(|r| r.action.as_str()).collect()
}

/// The key pairs imported for a machine (not the agent's spare for the next create).
fn machine_imports(log: &[Request]) -> usize {
    log.iter()
        .filter(|r| r.action == "ImportKeyPair" && !ec2spot_testkit::bastion::spare_key_request(r))
        .count()
}

fn overlap(log: &[Request], a: &str, b: &str) -> bool {
    let find = |x: &str| log.iter().find(|r| r.action == x).cloned();
    let (Some(a), Some(b)) = (find(a), find(b)) else {
        return false;
    };
    a.received < b.answered.unwrap() && b.received < a.answered.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_create_with_the_same_options_starts_at_the_launch() {
    let b = Bastion::start().await;
    // Every call 80 ms late, so calls made at once visibly overlap.
    b.proxy.set_delay(Duration::from_millis(80));
    let types = "t3.micro,t3.small";
    let first = create(&b, "fast-1", types, b.env()).await;
    let first_actions = actions(&first);
    for lookup in [
        "DescribeInstanceTypes",
        "DescribeSubnets",
        "DescribeSecurityGroups",
    ] {
        assert!(
            first_actions.contains(&lookup),
            "a cold create looks up {lookup}: {first_actions:?}"
        );
    }
    // Independent lookups of the pre-create check go at once.
    assert!(
        overlap(&first, "DescribeInstanceTypes", "DescribeVpcs"),
        "{first_actions:?}"
    );
    let second = create(&b, "fast-2", types, b.env()).await;
    let second_actions = actions(&second);
    for lookup in LOOKUPS {
        assert!(
            !second_actions.contains(&lookup),
            "the agent remembered what {lookup} answered: {second_actions:?}"
        );
    }
    // The key pair was imported ahead of this create (the agent's spare: see
    // `a_warm_create_takes_the_agents_spare_key_pair`); only the next create's is imported.
    assert_eq!(machine_imports(&second), 0, "{second_actions:?}");
    // The template goes while the instance boots: the wait's first look does not wait for it.
    assert!(
        overlap(&second, "DescribeInstances", "DeleteLaunchTemplate"),
        "{second_actions:?}"
    );
    b.proxy.set_delay(Duration::ZERO);
    let rm = b.dm(&["rm", "-y", "fast-1", "fast-2"]).await;
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_agent_every_create_looks_everything_up() {
    let b = Bastion::start().await;
    let direct = b.env_direct();
    create(&b, "direct-1", "t3.micro", direct.clone()).await;
    let second = create(&b, "direct-2", "t3.micro", direct).await;
    let second_actions = actions(&second);
    for lookup in [
        "DescribeInstanceTypes",
        "DescribeSubnets",
        "DescribeKeyPairs",
    ] {
        assert!(
            second_actions.contains(&lookup),
            "each plugin process resolves its own create: {second_actions:?}"
        );
    }
    let rm = b.dm(&["rm", "-y", "direct-1", "direct-2"]).await;
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The agent remembers the security group the first machine made; the machine is removed
/// without the agent (the group goes with it). The next create launches into the remembered,
/// deleted group; EC2 refuses, and the create makes the group again and launches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_group_deleted_meanwhile_is_made_again() {
    let b = Bastion::start().await;
    create(&b, "group-1", "t3.micro", b.env()).await;
    let rm = b.dm_env(&["rm", "-y", "group-1"], b.env_direct()).await;
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let groups = b
        .ec2()
        .await
        .describe_security_groups()
        .send()
        .await
        .unwrap();
    assert!(
        !groups
            .security_groups()
            .iter()
            .any(|g| g.group_name() == Some("docker-machine")),
        "the direct rm deleted the group the agent remembers"
    );
    // moto launches into a deleted group; EC2 refuses with InvalidGroup.NotFound
    // (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html): the
    // proxy answers the launch as EC2 would.
    b.proxy
        .fail("RunInstances", 400, "InvalidGroup.NotFound", 1);
    let second = create(&b, "group-2", "t3.micro", b.env()).await;
    let second_actions = actions(&second);
    assert!(
        second_actions.contains(&"CreateSecurityGroup"),
        "the group was made again: {second_actions:?}"
    );
    // (A launch the strict test EC2 refused while the new group propagates is no launch.)
    let launches = second
        .iter()
        .filter(|r| r.action == "RunInstances" && !r.refused)
        .count();
    assert_eq!(
        launches, 2,
        "refused once, then launched: {second_actions:?}"
    );
    let rm = b.dm(&["rm", "-y", "group-2"]).await;
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// On EC2 every running spot instance names its spot request (the strict test EC2 plays that;
/// moto's name none), and the agent reads the interruption notices of the spot requests it
/// knows. A launch poll needs the instance's state only: it must not wait for a notice read
/// after the `DescribeInstances` (the requests of instances already known are read beside it,
/// a newly seen one's after the poll is answered). Shown by never answering notice reads: the
/// creates still finish (a poll that waited for one would fail at the 3 s attempt timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_poll_waits_on_no_spot_request_read() {
    let b = Bastion::start().await;
    // A machine whose spot request the agent knows, so every shared state read has one to ask.
    create(&b, "poll-1", "t3.micro", b.env()).await;
    b.dm_ok(&["status", "poll-1"]).await;
    b.proxy.hold_after("DescribeSpotInstanceRequests", 0, 1000);
    let mut env = b.env();
    env.push(("EC2SPOT_AWS_TIMEOUT".into(), "3".into()));
    for (name, types) in [("poll-2", "t3.micro"), ("poll-3", "t3.micro,t3.small")] {
        create(&b, name, types, env.clone()).await;
    }
    let held = b.proxy.count("DescribeSpotInstanceRequests");
    if ec2spot_testkit::strict::Strictness::from_env().consistency {
        // (moto's own instances name no spot request: nothing to ask without the strict layer.)
        assert!(held > 0, "notices were asked for, and never answered");
    }
    b.proxy.clear();
    b.dm_ok(&["rm", "-y", "poll-1", "poll-2", "poll-3"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The agent remembers the pre-create answer (subnet included); the subnet is deleted and
/// another made in its zone. The next create launches into the remembered subnet; EC2 refuses
/// (`InvalidSubnetID.NotFound`), the create forgets what it remembered, looks everything up
/// again once and launches into the new subnet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_subnet_deleted_meanwhile_is_looked_up_again() {
    use aws_sdk_ec2::types::Filter;
    let b = Bastion::start().await;
    create(&b, "net-1", "t3.micro", b.env()).await;
    let old = b.driver("net-1")["SubnetId"].as_str().unwrap().to_string();
    b.dm_ok(&["rm", "-y", "net-1"]).await;
    let ec2 = b.ec2().await;
    let subnet = ec2
        .describe_subnets()
        .filters(Filter::builder().name("subnet-id").values(&old).build())
        .send()
        .await
        .unwrap();
    let s = &subnet.subnets()[0];
    let (vpc, zone) = (s.vpc_id().unwrap(), s.availability_zone().unwrap());
    ec2.delete_subnet().subnet_id(&old).send().await.unwrap();
    let made = ec2
        .create_subnet()
        .vpc_id(vpc)
        .availability_zone(zone)
        .cidr_block("172.31.200.0/24")
        .send()
        .await
        .unwrap();
    let new = made.subnet().unwrap().subnet_id().unwrap().to_string();
    ec2.modify_subnet_attribute()
        .subnet_id(&new)
        .map_public_ip_on_launch(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let second = create(&b, "net-2", "t3.micro", b.env()).await;
    let launches: Vec<&Request> = second
        .iter()
        .filter(|r| r.action == "RunInstances" && !r.refused)
        .collect();
    assert_eq!(
        launches
            .last()
            .and_then(|r| r.param("NetworkInterface.1.SubnetId")),
        Some(new.as_str()),
        "{:?}",
        actions(&second)
    );
    assert_eq!(b.driver("net-2")["SubnetId"].as_str(), Some(new.as_str()));
    b.dm_ok(&["rm", "-y", "net-2"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The agent imports a key pair while a create's instance boots; the next create takes it:
/// no `ImportKeyPair`, and no launch refused while EC2 does not see a new key pair yet. The
/// machine's key files are that key pair's; `rm` deletes it with the machine, and the agent
/// deletes the spare nobody took when it exits. Without the agent no spare is made (it would
/// outlive the plugin's create).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_create_takes_the_agents_spare_key_pair() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    create(&b, "spare-1", "t3.micro", b.env()).await;
    let mut spares = Vec::new();
    for _ in 0..100 {
        spares = ec2spot_testkit::bastion::spare_keys(&ec2).await;
        if !spares.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        spares.len(),
        1,
        "one spare after the first create: {spares:?}"
    );
    let second = create(&b, "spare-2", "t3.micro", b.env()).await;
    let second_actions = actions(&second);
    assert_eq!(machine_imports(&second), 0, "{second_actions:?}");
    assert!(
        !second
            .iter()
            .any(|r| r.action == "RunInstances" && r.refused),
        "a spare imported seconds before is no new key pair to EC2: {second_actions:?}"
    );
    let key_name = b.driver("spare-2")["KeyName"].as_str().unwrap().to_string();
    assert_eq!(key_name, spares[0], "the machine's key pair is the spare");
    let instance = b.driver("spare-2")["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let described = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    let launched = &described.reservations()[0].instances()[0];
    assert_eq!(launched.key_name(), Some(key_name.as_str()));
    let pair = ec2
        .describe_key_pairs()
        .key_names(&key_name)
        .include_public_key(true)
        .send()
        .await
        .unwrap();
    let public = std::fs::read_to_string(b.store().join("machines/spare-2/id_rsa.pub")).unwrap();
    assert_eq!(
        pair.key_pairs()[0].public_key().map(str::trim),
        Some(public.trim()),
        "the machine's key files are the spare key pair's"
    );
    let derived = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(b.store().join("machines/spare-2/id_rsa"))
        .output()
        .expect("ssh-keygen (Debian's openssh-client)");
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        public.trim()
    );

    b.dm_ok(&["rm", "-y", "spare-1", "spare-2"]).await;
    let names: Vec<String> = ec2
        .describe_key_pairs()
        .send()
        .await
        .unwrap()
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name().map(str::to_string))
        .collect();
    assert!(
        !names.contains(&key_name),
        "rm deleted the machine's key pair: {names:?}"
    );
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    // The test agents leave after 5 s without work, deleting the spare made for a next create.
    let mut left = Vec::new();
    for _ in 0..60 {
        left = ec2spot_testkit::bastion::spare_keys(&ec2).await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the exiting agent deleted its spare"
    );

    // Without the agent: no spare.
    create(&b, "spare-3", "t3.micro", b.env_direct()).await;
    b.dm_ok(&["rm", "-y", "spare-3"]).await;
    assert_eq!(
        ec2spot_testkit::bastion::spare_keys(&ec2).await,
        Vec::<String>::new()
    );
}
