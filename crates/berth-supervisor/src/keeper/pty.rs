//! The pseudo-terminal of a terminal agent: opened by its keeper, which keeps the master side;
//! the child gets the other side as its stdin, stdout, stderr and controlling terminal.
//!
//! Opened with `posix_openpt` and the slave by its path, both `O_NOCTTY` (the keeper leads a
//! session of its own and must never acquire the terminal) and `O_CLOEXEC` (nothing but the
//! child's three descriptors may reach another program). The master is non-blocking, so a
//! program that stops reading its input never blocks the keeper: every wait on it is a bounded
//! `poll`.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_core::terminal::Size;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;

/// A terminal opened for one child: the master side (the keeper's) and the slave side (until
/// the child has it).
#[derive(Debug)]
pub struct Pty {
    master: File,
    slave: OwnedFd,
}

impl Pty {
    /// Opens a terminal of `size`.
    pub fn open(size: Size) -> std::io::Result<Pty> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let path = ptsname_r(&master)?;
        let slave = open(
            path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let master = File::from(OwnedFd::from(master));
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        resize(&master, size)?;
        Ok(Pty { master, slave })
    }

    /// Makes `cmd` run with this terminal as its stdin, stdout, stderr and controlling
    /// terminal, as the leader of a new session. Returns the master side; the slave side is
    /// held only by `cmd` now, so once `cmd` is dropped after the spawn, only the child has it
    /// (and reading the master ends when the child's whole tree has let go of it).
    pub fn attach(self, cmd: &mut Command) -> std::io::Result<File> {
        cmd.stdin(Stdio::from(self.slave.try_clone()?))
            .stdout(Stdio::from(self.slave.try_clone()?))
            .stderr(Stdio::from(self.slave));
        // SAFETY: setsid(2) and ioctl(2) in the forked child before exec; both are
        // async-signal-safe. TIOCSCTTY on stdin (the slave) makes it the controlling terminal
        // of the new session.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(self.master)
    }
}

/// Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group.
pub fn resize(master: &File, size: Size) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a valid pointer from a descriptor we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `fd` is ready for `flags`, or `limit` passed (`None`: no limit). Returns
/// whether it is ready (a hangup or error counts: the next read or write says which).
fn wait(fd: &File, flags: PollFlags, limit: Option<Duration>) -> std::io::Result<bool> {
    let timeout = match limit {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
    };
    let mut fds = [PollFd::new(fd.as_fd(), flags)];
    loop {
        match poll(&mut fds, timeout) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads what the program wrote, waiting for it; `Ok(0)` once no process has the terminal
/// open any more (Linux reports that as `EIO`).
pub fn read(master: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match master.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                wait(master, PollFlags::POLLIN, None)?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Err(e) => return Err(e),
        }
    }
}

/// The program did not take all the input in time.
#[derive(Debug, thiserror::Error)]
#[error("{written} of {total} bytes were typed: {reason}")]
pub struct WriteError {
    pub written: usize,
    pub total: usize,
    pub reason: String,
}

/// Types `bytes` into the terminal, waiting at most `limit` for the program to take them.
pub fn write(master: &File, bytes: &[u8], limit: Duration) -> Result<(), WriteError> {
    let deadline = Instant::now() + limit;
    let mut written = 0;
    let fail = |written, reason: String| WriteError {
        written,
        total: bytes.len(),
        reason,
    };
    let mut master = master;
    while written < bytes.len() {
        match master.write(&bytes[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                let ready = wait(master, PollFlags::POLLOUT, Some(left))
                    .map_err(|e| fail(written, e.to_string()))?;
                if !ready {
                    let reason = format!(
                        "the program did not read its input within {} s",
                        limit.as_secs_f32()
                    );
                    return Err(fail(written, reason));
                }
            }
            Err(e) => return Err(fail(written, e.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(rows: u16, cols: u16) -> Size {
        Size { rows, cols }
    }

    /// Everything the terminal shows until no process holds it any more.
    fn drain(mut master: File) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match read(&mut master, &mut buf).unwrap() {
                0 => return String::from_utf8_lossy(&all).into_owned(),
                n => all.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn the_child_leads_a_session_with_the_terminal_as_its_controlling_tty() {
        let pty = Pty::open(size(33, 101)).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("stty size; tty; echo \"sid $(cut -d' ' -f6 /proc/$$/stat)\"");
        let master = pty.attach(&mut cmd).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let pid = child.id();
        let out = drain(master);
        child.wait().unwrap();
        assert!(out.contains("33 101"), "{out:?}");
        // Its terminal is a pts, and the session is the child's own.
        assert!(out.contains("/dev/pts/"), "{out:?}");
        assert!(out.contains(&format!("sid {pid}")), "{out:?}");
    }

    #[test]
    fn input_reaches_the_program_and_resize_is_seen() {
        let pty = Pty::open(Size::DEFAULT).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("read line; echo \"got $line\"; stty size");
        let master = pty.attach(&mut cmd).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        resize(&master, size(40, 120)).unwrap();
        write(&master, b"hello\r", Duration::from_secs(5)).unwrap();
        let out = drain(master);
        child.wait().unwrap();
        assert!(out.contains("got hello"), "{out:?}");
        assert!(out.contains("40 120"), "{out:?}");
    }

    #[test]
    fn input_nobody_reads_gives_up_in_time() {
        let pty = Pty::open(Size::DEFAULT).unwrap();
        let mut cmd = Command::new("sh");
        // In raw mode the line discipline stops taking input once its buffer is full (in
        // canonical mode it drops it instead).
        cmd.arg("-c")
            .arg("stty raw -echo && echo ready && exec sleep 30");
        let mut master = pty.attach(&mut cmd).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let n = read(&mut master, &mut buf).unwrap();
            assert!(n > 0, "the shell ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        let big = vec![b'x'; 1 << 20];
        let began = Instant::now();
        let e = write(&master, &big, Duration::from_millis(200)).unwrap_err();
        assert!(e.written < big.len(), "{e}");
        assert!(e.to_string().contains("did not read its input"), "{e}");
        assert!(began.elapsed() < Duration::from_secs(5));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
