//! CHECK, STATUS, GC and the hairpin/MTU tuning, against shell-script
//! plugins that log each call (the Debian plugins here stop at CNI 1.0.0,
//! so STATUS and GC are only ever exercised by fakes).

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::args::PodIdentity;
use super::cache::{self, CachedInfo};
use super::conf::NetworkList;
use super::tuning::{HairpinMode, Tuning, parse_mtu};
use super::{Checked, Cni, Settings, version_at_least};

struct Fixture {
    dir: tempfile::TempDir,
    cni: Cni,
}

impl Fixture {
    fn new(list: &str, tuning: Tuning) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["bin", "conf", "cache"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("conf/10-t.conflist"), list).unwrap();
        let cni = Cni::new(Settings {
            conf_dir: dir.path().join("conf"),
            bin_dirs: vec![dir.path().join("bin")],
            cache_dir: dir.path().join("cache"),
            plugin_timeout: Duration::from_secs(10),
            tuning,
        });
        Fixture { dir, cni }
    }

    /// A plugin that logs `<name> <command> id=<CNI_CONTAINERID or unset>
    /// [netns]` and its stdin to `<dir>/log`, then runs `tail`.
    fn plugin(&self, name: &str, tail: &str) {
        let path = self.dir.path().join("bin").join(name);
        let script = format!(
            "#!/bin/sh\ninput=$(cat)\n\
             echo \"{name} $CNI_COMMAND id=${{CNI_CONTAINERID-unset}} [${{CNI_NETNS-unset}}]\" >> {log}\n\
             echo \"$input\" >> {log}\n{tail}\n",
            log = self.log_path().display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.log_path());
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The (call line, stdin JSON) pairs logged so far.
    fn calls(&self) -> Vec<(String, Value)> {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .chunks(2)
            .map(|c| {
                (
                    c[0].to_string(),
                    serde_json::from_str(c.get(1).copied().unwrap_or("null")).unwrap(),
                )
            })
            .collect()
    }
}

const RESULT: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.77.0.9/24","interface":0}]}"#;

fn chain(version: &str, extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"t",{extra}"plugins":[{{"type":"first"}},{{"type":"second"}}]}}"#
    )
}

fn pod(id: &str) -> PodIdentity {
    PodIdentity {
        namespace: "ns".into(),
        name: "p".into(),
        uid: "u".into(),
        sandbox_id: id.into(),
    }
}

/// Both plugins answer ADD with RESULT and succeed at everything else.
fn happy_plugins(f: &Fixture) {
    for name in ["first", "second"] {
        f.plugin(
            name,
            &format!("[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT}'; exit 0"),
        );
    }
}

#[test]
fn versions_gate_the_verbs() {
    for (v, min, want) in [
        ("1.1.0", "1.1.0", true),
        ("1.0.0", "1.1.0", false),
        ("0.4.0", "0.4.0", true),
        ("0.3.1", "0.4.0", false),
        ("1.0.0", "0.4.0", true),
        ("1.10.0", "1.9.0", true),
        ("1.1", "1.1.0", true),
        ("", "0.4.0", false),
        ("one", "0.4.0", false),
        ("1.1.0.1", "0.4.0", false),
    ] {
        assert_eq!(version_at_least(v, min), want, "{v} >= {min}");
    }
}

#[tokio::test]
async fn status_asks_the_plugins_of_a_1_1_network_only() {
    // 1.0.0: STATUS does not exist; the plugins are not run.
    let f = Fixture::new(&chain("1.0.0", ""), Tuning::default());
    happy_plugins(&f);
    f.cni.status().await.unwrap();
    assert_eq!(f.log(), "");

    let f = Fixture::new(&chain("1.1.0", ""), Tuning::default());
    happy_plugins(&f);
    f.cni.status().await.unwrap();
    let calls = f.calls();
    let lines: Vec<&str> = calls.iter().map(|(l, _)| l.as_str()).collect();
    // Both in order, with no per-attachment variables at all.
    assert_eq!(
        lines,
        [
            "first STATUS id=unset [unset]",
            "second STATUS id=unset [unset]"
        ]
    );
    assert_eq!(calls[0].1["name"], "t");
    assert_eq!(calls[0].1["cniVersion"], "1.1.0");
    assert_eq!(calls[0].1["type"], "first");

    // A plugin that says it cannot serve ADD makes the network not ready.
    f.plugin(
        "second",
        "[ \"$CNI_COMMAND\" = STATUS ] && { echo '{\"cniVersion\":\"1.1.0\",\"code\":50,\"msg\":\"no route to the cluster\"}'; echo agent-down >&2; exit 1; }; exit 0",
    );
    let why = f.cni.status().await.unwrap_err();
    assert!(
        why.contains("CNI plugin second STATUS failed: CNI error 50: no route to the cluster; stderr: agent-down"),
        "{why}"
    );
    assert!(why.contains("CNI network \"t\""), "{why}");

    // No config at all is still the config's message.
    std::fs::remove_file(f.dir.path().join("conf/10-t.conflist")).unwrap();
    let why = f.cni.status().await.unwrap_err();
    assert!(why.contains("no valid network config"), "{why}");
}

