//! A tmux server of a test's own, to drive terminal programs the way a person would: a command
//! runs in a window of a given size, `send-keys` types, `capture-pane` reads the screen.
//!
//! The server has its own socket in a temporary directory and no configuration file, so
//! neither a developer's tmux nor their `~/.tmux.conf` is involved; dropping it kills the
//! server and what runs in it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TestHome;

pub struct Tmux {
    dir: tempfile::TempDir,
}

/// A shell word, quoted for `sh`.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Tmux {
    /// A new server (it starts with the first session). Fails the test, saying what to
    /// install, when tmux is missing.
    pub fn start() -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "this test drives terminal programs through tmux, which is not installed: \
                 run scripts/test (it installs the packages the tests need) or \
                 `apt-get install tmux`"
            ),
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-tmux-")
            .tempdir()
            .unwrap();
        Tmux { dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("tmux.sock")
    }

    /// Runs tmux with `args` against this server; its output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A window `cols`×`rows` named `name` running `sh -c script`; once the script ends,
    /// `EXIT=<code>` is printed and the window stays, so it can still be read.
    pub fn open(&self, name: &str, cols: u16, rows: u16, script: &str) {
        let script = format!("{script}; echo EXIT=$?; exec sleep 600");
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &cols,
            "-y",
            &rows,
            "sh",
            "-c",
            &script,
        ]);
    }

    /// The script that runs `berth ARGS` of home `h` inside `dir`.
    pub fn berth(h: &TestHome, dir: &Path, args: &[&str]) -> String {
        let mut line = format!(
            "cd {} && BERTH_HOME={} {}",
            quote(&dir.display().to_string()),
            quote(&h.path().display().to_string()),
            quote(&h.bin().display().to_string())
        );
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        line
    }

    /// Types `keys` as tmux key names (`Enter`, `C-\\`, …).
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types `text` as it is.
    pub fn type_text(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
    }

    /// What the window shows.
    pub fn screen(&self, name: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", name])
    }

    /// Waits until the window shows `text`; returns the screen.
    #[track_caller]
    pub fn wait_for(&self, name: &str, text: &str) -> String {
        self.wait_until(name, &format!("{text:?} on the screen"), |s| {
            s.contains(text)
        })
    }

    /// Waits (at most 20 s) until the screen satisfies `cond`; returns it.
    #[track_caller]
    pub fn wait_until(&self, name: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = self.screen(name);
            if cond(&shown) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the window shows:\n{shown}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Resizes the window (and so the terminal of what runs in it: it gets SIGWINCH).
    pub fn resize(&self, name: &str, cols: u16, rows: u16) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&["resize-window", "-t", name, "-x", &cols, "-y", &rows]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(self.socket())
            .arg("kill-server")
            .output();
    }
}
