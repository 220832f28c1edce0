//! A loopback Docker registry (Debian's docker-registry) to pull test images from.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::{TestImage, docker, free_port, unique};

/// Debian's docker-registry on a free loopback port, optionally behind
/// htpasswd auth. Docker treats 127.0.0.0/8 registries as insecure (plain
/// HTTP) by default, so no TLS is needed.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub host: String,
    pub credentials: Option<(String, String)>,
}

impl Registry {
    pub async fn start(with_auth: bool) -> Registry {
        let binary = Path::new("/usr/bin/docker-registry");
        assert!(
            binary.exists(),
            "{} is missing: install Debian's docker-registry (scripts/test.sh does)",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let credentials = with_auth.then(|| ("tester".to_string(), unique("pw")));
        if let Some((user, password)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd is missing: install apache2-utils (scripts/test.sh does)");
            assert!(out.status.success());
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::File::create(&config_path)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {host}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Registry {
            child,
            _dir: dir,
            host,
            credentials,
        }
    }

    /// Pushes a local image to `<host>/<path>` and drops the local tag.
    pub async fn push(&self, image: &TestImage, path_and_tag: &str) -> String {
        let target = format!("{}/{path_and_tag}", self.host);
        image.tag(&target).await;
        let (repo, tag) = target.rsplit_once(':').unwrap();
        // Docker 20.10 wants an X-Registry-Auth header on push even when
        // the registry is anonymous.
        let creds = Some(bollard::auth::DockerCredentials {
            username: self.credentials.as_ref().map(|c| c.0.clone()),
            password: self.credentials.as_ref().map(|c| c.1.clone()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        });
        let docker = docker().await;
        let mut stream = docker.push_image(
            repo,
            Some(PushImageOptionsBuilder::new().tag(tag).build()),
            creds,
        );
        while let Some(item) = stream.next().await {
            let info = item.unwrap_or_else(|e| panic!("pushing {target}: {e}"));
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                panic!("pushing {target}: {err}");
            }
        }
        docker
            .remove_image(
                &target,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .unwrap();
        target
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
