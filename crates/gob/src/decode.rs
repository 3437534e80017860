//! The gob decoder: one per stream direction. It keeps the peer's type definitions and turns
//! messages into [`Value`]s, including values that span messages (Go splits a value whose
//! interface needs a new type definition, PROTOCOL.md §4.6).
//!
//! Every length is checked against the bytes present before anything is allocated; the
//! [`Limits`] bound message size, bytes per value, type definitions, nesting and type size, so
//! hostile input costs at most a few tens of MB and never panics.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::error::{Error, Result, malformed};
use super::types::{Field, StructType, Type, WireType, id};
use super::value::{Interface, Value};
use super::wire::Reader;

/// Resource limits of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted.
    pub max_message: usize,
    /// Largest number of bytes a single value (with its inline definitions) may span.
    pub max_value_bytes: usize,
    /// Most type definitions one stream may send.
    pub max_types: usize,
    /// Deepest nesting of values.
    pub max_depth: usize,
    /// Most nodes in the type of a received interface value.
    pub max_type_nodes: usize,
}

impl Default for Limits {
    /// Generous for docker-machine's traffic (largest message seen: 1.5 KB; fewest limits
    /// reached by Go's own encoder for realistic types), tight for hostile input.
    fn default() -> Self {
        Limits {
            max_message: 1 << 20,
            max_value_bytes: 1 << 20,
            max_types: 1024,
            max_depth: 64,
            max_type_nodes: 256,
        }
    }
}

/// Decodes the values of one gob stream from its messages.
#[derive(Debug, Default)]
pub struct Decoder {
    types: HashMap<i64, WireType>,
    pending: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    limits: Limits,
}

/// Why a decoding attempt stopped.
enum Stop {
    /// The value continues in a message not received yet.
    NeedMore,
    /// The input is bad.
    Err(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Err(e)
    }
}

type Step<T> = std::result::Result<T, Stop>;

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Self::default()
        }
    }

    /// This decoder's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of type definitions received so far.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// Whether messages of an unfinished value are waiting.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Adds the next message body of the stream.
    pub fn push_message(&mut self, body: Vec<u8>) -> Result<()> {
        if body.len() > self.limits.max_message {
            return Err(Error::MessageTooBig(
                body.len() as u64,
                self.limits.max_message,
            ));
        }
        if self.pending_bytes + body.len() > self.limits.max_value_bytes {
            self.pending.clear();
            self.pending_bytes = 0;
            return Err(Error::Limit(format!(
                "value spans more than {} bytes",
                self.limits.max_value_bytes
            )));
        }
        self.pending_bytes += body.len();
        self.pending.push_back(body);
        Ok(())
    }

    /// Decodes the next value from the messages pushed so far. `Ok(None)` means the value is
    /// not complete yet (push the next message and call again). After a value, the rest of its
    /// last message is discarded, as Go's decoder does; after an error, every pending message is.
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        match self.next_inner() {
            Ok(v) => Ok(v),
            Err(e) => {
                self.pending.clear();
                self.pending_bytes = 0;
                Err(e)
            }
        }
    }

    fn next_inner(&mut self) -> Result<Option<Value>> {
        loop {
            let Some(front) = self.pending.front() else {
                return Ok(None);
            };
            if front.is_empty() {
                self.pop(1);
                continue;
            }
            let mut r = Reader::new(front);
            let tid = r.int()?;
            if tid < 0 {
                // A definition message before the value: take it for good.
                let (wt, _) = WireType::decode(&mut r)?;
                if !r.is_empty() {
                    return malformed("extra data in buffer after a type definition");
                }
                let def_id = tid
                    .checked_neg()
                    .ok_or_else(|| Error::Malformed("type id out of range".into()))?;
                check_new_id(&self.types, None, def_id, &self.limits)?;
                self.types.insert(def_id, wt);
                self.pop(1);
                continue;
            }
            let mut attempt = Attempt {
                msgs: &self.pending,
                idx: 0,
                r,
                types: &self.types,
                overlay: HashMap::new(),
                limits: &self.limits,
            };
            return match attempt.top(tid) {
                Ok(value) => {
                    let used = attempt.idx + 1;
                    let overlay = std::mem::take(&mut attempt.overlay);
                    self.types.extend(overlay);
                    self.pop(used);
                    Ok(Some(value))
                }
                Err(Stop::NeedMore) => Ok(None),
                Err(Stop::Err(e)) => Err(e),
            };
        }
    }

    fn pop(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(m) = self.pending.pop_front() {
                self.pending_bytes -= m.len();
            }
        }
    }
}

