//! The plugin binary's RPC server under misuse, through raw sockets: an undecodable header
//! closes only that connection, other connections keep being served, and non-RPC HTTP
//! requests get Go's answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ec2spot::plugin::client::PluginProcess;

const PLUGIN: &str = env!("CARGO_BIN_EXE_docker-machine-driver-ec2spot");

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
