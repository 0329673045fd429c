//! The benchmark's own `sshd` on 127.0.0.1: a free port, and its own configuration, host key,
//! client key and `AuthorizedKeysFile` in a temporary directory (`UsePAM no`, `StrictModes no`,
//! public keys only). The client side is a configuration file for `ssh -F` that knows this
//! server's host key, uses only its own identity, connects to the server's port for `127.0.0.1`
//! and sends `XDG_CACHE_HOME`, so what berth installs on the far side lands in that directory
//! too. Every tool reaches its far tree through this one server, and nothing leaves 127.0.0.1.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sync::cleanup::TempDir;
use crate::sync::group::Group;
use crate::sync::procs;

/// Where Debian puts the server.
const SSHD: &str = "/usr/sbin/sshd";

/// How a tool reaches the far side: the server's port and the client's configuration file.
#[derive(Debug, Clone)]
pub struct Client {
    pub port: u16,
    pub config: PathBuf,
    /// The server's process (its sessions and what they run are its descendants).
    pub server_pid: u32,
}

impl Client {
    /// The ssh command line that uses this configuration (for `BERTH_SSH`, `rsync -e`).
    pub fn command(&self) -> String {
        format!("ssh -F {}", self.config.display())
    }
}

/// A running server, stopped (with whatever its sessions still run) when dropped.
pub struct Sshd {
    group: Group,
    client: Client,
    dir: TempDir,
}

/// Runs `program ARGS` to success; its standard output.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program} ({e}): install openssh-client"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

impl Sshd {
    pub fn start() -> Result<Sshd, String> {
        if !Path::new(SSHD).exists() {
            return Err(format!("{SSHD} is missing: apt-get install openssh-server"));
        }
        let dir = TempDir::new("berth-bench-sshd-")?;
        let d = dir.path();
        for key in ["host_key", "id"] {
            let file = d.join(key);
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    &file.display().to_string(),
                ],
            )?;
        }
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys"))
            .map_err(|e| format!("cannot write authorized_keys: {e}"))?;
        // The privilege separation directory Debian's sshd insists on (its init script makes it).
        std::fs::create_dir_all("/run/sshd").map_err(|e| {
            format!("sshd needs /run/sshd and it cannot be made ({e}): run as root")
        })?;
        let port = free_port()?;
        let config = d.join("sshd_config");
        write(
            &config,
            &format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
                 AuthorizedKeysFile {keys}\nPidFile {pid}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AcceptEnv XDG_CACHE_HOME\nMaxStartups 100\nMaxSessions 100\n",
                host_key = d.join("host_key").display(),
                keys = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )?;
        let mut cmd = Command::new(SSHD);
        cmd.args(["-D", "-e", "-f"]).arg(&config);
        let (mut group, _) = Group::spawn("sshd", cmd, &d.join("sshd.log"), false)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            group.check_running()?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "sshd did not listen on 127.0.0.1:{port} within 10 s{}",
                    group.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let host_key = std::fs::read_to_string(d.join("host_key.pub"))
            .map_err(|e| format!("cannot read the host key: {e}"))?;
        let mut fields = host_key.split_whitespace();
        let (kind, key) = fields
            .next()
            .zip(fields.next())
            .ok_or("ssh-keygen wrote a host key that cannot be read")?;
        write(
            &d.join("known_hosts"),
            &format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )?;
        let client_config = d.join("ssh_config");
        write(
            &client_config,
            &format!(
                "Host 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {id}\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  \
                 GlobalKnownHostsFile /dev/null\n  SetEnv XDG_CACHE_HOME={cache}\n",
                user = run("id", &["-un"])?,
                id = d.join("id").display(),
                known = d.join("known_hosts").display(),
                cache = d.join("cache").display(),
            ),
        )?;
        let client = Client {
            port,
            config: client_config,
            server_pid: group.pid(),
        };
        let sshd = Sshd { group, client, dir };
        let echo = run(
            "ssh",
            &[
                "-F",
                &sshd.client.config.display().to_string(),
                "-o",
                "BatchMode=yes",
                "127.0.0.1",
                "echo ok",
            ],
        )
        .map_err(|e| format!("the benchmark's own sshd does not let it in: {e}"))?;
        if echo != "ok" {
            return Err(format!("ssh to the benchmark's sshd answered {echo:?}"));
        }
        Ok(sshd)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cache directory the far side's berth installs itself into.
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Waits until no session of the previous tool is left on the server (its far side has
    /// seen the connection close), ending what is still there after `grace`.
    pub fn wait_sessions_gone(&mut self, grace: Duration) {
        let server = self.group.pid();
        let deadline = Instant::now() + grace;
        loop {
            let left: Vec<u32> = procs::tree(&[server])
                .into_iter()
                .filter(|&p| p != server)
                .collect();
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                for pid in left {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `sshd -V` is not a thing; the client's version names the OpenSSH both come from.
pub fn version() -> String {
    Command::new("ssh")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
