//! `SetConfigFromFlags`: reads the option values into [`Asked`], validating each one before
//! any AWS call, so a bad option fails in milliseconds with its name in the message.

use std::path::Path;

use super::asked::Asked;
use super::error::{OptionError, err};
use super::flags::{self, Kind, PINNED_RELEASE, name};
use super::validate::{
    MAX_USER_DATA, SPOT_ALLOCATION_STRATEGIES, VOLUME_TYPES, absolute, check_id, check_release,
    parse_port, parse_tags, readable_file, split_list, validate_endpoint, validate_instance_type,
    validate_price, validate_region, validate_zone,
};
use super::values::{OptionTypeError, OptionValues};

fn type_error(flag: &'static str, e: OptionTypeError) -> OptionError {
    OptionError {
        flag,
        message: format!("expected a {} value, got {} {}", e.expected, e.got, e.value),
    }
}

/// Typed access to the option map with our defaults filled in.
struct Reader<'a>(&'a OptionValues);

impl Reader<'_> {
    fn string(&self, flag: &'static str) -> Result<String, OptionError> {
        let v = self.0.string(flag).map_err(|e| type_error(flag, e))?;
        Ok(match v {
            Some(v) => v.trim().to_string(),
            None => match flags::spec(flag).map(|s| s.kind) {
                Some(Kind::String(d)) => d.to_string(),
                _ => String::new(),
            },
        })
    }
    fn int(&self, flag: &'static str) -> Result<i64, OptionError> {
        let v = self.0.int(flag).map_err(|e| type_error(flag, e))?;
        Ok(match v {
            Some(v) => v,
            None => match flags::spec(flag).map(|s| s.kind) {
                Some(Kind::Int(d)) => d,
                _ => 0,
            },
        })
    }
    fn bool(&self, flag: &'static str) -> Result<bool, OptionError> {
        let v = self.0.bool(flag).map_err(|e| type_error(flag, e))?;
        Ok(v.unwrap_or(false))
    }
    fn list(&self, flag: &'static str) -> Result<Vec<String>, OptionError> {
        let v = self.0.string_slice(flag).map_err(|e| type_error(flag, e))?;
        Ok(match v {
            Some(v) => v
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => match flags::spec(flag).map(|s| s.kind) {
                Some(Kind::StringSlice(d)) => d.iter().map(|s| s.to_string()).collect(),
                _ => Vec::new(),
            },
        })
    }
}

/// Reads and validates every option into `config`, in the order the checks report: the first
/// bad option is the one named. Returns warnings for the user (shown by docker-machine as
/// `(machine) …` lines).
pub fn apply(asked: &mut Asked, values: &OptionValues) -> Result<Vec<String>, OptionError> {
    let r = Reader(values);
    let mut warnings = Vec::new();
    credentials(asked, &r)?;
    endpoint_and_region(asked, &r)?;
    image_and_network(asked, &r)?;
    groups_ports_and_tags(asked, &r)?;
    instance_and_volume(asked, &r)?;
    ssh_login(asked, &r)?;
    market(asked, &r, &mut warnings)?;
    addressing_and_key(asked, &r)?;
    retries_and_user_data(asked, &r)?;
    metadata_and_bootstrap(asked, &r)?;

    // docker-machine's own swarm options, which amazonec2 also keeps. Every other key
    // docker-machine sends and we do not know (its shared create flags, such as the fork's
    // `tls-bootstrap-lock`, and whatever comes next) is ignored, as Go drivers do.
    asked.swarm_master = values.bool("swarm-master").unwrap_or(None).unwrap_or(false);
    asked.swarm_host = values
        .string("swarm-host")
        .unwrap_or(None)
        .unwrap_or_default();
    asked.swarm_discovery = values
        .string("swarm-discovery")
        .unwrap_or(None)
        .unwrap_or_default();

    Ok(warnings)
}

