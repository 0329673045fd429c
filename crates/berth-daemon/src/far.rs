//! The far side of an agent elsewhere (SPEC §10.4): what `berth __endpoint DIR` does for the
//! daemon's host calls (`berth_sync::remote::Host`): the [`Call`]s of [`crate::far_calls`],
//! which the daemon makes through an agent's link.
//!
//! The agent's directory there (the endpoint's root) holds `workspace/` — a clone of the
//! project's `berth/<name>`, made from a git bundle the daemon copied over the stream — and
//! `keeper/`, the files of its keeper: the same keeper as locally, started by this endpoint
//! (`keepers::spawn_keeper`, in a session of its own), so the agent survives the connection and
//! the daemon. The daemon looks at the keeper through [`Call::Look`] once a second, which also
//! brings the new lines of its output log.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_core::probe::{ProbeCheck, ProbeSpec};
use berth_git::Git;
use berth_git::git::Access;
use berth_supervisor::keeper::control::{self, ControlError, Request};
use berth_supervisor::keeper::spec::{KeeperDir, KeeperSpec, KeeperState};

use crate::far_calls::{Answer, Call, INCOMING, KeeperLook, OUTGOING, PairLook, TURN_OUTPUT};
use crate::keepers::{Look, look, reported, spawn_keeper};

/// At most this much of the output log per look.
const LOG_PER_LOOK: u64 = 256 * 1024;

/// The far side's host: answers [`Call`]s for the agent at the endpoint's root.
pub struct FarHost;

impl berth_sync::remote::Host for FarHost {
    fn call(&mut self, root: &Path, request: &[u8]) -> Result<Vec<u8>, String> {
        let call: Call = serde_json::from_slice(request)
            .map_err(|e| format!("a call this berth does not understand: {e}"))?;
        let answer = answer(root, call)?;
        serde_json::to_vec(&answer).map_err(|e| e.to_string())
    }
}

/// A keeper that runs, as the daemon is told.
fn alive(st: &KeeperState) -> KeeperLook {
    KeeperLook::Alive {
        pid: st.child.map(|c| c.pid),
        started_ms: st.started_ms,
    }
}

fn workspace(root: &Path) -> PathBuf {
    root.join("workspace")
}

fn keeper(root: &Path) -> KeeperDir {
    KeeperDir(root.join("keeper"))
}

fn turn_keeper(root: &Path, turn: i64) -> KeeperDir {
    KeeperDir(root.join("turns").join(turn.to_string()))
}

/// How the keeper whose files are in `dir` is.
fn keeper_look(dir: &KeeperDir) -> KeeperLook {
    match look(dir) {
        None => KeeperLook::NotStarted,
        Some(Look::Alive(st)) => alive(&st),
        Some(Look::Done(st)) => KeeperLook::Done {
            code: st.exit.and_then(|e| e.code),
            success: st.exit.is_some_and(|e| e.success()),
        },
        Some(Look::Vanished) => KeeperLook::Vanished,
    }
}

/// Stops the keeper whose files are in `dir` (one that is gone already: nothing to stop).
fn stop_keeper(dir: &KeeperDir, grace_ms: Option<u64>, timeout_ms: u64) -> Result<Answer, String> {
    let timeout = Duration::from_millis(timeout_ms);
    match control::request(&dir.socket(), &Request::Stop { grace_ms }, timeout) {
        Ok(resp) => Ok(Answer::Stopped {
            killed: resp.killed,
            code: resp.state.exit.and_then(|e| e.code),
        }),
        // Gone already (it finished between the daemon's look and this stop).
        Err(ControlError::Io { .. }) => Ok(Answer::Stopped {
            killed: false,
            code: None,
        }),
        Err(e) => Err(e.to_string()),
    }
}

fn git_failed(e: impl std::fmt::Display) -> String {
    format!("git on the far side: {e}")
}

