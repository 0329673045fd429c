//! Sync with one side in a container, through a real `dockerd` and the `docker` client: one
//! daemon for the whole test binary (started on first use, with its data, runtime files and
//! socket in a directory of its own under `/tmp/berth-dockerd/`, no bridge, no iptables, so
//! containers run with `--network none` only), reached with `DOCKER_HOST`; it gets SIGTERM when
//! the test process ends (a parent-death signal), and a daemon left by a run that was killed is
//! stopped by the next one. The image is made here, nothing is pulled: `docker import` of a
//! root file system holding this machine's `sh`, a few basic programs, git, and the C library
//! and loader they and berth need. berth itself is not in it: berth installs itself there. The
//! same image imported into podman (storage of its own in a temporary directory) shows podman's
//! containers made with the limits it needs here. A component that cannot start fails the test
//! with what to install; nothing is skipped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_testkit::wait_until;

use super::debug_sync::Live;
use super::remote::kill_where;
use crate::home;

/// The image the tests make.
const IMAGE: &str = "berth-test-rootfs:1";

/// Where each test process's daemon lives (short: the runtime's socket paths must fit).
const PARENT: &str = "/tmp/berth-dockerd";

/// The idle process of the containers the tests make themselves.
const IDLE: &str = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

/// The test process's dockerd.
struct Dockerd {
    host: String,
}

/// Runs `cmd` to success, returning its standard output.
fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): install docker.io"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The shared daemon, started (and the image made) on first use.
fn dockerd() -> &'static Dockerd {
    static DOCKERD: OnceLock<Dockerd> = OnceLock::new();
    DOCKERD.get_or_init(start_dockerd)
}

/// A `docker` command against the shared daemon.
fn docker(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args).env("DOCKER_HOST", &dockerd().host);
    cmd
}

/// Stops the daemons of test processes that are gone, and removes what they left.
fn stop_leftovers() {
    for entry in std::fs::read_dir(PARENT).into_iter().flatten().flatten() {
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join("owner")).unwrap_or_default();
        if Path::new(&format!("/proc/{}", owner.trim())).exists() && !owner.trim().is_empty() {
            continue;
        }
        let pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: kill(2) of the dockerd a finished test run recorded in its pidfile.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn start_dockerd() -> Dockerd {
    for (program, package) in [
        ("dockerd", "docker.io"),
        ("containerd", "containerd (docker.io depends on it)"),
        ("runc", "runc (docker.io depends on it)"),
        ("docker", "docker.io"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
            .unwrap_or(false);
        assert!(
            found,
            "{program} is missing: the docker tests need {package} (scripts/test-deps installs \
             it: apt-get install docker.io)"
        );
    }
    let dir = own_dir();
    let socket = dir.join("docker.sock");
    let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
    let mut cmd = Command::new("dockerd");
    cmd.arg("--bridge=none")
        .arg("--iptables=false")
        .arg("--ip6tables=false")
        .arg("--storage-driver=overlay2")
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--host=unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl(2) only, between fork and exec. The daemon is told to stop when the thread
    // that started it ends, and that thread lives as long as the test process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = cmd.spawn();
        let failed = started.as_ref().err().map(ToString::to_string);
        tx.send(failed).unwrap();
        let _child = started;
        loop {
            std::thread::park();
        }
    });
    if let Some(e) = rx.recv().unwrap() {
        panic!("cannot start dockerd ({e}): install docker.io");
    }
    let host = format!("unix://{}", socket.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .env("DOCKER_HOST", &host)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dockerd did not answer on {host} within 30 s: {}",
            std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut import = Command::new("docker");
    import
        .args(["import", "-", IMAGE])
        .env("DOCKER_HOST", &host);
    import_rootfs(import);
    Dockerd { host }
}

/// Copies `program` (found on the PATH) into `root` at `at`, with every library `ldd` names.
fn copy_with_libraries(root: &Path, program: &Path, at: &str) {
    let dest = root.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(program, &dest).unwrap();
    let ldd = ok(Command::new("ldd").arg(program));
    for lib in ldd
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(Path::new)
    {
        let dest = root.join(lib.strip_prefix("/").unwrap());
        if !dest.exists() {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(lib, &dest).unwrap();
        }
    }
}

/// Where `program` is on the PATH.
fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{program} is not on the PATH"))
}

