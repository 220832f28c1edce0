//! Connecting to a port inside a pod: the socket is created in the pod's
//! network namespace by a short-lived thread that joins it, then handed to
//! tokio. No nsenter, no socat.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to localhost:`port` (IPv4, then IPv6) in the network namespace
/// of process `pid` (the sandbox's pause process).
pub async fn connect(pid: i32, port: u16) -> io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A dedicated thread, because setns changes the calling thread for
    // good: it must never run other tasks afterwards. It exits right after.
    std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let _ = tx.send(connect_in(pid, port));
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("netns connect thread died"))??;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

fn connect_in(pid: i32, port: u16) -> io::Result<TcpStream> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            // Report the IPv4 failure when the pod has no IPv6 at all.
            TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|e6| {
                if e6.kind() == io::ErrorKind::ConnectionRefused {
                    e6
                } else {
                    e4
                }
            })
        }
    }
}
