//! Process trees from `/proc`: who is whose child, and whether a pid is still the same process.

use std::collections::BTreeMap;

/// The fields of `/proc/<pid>/stat` berth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    /// The command name (up to 15 bytes; may contain spaces and parentheses).
    pub comm: String,
    /// `R`, `S`, `D`, `Z` (zombie), `T`, …
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Start time in clock ticks since boot: with the pid, it identifies a process.
    pub start_time: u64,
}

impl ProcStat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Parses one `/proc/<pid>/stat` line; `None` if it is malformed.
///
/// `comm` sits in parentheses and may itself contain `)` and spaces, so the fields after it are
/// found from the *last* `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)?.chars().next()?;
    Some(ProcStat {
        pid,
        comm,
        state,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

/// Reads one process's stat; `None` if it does not exist (any more).
pub fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Every process visible in `/proc` right now. Processes that end while being read are skipped.
pub fn all_processes() -> std::io::Result<Vec<ProcStat>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(stat) = read_stat(pid) {
            out.push(stat);
        }
    }
    Ok(out)
}

/// Pids of every descendant of `root` in `procs` (children, their children, …), excluding
/// `root` itself, in breadth-first order. Pure.
pub fn descendants(procs: &[ProcStat], root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in procs {
        if p.pid != p.ppid {
            children.entry(p.ppid).or_default().push(p.pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = std::collections::BTreeSet::from([root]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child) {
                out.push(child);
                queue.push_back(child);
            }
        }
    }
    out
}

/// A process, identified beyond its pid: pids are recycled, start times are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    pub start_time: u64,
}

impl Identity {
    /// The identity of a running process.
    pub fn of(pid: u32) -> Option<Identity> {
        read_stat(pid).map(|s| Identity {
            pid,
            start_time: s.start_time,
        })
    }

    /// Whether this very process still runs (not a zombie, not a recycled pid).
    pub fn is_alive(&self) -> bool {
        read_stat(self.pid).is_some_and(|s| s.start_time == self.start_time && !s.is_zombie())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from a Linux 6.x machine (the tail of the line shortened after field 22+).
    const SLEEP: &str = "4242 (sleep) S 4200 4200 4100 34816 4242 4194304 95 0 0 0 0 0 0 0 20 0 1 0 987654 2351104 210 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    const NASTY: &str = "77 (a) b) (c ) Z 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";

    #[test]
    fn parses_a_recorded_line() {
        let s = parse_stat(SLEEP).unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 4242,
                comm: "sleep".into(),
                state: 'S',
                ppid: 4200,
                pgrp: 4200,
                session: 4100,
                start_time: 987_654
            }
        );
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_does_not_confuse_it() {
        let s = parse_stat(NASTY).unwrap();
        assert_eq!(s.comm, "a) b) (c ");
        assert!(s.is_zombie());
        assert_eq!((s.ppid, s.start_time), (1, 5));
    }

    #[test]
    fn malformed_lines_are_none() {
        for bad in ["", "12", "12 (x", "x (y) S 1 2 3", ") (", "1 (x) S a 1 1"] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    fn p(pid: u32, ppid: u32) -> ProcStat {
        ProcStat {
            pid,
            comm: "x".into(),
            state: 'S',
            ppid,
            pgrp: pid,
            session: pid,
            start_time: 1,
        }
    }

    #[test]
    fn descendants_are_found_breadth_first_and_only_below_the_root() {
        let procs = [
            p(1, 0),
            p(10, 1),
            p(11, 10),
            p(12, 10),
            p(13, 11),
            p(20, 1),
            p(21, 20),
        ];
        assert_eq!(descendants(&procs, 10), [11, 12, 13]);
        assert_eq!(descendants(&procs, 13), Vec::<u32>::new());
        assert_eq!(descendants(&procs, 99), Vec::<u32>::new());
        // A malformed table with a cycle terminates.
        assert_eq!(descendants(&[p(5, 6), p(6, 5)], 5), [6]);
    }

    proptest::proptest! {
        #[test]
        fn parse_stat_never_panics(s in ".*") {
            let _ = parse_stat(&s);
        }

        #[test]
        fn descendants_terminate_and_exclude_the_root(edges in proptest::collection::vec((0u32..50, 0u32..50), 0..100), root in 0u32..50) {
            let procs: Vec<ProcStat> = edges.iter().map(|(a, b)| p(*a, *b)).collect();
            let d = descendants(&procs, root);
            proptest::prop_assert!(!d.contains(&root));
            let unique: std::collections::BTreeSet<_> = d.iter().collect();
            proptest::prop_assert_eq!(unique.len(), d.len());
        }
    }
}
