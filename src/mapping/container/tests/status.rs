//! Table tests of the container status: states, failed starts, stop signals, users.

use std::collections::HashMap;

use bollard::models::ContainerStateStatusEnum;

use super::super::status::stop_signal_of;
use super::*;

#[test]
fn failed_start_is_exited_with_the_reason() {
    use bollard::models::{ContainerInspectResponse, ContainerState};
    let created_nanos = 1_700_000_000_000_000_000i64;
    let inspect = ContainerInspectResponse {
        id: Some("c1".into()),
        state: Some(ContainerState {
            status: Some(ContainerStateStatusEnum::CREATED),
            exit_code: Some(127),
            error: Some("exec: \"/nope\": stat /nope: no such file or directory".into()),
            started_at: Some("0001-01-01T00:00:00Z".into()),
            finished_at: Some("0001-01-01T00:00:00Z".into()),
            ..Default::default()
        }),
        config: Some(bollard::models::ContainerConfig {
            labels: Some(HashMap::from([(
                labels::CREATED_NANOS.to_string(),
                created_nanos.to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = container_status(&inspect, None);
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(s.reason, "ContainerCannotRun");
    assert_eq!(s.exit_code, 127);
    assert!(s.message.contains("/nope"), "{}", s.message);
    assert_eq!(s.finished_at, created_nanos);
    // A container merely not started yet stays created.
    let mut fresh = inspect.clone();
    let st = fresh.state.as_mut().unwrap();
    st.exit_code = Some(0);
    st.error = Some(String::new());
    let s = container_status(&fresh, None);
    assert_eq!(s.state, api::ContainerState::ContainerCreated as i32);
    assert_eq!(s.reason, "");
}

#[test]
fn stop_signal_names() {
    assert_eq!(docker_signal(0).unwrap(), None);
    assert_eq!(
        docker_signal(api::Signal::Sigterm as i32).unwrap().unwrap(),
        "SIGTERM"
    );
    assert_eq!(
        docker_signal(api::Signal::Sigrtminplus3 as i32)
            .unwrap()
            .unwrap(),
        "SIGRTMIN+3"
    );
    assert_eq!(
        docker_signal(api::Signal::Sigrtmaxminus1 as i32)
            .unwrap()
            .unwrap(),
        "SIGRTMAX-1"
    );
    assert!(docker_signal(999).is_err());
    let l = HashMap::from([(STOP_SIGNAL_LABEL.to_string(), "SIGRTMIN+3".to_string())]);
    assert_eq!(stop_signal_of(&l), api::Signal::Sigrtminplus3 as i32);
}

#[test]
fn states_and_users() {
    use ContainerStateStatusEnum as S;
    assert_eq!(
        container_state(Some(S::CREATED)),
        api::ContainerState::ContainerCreated
    );
    assert_eq!(
        container_state(Some(S::RUNNING)),
        api::ContainerState::ContainerRunning
    );
    assert_eq!(
        container_state(Some(S::EXITED)),
        api::ContainerState::ContainerExited
    );
    assert_eq!(
        container_state(Some(S::DEAD)),
        api::ContainerState::ContainerExited
    );
    assert_eq!(container_state(None), api::ContainerState::ContainerUnknown);

    let proc = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t2000\t2000\t2000\t2000\nGroups:\t3000 4000 \n";
    let u = user_status("", Some(proc)).unwrap().linux.unwrap();
    assert_eq!(
        (u.uid, u.gid, u.supplemental_groups),
        (1000, 2000, vec![3000, 4000])
    );
    let u = user_status("7:8", None).unwrap().linux.unwrap();
    assert_eq!((u.uid, u.gid), (7, 8));
    assert_eq!(user_status("", None).unwrap().linux.unwrap().uid, 0);
    assert!(user_status("nobody", None).is_none());
}
