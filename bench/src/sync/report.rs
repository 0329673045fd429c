//! The Markdown report: machine, tool versions, one table per measurement with berth's ratio to
//! each peer, and berth against the SPEC §7 targets — or, over ssh (`-- remote`), the bytes
//! the connections carried and berth against the SPEC §10.4 target.

use std::fmt::Write as _;
use std::time::Duration;

use super::first_copy::FirstCopy;
use super::options::Options;
use super::session::{Direction, Session};
use super::tools::Tool;
use crate::machine;
use crate::remote::traffic::Bytes;
use crate::stats::{Summary, ms};

pub struct Results {
    /// The arguments after `sync`, as given.
    pub args: Vec<String>,
    pub opts: Options,
    pub versions: Vec<(String, String)>,
    pub sessions: Vec<Session>,
    pub first_copy: Option<Result<FirstCopy, String>>,
    pub took: Duration,
    /// `/proc/loadavg`'s three averages at the start and at the end of the run.
    pub load: [String; 2],
    /// Set when beta was reached over ssh (`-- remote`).
    pub ssh: Option<Ssh>,
}

/// What a run over ssh adds to the report.
pub struct Ssh {
    /// The OpenSSH client's version (the server is the same installation's).
    pub version: String,
    /// berth's first connection, which installed its own binary on the far side.
    pub install: Result<Duration, String>,
}

/// Bytes as a count with thousands separators.
fn bytes(b: u64) -> String {
    count(b as usize)
}

/// `up ↑ / down ↓` per edit (or per anything), rounded.
fn split(b: Bytes, per: f64) -> String {
    format!(
        "{} ↑ {} ↓",
        bytes((b.up as f64 / per).round() as u64),
        bytes((b.down as f64 / per).round() as u64)
    )
}

