//! EC2's eventual consistency and timing where moto is immediate. Each behaviour follows a
//! page of EC2's documentation (named where it is played), with a window of its own
//! ([`Windows`]):
//!
//! * **Fresh ids are not found** ("Eventual consistency in the Amazon EC2 API",
//!   <https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>: "if you run a
//!   command to modify or describe the resource that you just created, its ID might not have
//!   propagated throughout the system, and you will get an error responding that the resource
//!   does not exist"): an instance, security group, key pair, launch template or spot request
//!   the plugin made less than `consistency` ago is answered `…NotFound` when a call names it
//!   (also a launch whose template names such a key pair or group), and is missing from reads
//!   by filter.
//! * **Instances start `pending`** (API_InstanceState; "Instance state changes",
//!   <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html>): for
//!   `pending` after a launch or a start, where moto runs them at once.
//! * **Termination takes time** (the same lifecycle page: `shutting-down` before `terminated`;
//!   API_DeleteSecurityGroup: "If you attempt to delete a security group that is associated
//!   with an instance … the operation fails with `DependencyViolation`"): for `shutting_down`
//!   after `TerminateInstances` an instance answers `shutting-down` and keeps its network
//!   interface and groups, and a group any live or leaving instance uses cannot be deleted
//!   (moto deletes the interface at once and deletes a group in use). Terminating a terminated
//!   instance succeeds (API_TerminateInstances: "each call succeeds"), where moto fails.
//! * **One-time spot instances cannot be stopped** (API_StopInstances; "Stop a Spot Instance",
//!   <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/stopping-a-spot-instance.html>: only
//!   those of persistent requests, and not those an instant EC2 Fleet launched):
//!   `UnsupportedOperation`.
//! * **Every spot instance names its spot request** ([`super::spot_requests`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::spot_requests::{self, SpotRequest};
use super::xml::{self, Element};
use crate::ec2_proxy::{Layer, LayerFuture, Request, Verdict, error_body};

/// How long each behaviour lasts.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// A new id is "not found" for this long (`EC2SPOT_TEST_CONSISTENCY_MS`, default 1000).
    pub consistency: Duration,
    /// A launched or started instance is `pending` this long (`EC2SPOT_TEST_PENDING_MS`,
    /// default 1500).
    pub pending: Duration,
    /// A terminated instance is `shutting-down`, holding its groups, this long
    /// (`EC2SPOT_TEST_SHUTDOWN_MS`, default 1500).
    pub shutting_down: Duration,
}

impl Windows {
    /// From the environment (see the fields).
    pub fn from_env() -> Windows {
        let ms = |var: &str, default: u64| {
            Duration::from_millis(
                std::env::var(var)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default),
            )
        };
        Windows {
            consistency: ms("EC2SPOT_TEST_CONSISTENCY_MS", 1000),
            pending: ms("EC2SPOT_TEST_PENDING_MS", 1500),
            shutting_down: ms("EC2SPOT_TEST_SHUTDOWN_MS", 1500),
        }
    }
}

/// What a fresh id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Instance,
    Group,
    KeyPair,
    TemplateId,
    TemplateName,
    SpotRequest,
}

impl Kind {
    /// EC2's error code and message for an id of this kind it does not know.
    fn not_found(self, ids: &[String]) -> (String, String) {
        let list = ids.join(", ");
        let one = ids.len() == 1;
        match self {
            Kind::Instance if one => (
                "InvalidInstanceID.NotFound".into(),
                format!("The instance ID '{list}' does not exist"),
            ),
            Kind::Instance => (
                "InvalidInstanceID.NotFound".into(),
                format!("The instance IDs '{list}' do not exist"),
            ),
            Kind::Group => (
                "InvalidGroup.NotFound".into(),
                format!("The security group '{list}' does not exist"),
            ),
            Kind::KeyPair => (
                "InvalidKeyPair.NotFound".into(),
                format!("The key pair '{list}' does not exist"),
            ),
            Kind::TemplateId => (
                "InvalidLaunchTemplateId.NotFound".into(),
                format!("The specified launch template, with template ID {list}, does not exist."),
            ),
            Kind::TemplateName => (
                "InvalidLaunchTemplateName.NotFoundException".into(),
                format!(
                    "The specified launch template, with template name {list}, does not exist."
                ),
            ),
            Kind::SpotRequest => (
                "InvalidSpotInstanceRequestID.NotFound".into(),
                format!("The spot instance request ID '{list}' does not exist"),
            ),
        }
    }

