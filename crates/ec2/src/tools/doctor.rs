//! `doctor`: checks what a create with a given set of `amazonec2-*` options would meet —
//! the options themselves, credentials, region and endpoint, the VPC, subnets, image and
//! instance types it would use, and every permission ec2spot needs (by EC2 `DryRun`) — and
//! says what is wrong and how to fix it. It creates nothing.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::ResourceType;

use crate::aws;
use crate::aws::error::Error;
use crate::create::resolve;
use crate::options::Asked;
use crate::options::values::{OptionValue, OptionValues};
use crate::options::{self, flags};
use crate::resources::launch::{Launch, Market};
use crate::resources::run_instances;
use crate::resources::security_group;
use crate::tags;
use crate::tools::permissions;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Could not be decided (the reason).
    Unknown,
    /// Works, but is worth changing (the advice follows).
    Warning,
    /// Wrong; the fix follows.
    Problem,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// Outcome.
    pub verdict: Verdict,
    /// What was checked and what was found.
    pub what: String,
    /// How to fix it (problems and warnings).
    pub fix: String,
}

impl Check {
    fn ok(what: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Ok,
            what: what.into(),
            fix: String::new(),
        }
    }

    fn unknown(what: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Unknown,
            what: what.into(),
            fix: String::new(),
        }
    }

    fn warning(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Warning,
            what: what.into(),
            fix: fix.into(),
        }
    }

    fn problem(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Problem,
            what: what.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Unknown => "??  ",
            Verdict::Warning => "WARN",
            Verdict::Problem => "FAIL",
        };
        write!(f, "[{mark}] {}", self.what)?;
        if !self.fix.is_empty() {
            write!(f, "\n       fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Reads `--amazonec2-*` options as docker-machine would: `--flag value`, `--flag=value`,
/// bare bool flags, repeated list flags; then each unset flag's environment variable; then
/// the defaults.
pub fn parse_args(args: &[String]) -> Result<OptionValues, String> {
    let mut given: Vec<(String, OptionValue)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!(
                "{arg}: expected an --amazonec2-* option (see `docker-machine create -d ec2spot --help`)"
            ));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let spec = flags::spec(name).ok_or_else(|| format!("--{name}: not an ec2spot option"))?;
        let mut next = || -> Result<String, String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("--{name}: needs a value"))
        };
        let value = match spec.kind {
            flags::Kind::Bool => match inline.as_deref() {
                None | Some("true") => OptionValue::Bool(true),
                Some("false") => OptionValue::Bool(false),
                Some(v) => return Err(format!("--{name}: expected true or false, got {v:?}")),
            },
            flags::Kind::Int(_) => {
                let v = next()?;
                OptionValue::Int(
                    v.parse()
                        .map_err(|_| format!("--{name}: expected a number, got {v:?}"))?,
                )
            }
            flags::Kind::String(_) => OptionValue::String(next()?),
            flags::Kind::StringSlice(_) => {
                let v = next()?;
                match given.iter_mut().find(|(n, _)| n == name) {
                    Some((_, OptionValue::StringSlice(list))) => {
                        list.push(v);
                        i += 1;
                        continue;
                    }
                    _ => OptionValue::StringSlice(vec![v]),
                }
            }
        };
        given.push((name.to_string(), value));
        i += 1;
    }
    let mut values = flags::defaults();
    for spec in flags::FLAGS {
        if spec.env.is_empty() || given.iter().any(|(n, _)| n == spec.name) {
            continue;
        }
        let Some(v) = std::env::var(spec.env).ok().filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match spec.kind {
            flags::Kind::Bool => OptionValue::Bool(v == "true" || v == "1"),
            flags::Kind::Int(_) => OptionValue::Int(
                v.parse()
                    .map_err(|_| format!("${}: expected a number for --{}", spec.env, spec.name))?,
            ),
            flags::Kind::String(_) => OptionValue::String(v),
            flags::Kind::StringSlice(_) => {
                OptionValue::StringSlice(options::validate::split_list(&v))
            }
        };
        values.insert(spec.name, value);
    }
    for (name, value) in given {
        values.insert(&name, value);
    }
    Ok(values)
}