fn answer(root: &Path, call: Call) -> Result<Answer, String> {
    match call {
        Call::Clone { branch } => {
            let ws = workspace(root);
            if ws.exists() {
                return Err(format!(
                    "{} already exists there; choose another directory or agent name",
                    ws.display()
                ));
            }
            let bundle = root.join(INCOMING);
            let (bundle_arg, ws_arg) = (bundle.display().to_string(), ws.display().to_string());
            Git::new(root)
                .run(
                    Access::Write,
                    &[
                        "clone",
                        "--quiet",
                        "--branch",
                        &branch,
                        "--",
                        &bundle_arg,
                        &ws_arg,
                    ],
                )
                .map_err(git_failed)?;
            Git::new(&ws)
                .run(Access::Write, &["remote", "remove", "origin"])
                .map_err(git_failed)?;
            // Pairing writes there through temporary files: git never sees them.
            crate::pairing::exclude_temps_for_good(&Git::new(&ws)).map_err(git_failed)?;
            let _ = std::fs::remove_file(&bundle);
            Ok(Answer::Done)
        }
        Call::Start { spec } => start_in(root, &keeper(root), spec).map(|keeper| Answer::Look {
            keeper,
            log: Vec::new(),
        }),
        Call::Look { log_from } => {
            let dir = keeper(root);
            let keeper = keeper_look(&dir);
            let log = read_log(&dir.output(), log_from).unwrap_or_default();
            Ok(Answer::Look { keeper, log })
        }
        Call::Stop {
            grace_ms,
            timeout_ms,
        } => stop_keeper(&keeper(root), grace_ms, timeout_ms),
        Call::TurnStart {
            turn,
            mut spec,
            message,
        } => {
            let dir = turn_keeper(root, turn);
            let file = dir.path().join("message");
            std::fs::create_dir_all(dir.path())
                .and_then(|()| std::fs::write(&file, &message))
                .map_err(|e| format!("cannot write the message for the turn there: {e}"))?;
            spec.env
                .insert("BERTH_MESSAGE_FILE".into(), file.display().to_string());
            spec.stdin = Some(file);
            start_in(root, &dir, spec).map(|keeper| Answer::Look {
                keeper,
                log: Vec::new(),
            })
        }
        Call::TurnLook { turn } => Ok(Answer::Look {
            keeper: keeper_look(&turn_keeper(root, turn)),
            log: Vec::new(),
        }),
        Call::TurnStop { turn } => stop_keeper(&turn_keeper(root, turn), None, 60_000),
        Call::TurnEnd { turn } => {
            let dir = turn_keeper(root, turn);
            let len = std::fs::metadata(dir.output()).map_or(0, |m| m.len());
            let log = read_log(&dir.output(), len.saturating_sub(TURN_OUTPUT)).unwrap_or_default();
            let keeper = keeper_look(&dir);
            if dir.path().exists() {
                std::fs::remove_dir_all(dir.path())
                    .map_err(|e| format!("cannot remove {}: {e}", dir.path().display()))?;
            }
            Ok(Answer::Look { keeper, log })
        }
        Call::Dirty => {
            let ws = workspace(root);
            if !ws.exists() {
                return Ok(Answer::Dirty(Vec::new()));
            }
            let st = berth_git::status::status(&Git::new(&ws), false).map_err(git_failed)?;
            Ok(Answer::Dirty(
                st.entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(e.path()).into_owned())
                    .collect(),
            ))
        }
        Call::Snapshot {
            id,
            time_ms,
            reason,
        } => {
            let opts = berth_git::snapshot::CaptureOptions {
                id,
                time_ms,
                reason,
                message: None,
                pairing: None,
            };
            berth_git::snapshot::capture(&Git::new(workspace(root)), opts).map_err(git_failed)?;
            Ok(Answer::Done)
        }
        Call::Bundle { refs, have } => {
            let ws = Git::new(workspace(root));
            let mut new = Vec::new();
            for r in refs {
                let tip = berth_git::refs::resolve(&ws, &r).map_err(git_failed)?;
                match tip {
                    Some(t) if Some(&t) != have.as_ref() => new.push((r, t)),
                    _ => {}
                }
            }
            if new.is_empty() {
                return Ok(Answer::UpToDate);
            }
            // Only what the project lacks — when `have` is known here and none of the tips is
            // behind it (git leaves out of a bundle a ref its exclusions reach).
            let mut known = None;
            if let Some(h) = have {
                let mut reaches_none = berth_git::refs::resolve(&ws, &format!("{h}^{{commit}}"))
                    .is_ok_and(|c| c.is_some());
                for (_, tip) in &new {
                    if !reaches_none {
                        break;
                    }
                    reaches_none =
                        !berth_git::refs::is_ancestor(&ws, tip, &h).map_err(git_failed)?;
                }
                known = reaches_none.then(|| format!("^{h}"));
            }
            let out = root.join(OUTGOING).display().to_string();
            let mut args = vec!["bundle", "create", "--quiet", out.as_str()];
            args.extend(new.iter().map(|(r, _)| r.as_str()));
            args.extend(known.as_deref());
            ws.run(Access::Write, &args).map_err(git_failed)?;
            Ok(Answer::Bundled(new.into_iter().map(|(r, _)| r).collect()))
        }
        Call::Remove => {
            for dir in [
                workspace(root),
                keeper(root).path().to_path_buf(),
                root.join("turns"),
            ] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
                }
            }
            for file in [INCOMING, OUTGOING] {
                let _ = std::fs::remove_file(root.join(file));
            }
            Ok(Answer::Done)
        }
        Call::Ping => Ok(Answer::Done),
        Call::Probe { probe } => probe_once(root, &probe).map(|passed| Answer::Probed { passed }),
        Call::Keeper {
            request,
            timeout_ms,
        } => {
            let socket = keeper(root).socket();
            let within = Duration::from_millis(timeout_ms);
            match control::ask::<serde_json::Value>(&socket, &request, within) {
                Ok(answer) => Ok(Answer::Keeper(answer)),
                Err(e @ ControlError::Io { .. }) => Ok(Answer::KeeperGone(e.to_string())),
                Err(e) => Err(e.to_string()),
            }
        }
        Call::PairLook { branch_ref } => pair_look(root, &branch_ref).map(Answer::PairLook),
        Call::Gate { branch_ref } => {
            let ws = Git::new(workspace(root));
            let dir = berth_git::pairing::git_dir(&ws).map_err(git_failed)?;
            Ok(
                match crate::pairing::side_state(&dir, &branch_ref, "the agent's workspace") {
                    Ok(closed) => Answer::Gate {
                        closed,
                        busy: false,
                    },
                    Err(()) => Answer::Gate {
                        closed: None,
                        busy: true,
                    },
                },
            )
        }
        Call::Advance {
            branch_ref,
            from,
            to,
        } => {
            let ws = Git::new(workspace(root));
            let bundle = root.join(INCOMING);
            berth_git::bundle::fetch_objects(&ws, &bundle).map_err(git_failed)?;
            let _ = std::fs::remove_file(&bundle);
            berth_git::pairing::move_branch_and_index(&ws, &branch_ref, &from, &to)
                .map_err(git_failed)?;
            Ok(Answer::Done)
        }
    }
}