    /// The kind of a resource id by its prefix (`ResourceId.N` of the tag calls).
    fn of_id(id: &str) -> Option<Kind> {
        let prefix = id.split('-').next()?;
        Some(match prefix {
            "i" => Kind::Instance,
            "sg" => Kind::Group,
            "key" => Kind::KeyPair,
            "lt" => Kind::TemplateId,
            "sir" => Kind::SpotRequest,
            _ => return None,
        })
    }
}

/// An instance as the layer follows it.
#[derive(Debug, Clone)]
struct Launched {
    /// Launched or last started: `pending` until `pending` after.
    since: Instant,
    /// Whether `StopInstances` may stop it.
    stoppable: bool,
}

/// An instance being terminated.
#[derive(Debug, Clone)]
struct Leaving {
    since: Instant,
    groups: Vec<String>,
    /// Its network interfaces with their groups.
    interfaces: Vec<(String, Vec<String>)>,
}

/// What a launch template names (the launch checks it, not the template's creation:
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-template-restrictions.html>).
#[derive(Debug, Clone, Default)]
struct Template {
    key: Option<String>,
    groups: Vec<String>,
}

#[derive(Default)]
struct Inner {
    made: HashMap<(Kind, String), Instant>,
    launched: HashMap<String, Launched>,
    leaving: HashMap<String, Leaving>,
    templates: HashMap<String, Template>,
    spot: Vec<SpotRequest>,
    /// `instance-state-name` values a rewritten DescribeInstances asked for, by request.
    wanted_states: HashMap<Instant, Vec<String>>,
    next: u64,
}

/// The layer.
pub struct Consistency {
    windows: Windows,
    moto_url: String,
    inner: Mutex<Inner>,
}

