//! The endpoint's end (`berth __endpoint ROOT`): one root served over a byte stream, usually
//! its standard input and output.
//!
//! It greets first ([`Response::Hello`]), takes the client's `Hello` (the protocol must match;
//! the root must be a directory), then answers requests one by one with the local endpoint
//! ([`Scanner`]: its stat cache stays here, so an unchanged file is never read again, and a
//! file's bytes cross the stream only when the engine copies it). Applies go through
//! [`crate::apply`], so nothing is written outside the root and every file appears whole.
//! Watch events are sent as they come, from a thread of their own, with berth's own writes left
//! out (the scanner knows them), so the client never sees its echoes; and once the handshake is
//! done, a thread of its own says the endpoint is alive every [`ALIVE_EVERY`]. The endpoint
//! ends when the stream does.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::apply::check_rel;
use crate::endpoint::Endpoint;
use crate::reconcile::{Entry, Side};
use crate::scan::{ScanError, Scanner, Tree, Warning};
use crate::watch::{Input, Watch};

use super::RemoteError;
use super::content::{ChunkReader, send_content};
use super::frame::{FrameError, FrameReader, FrameWriter};
use super::message::{
    ALIVE_EVERY, ENTRIES_PER_FRAME, Event, Fault, GitFacts, PROTOCOL, Request, Response, VERSION,
};

/// Bytes of entries per [`Response::Entries`] (well below the frame limit).
const ENTRY_BYTES_PER_FRAME: usize = 1 << 20;

/// The writing end, shared with the thread that sends watch events.
type Output<W> = Arc<Mutex<FrameWriter<W>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends responses and flushes them.
fn send<W: Write>(out: &Output<W>, responses: &[Response]) -> Result<(), FrameError> {
    let mut out = lock(out);
    for r in responses {
        out.write(r)?;
    }
    out.flush()
}

/// Work the sync engine carries but does not understand ([`Request::Host`]): whoever runs the
/// endpoint answers it (the daemon's agents elsewhere, `berth_daemon::far`).
pub trait Host: Send {
    /// The answer to `request`, for the tree at `root`; an error is sent back as a failure.
    fn call(&mut self, root: &Path, request: &[u8]) -> Result<Vec<u8>, String>;
}

/// An endpoint that only syncs: every host call is refused.
pub struct NoHost;

impl Host for NoHost {
    fn call(&mut self, _root: &Path, _request: &[u8]) -> Result<Vec<u8>, String> {
        Err("this endpoint only syncs".into())
    }
}

/// Serves `root` on this process's standard input and output, with `host` answering host calls.
pub fn serve_stdio(root: &Path, host: &mut dyn Host) -> Result<(), RemoteError> {
    serve_with(root, std::io::stdin().lock(), std::io::stdout(), host)
}

/// Serves `root` over `input` and `output` until `input` ends, refusing host calls.
pub fn serve<R: Read, W: Write + Send + 'static>(
    root: &Path,
    input: R,
    output: W,
) -> Result<(), RemoteError> {
    serve_with(root, input, output, &mut NoHost)
}

