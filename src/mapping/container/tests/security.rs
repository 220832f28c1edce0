//! Table tests of the container security context.

use super::*;

#[test]
fn security_context_table() {
    let mut c = config();
    c.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            capabilities: Some(api::Capability {
                add_capabilities: vec!["NET_ADMIN".into(), "CAP_SYS_TIME".into()],
                drop_capabilities: vec!["ALL".into()],
                add_ambient_capabilities: vec![],
            }),
            run_as_user: Some(api::Int64Value { value: 1000 }),
            run_as_group: Some(api::Int64Value { value: 2000 }),
            supplemental_groups: vec![3000],
            readonly_rootfs: true,
            no_new_privs: true,
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    let b = body(&c);
    assert_eq!(b.user.as_deref(), Some("1000:2000"));
    let hc = b.host_config.unwrap();
    assert_eq!(hc.cap_add.unwrap(), vec!["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(hc.cap_drop.unwrap(), vec!["ALL"]);
    assert_eq!(hc.group_add.unwrap(), vec!["3000"]);
    assert!(
        hc.security_opt
            .unwrap()
            .contains(&"no-new-privileges".to_string())
    );
    assert_eq!(hc.masked_paths.unwrap(), vec!["/proc/kcore"]);
    assert_eq!(hc.readonly_paths.unwrap(), vec!["/proc/sys"]);

    let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
    sc.privileged = true;
    let hc = body(&c).host_config.unwrap();
    assert_eq!(hc.privileged, Some(true));
    assert!(hc.masked_paths.is_none(), "no masked paths when privileged");

    let mut strict = config();
    strict.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            supplemental_groups_policy: api::SupplementalGroupsPolicy::Strict as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(matches!(
        body_of(&strict, &pod()),
        Err(Error::Unimplemented(_))
    ));
    let mut group_only = config();
    group_only.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            run_as_group: Some(api::Int64Value { value: 5 }),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(body_of(&group_only, &pod()).is_err());
}