/// The static credentials, given both or neither, and a session token only with them.
fn credentials(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.access_key = r.string(ACCESS_KEY)?;
    asked.secret_key = r.string(SECRET_KEY)?;
    asked.session_token = r.string(SESSION_TOKEN)?;
    if asked.access_key.is_empty() != asked.secret_key.is_empty() {
        let (flag, other) = if asked.access_key.is_empty() {
            (ACCESS_KEY, SECRET_KEY)
        } else {
            (SECRET_KEY, ACCESS_KEY)
        };
        return err(
            flag,
            format!(
                "is empty while --{other} is set; give both or neither (neither = the standard AWS credential chain)"
            ),
        );
    }
    if !asked.session_token.is_empty() && asked.access_key.is_empty() {
        return err(
            SESSION_TOKEN,
            "needs --amazonec2-access-key and --amazonec2-secret-key",
        );
    }
    Ok(())
}

/// The EC2 endpoint (plain HTTP only with one) and the region.
fn endpoint_and_region(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.endpoint = r.string(ENDPOINT)?;
    asked.disable_ssl = r.bool(INSECURE_TRANSPORT)?;
    if !asked.endpoint.is_empty() {
        validate_endpoint(&asked.endpoint)?;
    }
    if asked.disable_ssl && asked.endpoint.is_empty() {
        return err(
            INSECURE_TRANSPORT,
            "is only allowed together with --amazonec2-endpoint",
        );
    }

    asked.region = r.string(REGION)?;
    validate_region(&asked.region, !asked.endpoint.is_empty())?;
    Ok(())
}

/// The image, the Ubuntu release of the default image, VPC, subnets and zones (the lists also kept joined in amazonec2's single-value keys).
fn image_and_network(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.ami = r.string(AMI)?;
    check_id(AMI, &asked.ami, "ami-")?;
    asked.ubuntu_release = r.string(UBUNTU_RELEASE)?;
    if asked.ubuntu_release.is_empty() {
        asked.ubuntu_release = PINNED_RELEASE.into();
    }
    check_release(&asked.ubuntu_release)?;
    asked.vpc_id = r.string(VPC_ID)?;
    check_id(VPC_ID, &asked.vpc_id, "vpc-")?;
    asked.subnet_ids = split_list(&r.string(SUBNET_ID)?);
    for s in &asked.subnet_ids {
        check_id(SUBNET_ID, s, "subnet-")?;
    }
    asked.subnet_id = asked.subnet_ids.join(",");
    asked.zones = split_list(&r.string(ZONE)?);
    for z in &asked.zones {
        validate_zone(z, &asked.region)?;
    }
    asked.zone = asked.zones.join(",");
    Ok(())
}

/// Security group names, the ports to open and the user's tags.
fn groups_ports_and_tags(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.security_group_read_only = r.bool(SECURITY_GROUP_READONLY)?;
    asked.security_group_names = r.list(SECURITY_GROUP)?;
    for g in &asked.security_group_names {
        if g.len() > 255 || !g.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return err(
                SECURITY_GROUP,
                format!("{g:?} is not a valid security group name (up to 255 ASCII characters)"),
            );
        }
    }
    asked.open_ports = r.list(OPEN_PORT)?;
    for p in &asked.open_ports {
        parse_port(p).map_err(|m| OptionError {
            flag: OPEN_PORT,
            message: m,
        })?;
    }

    asked.tags = r.string(TAGS)?;
    parse_tags(&asked.tags)?;
    Ok(())
}

