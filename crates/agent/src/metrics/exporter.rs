//! The metrics endpoint: `GET /metrics` over plain HTTP/1.1 on the address given with
//! `agent --metrics-listen` (a bare port listens on loopback only). One small request per
//! scrape, so a few lines of HTTP serve it without an HTTP server crate.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `--metrics-listen` means: `PORT` or `:PORT` is `127.0.0.1:PORT`, anything else an
/// address with its port (`0.0.0.0:9742`, `[::1]:9742`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let port = t.strip_prefix(':').unwrap_or(t);
    if let Ok(p) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    t.parse()
        .map_err(|_| format!("{s:?} is not an address such as 127.0.0.1:9742 or a port"))
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metrics: binding {addr}: {e}"))
}

/// Serves scrapes on `listener` for ever, each answered with what `render` returns.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, render).await {
                debug!("metrics request: {e}");
            }
        });
    }
}

/// Reads one request (its head, at most 8 KiB) and answers it.
async fn answer(
    mut stream: TcpStream,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("request head timed out"))??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => ("200 OK", CONTENT_TYPE, render()),
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "ec2spot agent: metrics at /metrics\n".to_string(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 9742));
        assert_eq!(parse_listen("9742"), Ok(loopback));
        assert_eq!(parse_listen(":9742"), Ok(loopback));
        assert_eq!(
            parse_listen("0.0.0.0:9742"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 9742)))
        );
        assert_eq!(parse_listen("[::1]:9742").unwrap().port(), 9742);
        assert!(parse_listen("localhost").unwrap_err().contains("localhost"));
    }
}
