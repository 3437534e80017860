//! The spot requests EC2 makes for spot instances, which moto does not: "Amazon EC2 creates a
//! Spot Instance request on your behalf for every Spot Instance that is specified in the EC2
//! Fleet", and `RunInstances` with spot market options makes one too
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-spot-instances-work.html>). Each
//! running spot instance names its request (`SpotInstanceRequestId`, API_Instance). A request
//! made by `RunInstances` carries the request's `spot-instances-request` tag specification;
//! one an instant EC2 Fleet makes carries no tags (CreateFleet tags only `fleet` and
//! `instance`: API_CreateFleet, `TagSpecifications`). Closing and cancelling follow "Spot
//! request status" (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-request-status.html>):
//! a one-time request is `closed` with `instance-terminated-by-user` when its instance is
//! terminated, `cancelled` with `request-canceled-and-instance-running` when cancelled while
//! its instance runs. moto keeps no spot request for either launch, so this layer answers
//! `DescribeSpotInstanceRequests` and `CancelSpotInstanceRequests` from its own table.

use std::time::Instant;

use super::xml::{Element, escape};
use crate::ec2_proxy::Request;

/// A spot request as the layer keeps it.
#[derive(Debug, Clone)]
pub struct SpotRequest {
    /// `sir-…`.
    pub id: String,
    /// Its instance.
    pub instance_id: String,
    /// Its instance's type.
    pub instance_type: String,
    /// `one-time` or `persistent`.
    pub kind: String,
    /// `active`, `closed` or `cancelled`.
    pub state: String,
    /// The status code.
    pub status: String,
    /// Tags (none for an EC2 Fleet's).
    pub tags: Vec<(String, String)>,
    /// When it was made.
    pub made: Instant,
}

impl SpotRequest {
    /// A fulfilled request for `instance_id`.
    pub fn new(
        n: u64,
        instance_id: &str,
        instance_type: &str,
        kind: &str,
        tags: Vec<(String, String)>,
    ) -> SpotRequest {
        SpotRequest {
            id: format!("sir-{n:08x}"),
            instance_id: instance_id.into(),
            instance_type: instance_type.into(),
            kind: kind.into(),
            state: "active".into(),
            status: "fulfilled".into(),
            tags,
            made: Instant::now(),
        }
    }

    /// Its instance was terminated.
    pub fn instance_terminated(&mut self) {
        if self.state == "active" {
            self.state = "closed".into();
            self.status = "instance-terminated-by-user".into();
        }
    }

    /// Cancelled by the account.
    pub fn cancel(&mut self) {
        if self.state == "active" {
            self.status = "request-canceled-and-instance-running".into();
        } else if self.state == "closed" {
            return;
        } else {
            self.status = "canceled-before-fulfillment".into();
        }
        self.state = "cancelled".into();
    }

    fn item(&self) -> Element {
        let status_message = match self.status.as_str() {
            "fulfilled" => "Your spot request is fulfilled.",
            "instance-terminated-by-user" => "Spot Instance terminated.",
            _ => "Your spot request is cancelled.",
        };
        let tags: Vec<Element> = self
            .tags
            .iter()
            .map(|(k, v)| {
                Element::with(
                    "item",
                    vec![
                        Element::with_text("key", &escape(k)),
                        Element::with_text("value", &escape(v)),
                    ],
                )
            })
            .collect();
        Element::with(
            "item",
            vec![
                Element::with_text("spotInstanceRequestId", &self.id),
                Element::with_text("type", &self.kind),
                Element::with_text("state", &self.state),
                Element::with(
                    "status",
                    vec![
                        Element::with_text("code", &self.status),
                        Element::with_text("updateTime", "2026-01-01T00:00:00.000Z"),
                        Element::with_text("message", status_message),
                    ],
                ),
                Element::with(
                    "launchSpecification",
                    vec![Element::with_text("instanceType", &self.instance_type)],
                ),
                Element::with_text("instanceId", &self.instance_id),
                Element::with_text("createTime", "2026-01-01T00:00:00.000Z"),
                Element::with_text("productDescription", "Linux/UNIX"),
                Element::with("tagSet", tags),
                Element::with_text("instanceInterruptionBehavior", "terminate"),
            ],
        )
    }

