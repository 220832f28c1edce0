use super::validate::docker_size_ok;
use super::*;

fn cli(args: &[&str]) -> Cli {
    let mut all = vec!["docker-cri"];
    all.extend_from_slice(args);
    Cli::parse_from(all)
}

#[test]
fn defaults_match_cri_dockerd_conventions() {
    let c = Config::default();
    assert_eq!(
        c.listen,
        Listen::Unix(PathBuf::from("/run/docker-cri.sock"))
    );
    assert_eq!(c.docker_socket, PathBuf::from("/var/run/docker.sock"));
    assert_eq!(c.pause_image, DEFAULT_PAUSE_IMAGE);
    assert_eq!(c.runtime_request_timeout, Duration::from_secs(120));
    assert_eq!(
        c.streaming_connection_idle_timeout,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(c.root_directory, PathBuf::from(DEFAULT_ROOT_DIR));
}

#[test]
fn docker_log_buffer_settings() {
    let c = Config::default();
    assert_eq!(
        (c.docker_log_max_size.as_str(), c.docker_log_max_file),
        ("10m", 5)
    );
    let file: FileConfig =
        toml::from_str("docker_log_max_size = \"100k\"\ndocker_log_max_file = 2").unwrap();
    let c = Config::resolve(&cli(&["--docker-log-max-size", "1G"]), file).unwrap();
    assert_eq!(
        (c.docker_log_max_size.as_str(), c.docker_log_max_file),
        ("1G", 2)
    );
    for ok in ["1", "512k", "10m", "10mb", "2g"] {
        assert!(docker_size_ok(ok), "{ok}");
    }
}

#[test]
fn list_stream_message_bound() {
    let c = Config::default();
    assert_eq!(c.list_stream_message_bytes, 4 << 20);
    let c = Config::load(&cli(&["--list-stream-message-bytes", "2048"])).unwrap();
    assert_eq!(c.list_stream_message_bytes, 2048);
    for bad in ["0", "1023", "8388609"] {
        let e = Config::load(&cli(&["--list-stream-message-bytes", bad])).unwrap_err();
        assert_eq!(e.setting, "list-stream-message-bytes", "{bad}");
    }
}

#[test]
fn image_volume_export_sweep_age() {
    let c = Config::default();
    assert_eq!(c.image_volume_export_sweep_age, Duration::from_secs(600));
    let c = Config::load(&cli(&["--image-volume-export-sweep-age", "0s"])).unwrap();
    assert_eq!(c.image_volume_export_sweep_age, Duration::ZERO);
    let e = Config::load(&cli(&["--image-volume-export-sweep-age", "soon"])).unwrap_err();
    assert_eq!(e.setting, "image-volume-export-sweep-age");
}

#[test]
fn cri_dockerd_root_directory_alias() {
    let c = Config::load(&cli(&["--cri-dockerd-root-directory", "/tmp/x"])).unwrap();
    assert_eq!(c.root_directory, PathBuf::from("/tmp/x"));
}

#[test]
fn flags_override_file() {
    let file: FileConfig =
        toml::from_str("runtime_request_timeout = \"30s\"\nlog_level = \"debug\"").unwrap();
    let c = Config::resolve(&cli(&["--log-level", "warn"]), file).unwrap();
    assert_eq!(c.runtime_request_timeout, Duration::from_secs(30));
    assert_eq!(c.log_level, "warn");
}

#[test]
fn errors_name_the_setting() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--container-runtime-endpoint", "tcp://x:1"],
            "container-runtime-endpoint",
        ),
        (&["--docker-endpoint", "unix://relative"], "docker-endpoint"),
        (
            &["--runtime-request-timeout", "soon"],
            "runtime-request-timeout",
        ),
        (
            &["--runtime-request-timeout", "0s"],
            "runtime-request-timeout",
        ),
        (&["--streaming-bind-addr", "nowhere"], "streaming-bind-addr"),
        (&["--log-level", "loud"], "log-level"),
        (
            &["--pod-infra-container-image", "UPPER/case"],
            "pod-infra-container-image",
        ),
        (&["--root-directory", "rel/dir"], "root-directory"),
        (&["--sandbox-network", "host"], "sandbox-network"),
        (&["--sandbox-network", "a b"], "sandbox-network"),
        (&["--network-plugin", "kubenet"], "network-plugin"),
        (&["--cni-conf-dir", "net.d"], "cni-conf-dir"),
        (&["--cni-bin-dir", "/opt/cni/bin,rel"], "cni-bin-dir"),
        (&["--cni-bin-dir", ","], "cni-bin-dir"),
        (&["--cni-cache-dir", "cache"], "cni-cache-dir"),
        (&["--cni-plugin-timeout", "0s"], "cni-plugin-timeout"),
        (&["--docker-log-max-size", "ten"], "docker-log-max-size"),
        (&["--docker-log-max-size", "0m"], "docker-log-max-size"),
        (&["--docker-log-max-size", "1x"], "docker-log-max-size"),
        (&["--docker-log-max-file", "0"], "docker-log-max-file"),
    ];
    for (args, setting) in cases {
        let err = Config::load(&cli(args)).unwrap_err();
        assert_eq!(err.setting, *setting, "{args:?}");
        assert!(err.to_string().contains(setting));
    }
}

#[test]
fn unknown_file_keys_are_refused() {
    assert!(toml::from_str::<FileConfig>("no_such_key = 1").is_err());
}

#[test]
fn example_config_parses() {
    let text = include_str!("../../config/docker-cri.toml");
    let file: FileConfig = toml::from_str(text).unwrap();
    Config::resolve(&cli(&[]), file).unwrap();
}

#[test]
fn metrics_address_defaults_to_loopback() {
    assert_eq!(Config::default().metrics_bind_addr, None);
    for (given, want) in [
        ("9090", "127.0.0.1:9090"),
        (":9090", "127.0.0.1:9090"),
        ("0.0.0.0:9100", "0.0.0.0:9100"),
        ("[::1]:9100", "[::1]:9100"),
    ] {
        let c =
            Config::resolve(&cli(&["--metrics-bind-addr", given]), FileConfig::default()).unwrap();
        assert_eq!(c.metrics_bind_addr.unwrap().to_string(), want, "{given}");
    }
    let err = Config::resolve(
        &cli(&["--metrics-bind-addr", "lots"]),
        FileConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err.setting, "metrics-bind-addr");
}

#[test]
fn systemd_endpoints() {
    let c = Config::resolve(
        &cli(&["--container-runtime-endpoint", "fd://"]),
        FileConfig::default(),
    )
    .unwrap();
    assert_eq!(c.listen, Listen::Systemd { name: None });
    let c = Config::resolve(
        &cli(&["--container-runtime-endpoint", "fd://cri"]),
        FileConfig::default(),
    )
    .unwrap();
    assert_eq!(
        c.listen,
        Listen::Systemd {
            name: Some("cri".into())
        }
    );
    assert!(
        Config::resolve(
            &cli(&["--container-runtime-endpoint", "fd://a/b"]),
            FileConfig::default()
        )
        .is_err()
    );
}
