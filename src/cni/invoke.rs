//! Running one plugin binary as the CNI spec's runtime does: `CNI_*`
//! environment, the config on stdin, the result or error on stdout, each
//! call bounded by a timeout (the process is killed when it runs out).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

use super::result::describe_failure;

/// The environment of one call (everything but the plugin's stdin).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub command: &'static str,
    pub container_id: &'a str,
    /// `/proc/<pid>/ns/net`, or empty at a DEL whose namespace is gone.
    pub netns: &'a str,
    pub if_name: &'a str,
    pub args: &'a str,
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

/// The first `<dir>/<type>` that exists, in `--cni-bin-dir` order.
pub fn find_plugin(bin_dirs: &[PathBuf], plugin_type: &str) -> Option<PathBuf> {
    bin_dirs
        .iter()
        .map(|d| d.join(plugin_type))
        .find(|p| is_plugin(p))
}

/// Runs `plugin_type` and returns what it printed as JSON (`None` when it
/// printed nothing, as DEL may).
pub async fn run(call: &Call<'_>, plugin_type: &str, stdin: &Value) -> Result<Option<Value>> {
    let what = format!("CNI plugin {plugin_type} {}", call.command);
    let binary = find_plugin(call.bin_dirs, plugin_type).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "{what}: no plugin binary {plugin_type:?} in {}",
            join(call.bin_dirs)
        ))
    })?;
    let mut command = tokio::process::Command::new(&binary);
    command
        .env("CNI_COMMAND", call.command)
        .env("CNI_PATH", join_paths(call.bin_dirs));
    // STATUS and GC concern the whole network, not one attachment: the
    // spec gives them only CNI_COMMAND and CNI_PATH.
    if matches!(call.command, "ADD" | "DEL" | "CHECK") {
        command
            .env("CNI_CONTAINERID", call.container_id)
            .env("CNI_NETNS", call.netns)
            .env("CNI_IFNAME", call.if_name)
            .env("CNI_ARGS", call.args);
    } else {
        for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
            command.env_remove(var);
        }
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::internal(format!("{what}: cannot run {}: {e}", binary.display())))?;
    let input = stdin.to_string();
    let mut pipe = child.stdin.take();
    let finished = tokio::time::timeout(call.timeout, async move {
        if let Some(p) = pipe.as_mut() {
            // A plugin that exits without reading is judged by its exit code.
            let _ = p.write_all(input.as_bytes()).await;
        }
        drop(pipe);
        child.wait_with_output().await
    })
    .await;
    let output = match finished {
        Err(_) => {
            return Err(Error::DeadlineExceeded {
                what: format!("{what} (killed)"),
                after: call.timeout,
            });
        }
        Ok(Err(e)) => return Err(Error::internal(format!("{what}: {e}"))),
        Ok(Ok(output)) => output,
    };
    tracing::debug!(plugin = plugin_type, command = call.command, status = %output.status, "CNI plugin finished");
    if !output.status.success() {
        return Err(Error::internal(format!(
            "{what} failed: {}",
            describe_failure(&output.stdout, &output.stderr, &output.status.to_string())
        )));
    }
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&output.stdout)
        .map(Some)
        .map_err(|e| Error::internal(format!("{what}: its output is not JSON ({e})")))
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn join(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a path names an executable file.
pub fn is_plugin(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
