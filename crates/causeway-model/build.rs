//! Generates the agent-server wire types from `proto/` (prost and tonic),
//! with a protoc from crates.io so that no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/causeway/v1/ingest.proto"], &["proto"])?;
    Ok(())
}
