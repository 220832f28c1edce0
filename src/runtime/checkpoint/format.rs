//! The on-disk format: cri-dockerd's `PodSandboxCheckpoint`
//! (`core/checkpoint.go`, `config/types.go`), decoded the way Go's
//! `encoding/json` decodes it, plus docker-cri's own fields in a
//! `docker_cri` object that cri-dockerd ignores.
//!
//! ```json
//! {"version":"v1","name":"web","namespace":"default",
//!  "data":{"port_mappings":[{"protocol":"tcp","container_port":80,"host_port":8080,"host_ip":"127.0.0.1"}],
//!          "host_network":true},
//!  "checksum":3712672205,
//!  "docker_cri":{"uid":"…","attempt":0,"config":{…},"created_at":…,"checksum":…}}
//! ```
//!
//! Every field but `version`, `name`, `namespace` and `checksum` is `omitempty`
//! in Go; `checksum` covers `data` only (see `checksum.rs`). cri-dockerd
//! reads with plain `json.Unmarshal`, which ignores unknown keys, so the
//! `docker_cri` object neither breaks its decoding nor its checksum. That
//! object carries its own FNV-1a 64 checksum over name, namespace and
//! itself; when it fails only the cri-dockerd part is used.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::checksum::{self, GoCheckpointData, GoPortMapping};
use super::{CHECKPOINT_VERSION, CheckpointData, PortMappingRecord, SandboxCheckpoint};

const EXTRAS_KEY: &str = "docker_cri";

/// A file as cri-dockerd's decoder sees it, plus our extras if present.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub version: String,
    pub name: String,
    pub namespace: String,
    pub data: GoCheckpointData,
    pub checksum: u64,
    pub extras: Option<Value>,
}

impl Decoded {
    /// cri-dockerd's own verification (`PodSandboxCheckpoint.VerifyChecksum`).
    pub fn verifies(&self) -> bool {
        self.checksum == checksum::checksum(&self.data)
    }
}

/// Decodes like Go's `json.Unmarshal` into cri-dockerd's structs (as its
/// callers prepare them: `Data` pre-set to an empty struct). Errors where Go
/// errors, and where cri-dockerd would dereference a nil `data`.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(top) = value else {
        return Err("not a JSON object".into());
    };
    let data = match field(&top, "data") {
        None => GoCheckpointData::default(),
        Some(Value::Null) => return Err("data is null".into()),
        Some(Value::Object(d)) => decode_data(d)?,
        Some(_) => return Err("data is not an object".into()),
    };
    Ok(Decoded {
        version: string(&top, "version")?,
        name: string(&top, "name")?,
        namespace: string(&top, "namespace")?,
        data,
        checksum: match field(&top, "checksum") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or("checksum is not a uint64")?,
        },
        extras: top.get(EXTRAS_KEY).cloned(),
    })
}

fn decode_data(d: &Map<String, Value>) -> Result<GoCheckpointData, String> {
    let port_mappings = match field(d, "port_mappings") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(None),
                    Value::Object(pm) => decode_port_mapping(pm).map(Some),
                    _ => Err("a port mapping is not an object".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("port_mappings is not an array".into()),
    };
    let host_network = match field(d, "host_network") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("host_network is not a bool".into()),
    };
    Ok(GoCheckpointData {
        port_mappings,
        host_network,
    })
}

fn decode_port_mapping(pm: &Map<String, Value>) -> Result<GoPortMapping, String> {
    let port = |key: &str| match field(pm, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{key} is not an int32")),
    };
    Ok(GoPortMapping {
        protocol: match field(pm, "protocol") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("protocol is not a string".into()),
        },
        container_port: port("container_port")?,
        host_port: port("host_port")?,
        host_ip: string(pm, "host_ip")?,
    })
}

/// Go matches keys exactly, else case-insensitively.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A Go `string` field: absent or `null` leaves it empty.
fn string(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match field(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

/// docker-cri's fields, which cri-dockerd's format has no place for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Extras {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    created_at: i64,
    #[serde(default)]
    checksum: u64,
}

impl Extras {
    fn compute_checksum(&self, name: &str, namespace: &str) -> u64 {
        let zeroed = Extras {
            checksum: 0,
            ..self.clone()
        };
        let bytes = serde_json::to_vec(&(name, namespace, &zeroed)).unwrap_or_default();
        checksum::fnv1a_64(&bytes)
    }
}

/// The model of a verified file. `Err` names why our extras were ignored
/// (the cri-dockerd part is still good).
pub fn to_model(d: Decoded) -> (SandboxCheckpoint, Option<String>) {
    let mut cp = SandboxCheckpoint {
        version: d.version,
        name: d.name,
        namespace: d.namespace,
        uid: String::new(),
        attempt: 0,
        data: CheckpointData {
            port_mappings: d
                .data
                .port_mappings
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .map(|pm| PortMappingRecord {
                    protocol: pm.protocol.unwrap_or_default(),
                    container_port: pm.container_port.unwrap_or_default(),
                    host_port: pm.host_port.unwrap_or_default(),
                    host_ip: pm.host_ip,
                })
                .collect(),
            host_network: d.data.host_network,
        },
        config: Value::Null,
        created_at: 0,
        checksum: d.checksum,
    };
    let Some(raw) = d.extras else {
        return (cp, None);
    };
    let extras = match serde_json::from_value::<Extras>(raw) {
        Ok(e) => e,
        Err(e) => return (cp, Some(format!("{EXTRAS_KEY} is malformed: {e}"))),
    };
    if extras.checksum != extras.compute_checksum(&cp.name, &cp.namespace) {
        return (cp, Some(format!("{EXTRAS_KEY} checksum mismatch")));
    }
    cp.uid = extras.uid;
    cp.attempt = extras.attempt;
    cp.config = extras.config;
    cp.created_at = extras.created_at;
    (cp, None)
}

/// Go's `omitempty` fields, in cri-dockerd's order.
#[derive(Serialize)]
struct OutPortMapping<'a> {
    protocol: &'a str,
    container_port: i32,
    host_port: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    host_ip: &'a str,
}

