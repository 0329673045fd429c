//! Sync with one side on the far end of a real ssh connection: an `sshd` of the test's own on
//! 127.0.0.1 (a free port; its own config, host key and `AuthorizedKeysFile` in a temporary
//! directory; `UsePAM no`, `StrictModes no`), the system's `ssh` client driven with `-F` (its
//! own identity and known-hosts file, and `XDG_CACHE_HOME` sent to point the far side's cache
//! into that directory) through `BERTH_SSH`, and the far side running the binary under test as
//! `berth __endpoint` (`BERTH_REMOTE_BIN`), or the copy berth installs there. Nothing leaves
//! 127.0.0.1. A missing
//! program fails the test with what to install; nothing is skipped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_testkit::wait_until;

use super::debug_sync::Live;
use super::remote::kill_where;
use crate::home;

/// Where Debian puts the server.
const SSHD: &str = "/usr/sbin/sshd";

/// Runs `program ARGS` to success, or fails saying what to install.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): the ssh tests need openssh-server and \
                 openssh-client (scripts/test-deps installs them: apt-get install openssh-server)"
            )
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An sshd on 127.0.0.1, killed when dropped, and a client configuration for it.
pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: the ssh tests need openssh-server (scripts/test-deps installs \
             it: apt-get install openssh-server)"
        );
        run("ssh", &["-V"]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let keygen = |file: &Path| {
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    file.to_str().unwrap(),
                ],
            )
        };
        keygen(&d.join("host_key"));
        keygen(&d.join("id"));
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        // The privilege separation directory Debian's sshd insists on (its init script makes it).
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap_or_else(|e| {
                panic!("sshd needs /run/sshd and it cannot be made ({e}): create it as root")
            });
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
                 AuthorizedKeysFile {keys}\nPidFile {pid}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AcceptEnv XDG_CACHE_HOME\n",
                host_key = d.join("host_key").display(),
                keys = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD} ({e}): install openssh-server"));
        let mut sshd = Sshd { child, dir, port };
        let log = sshd.dir.path().join("sshd.log");
        let mut waited = 0;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = sshd.child.try_wait().unwrap();
            assert!(
                exited.is_none() && waited < 1000,
                "sshd did not start listening on 127.0.0.1:{port} ({exited:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        // The client: its own identity, and a known-hosts file that knows this server's key.
        let host_key = std::fs::read_to_string(sshd.file("host_key.pub")).unwrap();
        let mut fields = host_key.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(
            sshd.file("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        std::fs::write(sshd.file("unknown_hosts"), "").unwrap();
        for (name, known) in [
            ("config", "known_hosts"),
            ("config-unknown", "unknown_hosts"),
        ] {
            std::fs::write(
                sshd.file(name),
                format!(
                    "Host 127.0.0.1\n  User {user}\n  IdentityFile {id}\n  IdentitiesOnly yes\n  \
                     UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  \
                     SetEnv XDG_CACHE_HOME={cache}\n",
                    user = run("id", &["-un"]),
                    id = sshd.file("id").display(),
                    known = sshd.file(known).display(),
                    cache = sshd.file("cache").display(),
                ),
            )
            .unwrap();
        }
        sshd
    }

    /// `BERTH_SSH` and `BERTH_REMOTE_BIN` for a client using the configuration `config`.
    pub fn env(&self, config: &str) -> [(String, String); 2] {
        [
            (
                "BERTH_SSH".to_string(),
                format!("ssh -F {}", self.file(config).display()),
            ),
            (
                "BERTH_REMOTE_BIN".to_string(),
                env!("CARGO_BIN_EXE_berth").to_string(),
            ),
        ]
    }

    /// A file of this server's and its clients' configuration.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `ssh://` URL of `dir` on this server.
    pub fn url(&self, dir: &Path) -> String {
        format!("ssh://127.0.0.1:{}{}", self.port, dir.display())
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn live_sync_over_ssh_carries_edits_both_ways() {
    let sshd = Sshd::start();
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let (alpha, beta) = (work.path().join("alpha"), work.path().join("beta"));
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(beta.join("sub")).unwrap();
    std::fs::write(alpha.join("mine.txt"), "from alpha").unwrap();
    std::fs::write(beta.join("sub/theirs.txt"), "from the far side").unwrap();
    let env = sshd.env("config");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let url = sshd.url(&beta);
    let live = Live::start_with(&h, &alpha, Path::new(&url), &env, &[]);
    let ready = live.next_event("ready");
    assert_eq!(
        (ready["to_alpha"].as_u64(), ready["to_beta"].as_u64()),
        (Some(2), Some(1)),
        "{ready}"
    );
    assert_eq!(read(&beta.join("mine.txt")).as_deref(), Some("from alpha"));
    assert_eq!(
        read(&alpha.join("sub/theirs.txt")).as_deref(),
        Some("from the far side")
    );
    // An edit here reaches the far side; one made there (a new directory too) comes back.
    std::fs::write(alpha.join("mine.txt"), "edited here").unwrap();
    wait_until(
        "the edit reached the far side",
        Duration::from_secs(10),
        || read(&beta.join("mine.txt")).as_deref() == Some("edited here"),
    );
    std::fs::create_dir_all(beta.join("new/deep")).unwrap();
    std::fs::write(beta.join("new/deep/made-there.txt"), "made over there").unwrap();
    std::fs::write(beta.join("sub/theirs.txt"), "edited there").unwrap();
    wait_until(
        "the far side's edits arrived",
        Duration::from_secs(10),
        || {
            read(&alpha.join("new/deep/made-there.txt")).as_deref() == Some("made over there")
                && read(&alpha.join("sub/theirs.txt")).as_deref() == Some("edited there")
        },
    );
    // A deletion here is carried over too.
    std::fs::remove_file(alpha.join("mine.txt")).unwrap();
    wait_until(
        "the deletion reached the far side",
        Duration::from_secs(10),
        || !beta.join("mine.txt").exists(),
    );
    // The connection cut (the ssh client killed): what changed on both sides meanwhile
    // arrives once the next round has started ssh again.
    let config = sshd.file("config");
    assert!(kill_where(&["-F", config.to_str().unwrap(), "BatchMode=yes"]) >= 1);
    std::fs::write(alpha.join("during-the-cut.txt"), "here").unwrap();
    std::fs::write(beta.join("during-the-cut-there.txt"), "there").unwrap();
    wait_until(
        "both sides' edits crossed a new connection",
        Duration::from_secs(30),
        || {
            read(&beta.join("during-the-cut.txt")).as_deref() == Some("here")
                && read(&alpha.join("during-the-cut-there.txt")).as_deref() == Some("there")
        },
    );
    live.stop();
}

#[test]
fn an_unknown_host_key_is_refused_with_what_to_do() {
    let sshd = Sshd::start();
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let (alpha, beta) = (work.path().join("alpha"), work.path().join("beta"));
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(alpha.join("f"), "must not cross").unwrap();
    let mut cmd = h.command(&[
        "debug",
        "sync",
        "--once",
        alpha.to_str().unwrap(),
        &sshd.url(&beta),
    ]);
    for (k, v) in sshd.env("config-unknown") {
        cmd.env(k, v);
    }
    let out = h.run_cmd(cmd);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("Host key verification failed"), "{out}");
    assert!(
        out.stderr.contains("never accepts a host key by itself"),
        "{out}"
    );
    assert!(!beta.join("f").exists(), "nothing crossed");
    assert_eq!(
        std::fs::read_to_string(sshd.file("unknown_hosts")).unwrap(),
        "",
        "the key was not added"
    );
}

#[test]
fn berth_installs_itself_over_ssh_once_and_uses_that_copy_after() {
    let sshd = Sshd::start();
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let (alpha, beta) = (work.path().join("alpha"), work.path().join("beta"));
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(alpha.join("f"), "crossed").unwrap();
    let sync = || {
        let mut cmd = h.command(&[
            "--json",
            "debug",
            "sync",
            "--once",
            alpha.to_str().unwrap(),
            &sshd.url(&beta),
        ]);
        // No BERTH_REMOTE_BIN: the far side has no berth until this one installs itself.
        let [ssh, _] = sshd.env("config");
        cmd.env(ssh.0, ssh.1).env_remove("BERTH_REMOTE_BIN");
        let out = h.run_cmd(cmd);
        assert_eq!(out.code, 0, "{out}");
        out.stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == "installed")
            .collect::<Vec<_>>()
    };
    let installed = sync();
    assert_eq!(installed.len(), 1, "{installed:?}");
    let path = PathBuf::from(installed[0]["path"].as_str().unwrap());
    assert_eq!(path.parent().unwrap(), sshd.file("cache/berth/bin"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_berth")).unwrap()
    );
    assert_eq!(read(&beta.join("f")).as_deref(), Some("crossed"));
    // The next run uses that copy.
    std::fs::write(alpha.join("f"), "again").unwrap();
    assert!(sync().is_empty());
    assert_eq!(read(&beta.join("f")).as_deref(), Some("again"));
    assert_eq!(
        std::fs::read_dir(sshd.file("cache/berth/bin"))
            .unwrap()
            .count(),
        1,
        "nothing else is left there"
    );
}
