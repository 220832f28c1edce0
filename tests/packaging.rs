//! The systemd units and the cri-dockerd drop-in pass `systemd-analyze
//! verify` (Debian's systemd package), with ExecStart pointing at the
//! binary under test.

use std::path::Path;
use std::process::Command;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/systemd");

/// Copies a unit with `/usr/bin/docker-cri` replaced by the built binary
/// (verify checks that ExecStart is executable).
fn install(from: &Path, to: &Path) {
    let text = std::fs::read_to_string(from).unwrap();
    std::fs::write(
        to,
        text.replace("/usr/bin/docker-cri", env!("CARGO_BIN_EXE_docker-cri")),
    )
    .unwrap();
}

fn verify(unit_path: &Path, units: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(units)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", unit_path.display()))
        .current_dir(unit_path)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

#[test]
fn docker_cri_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["docker-cri.service", "docker-cri.socket"] {
        install(&Path::new(UNITS).join(unit), &dir.path().join(unit));
    }
    let (ok, text) = verify(dir.path(), &["./docker-cri.socket", "./docker-cri.service"]);
    assert!(ok, "{text}");
    let service = std::fs::read_to_string(Path::new(UNITS).join("docker-cri.service")).unwrap();
    // Stopping docker-cri must never stop containers.
    assert!(service.contains("\nKillMode=process\n"), "{service}");
    assert!(service.contains("\nType=notify\n"), "{service}");
    assert!(
        service.contains("--container-runtime-endpoint fd://"),
        "{service}"
    );
}

#[test]
fn cri_dockerd_drop_in_verifies_and_replaces_exec_start() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for cri-dockerd's packaged unit pair.
    std::fs::write(
        dir.path().join("cri-docker.service"),
        "[Unit]\nRequires=cri-docker.socket\n[Service]\nType=notify\n\
         ExecStart=/nonexistent/cri-dockerd --container-runtime-endpoint fd://\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cri-docker.socket"),
        "[Socket]\nListenStream=/run/cri-docker.sock\n",
    )
    .unwrap();
    let drop_in = dir.path().join("cri-docker.service.d");
    std::fs::create_dir(&drop_in).unwrap();
    install(
        &Path::new(UNITS).join("cri-docker.service.d/docker-cri.conf"),
        &drop_in.join("docker-cri.conf"),
    );
    // Without the drop-in the stand-in's ExecStart does not exist: passing
    // shows the drop-in replaced it.
    let (ok, text) = verify(dir.path(), &["cri-docker.service"]);
    assert!(ok, "{text}");
    std::fs::remove_file(drop_in.join("docker-cri.conf")).unwrap();
    let (ok, text) = verify(dir.path(), &["cri-docker.service"]);
    assert!(!ok && text.contains("/nonexistent/cri-dockerd"), "{text}");
}
