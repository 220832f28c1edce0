//! The one-shot subcommands besides serving: building the pause image and
//! checking a host before docker-cri serves on it.

mod check;
mod pause_image;

pub use check::{Check, CheckReport, Outcome, check};
pub use pause_image::pause_image;
