//! `image build|list|prune`: baked images, so nothing is installed at boot.
//!
//! `image build` launches a builder with the usual `amazonec2-*` options (on-demand: a
//! one-time spot instance is terminated, not stopped, when it powers off), whose user data
//! installs Docker (`amazonec2-docker-version` if given), pulls the `--pull` images, leaves
//! `docker.service` disabled and its socket enabled (the TLS bootstrap's script starts it with
//! the drop-in; docker-machine's provisioner through the socket),
//! clears cloud-init's per-instance state after cloud-init's last stage and powers the
//! instance off. The command then makes the AMI — tagged as ec2spot's (manager, machine id,
//! [`baked`] tags: recipe hash, base image, Docker version; `building` until available, then
//! `ready`) — and removes the builder as `docker-machine rm` would. An interrupted build
//! leaves what `gc` finds: the builder (its machine id is no store machine's) and a
//! `building` image.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, Image, ResourceType};

use crate::aws::error::{Error, Result, aws};
use crate::create::baked;
use crate::ops::{self, Input, Op};
use crate::options::config::Config;
use crate::progress::Progress;
use crate::state::context::Context;
use crate::{manager, tags};

/// What a baked image is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The image the builder launches (resolved as a create would).
    pub base_ami: String,
    /// `amazonec2-docker-version` ("" = the archive's).
    pub docker_version: String,
    /// Images pulled into the image (`--pull`).
    pub pulls: Vec<String>,
    /// The builder's proxy (`--engine-env HTTP_PROXY=…`, as docker-machine takes it for the
    /// engine): used for the install and the pulls; not part of the recipe's hash.
    pub proxy: Vec<(String, String)>,
}