/// This test process's directory under [`PARENT`] (what finished runs left there removed
/// first).
fn own_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        stop_leftovers();
        let dir = PathBuf::from(PARENT).join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("owner"), std::process::id().to_string()).unwrap();
        dir
    })
}

/// The test image's root file system: this machine's programs and libraries.
fn rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = own_dir().join("rootfs");
        for program in [
            "sh", "cat", "chmod", "mkdir", "mv", "rm", "sleep", "uname", "ls",
        ] {
            copy_with_libraries(&root, &which(program), &format!("/bin/{program}"));
        }
        copy_with_libraries(&root, &which("git"), "/usr/bin/git");
        // The libraries of berth itself, which installs itself there.
        copy_with_libraries(
            &root,
            Path::new(env!("CARGO_BIN_EXE_berth")),
            "/tmp/berth-libraries",
        );
        std::fs::remove_file(root.join("tmp/berth-libraries")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("root")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        root
    })
}

/// Makes the test image with `import` (`docker import - IMAGE` or podman's), fed a tar of
/// [`rootfs`]: nothing is pulled.
fn import_rootfs(import: Command) {
    import_tree(import, rootfs());
}

/// An image like the test image whose `git` fails, made once: a workspace cannot be made in it.
fn broken_git_image() -> &'static str {
    const BROKEN: &str = "berth-test-broken-git:1";
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let root = own_dir().join("rootfs-broken-git");
        std::fs::create_dir_all(&root).unwrap();
        ok(Command::new("cp")
            .arg("-a")
            .arg(rootfs().join("."))
            .arg(&root));
        let git = root.join("usr/bin/git");
        std::fs::write(
            &git,
            "#!/bin/sh\necho 'git: broken in this image' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        import_tree(docker(&["import", "-", BROKEN]), &root);
    });
    BROKEN
}

/// Runs `import` fed a tar of `root`.
fn import_tree(mut import: Command, root: &Path) {
    let mut tar = Command::new("tar")
        .args(["-C", root.to_str().unwrap(), "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar runs");
    let imported = import.stdin(tar.stdout.take().unwrap()).output().unwrap();
    assert!(tar.wait().unwrap().success());
    assert!(
        imported.status.success(),
        "{import:?} failed: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

/// The name of the container berth made for `dir` (the one of its containers with a mount at
/// `dir`).
fn made_container(dir: &str) -> String {
    let ids = ok(&mut docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=berth.managed=1",
    ]));
    for id in ids.lines() {
        let mounts = ok(&mut docker(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Destination}}{{end}}",
            id,
        ]));
        if mounts == dir {
            return id.to_string();
        }
    }
    panic!("no container of berth's has a mount at {dir}: {ids}");
}

/// The container berth made for agent `name` (tests run at once, each with agents of its own
/// names: the one whose workspace is on `berth/<name>`).
fn agent_container(name: &str) -> String {
    let ids = ok(&mut docker(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=berth.managed=1",
    ]));
    let branch = format!("berth/{name}");
    ids.lines()
        .find(|id| {
            docker(&[
                "exec",
                id,
                "git",
                "-C",
                "/berth/workspace",
                "rev-parse",
                "--abbrev-ref",
                "HEAD",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == branch)
        })
        .unwrap_or_else(|| panic!("no container of berth's holds agent {name}: {ids}"))
        .to_string()
}

/// `sh -c script` in `container`, to success.
fn exec(container: &str, script: &str) -> String {
    ok(&mut docker(&["exec", container, "sh", "-c", script]))
}

