//! GitLab's docker-machine fork, the one GitLab Runner users run (v0.16.2-gitlab.N): its
//! three newer RPC methods called by the Go stand-in (`dmclient --gitlab-fork`) with the fork's
//! Go types against the real binary, the TLS bootstrap's user data checked by cloud-init's own
//! code (Debian's `cloud-init`, installed by scripts/setup), JSON plugin logs, unknown create
//! flags, and a create that fails after its launch, saved and removed as the fork and
//! gitlab-runner do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::PLUGIN;
use aws_sdk_ec2::types::Filter;
use base64::Engine;
use ec2spot_ec2::{Config, create::user_data};
use ec2spot_plugin::TlsBootstrap;
use ec2spot_testkit::bastion::Bastion;
use ec2spot_testkit::goclient;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// cloud-init, the real validator and user-data processor.

/// Processes a user-data file the way cloud-init does on a booting instance
/// (`UserDataProcessor`, then its cloud-config handler merging every `text/cloud-config`
/// part with the part's `Merge-Type`), and prints the parts and the merged cloud-config.
const CLOUD_INIT_READ: &str = r#"
import json, os, sys, tempfile
from cloudinit import handlers, helpers, user_data, util
from cloudinit.handlers.cloud_config import CloudConfigPartHandler

raw = open(sys.argv[1], "rb").read()
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp})
msg = user_data.UserDataProcessor(paths).process(raw)
merger = CloudConfigPartHandler(paths)
merger.cloud_fn = os.path.join(tmp, "cloud_config.txt")
merger.handle_part(None, handlers.CONTENT_START, None, None, None, None)
parts = []
for part in msg.walk():
    if part.get_content_maintype() == "multipart":
        continue
    payload = util.fully_decoded_payload(part)
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "surrogateescape")
    ctype = part.get_content_type()
    parts.append({"type": ctype, "filename": part.get_filename(),
                  "headers": dict(part.items()), "payload": payload})
    if ctype == "text/cloud-config":
        merger.handle_part(None, ctype, part.get_filename(), payload, None, dict(part))
merger.handle_part(None, handlers.CONTENT_END, None, None, None, None)
merged = util.load_yaml(open(merger.cloud_fn).read()) if os.path.exists(merger.cloud_fn) else None
print(json.dumps({"parts": parts, "merged": merged}))
"#;

/// The `cloud-init` command and the Python it runs on (its library is that Python's).
fn cloud_init() -> (PathBuf, PathBuf) {
    let bin = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("cloud-init"))
        .find(|p| p.exists())
        .expect("cloud-init missing: run scripts/setup (it installs Debian's cloud-init)");
    let head = std::fs::read_to_string(&bin).expect("read cloud-init");
    let python = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|l| PathBuf::from(l.split_whitespace().next().unwrap_or("/usr/bin/python3")))
        .expect("cloud-init starts with a #! line");
    (bin, python)
}

/// What cloud-init makes of `raw`: `{"parts": [...], "merged": {...}}`.
fn cloud_init_read(raw: &[u8]) -> Value {
    cloud_init_python(CLOUD_INIT_READ, raw, "read the user data")
}

/// Runs `program` (Python over cloud-init's own modules) on the user data `raw`; its JSON.
fn cloud_init_python(program: &str, raw: &[u8], what: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (file, script) = (dir.path().join("user-data"), dir.path().join("program.py"));
    std::fs::write(&file, raw).unwrap();
    std::fs::write(&script, program).unwrap();
    let out = Command::new(cloud_init().1)
        .arg(&script)
        .arg(&file)
        .output()
        .expect("run cloud-init's python");
    assert!(
        out.status.success(),
        "cloud-init could not {what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(raw)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from cloud-init's python")
}

/// `cloud-init schema -c` on one cloud-config: panics with its report unless valid.
fn assert_valid_cloud_config(cloud_config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloud-config.yaml");
    std::fs::write(&file, cloud_config).unwrap();
    let out = Command::new(cloud_init().0)
        .args(["schema", "-c"])
        .arg(&file)
        .output()
        .expect("run cloud-init schema");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("Valid cloud-config"),
        "cloud-init schema refused it ({:?}): {text}\n{cloud_config}",
        out.status.code()
    );
}

fn parts(read: &Value) -> &Vec<Value> {
    read["parts"].as_array().expect("parts")
}

