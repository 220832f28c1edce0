//! Readers against fixture trees (`fixtures/`) shaped like real hosts:
//! cgroup v2 under the systemd and cgroupfs drivers, cgroup v1 under both,
//! with file contents in the kernel's documented formats.

use std::path::{Path, PathBuf};

use super::parse;
use super::process;
use super::reader::{Depth, first_pid, read};
use crate::cgroups::{Cgroups, Version};

const MIB: u64 = 1 << 20;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/stats/fixtures")
        .join(name)
}

fn host(name: &str) -> Cgroups {
    let f = fixture(name);
    Cgroups::at(&f.join("cg"), &f.join("proc"), &f.join("hp"))
}

#[test]
fn v2_systemd_container() {
    let cg = host("v2");
    assert_eq!(cg.version(), Version::V2);
    let placement = cg.placement_of(4242).unwrap();
    assert!(
        placement
            .unified
            .as_ref()
            .unwrap()
            .ends_with("kubepods-burstable-pod1234.slice/docker-c0ffee0000000000000000000000000000000000000000000000000000000000.scope")
    );
    let r = read(&placement, Version::V2, Depth::Stats);
    let cpu = r.cpu.clone().unwrap();
    assert_eq!(cpu.usage_ns, 2_500_000_000);
    let psi = cpu.psi.unwrap();
    assert_eq!(psi.some.total_us, 123_456);
    assert_eq!(psi.some.avg10, 1.5);
    assert_eq!(psi.full.unwrap().total_us, 23_456);
    let m = r.memory.clone().unwrap();
    assert_eq!(m.usage, 104 * MIB);
    // v2: usage − inactive_file
    assert_eq!(m.working_set, 79 * MIB);
    assert_eq!(m.limit, Some(256 * MIB));
    assert_eq!(m.available(), Some(177 * MIB));
    assert_eq!(m.rss, Some(40 * MIB));
    assert_eq!((m.pgfault, m.pgmajfault), (Some(123_456), Some(78)));
    assert_eq!(m.psi.unwrap().full.unwrap().total_us, 500);
    let swap = r.swap.unwrap();
    assert_eq!((swap.usage, swap.available()), (3 * MIB, Some(13 * MIB)));
    assert_eq!(r.pids, None, "a container's stats need no process count");
    assert_eq!(r.io_psi.unwrap().some.total_us, 9000);
    let pod_depth = read(&placement, Version::V2, Depth::Pod);
    assert_eq!(pod_depth.pids.unwrap().current, 3);
    // The stats depth leaves the metrics-only files alone.
    assert_eq!(r.threads, None);
    assert!(r.io.is_empty());
    assert_eq!(first_pid(&placement, Version::V2), Some(4242));
}

#[test]
fn v2_metrics_depth_reads_limits_throttling_and_io() {
    let cg = host("v2");
    let r = read(&cg.placement_of(4242).unwrap(), Version::V2, Depth::Metrics);
    let cpu = r.cpu.unwrap();
    assert_eq!(cpu.user_ns, Some(2_000_000_000));
    assert_eq!(cpu.system_ns, Some(500_000_000));
    assert_eq!(
        (cpu.periods, cpu.throttled_periods, cpu.throttled_ns),
        (Some(100), Some(7), Some(350_000_000))
    );
    assert_eq!(r.memory.as_ref().unwrap().max_usage, Some(120 * MIB));
    // memory.stat's own `kernel` sum, and memory.events' oom_kill.
    assert_eq!(r.memory.as_ref().unwrap().kernel, Some(2 * MIB));
    assert_eq!(r.memory.as_ref().unwrap().oom_kills, Some(1));
    assert_eq!(r.threads, Some(5));
    assert_eq!(r.pids.unwrap().max, Some(1024));
    assert_eq!(r.io.len(), 2);
    assert_eq!((r.io[0].read_bytes, r.io[0].writes), (MIB, 20));
    assert_eq!(r.spec.cpu_quota, Some(50_000));
    assert_eq!(r.spec.cpu_period, Some(100_000));
    // runc's shares→weight mapping inverted: 2 + (100 − 1)·262142/9999.
    assert_eq!(r.spec.cpu_shares, Some(2597));
    assert_eq!(r.spec.memory_reservation, None);
    assert_eq!(r.spec.swap_limit, Some(16 * MIB));
}

#[test]
fn v2_pod_cgroup_is_the_parent_of_the_sandbox() {
    let cg = host("v2");
    let pod = cg.placement_of(4242).unwrap().parent();
    assert!(
        pod.unified
            .as_ref()
            .unwrap()
            .ends_with("kubepods-burstable-pod1234.slice")
    );
    let r = read(&pod, Version::V2, Depth::Pod);
    assert_eq!(r.cpu.unwrap().usage_ns, 2_600_000_000);
    let m = r.memory.unwrap();
    assert_eq!(m.working_set, 84 * MIB);
    assert_eq!(m.limit, None, "max is no limit");
    assert_eq!(r.pids.unwrap().current, 4);
}

#[test]
fn v2_cgroupfs_driver_with_few_files() {
    let cg = host("v2");
    let placement = cg.placement_of(4343).unwrap();
    assert!(
        placement
            .unified
            .as_ref()
            .unwrap()
            .ends_with("kubepods/burstable/pod1234/c0ffee0000000000000000000000000000000000000000000000000000000000")
    );
    let r = read(&placement, Version::V2, Depth::Metrics);
    assert_eq!(r.cpu.as_ref().unwrap().usage_ns, 1_000_000);
    assert_eq!(r.memory.as_ref().unwrap().working_set, 7 * MIB);
    // No swap accounting, no pressure files, no pids controller: absent.
    assert_eq!(r.swap, None);
    assert_eq!(r.cpu.unwrap().psi, None);
    assert_eq!(r.pids, None);
    assert_eq!(r.io_psi, None);
}

