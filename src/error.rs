//! The one error type of docker-cri. Every layer returns it; `server::status`
//! turns it into a `tonic::Status` in exactly one place.

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's request is malformed; names the offending field.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the current state of the object forbids it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// An RPC or a requested feature docker-cri cannot serve.
    #[error("{0}")]
    Unimplemented(String),
    /// A registry refused the credentials (or their absence).
    #[error("{0}")]
    Unauthenticated(String),
    /// The Docker daemon could not be reached at all.
    #[error("docker daemon unavailable: {0}")]
    DockerUnavailable(String),
    /// A registry (not Docker) could not be reached: refused, no such host,
    /// timed out. Worth retrying later, so Unavailable.
    #[error("registry unreachable: {0}")]
    RegistryUnavailable(String),
    /// The Docker daemon speaks an API older than we support.
    #[error("{0}")]
    DockerTooOld(String),
    /// A call to Docker, or the whole request, ran out of time.
    #[error("{what} did not finish within {after:?}")]
    DeadlineExceeded { what: String, after: Duration },
    /// Docker answered with an error we have no better class for.
    #[error("docker: {message} (HTTP {status})")]
    Docker { status: u16, message: String },
    /// A failure on our side: I/O on our own files, a broken invariant.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// Prefixes the message with what was being done, keeping the class.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{what}: {m}")),
            Error::NotFound(m) => Error::NotFound(format!("{what}: {m}")),
            Error::AlreadyExists(m) => Error::AlreadyExists(format!("{what}: {m}")),
            Error::FailedPrecondition(m) => Error::FailedPrecondition(format!("{what}: {m}")),
            Error::Unimplemented(m) => Error::Unimplemented(format!("{what}: {m}")),
            Error::Unauthenticated(m) => Error::Unauthenticated(format!("{what}: {m}")),
            Error::DockerUnavailable(m) => Error::DockerUnavailable(format!("{what}: {m}")),
            Error::RegistryUnavailable(m) => Error::RegistryUnavailable(format!("{what}: {m}")),
            Error::DockerTooOld(m) => Error::DockerTooOld(format!("{what}: {m}")),
            Error::DeadlineExceeded { what: w, after } => Error::DeadlineExceeded {
                what: format!("{what}: {w}"),
                after,
            },
            Error::Docker { status, message } => Error::Docker {
                status,
                message: format!("{what}: {message}"),
            },
            Error::Internal(m) => Error::Internal(format!("{what}: {m}")),
        }
    }
}
