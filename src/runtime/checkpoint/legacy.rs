//! docker-cri's earlier checkpoint format: the serde JSON of
//! `SandboxCheckpoint` with a 64-bit FNV-1a over that JSON (checksum
//! zeroed). cri-dockerd cannot verify it, so such files are only read,
//! and rewritten in the shared format when the store opens.

use super::SandboxCheckpoint;

/// The checkpoint, if `bytes` is a valid file of the earlier format.
pub fn decode(bytes: &[u8]) -> Option<SandboxCheckpoint> {
    let cp: SandboxCheckpoint = serde_json::from_slice(bytes).ok()?;
    (cp.checksum == checksum(&cp)).then_some(cp)
}

pub fn checksum(cp: &SandboxCheckpoint) -> u64 {
    let zeroed = SandboxCheckpoint {
        checksum: 0,
        ..cp.clone()
    };
    let bytes = serde_json::to_vec(&zeroed).unwrap_or_default();
    super::checksum::fnv1a_64(&bytes)
}
