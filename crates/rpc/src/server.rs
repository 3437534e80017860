//! Go `net/rpc` server over HTTP CONNECT: requests on a connection are read in order and
//! served concurrently; each reply (header + body) is written whole under a lock, so replies
//! never interleave but may come out of order, matched by `Seq` as Go's client expects.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use tracing::debug;

use super::handshake;
use super::header::{RequestHeader, ResponseHeader, empty_type, response_type};
use ec2spot_gob::{Encoder, StreamDecoder, Type, Value};

/// What a served call answers.
#[derive(Debug)]
pub struct Reply {
    /// The reply body and its type, or the error text.
    pub result: Result<(Type, Value), String>,
    /// Tell the server's owner to shut down once this reply is written and flushed.
    pub close_after: bool,
}

impl Reply {
    /// A successful reply.
    pub fn ok(ty: Type, value: Value) -> Self {
        Reply {
            result: Ok((ty, value)),
            close_after: false,
        }
    }

    /// The empty-struct reply of a method that returns only an error.
    pub fn void() -> Self {
        Reply::ok(empty_type(), Value::empty_struct())
    }

    /// An error reply.
    pub fn error(text: impl Into<String>) -> Self {
        Reply {
            result: Err(text.into()),
            close_after: false,
        }
    }
}

/// A boxed reply future.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// An object whose methods are served (Go's `rpc.Register`).
pub trait Service: Send + Sync + 'static {
    /// Whether `method` exists (else Go's "can't find method" error is answered).
    fn has_method(&self, method: &str) -> bool;
    /// Serves one call; `arg` is the decoded argument.
    fn call(&self, method: &str, arg: Value) -> ReplyFuture;
}

/// A net/rpc server: services by name, and a signal raised when a reply asks to close.
pub struct Server {
    services: HashMap<String, Arc<dyn Service>>,
    closed: Notify,
}

impl Server {
    /// A server without services.
    pub fn new() -> Self {
        Server {
            services: HashMap::new(),
            closed: Notify::new(),
        }
    }

    /// Registers `service` under `name` (one object may be registered under several names).
    pub fn register(&mut self, name: &str, service: Arc<dyn Service>) {
        self.services.insert(name.to_string(), service);
    }

    /// Resolves once a reply with `close_after` has been written and flushed.
    pub async fn closed(&self) {
        self.closed.notified().await
    }

    /// Accepts connections forever, each served on its own task.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    debug!("rpc connection from {peer}");
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(Arc::clone(&self).serve_conn(stream));
                }
                Err(e) => {
                    debug!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Serves one connection until the peer closes it or sends a header that cannot be read;
    /// then waits for in-flight calls to write their replies and closes it.
    pub async fn serve_conn(self: Arc<Self>, stream: TcpStream) {
        self.serve_stream(stream).await
    }

    /// Serves one connection over any byte stream (the plugin's TCP socket; in-memory pipes
    /// in tests and fuzzing).
    pub async fn serve_stream<S>(self: Arc<Self>, mut stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let leftover = match handshake::accept(&mut stream).await {
            Ok(rest) => rest,
            Err(e) => {
                debug!("rpc handshake failed: {e}");
                return;
            }
        };
        let (rd, wr) = tokio::io::split(stream);
        let mut dec = StreamDecoder::new(std::io::Cursor::new(leftover).chain(rd));
        let writer = Arc::new(Mutex::new(ReplyWriter {
            wr: Box::new(wr) as Box<dyn AsyncWrite + Unpin + Send>,
            enc: Encoder::new(),
        }));
        let mut calls = JoinSet::new();
        while let Some(header) = next_header(&mut dec).await {
            let body = match dec.next().await {
                Ok(Some(v)) => v,
                Ok(None) => break,
                Err(e) => {
                    // Go answers a body it cannot decode with the decoder's error and goes on.
                    answer_error(&mut calls, &writer, header, e.to_string());
                    continue;
                }
            };
            match self.target(&header.service_method) {
                Err(text) => answer_error(&mut calls, &writer, header, text),
                Ok((svc, method)) => {
                    self.answer_call(&mut calls, &writer, header, svc, method, body)
                }
            }
            // Reap finished calls so the set does not grow on a long-lived connection.
            while calls.try_join_next().is_some() {}
        }
        while calls.join_next().await.is_some() {}
        let _ = writer.lock().await.wr.shutdown().await;
    }

    /// The service and method a call's `Service.Method` names, or Go's error text when it is
    /// ill-formed or names neither.
    fn target(&self, sm: &str) -> Result<(Arc<dyn Service>, String), String> {
        match sm.rfind('.') {
            None => Err(format!("rpc: service/method request ill-formed: {sm}")),
            Some(dot) => match self.services.get(&sm[..dot]) {
                None => Err(format!("rpc: can't find service {sm}")),
                Some(svc) if !svc.has_method(&sm[dot + 1..]) => {
                    Err(format!("rpc: can't find method {sm}"))
                }
                Some(svc) => Ok((Arc::clone(svc), sm[dot + 1..].to_string())),
            },
        }
    }

    /// Serves the call `header` asks for on its own task: the method's reply is written (and
    /// the server told to close if it asks to) when it is done.
    fn answer_call(
        self: &Arc<Self>,
        calls: &mut JoinSet<()>,
        writer: &SharedWriter,
        header: RequestHeader,
        svc: Arc<dyn Service>,
        method: String,
        body: Value,
    ) {
        let w = Arc::clone(writer);
        let server = Arc::clone(self);
        calls.spawn(async move {
            // A panicking method must still answer, or the client would wait forever.
            let reply = match tokio::spawn(svc.call(&method, body)).await {
                Ok(reply) => reply,
                Err(e) => Reply::error(format!("internal error in {method}: {e}")),
            };
            let close = reply.close_after;
            w.lock().await.write(&header, reply).await;
            if close {
                server.closed.notify_one();
            }
        });
    }
}

