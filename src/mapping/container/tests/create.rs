//! Table tests of the create body: names, labels, log path, command, env, namespaces, runtime.

use super::*;

#[test]
fn name_labels_and_log_path() {
    let c = config();
    assert_eq!(
        docker_name(c.metadata.as_ref().unwrap(), &pod().pod),
        "k8s_app_web_ns_u1_2"
    );
    let b = body(&c);
    let l = b.labels.unwrap();
    assert_eq!(l[labels::TYPE], labels::TYPE_CONTAINER);
    assert_eq!(l[labels::SANDBOX_ID], "sb1");
    assert_eq!(l[labels::LOG_PATH], "/var/log/pods/ns_web_u1/app/2.log");
    assert_eq!(l[IMAGE_LABEL], "busybox:1");
    assert_eq!(l[labels::CONTAINER_NAME], "app");
    assert_eq!(b.image.as_deref(), Some("sha256:img"));
    let meta = labels::container_metadata(&l, "/whatever");
    assert_eq!((meta.name.as_str(), meta.attempt), ("app", 2));
    let (cri, _) = labels::split_labels(&l);
    assert!(
        cri.is_empty(),
        "bookkeeping is not reported as labels: {cri:?}"
    );
}

#[test]
fn log_path_must_stay_inside_the_directory() {
    for bad in ["../x", "/etc/x", "a/../../x", "./x"] {
        let err = log_path("/var/log/pods/p", bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad}");
    }
    assert!(log_path("", "x.log").is_err());
    assert!(log_path("relative/dir", "x.log").is_err());
    assert_eq!(log_path("/d", "").unwrap(), None);
    assert_eq!(
        log_path("/d", "c/0.log").unwrap().unwrap(),
        PathBuf::from("/d/c/0.log")
    );
}

#[test]
fn command_and_args_follow_kubernetes() {
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Option<Vec<&'a str>>,
        Option<Vec<&'a str>>,
    );
    let cases: [Case; 4] = [
        (&[], &[], None, None),
        (&["/bin/sh"], &[], Some(vec!["/bin/sh"]), None),
        (&[], &["-c", "x"], None, Some(vec!["-c", "x"])),
        (
            &["/bin/sh"],
            &["-c", "x"],
            Some(vec!["/bin/sh"]),
            Some(vec!["-c", "x"]),
        ),
    ];
    for (command, args, entrypoint, cmd) in cases {
        let mut c = config();
        c.command = command.iter().map(|s| s.to_string()).collect();
        c.args = args.iter().map(|s| s.to_string()).collect();
        let b = body(&c);
        let own =
            |v: Option<Vec<&str>>| v.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(b.entrypoint, own(entrypoint), "{command:?} {args:?}");
        assert_eq!(b.cmd, own(cmd), "{command:?} {args:?}");
    }
}

#[test]
fn env_working_dir_and_stdio() {
    let mut c = config();
    c.envs = vec![api::KeyValue {
        key: "A".into(),
        value: b"x=y z".to_vec(),
    }];
    c.working_dir = "/work".into();
    c.tty = true;
    c.stdin = true;
    c.stdin_once = true;
    let b = body(&c);
    assert_eq!(b.env.unwrap(), vec!["A=x=y z"]);
    assert_eq!(b.working_dir.as_deref(), Some("/work"));
    assert_eq!(
        (b.tty, b.open_stdin, b.stdin_once),
        (Some(true), Some(true), Some(true))
    );
    for bad in [
        ("", "v".as_bytes()),
        ("A=B", b"v"),
        ("K", &[0xff, 0xfe][..]),
    ] {
        let mut c = config();
        c.envs = vec![api::KeyValue {
            key: bad.0.into(),
            value: bad.1.to_vec(),
        }];
        assert!(body_of(&c, &pod()).is_err(), "{bad:?}");
    }
}

#[test]
fn namespaces_join_the_pause_container() {
    use api::NamespaceMode::*;
    let cases = [
        (Pod, Some("container:sb1")),
        (Container, None),
        (Node, Some("host")),
        (Target, Some("container:target-id")),
    ];
    for (pid, want) in cases {
        let mut c = config();
        c.linux = Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let hc = body(&c).host_config.unwrap();
        assert_eq!(hc.pid_mode.as_deref(), want, "{pid:?}");
        assert_eq!(hc.network_mode.as_deref(), Some("container:sb1"));
        assert_eq!(hc.ipc_mode.as_deref(), Some("container:sb1"));
    }
    let mut host_pod = pod();
    host_pod.namespaces.network = Node as i32;
    host_pod.namespaces.ipc = Node as i32;
    let hc = body_of(&config(), &host_pod).unwrap().host_config.unwrap();
    assert_eq!(hc.network_mode.as_deref(), Some("host"));
    assert_eq!(hc.uts_mode.as_deref(), Some("host"));
    assert_eq!(hc.ipc_mode.as_deref(), Some("host"));
}

#[test]
fn images_health_checks_are_disabled() {
    let b = body(&config());
    assert_eq!(
        b.healthcheck.and_then(|h| h.test),
        Some(vec!["NONE".to_string()])
    );
}

#[test]
fn runtime_handler_applies_to_app_containers() {
    let mut pod = pod();
    pod.runtime_handler = "gvisor".into();
    pod.docker_runtime = Some("runsc".into());
    let b = body_of(&config(), &pod).unwrap();
    assert_eq!(b.host_config.unwrap().runtime.as_deref(), Some("runsc"));
    assert_eq!(b.labels.unwrap()[labels::RUNTIME_HANDLER], "gvisor");
    assert_eq!(body(&config()).host_config.unwrap().runtime, None);
}
