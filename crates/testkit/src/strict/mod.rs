//! The test EC2 as strict as EC2: proxy layers in front of moto that refuse what EC2 refuses
//! where moto forgives. Every bastion (so every integration test, the matrices and the
//! benches) gets them unless `EC2SPOT_TEST_STRICT` says otherwise:
//!
//! * `EC2SPOT_TEST_STRICT=off` — neither layer (moto as it is, to compare);
//! * a comma list of `consistency`, `iam` — only those;
//! * unset or `on` — both.

use std::sync::Arc;

use crate::ec2_proxy::Ec2Proxy;

pub mod consistency;
pub mod moto_gaps;
pub mod spot_requests;
pub mod xml;

pub use consistency::{Consistency, Windows};

/// Which strict layers are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strictness {
    /// EC2's eventual consistency and timing ([`consistency`]).
    pub consistency: bool,
    /// The shipped IAM policy, evaluated ([`crate::iam`]).
    pub iam: bool,
}

impl Strictness {
    /// As `EC2SPOT_TEST_STRICT` says (both when unset).
    pub fn from_env() -> Strictness {
        Self::parse(std::env::var("EC2SPOT_TEST_STRICT").ok().as_deref())
    }

    fn parse(v: Option<&str>) -> Strictness {
        match v.map(str::trim) {
            None | Some("") | Some("on") | Some("1") => Strictness {
                consistency: true,
                iam: true,
            },
            Some("off") | Some("0") => Strictness {
                consistency: false,
                iam: false,
            },
            Some(list) => {
                let has = |w: &str| list.split(',').any(|x| x.trim() == w);
                Strictness {
                    consistency: has("consistency"),
                    iam: has("iam"),
                }
            }
        }
    }
}

/// Puts the layers `strictness` asks for in front of moto at `moto_url` (IAM first: EC2
/// authorises a request before it looks at the resources it names).
pub fn install(proxy: &Ec2Proxy, moto_url: &str, strictness: Strictness) {
    if strictness.iam {
        proxy.add_layer(crate::iam::IamLayer::shipped(moto_url));
    }
    if strictness.consistency {
        proxy.add_layer(Arc::new(Consistency::new(moto_url, Windows::from_env())));
    }
    // Last: the layers above judge the request as EC2 gets it.
    proxy.add_layer(Arc::new(moto_gaps::MotoGaps::new(moto_url)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_is_on_unless_switched_off() {
        assert!(Strictness::parse(None).consistency && Strictness::parse(None).iam);
        let off = Strictness::parse(Some("off"));
        assert!(!off.consistency && !off.iam);
        let iam = Strictness::parse(Some("iam"));
        assert!(!iam.consistency && iam.iam);
    }
}
