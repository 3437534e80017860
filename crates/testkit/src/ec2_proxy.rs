//! A small HTTP proxy in front of moto: records every EC2 request (its `Action` and form
//! body) and answers chosen actions with AWS-shaped errors (EC2 XML body, HTTP status, code)
//! or holds them unanswered — fault injection without touching the SDK. It can also delay
//! every answer (a bastion's round trip to EC2) and records when each request came and was
//! answered, so benchmarks can count the round trips a command waited for one after another.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A future a [`Layer`] returns.
pub type LayerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a [`Layer`] decides about a request before moto sees it.
pub enum Verdict {
    /// Let it through unchanged.
    Pass,
    /// Answer it here (HTTP status, XML body) as EC2 would; moto never sees it.
    Answer(u16, String),
    /// Refuse it as EC2 would (HTTP status, XML body: an error, or a fleet that launched
    /// nothing); moto never sees it, and the request is marked [`Request::refused`].
    Refuse(u16, String),
    /// Send moto these form parameters instead (e.g. a filter the layer applies itself).
    Rewrite(Vec<(String, String)>),
}

/// A stage between the proxy's fault rules and moto that makes the test EC2 behave more like
/// EC2 (consistency, timing, IAM): it sees every request not answered by a fault rule, may
/// answer or rewrite it, and sees (and may change) moto's answer. Layers run in the order
/// they were added; answers pass back through them in reverse.
pub trait Layer: Send + Sync + 'static {
    /// A short name, recorded on the requests this layer answers.
    fn name(&self) -> &'static str;
    /// Decides about `req` before moto sees it.
    fn before<'a>(&'a self, req: &'a Request) -> LayerFuture<'a, Verdict>;
    /// Sees moto's answer (HTTP status, body) to `req`, returns what the client gets.
    fn after<'a>(
        &'a self,
        req: &'a Request,
        status: u16,
        body: String,
    ) -> LayerFuture<'a, (u16, String)> {
        let _ = req;
        Box::pin(async move { (status, body) })
    }
}

/// Builds a canned answer (HTTP status, XML body) from the request it answers.
pub type Responder = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// What to do with a matching request.
#[derive(Clone)]
pub enum Fault {
    /// Answer with a body of the test's making (e.g. a fleet that launched nothing).
    Respond(Responder),
    /// Answer with an EC2 error.
    Error {
        /// The HTTP status.
        status: u16,
        /// EC2's error code.
        code: String,
        /// EC2's message.
        message: String,
    },
    /// Never answer (the connection stays open until the client gives up).
    Hold,
}

#[derive(Clone)]
struct Rule {
    action: String,
    fault: Fault,
    /// Matching requests to skip before the rule applies.
    skip: usize,
    /// How many more times it applies.
    times: usize,
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The EC2 action.
    pub action: String,
    /// The URL-decoded form parameters.
    pub params: Vec<(String, String)>,
    /// Whether a fault answered it.
    pub faulted: bool,
    /// The [`Layer`] that answered it instead of moto (its name), if one did.
    pub answered_by: Option<&'static str>,
    /// Whether that layer refused it (see [`Verdict::Refuse`]).
    pub refused: bool,
    /// The HTTP header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// When the proxy read it.
    pub received: Instant,
    /// When the proxy finished answering it (none yet, or held).
    pub answered: Option<Instant>,
    seq: u64,
}