    /// Whether it passes `req`'s filters (those ec2spot and EC2's documentation name for
    /// DescribeSpotInstanceRequests; an unknown filter matches nothing, as a wrong value would).
    fn matches(&self, filters: &[(String, Vec<String>)]) -> bool {
        filters.iter().all(|(name, values)| {
            let has = |v: &str| values.iter().any(|x| x == v);
            match name.as_str() {
                "spot-instance-request-id" => has(&self.id),
                "instance-id" => has(&self.instance_id),
                "state" => has(&self.state),
                "status-code" => has(&self.status),
                "type" => has(&self.kind),
                "tag-key" => self.tags.iter().any(|(k, _)| has(k)),
                other => match other.strip_prefix("tag:") {
                    Some(key) => self.tags.iter().any(|(k, v)| k == key && has(v)),
                    None => false,
                },
            }
        })
    }
}

/// The `Filter.N.Name` / `Filter.N.Value.M` filters of `req`.
pub fn filters(req: &Request) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for n in 1.. {
        let Some(name) = req.param(&format!("Filter.{n}.Name")) else {
            break;
        };
        let values = req
            .list(&format!("Filter.{n}.Value"))
            .into_iter()
            .map(str::to_string)
            .collect();
        out.push((name.to_string(), values));
    }
    out
}

/// The answer to `DescribeSpotInstanceRequests` from `table` (requests made within `hidden`
/// of now are left out of filtered reads; named ones EC2 does not know yet fail).
pub fn describe(
    table: &[SpotRequest],
    req: &Request,
    visible: impl Fn(&SpotRequest) -> bool,
) -> (u16, String) {
    let named = req.list("SpotInstanceRequestId");
    let filters = filters(req);
    let mut items = Vec::new();
    if named.is_empty() {
        for r in table.iter().filter(|r| visible(r) && r.matches(&filters)) {
            items.push(r.item());
        }
    } else {
        for id in named {
            match table.iter().find(|r| r.id == id && visible(r)) {
                Some(r) if r.matches(&filters) => items.push(r.item()),
                Some(_) => {}
                None => return not_found(id),
            }
        }
    }
    ok(
        "DescribeSpotInstanceRequestsResponse",
        vec![Element::with("spotInstanceRequestSet", items)],
    )
}

/// Cancels the named requests in `table`; EC2 fails the call when it knows one of them not.
pub fn cancel(
    table: &mut [SpotRequest],
    req: &Request,
    visible: impl Fn(&SpotRequest) -> bool,
) -> (u16, String) {
    let named = req.list("SpotInstanceRequestId");
    if let Some(id) = named
        .iter()
        .find(|id| !table.iter().any(|r| r.id == **id && visible(r)))
    {
        return not_found(id);
    }
    let mut items = Vec::new();
    for r in table.iter_mut().filter(|r| named.contains(&r.id.as_str())) {
        r.cancel();
        items.push(Element::with(
            "item",
            vec![
                Element::with_text("spotInstanceRequestId", &r.id),
                Element::with_text("state", &r.state),
            ],
        ));
    }
    ok(
        "CancelSpotInstanceRequestsResponse",
        vec![Element::with("spotInstanceRequestSet", items)],
    )
}

fn not_found(id: &str) -> (u16, String) {
    (
        400,
        crate::ec2_proxy::error_body(
            "InvalidSpotInstanceRequestID.NotFound",
            &format!("The spot instance request ID '{id}' does not exist"),
        ),
    )
}

/// A successful EC2 answer named `root` with `children`.
pub fn ok(root: &str, children: Vec<Element>) -> (u16, String) {
    let mut e = Element::with(root, children);
    e.attrs.push((
        "xmlns".into(),
        "http://ec2.amazonaws.com/doc/2016-11-15/".into(),
    ));
    e.children.insert(
        0,
        super::xml::Node::El(Element::with_text(
            "requestId",
            "00000000-0000-0000-0000-000000000000",
        )),
    );
    (200, e.to_document())
}
