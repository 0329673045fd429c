//! The daemon's end: a [`RemoteEndpoint`] is a tree served by `berth __endpoint` at the other
//! end of a byte stream — the standard input and output of a command it starts (`ssh host berth
//! __endpoint DIR`, or the local binary in tests) or any reader and writer.
//!
//! Requests go out one after another. A thread reads every frame that comes back: watch events
//! go straight to the live loop's channel (once [`Endpoint::watch`] gave it one), everything
//! else to the request waiting for it, through a bounded queue (a large file streamed from the
//! far side never piles up in memory). When the stream breaks, the waiting request fails with
//! what the command said on its standard error (ssh's reason, typically), and a watching loop
//! hears of it as a watch error.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::apply::ApplyError;
use crate::endpoint::Endpoint;
use crate::reconcile::{Entry, Side};
use crate::scan::{ScanError, Tree, Warning};
use crate::watch::Input;

use super::RemoteError;
use super::frame::{FrameError, FrameReader, FrameWriter};
use super::message::{CHUNK, Event, Fault, GitFacts, PROTOCOL, Request, Response};

/// The version of berth speaking.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Responses queued between the reading thread and the request waiting for them.
const QUEUED: usize = 16;

/// Where the watch's events go: the live loop's channel and the side the tree is.
type Sink = Arc<Mutex<Option<(Side, Sender<Input>)>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last bytes a command wrote on its standard error, and whether it closed it.
#[derive(Default)]
struct Said {
    tail: Vec<u8>,
    closed: bool,
}

/// How much of the command's standard error is kept for messages.
const SAID_TAIL: usize = 4096;

/// A tree on the other side of a byte stream.
pub struct RemoteEndpoint {
    name: String,
    out: FrameWriter<Box<dyn Write + Send>>,
    responses: Receiver<Result<Response, String>>,
    sink: Sink,
    /// The command at the other end, if this endpoint started one.
    child: Option<Child>,
    said: Arc<Mutex<Said>>,
    /// Why the stream broke, once it did.
    lost: Option<String>,
}

impl std::fmt::Debug for RemoteEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEndpoint")
            .field("name", &self.name)
            .field("lost", &self.lost)
            .finish()
    }
}

