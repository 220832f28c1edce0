//! Generates the CRI gRPC code from `proto/api.proto` and builds the static
//! pause program that `docker-cri pause-image` packs into the sandbox image.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A protoc from a crate, so that a fresh offline machine can build.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY of intent: build scripts are single-threaded at this point.
    unsafe { env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/api.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/api.proto");

    build_pause()?;
    Ok(())
}

/// The pause binary must be static: the image it goes into has no libc.
fn build_pause() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?).join("pause");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg("pause/pause.c")
        .status()
        .map_err(|e| format!("running {cc} to build the pause program: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{cc} failed to build pause/pause.c statically ({status}); install a C compiler \
             and static libc (Debian: gcc libc6-dev)"
        )
        .into());
    }
    println!("cargo:rerun-if-changed=pause/pause.c");
    Ok(())
}
