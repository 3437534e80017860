//! Generates the agent's gRPC code from proto/ with protox (pure Rust: no system protoc needed,
//! so `cargo install` works on a fresh machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/ec2spot/agent/v1/agent.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
