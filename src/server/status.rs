//! The one place where docker-cri errors become gRPC statuses.

use tonic::{Code, Status};

use crate::error::Error;

pub fn to_status(error: Error) -> Status {
    let code = match &error {
        Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::NotFound(_) => Code::NotFound,
        Error::AlreadyExists(_) => Code::AlreadyExists,
        Error::FailedPrecondition(_) | Error::DockerTooOld(_) => Code::FailedPrecondition,
        Error::Unimplemented(_) => Code::Unimplemented,
        Error::Unauthenticated(_) => Code::Unauthenticated,
        Error::ResourceExhausted(_) => Code::ResourceExhausted,
        Error::DockerUnavailable(_) | Error::RegistryUnavailable(_) => Code::Unavailable,
        Error::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        Error::Docker { status, .. } if (400..500).contains(status) => Code::FailedPrecondition,
        Error::Docker { .. } | Error::Internal(_) => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// The answer for an RPC docker-cri does not serve (yet), with the reason:
/// a caller must be able to tell a missing feature from a broken one.
pub fn not_served(rpc: &str, reason: &str) -> Status {
    to_status(Error::Unimplemented(format!(
        "{rpc} is not served by docker-cri {}: {reason}",
        env!("CARGO_PKG_VERSION")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn code_table() {
        let cases = [
            (Error::invalid("x"), Code::InvalidArgument),
            (Error::not_found("x"), Code::NotFound),
            (Error::AlreadyExists("x".into()), Code::AlreadyExists),
            (
                Error::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
            ),
            (Error::DockerTooOld("x".into()), Code::FailedPrecondition),
            (Error::Unimplemented("x".into()), Code::Unimplemented),
            (Error::Unauthenticated("x".into()), Code::Unauthenticated),
            (
                Error::ResourceExhausted("x".into()),
                Code::ResourceExhausted,
            ),
            (Error::DockerUnavailable("x".into()), Code::Unavailable),
            (Error::RegistryUnavailable("x".into()), Code::Unavailable),
            (
                Error::DeadlineExceeded {
                    what: "x".into(),
                    after: Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
            ),
            (
                Error::Docker {
                    status: 500,
                    message: "x".into(),
                },
                Code::Internal,
            ),
            (
                Error::Docker {
                    status: 403,
                    message: "x".into(),
                },
                Code::FailedPrecondition,
            ),
            (Error::internal("x"), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(to_status(error).code(), code);
        }
    }

    #[test]
    fn unimplemented_names_the_rpc_and_why() {
        let s = not_served("GetContainerEvents", "no events yet");
        assert_eq!(s.code(), Code::Unimplemented);
        assert!(s.message().starts_with("GetContainerEvents is not served"));
        assert!(s.message().ends_with(": no events yet"));
    }
}
