//! The gob decoder under hostile input: mutated recordings, impossible lengths, deep and
//! exponential type definitions, values spread over many messages. Every case must end in a
//! value or an error — never a panic, a stack overflow or a large allocation.

use ec2spot_gob::wire::{put_bytes, put_int, put_message, put_uint};
use ec2spot_gob::{Decoder, Error, Limits, decode_stream};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fixture_streams() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        // Strip the HTTP preamble (up to the blank line).
        if let Some(p) = data.windows(2).position(|w| w == b"\n\n") {
            out.push(data[p + 2..].to_vec());
        }
    }
    out
}

/// Runs `f` on a thread with tokio's default 2 MiB stack, so deep recursion would show.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("decoder panicked or overflowed")
}

fn def_message(out: &mut Vec<u8>, id: i64, wire_type_body: &[u8]) {
    let mut body = Vec::new();
    put_int(&mut body, -id);
    body.extend_from_slice(wire_type_body);
    put_message(out, &body);
}

/// wireType body of `[]elem` with the given id.
fn slice_def(id: i64, elem: i64) -> Vec<u8> {
    let mut b = Vec::new();
    put_uint(&mut b, 2); // SliceT
    put_uint(&mut b, 1); // CommonType
    put_uint(&mut b, 2); // Id
    put_int(&mut b, id);
    put_uint(&mut b, 0);
    put_uint(&mut b, 1); // Elem
    put_int(&mut b, elem);
    put_uint(&mut b, 0);
    put_uint(&mut b, 0);
    b
}

/// wireType body of `struct{A, B T}` with the given id.
fn pair_struct_def(id: i64, field: i64) -> Vec<u8> {
    let mut b = Vec::new();
    put_uint(&mut b, 3);
    put_uint(&mut b, 1);
    put_uint(&mut b, 2);
    put_int(&mut b, id);
    put_uint(&mut b, 0);
    put_uint(&mut b, 1);
    put_uint(&mut b, 2);
    for name in ["A", "B"] {
        put_uint(&mut b, 1);
        put_bytes(&mut b, name.as_bytes());
        put_uint(&mut b, 1);
        put_int(&mut b, field);
        put_uint(&mut b, 0);
    }
    put_uint(&mut b, 0);
    put_uint(&mut b, 0);
    b
}

/// A top-level interface value naming type `tid`, with an empty body.
fn interface_value(tid: i64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_int(&mut v, 8);
    put_uint(&mut v, 0);
    put_bytes(&mut v, b"*x.T");
    put_int(&mut v, tid);
    put_uint(&mut v, body.len() as u64);
    v.extend_from_slice(body);
    let mut out = Vec::new();
    put_message(&mut out, &v);
    out
}

