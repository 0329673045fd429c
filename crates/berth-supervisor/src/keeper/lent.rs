//! A terminal a client lent the keeper (`berth_proto::AttachControl::Lend`: the client's
//! descriptor comes with the frame, `SCM_RIGHTS`). The keeper then reads the keys there and
//! draws the screen there itself, as tmux's server does with its client's terminal, so a key
//! and its echo wake no process but the keeper and the program.
//!
//! The keeper opens the terminal anew through `/proc/self/fd` ([`LentTerminal::take`]), so the
//! description it reads and writes through is its own: it is made non-blocking (a client that
//! stops reading never holds up the program's output) without touching the one the client's
//! shell shares. A thread reads the keys ([`Keys`]) until it is stopped or the terminal
//! closes; stopping it waits until it has let go, so a client that gets its terminal back gets
//! every key typed from then on.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;

use super::pty;

/// The terminal a client lent, opened by the keeper for itself (non-blocking).
#[derive(Debug)]
pub struct LentTerminal {
    file: File,
}

impl LentTerminal {
    /// Takes the terminal behind `fd` (which is closed): an error if it is not a terminal or
    /// cannot be opened again.
    pub fn take(fd: OwnedFd) -> std::io::Result<LentTerminal> {
        if !nix::unistd::isatty(&fd)? {
            return Err(std::io::Error::other("what was lent is not a terminal"));
        }
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let own = open(
            path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(LentTerminal {
            file: File::from(own),
        })
    }

    /// Writes what the terminal takes of `bytes` without waiting; how much that was.
    pub fn write_now(&self, bytes: &[u8]) -> usize {
        let mut file = &self.file;
        loop {
            match file.write(bytes) {
                Ok(n) => return n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Full (the next drawing waits), or gone (the keys thread finds out).
                Err(_) => return 0,
            }
        }
    }

    /// Writes all of `bytes`, waiting at most `limit` for the terminal to take them.
    pub fn write_all(&self, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
        pty::write(&self.file, bytes, limit).map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Starts reading the keys typed on the terminal: `take` gets each read, and `None` once
    /// the terminal closed; it says whether to go on.
    pub fn keys(
        &self,
        take: impl FnMut(Option<&[u8]>) -> bool + Send + 'static,
    ) -> std::io::Result<Keys> {
        let tty = self.file.try_clone()?;
        let (stopped, stop) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("lent-keys".into())
            .spawn(move || read_keys(tty, &stopped, take))?;
        Ok(Keys { stop, thread })
    }
}

/// The thread reading a lent terminal's keys.
#[derive(Debug)]
pub struct Keys {
    /// Closed to stop the thread.
    stop: OwnedFd,
    thread: std::thread::JoinHandle<()>,
}

impl Keys {
    /// Stops reading; returns once the thread reads no more. Not from the thread itself (it
    /// stops by returning `false` from its `take`).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Reads keys from `tty` until `stopped` is readable (its other end closed), the terminal
/// closes, or `take` says to stop.
fn read_keys(mut tty: File, stopped: &OwnedFd, mut take: impl FnMut(Option<&[u8]>) -> bool) {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(tty.as_fd(), PollFlags::POLLIN),
            PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                take(None);
                return;
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        match tty.read(&mut buf) {
            Ok(0) => {
                take(None);
                return;
            }
            Ok(n) => {
                if !take(Some(&buf[..n])) {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            // EIO: the terminal hung up.
            Err(_) => {
                take(None);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A terminal pair in raw mode, as `berth attach` leaves it: (master, slave).
    fn terminal() -> (File, OwnedFd) {
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut raw = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
        (File::from(pty.master), pty.slave)
    }

    /// Reads `lent`'s keys; every read (and `None` for the end) comes on the receiver.
    fn reading(lent: &LentTerminal) -> (Keys, mpsc::Receiver<Option<Vec<u8>>>) {
        let (tx, rx) = mpsc::channel();
        let keys = lent
            .keys(move |read| {
                let _ = tx.send(read.map(<[u8]>::to_vec));
                true
            })
            .unwrap();
        (keys, rx)
    }

    #[test]
    fn only_a_terminal_is_taken() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let e = LentTerminal::take(r).unwrap_err();
        assert!(e.to_string().contains("not a terminal"), "{e}");
        let (_master, slave) = terminal();
        assert!(LentTerminal::take(slave).is_ok());
    }

    #[test]
    fn the_keeper_writes_and_reads_through_its_own_description() {
        let (mut master, slave) = terminal();
        let client = slave.try_clone().unwrap();
        let lent = LentTerminal::take(slave).unwrap();
        // The client's description stays blocking.
        let flags = nix::fcntl::fcntl(&client, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        lent.write_all(b"drawn", Duration::from_secs(5)).unwrap();
        let mut buf = [0u8; 64];
        let n = master.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"drawn");

        let (keys, rx) = reading(&lent);
        master.write_all(b"k").unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.as_deref(), Some(&b"k"[..]));
        // Stopped, it reads no more: the next key stays for whoever reads the terminal next.
        keys.stop();
        master.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err());
        let mut client = File::from(client);
        let n = client.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"x");
    }

    #[test]
    fn a_terminal_that_closes_is_told() {
        let (master, slave) = terminal();
        let lent = LentTerminal::take(slave).unwrap();
        let (keys, rx) = reading(&lent);
        drop(master);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), None);
        keys.stop();
    }
}