#[test]
fn v1_cgroupfs_container_with_comounted_cpu() {
    let cg = host("v1");
    assert_eq!(cg.version(), Version::V1);
    let placement = cg.placement_of(77).unwrap();
    let cpuacct = placement.controller("cpuacct").unwrap();
    assert!(
        cpuacct.starts_with(fixture("v1/cg/cpu,cpuacct")),
        "{cpuacct:?}"
    );
    assert_eq!(placement.controller("cpu"), Some(cpuacct));
    assert!(placement.controller("name=systemd").is_none());
    let r = read(&placement, Version::V1, Depth::Metrics);
    let cpu = r.cpu.unwrap();
    assert_eq!(cpu.usage_ns, 7_500_000_000);
    // cpuacct.stat counts USER_HZ ticks.
    assert_eq!(cpu.user_ns, Some(6_000_000_000));
    assert_eq!(cpu.throttled_ns, Some(200_000_000));
    let m = r.memory.unwrap();
    // v1: usage − total_inactive_file
    assert_eq!(m.working_set, 40 * MIB);
    assert_eq!(m.available(), Some(88 * MIB));
    assert_eq!(m.rss, Some(30 * MIB));
    assert_eq!((m.pgfault, m.own_pgfault), (Some(1000), Some(900)));
    assert_eq!(m.failcnt, Some(3));
    assert_eq!(m.reservation, None, "the unlimited soft limit is none");
    let swap = r.swap.unwrap();
    assert_eq!(swap.usage, MIB);
    // memsw covers memory + swap: 160 − 128 MiB of swap allowed.
    assert_eq!(swap.limit, Some(32 * MIB));
    assert_eq!(r.pids.unwrap().current, 2);
    assert_eq!(r.pids.unwrap().max, None);
    assert_eq!(r.threads, Some(3));
    assert_eq!(r.io.len(), 1);
    assert_eq!((r.io[0].read_bytes, r.io[0].write_bytes), (4096, 8192));
    assert_eq!((r.io[0].reads, r.io[0].writes), (1, 2));
    assert_eq!(r.spec.cpu_shares, Some(512));
    assert_eq!(r.spec.cpu_quota, None, "-1 is no quota");
    assert_eq!(first_pid(&placement, Version::V1), Some(77));
}

#[test]
fn v1_systemd_best_effort_container() {
    let cg = host("v1");
    let placement = cg.placement_of(88).unwrap();
    assert!(
        placement
            .controller("memory")
            .unwrap()
            .ends_with("kubepods-besteffort-pod5678.slice/docker-c0ffee0000000000000000000000000000000000000000000000000000000000.scope")
    );
    let r = read(&placement, Version::V1, Depth::Pod);
    assert_eq!(r.cpu.unwrap().usage_ns, 42);
    let m = r.memory.unwrap();
    assert_eq!(m.working_set, 4 * MIB);
    assert_eq!(m.limit, None, "v1's huge default is no limit");
    assert_eq!(m.available(), None);
    assert_eq!(r.swap, None, "no total_swap: swap not accounted");
    assert_eq!(r.pids, None, "no pids controller in this placement");
}

#[test]
fn a_vanished_cgroup_reads_empty() {
    let cg = host("v1");
    let mut placement = cg.placement_of(77).unwrap();
    for (_, dir) in &mut placement.v1 {
        *dir = dir.join("gone");
    }
    assert!(read(&placement, Version::V1, Depth::Stats).is_empty());
}

#[test]
fn network_of_the_pause_process() {
    let f = fixture("v2");
    let ifs = process::interfaces(&f.join("proc"), 4242).unwrap();
    assert_eq!(ifs.len(), 1, "loopback is left out: {ifs:?}");
    let eth0 = &ifs[0];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(
        (eth0.rx_bytes, eth0.rx_errors, eth0.rx_dropped),
        (5_000_000, 1, 2)
    );
    assert_eq!(
        (eth0.tx_bytes, eth0.tx_errors, eth0.tx_dropped),
        (3_000_000, 3, 4)
    );
    assert_eq!(eth0.tx_packets, 2500);
    assert!(process::interfaces(&f.join("proc"), 1).is_none());
}

#[test]
fn parsers_reject_garbage_without_panicking() {
    assert_eq!(parse::single("12\n"), Some(12));
    assert_eq!(parse::single("max\n"), None);
    assert_eq!(parse::limit("max\n"), None);
    assert_eq!(parse::limit("9223372036854771712\n"), None);
    assert_eq!(parse::limit("1048576\n"), Some(1 << 20));
    assert_eq!(parse::psi("some avg10=x avg60=0 avg300=0 total=1\n"), None);
    assert_eq!(
        parse::psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"),
        None
    );
    let p = parse::psi("some avg10=0.10 avg60=0.20 avg300=0.30 total=5\n").unwrap();
    assert_eq!((p.some.total_us, p.full), (5, None));
    assert_eq!(parse::flat_keyed("a 1\nb\nc x\nd 4 extra\n").len(), 2);
    assert_eq!(parse::net_dev("eth0: 1 2 3\n"), vec![]);
    assert!(parse::io_stat("bogus\n8:x rbytes=1\n").is_empty());
    assert_eq!(parse::first_pid("\n12\n13\n"), Some(12));
    assert_eq!(parse::cpu_max("max 100000\n"), (None, Some(100_000)));
}