/// The instance types and the root volume (device, size, type, encryption), the instance profile.
fn instance_and_volume(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.instance_types = split_list(&r.string(INSTANCE_TYPE)?);
    if asked.instance_types.is_empty() {
        return err(
            INSTANCE_TYPE,
            "is empty; give an instance type such as t3.micro, or several separated by commas",
        );
    }
    for t in &asked.instance_types {
        validate_instance_type(t)?;
    }
    asked.instance_type = asked.instance_types.join(",");

    asked.device_name = r.string(DEVICE_NAME)?;
    if !asked.device_name.starts_with("/dev/") && !asked.device_name.starts_with("xvd") {
        return err(
            DEVICE_NAME,
            format!(
                "{:?} is not a device name such as /dev/sda1 or /dev/xvda",
                asked.device_name
            ),
        );
    }
    asked.root_size = r.int(ROOT_SIZE)?;
    if !(1..=16384).contains(&asked.root_size) {
        return err(
            ROOT_SIZE,
            format!("must be between 1 and 16384 (GB), got {}", asked.root_size),
        );
    }
    asked.volume_type = r.string(VOLUME_TYPE)?;
    if !VOLUME_TYPES.contains(&asked.volume_type.as_str()) {
        return err(
            VOLUME_TYPE,
            format!(
                "{:?} is not an EBS volume type; use one of {}",
                asked.volume_type,
                VOLUME_TYPES.join(", ")
            ),
        );
    }
    asked.volume_encrypted = r.bool(VOLUME_ENCRYPTED)?;
    asked.volume_kms_key = r.string(VOLUME_KMS_KEY)?;
    if !asked.volume_kms_key.is_empty() {
        asked.volume_encrypted = true;
    }
    asked.iam_instance_profile = r.string(IAM_INSTANCE_PROFILE)?;
    Ok(())
}

/// The SSH port and user docker-machine logs in with.
fn ssh_login(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.ssh_port = r.int(SSH_PORT)?;
    if !(1..=65535).contains(&asked.ssh_port) {
        return err(
            SSH_PORT,
            format!("must be a port between 1 and 65535, got {}", asked.ssh_port),
        );
    }
    asked.ssh_user = r.string(SSH_USER)?;
    if asked.ssh_user.is_empty() {
        asked.ssh_user = "ubuntu".into();
    }
    if asked.ssh_user.contains(char::is_whitespace) {
        return err(SSH_USER, format!("{:?} is not a user name", asked.ssh_user));
    }
    Ok(())
}

/// Spot or on-demand: price, fallback, allocation strategy; spot blocks refused. Warnings for options that have no effect.
fn market(
    asked: &mut Asked,
    r: &Reader<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), OptionError> {
    use name::*;
    asked.request_spot_instance = r.bool(REQUEST_SPOT_INSTANCE)?;
    asked.spot_price = r.string(SPOT_PRICE)?;
    if !asked.spot_price.is_empty() {
        validate_price(&asked.spot_price)?;
        if !asked.request_spot_instance {
            warnings.push(format!(
                "--{SPOT_PRICE}={} has no effect without --{REQUEST_SPOT_INSTANCE}: launching on-demand",
                asked.spot_price
            ));
        }
    }
    asked.spot_fallback_on_demand = r.bool(SPOT_FALLBACK_ON_DEMAND)?;
    asked.spot_allocation_strategy = r.string(SPOT_ALLOCATION_STRATEGY)?;
    if !SPOT_ALLOCATION_STRATEGIES.contains(&asked.spot_allocation_strategy.as_str()) {
        return err(
            SPOT_ALLOCATION_STRATEGY,
            format!(
                "{:?} is not a spot allocation strategy; use one of {}",
                asked.spot_allocation_strategy,
                SPOT_ALLOCATION_STRATEGIES.join(", ")
            ),
        );
    }
    asked.block_duration_minutes = r.int(BLOCK_DURATION_MINUTES)?;
    if asked.block_duration_minutes != 0 {
        return err(
            BLOCK_DURATION_MINUTES,
            format!(
                "AWS retired spot blocks (defined-duration spot instances), so {} cannot be honoured; remove the option (0 = none)",
                asked.block_duration_minutes
            ),
        );
    }
    Ok(())
}