impl Consistency {
    /// The layer in front of moto at `moto_url`.
    pub fn new(moto_url: &str, windows: Windows) -> Consistency {
        Consistency {
            windows,
            moto_url: moto_url.into(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn moto(&self, region: &str) -> aws_sdk_ec2::Client {
        crate::moto::ec2_client(&self.moto_url, region)
    }

    fn is_fresh(&self, inner: &Inner, kind: Kind, id: &str) -> bool {
        inner
            .made
            .get(&(kind, id.to_string()))
            .is_some_and(|at| at.elapsed() < self.windows.consistency)
    }

    fn remember(&self, inner: &mut Inner, kind: Kind, id: &str) {
        let window = self.windows.consistency;
        inner.made.retain(|_, at| at.elapsed() < window);
        inner.made.insert((kind, id.to_string()), Instant::now());
    }

    /// The fresh ids `req` names, as EC2's refusal.
    fn refusal(&self, inner: &Inner, req: &Request) -> Option<(String, String)> {
        let mut fresh: Vec<(Kind, String)> = Vec::new();
        for (k, v) in &req.params {
            let Some(kind) = named_kind(&req.action, k, v) else {
                continue;
            };
            if self.is_fresh(inner, kind, v) {
                fresh.push((kind, v.clone()));
            }
        }
        if let Some((kind, _)) = fresh.first() {
            let ids: Vec<String> = fresh
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, id)| id.clone())
                .collect();
            return Some(kind.not_found(&ids));
        }
        if req.action == "RunInstances" {
            return self
                .template_refusal(inner, req)
                .map(|(kind, id)| kind.not_found(&[id]));
        }
        None
    }

    /// A fresh key pair or group named by the launch template `req` launches from.
    fn template_refusal(&self, inner: &Inner, req: &Request) -> Option<(Kind, String)> {
        let template = req
            .params
            .iter()
            .filter(|(k, _)| k.ends_with("LaunchTemplateId") || k.ends_with("LaunchTemplateName"))
            .find_map(|(_, v)| inner.templates.get(v))?;
        if let Some(key) = &template.key
            && self.is_fresh(inner, Kind::KeyPair, key)
        {
            return Some((Kind::KeyPair, key.clone()));
        }
        template
            .groups
            .iter()
            .find(|g| self.is_fresh(inner, Kind::Group, g))
            .map(|g| (Kind::Group, g.clone()))
    }

    async fn before_request(&self, req: &Request) -> Verdict {
        let judged = req.access_key_id() != Some(crate::moto::HARNESS_ACCESS_KEY);
        {
            let mut inner = self.inner.lock().unwrap();
            match req.action.as_str() {
                "DescribeSpotInstanceRequests" => {
                    let w = self.windows.consistency;
                    let (s, b) = spot_requests::describe(&inner.spot, req, |r| {
                        !judged || r.made.elapsed() >= w
                    });
                    return Verdict::Answer(s, b);
                }
                "CancelSpotInstanceRequests" => {
                    let w = self.windows.consistency;
                    let (s, b) = spot_requests::cancel(&mut inner.spot, req, |r| {
                        !judged || r.made.elapsed() >= w
                    });
                    return Verdict::Answer(s, b);
                }
                _ => {}
            }
            if judged && let Some((code, message)) = self.refusal(&inner, req) {
                return Verdict::Refuse(400, error_body(&code, &message));
            }
            if judged
                && req.action == "CreateFleet"
                && let Some((kind, id)) = self.template_refusal(&inner, req)
            {
                let (code, message) = kind.not_found(&[id]);
                inner.next += 1;
                return Verdict::Refuse(200, fleet_errors(req, inner.next, &code, &message));
            }
            if req.action == "StopInstances" {
                for id in req.list("InstanceId") {
                    if inner.launched.get(id).is_some_and(|l| !l.stoppable) {
                        return Verdict::Refuse(
                            400,
                            error_body(
                                "UnsupportedOperation",
                                &format!(
                                    "You can't stop the Spot Instance '{id}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests."
                                ),
                            ),
                        );
                    }
                }
            }
            if req.action == "DescribeInstances" {
                return self.widen_state_filter(&mut inner, req);
            }
        }
        match req.action.as_str() {
            "TerminateInstances" => self.terminating(req).await,
            "DeleteSecurityGroup" => self.group_in_use(req).await,
            _ => Verdict::Pass,
        }
    }

    /// moto knows only `running` and `terminated` where EC2 shows `pending` and
    /// `shutting-down`: a state filter is widened to what moto holds, and applied to the
    /// states as EC2 shows them in [`Self::after_answer`].
    fn widen_state_filter(&self, inner: &mut Inner, req: &Request) -> Verdict {
        let Some(n) = (1..)
            .take_while(|n| req.param(&format!("Filter.{n}.Name")).is_some())
            .find(|n| req.param(&format!("Filter.{n}.Name")) == Some("instance-state-name"))
        else {
            return Verdict::Pass;
        };
        let prefix = format!("Filter.{n}.Value");
        let wanted: Vec<String> = req.list(&prefix).into_iter().map(str::to_string).collect();
        let mut widened = wanted.clone();
        for (shown, held) in [("shutting-down", "terminated"), ("pending", "running")] {
            if wanted.iter().any(|w| w == shown) && !widened.iter().any(|w| w == held) {
                widened.push(held.into());
            }
        }
        inner.wanted_states.insert(req.id(), wanted);
        let mut params: Vec<(String, String)> = req
            .params
            .iter()
            .filter(|(k, _)| !(k.starts_with(&prefix) && k[prefix.len()..].starts_with('.')))
            .cloned()
            .collect();
        for (m, v) in widened.iter().enumerate() {
            params.push((format!("{prefix}.{}", m + 1), v.clone()));
        }
        Verdict::Rewrite(params)
    }

    /// `TerminateInstances`: the instances keep their interfaces and groups while shutting
    /// down; a terminated one is terminated again successfully.
    async fn terminating(&self, req: &Request) -> Verdict {
        let ids: Vec<String> = req
            .list("InstanceId")
            .into_iter()
            .map(str::to_string)
            .collect();
        let Some(instances) = self.motos_instances(req.region(), &ids).await else {
            return Verdict::Pass;
        };
        let gone = |id: &str| {
            instances.iter().any(|i| {
                i.instance_id() == Some(id)
                    && i.state().and_then(|s| s.name()).map(|s| s.as_str()) == Some("terminated")
            })
        };
        self.close_motos_requests(req.region(), &ids).await;
        let mut inner = self.inner.lock().unwrap();
        for i in &instances {
            let id = i.instance_id().unwrap_or_default().to_string();
            for r in inner.spot.iter_mut().filter(|r| r.instance_id == id) {
                r.instance_terminated();
            }
            if gone(&id) {
                continue;
            }
            inner.leaving.insert(id, leaving_of(i));
        }
        let live: Vec<&String> = ids.iter().filter(|id| !gone(id)).collect();
        let known = |id: &String| {
            instances
                .iter()
                .any(|i| i.instance_id() == Some(id.as_str()))
        };
        if live.is_empty() && ids.iter().all(known) {
            // All terminated already: EC2 answers success; moto would fail.
            return self.terminated_again(&inner, &ids);
        }
        if live.len() < ids.len() && !live.is_empty() {
            return Verdict::Rewrite(with_instances(req, &live));
        }
        Verdict::Pass
    }

    /// The instances `ids` as moto holds them; `None` when moto could not be asked.
    async fn motos_instances(
        &self,
        region: &str,
        ids: &[String],
    ) -> Option<Vec<aws_sdk_ec2::types::Instance>> {
        let out = self
            .moto(region)
            .describe_instances()
            .filters(of_instances(ids))
            .send()
            .await
            .ok()?;
        Some(
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned()
                .collect(),
        )
    }

    /// EC2's success answer to terminating `ids`, all terminated already: each in the state
    /// it is leaving through, before and after.
    fn terminated_again(&self, inner: &Inner, ids: &[String]) -> Verdict {
        let items = ids
            .iter()
            .map(|id| {
                let state = self.leaving_state(inner, id);
                Element::with(
                    "item",
                    vec![
                        Element::with_text("instanceId", id),
                        state_element("currentState", state),
                        state_element("previousState", state),
                    ],
                )
            })
            .collect();
        let (s, b) = spot_requests::ok(
            "TerminateInstancesResponse",
            vec![Element::with("instancesSet", items)],
        );
        Verdict::Answer(s, b)
    }

    /// moto keeps spot requests of its own for an EC2 Fleet's spot instances and leaves them
    /// open when the instance goes; EC2 closes a one-time request with its instance.
    async fn close_motos_requests(&self, region: &str, ids: &[String]) {
        let moto = self.moto(region);
        let Ok(out) = moto
            .describe_spot_instance_requests()
            .filters(of_instances(ids))
            .send()
            .await
        else {
            return;
        };
        let sirs: Vec<String> = out
            .spot_instance_requests()
            .iter()
            .filter_map(|r| r.spot_instance_request_id().map(str::to_string))
            .collect();
        if !sirs.is_empty() {
            let _ = moto
                .cancel_spot_instance_requests()
                .set_spot_instance_request_ids(Some(sirs))
                .send()
                .await;
        }
    }

    fn leaving_state(&self, inner: &Inner, id: &str) -> &'static str {
        match inner.leaving.get(id) {
            Some(l) if l.since.elapsed() < self.windows.shutting_down => "shutting-down",
            _ => "terminated",
        }
    }

