//! A private moto EC2 server per test: started on a free 127.0.0.1 port with our fixture
//! images, killed when dropped. Tests never share state and never reach real AWS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The port.
    pub port: u16,
}

fn repo() -> PathBuf {
    crate::workspace_root().to_path_buf()
}

/// The moto_server executable: `$MOTO_SERVER`, the repo's `.venv`, or PATH.
pub fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    if let Some(p) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("moto_server"))
        .find(|p| p.exists())
    {
        return p;
    }
    panic!(
        "moto_server not found: run .ci/run (it installs moto into .venv) or `pip install 'moto[server]'`"
    );
}

impl Moto {
    /// Starts moto with extra environment (e.g. validation switches). moto binds port 0 and
    /// prints the port it got, so parallel tests never race for a port.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        use std::io::{BufRead, BufReader};
        let bin = moto_server();
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", "0"])
            .env(
                "MOTO_AMIS_PATH",
                repo().join("tests/fixtures/moto-amis.json"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent
                    && let Some(port) = line
                        .split("http://127.0.0.1:")
                        .nth(1)
                        .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                    sent = true;
                }
                // keep draining so moto never blocks on a full pipe
            }
        });
        let Ok(port) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("moto_server did not come up");
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "moto_server does not accept connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// Starts moto with default settings.
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// Environment for a plugin or SDK client talking to this moto: dummy credentials,
    /// endpoint, no instance metadata lookups.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_ENDPOINT_URL".into(), self.url.clone()),
        ]
    }

    /// An SDK client for assertions on moto's state.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        self.ec2_in("us-east-1").await
    }

    /// An SDK client for another region.
    pub async fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        ec2_client(&self.url, region)
    }

    /// Makes moto load what a pre-create check reads (instance types, offerings, images,
    /// network) once, untimed: a cold moto on a loaded machine takes seconds for the first of
    /// these, longer than a test's short attempt timeout. Straight to moto, so a proxy in
    /// front counts none of it.
    pub async fn warm(&self) {
        let ec2 = self.ec2().await;
        // Only the loading matters; a test that needs these answers asks for them itself.
        let _ = tokio::join!(
            ec2.describe_instance_types()
                .instance_types("t3.micro".into())
                .send(),
            ec2.describe_instance_type_offerings().send(),
            ec2.describe_images().owners("099720109477").send(),
            ec2.describe_vpcs().send(),
            ec2.describe_subnets().send(),
        );
    }
}

/// The access key id of the harness's own SDK clients ([`ec2_client`]): a test's setup and
/// assertions, which the IAM layer lets through (it judges the plugin's calls only).
pub const HARNESS_ACCESS_KEY: &str = "harness";

/// An SDK client for `region` of the EC2 endpoint at `url` (moto, or a proxy in front of it),
/// signed with [`HARNESS_ACCESS_KEY`].
pub fn ec2_client(url: &str, region: &str) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            HARNESS_ACCESS_KEY,
            "testing",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixture image set (tests/fixtures/moto-amis.json).
pub fn fixture_path() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/moto-amis.json"
    ))
}

/// Form-encodes `s` (application/x-www-form-urlencoded).
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

impl Moto {
    /// Sends one raw HTTP request to moto; returns status line and body.
    fn raw(&self, method: &str, path: &str, headers: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    }

    /// Calls IAM's Query API (unsigned: only while moto does not enforce IAM).
    pub fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", form_encode(v)));
        }
        let resp = self.raw(
            "POST",
            "/",
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\n",
            &body,
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{params:?}: {resp}");
        resp
    }

    /// Creates IAM user `name` with only `policy` (a JSON document) attached; returns its
    /// access key id and secret.
    pub fn iam_user(&self, name: &str, policy: &str) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        self.iam_attach(name, &format!("{name}-policy"), policy);
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        (
            xml_value(&key, "AccessKeyId").expect("key id"),
            xml_value(&key, "SecretAccessKey").expect("secret"),
        )
    }

    /// Creates policy `policy_name` from `policy` (JSON) and attaches it to user `user`.
    pub fn iam_attach(&self, user: &str, policy_name: &str, policy: &str) {
        let created = self.iam(&[
            ("Action", "CreatePolicy"),
            ("PolicyName", policy_name),
            ("PolicyDocument", policy),
        ]);
        let arn = xml_value(&created, "Arn").expect("policy ARN");
        self.iam(&[
            ("Action", "AttachUserPolicy"),
            ("UserName", user),
            ("PolicyArn", &arn),
        ]);
    }

    /// Switches IAM enforcement on (every request from now on is authenticated and checked
    /// against the caller's policies) or off.
    pub fn enforce_iam(&self, on: bool) {
        let resp = self.raw(
            "POST",
            "/moto-api/reset-auth",
            "",
            if on { "0" } else { "inf" },
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }

    /// Creates an IAM instance profile in moto (our SDK set has no IAM client; moto routes by
    /// the service named in the Authorization header and checks no signature).
    pub fn create_instance_profile(&self, name: &str) {
        self.iam(&[
            ("Action", "CreateInstanceProfile"),
            ("InstanceProfileName", name),
        ]);
    }
}