/// Serves `root` over `input` and `output` until `input` ends, with `host` answering host calls.
pub fn serve_with<R: Read, W: Write + Send + 'static>(
    root: &Path,
    input: R,
    output: W,
    host: &mut dyn Host,
) -> Result<(), RemoteError> {
    let out: Output<W> = Arc::new(Mutex::new(FrameWriter::new(output)));
    let mut input = FrameReader::new(input);
    send(
        &out,
        &[Response::Hello {
            protocol: PROTOCOL,
            version: VERSION.to_string(),
        }],
    )?;
    let max_size = match input.read::<Request>()? {
        Request::Hello {
            protocol: PROTOCOL,
            max_size,
            ..
        } => max_size,
        Request::Hello {
            protocol, version, ..
        } => {
            let why = format!(
                "the endpoint is berth {VERSION} (protocol {PROTOCOL}) and the daemon is berth \
                 {version} (protocol {protocol}): use the same version of berth on both sides"
            );
            send(&out, &[Response::Failed(Fault::Refused(why.clone()))])?;
            return Err(RemoteError::Refused(why));
        }
        other => {
            let why = format!("the client began with {other:?}, not with its hello");
            send(&out, &[Response::Failed(Fault::Refused(why.clone()))])?;
            return Err(RemoteError::Refused(why));
        }
    };
    let root = match std::fs::canonicalize(root) {
        Ok(r) if r.is_dir() => r,
        found => {
            let error = match found {
                Ok(_) => "it is not a directory".to_string(),
                Err(e) => e.to_string(),
            };
            let fault = Fault::Scan {
                root: root.display().to_string(),
                error,
            };
            send(&out, &[Response::Failed(fault.clone())])?;
            return Err(RemoteError::Refused(fault.to_string()));
        }
    };
    send(&out, &[Response::Done])?;
    let _alive = KeepAlive::start(out.clone())?;
    let mut endpoint = Served {
        scanner: Arc::new(Mutex::new(Scanner::new(&root, max_size))),
        watching: None,
        out,
    };
    loop {
        let request = match input.read::<Request>() {
            Ok(r) => r,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Request::Host(call) = request {
            let root = lock(&endpoint.scanner).root().to_path_buf();
            let answer = match host.call(&root, &call) {
                Ok(bytes) => Response::Host(bytes),
                Err(why) => Response::Failed(Fault::Refused(why)),
            };
            send(&endpoint.out, &[answer])?;
            continue;
        }
        endpoint.answer(request, &mut input)?;
    }
}

/// The thread that says the endpoint is alive, until it is dropped (or the stream breaks).
struct KeepAlive(Arc<AtomicBool>);

impl KeepAlive {
    fn start<W: Write + Send + 'static>(out: Output<W>) -> Result<KeepAlive, RemoteError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("berth-endpoint-alive".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(ALIVE_EVERY);
                    if stopped.load(Ordering::Relaxed) || send(&out, &[Response::Alive]).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| RemoteError::Frame(FrameError::Io(e)))?;
        Ok(KeepAlive(stop))
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The served root's state.
struct Served<W: Write + Send + 'static> {
    scanner: Arc<Mutex<Scanner>>,
    watching: Option<Watch>,
    out: Output<W>,
}

impl<W: Write + Send + 'static> Served<W> {
    fn answer<R: Read>(
        &mut self,
        request: Request,
        input: &mut FrameReader<R>,
    ) -> Result<(), RemoteError> {
        let done = |r: Result<(), Fault>| match r {
            Ok(()) => Response::Done,
            Err(f) => Response::Failed(f),
        };
        let response = match request {
            Request::Full => {
                let scanned = lock(&self.scanner).full();
                return Ok(self.send_scan(scanned)?);
            }
            Request::Under(rel) => match check_rel(&rel) {
                Ok(_) => {
                    let scanned = lock(&self.scanner).under(&rel);
                    return Ok(self.send_scan(Ok(scanned))?);
                }
                Err(e) => Response::Failed(Fault::of_apply(&e)),
            },
            Request::RootIsEmpty => Response::Empty(lock(&self.scanner).root_is_empty()),
            Request::Exclude(patterns) => done(
                Endpoint::exclude(&mut *lock(&self.scanner), &patterns).map_err(Fault::of_scan),
            ),
            Request::ForgetRules => {
                lock(&self.scanner).forget_rules();
                Response::Done
            }
            Request::Read(rel) => {
                let opened = check_rel(&rel).and_then(|_| lock(&self.scanner).read(&rel));
                match opened {
                    Ok(file) => send_content(file, |r| send(&self.out, &[r]))?,
                    Err(e) => send(&self.out, &[Response::Failed(Fault::of_apply(&e))])?,
                }
                return Ok(());
            }
            Request::Apply { rel, entry } => {
                // A file's content follows the request; nothing else has any.
                let is_file = matches!(entry, Some(Entry::File { .. }));
                let mut content = ChunkReader::new(input);
                let applied = {
                    let mut scanner = lock(&self.scanner);
                    let content = is_file.then_some(&mut content as &mut dyn Read);
                    Endpoint::apply(&mut *scanner, &rel, entry.as_ref(), content)
                };
                if is_file {
                    content.finish()?;
                }
                match applied {
                    Ok(written) => Response::Applied(written),
                    Err(e) => Response::Failed(Fault::of_apply(&e)),
                }
            }
            Request::Watch => done(self.watch()),
            Request::Heartbeat => done(
                lock(&self.scanner)
                    .heartbeat()
                    .map_err(|e| Fault::Refused(format!("cannot send the heartbeat: {e}"))),
            ),
            Request::GitFacts { names } => {
                Response::GitFacts(git_facts(lock(&self.scanner).root(), &names))
            }
            Request::Hello { .. }
            | Request::Chunk(_)
            | Request::End(_)
            | Request::Abort(_)
            | Request::Host(_) => Response::Failed(Fault::Refused(format!(
                "a request out of turn: {}",
                request_name(&request)
            ))),
        };
        Ok(send(&self.out, &[response])?)
    }

    /// A scan's result as batches of entries, then its warnings.
    fn send_scan(
        &self,
        scanned: Result<(Tree, Vec<Warning>), ScanError>,
    ) -> Result<(), FrameError> {
        let (tree, warnings) = match scanned {
            Ok(t) => t,
            Err(e) => return send(&self.out, &[Response::Failed(Fault::of_scan(e))]),
        };
        let mut out = lock(&self.out);
        let (mut batch, mut bytes) = (Vec::new(), 0);
        for (path, entry) in tree {
            bytes += path.len() + 48;
            if let Entry::Symlink { target } = &entry {
                bytes += target.len();
            }
            batch.push((path, entry));
            if batch.len() >= ENTRIES_PER_FRAME || bytes >= ENTRY_BYTES_PER_FRAME {
                out.write(&Response::Entries(std::mem::take(&mut batch)))?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            out.write(&Response::Entries(batch))?;
        }
        out.write(&Response::Scanned(warnings))?;
        out.flush()
    }

    /// Starts watching anew; events are forwarded by a thread of their own.
    fn watch(&mut self) -> Result<(), Fault> {
        self.watching = None;
        let (tx, rx) = channel();
        let watch = lock(&self.scanner)
            .watch(Side::Beta, tx)
            .map_err(|e| Fault::Refused(format!("cannot watch the tree: {e}")))?;
        let (scanner, out) = (self.scanner.clone(), self.out.clone());
        std::thread::Builder::new()
            .name("berth-endpoint-events".into())
            .spawn(move || forward(&rx, &scanner, &out))
            .map_err(|e| Fault::Refused(format!("cannot start watching: {e}")))?;
        self.watching = Some(watch);
        Ok(())
    }
}