impl RemoteEndpoint {
    /// Starts `command` (which must run `berth __endpoint ROOT`) and speaks the protocol over
    /// its standard input and output; `name` names the tree in messages. Files over `max_size`
    /// bytes are not synced.
    pub fn spawn(
        name: &str,
        mut command: Command,
        max_size: u64,
    ) -> Result<RemoteEndpoint, RemoteError> {
        let shown = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RemoteError::Spawn {
                command: shown.clone(),
                source,
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RemoteError::Spawn {
                command: shown,
                source: std::io::Error::other("its standard streams could not be connected"),
            });
        };
        let said = Arc::new(Mutex::new(Said::default()));
        let keep = said.clone();
        std::thread::Builder::new()
            .name("berth-remote-stderr".into())
            .spawn(move || collect_stderr(stderr, &keep))
            .map_err(|source| RemoteError::Spawn {
                command: shown.clone(),
                source,
            })?;
        let mut endpoint = RemoteEndpoint::over(name, stdout, stdin)?;
        endpoint.said = said;
        endpoint.child = Some(child);
        endpoint.handshake(max_size)?;
        Ok(endpoint)
    }

    /// Speaks the protocol over `input` and `output` (connected to an endpoint's output and
    /// input); nothing is sent until the handshake.
    fn over(
        name: &str,
        input: impl Read + Send + 'static,
        output: impl Write + Send + 'static,
    ) -> Result<RemoteEndpoint, RemoteError> {
        let (tx, responses) = sync_channel(QUEUED);
        let sink: Sink = Arc::new(Mutex::new(None));
        let events = sink.clone();
        std::thread::Builder::new()
            .name("berth-remote-read".into())
            .spawn(move || pump(FrameReader::new(input), &tx, &events))
            .map_err(|source| RemoteError::Spawn {
                command: name.to_string(),
                source,
            })?;
        Ok(RemoteEndpoint {
            name: name.to_string(),
            out: FrameWriter::new(Box::new(output)),
            responses,
            sink,
            child: None,
            // No command: nothing will be said.
            said: Arc::new(Mutex::new(Said {
                tail: Vec::new(),
                closed: true,
            })),
            lost: None,
        })
    }

    /// Like [`RemoteEndpoint::spawn`], over a stream that is already connected.
    pub fn connect(
        name: &str,
        input: impl Read + Send + 'static,
        output: impl Write + Send + 'static,
        max_size: u64,
    ) -> Result<RemoteEndpoint, RemoteError> {
        let mut endpoint = RemoteEndpoint::over(name, input, output)?;
        endpoint.handshake(max_size)?;
        Ok(endpoint)
    }

    /// The endpoint's hello, then ours; the endpoint checks the root.
    fn handshake(&mut self, max_size: u64) -> Result<(), RemoteError> {
        let not_started = |this: &mut RemoteEndpoint, message: String| RemoteError::NotStarted {
            name: this.name.clone(),
            message,
            said: this.said(),
        };
        match self.responses.recv() {
            Ok(Ok(Response::Hello {
                protocol: PROTOCOL, ..
            })) => {}
            Ok(Ok(Response::Hello { protocol, version })) => {
                return Err(RemoteError::Version {
                    name: self.name.clone(),
                    theirs: format!("berth {version} (protocol {protocol})"),
                    ours: format!("berth {VERSION} (protocol {PROTOCOL})"),
                });
            }
            Ok(Ok(other)) => {
                let message = format!("it began with {other:?} instead of a hello");
                return Err(not_started(self, message));
            }
            Ok(Err(message)) => return Err(not_started(self, message)),
            Err(_) => return Err(not_started(self, "the stream closed".into())),
        }
        self.send(&[Request::Hello {
            protocol: PROTOCOL,
            version: VERSION.to_string(),
            max_size,
        }])
        .map_err(|e| not_started(self, e.to_string()))?;
        match self.next() {
            Ok(Response::Done) => Ok(()),
            Ok(Response::Failed(fault)) => {
                Err(RemoteError::Refused(format!("{}: {fault}", self.name)))
            }
            Ok(other) => Err(not_started(self, format!("it answered {other:?}"))),
            Err(message) => Err(not_started(self, message)),
        }
    }

    /// What the command said on its standard error (waiting a moment for it to finish saying
    /// it, when the stream broke).
    fn said(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !lock(&self.said).closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        String::from_utf8_lossy(&lock(&self.said).tail)
            .trim()
            .to_string()
    }

    /// Sends requests and flushes them.
    fn send(&mut self, requests: &[Request]) -> Result<(), String> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        let sent = requests
            .iter()
            .try_for_each(|r| self.out.write(r))
            .and_then(|()| self.out.flush());
        sent.map_err(|e| self.lose(e.to_string()))
    }

    /// The next response.
    fn next(&mut self) -> Result<Response, String> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        let message = match self.responses.recv() {
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(message)) => message,
            Err(_) => "the stream closed".to_string(),
        };
        Err(self.lose(message))
    }

    /// Records that the stream broke, and why.
    fn lose(&mut self, message: String) -> String {
        let said = self.said();
        let lost = if said.is_empty() {
            format!("the connection to {} was lost: {message}", self.name)
        } else {
            format!(
                "the connection to {} was lost: {message} ({said})",
                self.name
            )
        };
        self.lost = Some(lost.clone());
        lost
    }

    /// A request answered with `Done`.
    fn simple(&mut self, request: Request) -> Result<(), ScanError> {
        self.send(&[request]).map_err(|e| self.scan_error(e))?;
        match self.next() {
            Ok(Response::Done) => Ok(()),
            Ok(Response::Failed(fault)) => Err(fault.into_scan(&self.name)),
            Ok(other) => Err(self.scan_error(unexpected(&other))),
            Err(e) => Err(self.scan_error(e)),
        }
    }

    fn scan_error(&self, error: String) -> ScanError {
        ScanError {
            root: self.name.clone(),
            error,
        }
    }

    fn apply_error(&self, error: String) -> ApplyError {
        ApplyError::Io {
            path: self.name.clone(),
            source: std::io::Error::other(error),
        }
    }

    /// A scan's batches of entries up to its warnings.
    fn scan(&mut self, request: Request) -> Result<(Tree, Vec<Warning>), ScanError> {
        self.send(&[request]).map_err(|e| self.scan_error(e))?;
        let mut tree = Tree::new();
        loop {
            match self.next() {
                Ok(Response::Entries(entries)) => tree.extend(entries),
                Ok(Response::Scanned(warnings)) => return Ok((tree, warnings)),
                Ok(Response::Failed(fault)) => return Err(fault.into_scan(&self.name)),
                Ok(other) => return Err(self.scan_error(unexpected(&other))),
                Err(e) => return Err(self.scan_error(e)),
            }
        }
    }

    /// What the tree's git dir holds: its `HEAD`, and when each of `names` (relative to the
    /// git dir) last changed.
    pub fn git_facts(&mut self, names: &[&str]) -> Result<GitFacts, ScanError> {
        let names = names.iter().map(ToString::to_string).collect();
        self.send(&[Request::GitFacts { names }])
            .map_err(|e| self.scan_error(e))?;
        match self.next() {
            Ok(Response::GitFacts(facts)) => Ok(facts),
            Ok(other) => Err(self.scan_error(unexpected(&other))),
            Err(e) => Err(self.scan_error(e)),
        }
    }
}