/// Writes an executable file `path` holding `content` in `container`.
fn put(container: &str, path: &str, content: &str) {
    let mut child = docker(&[
        "exec",
        "-i",
        container,
        "sh",
        "-c",
        &format!("cat > '{path}' && chmod 755 '{path}'"),
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), content.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Runs `berth --json debug sync --once ALPHA URL` against the shared daemon.
fn once(h: &berth_testkit::TestHome, alpha: &Path, url: &str) -> berth_testkit::Outcome {
    let mut cmd = h.command(&[
        "--json",
        "debug",
        "sync",
        "--once",
        alpha.to_str().unwrap(),
        url,
    ]);
    cmd.env("DOCKER_HOST", &dockerd().host);
    h.run_cmd(cmd)
}

/// The JSON lines of `out` whose event is `event`.
fn events(out: &berth_testkit::Outcome, event: &str) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

#[test]
fn a_container_berth_makes_syncs_live_with_berth_installed_once_and_survives_kills() {
    let host = dockerd().host.clone();
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let alpha = work.path().join("alpha");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::write(alpha.join("mine.txt"), "from alpha").unwrap();
    let dir = "/work/live";
    let url = format!("docker://{IMAGE}{dir}");
    // A far side silent for 3 s has stopped answering (a paused container, below).
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("BERTH_REMOTE_SILENCE_MS", "3000"),
    ];
    let live = Live::start_with(&h, &alpha, Path::new(&url), &env, &[]);
    let installed = live.next_event("installed");
    assert_eq!(installed["replaced"], false, "{installed}");
    let installed_at = installed["path"].as_str().unwrap().to_string();
    assert!(
        installed_at.starts_with("/root/.cache/berth/bin/berth-"),
        "{installed}"
    );
    live.next_event("ready");
    // The container: berth's label, no network, the tree on a named volume.
    let c = made_container(dir);
    let inspected = ok(&mut docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"berth.managed\"}} {{.HostConfig.NetworkMode}} \
         {{range .Mounts}}{{.Type}}{{end}}",
        &c,
    ]));
    assert_eq!(inspected, "1 none volume");
    assert_eq!(exec(&c, &format!("cat {dir}/mine.txt")), "from alpha");
    // Edits both ways.
    std::fs::write(alpha.join("mine.txt"), "edited here").unwrap();
    wait_until(
        "the edit reached the container",
        Duration::from_secs(10),
        || exec(&c, &format!("cat {dir}/mine.txt")) == "edited here",
    );
    exec(
        &c,
        &format!("mkdir -p {dir}/sub && echo made there > {dir}/sub/theirs.txt"),
    );
    wait_until(
        "the container's edit arrived",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(alpha.join("sub/theirs.txt")).ok()
                == Some("made there\n".into())
        },
    );
    // The connection cut (the docker client killed): a new one carries what changed meanwhile.
    assert!(kill_where(&["docker", "exec", "-i", &c, "__endpoint"]) >= 1);
    std::fs::write(alpha.join("cut.txt"), "during the cut").unwrap();
    wait_until(
        "the edit crossed a new connection",
        Duration::from_secs(30),
        || exec(&c, &format!("cat {dir}/cut.txt 2>/dev/null || true")) == "during the cut",
    );
    // The container killed: berth starts it again; the volume kept the tree, the container's
    // file system kept berth.
    ok(&mut docker(&["kill", &c]));
    std::fs::write(alpha.join("after-kill.txt"), "after the kill").unwrap();
    exec_when_running(&c);
    wait_until(
        "the edit reached the container started again",
        Duration::from_secs(30),
        || exec(&c, &format!("cat {dir}/after-kill.txt 2>/dev/null || true")) == "after the kill",
    );
    assert_eq!(exec(&c, &format!("cat {dir}/sub/theirs.txt")), "made there");
    // The container paused: the round that waits for it fails saying it stopped answering,
    // instead of waiting for ever; once it is unpaused, what changed meanwhile arrives.
    ok(&mut docker(&["pause", &c]));
    std::fs::write(alpha.join("paused.txt"), "while paused").unwrap();
    let failed = live.next_matching(|v| {
        v["event"] == "failed" && v["error"].as_str().unwrap().contains("stopped answering")
    });
    assert!(failed["error"].as_str().unwrap().contains(&url), "{failed}");
    ok(&mut docker(&["unpause", &c]));
    wait_until(
        "the edit reached the container unpaused",
        Duration::from_secs(30),
        || exec(&c, &format!("cat {dir}/paused.txt 2>/dev/null || true")) == "while paused",
    );
    live.stop();
    // A new run uses the berth installed there: nothing is installed again.
    let out = once(&h, &alpha, &url);
    assert_eq!(out.code, 0, "{out}");
    assert!(events(&out, "installed").is_empty(), "{out}");
    assert_eq!(
        exec(
            &c,
            &format!(
                "ls {}",
                Path::new(&installed_at).parent().unwrap().display()
            )
        ),
        Path::new(&installed_at)
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
}

