//! What EC2 does and moto 5 does not, filled in so the tests see EC2's behaviour (always
//! installed, whatever `EC2SPOT_TEST_STRICT` says): tags on the snapshots a `CreateImage`
//! makes (`TagSpecification.N.ResourceType=snapshot`, which moto answers with a 500). The
//! snapshot's specification is taken out of the request moto sees and its tags are put on the
//! image's snapshots once moto answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::ec2_proxy::{Layer, LayerFuture, Request, Verdict};
use crate::iam::actions::tag_specs;

/// The layer.
pub struct MotoGaps {
    moto_url: String,
    /// Snapshot tags of the `CreateImage`s under way, by request.
    pending: Mutex<HashMap<Instant, Vec<(String, String)>>>,
}

impl MotoGaps {
    /// For moto at `moto_url`.
    pub fn new(moto_url: &str) -> MotoGaps {
        MotoGaps {
            moto_url: moto_url.to_string(),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

/// `req`'s parameters with only the `keep` tag specifications, numbered from 1.
fn without_snapshot_specs(
    req: &Request,
    keep: &[(String, Vec<(String, String)>)],
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = req
        .params
        .iter()
        .filter(|(k, _)| !k.starts_with("TagSpecification."))
        .cloned()
        .collect();
    for (n, (rtype, tags)) in keep.iter().enumerate() {
        let n = n + 1;
        params.push((format!("TagSpecification.{n}.ResourceType"), rtype.clone()));
        for (m, (k, v)) in tags.iter().enumerate() {
            let m = m + 1;
            params.push((format!("TagSpecification.{n}.Tag.{m}.Key"), k.clone()));
            params.push((format!("TagSpecification.{n}.Tag.{m}.Value"), v.clone()));
        }
    }
    params
}

impl Layer for MotoGaps {
    fn name(&self) -> &'static str {
        "moto-gaps"
    }

    fn before<'a>(&'a self, req: &'a Request) -> LayerFuture<'a, Verdict> {
        Box::pin(async move {
            if req.action != "CreateImage" {
                return Verdict::Pass;
            }
            let specs = tag_specs(req, "TagSpecification");
            let (snap, keep): (Vec<_>, Vec<_>) =
                specs.into_iter().partition(|(t, _)| t == "snapshot");
            if snap.is_empty() {
                return Verdict::Pass;
            }
            let tags = snap.into_iter().flat_map(|(_, t)| t).collect();
            self.pending.lock().unwrap().insert(req.received, tags);
            Verdict::Rewrite(without_snapshot_specs(req, &keep))
        })
    }

    fn after<'a>(
        &'a self,
        req: &'a Request,
        status: u16,
        body: String,
    ) -> LayerFuture<'a, (u16, String)> {
        Box::pin(async move {
            let tags = self.pending.lock().unwrap().remove(&req.received);
            let image = body
                .split("<imageId>")
                .nth(1)
                .and_then(|r| r.split("</imageId>").next())
                .map(str::to_string);
            if let (Some(tags), Some(image), 200) = (tags, image, status) {
                let ec2 = crate::moto::ec2_client(&self.moto_url, req.region());
                let snaps: Vec<String> = ec2
                    .describe_images()
                    .image_ids(&image)
                    .send()
                    .await
                    .map(|o| {
                        o.images()
                            .iter()
                            .flat_map(|i| i.block_device_mappings())
                            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                for s in snaps {
                    let mut q = ec2.create_tags().resources(s);
                    for (k, v) in &tags {
                        q = q.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
                    }
                    let _ = q.send().await;
                }
            }
            (status, body)
        })
    }
}
