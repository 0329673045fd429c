//! The daemon log: a size-capped file with rotation, and reading its tail back.
//!
//! `run/daemon.log` grows to `max_bytes`, then becomes `daemon.log.1` (the older ones shift up,
//! the oldest beyond `keep` is deleted) and a fresh file starts. When the daemon runs detached,
//! the current log file is also its standard error, so even a panic message lands in the log;
//! rotation re-points standard error at the new file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use berth_core::home::Home;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug)]
struct Inner {
    home: Home,
    max_bytes: u64,
    keep: u32,
    file: File,
    size: u64,
    /// Re-point standard error at the current file (detached daemons).
    redirect_stderr: bool,
}

/// A rotating log file, shareable between threads.
#[derive(Debug, Clone)]
pub struct RotatingLog {
    inner: Arc<Mutex<Inner>>,
}

fn open_log(home: &Home) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(home.daemon_log())?;
    let size = file.metadata()?.len();
    Ok((file, size))
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
        let (file, size) = open_log(home)?;
        if redirect_stderr {
            point_stderr_at(&file);
        }
        let inner = Inner {
            home: home.clone(),
            max_bytes,
            keep,
            file,
            size,
            redirect_stderr,
        };
        Ok(RotatingLog {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn write_record(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.size > 0 && inner.size + buf.len() as u64 > inner.max_bytes {
            inner.rotate()?;
        }
        inner.file.write_all(buf)?;
        inner.size += buf.len() as u64;
        Ok(())
    }
}

impl Inner {
    fn rotate(&mut self) -> std::io::Result<()> {
        let home = &self.home;
        if self.keep == 0 {
            std::fs::remove_file(home.daemon_log())?;
        } else {
            let _ = std::fs::remove_file(home.rotated_daemon_log(self.keep));
            for n in (1..self.keep).rev() {
                let from = home.rotated_daemon_log(n);
                if from.exists() {
                    std::fs::rename(&from, home.rotated_daemon_log(n + 1))?;
                }
            }
            std::fs::rename(home.daemon_log(), home.rotated_daemon_log(1))?;
        }
        let (file, size) = open_log(home)?;
        if self.redirect_stderr {
            point_stderr_at(&file);
        }
        self.file = file;
        self.size = size;
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

/// The last `n` lines of the daemon log, reading into rotated files when the current one is
/// short. Oldest first.
pub fn tail(home: &Home, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut files = vec![home.daemon_log()];
    files.extend((1..=64).map(|i| home.rotated_daemon_log(i)));
    for path in files {
        if lines.len() >= n {
            break;
        }
        let Ok(file) = File::open(&path) else { break };
        let mut from_file: Vec<String> = BufReader::new(file)
            .split(b'\n')
            .map_while(Result::ok)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect();
        let take = from_file.len().min(n - lines.len());
        let mut kept = from_file.split_off(from_file.len() - take);
        kept.extend(lines);
        lines = kept;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_caps_each_file_and_keeps_the_newest_records() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path());
        std::fs::create_dir_all(home.run_dir()).unwrap();
        let log = RotatingLog::open(&home, 4096, 2, false).unwrap();
        for i in 0..400 {
            let mut w = log.make_writer();
            writeln!(w, "line {i:04} {}", "x".repeat(40)).unwrap();
        }
        for p in [
            home.daemon_log(),
            home.rotated_daemon_log(1),
            home.rotated_daemon_log(2),
        ] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 4096 && len > 0, "{p:?} has {len} bytes");
        }
        assert!(!home.rotated_daemon_log(3).exists());
        let t = tail(&home, 5);
        assert_eq!(t.len(), 5);
        assert!(t[4].starts_with("line 0399"), "{t:?}");
        assert!(t[0].starts_with("line 0395"), "{t:?}");
        // The tail reaches into the rotated file when asked for more than the current one holds.
        let long = tail(&home, 150);
        assert_eq!(long.len(), 150);
        assert!(long[149].starts_with("line 0399"));
        assert!(long[0].starts_with("line 0250"));
    }

    #[test]
    fn tail_of_a_missing_log_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(tail(&Home::new(tmp.path()), 10).is_empty());
    }
}
