//! Any bytes as the driver JSON docker-machine hands SetConfigRaw.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ec2spot_testkit::fuzzing::config_json(data);
});
