//! docker-cri: a Kubernetes CRI (`runtime.v1`) server that runs pods on the
//! Docker Engine.
//!
//! Layers: `server` (gRPC adapters) → `runtime` (CRI operations) →
//! `docker` (the Engine client), with pure CRI↔Docker translation in
//! `mapping`.

pub mod api;
pub mod cgroups;
pub mod client;
pub mod cni;
pub mod commands;
pub mod config;
pub mod docker;
pub mod error;
pub mod index;
pub mod logging;
pub mod logs;
pub mod mapping;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod streaming;

pub use error::{Error, Result};