    /// `DeleteSecurityGroup` of a group a live or shutting-down instance uses.
    async fn group_in_use(&self, req: &Request) -> Verdict {
        let Some(group) = req.param("GroupId").map(str::to_string) else {
            return Verdict::Pass;
        };
        let leaving_user = {
            let inner = self.inner.lock().unwrap();
            inner.leaving.iter().any(|(id, l)| {
                self.leaving_state(&inner, id) == "shutting-down" && l.groups.contains(&group)
            })
        };
        let live_user = match self.moto(req.region()).describe_instances().send().await {
            Ok(out) => out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| {
                    i.state().and_then(|s| s.name()).map(|s| s.as_str()) != Some("terminated")
                })
                .any(|i| {
                    i.security_groups()
                        .iter()
                        .chain(i.network_interfaces().iter().flat_map(|n| n.groups()))
                        .any(|g| g.group_id() == Some(group.as_str()))
                }),
            Err(_) => false,
        };
        if leaving_user || live_user {
            return Verdict::Refuse(
                400,
                error_body(
                    "DependencyViolation",
                    &format!("resource {group} has a dependent object"),
                ),
            );
        }
        Verdict::Pass
    }

    /// moto's answer to `req` as EC2 would give it (the layer also learns what the answer
    /// made: fresh ids, launched instances, spot requests, templates).
    fn after_answer(&self, req: &Request, status: u16, body: String) -> (u16, String) {
        let mut inner = self.inner.lock().unwrap();
        let wanted = inner.wanted_states.remove(&req.id());
        if status != 200 {
            return (status, body);
        }
        let Some(mut root) = xml::parse(&body) else {
            return (status, body);
        };
        let judged = req.access_key_id() != Some(crate::moto::HARNESS_ACCESS_KEY);
        let changed = match req.action.as_str() {
            "RunInstances" => self.launched(&mut inner, req, &mut root, judged),
            "CreateFleet" => self.fleet_launched(&mut inner, req, &mut root, judged),
            "StartInstances" => {
                Self::started(&mut inner, req);
                false
            }
            "TerminateInstances" => {
                shown_shutting_down(&mut root);
                true
            }
            "CreateSecurityGroup" => {
                if judged {
                    self.remember_answered(&mut inner, &root, Kind::Group, &["groupId"]);
                }
                false
            }
            "ImportKeyPair" | "CreateKeyPair" => {
                if judged {
                    let paths = ["keyName", "keyPairId"];
                    self.remember_answered(&mut inner, &root, Kind::KeyPair, &paths);
                }
                false
            }
            "CreateLaunchTemplate" => {
                self.template_made(&mut inner, req, &root, judged);
                false
            }
            "DescribeInstances" => {
                self.instances_as_ec2_shows(&inner, req, &mut root, wanted, judged)
            }
            "DescribeSecurityGroups" if judged && is_filter_read(req, "GroupId") => self
                .hide_fresh(
                    &inner,
                    &mut root,
                    "securityGroupInfo",
                    "groupId",
                    Kind::Group,
                ),
            "DescribeKeyPairs" if judged && is_filter_read(req, "KeyName") => {
                self.hide_fresh(&inner, &mut root, "keySet", "keyName", Kind::KeyPair)
            }
            "DescribeLaunchTemplates" if judged && is_filter_read(req, "LaunchTemplateId") => self
                .hide_fresh(
                    &inner,
                    &mut root,
                    "launchTemplates",
                    "launchTemplateId",
                    Kind::TemplateId,
                ),
            "DescribeNetworkInterfaces" => self.leaving_interfaces(&inner, req, &mut root),
            _ => false,
        };
        if changed {
            (status, root.to_document())
        } else {
            (status, body)
        }
    }

    /// `StartInstances`' instances: `pending` again from now.
    fn started(inner: &mut Inner, req: &Request) {
        for id in req.list("InstanceId") {
            if let Some(l) = inner.launched.get_mut(id) {
                l.since = Instant::now();
            }
        }
    }

    /// Remembers as fresh ids of `kind` the values the answer `root` gives at `paths`.
    fn remember_answered(&self, inner: &mut Inner, root: &Element, kind: Kind, paths: &[&str]) {
        for k in paths {
            if let Some(v) = root.text_at(k) {
                self.remember(inner, kind, &v);
            }
        }
    }

    /// `CreateLaunchTemplate`: remembers what the template names, by its id and its name
    /// (both fresh when `judged`).
    fn template_made(&self, inner: &mut Inner, req: &Request, root: &Element, judged: bool) {
        let id = root.text_at("launchTemplate/launchTemplateId");
        let name = root.text_at("launchTemplate/launchTemplateName");
        let t = Template {
            key: req.param("LaunchTemplateData.KeyName").map(str::to_string),
            groups: req
                .params
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("LaunchTemplateData.")
                        && (k.contains(".SecurityGroupId.") || k.contains("SecurityGroupIds."))
                })
                .map(|(_, v)| v.clone())
                .collect(),
        };
        for (kind, v) in [(Kind::TemplateId, id), (Kind::TemplateName, name)] {
            if let Some(v) = v {
                if judged {
                    self.remember(inner, kind, &v);
                }
                inner.templates.insert(v, t.clone());
            }
        }
    }

    /// `RunInstances`' instances: fresh, pending, and (spot) with a spot request.
    fn launched(&self, inner: &mut Inner, req: &Request, root: &mut Element, judged: bool) -> bool {
        let spot = req.param("InstanceMarketOptions.MarketType") == Some("spot");
        let kind = req
            .param("InstanceMarketOptions.SpotOptions.SpotInstanceType")
            .unwrap_or("one-time")
            .to_string();
        let stops = req.param("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior")
            == Some("stop");
        let tags = tag_spec(req, "spot-instances-request");
        let itype = req.param("InstanceType").unwrap_or("m1.small").to_string();
        let Some(set) = root.at_mut("instancesSet") else {
            return false;
        };
        for item in set.elements_mut() {
            let Some(id) = item.text_at("instanceId") else {
                continue;
            };
            if judged {
                self.remember(inner, Kind::Instance, &id);
            }
            inner.launched.insert(
                id.clone(),
                Launched {
                    since: Instant::now(),
                    stoppable: !spot || (kind == "persistent" && stops),
                },
            );
            if spot {
                inner.next += 1;
                let r = SpotRequest::new(inner.next, &id, &itype, &kind, tags.clone());
                if judged {
                    self.remember(inner, Kind::SpotRequest, &r.id);
                }
                item.set_child_text("spotInstanceRequestId", &r.id);
                inner.spot.push(r);
            }
            if let Some(state) = item.child_mut("instanceState") {
                *state = state_element("instanceState", "pending");
            }
        }
        true
    }

    /// An instant fleet's instances: fresh, pending, not stoppable when spot, each spot one
    /// with an untagged spot request.
    fn fleet_launched(
        &self,
        inner: &mut Inner,
        req: &Request,
        root: &mut Element,
        judged: bool,
    ) -> bool {
        let Some(set) = root.at("fleetInstanceSet") else {
            return false;
        };
        for item in set.elements() {
            let spot = item.text_at("lifecycle").as_deref() == Some("spot");
            let itype = item.text_at("instanceType").unwrap_or_default();
            let ids: Vec<String> = item
                .child("instanceIds")
                .map(|s| s.elements().map(Element::text).collect())
                .unwrap_or_default();
            for id in ids {
                if judged {
                    self.remember(inner, Kind::Instance, &id);
                }
                inner.launched.insert(
                    id.clone(),
                    Launched {
                        since: Instant::now(),
                        stoppable: !(spot && req.param("Type") == Some("instant")),
                    },
                );
                if spot {
                    inner.next += 1;
                    let r = SpotRequest::new(inner.next, &id, &itype, "one-time", Vec::new());
                    if judged {
                        self.remember(inner, Kind::SpotRequest, &r.id);
                    }
                    inner.spot.push(r);
                }
            }
        }
        false
    }

    /// DescribeInstances as EC2 would answer: fresh instances missing from reads by filter,
    /// `pending` and `shutting-down` states, spot request ids, the state filter applied.
    fn instances_as_ec2_shows(
        &self,
        inner: &Inner,
        req: &Request,
        root: &mut Element,
        wanted: Option<Vec<String>>,
        judged: bool,
    ) -> bool {
        let by_filter = is_filter_read(req, "InstanceId");
        let Some(reservations) = root.at_mut("reservationSet") else {
            return false;
        };
        for r in reservations.elements_mut() {
            let Some(set) = r.child_mut("instancesSet") else {
                continue;
            };
            set.retain_elements(|i| {
                let id = i.text_at("instanceId").unwrap_or_default();
                !(judged && by_filter && self.is_fresh(inner, Kind::Instance, &id))
            });
            for i in set.elements_mut() {
                let id = i.text_at("instanceId").unwrap_or_default();
                let held = i.text_at("instanceState/name").unwrap_or_default();
                let shown = match held.as_str() {
                    "running"
                        if inner
                            .launched
                            .get(&id)
                            .is_some_and(|l| l.since.elapsed() < self.windows.pending) =>
                    {
                        "pending"
                    }
                    "terminated" => self.leaving_state(inner, &id),
                    _ => "",
                };
                if !shown.is_empty() {
                    *i.child_mut("instanceState").expect("read above") =
                        state_element("instanceState", shown);
                }
                if i.child("spotInstanceRequestId").is_none()
                    && let Some(r) = inner.spot.iter().find(|r| r.instance_id == id)
                {
                    i.set_child_text("spotInstanceRequestId", &r.id);
                }
            }
            if let Some(wanted) = &wanted {
                set.retain_elements(|i| {
                    let s = i.text_at("instanceState/name").unwrap_or_default();
                    wanted.contains(&s)
                });
            }
        }
        reservations.retain_elements(|r| {
            r.at("instancesSet")
                .is_some_and(|s| s.elements().next().is_some())
        });
        true
    }

    fn hide_fresh(
        &self,
        inner: &Inner,
        root: &mut Element,
        set: &str,
        id: &str,
        kind: Kind,
    ) -> bool {
        let Some(set) = root.at_mut(set) else {
            return false;
        };
        set.retain_elements(|item| {
            !item
                .text_at(id)
                .is_some_and(|v| self.is_fresh(inner, kind, &v))
        });
        true
    }

    /// The interfaces of shutting-down instances, which moto deleted at once, in reads by
    /// group.
    fn leaving_interfaces(&self, inner: &Inner, req: &Request, root: &mut Element) -> bool {
        let groups: Vec<String> = spot_requests::filters(req)
            .into_iter()
            .filter(|(n, _)| n == "group-id")
            .flat_map(|(_, v)| v)
            .collect();
        if groups.is_empty() {
            return false;
        }
        let Some(set) = root.at_mut("networkInterfaceSet") else {
            return false;
        };
        let present: Vec<String> = set
            .elements()
            .filter_map(|i| i.text_at("networkInterfaceId"))
            .collect();
        for (id, l) in &inner.leaving {
            if self.leaving_state(inner, id) != "shutting-down" {
                continue;
            }
            for (eni, gs) in &l.interfaces {
                if present.contains(eni) || !gs.iter().any(|g| groups.contains(g)) {
                    continue;
                }
                let group_items = gs
                    .iter()
                    .map(|g| Element::with("item", vec![Element::with_text("groupId", g)]))
                    .collect();
                set.push(Element::with(
                    "item",
                    vec![
                        Element::with_text("networkInterfaceId", eni),
                        Element::with(
                            "attachment",
                            vec![
                                Element::with_text("instanceId", id),
                                Element::with_text("deviceIndex", "0"),
                                Element::with_text("status", "detaching"),
                            ],
                        ),
                        Element::with("groupSet", group_items),
                        Element::with_text("status", "in-use"),
                    ],
                ));
            }
        }
        true
    }
}

