//! The keeper: one small process per agent or service that owns the child.
//!
//! It makes itself a child subreaper, starts the child (`sh -c COMMAND`) in a new session and
//! process group, writes the child's output line by line with timestamps to a rotating log,
//! records the exit status in `state.json`, and answers on `keeper.sock` ([`control`]). It is
//! started detached, so it lives on whatever happens to the daemon.
//!
//! A terminal agent's child runs under a pseudo-terminal the keeper opens ([`pty`]): the child
//! leads its session with the terminal as its controlling tty, and the keeper holds the master
//! side for as long as it lives — the daemon never does. Everything the program writes goes
//! through the keeper's terminal emulator ([`screen`]) and, as for any agent, into the log; the
//! control socket answers `screen`, `input` and `resize` ([`terminal`]), and serves attached
//! clients ([`attach`]). The keeper stays small and plain: threads and `poll`, no async
//! runtime.
//!
//! A stop signals the child's process group *and* every descendant of the keeper (orphans were
//! reparented to it, including ones that escaped with `setsid`), waits the grace period,
//! SIGKILLs whatever remains, and answers only when no descendant is left. A terminal agent is
//! first sent SIGHUP, as a terminal that goes away would (an interactive shell ignores SIGTERM,
//! but not a hangup). When the child ends by itself, whatever it left running is stopped the
//! same way: an exited agent leaves nothing behind. Then the keeper records that it is done and
//! exits.

pub mod attach;
pub mod control;
mod echo;
mod lent;
pub mod pty;
pub mod screen;
pub mod spec;
pub mod terminal;
mod vt;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_core::terminal::Size;
use control::{Refusal, Request, Response, TerminalAnswer};
use spec::{ExitInfo, Ident, KeeperDir, KeeperSpec, KeeperState, signal_number};
use terminal::Terminal;

use crate::logs::RotatingFile;
use crate::tree::{self, Identity};

