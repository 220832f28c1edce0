//! Pure translations between CRI values and Docker values. Nothing here does
//! I/O, so every function is tested table-by-table without a daemon.

pub mod auth;
pub mod container;
pub mod cri_log;
pub mod duration;
pub mod image;
pub mod image_ref;
pub mod info;
pub mod labels;
pub mod logs;
pub mod pod_resources;
pub mod sandbox;
pub mod security;
pub mod stats;
pub mod time;
pub mod validate;