impl Layer for Consistency {
    fn name(&self) -> &'static str {
        "consistency"
    }

    fn before<'a>(&'a self, req: &'a Request) -> LayerFuture<'a, Verdict> {
        Box::pin(self.before_request(req))
    }

    fn after<'a>(
        &'a self,
        req: &'a Request,
        status: u16,
        body: String,
    ) -> LayerFuture<'a, (u16, String)> {
        Box::pin(async move { self.after_answer(req, status, body) })
    }
}

/// The `instance-id` filter for `ids`.
fn of_instances(ids: &[String]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("instance-id")
        .set_values(Some(ids.to_vec()))
        .build()
}

/// How instance `i` leaves: from now, holding its groups (its own and its network
/// interfaces', once each) and its interfaces with their groups.
fn leaving_of(i: &aws_sdk_ec2::types::Instance) -> Leaving {
    let mut groups: Vec<String> = i
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    let interfaces: Vec<(String, Vec<String>)> = i
        .network_interfaces()
        .iter()
        .map(|n| {
            let gs: Vec<String> = n
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect();
            groups.extend(gs.iter().cloned());
            (n.network_interface_id().unwrap_or_default().to_string(), gs)
        })
        .collect();
    groups.sort();
    groups.dedup();
    Leaving {
        since: Instant::now(),
        groups,
        interfaces,
    }
}

