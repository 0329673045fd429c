//! One connection to an endpoint: the stream the requests are written to, a thread reading
//! every frame that comes back — watch events straight to the live loop's channel (the sink,
//! once [`crate::endpoint::Endpoint::watch`] gave it one), everything else to the request
//! waiting for it through a bounded queue, so a large file streamed from the far side never
//! piles up in memory — and the command at the other end, if the connection started one, with
//! the last of what it said on its standard error (ssh's reason, when it fails). When the
//! stream breaks, the waiting request hears why and a watching loop hears of it as a watch
//! error. A request that hears nothing at all from the far side — not even its keepalive,
//! [`Response::Alive`], sent every second — for [`silence_limit`] fails as a broken stream does:
//! a frozen host or a paused container is said to have stopped answering instead of holding
//! the loop for ever. Dropping a connection closes the endpoint's input, so it ends (and ssh
//! with it); a command that does not end within two seconds is killed.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::reconcile::Side;
use crate::watch::Input;

use super::RemoteError;
use super::frame::{FrameError, FrameReader, FrameWriter};
use super::message::{Event, Request, Response};

/// Responses queued between the reading thread and the request waiting for them.
const QUEUED: usize = 16;

/// How much of the command's standard error is kept for messages.
const SAID_TAIL: usize = 4096;

/// How long a request waits for the far side when nothing at all comes from it (30 s;
/// `BERTH_REMOTE_SILENCE_MS` for tests and diagnosis).
pub fn silence_limit() -> Duration {
    std::env::var("BERTH_REMOTE_SILENCE_MS")
        .ok()
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis)
}

/// Where watch events go: the live loop's channel and the side the tree is.
pub type Sink = Arc<Mutex<Option<(Side, Sender<Input>)>>>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last bytes a command wrote on its standard error, and whether it closed it.
struct Said {
    tail: Vec<u8>,
    closed: bool,
}

/// One connection to an endpoint.
pub struct Connection {
    out: FrameWriter<Box<dyn Write + Send>>,
    responses: Receiver<Result<Response, String>>,
    child: Option<Child>,
    said: Arc<Mutex<Said>>,
    /// When the last frame of any kind came.
    heard: Arc<Mutex<Instant>>,
    silence_limit: Duration,
}

impl Connection {
    /// Starts `command` and connects to its standard input and output.
    pub fn spawn(mut command: Command, sink: &Sink) -> Result<Connection, RemoteError> {
        let shown = format!("{command:?}");
        let spawn_error = |source| RemoteError::Spawn {
            command: shown.clone(),
            source,
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(std::io::Error::other(
                "its standard streams could not be connected",
            )));
        };
        let said = Arc::new(Mutex::new(Said {
            tail: Vec::new(),
            closed: false,
        }));
        let keep = said.clone();
        let mut conn = Connection::over(stdout, stdin, sink).map_err(spawn_error)?;
        conn.child = Some(child);
        conn.said = said;
        std::thread::Builder::new()
            .name("berth-remote-stderr".into())
            .spawn(move || collect_stderr(stderr, &keep))
            .map_err(spawn_error)?;
        Ok(conn)
    }

    /// Connects to an endpoint's output (`input`) and input (`output`).
    pub fn over(
        input: impl Read + Send + 'static,
        output: impl Write + Send + 'static,
        sink: &Sink,
    ) -> std::io::Result<Connection> {
        let (tx, responses) = sync_channel(QUEUED);
        let events = sink.clone();
        let heard = Arc::new(Mutex::new(Instant::now()));
        let hearing = heard.clone();
        std::thread::Builder::new()
            .name("berth-remote-read".into())
            .spawn(move || pump(FrameReader::new(input), &tx, &events, &hearing))?;
        Ok(Connection {
            out: FrameWriter::new(Box::new(output)),
            responses,
            heard,
            silence_limit: silence_limit(),
            child: None,
            // No command: nothing will be said.
            said: Arc::new(Mutex::new(Said {
                tail: Vec::new(),
                closed: true,
            })),
        })
    }

    /// Sends requests and flushes them.
    pub fn send(&mut self, requests: &[Request]) -> Result<(), FrameError> {
        requests.iter().try_for_each(|r| self.out.write(r))?;
        self.out.flush()
    }

    /// The next response, or why none will come.
    pub fn next(&mut self) -> Result<Response, String> {
        let waiting = Instant::now();
        loop {
            match self.responses.recv_timeout(Duration::from_millis(250)) {
                Ok(answer) => return answer,
                Err(RecvTimeoutError::Disconnected) => return Err("the stream closed".to_string()),
                Err(RecvTimeoutError::Timeout) => {
                    // Silence counts from the last frame, or from when this wait began (the
                    // reading thread may have been held by a full queue before).
                    let silent = lock(&self.heard).elapsed().min(waiting.elapsed());
                    if silent >= self.silence_limit {
                        return Err(format!(
                            "nothing came from the far side for {:.1} s: it stopped answering",
                            silent.as_secs_f64()
                        ));
                    }
                }
            }
        }
    }

    /// What the command said on its standard error (waiting a moment for it to finish saying
    /// it, when the stream broke).
    pub fn said(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !lock(&self.said).closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        String::from_utf8_lossy(&lock(&self.said).tail)
            .trim()
            .to_string()
    }
}

impl Drop for Connection {
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

/// Reads every frame from the endpoint: events to the sink, keepalives only noted, the rest to
/// the waiting request.
fn pump<R: Read>(
    mut frames: FrameReader<R>,
    responses: &SyncSender<Result<Response, String>>,
    sink: &Sink,
    heard: &Mutex<Instant>,
) {
    loop {
        let frame = frames.read::<Response>();
        if frame.is_ok() {
            *lock(heard) = Instant::now();
        }
        match frame {
            Ok(Response::Alive) => {}
            Ok(Response::Event(event)) => {
                if let Some((side, tx)) = &*lock(sink) {
                    let side = *side;
                    let input = match event {
                        Event::Changed(paths) => Input::Changed {
                            side,
                            paths,
                            settled: false,
                        },
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
