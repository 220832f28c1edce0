//! Cgroup readings → CRI stats messages. A figure the kernel did not give
//! stays absent rather than zero.

use crate::api;
use crate::stats::layer::LayerUsage;
use crate::stats::parse::{Interface, Psi, PsiLine};
use crate::stats::reading::Reading;

fn u64v(v: Option<u64>) -> Option<api::UInt64Value> {
    v.map(|value| api::UInt64Value { value })
}

/// The CRI's PSI totals are nanoseconds; the kernel counts microseconds.
pub fn psi(p: Option<&Psi>) -> Option<api::PsiStats> {
    let data = |l: &PsiLine| api::PsiData {
        total: l.total_us.saturating_mul(1000),
        avg10: l.avg10,
        avg60: l.avg60,
        avg300: l.avg300,
    };
    p.map(|p| api::PsiStats {
        full: p.full.as_ref().map(data),
        some: Some(data(&p.some)),
    })
}

/// `nano_cores`: the rate since an earlier sample, when there is one.
pub fn cpu(r: &Reading, nano_cores: Option<u64>) -> Option<api::CpuUsage> {
    let c = r.cpu.as_ref()?;
    Some(api::CpuUsage {
        timestamp: r.timestamp_ns,
        usage_core_nano_seconds: u64v(Some(c.usage_ns)),
        usage_nano_cores: u64v(nano_cores),
        psi: psi(c.psi.as_ref()),
    })
}

pub fn memory(r: &Reading) -> Option<api::MemoryUsage> {
    let m = r.memory.as_ref()?;
    Some(api::MemoryUsage {
        timestamp: r.timestamp_ns,
        working_set_bytes: u64v(Some(m.working_set)),
        available_bytes: u64v(m.available()),
        usage_bytes: u64v(Some(m.usage)),
        rss_bytes: u64v(m.rss),
        page_faults: u64v(m.pgfault),
        major_page_faults: u64v(m.pgmajfault),
        psi: psi(m.psi.as_ref()),
    })
}

pub fn swap(r: &Reading) -> Option<api::SwapUsage> {
    let s = r.swap.as_ref()?;
    Some(api::SwapUsage {
        timestamp: r.timestamp_ns,
        swap_available_bytes: u64v(s.available()),
        swap_usage_bytes: u64v(Some(s.usage)),
    })
}

pub fn io(r: &Reading) -> Option<api::IoUsage> {
    r.io_psi.as_ref().map(|p| api::IoUsage {
        timestamp: r.timestamp_ns,
        psi: psi(Some(p)),
    })
}

pub fn writable_layer(l: &LayerUsage) -> api::FilesystemUsage {
    api::FilesystemUsage {
        timestamp: l.timestamp_ns,
        fs_id: Some(api::FilesystemIdentifier {
            mountpoint: l.mountpoint.to_string_lossy().into_owned(),
        }),
        used_bytes: u64v(Some(l.usage.bytes)),
        inodes_used: u64v(Some(l.usage.inodes)),
    }
}

pub fn process(r: &Reading) -> Option<api::ProcessUsage> {
    r.pids.map(|p| api::ProcessUsage {
        timestamp: r.timestamp_ns,
        process_count: u64v(Some(p.current)),
    })
}

pub fn network(timestamp_ns: i64, interfaces: &[Interface], default: &str) -> api::NetworkUsage {
    let usage = |i: &Interface| api::NetworkInterfaceUsage {
        name: i.name.clone(),
        rx_bytes: u64v(Some(i.rx_bytes)),
        rx_errors: u64v(Some(i.rx_errors)),
        tx_bytes: u64v(Some(i.tx_bytes)),
        tx_errors: u64v(Some(i.tx_errors)),
    };
    api::NetworkUsage {
        timestamp: timestamp_ns,
        default_interface: interfaces.iter().find(|i| i.name == default).map(usage),
        interfaces: interfaces.iter().map(usage).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::reading::{Cpu, Memory, Swap};

    #[test]
    fn absent_figures_stay_absent() {
        let r = Reading {
            timestamp_ns: 42,
            memory: Some(Memory {
                usage: 100,
                working_set: 70,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(cpu(&r, Some(1)), None);
        let m = memory(&r).unwrap();
        assert_eq!(m.timestamp, 42);
        assert_eq!(m.working_set_bytes, Some(api::UInt64Value { value: 70 }));
        assert_eq!(m.available_bytes, None, "no limit, no available");
        assert_eq!(m.rss_bytes, None);
        assert_eq!(swap(&r), None);
        assert_eq!(io(&r), None);
    }

    #[test]
    fn cpu_and_swap_and_psi_units() {
        let r = Reading {
            timestamp_ns: 7,
            cpu: Some(Cpu {
                usage_ns: 5_000,
                psi: Some(Psi {
                    some: PsiLine {
                        avg10: 1.5,
                        avg60: 0.5,
                        avg300: 0.25,
                        total_us: 3,
                    },
                    full: None,
                }),
                ..Default::default()
            }),
            swap: Some(Swap {
                usage: 10,
                limit: Some(25),
            }),
            ..Default::default()
        };
        let c = cpu(&r, None).unwrap();
        assert_eq!(c.usage_core_nano_seconds.unwrap().value, 5_000);
        assert_eq!(c.usage_nano_cores, None);
        let p = c.psi.unwrap();
        assert_eq!(p.some.unwrap().total, 3_000);
        assert_eq!(p.full, None);
        let s = swap(&r).unwrap();
        assert_eq!(s.swap_usage_bytes.unwrap().value, 10);
        assert_eq!(s.swap_available_bytes.unwrap().value, 15);
    }

    #[test]
    fn network_names_the_default_interface() {
        let ifs = vec![
            Interface {
                name: "eth0".into(),
                rx_bytes: 5,
                tx_bytes: 6,
                ..Default::default()
            },
            Interface {
                name: "net1".into(),
                ..Default::default()
            },
        ];
        let n = network(1, &ifs, "eth0");
        assert_eq!(n.default_interface.as_ref().unwrap().name, "eth0");
        assert_eq!(n.default_interface.unwrap().tx_bytes.unwrap().value, 6);
        assert_eq!(n.interfaces.len(), 2);
        assert_eq!(network(1, &ifs[1..], "eth0").default_interface, None);
    }
}
