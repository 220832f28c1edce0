//! CRI security settings → Docker `SecurityOpt` entries, shared by sandboxes
//! and containers.

use crate::api;
use crate::error::{Error, Result};

/// Which seccomp profile applies, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile (CRI RuntimeDefault).
    RuntimeDefault,
    Unconfined,
    /// A JSON profile file on the host.
    Localhost(String),
}

/// The new `seccomp` field wins over the deprecated path string. Kubernetes
/// leaves both empty to mean "unconfined" for old pods; CRI says an empty
/// profile is Unconfined only via the deprecated field, and RuntimeDefault
/// is the zero value of the new one.
pub fn seccomp_choice(
    profile: Option<&api::SecurityProfile>,
    deprecated_path: &str,
) -> Result<Seccomp> {
    use api::security_profile::ProfileType;
    if let Some(p) = profile {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(Seccomp::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(Seccomp::Unconfined),
            Ok(ProfileType::Localhost) => {
                if !p.localhost_ref.starts_with('/') {
                    return Err(Error::invalid(format!(
                        "seccomp.localhost_ref must be an absolute path, got {:?}",
                        p.localhost_ref
                    )));
                }
                Ok(Seccomp::Localhost(p.localhost_ref.clone()))
            }
            Err(_) => Err(Error::invalid(format!(
                "seccomp.profile_type {} is not a known profile type",
                p.profile_type
            ))),
        };
    }
    match deprecated_path {
        "" | "unconfined" => Ok(Seccomp::Unconfined),
        "runtime/default" | "docker/default" => Ok(Seccomp::RuntimeDefault),
        path => match path.strip_prefix("localhost/") {
            Some(file) if file.starts_with('/') => Ok(Seccomp::Localhost(file.to_string())),
            _ => Err(Error::invalid(format!(
                "seccomp_profile_path {path:?}: expected runtime/default, unconfined or localhost/<absolute path>"
            ))),
        },
    }
}

/// The Docker security option for a seccomp choice; `profile_json` is the
/// content of the Localhost file. Docker takes the profile inline.
pub fn seccomp_opt(choice: &Seccomp, profile_json: Option<&str>) -> Result<Option<String>> {
    match choice {
        Seccomp::RuntimeDefault => Ok(None),
        Seccomp::Unconfined => Ok(Some("seccomp=unconfined".into())),
        Seccomp::Localhost(path) => {
            let json = profile_json.ok_or_else(|| Error::internal("seccomp profile not loaded"))?;
            let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
                Error::invalid(format!("seccomp profile {path} is not valid JSON: {e}"))
            })?;
            if !value.is_object() {
                return Err(Error::invalid(format!(
                    "seccomp profile {path} must be a JSON object"
                )));
            }
            // Re-serialised compactly: one line, no surprises in the option.
            Ok(Some(format!("seccomp={value}")))
        }
    }
}

/// AppArmor: the new `apparmor` field wins over the deprecated string.
/// RuntimeDefault leaves Docker's own default profile in place.
pub fn apparmor_opt(
    profile: Option<&api::SecurityProfile>,
    deprecated: &str,
) -> Result<Option<String>> {
    use api::security_profile::ProfileType;
    if let Some(p) = profile {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(None),
            Ok(ProfileType::Unconfined) => Ok(Some("apparmor=unconfined".into())),
            Ok(ProfileType::Localhost) if !p.localhost_ref.is_empty() => {
                Ok(Some(format!("apparmor={}", p.localhost_ref)))
            }
            Ok(ProfileType::Localhost) => Err(Error::invalid(
                "apparmor.localhost_ref is required for Localhost",
            )),
            Err(_) => Err(Error::invalid(format!(
                "apparmor.profile_type {} is not a known profile type",
                p.profile_type
            ))),
        };
    }
    match deprecated {
        "" | "runtime/default" => Ok(None),
        "unconfined" => Ok(Some("apparmor=unconfined".into())),
        other => match other.strip_prefix("localhost/") {
            Some(name) if !name.is_empty() => Ok(Some(format!("apparmor={name}"))),
            _ => Err(Error::invalid(format!(
                "apparmor_profile {other:?}: expected runtime/default, unconfined or localhost/<profile>"
            ))),
        },
    }
}

