//! docker-cri started the way systemd starts it: the listening socket
//! passed as fd 3 with LISTEN_PID/LISTEN_FDS, readiness and stopping
//! reported on NOTIFY_SOCKET, and cri-dockerd's packaged ExecStart line.

mod common;

use std::os::fd::AsFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use docker_cri::api;

fn recv(notify: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = notify
        .recv(&mut buf)
        .expect("a notification from docker-cri");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn socket_activation_with_cri_dockerds_exec_start_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cri-docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let log = dir.path().join("docker-cri.log");

    // LISTEN_PID must be the server's own PID: the shell's, kept by exec.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_docker-cri"))
        // cri-dockerd's packaged unit: ExecStart=... --container-runtime-endpoint fd:// --network-plugin=
        .args(["--container-runtime-endpoint", "fd://", "--network-plugin="])
        .arg(format!(
            "--docker-endpoint=unix://{}",
            common::docker_socket()
        ))
        .arg(format!(
            "--root-directory={}",
            dir.path().join("root").display()
        ))
        .arg(format!(
            "--pod-infra-container-image={}",
            common::test_pause_image()
        ))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "cri-docker.socket")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: listener.as_fd().try_clone_to_owned().unwrap(),
        child_fd: 3,
    }])
    .unwrap();
    let mut child = cmd.spawn().unwrap();

    let ready = tokio::task::spawn_blocking({
        let notify = notify.try_clone().unwrap();
        move || recv(&notify)
    })
    .await
    .unwrap();
    assert_eq!(
        ready,
        "READY=1",
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // CRI calls over the inherited socket, as crictl would make them.
    let channel = docker_cri::client::connect(&socket).await.unwrap();
    let mut rt = docker_cri::client::runtime_client(channel);
    let version = rt
        .version(api::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_api_version, "v1");
    let status = rt
        .status(api::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    assert!(status.info["config"].contains("fd://"), "{:?}", status.info);
    rt.list_pod_sandbox(api::ListPodSandboxRequest::default())
        .await
        .unwrap();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopping = tokio::task::spawn_blocking(move || recv(&notify))
        .await
        .unwrap();
    assert_eq!(stopping, "STOPPING=1");
    assert!(child.wait().unwrap().success());
    // The socket is systemd's: docker-cri leaves it for the next start.
    assert!(socket.exists());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log_text.contains("no effect yet") && !log_text.contains("not implemented yet"),
        "an empty --network-plugin is Docker networking, as in cri-dockerd: {log_text}"
    );
}

#[tokio::test]
async fn unacted_cri_dockerd_flags_warn_and_fd_without_systemd_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .args([
            "--container-runtime-endpoint",
            "fd://",
            "--network-plugin=cni",
            "--cni-bin-dir=/opt/cni/bin",
            "--hairpin-mode=hairpin-veth",
            "--runtime-cgroups=/docker-cri",
        ])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    // The CNI flags act now: no warning for them.
    assert!(!text.contains("--network-plugin"), "{text}");
    assert!(!text.contains("--cni-bin-dir"), "{text}");
    assert!(!text.contains("--hairpin-mode"), "{text}");
    assert!(text.contains("--runtime-cgroups is accepted"), "{text}");
    assert!(text.contains("needs systemd socket activation"), "{text}");
}
