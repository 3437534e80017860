//! The gob encoder: one per stream direction. It sends each type's definition once per
//! stream, as its own message before the first value that needs it (Go's decoder accepts
//! this; Go's own encoder may instead split a value around an inline definition).

use std::collections::{HashMap, HashSet};

use super::error::{Error, Result};
use super::types::{Type, encode_wire_type};
use super::value::Value;
use super::wire::{put_bytes, put_float, put_int, put_message, put_uint};

/// Encodes values onto one gob stream.
#[derive(Debug, Clone)]
pub struct Encoder {
    sent: HashMap<Type, i64>,
    next_id: i64,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            sent: HashMap::new(),
            next_id: 65,
        }
    }
}

impl Encoder {
    /// A fresh stream (type ids start at 65, as Go's do).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to `out` the messages for `value` of type `ty`: definitions of types this
    /// stream has not seen yet, then the value. On error nothing is appended and the stream
    /// state is unchanged.
    pub fn encode(&mut self, ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<()> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        collect(ty, Some(value), &mut order, &mut seen);
        let mut new_ids: HashMap<Type, i64> = HashMap::new();
        let mut next = self.next_id;
        for t in &order {
            if t.builtin_id().is_none() && !self.sent.contains_key(t) && !new_ids.contains_key(t) {
                new_ids.insert(t.clone(), next);
                next += 1;
            }
        }
        let id_of = |t: &Type| -> i64 {
            t.builtin_id()
                .or_else(|| self.sent.get(t).copied())
                .or_else(|| new_ids.get(t).copied())
                .expect("every type was collected")
        };
        let mut buf = Vec::new();
        for t in &order {
            if let Some(&tid) = new_ids.get(t) {
                let mut body = Vec::new();
                put_int(&mut body, -tid);
                encode_wire_type(&mut body, t, tid, &id_of);
                put_message(&mut buf, &body);
            }
        }
        let mut body = Vec::new();
        put_int(&mut body, id_of(ty));
        encode_top(ty, value, &mut body, &id_of)?;
        put_message(&mut buf, &body);
        self.sent.extend(new_ids);
        self.next_id = next;
        out.extend_from_slice(&buf);
        Ok(())
    }

    /// The stream state to come back to with [`rollback`](Self::rollback).
    pub fn checkpoint(&self) -> i64 {
        self.next_id
    }

    /// Forgets the types defined since `checkpoint` (their messages were never sent).
    pub fn rollback(&mut self, checkpoint: i64) {
        if self.next_id != checkpoint {
            self.sent.retain(|_, id| *id < checkpoint);
            self.next_id = checkpoint;
        }
    }

    /// Encodes into a new buffer.
    pub fn encode_to_vec(&mut self, ty: &Type, value: &Value) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode(ty, value, &mut out)?;
        Ok(out)
    }
}

/// Lists `ty` and every type it needs (components first), including the concrete types of
/// interface values inside `value`.
fn collect(ty: &Type, value: Option<&Value>, order: &mut Vec<Type>, seen: &mut HashSet<Type>) {
    match ty {
        Type::Interface => {
            if let Some(Value::Interface(Some(i))) = value {
                collect(&i.ty, Some(&i.value), order, seen);
            }
            return;
        }
        Type::Slice(elem) | Type::Array(elem, _) => {
            collect(elem, None, order, seen);
            if let Some(Value::Slice(items)) = value
                && contains_interface(elem)
            {
                for v in items {
                    collect(elem, Some(v), order, seen);
                }
            }
        }
        Type::Map(k, v) => {
            collect(k, None, order, seen);
            collect(v, None, order, seen);
            if let Some(Value::Map(pairs)) = value
                && (contains_interface(k) || contains_interface(v))
            {
                for (kv, vv) in pairs {
                    collect(k, Some(kv), order, seen);
                    collect(v, Some(vv), order, seen);
                }
            }
        }
        Type::Struct(st) => {
            for f in &st.fields {
                let fv = value.and_then(|v| v.field(&f.name));
                collect(&f.ty, fv, order, seen);
            }
        }
        _ => {}
    }
    if ty.builtin_id().is_none() && seen.insert(ty.clone()) {
        order.push(ty.clone());
    }
}