#[tokio::test]
async fn check_runs_from_the_cache_in_order_with_the_add_result() {
    let f = Fixture::new(&chain("1.0.0", ""), Tuning::default());
    happy_plugins(&f);
    assert_eq!(
        f.cni.check("sbx1", "/proc/1/ns/net").await.unwrap(),
        Checked::Skipped("no CNI result cached for this sandbox".into())
    );
    f.cni
        .setup(&pod("sbx1"), "/proc/1/ns/net", Default::default())
        .await
        .unwrap();
    f.clear_log();
    // The conf directory may change after ADD: CHECK uses the cached config.
    std::fs::remove_file(f.dir.path().join("conf/10-t.conflist")).unwrap();
    assert_eq!(
        f.cni.check("sbx1", "/proc/1/ns/net").await.unwrap(),
        Checked::Passed
    );
    let calls = f.calls();
    let lines: Vec<&str> = calls.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            "first CHECK id=sbx1 [/proc/1/ns/net]",
            "second CHECK id=sbx1 [/proc/1/ns/net]"
        ]
    );
    let result: Value = serde_json::from_str(RESULT).unwrap();
    assert_eq!(calls[0].1["prevResult"], result);
    assert_eq!(calls[1].1["prevResult"], result);

    // Without a namespace there is nothing to check.
    assert!(matches!(
        f.cni.check("sbx1", "").await.unwrap(),
        Checked::Skipped(_)
    ));

    // A plugin that finds the attachment broken: the error says how.
    f.plugin(
        "second",
        "[ \"$CNI_COMMAND\" = CHECK ] && { echo '{\"code\":4,\"msg\":\"eth0 has no address 10.77.0.9\"}'; exit 1; }; exit 0",
    );
    let err = f.cni.check("sbx1", "/proc/1/ns/net").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("CNI plugin second CHECK failed: CNI error 4: eth0 has no address 10.77.0.9"),
        "{err}"
    );
}

