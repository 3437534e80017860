//! Go `net/rpc` client over HTTP CONNECT (what `rpc.DialHTTP` does): concurrent calls on one
//! connection, replies matched by `Seq`. Used by our tests, benchmarks and demo to drive a
//! plugin the way docker-machine does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, oneshot};

use super::handshake;
use super::header::{RequestHeader, ResponseHeader, request_type};
use ec2spot_gob::{Encoder, StreamDecoder, Type, Value};

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error (Go's `rpc.ServerError`).
    #[error("{0}")]
    Server(String),
    /// The connection is gone (Go's `rpc.ErrShutdown`).
    #[error("connection is shut down")]
    Shutdown,
    /// Connecting or writing failed.
    #[error("{0}")]
    Io(String),
}

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Result<Value, ClientError>>>>>>;

/// A connected net/rpc client.
pub struct Client {
    writer: Mutex<(OwnedWriteHalf, Encoder)>,
    pending: Pending,
    seq: AtomicU64,
}

impl Client {
    /// Dials `addr` and performs the CONNECT handshake.
    pub async fn dial(addr: &str) -> Result<Client, ClientError> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let leftover = handshake::connect(&mut stream)
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let (rd, wr) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader_pending = Arc::clone(&pending);
        tokio::spawn(async move {
            let mut dec = StreamDecoder::new(std::io::Cursor::new(leftover).chain(rd));
            loop {
                let header = match dec.next().await {
                    Ok(Some(h)) => h,
                    _ => break,
                };
                let Ok(header) = ResponseHeader::from_value(&header) else {
                    break;
                };
                let body = match dec.next().await {
                    Ok(Some(b)) => b,
                    _ => break,
                };
                let waiter = reader_pending
                    .lock()
                    .await
                    .as_mut()
                    .and_then(|p| p.remove(&header.seq));
                if let Some(tx) = waiter {
                    let r = if header.error.is_empty() {
                        Ok(body)
                    } else {
                        Err(ClientError::Server(header.error))
                    };
                    let _ = tx.send(r);
                }
            }
            // Fail every outstanding and future call.
            if let Some(p) = reader_pending.lock().await.take() {
                for (_, tx) in p {
                    let _ = tx.send(Err(ClientError::Shutdown));
                }
            }
        });
        Ok(Client {
            writer: Mutex::new((wr, Encoder::new())),
            pending,
            seq: AtomicU64::new(0),
        })
    }

    /// Calls `service_method` with `arg` of type `arg_ty` and waits for the reply body.
    pub async fn call(
        &self,
        service_method: &str,
        arg_ty: &Type,
        arg: &Value,
    ) -> Result<Value, ClientError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().await.as_mut() {
            Some(p) => p.insert(seq, tx),
            None => return Err(ClientError::Shutdown),
        };
        let header = RequestHeader {
            service_method: service_method.to_string(),
            seq,
        };
        {
            let mut w = self.writer.lock().await;
            let (wr, enc) = &mut *w;
            let mut buf = Vec::new();
            enc.encode(&request_type(), &header.to_value(), &mut buf)
                .and_then(|_| enc.encode(arg_ty, arg, &mut buf))
                .map_err(|e| ClientError::Io(e.to_string()))?;
            if let Err(e) = wr.write_all(&buf).await {
                if let Some(p) = self.pending.lock().await.as_mut() {
                    p.remove(&seq);
                }
                return Err(ClientError::Io(e.to_string()));
            }
        }
        rx.await.unwrap_or(Err(ClientError::Shutdown))
    }
}