/// `req`'s parameters with its `InstanceId.N` replaced by `ids`.
fn with_instances(req: &Request, ids: &[&String]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = req
        .params
        .iter()
        .filter(|(k, _)| !is_numbered(k, "InstanceId"))
        .cloned()
        .collect();
    for (n, id) in ids.iter().enumerate() {
        params.push((format!("InstanceId.{}", n + 1), (*id).clone()));
    }
    params
}

/// A `TerminateInstances` answer's instances shown `shutting-down`, as EC2 shows them.
fn shown_shutting_down(root: &mut Element) {
    for item in root
        .at_mut("instancesSet")
        .map(|s| s.elements_mut().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if let Some(cur) = item.child_mut("currentState") {
            *cur = state_element("currentState", "shutting-down");
        }
    }
}

/// Whether `k` is `name.N`.
fn is_numbered(k: &str, name: &str) -> bool {
    k.strip_prefix(name)
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// A read by filter (or of everything), not by the ids `id_param`.N.
fn is_filter_read(req: &Request, id_param: &str) -> bool {
    req.list(id_param).is_empty()
}

/// The kind of id parameter `k` (value `v`) of `action` names, if it names one EC2 checks.
fn named_kind(action: &str, k: &str, v: &str) -> Option<Kind> {
    if k.starts_with("LaunchTemplateData.") || action == "CreateLaunchTemplate" {
        return None; // a template's contents are checked at its launch
    }
    if k == "InstanceId" || is_numbered(k, "InstanceId") {
        return Some(Kind::Instance);
    }
    if k == "GroupId"
        || is_numbered(k, "GroupId")
        || is_numbered(k, "SecurityGroupId")
        || (k.starts_with("NetworkInterface.") && k.contains(".SecurityGroupId."))
    {
        return Some(Kind::Group);
    }
    if (k == "KeyName"
        && action != "DeleteKeyPair"
        && action != "ImportKeyPair"
        && action != "CreateKeyPair")
        || is_numbered(k, "KeyName")
        || is_numbered(k, "KeyPairId")
    {
        return Some(Kind::KeyPair);
    }
    if k == "LaunchTemplateId"
        || is_numbered(k, "LaunchTemplateId")
        || k.ends_with(".LaunchTemplateId")
    {
        return Some(Kind::TemplateId);
    }
    if k == "LaunchTemplateName"
        || is_numbered(k, "LaunchTemplateName")
        || k.ends_with(".LaunchTemplateName")
    {
        return Some(Kind::TemplateName);
    }
    if is_numbered(k, "SpotInstanceRequestId") {
        return Some(Kind::SpotRequest);
    }
    if is_numbered(k, "ResourceId") {
        return Kind::of_id(v);
    }
    None
}

/// The tags `req`'s tag specification gives resources of `resource_type`.
pub fn tag_spec(req: &Request, resource_type: &str) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for n in 1.. {
        let Some(t) = req.param(&format!("TagSpecification.{n}.ResourceType")) else {
            break;
        };
        if t != resource_type {
            continue;
        }
        for m in 1.. {
            let Some(k) = req.param(&format!("TagSpecification.{n}.Tag.{m}.Key")) else {
                break;
            };
            let v = req
                .param(&format!("TagSpecification.{n}.Tag.{m}.Value"))
                .unwrap_or_default();
            tags.push((k.to_string(), v.to_string()));
        }
    }
    tags
}

