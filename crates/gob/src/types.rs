//! Gob types: the predefined type ids, [`Type`] (what a value is encoded as), and
//! [`WireType`] (a type definition received from the peer).

use std::sync::Arc;

use super::error::{Result, malformed};
use super::wire::{Reader, put_bytes, put_int, put_uint};

/// Predefined type ids (Go's `encoding/gob` constants).
pub mod id {
    #![allow(missing_docs)]
    pub const BOOL: i64 = 1;
    pub const INT: i64 = 2;
    pub const UINT: i64 = 3;
    pub const FLOAT: i64 = 4;
    pub const BYTES: i64 = 5;
    pub const STRING: i64 = 6;
    pub const COMPLEX: i64 = 7;
    pub const INTERFACE: i64 = 8;
    /// The first id a sender may assign; Go starts at 65 in practice.
    pub const FIRST_USER: i64 = 64;
}

/// The shape of a value to encode, or of a received interface's concrete type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`.
    Bool,
    /// Any signed integer kind.
    Int,
    /// Any unsigned integer kind.
    Uint,
    /// `float32` / `float64`.
    Float,
    /// `complex64` / `complex128`.
    Complex,
    /// `[]byte`.
    Bytes,
    /// `string`.
    String,
    /// `interface{}` (values carry a registered name).
    Interface,
    /// `[]T` (other than `[]byte`).
    Slice(Arc<Type>),
    /// `[N]T`.
    Array(Arc<Type>, usize),
    /// `map[K]V`.
    Map(Arc<Type>, Arc<Type>),
    /// A struct.
    Struct(Arc<StructType>),
    /// A type that encodes itself (GobEncoder, BinaryMarshaler, TextMarshaler): bytes on the wire.
    Marshaler(String),
}

/// A struct type: its Go name (informational) and its exported fields in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructType {
    /// Go type name without package, e.g. `Request` ("" for unnamed structs).
    pub name: String,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
}

/// A struct field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Go field name; receivers match fields by it.
    pub name: Arc<str>,
    /// Its type.
    pub ty: Type,
}

impl Type {
    /// A struct type from a name and (field name, type) pairs.
    pub fn structure(name: &str, fields: &[(&str, Type)]) -> Type {
        Type::Struct(Arc::new(StructType {
            name: name.to_string(),
            fields: fields
                .iter()
                .map(|(n, t)| Field {
                    name: Arc::from(*n),
                    ty: t.clone(),
                })
                .collect(),
        }))
    }

    /// `[]elem`.
    pub fn slice(elem: Type) -> Type {
        Type::Slice(Arc::new(elem))
    }

    /// `map[key]elem`.
    pub fn map(key: Type, elem: Type) -> Type {
        Type::Map(Arc::new(key), Arc::new(elem))
    }

    /// The predefined id of a basic type, if it is one.
    pub fn builtin_id(&self) -> Option<i64> {
        Some(match self {
            Type::Bool => id::BOOL,
            Type::Int => id::INT,
            Type::Uint => id::UINT,
            Type::Float => id::FLOAT,
            Type::Bytes => id::BYTES,
            Type::String => id::STRING,
            Type::Complex => id::COMPLEX,
            Type::Interface => id::INTERFACE,
            _ => return None,
        })
    }

    /// Go's name for the type, for messages.
    pub fn go_name(&self) -> String {
        match self {
            Type::Bool => "bool".into(),
            Type::Int => "int".into(),
            Type::Uint => "uint".into(),
            Type::Float => "float64".into(),
            Type::Complex => "complex128".into(),
            Type::Bytes => "[]uint8".into(),
            Type::String => "string".into(),
            Type::Interface => "interface {}".into(),
            Type::Slice(e) => format!("[]{}", e.go_name()),
            Type::Array(e, n) => format!("[{n}]{}", e.go_name()),
            Type::Map(k, v) => format!("map[{}]{}", k.go_name(), v.go_name()),
            Type::Struct(s) if s.name.is_empty() => "struct {}".into(),
            Type::Struct(s) => s.name.clone(),
            Type::Marshaler(n) => n.clone(),
        }
    }
}