impl Request {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The access key id the request was signed with (SigV4's `Credential=AKID/…`).
    pub fn access_key_id(&self) -> Option<&str> {
        let auth = self.header("authorization")?;
        let cred = auth.split("Credential=").nth(1)?;
        cred.split('/').next()
    }

    /// The region the request was signed for (SigV4's credential scope), `us-east-1` if none.
    pub fn region(&self) -> &str {
        self.header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or("us-east-1")
    }

    /// When the proxy read it (also on the copy a [`Layer`] rewrote: it names the request).
    pub fn id(&self) -> Instant {
        self.received
    }

    /// Every value of the parameters named `prefix` followed by `.N` (`InstanceId.1`, …) or
    /// equal to it, in order.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| {
                k == prefix
                    || k.strip_prefix(prefix)
                        .and_then(|r| r.strip_prefix('.'))
                        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Request>,
    buckets: Option<Arc<Buckets>>,
    layers: Vec<Arc<dyn Layer>>,
    delay: Duration,
    seq: u64,
}

/// The longest chain of `requests` each of which started after the one before it was
/// answered: the round trips a command waited for one after another (its critical path),
/// however many others ran beside them. Requests not answered are left out.
pub fn sequential_round_trips(requests: &[Request]) -> Vec<Request> {
    // Interval scheduling: always taking the request answered first among those that start
    // after the chain's end gives the longest chain.
    let mut done: Vec<&Request> = requests.iter().filter(|r| r.answered.is_some()).collect();
    done.sort_by_key(|r| r.answered);
    let mut chain: Vec<Request> = Vec::new();
    for r in done {
        if chain
            .last()
            .is_none_or(|last| r.received >= last.answered.expect("answered"))
        {
            chain.push(r.clone());
        }
    }
    chain
}

/// The proxy; it runs until the test's runtime ends.
#[derive(Clone)]
pub struct Ec2Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Ec2Proxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Ec2Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(sock, upstream.clone(), Arc::clone(&st)));
            }
        });
        Ec2Proxy { url, state }
    }

    /// Answers the next `times` calls of `action` with an EC2 error.
    pub fn fail(&self, action: &str, status: u16, code: &str, times: usize) {
        self.fail_after(action, 0, status, code, times);
    }

    /// Like [`fail`](Self::fail), after letting `skip` calls through.
    pub fn fail_after(&self, action: &str, skip: usize, status: u16, code: &str, times: usize) {
        self.add(
            action,
            skip,
            times,
            Fault::Error {
                status,
                code: code.into(),
                message: format!("injected {code}"),
            },
        );
    }

    /// Holds the `n`-th request from now (1-based), whatever its action, without an answer.
    pub fn hold_nth(&self, n: usize) {
        self.add("*", n.saturating_sub(1), 1, Fault::Hold);
    }

    /// Holds the next `times` calls of `action` (after `skip`) without an answer.
    pub fn hold_after(&self, action: &str, skip: usize, times: usize) {
        self.add(action, skip, times, Fault::Hold);
    }

    /// Answers the next `times` calls of `action` (after `skip`) with what `f` makes of them.
    pub fn respond_after(
        &self,
        action: &str,
        skip: usize,
        times: usize,
        f: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) {
        self.add(action, skip, times, Fault::Respond(Arc::new(f)));
    }

    fn add(&self, action: &str, skip: usize, times: usize, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            action: action.into(),
            fault,
            skip,
            times,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// The actions so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.action).collect()
    }

    /// How many times `action` was called.
    pub fn count(&self, action: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.action == action)
            .count()
    }

    /// Delays every answer by `delay` (zero: none), as a bastion's round trip to EC2 would.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Forgets the recorded requests.
    pub fn reset_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Adds `layer` after those added before (see [`Layer`]).
    pub fn add_layer(&self, layer: Arc<dyn Layer>) {
        self.state.lock().unwrap().layers.push(layer);
    }

    /// The actions so far that EC2 took up: neither a fault nor a layer's refusal answered
    /// them (a call the strict layer refused as "not found yet" and its retry count once).
    pub fn actions_taken(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.faulted && !r.refused)
            .map(|r| r.action)
            .collect()
    }

    /// How many calls of `action` EC2 took up (see [`actions_taken`](Self::actions_taken)).
    pub fn taken(&self, action: &str) -> usize {
        self.actions_taken().iter().filter(|a| *a == action).count()
    }

    /// The requests the layer named `name` answered instead of moto.
    pub fn answered_by(&self, name: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.answered_by == Some(name))
            .collect()
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

