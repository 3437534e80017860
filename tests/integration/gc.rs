//! `ec2spot gc`: what `rm -f` or a wiped store leaves behind is found by its ownership tags
//! and removed with `--delete`; a dry run changes nothing, in EC2 or on disk; another
//! bastion's machines in the same account are never touched; a shared security group goes only
//! once nothing uses it; and a bastion whose whole store is lost is cleaned up with the manager
//! id found in its resources' tag (`gc --manager`).

use std::process::Output;

use ec2spot_testkit::bastion::Bastion;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn gc(b: &Bastion, store: &std::path::Path, delete: bool) -> String {
    gc_as(b, store, None, delete).await
}

/// `gc` for the store, or for `manager` when given.
async fn gc_as(
    b: &Bastion,
    store: &std::path::Path,
    manager: Option<&str>,
    delete: bool,
) -> String {
    let store = store.to_string_lossy().into_owned();
    let mut args = vec!["gc", "--store", store.as_str()];
    if let Some(m) = manager {
        args.extend(["--manager", m]);
    }
    if delete {
        args.push("--delete");
    }
    ok(b.cli(&args, &[]).await, "gc")
}

/// Lines of gc output about one kind of resource.
fn lines<'a>(out: &'a str, kind: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.split('\t').nth(1) == Some(kind))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_and_removes_only_this_bastions_orphans() {
    let b = Bastion::start().await;
    let other_store = tempfile::tempdir().unwrap();
    let spot = ["--amazonec2-request-spot-instance"];
    for name in ["keep", "lost1", "lost2"] {
        let mut args = vec!["create", "-d", "ec2spot"];
        if name != "lost2" {
            args.extend(spot);
        }
        args.push(name);
        b.dm_ok(&args).await;
    }
    ok(
        b.dm_in(
            other_store.path(),
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-request-spot-instance",
                "other",
            ],
        )
        .await,
        "create on the other bastion",
    );
    let id = |m: &str| b.driver(m)["InstanceId"].as_str().unwrap().to_string();
    let (keep, lost1, lost2) = (id("keep"), id("lost1"), id("lost2"));

    // lost1: `rm -f` while EC2 refuses to terminate — docker-machine forgets it anyway.
    b.proxy
        .fail("TerminateInstances", 403, "UnauthorizedOperation", 100);
    let out = b.dm(&["rm", "-f", "lost1"]).await;
    b.proxy.clear();
    assert!(
        !b.store().join("machines/lost1").exists(),
        "rm -f forgot lost1: {}",
        text(&out)
    );
    // lost2: its store entry wiped by hand.
    std::fs::remove_dir_all(b.store().join("machines/lost2")).unwrap();

    // Dry run: lists exactly the two orphans' instances and key pairs, changes nothing.
    let before = b.leftovers().await;
    b.proxy.reset_log();
    let dry = gc(&b, b.store(), false).await;
    println!("gc (dry run):\n{dry}");
    let manager = std::fs::read_to_string(b.store().join("ec2spot/manager-id")).unwrap();
    assert!(
        dry.starts_with(&format!("manager id {} ", manager.trim())),
        "gc names the manager id it works for: {dry}"
    );
    let instances = lines(&dry, "instance");
    assert_eq!(instances.len(), 2, "{dry}");
    for (i, m) in [(&lost1, "lost1"), (&lost2, "lost2")] {
        assert!(
            instances
                .iter()
                .any(|l| l.contains(i.as_str()) && l.contains(m)),
            "{m} listed: {dry}"
        );
    }
    assert!(
        !instances.iter().any(|l| l.contains(&keep)),
        "a live machine is not an orphan: {dry}"
    );
    // lost2's key pair (lost1's went with its failed rm, which went on past the refusal).
    let keys = lines(&dry, "key pair");
    assert!(keys.iter().any(|l| l.contains("lost2")), "{dry}");
    assert!(!keys.iter().any(|l| l.contains("keep")), "{dry}");
    assert!(dry.contains("would be terminated"), "{dry}");
    assert!(dry.contains("--delete"), "says how to remove: {dry}");
    let sg = lines(&dry, "security group");
    assert_eq!(sg.len(), 1, "{dry}");
    assert!(
        sg[0].contains("kept: used by"),
        "shared group in use: {dry}"
    );
    assert_eq!(b.leftovers().await, before, "a dry run changes nothing");
    let writes: Vec<String> = b
        .proxy
        .actions()
        .into_iter()
        .filter(|a| !a.starts_with("Describe"))
        .collect();
    assert!(writes.is_empty(), "a dry run only reads: {writes:?}");

    // The other bastion's gc sees none of this one's orphans.
    let theirs = gc(&b, other_store.path(), true).await;
    assert!(
        theirs.contains("nothing of this bastion's is left"),
        "{theirs}"
    );
    assert!(
        !theirs.contains(&lost1) && !theirs.contains(&lost2),
        "{theirs}"
    );

    // --delete: the orphans go; the live machines and the shared group stay.
    let del = gc(&b, b.store(), true).await;
    println!("gc --delete:\n{del}");
    assert_eq!(lines(&del, "instance").len(), 2, "{del}");
    assert!(del.contains("\tterminated"), "{del}");
    let left = b.leftovers().await;
    assert!(
        !left
            .iter()
            .any(|l| l.contains(&lost1) || l.contains(&lost2)),
        "{left:?}"
    );
    assert!(left.iter().any(|l| l.contains(&keep)), "{left:?}");
    assert_eq!(
        left.iter().filter(|l| l.starts_with("instance")).count(),
        2,
        "keep and other live on: {left:?}"
    );
    let again = gc(&b, b.store(), false).await;
    assert_eq!(lines(&again, "instance").len(), 0, "{again}");
    assert_eq!(lines(&again, "key pair").len(), 0, "{again}");

    // The group's creator goes first while the other bastion still uses the group: it stays,
    // and gc keeps it; once nothing uses it, gc removes it.
    b.dm_ok(&["rm", "-y", "keep"]).await;
    let kept = gc(&b, b.store(), true).await;
    assert!(
        lines(&kept, "security group")
            .iter()
            .all(|l| l.contains("kept: used by")),
        "{kept}"
    );
    ok(
        b.dm_in(other_store.path(), &["rm", "-y", "other"]).await,
        "rm on the other bastion",
    );
    let left = b.leftovers().await;
    if left.iter().any(|l| l.starts_with("security group")) {
        let last = gc(&b, b.store(), true).await;
        println!("gc --delete after the last user left:\n{last}");
        assert!(
            lines(&last, "security group")
                .iter()
                .any(|l| l.ends_with("\tdeleted")),
            "{last}"
        );
    }
    assert_eq!(b.leftovers().await, Vec::<String>::new(), "nothing is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_with_the_manager_id_cleans_up_after_a_lost_store() {
    let b = Bastion::start().await;
    // A store nothing was created from has no manager id: gc says how to go on and, being a
    // dry run, writes nothing (it used to create the id file).
    let fresh = tempfile::tempdir().unwrap();
    let none = gc(&b, fresh.path(), false).await;
    assert!(
        none.contains("no manager id") && none.contains("--manager"),
        "{none}"
    );
    assert!(
        std::fs::read_dir(fresh.path()).unwrap().next().is_none(),
        "a dry run writes nothing"
    );

    b.dm_ok(&[
        "create",
        "-d",
        "ec2spot",
        "--amazonec2-request-spot-instance",
        "gone1",
    ])
    .await;
    b.dm_ok(&["create", "-d", "ec2spot", "gone2"]).await;
    let id = |m: &str| b.driver(m)["InstanceId"].as_str().unwrap().to_string();
    let (gone1, gone2) = (id("gone1"), id("gone2"));
    let manager = std::fs::read_to_string(b.store().join("ec2spot/manager-id"))
        .unwrap()
        .trim()
        .to_string();
    // The id names the host it was made on, and is the tag value the console shows.
    assert!(manager.starts_with("mgr-"), "{manager}");
    let out = b
        .ec2()
        .await
        .describe_instances()
        .instance_ids(&gone1)
        .send()
        .await
        .unwrap();
    let tag = out.reservations()[0].instances()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("ec2spot:manager"))
        .and_then(|t| t.value())
        .map(str::to_string);
    assert_eq!(tag.as_deref(), Some(manager.as_str()));
    // doctor prints it (whatever else it finds in moto).
    let store = b.store().to_string_lossy().into_owned();
    let doctor = b.cli(&["doctor", "--store", &store], &[]).await;
    assert!(
        text(&doctor).contains(&format!("manager id {manager} (tag ec2spot:manager")),
        "{}",
        text(&doctor)
    );

    // The bastion's disk is lost: the whole store goes, with the manager id file.
    std::fs::remove_dir_all(b.store()).unwrap();
    let blind = gc(&b, b.store(), false).await;
    assert!(blind.contains("no manager id"), "{blind}");
    assert!(!b.store().exists(), "gc recreates nothing");

    // With the id from the tag: both machines are orphans now, found by a dry run that writes
    // nothing.
    let dry = gc_as(&b, b.store(), Some(&manager), false).await;
    println!("gc --manager (dry run):\n{dry}");
    assert!(
        dry.starts_with(&format!("manager id {manager} (tag ec2spot:manager; given")),
        "{dry}"
    );
    let instances = lines(&dry, "instance");
    assert_eq!(instances.len(), 2, "{dry}");
    for (i, m) in [(&gone1, "gone1"), (&gone2, "gone2")] {
        assert!(
            instances
                .iter()
                .any(|l| l.contains(i.as_str()) && l.contains(m) && l.contains("would be")),
            "{m}: {dry}"
        );
    }
    assert_eq!(lines(&dry, "key pair").len(), 2, "{dry}");
    let group = lines(&dry, "security group");
    assert!(
        group.len() == 1 && group[0].ends_with("\twould be deleted"),
        "its only users are orphans gc would terminate: {dry}"
    );
    assert!(!b.store().exists(), "a dry run writes nothing");
    // Another id finds none of it; a pattern is refused.
    let other = gc_as(&b, b.store(), Some("mgr-elsewhere-0123456789abcdef"), false).await;
    assert!(
        other.contains("nothing of this bastion's is left"),
        "{other}"
    );
    let star = b
        .cli(&["gc", "--store", &store, "--manager", "mgr-*"], &[])
        .await;
    assert_eq!(star.status.code(), Some(2), "{}", text(&star));
    assert!(text(&star).contains("--manager"), "{}", text(&star));

    let del = gc_as(&b, b.store(), Some(&manager), true).await;
    println!("gc --manager --delete:\n{del}");
    assert_eq!(lines(&del, "instance").len(), 2, "{del}");
    assert_eq!(b.leftovers().await, Vec::<String>::new(), "nothing is left");
}

