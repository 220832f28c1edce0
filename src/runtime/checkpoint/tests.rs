//! The store against files on disk: ours, cri-dockerd's, earlier and corrupt.

use std::time::SystemTime;

use super::*;

fn sample() -> SandboxCheckpoint {
    SandboxCheckpoint {
        version: String::new(),
        name: "web".into(),
        namespace: "ns".into(),
        uid: "u".into(),
        attempt: 1,
        data: CheckpointData {
            port_mappings: vec![PortMappingRecord {
                protocol: "tcp".into(),
                container_port: 80,
                host_port: 8080,
                host_ip: String::new(),
            }],
            host_network: false,
        },
        config: serde_json::json!({"hostname": "web"}),
        created_at: 5,
        checksum: 0,
    }
}

/// Files exactly as cri-dockerd's `json.Marshal` writes them; checksums
/// from `checksum.rs`'s Go-checked fixtures.
const CRI_DOCKERD_FILES: &[(&str, &str)] = &[
    (
        "aaaa",
        r#"{"version":"v1","name":"web","namespace":"default","data":{"port_mappings":[{"protocol":"tcp","container_port":80,"host_port":8080}]},"checksum":3712672205}"#,
    ),
    (
        "bbbb",
        r#"{"version":"v1","name":"node-agent","namespace":"kube-system","data":{"host_network":true},"checksum":12315789}"#,
    ),
    (
        "cccc",
        r#"{"version":"v1","name":"dns","namespace":"kube-system","data":{"port_mappings":[{"protocol":"udp","container_port":53,"host_port":0,"host_ip":"127.0.0.1"},{"protocol":"sctp","container_port":-1,"host_port":65535}],"host_network":true},"checksum":3088584406}"#,
    ),
];

fn snapshot_dir(dir: &Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                if meta.is_dir() {
                    Vec::new()
                } else {
                    fs::read(e.path()).unwrap()
                },
                meta.modified().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn write_reload_remove() {
    let root = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(root.path()).unwrap();
    store.write("abc", sample()).unwrap();
    let reopened = CheckpointStore::open(root.path()).unwrap();
    let cp = reopened.get("abc").unwrap();
    assert_eq!(cp.name, "web");
    assert_eq!((cp.uid.as_str(), cp.attempt, cp.created_at), ("u", 1, 5));
    assert_eq!(cp.config, serde_json::json!({"hostname": "web"}));
    assert_eq!(cp.data.port_mappings[0].host_port, 8080);
    assert_eq!(reopened.ids(), vec!["abc".to_string()]);
    reopened.remove("abc").unwrap();
    reopened.remove("abc").unwrap();
    assert!(
        CheckpointStore::open(root.path())
            .unwrap()
            .get("abc")
            .is_none()
    );
}

#[test]
fn written_files_pass_cri_dockerds_verification() {
    let root = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(root.path()).unwrap();
    store.write("abc", sample()).unwrap();
    let bytes = fs::read(root.path().join("sandbox/abc")).unwrap();
    let decoded = format::decode(&bytes).unwrap();
    assert!(decoded.verifies());
    // The value cri-dockerd computes for one TCP mapping 80→8080.
    assert_eq!(decoded.checksum, 3712672205);
    assert_eq!(store.get("abc").unwrap().checksum, 3712672205);
}

#[test]
fn cri_dockerd_files_are_loaded_and_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sandbox");
    fs::create_dir_all(&dir).unwrap();
    for (id, text) in CRI_DOCKERD_FILES {
        fs::write(dir.join(id), text).unwrap();
    }
    // cri-dockerd's temporary file (`.` plus digits) is not ours to clean.
    fs::write(dir.join(".123456"), "partial").unwrap();
    fs::create_dir(dir.join("subdir")).unwrap();
    let before = snapshot_dir(&dir);

    let store = CheckpointStore::open(root.path()).unwrap();
    let mut ids = store.ids();
    ids.sort();
    assert_eq!(ids, ["aaaa", "bbbb", "cccc"]);
    let web = store.get("aaaa").unwrap();
    assert_eq!(
        (web.name.as_str(), web.namespace.as_str()),
        ("web", "default")
    );
    assert_eq!(web.data.port_mappings[0].container_port, 80);
    assert!(store.get("bbbb").unwrap().data.host_network);
    let dns = store.get("cccc").unwrap();
    assert_eq!(dns.data.port_mappings.len(), 2);
    assert_eq!(dns.data.port_mappings[0].protocol, "udp");
    assert_eq!(dns.data.port_mappings[0].host_ip, "127.0.0.1");
    assert_eq!(dns.data.port_mappings[1].protocol, "sctp");
    drop(store);
    CheckpointStore::open(root.path()).unwrap();
    assert_eq!(
        snapshot_dir(&dir),
        before,
        "not renamed, rewritten or deleted"
    );
}

#[test]
fn corrupt_and_tampered_files_are_set_aside() {
    let root = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(root.path()).unwrap();
    store.write("good", sample()).unwrap();
    store.write("tampered", sample()).unwrap();
    let dir = root.path().join("sandbox");
    let text = fs::read_to_string(dir.join("tampered")).unwrap();
    fs::write(dir.join("tampered"), text.replace("8080", "9090")).unwrap();
    fs::write(dir.join("garbage"), "{not json").unwrap();
    // cri-dockerd's format with a wrong checksum.
    fs::write(
        dir.join("foreign"),
        CRI_DOCKERD_FILES[0].1.replace("3712672205", "3712672206"),
    )
    .unwrap();
    fs::write(dir.join(".half.tmp"), "x").unwrap();
    let reopened = CheckpointStore::open(root.path()).unwrap();
    assert_eq!(reopened.ids(), vec!["good".to_string()]);
    assert!(!dir.join("tampered").exists());
    assert!(dir.join("tampered.corrupt").exists(), "kept for inspection");
    assert!(dir.join("garbage.corrupt").exists());
    assert!(dir.join("foreign.corrupt").exists());
    assert!(!dir.join(".half.tmp").exists());
    // Set-aside files are not read again.
    assert_eq!(
        CheckpointStore::open(root.path()).unwrap().ids(),
        vec!["good".to_string()]
    );
}

#[test]
fn earlier_docker_cri_files_are_read_and_upgraded() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sandbox");
    fs::create_dir_all(&dir).unwrap();
    let mut old = sample();
    old.version = CHECKPOINT_VERSION.into();
    old.checksum = legacy::checksum(&old);
    fs::write(dir.join("old"), serde_json::to_vec(&old).unwrap()).unwrap();
    assert!(
        !format::decode(&fs::read(dir.join("old")).unwrap())
            .unwrap()
            .verifies(),
        "cri-dockerd could not read the earlier format"
    );

    let store = CheckpointStore::open(root.path()).unwrap();
    let cp = store.get("old").unwrap();
    assert_eq!((cp.uid.as_str(), cp.attempt), ("u", 1));
    let upgraded = format::decode(&fs::read(dir.join("old")).unwrap()).unwrap();
    assert!(upgraded.verifies(), "now readable by cri-dockerd");
    assert_eq!(
        CheckpointStore::open(root.path())
            .unwrap()
            .get("old")
            .unwrap()
            .uid,
        "u"
    );
}