/// How long SIGKILLed processes get to disappear before the keeper reports failure.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);
/// How long a terminal agent gets to end after SIGHUP before the stop signal follows (within
/// the grace period).
const HANGUP_WAIT: Duration = Duration::from_millis(250);
/// How much output is read at once (a pseudo-terminal hands out at most 4 KiB per read; a
/// pipe's reader had an 8 KiB buffer before, and a keeper's memory is mostly such buffers).
const CHUNK: usize = 8 * 1024;
/// A longer line goes to the log in pieces of this size (a program that redraws one line with
/// `\r` forever never ends it).
const MAX_LINE: usize = 16 * 1024;
/// Reads of a terminal's output waiting to be logged (at most this many; the program then
/// waits for the log, as for a disk that is slow to write).
const LOG_QUEUE: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("cannot read the keeper spec {path}: {detail}")]
    Spec { path: String, detail: String },
    #[error("the keeper spec {path} asks for a terminal that cannot be: {source}")]
    Size {
        path: String,
        source: berth_core::terminal::SizeError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KeeperError {
    let what = what.into();
    move |source| KeeperError::Io { what, source }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Shared between the keeper's threads.
struct Keeper {
    dir: KeeperDir,
    spec: KeeperSpec,
    state: Mutex<KeeperState>,
    log: Mutex<RotatingFile>,
    /// The child's process group (= its pid: it leads a new session).
    pgid: u32,
    /// Control requests being answered; the keeper waits for them before it exits.
    answering: AtomicUsize,
    /// A terminal agent's terminal.
    terminal: Option<Arc<Terminal>>,
}

impl Keeper {
    fn state(&self) -> KeeperState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut KeeperState)) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st);
        if let Err(e) = write_state(&self.dir, &st) {
            self.log_line("keeper", &format!("cannot write state.json: {e}"));
        }
    }

    fn log_line(&self, stream: &str, line: &str) {
        let record = berth_core::output_line::record(now_ms(), stream, line);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        // Nowhere left to report a failing log write.
        let _ = log.write_record(record.as_bytes());
    }

    /// Descendants of the keeper that still run (zombies are as good as gone).
    fn live_descendants(&self) -> Vec<u32> {
        let all = tree::all_processes().unwrap_or_default();
        let me = std::process::id();
        let zombies: std::collections::BTreeSet<u32> = all
            .iter()
            .filter(|p| p.is_zombie())
            .map(|p| p.pid)
            .collect();
        tree::descendants(&all, me)
            .into_iter()
            .filter(|p| !zombies.contains(p))
            .collect()
    }

    fn signal_all(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid signals the child's process group; then every
        // descendant individually (those that left the group with setsid).
        unsafe { libc::kill(-(self.pgid as i32), sig) };
        for pid in self.live_descendants() {
            // SAFETY: as above, on a process below this keeper.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }

    fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.live_descendants().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// The grace period of a stop: the spec's, or `asked` if that is shorter.
    fn grace(&self, asked: Option<u64>) -> Duration {
        let own = self.spec.stop_grace_ms;
        Duration::from_millis(asked.map_or(own, |ms| ms.min(own)))
    }

    /// Stops every descendant: the stop signal, the grace period, then SIGKILL until none is
    /// left (`grace` none: SIGKILL at once). Returns whether SIGKILL was needed.
    fn stop_all(&self, grace: Option<Duration>) -> bool {
        if let Some(grace) = grace {
            let began = Instant::now();
            if self.terminal.is_some() {
                self.signal_all(libc::SIGHUP);
                if self.wait_gone(grace.min(HANGUP_WAIT)) {
                    return false;
                }
            }
            let sig = signal_number(&self.spec.stop_signal).unwrap_or(libc::SIGTERM);
            self.signal_all(sig);
            if self.wait_gone(grace.saturating_sub(began.elapsed())) {
                return false;
            }
        }
        self.log_line(
            "keeper",
            "grace period over: sending SIGKILL to what remains",
        );
        let deadline = Instant::now() + KILL_WAIT;
        while !self.live_descendants().is_empty() && Instant::now() < deadline {
            self.signal_all(libc::SIGKILL);
            std::thread::sleep(POLL);
        }
        true
    }
}

fn write_state(dir: &KeeperDir, st: &KeeperState) -> std::io::Result<()> {
    let tmp = dir.path().join(".state.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(st).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, dir.state())
}

/// Reads `state.json`, if there is a readable one.
pub fn read_state(dir: &KeeperDir) -> Option<KeeperState> {
    serde_json::from_slice(&std::fs::read(dir.state()).ok()?).ok()
}

fn ident(pid: u32) -> Ident {
    let start_time = Identity::of(pid).map_or(0, |i| i.start_time);
    Ident { pid, start_time }
}

/// Runs the keeper for the spec in `dir` until the child and all its descendants are gone.
pub fn run(dir: KeeperDir) -> Result<(), KeeperError> {
    let spec_path = dir.spec();
    let spec: KeeperSpec = std::fs::read(&spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|detail| KeeperError::Spec {
            path: spec_path.display().to_string(),
            detail,
        })?;
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes how orphans are reparented.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io("cannot become a child subreaper")(
            std::io::Error::last_os_error(),
        ));
    }
    let _ = std::fs::remove_file(dir.socket());
    let listener = UnixListener::bind(dir.socket()).map_err(io("cannot bind keeper.sock"))?;
    let log = RotatingFile::open(dir.output(), spec.log_max_bytes, spec.log_keep)
        .map_err(io("cannot open output.log"))?;

    let terminal = spec
        .terminal
        .map(|t| Size::new(t.rows.into(), t.cols.into()).map(|size| (size, t.scrollback)))
        .transpose()
        .map_err(|source| KeeperError::Size {
            path: spec_path.display().to_string(),
            source,
        })?;
    let (mut child, terminal) = spawn_child(&spec, terminal)?;
    let child_pid = child.id();
    let state = KeeperState {
        keeper: ident(std::process::id()),
        child: Some(ident(child_pid)),
        started_ms: now_ms(),
        exit: None,
        stopping: false,
        done: false,
    };
    write_state(&dir, &state).map_err(io("cannot write state.json"))?;
    let (terminal, output) = terminal.unzip();
    let keeper = Arc::new(Keeper {
        dir: dir.clone(),
        spec,
        state: Mutex::new(state),
        log: Mutex::new(log),
        pgid: child_pid,
        answering: AtomicUsize::new(0),
        terminal,
    });

    let mut readers = Vec::new();
    if let Some(mut master) = output {
        readers.push(pump(keeper.clone(), "out", move |buf| {
            pty::read(&mut master, buf)
        }));
    }
    if let Some(mut out) = child.stdout.take() {
        readers.push(pump(keeper.clone(), "out", move |buf| out.read(buf)));
    }
    if let Some(mut err) = child.stderr.take() {
        readers.push(pump(keeper.clone(), "err", move |buf| err.read(buf)));
    }
    {
        let keeper = keeper.clone();
        std::thread::spawn(move || serve(keeper, listener));
    }
    reap(&keeper, child_pid);
    for r in readers {
        let _ = r.join();
    }
    if let Some(terminal) = &keeper.terminal {
        terminal.end();
    }
    // The socket goes first: once `done` is recorded, nothing of the keeper is left to find.
    let _ = std::fs::remove_file(dir.socket());
    keeper.update(|s| s.done = true);
    // A stop request is answered once everything is gone, which is also when the reaper
    // finishes: let that answer go out before the process ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    while keeper.answering.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The child, and a terminal agent's terminal with the master side to read its output from.
type Spawned = (std::process::Child, Option<(Arc<Terminal>, std::fs::File)>);

/// Starts `sh -c COMMAND` as the leader of a new session: under a new terminal of `size` with
/// `scrollback` lines (returned with the master side to read the output from), or with stdin
/// from the spec's file (or `/dev/null`) and stdout and stderr piped.
fn spawn_child(spec: &KeeperSpec, terminal: Option<(Size, usize)>) -> Result<Spawned, KeeperError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&spec.command).current_dir(&spec.cwd);
    if terminal.is_some() {
        // Before the spec's environment, so an agent may ask for another TERM.
        cmd.env("TERM", berth_core::terminal::TERM);
    }
    cmd.env_remove("BERTH_TOKEN").envs(&spec.env);
    let terminal = match terminal {
        Some((size, scrollback)) => {
            let failed = || io("cannot open a pseudo-terminal");
            let master = pty::Pty::open(size)
                .and_then(|pty| pty.attach(&mut cmd))
                .map_err(failed())?;
            let writer = master.try_clone().map_err(failed())?;
            let terminal = Terminal::new(writer, size, scrollback).map_err(failed())?;
            Some((Arc::new(terminal), master))
        }
        None => {
            let stdin = match &spec.stdin {
                Some(path) => Stdio::from(
                    std::fs::File::open(path)
                        .map_err(io(format!("cannot open {}", path.display())))?,
                ),
                None => Stdio::null(),
            };
            cmd.stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // SAFETY: setsid(2) in the forked child before exec; async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            None
        }
    };
    let child = cmd
        .spawn()
        .map_err(io(format!("cannot start `{}`", spec.command)))?;
    // `cmd` (and with it the keeper's last hold on the terminal's slave side) goes here.
    Ok((child, terminal))
}

