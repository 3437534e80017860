//! The authorisations one EC2 request needs: for each resource it touches, the action, the
//! resource's ARN and the condition context IAM evaluates it in — and the extra
//! `ec2:CreateTags` authorisations of tag-on-create.
//!
//! The keys, as the EC2 User Guide and the Service Authorization Reference define them:
//!
//! * `aws:RequestTag/<k>` and `aws:TagKeys`: the tags the request puts on a resource it
//!   creates — its `TagSpecification.N` of that resource's type — and, for `CreateTags`, its
//!   `Tag.N`. When a launch (`RunInstances`, `CreateFleet`) uses a launch template, the
//!   template's tag specifications are tags of the request too: "Grant permission to tag
//!   Amazon EC2 resources during creation"
//!   (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html>)
//!   says `ec2:CreateTags` "is also evaluated if tags are provided in a launch template", and
//!   the example policy "Tags in a launch template" of "Example policies to control access
//!   to the Amazon EC2 API"
//!   (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html>) allows
//!   the launch's `CreateTags` for tags only the template holds. So the template's tags count
//!   as the launch's request tags, for the resource and for the `CreateTags` check; a tag the
//!   request itself gives for the same type and key wins (EC2 merges the two, the request
//!   overriding the template). Tags of a type the call creates no resource of are not applied
//!   and not evaluated.
//! * `ec2:CreateAction`: on tag-on-create, EC2 authorises `ec2:CreateTags` on each tagged
//!   resource with `ec2:CreateAction` = the creating action (same page).
//! * `ec2:ResourceTag/<k>` (and `aws:ResourceTag/<k>`): the tags an existing resource has,
//!   read from moto as EC2 holds them — except spot requests, which moto does not keep (the
//!   strict layer makes them in its `spot_requests` module): their tags are learned from
//!   the answers that name them (a `RunInstances` spot launch's request carries its
//!   `spot-instances-request` tag specification, an instant fleet's none; see
//!   `IamLayer::after`).
//! * `aws:RequestedRegion` and `ec2:Region`: the request's region.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Tag};

use super::actions::{self, Place, TemplateData, Touched};
use super::policy::Context;
use crate::ec2_proxy::Request;

/// One authorisation: `action` on `resource` in `context`.
#[derive(Debug, Clone)]
pub struct Check {
    /// `ec2:RunInstances`.
    pub action: String,
    /// The resource's ARN, or `*`.
    pub resource: String,
    /// The condition context.
    pub context: Context,
}