/// The next request header of a connection; `None` at its end or when a header cannot be
/// read (the connection is then closed).
async fn next_header<R: AsyncRead + Unpin>(dec: &mut StreamDecoder<R>) -> Option<RequestHeader> {
    let header = match dec.next().await {
        Ok(Some(v)) => v,
        Ok(None) => return None,
        Err(e) => {
            debug!("rpc: reading request header: {e}");
            return None;
        }
    };
    match RequestHeader::from_value(&header) {
        Ok(h) => Some(h),
        Err(e) => {
            debug!("rpc: bad request header: {e}");
            None
        }
    }
}

/// Answers the call `header` asks for with the error `text`, on its own task (in turn for
/// the connection's writer).
fn answer_error(
    calls: &mut JoinSet<()>,
    writer: &SharedWriter,
    header: RequestHeader,
    text: String,
) {
    let w = Arc::clone(writer);
    calls.spawn(async move { w.lock().await.write(&header, Reply::error(text)).await });
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// The write side of a connection: one gob encoder, one socket, used under a lock.
struct ReplyWriter {
    wr: Box<dyn AsyncWrite + Unpin + Send>,
    enc: Encoder,
}

/// A connection's writer, shared by its calls' tasks.
type SharedWriter = Arc<Mutex<ReplyWriter>>;

impl ReplyWriter {
    async fn write(&mut self, req: &RequestHeader, reply: Reply) {
        let mut header = ResponseHeader {
            service_method: req.service_method.clone(),
            seq: req.seq,
            error: String::new(),
        };
        let mut buf = Vec::new();
        let encoded = match &reply.result {
            Ok((ty, value)) => {
                // A body that does not fit its type leaves the stream as it was.
                let checkpoint = self.enc.checkpoint();
                let r = self
                    .enc
                    .encode(&response_type(), &header.to_value(), &mut buf)
                    .and_then(|_| self.enc.encode(ty, value, &mut buf));
                r.map_err(|e| {
                    self.enc.rollback(checkpoint);
                    format!("rpc: gob error encoding body: {e}")
                })
            }
            Err(text) => Err(text.clone()),
        };
        if let Err(text) = encoded {
            buf.clear();
            header.error = text;
            let r = self
                .enc
                .encode(&response_type(), &header.to_value(), &mut buf)
                .and_then(|_| {
                    self.enc
                        .encode(&empty_type(), &Value::empty_struct(), &mut buf)
                });
            if let Err(e) = r {
                debug!("rpc: cannot encode error reply: {e}");
                return;
            }
        }
        if let Err(e) = self.wr.write_all(&buf).await {
            debug!("rpc: writing reply: {e}");
            return;
        }
        let _ = self.wr.flush().await;
    }
}