async fn read_request(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = vec![0u8; head_end + len - buf.len()];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// Answers the one request on `sock`: with a fault rule's answer, through the layers and
/// moto, or straight from moto; marks it answered once the answer is written.
async fn serve(mut sock: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    // One request per connection: answers say `Connection: close`, as moto's do.
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    let head_end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let form = String::from_utf8_lossy(&req[head_end..]).into_owned();
    let Admitted {
        fault,
        logged,
        delay,
        layers,
    } = admit(&state, &req[..head_end], &form);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let written = match fault {
        None if !layers.is_empty() => {
            let (status, body) =
                through_layers(&layers, &logged, &req, head_end, &upstream, &state).await;
            let reason = if status < 300 { "OK" } else { "Error" };
            write_answer(&mut sock, status, reason, &body).await;
            true
        }
        Some((Fault::Respond(f), faulted)) => {
            let (status, body) = f(&faulted);
            write_answer(&mut sock, status, "OK", &body).await;
            true
        }
        Some((
            Fault::Error {
                status,
                code,
                message,
            },
            _,
        )) => {
            let body = error_body(&code, &message);
            write_answer(&mut sock, status, error_reason(status), &body).await;
            true
        }
        Some((Fault::Hold, _)) => {
            hold(&mut sock).await;
            true
        }
        None => relay(&mut sock, &upstream, &req).await,
    };
    if written {
        let _ = sock.shutdown().await;
        mark_answered(&state, logged.seq);
    }
}

/// What the proxy decided about a request when it read it.
struct Admitted {
    /// The fault that answers it, with the request as logged (no layer sees it then).
    fault: Option<(Fault, Request)>,
    /// The request as logged.
    logged: Request,
    /// How long to wait before answering it.
    delay: Duration,
    /// The layers it goes through (none when a fault answers it).
    layers: Vec<Arc<dyn Layer>>,
}

/// Logs the request with head `head` and form body `form`, and picks what answers it.
fn admit(state: &Mutex<State>, head: &[u8], form: &str) -> Admitted {
    let params = parse_form(form);
    let headers = parse_headers(head);
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut st = state.lock().unwrap();
    let chosen = choose_fault(&mut st, form, &action);
    st.seq += 1;
    let req = Request {
        action,
        params,
        faulted: chosen.is_some(),
        answered_by: None,
        refused: false,
        headers,
        received: Instant::now(),
        answered: None,
        seq: st.seq,
    };
    st.log.push(req.clone());
    let layers = if chosen.is_some() {
        Vec::new()
    } else {
        st.layers.clone()
    };
    Admitted {
        fault: chosen.map(|f| (f, req.clone())),
        logged: req,
        delay: st.delay,
        layers,
    }
}

/// The header lines of a request head (its request line skipped): lower-cased names,
/// trimmed values.
fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// The fault that answers a request for `action` with form body `form`:
/// `RequestLimitExceeded` when its emulated bucket is empty, else the first rule that applies
/// (each matching request counts down a rule's skips, then its times).
fn choose_fault(st: &mut State, form: &str, action: &str) -> Option<Fault> {
    if let Some(b) = st.buckets.clone()
        && !b.take(form)
    {
        return Some(Fault::Error {
            status: 503,
            code: "RequestLimitExceeded".into(),
            message: "Request limit exceeded.".into(),
        });
    }
    for r in st.rules.iter_mut() {
        if (r.action == action || r.action == "*") && r.times > 0 {
            if r.skip > 0 {
                r.skip -= 1;
                continue;
            }
            r.times -= 1;
            return Some(r.fault.clone());
        }
    }
    None
}

/// Writes an XML answer with HTTP `status`, `reason` and `body` (a client gone is ignored).
async fn write_answer(sock: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
}

/// The HTTP reason phrase of an error answer's `status`.
fn error_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Keeps the socket open without answering until the client hangs up.
async fn hold(sock: &mut TcpStream) {
    let mut sink = [0u8; 64];
    while let Ok(n) = sock.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Sends `raw` to moto and its answer, byte for byte, to the client; false if moto could not
/// be reached.
async fn relay(sock: &mut TcpStream, upstream: &str, raw: &[u8]) -> bool {
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return false;
    };
    if up.write_all(raw).await.is_err() {
        return false;
    }
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp).await;
    let _ = sock.write_all(&resp).await;
    true
}