/// An agent's spare key pair (imported ahead of the next create, tagged `spare-…`) is no
/// orphan while an agent may still hand it out; one older than `spare_key::GC_AGE` (an agent
/// killed hard left it) is, and `--delete` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_an_abandoned_spare_key_pair_and_leaves_a_young_one() {
    use ec2spot_ec2::resources::spare_key;
    let b = Bastion::start().await;
    let manager = ec2spot_ec2::manager::manager_id(&b.store().to_string_lossy());
    let ec2 = b.ec2().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = now - spare_key::GC_AGE.as_secs() - 60;
    for (name, since) in [("spare-young", now - 60), ("spare-old", old)] {
        let key = ec2spot_ec2::resources::key_pair::generate().unwrap();
        ec2spot_ec2::resources::key_pair::import(
            &ec2,
            name,
            &key.public_line,
            &spare_key::spare_tags(&manager, since),
        )
        .await
        .unwrap();
    }
    let dry = gc(&b, b.store(), false).await;
    let keys = lines(&dry, "key pair");
    assert_eq!(keys.len(), 1, "{dry}");
    assert!(keys[0].contains("spare-old"), "{dry}");
    let del = gc(&b, b.store(), true).await;
    assert!(lines(&del, "key pair")[0].ends_with("\tdeleted"), "{del}");
    assert_eq!(
        ec2spot_testkit::bastion::spare_keys(&ec2).await,
        vec!["spare-young".to_string()]
    );
}