pub fn selinux_opts(options: Option<&api::SeLinuxOption>) -> Vec<String> {
    let Some(o) = options else {
        return Vec::new();
    };
    [
        ("user", &o.user),
        ("role", &o.role),
        ("type", &o.r#type),
        ("level", &o.level),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("label={k}:{v}"))
    .collect()
}

/// `run_as_user` / `run_as_group` → Docker's `User` ("uid" or "uid:gid").
pub fn docker_user(
    user: Option<&api::Int64Value>,
    username: &str,
    group: Option<&api::Int64Value>,
) -> Result<Option<String>> {
    let user_part = match (user, username) {
        (Some(u), _) if u.value < 0 => {
            return Err(Error::invalid(format!(
                "run_as_user {} is negative",
                u.value
            )));
        }
        (Some(u), _) => Some(u.value.to_string()),
        (None, "") => None,
        (None, name) => Some(name.to_string()),
    };
    match (user_part, group) {
        (None, Some(_)) => Err(Error::invalid(
            "run_as_group needs run_as_user or run_as_username",
        )),
        (_, Some(g)) if g.value < 0 => Err(Error::invalid(format!(
            "run_as_group {} is negative",
            g.value
        ))),
        (Some(u), Some(g)) => Ok(Some(format!("{u}:{}", g.value))),
        (u, None) => Ok(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::security_profile::ProfileType;

    fn profile(t: ProfileType, r: &str) -> api::SecurityProfile {
        api::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        }
    }

    #[test]
    fn seccomp_table() {
        let cases = [
            (
                Some(profile(ProfileType::RuntimeDefault, "")),
                "",
                Ok(Seccomp::RuntimeDefault),
            ),
            (
                Some(profile(ProfileType::Unconfined, "")),
                "",
                Ok(Seccomp::Unconfined),
            ),
            (
                Some(profile(ProfileType::Localhost, "/p.json")),
                "",
                Ok(Seccomp::Localhost("/p.json".into())),
            ),
            (
                Some(profile(ProfileType::Localhost, "rel.json")),
                "",
                Err(()),
            ),
            (None, "", Ok(Seccomp::Unconfined)),
            (None, "runtime/default", Ok(Seccomp::RuntimeDefault)),
            (None, "docker/default", Ok(Seccomp::RuntimeDefault)),
            (None, "unconfined", Ok(Seccomp::Unconfined)),
            (
                None,
                "localhost//x.json",
                Ok(Seccomp::Localhost("/x.json".into())),
            ),
            (None, "localhost/x.json", Err(())),
            (None, "bogus", Err(())),
        ];
        for (p, path, want) in cases {
            let got = seccomp_choice(p.as_ref(), path).map_err(|_| ());
            assert_eq!(got, want, "{p:?} {path}");
        }
        let bad_type = api::SecurityProfile {
            profile_type: 9,
            localhost_ref: String::new(),
        };
        assert!(seccomp_choice(Some(&bad_type), "").is_err());
    }

    #[test]
    fn seccomp_options() {
        assert_eq!(seccomp_opt(&Seccomp::RuntimeDefault, None).unwrap(), None);
        assert_eq!(
            seccomp_opt(&Seccomp::Unconfined, None).unwrap().unwrap(),
            "seccomp=unconfined"
        );
        let local = Seccomp::Localhost("/p".into());
        let opt = seccomp_opt(&local, Some("{\n \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}"))
            .unwrap()
            .unwrap();
        assert_eq!(opt, "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
        assert!(matches!(
            seccomp_opt(&local, Some("{not json")),
            Err(Error::InvalidArgument(_))
        ));
        assert!(seccomp_opt(&local, Some("[1]")).is_err());
    }

    #[test]
    fn apparmor_table() {
        assert_eq!(apparmor_opt(None, "").unwrap(), None);
        assert_eq!(apparmor_opt(None, "runtime/default").unwrap(), None);
        assert_eq!(
            apparmor_opt(None, "unconfined").unwrap().unwrap(),
            "apparmor=unconfined"
        );
        assert_eq!(
            apparmor_opt(None, "localhost/my-prof").unwrap().unwrap(),
            "apparmor=my-prof"
        );
        assert!(apparmor_opt(None, "weird").is_err());
        let p = profile(ProfileType::Localhost, "k8s-prof");
        assert_eq!(
            apparmor_opt(Some(&p), "unconfined").unwrap().unwrap(),
            "apparmor=k8s-prof"
        );
        assert!(apparmor_opt(Some(&profile(ProfileType::Localhost, "")), "").is_err());
        assert_eq!(
            apparmor_opt(Some(&profile(ProfileType::RuntimeDefault, "")), "").unwrap(),
            None
        );
    }

    #[test]
    fn selinux_and_user() {
        let o = api::SeLinuxOption {
            user: "u".into(),
            level: "s0:c1".into(),
            ..Default::default()
        };
        assert_eq!(
            selinux_opts(Some(&o)),
            ["label=user:u", "label=level:s0:c1"]
        );
        let v = |n| Some(api::Int64Value { value: n });
        assert_eq!(
            docker_user(v(10).as_ref(), "", None).unwrap().unwrap(),
            "10"
        );
        assert_eq!(
            docker_user(v(10).as_ref(), "", v(20).as_ref())
                .unwrap()
                .unwrap(),
            "10:20"
        );
        assert_eq!(
            docker_user(None, "bob", v(5).as_ref()).unwrap().unwrap(),
            "bob:5"
        );
        assert_eq!(docker_user(None, "", None).unwrap(), None);
        assert!(docker_user(None, "", v(5).as_ref()).is_err());
        assert!(docker_user(v(-1).as_ref(), "", None).is_err());
    }
}
