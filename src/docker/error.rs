//! bollard errors → docker-cri errors, by HTTP status and failure kind.

use std::time::Duration;

use bollard::errors::Error as B;

use crate::error::Error;

pub fn from_bollard(e: B) -> Error {
    match e {
        B::DockerResponseServerError {
            status_code,
            message,
        } => from_status(status_code, message),
        B::DockerStreamError { error } => from_stream_message(error),
        B::SocketNotFoundError(path) => Error::DockerUnavailable(format!("no socket at {path}")),
        B::RequestTimeoutError => Error::DeadlineExceeded {
            what: "docker request".into(),
            after: Duration::ZERO,
        },
        e @ (B::HyperLegacyError { .. }
        | B::IOError { .. }
        | B::HttpClientError { .. }
        | B::HyperResponseError { .. }) => Error::DockerUnavailable(e.to_string()),
        other => Error::Internal(format!("docker client: {other}")),
    }
}

fn from_status(status: u16, message: String) -> Error {
    match status {
        400 => Error::InvalidArgument(message),
        401 => Error::Unauthenticated(message),
        404 => Error::NotFound(message),
        409 => Error::FailedPrecondition(message),
        500 if is_auth_failure(&message) => Error::Unauthenticated(message),
        _ => Error::Docker { status, message },
    }
}

/// Pull errors arrive in the progress stream as plain text.
fn from_stream_message(message: String) -> Error {
    let lower = message.to_ascii_lowercase();
    if is_auth_failure(&lower) {
        Error::Unauthenticated(message)
    } else if is_registry_unreachable(&lower) {
        Error::RegistryUnavailable(message)
    } else if lower.contains("manifest unknown")
        || lower.contains("not found")
        || lower.contains("does not exist")
    {
        Error::NotFound(message)
    } else {
        Error::Docker {
            status: 500,
            message,
        }
    }
}

/// Docker reports a registry it cannot reach with HTTP 500 (or in the pull
/// stream) like any other failure; only Go's network error text tells it
/// apart. These are the dialer's and resolver's words. Only applied to pull
/// and build streams and to the pull call's own answer: elsewhere the same
/// words may be about something else.
pub fn is_registry_unreachable(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "connection refused",
        "no such host",
        "i/o timeout",
        "no route to host",
        "network is unreachable",
        "tls handshake timeout",
        "connection reset by peer",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn is_auth_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "access denied",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, msg: &str) -> Error {
        from_bollard(B::DockerResponseServerError {
            status_code: code,
            message: msg.into(),
        })
    }

    #[test]
    fn http_status_table() {
        assert!(matches!(status(404, "no such image"), Error::NotFound(_)));
        assert!(matches!(status(400, "bad"), Error::InvalidArgument(_)));
        assert!(matches!(
            status(409, "in use"),
            Error::FailedPrecondition(_)
        ));
        assert!(matches!(status(401, "x"), Error::Unauthenticated(_)));
        assert!(matches!(
            status(500, "Head ...: unauthorized: authentication required"),
            Error::Unauthenticated(_)
        ));
        assert!(matches!(
            status(500, "boom"),
            Error::Docker { status: 500, .. }
        ));
        assert!(matches!(
            from_bollard(B::SocketNotFoundError("/x".into())),
            Error::DockerUnavailable(_)
        ));
        assert!(matches!(
            from_bollard(B::RequestTimeoutError),
            Error::DeadlineExceeded { .. }
        ));
    }

    #[test]
    fn stream_message_table() {
        let cases = [
            ("unauthorized: authentication required", "auth"),
            ("Get https://x/v2/: no basic auth credentials", "auth"),
            ("manifest for x:1 not found: manifest unknown", "notfound"),
            (
                "pull access denied for x, repository does not exist",
                "auth",
            ),
            ("write /var/lib: no space left on device", "other"),
            (
                "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
                "unreachable",
            ),
            (
                "dial tcp: lookup nosuch.invalid: no such host",
                "unreachable",
            ),
        ];
        for (msg, want) in cases {
            let got = match from_bollard(B::DockerStreamError { error: msg.into() }) {
                Error::Unauthenticated(_) => "auth",
                Error::NotFound(_) => "notfound",
                Error::RegistryUnavailable(_) => "unreachable",
                _ => "other",
            };
            assert_eq!(got, want, "{msg}");
        }
    }
}
