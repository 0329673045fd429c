//! What a tool's processes use, read from `/proc`: CPU time, context switches and resident memory
//! of a set of processes and all their descendants.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// A reading over a process tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// utime + stime of each process, plus cutime + cstime of the children it has reaped.
    pub cpu: Duration,
    /// Voluntary and involuntary context switches of every thread (how often they ran).
    pub switches: u64,
    /// The sum of every process's VmRSS.
    pub rss_kib: u64,
    pub processes: usize,
}

fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// The fields of `/proc/PID/stat` after the command name (which may contain anything): index 0
/// is the state (field 3 in proc(5)).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

// Indices into `stat_fields` (field number in proc(5) minus 4, the state being skipped).
const PPID: usize = 0;
const PGRP: usize = 1;
const UTIME: usize = 10;
const CSTIME: usize = 13;

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// `roots` and every process descended from them.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in all_pids() {
        if let Some(f) = stat_fields(pid) {
            children.entry(f[PPID] as u32).or_default().push(pid);
        }
    }
    let mut out: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().filter(|k| !roots.contains(k)));
        }
        i += 1;
    }
    out
}

/// Processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat_fields(pid).is_some_and(|f| f[PGRP] == pgid as u64))
        .collect()
}

fn status_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn switches(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            status_kib(&s, "voluntary_ctxt_switches:")
                + status_kib(&s, "nonvoluntary_ctxt_switches:")
        })
        .sum()
}

/// Reads CPU, switches and RSS of `roots` and their descendants.
pub fn sample(roots: &[u32]) -> Sample {
    let mut s = Sample::default();
    let mut ticks = 0;
    for pid in tree(roots) {
        let Some(f) = stat_fields(pid) else { continue };
        ticks += f[UTIME..=CSTIME].iter().sum::<u64>();
        s.switches += switches(pid);
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            s.rss_kib += status_kib(&status, "VmRSS:");
        }
        s.processes += 1;
    }
    s.cpu = Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64);
    s
}

/// CPU time alone (cheaper than a whole sample).
pub fn cpu(roots: &[u32]) -> Duration {
    let ticks: u64 = tree(roots)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| f[UTIME..=CSTIME].iter().sum::<u64>())
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}