#[tokio::test]
async fn check_is_skipped_before_0_4_0_and_with_disable_check() {
    for (list, why) in [
        (chain("0.3.1", ""), "CNI version 0.3.1 has no CHECK"),
        (
            chain("1.0.0", r#""disableCheck":true,"#),
            "the network config sets disableCheck",
        ),
    ] {
        let f = Fixture::new(&list, Tuning::default());
        happy_plugins(&f);
        f.cni
            .setup(&pod("sbx1"), "/proc/1/ns/net", Default::default())
            .await
            .unwrap();
        f.clear_log();
        assert_eq!(
            f.cni.check("sbx1", "/proc/1/ns/net").await.unwrap(),
            Checked::Skipped(why.into())
        );
        assert_eq!(f.log(), "", "no plugin runs");
    }
}

/// A cache entry as another runtime (or docker-cri) would have left it.
fn cached(f: &Fixture, id: &str, network: &str, ours: bool) {
    let raw: Value =
        serde_json::from_str(&chain("1.1.0", "").replace("\"t\"", &format!("\"{network}\"")))
            .unwrap();
    cache::write(
        &f.cache_dir(),
        &CachedInfo {
            kind: cache::KIND.into(),
            container_id: id.into(),
            config: CachedInfo::encode_config(&raw),
            if_name: "eth0".into(),
            network_name: network.into(),
            cni_args: vec![],
            capability_args: Default::default(),
            result: serde_json::from_str(RESULT).ok(),
            docker_cri: ours,
        },
    )
    .unwrap();
}

fn entries(f: &Fixture) -> Vec<String> {
    cache::all(&f.cache_dir())
        .into_iter()
        .map(|(_, i)| i.unwrap().container_id)
        .collect()
}

#[tokio::test]
async fn gc_deletes_only_its_own_stale_entries_then_tells_plugins_what_is_valid() {
    let f = Fixture::new(&chain("1.1.0", ""), Tuning::default());
    happy_plugins(&f);
    cached(&f, "gone", "t", true);
    cached(&f, "live", "t", true);
    cached(&f, "foreign", "t", false);
    cached(&f, "oldnet", "other", true);
    let known = || async { Ok(HashSet::from(["live".to_string()])) };
    let report = f.cni.gc(known).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut deleted = report.deleted.clone();
    deleted.sort();
    // Stale entries of any network docker-cri used go, with their own config.
    assert_eq!(deleted, ["gone", "oldnet"]);
    assert!(report.plugins_collected);
    let mut left = entries(&f);
    left.sort();
    assert_eq!(left, ["foreign", "live"]);

    let calls = f.calls();
    let dels: Vec<&str> = calls
        .iter()
        .map(|(l, _)| l.as_str())
        .filter(|l| l.contains(" DEL "))
        .collect();
    assert!(dels.contains(&"second DEL id=gone []"), "{dels:?}");
    assert!(dels.contains(&"first DEL id=oldnet []"), "{dels:?}");
    assert!(
        !dels
            .iter()
            .any(|l| l.contains("live") || l.contains("foreign"))
    );
    let gcs: Vec<&(String, Value)> = calls.iter().filter(|(l, _)| l.contains(" GC ")).collect();
    assert_eq!(gcs.len(), 2, "{calls:?}");
    assert_eq!(gcs[0].0, "first GC id=unset [unset]");
    let valid = json!([
        {"containerID": "foreign", "ifname": "eth0"},
        {"containerID": "live", "ifname": "eth0"}
    ]);
    assert_eq!(gcs[1].1["cni.dev/valid-attachments"], valid);
    assert_eq!(gcs[1].1["cni.dev/attachments"], valid);
    assert_eq!(gcs[1].1["name"], "t");
    assert_eq!(gcs[1].1["cniVersion"], "1.1.0");
}

#[tokio::test]
async fn gc_of_a_1_0_network_only_deletes_and_a_failed_del_stops_the_plugins_gc() {
    let f = Fixture::new(&chain("1.0.0", ""), Tuning::default());
    happy_plugins(&f);
    cached(&f, "gone", "t", true);
    let report = f.cni.gc(|| async { Ok(HashSet::new()) }).await.unwrap();
    assert_eq!(report.deleted, ["gone"]);
    assert!(!report.plugins_collected);
    assert!(!f.log().contains(" GC "), "{}", f.log());

    let f = Fixture::new(&chain("1.1.0", ""), Tuning::default());
    happy_plugins(&f);
    f.plugin(
        "first",
        "[ \"$CNI_COMMAND\" = DEL ] && { echo '{\"code\":11,\"msg\":\"busy\"}'; exit 1; }; exit 0",
    );
    cached(&f, "gone", "t", true);
    let report = f.cni.gc(|| async { Ok(HashSet::new()) }).await.unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("CNI error 11: busy"),
        "{:?}",
        report.errors
    );
    assert!(!report.plugins_collected);
    assert!(!f.log().contains(" GC "), "{}", f.log());
    assert_eq!(entries(&f), ["gone"], "kept for the next pass");
}

#[test]
fn hairpin_and_mtu_flags_parse_as_cri_dockerd_takes_them() {
    assert_eq!(HairpinMode::parse(""), Ok(None));
    assert_eq!(
        HairpinMode::parse("hairpin-veth"),
        Ok(Some(HairpinMode::HairpinVeth))
    );
    assert_eq!(
        HairpinMode::parse("promiscuous-bridge"),
        Ok(Some(HairpinMode::PromiscuousBridge))
    );
    assert_eq!(HairpinMode::parse("none"), Ok(Some(HairpinMode::None)));
    assert!(
        HairpinMode::parse("veth")
            .unwrap_err()
            .contains("hairpin-veth")
    );
    assert_eq!(parse_mtu("0"), Ok(None));
    assert_eq!(parse_mtu("1450"), Ok(Some(1450)));
    for bad in ["-1", "abc", "67", "65536", ""] {
        assert!(parse_mtu(bad).is_err(), "{bad}");
    }
}

