//! Image volumes (`Mount.image`) through the real binary. Before Docker 28
//! docker-cri unpacks the image once and binds it read-only, nosuid and
//! nodev (binaries in it run, as critest wants); ContainerStatus reports it
//! as an image volume; RemoveImage refuses an image in use; the copy goes
//! with the last container using it.

mod common;

use std::path::{Path, PathBuf};

use common::pod::Pod;
use common::{Server, TestImage, image_spec, unique};
use docker_cri::api;
use tonic::Code;

/// Unmounts whatever a failed test left mounted under the server's root,
/// so its temporary directory can go.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let root = self.0.display().to_string();
        for line in info.lines() {
            if let Some(point) = line.split(' ').nth(4)
                && point.starts_with(&root)
            {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(point)
                    .status();
            }
        }
    }
}

async fn docker_api() -> (u32, u32) {
    let v = common::docker()
        .await
        .version()
        .await
        .unwrap()
        .api_version
        .unwrap_or_default();
    let (a, b) = v.split_once('.').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn image_mount(path: &str, image: &str, sub: &str) -> api::Mount {
    api::Mount {
        container_path: path.into(),
        image: image_spec(image),
        image_sub_path: sub.into(),
        readonly: true,
        ..Default::default()
    }
}

async fn sh(pod: &mut Pod, id: &str, script: &str) -> (i32, String) {
    let out = pod
        .rt
        .exec_sync(api::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 20,
        })
        .await
        .unwrap()
        .into_inner();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.exit_code, text)
}

