use std::collections::HashMap;

use bollard::models::{HostConfig, HostConfigLogConfig};

use super::*;

fn inspect(driver: &str, opts: &[(&str, &str)], path: &str) -> ContainerInspectResponse {
    ContainerInspectResponse {
        log_path: Some(path.to_string()),
        host_config: Some(HostConfig {
            log_config: Some(HostConfigLogConfig {
                typ: Some(driver.to_string()),
                config: Some(
                    opts.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn docker_cris_own_config_is_read_directly() {
    let c = inspect(
        "json-file",
        &[("max-size", "10m"), ("max-file", "5")],
        "/var/lib/docker/containers/abc/abc-json.log",
    );
    assert_eq!(
        json_log_of(&c),
        Some(JsonLog {
            path: "/var/lib/docker/containers/abc/abc-json.log".into(),
            max_file: 5
        })
    );
    let c = inspect("json-file", &[("compress", "false")], "/x-json.log");
    assert_eq!(json_log_of(&c).map(|l| l.max_file), Some(1));
}

#[test]
fn other_drivers_compression_and_odd_paths_use_the_api() {
    for c in [
        inspect("local", &[], "/x.log"),
        inspect("journald", &[], ""),
        inspect("json-file", &[("compress", "true")], "/x-json.log"),
        inspect("json-file", &[], ""),
        inspect("json-file", &[], "relative-json.log"),
        ContainerInspectResponse::default(),
    ] {
        assert_eq!(json_log_of(&c), None, "{:?}", c.host_config);
    }
}
