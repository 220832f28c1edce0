//! ExecSync latency and exec stream throughput, docker-cri beside Docker's
//! own exec API on the same container.
//!
//!     cargo run --release --example exec_bench -- [ITERATIONS] [MIB]
//!
//! Starts docker-cri in-process on a temporary socket, builds a busybox
//! image from the host's /bin/busybox (Debian busybox-static), runs one pod
//! with a `sleep` container, then measures:
//! - ExecSync `true` round trips (p50/p99) beside the same exec done
//!   directly through Docker (create + start + inspect);
//! - MIB MiB pushed through `cat` over a v5 WebSocket session (stdin in,
//!   stdout back) beside the same through Docker's hijacked exec stream.
//!
//! Removes everything it created.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use docker_cri::api;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use docker_cri::client;
use docker_cri::config::Config;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type BoxError = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);

    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("cri.sock");
    let config = Config {
        listen: docker_cri::config::Listen::Unix(socket.clone()),
        root_directory: dir.path().join("root"),
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(docker_cri::server::serve(config, async {
        let _ = stop_rx.await;
    }));
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let docker = bollard::Docker::connect_with_unix_defaults()?;
    let image = format!("docker-cri-bench/busybox:{}", std::process::id());
    build_busybox(&docker, &image).await?;
    let mut rt = client::runtime_client(client::connect(&socket).await?);

    let uid = format!("exec-bench-{}", std::process::id());
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "exec-bench".into(),
            namespace: "docker-cri-bench".into(),
            uid,
            attempt: 0,
        }),
        ..Default::default()
    };
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let result = measure(
        &mut rt,
        &docker,
        &sandbox,
        &sandbox_config,
        &image,
        iterations,
        mib,
    )
    .await;

    let _ = rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await;
    let _ = rt
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await;
    let _ = docker
        .remove_image(
            &image,
            Some(
                bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
            None,
        )
        .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    result
}

async fn measure(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    docker: &bollard::Docker,
    sandbox: &str,
    sandbox_config: &api::PodSandboxConfig,
    image: &str,
    iterations: usize,
    mib: usize,
) -> Result<(), BoxError> {
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.to_string(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "3600".into()],
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: container.clone(),
    })
    .await?;

    // ExecSync `true` vs. Docker's create + start + inspect.
    let mut ours = Vec::with_capacity(iterations);
    let mut theirs = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let r = rt
            .exec_sync(api::ExecSyncRequest {
                container_id: container.clone(),
                cmd: vec!["true".into()],
                timeout: 10,
            })
            .await?
            .into_inner();
        ours.push(t.elapsed());
        assert_eq!(r.exit_code, 0);
        let t = Instant::now();
        docker_exec_true(docker, &container).await?;
        theirs.push(t.elapsed());
    }
    println!("ExecSync `true` ({iterations} round trips):");
    report("  docker-cri ExecSync", &mut ours);
    report("  docker exec API   ", &mut theirs);

    // Throughput through `cat`.
    let total = mib * 1024 * 1024;
    let chunk = vec![b'x'; 256 * 1024];
    let url = rt
        .exec(api::ExecRequest {
            container_id: container.clone(),
            cmd: vec!["cat".into()],
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .url;
    let mut request = url.replacen("http://", "ws://", 1).into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v5.channel.k8s.io".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut sink, mut stream) = ws.split();
    let t = Instant::now();
    let writer = async {
        let mut sent = 0;
        while sent < total {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(0u8);
            frame.extend_from_slice(&chunk);
            sink.send(Message::binary(frame)).await?;
            sent += chunk.len();
        }
        sink.send(Message::binary(vec![255u8, 0])).await?;
        Ok::<_, BoxError>(sink)
    };
    let reader = async {
        let mut got = 0usize;
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Binary(b) = m
                && b.first() == Some(&1)
            {
                got += b.len() - 1;
            }
        }
        got
    };
    let (sink, got) = tokio::join!(writer, reader);
    drop(sink?);
    let ws_secs = t.elapsed().as_secs_f64();
    assert_eq!(got, total, "everything came back through cat");

    let t = Instant::now();
    let exec = docker
        .create_exec(
            &container,
            CreateExecOptions {
                cmd: Some(vec!["cat"]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                ..Default::default()
            },
        )
        .await?
        .id;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker.start_exec(&exec, None).await?
    else {
        return Err("docker detached the exec".into());
    };
    let writer = async {
        let mut sent = 0;
        while sent < total {
            input.write_all(&chunk).await?;
            sent += chunk.len();
        }
        input.shutdown().await?;
        Ok::<_, BoxError>(())
    };
    let reader = async {
        let mut got = 0usize;
        while let Some(Ok(item)) = output.next().await {
            got += item.into_bytes().len();
        }
        got
    };
    let (w, got) = tokio::join!(writer, reader);
    w?;
    let docker_secs = t.elapsed().as_secs_f64();
    assert_eq!(got, total);
    println!("{mib} MiB through `cat` (stdin in, stdout back):");
    println!(
        "  docker-cri WebSocket v5: {ws_secs:.2} s, {:.0} MiB/s",
        mib as f64 / ws_secs
    );
    println!(
        "  docker exec stream     : {docker_secs:.2} s, {:.0} MiB/s",
        mib as f64 / docker_secs
    );
    Ok(())
}

async fn docker_exec_true(docker: &bollard::Docker, container: &str) -> Result<(), BoxError> {
    let id = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(vec!["true"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?
        .id;
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&id, None).await? {
        while output.next().await.is_some() {}
    }
    docker.inspect_exec(&id).await?;
    Ok(())
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
}

async fn build_busybox(docker: &bollard::Docker, name: &str) -> Result<(), BoxError> {
    let busybox = std::fs::read("/bin/busybox")
        .map_err(|e| format!("/bin/busybox (Debian busybox-static) is needed: {e}"))?;
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
                      RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("busybox", busybox.as_slice(), 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data)?;
    }
    let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
        .t(name)
        .rm(true)
        .build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(tar.into_inner()?.into())),
    );
    while let Some(item) = stream.next().await {
        if let Some(err) = item?.error_detail.and_then(|d| d.message) {
            return Err(err.into());
        }
    }
    Ok(())
}