/// An output stream cut into log records: the lines of one read go to the log in one write.
struct LineLog {
    keeper: Arc<Keeper>,
    stream: &'static str,
    /// The line not ended yet.
    line: Vec<u8>,
    /// Records of the current read.
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl LineLog {
    fn new(keeper: Arc<Keeper>, stream: &'static str) -> LineLog {
        LineLog {
            keeper,
            stream,
            line: Vec::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Adds the record of the current line (its line end left out) after `prefix`.
    fn record(&mut self, prefix: &str) {
        let text = String::from_utf8_lossy(&self.line);
        self.bytes.extend_from_slice(prefix.as_bytes());
        self.bytes
            .extend_from_slice(text.trim_end_matches(['\n', '\r']).as_bytes());
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
        self.line.clear();
    }

    fn write(&mut self) {
        if self.ends.is_empty() {
            return;
        }
        let mut log = self.keeper.log.lock().unwrap_or_else(|p| p.into_inner());
        // Nowhere left to report a failing log write.
        let _ = log.write_records(&self.bytes, &self.ends);
        self.bytes.clear();
        self.ends.clear();
    }

    /// Logs the lines `chunk` ends (every line read at one moment has the same time).
    fn take(&mut self, chunk: &[u8]) {
        let mut prefix = None;
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            self.line.extend_from_slice(piece);
            if piece.ends_with(b"\n") || self.line.len() >= MAX_LINE {
                let p = prefix
                    .get_or_insert_with(|| berth_core::output_line::prefix(now_ms(), self.stream))
                    .clone();
                self.record(&p);
            }
        }
        self.write();
    }

    /// Logs the last line, if it was not ended.
    fn finish(mut self) {
        if !self.line.is_empty() {
            self.record(&berth_core::output_line::prefix(now_ms(), self.stream));
            self.write();
        }
    }
}

/// Copies one output stream into the log, a timestamped line at a time — and, for a terminal
/// agent (whose only stream this is), through its screen first. A terminal's lines are logged
/// by a thread of their own ([`Logger`]), so the screen (what an attached client is drawn from)
/// is fed as soon as the output is read, and parsing it and logging it overlap.
fn pump(
    keeper: Arc<Keeper>,
    stream: &'static str,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let terminal = keeper.terminal.clone();
        let log = LineLog::new(keeper, stream);
        let mut sink = match terminal {
            None => Sink::Here(log),
            Some(_) => Sink::Thread(Logger::spawn(log)),
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            if let Some(terminal) = &terminal {
                terminal.feed(chunk);
            }
            match &mut sink {
                Sink::Here(log) => log.take(chunk),
                Sink::Thread(logger) => logger.take(chunk),
            }
        }
        match sink {
            Sink::Here(log) => log.finish(),
            Sink::Thread(logger) => logger.finish(),
        }
    })
}