/// Addressing, monitoring and EBS optimisation, and the SSH key: the user's key pair (with its private key) or a key file whose public half is imported.
fn addressing_and_key(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.private_ip_only = r.bool(PRIVATE_ADDRESS_ONLY)?;
    asked.use_private_ip = r.bool(USE_PRIVATE_ADDRESS)?;
    asked.monitoring = r.bool(MONITORING)?;
    asked.use_ebs_optimized_instance = r.bool(USE_EBS_OPTIMIZED_INSTANCE)?;

    asked.ssh_private_key_path = absolute(SSH_KEYPATH, r.string(SSH_KEYPATH)?)?;
    let keypair = r.string(KEYPAIR_NAME)?;
    if !keypair.is_empty() && asked.ssh_private_key_path.is_empty() {
        return err(
            KEYPAIR_NAME,
            "requires --amazonec2-ssh-keypath (the private key of that key pair)",
        );
    }
    if !asked.ssh_private_key_path.is_empty() {
        let key = Path::new(&asked.ssh_private_key_path);
        readable_file(SSH_KEYPATH, key)?;
        if keypair.is_empty() {
            let public = format!("{}.pub", asked.ssh_private_key_path);
            readable_file(SSH_KEYPATH, Path::new(&public)).map_err(|e| OptionError {
                flag: SSH_KEYPATH,
                message: format!(
                    "{} (the public key is imported as the machine's key pair)",
                    e.message
                ),
            })?;
        }
    }
    asked.existing_key = !keypair.is_empty();
    asked.key_name = keypair;
    Ok(())
}

/// The retry count and the user data file (readable, within EC2's size limit).
fn retries_and_user_data(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.retry_count = r.int(RETRIES)?;
    if !(-1..=100).contains(&asked.retry_count) {
        return err(
            RETRIES,
            format!(
                "must be between -1 (no retries) and 100, got {}",
                asked.retry_count
            ),
        );
    }

    asked.user_data_file = absolute(USERDATA, r.string(USERDATA)?)?;
    if !asked.user_data_file.is_empty() {
        let size = readable_file(USERDATA, Path::new(&asked.user_data_file))?;
        if size > MAX_USER_DATA {
            return err(
                USERDATA,
                format!(
                    "{} is {size} bytes; AWS accepts at most {MAX_USER_DATA}",
                    asked.user_data_file
                ),
            );
        }
    }
    Ok(())
}

/// The instance metadata options (IMDSv2 tokens, hop limit) and the TLS bootstrap.
fn metadata_and_bootstrap(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.metadata_token = r.string(METADATA_TOKEN)?.to_ascii_lowercase();
    if asked.metadata_token.is_empty() {
        asked.metadata_token = "required".into();
    }
    if asked.metadata_token != "required" && asked.metadata_token != "optional" {
        return err(
            METADATA_TOKEN,
            format!(
                "{:?} is neither \"required\" (IMDSv2 only) nor \"optional\"",
                asked.metadata_token
            ),
        );
    }
    asked.metadata_token_response_hop_limit = r.int(METADATA_TOKEN_HOP_LIMIT)?;
    if !(1..=64).contains(&asked.metadata_token_response_hop_limit) {
        return err(
            METADATA_TOKEN_HOP_LIMIT,
            format!(
                "must be between 1 and 64, got {}",
                asked.metadata_token_response_hop_limit
            ),
        );
    }

    asked.tls_bootstrap = r.bool(TLS_BOOTSTRAP)?;
    docker_and_os(asked, r)
}