/// The merged `write_files` entry for `path`.
fn written<'a>(read: &'a Value, path: &str) -> &'a Value {
    read["merged"]["write_files"]
        .as_array()
        .expect("write_files")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not written: {:#}", read["merged"]))
}

/// The drop-in GitLab's fork generates for an ec2spot machine without engine options (its
/// Google COS template).
const FORK_DROPIN: &str = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=ec2spot \nEnvironment=\n";

fn material() -> TlsBootstrap {
    let key = ec2spot_ec2::resources::key_pair::generate().unwrap();
    let cert = |what: &str| {
        let body = base64::engine::general_purpose::STANDARD.encode(what.repeat(600));
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
        .into_bytes()
    };
    TlsBootstrap {
        ca_cert: cert("ca"),
        server_cert: cert("sv"),
        server_key: key.private_pem.into_bytes(),
        daemon_dropin: FORK_DROPIN.as_bytes().to_vec(),
    }
}

fn compose_with(user_file: Option<&[u8]>, tls: &TlsBootstrap) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.asked.tls_bootstrap = true;
    if let Some(data) = user_file {
        let f = dir.path().join("userdata");
        std::fs::write(&f, data).unwrap();
        config.asked.user_data_file = f.to_string_lossy().into_owned();
    }
    user_data::compose(
        &config.asked,
        Some(&ec2spot::convert::tls_material(tls.clone())),
    )
    .expect("composes")
    .expect("some user data")
}

/// Checks the bootstrap's part as cloud-init reads it: valid cloud-config, the three files
/// byte for byte where the drop-in expects them (the key 0600), the drop-in, the start script.
fn assert_bootstrap_delivered(read: &Value, tls: &TlsBootstrap) {
    let ours = parts(read)
        .iter()
        .find(|p| p["filename"] == "ec2spot-tls-bootstrap.yaml")
        .unwrap_or_else(|| panic!("no bootstrap part: {read:#}"));
    assert_eq!(ours["type"], "text/cloud-config");
    assert_valid_cloud_config(ours["payload"].as_str().unwrap());
    let text = |v: &[u8]| String::from_utf8(v.to_vec()).unwrap();
    for (path, want, mode) in [
        ("/etc/docker/ca.pem", &tls.ca_cert, "0644"),
        ("/etc/docker/server.pem", &tls.server_cert, "0644"),
        ("/etc/docker/server-key.pem", &tls.server_key, "0600"),
        (
            "/etc/systemd/system/docker.service.d/10-machine.conf",
            &tls.daemon_dropin,
            "0644",
        ),
    ] {
        let f = written(read, path);
        assert_eq!(f["content"], text(want), "{path} changed on the way");
        assert_eq!(f["permissions"], mode, "{path}");
    }
    let start = parts(read)
        .iter()
        .find(|p| p["filename"] == user_data_start_part())
        .unwrap_or_else(|| panic!("no start script part: {read:#}"));
    assert_eq!(start["type"], "text/x-shellscript");
    let script = start["payload"].as_str().unwrap();
    for needle in [
        "dockerd=/usr/bin/dockerd",
        "install \"$pkg\"",
        "pkg=docker.io",
        "ln -sf \"$d\" \"$dockerd\"",
        "systemctl daemon-reload",
        "systemctl restart docker.service",
    ] {
        assert!(script.contains(needle), "{needle}: {script}");
    }
    assert!(
        read["merged"]
            .get("runcmd")
            .is_none_or(|r| !r.to_string().contains("ec2spot")),
        "Docker no longer starts from runcmd, after the user's scripts: {:#}",
        read["merged"]
    );
}

/// The file name of the bootstrap's start-script part.
fn user_data_start_part() -> &'static str {
    ec2spot_ec2::create::tls_bootstrap::START_PART_NAME
}

/// Runs cloud-init's own part handlers (shell scripts, cloud-config), its `runcmd` module and
/// its `scripts_user` module (with `subp` recording instead of executing, every script
/// failing) on `raw`: the scripts in the order cloud-init runs them.
const CLOUD_INIT_ORDER: &str = r#"
import json, logging, os, sys, tempfile
from unittest import mock
from cloudinit import handlers, helpers, subp, user_data, util
from cloudinit.config import cc_runcmd, cc_scripts_user
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.handlers.shell_script import ShellScriptPartHandler
from cloudinit.settings import PER_INSTANCE

