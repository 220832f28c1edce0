//! Table tests of mounts, devices, SELinux relabelling and mounts read back from Docker.

use bollard::models::MountPoint;

use super::*;

fn mount(host: &str, ctr: &str, ro: bool, prop: api::MountPropagation) -> api::Mount {
    api::Mount {
        container_path: ctr.into(),
        host_path: host.into(),
        readonly: ro,
        propagation: prop as i32,
        ..Default::default()
    }
}

#[test]
fn mounts_table() {
    use api::MountPropagation::*;
    let (binds, typed) = mounts(
        &[
            mount("/h/a", "/c/a", true, PropagationPrivate),
            mount("/h/b", "/c/b", false, PropagationHostToContainer),
            api::Mount {
                selinux_relabel: true,
                ..mount("/h/c", "/c/c", false, PropagationBidirectional)
            },
            mount("/h/with:colon", "/c/d", false, PropagationPrivate),
        ],
        ApiVersion(1, 41),
        true,
    )
    .unwrap();
    assert_eq!(
        binds,
        vec![
            "/h/a:/c/a:ro,rprivate",
            "/h/b:/c/b:rw,rslave",
            "/h/c:/c/c:rw,rshared,Z"
        ]
    );
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].source.as_deref(), Some("/h/with:colon"));

    let rro = api::Mount {
        recursive_read_only: true,
        ..mount("/h", "/c", true, PropagationPrivate)
    };
    assert!(
        mounts(std::slice::from_ref(&rro), ApiVersion(1, 41), true).is_err(),
        "needs API 1.44"
    );
    let (_, typed) = mounts(std::slice::from_ref(&rro), ApiVersion(1, 45), true).unwrap();
    assert_eq!(
        typed[0]
            .bind_options
            .as_ref()
            .unwrap()
            .read_only_force_recursive,
        Some(true)
    );
    let rro_rw = api::Mount {
        readonly: false,
        ..rro.clone()
    };
    assert!(
        mounts(&[rro_rw], ApiVersion(1, 45), true)
            .unwrap_err()
            .to_string()
            .contains("readonly")
    );
    let rro_slave = api::Mount {
        propagation: PropagationHostToContainer as i32,
        ..rro
    };
    assert!(
        mounts(&[rro_slave], ApiVersion(1, 45), true)
            .unwrap_err()
            .to_string()
            .contains("private")
    );

    let image = api::Mount {
        image: Some(api::ImageSpec {
            image: "x".into(),
            ..Default::default()
        }),
        ..mount("", "/c", true, PropagationPrivate)
    };
    let old_docker = mounts(std::slice::from_ref(&image), ApiVersion(1, 45), true).unwrap_err();
    assert!(matches!(old_docker, Error::Unimplemented(_)));
    assert!(
        old_docker
            .to_string()
            .contains("need Docker API 1.48 (Docker 28) or newer"),
        "{old_docker}"
    );
    let writable = api::Mount {
        readonly: false,
        ..image.clone()
    };
    assert!(matches!(
        mounts(&[writable], ApiVersion(1, 48), true),
        Err(Error::InvalidArgument(_))
    ));
    let (binds, typed) = mounts(
        &[api::Mount {
            image_sub_path: "etc/conf".into(),
            ..image.clone()
        }],
        ApiVersion(1, 48),
        true,
    )
    .unwrap();
    assert!(binds.is_empty());
    assert_eq!(
        typed,
        vec![bollard::models::Mount {
            target: Some("/c".into()),
            source: Some("x".into()),
            typ: Some(bollard::models::MountType::IMAGE),
            read_only: Some(true),
            image_options: Some(bollard::models::MountImageOptions {
                subpath: Some("etc/conf".into()),
            }),
            ..Default::default()
        }]
    );
    for (sub, host) in [("../etc", ""), ("/etc", ""), ("", "/h")] {
        let bad = api::Mount {
            image_sub_path: sub.into(),
            host_path: host.into(),
            ..image.clone()
        };
        assert!(
            matches!(
                mounts(&[bad], ApiVersion(1, 48), true),
                Err(Error::InvalidArgument(_))
            ),
            "{sub:?} {host:?}"
        );
    }
    assert!(
        mounts(
            &[mount("rel", "/c", false, PropagationPrivate)],
            ApiVersion(1, 41),
            true
        )
        .is_err()
    );
    assert!(
        mounts(
            &[mount("/h", "rel", false, PropagationPrivate)],
            ApiVersion(1, 41),
            true
        )
        .is_err()
    );
}

