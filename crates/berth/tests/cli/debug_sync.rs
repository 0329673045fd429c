//! `berth debug sync`: the engine between two plain directories, with the ancestor persisted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_testkit::wait_until;
use serde_json::json;

use crate::home;

#[test]
fn syncs_both_ways_keeps_conflicts_and_resumes_without_false_conflicts() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(a.join("src")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("src/lib.rs"), "user").unwrap();
    std::fs::write(b.join("notes.md"), "agent").unwrap();
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let first = h.run(&["--json", "debug", "sync", a_s, b_s, "--once"]);
    first.expect_code(0);
    assert_eq!(first.json()["to_beta"], 2);
    assert_eq!(first.json()["to_alpha"], 1);
    assert_eq!(
        std::fs::read_to_string(b.join("src/lib.rs")).unwrap(),
        "user"
    );
    // A second process starts from the persisted ancestor: nothing to do, no false conflict.
    let again = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(
        (
            again["to_alpha"].as_u64(),
            again["to_beta"].as_u64(),
            again["conflicts"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    std::fs::write(a.join("notes.md"), "user edit").unwrap();
    std::fs::write(b.join("notes.md"), "agent edit").unwrap();
    let conflict = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(conflict["conflicts"], 1);
    assert_eq!(
        std::fs::read_to_string(b.join("notes.md")).unwrap(),
        "user edit"
    );
    let kept = tmp.path().join("beta.berth-kept/1/notes.md");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "agent edit");
    // A later run keeps its losers beside the earlier ones, never over them.
    std::fs::write(a.join("notes.md"), "user again").unwrap();
    std::fs::write(b.join("notes.md"), "agent again").unwrap();
    let later = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(later["conflicts"], 1);
    let kept2 = tmp.path().join("beta.berth-kept/2/notes.md");
    assert_eq!(std::fs::read_to_string(kept2).unwrap(), "agent again");
    let kept = tmp.path().join("beta.berth-kept/1/notes.md");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "agent edit");
    // Extra exclusions keep paths out whatever the trees say.
    std::fs::write(a.join("scratch.tmp"), "mine only").unwrap();
    let excluded = h
        .run(&[
            "--json",
            "debug",
            "sync",
            a_s,
            b_s,
            "--once",
            "--exclude",
            "*.tmp",
        ])
        .json();
    assert_eq!(excluded["to_beta"], 0);
    assert!(!b.join("scratch.tmp").exists());
    h.run(&["debug", "sync", a_s, b_s, "--once", "--exclude", "{a"])
        .expect_code(2);
    let nested = h.run(&[
        "debug",
        "sync",
        a_s,
        a.join("src").to_str().unwrap(),
        "--once",
    ]);
    nested.expect_code(2);
}

/// A live `berth --json debug sync A B` with its standard input and output at hand.
/// A live `berth --json debug sync` with its JSON lines (also driven by the ssh tests).
pub struct Live {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Live {
    fn start(h: &berth_testkit::TestHome, a: &Path, b: &Path, env: &[(&str, &str)]) -> Live {
        Live::start_with(h, a, b, env, &[])
    }

    pub fn start_with(
        h: &berth_testkit::TestHome,
        a: &Path,
        b: &Path,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Live {
        let mut cmd = h.command(&[
            "--json",
            "debug",
            "sync",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ]);
        cmd.args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            stdin,
            lines,
        }
    }

    /// Starts it and waits until its first round is done.
    fn ready(h: &berth_testkit::TestHome, a: &Path, b: &Path) -> Live {
        let live = Live::start(h, a, b, &[]);
        let ready = live.next_event("ready");
        assert_eq!(ready["reason"], "start");
        live
    }

    /// The next line whose event is `event` (earlier lines are skipped).
    pub fn next_event(&self, event: &str) -> serde_json::Value {
        self.next_matching(|v| v["event"] == event)
    }