const TUNED: &str = r#"{"cniVersion":"1.0.0","name":"n","plugins":[
    {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
    {"type":"ptp","mtu":9000},
    {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

fn tuned(tuning: Tuning) -> NetworkList {
    let mut list = NetworkList::parse(Path::new("x.conflist"), TUNED, true).unwrap();
    tuning.apply(&mut list);
    list
}

#[test]
fn tuning_fills_fields_the_config_leaves_out() {
    let list = tuned(Tuning {
        hairpin: Some(HairpinMode::HairpinVeth),
        mtu: Some(1400),
    });
    assert_eq!(list.plugins[0]["hairpinMode"], true);
    assert_eq!(list.plugins[0]["mtu"], 1400);
    // The config's own MTU wins; plugins without the field get nothing.
    assert_eq!(list.plugins[1]["mtu"], 9000);
    assert!(list.plugins[1].get("hairpinMode").is_none());
    assert_eq!(
        list.plugins[2],
        json!({"type":"portmap","capabilities":{"portMappings":true}})
    );
    // What the cache keeps is the tuned chain.
    assert_eq!(list.raw["plugins"], Value::Array(list.plugins.clone()));

    // promiscuous-bridge is hairpin-veth outside kubenet, as in dockershim.
    let list = tuned(Tuning {
        hairpin: Some(HairpinMode::PromiscuousBridge),
        mtu: None,
    });
    assert_eq!(list.plugins[0]["hairpinMode"], true);
    assert!(list.plugins[0].get("mtu").is_none());
    assert!(list.plugins[0].get("promiscMode").is_none());

    // none, or no flags: the configs as written.
    let plain = NetworkList::parse(Path::new("x.conflist"), TUNED, true).unwrap();
    for t in [
        Tuning {
            hairpin: Some(HairpinMode::None),
            mtu: None,
        },
        Tuning::default(),
    ] {
        assert_eq!(tuned(t), plain);
    }
    // An explicit hairpinMode false in the config stays false.
    let text = TUNED.replace(
        "\"bridge\":\"cni0\"",
        "\"bridge\":\"cni0\",\"hairpinMode\":false",
    );
    let mut list = NetworkList::parse(Path::new("x.conflist"), &text, true).unwrap();
    Tuning {
        hairpin: Some(HairpinMode::HairpinVeth),
        mtu: None,
    }
    .apply(&mut list);
    assert_eq!(list.plugins[0]["hairpinMode"], false);
}

#[tokio::test]
async fn add_del_and_check_see_the_tuned_config() {
    let list =
        r#"{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"bridge"},{"type":"second"}]}"#;
    let f = Fixture::new(
        list,
        Tuning {
            hairpin: Some(HairpinMode::HairpinVeth),
            mtu: Some(1300),
        },
    );
    for name in ["bridge", "second"] {
        f.plugin(
            name,
            &format!("[ \"$CNI_COMMAND\" = ADD ] && echo '{RESULT}'; exit 0"),
        );
    }
    f.cni
        .setup(&pod("sbx1"), "/proc/1/ns/net", Default::default())
        .await
        .unwrap();
    f.cni.check("sbx1", "/proc/1/ns/net").await.unwrap();
    assert!(f.cni.teardown("sbx1", "").await.unwrap());
    let bridge: Vec<(String, Value)> = f
        .calls()
        .into_iter()
        .filter(|(l, _)| l.starts_with("bridge "))
        .collect();
    let commands: Vec<&str> = bridge
        .iter()
        .map(|(l, _)| l.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(commands, ["ADD", "CHECK", "DEL"]);
    for (line, stdin) in &bridge {
        assert_eq!(stdin["mtu"], 1300, "{line}");
        assert_eq!(stdin["hairpinMode"], true, "{line}");
    }
    let second = f
        .calls()
        .into_iter()
        .find(|(l, _)| l.starts_with("second ADD"));
    assert!(second.unwrap().1.get("mtu").is_none());
}
