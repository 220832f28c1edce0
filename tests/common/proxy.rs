//! A UNIX-socket proxy to the real dockerd that records the requests
//! docker-cri makes and can hold one kind back, to count Docker calls and to
//! catch docker-cri in the middle of an operation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

/// Requests whose request line contains `needle` are forwarded only after
/// `delay`, or dropped if docker-cri hangs up first. `seen` gets a permit
/// each time one arrives.
#[derive(Clone)]
pub struct Hold {
    pub needle: String,
    pub delay: Duration,
    pub seen: Arc<Notify>,
}

pub struct DockerProxy {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DockerProxy {
    pub fn start(path: &Path, hold: Option<Hold>) -> DockerProxy {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorded = lines.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (recorded, hold) = (recorded.clone(), hold.clone());
                tokio::spawn(async move {
                    if let Ok(outbound) = UnixStream::connect(super::docker_socket()).await {
                        forward(inbound, outbound, recorded, hold).await;
                    }
                });
            }
        });
        DockerProxy {
            path: path.to_path_buf(),
            lines,
            task,
        }
    }

    /// Request lines ("GET /v1.43/info HTTP/1.1") whose path ends with
    /// `suffix` (before any query).
    pub fn count(&self, suffix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                let path = l.split(' ').nth(1).unwrap_or("");
                path.split('?').next().unwrap_or("").ends_with(suffix)
            })
            .count()
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn forward(
    mut inbound: UnixStream,
    outbound: UnixStream,
    recorded: Arc<Mutex<Vec<String>>>,
    hold: Option<Hold>,
) {
    let (mut in_read, mut in_write) = inbound.split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let back = async { tokio::io::copy(&mut out_read, &mut in_write).await };
    let ahead = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match in_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // hyper writes a request head in one piece; bodies (JSON, tar)
            // hold no line shaped like a request line.
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let heads: Vec<String> = text
                .split("\r\n")
                .filter(|l| {
                    ["GET ", "POST ", "PUT ", "DELETE ", "HEAD "]
                        .iter()
                        .any(|m| l.starts_with(m))
                        && l.ends_with(" HTTP/1.1")
                })
                .map(str::to_string)
                .collect();
            let held = hold
                .as_ref()
                .filter(|h| heads.iter().any(|l| l.contains(&h.needle)));
            recorded.lock().unwrap().extend(heads);
            if let Some(h) = held {
                h.seen.notify_one();
                let mut probe = [0u8; 1];
                tokio::select! {
                    () = tokio::time::sleep(h.delay) => {}
                    // No pipelining: the client sends nothing more until it
                    // has an answer, so a read here ends only by hang-up.
                    _ = in_read.read(&mut probe) => return,
                }
            }
            if out_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = back => {}
        () = ahead => {}
    }
}
