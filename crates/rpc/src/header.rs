//! net/rpc's request and response headers (Go's `rpc.Request` / `rpc.Response`).

use ec2spot_gob::{Type, Value};

/// The header before each call's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// `Service.Method`.
    pub service_method: String,
    /// The client's sequence number, echoed in the response.
    pub seq: u64,
}

/// The header before each reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Echo of the request's.
    pub service_method: String,
    /// Echo of the request's.
    pub seq: u64,
    /// "" on success, else the error text (the body is then an empty struct).
    pub error: String,
}

/// Go's `rpc.Request` type.
pub fn request_type() -> Type {
    Type::structure(
        "Request",
        &[("ServiceMethod", Type::String), ("Seq", Type::Uint)],
    )
}

/// Go's `rpc.Response` type.
pub fn response_type() -> Type {
    Type::structure(
        "Response",
        &[
            ("ServiceMethod", Type::String),
            ("Seq", Type::Uint),
            ("Error", Type::String),
        ],
    )
}

/// The empty struct `struct{}` (arguments and replies that carry nothing, and every error body).
pub fn empty_type() -> Type {
    Type::structure("", &[])
}

fn string_field(v: &Value, name: &str) -> Result<String, String> {
    match v.field(name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("header field {name} is a {}", other.kind())),
    }
}

fn seq_field(v: &Value) -> Result<u64, String> {
    match v.field("Seq") {
        None => Ok(0),
        Some(x) => x
            .as_u64()
            .ok_or_else(|| format!("header field Seq is a {}", x.kind())),
    }
}

impl RequestHeader {
    /// Reads a decoded header (fields matched by name; absent = zero).
    pub fn from_value(v: &Value) -> Result<Self, String> {
        if !matches!(v, Value::Struct(_)) {
            return Err(format!("request header is a {}, not a struct", v.kind()));
        }
        Ok(RequestHeader {
            service_method: string_field(v, "ServiceMethod")?,
            seq: seq_field(v)?,
        })
    }

    /// The gob value.
    pub fn to_value(&self) -> Value {
        Value::structure([
            ("ServiceMethod", Value::String(self.service_method.clone())),
            ("Seq", Value::Uint(self.seq)),
        ])
    }
}

impl ResponseHeader {
    /// Reads a decoded header.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        if !matches!(v, Value::Struct(_)) {
            return Err(format!("response header is a {}, not a struct", v.kind()));
        }
        Ok(ResponseHeader {
            service_method: string_field(v, "ServiceMethod")?,
            seq: seq_field(v)?,
            error: string_field(v, "Error")?,
        })
    }

    /// The gob value.
    pub fn to_value(&self) -> Value {
        Value::structure([
            ("ServiceMethod", Value::String(self.service_method.clone())),
            ("Seq", Value::Uint(self.seq)),
            ("Error", Value::String(self.error.clone())),
        ])
    }
}