fn unexpected(r: &Response) -> String {
    let what = match r {
        Response::Hello { .. } => "a hello",
        Response::Done => "done",
        Response::Entries(_) => "entries",
        Response::Scanned(_) => "the end of a scan",
        Response::Empty(_) => "whether it is empty",
        Response::Chunk(_) => "content",
        Response::End(_) => "the end of content",
        Response::Applied(_) => "an apply's result",
        Response::GitFacts(_) => "git facts",
        Response::Failed(_) => "a failure",
        Response::Event(_) => "an event",
    };
    format!("the endpoint answered out of turn ({what})")
}

impl Drop for RemoteEndpoint {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // End of input: the endpoint ends, and ssh with it. One that does not is killed.
        self.out = FrameWriter::new(Box::new(std::io::sink()));
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Reads every frame from the endpoint: events to the sink, the rest to the waiting request.
fn pump<R: Read>(
    mut frames: FrameReader<R>,
    responses: &SyncSender<Result<Response, String>>,
    sink: &Sink,
) {
    loop {
        match frames.read::<Response>() {
            Ok(Response::Event(event)) => {
                if let Some((side, tx)) = &*lock(sink) {
                    let side = *side;
                    let input = match event {
                        Event::Changed(paths) => Input::Changed { side, paths },
                        Event::Overflow => Input::Overflow { side },
                        Event::WatchError(error) => Input::WatchError { side, error },
                        Event::Heartbeat => Input::Heartbeat { side },
                    };
                    let _ = tx.send(input);
                }
            }
            Ok(response) => {
                if responses.send(Ok(response)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let message = match e {
                    FrameError::Closed => "the stream closed".to_string(),
                    other => other.to_string(),
                };
                if let Some((side, tx)) = &*lock(sink) {
                    let _ = tx.send(Input::WatchError {
                        side: *side,
                        error: format!("the connection was lost: {message}"),
                    });
                }
                let _ = responses.send(Err(message));
                return;
            }
        }
    }
}

/// Keeps the last bytes of the command's standard error.
fn collect_stderr(mut stderr: impl Read, said: &Mutex<Said>) {
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut s = lock(said);
                s.tail.extend_from_slice(&buf[..n]);
                let excess = s.tail.len().saturating_sub(SAID_TAIL);
                s.tail.drain(..excess);
            }
        }
    }
    lock(said).closed = true;
}

/// A file's content arriving from the endpoint, checked against its digest at the end. What
/// the reader of it leaves unread is read (and dropped) when it goes, so the stream stays in
/// step.
pub struct RemoteReader<'a> {
    endpoint: &'a mut RemoteEndpoint,
    hasher: blake3::Hasher,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl RemoteReader<'_> {
    /// Takes the next response of the content into `chunk`.
    fn accept(&mut self, response: Result<Response, String>) -> std::io::Result<()> {
        match response {
            Ok(Response::Chunk(bytes)) => {
                self.hasher.update(&bytes);
                self.chunk = bytes;
                self.at = 0;
                Ok(())
            }
            Ok(Response::End(digest)) => {
                self.ended = true;
                if digest == *self.hasher.finalize().as_bytes() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(
                        "the content arrived damaged (its digest does not match)",
                    ))
                }
            }
            Ok(Response::Failed(fault)) => {
                self.ended = true;
                match fault {
                    Fault::Io { errno: Some(n), .. } => Err(std::io::Error::from_raw_os_error(n)),
                    other => Err(std::io::Error::other(other.to_string())),
                }
            }
            Ok(other) => {
                self.ended = true;
                Err(std::io::Error::other(unexpected(&other)))
            }
            Err(e) => {
                self.ended = true;
                Err(std::io::Error::other(e))
            }
        }
    }
}

impl Read for RemoteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            let next = self.endpoint.next();
            self.accept(next)?;
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for RemoteReader<'_> {
    fn drop(&mut self) {
        while !self.ended {
            let next = self.endpoint.next();
            let _ = self.accept(next);
        }
    }
}

