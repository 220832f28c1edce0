//! The streaming server for exec, attach and port-forward.
pub mod spdy;
