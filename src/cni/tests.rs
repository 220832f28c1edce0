use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use super::args::{self, PodIdentity};
use super::conf::{self, Loaded, NetworkList};
use super::result::{describe_failure, pod_ips};
use crate::api;
use crate::config::{Cli, Config, FileConfig, NetworkPlugin};

fn cli_args(args: &[&str]) -> Cli {
    let mut all = vec!["docker-cri"];
    all.extend_from_slice(args);
    Cli::parse_from(all)
}

/// The CNI settings of `Config` (validation errors are in config's tests).
#[test]
fn cni_settings() {
    let c = Config::default();
    assert_eq!(c.network_plugin, NetworkPlugin::Docker);
    assert_eq!(c.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
    assert_eq!(c.cni_bin_dirs, vec![PathBuf::from("/opt/cni/bin")]);
    assert_eq!(c.cni_cache_dir, PathBuf::from("/var/lib/cni/cache"));
    assert_eq!(c.cni_plugin_timeout, Duration::from_secs(60));
    let c = Config::load(&cli_args(&[
        "--network-plugin=cni",
        "--cni-bin-dir=/a, /b",
        "--cni-plugin-timeout=5s",
    ]))
    .unwrap();
    assert_eq!(c.network_plugin, NetworkPlugin::Cni);
    assert_eq!(
        c.cni_bin_dirs,
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(c.cni_plugin_timeout, Duration::from_secs(5));
    assert!(c.compat_warnings.is_empty(), "{:?}", c.compat_warnings);
    let c = Config::load(&cli_args(&["--network-plugin="])).unwrap();
    assert_eq!(c.network_plugin, NetworkPlugin::Docker);
    let file: FileConfig =
        toml::from_str("network_plugin = \"cni\"\ncni_conf_dir = \"/x\"").unwrap();
    let c = Config::resolve(&cli_args(&[]), file).unwrap();
    assert_eq!(c.network_plugin, NetworkPlugin::Cni);
    assert_eq!(c.cni_conf_dir, PathBuf::from("/x"));
}

/// `--hairpin-mode` and `--network-plugin-mtu` act (no compat warning),
/// from flags or the file, the flag winning.
#[test]
fn hairpin_and_mtu_settings() {
    use super::tuning::{HairpinMode, Tuning};
    assert_eq!(Config::default().cni_tuning, Tuning::default());
    let c = Config::load(&cli_args(&[
        "--hairpin-mode=hairpin-veth",
        "--network-plugin-mtu=1450",
    ]))
    .unwrap();
    assert_eq!(
        c.cni_tuning,
        Tuning {
            hairpin: Some(HairpinMode::HairpinVeth),
            mtu: Some(1450)
        }
    );
    assert!(c.compat_warnings.is_empty(), "{:?}", c.compat_warnings);
    let file: FileConfig =
        toml::from_str("hairpin_mode = \"none\"\nnetwork_plugin_mtu = 9000").unwrap();
    let c = Config::resolve(&cli_args(&["--network-plugin-mtu=0"]), file).unwrap();
    assert_eq!(
        c.cni_tuning,
        Tuning {
            hairpin: Some(HairpinMode::None),
            mtu: None
        }
    );
    for (args, setting) in [
        (["--hairpin-mode=sometimes"], "hairpin-mode"),
        (["--network-plugin-mtu=20"], "network-plugin-mtu"),
    ] {
        let err = Config::load(&cli_args(&args)).unwrap_err();
        assert_eq!(err.setting, setting, "{err}");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const LIST: &str = r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
    {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
    {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

#[test]
fn conflist_and_conf_are_both_read() {
    let list = NetworkList::parse(Path::new("a.conflist"), LIST, true).unwrap();
    assert_eq!(list.name, "pods");
    assert_eq!(list.cni_version, "1.0.0");
    assert_eq!(list.plugins.len(), 2);
    let single = r#"{"cniVersion":"0.4.0","name":"one","type":"bridge"}"#;
    let conf = NetworkList::parse(Path::new("b.conf"), single, false).unwrap();
    assert_eq!(conf.plugins.len(), 1);
    assert_eq!(conf.plugins[0]["type"], "bridge");
    assert_eq!(conf.raw["plugins"][0]["type"], "bridge");
    // The cached form reads back as the same chain.
    let again = NetworkList::from_cached(&conf.raw).unwrap();
    assert_eq!(again.plugins, conf.plugins);
    assert_eq!(again.name, "one");
}

#[test]
fn invalid_configs_are_refused_with_the_reason() {
    let cases = [
        ("{", true, "not JSON"),
        ("[]", true, "not a JSON object"),
        (r#"{"plugins":[{"type":"x"}]}"#, true, "no \"name\""),
        (r#"{"name":"n"}"#, true, "no \"plugins\""),
        (r#"{"name":"n","plugins":[]}"#, true, "empty"),
        (r#"{"name":"n","plugins":[{"ipam":{}}]}"#, true, "type"),
        (r#"{"name":"n","plugins":[{"type":"../x"}]}"#, true, "type"),
        (r#"{"name":"a b","type":"x"}"#, false, "forbids"),
        (
            r#"{"name":"n","plugins":[{"type":"x"}]}"#,
            false,
            ".conflist",
        ),
    ];
    for (text, conflist, want) in cases {
        let err = NetworkList::parse(Path::new("f"), text, conflist).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn first_valid_file_in_lexical_order_wins() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(conf::load(dir.path()), Loaded::NotReady(m) if m.contains("no valid")));
    write(
        dir.path(),
        "30-c.conf",
        r#"{"cniVersion":"0.4.0","name":"c","type":"bridge"}"#,
    );
    write(dir.path(), "20-b.conflist", &LIST.replace("pods", "b"));
    write(dir.path(), "10-a.conflist", "{ broken");
    write(dir.path(), "05-ignored.txt", LIST);
    match conf::load(dir.path()) {
        Loaded::Ready(list) => {
            assert_eq!(list.name, "b");
            assert!(list.file.ends_with("20-b.conflist"));
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(dir.path().join("20-b.conflist")).unwrap();
    assert!(matches!(conf::load(dir.path()), Loaded::Ready(l) if l.name == "c"));
    std::fs::remove_file(dir.path().join("30-c.conf")).unwrap();
    match conf::load(dir.path()) {
        Loaded::NotReady(msg) => assert!(msg.contains("10-a.conflist: not JSON"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("nope");
    assert!(matches!(conf::load(&missing), Loaded::NotReady(m) if m.contains("cannot read")));
}

#[test]
fn the_fingerprint_sees_files_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10.conflist", LIST);
    let before = conf::fingerprint(dir.path());
    assert_eq!(before, conf::fingerprint(dir.path()));
    write(dir.path(), "10.conflist", &format!("{LIST}  "));
    assert_ne!(before, conf::fingerprint(dir.path()));
}

fn ips(v: Value) -> Vec<String> {
    pod_ips(&v).unwrap().iter().map(IpAddr::to_string).collect()
}

#[test]
fn results_of_each_spec_version() {
    // 1.0.0 / 1.1.0: no per-IP version; the host-side veth has no sandbox.
    let v1 = json!({
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": "cni0", "mac": "aa"},
            {"name": "veth1", "mac": "bb"},
            {"name": "eth0", "mac": "cc", "sandbox": "/proc/1/ns/net"}
        ],
        "ips": [
            {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
            {"address": "10.1.2.5/24", "gateway": "10.1.2.1", "interface": 2}
        ],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {}
    });
    assert_eq!(ips(v1), ["10.1.2.5", "fd00::5"]);
    // 0.4.0 carries "version" per IP; no interface index at all is fine.
    let v04 = json!({"cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "10.9.0.7/16", "gateway": "10.9.0.1"}]});
    assert_eq!(ips(v04), ["10.9.0.7"]);
    // An address placed on a host-side interface is not the pod's.
    let host_side = json!({"interfaces": [{"name": "cni0"}],
        "ips": [{"address": "10.0.0.1/24", "interface": 0}]});
    assert!(ips(host_side).is_empty());
    // 0.2.0.
    let v02 =
        json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.3.0.4/24"}, "ip6": {"ip": "fd01::4/64"}});
    assert_eq!(ips(v02), ["10.3.0.4", "fd01::4"]);
    for bad in [
        json!({"ips": [{"address": "10.0.0.1"}]}),
        json!({"ips": [{"address": "10.0.0.300/24"}]}),
        json!({"ips": [{"address": "10.0.0.1/33"}]}),
        json!({"ips": [{}]}),
        json!({"ips": {}}),
    ] {
        assert!(pod_ips(&bad).is_err(), "{bad}");
    }
}

#[test]
fn failures_carry_the_cni_error_and_stderr() {
    let msg = describe_failure(
        br#"{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"bad subnet"}"#,
        b"plugin said hi\n",
        "exit status: 1",
    );
    assert_eq!(
        msg,
        "CNI error 7: invalid network config (bad subnet); stderr: plugin said hi"
    );
    assert_eq!(
        describe_failure(b"", b"", "exit status: 2"),
        "exit status: 2"
    );
    assert_eq!(
        describe_failure(b"garbage", b"", "exit status: 2"),
        "exit status: 2: garbage"
    );
}

fn pod_config() -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        port_mappings: vec![
            api::PortMapping {
                protocol: api::Protocol::Udp as i32,
                container_port: 53,
                host_port: 5353,
                host_ip: "127.0.0.1".into(),
            },
            // No host port: nothing for portmap.
            api::PortMapping {
                container_port: 80,
                ..Default::default()
            },
        ],
        annotations: HashMap::from([
            (args::INGRESS_BANDWIDTH.to_string(), "10M".to_string()),
            (args::EGRESS_BANDWIDTH.to_string(), "1Mi".to_string()),
        ]),
        dns_config: Some(api::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        ..Default::default()
    }
}

#[test]
fn capability_arguments_from_the_pod() {
    let caps = args::capability_args(&pod_config(), "10.244.1.0/24, fd00:1::/64").unwrap();
    assert_eq!(
        caps["portMappings"],
        json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}])
    );
    assert_eq!(
        caps["bandwidth"],
        json!({"ingressRate": 10_000_000, "ingressBurst": i32::MAX,
               "egressRate": 1_048_576, "egressBurst": i32::MAX})
    );
    assert_eq!(
        caps["ipRanges"],
        json!([[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:1::/64"}]])
    );
    assert_eq!(caps["dns"]["servers"], json!(["10.96.0.10"]));
    // A bare pod has none.
    let none = args::capability_args(&api::PodSandboxConfig::default(), "").unwrap();
    assert!(none.is_empty(), "{none:?}");
    let mut bad = pod_config();
    bad.annotations
        .insert(args::INGRESS_BANDWIDTH.into(), "fast".into());
    let err = args::capability_args(&bad, "").unwrap_err();
    assert!(err.to_string().contains(args::INGRESS_BANDWIDTH), "{err}");
}

#[test]
fn quantities() {
    for (text, want) in [
        ("100", Some(100)),
        ("10k", Some(10_000)),
        ("2.5M", Some(2_500_000)),
        ("1Gi", Some(1 << 30)),
        ("1.5", Some(2)),
        ("", None),
        ("M", None),
        ("1.2.3", None),
        ("5X", None),
        ("-1", None),
    ] {
        assert_eq!(args::parse_quantity(text), want, "{text}");
    }
}

#[test]
fn plugins_get_only_the_capabilities_they_declare() {
    let caps = args::capability_args(&pod_config(), "10.244.1.0/24").unwrap();
    let list = NetworkList::parse(Path::new("x.conflist"), LIST, true).unwrap();
    let prev = json!({"cniVersion": "1.0.0", "ips": []});
    let bridge = args::plugin_stdin(&list.plugins[0], "pods", "1.0.0", None, &caps);
    assert_eq!(bridge["name"], "pods");
    assert_eq!(bridge["cniVersion"], "1.0.0");
    assert!(bridge.get("runtimeConfig").is_none());
    assert!(bridge.get("prevResult").is_none());
    let portmap = args::plugin_stdin(&list.plugins[1], "pods", "1.0.0", Some(&prev), &caps);
    assert_eq!(portmap["prevResult"], prev);
    let rc = portmap["runtimeConfig"].as_object().unwrap();
    assert_eq!(rc.keys().collect::<Vec<_>>(), ["portMappings"]);
    // Declared false is not declared.
    let off = json!({"type": "bandwidth", "capabilities": {"bandwidth": false}});
    assert!(
        args::plugin_stdin(&off, "n", "1.0.0", None, &caps)
            .get("runtimeConfig")
            .is_none()
    );
}

#[test]
fn cni_args_name_the_pod() {
    let pod = PodIdentity {
        namespace: "ns".into(),
        name: "web".into(),
        uid: "u-1".into(),
        sandbox_id: "abc".into(),
    };
    assert_eq!(
        args::cni_args_env(&args::cni_args(&pod)),
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
    );
}

mod exec {
    //! The whole chain against shell-script plugins: the environment, the
    //! stdin of each call, the cache, DEL in reverse, timeouts.
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::super::{Cni, Settings, cache};
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        cni: Cni,
    }

    /// A plugin that logs its env and stdin to `<dir>/log`, then runs `tail`.
    fn plugin(dir: &Path, name: &str, tail: &str) {
        let path = dir.join("bin").join(name);
        let script = format!(
            "#!/bin/sh\ninput=$(cat)\necho \"{name} $CNI_COMMAND $CNI_CONTAINERID [$CNI_NETNS] $CNI_IFNAME $CNI_ARGS $CNI_PATH\" >> {log}\n\
             echo \"$input\" >> {log}\n{tail}\n",
            log = dir.join("log").display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn fixture(list: &str, timeout: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["bin", "conf", "cache"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        write(&dir.path().join("conf"), "10-test.conflist", list);
        let cni = Cni::new(Settings {
            conf_dir: dir.path().join("conf"),
            bin_dirs: vec![dir.path().join("bin")],
            cache_dir: dir.path().join("cache"),
            plugin_timeout: timeout,
            tuning: Default::default(),
        });
        Fixture { dir, cni }
    }

    const RESULT: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.77.0.9/24","interface":0}]}"#;
    const CHAIN: &str = r#"{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"first"},{"type":"second","capabilities":{"portMappings":true}}]}"#;

    fn pod() -> PodIdentity {
        PodIdentity {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
            sandbox_id: "sbx1".into(),
        }
    }

    fn log(f: &Fixture) -> String {
        std::fs::read_to_string(f.dir.path().join("log")).unwrap_or_default()
    }

    #[tokio::test]
    async fn add_chains_results_and_del_runs_in_reverse_from_the_cache() {
        let f = fixture(CHAIN, Duration::from_secs(10));
        plugin(
            f.dir.path(),
            "first",
            &format!("[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT}'; exit 0"),
        );
        // The second passes its prevResult on, as a chained plugin does.
        plugin(
            f.dir.path(),
            "second",
            "[ \"$CNI_COMMAND\" = ADD ] && echo \"$input\" | sed 's/.*\"prevResult\":\\({.*}\\).*$/\\1/' | sed 's/,\"runtimeConfig\".*//'; exit 0",
        );
        let caps = args::capability_args(&pod_config(), "").unwrap();
        let ips = f.cni.setup(&pod(), "/proc/1/ns/net", caps).await.unwrap();
        assert_eq!(ips, ["10.77.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(f.cni.cached_ips("sbx1"), ips);
        let cached = cache::path(&f.dir.path().join("cache"), "t", "sbx1", "eth0");
        assert!(cached.exists());
        let text = log(&f);
        assert!(text.contains("first ADD sbx1 [/proc/1/ns/net] eth0 IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=sbx1;K8S_POD_UID=u"), "{text}");
        assert!(
            text.contains(&format!(
                "{}:/usr/lib/cni",
                f.dir.path().join("bin").display()
            )),
            "{text}"
        );
        assert!(text.contains("\"prevResult\":{"), "{text}");
        assert!(
            text.contains("\"runtimeConfig\":{\"portMappings\""),
            "{text}"
        );

        // A new instance (a restarted docker-cri) with the config gone
        // still tears down from the cache: second first, then first.
        std::fs::remove_file(f.dir.path().join("conf/10-test.conflist")).unwrap();
        std::fs::remove_file(f.dir.path().join("log")).unwrap();
        let again = Cni::new(f.cni.settings().clone());
        assert!(again.teardown("sbx1", "").await.unwrap());
        let text = log(&f);
        let second = text.find("second DEL sbx1 [] eth0").expect(&text);
        let first = text.find("first DEL sbx1 [] eth0").expect(&text);
        assert!(second < first, "{text}");
        assert!(
            text.contains("10.77.0.9/24"),
            "DEL gets the cached prevResult: {text}"
        );
        assert!(!cached.exists());
        assert!(
            !again.teardown("sbx1", "").await.unwrap(),
            "nothing left to do"
        );
    }

    #[tokio::test]
    async fn a_failed_add_is_undone_and_explained() {
        let f = fixture(CHAIN, Duration::from_secs(10));
        plugin(
            f.dir.path(),
            "first",
            &format!("[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT}'; exit 0"),
        );
        plugin(
            f.dir.path(),
            "second",
            "if [ \"$CNI_COMMAND\" = ADD ]; then echo '{\"code\":11,\"msg\":\"no room\"}'; echo oops >&2; exit 1; fi",
        );
        let err = f
            .cni
            .setup(&pod(), "/proc/1/ns/net", Default::default())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("CNI plugin second ADD failed: CNI error 11: no room; stderr: oops"),
            "{msg}"
        );
        let text = log(&f);
        assert!(
            text.contains("second DEL") && text.contains("first DEL"),
            "{text}"
        );
        assert!(cache::find(&f.dir.path().join("cache"), "sbx1", "eth0").is_empty());
    }

    #[tokio::test]
    async fn a_hanging_plugin_is_killed_at_the_timeout_and_del_is_kept_for_later() {
        let f = fixture(CHAIN, Duration::from_millis(300));
        plugin(f.dir.path(), "first", "sleep 30");
        plugin(f.dir.path(), "second", "exit 0");
        let started = std::time::Instant::now();
        let err = f
            .cni
            .setup(&pod(), "/proc/1/ns/net", Default::default())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(err, crate::Error::DeadlineExceeded { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("CNI plugin first ADD"), "{err}");
        // DEL timed out as well: the cache entry stays for the next DEL.
        assert_eq!(
            cache::find(&f.dir.path().join("cache"), "sbx1", "eth0").len(),
            1
        );
    }

    #[tokio::test]
    async fn a_missing_plugin_or_config_is_a_precondition() {
        let f = fixture(CHAIN, Duration::from_secs(5));
        let err = f
            .cni
            .setup(&pod(), "/x", Default::default())
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::FailedPrecondition(_)), "{err}");
        assert!(
            err.to_string().contains("no plugin binary \"first\""),
            "{err}"
        );
        std::fs::remove_file(f.dir.path().join("conf/10-test.conflist")).unwrap();
        let err = f.cni.ready().unwrap_err();
        assert!(err.contains("no valid network config"), "{err}");
    }
}
