//! The default image on EC2's terms: one `DescribeImages` whose name filter holds a single
//! Ubuntu release's builds for one architecture; the newest build of the pinned release
//! (24.04) picked among several releases (20.04, 22.04, 24.04, 25.04, 26.04), architectures,
//! builds and look-alike images (tests/fixtures/ubuntu-images.json, loaded into moto, which
//! applies EC2's wildcard name filters); another LTS chosen with `amazonec2-ubuntu-release`;
//! a non-LTS refused before any AWS call; and one lookup serving every create of the agent.

use std::collections::BTreeMap;

use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::ec2_proxy::Request;

const IMAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ubuntu-images.json"
);

/// The newest 24.04 builds in the fixture: a respin `20250912.1` for amd64 (newer than
/// `20250912`, and than every 20.04/22.04 build), `20250912` for arm64. 26.04 is newer still.
const NOBLE_AMD64: &str = "ami-0e53d0ed403899047";
const NOBLE_ARM64: &str = "ami-0b989b49c0af85153";
/// The newest 22.04 amd64 build (a gp3 one, newer than the gp2 builds).
const JAMMY_AMD64: &str = "ami-0c63ca341d7b19ffd";

async fn bastion() -> Bastion {
    Bastion::start_with(&[("MOTO_AMIS_PATH", IMAGES)]).await
}

/// The default-image lookups among the recorded requests (not the checks of a given image).
fn lookups(b: &Bastion) -> Vec<Request> {
    b.proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeImages" && r.param("Owner.1").is_some())
        .collect()
}

/// A recorded request's filters: name → values.
fn filters(r: &Request) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(name) = r.param(&format!("Filter.{n}.Name")) else {
            break;
        };
        let values: Vec<String> = (1..)
            .map_while(|v| r.param(&format!("Filter.{n}.Value.{v}")))
            .map(str::to_string)
            .collect();
        out.insert(name.to_string(), values);
    }
    out
}

fn narrow(release: &str, deb_arch: &str, arch: &str) -> BTreeMap<String, Vec<String>> {
    [
        (
            "name",
            format!("ubuntu/images/hvm-ssd*/ubuntu-*-{release}-{deb_arch}-server-*"),
        ),
        ("architecture", arch.to_string()),
        ("state", "available".to_string()),
        ("root-device-type", "ebs".to_string()),
        ("virtualization-type", "hvm".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), vec![v]))
    .collect()
}

async fn image_of(b: &Bastion, machine: &str) -> String {
    let id = b.driver(machine)["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = b
        .ec2()
        .await
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let image = out.reservations()[0].instances()[0]
        .image_id()
        .unwrap()
        .to_string();
    assert_eq!(b.driver(machine)["AMI"], image.as_str(), "{machine}");
    image
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_build_of_the_pinned_release_per_architecture_from_one_narrow_lookup() {
    let b = bastion().await;
    for (name, itype) in [("x1", "t3.micro"), ("x2", "t3.micro"), ("a1", "m7g.large")] {
        b.dm_ok(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-instance-type",
            itype,
            name,
        ])
        .await;
    }
    assert_eq!(image_of(&b, "x1").await, NOBLE_AMD64);
    assert_eq!(image_of(&b, "x2").await, NOBLE_AMD64);
    assert_eq!(image_of(&b, "a1").await, NOBLE_ARM64);

    // One lookup per architecture for three creates: the agent keeps the answer.
    let lookups = lookups(&b);
    assert_eq!(lookups.len(), 2, "{:?}", lookups);
    for (r, deb, arch) in [
        (&lookups[0], "amd64", "x86_64"),
        (&lookups[1], "arm64", "arm64"),
    ] {
        assert_eq!(
            r.param("Owner.1"),
            Some("099720109477"),
            "Canonical's images"
        );
        assert_eq!(filters(r), narrow("24.04", deb, arch));
        assert_eq!(r.param("Owner.2"), None);
    }

    for m in ["x1", "x2", "a1"] {
        assert_eq!(b.dm_ok(&["status", m]).await.trim(), "Running");
        b.dm_ok(&["rm", "-y", m]).await;
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());

    // Every action of these machines' lives is paced by a row of the throttling table.
    let mut actions = b.proxy.actions();
    actions.sort();
    actions.dedup();
    for a in &actions {
        assert!(
            ec2spot_ec2::aws::throttle::ACTIONS
                .iter()
                .any(|(t, _)| t == a),
            "{a} is not in throttle::ACTIONS ({actions:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_lts_by_option_and_a_non_lts_refused_before_any_call() {
    let b = bastion().await;
    let direct = b.env_direct();
    // Without the agent, each create looks the image up itself, with the same filter.
    for (name, release) in [("d1", None), ("j1", Some("22.04"))] {
        let mut args = vec!["create", "-d", "ec2spot"];
        if let Some(r) = release {
            args.extend(["--amazonec2-ubuntu-release", r]);
        }
        args.push(name);
        let out = b.dm_env(&args, direct.clone()).await;
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(image_of(&b, "d1").await, NOBLE_AMD64);
    assert_eq!(image_of(&b, "j1").await, JAMMY_AMD64);
    let lookups = lookups(&b);
    assert_eq!(lookups.len(), 2, "{lookups:?}");
    assert_eq!(filters(&lookups[0]), narrow("24.04", "amd64", "x86_64"));
    assert_eq!(filters(&lookups[1]), narrow("22.04", "amd64", "x86_64"));

    // An interim release (or a codename) is refused naming the option, before any AWS call.
    for bad in ["25.04", "noble"] {
        b.proxy.reset_log();
        let out = b
            .dm_env(
                &[
                    "create",
                    "-d",
                    "ec2spot",
                    "--amazonec2-ubuntu-release",
                    bad,
                    "bad",
                ],
                direct.clone(),
            )
            .await;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{bad}");
        assert!(
            err.contains("--amazonec2-ubuntu-release") && err.contains("not an Ubuntu LTS"),
            "{bad}: {err}"
        );
        assert_eq!(b.proxy.actions(), Vec::<String>::new(), "{bad}");
    }

    for m in ["d1", "j1"] {
        b.dm_ok(&["rm", "-y", m]).await;
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}
