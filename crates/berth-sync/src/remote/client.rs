//! The daemon's end: a [`RemoteEndpoint`] is a tree served by `berth __endpoint` at the other
//! end of a byte stream — the standard input and output of a command its [`Launcher`] makes
//! (`ssh host … berth __endpoint DIR`, `docker exec -i …`, or the local binary in tests) or any
//! reader and writer — over a [`Connection`]. An endpoint that does not answer its hello, or
//! answers with another version, is given to the launcher to repair (installing berth there)
//! and tried once more.
//!
//! Requests go out one after another, each waiting for its answer. When the stream breaks, the
//! request fails with why (what ssh said, typically), and so does every later one — except
//! that an endpoint that started a command starts it again at the next request: the handshake
//! again, the extra exclusions, and the watch if there was one. The live loop's own retries
//! (every few seconds) are the pace, and the full rescan that follows a lost watch carries
//! over what changed on either side meanwhile.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use crate::apply::ApplyError;
use crate::endpoint::Endpoint;
use crate::reconcile::{Entry, Side};
use crate::scan::{ScanError, Tree, Warning};
use crate::watch::Input;

use super::RemoteError;
use super::connection::{Connection, Sink, lock};
use super::launch::Launcher;
use super::message::{CHUNK, Fault, GitFacts, PROTOCOL, Request, Response, VERSION};
use super::traffic::Traffic;

/// How to start an endpoint again.
struct Restart {
    launcher: Box<dyn Launcher>,
    max_size: u64,
}

/// A tree on the other side of a byte stream.
pub struct RemoteEndpoint {
    name: String,
    conn: Connection,
    sink: Sink,
    /// Why the stream broke, until it is made again.
    lost: Option<String>,
    /// For an endpoint this one started: how to start it again.
    restart: Option<Restart>,
    /// The extra exclusions given so far (a new endpoint gets them again).
    exclude: Vec<String>,
    /// Files' contents carried, each way.
    traffic: Arc<Traffic>,
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
    /// Starts the command `launcher` makes (it must run `berth __endpoint ROOT`) and speaks the
    /// protocol over its standard input and output; `name` names the tree in messages. Files
    /// over `max_size` bytes are not synced. After the stream broke, the next request starts a
    /// new command.
    pub fn spawn(
        name: &str,
        launcher: impl Launcher + 'static,
        max_size: u64,
    ) -> Result<RemoteEndpoint, RemoteError> {
        let sink = Sink::default();
        let mut launcher: Box<dyn Launcher> = Box::new(launcher);
        let conn = open(name, launcher.as_mut(), &sink, max_size)?;
        let mut endpoint = RemoteEndpoint::with(name, conn, sink);
        endpoint.restart = Some(Restart { launcher, max_size });
        Ok(endpoint)
    }

    /// Like [`RemoteEndpoint::spawn`], over a stream that is already connected to an endpoint's
    /// output (`input`) and input (`output`); once it breaks, it stays broken.
    pub fn connect(
        name: &str,
        input: impl Read + Send + 'static,
        output: impl std::io::Write + Send + 'static,
        max_size: u64,
    ) -> Result<RemoteEndpoint, RemoteError> {
        let sink = Sink::default();
        let mut conn =
            Connection::over(input, output, &sink).map_err(|source| RemoteError::Spawn {
                command: name.to_string(),
                source,
            })?;
        handshake(name, &mut conn, max_size)?;
        Ok(RemoteEndpoint::with(name, conn, sink))
    }

    fn with(name: &str, conn: Connection, sink: Sink) -> RemoteEndpoint {
        RemoteEndpoint {
            name: name.to_string(),
            conn,
            sink,
            lost: None,
            restart: None,
            exclude: Vec::new(),
            traffic: Arc::default(),
        }
    }

    /// Where this endpoint counts the files' contents it carries.
    pub fn traffic(&self) -> Arc<Traffic> {
        self.traffic.clone()
    }

    /// Counts into `traffic` from now on (shared with its owner's other transfers).
    pub fn count_into(&mut self, traffic: Arc<Traffic>) {
        self.traffic = traffic;
    }

    /// Starts the endpoint again after the stream broke, and gives it what the old one had.
    fn reconnect(&mut self) -> Result<(), String> {
        let lost = self.lost.clone().unwrap_or_default();
        let Some(restart) = self.restart.as_mut() else {
            return Err(lost);
        };
        let again = open(
            &self.name,
            restart.launcher.as_mut(),
            &self.sink,
            restart.max_size,
        )
        .map(|conn| self.conn = conn)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            self.lost = None;
            let exclude = self.exclude.clone();
            if !exclude.is_empty() {
                self.simple(Request::Exclude(exclude))
                    .map_err(|e| e.to_string())?;
            }
            if lock(&self.sink).is_some() {
                self.simple(Request::Watch).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        again.map_err(|e| {
            let message = format!("{lost}; starting it again failed: {e}");
            self.lost = Some(message.clone());
            message
        })
    }

    /// Sends requests and flushes them (starting the endpoint again first if the stream broke).
    fn send(&mut self, requests: &[Request]) -> Result<(), String> {
        if self.lost.is_some() {
            self.reconnect()?;
        }
        let sent = self.conn.send(requests);
        sent.map_err(|e| self.lose(e.to_string()))
    }

    /// The next response.
    fn next(&mut self) -> Result<Response, String> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        let next = self.conn.next();
        next.map_err(|message| self.lose(message))
    }