/// What a denied or failed call means for the user.
fn failure(action: &str, e: &Error) -> Check {
    match e.code() {
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => Check::problem(
            format!(
                "permission ec2:{action}: denied ({})",
                e.code().unwrap_or_default()
            ),
            format!(
                "allow ec2:{action} (needed by {}); examples/iam-policy.json has every permission ec2spot needs",
                permissions::get(&format!("ec2:{action}"))
                    .map(|p| p.used_by)
                    .unwrap_or("ec2spot")
            ),
        ),
        Some("AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch") => Check::problem(
            format!("credentials rejected by EC2: {e}"),
            "check the access key and secret (--amazonec2-access-key/--amazonec2-secret-key, AWS_ACCESS_KEY_ID…, AWS_PROFILE)",
        ),
        Some("RequestExpired" | "ExpiredToken") => Check::problem(
            format!("credentials expired: {e}"),
            "refresh the session (aws sso login, new STS token)",
        ),
        Some("ConnectionFailed" | "Timeout") => Check::problem(
            format!("EC2 unreachable: {e}"),
            "check --amazonec2-region / --amazonec2-endpoint (or AWS_ENDPOINT_URL) and the network (proxy, DNS)",
        ),
        _ => Check::problem(format!("{e}"), "see the AWS error above"),
    }
}

/// The verdict on a `DryRun` call.
fn dry_run<O, E, R>(action: &str, result: Result<O, SdkError<E, R>>) -> Check
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let e = match result {
        Ok(_) => return Check::ok(format!("permission ec2:{action}")),
        Err(e) => crate::aws::error::aws(&format!("{action} (DryRun)"), e),
    };
    match e.code() {
        Some("DryRunOperation") => Check::ok(format!("permission ec2:{action} (DryRun)")),
        Some("UnauthorizedOperation" | "AccessDenied" | "AuthFailure") => failure(action, &e),
        // A made-up id: EC2 judged the id before the permission.
        Some(code) if code.contains("NotFound") || code.contains("Malformed") => Check::unknown(
            format!("permission ec2:{action}: not decidable without a real resource ({code})"),
        ),
        _ => failure(action, &e),
    }
}

/// The named security groups the machines would use: a warning for each that exists and
/// lets something in from anywhere, a line for each ec2spot would create.
async fn group_checks(ec2: &aws_sdk_ec2::Client, asked: &Asked, vpc: &str) -> Vec<Check> {
    let names = &asked.security_group_names;
    if names.is_empty() {
        return Vec::new();
    }
    let found = match security_group::describe_by_names(ec2, vpc, names).await {
        Ok(found) => found,
        Err(e) => return vec![failure("DescribeSecurityGroups", &e)],
    };
    let private = asked.use_private_ip || asked.private_ip_only;
    let mut out = Vec::new();
    for name in names {
        let Some(g) = found.iter().find(|g| g.group_name() == Some(name.as_str())) else {
            out.push(Check::ok(format!(
                "security group {name} will be created, letting SSH and Docker in from {}",
                if private {
                    "the VPC's address ranges only (private addressing)"
                } else {
                    "anywhere (public addressing)"
                }
            )));
            continue;
        };
        let id = g.group_id().unwrap_or_default();
        let open = security_group::open_to_world(g);
        if open.is_empty() {
            out.push(Check::ok(format!(
                "security group {name} ({id}) lets nothing in from anywhere"
            )));
        } else {
            out.push(Check::warning(
                format!(
                    "security group {name} ({id}) is open to the world (0.0.0.0/0 or ::/0) on {}",
                    open.join(", ")
                ),
                if private {
                    "the machines are reached by private address: let in only the VPC's or the bastion's network"
                } else {
                    "let in only the bastion's address (or use --amazonec2-use-private-address and the VPC's network)"
                },
            ));
        }
    }
    out
}

const NO_INSTANCE: &str = "i-0000000000000000f";

/// A denial of a change to a made-up resource says nothing for sure: examples/iam-policy.json
/// allows changes only on resources that carry ec2spot's ownership tag, which a made-up one
/// lacks, so the same answer comes with and without the permission.
fn on_made_up_resource(check: &mut Check) {
    if check.verdict == Verdict::Problem && check.what.contains(": denied") {
        check.verdict = Verdict::Unknown;
        check.what = format!(
            "{} for a made-up resource; allowed only on resources carrying the {} tag, so only a real one can tell",
            check.what,
            permissions::OWNERSHIP_TAG
        );
        check.fix.clear();
    }
}

/// Dry-runs every write ec2spot makes, with `launch` as the create would send it, then four
/// of its reads.
async fn permission_checks(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
    vpc: &str,
) -> Vec<Check> {
    let mut out = creation_checks(ec2, asked, launch, vpc).await;
    out.extend(change_checks(ec2).await);
    out.extend(read_checks(ec2).await);
    out
}