/// Waits until berth started `container` again.
fn exec_when_running(container: &str) {
    wait_until(
        "berth started the container again",
        Duration::from_secs(30),
        || {
            ok(&mut docker(&[
                "inspect",
                "--format",
                "{{.State.Running}}",
                container,
            ])) == "true"
        },
    );
}

#[test]
fn berth_of_another_version_is_replaced_and_another_machine_or_container_is_refused_clearly() {
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let alpha = work.path().join("alpha");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::write(alpha.join("f"), "v1").unwrap();
    let name = format!("berth-test-exec-{}", std::process::id());
    ok(&mut docker(&[
        "run",
        "--detach",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        IDLE,
    ]));
    exec(&name, "mkdir -p /data");
    let url = format!("docker-exec://{name}/data");
    let out = once(&h, &alpha, &url);
    assert_eq!(out.code, 0, "{out}");
    let installed = events(&out, "installed");
    assert_eq!(installed.len(), 1, "{out}");
    let path = installed[0]["path"].as_str().unwrap().to_string();
    assert_eq!(exec(&name, "cat /data/f"), "v1");
    // The copy there is this binary, by digest.
    let ours = blake3::hash(&std::fs::read(env!("CARGO_BIN_EXE_berth")).unwrap())
        .to_hex()
        .to_string();
    assert_eq!(exec(&name, &format!("'{path}' __digest '{path}'")), ours);
    // Another berth at that path, speaking an older protocol (its hello: protocol 0, version
    // 0.0.1), is replaced.
    put(
        &name,
        &path,
        "#!/bin/sh\nprintf '\\000\\000\\000\\010\\000\\000\\005%s' 0.0.1\ncat >/dev/null\n",
    );
    assert_ne!(
        exec(&name, &format!("'{path}' __digest '{path}' || true")),
        ours
    );
    std::fs::write(alpha.join("f"), "v2").unwrap();
    let out = once(&h, &alpha, &url);
    assert_eq!(out.code, 0, "{out}");
    let installed = events(&out, "installed");
    assert_eq!(installed.len(), 1, "{out}");
    assert_eq!(installed[0]["replaced"], true, "{out}");
    assert_eq!(exec(&name, "cat /data/f"), "v2");
    assert_eq!(exec(&name, &format!("'{path}' __digest '{path}'")), ours);
    // A machine of another architecture (its uname says so) is refused before anything is
    // copied, saying why.
    exec(&name, &format!("rm -f '{path}' && mkdir -p /usr/local/bin"));
    put(
        &name,
        "/usr/local/bin/uname",
        "#!/bin/sh\ncase \"$1\" in -m) echo aarch64;; *) echo Linux;; esac\n",
    );
    let out = once(&h, &alpha, &url);
    assert_eq!(out.code, 1, "{out}");
    let error = &serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["error"];
    assert_eq!(error["code"], "endpoint_failed", "{out}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "is Linux aarch64 and this berth is built for linux x86_64: the far side must run \
             the same OS and architecture"
        ),
        "{out}"
    );
    assert!(
        error["hint"].as_str().unwrap().contains("BERTH_REMOTE_BIN"),
        "{out}"
    );
    assert_eq!(
        exec(
            &name,
            &format!("ls -a {}", Path::new(&path).parent().unwrap().display())
        ),
        ".\n..",
        "nothing was copied"
    );
    // A stopped container, and one that does not exist: said, with what to do.
    ok(&mut docker(&["stop", &name]));
    let out = once(&h, &alpha, &url);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("is not running") && out.stdout.contains("start the container"),
        "{out}"
    );
    let out = once(
        &h,
        &alpha,
        "docker-exec://berth-test-no-such-container/data",
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("No such container") && out.stdout.contains("start the container"),
        "{out}"
    );
}

/// podman with storage of its own in a temporary directory (`CONTAINERS_STORAGE_CONF`), whose
/// containers are removed when it goes.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is missing: the podman test needs it (scripts/test-deps installs it: \
             apt-get install podman)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{root}\"\nrunroot = \"{run}\"\n",
                root = dir.path().join("root").display(),
                run = dir.path().join("run").display(),
            ),
        )
        .unwrap();
        let podman = Podman { dir };
        import_rootfs(podman.command(&["import", "-", IMAGE]));
        podman
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("storage.conf")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(args).env("CONTAINERS_STORAGE_CONF", self.conf());
        cmd
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command(&["rm", "--force", "--all"]).output();
        let _ = self.command(&["volume", "prune", "--force"]).output();
    }
}

