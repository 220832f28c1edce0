//! ImageService against the real dockerd through the real binary.

mod common;

use std::time::{Duration, Instant};

use common::{Registry, Server, TestImage, image_exists, image_spec, unique};
use docker_cri::api;
use tonic::Code;

fn status_req(name: &str) -> api::ImageStatusRequest {
    api::ImageStatusRequest {
        image: image_spec(name),
        verbose: false,
    }
}

fn remove_req(name: &str) -> api::RemoveImageRequest {
    api::RemoveImageRequest {
        image: image_spec(name),
    }
}

fn pull_req(name: &str, auth: Option<api::AuthConfig>) -> api::PullImageRequest {
    api::PullImageRequest {
        image: image_spec(name),
        auth,
        sandbox_config: None,
    }
}

#[tokio::test]
async fn image_status_by_tag_id_and_short_id() {
    let image = TestImage::busybox(Some("1234:5678")).await;
    let server = Server::start(&[]).await;
    let mut images = server.images().await;

    let by_tag = images
        .image_status(status_req(&image.name))
        .await
        .unwrap()
        .into_inner()
        .image
        .expect("image by tag");
    assert_eq!(by_tag.id, image.id);
    assert_eq!(by_tag.repo_tags, vec![image.name.clone()]);
    assert_eq!(by_tag.uid, Some(api::Int64Value { value: 1234 }));
    assert!(by_tag.username.is_empty());
    assert!(by_tag.size > 0);
    assert_eq!(by_tag.spec.as_ref().unwrap().image, image.id);

    let short = &image.id["sha256:".len().."sha256:".len() + 12];
    for name in [image.id.as_str(), short] {
        let found = images
            .image_status(status_req(name))
            .await
            .unwrap()
            .into_inner()
            .image
            .unwrap_or_else(|| panic!("image by {name}"));
        assert_eq!(found.id, image.id);
    }

    let verbose = images
        .image_status(api::ImageStatusRequest {
            image: image_spec(&image.name),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&verbose.info["info"]).unwrap();
    assert_eq!(info["config"]["user"], "1234:5678");
}

#[tokio::test]
async fn named_user_is_reported_as_username() {
    let image = TestImage::busybox(Some("nobody:nogroup")).await;
    let server = Server::start(&[]).await;
    let img = server
        .images()
        .await
        .image_status(status_req(&image.name))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(img.username, "nobody");
    assert!(img.uid.is_none());
}

#[tokio::test]
async fn absent_image_is_nil_not_an_error() {
    let server = Server::start(&[]).await;
    let name = format!("docker-cri-test/{}:none", unique("absent"));
    let resp = server
        .images()
        .await
        .image_status(status_req(&name))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.image.is_none());
}

