//! A small HTTP forward proxy, like a corporate one in front of a bastion: it forwards
//! absolute-form requests (`POST http://host:port/ HTTP/1.1`) and tunnels `CONNECT host:port`,
//! resolving host names from its own table — so an endpoint whose name only the proxy knows is
//! reachable only through it. It counts what it forwarded.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The proxy; it runs until the test's runtime ends.
#[derive(Clone)]
pub struct ForwardProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    forwarded: Arc<AtomicUsize>,
}

impl ForwardProxy {
    /// Starts a proxy that knows `hosts` (name → `127.0.0.1:PORT`-style address).
    pub async fn start(hosts: &[(&str, &str)]) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hosts: Arc<HashMap<String, String>> = Arc::new(
            hosts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let forwarded = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&forwarded);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (hosts, count) = (Arc::clone(&hosts), Arc::clone(&count));
                tokio::spawn(async move {
                    let _ = serve(sock, hosts, count).await;
                });
            }
        });
        ForwardProxy { url, forwarded }
    }

    /// How many requests (or tunnels) it forwarded.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// `host:port` resolved through the table (names it does not know are used as they are).
fn resolve(hosts: &HashMap<String, String>, authority: &str) -> String {
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "80"));
    match hosts.get(host) {
        Some(addr) if addr.contains(':') => addr.clone(),
        Some(addr) => format!("{addr}:{port}"),
        None => format!("{host}:{port}"),
    }
}

/// Serves one connection: tunnels a `CONNECT`, forwards an absolute-form request.
async fn serve(
    sock: TcpStream,
    hosts: Arc<HashMap<String, String>>,
    count: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    // One request per connection (its answer closes it).
    let mut client = BufReader::new(sock);
    let Some(head) = read_head(&mut client).await? else {
        return Ok(());
    };
    if head.method == "CONNECT" {
        return tunnel(client, &hosts, &head.target, &count).await;
    }
    forward(client, &hosts, &count, &head).await
}

/// A request's line and header lines.
struct Head {
    /// `CONNECT`, `POST`, …
    method: String,
    /// `host:port` of a `CONNECT`, else the absolute-form URL.
    target: String,
    /// `HTTP/1.1` unless the line says otherwise.
    version: String,
    /// The header lines as read (line ends kept).
    headers: Vec<String>,
}

/// Reads the request line and header lines; `None` when the client sent nothing.
async fn read_head(client: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if client.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, target, version) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or("HTTP/1.1").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        client.read_line(&mut h).await?;
        if h == "\r\n" || h == "\n" || h.is_empty() {
            break;
        }
        headers.push(h);
    }
    Ok(Some(Head {
        method,
        target,
        version,
        headers,
    }))
}

/// `CONNECT target`: connects to it, tells the client, and relays both ways until either
/// side closes.
async fn tunnel(
    mut client: BufReader<TcpStream>,
    hosts: &HashMap<String, String>,
    target: &str,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(resolve(hosts, target)).await?;
    count.fetch_add(1, Ordering::SeqCst);
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let mut client = client.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// An absolute-form request: sent in origin form to its host, the answer relayed back.
async fn forward(
    mut client: BufReader<TcpStream>,
    hosts: &HashMap<String, String>,
    count: &AtomicUsize,
    head: &Head,
) -> std::io::Result<()> {
    // Absolute form: http://host:port/path → origin form to host:port.
    let Some(rest) = head.target.strip_prefix("http://") else {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut body = vec![0u8; content_length(&head.headers)];
    client.read_exact(&mut body).await?;
    let mut upstream = TcpStream::connect(resolve(hosts, authority)).await?;
    count.fetch_add(1, Ordering::SeqCst);
    upstream
        .write_all(origin_form(head, path).as_bytes())
        .await?;
    upstream.write_all(&body).await?;
    // The upstream (our EC2 proxy, moto) closes after its answer: relay until then, and
    // close the client's connection too (the answer says `Connection: close` or is
    // delimited by its length, either way the client opens a new one).
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).await?;
    let sock = client.get_mut();
    sock.write_all(&answer).await?;
    sock.shutdown().await?;
    Ok(())
}

/// The body length the header lines give (`Content-Length`), 0 if none.
fn content_length(headers: &[String]) -> usize {
    headers
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// The head of the request to send upstream: origin form (`path`), the client's headers
/// but its connection ones, and `connection: close`.
fn origin_form(head: &Head, path: &str) -> String {
    let mut request = format!("{} {path} {}\r\n", head.method, head.version);
    for h in &head.headers {
        let name = h.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("proxy-connection")
            && !name.eq_ignore_ascii_case("connection")
        {
            request.push_str(h);
        }
    }
    request.push_str("connection: close\r\n\r\n");
    request
}
