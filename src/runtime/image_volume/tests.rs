//! Image volume pieces that need no daemon: stand-ins, IDs, status, holds, unpacking.

use super::*;

fn image_mount(sub: &str) -> api::Mount {
    api::Mount {
        container_path: "/vol".into(),
        image: Some(api::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        image_sub_path: sub.into(),
        readonly: true,
        ..Default::default()
    }
}

#[test]
fn stand_ins_are_writable_private_binds_on_old_docker_only() {
    let plain = api::Mount {
        container_path: "/data".into(),
        host_path: "/srv".into(),
        ..Default::default()
    };
    let list = vec![plain.clone(), image_mount("etc")];
    let old = stand_ins(&list, ApiVersion(1, 41)).unwrap();
    assert_eq!(old[0], plain);
    assert_eq!(old[1].host_path, "/image-volume");
    assert_eq!(old[1].container_path, "/vol");
    assert!(!old[1].readonly, "a read-only bind would lose noexec");
    assert!(old[1].image.is_none());
    assert_eq!(stand_ins(&list, ApiVersion(1, 48)).unwrap(), list);
    for bad in ["../x", "/etc", "a/../../b"] {
        let e = stand_ins(&[image_mount(bad)], ApiVersion(1, 41)).unwrap_err();
        assert!(e.to_string().contains("mounts[0].image_sub_path"), "{e}");
    }
}

#[test]
fn ids_and_sources() {
    let hex = "ab".repeat(32);
    assert_eq!(id_hex(&format!("sha256:{hex}")).unwrap(), hex);
    assert!(id_hex("sha256:../../etc").is_err());
    let volumes = ImageVolumes::new(Path::new("/var/lib/docker-cri"));
    assert_eq!(
        volumes.image_of_source(&format!("/var/lib/docker-cri/image-volumes/{hex}/mnt/etc")),
        Some(hex.clone())
    );
    assert_eq!(volumes.image_of_source("/var/lib/docker-cri/logs/x"), None);
    assert_eq!(volumes.image_of_source("/srv"), None);
}

#[test]
fn writable_image_volumes_are_refused() {
    let writable = api::Mount {
        readonly: false,
        ..image_mount("")
    };
    let e = stand_ins(&[writable], ApiVersion(1, 41)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("readonly must be true"), "{e}");
}

#[test]
fn status_reports_binds_of_unpacked_images_as_image_volumes() {
    let hex = "cd".repeat(32);
    let volumes = ImageVolumes::new(Path::new("/nonexistent-root"));
    let mut mounts = vec![
        api::Mount {
            container_path: "/vol".into(),
            host_path: format!("/nonexistent-root/image-volumes/{hex}/mnt/etc/conf"),
            ..Default::default()
        },
        api::Mount {
            container_path: "/data".into(),
            host_path: "/srv".into(),
            ..Default::default()
        },
    ];
    volumes.describe(&mut mounts);
    let image = mounts[0].image.clone().unwrap();
    assert_eq!(image.image, format!("sha256:{hex}"));
    assert_eq!(image.image_ref, format!("sha256:{hex}"));
    assert_eq!(mounts[0].image_sub_path, "etc/conf");
    assert!(mounts[0].host_path.is_empty() && mounts[0].readonly);
    assert_eq!(mounts[1].host_path, "/srv");
    assert!(mounts[1].image.is_none());
}

#[test]
fn pending_counts_down_on_drop() {
    let volumes = ImageVolumes::new(Path::new("/x"));
    volumes.pend("a");
    volumes.pend("a");
    let first = Pending {
        volumes: &volumes,
        ids: vec!["a".into()],
    };
    let second = Pending {
        volumes: &volumes,
        ids: vec!["a".into()],
    };
    drop(first);
    assert!(volumes.is_pending("a"));
    drop(second);
    assert!(!volumes.is_pending("a"));
}

#[test]
fn unpack_keeps_modes_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let tar_path = dir.path().join("x.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "bin/tool", &b"abc"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        l.set_mode(0o777);
        l.set_uid(0);
        l.set_gid(0);
        l.set_mtime(0);
        l.set_cksum();
        b.append_link(&mut l, "usr/tool", "../bin/tool").unwrap();
        b.finish().unwrap();
    }
    let dest = dir.path().join("rootfs");
    unpack(&tar_path, &dest).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dest.join("bin/tool")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::read(dest.join("usr/tool")).unwrap(), b"abc");
}

#[test]
fn only_old_stopped_export_containers_are_stale() {
    use ContainerSummaryStateEnum as S;
    let ten_min = std::time::Duration::from_secs(600);
    let now = 1_000_000;
    // Never started (what a killed export leaves), old enough.
    assert!(is_stale_export(
        Some(S::CREATED),
        Some(now - 600),
        now,
        ten_min
    ));
    assert!(is_stale_export(
        Some(S::EXITED),
        Some(now - 3600),
        now,
        ten_min
    ));
    assert!(is_stale_export(
        Some(S::DEAD),
        Some(now - 3600),
        now,
        ten_min
    ));
    // Too young: maybe another docker-cri's export in progress.
    assert!(!is_stale_export(
        Some(S::CREATED),
        Some(now - 599),
        now,
        ten_min
    ));
    assert!(!is_stale_export(
        Some(S::CREATED),
        Some(now + 5),
        now,
        ten_min
    ));
    // Running or about to change, or unknown: left alone.
    for state in [S::RUNNING, S::PAUSED, S::RESTARTING, S::REMOVING, S::EMPTY] {
        assert!(
            !is_stale_export(Some(state), Some(0), now, ten_min),
            "{state:?}"
        );
    }
    assert!(!is_stale_export(None, Some(0), now, ten_min));
    assert!(!is_stale_export(Some(S::CREATED), None, now, ten_min));
    // A zero age (tests) takes any stopped one.
    let zero = std::time::Duration::ZERO;
    assert!(is_stale_export(Some(S::CREATED), Some(now), now, zero));
}