/// One attempt of `probe` there. A `log` probe is the daemon's (it reads its copy of the log);
/// `notify` cannot be (its socket would be here).
fn probe_once(root: &Path, probe: &ProbeSpec) -> Result<bool, String> {
    if matches!(probe.check, ProbeCheck::Notify | ProbeCheck::Log { .. }) {
        return Err(format!("a {} probe is not run there", probe.check.kind()));
    }
    let mut target = berth_supervisor::probe::Target::new(
        &probe.check,
        workspace(root),
        keeper(root).output(),
        None,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot run the probe there: {e}"))?;
    Ok(runtime.block_on(berth_supervisor::probe::attempt(
        &probe.check,
        &mut target,
        probe.timeout,
    )))
}

/// [`Call::PairLook`]'s answer.
fn pair_look(root: &Path, branch_ref: &str) -> Result<PairLook, String> {
    let path = workspace(root);
    if !path.join(".git").exists() {
        return Ok(PairLook {
            workspace: false,
            on: None,
            tip: None,
            operation: None,
        });
    }
    let ws = Git::new(&path);
    let head = berth_git::head::head(&ws).map_err(git_failed)?;
    let tip = berth_git::refs::resolve(&ws, branch_ref).map_err(git_failed)?;
    let operation = berth_git::operation::in_progress(&ws)
        .map_err(git_failed)?
        .map(crate::pairing::operation_of);
    Ok(PairLook {
        workspace: true,
        on: head.branch().map(str::to_string),
        tip,
        operation,
    })
}

/// Starts a keeper with `spec` and its files in `dir`, working in the workspace; waits until
/// it reports.
fn start_in(root: &Path, dir: &KeeperDir, mut spec: KeeperSpec) -> Result<KeeperLook, String> {
    if let Some(Look::Alive(st)) = look(dir) {
        return Ok(alive(&st));
    }
    let ws = workspace(root);
    spec.cwd = ws.clone();
    spec.env
        .insert("BERTH_WORKSPACE".into(), ws.display().to_string());
    let fail = |e: std::io::Error| format!("cannot start the keeper there: {e}");
    std::fs::create_dir_all(dir.path()).map_err(fail)?;
    let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
    berth_control::files::write_atomically(&dir.spec(), &bytes).map_err(fail)?;
    let _ = std::fs::remove_file(dir.state());
    let exited = spawn_keeper(dir).map_err(fail)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match reported(dir, &exited) {
            Some(Ok(st)) => {
                return Ok(alive(&st));
            }
            Some(Err(said)) => return Err(said),
            None => {}
        }
        if Instant::now() >= deadline {
            return Err("the keeper there did not report within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The output log from `from` (from 0 if it is shorter now: it was rotated), at most
/// [`LOG_PER_LOOK`] bytes.
fn read_log(path: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let at = if from > len { 0 } else { from };
    file.seek(SeekFrom::Start(at))?;
    let mut bytes = Vec::new();
    file.take(LOG_PER_LOOK).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use berth_sync::remote::Host;
    use berth_testkit::{git, init_repo};

    use super::*;

    /// A temporary directory holding `project` (a repository with one commit) and `far` (an
    /// agent's empty directory there).
    fn project_and_far() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let (project, root) = (tmp.path().join("project"), tmp.path().join("far"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        init_repo(&project);
        std::fs::write(project.join("README"), "hi\n").unwrap();
        git(&project, &["add", "README"]);
        git(&project, &["commit", "-qm", "first"]);
        (tmp, project, root)
    }

    fn call(root: &Path, c: &Call) -> Result<Answer, String> {
        let bytes = FarHost.call(root, &serde_json::to_vec(c).unwrap())?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn the_far_side_clones_reports_snapshots_bundles_and_removes_a_workspace() {
        let (tmp, project, root) = project_and_far();
        let p = Git::new(&project);
        let bundle = tmp.path().join("b.bundle");
        berth_git::workspace::create_elsewhere(&p, "x", "HEAD", &bundle).unwrap();
        std::fs::copy(&bundle, root.join(INCOMING)).unwrap();

        // Cloned on the agent's branch; the bundle it came in is gone; a second clone refused.
        let branch = "berth/x".to_string();
        call(
            &root,
            &Call::Clone {
                branch: branch.clone(),
            },
        )
        .unwrap();
        let ws = root.join("workspace");
        assert_eq!(git(&ws, &["rev-parse", "--abbrev-ref", "HEAD"]), "berth/x");
        assert_eq!(git(&ws, &["remote"]), "");
        assert!(!root.join(INCOMING).exists());
        let excluded = std::fs::read_to_string(ws.join(".git/info/exclude")).unwrap();
        assert!(excluded.contains(".berth-tmp-*"), "{excluded}");
        let again = call(&root, &Call::Clone { branch }).unwrap_err();
        assert!(again.contains("already exists"), "{again}");

        // Nothing started yet; nothing to stop.
        let Answer::Look { keeper, log, .. } = call(&root, &Call::Look { log_from: 0 }).unwrap()
        else {
            panic!("a look")
        };
        assert_eq!((keeper, log.len()), (KeeperLook::NotStarted, 0));
        let stop = Call::Stop {
            grace_ms: None,
            timeout_ms: 1000,
        };
        assert!(matches!(
            call(&root, &stop).unwrap(),
            Answer::Stopped { killed: false, .. }
        ));

        // A commit and a draft there: the draft is dirty; a snapshot of it and the branch come
        // back here in a bundle.
        std::fs::write(ws.join("done.txt"), "done\n").unwrap();
        git(&ws, &["add", "done.txt"]);
        let who = ["-c", "user.name=t", "-c", "user.email=t@example.com"];
        git(&ws, &[&who[..], &["commit", "-qm", "made there"]].concat());
        std::fs::write(ws.join("draft.txt"), "draft\n").unwrap();
        let Answer::Dirty(dirty) = call(&root, &Call::Dirty).unwrap() else {
            panic!("dirty paths")
        };
        assert_eq!(dirty, ["draft.txt"]);
        let snapshot = Call::Snapshot {
            id: "s1".into(),
            time_ms: 1,
            reason: "test".into(),
        };
        call(&root, &snapshot).unwrap();
        let refs = vec![
            berth_git::workspace::branch_ref("x"),
            berth_git::snapshot::refname("s1"),
        ];
        // The project has the base: only what it lacks comes, and nothing when it lacks nothing.
        let base = git(&project, &["rev-parse", "berth/x"]);
        let bundle = Call::Bundle {
            refs: refs.clone(),
            have: Some(base.clone()),
        };
        assert!(matches!(call(&root, &bundle).unwrap(), Answer::Bundled(r) if r == refs));
        let listed = git(&root, &["bundle", "list-heads", OUTGOING]);
        assert_eq!(listed.lines().count(), 2, "{listed}");
        let tip = git(&ws, &["rev-parse", "HEAD"]);
        let only_branch = Call::Bundle {
            refs: vec![berth_git::workspace::branch_ref("x")],
            have: Some(tip),
        };
        assert!(matches!(
            call(&root, &only_branch).unwrap(),
            Answer::UpToDate
        ));
        // A snapshot alone, the branch being where the project has it: only the snapshot.
        let tip = git(&ws, &["rev-parse", "HEAD"]);
        let snapshot_only = Call::Bundle {
            refs: refs.clone(),
            have: Some(tip),
        };
        assert!(matches!(
            call(&root, &snapshot_only).unwrap(),
            Answer::Bundled(r) if r == [berth_git::snapshot::refname("s1")]
        ));
        // Put back the bundle of both, which the project fetches from below.
        call(&root, &bundle).unwrap();
        let back = root.join(OUTGOING).display().to_string();
        berth_git::workspace::sync_refs_from(&p, &back, "x").unwrap();
        berth_git::workspace::adopt_snapshot_from(&p, &back, "s1").unwrap();
        assert_eq!(
            git(&project, &["log", "-1", "--format=%s", "berth/x"]),
            "made there"
        );
        let stash = format!("{}:draft.txt", berth_git::snapshot::refname("s1"));
        assert_eq!(git(&project, &["show", &stash]), "draft");

        // Removed: the workspace, the keeper's files and the bundles go; the directory stays.
        call(&root, &Call::Remove).unwrap();
        assert!(!ws.exists() && !root.join(OUTGOING).exists());
        assert!(root.exists());
        // Garbage is an error, never a panic.
        assert!(FarHost.call(&root, b"{not json").is_err());
    }

    #[test]
    fn the_far_side_probes_in_its_workspace_and_says_when_a_keeper_is_not_there() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("workspace")).unwrap();
        let probe = |check: &str| Call::Probe {
            probe: berth_core::probe::parse_cli(check).unwrap().unwrap(),
        };
        // `exec` runs in the workspace there.
        let passed = |c: &Call| match call(root, c) {
            Ok(Answer::Probed { passed }) => passed,
            other => panic!("a probe's answer: {other:?}"),
        };
        assert!(!passed(&probe("exec:test -f flag")));
        std::fs::write(root.join("workspace/flag"), "").unwrap();
        assert!(passed(&probe("exec:test -f flag")));
        // A port nobody listens on fails; one that is listened on passes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(passed(&probe(&format!("tcp:127.0.0.1:{port}"))));
        // Bound and not listening: refused, and no other test can take the port meanwhile.
        let closed = {
            use nix::sys::socket::{
                AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
            };
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::new(127, 0, 0, 1, 0),
            )
            .unwrap();
            let at: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
            (fd, at.port())
        };
        assert!(!passed(&probe(&format!("tcp:127.0.0.1:{}", closed.1))));
        // `notify` and `log` are never run there.
        assert!(call(root, &probe("notify")).is_err());
        assert!(call(root, &probe("log:x")).is_err());

        // No keeper there: its requests say so instead of failing the link.
        let screen = Call::Keeper {
            request: Request::Screen { scrollback: 0 },
            timeout_ms: 1000,
        };
        assert!(matches!(
            call(root, &screen).unwrap(),
            Answer::KeeperGone(_)
        ));
        // A turn that never started: not started; its end brings nothing and removes nothing.
        assert!(matches!(
            call(root, &Call::TurnLook { turn: 7 }).unwrap(),
            Answer::Look {
                keeper: KeeperLook::NotStarted,
                ..
            }
        ));
        let Answer::Look { log, .. } = call(root, &Call::TurnEnd { turn: 7 }).unwrap() else {
            panic!("a look")
        };
        assert!(log.is_empty());
    }

    #[test]
    fn the_far_side_answers_pairings_look_gate_and_moves_its_branch_to_the_users_commits() {
        let (tmp, project, root) = project_and_far();
        let p = Git::new(&project);
        let branch_ref = berth_git::workspace::branch_ref("x");
        let look = |root: &Path| match call(
            root,
            &Call::PairLook {
                branch_ref: branch_ref.clone(),
            },
        )
        .unwrap()
        {
            Answer::PairLook(l) => l,
            _ => panic!("a look"),
        };
        let gate = |root: &Path| match call(
            root,
            &Call::Gate {
                branch_ref: branch_ref.clone(),
            },
        ) {
            Ok(Answer::Gate { closed, busy }) => (closed, busy),
            other => panic!("a gate: {other:?}"),
        };
        // No workspace yet: said so, not an error.
        assert!(!look(&root).workspace);

        let bundle = tmp.path().join("b.bundle");
        berth_git::workspace::create_elsewhere(&p, "x", "HEAD", &bundle).unwrap();
        std::fs::copy(&bundle, root.join(INCOMING)).unwrap();
        call(
            &root,
            &Call::Clone {
                branch: "berth/x".into(),
            },
        )
        .unwrap();
        let ws = root.join("workspace");
        let base = git(&project, &["rev-parse", "HEAD"]);
        let seen = look(&root);
        assert_eq!(
            seen,
            PairLook {
                workspace: true,
                on: Some(branch_ref.clone()),
                tip: Some(base.clone()),
                operation: None,
            }
        );
        // (An index written a moment ago may be a branch switch under way: busy for 50 ms.)
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(gate(&root), (None, false));
        // Another branch there shuts the gate and shows in the look.
        git(&ws, &["switch", "-q", "-c", "elsewhere"]);
        assert_eq!(look(&root).on.as_deref(), Some("refs/heads/elsewhere"));
        let (closed, _) = gate(&root);
        assert!(closed.unwrap().contains("not on refs/heads/berth/x"));
        git(&ws, &["switch", "-q", "berth/x"]);
        // git holding the index lock there: busy, not closed.
        std::fs::write(ws.join(".git/index.lock"), "").unwrap();
        assert_eq!(gate(&root), (None, true));
        std::fs::remove_file(ws.join(".git/index.lock")).unwrap();

        // The user's commit goes there as a bundle; the branch there moves and its index
        // follows (the file itself is sync's business: the working tree is left alone).
        git(&project, &["switch", "-q", "berth/x"]);
        std::fs::write(project.join("new.txt"), "made here\n").unwrap();
        git(&project, &["add", "new.txt"]);
        git(&project, &["commit", "-qm", "made here"]);
        let tip = git(&project, &["rev-parse", "HEAD"]);
        berth_git::bundle::create(&p, &root.join(INCOMING), &[&branch_ref], &[&base]).unwrap();
        let advance = Call::Advance {
            branch_ref: branch_ref.clone(),
            from: base.clone(),
            to: tip.clone(),
        };
        call(&root, &advance).unwrap();
        assert_eq!(git(&ws, &["rev-parse", "HEAD"]), tip);
        assert_eq!(git(&ws, &["diff", "--cached", "--name-only", "HEAD"]), "");
        assert!(!ws.join("new.txt").exists());
        assert!(!root.join(INCOMING).exists());
        // Moved already: a second advance from the old tip is refused (compare and swap).
        berth_git::bundle::create(&p, &root.join(INCOMING), &[&branch_ref], &[&base]).unwrap();
        assert!(call(&root, &advance).is_err());
        assert_eq!(git(&ws, &["rev-parse", "HEAD"]), tip);
    }
}