raw = open(sys.argv[1], "rb").read()
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp})
os.makedirs(paths.get_ipath_cur("scripts"))
msg = user_data.UserDataProcessor(paths).process(raw)
cc = CloudConfigPartHandler(paths)
cc.cloud_fn = os.path.join(tmp, "cloud_config.txt")
hs = helpers.ContentHandlers()
for mod in (ShellScriptPartHandler(paths), cc):
    hs.register(mod)
    handlers.call_begin(mod, None, PER_INSTANCE)
handlers.walk(msg, handlers.walker_callback, data={
    "handlers": hs, "handlerdir": tmp, "data": None, "frequency": PER_INSTANCE,
    "handlercount": 0, "excluded": []})
handlers.call_end(cc, None, PER_INSTANCE)
merged = util.load_yaml(open(cc.cloud_fn).read()) if os.path.exists(cc.cloud_fn) else {}

class Cloud:
    def get_ipath(self, name=None):
        return paths.get_ipath_cur(name)
    def get_ipath_cur(self, name=None):
        return paths.get_ipath_cur(name)

log = logging.getLogger()
if merged and "runcmd" in merged:
    cc_runcmd.handle("runcmd", merged, Cloud(), log, [])
ran = []
def record(cmd, **kw):
    ran.append(os.path.basename(cmd[-1]))
    raise subp.ProcessExecutionError(cmd=cmd, exit_code=1)
failed = ""
with mock.patch.object(subp, "subp", record):
    try:
        cc_scripts_user.handle("scripts_user", {}, Cloud(), log, [])
    except Exception as e:
        failed = str(e)
print(json.dumps({"ran": ran, "failed": failed}))
"#;

/// The scripts of `raw` in the order cloud-init's `scripts_user` runs them, and its report.
fn cloud_init_script_order(raw: &[u8]) -> (Vec<String>, String) {
    let v = cloud_init_python(CLOUD_INIT_ORDER, raw, "run the scripts");
    let ran = v["ran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (ran, v["failed"].as_str().unwrap().to_string())
}

/// Docker's start runs before every script of the user's — a shell script, the `runcmd` of
/// a cloud-config, the scripts of a MIME document, whatever they are named — and each of them
/// still runs when every script fails, as cloud-init's own modules run them.
#[test]
fn bootstrap_starts_docker_before_the_users_scripts() {
    let tls = material();
    let start = user_data_start_part().to_string();
    let (ran, _) = cloud_init_script_order(&compose_with(None, &tls));
    assert_eq!(ran, std::slice::from_ref(&start));
    let script = b"#!/bin/sh\nexit 1\n";
    let (ran, failed) = cloud_init_script_order(&compose_with(Some(script), &tls));
    assert_eq!(ran, [start.clone(), "amazonec2-userdata".to_string()]);
    assert!(failed.contains("2 failures"), "{failed}");
    let cc = b"#cloud-config\nruncmd:\n- [false]\n";
    let (ran, _) = cloud_init_script_order(&compose_with(Some(cc), &tls));
    assert_eq!(ran, [start.clone(), "runcmd".to_string()]);
    // A MIME document whose parts are named to sort early: still after ours.
    let mime = b"Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n--B\nContent-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"000-first\"\n\n#!/bin/sh\necho one\n--B\nContent-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"-a\"\n\n#!/bin/sh\necho two\n--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho three\n--B--\n";
    let (ran, _) = cloud_init_script_order(&compose_with(Some(mime), &tls));
    assert_eq!(ran[0], start, "{ran:?}");
    assert_eq!(ran.len(), 4, "{ran:?}");
}

/// The user data with each kind of `amazonec2-userdata` file, as cloud-init reads it: the
/// user's part keeps its type and content, and the bootstrap's files are all there.
#[test]
fn bootstrap_user_data_keeps_every_kind_of_user_file() {
    let tls = material();

    // No file: the bootstrap's two parts alone (its cloud-config and start script).
    let read = cloud_init_read(&compose_with(None, &tls));
    assert_eq!(parts(&read).len(), 2, "{read:#}");
    assert_bootstrap_delivered(&read, &tls);

    // A shell script: its own part, unchanged, run by cloud-init as a script.
    let script = b"#!/bin/bash\necho \"prepare the runner's cache\" > /var/tmp/ready\n";
    let read = cloud_init_read(&compose_with(Some(script), &tls));
    let ps = parts(&read);
    assert_eq!(ps.len(), 3, "{read:#}");
    assert_eq!(ps[0]["type"], "text/x-shellscript");
    assert_eq!(ps[0]["payload"], String::from_utf8_lossy(script).as_ref());
    assert_bootstrap_delivered(&read, &tls);

    // The user's own cloud-config with write_files and runcmd: merged, not replaced.
    let cc = b"#cloud-config\nwrite_files:\n- path: /etc/gitlab-runner/extra\n  content: x\nruncmd:\n- [touch, /var/tmp/user]\npackages: [jq]\n";
    let read = cloud_init_read(&compose_with(Some(cc), &tls));
    assert_eq!(parts(&read)[0]["type"], "text/cloud-config");
    assert_eq!(written(&read, "/etc/gitlab-runner/extra")["content"], "x");
    assert_eq!(
        read["merged"]["runcmd"][0],
        json!(["touch", "/var/tmp/user"])
    );
    assert_eq!(read["merged"]["packages"], json!(["jq"]));
    assert_bootstrap_delivered(&read, &tls);

    // A MIME multi-part document of the user's: each of its parts survives.
    let mime = b"Content-Type: multipart/mixed; boundary=\"USERB\"\nMIME-Version: 1.0\n\n--USERB\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho one\n--USERB\nContent-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n- [echo, two]\n--USERB--\n";
    let read = cloud_init_read(&compose_with(Some(mime), &tls));
    let types: Vec<&str> = parts(&read)
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "text/x-shellscript",
            "text/cloud-config",
            "text/cloud-config",
            "text/x-shellscript"
        ],
        "{read:#}"
    );
    assert_eq!(read["merged"]["runcmd"][0], json!(["echo", "two"]));
    assert_bootstrap_delivered(&read, &tls);

    // gzip: cloud-init unpacks it and finds the script inside.
    let gz = Command::new("gzip")
        .arg("-c")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script)?;
            c.wait_with_output()
        })
        .expect("gzip");
    let read = cloud_init_read(&compose_with(Some(&gz.stdout), &tls));
    assert_eq!(parts(&read)[0]["type"], "text/x-shellscript", "{read:#}");
    assert_eq!(
        parts(&read)[0]["payload"],
        String::from_utf8_lossy(script).as_ref()
    );
    assert_bootstrap_delivered(&read, &tls);

    // UTF-8 that is not ASCII travels as base64 and arrives intact.
    let utf8 = "#!/bin/sh\necho 'Grüße, ça va'\n".as_bytes();
    let read = cloud_init_read(&compose_with(Some(utf8), &tls));
    assert_eq!(
        parts(&read)[0]["payload"],
        "#!/bin/sh\necho 'Grüße, ça va'\n"
    );
}

