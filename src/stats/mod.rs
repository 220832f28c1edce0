//! Resource usage read straight from the kernel: cgroup v1/v2 readers (pure parsing, fixture-tested), the cached writable-layer sampler, CPU rates and the cAdvisor metric descriptors.

pub mod du;
pub mod layer;
pub mod metrics;
pub mod parse;
pub mod process;
pub mod rate;
pub mod reader;
pub mod reading;

#[cfg(test)]
mod tests;