/// Dry-runs the calls that create something: the launch, a security group, a key pair.
async fn creation_checks(
    ec2: &aws_sdk_ec2::Client,
    asked: &Asked,
    launch: &Launch,
    vpc: &str,
) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(dry_run(
        "RunInstances",
        run_instances::request(ec2, asked, launch)
            .dry_run(true)
            .send()
            .await,
    ));
    // Tagged as a create tags them: the policy allows creation only with ec2spot's tag.
    out.push(dry_run(
        "CreateSecurityGroup",
        ec2.create_security_group()
            .group_name("ec2spot-doctor")
            .description("ec2spot-doctor-dry-run")
            .vpc_id(vpc)
            .tag_specifications(crate::tags::tag_spec(
                ResourceType::SecurityGroup,
                &launch.tags,
            ))
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "ImportKeyPair",
        ec2.import_key_pair()
            .key_name("ec2spot-doctor")
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(DOCTOR_KEY))
            .tag_specifications(crate::tags::tag_spec(ResourceType::KeyPair, &launch.tags))
            .dry_run(true)
            .send()
            .await,
    ));
    out
}

/// Dry-runs the calls that change or delete something. They act on made-up resources, which
/// carry no ownership tag: a denial is undecided ([`on_made_up_resource`]).
async fn change_checks(ec2: &aws_sdk_ec2::Client) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(dry_run(
        "DeleteKeyPair",
        ec2.delete_key_pair()
            .key_name("ec2spot-doctor")
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "TerminateInstances",
        ec2.terminate_instances()
            .instance_ids(NO_INSTANCE)
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "StopInstances",
        ec2.stop_instances()
            .instance_ids(NO_INSTANCE)
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "StartInstances",
        ec2.start_instances()
            .instance_ids(NO_INSTANCE)
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "RebootInstances",
        ec2.reboot_instances()
            .instance_ids(NO_INSTANCE)
            .dry_run(true)
            .send()
            .await,
    ));
    out.push(dry_run(
        "CancelSpotInstanceRequests",
        ec2.cancel_spot_instance_requests()
            .spot_instance_request_ids("sir-00000000")
            .dry_run(true)
            .send()
            .await,
    ));
    for check in &mut out {
        on_made_up_resource(check);
    }
    out
}

/// Dry-runs reads of instances, spot requests, key pairs and network interfaces.
async fn read_checks(ec2: &aws_sdk_ec2::Client) -> Vec<Check> {
    vec![
        dry_run(
            "DescribeInstances",
            ec2.describe_instances().dry_run(true).send().await,
        ),
        dry_run(
            "DescribeSpotInstanceRequests",
            ec2.describe_spot_instance_requests()
                .dry_run(true)
                .send()
                .await,
        ),
        dry_run(
            "DescribeKeyPairs",
            ec2.describe_key_pairs().dry_run(true).send().await,
        ),
        dry_run(
            "DescribeNetworkInterfaces",
            ec2.describe_network_interfaces().dry_run(true).send().await,
        ),
    ]
}

/// A public key for `ImportKeyPair` dry runs (never imported).
const DOCTOR_KEY: &[u8] =
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKKBm3s7KDnzZ8cHhbJxWZ5qgVYr7x5Yw5Cnm5qVqzH4 ec2spot-doctor";

/// The bastion's manager id, the value of the tag `ec2spot:manager` on everything it creates
/// (read only: doctor creates nothing, so a store without machines has none yet).
fn manager_check(store: &str) -> Check {
    match crate::manager::read(store) {
        Some(id) => Check::ok(format!(
            "manager id {id} (tag {} on every resource of this bastion; keep it: `gc --manager {id}` finds them if this store is lost)",
            tags::MANAGER
        )),
        None => Check::ok(format!(
            "no manager id yet: the first create makes one in {}",
            crate::manager::id_file(store).display()
        )),
    }
}

/// Runs every check for the options in `values`; `store` is the docker-machine store.
pub async fn run(values: &OptionValues, store: &str) -> Vec<Check> {
    let mut out = vec![manager_check(store)];
    if let Err(problem) = checks_in_order(values, store, &mut out).await {
        out.push(problem);
    }
    out
}

/// The checks after the manager id's, in order, added to `out`. A problem that leaves the
/// later checks nothing to work with (invalid options, no credentials or client, nothing
/// resolved) ends them: it is the `Err`.
async fn checks_in_order(
    values: &OptionValues,
    store: &str,
    out: &mut Vec<Check>,
) -> Result<(), Check> {
    let mut asked = Asked {
        machine_name: "ec2spot-doctor".into(),
        store_path: store.into(),
        ..Default::default()
    };
    out.extend(options_checks(&mut asked, values)?);
    let endpoint = aws::endpoint(&asked);
    out.push(credentials_check(&asked).await?);
    let ec2 = aws::client(&asked).await.map_err(|e| {
        Check::problem(
            e.to_string(),
            "fix the proxy (HTTPS_PROXY…) or CA bundle (AWS_CA_BUNDLE) settings it names",
        )
    })?;
    out.push(Check::ok(format!(
        "region {}, endpoint {}",
        asked.region,
        if endpoint.is_empty() {
            "AWS's"
        } else {
            endpoint.as_str()
        }
    )));
    let resolved = resolve::resolve(&ec2, &asked)
        .await
        .map_err(|e| resolve_problem(&e))?;
    out.extend(resolved_checks(&resolved));
    let launch = doctor_launch(&asked, &resolved);
    out.extend(group_checks(&ec2, &asked, &resolved.vpc_id).await);
    out.extend(permission_checks(&ec2, &asked, &launch, &resolved.vpc_id).await);
    Ok(())
}