/// A type definition as received (Go's `wireType`); component types are ids into the
/// stream's type table, so definitions stay small however they nest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireType {
    /// `[Len]Elem`.
    Array {
        /// Informational name.
        name: String,
        /// Element type id.
        elem: i64,
        /// Length.
        len: usize,
    },
    /// `[]Elem`.
    Slice {
        /// Informational name.
        name: String,
        /// Element type id.
        elem: i64,
    },
    /// A struct with (field name, type id) fields.
    Struct {
        /// Informational name.
        name: String,
        /// Fields in order; names shared with decoded values.
        fields: Vec<(Arc<str>, i64)>,
    },
    /// `map[Key]Elem`.
    Map {
        /// Informational name.
        name: String,
        /// Key type id.
        key: i64,
        /// Element type id.
        elem: i64,
    },
    /// A self-encoding type (sent as bytes).
    Marshaler {
        /// Informational name.
        name: String,
    },
}

impl WireType {
    /// The informational name.
    pub fn name(&self) -> &str {
        match self {
            WireType::Array { name, .. }
            | WireType::Slice { name, .. }
            | WireType::Struct { name, .. }
            | WireType::Map { name, .. }
            | WireType::Marshaler { name } => name,
        }
    }

    /// Parses a `wireType` value (after the negative id) and returns it with the id its
    /// `CommonType` claims.
    pub fn decode(r: &mut Reader<'_>) -> Result<(WireType, i64)> {
        let mut field = 0u64;
        let mut result = None;
        loop {
            let delta = r.uint()?;
            if delta == 0 {
                break;
            }
            field = field
                .checked_add(delta)
                .filter(|f| *f <= 7)
                .ok_or_else(|| {
                    super::error::Error::Malformed(format!(
                        "wireType field {field}+{delta} out of range"
                    ))
                })?;
            if result.is_some() {
                return malformed("wireType defines more than one type");
            }
            result = Some(match field {
                1 => {
                    let (common, elem, len) = decode_struct3(r)?;
                    let len = usize::try_from(len).ok().filter(|l| *l <= 1 << 20);
                    let len = len.ok_or_else(|| {
                        super::error::Error::Malformed("array length out of range".into())
                    })?;
                    (
                        WireType::Array {
                            name: common.0,
                            elem,
                            len,
                        },
                        common.1,
                    )
                }
                2 => {
                    let (common, elem, _) = decode_struct3(r)?;
                    (
                        WireType::Slice {
                            name: common.0,
                            elem,
                        },
                        common.1,
                    )
                }
                3 => decode_struct_type(r)?,
                4 => {
                    let (common, key, elem) = decode_struct3(r)?;
                    (
                        WireType::Map {
                            name: common.0,
                            key,
                            elem,
                        },
                        common.1,
                    )
                }
                _ => {
                    let (common, _, _) = decode_struct3(r)?;
                    (WireType::Marshaler { name: common.0 }, common.1)
                }
            });
        }
        result.ok_or_else(|| super::error::Error::Malformed("empty wireType".into()))
    }
}

/// `CommonType{Name string; Id int}`.
fn decode_common(r: &mut Reader<'_>) -> Result<(String, i64)> {
    let (mut name, mut tid, mut field) = (String::new(), 0, 0u64);
    loop {
        let delta = r.uint()?;
        if delta == 0 {
            return Ok((name, tid));
        }
        field = field.saturating_add(delta);
        match field {
            1 => name = String::from_utf8_lossy(r.bytes()?).into_owned(),
            2 => tid = r.int()?,
            _ => return malformed("CommonType field out of range"),
        }
    }
}

/// A struct `{CommonType; A int; B int}` (sliceType, mapType, arrayType share this shape).
fn decode_struct3(r: &mut Reader<'_>) -> Result<((String, i64), i64, i64)> {
    let (mut common, mut a, mut b, mut field) = ((String::new(), 0), 0, 0, 0u64);
    loop {
        let delta = r.uint()?;
        if delta == 0 {
            return Ok((common, a, b));
        }
        field = field.saturating_add(delta);
        match field {
            1 => common = decode_common(r)?,
            2 => a = r.int()?,
            3 => b = r.int()?,
            _ => return malformed("type definition field out of range"),
        }
    }
}