#[test]
fn a_podman_container_berth_makes_runs_with_lowered_limits_and_gets_berth_installed_once() {
    let podman = Podman::new();
    let h = home();
    let work = tempfile::tempdir().unwrap();
    let alpha = work.path().join("alpha");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::write(alpha.join("f"), "to podman").unwrap();
    let url = format!("podman://{IMAGE}/work");
    let sync = || {
        let mut cmd = h.command(&[
            "--json",
            "debug",
            "sync",
            "--once",
            alpha.to_str().unwrap(),
            &url,
        ]);
        cmd.env("CONTAINERS_STORAGE_CONF", podman.conf());
        let out = h.run_cmd(cmd);
        assert_eq!(out.code, 0, "{out}");
        events(&out, "installed").len()
    };
    assert_eq!(sync(), 1);
    let name = ok(&mut podman.command(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=berth.managed=1",
    ]));
    assert!(name.starts_with("berth-"), "{name}");
    assert_eq!(
        ok(&mut podman.command(&["exec", &name, "cat", "/work/f"])),
        "to podman"
    );
    let inspected = ok(&mut podman.command(&[
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.Ulimits}}",
        &name,
    ]));
    assert!(
        inspected.starts_with("none ") && inspected.contains("4096"),
        "{inspected}"
    );
    std::fs::write(alpha.join("f"), "again").unwrap();
    assert_eq!(sync(), 0, "the copy installed there is used");
    assert_eq!(
        ok(&mut podman.command(&["exec", &name, "cat", "/work/f"])),
        "again"
    );
}

