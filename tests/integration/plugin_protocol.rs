//! The plugin binary's RPC server under misuse, through raw sockets: an undecodable header
//! closes only that connection, other connections keep being served, and non-RPC HTTP
//! requests get Go's answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ec2spot_testkit::plugin_client::PluginProcess;

use crate::PLUGIN;

fn connect(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"CONNECT /_goRPC_ HTTP/1.0\n\n").unwrap();
    let mut reply = [0u8; 34];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 Connected to Go RPC\n\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_its_connection() {
    let p = PluginProcess::start(
        PLUGIN.as_ref(),
        "ec2spot",
        &[],
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let addr = p.address.clone();
    let bad = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        for garbage in [
            &b"\x05\xff\xff\xff\xff\xff"[..], // a message that is not a header
            &b"\xf8\x10\x00\x00\x00\x00\x00\x00\x00"[..], // a 2^60-byte message
            &b"\x03\x02\x00\x01"[..],         // a header of the wrong type (int)
        ] {
            let mut s = connect(&addr);
            s.write_all(garbage).unwrap();
            let mut rest = Vec::new();
            let r = s.read_to_end(&mut rest); // the server closes: EOF, no reply
            results.push((r.is_ok(), rest.len()));
        }
        // Non-RPC HTTP: Go's 405 for another method, 404 for another path.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /_goRPC_ HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        (results, text)
    })
    .await
    .unwrap();
    for (closed_cleanly, bytes) in bad.0 {
        assert!(closed_cleanly, "connection closed with EOF");
        assert_eq!(bytes, 0, "no reply to an undecodable header");
    }
    assert!(
        bad.1.starts_with("HTTP/1.0 405") && bad.1.ends_with("405 must CONNECT\n"),
        "{}",
        bad.1
    );
    // The first connection (the client's) still works.
    assert_eq!(p.version().await.unwrap(), 1);
    assert_eq!(p.string("DriverName").await.unwrap(), "ec2spot");
    assert_eq!(p.close().await, Some(0));
}

fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

/// A valid GetVersion request stream (definitions, header, empty-struct body), gob-encoded.
fn get_version_requests(n: u64) -> Vec<u8> {
    use ec2spot_gob::{Encoder, Value};
    use ec2spot_rpc::{RequestHeader, empty_type, request_type};
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    for seq in 0..n {
        let h = RequestHeader {
            service_method: "RPCServerDriver.GetVersion".into(),
            seq,
        };
        enc.encode(&request_type(), &h.to_value(), &mut out)
            .unwrap();
        enc.encode(&empty_type(), &Value::empty_struct(), &mut out)
            .unwrap();
    }
    out
}

/// 30 000 nested slice type definitions, then a value of the outermost one.
fn nested_types() -> Vec<u8> {
    use ec2spot_gob::wire::{put_int, put_message, put_uint};
    let mut out = Vec::new();
    for i in 0..30_000i64 {
        let id = 65 + i;
        let mut body = Vec::new();
        put_int(&mut body, -id);
        for x in [2u64, 1, 2] {
            put_uint(&mut body, x);
        }
        put_int(&mut body, id);
        put_uint(&mut body, 0);
        put_uint(&mut body, 1);
        put_int(&mut body, if i == 0 { 2 } else { id - 1 });
        put_uint(&mut body, 0);
        put_uint(&mut body, 0);
        put_message(&mut out, &body);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_never_crash_or_bloat_the_plugin() {
    let p = PluginProcess::start(
        PLUGIN.as_ref(),
        "ec2spot",
        &[],
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let pid = p.pid().unwrap();
    let before = vm_rss_kb(pid);
    let addr = p.address.clone();
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage",
            (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("truncated frame", {
            let mut v = get_version_requests(3);
            v.truncate(v.len() - 5);
            v
        }),
        (
            "2^60 message length",
            vec![0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
        ),
        ("2^60 string length", {
            let mut v = get_version_requests(1);
            v.extend([
                0x0d, 0xff, 0x82, 0x00, 0x01, 0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0,
            ]);
            v
        }),
        ("nested types", nested_types()),
        ("many requests then garbage", {
            let mut v = get_version_requests(200);
            v.extend([0xff; 64]);
            v
        }),
    ];
    let mut handles = Vec::new();
    for round in 0..3 {
        for (name, bytes) in attacks.clone() {
            let addr = addr.clone();
            handles.push(tokio::task::spawn_blocking(move || {
                let mut s = connect(&addr);
                // Interleave partial writes from many connections.
                for chunk in bytes.chunks(7 + round * 13) {
                    if s.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut rest = Vec::new();
                let r = s.read_to_end(&mut rest);
                (name, r.is_ok())
            }));
        }
    }
    for h in handles {
        let (name, ended) = h.await.unwrap();
        assert!(ended, "{name}: the connection ended cleanly");
    }
    // Still alive, still serving its own connection, and not bloated.
    assert_eq!(p.version().await.unwrap(), 1);
    let after = vm_rss_kb(pid);
    println!("plugin RSS {before} kB before, {after} kB after 18 hostile connections");
    assert!(
        after < before + 64 * 1024,
        "memory grew from {before} to {after} kB"
    );
    assert_eq!(p.close().await, Some(0));
}