/// An `--engine-env` of `image build`: `KEY=value` with KEY one of the proxy variables and a
/// value the script can quote.
pub fn parse_engine_env(kv: &str) -> std::result::Result<(String, String), String> {
    use crate::create::tls_bootstrap::{PROXY_VARIABLES, quotable};
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("--engine-env {kv:?}: expected KEY=value"))?;
    if !PROXY_VARIABLES.contains(&k) {
        return Err(format!(
            "--engine-env {k}: only the proxy variables ({}) reach the builder",
            PROXY_VARIABLES.join(", ")
        ));
    }
    if !quotable(v) {
        return Err(format!(
            "--engine-env {k}: a quote, backslash or control character"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A `--pull` image reference: letters, digits and `._-/:@`.
pub fn check_pull(image: &str) -> std::result::Result<(), String> {
    let ok = !image.is_empty()
        && image.len() <= 256
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("--pull {image:?}: not an image reference"))
    }
}

impl Recipe {
    /// 16 hex digits (FNV-1a 64) over the recipe: the same inputs, the same hash.
    pub fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |s: &str| {
            for b in s.bytes().chain([0u8]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat("ec2spot-image-v1");
        eat(&self.base_ami);
        eat(&self.docker_version);
        for p in &self.pulls {
            eat(p);
        }
        format!("{h:016x}")
    }

    /// The builder's user data.
    pub fn script(&self) -> String {
        let mut env = String::new();
        for (k, v) in &self.proxy {
            env.push_str(&format!("export {k}='{v}' {}='{v}'\n", other_case(k)));
        }
        format!(
            include_str!("image_build.sh"),
            env = env,
            recipe = self.hash(),
            version = self.docker_version,
            pulls = self.pulls.join(" "),
        )
    }
}

/// `HTTP_PROXY` ↔ `http_proxy` (apt reads only the lower case, Docker either).
fn other_case(k: &str) -> String {
    if k.chars().any(|c| c.is_ascii_lowercase()) {
        k.to_ascii_uppercase()
    } else {
        k.to_ascii_lowercase()
    }
}

/// The builder's name (its `Name` tag and machine-name tag).
pub fn builder_name(recipe: &Recipe) -> String {
    format!("ec2spot-image-{}", &recipe.hash()[..12])
}

/// Where a build stops early (`EC2SPOT_IMAGE_BUILD_STOP_AFTER`, for the interruption tests):
/// `launched`, `stopped`, `image`.
fn stop_after(step: &str) {
    if std::env::var("EC2SPOT_IMAGE_BUILD_STOP_AFTER").is_ok_and(|s| s == step) {
        eprintln!("image build: stopped after {step} (EC2SPOT_IMAGE_BUILD_STOP_AFTER)");
        std::process::exit(9);
    }
}

/// Builds a baked image with `config` (options applied, machine id set): its id.
pub async fn build(
    ctx: &Context,
    config: &mut Config,
    (pulls, proxy): (Vec<String>, Vec<(String, String)>),
    timeout: Duration,
    progress: &Progress,
) -> Result<String> {
    let asked = &mut config.asked;
    if asked.request_spot_instance {
        progress.say("The builder runs on demand: a one-time spot instance is terminated, not stopped, when it powers off");
        asked.request_spot_instance = false;
    }
    asked.tls_bootstrap = false;
    asked.use_baked_image = false;
    asked.machine_name = "ec2spot-image-builder".into();
    let answered = ops::pre_create_check(ctx, asked, progress).await?;
    let recipe = Recipe {
        base_ami: answered.ami.clone(),
        docker_version: asked.docker_version.clone(),
        pulls,
        proxy,
    };
    asked.machine_name = builder_name(&recipe);
    // The builder's directory in the store, as a machine's: its SSH key and this user data.
    let dir = std::path::Path::new(&asked.store_path)
        .join("machines")
        .join(&asked.machine_name);
    let script = dir.join("image-build.sh");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&script, recipe.script()))
        .map_err(|e| Error::Other(format!("writing the builder's user data: {e}")))?;
    asked.user_data_file = script.to_string_lossy().into_owned();
    config.answered = Some(answered);
    if let Err(e) = ops::run(ctx, Op::Create, &Input::default(), config, progress).await {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    stop_after("launched");
    let made = match mark_installing(ctx, config).await {
        Ok(()) => bake(ctx, config, &recipe, timeout, progress).await,
        Err(e) => Err(e),
    };
    progress.say(&format!("Removing the builder {}", config.made.instance_id));
    let removed = ops::run(ctx, Op::Remove, &Input::default(), config, progress).await;
    let _ = std::fs::remove_dir_all(&dir);
    let ami = made?;
    removed?;
    Ok(ami)
}

/// The label on a running builder (not an ownership tag: the shipped policy lets ec2spot
/// label what it owns, never change its own tags after creation).
pub const BUILD_LABEL: &str = "ec2spot-image-build";

/// Labels the running builder `ec2spot-image-build=installing`: what it is doing, in the
/// console, until it powers off.
async fn mark_installing(ctx: &Context, config: &Config) -> Result<()> {
    ctx.client
        .create_tags()
        .resources(&config.made.instance_id)
        .tags(tags::tag_list(&[(BUILD_LABEL.into(), "installing".into())])[0].clone())
        .send()
        .await
        .map_err(|e| aws("tagging the builder (CreateTags)", e))?;
    Ok(())
}

/// Waits for the builder to power off, makes the image, waits for it and marks it ready.
async fn bake(
    ctx: &Context,
    config: &Config,
    recipe: &Recipe,
    timeout: Duration,
    progress: &Progress,
) -> Result<String> {
    let ec2 = &ctx.client;
    progress.say(&format!(
        "Waiting for the builder {} to install Docker and power off (up to {} min)",
        config.made.instance_id,
        timeout.as_secs() / 60
    ));
    wait_stopped(ec2, &config.made.instance_id, timeout).await?;
    stop_after("stopped");
    let ami = create_image(ec2, config, recipe).await?;
    progress.say(&format!("Made {ami}; waiting until it is available"));
    stop_after("image");
    wait_available(ec2, &ami, timeout).await?;
    ec2.create_tags()
        .resources(&ami)
        .tags(tags::tag_list(&[(baked::STATE.into(), "ready".into())])[0].clone())
        .send()
        .await
        .map_err(|e| aws("marking the image ready (CreateTags)", e))?;
    progress.say(&format!(
        "Baked image {ami} is ready (recipe {}, from {})",
        recipe.hash(),
        recipe.base_ami
    ));
    Ok(ami)
}

/// How often the build looks at the builder and the image.
const POLL: Duration = Duration::from_secs(2);

async fn wait_stopped(ec2: &aws_sdk_ec2::Client, id: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| aws("watching the builder (DescribeInstances)", e))?;
        let state = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
            })
            .unwrap_or_default();
        match state.as_str() {
            "stopped" => return Ok(()),
            "terminated" | "shutting-down" => {
                return Err(Error::Other(format!(
                    "the builder {id} was terminated before it powered off"
                )));
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Other(format!(
                "the builder {id} did not power off within {} min: its console output \
                 (aws ec2 get-console-output --instance-id {id}) shows why",
                timeout.as_secs() / 60
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The image's tags: ownership (so `gc` finds a `building` one), `Name`, the recipe's.
fn image_tags(config: &Config, recipe: &Recipe) -> Vec<(String, String)> {
    let mut t = tags::machine_tags(
        &config.asked.machine_name,
        &config.asked.machine_id,
        &manager::manager_id(&config.asked.store_path),
        &[],
    );
    t.extend([
        (baked::RECIPE.to_string(), recipe.hash()),
        (baked::BASE.to_string(), recipe.base_ami.clone()),
        (baked::DOCKER.to_string(), recipe.docker_version.clone()),
        (baked::STATE.to_string(), "building".to_string()),
    ]);
    t
}

async fn create_image(
    ec2: &aws_sdk_ec2::Client,
    config: &Config,
    recipe: &Recipe,
) -> Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let t = image_tags(config, recipe);
    let out = ec2
        .create_image()
        .instance_id(&config.made.instance_id)
        .name(format!("{}-{now}", config.asked.machine_name))
        .description(format!(
            "ec2spot baked image: {} with Docker {}{}",
            recipe.base_ami,
            if recipe.docker_version.is_empty() {
                "(the archive's)"
            } else {
                &recipe.docker_version
            },
            if recipe.pulls.is_empty() {
                String::new()
            } else {
                format!(", pulled {}", recipe.pulls.join(" "))
            }
        ))
        .tag_specifications(tags::tag_spec(ResourceType::Image, &t))
        .tag_specifications(tags::tag_spec(ResourceType::Snapshot, &t))
        .send()
        .await
        .map_err(|e| aws("making the image (CreateImage)", e))?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| Error::Other("CreateImage answered no image id".into()))
}

async fn wait_available(ec2: &aws_sdk_ec2::Client, ami: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let out = ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(|e| aws("waiting for the image (DescribeImages)", e))?;
        let state = out
            .images()
            .first()
            .and_then(|i| i.state())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        match state.as_str() {
            "available" => return Ok(()),
            "failed" | "error" | "invalid" => {
                return Err(Error::Other(format!("the image {ami} is {state}")));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(Error::Other(format!(
                    "the image {ami} is still {state} after {} min",
                    timeout.as_secs() / 60
                )));
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// This account's baked images (any manager's), newest first.
pub async fn list(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Image>> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(baked::RECIPE)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws("listing baked images (DescribeImages)", e))?;
    let mut images = out.images().to_vec();
    images.sort_by(|a, b| b.creation_date().cmp(&a.creation_date()));
    Ok(images)
}

/// One line of `image list`.
pub fn line(i: &Image) -> String {
    format!(
        "{}  {}  {}  recipe {}  base {}  docker {}  {}",
        i.image_id().unwrap_or_default(),
        i.creation_date().unwrap_or_default(),
        baked::tag_of(i, baked::STATE),
        baked::tag_of(i, baked::RECIPE),
        baked::tag_of(i, baked::BASE),
        match baked::tag_of(i, baked::DOCKER) {
            v if v.is_empty() => "(archive's)".to_string(),
            v => v,
        },
        i.name().unwrap_or_default()
    )
}

/// Deregisters `image` and deletes its snapshots.
pub async fn delete(ec2: &aws_sdk_ec2::Client, image: &Image) -> Result<()> {
    let id = image.image_id().unwrap_or_default();
    ec2.deregister_image()
        .image_id(id)
        .send()
        .await
        .map_err(|e| aws("deregistering the image (DeregisterImage)", e))?;
    for snap in image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
    {
        ec2.delete_snapshot()
            .snapshot_id(snap)
            .send()
            .await
            .map_err(|e| aws("deleting the image's snapshot (DeleteSnapshot)", e))?;
    }
    Ok(())
}

/// `image prune --keep N`: per recipe, the ready images beyond the newest `keep`, deleted;
/// their lines.
pub async fn prune(ec2: &aws_sdk_ec2::Client, keep: usize) -> Result<Vec<String>> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut out = Vec::new();
    for i in list(ec2).await? {
        if baked::tag_of(&i, baked::STATE) != "ready" {
            continue; // a build under way, or gc's (interrupted)
        }
        let n = seen.entry(baked::tag_of(&i, baked::RECIPE)).or_default();
        *n += 1;
        if *n > keep {
            delete(ec2, &i).await?;
            out.push(line(&i));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe {
            base_ami: "ami-0123456789abcdef0".into(),
            docker_version: "26.1".into(),
            pulls: vec!["alpine:3.20".into()],
            proxy: vec![("HTTP_PROXY".into(), "http://10.0.0.5:3128".into())],
        }
    }

    #[test]
    fn the_hash_is_the_recipe_not_the_proxy() {
        let a = recipe();
        assert_eq!(a.hash().len(), 16);
        let mut b = a.clone();
        b.proxy.clear();
        assert_eq!(a.hash(), b.hash(), "the proxy is how, not what");
        for change in [
            |r: &mut Recipe| r.base_ami = "ami-1".into(),
            |r: &mut Recipe| r.docker_version.clear(),
            |r: &mut Recipe| r.pulls.push("busybox".into()),
        ] {
            let mut c = a.clone();
            change(&mut c);
            assert_ne!(a.hash(), c.hash());
        }
        assert!(builder_name(&a).starts_with("ec2spot-image-"));
    }

    #[test]
    fn the_script_installs_pulls_and_powers_off() {
        let s = recipe().script();
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        for needle in [
            "export HTTP_PROXY='http://10.0.0.5:3128' http_proxy='http://10.0.0.5:3128'\n",
            "want='26.1'\n",
            "pulls='alpine:3.20'\n",
            "systemctl disable docker.service",
            "systemctl enable docker.socket",
            "cloud-init clean --logs",
            "poweroff",
        ] {
            assert!(s.contains(needle), "{needle}: {s}");
        }
    }

    #[test]
    fn pulls_and_engine_env_are_checked() {
        assert!(
            check_pull(
                "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v18.0.0"
            )
            .is_ok()
        );
        assert!(check_pull("a;reboot").is_err());
        assert!(check_pull("").is_err());
        assert_eq!(
            parse_engine_env("HTTPS_PROXY=http://p:3128").unwrap(),
            ("HTTPS_PROXY".to_string(), "http://p:3128".to_string())
        );
        assert!(parse_engine_env("FOO=bar").is_err());
        assert!(parse_engine_env("HTTP_PROXY=http://a';reboot;'").is_err());
        assert!(parse_engine_env("HTTP_PROXY").is_err());
    }
}