const DIRECTIONS: [Direction; 2] = [Direction::AlphaToBeta, Direction::BetaToAlpha];

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// berth's figure divided by a peer's ("0.10" = berth takes a tenth of the time).
fn ratio(berth: Option<Duration>, peer: Duration) -> String {
    match berth {
        Some(b) if !peer.is_zero() => {
            let r = b.as_secs_f64() / peer.as_secs_f64();
            if r < 0.1 {
                format!("{r:.4}")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "—".into(),
    }
}

/// The median, the mean of the middle two for an even count.
/// The median first copy of `tool`, cold or warm.
fn copy_median(fc: &FirstCopy, tool: Tool, cold: bool) -> Option<Duration> {
    fc.copies
        .iter()
        .find(|c| c.tool == tool)
        .and_then(|c| median(if cold { &c.cold } else { &c.warm }))
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// One row of the SPEC table: what is asked, what was measured and whether it passes.
struct Target {
    what: String,
    measured: String,
    result: &'static str,
}

impl Target {
    fn new(what: String, measured: Option<(String, bool)>) -> Target {
        match measured {
            Some((measured, ok)) => Target {
                what,
                measured,
                result: verdict(ok),
            },
            None => Target {
                what,
                measured: "—".into(),
                result: "not measured",
            },
        }
    }
}

fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**pass**" } else { "**miss**" }
}

impl Results {
    fn trees(&self) -> [usize; 2] {
        [self.opts.small_tree, self.opts.large_tree]
    }

    fn session(&self, tool: Tool, files: usize) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|s| s.tool == tool && s.files == files)
    }

    fn edit_summary(&self, tool: Tool, files: usize, d: Direction) -> Option<Summary> {
        let s = self.session(tool, files)?;
        let (_, e) = s.edits.iter().find(|(dir, _)| *dir == d)?;
        (!e.latencies.is_empty()).then(|| Summary::of(&e.latencies))
    }

    fn lost(&self, tool: Tool, files: usize, d: Direction) -> usize {
        self.session(tool, files)
            .and_then(|s| s.edits.iter().find(|(dir, _)| *dir == d))
            .map_or(0, |(_, e)| e.lost)
    }

    /// The subcommand that produced the report.
    fn command(&self) -> &'static str {
        if self.ssh.is_some() { "remote" } else { "sync" }
    }

    fn header(&self, md: &mut String) {
        let o = &self.opts;
        let command = self.command();
        md.push_str(if self.ssh.is_some() {
            "# Sync over ssh benchmark\n\n"
        } else {
            "# Sync benchmark\n\n"
        });
        if o.quick {
            let _ = write!(
                md,
                "> **Quick run** (`-- {command} --quick`): sizes far below the SPEC's; the \
                 figures show that the harness works, not how the tools compare. The full run is \
                 `cargo run --release --locked -p berth-bench -- {command}`.\n\n",
            );
        }
        let tools = match &self.ssh {
            Some(_) => {
                "beta is reached over ssh, through an `sshd` the benchmark starts on 127.0.0.1 \
                 with its own configuration, host key and authorized key in a temporary directory \
                 (`UsePAM no`, `StrictModes no`, public keys only), the client being the system's \
                 `ssh -F` with a configuration of the benchmark's. berth runs `berth debug sync \
                 ALPHA ssh://127.0.0.1:PORT/BETA` (`BERTH_SSH='ssh -F …'`; the far side is the \
                 copy of itself berth installed there by digest) and Unison `unison ALPHA \
                 ssh://127.0.0.1:PORT//BETA -sshargs '-F …'` (`-repeat watch` with the crates.io \
                 `unison-fsmonitor` on both sides); both ends are on this machine, so the \
                 harness writes and reads BETA directly. Mutagen is not measured: it cannot be \
                 installed from a package registry (it is not packaged in Debian, crates.io, \
                 PyPI or npm; PyPI's `mutagen` is an unrelated audio-tag library). The same \
                 trees as `-- sync`"
            }
            None => {
                "berth (`berth debug sync ALPHA BETA`), Unison (`-repeat watch` with the \
                 crates.io `unison-fsmonitor`) and Syncthing (two instances on 127.0.0.1, \
                 watcher delay 1 s, its minimum) are each measured on the same trees in the same \
                 run"
            }
        };
        let _ = write!(
            md,
            "Produced by `cargo run --release --locked -p berth-bench -- {command}{}` in {:.0} s. \
             {tools}. Trees are generated deterministically: three levels of directories, 50 \
             files each; the edit trees have {} and {} text files of 200 bytes to 4 KB.\n\n",
            self.args
                .iter()
                .map(|a| format!(" {a}"))
                .collect::<String>(),
            self.took.as_secs_f64(),
            count(o.small_tree),
            count(o.large_tree),
        );
        md.push_str("## Machine\n\n");
        md.push_str(&machine::describe());
        let _ = writeln!(
            md,
            "- load average (1, 5, 15 min): {} at the start, {} at the end",
            self.load[0], self.load[1]
        );
        md.push_str("\n## Tools\n\n| tool | version |\n|---|---|\n");
        for (tool, version) in &self.versions {
            let _ = writeln!(md, "| {tool} | {version} |");
        }
        if let Some(ssh) = &self.ssh {
            let _ = writeln!(md, "| ssh, sshd | {} |", ssh.version);
            let _ = match &ssh.install {
                Ok(d) => writeln!(
                    md,
                    "\nberth's first connection installed its binary on the far side (copied \
                     over the connection, checked by digest) in {} s, before anything was \
                     measured; every later run found it there.",
                    secs(*d)
                ),
                Err(e) => writeln!(md, "\nberth could not install itself on the far side: {e}"),
            };
        }
    }

    fn live_tools(&self) -> Vec<Tool> {
        self.opts
            .tools
            .iter()
            .copied()
            .filter(|t| t.is_live())
            .collect()
    }

    fn initial(&self, md: &mut String) {
        md.push_str(
            "\n## Initial sync\n\nEach tool starts on the tree in alpha and an empty beta; the \
             time runs until every file has arrived in beta (then a new file each way must \
             arrive before anything is measured). Seconds.\n\n| tree | tool | initial sync |\n\
             |---|---|---|\n",
        );
        for files in self.trees() {
            for tool in self.live_tools() {
                let cell = match self.session(tool, files).map(|s| &s.initial) {
                    Some(Ok(d)) => secs(*d),
                    Some(Err(_)) => "failed (see below)".into(),
                    None => "—".into(),
                };
                let _ = writeln!(md, "| {} | {} | {cell} |", count(files), tool.label());
            }
        }
    }

    /// How edits were spaced, in words.
    fn spacing(&self) -> String {
        format!(
            " and at least {:.1} s have passed since the previous edit arrived (`--edit-gap-ms`), \
             the same for every tool, so that each edit is an isolated one for all of them: \
             Unison's watch loop sleeps a fixed second after every synchronisation and the echo \
             of its own writes costs it one more such cycle, so an edit within about 2 s of the \
             previous one waits out the rest; Syncthing's watcher timer keeps ticking for a second \
             or two after an event, so an edit then is picked up sooner than an isolated one",
            self.opts.edit_gap.as_secs_f64()
        )
    }

    fn edits(&self, md: &mut String) {
        let _ = write!(
            md,
            "\n## One small file edited → identical on the other side\n\n{} edits per tree and \
             direction, each to a different existing file, with new content each time. The clock \
             starts just before the write and stops when the other side's file has the new \
             content (read every {} µs); an edit not there within {} s is lost. Between edits \
             the harness waits until the tool's processes have used no CPU for 1.2 s (10 s at most){}. CPU \
             per edit is utime + stime of all the tool's processes (helpers included) over the \
             whole series, divided by the edits{}. Milliseconds; ratios are berth ÷ that \
             tool.\n\n| tree | direction | tool | arrived | p50 | p99 | max | CPU per edit | \
             p50 ratio | p99 ratio |{}\n|---|---|---|---|---|---|---|---|---|---|{}\n",
            self.opts.edits,
            super::wait::EDIT_POLL.as_micros(),
            self.opts.edit_timeout.as_secs_f64(),
            self.spacing(),
            if self.ssh.is_some() {
                " (over ssh: the far side's processes, under the server, included). Bytes per \
                 edit are what the tool's ssh connections carried over the whole series \
                 (client → server ↑, server → client ↓), divided by the edits; they include the \
                 traffic that flows anyway while the edits are spaced out, so the next column \
                 takes off the idle rate measured below (bytes per second) times the series' \
                 length"
            } else {
                ""
            },
            if self.ssh.is_some() {
                " bytes per edit | without idle traffic |"
            } else {
                ""
            },
            if self.ssh.is_some() { "---|---|" } else { "" },
        );
        for files in self.trees() {
            for d in DIRECTIONS {
                let berth = self.edit_summary(Tool::Berth, files, d);
                for tool in self.live_tools() {
                    let Some(s) = self.session(tool, files) else {
                        continue;
                    };
                    let lead = format!("| {} | {} | {} |", count(files), d.label(), tool.label());
                    let Some((_, e)) = s.edits.iter().find(|(dir, _)| *dir == d) else {
                        let _ = writeln!(md, "{lead} not measured (see below) | | | | | | |");
                        continue;
                    };
                    let arrived = format!("{}/{}", e.latencies.len(), e.attempted);
                    let traffic = self.edit_bytes(tool, files, e);
                    let Some(sum) = (!e.latencies.is_empty()).then(|| Summary::of(&e.latencies))
                    else {
                        let _ = writeln!(md, "{lead} {arrived} | — | — | — | — | — | —{traffic}");
                        continue;
                    };
                    let (r50, r99) = if tool == Tool::Berth {
                        ("—".into(), "—".into())
                    } else {
                        (
                            ratio(berth.map(|b| b.p50), sum.p50),
                            ratio(berth.map(|b| b.p99), sum.p99),
                        )
                    };
                    let _ = writeln!(
                        md,
                        "{lead} {arrived} | {} | {} | {} | {} | {r50} | {r99}{traffic}",
                        ms(sum.p50),
                        ms(sum.p99),
                        ms(sum.max),
                        ms(e.cpu_per_edit),
                    );
                }
            }
        }
    }

    /// Bytes per second the tool's connections carried while it was idle on `files`.
    fn idle_rate(&self, tool: Tool, files: usize) -> Option<(f64, f64)> {
        let i = self.session(tool, files)?.idle.as_ref()?;
        let b = i.bytes?;
        Some((b.up as f64 / i.seconds, b.down as f64 / i.seconds))
    }

    /// The table cells (with the row's end) for an edit series' bytes: ` |` when not over ssh.
    fn edit_bytes(&self, tool: Tool, files: usize, e: &super::session::Edits) -> String {
        if self.ssh.is_none() {
            return " |".into();
        }
        let Some((b, took)) = e.bytes.filter(|_| e.attempted > 0) else {
            return " | — | — |".into();
        };
        let per = e.attempted as f64;
        let net = self
            .idle_rate(tool, files)
            .map_or("—".into(), |(up, down)| {
                let t = took.as_secs_f64();
                let less = |total: u64, rate: f64| (total as f64 - rate * t).max(0.0) as u64;
                split(
                    Bytes {
                        up: less(b.up, up),
                        down: less(b.down, down),
                    },
                    per,
                )
            });
        format!(" | {} | {net} |", split(b, per))
    }

    fn rewrite(&self, md: &mut String) {
        let files = self.opts.large_tree;
        let _ = write!(
            md,
            "\n## {} files rewritten at once\n\nOn the {}-file tree, after the edits: {} files \
             spread over the tree are rewritten with new content on beta (the agent's side) as \
             fast as the harness can write them; the clock starts when the last one is written \
             and stops when alpha has every new content. CPU is that of all the tool's processes \
             from the first write until they are quiet again{}. Seconds.\n\n| tool | writing \
             them | until identical | CPU | berth ÷ tool |{}\n|---|---|---|---|---|{}\n",
            count(self.opts.rewrite),
            count(files),
            count(self.opts.rewrite),
            if self.ssh.is_some() {
                "; bytes are what the ssh connections carried meanwhile (client → server ↑, \
                 server → client ↓)"
            } else {
                ""
            },
            if self.ssh.is_some() { " bytes |" } else { "" },
            if self.ssh.is_some() { "---|" } else { "" },
        );
        let berth = self
            .session(Tool::Berth, files)
            .and_then(|s| s.rewrite.as_ref())
            .and_then(|r| r.synced.as_ref().ok().copied());
        for tool in self.live_tools() {
            let Some(r) = self.session(tool, files).and_then(|s| s.rewrite.as_ref()) else {
                let _ = writeln!(md, "| {} | not measured (see below) | | | |", tool.label());
                continue;
            };
            let (synced, rat) = match &r.synced {
                Ok(d) if tool == Tool::Berth => (secs(*d), "—".into()),
                Ok(d) => (secs(*d), ratio(berth, *d)),
                Err(_) => ("did not finish (see below)".into(), "—".into()),
            };
            let traffic = match (&self.ssh, r.bytes) {
                (None, _) => String::new(),
                (Some(_), Some(b)) => format!(" {} |", split(b, 1.0)),
                (Some(_), None) => " — |".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {synced} | {} | {rat} |{traffic}",
                tool.label(),
                secs(r.write),
                secs(r.cpu)
            );
        }
    }

    fn first_copy(&self, md: &mut String) {
        let Some(fc) = &self.first_copy else { return };
        md.push_str("\n## First copy into an empty directory\n\n");
        let fc = match fc {
            Ok(fc) => fc,
            Err(e) => {
                let _ = writeln!(md, "Not measured: {e}");
                return;
            }
        };
        let how = if self.ssh.is_some() {
            "across the ssh connection by `rsync -a -e 'ssh -F …' SRC/ 127.0.0.1:DST/` (for \
             reference), one `unison SRC ssh://127.0.0.1:PORT//DST -batch -auto -times` run \
             with a fresh archive and `berth debug sync SRC ssh://127.0.0.1:PORT/DST --once` \
             with a fresh home"
        } else {
            "by `cp -a SRC DST`, `rsync -a SRC/ DST/`, one `unison SRC DST -batch -auto \
             -times` run with a fresh archive and `berth debug sync SRC DST --once` with a \
             fresh home"
        };
        let _ = write!(
            md,
            "{} files, {:.0} MiB ({} to {} bytes each), copied {how}; each copy is \
             checked file by file afterwards. Before every run the previous copy is removed and \
             `sync` writes back dirty pages; warm runs then read the whole source tree (so it \
             is in the page cache), cold runs drop the page cache \
             (`echo 3 > /proc/sys/vm/drop_caches`). Seconds; ratio is berth's median ÷ the \
             tool's.\n\n| tool | cache | runs | median | min | max | berth ÷ tool |\n\
             |---|---|---|---|---|---|---|\n",
            count(fc.tree.files),
            fc.bytes as f64 / (1 << 20) as f64,
            fc.tree.min_size,
            fc.tree.max_size,
        );
        for cold in [false, true] {
            let pick = |t: Tool| copy_median(fc, t, cold);
            let berth = pick(Tool::Berth);
            for c in &fc.copies {
                let runs = if cold { &c.cold } else { &c.warm };
                let cache = if cold { "cold" } else { "warm" };
                if runs.is_empty() {
                    let why = if c.error.is_some() {
                        "failed (see below)"
                    } else {
                        "not run"
                    };
                    let _ = writeln!(md, "| {} | {cache} | 0 | {why} | | | |", c.tool.label());
                    continue;
                }
                let s = Summary::of(runs);
                let mid = median(runs).unwrap_or(s.p50);
                let rat = if c.tool == Tool::Berth {
                    "—".into()
                } else {
                    ratio(berth, mid)
                };
                let _ = writeln!(
                    md,
                    "| {} | {cache} | {} | {} | {} | {} | {rat} |",
                    c.tool.label(),
                    s.n,
                    secs(mid),
                    secs(s.min),
                    secs(s.max)
                );
            }
        }
        if let Some(why) = &fc.cold_missing {
            let _ = writeln!(md, "\nNo cold-cache runs: {why}.");
        }
        let cp = fc.copies.iter().find(|c| c.tool == Tool::Cp);
        if let Some((warm, cold)) = cp.and_then(|c| median(&c.warm).zip(median(&c.cold)))
            && warm > cold
        {
            let _ = writeln!(
                md,
                "\nIn this run warm-cache copies were slower than cold ones (`cp -a` {} s warm, \
                 {} s cold), so compare the tools within one cache state.",
                secs(warm),
                secs(cold)
            );
        }
    }

    fn idle(&self, md: &mut String) {
        let _ = write!(
            md,
            "\n## Idle\n\nAfter the edits each tool is left alone for {:.0} s with the trees in \
             sync. CPU is the share of one core used by all its processes; wakeups are the \
             context switches of all their threads per second (how often anything in it ran); \
             RSS is the sum of every process's VmRSS at the end{}.\n\n| tree | tool | \
             processes | CPU % | wakeups/s | RSS MiB |{}\n|---|---|---|---|---|---|{}\n",
            self.opts.idle.as_secs_f64(),
            if self.ssh.is_some() {
                " (over ssh: the server and everything under it, the far side included); bytes \
                 per second are what the ssh connections carried meanwhile (client → server ↑, \
                 server → client ↓: keep-alives and heartbeats)"
            } else {
                ""
            },
            if self.ssh.is_some() { " bytes/s |" } else { "" },
            if self.ssh.is_some() { "---|" } else { "" },
        );
        for files in self.trees() {
            for tool in self.live_tools() {
                let Some(i) = self.session(tool, files).and_then(|s| s.idle.as_ref()) else {
                    continue;
                };
                let traffic = match (&self.ssh, i.bytes) {
                    (None, _) => String::new(),
                    (Some(_), Some(b)) => format!(" {} |", split(b, i.seconds)),
                    (Some(_), None) => " — |".into(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.2} | {:.1} | {:.1} |{traffic}",
                    count(files),
                    tool.label(),
                    i.processes,
                    i.cpu.as_secs_f64() / i.seconds * 100.0,
                    i.switches as f64 / i.seconds,
                    i.rss_kib as f64 / 1024.0
                );
            }
        }
    }

    /// berth's edit latency per tree and direction, alone and against each peer.
    fn edit_targets(&self, out: &mut Vec<Target>) {
        for files in self.trees() {
            for d in DIRECTIONS {
                let berth = self.edit_summary(Tool::Berth, files, d);
                let lost = self.lost(Tool::Berth, files, d);
                // SPEC §7 locally; §10.4 over loopback ssh asks for the median alone.
                let (p50, p99) = if self.ssh.is_some() {
                    (Duration::from_millis(10), None)
                } else {
                    (Duration::from_millis(5), Some(Duration::from_millis(20)))
                };
                out.push(Target::new(
                    format!(
                        "one edit, {}-file tree, {}: p50 ≤ {} ms{}",
                        count(files),
                        d.label(),
                        p50.as_millis(),
                        p99.map_or(String::new(), |p| format!(
                            " and p99 ≤ {} ms",
                            p.as_millis()
                        ))
                    ),
                    berth.map(|s| {
                        (
                            format!("p50 {} ms, p99 {} ms, {lost} lost", ms(s.p50), ms(s.p99)),
                            lost == 0 && s.p50 <= p50 && p99.is_none_or(|p| s.p99 <= p),
                        )
                    }),
                ));
                for peer in [Tool::Unison, Tool::Syncthing] {
                    if !self.opts.uses(peer) {
                        continue;
                    }
                    let measured = match (berth, self.edit_summary(peer, files, d)) {
                        (Some(b), Some(p)) => Some((
                            format!(
                                "p50 {} vs {} ms, p99 {} vs {} ms",
                                ms(b.p50),
                                ms(p.p50),
                                ms(b.p99),
                                ms(p.p99)
                            ),
                            b.p50 < p.p50 && b.p99 < p.p99 && lost == 0,
                        )),
                        (Some(_), None) => {
                            Some((format!("{} has no figures", peer.label()), lost == 0))
                        }
                        _ => None,
                    };
                    out.push(Target::new(
                        format!(
                            "one edit, {}-file tree, {}: faster than {} at p50 and p99",
                            count(files),
                            d.label(),
                            peer.label()
                        ),
                        measured,
                    ));
                }
            }
        }
        if self.ssh.is_some() {
            return;
        }
        let cpu = |files| {
            self.session(Tool::Berth, files).and_then(|s| {
                let v: Vec<Duration> = s.edits.iter().map(|(_, e)| e.cpu_per_edit).collect();
                (!v.is_empty()).then(|| v.iter().sum::<Duration>() / v.len() as u32)
            })
        };
        let p50 = |files| self.edit_summary(Tool::Berth, files, Direction::AlphaToBeta);
        let [small, large] = self.trees();
        let measured = match (cpu(small), cpu(large), p50(small), p50(large)) {
            (Some(cs), Some(cl), Some(ps), Some(pl)) => Some((
                format!(
                    "p50 {} → {} ms, CPU per edit {} → {} ms",
                    ms(ps.p50),
                    ms(pl.p50),
                    ms(cs),
                    ms(cl)
                ),
                pl.p50 <= ps.p50 * 2 && cl <= (cs * 2).max(Duration::from_millis(10)),
            )),
            _ => None,
        };
        out.push(Target::new(
            "cost per edit does not grow with the tree (taken as: large-tree p50 and CPU per \
             edit within 2× of the small tree's)"
                .into(),
            measured,
        ));
    }

    fn rewrite_target(&self, out: &mut Vec<Target>) {
        let synced = self
            .session(Tool::Berth, self.opts.large_tree)
            .and_then(|s| s.rewrite.as_ref())
            .map(|r| &r.synced);
        out.push(Target::new(
            format!(
                "{} files rewritten at once: identical within 3 s",
                count(self.opts.rewrite)
            ),
            synced.map(|r| match r {
                Ok(d) => (format!("{} s", secs(*d)), *d <= Duration::from_secs(3)),
                Err(e) => (e.clone(), false),
            }),
        ));
    }

    fn idle_targets(&self, out: &mut Vec<Target>) {
        for files in self.trees() {
            let idle = self
                .session(Tool::Berth, files)
                .and_then(|s| s.idle.as_ref());
            out.push(Target::new(
                format!(
                    "idle pairing ({}-file tree): no periodic work more often than once a second",
                    count(files)
                ),
                idle.map(|i| {
                    let rate = i.switches as f64 / i.seconds;
                    (
                        format!(
                            "{rate:.1} wakeups/s, RSS {:.1} MiB",
                            i.rss_kib as f64 / 1024.0
                        ),
                        rate <= 1.0,
                    )
                }),
            ));
        }
    }

    fn copy_targets(&self, fc: &FirstCopy, out: &mut Vec<Target>) {
        for cold in [false, true] {
            let pick = |t: Tool| copy_median(fc, t, cold);
            let cache = if cold { "cold" } else { "warm" };
            let berth = pick(Tool::Berth);
            for (peer, limit, what) in [
                (Tool::Cp, 1.5, "within 1.5× of `cp -a`"),
                (Tool::Rsync, 1.0, "no slower than `rsync -a`"),
            ] {
                let measured = berth.zip(pick(peer)).map(|(b, p)| {
                    (
                        format!("{} vs {} s ({}×)", secs(b), secs(p), ratio(Some(b), p)),
                        b.as_secs_f64() <= limit * p.as_secs_f64(),
                    )
                });
                out.push(Target::new(
                    format!("first copy ({cache} cache): {what}"),
                    measured,
                ));
            }
        }
    }

    fn targets(&self, md: &mut String) {
        md.push_str(if self.ssh.is_some() {
            "\n## berth against the SPEC §10.4 target\n\n"
        } else {
            "\n## berth against the SPEC §7 targets\n\n"
        });
        if !self.opts.uses(Tool::Berth) {
            md.push_str("berth was not among the tools measured.\n");
            return;
        }
        if self.opts.quick {
            md.push_str("Quick-run sizes: indicative only.\n\n");
        }
        let mut targets = Vec::new();
        if self.opts.live {
            self.edit_targets(&mut targets);
        }
        if self.ssh.is_none() {
            if self.opts.live {
                self.rewrite_target(&mut targets);
                self.idle_targets(&mut targets);
            }
            if let Some(Ok(fc)) = &self.first_copy {
                self.copy_targets(fc, &mut targets);
            }
        }
        md.push_str("| target | measured | result |\n|---|---|---|\n");
        for t in targets {
            let _ = writeln!(md, "| {} | {} | {} |", t.what, t.measured, t.result);
        }
    }

    fn failures(&self, md: &mut String) {
        let mut lines = Vec::new();
        for s in &self.sessions {
            let at = format!("{} on the {}-file tree", s.tool.label(), count(s.files));
            if let Err(e) = &s.initial {
                lines.push(format!("{at}: set-up failed: {e}"));
            }
            if let Some(e) = &s.error {
                lines.push(format!("{at}: {e}"));
            }
            for (d, e) in &s.edits {
                if let Some(note) = &e.note {
                    lines.push(format!("{at}, {}: {note}", d.label()));
                }
            }
            if let Some(Err(e)) = s.rewrite.as_ref().map(|r| &r.synced) {
                lines.push(format!("{at}: rewrite: {e}"));
            }
        }
        if let Some(Ok(fc)) = &self.first_copy {
            for c in &fc.copies {
                if let Some(e) = &c.error {
                    lines.push(format!("first copy, {}: {e}", c.tool.label()));
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        md.push_str("\n## Failures\n\n");
        for l in lines {
            let _ = writeln!(md, "- {}", l.replace('\n', "\n  "));
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        if self.opts.live && !self.live_tools().is_empty() {
            self.initial(&mut md);
            self.edits(&mut md);
            self.rewrite(&mut md);
            self.idle(&mut md);
        }
        self.first_copy(&mut md);
        self.targets(&mut md);
        self.failures(&mut md);
        md
    }
}