/// A user-data file that leaves no room for the bootstrap within EC2's 16 KB is refused,
/// naming both options.
#[test]
fn bootstrap_user_data_over_16_kb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big");
    std::fs::write(&f, format!("#!/bin/sh\n{}\n", "#".repeat(14_000))).unwrap();
    let mut config = Config::default();
    config.asked.tls_bootstrap = true;
    config.asked.user_data_file = f.to_string_lossy().into_owned();
    let e = user_data::compose(
        &config.asked,
        Some(&ec2spot::convert::tls_material(material())),
    )
    .unwrap_err()
    .to_string();
    for needle in ["--amazonec2-tls-bootstrap", "--amazonec2-userdata", "16384"] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// The fork's RPC methods over Go's net/rpc + gob.

/// The conformance tour with the TLS bootstrap on and the fork's `tls-bootstrap-lock` in
/// the options: each fork method answers as the fork's client expects.
#[test]
fn fork_methods_answer_the_go_client() {
    let store = tempfile::tempdir().unwrap();
    let flags = json!({
        "amazonec2-access-key": "testing",
        "amazonec2-secret-key": "testing",
        "amazonec2-vpc-id": "vpc-0123456789abcdef0",
        "amazonec2-subnet-id": "subnet-0123456789abcdef0",
        "amazonec2-ami": "ami-0123456789abcdef0",
        "amazonec2-endpoint": "http://127.0.0.1:9",
        "amazonec2-tls-bootstrap": true,
        "tls-bootstrap-lock": true
    })
    .to_string();
    let (r, _) = goclient::run_dmclient_json(
        [
            "conformance",
            "-exec",
            PLUGIN,
            "-store",
            store.path().to_str().unwrap(),
            "-flags",
            &flags,
        ],
        &[
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/ec2spot-test/config"),
            ("EC2SPOT_AGENT", "off"),
        ],
    );
    let step = |m: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["method"] == m)
            .unwrap_or_else(|| panic!("no step {m}: {r:#}"))
            .clone()
    };
    assert!(
        step("SetConfigFromFlags")["error"].is_null(),
        "the fork's tls-bootstrap-lock is ignored: {r:#}"
    );
    assert_eq!(
        r["set_config_from_flags"]["values"]["tls-bootstrap-lock"],
        true
    );
    assert_eq!(r["config_raw"]["TLSBootstrap"], true);
    let requested = step("TLSBootstrapRequested");
    assert!(requested["error"].is_null(), "{requested:#}");
    assert_eq!(requested["reply"], true);
    let set = step("SetTLSBootstrap");
    assert_eq!(set["error_type"], "server", "{set:#}");
    let text = set["error"].as_str().unwrap();
    assert!(
        text.contains("CACert is not a PEM certificate")
            && text.contains("amazonec2-tls-bootstrap"),
        "{text}"
    );
    let labels = step("UpdateLabels");
    assert_eq!(labels["error_type"], "server", "{labels:#}");
    let text = labels["error"].as_str().unwrap();
    assert!(
        text.contains("\"aws:reserved\"") && text.contains("aws: prefix"),
        "{text}"
    );
    // The connection stayed usable and the plugin closed cleanly afterwards.
    assert_eq!(r["close"]["exit_code"], 0, "{:#}", r["close"]);
}

