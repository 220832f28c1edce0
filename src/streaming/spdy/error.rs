//! Errors of the SPDY layer, converted to `crate::Error` at the boundary.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// The peer broke the protocol; the session answers with GOAWAY.
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// A frame longer than the configured bound (or the 24-bit field).
    #[error("spdy frame of {0} bytes is too large")]
    FrameTooLarge(usize),
    /// A header block that does not decompress or parse within bounds.
    #[error("spdy header block: {0}")]
    HeaderBlock(String),
    /// The peer overflowed a flow-control window.
    #[error("spdy flow control: {0}")]
    FlowControl(String),
    /// Reading or writing the underlying connection failed.
    #[error("spdy connection: {0}")]
    Io(#[from] io::Error),
}

impl SpdyError {
    pub fn protocol(msg: impl Into<String>) -> Self {
        SpdyError::Protocol(msg.into())
    }

    pub(crate) fn header(msg: impl Into<String>) -> Self {
        SpdyError::HeaderBlock(msg.into())
    }
}

impl From<SpdyError> for crate::Error {
    fn from(e: SpdyError) -> Self {
        match e {
            SpdyError::Io(_) => crate::Error::internal(e.to_string()),
            _ => crate::Error::invalid(e.to_string()),
        }
    }
}