#[test]
fn devices_and_cdi() {
    let d = devices(&[api::Device {
        container_path: "/dev/x".into(),
        host_path: "/dev/null".into(),
        permissions: "rw".into(),
    }])
    .unwrap();
    assert_eq!(d[0].cgroup_permissions.as_deref(), Some("rw"));
    assert!(
        devices(&[api::Device {
            container_path: "/dev/x".into(),
            host_path: "/dev/null".into(),
            permissions: "rwx".into(),
        }])
        .is_err()
    );
    let cdi = [api::CdiDevice {
        name: "vendor.com/gpu=0".into(),
    }];
    assert!(cdi_devices(&cdi, ApiVersion(1, 41)).is_err());
    let req = cdi_devices(&cdi, ApiVersion(1, 45)).unwrap().unwrap();
    assert_eq!(req[0].driver.as_deref(), Some("cdi"));
    assert_eq!(cdi_devices(&[], ApiVersion(1, 41)).unwrap(), None);
}

#[test]
fn selinux_relabel_per_host_and_mount_form() {
    use api::MountPropagation::*;
    let relabel = |m: api::Mount| api::Mount {
        selinux_relabel: true,
        ..m
    };
    let list = [
        relabel(mount("/h/plain", "/c/a", false, PropagationPrivate)),
        relabel(api::Mount {
            recursive_read_only: true,
            ..mount("/h/rro", "/c/b", true, PropagationPrivate)
        }),
        relabel(mount("/h/with:colon", "/c/d", false, PropagationPrivate)),
        mount("/h/keep", "/c/e", false, PropagationPrivate),
    ];
    // SELinux enforced: binds carry Z, the others are relabelled by us.
    let (binds, typed) = mounts(&list, ApiVersion(1, 45), true).unwrap();
    assert_eq!(
        binds,
        vec!["/h/plain:/c/a:rw,rprivate,Z", "/h/keep:/c/e:rw,rprivate"]
    );
    assert_eq!(typed.len(), 2);
    assert_eq!(
        relabel_sources(&list, true),
        vec!["/h/rro", "/h/with:colon"]
    );
    // No SELinux: relabelling is a no-op, never a refusal.
    let (binds, typed) = mounts(&list, ApiVersion(1, 45), false).unwrap();
    assert_eq!(
        binds,
        vec!["/h/plain:/c/a:rw,rprivate", "/h/keep:/c/e:rw,rprivate"]
    );
    assert_eq!(typed.len(), 2);
    assert!(relabel_sources(&list, false).is_empty());
}

#[test]
fn mount_status_reads_propagation_back() {
    let mp = MountPoint {
        typ: Some("bind".into()),
        source: Some("/h".into()),
        destination: Some("/c".into()),
        mode: Some("ro,rslave,Z".into()),
        rw: Some(false),
        propagation: Some("rslave".into()),
        ..Default::default()
    };
    let m = mount_status(&mp).unwrap();
    assert!(m.readonly && m.selinux_relabel);
    assert_eq!(
        m.propagation,
        api::MountPropagation::PropagationHostToContainer as i32
    );
    let volume = MountPoint {
        typ: Some("volume".into()),
        ..Default::default()
    };
    assert!(mount_status(&volume).is_none());
}
