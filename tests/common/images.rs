//! Test images: the pause image, busybox images built per test, and image lookups.

use std::process::Command;

use bollard::query_parameters::{
    BuildImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{docker, docker_socket, unique};

/// The pause image the tests' pods use, built once per test binary with
/// `docker-cri pause-image` (no registry involved).
pub fn test_pause_image() -> &'static str {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let tag = format!("docker-cri-test/pause:{}", env!("CARGO_PKG_VERSION"));
        let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
            .args(["pause-image", "--tag", &tag])
            .arg(format!("--docker-endpoint=unix://{}", docker_socket()))
            .output()
            .expect("running docker-cri pause-image");
        assert!(
            out.status.success(),
            "building the test pause image failed (is dockerd running?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
}

/// A Docker image built for one test, removed on drop.
pub struct TestImage {
    pub name: String,
    pub id: String,
}

impl TestImage {
    /// A `FROM scratch` image with busybox-static and an optional `USER`.
    pub async fn busybox(user: Option<&str>) -> TestImage {
        let extra = user.map(|u| format!("USER {u}\n")).unwrap_or_default();
        Self::busybox_with(&extra).await
    }

    /// The busybox image with extra Dockerfile lines at the end.
    pub async fn busybox_with(extra: &str) -> TestImage {
        let busybox = std::fs::read("/bin/busybox").expect(
            "/bin/busybox is missing: install Debian's busybox-static (scripts/test.sh does)",
        );
        let mut dockerfile = String::from(
            "FROM scratch\nCOPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        );
        dockerfile.push_str(extra);
        dockerfile.push_str(&format!("LABEL docker-cri-test=\"{}\"\n", unique("label")));
        let name = format!("docker-cri-test/{}:t1", unique("img"));
        let id = build(&name, &dockerfile, &[("busybox", &busybox, 0o755)]).await;
        TestImage { name, id }
    }

    pub async fn tag(&self, name: &str) {
        let (repo, tag) = name.rsplit_once(':').unwrap();
        docker()
            .await
            .tag_image(
                &self.id,
                Some(TagImageOptionsBuilder::new().repo(repo).tag(tag).build()),
            )
            .await
            .unwrap();
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let id = self.id.clone();
        super::block_on_aside(async move {
            let _ = docker()
                .await
                .remove_image(
                    &id,
                    Some(RemoveImageOptionsBuilder::new().force(true).build()),
                    None,
                )
                .await;
        });
    }
}

/// Builds an image from a Dockerfile and files, returning its ID.
pub async fn build(name: &str, dockerfile: &str, files: &[(&str, &[u8], u32)]) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    add("Dockerfile", dockerfile.as_bytes(), 0o644);
    for (path, data, mode) in files {
        add(path, data, *mode);
    }
    let context = tar.into_inner().unwrap();
    let docker = docker().await;
    // No cache: concurrent tests removing their images would otherwise prune
    // intermediate layers another build is reusing.
    let options = BuildImageOptionsBuilder::new()
        .t(name)
        .rm(true)
        .nocache(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.unwrap_or_else(|e| panic!("building {name}: {e}"));
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            panic!("building {name}: {err}");
        }
    }
    docker.inspect_image(name).await.unwrap().id.unwrap()
}

pub async fn remove_image_quietly(name: &str) {
    let _ = docker()
        .await
        .remove_image(
            name,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
}

pub async fn image_exists(name: &str) -> bool {
    docker().await.inspect_image(name).await.is_ok()
}

pub fn image_spec(name: &str) -> Option<docker_cri::api::ImageSpec> {
    Some(docker_cri::api::ImageSpec {
        image: name.to_string(),
        ..Default::default()
    })
}