/// An `instanceState`-shaped element (`name`: code and name of API_InstanceState).
fn state_element(name: &str, state: &str) -> Element {
    let code = match state {
        "pending" => "0",
        "running" => "16",
        "shutting-down" => "32",
        "terminated" => "48",
        "stopping" => "64",
        _ => "80",
    };
    Element::with(
        name,
        vec![
            Element::with_text("code", code),
            Element::with_text("name", state),
        ],
    )
}

/// An instant fleet that launched nothing: every override failed with `code` (EC2 reports a
/// launch's refusals per override in `errorSet`, API_CreateFleet).
fn fleet_errors(req: &Request, n: u64, code: &str, message: &str) -> String {
    let lifecycle = match req.param("TargetCapacitySpecification.DefaultTargetCapacityType") {
        Some("spot") => "spot",
        _ => "on-demand",
    };
    let template = req
        .param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId")
        .unwrap_or_default();
    let mut errors = Vec::new();
    for m in 1.. {
        let Some(itype) = req.param(&format!(
            "LaunchTemplateConfigs.1.Overrides.{m}.InstanceType"
        )) else {
            break;
        };
        let subnet = req
            .param(&format!("LaunchTemplateConfigs.1.Overrides.{m}.SubnetId"))
            .unwrap_or_default();
        errors.push(Element::with(
            "item",
            vec![
                Element::with(
                    "launchTemplateAndOverrides",
                    vec![
                        Element::with(
                            "launchTemplateSpecification",
                            vec![
                                Element::with_text("launchTemplateId", template),
                                Element::with_text("version", "$Latest"),
                            ],
                        ),
                        Element::with(
                            "overrides",
                            vec![
                                Element::with_text("instanceType", itype),
                                Element::with_text("subnetId", subnet),
                            ],
                        ),
                    ],
                ),
                Element::with_text("lifecycle", lifecycle),
                Element::with_text("errorCode", code),
                Element::with_text("errorMessage", &xml::escape(message)),
            ],
        ));
    }
    spot_requests::ok(
        "CreateFleetResponse",
        vec![
            Element::with_text("fleetId", &format!("fleet-{n:08x}")),
            Element::with("errorSet", errors),
            Element::with("fleetInstanceSet", Vec::new()),
        ],
    )
    .1
}