#[test]
fn mutated_recordings_never_panic() {
    let streams = fixture_streams();
    let mut rng = StdRng::seed_from_u64(0x6f62);
    let mut errors = 0usize;
    let mut cases = 0usize;
    for _ in 0..40 {
        for s in &streams {
            let mut m = s.clone();
            for _ in 0..rng.gen_range(1..5) {
                if m.is_empty() {
                    break;
                }
                let i = rng.gen_range(0..m.len());
                match rng.gen_range(0..5) {
                    0 => m[i] ^= 1 << rng.gen_range(0..8),
                    1 => m[i] = rng.r#gen(),
                    2 => m.truncate(i),
                    3 => {
                        let huge = [0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0];
                        m.splice(i..i, huge);
                    }
                    _ => {
                        m.remove(i);
                    }
                }
            }
            cases += 1;
            let result = std::panic::catch_unwind(|| decode_stream(&m, Limits::default()));
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => errors += 1,
                Err(_) => panic!("decoder panicked on input {}", hex(&m)),
            }
        }
    }
    assert!(
        errors > cases / 4,
        "mutations should mostly be detected ({errors}/{cases})"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn lengths_of_two_to_the_sixty_are_errors() {
    let huge = [0xf8u8, 0x10, 0, 0, 0, 0, 0, 0, 0];
    // message length
    assert!(matches!(
        decode_stream(&huge, Limits::default()),
        Err(Error::MessageTooBig(..))
    ));
    // a string claiming 2^60 bytes inside a valid message: [string id 6][singleton 0][len]
    let mut body = vec![0x0c, 0x00];
    body.extend_from_slice(&huge);
    let mut msg = Vec::new();
    put_message(&mut msg, &body);
    assert!(decode_stream(&msg, Limits::default()).is_err());
    // a slice of strings claiming 2^60 elements
    let mut stream = Vec::new();
    def_message(&mut stream, 65, &slice_def(65, 6));
    let mut body = Vec::new();
    put_int(&mut body, 65);
    put_uint(&mut body, 0);
    body.extend_from_slice(&huge);
    put_message(&mut stream, &body);
    assert!(decode_stream(&stream, Limits::default()).is_err());
}

#[test]
fn deeply_nested_type_definitions_do_not_overflow_the_stack() {
    let result = on_small_stack(|| {
        let mut stream = Vec::new();
        // 30 000 nested slice types, then a value of the outermost inside an interface.
        let n = 30_000i64;
        for i in 0..n {
            let id = 65 + i;
            let elem = if i == 0 { 2 } else { id - 1 };
            def_message(&mut stream, id, &slice_def(id, elem));
        }
        stream.extend(interface_value(65 + n - 1, &[0, 0]));
        decode_stream(&stream, Limits::default())
    });
    assert!(matches!(result, Err(Error::Limit(_))), "{result:?}");
}

#[test]
fn exponential_types_are_refused_cheaply() {
    let result = on_small_stack(|| {
        let mut stream = Vec::new();
        // T0 = int; T_k = struct{A, B T_{k-1}}: as a tree, 2^40 nodes.
        let depth = 40i64;
        for k in 1..=depth {
            let id = 64 + k;
            let field = if k == 1 { 2 } else { id - 1 };
            def_message(&mut stream, id, &pair_struct_def(id, field));
        }
        // A struct value with no fields set (just the terminator), inside an interface.
        stream.extend(interface_value(64 + depth, &[0]));
        decode_stream(&stream, Limits::default())
    });
    assert!(matches!(result, Err(Error::Limit(_))), "{result:?}");
}

#[test]
fn a_value_spread_over_many_messages_is_bounded() {
    // A []interface{} whose every element needs a new type (Go's split shape A), 4000 times.
    let mut dec = Decoder::new();
    let mut first = Vec::new();
    put_int(&mut first, 65);
    dec.push_message(slice_message_def()).unwrap();
    assert!(dec.next_value().unwrap().is_none());
    put_uint(&mut first, 0);
    put_uint(&mut first, 4000);
    dec.push_message(first).unwrap();
    let mut failed = false;
    for i in 0..4000i64 {
        let mut m = Vec::new();
        put_int(&mut m, -(100 + i));
        m.extend(slice_def(100 + i, 2));
        match dec.push_message(m).and_then(|_| dec.next_value()) {
            Ok(None) => {}
            Ok(Some(v)) => panic!("incomplete value decoded: {v:?}"),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a limit must stop the value");
}

fn slice_message_def() -> Vec<u8> {
    let mut m = Vec::new();
    put_int(&mut m, -65);
    m.extend(slice_def(65, 8));
    m
}

#[test]
fn deeply_nested_values_are_refused() {
    let result = on_small_stack(|| {
        // []interface{} holding []interface{} holding … 50 000 levels (within one 1 MiB message).
        let mut stream = Vec::new();
        def_message(&mut stream, 65, &slice_def(65, 8));
        let mut body = Vec::new();
        put_int(&mut body, 65);
        put_uint(&mut body, 0); // singleton
        for _ in 0..50_000 {
            put_uint(&mut body, 1); // one element: an interface holding another []interface{}
            put_bytes(&mut body, b"[]interface {}");
            put_int(&mut body, 65);
            put_uint(&mut body, 0); // byte count (ignored)
            put_uint(&mut body, 0); // singleton
        }
        put_uint(&mut body, 0); // innermost: empty slice
        put_message(&mut stream, &body);
        decode_stream(&stream, Limits::default())
    });
    assert!(matches!(result, Err(Error::Limit(_))), "{result:?}");
}
