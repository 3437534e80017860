//! Security groups against moto: a group the user made — ports let in only from a private
//! network, or from another group, or not at all — is left exactly as it is by a create and
//! survives the last machine's `rm`; a group ec2spot creates lets SSH and Docker in from the
//! VPC's address ranges when the machines are reached by private address and from anywhere
//! only when they are reached by public address (`amazonec2-open-port` always from anywhere,
//! as amazonec2 does), and goes with its last machine; `doctor` flags a group open to the
//! world.

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, SecurityGroup, UserIdGroupPair,
};
use ec2spot_testkit::bastion::Bastion;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn default_vpc(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string()
}

/// Makes group `name` in `vpc` (untagged, as a user would) with `rules`; returns its id.
async fn user_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
    rules: Vec<IpPermission>,
) -> String {
    let id = ec2
        .create_security_group()
        .group_name(name)
        .description("made by the user")
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    if !rules.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(rules))
            .send()
            .await
            .unwrap();
    }
    id
}

fn tcp(port: i32) -> aws_sdk_ec2::types::builders::IpPermissionBuilder {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
}

fn from_cidr(port: i32, cidr: &str) -> IpPermission {
    tcp(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}

async fn group(ec2: &aws_sdk_ec2::Client, name: &str) -> Option<SecurityGroup> {
    ec2.describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build())
        .send()
        .await
        .unwrap()
        .security_groups()
        .first()
        .cloned()
}