fn check_new_id(
    types: &HashMap<i64, WireType>,
    overlay: Option<&HashMap<i64, WireType>>,
    def_id: i64,
    limits: &Limits,
) -> Result<()> {
    if def_id < id::FIRST_USER
        || types.contains_key(&def_id)
        || overlay.is_some_and(|o| o.contains_key(&def_id))
    {
        return malformed(format!("duplicate type received (id {def_id})"));
    }
    if types.len() + overlay.map_or(0, |o| o.len()) >= limits.max_types {
        return Err(Error::Limit(format!(
            "more than {} type definitions",
            limits.max_types
        )));
    }
    Ok(())
}

/// One attempt to decode a value from the pending messages.
struct Attempt<'a> {
    msgs: &'a VecDeque<Vec<u8>>,
    idx: usize,
    r: Reader<'a>,
    types: &'a HashMap<i64, WireType>,
    overlay: HashMap<i64, WireType>,
    limits: &'a Limits,
}

impl<'a> Attempt<'a> {
    fn wire(&self, tid: i64) -> Result<&WireType> {
        self.overlay
            .get(&tid)
            .or_else(|| self.types.get(&tid))
            .ok_or_else(|| Error::Malformed(format!("unknown type id {tid}")))
    }

    fn is_struct(&self, tid: i64) -> Result<bool> {
        if (1..=8).contains(&tid) {
            return Ok(false);
        }
        Ok(matches!(self.wire(tid)?, WireType::Struct { .. }))
    }

    /// A value at top level or inside an interface: structs as structs, anything else as a
    /// singleton (field delta 0, then the value).
    fn top(&mut self, tid: i64) -> Step<Value> {
        if self.is_struct(tid)? {
            return self.value(tid, 0);
        }
        if self.r.uint()? != 0 {
            return Err(
                Error::Malformed("corrupted data: non-zero delta for singleton".into()).into(),
            );
        }
        self.value(tid, 0)
    }