/// The Docker version the bootstrap installs and the image's OS: an OS the bootstrap cannot
/// start Docker on is refused here, before any AWS call.
fn docker_and_os(asked: &mut Asked, r: &Reader<'_>) -> Result<(), OptionError> {
    use name::*;
    asked.use_baked_image = r.bool(USE_BAKED_IMAGE)?;
    asked.docker_version = r.string(DOCKER_VERSION)?;
    if let Some(why) = crate::validate::docker_version_problem(&asked.docker_version) {
        return err(DOCKER_VERSION, why);
    }
    asked.ami_os = r.string(AMI_OS)?.to_ascii_lowercase();
    if asked.ami_os.is_empty() {
        return Ok(());
    }
    let Some(os) = crate::validate::ami_os(&asked.ami_os) else {
        return err(
            AMI_OS,
            format!(
                "{:?} is none of {}",
                asked.ami_os,
                crate::validate::AMI_OSES
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    };
    match os.bootstrap_problem {
        Some(why) if asked.tls_bootstrap => err(
            TLS_BOOTSTRAP,
            format!(
                "cannot start Docker on --{AMI_OS} {}: it {why}; use an image with systemd \
                 and cloud-init, or drop --{TLS_BOOTSTRAP}",
                os.name
            ),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::endpoint_url;
    use crate::values::OptionValue;

    fn values(pairs: &[(&str, OptionValue)]) -> OptionValues {
        let mut v = OptionValues::default();
        for (k, val) in pairs {
            v.insert(*k, val.clone());
        }
        v
    }

    fn s(x: &str) -> OptionValue {
        OptionValue::String(x.into())
    }

    #[test]
    fn defaults_are_ours() {
        let mut c = Asked::default();
        apply(&mut c, &OptionValues::default()).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.instance_type, "t3.micro");
        assert_eq!(c.volume_type, "gp3");
        assert_eq!(c.spot_price, "");
        assert_eq!(c.metadata_token, "required");
        assert_eq!(c.metadata_token_response_hop_limit, 2);
        assert_eq!(c.security_group_names, vec!["docker-machine"]);
        assert_eq!(c.ssh_port, 22);
        assert_eq!(c.root_size, 16);
        assert_eq!(c.retry_count, 5);
        assert_eq!(c.instance_types, vec!["t3.micro"]);
        assert_eq!(c.spot_allocation_strategy, "price-capacity-optimized");
        assert!(!c.spot_fallback_on_demand);
    }

    #[test]
    fn lists_split_on_commas() {
        let mut c = Asked::default();
        apply(
            &mut c,
            &values(&[
                (name::INSTANCE_TYPE, s("m7i.large, m6i.large,m7i.large")),
                (name::SUBNET_ID, s("subnet-0a,subnet-0b")),
                (name::ZONE, s("a,b")),
            ]),
        )
        .unwrap();
        assert_eq!(c.instance_types, vec!["m7i.large", "m6i.large"]);
        assert_eq!(c.instance_type, "m7i.large,m6i.large");
        assert_eq!(c.subnet_ids, vec!["subnet-0a", "subnet-0b"]);
        assert_eq!(c.zones, vec!["a", "b"]);
    }

    #[test]
    fn each_bad_value_names_its_flag() {
        let cases: Vec<(Vec<(&str, OptionValue)>, &str)> = vec![
            (vec![(name::SPOT_PRICE, s("cheap"))], name::SPOT_PRICE),
            (vec![(name::SPOT_PRICE, s("0"))], name::SPOT_PRICE),
            (
                vec![(name::ROOT_SIZE, OptionValue::Int(-3))],
                name::ROOT_SIZE,
            ),
            (vec![(name::TAGS, s("a,b,c"))], name::TAGS),
            (vec![(name::TAGS, s("aws:x,1"))], name::TAGS),
            (vec![(name::KEYPAIR_NAME, s("k"))], name::KEYPAIR_NAME),
            (
                vec![(name::INSECURE_TRANSPORT, OptionValue::Bool(true))],
                name::INSECURE_TRANSPORT,
            ),
            (
                vec![(name::METADATA_TOKEN, s("sometimes"))],
                name::METADATA_TOKEN,
            ),
            (vec![(name::USERDATA, s("/nonexistent/ud"))], name::USERDATA),
            (
                vec![(name::BLOCK_DURATION_MINUTES, OptionValue::Int(60))],
                name::BLOCK_DURATION_MINUTES,
            ),
            (vec![(name::REGION, s("Mars"))], name::REGION),
            (vec![(name::AMI, s("ubuntu"))], name::AMI),
            (vec![(name::SUBNET_ID, s("sub-1"))], name::SUBNET_ID),
            (vec![(name::VPC_ID, s("vpc-zz"))], name::VPC_ID),
            (vec![(name::ZONE, s("eu-west-1a"))], name::ZONE),
            (vec![(name::INSTANCE_TYPE, s("large"))], name::INSTANCE_TYPE),
            (
                vec![(name::INSTANCE_TYPE, s("m5.large,big"))],
                name::INSTANCE_TYPE,
            ),
            (vec![(name::INSTANCE_TYPE, s(" , "))], name::INSTANCE_TYPE),
            (
                vec![(name::SUBNET_ID, s("subnet-0a1b,subnet-x"))],
                name::SUBNET_ID,
            ),
            (vec![(name::ZONE, s("a,mars"))], name::ZONE),
            (
                vec![(name::SPOT_ALLOCATION_STRATEGY, s("cheapest"))],
                name::SPOT_ALLOCATION_STRATEGY,
            ),
            (vec![(name::VOLUME_TYPE, s("ssd"))], name::VOLUME_TYPE),
            (
                vec![(name::SSH_PORT, OptionValue::Int(70000))],
                name::SSH_PORT,
            ),
            (
                vec![(
                    name::OPEN_PORT,
                    OptionValue::StringSlice(vec!["http".into()]),
                )],
                name::OPEN_PORT,
            ),
            (vec![(name::RETRIES, OptionValue::Int(-2))], name::RETRIES),
            (
                vec![(name::METADATA_TOKEN_HOP_LIMIT, OptionValue::Int(0))],
                name::METADATA_TOKEN_HOP_LIMIT,
            ),
            (vec![(name::ENDPOINT, s("ftp://x"))], name::ENDPOINT),
            (vec![(name::ACCESS_KEY, s("AK"))], name::SECRET_KEY),
            (vec![(name::ROOT_SIZE, s("big"))], name::ROOT_SIZE),
            (
                vec![(name::SSH_KEYPATH, s("/nonexistent/key"))],
                name::SSH_KEYPATH,
            ),
        ];
        for (pairs, flag) in cases {
            let mut c = Asked::default();
            let e = apply(&mut c, &values(&pairs)).expect_err(&format!("{pairs:?} accepted"));
            assert_eq!(e.flag, flag, "{e}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("--{flag}: ")), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_like_go_drivers_do() {
        let mut c = Asked::default();
        apply(
            &mut c,
            &values(&[
                ("tls-bootstrap-lock", OptionValue::Bool(true)),
                ("some-future-flag", s("x")),
                (name::TLS_BOOTSTRAP, OptionValue::Bool(true)),
            ]),
        )
        .unwrap();
        assert!(c.tls_bootstrap);
    }

    #[test]
    fn good_values_pass() {
        let mut c = Asked::default();
        let w = apply(
            &mut c,
            &values(&[
                (name::SPOT_PRICE, s("0.05")),
                (name::TAGS, s("team,ci,env,prod")),
                (name::ZONE, s("us-east-1b")),
                (
                    name::OPEN_PORT,
                    OptionValue::StringSlice(vec!["8080".into(), "53/udp".into()]),
                ),
                (name::ENDPOINT, s("http://127.0.0.1:5000")),
                (name::VOLUME_KMS_KEY, s("alias/ci")),
            ]),
        )
        .unwrap();
        assert_eq!(w.len(), 1, "spot price without spot flag warns: {w:?}");
        assert!(c.volume_encrypted, "a KMS key implies encryption");
        assert_eq!(parse_tags(&c.tags).unwrap().len(), 2);
        assert_eq!(
            endpoint_url("ec2.example.com", true),
            "http://ec2.example.com"
        );
    }
}