    /// The next line that `pred` accepts (earlier lines are skipped).
    pub fn next_matching(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let v = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("no such line within 60 s");
            if pred(&v) {
                return v;
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// A test that failed half-way leaves no sync running behind it.
impl Drop for Live {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

#[test]
fn live_sync_follows_edits_both_ways_answers_flush_and_persists_on_sigterm() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(a.join("src")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("src/lib.rs"), "v1").unwrap();
    let mut live = Live::ready(&h, &a, &b);
    assert_eq!(read(&b.join("src/lib.rs")).as_deref(), Some(&b"v1"[..]));
    // alpha → beta, beta → alpha, a new directory with content, a deletion, a rename.
    std::fs::write(a.join("src/lib.rs"), "v2 by the user").unwrap();
    wait_until("alpha's edit on beta", Duration::from_secs(10), || {
        read(&b.join("src/lib.rs")).as_deref() == Some(&b"v2 by the user"[..])
    });
    std::fs::create_dir_all(b.join("docs/deep")).unwrap();
    std::fs::write(b.join("docs/deep/notes.md"), "by the agent").unwrap();
    wait_until(
        "beta's new directory on alpha",
        Duration::from_secs(10),
        || read(&a.join("docs/deep/notes.md")).as_deref() == Some(&b"by the agent"[..]),
    );
    std::fs::rename(a.join("src/lib.rs"), a.join("src/main.rs")).unwrap();
    wait_until("the rename on beta", Duration::from_secs(10), || {
        !b.join("src/lib.rs").exists() && read(&b.join("src/main.rs")).is_some()
    });
    std::fs::remove_dir_all(b.join("docs")).unwrap();
    wait_until("the deletion on alpha", Duration::from_secs(10), || {
        !a.join("docs").exists()
    });
    // A flush answers once both sides agree.
    writeln!(live.stdin, "flush").unwrap();
    let flushed = live.next_event("flushed");
    assert_eq!(flushed["conflicts"], 0);
    live.stop();
    // What the live run agreed on was saved: a new run finds nothing to do.
    let again = h
        .run(&[
            "--json",
            "debug",
            "sync",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--once",
        ])
        .json();
    assert_eq!(
        (&again["to_alpha"], &again["to_beta"], &again["conflicts"]),
        (&json!(0), &json!(0), &json!(0))
    );
}

#[test]
fn a_watch_that_stops_delivering_events_is_noticed_by_the_heartbeat_and_renewed() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("f"), "v1").unwrap();
    let live = Live::start_with(&h, &a, &b, &[], &["--heartbeat-every", "300ms"]);
    live.next_event("ready");
    // Swap alpha for an identical copy: the watch still follows the old directory, so edits
    // in the new one raise no event at all.
    std::fs::rename(&a, tmp.path().join("old-alpha")).unwrap();
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("f"), "v1").unwrap();
    std::fs::write(a.join("f"), "v2 in the new alpha").unwrap();
    let stalled = live.next_event("stalled");
    assert_eq!(stalled["side"], "alpha");
    wait_until("the edit on beta", Duration::from_secs(10), || {
        read(&b.join("f")).as_deref() == Some(&b"v2 in the new alpha"[..])
    });
    // Watched anew: a later edit arrives, and the heartbeats come through again (more than
    // three periods pass without another stall).
    std::fs::write(a.join("g"), "later").unwrap();
    wait_until("the later edit on beta", Duration::from_secs(10), || {
        read(&b.join("g")).is_some()
    });
    std::thread::sleep(Duration::from_millis(1200));
    let later: Vec<serde_json::Value> = live.lines.try_iter().collect();
    assert!(
        later.iter().all(|v| v["event"] != "stalled"),
        "still stalling: {later:?}"
    );
    live.stop();
}

#[test]
fn an_event_storm_that_overflows_the_kernel_queue_still_converges() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let live = Live::ready(&h, &a, &b);
    // Stopped, the engine reads no events: the kernel's queue (16,384 by default) overflows.
    live.signal(libc::SIGSTOP);
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .map_or(16384, |s| s.trim().parse().unwrap_or(16384));
    let files = queue / 2 + 1000; // at least two events each (create, close)
    for i in 0..files {
        std::fs::write(a.join(format!("f{i:05}")), format!("{i}")).unwrap();
    }
    live.signal(libc::SIGCONT);
    // Events read before the kernel's lost-events notice are synced as they come; the notice
    // itself brings a full rescan.
    live.next_matching(|v| v["event"] == "synced" && v["reason"] == "rescan: events were lost");
    wait_until("every file on beta", Duration::from_secs(60), || {
        std::fs::read_dir(&b).unwrap().count() == files
    });
    assert_eq!(read(&b.join("f00042")).as_deref(), Some(&b"42"[..]));
    live.stop();
}

#[test]
fn injected_disk_full_and_permission_errors_leave_nothing_partial_and_pause() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("big"), vec![b'1'; 1 << 20]).unwrap();
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    h.run(&["debug", "sync", a_s, b_s, "--once"]).expect_code(0);
    std::fs::write(a.join("big"), vec![b'2'; 1 << 20]).unwrap();
    let temporaries = || {
        std::fs::read_dir(&b)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".berth-tmp-"))
            .count()
    };
    for (errno, text) in [(28, "No space left on device"), (13, "Permission denied")] {
        let mut cmd = h.command(&["--json", "debug", "sync", a_s, b_s, "--once"]);
        cmd.env("BERTH_FAILPOINTS", format!("sync.write=error({errno})"));
        let out = h.run_cmd(cmd);
        out.expect_code(1);
        let err = out.json();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(text),
            "{err}"
        );
        assert!(
            err["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("nothing was half-written")
        );
        assert_eq!(
            read(&b.join("big")),
            Some(vec![b'1'; 1 << 20]),
            "old file intact"
        );
        assert_eq!(temporaries(), 0, "no temporary left behind");
    }
    // Live: the first round cannot finish; the condition is reported as a pause, and nothing
    // partial appears meanwhile.
    let live = Live::start(&h, &a, &b, &[("BERTH_FAILPOINTS", "sync.write=error(28)")]);
    let paused = live.next_event("paused");
    assert!(
        paused["cause"].as_str().unwrap().contains("No space left"),
        "{paused}"
    );
    assert_eq!(read(&b.join("big")), Some(vec![b'1'; 1 << 20]));
    assert_eq!(temporaries(), 0);
    live.stop();
    // Without the failure the next run completes.
    h.run(&["debug", "sync", a_s, b_s, "--once"]).expect_code(0);
    assert_eq!(read(&b.join("big")), Some(vec![b'2'; 1 << 20]));
}

#[test]
fn a_200_mb_file_syncs_with_bounded_memory() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // 200 MiB of varied bytes, written in chunks.
    let mut f = std::fs::File::create(a.join("large.bin")).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..200u32 {
        for (j, byte) in chunk.iter_mut().enumerate() {
            *byte = (j as u32).wrapping_mul(2654435761).wrapping_add(i) as u8;
        }
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let mut child = h
        .command(&[
            "debug",
            "sync",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--once",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The child's own high-water mark (VmHWM starts afresh at exec; rusage would count the
    // forked test process), read until it exits.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "berth debug sync failed");
    assert!(peak_kib > 0, "the child's memory was never seen");
    assert!(
        peak_kib < 64 << 10,
        "peak RSS {} MiB for a 200 MiB file",
        peak_kib >> 10
    );
    let same = |p: &Path| blake3::hash(&std::fs::read(p).unwrap());
    assert_eq!(same(&a.join("large.bin")), same(&b.join("large.bin")));
}