/// Sends the watch's events until it stops (or the stream breaks), leaving out the echoes of
/// berth's own writes.
fn forward<W: Write>(rx: &Receiver<Input>, scanner: &Mutex<Scanner>, out: &Output<W>) {
    for input in rx {
        let event = match input {
            Input::Changed { paths, .. } => {
                let mut scanner = lock(scanner);
                let paths: Vec<_> = paths.into_iter().filter(|p| !scanner.is_echo(p)).collect();
                if paths.is_empty() {
                    continue;
                }
                Event::Changed(paths)
            }
            Input::Overflow { .. } => Event::Overflow,
            Input::WatchError { error, .. } => Event::WatchError(error),
            Input::Heartbeat { .. } => Event::Heartbeat,
            _ => continue,
        };
        if send(out, &[Response::Event(event)]).is_err() {
            return;
        }
    }
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "hello",
        Request::Chunk(_) => "content",
        Request::End(_) => "end of content",
        Request::Abort(_) => "abort",
        _ => "request",
    }
}

/// The facts of `root`'s git dir (`.git`, or where a `.git` file points).
fn git_facts(root: &Path, names: &[String]) -> GitFacts {
    let dot = root.join(".git");
    let git_dir = match std::fs::symlink_metadata(&dot) {
        Ok(m) if m.is_dir() => Some(dot),
        Ok(m) if m.is_file() => std::fs::read_to_string(&dot)
            .ok()
            .and_then(|s| s.strip_prefix("gitdir:").map(|p| root.join(p.trim()))),
        _ => None,
    };
    let Some(dir) = git_dir else {
        return GitFacts {
            git_dir: None,
            head: None,
            changed_ns: vec![None; names.len()],
        };
    };
    let changed = |name: &String| {
        use std::os::unix::fs::MetadataExt;
        check_rel(name.as_bytes()).ok()?;
        let m = std::fs::symlink_metadata(dir.join(name)).ok()?;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Some(ns(m.ctime(), m.ctime_nsec()).max(ns(m.mtime(), m.mtime_nsec())))
    };
    GitFacts {
        head: std::fs::read_to_string(dir.join("HEAD")).ok(),
        changed_ns: names.iter().map(changed).collect(),
        git_dir: Some(dir.display().to_string()),
    }
}