/// Where a pump's output goes to be logged.
enum Sink {
    Here(LineLog),
    Thread(Logger),
}

/// A read this small is logged by the pump itself when the logger has nothing queued: a key's
/// echo wakes no other thread to be logged.
const SMALL_READ: usize = 256;

/// A thread logging the reads it is sent.
struct Logger {
    log: Arc<Mutex<LineLog>>,
    /// Reads sent and not logged yet.
    queued: Arc<AtomicUsize>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    thread: std::thread::JoinHandle<()>,
}

impl Logger {
    fn spawn(log: LineLog) -> Logger {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(LOG_QUEUE);
        let log = Arc::new(Mutex::new(log));
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (log, queued) = (log.clone(), queued.clone());
            std::thread::spawn(move || {
                for chunk in rx {
                    lock(&log).take(&chunk);
                    queued.fetch_sub(1, Ordering::SeqCst);
                }
            })
        };
        Logger {
            log,
            queued,
            tx,
            thread,
        }
    }

    /// Logs `chunk` after everything taken before.
    fn take(&mut self, chunk: &[u8]) {
        // Only this thread adds to the queue: nothing queued means all of it is logged.
        if chunk.len() <= SMALL_READ && self.queued.load(Ordering::SeqCst) == 0 {
            lock(&self.log).take(chunk);
            return;
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        // The logger ends only when this sender is dropped.
        let _ = self.tx.send(chunk.to_vec());
    }

    fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
        // The logger has ended: this is the last hold on the log.
        if let Ok(log) = Arc::try_unwrap(self.log) {
            log.into_inner().unwrap_or_else(|p| p.into_inner()).finish();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reaps every child (the agent and adopted orphans) until none is left; records the agent's
/// exit, and once it has exited stops whatever it left behind.
fn reap(keeper: &Keeper, child_pid: u32) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on any child, blocking, with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return, // ECHILD: nothing left
            }
        }
        if pid as u32 != child_pid {
            continue;
        }
        let exit = ExitInfo {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            at_ms: now_ms(),
        };
        keeper.log_line("keeper", &format!("exited: {exit:?}"));
        let stopping = keeper.state().stopping;
        keeper.update(|s| s.exit = Some(exit));
        if !stopping && !keeper.live_descendants().is_empty() {
            keeper.log_line("keeper", "stopping what the exited process left running");
            keeper.stop_all(Some(keeper.grace(None)));
        }
    }
}