/// Sets `aws:RequestTag/<k>` for each tag and `aws:TagKeys`.
fn request_tags(ctx: &mut Context, tags: &[(String, String)]) {
    for (k, v) in tags {
        ctx.set(&format!("aws:RequestTag/{k}"), v.clone());
    }
    if !tags.is_empty() {
        ctx.set_all("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
    }
}

/// Sets `ec2:ResourceTag/<k>` and `aws:ResourceTag/<k>` for each tag.
fn resource_tags(ctx: &mut Context, tags: &[(String, String)]) {
    for (k, v) in tags {
        ctx.set(&format!("ec2:ResourceTag/{k}"), v.clone());
        ctx.set(&format!("aws:ResourceTag/{k}"), v.clone());
    }
}

/// An existing resource's ARN id and tags.
type Found = (String, Vec<(String, String)>);

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// An existing resource as moto holds it: the id its ARN uses (a group or template named by
/// name resolved to its id; a key pair keeps its name) and its tags. `None` when moto does
/// not know it (the layer then lets moto answer, as EC2 answers `…NotFound`).
pub async fn existing(
    ec2: &Client,
    rtype: &str,
    id: &str,
) -> Option<(String, Vec<(String, String)>)> {
    match rtype {
        "instance" => existing_instance(ec2, id).await,
        "volume" => existing_volume(ec2, id).await,
        "security-group" => existing_security_group(ec2, id).await,
        "spot-instances-request" => existing_spot_request(ec2, id).await,
        "launch-template" => existing_launch_template(ec2, id).await,
        "key-pair" => existing_key_pair(ec2, id).await,
        _ => existing_by_describe_tags(ec2, id).await,
    }
}

/// Instance `id` and its tags, as moto holds it.
async fn existing_instance(ec2: &Client, id: &str) -> Option<Found> {
    let r = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .ok()?;
    let i = r.reservations().iter().flat_map(|r| r.instances()).next()?;
    Some((id.into(), pairs(i.tags())))
}

/// Volume `id` and its tags, as moto holds it.
async fn existing_volume(ec2: &Client, id: &str) -> Option<Found> {
    let r = ec2.describe_volumes().volume_ids(id).send().await.ok()?;
    Some((id.into(), pairs(r.volumes().first()?.tags())))
}

/// The security group with id or name `id`: its id and tags, as moto holds it.
async fn existing_security_group(ec2: &Client, id: &str) -> Option<Found> {
    let q = ec2.describe_security_groups();
    let q = if id.starts_with("sg-") {
        q.group_ids(id)
    } else {
        q.group_names(id)
    };
    let r = q.send().await.ok()?;
    let g = r.security_groups().first()?;
    Some((g.group_id()?.to_string(), pairs(g.tags())))
}

/// Spot instance request `id` and its tags, as moto holds it.
async fn existing_spot_request(ec2: &Client, id: &str) -> Option<Found> {
    let r = ec2
        .describe_spot_instance_requests()
        .spot_instance_request_ids(id)
        .send()
        .await
        .ok()?;
    Some((id.into(), pairs(r.spot_instance_requests().first()?.tags())))
}

/// The launch template with id or name `id`: its id and tags, as moto holds it.
async fn existing_launch_template(ec2: &Client, id: &str) -> Option<Found> {
    let q = ec2.describe_launch_templates();
    let q = if id.starts_with("lt-") {
        q.launch_template_ids(id)
    } else {
        q.launch_template_names(id)
    };
    let r = q.send().await.ok()?;
    let t = r.launch_templates().first()?;
    Some((t.launch_template_id()?.to_string(), pairs(t.tags())))
}

/// The key pair with id or name `id`: its name and tags, as moto holds it.
async fn existing_key_pair(ec2: &Client, id: &str) -> Option<Found> {
    let q = ec2.describe_key_pairs();
    let q = if id.starts_with("key-") {
        q.key_pair_ids(id)
    } else {
        q.key_names(id)
    };
    let r = q.send().await.ok()?;
    let k = r.key_pairs().first()?;
    Some((k.key_name()?.to_string(), pairs(k.tags())))
}

/// Resource `id` of any other type and its tags, as moto's `DescribeTags` lists them.
async fn existing_by_describe_tags(ec2: &Client, id: &str) -> Option<Found> {
    let r = ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .ok()?;
    let tags = r
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Some((id.into(), tags))
}

/// The tags a launch applies, per resource type: the template's, then the request's (which
/// win per key).
pub fn launch_tags(
    req: &Request,
    template: Option<&TemplateData>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut by_type: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let from_template = template.map(|t| t.tag_specs.clone()).unwrap_or_default();
    for (rtype, tags) in from_template
        .into_iter()
        .chain(actions::tag_specs(req, "TagSpecification"))
    {
        let entry = by_type.entry(rtype).or_default();
        for (k, v) in tags {
            entry.retain(|(e, _)| *e != k);
            entry.push((k, v));
        }
    }
    by_type
}

/// The authorisations `req` needs (`place`: where its resources are; `template`: the launch
/// template a launch uses; `ec2`: moto, for the tags of existing resources).
pub async fn checks(
    req: &Request,
    place: &Place,
    template: Option<&TemplateData>,
    spot: &HashMap<String, Vec<(String, String)>>,
    ec2: &Client,
) -> Vec<Check> {
    let action = format!("ec2:{}", req.action);
    let base = region_context(place);
    let Some(touched) = actions::touched(req, template) else {
        // Not an action of ec2spot's: judged on `*` (the shipped policy names none such).
        return vec![Check {
            action,
            resource: "*".into(),
            context: base,
        }];
    };
    if touched.is_empty() {
        return vec![Check {
            action,
            resource: "*".into(),
            context: base,
        }];
    }
    let creates = req.action != "CreateTags";
    let tags_by_type = if creates {
        launch_tags(req, template)
    } else {
        BTreeMap::new()
    };
    let tag_params = tag_params(req);
    let mut out = Vec::new();
    for Touched { rtype, id, created } in touched {
        let mut ctx = base.clone();
        let arn_id = if created || id == "*" {
            id.clone()
        } else {
            match known(rtype, &id, spot, ec2).await {
                Some((arn_id, tags)) => {
                    resource_tags(&mut ctx, &tags);
                    arn_id
                }
                // Unknown to moto: EC2 would answer not found; let moto say so.
                None => continue,
            }
        };
        if created && let Some(tags) = tags_by_type.get(rtype) {
            request_tags(&mut ctx, tags);
        }
        if !creates {
            request_tags(&mut ctx, &tag_params);
        }
        out.push(Check {
            action: action.clone(),
            resource: place.arn(rtype, &arn_id),
            context: ctx,
        });
        // Tag-on-create: `ec2:CreateTags` on each resource the call creates and tags.
        if created && let Some(tags) = tags_by_type.get(rtype).filter(|t| !t.is_empty()) {
            out.push(tag_on_create(req, place, &base, rtype, tags));
        }
    }
    if creates {
        unlisted_tag_on_create(req, place, &base, &tags_by_type, &mut out);
    }
    out
}

/// The context every check of a request starts from: its region.
fn region_context(place: &Place) -> Context {
    let mut base = Context::new();
    base.set("aws:RequestedRegion", place.region.clone());
    base.set("ec2:Region", place.region.clone());
    base
}

/// The tags a `CreateTags` request puts (its `Tag.N`).
fn tag_params(req: &Request) -> Vec<(String, String)> {
    (1..)
        .map_while(|n| {
            req.param(&format!("Tag.{n}.Key")).map(|k| {
                (
                    k.to_string(),
                    req.param(&format!("Tag.{n}.Value"))
                        .unwrap_or_default()
                        .to_string(),
                )
            })
        })
        .collect()
}

/// An existing resource's ARN id and tags: a spot request's as learned from the answers
/// that named it (`spot`), else as moto holds it; `None` when neither knows it.
async fn known(
    rtype: &str,
    id: &str,
    spot: &HashMap<String, Vec<(String, String)>>,
    ec2: &Client,
) -> Option<Found> {
    let learned = (rtype == "spot-instances-request")
        .then(|| spot.get(id).map(|tags| (id.to_string(), tags.clone())))
        .flatten();
    match learned {
        Some(k) => Some(k),
        None => existing(ec2, rtype, id).await,
    }
}

/// The tag-on-create check: `ec2:CreateTags` on the `rtype` resources `req` creates with
/// `tags`, with `ec2:CreateAction` = the creating action.
fn tag_on_create(
    req: &Request,
    place: &Place,
    base: &Context,
    rtype: &str,
    tags: &[(String, String)],
) -> Check {
    let mut ctx = base.clone();
    ctx.set("ec2:CreateAction", req.action.clone());
    request_tags(&mut ctx, tags);
    Check {
        action: "ec2:CreateTags".into(),
        resource: place.arn(rtype, "*"),
        context: ctx,
    }
}

/// Adds to `out` the tag-on-create checks for tags of a type the call creates but the
/// reference does not list for the action (a fleet's network interfaces): still
/// tag-on-create, still `ec2:CreateTags`.
fn unlisted_tag_on_create(
    req: &Request,
    place: &Place,
    base: &Context,
    tags_by_type: &BTreeMap<String, Vec<(String, String)>>,
    out: &mut Vec<Check>,
) {
    for (rtype, tags) in tags_by_type {
        let listed = out
            .iter()
            .any(|c| c.action == "ec2:CreateTags" && c.resource == place.arn(rtype, "*"));
        if !listed && launched_here(&req.action, rtype) && !tags.is_empty() {
            out.push(tag_on_create(req, place, base, rtype, tags));
        }
    }
}

/// Whether launch `action` itself creates resources of type `rtype` (its instances, their
/// volumes and network interfaces, and a `RunInstances`'s spot request).
fn launched_here(action: &str, rtype: &str) -> bool {
    matches!(action, "RunInstances" | "CreateFleet")
        && [
            "instance",
            "volume",
            "network-interface",
            "spot-instances-request",
        ]
        .contains(&rtype)
        && !(action == "CreateFleet" && rtype == "spot-instances-request")
}