/// Without the option the plugin answers as the fork expects of a driver that provisions over
/// SSH: `TLSBootstrapRequested` false, material refused naming the option (through the Rust
/// client of the same protocol).
#[tokio::test]
async fn without_the_option_no_tls_bootstrap_is_requested() {
    use ec2spot_testkit::plugin_client::{PluginProcess, create_skeleton, docker_machine_values};
    let store = tempfile::tempdir().unwrap();
    let env = vec![
        ("EC2SPOT_AGENT".to_string(), "off".to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    let p = PluginProcess::start(Path::new(PLUGIN), "ec2spot", &env, None)
        .await
        .unwrap();
    p.set_config_raw(&create_skeleton("off1", store.path().to_str().unwrap()))
        .await
        .unwrap();
    let flags = p.create_flags().await.unwrap();
    p.set_config_from_flags(&docker_machine_values(&flags, &[]))
        .await
        .unwrap();
    assert!(!p.tls_bootstrap_requested().await.unwrap());
    let e = p
        .set_tls_bootstrap(&material())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--amazonec2-tls-bootstrap is not set"), "{e}");
    let e = p
        .update_labels(&BTreeMap::from([("aws:x".to_string(), "1".to_string())]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("label \"aws:x\""), "{e}");
    assert_eq!(p.close().await, Some(0));
}

// ---------------------------------------------------------------------------------------
// Against moto, through `dmclient dm --gitlab-fork`.

fn out_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `docker-machine` as GitLab's fork: `dm --gitlab-fork [global options] <args>`.
async fn fork_dm(
    b: &Bastion,
    env: Vec<(String, String)>,
    globals: &[&str],
    args: &[&str],
) -> Output {
    let mut all = vec!["--gitlab-fork"];
    all.extend_from_slice(globals);
    all.extend_from_slice(args);
    b.dm_env(&all, env).await
}

pub(crate) async fn fork_ok(
    b: &Bastion,
    env: Vec<(String, String)>,
    globals: &[&str],
    args: &[&str],
) -> Output {
    let o = fork_dm(b, env, globals, args).await;
    assert!(
        o.status.success(),
        "docker-machine {args:?} failed:\n{}",
        out_text(&o)
    );
    o
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Tags of the instance and of its volume.
async fn instance_and_volume_tags(
    b: &Bastion,
    id: &str,
) -> (Vec<aws_sdk_ec2::types::Tag>, Vec<aws_sdk_ec2::types::Tag>) {
    let ec2 = b.ec2().await;
    let i = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .clone();
    let vols = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(vols.volumes().len(), 1, "{vols:?}");
    (i.tags().to_vec(), vols.volumes()[0].tags().to_vec())
}

async fn labels_round(b: &Bastion, env: Vec<(String, String)>, name: &str) {
    fork_ok(b, env.clone(), &[], &["create", "-d", "ec2spot", name]).await;
    let id = b.driver(name)["InstanceId"].as_str().unwrap().to_string();

    b.proxy.reset_log();
    fork_ok(
        b,
        env.clone(),
        &[],
        &[
            "update-labels",
            "--label",
            "runner_manager_heartbeat=1700000000",
            "--label",
            "team=ci",
            name,
        ],
    )
    .await;
    assert_eq!(b.proxy.count("CreateTags"), 1, "one call tags everything");
    let (it, vt) = instance_and_volume_tags(b, &id).await;
    for tags in [&it, &vt] {
        assert_eq!(
            tag(tags, "runner_manager_heartbeat"),
            Some("1700000000"),
            "{tags:?}"
        );
        assert_eq!(tag(tags, "team"), Some("ci"), "{tags:?}");
        assert_eq!(
            tag(tags, "ec2spot:machine-name"),
            Some(name),
            "ownership tags stay"
        );
    }

    // The next heartbeat overwrites the value; the other labels stay.
    fork_ok(
        b,
        env.clone(),
        &[],
        &[
            "update-labels",
            "--label",
            "runner_manager_heartbeat=1700000060",
            name,
        ],
    )
    .await;
    let (it, vt) = instance_and_volume_tags(b, &id).await;
    for tags in [&it, &vt] {
        assert_eq!(tag(tags, "runner_manager_heartbeat"), Some("1700000060"));
        assert_eq!(tag(tags, "team"), Some("ci"));
    }

    // A label AWS would refuse fails before any EC2 call, naming the label.
    b.proxy.reset_log();
    let bad = fork_dm(
        b,
        env.clone(),
        &[],
        &["update-labels", "--label", "ec2spot:machine-id=mine", name],
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        out_text(&bad).contains("label \"ec2spot:machine-id\""),
        "{}",
        out_text(&bad)
    );
    assert_eq!(b.proxy.count("CreateTags"), 0);

    fork_ok(b, env, &[], &["rm", "-y", name]).await;
}

/// `docker-machine update-labels` (the runner's heartbeat) sets tags on the instance and its
/// volume, with the agent (default) and without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_labels_become_tags_on_instance_and_volume() {
    let b = Bastion::start().await;
    labels_round(&b, b.env(), "lab1").await;
    labels_round(&b, b.env_direct(), "lab2").await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// The user data of the launch request (RunInstances), decoded.
pub(crate) fn launched_user_data(b: &Bastion) -> Option<Vec<u8>> {
    let r = b
        .proxy
        .requests()
        .into_iter()
        .rfind(|r| r.action == "RunInstances")
        .expect("a RunInstances request");
    r.param("UserData").map(|u| {
        base64::engine::general_purpose::STANDARD
            .decode(u)
            .expect("base64 user data")
    })
}

/// Every file under `dir` whose content holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_holding(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle)) {
            found.push(p);
        }
    }
    found
}

async fn tls_round(b: &Bastion, env: Vec<(String, String)>, name: &str, user_file: Option<&Path>) {
    let mut args = vec!["create", "-d", "ec2spot", "--amazonec2-tls-bootstrap"];
    let file_arg;
    if let Some(f) = user_file {
        file_arg = f.to_string_lossy().into_owned();
        args.extend(["--amazonec2-userdata", file_arg.as_str()]);
    }
    args.push(name);
    let o = fork_ok(b, env.clone(), &["--debug"], &args).await;
    let text = out_text(&o);
    assert!(text.contains("Calling .TLSBootstrapRequested"), "{text}");
    assert!(text.contains("Calling .SetTLSBootstrap"), "{text}");
    assert!(text.contains("Waiting for the TLS handshake on"), "{text}");
    assert!(!text.contains("Skipping SSH provisioning"), "{text}");

    let dir = b.store().join("machines").join(name);
    let tls = TlsBootstrap {
        ca_cert: std::fs::read(b.store().join("certs/ca.pem")).unwrap(),
        server_cert: std::fs::read(dir.join("server.pem")).unwrap(),
        server_key: std::fs::read(dir.join("server-key.pem")).unwrap(),
        daemon_dropin: FORK_DROPIN.as_bytes().to_vec(),
    };
    let raw = launched_user_data(b).expect("user data in RunInstances");
    let read = cloud_init_read(&raw);
    assert_bootstrap_delivered(&read, &tls);
    if let Some(f) = user_file {
        let first = &parts(&read)[0];
        assert_eq!(first["filename"], "amazonec2-userdata", "{read:#}");
        assert_eq!(
            first["payload"],
            String::from_utf8(std::fs::read(f).unwrap()).unwrap()
        );
    } else {
        assert_eq!(parts(&read).len(), 2, "{read:#}");
    }

    // The server key is in docker-machine's own file and in the user data, nowhere else: not
    // in config.json, not in any output, not in the agent's log.
    let key_line = String::from_utf8(tls.server_key.clone())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        !text.contains(&key_line),
        "the server key reached the output"
    );
    assert_eq!(
        files_holding(b.store(), key_line.as_bytes()),
        vec![dir.join("server-key.pem")],
        "the server key is stored only where docker-machine put it"
    );
    assert_eq!(b.driver(name)["TLSBootstrap"], true);

    fork_ok(b, env, &[], &["rm", "-y", name]).await;
}

