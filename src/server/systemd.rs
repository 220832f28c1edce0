//! Running under systemd: the CRI socket handed over by socket activation
//! (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), readiness and stopping
//! reported through `NOTIFY_SOCKET`, and the watchdog kept fed. Outside
//! systemd every function here is a no-op or a clear error.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::error::{Error, Result};

/// The first socket-activation file descriptor (after stdin/out/err).
const SD_LISTEN_FDS_START: usize = 3;

/// What systemd passed in the environment, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// How many descriptors, starting at fd 3.
    pub count: usize,
    /// Their names (`FileDescriptorName=`), when systemd gave them.
    pub names: Vec<String>,
}

impl Activation {
    /// Reads `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`; `None` when they are
    /// absent or meant for another process.
    pub fn from_env(own_pid: u32) -> Option<Activation> {
        Self::parse(
            std::env::var("LISTEN_PID").ok().as_deref(),
            std::env::var("LISTEN_FDS").ok().as_deref(),
            std::env::var("LISTEN_FDNAMES").ok().as_deref(),
            own_pid,
        )
    }

    pub fn parse(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
        own_pid: u32,
    ) -> Option<Activation> {
        if pid?.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
        let count = fds?.trim().parse::<usize>().ok().filter(|n| *n > 0)?;
        let names = names
            .map(|n| n.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        Some(Activation { count, names })
    }

    /// The index of the socket to serve: the one named `name`, or the only
    /// (or first) one when no name is asked for.
    pub fn index_of(&self, name: Option<&str>) -> Result<usize> {
        match name {
            None => Ok(0),
            Some(wanted) => self
                .names
                .iter()
                .take(self.count)
                .position(|n| n == wanted)
                .ok_or_else(|| {
                    Error::FailedPrecondition(format!(
                        "fd://{wanted}: systemd passed no socket of that name (have: {})",
                        self.names.join(", ")
                    ))
                }),
        }
    }
}

/// Takes the activated UNIX listener for `fd://` or `fd://<name>`.
pub fn take_listener(name: Option<&str>) -> Result<std::os::unix::net::UnixListener> {
    let activation = Activation::from_env(std::process::id()).ok_or_else(|| {
        Error::FailedPrecondition(
            "container-runtime-endpoint fd:// needs systemd socket activation \
             (LISTEN_FDS and LISTEN_PID for this process); none was passed"
                .into(),
        )
    })?;
    let index = activation.index_of(name)?;
    // `listenfd` owns the one unsafe step of adopting an inherited fd; it
    // checks the descriptor is a listening UNIX stream socket.
    let mut fds = listenfd::ListenFd::from_env();
    let listener = fds
        .take_unix_listener(index)
        .map_err(|e| {
            Error::FailedPrecondition(format!(
                "systemd socket fd {}: {e}",
                SD_LISTEN_FDS_START + index
            ))
        })?
        .ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "systemd socket fd {} is not a UNIX stream socket",
                SD_LISTEN_FDS_START + index
            ))
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::internal(format!("systemd socket: {e}")))?;
    Ok(listener)
}

/// Sends one state line to systemd's notification socket, if there is one.
/// Returns whether a message was sent.
pub fn notify(state: &str) -> bool {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
        return false;
    };
    match send_notification(&path, state) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(socket = %path, state, "sd_notify failed: {e}");
            false
        }
    }
}

fn send_notification(path: &str, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// The watchdog interval systemd expects pings at (`WATCHDOG_USEC`, for
/// this process per `WATCHDOG_PID` when set).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    let usec = usec?.trim().parse::<u64>().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval for as long as the runtime runs.
pub fn spawn_watchdog() {
    let interval = watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    let Some(interval) = interval else { return };
    tracing::info!(?interval, "systemd watchdog enabled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval / 2);
        loop {
            tick.tick().await;
            notify("WATCHDOG=1");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_is_only_for_this_process() {
        assert_eq!(
            Activation::parse(Some("42"), Some("2"), Some("cri:metrics"), 42),
            Some(Activation {
                count: 2,
                names: vec!["cri".into(), "metrics".into()]
            })
        );
        assert_eq!(Activation::parse(Some("41"), Some("1"), None, 42), None);
        assert_eq!(Activation::parse(None, Some("1"), None, 42), None);
        assert_eq!(Activation::parse(Some("42"), Some("0"), None, 42), None);
        assert_eq!(Activation::parse(Some("42"), Some("x"), None, 42), None);
    }

    #[test]
    fn sockets_are_chosen_by_name() {
        let a = Activation::parse(Some("1"), Some("2"), Some("metrics:cri"), 1).unwrap();
        assert_eq!(a.index_of(None).unwrap(), 0);
        assert_eq!(a.index_of(Some("cri")).unwrap(), 1);
        assert!(a.index_of(Some("other")).is_err());
    }

    #[test]
    fn watchdog_interval_per_pid() {
        assert_eq!(
            watchdog_interval(Some("3000000"), None, 7),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            watchdog_interval(Some("3000000"), Some("7"), 7),
            Some(Duration::from_secs(3))
        );
        assert_eq!(watchdog_interval(Some("3000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
    }

    #[test]
    fn notifications_reach_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        send_notification(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
