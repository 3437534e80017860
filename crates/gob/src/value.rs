//! Dynamic gob values: what a decoder produces and an encoder consumes (with a [`Type`]).

use std::sync::Arc;

use super::types::Type;

/// A gob value.
///
/// Decoded structs hold only the fields present on the wire (Go omits zero fields); use
/// [`Value::field`] to read one with its absence meaning zero.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A bool.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
    /// A byte slice (also the bytes of a self-encoding type).
    Bytes(Vec<u8>),
    /// A string (invalid UTF-8 is replaced when decoding).
    String(String),
    /// A slice or array.
    Slice(Vec<Value>),
    /// A map as (key, element) pairs in wire order.
    Map(Vec<(Value, Value)>),
    /// A struct as (field name, value) pairs.
    Struct(Vec<(Arc<str>, Value)>),
    /// An interface value; `None` is a nil interface.
    Interface(Option<Box<Interface>>),
}

/// A non-nil interface value: the concrete type's registered name, its type and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Registered name, e.g. `*mcnflag.StringFlag`, `string`, `[]string`.
    pub name: String,
    /// The concrete type.
    pub ty: Type,
    /// The concrete value.
    pub value: Value,
}

impl Value {
    /// A struct value from (field, value) pairs.
    pub fn structure<const N: usize>(fields: [(&str, Value); N]) -> Value {
        Value::Struct(fields.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }

    /// An interface value holding `value` of type `ty` under the registered `name`.
    pub fn interface(name: &str, ty: Type, value: Value) -> Value {
        Value::Interface(Some(Box::new(Interface {
            name: name.to_string(),
            ty,
            value,
        })))
    }

    /// The empty struct `struct{}{}` (net/rpc's argument and reply for "nothing").
    pub fn empty_struct() -> Value {
        Value::Struct(Vec::new())
    }

    /// A struct field by name (`None` when absent, i.e. zero on the sender's side).
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(k, _)| &**k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is a signed or unsigned integer that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// The unsigned integer inside, if this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(u) => Some(*u),
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The bool inside.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes inside.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a slice.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::Slice(v) => Some(v),
            _ => None,
        }
    }

    /// The pairs, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The interface inside (`Some(None)` for nil), if this is an interface.
    pub fn as_interface(&self) -> Option<Option<&Interface>> {
        match self {
            Value::Interface(i) => Some(i.as_deref()),
            _ => None,
        }
    }

    /// Whether Go would omit this value as a struct field (zero value).
    pub fn is_zero(&self) -> bool {
        match self {
            Value::Bool(b) => !b,
            Value::Int(i) => *i == 0,
            Value::Uint(u) => *u == 0,
            Value::Float(f) => *f == 0.0,
            Value::Complex(r, i) => *r == 0.0 && *i == 0.0,
            Value::Bytes(b) => b.is_empty(),
            Value::String(s) => s.is_empty(),
            Value::Slice(v) => v.is_empty(),
            Value::Map(v) => v.is_empty(),
            Value::Struct(_) => false,
            Value::Interface(i) => i.is_none(),
        }
    }

    /// A short description of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Bytes(_) => "[]byte",
            Value::String(_) => "string",
            Value::Slice(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
            Value::Interface(_) => "interface",
        }
    }
}
