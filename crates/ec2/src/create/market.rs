//! Where a machine lands: spot (or on-demand) over its pools — one `RunInstances` for a single
//! pool, one EC2 Fleet request for several — with capacity failures classified so nothing
//! waits, and the on-demand fallback when every spot pool is full.

use crate::aws::capacity::{PoolFailure, describe, is_capacity};
use crate::aws::consistency::retry_fresh;
use crate::aws::error::{Error, Result};
use crate::create::fleet;
use crate::create_record::{self, Kind};
use crate::options::{Asked, answered::Pool};
use crate::progress::{Event, Progress};
use crate::resources::launch::{Launch, Market};
use crate::resources::launch_template;
use crate::resources::run_instances;

/// Where the machine landed.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Instance id.
    pub instance_id: String,
    /// Market it got.
    pub market: Market,
    /// Pool it landed in.
    pub pool: Pool,
}

/// The launch template a launch over `pools` needs: one for several pools (tagged as the
/// machine's, see `launch_template::create`), none for one.
pub async fn template(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    base: &Launch,
    pools: &[Pool],
    ownership: &[(String, String)],
) -> Result<Option<String>> {
    if pools.len() > 1 {
        Ok(Some(
            launch_template::create(ec2, asked, base, ownership).await?,
        ))
    } else {
        Ok(None)
    }
}

/// Deletes the launch template once its launch is done; one that cannot be deleted now is
/// left to `rm`, which finds a machine's templates by tag.
pub async fn drop_template(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    template: Option<String>,
    progress: &Progress,
) {
    let Some(t) = template else {
        return;
    };
    match launch_template::delete_made(ec2, &t).await {
        // Recorded, so a cleanup `rm` does not delete it again (on EC2 a second deletion by
        // id is "not found", which for a template made moments ago means "wait and retry").
        Ok(()) => create_record::deleted(asked, Kind::Template, &t),
        Err(e) => progress.say(&format!(
            "Could not delete launch template {t} yet ({e}); rm will"
        )),
    }
}

/// Launches one instance for `asked` over `pools`: on spot when asked, falling back to
/// on-demand when every spot pool failed for capacity, price or spot-quota reasons and
/// `amazonec2-spot-fallback-on-demand` allows it. Several pools launch from `template` (made by
/// [`template`]; one serves both markets). `token_suffix` distinguishes a relaunch (the
/// idempotency token of a successful launch must never be reused for a different one).
pub async fn launch(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    base: &Launch,
    pools: &[Pool],
    template: Option<&str>,
    token_suffix: &str,
    progress: &Progress,
) -> Result<Placed> {
    let first = if asked.request_spot_instance {
        Market::Spot
    } else {
        Market::OnDemand
    };
    let spot_failures = match try_market(
        ec2,
        asked,
        base,
        pools,
        template,
        first,
        token_suffix,
        progress,
    )
    .await?
    {
        Ok(placed) => return Ok(placed),
        Err(failures) => failures,
    };
    note(progress, first, &spot_failures);
    if first == Market::Spot && asked.spot_fallback_on_demand {
        progress.say(&format!(
            "No spot capacity ({}); launching on-demand instead",
            describe(&spot_failures)
        ));
        return match try_market(
            ec2,
            asked,
            base,
            pools,
            template,
            Market::OnDemand,
            token_suffix,
            progress,
        )
        .await?
        {
            Ok(placed) => Ok(placed),
            Err(od) => Err(Error::Capacity {
                failures: [spot_failures, note(progress, Market::OnDemand, &od)].concat(),
                market: "spot or on-demand".into(),
                actions: action(pools).into(),
            }),
        };
    }
    Err(Error::Capacity {
        market: first.as_str().into(),
        actions: action(pools).into(),
        failures: spot_failures,
    })
}

/// Reports each pool's capacity failure in `market` as an event (the agent counts them);
/// returns them.
fn note(progress: &Progress, market: Market, failures: &[PoolFailure]) -> Vec<PoolFailure> {
    for f in failures {
        progress.event(&Event::CapacityFailure {
            market: market.as_str().into(),
            instance_type: f.pool.instance_type.clone(),
            zone: f.pool.availability_zone.clone(),
            code: f.code.clone(),
        });
    }
    failures.to_vec()
}

/// The EC2 action a launch over `pools` uses.
fn action(pools: &[Pool]) -> &'static str {
    if pools.len() == 1 {
        "RunInstances"
    } else {
        "CreateFleet"
    }
}

#[allow(clippy::too_many_arguments)]
async fn try_market(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    base: &Launch,
    pools: &[Pool],
    template: Option<&str>,
    market: Market,
    token_suffix: &str,
    progress: &Progress,
) -> Result<std::result::Result<Placed, Vec<PoolFailure>>> {
    let mut l = base.clone();
    l.market = market;
    l.client_token = format!(
        "{}{token_suffix}",
        run_instances::client_token(&asked.machine_id, market)
    );
    if let [pool] = pools {
        l.instance_type = pool.instance_type.clone();
        l.subnet_id = pool.subnet_id.clone();
        progress.say(&format!(
            "Launching {} {pool} from {}",
            market.as_str(),
            l.ami
        ));
        return match retry_fresh(&l.not_yet, || run_instances::run(ec2, asked, &l)).await {
            Ok(id) => Ok(Ok(Placed {
                instance_id: id,
                market,
                pool: pool.clone(),
            })),
            Err(Error::Aws { code, message, .. }) if is_capacity(&code) => {
                Ok(Err(vec![PoolFailure {
                    pool: pool.clone(),
                    code,
                    message,
                }]))
            }
            Err(e) => Err(e),
        };
    }
    progress.say(&format!(
        "Launching {} over {} pools ({}) from {}",
        market.as_str(),
        pools.len(),
        pools
            .iter()
            .map(|p| format!("{}/{}", p.instance_type, p.availability_zone))
            .collect::<Vec<_>>()
            .join(", "),
        l.ami
    ));
    let template =
        template.ok_or_else(|| Error::Other("several pools need a launch template".into()))?;
    Ok(retry_fresh(&l.not_yet, || {
        fleet::launch(ec2, asked, &l, pools, template)
    })
    .await?
    .map(|f| Placed {
        instance_id: f.instance_id,
        market,
        pool: f.pool,
    }))
}
