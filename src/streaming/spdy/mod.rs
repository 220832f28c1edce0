//! A server-side SPDY/3.1 session, the framing kubelet's streaming protocols (exec, attach, port-forward) run on after the HTTP `Upgrade: SPDY/3.1`.

pub mod compression;
mod dictionary;
pub mod error;
pub mod frame;
mod reader;
pub mod session;
mod stream;
mod writer;

pub use compression::Headers;
pub use error::SpdyError;
pub use session::{Incoming, PeerFlowControl, Session, SessionConfig};
pub use stream::Stream;

#[cfg(test)]
mod tests;
