//! Any bytes as one gob stream: decoding ends in values or an error, never a panic, a hang or a
//! large allocation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ec2spot_testkit::fuzzing::gob_decode(data);
});
