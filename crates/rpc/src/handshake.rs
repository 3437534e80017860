//! The HTTP CONNECT handshake that opens a Go `net/rpc` connection (`rpc.DialHTTP`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the client sends: `CONNECT /_goRPC_ HTTP/1.0` and an empty line.
pub const CONNECT_REQUEST: &[u8] = b"CONNECT /_goRPC_ HTTP/1.0\n\n";
/// What the server answers; Go's client requires exactly this status text.
pub const CONNECTED_RESPONSE: &[u8] = b"HTTP/1.0 200 Connected to Go RPC\n\n";

/// Longest request head we read before giving up on a peer.
const MAX_HEAD: usize = 8 * 1024;

/// A failed handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or closed.
    #[error("handshake i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent an HTTP request other than `CONNECT /_goRPC_` (answered with Go's status).
    #[error("not an RPC request: {0}")]
    NotRpc(String),
    /// The peer sent something that is not an HTTP request head.
    #[error("malformed request head")]
    Malformed,
    /// The server answered something else than Go's `200 Connected to Go RPC`.
    #[error("unexpected HTTP response: {0}")]
    BadResponse(String),
}

/// Server side: reads the request head (up to the first empty line, LF or CRLF), answers it,
/// and returns the bytes already read past the head (the start of the gob stream).
///
/// A non-CONNECT request for `/_goRPC_` gets Go's `405 must CONNECT`, any other path a 404,
/// both followed by closing the connection (the caller drops it on error).
pub async fn accept<S>(stream: &mut S) -> Result<Vec<u8>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(64);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(HandshakeError::Malformed);
        }
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, path) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), Some(v)) if v.starts_with("HTTP/") => (m, p),
        _ => return Err(HandshakeError::Malformed),
    };
    if path != "/_goRPC_" {
        let body = "404 page not found\n";
        let reply = format!(
            "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await?;
        return Err(HandshakeError::NotRpc(line.to_string()));
    }
    if method != "CONNECT" {
        let body = "405 must CONNECT\n";
        let reply = format!(
            "HTTP/1.0 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await?;
        return Err(HandshakeError::NotRpc(line.to_string()));
    }
    stream.write_all(CONNECTED_RESPONSE).await?;
    stream.flush().await?;
    Ok(rest)
}

/// Client side: sends the CONNECT request and checks Go's answer. Returns the bytes read past
/// the response head.
pub async fn connect<S>(stream: &mut S) -> Result<Vec<u8>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(CONNECT_REQUEST).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(64);
    let end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(HandshakeError::Malformed);
        }
        let mut chunk = [0u8; 256];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.lines().next().unwrap_or("");
    let status = status.split_once(' ').map(|x| x.1).unwrap_or("");
    if status != "200 Connected to Go RPC" {
        return Err(HandshakeError::BadResponse(status.to_string()));
    }
    Ok(buf[end..].to_vec())
}

/// Index just past the first empty line (`\n\n` or `\r\n\r\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exact_bytes_and_leftover() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let srv = tokio::spawn(async move {
            let rest = accept(&mut server).await.unwrap();
            (rest, server)
        });
        client
            .write_all(b"CONNECT /_goRPC_ HTTP/1.0\n\n\x03\xff\x84\x00")
            .await
            .unwrap();
        let mut reply = vec![0u8; CONNECTED_RESPONSE.len()];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, CONNECTED_RESPONSE);
        let (rest, _s) = srv.await.unwrap();
        assert_eq!(rest, b"\x03\xff\x84\x00");
    }

    #[tokio::test]
    async fn crlf_head_is_accepted_and_other_requests_refused() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"CONNECT /_goRPC_ HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(accept(&mut server).await.unwrap().is_empty());

        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET /_goRPC_ HTTP/1.0\n\n")
            .await
            .unwrap();
        assert!(matches!(
            accept(&mut server).await,
            Err(HandshakeError::NotRpc(_))
        ));
        let mut reply = vec![0u8; 12];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"HTTP/1.0 405");

        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"\x00\x01garbage\n\n").await.unwrap();
        assert!(matches!(
            accept(&mut server).await,
            Err(HandshakeError::Malformed)
        ));
    }

    #[tokio::test]
    async fn client_and_server_agree() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let srv = tokio::spawn(async move { accept(&mut server).await.map(|_| ()) });
        connect(&mut client).await.unwrap();
        srv.await.unwrap().unwrap();
    }
}
