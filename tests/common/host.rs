//! Probes of what this host lets containers and processes do.

use super::{docker, force_remove, unique};

/// Whether this host lets Docker start a privileged container of `image_id`
/// with its own command, or `cmd` (some CI sandboxes' root lacks the
/// capabilities; whether it matters depends on the image's user). Asked of
/// Docker directly, so a test can demand the outcome the host allows
/// instead of accepting either.
pub async fn host_runs_privileged(image_id: &str, cmd: Option<&[&str]>) -> bool {
    let docker = docker().await;
    let name = unique("privprobe");
    let id = docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&name)
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(image_id.to_string()),
                cmd: cmd.map(|c| c.iter().map(|s| s.to_string()).collect()),
                host_config: Some(bollard::models::HostConfig {
                    privileged: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let started = docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .is_ok();
    force_remove(&id).await;
    started
}

/// The lowest oom_score_adj this host lets a root process set, probed on
/// the test process itself (and restored).
pub fn host_min_oom_score_adj() -> i64 {
    const PATH: &str = "/proc/self/oom_score_adj";
    let current: i64 = std::fs::read_to_string(PATH)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if std::fs::write(PATH, "-1000").is_ok() {
        std::fs::write(PATH, current.to_string()).unwrap();
        -1000
    } else {
        current
    }
}
