//! The binary as an operator runs it: socket handling, signals, bad config.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::Server;
use docker_cri::api;

#[tokio::test]
async fn socket_is_0660_and_removed_on_sigterm() {
    let mut server = Server::start(&[]).await;
    let mode = std::fs::metadata(&server.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!server.socket.exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn a_second_server_on_a_live_socket_is_refused() {
    let server = Server::start(&[]).await;
    let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .arg("--container-runtime-endpoint")
        .arg(format!("unix://{}", server.socket.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already listening"), "{stderr}");
    // The first server still answers.
    server
        .runtime()
        .await
        .version(api::VersionRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut child = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .arg("--container-runtime-endpoint")
        .arg(format!("unix://{}", path.display()))
        .spawn()
        .unwrap();
    let mut connected = false;
    for _ in 0..200 {
        if let Ok(channel) = docker_cri::client::connect(&path).await {
            let mut c = docker_cri::client::runtime_client(channel);
            if c.version(api::VersionRequest::default()).await.is_ok() {
                connected = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected, "server took over the stale socket");
}

#[test]
fn invalid_settings_fail_at_startup_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "runtime_request_timeout = \"forever\"\n").unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "no_such_setting = 1\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--runtime-request-timeout".into(), "soon".into()],
            "runtime-request-timeout",
        ),
        (
            vec!["--docker-endpoint".into(), "tcp://1.2.3.4:2375".into()],
            "docker-endpoint",
        ),
        (vec!["--log-level".into(), "chatty".into()], "log-level"),
        (
            vec!["--config".into(), bad_file.display().to_string()],
            "runtime-request-timeout",
        ),
        (
            vec!["--config".into(), unknown_key.display().to_string()],
            "no_such_setting",
        ),
    ];
    for (args, setting) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(setting), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn pause_image_subcommand_builds_offline() {
    let tag = format!("docker-cri-test/{}:3.10", common::unique("pause"));
    let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .args(["pause-image", "--tag", &tag])
        .arg(format!(
            "--docker-endpoint=unix://{}",
            crate::common::docker_socket()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let docker = common::docker().await;
    let image = docker.inspect_image(&tag).await.unwrap();
    assert_eq!(image.id.as_deref(), Some(id.as_str()));
    let config = image.config.unwrap();
    assert_eq!(config.entrypoint, Some(vec!["/pause".to_string()]));
    common::remove_image_quietly(&tag).await;
}

#[tokio::test]
async fn json_log_format() {
    let server = Server::start(&["--log-format", "json", "--log-level", "debug"]).await;
    server
        .runtime()
        .await
        .version(api::VersionRequest::default())
        .await
        .unwrap();
    let log = server.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}