/// Records when the logged request `seq` was answered.
fn mark_answered(state: &Mutex<State>, seq: u64) {
    let mut st = state.lock().unwrap();
    if let Some(r) = st.log.iter_mut().rev().find(|r| r.seq == seq) {
        r.answered = Some(Instant::now());
    }
}

/// EC2's XML error answer with `code` and `message` (escaped here).
pub fn error_body(code: &str, message: &str) -> String {
    let message = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    )
}

/// Runs `req` through `layers` and (unless one answers) moto: the answer the client gets.
async fn through_layers(
    layers: &[Arc<dyn Layer>],
    logged: &Request,
    raw: &[u8],
    head_end: usize,
    upstream: &str,
    state: &Mutex<State>,
) -> (u16, String) {
    let mut sent = logged.clone();
    let mut passed = 0;
    let mut answer = None;
    for layer in layers {
        match layer.before(&sent).await {
            Verdict::Pass => {}
            Verdict::Rewrite(params) => sent.params = params,
            v @ (Verdict::Answer(..) | Verdict::Refuse(..)) => {
                let (refused, status, body) = match v {
                    Verdict::Refuse(s, b) => (true, s, b),
                    Verdict::Answer(s, b) => (false, s, b),
                    _ => unreachable!("matched above"),
                };
                let mut st = state.lock().unwrap();
                if let Some(r) = st.log.iter_mut().rev().find(|r| r.seq == logged.seq) {
                    r.answered_by = Some(layer.name());
                    r.refused = refused;
                }
                answer = Some((status, body));
                break;
            }
        }
        passed += 1;
    }
    let (mut status, mut body) = match answer {
        Some(a) => a,
        None => {
            let raw = if sent.params == logged.params {
                raw.to_vec()
            } else {
                with_form(&raw[..head_end], &sent.params)
            };
            forward(upstream, &raw).await
        }
    };
    for layer in layers[..passed].iter().rev() {
        (status, body) = layer.after(&sent, status, body).await;
    }
    (status, body)
}

/// The request with head `head` and `params` as its form body (Content-Length fixed).
fn with_form(head: &[u8], params: &[(String, String)]) -> Vec<u8> {
    let body = encode_form(params);
    let head = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.is_empty() {
            continue;
        }
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut raw = out.into_bytes();
    raw.extend_from_slice(body.as_bytes());
    raw
}

/// Form-encodes `params`.
pub fn encode_form(params: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends `raw` to moto and reads its answer: (HTTP status, body).
async fn forward(upstream: &str, raw: &[u8]) -> (u16, String) {
    let failed = (502, "<Response><Errors><Error><Code>InternalError</Code><Message>moto unreachable</Message></Error></Errors></Response>".to_string());
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return failed;
    };
    if up.write_all(raw).await.is_err() {
        return failed;
    }
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp).await;
    parse_response(&resp).unwrap_or(failed)
}

/// (status, body) of a raw HTTP/1.1 answer (Content-Length, chunked, or to the end).
fn parse_response(resp: &[u8]) -> Option<(u16, String)> {
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = &resp[head_end..];
    let decoded;
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        decoded = out;
        body = &decoded;
    } else if let Some(len) = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    }) {
        body = body.get(..len)?;
    }
    Some((status, String::from_utf8_lossy(body).into_owned()))
}