#[derive(Serialize)]
struct OutData<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    port_mappings: Vec<OutPortMapping<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    host_network: bool,
}

#[derive(Serialize)]
struct OutFile<'a> {
    version: &'a str,
    name: &'a str,
    namespace: &'a str,
    data: OutData<'a>,
    checksum: u64,
    docker_cri: Extras,
}

/// cri-dockerd's protocol names; it writes `tcp` for anything else.
fn go_protocol(p: &str) -> &'static str {
    match p.to_ascii_lowercase().as_str() {
        "udp" => "udp",
        "sctp" => "sctp",
        _ => "tcp",
    }
}

/// The file for `cp`, as cri-dockerd would write it plus our extras, and
/// its cri-dockerd checksum. Port mappings are written exactly as
/// cri-dockerd's `constructPodSandboxCheckpoint` builds them: every pointer
/// set, no mappings means a nil (omitted) slice.
pub fn encode(cp: &SandboxCheckpoint) -> serde_json::Result<(Vec<u8>, u64)> {
    let go_data = GoCheckpointData {
        port_mappings: (!cp.data.port_mappings.is_empty()).then(|| {
            cp.data
                .port_mappings
                .iter()
                .map(|p| {
                    Some(GoPortMapping {
                        protocol: Some(go_protocol(&p.protocol).to_string()),
                        container_port: Some(p.container_port),
                        host_port: Some(p.host_port),
                        host_ip: p.host_ip.clone(),
                    })
                })
                .collect()
        }),
        host_network: cp.data.host_network,
    };
    let sum = checksum::checksum(&go_data);
    let mut extras = Extras {
        uid: cp.uid.clone(),
        attempt: cp.attempt,
        config: cp.config.clone(),
        created_at: cp.created_at,
        checksum: 0,
    };
    extras.checksum = extras.compute_checksum(&cp.name, &cp.namespace);
    let file = OutFile {
        version: CHECKPOINT_VERSION,
        name: &cp.name,
        namespace: &cp.namespace,
        data: OutData {
            port_mappings: cp
                .data
                .port_mappings
                .iter()
                .map(|p| OutPortMapping {
                    protocol: go_protocol(&p.protocol),
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: &p.host_ip,
                })
                .collect(),
            host_network: cp.data.host_network,
        },
        checksum: sum,
        docker_cri: extras,
    };
    Ok((serde_json::to_vec(&file)?, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Go's `json.Marshal` makes of cri-dockerd's checkpoint for a pod
    /// with one TCP mapping 80→8080 (checksum as in `checksum.rs`).
    const CRI_DOCKERD_FILE: &str = r#"{"version":"v1","name":"web","namespace":"default","data":{"port_mappings":[{"protocol":"tcp","container_port":80,"host_port":8080}]},"checksum":3712672205}"#;

    fn decoded(json: &str) -> Result<Decoded, String> {
        decode(json.as_bytes())
    }

    #[test]
    fn decodes_a_cri_dockerd_file() {
        let d = decoded(CRI_DOCKERD_FILE).unwrap();
        assert!(d.verifies());
        assert_eq!((d.name.as_str(), d.namespace.as_str()), ("web", "default"));
        let (cp, problem) = to_model(d);
        assert_eq!(problem, None);
        assert_eq!(
            cp.data.port_mappings,
            vec![PortMappingRecord {
                protocol: "tcp".into(),
                container_port: 80,
                host_port: 8080,
                host_ip: String::new(),
            }]
        );
        assert_eq!((cp.uid.as_str(), cp.attempt, cp.created_at), ("", 0, 0));
    }

    /// Go's decoder: nil vs empty, nulls, unknown and differently-cased keys.
    #[test]
    fn decodes_like_go() {
        let data = |json: &str| decoded(json).map(|d| d.data);
        assert_eq!(data(r#"{"name":"a"}"#), Ok(GoCheckpointData::default()));
        assert_eq!(
            data(r#"{"data":{"port_mappings":null,"host_network":null}}"#),
            Ok(GoCheckpointData::default())
        );
        assert_eq!(
            data(r#"{"data":{"port_mappings":[]}}"#),
            Ok(GoCheckpointData {
                port_mappings: Some(vec![]),
                host_network: false
            })
        );
        assert_eq!(
            data(
                r#"{"data":{"Port_Mappings":[null,{"host_ip":"::1","container_port":0}]},"extra":1}"#
            ),
            Ok(GoCheckpointData {
                port_mappings: Some(vec![
                    None,
                    Some(GoPortMapping {
                        container_port: Some(0),
                        host_ip: "::1".into(),
                        ..Default::default()
                    })
                ]),
                host_network: false
            })
        );
        let d = decoded(r#"{"NAME":"n","name":"exact","checksum":null}"#).unwrap();
        assert_eq!((d.name.as_str(), d.checksum), ("exact", 0));
    }

    #[test]
    fn refuses_what_go_or_cri_dockerd_would_fail_on() {
        for bad in [
            "",
            "[]",
            "null",
            "{not json",
            r#"{"data":null}"#,
            r#"{"data":[]}"#,
            r#"{"name":1}"#,
            r#"{"checksum":-1}"#,
            r#"{"checksum":1.5}"#,
            r#"{"data":{"port_mappings":{}}}"#,
            r#"{"data":{"port_mappings":[1]}}"#,
            r#"{"data":{"port_mappings":[{"container_port":2147483648}]}}"#,
            r#"{"data":{"port_mappings":[{"host_port":"80"}]}}"#,
            r#"{"data":{"port_mappings":[{"protocol":6}]}}"#,
            r#"{"data":{"host_network":"true"}}"#,
        ] {
            assert!(decoded(bad).is_err(), "{bad:?} must not decode");
        }
    }

    fn sample() -> SandboxCheckpoint {
        SandboxCheckpoint {
            version: String::new(),
            name: "web".into(),
            namespace: "default".into(),
            uid: "uid-1".into(),
            attempt: 2,
            data: CheckpointData {
                port_mappings: vec![PortMappingRecord {
                    protocol: "tcp".into(),
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                }],
                host_network: false,
            },
            config: serde_json::json!({"logDirectory": "/var/log/pods/x"}),
            created_at: 42,
            checksum: 0,
        }
    }

    #[test]
    fn encoded_files_carry_cri_dockerds_checksum_and_our_extras() {
        let (bytes, sum) = encode(&sample()).unwrap();
        // The same data as CRI_DOCKERD_FILE, so the same checksum as
        // cri-dockerd computes for it.
        assert_eq!(sum, 3712672205);
        let d = decode(&bytes).unwrap();
        assert!(d.verifies());
        let (cp, problem) = to_model(d);
        assert_eq!(problem, None);
        assert_eq!(
            cp,
            SandboxCheckpoint {
                version: "v1".into(),
                checksum: sum,
                ..sample()
            }
        );
        // cri-dockerd's fields are exactly what it would have written.
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        v.as_object_mut().unwrap().remove(EXTRAS_KEY);
        let expected: Value = serde_json::from_str(CRI_DOCKERD_FILE).unwrap();
        assert_eq!(v, expected);
    }

    #[test]
    fn encoding_follows_cri_dockerds_omitempty_and_protocols() {
        let mut cp = sample();
        cp.data.port_mappings = vec![];
        cp.data.host_network = true;
        let (bytes, sum) = encode(&cp).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["data"], serde_json::json!({"host_network": true}));
        // cri-dockerd's checksum of `{PortMappings: nil, HostNetwork: true}`.
        assert_eq!(sum, 12315789);
        cp.data.port_mappings = vec![PortMappingRecord {
            protocol: String::new(),
            container_port: 53,
            host_port: 5353,
            host_ip: "127.0.0.1".into(),
        }];
        let (bytes, _) = encode(&cp).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["data"]["port_mappings"],
            serde_json::json!([{"protocol": "tcp", "container_port": 53, "host_port": 5353, "host_ip": "127.0.0.1"}])
        );
        assert!(decode(&bytes).unwrap().verifies());
    }

    #[test]
    fn tampered_extras_fall_back_to_the_cri_dockerd_part() {
        let (bytes, _) = encode(&sample()).unwrap();
        let text = String::from_utf8(bytes).unwrap().replace("uid-1", "uid-2");
        let d = decode(text.as_bytes()).unwrap();
        assert!(d.verifies(), "cri-dockerd's checksum does not cover extras");
        let (cp, problem) = to_model(d);
        assert!(problem.unwrap().contains("checksum mismatch"));
        assert_eq!((cp.name.as_str(), cp.uid.as_str()), ("web", ""));
        assert_eq!(cp.data.port_mappings.len(), 1);
    }
}