fn contains_interface(ty: &Type) -> bool {
    match ty {
        Type::Interface => true,
        Type::Slice(e) | Type::Array(e, _) => contains_interface(e),
        Type::Map(k, v) => contains_interface(k) || contains_interface(v),
        Type::Struct(st) => st.fields.iter().any(|f| contains_interface(&f.ty)),
        _ => false,
    }
}

fn mismatch(ty: &Type, value: &Value) -> Error {
    Error::Encode {
        value: value.kind().to_string(),
        ty: ty.go_name(),
    }
}

/// A top-level (or interface-held) value: structs as structs, anything else as a singleton.
fn encode_top(
    ty: &Type,
    value: &Value,
    out: &mut Vec<u8>,
    id_of: &dyn Fn(&Type) -> i64,
) -> Result<()> {
    if !matches!(ty, Type::Struct(_)) {
        put_uint(out, 0);
    }
    encode_value(ty, value, out, id_of)
}

fn encode_value(
    ty: &Type,
    value: &Value,
    out: &mut Vec<u8>,
    id_of: &dyn Fn(&Type) -> i64,
) -> Result<()> {
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => put_uint(out, *b as u64),
        (Type::Int, Value::Int(i)) => put_int(out, *i),
        (Type::Uint, Value::Uint(u)) => put_uint(out, *u),
        (Type::Float, Value::Float(f)) => put_float(out, *f),
        (Type::Complex, Value::Complex(r, i)) => {
            put_float(out, *r);
            put_float(out, *i);
        }
        (Type::Bytes | Type::Marshaler(_), Value::Bytes(b)) => put_bytes(out, b),
        (Type::String, Value::String(s)) => put_bytes(out, s.as_bytes()),
        (Type::Slice(elem), Value::Slice(items)) => {
            put_uint(out, items.len() as u64);
            for v in items {
                encode_value(elem, v, out, id_of)?;
            }
        }
        (Type::Array(elem, n), Value::Slice(items)) if items.len() == *n => {
            put_uint(out, items.len() as u64);
            for v in items {
                encode_value(elem, v, out, id_of)?;
            }
        }
        (Type::Map(k, v), Value::Map(pairs)) => {
            put_uint(out, pairs.len() as u64);
            for (kv, vv) in pairs {
                encode_value(k, kv, out, id_of)?;
                encode_value(v, vv, out, id_of)?;
            }
        }
        (Type::Struct(st), Value::Struct(fields)) => {
            for (k, _) in fields {
                if !st.fields.iter().any(|f| f.name == *k) {
                    return Err(Error::Encode {
                        value: format!("field {k}"),
                        ty: ty.go_name(),
                    });
                }
            }
            let mut prev: i64 = -1;
            for (i, f) in st.fields.iter().enumerate() {
                let Some(v) = fields.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v) else {
                    continue;
                };
                if v.is_zero() {
                    continue;
                }
                put_uint(out, (i as i64 - prev) as u64);
                encode_value(&f.ty, v, out, id_of)?;
                prev = i as i64;
            }
            put_uint(out, 0);
        }
        (Type::Interface, Value::Interface(None)) => put_uint(out, 0),
        (Type::Interface, Value::Interface(Some(i))) => {
            put_bytes(out, i.name.as_bytes());
            put_int(out, id_of(&i.ty));
            let mut inner = Vec::new();
            encode_top(&i.ty, &i.value, &mut inner, id_of)?;
            put_uint(out, inner.len() as u64);
            out.extend_from_slice(&inner);
        }
        _ => return Err(mismatch(ty, value)),
    }
    Ok(())
}