/// Reads `values` into `config`: "valid" and the warnings, or the problem.
fn options_checks(asked: &mut Asked, values: &OptionValues) -> Result<Vec<Check>, Check> {
    match options::apply(asked, values) {
        Ok(warnings) => {
            let mut out = vec![Check::ok("options are valid")];
            for w in warnings {
                out.push(Check::unknown(format!("options: {w}")));
            }
            Ok(out)
        }
        Err(e) => Err(Check::problem(
            e.to_string(),
            format!(
                "correct --{} (see `docker-machine create -d ec2spot --help`)",
                e.flag
            ),
        )),
    }
}

/// Where the credentials come from, or the problem of finding none.
async fn credentials_check(asked: &Asked) -> Result<Check, Check> {
    match aws::credentials(asked).await {
        Ok(_) => Ok(Check::ok(if asked.access_key.is_empty() {
            "credentials found by the standard AWS chain"
        } else {
            "credentials from --amazonec2-access-key/--amazonec2-secret-key (or AWS_ACCESS_KEY_ID…)"
        })),
        Err(e) => Err(Check::problem(
            e.to_string(),
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE, or run on an instance with a role",
        )),
    }
}

/// The problem of a pre-create check that failed: an option it rejected, or the call (named
/// in the error's last parentheses) that failed.
fn resolve_problem(e: &Error) -> Check {
    match e {
        Error::Option(o) => Check::problem(
            e.to_string(),
            format!("correct --{} or leave it to its default", o.flag),
        ),
        _ => failure(
            e.to_string()
                .rsplit_once('(')
                .and_then(|(_, a)| a.split(')').next())
                .unwrap_or("Describe*"),
            e,
        ),
    }
}

/// What the pre-create check resolved: the VPC, the pools and their zones, the image.
fn resolved_checks(resolved: &resolve::Answered) -> Vec<Check> {
    let mut zones: Vec<&str> = resolved
        .pools
        .iter()
        .map(|p| p.availability_zone.as_str())
        .collect();
    zones.sort();
    zones.dedup();
    vec![
        Check::ok(format!("VPC {}", resolved.vpc_id)),
        Check::ok(format!(
            "{} pool(s) in {} zone(s): {}",
            resolved.pools.len(),
            zones.len(),
            resolved
                .pools
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Check::ok(format!(
            "image {} ({})",
            resolved.ami, resolved.architecture
        )),
    ]
}

/// The launch a create would send into the first pool (the permission checks dry-run it).
fn doctor_launch(asked: &Asked, resolved: &resolve::Answered) -> Launch {
    let pool = &resolved.pools[0];
    Launch {
        ami: resolved.ami.clone(),
        instance_type: pool.instance_type.clone(),
        subnet_id: pool.subnet_id.clone(),
        group_ids: Vec::new(),
        key_name: String::new(),
        user_data: None,
        tags: tags::machine_tags("ec2spot-doctor", "doctor", "doctor", &[]),
        market: if asked.request_spot_instance {
            Market::Spot
        } else {
            Market::OnDemand
        },
        client_token: format!("ec2spot-doctor-{}", std::process::id()),
        not_yet: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_change_to_a_made_up_resource_is_undecided_and_other_problems_stay() {
        let denied = Error::Aws {
            step: "TerminateInstances (DryRun)".into(),
            code: "UnauthorizedOperation".into(),
            message: "not authorized".into(),
        };
        let mut check = failure("TerminateInstances", &denied);
        assert_eq!(check.verdict, Verdict::Problem);
        on_made_up_resource(&mut check);
        assert_eq!(check.verdict, Verdict::Unknown, "{check}");
        assert!(check.what.contains("ec2spot:machine-id"), "{check}");
        let mut other = failure(
            "TerminateInstances",
            &Error::Other("EC2 unreachable".into()),
        );
        on_made_up_resource(&mut other);
        assert_eq!(other.verdict, Verdict::Problem);
    }
}