    fn value(&mut self, tid: i64, depth: usize) -> Step<Value> {
        if depth > self.limits.max_depth {
            return Err(Error::Limit(format!(
                "values nested deeper than {}",
                self.limits.max_depth
            ))
            .into());
        }
        Ok(match tid {
            id::BOOL => Value::Bool(self.r.uint()? != 0),
            id::INT => Value::Int(self.r.int()?),
            id::UINT => Value::Uint(self.r.uint()?),
            id::FLOAT => Value::Float(self.r.float()?),
            id::COMPLEX => Value::Complex(self.r.float()?, self.r.float()?),
            id::BYTES => Value::Bytes(self.r.bytes()?.to_vec()),
            id::STRING => Value::String(String::from_utf8_lossy(self.r.bytes()?).into_owned()),
            id::INTERFACE => self.interface(depth)?,
            _ => match self.wire(tid)?.clone() {
                WireType::Slice { elem, .. } => {
                    let n = self.r.uint()?;
                    self.elements(elem, n, depth)?
                }
                WireType::Array { elem, len, .. } => {
                    let n = self.r.uint()?;
                    if n != len as u64 {
                        return Err(
                            Error::Malformed(format!("array length {n}, type says {len}")).into(),
                        );
                    }
                    self.elements(elem, n, depth)?
                }
                WireType::Map { key, elem, .. } => {
                    let n = self.r.uint()?;
                    let mut pairs = Vec::with_capacity(self.capacity(n, 2));
                    for _ in 0..n {
                        let k = self.value(key, depth + 1)?;
                        let v = self.value(elem, depth + 1)?;
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                }
                WireType::Struct { fields, .. } => {
                    let mut out = Vec::new();
                    let mut field: i64 = -1;
                    loop {
                        let delta = self.r.uint()?;
                        if delta == 0 {
                            break;
                        }
                        field = i64::try_from(delta)
                            .ok()
                            .and_then(|d| field.checked_add(d))
                            .filter(|f| (*f as usize) < fields.len())
                            .ok_or_else(|| {
                                Error::Malformed(format!(
                                    "field number out of range in struct with {} fields",
                                    fields.len()
                                ))
                            })?;
                        let (name, ftid) = &fields[field as usize];
                        let v = self.value(*ftid, depth + 1)?;
                        out.push((name.clone(), v));
                    }
                    Value::Struct(out)
                }
                WireType::Marshaler { .. } => Value::Bytes(self.r.bytes()?.to_vec()),
            },
        })
    }

    /// Capacity to reserve for `n` items of at least `unit` bytes: never more than the
    /// current message could hold, so a false count cannot allocate.
    fn capacity(&self, n: u64, unit: usize) -> usize {
        (n.min((self.r.remaining() / unit) as u64)) as usize
    }

    fn elements(&mut self, elem: i64, n: u64, depth: usize) -> Step<Value> {
        let mut items = Vec::with_capacity(self.capacity(n, 1));
        for _ in 0..n {
            items.push(self.value(elem, depth + 1)?);
        }
        Ok(Value::Slice(items))
    }

    fn interface(&mut self, depth: usize) -> Step<Value> {
        let name = self.r.bytes()?;
        if name.is_empty() {
            return Ok(Value::Interface(None));
        }
        if name.len() > 1024 {
            return Err(
                Error::Malformed(format!("interface type name of {} bytes", name.len())).into(),
            );
        }
        let name = String::from_utf8_lossy(name).into_owned();
        // Go's type sequence for interfaces: definitions may follow, possibly in new messages.
        let concrete = loop {
            while self.r.is_empty() {
                self.idx += 1;
                let next = self.msgs.get(self.idx).ok_or(Stop::NeedMore)?;
                self.r = Reader::new(next);
            }
            let tid = self.r.int()?;
            if tid >= 0 {
                break tid;
            }
            let def_id = tid
                .checked_neg()
                .ok_or_else(|| Error::Malformed("type id out of range".into()))?;
            let (wt, _) = WireType::decode(&mut self.r)?;
            check_new_id(self.types, Some(&self.overlay), def_id, self.limits)?;
            self.overlay.insert(def_id, wt);
            if !self.r.is_empty() {
                self.r.uint()?; // the length of the next chunk (shape B)
            }
        };
        if concrete == id::INTERFACE || concrete == 0 {
            return Err(
                Error::Malformed(format!("interface holds invalid type id {concrete}")).into(),
            );
        }
        if concrete > id::INTERFACE {
            self.wire(concrete)?;
        }
        let _count = self.r.uint()?;
        let value = if self.is_struct(concrete)? {
            self.value(concrete, depth + 1)?
        } else {
            if self.r.uint()? != 0 {
                return Err(Error::Malformed(
                    "corrupted data: non-zero delta for singleton".into(),
                )
                .into());
            }
            self.value(concrete, depth + 1)?
        };
        let mut budget = self.limits.max_type_nodes;
        let ty = self.to_type(concrete, &mut budget, 0)?;
        Ok(Value::Interface(Some(Box::new(Interface {
            name,
            ty,
            value,
        }))))
    }

    /// Rebuilds a [`Type`] from definitions, within a node budget (a hostile peer's types
    /// can be exponentially large as trees).
    fn to_type(&self, tid: i64, budget: &mut usize, depth: usize) -> Result<Type> {
        if *budget == 0 || depth > self.limits.max_depth {
            return Err(Error::Limit(
                "interface value's type is too large or recursive".into(),
            ));
        }
        *budget -= 1;
        Ok(match tid {
            id::BOOL => Type::Bool,
            id::INT => Type::Int,
            id::UINT => Type::Uint,
            id::FLOAT => Type::Float,
            id::COMPLEX => Type::Complex,
            id::BYTES => Type::Bytes,
            id::STRING => Type::String,
            id::INTERFACE => Type::Interface,
            _ => match self.wire(tid)? {
                WireType::Slice { elem, .. } => {
                    Type::Slice(Arc::new(self.to_type(*elem, budget, depth + 1)?))
                }
                WireType::Array { elem, len, .. } => {
                    Type::Array(Arc::new(self.to_type(*elem, budget, depth + 1)?), *len)
                }
                WireType::Map { key, elem, .. } => Type::Map(
                    Arc::new(self.to_type(*key, budget, depth + 1)?),
                    Arc::new(self.to_type(*elem, budget, depth + 1)?),
                ),
                WireType::Struct { name, fields } => {
                    let mut out = Vec::with_capacity(fields.len().min(*budget));
                    for (fname, ftid) in fields {
                        out.push(Field {
                            name: fname.clone(),
                            ty: self.to_type(*ftid, budget, depth + 1)?,
                        });
                    }
                    Type::Struct(Arc::new(StructType {
                        name: name.clone(),
                        fields: out,
                    }))
                }
                WireType::Marshaler { name } => Type::Marshaler(name.clone()),
            },
        })
    }
}

/// Decodes every value of a complete stream held in memory (fixtures, tests, fuzzing).
pub fn decode_stream(data: &[u8], limits: Limits) -> Result<Vec<Value>> {
    let mut dec = Decoder::with_limits(limits);
    let mut out = Vec::new();
    for body in super::wire::split_messages(data, limits.max_message)? {
        dec.push_message(body.to_vec())?;
        if let Some(v) = dec.next_value()? {
            out.push(v);
        }
    }
    if dec.has_pending() {
        return Err(Error::UnexpectedEnd);
    }
    Ok(out)
}