/// Answers control requests until the keeper exits.
fn serve(keeper: Arc<Keeper>, listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let keeper = keeper.clone();
        keeper.answering.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            answer(&keeper, &mut conn);
            keeper.answering.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Reads one request from `conn` and writes its answer.
fn answer(keeper: &Keeper, conn: &mut std::os::unix::net::UnixStream) {
    let mut line = String::new();
    let mut reader = BufReader::new(&*conn);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // An attached client's first frames may have come with the request.
    let unread = reader.buffer().to_vec();
    drop(reader);
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Status) => Response {
            state: keeper.state(),
            killed: false,
            stop_ms: 0,
        },
        Ok(req @ (Request::Stop { .. } | Request::Kill)) => {
            let began = Instant::now();
            keeper.update(|s| s.stopping = true);
            let grace = match req {
                Request::Stop { grace_ms } => Some(keeper.grace(grace_ms)),
                _ => None,
            };
            let killed = keeper.stop_all(grace);
            // The reaper records the exit right after the last process goes.
            let deadline = Instant::now() + Duration::from_secs(1);
            while keeper.state().exit.is_none() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            let stop_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            Response {
                state: keeper.state(),
                killed,
                stop_ms,
            }
        }
        Ok(Request::Screen { scrollback }) => {
            return send(conn, &terminal(keeper, |t| t.view(scrollback)));
        }
        Ok(Request::Input { bytes }) => {
            let exited = keeper.state().exit.is_some();
            return send(conn, &terminal(keeper, |t| t.type_in(&bytes, exited)));
        }
        Ok(Request::Resize { rows, cols }) => {
            return send(conn, &terminal(keeper, |t| t.resize(rows, cols)));
        }
        Ok(Request::Attach {
            read_only,
            rows,
            cols,
        }) => return attach(keeper, conn, unread, read_only, rows.zip(cols)),
        Err(_) => return,
    };
    send(conn, &response);
}

/// `attach`: refused like any terminal request when there is no terminal or the program has
/// exited; otherwise the terminal takes the client's size (unless it only watches), and the
/// client is served until it leaves.
fn attach(
    keeper: &Keeper,
    conn: &mut std::os::unix::net::UnixStream,
    unread: Vec<u8>,
    read_only: bool,
    size: Option<(u32, u32)>,
) {
    let answer = terminal(keeper, |t| match size {
        _ if keeper.state().exit.is_some() => TerminalAnswer::Refused {
            reason: Refusal::Exited,
            message: "the program has exited".into(),
        },
        Some((rows, cols)) if !read_only => t.resize(rows, cols),
        _ => TerminalAnswer::Attached,
    });
    let (TerminalAnswer::Attached | TerminalAnswer::Resized { .. }, Some(terminal)) =
        (&answer, &keeper.terminal)
    else {
        return send(conn, &answer);
    };
    send(conn, &TerminalAnswer::Attached);
    let client = attach::Client { read_only };
    attach::serve(terminal, conn, unread, client, || keeper.state().exit);
}

/// A terminal request answered by the terminal, or refused by a keeper without one.
fn terminal(keeper: &Keeper, f: impl FnOnce(&Terminal) -> TerminalAnswer) -> TerminalAnswer {
    match &keeper.terminal {
        Some(t) => f(t),
        None => TerminalAnswer::Refused {
            reason: Refusal::NotATerminal,
            message: format!("{} does not run under a terminal", keeper.spec.name),
        },
    }
}

fn send(conn: &mut std::os::unix::net::UnixStream, answer: &impl serde::Serialize) {
    if let Ok(mut text) = serde_json::to_string(answer) {
        text.push('\n');
        let _ = conn.write_all(text.as_bytes());
    }
}
