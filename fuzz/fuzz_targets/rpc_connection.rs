//! Any bytes as a whole client connection to the net/rpc server (handshake included).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ec2spot_testkit::fuzzing::rpc_connection(data);
});