/// `berth --json ARGS` in `dir`, against the shared dockerd, with `env` too.
fn agent_cmd(
    h: &berth_testkit::TestHome,
    dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> berth_testkit::Outcome {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut cmd = h.command(&all);
    cmd.current_dir(dir)
        .env("DOCKER_HOST", &dockerd().host)
        .envs(env.iter().copied());
    h.run_cmd(cmd)
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn an_agent_in_a_container_berth_makes_runs_there_gets_over_a_pause_and_goes_with_rm() {
    crate::require_root("run a dockerd");
    let h = home();
    let env = [("BERTH_REMOTE_SILENCE_MS", "3000")];
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| agent_cmd(&h, p.path(), &env, args);
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("docker://{IMAGE}");
    let created = run(&[
        "agent",
        "new",
        "boxed",
        "--on",
        &url,
        "--cmd",
        "echo in the box on $(git rev-parse --abbrev-ref HEAD); exec sleep 300",
    ]);
    created.expect_code(0);
    // The agent's own container: berth's label, no network, its workspace on a volume.
    let c = agent_container("boxed");
    assert!(c.starts_with("berth-agent-"), "{c}");
    let inspected = ok(&mut docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"berth.managed\"}} {{.HostConfig.NetworkMode}} \
         {{range .Mounts}}{{.Type}}{{end}}",
        &c,
    ]));
    assert_eq!(inspected, "1 none volume");
    assert_eq!(
        exec(&c, "git -C /berth/workspace rev-parse --abbrev-ref HEAD"),
        "berth/boxed"
    );
    run(&["agent", "start", "boxed"]).expect_code(0);
    wait_until("its output arrived here", Duration::from_secs(30), || {
        h.run_in(p.path(), &["agent", "logs", "boxed"])
            .stdout
            .contains("in the box on berth/boxed")
    });
    let show = || {
        let out = run(&["agent", "show", "boxed"]);
        out.expect_code(0);
        out.json()
    };
    assert_eq!(show()["state"], "running");
    // Paused: unreachable, not answering; unpaused: running again by itself.
    ok(&mut docker(&["pause", &c]));
    wait_until("unreachable while paused", Duration::from_secs(30), || {
        show()["state"] == "unreachable"
    });
    let info = show();
    let why = info["unreachable"].as_str().unwrap_or_default().to_string();
    assert!(
        why.starts_with("not_answering: ") || why.starts_with("cannot_connect: "),
        "{info}"
    );
    let events = h.run(&["--json", "events"]).stdout;
    assert!(
        events.contains("agent.unreachable") && events.contains("not_answering"),
        "{events}"
    );
    // The daemon stopped and started again meanwhile: the stop is not held up by the silent
    // far side, and the new daemon re-attaches once the container answers again.
    run(&["daemon", "stop"]).expect_code(0);
    run(&["daemon", "start"]).expect_code(0);
    assert_eq!(show()["state"], "unreachable");
    ok(&mut docker(&["unpause", &c]));
    wait_until("running again", Duration::from_secs(40), || {
        show()["state"] == "running"
    });
    let events = h.run(&["--json", "events"]).stdout;
    assert!(events.contains("agent.adopted"), "{events}");
    run(&["agent", "stop", "boxed"]).expect_code(0);
    // The container restarted: the volume kept the workspace.
    ok(&mut docker(&["restart", "--time", "1", &c]));
    assert_eq!(
        exec(&c, "git -C /berth/workspace rev-parse --abbrev-ref HEAD"),
        "berth/boxed"
    );
    // Removed: the container berth made for it and its volume go.
    run(&["agent", "rm", "boxed"]).expect_code(0);
    let left = ok(&mut docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(!left.lines().any(|n| n == c), "{left}");
    let volumes = ok(&mut docker(&["volume", "ls", "--format", "{{.Name}}"]));
    assert!(!volumes.contains(&c), "{volumes}");
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn an_agent_whose_workspace_cannot_be_made_in_its_container_leaves_no_container_behind() {
    crate::require_root("run a dockerd");
    let image = broken_git_image();
    let h = home();
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| agent_cmd(&h, p.path(), &[], args);
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("docker://{image}");
    let out = run(&["agent", "new", "broken", "--on", &url, "--cmd", "true"]);
    assert_eq!(out.code, 1, "{out}");
    let error = &out.json()["error"];
    assert_eq!(error["code"], "agent_unreachable", "{out}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("broken in this image"), "{out}");
    // The container it made says its name; it and its volume are gone again.
    let name = message
        .split_whitespace()
        .find(|w| w.starts_with("berth-agent-"))
        .unwrap_or_else(|| panic!("no container named: {out}"));
    assert!(message.contains("was removed again"), "{out}");
    let left = ok(&mut docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(!left.lines().any(|n| n == name), "{left}");
    let volumes = ok(&mut docker(&["volume", "ls", "--format", "{{.Name}}"]));
    assert!(!volumes.lines().any(|v| v.starts_with(name)), "{volumes}");
    // Nothing of it here either.
    assert_eq!(
        berth_testkit::git(p.path(), &["branch", "--list", "berth/broken"]),
        ""
    );
    let listed = run(&["agent", "list"]);
    assert_eq!(listed.json()["agents"], serde_json::json!([]), "{listed}");
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
#[ignore = "needs root: podman's containers here"]
fn an_agent_in_a_podman_container_runs_there_and_goes_with_rm() {
    crate::require_root("run podman containers");
    let podman = Podman::new();
    let h = home();
    let conf = podman.conf().display().to_string();
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let mut cmd = h.command(&all);
        cmd.current_dir(p.path())
            .env("CONTAINERS_STORAGE_CONF", &conf);
        h.run_cmd(cmd)
    };
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("podman://{IMAGE}");
    run(&[
        "agent",
        "new",
        "pod",
        "--on",
        &url,
        "--cmd",
        "echo in the pod on $(git rev-parse --abbrev-ref HEAD); exec sleep 300",
    ])
    .expect_code(0);
    let names = || {
        ok(&mut podman.command(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            "label=berth.managed=1",
        ]))
    };
    let c = names();
    assert!(c.starts_with("berth-agent-"), "{c}");
    run(&["agent", "start", "pod"]).expect_code(0);
    wait_until("its output arrived here", Duration::from_secs(30), || {
        h.run_in(p.path(), &["agent", "logs", "pod"])
            .stdout
            .contains("in the pod on berth/pod")
    });
    let shown = run(&["agent", "show", "pod"]);
    assert_eq!(shown.json()["state"], "running", "{shown}");
    run(&["agent", "stop", "pod"]).expect_code(0);
    run(&["agent", "rm", "pod"]).expect_code(0);
    assert_eq!(names(), "", "the container berth made for it is gone");
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn an_agent_in_a_container_of_yours_runs_there_and_rm_leaves_the_container_alone() {
    crate::require_root("run a dockerd");
    let name = format!("berth-test-agent-exec-{}", std::process::id());
    ok(&mut docker(&[
        "run",
        "--detach",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        IDLE,
    ]));
    let h = home();
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| agent_cmd(&h, p.path(), &[], args);
    run(&["daemon", "start"]).expect_code(0);
    run(&[
        "agent",
        "new",
        "guest",
        "--on",
        &format!("docker-exec://{name}/srv/guest"),
        "--cmd",
        "echo a guest in $(pwd); exec sleep 300",
        "--start",
    ])
    .expect_code(0);
    wait_until("its output arrived here", Duration::from_secs(30), || {
        h.run_in(p.path(), &["agent", "logs", "guest"])
            .stdout
            .contains("a guest in /srv/guest/workspace")
    });
    run(&["agent", "stop", "guest"]).expect_code(0);
    run(&["agent", "rm", "guest"]).expect_code(0);
    assert_eq!(
        exec(&name, "ls -A /srv/guest"),
        "",
        "its files there are gone"
    );
    // The container is yours: berth left it as it was, running.
    assert_eq!(
        ok(&mut docker(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &name
        ])),
        "true"
    );
    run(&["daemon", "stop"]).expect_code(0);
    ok(&mut docker(&["rm", "--force", &name]));
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn pairing_with_an_agent_in_a_container_carries_edits_and_commits_and_gets_over_a_pause() {
    crate::require_root("run a dockerd");
    let h = home();
    let env = [("BERTH_REMOTE_SILENCE_MS", "3000")];
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let user = p.path();
    std::fs::write(user.join("draft.txt"), "mine, not committed\n").unwrap();
    let status_before = berth_testkit::git(user, &["status", "--porcelain"]);
    let run = |args: &[&str]| agent_cmd(&h, user, &env, args);
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("docker://{IMAGE}");
    run(&["agent", "new", "boxmate", "--on", &url, "--cmd", "true"]).expect_code(0);
    let c = agent_container("boxmate");
    let ws = "/berth/workspace";
    let read_there = |path: &str| {
        docker(&["exec", &c, "cat", &format!("{ws}/{path}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let read_here = |path: &str| std::fs::read_to_string(user.join(path)).ok();
    let status = || {
        let out = run(&["pair", "status"]);
        out.expect_code(0);
        out.json()
    };

    let paired = run(&["pair", "boxmate"]);
    paired.expect_code(0);
    assert_eq!(paired.json()["state"], "active", "{paired}");
    std::fs::write(user.join("from-user.txt"), "typed here\n").unwrap();
    exec(&c, &format!("echo typed there > {ws}/from-agent.txt"));
    wait_until("edits crossed both ways", Duration::from_secs(30), || {
        read_there("from-user.txt").as_deref() == Some("typed here\n")
            && read_here("from-agent.txt").as_deref() == Some("typed there\n")
    });
    // Commits both ways.
    exec(
        &c,
        &format!(
            "cd {ws} && git add from-agent.txt && git -c user.name=box -c \
             user.email=box@example.com commit -qm 'made in the box'"
        ),
    );
    wait_until(
        "the agent's commit reached the checkout",
        Duration::from_secs(30),
        || {
            berth_testkit::git(user, &["log", "-1", "--format=%s", "berth/boxmate"])
                == "made in the box"
        },
    );
    wait_until(
        "the checkout's index followed",
        Duration::from_secs(20),
        || {
            berth_testkit::git(user, &["status", "--porcelain", "--", "from-agent.txt"]).is_empty()
                && !user.join(".git/index.lock").exists()
        },
    );
    berth_testkit::git(user, &["add", "from-user.txt"]);
    berth_testkit::git(user, &["commit", "-qm", "made here"]);
    wait_until(
        "the user's commit reached the box",
        Duration::from_secs(30),
        || exec(&c, &format!("git -C {ws} log -1 --format=%s")) == "made here",
    );

    // The container paused: paused with connection_lost; unpaused: it resumes by itself with
    // what changed here meanwhile.
    ok(&mut docker(&["pause", &c]));
    wait_until(
        "paused with connection_lost",
        Duration::from_secs(40),
        || {
            let s = status();
            s["state"] == "paused"
                && s["notices"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n["code"] == "connection_lost"))
        },
    );
    std::fs::write(user.join("while-paused.txt"), "here meanwhile\n").unwrap();
    ok(&mut docker(&["unpause", &c]));
    wait_until(
        "resumed with the edit made meanwhile",
        Duration::from_secs(60),
        || read_there("while-paused.txt").as_deref() == Some("here meanwhile\n"),
    );
    wait_until("active again", Duration::from_secs(30), || {
        status()["state"] == "active"
    });

    // Stopped: the checkout is back, exactly.
    run(&["pair", "stop"]).expect_code(0);
    assert_eq!(
        berth_testkit::git(user, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );
    assert_eq!(
        berth_testkit::git(user, &["status", "--porcelain"]),
        status_before
    );
    assert_eq!(
        read_there("while-paused.txt").as_deref(),
        Some("here meanwhile\n")
    );
    run(&["agent", "rm", "boxmate", "--force"]).expect_code(0);
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn a_terminal_agent_in_a_container_is_typed_into_and_attached_through_docker_exec() {
    use berth_testkit::Tmux;

    use super::attach::{attach, terminal_put_back};
    use super::terminal::{typed, wait_for};

    crate::require_root("run a dockerd");
    let h = home();
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| agent_cmd(&h, p.path(), &[], args);
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("docker://{IMAGE}");
    run(&[
        "agent",
        "new",
        "term",
        "--on",
        &url,
        "--tty",
        "--start",
        "--env",
        "PS1=$ ",
        "--cmd",
        "exec sh -i",
    ])
    .expect_code(0);
    // Screen and input through the agent's link.
    wait_for(&h, p.path(), "term", "$");
    typed(&h, p.path(), "term", "echo typed-$((6*7))");
    wait_for(&h, p.path(), "term", "typed-42");
    // Attached through a relay started with `docker exec -i` in its container.
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["term"]);
    t.wait_for("a", "typed-42");
    t.type_text("a", "echo v=$((6*7))");
    t.keys("a", &["Enter"]);
    t.wait_for("a", "v=42");
    t.keys("a", &["C-\\"]);
    t.wait_for("a", "EXIT=0");
    terminal_put_back(&t, "a");
    run(&["agent", "stop", "term"]).expect_code(0);
    run(&["agent", "rm", "term"]).expect_code(0);
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
#[ignore = "needs root: runs a dockerd of its own"]
fn a_probed_agent_and_a_turn_agent_in_containers_are_probed_and_run_there() {
    crate::require_root("run a dockerd");
    let h = home();
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| agent_cmd(&h, p.path(), &[], args);
    run(&["daemon", "start"]).expect_code(0);
    let url = format!("docker://{IMAGE}");
    let show = |name: &str| {
        let out = run(&["agent", "show", name]);
        out.expect_code(0);
        out.json()
    };
    // The probe runs in the container's workspace: starting until the file is there.
    let created = run(&[
        "agent",
        "new",
        "svc",
        "--on",
        &url,
        "--ready",
        "exec:test -f go",
        "--cmd",
        "exec sleep 300",
        "--start",
    ]);
    created.expect_code(0);
    assert_eq!(created.json()["state"], "starting", "{created}");
    let c = agent_container("svc");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(show("svc")["state"], "starting");
    exec(&c, ": > /berth/workspace/go");
    wait_until(
        "the probe passed in the container",
        Duration::from_secs(30),
        || show("svc")["state"] == "running",
    );
    // A turn runs in the workspace of its own container, the message on its stdin.
    run(&["agent", "new", "bot", "--on", &url, "--turn", "cat"]).expect_code(0);
    run(&["send", "bot", "into the box"]).expect_code(0);
    wait_until("the turn is done", Duration::from_secs(30), || {
        let out = run(&["inbox", "bot"]);
        out.json()["items"][0]["state"] == "done"
    });
    let turns = run(&["turns", "bot"]);
    let id = turns.json()["turns"][0]["id"].as_i64().unwrap();
    let shown = run(&["turns", "show", &id.to_string()]);
    assert!(
        shown.json()["output"]
            .as_str()
            .unwrap_or_default()
            .contains("into the box"),
        "{shown}"
    );
    run(&["agent", "stop", "svc"]).expect_code(0);
    exec(&c, "rm /berth/workspace/go");
    for name in ["svc", "bot"] {
        run(&["agent", "rm", name]).expect_code(0);
    }
    run(&["daemon", "stop"]).expect_code(0);
}
