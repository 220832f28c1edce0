//! Builds the pause image offline: a `FROM scratch` image holding only the
//! static pause program compiled by build.rs.

use crate::error::{Error, Result};
use crate::mapping::image_ref::ImageRef;

use super::Runtime;

/// The static pause binary, built from `pause/pause.c`.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Label that marks images built by docker-cri itself.
pub const BUILT_BY_LABEL: &str = "io.docker-cri.pause";

fn dockerfile() -> String {
    format!(
        "FROM scratch\n\
         COPY pause /pause\n\
         LABEL {BUILT_BY_LABEL}=\"{}\"\n\
         USER 65535:65535\n\
         ENTRYPOINT [\"/pause\"]\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The build context: a tar with the Dockerfile and the binary.
pub fn build_context() -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, mode: u32, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    add("Dockerfile", 0o644, dockerfile().as_bytes())
        .and_then(|_| add("pause", 0o755, PAUSE_BINARY))
        .map_err(|e| Error::internal(format!("packing the pause image context: {e}")))?;
    tar.into_inner()
        .map_err(|e| Error::internal(format!("packing the pause image context: {e}")))
}

impl Runtime {
    /// Builds and tags the pause image (the configured sandbox image unless
    /// `tag` overrides it). Returns the image ID.
    /// The ID of the pause image (`tag` or the configured one), if Docker
    /// has it.
    pub async fn pause_image_id(&self, tag: Option<&str>) -> Result<Option<String>> {
        let tag = tag.unwrap_or(&self.config().pause_image);
        let name = ImageRef::parse(tag)?.normalized();
        Ok(self.docker().inspect_image(&name).await?.and_then(|i| i.id))
    }

    pub async fn build_pause_image(&self, tag: Option<&str>) -> Result<String> {
        let tag = tag.unwrap_or(&self.config().pause_image);
        let reference = ImageRef::parse(tag)?;
        let name = reference.normalized();
        self.docker().build_image(build_context()?, &name).await?;
        let image =
            self.docker().inspect_image(&name).await?.ok_or_else(|| {
                Error::internal(format!("built {name} but Docker cannot find it"))
            })?;
        image
            .id
            .ok_or_else(|| Error::internal(format!("{name}: Docker reported no image ID")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_binary_is_a_static_elf() {
        assert_eq!(&PAUSE_BINARY[..4], b"\x7fELF");
        // No PT_INTERP program header means no dynamic loader is needed.
        let u16_at = |o: usize| u16::from_le_bytes([PAUSE_BINARY[o], PAUSE_BINARY[o + 1]]) as usize;
        let mut phoff_bytes = [0u8; 8];
        phoff_bytes.copy_from_slice(&PAUSE_BINARY[0x20..0x28]);
        let phoff = u64::from_le_bytes(phoff_bytes) as usize;
        let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
        const PT_INTERP: u32 = 3;
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            let mut ty = [0u8; 4];
            ty.copy_from_slice(&PAUSE_BINARY[at..at + 4]);
            assert_ne!(u32::from_le_bytes(ty), PT_INTERP, "pause must be static");
        }
    }

    #[test]
    fn context_has_dockerfile_and_binary() {
        let ctx = build_context().unwrap();
        let mut archive = tar::Archive::new(ctx.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile", "pause"]);
        assert!(dockerfile().starts_with("FROM scratch\n"));
    }
}
