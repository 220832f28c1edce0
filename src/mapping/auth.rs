//! CRI `AuthConfig` → Docker registry credentials (the `X-Registry-Auth`
//! header). Credentials are never logged; see `redact_pull_request`.

use base64::Engine;
use bollard::auth::DockerCredentials;

use crate::api;
use crate::error::{Error, Result};

/// Builds Docker credentials from a CRI auth section, `None` when it carries
/// nothing. `registry` is the image's registry, used when the caller gave no
/// server address.
pub fn docker_credentials(
    auth: Option<&api::AuthConfig>,
    registry: &str,
) -> Result<Option<DockerCredentials>> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let mut username = auth.username.clone();
    let mut password = auth.password.clone();
    if username.is_empty() && !auth.auth.is_empty() {
        let (u, p) = decode_basic_auth(&auth.auth)?;
        username = u;
        password = p;
    }
    let empty = username.is_empty()
        && password.is_empty()
        && auth.identity_token.is_empty()
        && auth.registry_token.is_empty();
    if empty {
        return Ok(None);
    }
    let server = if auth.server_address.is_empty() {
        registry.to_string()
    } else {
        auth.server_address.clone()
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Some(DockerCredentials {
        username: some(username),
        password: some(password),
        auth: None,
        email: None,
        serveraddress: Some(server),
        identitytoken: some(auth.identity_token.clone()),
        registrytoken: some(auth.registry_token.clone()),
    }))
}

/// The `auth` field is base64("user:password"), as in a docker config.json.
fn decode_basic_auth(encoded: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::invalid(format!("auth.auth: {why}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not valid base64"))?;
    let text = String::from_utf8(raw).map_err(|_| bad("not UTF-8 after base64 decoding"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| bad("expected base64 of \"username:password\""))?;
    Ok((user.to_string(), pass.to_string()))
}

/// A copy of a pull request that is safe to log at trace level.
pub fn redact_pull_request(req: &api::PullImageRequest) -> api::PullImageRequest {
    let mut copy = req.clone();
    if let Some(auth) = copy.auth.as_mut() {
        for secret in [
            &mut auth.password,
            &mut auth.auth,
            &mut auth.identity_token,
            &mut auth.registry_token,
        ] {
            if !secret.is_empty() {
                *secret = "<redacted>".into();
            }
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(f: impl FnOnce(&mut api::AuthConfig)) -> api::AuthConfig {
        let mut a = api::AuthConfig::default();
        f(&mut a);
        a
    }

    #[test]
    fn none_and_empty_mean_anonymous() {
        assert!(docker_credentials(None, "r").unwrap().is_none());
        assert!(
            docker_credentials(Some(&api::AuthConfig::default()), "r")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn username_password_with_default_server() {
        let a = auth(|a| {
            a.username = "u".into();
            a.password = "p".into();
        });
        let c = docker_credentials(Some(&a), "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        assert_eq!(c.serveraddress.as_deref(), Some("127.0.0.1:5000"));
    }

    #[test]
    fn base64_auth_field_is_decoded() {
        let a = auth(|a| {
            a.auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
            a.server_address = "reg.example".into();
        });
        let c = docker_credentials(Some(&a), "ignored").unwrap().unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s3:cret"));
        assert_eq!(c.serveraddress.as_deref(), Some("reg.example"));
    }

    #[test]
    fn tokens_pass_through() {
        let a = auth(|a| {
            a.identity_token = "idt".into();
            a.registry_token = "rt".into();
        });
        let c = docker_credentials(Some(&a), "r").unwrap().unwrap();
        assert_eq!(c.identitytoken.as_deref(), Some("idt"));
        assert_eq!(c.registrytoken.as_deref(), Some("rt"));
        assert!(c.username.is_none());
    }

    #[test]
    fn bad_auth_field_is_invalid_argument() {
        for bad in ["!!!", "bm9jb2xvbg=="] {
            let a = auth(|a| a.auth = bad.into());
            let err = docker_credentials(Some(&a), "r").unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad}");
            assert!(!err.to_string().contains("nocolon"));
        }
    }

    #[test]
    fn redaction_hides_every_secret() {
        let req = api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: "x".into(),
                ..Default::default()
            }),
            auth: Some(auth(|a| {
                a.username = "user".into();
                a.password = "pw-secret".into();
                a.auth = "YXV0aC1zZWNyZXQ=".into();
                a.identity_token = "id-secret".into();
                a.registry_token = "reg-secret".into();
            })),
            sandbox_config: None,
        };
        let text = format!("{:?}", redact_pull_request(&req));
        for secret in ["pw-secret", "YXV0aC1zZWNyZXQ=", "id-secret", "reg-secret"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("user"));
    }
}