/// `--amazonec2-tls-bootstrap` with the fork: the material the fork generated reaches the
/// RunInstances user data unchanged, next to the user's own file, valid for cloud-init —
/// through the agent and without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bootstrap_reaches_the_launch_as_cloud_init() {
    let b = Bastion::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("userdata.sh");
    std::fs::write(&script, "#!/bin/sh\necho runner-prep > /var/tmp/prep\n").unwrap();
    tls_round(&b, b.env(), "tls1", Some(&script)).await;
    tls_round(&b, b.env_direct(), "tls2", None).await;

    // The same option with upstream docker-machine (no TLS bootstrap in it): the user's file
    // alone, and a line saying SSH provisioning does the rest.
    let o = b
        .dm_env(
            &[
                "create",
                "-d",
                "ec2spot",
                "--amazonec2-tls-bootstrap",
                "--amazonec2-userdata",
                script.to_str().unwrap(),
                "tls3",
            ],
            b.env(),
        )
        .await;
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(
        out_text(&o).contains("provisions over SSH as usual"),
        "{}",
        out_text(&o)
    );
    assert_eq!(
        launched_user_data(&b).unwrap(),
        std::fs::read(&script).unwrap()
    );
    b.dm_ok(&["rm", "-y", "tls3"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// Images the cloud-init part cannot work on are refused by the pre-create check, naming the
/// option, before anything is created; so is user data that leaves no room for the material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bootstrap_refusals_create_nothing() {
    let b = Bastion::start().await;
    // The second DescribeImages (the bootstrap's image check) sees a Windows image.
    b.proxy.respond_after("DescribeImages", 1, 1, |_| {
        (
            200,
            r#"<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><imagesSet><item><imageId>ami-785db401</imageId><imageState>available</imageState><name>Windows_Server-2022-English-Full-Base-2026.01.01</name><architecture>x86_64</architecture><platform>windows</platform><rootDeviceType>ebs</rootDeviceType></item></imagesSet></DescribeImagesResponse>"#
                .into(),
        )
    });
    let o = fork_dm(
        &b,
        b.env(),
        &[],
        &[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-ami",
            "ami-785db401",
            "--amazonec2-tls-bootstrap",
            "win1",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "a pre-create error: {}",
        out_text(&o)
    );
    let text = out_text(&o);
    assert!(
        text.contains("--amazonec2-tls-bootstrap: cannot deliver the TLS bootstrap")
            && text.contains("Windows image"),
        "{text}"
    );

    // 14 KB of user data: SetTLSBootstrap refuses before Create.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.sh");
    std::fs::write(&big, format!("#!/bin/sh\n{}\n", "#".repeat(14_000))).unwrap();
    let o = fork_dm(
        &b,
        b.env(),
        &[],
        &[
            "create",
            "-d",
            "ec2spot",
            "--amazonec2-tls-bootstrap",
            "--amazonec2-userdata",
            big.to_str().unwrap(),
            "big1",
        ],
    )
    .await;
    assert!(!o.status.success());
    let text = out_text(&o);
    assert!(
        text.contains("--amazonec2-userdata") && text.contains("16384"),
        "{text}"
    );
    assert_eq!(b.proxy.count("RunInstances"), 0, "nothing launched");
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    // What docker-machine saved before the refusal is removable.
    fork_ok(&b, b.env(), &[], &["rm", "-y", "big1"]).await;
}

/// In json mode every plugin line of a create (debug lines included) is a JSON object the
/// fork re-emits with the machine's name; `url` and `config` print only what the runner
/// parses, in either mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_and_url_prints_only_the_url() {
    let b = Bastion::start().await;
    let json_mode: &[&str] = &["--plugin-log-format", "json"];
    let debug_json: &[&str] = &["--plugin-log-format", "json", "--debug"];
    let o = fork_ok(&b, b.env(), debug_json, &["create", "-d", "ec2spot", "js1"]).await;
    let mut plugin_lines = 0;
    let mut levels = BTreeMap::new();
    // A plugin line that is not JSON would be shown as upstream shows it: "(machine) text" on
    // stdout, "(machine) DBG | text" on stderr.
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    for line in stdout.lines() {
        assert!(
            !line.starts_with('('),
            "a plugin line that is not JSON: {line}"
        );
    }
    for line in stderr.lines() {
        assert!(
            !line.contains(") DBG | "),
            "a plugin line that is not JSON: {line}"
        );
    }
    for line in out_text(&o).lines() {
        if line.starts_with('{') {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for key in ["level", "msg", "time", "machine"] {
                assert!(v.get(key).is_some(), "{key} missing: {line}");
            }
            *levels
                .entry(v["level"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
            plugin_lines += 1;
        }
    }
    assert!(
        levels.get("info").copied().unwrap_or(0) >= 4 && levels.contains_key("debug"),
        "progress (info) and debug lines, all JSON: {levels:?}"
    );
    assert!(plugin_lines >= 6, "{}", out_text(&o));
    let progress = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["msg"].as_str().unwrap_or("").starts_with("Running at "))
        .expect("the create's progress line, as JSON on stdout");
    assert_eq!(progress["machine"], "js1");

    let ip = b.driver("js1")["IPAddress"].as_str().unwrap().to_string();
    for globals in [json_mode, &[]] {
        let url = fork_ok(&b, b.env(), globals, &["url", "js1"]).await;
        assert_eq!(
            String::from_utf8_lossy(&url.stdout),
            format!("tcp://{ip}:2376\n"),
            "url prints the URL alone ({globals:?})"
        );
        let cfg = fork_ok(&b, b.env(), globals, &["config", "js1"]).await;
        let stdout = String::from_utf8_lossy(&cfg.stdout);
        assert!(
            stdout.lines().count() == 5
                && stdout
                    .lines()
                    .all(|l| l.starts_with("--tls") || l.starts_with("-H=tcp://")),
            "config prints connection flags only ({globals:?}):\n{stdout}"
        );
        let inspect = fork_ok(
            &b,
            b.env(),
            globals,
            &[
                "inspect",
                "js1",
                "-f",
                "{{.HostOptions.AuthOptions.StorePath}}",
            ],
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout).trim(),
            b.store().join("machines/js1").to_string_lossy()
        );
    }
    fork_ok(&b, b.env(), json_mode, &["rm", "-y", "js1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
}

/// A create that fails after its launch: the fork saves the host (one more GetConfigRaw),
/// config.json holds what the driver reported after the failure, and the `rm -y`
/// gitlab-runner runs next leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_create_is_saved_and_rm_leaves_nothing() {
    let b = Bastion::start().await;
    // Every instance read fails from the launch on: the wait for Running fails; and so does
    // the create's own cleanup, as terminating is refused too.
    b.refuse_instance_reads_and_termination();
    let o = fork_dm(
        &b,
        b.env(),
        &["--debug"],
        &["create", "-d", "ec2spot", "bad1"],
    )
    .await;
    assert!(!o.status.success(), "{}", out_text(&o));
    assert_eq!(b.proxy.count("RunInstances"), 1, "{}", out_text(&o));
    let text = out_text(&o);
    let calls = text.matches("(bad1) Calling .GetConfigRaw").count();
    let saved = b.driver("bad1");
    assert!(
        !saved["MachineId"].as_str().unwrap_or("").is_empty(),
        "{saved:#}"
    );
    assert!(
        !saved["InstanceId"].as_str().unwrap_or("").is_empty(),
        "the save after the failure recorded the launched instance: {saved:#}\n{text}"
    );
    assert!(
        calls >= 2,
        "GetConfigRaw before and after the failed Create: {text}"
    );
    assert!(
        !b.leftovers().await.is_empty(),
        "the failure left the instance"
    );

    b.proxy.clear();
    fork_ok(&b, b.env(), &[], &["rm", "-y", "bad1"]).await;
    assert_eq!(b.leftovers().await, Vec::<String>::new());
    assert!(!b.store().join("machines/bad1").exists());
}
