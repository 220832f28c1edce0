//! Pure parsers for the kernel's text formats: cgroup interface files (v1
//! and v2), pressure-stall files and `/proc/<pid>/net/dev`. No I/O here.

use std::collections::HashMap;

/// A flat-keyed file (`memory.stat`, `cpu.stat`, `cpuacct.stat`,
/// `memory.events`): one `key value` pair a line. Unparsable lines are
/// skipped: kernels add keys over time.
pub fn flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key, value))
        })
        .collect()
}

/// A single-value file (`memory.current`, `cpuacct.usage`, `pids.current`).
pub fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A limit file: a number, or `max` (v2) for none. v1 writes "no limit" as
/// a huge page-aligned number; anything at or above 2^62 counts as none,
/// as cAdvisor does.
pub fn limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse().ok().and_then(limited)
}

/// A v1 limit value, `None` when it means "no limit".
pub fn limited(value: u64) -> Option<u64> {
    const UNLIMITED: u64 = 1 << 62;
    (value < UNLIMITED).then_some(value)
}

/// v2 `cpu.max`: `<quota|max> <period>`.
pub fn cpu_max(text: &str) -> (Option<u64>, Option<u64>) {
    let mut parts = text.split_whitespace();
    let quota = parts.next().and_then(|q| q.parse().ok());
    let period = parts.next().and_then(|p| p.parse().ok());
    (quota, period)
}

/// One line of a pressure-stall file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Microseconds, as the kernel counts.
    pub total_us: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Psi {
    pub some: PsiLine,
    /// Absent in `cpu.pressure` of kernels before 5.13.
    pub full: Option<PsiLine>,
}

/// A `*.pressure` file:
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and a `full` line.
pub fn psi(text: &str) -> Option<Psi> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let kind = parts.next();
        let mut out = PsiLine::default();
        let mut complete = 0;
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => out.avg10 = v.parse().ok()?,
                "avg60" => out.avg60 = v.parse().ok()?,
                "avg300" => out.avg300 = v.parse().ok()?,
                "total" => out.total_us = v.parse().ok()?,
                _ => continue,
            }
            complete += 1;
        }
        if complete != 4 {
            continue;
        }
        match kind {
            Some("some") => some = Some(out),
            Some("full") => full = Some(out),
            _ => {}
        }
    }
    Some(Psi { some: some?, full })
}

/// Block I/O of one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceIo {
    pub major: u64,
    pub minor: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
pub fn io_stat(text: &str) -> Vec<DeviceIo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(device) else {
            continue;
        };
        let mut d = DeviceIo {
            major,
            minor,
            ..Default::default()
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse() else { continue };
            match k {
                "rbytes" => d.read_bytes = v,
                "wbytes" => d.write_bytes = v,
                "rios" => d.reads = v,
                "wios" => d.writes = v,
                _ => {}
            }
        }
        out.push(d);
    }
    out
}

/// v1 `blkio.throttle.io_service_bytes` and `blkio.throttle.io_serviced`
/// together: `8:0 Read 4096` lines, ending in a `Total` line.
pub fn blkio(service_bytes: &str, serviced: &str) -> Vec<DeviceIo> {
    let mut by_device: Vec<DeviceIo> = Vec::new();
    fn entry(by_device: &mut Vec<DeviceIo>, major: u64, minor: u64) -> &mut DeviceIo {
        let i = match by_device
            .iter()
            .position(|d| d.major == major && d.minor == minor)
        {
            Some(i) => i,
            None => {
                by_device.push(DeviceIo {
                    major,
                    minor,
                    ..Default::default()
                });
                by_device.len() - 1
            }
        };
        &mut by_device[i]
    }
    for (text, bytes) in [(service_bytes, true), (serviced, false)] {
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(dev), Some(op), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let (Some((major, minor)), Ok(v)) = (device(dev), v.parse::<u64>()) else {
                continue;
            };
            let d = entry(&mut by_device, major, minor);
            match (op, bytes) {
                ("Read", true) => d.read_bytes = v,
                ("Write", true) => d.write_bytes = v,
                ("Read", false) => d.reads = v,
                ("Write", false) => d.writes = v,
                _ => {}
            }
        }
    }
    by_device
}

fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Counters of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// `/proc/<pid>/net/dev`: two header lines, then
/// `name: rx_bytes packets errs drop fifo frame compressed multicast
/// tx_bytes packets errs drop fifo colls carrier compressed`.
pub fn net_dev(text: &str) -> Vec<Interface> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let v: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.push(Interface {
            name: name.trim().to_string(),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    out
}

/// The first process in a `cgroup.procs` file.
pub fn first_pid(procs: &str) -> Option<i64> {
    procs.lines().find_map(|l| l.trim().parse().ok())
}