/// The endpoint's end of the watch: events stop reaching the loop when it goes.
pub struct RemoteWatch {
    sink: Sink,
}

impl Drop for RemoteWatch {
    fn drop(&mut self) {
        *lock(&self.sink) = None;
    }
}

impl Endpoint for RemoteEndpoint {
    type Watching = RemoteWatch;
    type Reader<'a> = RemoteReader<'a>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError> {
        self.scan(Request::Full)
    }

    fn under(&mut self, rel: &[u8]) -> Result<(Tree, Vec<Warning>), ScanError> {
        self.scan(Request::Under(rel.to_vec()))
    }

    fn root_is_empty(&mut self) -> Result<bool, ScanError> {
        self.send(&[Request::RootIsEmpty])
            .map_err(|e| self.scan_error(e))?;
        match self.next() {
            Ok(Response::Empty(empty)) => Ok(empty),
            Ok(other) => Err(self.scan_error(unexpected(&other))),
            Err(e) => Err(self.scan_error(e)),
        }
    }

    fn exclude(&mut self, patterns: &[String]) -> Result<(), ScanError> {
        self.simple(Request::Exclude(patterns.to_vec()))
    }

    fn forget_rules(&mut self) -> Result<(), ScanError> {
        self.simple(Request::ForgetRules)
    }

    /// Never: the endpoint leaves the echoes of berth's writes out of the events it sends.
    fn is_echo(&mut self, _rel: &[u8]) -> bool {
        false
    }

    fn read(&mut self, rel: &[u8]) -> Result<RemoteReader<'_>, ApplyError> {
        self.send(&[Request::Read(rel.to_vec())])
            .map_err(|e| self.apply_error(e))?;
        let first = self.next();
        // A file that cannot be opened fails here, before the other side begins to write.
        if let Ok(Response::Failed(fault)) = first {
            let path = String::from_utf8_lossy(rel).into_owned();
            return Err(match fault {
                Fault::Io { errno, message, .. } => Fault::Io {
                    path,
                    errno,
                    message,
                },
                other => other,
            }
            .into_apply(&self.name));
        }
        let mut reader = RemoteReader {
            endpoint: self,
            hasher: blake3::Hasher::new(),
            chunk: Vec::new(),
            at: 0,
            ended: false,
        };
        match reader.accept(first) {
            Ok(()) => Ok(reader),
            Err(e) => {
                let name = reader.endpoint.name.clone();
                Err(ApplyError::Io {
                    path: name,
                    source: e,
                })
            }
        }
    }

    fn apply(
        &mut self,
        rel: &[u8],
        entry: Option<&Entry>,
        content: Option<&mut dyn Read>,
    ) -> Result<Option<Entry>, ApplyError> {
        self.send(&[Request::Apply {
            rel: rel.to_vec(),
            entry: entry.cloned(),
        }])
        .map_err(|e| self.apply_error(e))?;
        let mut read_failed = None;
        if let Some(Entry::File { .. }) = entry {
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; CHUNK];
            let mut content = content;
            let end = loop {
                let n = match content.as_mut().map(|c| c.read(&mut buf)) {
                    None | Some(Ok(0)) => break Request::End(*hasher.finalize().as_bytes()),
                    Some(Ok(n)) => n,
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Some(Err(e)) => {
                        let abort = Request::Abort(e.to_string());
                        read_failed = Some(e);
                        break abort;
                    }
                };
                hasher.update(&buf[..n]);
                self.send(&[Request::Chunk(buf[..n].to_vec())])
                    .map_err(|e| self.apply_error(e))?;
            };
            self.send(&[end]).map_err(|e| self.apply_error(e))?;
        }
        let answer = self.next();
        if let Some(source) = read_failed {
            // The apply failed on the far side too, leaving nothing; the cause is here.
            return Err(ApplyError::Io {
                path: String::from_utf8_lossy(rel).into_owned(),
                source,
            });
        }
        match answer {
            Ok(Response::Applied(written)) => Ok(written),
            Ok(Response::Failed(fault)) => Err(fault.into_apply(&self.name)),
            Ok(other) => Err(self.apply_error(unexpected(&other))),
            Err(e) => Err(self.apply_error(e)),
        }
    }

    fn watch(&mut self, side: Side, tx: Sender<Input>) -> std::io::Result<RemoteWatch> {
        *lock(&self.sink) = Some((side, tx));
        self.simple(Request::Watch)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(RemoteWatch {
            sink: self.sink.clone(),
        })
    }

    fn heartbeat(&mut self) -> std::io::Result<()> {
        self.simple(Request::Heartbeat)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}
