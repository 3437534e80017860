//! `ec2spot gc`: what `rm -f` or a wiped store leaves behind is found by its ownership tags
//! and removed with `--delete`; a dry run changes nothing; another bastion's machines in the
//! same account are never touched; a shared security group goes only once nothing uses it.

mod support;

use std::process::Output;

use support::bastion::Bastion;

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
    let store = store.to_string_lossy().into_owned();
    let mut args = vec!["gc", "--store", store.as_str()];
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
