//! `docker-cri check` against the real dockerd: OK on this host, FAIL (and
//! a non-zero exit) for what would stop pods from running.

mod common;

use std::process::Command;

fn check(docker_socket: &str, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .arg(format!("--docker-endpoint=unix://{docker_socket}"))
        .arg(format!(
            "--container-runtime-endpoint=unix://{}",
            dir.path().join("cri.sock").display()
        ))
        .arg(format!(
            "--root-directory={}",
            dir.path().join("root").display()
        ))
        .arg(format!(
            "--pod-infra-container-image={}",
            common::test_pause_image()
        ))
        .arg("--runtime-request-timeout=3s")
        .arg("check")
        .arg(format!(
            "--pod-log-directory={}",
            dir.path().join("pods").display()
        ))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| {
            l.get(5..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| panic!("no {name} line in\n{report}"))
}

#[test]
fn a_working_host_passes() {
    let (ok, report) = check(&common::docker_socket(), &[]);
    assert!(ok, "{report}");
    assert!(line(&report, "docker").starts_with("OK"), "{report}");
    assert!(line(&report, "docker").contains("API 1."), "{report}");
    assert!(line(&report, "pause image").starts_with("OK"), "{report}");
    assert!(line(&report, "log directory").starts_with("OK"), "{report}");
    assert!(line(&report, "socket").starts_with("OK"), "{report}");
    assert!(
        line(&report, "cgroup version").starts_with("OK"),
        "{report}"
    );
}

#[test]
fn a_cgroup_driver_mismatch_fails() {
    let docker_driver =
        if line(&check(&common::docker_socket(), &[]).1, "cgroup driver").contains("systemd") {
            "systemd"
        } else {
            "cgroupfs"
        };
    let other = if docker_driver == "systemd" {
        "cgroupfs"
    } else {
        "systemd"
    };
    let (ok, report) = check(&common::docker_socket(), &["--cgroup-driver", other]);
    assert!(!ok, "{report}");
    assert!(
        line(&report, "cgroup driver").starts_with("FAIL"),
        "{report}"
    );
    let (ok, report) = check(
        &common::docker_socket(),
        &["--cgroup-driver", docker_driver],
    );
    assert!(ok, "{report}");
}

#[test]
fn no_docker_fails_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("no-docker.sock");
    let (ok, report) = check(absent.to_str().unwrap(), &[]);
    assert!(!ok, "{report}");
    let docker = line(&report, "docker");
    assert!(docker.starts_with("FAIL"), "{report}");
    assert!(docker.contains("start dockerd"), "{report}");
}
