//! The local terminal while `berth attach` runs: raw mode on berth's own screen, put back
//! exactly as it was however berth ends.
//!
//! [`RawTerminal::enter`] saves the terminal's settings, switches to the alternate screen (so
//! what was on the screen before comes back afterwards, as with tmux) and to raw mode; dropping
//! it restores both. A signal berth can catch ends the attach through the same path. For the
//! one it cannot (SIGKILL), a small guard process started first ([`Guard`], while the attach is
//! asked for; `sh`, in a process group of its own so a job's signals do not reach it) waits on
//! a pipe: berth tells it `done` after
//! restoring; if the pipe closes without that, berth was killed and the guard restores the
//! settings with `stty` and leaves the alternate screen.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::sys::termios::{self, SetArg, Termios};

/// Leaves every mode a program may have set on the screen berth drew (mouse reports,
/// bracketed paste, application keys, a hidden cursor, colours), then the alternate screen.
const LEAVE: &[u8] = b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?2004l\
\x1b[?1l\x1b>\x1b[?25h\x1b[0m\x1b[?1049l";
/// The alternate screen, cleared.
const ENTER: &[u8] = b"\x1b[?1049h\x1b[H\x1b[2J";

/// What the guard runs: save the settings, say so, wait; restore unless told `done`.
const GUARD: &str = r#"trap '' INT HUP TERM QUIT TSTP TTOU TTIN
saved=$(stty -g </dev/tty) || exit 1
echo saved
exec >/dev/null
read -r said
[ "$said" = done ] && exit 0
stty "$saved" </dev/tty
printf '%b' "$1" >/dev/tty
echo 'berth attach ended without putting the terminal back; it is restored now' >/dev/tty
"#;

/// The local terminal in raw mode; restored when dropped.
pub struct RawTerminal {
    saved: Termios,
    guard: Option<(Child, ChildStdin)>,
}

/// A window size.
pub fn size() -> Option<(u32, u32)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer; fd 1 may be anything,
    // and an error leaves `ws` as it was.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then(|| (u32::from(ws.ws_row), u32::from(ws.ws_col)))
}

/// Whether stdin and stdout are both a terminal.
pub fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Whether stdin and stdout are the same terminal: the one the keys come from is the one the
/// screen is drawn on, so it can be lent whole.
pub fn is_one_terminal() -> bool {
    use nix::sys::stat::fstat;
    match (fstat(std::io::stdin()), fstat(std::io::stdout())) {
        (Ok(input), Ok(output)) => is_terminal() && input.st_rdev == output.st_rdev,
        _ => false,
    }
}

/// The guard, started and not yet waited for: it starts while berth does something else (the
/// attach's round trip through the daemon), so its two programs' start-up is not added to the
/// time until the screen is drawn. Dropped without [`RawTerminal::enter`] (the attach was
/// refused), it is killed before it restores anything.
pub struct Guard(Option<Child>);

impl Guard {
    pub fn start() -> Guard {
        let leave: String = LEAVE.iter().map(|b| format!("\\0{b:03o}")).collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("berth-attach-guard")
            .arg(leave)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok();
        Guard(child)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RawTerminal {
    /// Waits for the guard to have saved the settings, then switches the terminal to raw mode
    /// and the alternate screen.
    pub fn enter(guard: Guard) -> std::io::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let guard = guarding(guard);
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        let term = RawTerminal { saved, guard };
        let mut out = std::io::stdout().lock();
        out.write_all(ENTER)?;
        out.flush()?;
        Ok(term)
    }
}

/// The guard, once it has saved the settings; `None` if it could not start (berth then
/// restores the terminal itself in every way it can).
fn guarding(mut guard: Guard) -> Option<(Child, ChildStdin)> {
    let mut child = guard.0.take()?;
    let said = child.stdout.take().and_then(|out| {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).ok()?;
        Some(line)
    });
    match (said.as_deref(), child.stdin.take()) {
        (Some("saved\n"), Some(stdin)) => Some((child, stdin)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(LEAVE);
        let _ = out.flush();
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
        if let Some((mut child, mut stdin)) = self.guard.take() {
            let _ = stdin.write_all(b"done\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}