/// The group's ingress rules as `proto/from-to <- sources`, sorted (for comparisons).
fn rules(g: &SecurityGroup) -> Vec<String> {
    let mut out: Vec<String> = g
        .ip_permissions()
        .iter()
        .map(|p| {
            let mut sources: Vec<String> = p
                .ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_string))
                .chain(
                    p.ipv6_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ipv6().map(str::to_string)),
                )
                .chain(
                    p.user_id_group_pairs()
                        .iter()
                        .filter_map(|u| u.group_id().map(str::to_string)),
                )
                .collect();
            sources.sort();
            format!(
                "{}/{}-{} <- {}",
                p.ip_protocol().unwrap_or_default(),
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1),
                sources.join(" ")
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_the_user_made_are_never_changed_and_survive_the_last_rm() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let vpc = default_vpc(&ec2).await;
    // SSH and Docker only from the bastion's network.
    user_group(
        &ec2,
        &vpc,
        "from-bastion-net",
        vec![from_cidr(22, "10.0.0.0/8"), from_cidr(2376, "10.0.0.0/8")],
    )
    .await;
    // Everything from the bastion's own group.
    let bastion = user_group(&ec2, &vpc, "bastion", vec![]).await;
    user_group(
        &ec2,
        &vpc,
        "from-bastion-group",
        vec![
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(0)
                .to_port(65535)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&bastion).build())
                .build(),
        ],
    )
    .await;
    // Nothing at all (the user lets the bastion in some other way, or forgot).
    user_group(&ec2, &vpc, "bare", vec![]).await;
    let names = ["from-bastion-net", "from-bastion-group", "bare"];
    let mut before = Vec::new();
    for n in names {
        before.push(rules(&group(&ec2, n).await.unwrap()));
    }

    // Two machines share them (agent on), the second one created without the agent.
    let args = |m: &'static str| {
        vec![
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-security-group",
            "from-bastion-net",
            "--amazonec2-security-group",
            "from-bastion-group",
            "--amazonec2-security-group",
            "bare",
            m,
        ]
    };
    let o = b.dm(&args("u1")).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Security group bare (")
            && text(&o).contains("lets nothing in on tcp/22, tcp/2376"),
        "the missing ports are reported: {}",
        text(&o)
    );
    assert!(
        !text(&o).contains("Security group from-bastion"),
        "covered ports are not reported: {}",
        text(&o)
    );
    let o = b.dm_env(&args("u2"), b.env_direct()).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(b.proxy.count("AuthorizeSecurityGroupIngress"), 0);
    assert_eq!(b.proxy.count("CreateSecurityGroup"), 0);
    for (n, was) in names.iter().zip(&before) {
        let g = group(&ec2, n).await.unwrap();
        assert_eq!(&rules(&g), was, "{n} unchanged");
        assert!(g.tags().is_empty(), "{n}: no tags added");
    }
    let used: Vec<String> = b.driver("u1")["SecurityGroupIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 3, "the machine uses all three");
    assert!(
        b.driver("u1")["CreatedSecurityGroupIds"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The last machine's rm leaves the user's groups (issue 15, item 5).
    b.dm_ok(&["rm", "-y", "u1"]).await;
    b.dm_ok(&["rm", "-y", "u2"]).await;
    assert_eq!(b.proxy.count("DeleteSecurityGroup"), 0);
    let mut left = b.leftovers().await;
    left.sort();
    let mut want: Vec<String> = Vec::new();
    for n in ["bare", "bastion", "from-bastion-group", "from-bastion-net"] {
        let g = group(&ec2, n).await.expect("still there");
        want.push(format!(
            "security group {} ({n})",
            g.group_id().unwrap_or_default()
        ));
    }
    want.sort();
    assert_eq!(left, want, "only the user's groups are left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_lets_ssh_and_docker_in_from_the_vpc_or_the_world_by_addressing() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let vpc = default_vpc(&ec2).await;
    // A second block, as a VPC grown over time has: both are the VPC's.
    ec2.associate_vpc_cidr_block()
        .vpc_id(&vpc)
        .cidr_block("10.77.0.0/16")
        .send()
        .await
        .unwrap();
    let blocks = "10.77.0.0/16 172.31.0.0/16";

    // Private addressing, agent on.
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-use-private-address",
        "--amazonec2-security-group",
        "private",
        "p1",
    ])
    .await;
    let g = group(&ec2, "private").await.unwrap();
    assert_eq!(
        rules(&g),
        [
            format!("tcp/22-22 <- {blocks}"),
            format!("tcp/2376-2376 <- {blocks}")
        ]
    );
    assert!(
        ec2spot_ec2::resources::security_group::open_to_world(&g).is_empty(),
        "no rule from 0.0.0.0/0: {:?}",
        rules(&g)
    );

    // Private only, agent off; an open port goes to the world as amazonec2 does.
    let o = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-private-address-only",
                "--amazonec2-open-port",
                "8080",
                "--amazonec2-security-group",
                "private-open",
                "p2",
            ],
            b.env_direct(),
        )
        .await;
    assert!(o.status.success(), "{}", text(&o));
    let g = group(&ec2, "private-open").await.unwrap();
    assert_eq!(
        rules(&g),
        [
            format!("tcp/22-22 <- {blocks}"),
            format!("tcp/2376-2376 <- {blocks}"),
            "tcp/8080-8080 <- 0.0.0.0/0".to_string(),
        ]
    );

    // Public addressing: from anywhere.
    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-security-group",
        "public",
        "p3",
    ])
    .await;
    let g = group(&ec2, "public").await.unwrap();
    assert_eq!(
        rules(&g),
        ["tcp/22-22 <- 0.0.0.0/0", "tcp/2376-2376 <- 0.0.0.0/0"]
    );
    // Ours: tagged at creation, and gone with their machines.
    for n in ["private", "private-open", "public"] {
        let g = group(&ec2, n).await.unwrap();
        assert!(ec2spot_ec2::resources::security_group::is_ours(&g), "{n}");
    }
    for m in ["p1", "p2", "p3"] {
        b.dm_ok(&["rm", "-y", m]).await;
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_flags_a_group_open_to_the_world() {
    let b = Bastion::start().await;
    let ec2 = b.ec2().await;
    let vpc = default_vpc(&ec2).await;
    let world = user_group(&ec2, &vpc, "world", vec![from_cidr(22, "0.0.0.0/0")]).await;
    let world6 = user_group(
        &ec2,
        &vpc,
        "world6",
        vec![
            tcp(2376)
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build(),
        ],
    )
    .await;
    let closed = user_group(&ec2, &vpc, "closed", vec![from_cidr(22, "10.0.0.0/8")]).await;
    let o = b
        .cli(
            &[
                "doctor",
                "--amazonec2-security-group",
                "world",
                "--amazonec2-security-group",
                "world6",
                "--amazonec2-security-group",
                "closed",
                "--amazonec2-security-group",
                "new-one",
                "--amazonec2-use-private-address",
            ],
            &[],
        )
        .await;
    let out = text(&o);
    println!("{out}");
    assert!(o.status.success(), "warnings are not problems: {out}");
    assert!(
        out.contains(&format!(
            "[WARN] security group world ({world}) is open to the world (0.0.0.0/0 or ::/0) on tcp/22"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[WARN] security group world6 ({world6}) is open to the world (0.0.0.0/0 or ::/0) on tcp/2376"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[ok  ] security group closed ({closed}) lets nothing in from anywhere"
        )),
        "{out}"
    );
    assert!(
        out.contains("[ok  ] security group new-one will be created, letting SSH and Docker in from the VPC's address ranges only"),
        "{out}"
    );
    assert!(
        group(&ec2, "new-one").await.is_none(),
        "doctor creates nothing"
    );
}