    /// Records that the stream broke, and why.
    fn lose(&mut self, message: String) -> String {
        let said = self.conn.said();
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

/// How a [`RemoteEndpoint::host_call`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostCallError {
    /// The far side could not be reached (the stream broke, or starting it again failed).
    #[error("{0}")]
    Link(String),
    /// The far side was reached and refused the call, saying why.
    #[error("{0}")]
    Refused(String),
}

impl RemoteEndpoint {
    /// Hands `request` to the far side's [`super::Host`] and returns its answer.
    pub fn host_call(&mut self, request: Vec<u8>) -> Result<Vec<u8>, HostCallError> {
        self.send(&[Request::Host(request)])
            .map_err(HostCallError::Link)?;
        match self.next() {
            Ok(Response::Host(answer)) => Ok(answer),
            Ok(Response::Failed(fault)) => Err(HostCallError::Refused(fault.to_string())),
            Ok(other) => Err(HostCallError::Refused(unexpected(&other))),
            Err(e) => Err(HostCallError::Link(e)),
        }
    }
}

/// Starts an endpoint with `launcher` and shakes hands with it; one that does not answer, or
/// answers with another version, is repaired by the launcher if it can and started once more.
fn open(
    name: &str,
    launcher: &mut dyn Launcher,
    sink: &Sink,
    max_size: u64,
) -> Result<Connection, RemoteError> {
    let mut repaired = false;
    loop {
        let mut conn = Connection::spawn(launcher.command()?, sink)?;
        match handshake(name, &mut conn, max_size) {
            Ok(()) => return Ok(conn),
            Err(failure) => {
                // The endpoint that failed ends before anything is repaired.
                drop(conn);
                if repaired || !launcher.repair(&failure)? {
                    return Err(failure);
                }
                repaired = true;
            }
        }
    }
}

/// The endpoint's hello, then ours; the endpoint checks the root.
fn handshake(name: &str, conn: &mut Connection, max_size: u64) -> Result<(), RemoteError> {
    let not_started = |conn: &Connection, message: String| RemoteError::NotStarted {
        name: name.to_string(),
        message,
        said: conn.said(),
    };
    match conn.next() {
        Ok(Response::Hello {
            protocol: PROTOCOL, ..
        }) => {}
        Ok(Response::Hello { protocol, version }) => {
            return Err(RemoteError::Version {
                name: name.to_string(),
                theirs: format!("berth {version} (protocol {protocol})"),
                ours: format!("berth {VERSION} (protocol {PROTOCOL})"),
            });
        }
        Ok(other) => {
            let message = format!("it began with {other:?} instead of a hello");
            return Err(not_started(conn, message));
        }
        Err(message) => return Err(not_started(conn, message)),
    }
    let hello = Request::Hello {
        protocol: PROTOCOL,
        version: VERSION.to_string(),
        max_size,
    };
    if let Err(e) = conn.send(&[hello]) {
        return Err(not_started(conn, e.to_string()));
    }
    match conn.next() {
        Ok(Response::Done) => Ok(()),
        Ok(Response::Failed(fault)) => Err(RemoteError::Refused(format!("{name}: {fault}"))),
        Ok(other) => Err(not_started(conn, format!("it answered {other:?}"))),
        Err(message) => Err(not_started(conn, message)),
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
        Response::Alive => "a keepalive",
        Response::Host(_) => "a host call's answer",
    };
    format!("the endpoint answered out of turn ({what})")
}

/// A file's content arriving from the endpoint, checked against its digest at the end. What
/// the reader of it leaves unread is read (and dropped) when it goes, so the stream stays in
/// step.
pub struct RemoteReader<'a> {
    endpoint: &'a mut RemoteEndpoint,
    /// When it was asked for, and how many bytes came so far (counted once it ended well).
    began: Instant,
    bytes: u64,
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
                self.bytes += bytes.len() as u64;
                self.chunk = bytes;
                self.at = 0;
                Ok(())
            }
            Ok(Response::End(digest)) => {
                self.ended = true;
                if digest == *self.hasher.finalize().as_bytes() {
                    self.endpoint
                        .traffic
                        .received(self.bytes, self.began.elapsed());
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
        self.simple(Request::Exclude(patterns.to_vec()))?;
        self.exclude.extend_from_slice(patterns);
        Ok(())
    }

    fn forget_rules(&mut self) -> Result<(), ScanError> {
        self.simple(Request::ForgetRules)
    }

    /// Never: the endpoint leaves the echoes of berth's writes out of the events it sends.
    fn is_echo(&mut self, _rel: &[u8]) -> bool {
        false
    }

    fn read(&mut self, rel: &[u8]) -> Result<RemoteReader<'_>, ApplyError> {
        let began = Instant::now();
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
            began,
            bytes: 0,
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
        let began = Instant::now();
        let mut sent = 0u64;
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
                sent += n as u64;
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
            Ok(Response::Applied(written)) => {
                if sent > 0 {
                    self.traffic.sent(sent, began.elapsed());
                }
                Ok(written)
            }
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
