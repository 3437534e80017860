//! `image build|list|prune` against the test EC2 (issue 24): the builder's power-off is
//! played by the test (StopInstances when it runs); the AMI is tagged as ec2spot's with the
//! recipe's hash and the base image, the builder is terminated and nothing else is left; a
//! build interrupted after each step leaves only what `gc --delete` removes; `prune --keep`
//! deregisters and deletes the snapshots; a create with `amazonec2-use-baked-image` launches
//! the newest baked image and says so.

use std::process::Output;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, Image};
use ec2spot_ec2::create::baked;
use ec2spot_ec2::tools::image;
use ec2spot_testkit::bastion::Bastion;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Plays the builder's power-off: stops the first running instance the build marked as
/// installing (after its create, as a real builder powers off minutes after it runs).
async fn power_off_builder(b: &Bastion) -> String {
    let ec2 = b.ec2().await;
    for _ in 0..600 {
        let out = ec2.describe_instances().send().await.unwrap();
        let builder = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"))
            .find(|i| {
                i.tags()
                    .iter()
                    .any(|t| t.key() == Some(image::BUILD_LABEL) && t.value() == Some("installing"))
            })
            .and_then(|i| i.instance_id().map(str::to_string));
        if let Some(id) = builder {
            ec2.stop_instances().instance_ids(&id).send().await.unwrap();
            return id;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no builder ran");
}

/// `image build` for `store` with `env`, the power-off played: its output and the builder.
async fn build(b: &Bastion, store: &str, env: &[(&str, &str)]) -> (Output, String) {
    let args = [
        "image",
        "build",
        "--store",
        store,
        "--pull",
        "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v18.0.0",
        "--amazonec2-docker-version",
        "20.10",
    ];
    let cli = b.cli(&args, env);
    tokio::pin!(cli);
    // A build stopped early ends before its builder is marked: nothing to power off then.
    let builder = tokio::select! {
        o = &mut cli => return (o, String::new()),
        id = power_off_builder(b) => id,
    };
    (cli.await, builder)
}

async fn ami_of(b: &Bastion, id: &str) -> Option<Image> {
    let out = b
        .ec2()
        .await
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .ok()?;
    out.images().first().cloned()
}

/// Images still tagged `building` and snapshots of ec2spot's images.
async fn building_leftovers(b: &Bastion) -> Vec<String> {
    let ec2 = b.ec2().await;
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{}", baked::STATE))
                .values("building")
                .build(),
        )
        .send()
        .await
        .unwrap();
    images
        .images()
        .iter()
        .map(|i| format!("image {}", i.image_id().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_build_tags_the_ami_and_leaves_nothing_else() {
    let b = Bastion::start().await;
    let store = b.store().to_string_lossy().into_owned();
    let (o, builder) = build(&b, &store, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    let ami = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let img = ami_of(&b, &ami).await.expect("the AMI exists");
    assert_eq!(baked::tag_of(&img, baked::STATE), "ready");
    assert_eq!(baked::tag_of(&img, baked::RECIPE).len(), 16, "{img:?}");
    assert!(
        baked::tag_of(&img, baked::BASE).starts_with("ami-"),
        "{img:?}"
    );
    assert_eq!(baked::tag_of(&img, baked::DOCKER), "20.10");
    assert!(!baked::tag_of(&img, ec2spot_ec2::tags::MANAGER).is_empty());
    let ec2 = b.ec2().await;
    let out = ec2
        .describe_instances()
        .instance_ids(&builder)
        .send()
        .await
        .unwrap();
    let state = out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(state, "terminated", "the builder");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    assert!(text(&o).contains("Launching on-demand"), "{}", text(&o));

    // A second build of the same recipe, then list and prune --keep 1.
    let (o2, _) = build(&b, &store, &[]).await;
    assert!(o2.status.success(), "{}", text(&o2));
    let newer = String::from_utf8_lossy(&o2.stdout).trim().to_string();
    let list = b.cli(&["image", "list"], &[]).await;
    assert!(
        text(&list).contains(&ami) && text(&list).contains(&newer),
        "{}",
        text(&list)
    );

    // A create asking for the baked image launches the newest one and says so.
    let created = b
        .dm(&[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-use-baked-image",
            "--amazonec2-docker-version",
            "20.10",
            "baked1",
        ])
        .await;
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        text(&created).contains(&format!("Using the baked image {newer}")),
        "{}",
        text(&created)
    );
    let run = b
        .proxy
        .requests()
        .into_iter()
        .rfind(|r| r.action == "RunInstances")
        .unwrap();
    assert_eq!(run.param("ImageId"), Some(newer.as_str()));
    b.dm_ok(&["rm", "-y", "baked1"]).await;

    let snaps: Vec<String> = img
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    let pruned = b.cli(&["image", "prune", "--keep", "1"], &[]).await;
    assert!(pruned.status.success(), "{}", text(&pruned));
    assert!(text(&pruned).contains(&ami), "{}", text(&pruned));
    assert!(
        ami_of(&b, &ami).await.is_none(),
        "the older image is deregistered"
    );
    assert!(ami_of(&b, &newer).await.is_some(), "the newest is kept");
    for s in snaps {
        let left = ec2.describe_snapshots().snapshot_ids(&s).send().await;
        assert!(
            left.map(|o| o.snapshots().is_empty()).unwrap_or(true),
            "snapshot {s} left"
        );
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_image_build_leaves_what_gc_removes() {
    let b = Bastion::start().await;
    let store = b.store().to_string_lossy().into_owned();
    for step in ["launched", "stopped", "image"] {
        let (o, _) = build(&b, &store, &[("EC2SPOT_IMAGE_BUILD_STOP_AFTER", step)]).await;
        assert_eq!(o.status.code(), Some(9), "{step}: {}", text(&o));
        let gc = b.cli(&["gc", "--store", &store, "--delete"], &[]).await;
        assert!(gc.status.success(), "{step}: {}", text(&gc));
        assert_eq!(
            b.leftovers().await,
            Vec::<String>::new(),
            "{step}: {}",
            text(&gc)
        );
        assert_eq!(
            building_leftovers(&b).await,
            Vec::<String>::new(),
            "{step}: {}",
            text(&gc)
        );
    }
}
