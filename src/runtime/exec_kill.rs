//! Killing an exec'd process. Docker has no exec-kill, so a timed-out exec
//! (a hung probe) is killed here by host pid, with its descendants, after
//! checking that the pid still is that exec's process.

use std::sync::Arc;

use crate::docker::DockerClient;

/// A process as identified at one instant: pid plus start time, so that a
/// reused pid is never signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcId {
    pid: i32,
    start_time: u64,
}

/// Kills the exec's process tree when dropped armed: a caller that gives up
/// (timeout, client deadline) must not leave the process running.
pub(crate) struct KillOnDrop {
    docker: Arc<DockerClient>,
    exec_id: String,
    container_pid: i32,
    armed: bool,
}

impl KillOnDrop {
    pub fn new(docker: Arc<DockerClient>, exec_id: String, container_pid: i32) -> Self {
        KillOnDrop {
            docker,
            exec_id,
            container_pid,
            armed: true,
        }
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Kills now and waits for the attempt to finish.
    pub async fn kill(mut self) {
        self.armed = false;
        kill_exec(&self.docker, &self.exec_id, self.container_pid).await;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (docker, exec_id, pid) = (
            self.docker.clone(),
            std::mem::take(&mut self.exec_id),
            self.container_pid,
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { kill_exec(&docker, &exec_id, pid).await });
        }
    }
}

/// Best effort: failures are logged, never returned (the caller is already
/// answering with the timeout).
pub(crate) async fn kill_exec(docker: &DockerClient, exec_id: &str, container_pid: i32) {
    let state = match docker.inspect_exec(exec_id).await {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(exec_id, %error, "cannot inspect the timed-out exec to kill it");
            return;
        }
    };
    let Some(pid) = state.pid.filter(|_| state.running) else {
        return;
    };
    let tree = match tokio::task::spawn_blocking(move || process_tree(pid, container_pid)).await {
        Ok(Some(tree)) => tree,
        Ok(None) => {
            tracing::warn!(exec_id, pid, "exec pid is not in the container; not killed");
            return;
        }
        Err(_) => return,
    };
    // Docker still reports this pid as the running exec: the tree read above
    // is that exec's, and start times guard every signal below.
    match docker.inspect_exec(exec_id).await {
        Ok(again) if again.running && again.pid == Some(pid) => {}
        _ => return,
    }
    let killed =
        tokio::task::spawn_blocking(move || tree.iter().filter(|p| kill_if_same(**p)).count())
            .await
            .unwrap_or(0);
    tracing::info!(exec_id, pid, killed, "killed the timed-out exec");
}

/// The process and its descendants, or `None` when `pid` is not in the
/// container's pid namespace.
fn process_tree(pid: i32, container_pid: i32) -> Option<Vec<ProcId>> {
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    if container_pid > 0 && (ns(pid).is_none() || ns(pid) != ns(container_pid)) {
        return None;
    }
    let root = ProcId {
        pid,
        start_time: read_stat(pid)?.1,
    };
    // (pid, ppid, start time) of every process, read once.
    let all: Vec<(i32, i32, u64)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| read_stat(p).map(|(ppid, start)| (p, ppid, start)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].pid;
        for (p, ppid, start) in &all {
            if *ppid == parent && !tree.iter().any(|t| t.pid == *p) {
                tree.push(ProcId {
                    pid: *p,
                    start_time: *start,
                });
            }
        }
        i += 1;
    }
    Some(tree)
}

fn kill_if_same(p: ProcId) -> bool {
    if read_stat(p.pid).map(|s| s.1) != Some(p.start_time) {
        return false;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), nix::sys::signal::SIGKILL).is_ok()
}

/// (ppid, start time in clock ticks) from /proc/<pid>/stat.
fn read_stat(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(i32, u64)> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. After it: state(3) ppid(4) ... starttime(22).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_odd_command_name() {
        let line = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 1";
        assert_eq!(parse_stat(line), Some((7, 98765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_found_with_its_start_time() {
        let me = std::process::id() as i32;
        let tree = process_tree(me, me).unwrap();
        assert_eq!(tree[0].pid, me);
        assert!(tree[0].start_time > 0);
    }
}
