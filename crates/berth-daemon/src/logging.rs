//! The daemon log: `run/daemon.log`, size-capped and rotated by `berth_supervisor::logs` (the
//! same rotation agents' logs use), written through `tracing`; `berth_control::logs` reads it back.
//!
//! When the daemon runs detached, the current log file is also its standard error, so even a
//! panic message lands in the log; rotation re-points standard error at the new file.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use berth_core::home::Home;
use berth_supervisor::logs::RotatingFile;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug)]
struct Inner {
    file: RotatingFile,
    /// Re-point standard error at the current file (detached daemons).
    redirect_stderr: bool,
}

/// The daemon log, shareable between threads.
#[derive(Debug, Clone)]
pub struct RotatingLog {
    inner: Arc<Mutex<Inner>>,
}

fn point_stderr_at(file: &File) {
    // SAFETY: dup2 onto descriptor 2 with a descriptor we own; it only changes the fd table.
    unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) };
}

impl RotatingLog {
    pub fn open(
        home: &Home,
        max_bytes: u64,
        keep: u32,
        redirect_stderr: bool,
    ) -> std::io::Result<RotatingLog> {
        let file = RotatingFile::open(home.daemon_log(), max_bytes, keep)?;
        if redirect_stderr {
            point_stderr_at(file.file());
        }
        let inner = Inner {
            file,
            redirect_stderr,
        };
        Ok(RotatingLog {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn write_record(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.file.write_record(buf)? && inner.redirect_stderr {
            point_stderr_at(inner.file.file());
        }
        Ok(())
    }
}

/// One log record being written; flushed to the file as a whole when dropped.
pub struct Record {
    log: RotatingLog,
    buf: Vec<u8>,
}

impl Write for Record {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // Nowhere left to report a failure to write the log itself.
            let _ = self.log.write_record(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for RotatingLog {
    type Writer = Record;
    fn make_writer(&'a self) -> Record {
        Record {
            log: self.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

/// Installs the global tracing subscriber: always the rotating file, plus standard error when
/// asked to (`berth serve` in a terminal). `RUST_LOG` overrides the default `info` level.
pub fn init(log: RotatingLog, to_stderr: bool) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(log)
        .with_filter(filter());
    let stderr_layer = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    // A second init (tests running several daemons in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_rotate_and_the_tail_reads_across_files() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path());
        std::fs::create_dir_all(home.run_dir()).unwrap();
        let log = RotatingLog::open(&home, 4096, 2, false).unwrap();
        for i in 0..400 {
            let mut w = log.make_writer();
            writeln!(w, "line {i:04} {}", "x".repeat(40)).unwrap();
        }
        assert!(std::fs::metadata(home.daemon_log()).unwrap().len() <= 4096);
        assert!(tmp.path().join("run/daemon.log.2").exists());
        let long = berth_control::logs::tail(&home.daemon_log(), 150);
        assert_eq!(long.len(), 150);
        assert!(long[149].starts_with("line 0399") && long[0].starts_with("line 0250"));
    }
}
