//! The vs_go bench's output: the rows of the results table, the table itself in Markdown, the
//! description of the two binaries, and the report around the table (header and notes).

use std::path::Path;
use std::process::Command;

pub(crate) struct Row {
    pub(crate) measure: String,
    pub(crate) ec2spot: f64,
    pub(crate) go: Option<f64>,
    pub(crate) unit: &'static str,
    /// The target ratio ec2spot/Go (met when at or below it).
    pub(crate) target: Option<f64>,
}

fn fmt_value(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "n/a".into();
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// The results as a Markdown table.
pub(crate) fn markdown_table(rows: &[Row]) -> String {
    let mut t = String::new();
    t.push_str("| measure | ec2spot | Go baseline | ratio ec2spot/Go | target | met? |\n");
    t.push_str("|---|---:|---:|---:|---:|:---:|\n");
    for r in rows {
        let (go, ratio) = match r.go {
            Some(g) => (fmt_value(g, r.unit), Some(r.ec2spot / g)),
            None => ("—".into(), None),
        };
        let ratio_s = ratio.map_or("—".into(), |x| format!("{x:.2}×"));
        let (target, met) = match (r.target, ratio) {
            (Some(t), Some(x)) => (
                format!("≤ {t}×"),
                if x <= t { "yes" } else { "**no**" }.to_string(),
            ),
            _ => ("—".into(), "—".into()),
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.measure,
            fmt_value(r.ec2spot, r.unit),
            go,
            ratio_s,
            target,
            met
        ));
    }
    t
}

pub(crate) fn describe_go(path: &Path) -> String {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    format!(
        "{} (go build -trimpath, CGO_ENABLED=0, {:.1} MB)",
        path.display(),
        size as f64 / 1e6
    )
}

pub(crate) fn describe_binary(path: &Path) -> String {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let s = path.to_string_lossy();
    let profile = if s.contains("/release/") {
        "release profile"
    } else if s.contains("/debug/") {
        "dev profile (debug build)"
    } else {
        "profile unknown: not under target/debug or target/release"
    };
    format!(
        "{} ({profile}, {:.1} MB)",
        path.display(),
        size as f64 / 1e6
    )
}

/// The whole report on stdout: which binaries were measured, the table, the notes on how to
/// read it, and `notes` (failures seen while measuring).
pub(crate) fn print_report(ec2spot: &Path, go: &Path, rows: &[Row], notes: &[String]) {
    println!();
    println!("ec2spot vs a stdlib-only Go docker-machine plugin");
    println!("ec2spot binary: {}", describe_binary(ec2spot));
    println!(
        "Go baseline: {} ({})",
        describe_go(go),
        String::from_utf8_lossy(
            &Command::new("go")
                .arg("version")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .trim()
    );
    println!();
    print!("{}", markdown_table(rows));
    println!();
    for note in [
        "Baseline: tests/go/baseline is a plugin in Go with only the standard library \
(net/rpc + encoding/gob over HTTP CONNECT, docker-machine's plugin lifecycle). It is NOT \
docker-machine's amazonec2 driver and NOT aws-sdk-go, but its EC2 work makes amazonec2's calls in \
amazonec2's order with a stdlib EC2 Query client (DescribeAccountAttributes, DescribeKeyPairs and \
DescribeSubnets twice, an RSA-2048 key and ImportKeyPair, DescribeSecurityGroups, RunInstances, \
DescribeInstances for the address and for running, CreateTags; unsigned requests that only moto \
accepts). ec2spot's create does its work with aws-sdk-ec2: compare the EC2-call row.",
        "GetURL: ec2spot's asks EC2 in a fresh process (only GetIP answers from the stored \
IPAddress), so the fan-out runs against moto with N existing instances; the baseline's GetURL \
makes one DescribeInstances as well (amazonec2 makes two).",
        "Round trips: the Rust-client rows use ec2spot_testkit::plugin_client::PluginProcess (built in \
this bench's profile, so its own cost is in both columns); the Go-client rows use Go's net/rpc \
client, which is what docker-machine runs.",
        "Start-up and fan-out start the plugins as docker-machine does (token in the environment, \
stdin /dev/null, stdout/stderr pipes, default log settings); start-up is timed from just before \
spawn to the reply to the first RPC (GetVersion, through PluginProcess: address line, connect, \
CONNECT handshake, gob call), starts interleaved, 3 warm-up starts each not counted.",
        "RSS: create rows are VmHWM read just before Close; fan-out rows are the sum of VmRSS (and \
of PSS from smaps_rollup, and of RssAnon) of the N processes when the last answer arrived. \
Summed RSS counts pages shared between the N processes (the binary's text) N times; PSS splits \
them; RssAnon counts private memory only (heap, stacks, relocated data), not the pages of the \
binary file, whose number depends heavily on the build profile.",
        "Agent on: the agent is a separate process (`docker-machine-driver-ec2spot agent --store \
…`) found by /proc cmdline scan; for creates each run uses a fresh store, so a fresh agent; the \
agent-on fan-out ran after one untimed GetURL had started the agent.",
        "Creates go through crates/testkit/src/ec2_proxy.rs (counts EC2 requests; one request per \
connection); the fan-out talks to moto directly. No target is given for wall times.",
    ] {
        println!("- {note}");
    }
    for n in notes {
        println!("note: {n}");
    }
}