/// `structType{CommonType; Field []fieldType}` with `fieldType{Name string; Id int}`.
fn decode_struct_type(r: &mut Reader<'_>) -> Result<(WireType, i64)> {
    let (mut common, mut fields, mut field) = ((String::new(), 0), Vec::new(), 0u64);
    loop {
        let delta = r.uint()?;
        if delta == 0 {
            return Ok((
                WireType::Struct {
                    name: common.0,
                    fields,
                },
                common.1,
            ));
        }
        field = field.saturating_add(delta);
        match field {
            1 => common = decode_common(r)?,
            2 => {
                let n = r.count(1)?;
                fields = Vec::with_capacity(n);
                for _ in 0..n {
                    let (fname, fid) = decode_common(r)?;
                    fields.push((Arc::from(fname.as_str()), fid));
                }
            }
            _ => return malformed("structType field out of range"),
        }
    }
}

/// Appends the `wireType` body defining `ty` as `tid`; component types resolve via `id_of`.
pub fn encode_wire_type(out: &mut Vec<u8>, ty: &Type, tid: i64, id_of: &dyn Fn(&Type) -> i64) {
    let common = |out: &mut Vec<u8>, name: &str| {
        put_uint(out, 1); // CommonType
        if !name.is_empty() {
            put_uint(out, 1);
            put_bytes(out, name.as_bytes());
            put_uint(out, 1);
        } else {
            put_uint(out, 2);
        }
        put_int(out, tid);
        put_uint(out, 0);
    };
    match ty {
        Type::Slice(elem) => {
            put_uint(out, 2);
            common(out, "");
            put_uint(out, 1);
            put_int(out, id_of(elem));
            put_uint(out, 0);
        }
        Type::Array(elem, len) => {
            put_uint(out, 1);
            common(out, "");
            put_uint(out, 1);
            put_int(out, id_of(elem));
            put_uint(out, 1);
            put_int(out, *len as i64);
            put_uint(out, 0);
        }
        Type::Map(k, v) => {
            put_uint(out, 4);
            common(out, "");
            put_uint(out, 1);
            put_int(out, id_of(k));
            put_uint(out, 1);
            put_int(out, id_of(v));
            put_uint(out, 0);
        }
        Type::Struct(st) => {
            put_uint(out, 3);
            common(out, &st.name);
            if !st.fields.is_empty() {
                put_uint(out, 1);
                put_uint(out, st.fields.len() as u64);
                for f in &st.fields {
                    put_uint(out, 1);
                    put_bytes(out, f.name.as_bytes());
                    put_uint(out, 1);
                    put_int(out, id_of(&f.ty));
                    put_uint(out, 0);
                }
            }
            put_uint(out, 0);
        }
        Type::Marshaler(name) => {
            put_uint(out, 5);
            common(out, name);
            put_uint(out, 0);
        }
        _ => unreachable!("basic types are never defined"),
    }
    put_uint(out, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_definition_matches_go_bytes() {
        // PROTOCOL.md §4.4: the Request definition docker-machine sends (id 65).
        let want: &[u8] = b"\x03\x01\x01\x07Request\x01\xff\x82\x00\x01\x02\x01\x0dServiceMethod\x01\x0c\x00\x01\x03Seq\x01\x06\x00\x00\x00";
        let ty = Type::structure(
            "Request",
            &[("ServiceMethod", Type::String), ("Seq", Type::Uint)],
        );
        let mut out = Vec::new();
        encode_wire_type(&mut out, &ty, 65, &|t| t.builtin_id().unwrap());
        assert_eq!(out, want);
        let (wt, tid) = WireType::decode(&mut Reader::new(want)).unwrap();
        assert_eq!(tid, 65);
        assert_eq!(wt.name(), "Request");
        let WireType::Struct { fields, .. } = wt else {
            panic!()
        };
        assert_eq!(&*fields[0].0, "ServiceMethod");
        assert_eq!(fields[1].1, 3);
    }

    #[test]
    fn empty_struct_and_slice_definitions_match_go_bytes() {
        let mut out = Vec::new();
        encode_wire_type(&mut out, &Type::structure("", &[]), 66, &|_| 0);
        assert_eq!(out, b"\x03\x01\x02\xff\x84\x00\x00\x00");
        let mut out = Vec::new();
        encode_wire_type(&mut out, &Type::slice(Type::Interface), 67, &|t| {
            t.builtin_id().unwrap()
        });
        assert_eq!(out, b"\x02\x01\x02\xff\x86\x00\x01\x10\x00\x00");
    }
}
