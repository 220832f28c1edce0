//! cri-dockerd's checkpoint checksum, reproduced bit for bit.
//!
//! cri-dockerd (`store/checksum.go`, inherited from kubelet's dockershim)
//! hashes only the `data` part of a checkpoint: `store.NewChecksum(*cp.Data)`
//! in `core/checkpoint.go`. The hash is a 32-bit FNV-1a over the text that
//! go-spew v1.1.1 prints for the Go value with the format `%#v` and the
//! config `{Indent: " ", SortKeys: true, DisableMethods: true, SpewKeys:
//! true}`, stored widened to `uint64`. `Indent` only affects spew's Dump,
//! and there are no maps, methods or `+` flag (so no pointer addresses), so
//! the text is spew's compact typed form:
//!
//! ```text
//! (core.CheckpointData){PortMappings:([]*config.PortMapping)[<*>{Protocol:(*config.Protocol)tcp ContainerPort:(*int32)80 HostPort:(*int32)8080 HostIP:(string)}] HostNetwork:(bool)false}
//! ```
//!
//! - the top-level struct and every struct field print `(<Go type>)`
//!   before their value, with Go's package-qualified type name;
//! - slice elements print no type; a non-nil pointer element prints `<*>`
//!   and its pointee, a nil one `<nil>`;
//! - a pointer field prints `(*<type>)` and then the pointee, or `<nil>`;
//! - a nil slice prints `<nil>`, an empty one `[]`; elements are separated
//!   by one space, as are struct fields;
//! - strings are written raw (unquoted), integers in decimal, bools as
//!   `true`/`false`.
//!
//! Go distinguishes nil from zero here, so the model keeps every pointer
//! and the slice as `Option`: a file that says `"container_port": 0` and one
//! that omits it hash differently.

/// `config.PortMapping` as cri-dockerd's decoder leaves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoPortMapping {
    pub protocol: Option<String>,
    pub container_port: Option<i32>,
    pub host_port: Option<i32>,
    pub host_ip: String,
}

/// `core.CheckpointData` as cri-dockerd's decoder leaves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoCheckpointData {
    /// `None`: a nil slice (absent or `null`); entries `None`: `null` items.
    pub port_mappings: Option<Vec<Option<GoPortMapping>>>,
    pub host_network: bool,
}

/// The text go-spew prints for `data` (see the module doc).
pub fn spew_text(data: &GoCheckpointData) -> String {
    let mut out = String::from("(core.CheckpointData){PortMappings:([]*config.PortMapping)");
    match &data.port_mappings {
        None => out.push_str("<nil>"),
        Some(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                match item {
                    None => out.push_str("<nil>"),
                    Some(pm) => push_port_mapping(&mut out, pm),
                }
            }
            out.push(']');
        }
    }
    out.push_str(" HostNetwork:(bool)");
    out.push_str(if data.host_network { "true" } else { "false" });
    out.push('}');
    out
}

fn push_port_mapping(out: &mut String, pm: &GoPortMapping) {
    fn pointer<T: std::fmt::Display>(out: &mut String, field: &str, ty: &str, v: Option<&T>) {
        out.push_str(field);
        out.push_str(":(*");
        out.push_str(ty);
        out.push(')');
        match v {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str("<nil>"),
        }
    }
    out.push_str("<*>{");
    pointer(out, "Protocol", "config.Protocol", pm.protocol.as_ref());
    out.push(' ');
    pointer(out, "ContainerPort", "int32", pm.container_port.as_ref());
    out.push(' ');
    pointer(out, "HostPort", "int32", pm.host_port.as_ref());
    out.push_str(" HostIP:(string)");
    out.push_str(&pm.host_ip);
    out.push('}');
}

/// 32-bit FNV-1a (Go's `hash/fnv.New32a`).
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// 64-bit FNV-1a, for docker-cri's own checksums.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The checksum cri-dockerd stores and verifies for `data`.
pub fn checksum(data: &GoCheckpointData) -> u64 {
    u64::from(fnv1a_32(spew_text(data).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(proto: Option<&str>, c: Option<i32>, h: Option<i32>, ip: &str) -> Option<GoPortMapping> {
        Some(GoPortMapping {
            protocol: proto.map(str::to_string),
            container_port: c,
            host_port: h,
            host_ip: ip.to_string(),
        })
    }

    #[test]
    fn fnv1a_32_reference_vectors() {
        // Published FNV-1a test vectors.
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Expected text and checksum per case were derived from the format
    /// rules in the module doc and cross-checked by running go-spew v1.1.1
    /// (cri-dockerd's vendored copy) and Go's hash/fnv on the same values.
    #[test]
    fn matches_go_spew_and_fnv() {
        let cases: Vec<(GoCheckpointData, &str, u64)> = vec![
            (
                GoCheckpointData::default(),
                "(core.CheckpointData){PortMappings:([]*config.PortMapping)<nil> HostNetwork:(bool)false}",
                2305795928,
            ),
            (
                GoCheckpointData {
                    port_mappings: Some(vec![]),
                    host_network: true,
                },
                "(core.CheckpointData){PortMappings:([]*config.PortMapping)[] HostNetwork:(bool)true}",
                2505140070,
            ),
            (
                GoCheckpointData {
                    port_mappings: Some(vec![pm(Some("tcp"), Some(80), Some(8080), "")]),
                    host_network: false,
                },
                "(core.CheckpointData){PortMappings:([]*config.PortMapping)[<*>{Protocol:(*config.Protocol)tcp \
                 ContainerPort:(*int32)80 HostPort:(*int32)8080 HostIP:(string)}] HostNetwork:(bool)false}",
                3712672205,
            ),
            (
                GoCheckpointData {
                    port_mappings: Some(vec![None, pm(None, None, None, "1.2.3.4")]),
                    host_network: false,
                },
                "(core.CheckpointData){PortMappings:([]*config.PortMapping)[<nil> <*>{Protocol:(*config.Protocol)<nil> \
                 ContainerPort:(*int32)<nil> HostPort:(*int32)<nil> HostIP:(string)1.2.3.4}] HostNetwork:(bool)false}",
                1256283346,
            ),
            (
                GoCheckpointData {
                    port_mappings: Some(vec![
                        pm(Some("udp"), Some(53), Some(0), "127.0.0.1"),
                        pm(Some("sctp"), Some(-1), Some(65535), ""),
                    ]),
                    host_network: true,
                },
                "(core.CheckpointData){PortMappings:([]*config.PortMapping)[<*>{Protocol:(*config.Protocol)udp \
                 ContainerPort:(*int32)53 HostPort:(*int32)0 HostIP:(string)127.0.0.1} \
                 <*>{Protocol:(*config.Protocol)sctp ContainerPort:(*int32)-1 HostPort:(*int32)65535 \
                 HostIP:(string)}] HostNetwork:(bool)true}",
                3088584406,
            ),
        ];
        for (data, text, sum) in cases {
            assert_eq!(spew_text(&data), text);
            assert_eq!(checksum(&data), sum, "checksum of {text}");
        }
    }
}