/// AWS's request token buckets, emulated: an action whose bucket is empty is answered with
/// `RequestLimitExceeded` (HTTP 503), as EC2 does.
pub struct Buckets {
    state: Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
    /// Requests refused so far.
    pub refused: std::sync::atomic::AtomicUsize,
}

impl Buckets {
    /// Takes a token for the request with form body `form` from its bucket (EC2 keeps one
    /// per action, sized by the action's class).
    fn take(&self, form: &str) -> bool {
        use ec2spot_ec2::aws::throttle::{AWS_RATES, bucket_of};
        let bucket = bucket_of(form);
        let Some((_, rate)) = AWS_RATES.iter().find(|(c, _)| *c == bucket.class) else {
            return true;
        };
        let mut st = self.state.lock().unwrap();
        let now = std::time::Instant::now();
        let (tokens, last) = st.entry(bucket.key).or_insert((rate.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * rate.per_second).min(rate.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }
}

impl Ec2Proxy {
    /// Emulates AWS's token buckets from now on; returns them (to read how many were refused).
    pub fn emulate_buckets(&self) -> Arc<Buckets> {
        let b = Arc::new(Buckets {
            state: Mutex::new(Default::default()),
            refused: Default::default(),
        });
        let buckets = Arc::clone(&b);
        self.state.lock().unwrap().buckets = Some(buckets);
        b
    }
}

/// A recorded EC2 answer (`tests/fixtures/<path>`, written after the EC2 API reference's
/// response shape where moto cannot model the answer) for `items`: the text between `<{set}>`
/// and `</{set}>` is one item, repeated for each entry of `items` with its `{{name}}`
/// placeholders filled from that entry. Panics on a placeholder left unfilled.
pub fn recorded(path: &str, set: &str, items: &[Vec<(&str, String)>]) -> String {
    let file = crate::workspace_root().join("tests/fixtures").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (open, close) = (format!("<{set}>"), format!("</{set}>"));
    let start = text.find(&open).expect("the set's opening tag") + open.len();
    let end = text.rfind(&close).expect("the set's closing tag");
    let item = &text[start..end];
    let mut body: String = text[..start].to_string();
    for vars in items {
        let mut one = item.to_string();
        for (k, v) in vars {
            one = one.replace(&format!("{{{{{k}}}}}"), v);
        }
        assert!(!one.contains("{{"), "{path}: unfilled placeholder in {one}");
        body.push_str(&one);
    }
    body.push_str(&text[end..]);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: &str, at: Instant, from_ms: u64, to_ms: u64) -> Request {
        Request {
            action: action.into(),
            params: Vec::new(),
            faulted: false,
            answered_by: None,
            refused: false,
            headers: Vec::new(),
            received: at + Duration::from_millis(from_ms),
            answered: Some(at + Duration::from_millis(to_ms)),
            seq: from_ms,
        }
    }

    #[test]
    fn calls_side_by_side_count_once_calls_one_after_another_each() {
        let t = Instant::now();
        let log = [
            req("DescribeInstanceTypes", t, 0, 80),
            req("DescribeVpcs", t, 1, 81),
            req("DescribeImages", t, 2, 82),
            req("DescribeSubnets", t, 81, 161),
            req("ImportKeyPair", t, 170, 250),
            req("CreateLaunchTemplate", t, 171, 251),
            req("CreateFleet", t, 251, 331),
            req("DescribeInstances", t, 331, 411),
            req("DeleteLaunchTemplate", t, 332, 412),
        ];
        let chain: Vec<String> = sequential_round_trips(&log)
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(
            chain,
            [
                "DescribeInstanceTypes",
                "DescribeSubnets",
                "ImportKeyPair",
                "CreateFleet",
                "DescribeInstances"
            ]
        );
        // Unanswered requests are no part of a chain.
        let mut held = req("RunInstances", t, 500, 0);
        held.answered = None;
        assert_eq!(sequential_round_trips(&[held]).len(), 0);
    }
}
