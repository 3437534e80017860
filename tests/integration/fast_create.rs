//! Creates that wait on few EC2 round trips (issue 17): the agent remembers what a pre-create
//! check resolved and which security groups are complete, so the next create with the same
//! options starts at the launch; the key pair and the launch template go at once; the first
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
    // The key pair and the launch template go at once.
    assert!(
        overlap(&second, "ImportKeyPair", "CreateLaunchTemplate"),
        "{second_actions:?}"
    );
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
    let launches = second_actions
        .iter()
        .filter(|a| **a == "RunInstances")
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