fn unpacked(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("image-volumes"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn image_volumes_are_read_only_noexec_and_held_against_removal() {
    if docker_api().await >= (1, 48) {
        eprintln!("skipped: Docker 28 mounts images itself");
        return;
    }
    let server = Server::start(&[]).await;
    let root = server.dir.path().join("root");
    let _unmount = Unmount(root.clone());
    let mut pod = Pod::new(&server).await;
    let volume = TestImage::busybox_with(&format!("LABEL volume=\"{}\"\n", unique("v"))).await;

    let mut config = pod.ctr("app", "sleep 600");
    config.mounts = vec![
        image_mount("/vol", &volume.name, ""),
        image_mount("/sub", &volume.name, "bin"),
    ];
    let first = pod.create(&config).await.unwrap();
    pod.start(&first).await.unwrap();

    let (code, out) = sh(&mut pod, &first, "ls /vol/bin/busybox /sub/busybox").await;
    assert_eq!(code, 0, "{out}");
    let (_, out) = sh(&mut pod, &first, "grep ' /vol ' /proc/self/mountinfo").await;
    let options = out.split(' ').nth(5).unwrap_or_default().to_string();
    for flag in ["ro", "nosuid", "nodev"] {
        assert!(options.split(',').any(|o| o == flag), "{flag} in {out}");
    }
    assert!(!options.split(',').any(|o| o == "noexec"), "{out}");
    let (_, out) = sh(&mut pod, &first, "/vol/bin/busybox echo ran; echo exit=$?").await;
    assert!(out.contains("ran\nexit=0"), "{out}");
    let (code, out) = sh(&mut pod, &first, "touch /vol/new").await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");

    // Status: the image volumes as such, by image ID (PullImage's answer).
    let status = pod.status(&first).await.unwrap();
    let mut seen: Vec<(String, String, String, bool)> = status
        .mounts
        .iter()
        .filter(|m| m.image.is_some())
        .map(|m| {
            let image = m.image.clone().unwrap();
            assert_eq!(image.image, image.image_ref);
            (
                m.container_path.clone(),
                image.image_ref,
                m.image_sub_path.clone(),
                m.readonly && m.host_path.is_empty(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("/sub".into(), volume.id.clone(), "bin".into(), true),
            ("/vol".into(), volume.id.clone(), String::new(), true),
        ]
    );

    // One copy per image, shared by a second container.
    let mut config2 = pod.ctr("other", "sleep 600");
    config2.mounts = vec![image_mount("/vol", &volume.name, "")];
    let second = pod.create(&config2).await.unwrap();
    let copies = unpacked(&root);
    assert_eq!(
        copies,
        vec![volume.id.trim_start_matches("sha256:").to_string()]
    );

    // In use: RemoveImage refuses, naming the users.
    let mut images = server.images().await;
    let err = images
        .remove_image(api::RemoveImageRequest {
            image: image_spec(&volume.name),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("in use as an image volume"),
        "{err:?}"
    );
    assert!(err.message().contains(&first) && err.message().contains(&second));

    // Bad requests.
    let mut bad = pod.ctr("bad", "true");
    bad.mounts = vec![image_mount("/vol", &volume.name, "../..")];
    assert_eq!(
        pod.create(&bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    bad.mounts = vec![image_mount("/vol", &volume.name, "no/such/dir")];
    assert_eq!(
        pod.create(&bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // A failed create of a container unpacking a fresh image leaves no copy.
    let other = TestImage::busybox_with(&format!("LABEL other=\"{}\"\n", unique("o"))).await;
    bad.mounts = vec![image_mount("/vol", &other.name, "no/such/dir")];
    assert_eq!(
        pod.create(&bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(unpacked(&root).len(), 1, "{:?}", unpacked(&root));
    bad.mounts = vec![api::Mount {
        readonly: false,
        ..image_mount("/vol", &volume.name, "")
    }];
    assert_eq!(
        pod.create(&bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    bad.mounts = vec![image_mount("/vol", "docker-cri-test/absent:never", "")];
    assert_eq!(pod.create(&bad).await.unwrap_err().code(), Code::NotFound);

    // The copy goes with the last container binding it.
    pod.stop(&first, 0).await.unwrap();
    pod.remove(&first).await.unwrap();
    assert_eq!(unpacked(&root).len(), 1, "still used by the second");
    pod.remove(&second).await.unwrap();
    assert!(unpacked(&root).is_empty(), "{:?}", unpacked(&root));
    images
        .remove_image(api::RemoveImageRequest {
            image: image_spec(&volume.name),
        })
        .await
        .unwrap();
    assert!(!common::image_exists(&volume.name).await);
}

/// Force-removes the listed containers on drop, also when a test fails.
struct RemoveContainers(Vec<String>);

impl Drop for RemoveContainers {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.0);
        common::block_on_aside(async move {
            for id in &ids {
                common::force_remove(id).await;
            }
        });
    }
}

/// A never-started container of `image`, as a killed export leaves one,
/// with `labels`; returns its ID.
async fn created_container(image: &TestImage, labels: &[(&str, &str)]) -> String {
    common::docker()
        .await
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&unique("docker-cri-test-export"))
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(image.id.clone()),
                entrypoint: Some(vec!["/docker-cri-image-volume".into()]),
                cmd: Some(Vec::new()),
                network_disabled: Some(true),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id
}

async fn container_exists(id: &str) -> bool {
    common::docker()
        .await
        .inspect_container(id, None)
        .await
        .is_ok()
}

#[tokio::test]
async fn startup_sweeps_old_leftover_export_containers_only() {
    const LABEL: &str = "io.docker-cri.image-volume-export";
    let image = TestImage::busybox(None).await;
    let mut guard = RemoveContainers(Vec::new());
    let old = created_container(&image, &[(LABEL, &image.id)]).await;
    guard.0.push(old.clone());
    let unlabelled = created_container(&image, &[]).await;
    guard.0.push(unlabelled.clone());
    // Not 0 s: a sweep that young would take the export containers of
    // tests running alongside (or of another run on this dockerd). Docker
    // reports Created in whole seconds.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let young = created_container(&image, &[(LABEL, &image.id)]).await;
    guard.0.push(young.clone());

    let server = Server::start(&["--image-volume-export-sweep-age", "5s"]).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while container_exists(&old).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "leftover export container {old} still there: {}",
            server.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        container_exists(&unlabelled).await,
        "unlabelled container removed"
    );
    assert!(
        container_exists(&young).await,
        "young export container removed"
    );
    let log = server.log_text();
    assert!(
        log.contains("leftover image volume export container removed"),
        "{log}"
    );
    drop(server);
}