#[tokio::test]
async fn list_images_with_and_without_filter() {
    let image = TestImage::busybox(None).await;
    let server = Server::start(&[]).await;
    let mut images = server.images().await;

    let all = images
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    let mine = all.iter().find(|i| i.id == image.id).expect("listed");
    assert_eq!(mine.repo_tags, vec![image.name.clone()]);

    let filtered = images
        .list_images(api::ListImagesRequest {
            filter: Some(api::ImageFilter {
                image: image_spec(&image.name),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].id, image.id);

    let none = images
        .list_images(api::ListImagesRequest {
            filter: Some(api::ImageFilter {
                image: image_spec(&format!("docker-cri-test/{}", unique("nothing"))),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert!(none.is_empty());

    let bad = images
        .list_images(api::ListImagesRequest {
            filter: Some(api::ImageFilter {
                image: image_spec("Not A Reference"),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn sandbox_image_is_pinned() {
    let image = TestImage::busybox(None).await;
    let pause_name = format!("docker-cri-test/{}:3.10", unique("pause"));
    image.tag(&pause_name).await;
    let server = Server::start(&["--pod-infra-container-image", &pause_name]).await;
    let mut images = server.images().await;
    let pinned = images
        .image_status(status_req(&pause_name))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert!(pinned.pinned);
    let listed = images
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert!(listed.iter().find(|i| i.id == image.id).unwrap().pinned);

    let other = TestImage::busybox(None).await;
    let not_pinned = images
        .image_status(status_req(&other.name))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert!(!not_pinned.pinned);
}

#[tokio::test]
async fn remove_image_removes_every_tag_and_is_idempotent() {
    let image = TestImage::busybox(None).await;
    let second = format!("docker-cri-test/{}:other", unique("second"));
    image.tag(&second).await;
    let server = Server::start(&[]).await;
    let mut images = server.images().await;

    images.remove_image(remove_req(&second)).await.unwrap();
    assert!(!image_exists(&image.name).await);
    assert!(!image_exists(&second).await);
    assert!(!image_exists(&image.id).await);
    // Absent image: still success.
    images.remove_image(remove_req(&second)).await.unwrap();
    images.remove_image(remove_req(&image.id)).await.unwrap();
}

#[tokio::test]
async fn concurrent_removals_all_succeed() {
    let image = TestImage::busybox(None).await;
    let server = Server::start(&[]).await;
    let channel = server.channel().await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let mut client = docker_cri::client::image_client(channel.clone());
            let (name, id) = (image.name.clone(), image.id.clone());
            tokio::spawn(async move {
                let answer = client.remove_image(remove_req(&name)).await;
                // critest's rule: once any call has answered, the image is gone.
                (answer, image_exists(&id).await)
            })
        })
        .collect();
    for task in tasks {
        let (answer, still_there) = task.await.unwrap();
        answer.expect("every concurrent removal succeeds");
        assert!(
            !still_there,
            "a removal answered while the image still existed"
        );
    }
    assert!(!image_exists(&image.id).await);
}

#[tokio::test]
async fn pull_from_local_registry_yields_one_id_per_image() {
    let registry = Registry::start(false).await;
    let image = TestImage::busybox(None).await;
    let repo = unique("repo");
    let latest = registry.push(&image, &format!("{repo}:latest")).await;
    let other = registry.push(&image, &format!("{repo}:other")).await;
    let untagged = latest.trim_end_matches(":latest").to_string();
    let server = Server::start(&[]).await;
    let mut images = server.images().await;

    let first = images
        .pull_image(pull_req(&untagged, None))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    let second = images
        .pull_image(pull_req(&other, None))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_eq!(first, image.id, "pull returns the image ID");
    assert_eq!(
        first, second,
        "one image, one identifier, whatever the name"
    );

    let status = images
        .image_status(status_req(&untagged))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(status.id, first);
    assert!(status.repo_tags.contains(&latest), "{:?}", status.repo_tags);
    assert!(status.repo_tags.contains(&other), "{:?}", status.repo_tags);
    let digest = status
        .repo_digests
        .first()
        .expect("a pulled image has a repo digest")
        .clone();

    // Lookup and pull by digest land on the same image.
    let by_digest = images
        .image_status(status_req(&digest))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(by_digest.id, first);
    images.remove_image(remove_req(&first)).await.unwrap();
    let again = images
        .pull_image(pull_req(&digest, None))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_eq!(again, first);
    images.remove_image(remove_req(&first)).await.unwrap();
}

#[tokio::test]
async fn authenticated_pull() {
    let registry = Registry::start(true).await;
    let (user, password) = registry.credentials.clone().unwrap();
    let image = TestImage::busybox(None).await;
    let target = registry
        .push(&image, &format!("{}:v1", unique("private")))
        .await;
    let server = Server::start(&["--log-level", "trace"]).await;
    let mut images = server.images().await;

    let anonymous = images
        .pull_image(pull_req(&target, None))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");

    let wrong = images
        .pull_image(pull_req(
            &target,
            Some(api::AuthConfig {
                username: user.clone(),
                password: "wrong-password-xyz".into(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(
        wrong.message().to_lowercase().contains("unauthorized"),
        "the error says why: {wrong:?}"
    );

    let pulled = images
        .pull_image(pull_req(
            &target,
            Some(api::AuthConfig {
                username: user.clone(),
                password: password.clone(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_eq!(pulled, image.id);
    images.remove_image(remove_req(&target)).await.unwrap();

    // The docker config.json style `auth` field works too.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let pulled = images
        .pull_image(pull_req(
            &target,
            Some(api::AuthConfig {
                auth: encoded.clone(),
                server_address: registry.host.clone(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_eq!(pulled, image.id);
    images.remove_image(remove_req(&target)).await.unwrap();

    // Not even trace level logs a credential.
    let log = server.log_text();
    assert!(log.contains("PullImage"), "trace log was written");
    for secret in [password.as_str(), encoded.as_str(), "wrong-password-xyz"] {
        assert!(!log.contains(secret), "a credential reached the log");
    }
}

#[tokio::test]
async fn pull_honours_the_client_deadline() {
    // A "registry" that accepts connections and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = blackhole.local_addr().unwrap();
    let server = Server::start(&[]).await;
    let mut images = server.images().await;
    let mut request = tonic::Request::new(pull_req(&format!("{host}/stuck/image:v1"), None));
    request.set_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let err = images.pull_image(request).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server is still healthy afterwards.
    server
        .runtime()
        .await
        .version(api::VersionRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn image_fs_info_is_measured_and_cached() {
    let _image = TestImage::busybox(None).await;
    let server = Server::start(&["--image-fs-sample-interval", "1h"]).await;
    let mut images = server.images().await;
    let first = images
        .image_fs_info(api::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let fs = &first.image_filesystems[0];
    assert!(
        fs.used_bytes.unwrap().value > 1_000_000,
        "busybox is counted"
    );
    assert!(fs.inodes_used.unwrap().value > 0);
    assert!(!fs.fs_id.as_ref().unwrap().mountpoint.is_empty());
    assert_eq!(first.container_filesystems.len(), 1);
    // While the first full measurement runs in the background (past the
    // second a call waits for it, on a loaded host), each answer is the
    // quick statvfs figure, taken afresh; once the measurement has landed,
    // calls within the interval serve that one sample. Settled: the same
    // timestamp twice in a row.
    let timestamp = |r: &api::ImageFsInfoResponse| r.image_filesystems[0].timestamp;
    let mut settled = timestamp(&first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = images
            .image_fs_info(api::ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        if timestamp(&now) == settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first measurement never landed"
        );
        settled = timestamp(&now);
    }
    for _ in 0..3 {
        let started = Instant::now();
        let again = images
            .image_fs_info(api::ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(timestamp(&again), settled, "no new walk per call");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn bad_image_requests_are_invalid_argument() {
    let server = Server::start(&[]).await;
    let mut images = server.images().await;

    let missing_spec = images
        .pull_image(api::PullImageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing_spec.code(), Code::InvalidArgument);
    assert!(missing_spec.message().contains("image"));

    for name in [
        "",
        "UPPER/case",
        "a b",
        "busybox:",
        "x@sha256:12",
        "../../etc/passwd",
        "x?y=1",
    ] {
        let pull = images.pull_image(pull_req(name, None)).await.unwrap_err();
        assert_eq!(
            pull.code(),
            Code::InvalidArgument,
            "pull {name:?}: {pull:?}"
        );
        let status = images.image_status(status_req(name)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "status {name:?}");
        let remove = images.remove_image(remove_req(name)).await.unwrap_err();
        assert_eq!(remove.code(), Code::InvalidArgument, "remove {name:?}");
    }
    assert_eq!(
        images
            .image_status(api::ImageStatusRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        images
            .remove_image(api::RemoveImageRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let bad_auth = images
        .pull_image(pull_req(
            "127.0.0.1:1/x:y",
            Some(api::AuthConfig {
                auth: "%%%not-base64".into(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_auth.code(), Code::InvalidArgument);

    // Over kubelet's 16 MiB limit.
    let huge = "a".repeat(17 * 1024 * 1024);
    let mut unlimited =
        docker_cri::api::image_service_client::ImageServiceClient::new(server.channel().await)
            .max_encoding_message_size(64 * 1024 * 1024);
    let too_big = unlimited.image_status(status_req(&huge)).await.unwrap_err();
    assert!(
        too_big.code() == Code::ResourceExhausted,
        "{:?}",
        too_big.code()
    );

    // The server survived all of it.
    images
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .unwrap();
}
