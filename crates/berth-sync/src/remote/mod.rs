//! Trees elsewhere: the protocol between the daemon and `berth __endpoint ROOT`, and both of
//! its ends.
//!
//! # The protocol
//!
//! One byte stream each way (ssh's, a pipe's, `docker exec -i`'s): [`frame`]s of at most
//! [`frame::MAX_FRAME`] bytes, a 4-byte big-endian length then one message in `postcard`'s
//! compact format ([`message`]). The endpoint greets first with its protocol number and
//! version; the client answers with its own and the size limit, and either side refuses a
//! peer that speaks another [`message::PROTOCOL`]. Then the client asks and the endpoint
//! answers, one request at a time: scans (whole or a subtree; the stat cache stays on the
//! endpoint's side, so a rescan reads only what changed there), a file's content (chunks and
//! then their blake3 digest, only for the files the engine copies), applies (the same atomic
//! apply that never leaves the root, its content checked against the digest before it is
//! renamed into place), watching and heartbeats, and the git facts pairing reads. Watch events
//! come whenever they happen, between any two frames.
//!
//! # The ends
//!
//! [`serve`] is the endpoint (`berth __endpoint`, on the far side); [`RemoteEndpoint`] is the
//! daemon's end, an [`crate::endpoint::Endpoint`] like a local tree, over the standard input
//! and output of a command its [`Launcher`] starts, started again when the stream broke.
//!
//! # The far side
//!
//! A [`target::Target`] is where the tree is: `ssh://` ([`ssh`]) or a container ([`container`]:
//! `docker://IMAGE/dir` made and kept by berth, `docker-exec://CONTAINER/dir`, podman's too),
//! each running scripts with `sh` there over its own byte stream. [`install::Installing`]
//! starts the endpoint there, installing this very binary first (by digest) when it is
//! missing or answers with another version.
//!
//! What a connection carried (bytes each way, the bandwidth of its last large transfer) is
//! counted in its [`traffic::Traffic`].

mod client;
mod connection;
pub mod container;
mod content;
mod error;
pub mod frame;
pub mod install;
mod launch;
pub mod message;
mod serve;
pub mod ssh;
pub mod target;
pub mod traffic;

pub use client::{HostCallError, RemoteEndpoint, RemoteReader, RemoteWatch};
pub use error::RemoteError;
pub use launch::Launcher;
pub use serve::{Host, NoHost, serve, serve_stdio, serve_with};

#[cfg(test)]
mod tests {
    use std::io::{Read, pipe};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::frame::{FrameReader, FrameWriter};
    use super::message::{Fault, PROTOCOL, Request, Response};
    use super::*;
    use crate::apply::ApplyError;
    use crate::endpoint::{Endpoint, transfer};
    use crate::reconcile::Entry;
    use crate::scan::Scanner;

    /// A client talking to `serve` on a thread of its own, over pipes.
    fn served(root: &Path) -> RemoteEndpoint {
        let (from_client, to_endpoint) = pipe().unwrap();
        let (from_endpoint, to_client) = pipe().unwrap();
        let root = root.to_path_buf();
        std::thread::spawn(move || serve(&root, from_client, to_client));
        RemoteEndpoint::connect("far", from_endpoint, to_endpoint, u64::MAX).unwrap()
    }

    fn frames(messages: &[Request]) -> Vec<u8> {
        let (mut reader, writer) = pipe().unwrap();
        let mut w = FrameWriter::new(writer);
        for m in messages {
            w.write(m).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_tree_is_scanned_read_and_written_across_the_stream() {
        let here = tempfile::tempdir().unwrap();
        let there = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(there.path().join("d")).unwrap();
        std::fs::write(there.path().join("d/f"), "far content").unwrap();
        let mut far = served(there.path());
        let (tree, warnings) = far.full().unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            tree.keys().cloned().collect::<Vec<_>>(),
            [b"d".to_vec(), b"d/f".to_vec()]
        );
        // Far → here, and a big file (several chunks) here → far, both checked by digest.
        let mut local = Scanner::new(here.path(), u64::MAX);
        let entry = tree[&b"d/f".to_vec()].clone();
        let written = transfer(&mut far, &mut local, b"d/f", Some(&entry)).unwrap();
        assert_eq!(written, Some(entry));
        assert_eq!(
            std::fs::read(here.path().join("d/f")).unwrap(),
            b"far content"
        );
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(here.path().join("big"), &big).unwrap();
        let (mine, _) = Scanner::full(&mut local).unwrap();
        let big_entry = mine[&b"big".to_vec()].clone();
        let written = transfer(&mut local, &mut far, b"big", Some(&big_entry)).unwrap();
        assert_eq!(written, Some(big_entry));
        assert_eq!(std::fs::read(there.path().join("big")).unwrap(), big);
        // What crossed is counted each way; only the big file tells the bandwidth.
        let counted = far.traffic().figures();
        assert_eq!((counted.sent, counted.received), (700_000, 11));
        assert!(counted.bandwidth.is_some_and(|b| b > 0), "{counted:?}");
        assert_eq!(far.under(b"d").unwrap().0.len(), 2);
        // A path that could leave the root is refused there, and the stream stays usable.
        let err = far
            .apply(b"../escape", Some(&Entry::Dir), None)
            .unwrap_err();
        assert!(matches!(err, ApplyError::BadPath(_)), "{err}");
        assert!(far.under(b"../x").is_err());
        assert!(!far.root_is_empty().unwrap());
        // A file that cannot be read fails before anything is written.
        assert!(far.read(b"missing").is_err());
        far.apply(b"d/f", None, None).unwrap();
        assert!(!there.path().join("d/f").exists());
        // Git facts: HEAD and which markers exist.
        std::fs::create_dir_all(there.path().join(".git")).unwrap();
        std::fs::write(there.path().join(".git/HEAD"), "ref: refs/heads/berth/x\n").unwrap();
        std::fs::write(there.path().join(".git/index.lock"), "").unwrap();
        let facts = far
            .git_facts(&["index.lock", "MERGE_HEAD", "../../etc"])
            .unwrap();
        assert_eq!(facts.head.as_deref(), Some("ref: refs/heads/berth/x\n"));
        assert!(facts.changed_ns[0].is_some());
        assert_eq!(&facts.changed_ns[1..], [None, None]);
    }

    #[test]
    fn the_far_sides_watch_sends_changes_and_heartbeats_but_not_berths_own_writes() {
        use std::sync::mpsc::channel;
        use std::time::Duration;

        use crate::reconcile::Side;
        use crate::watch::Input;

        let there = tempfile::tempdir().unwrap();
        let mut far = served(there.path());
        let (tx, rx) = channel();
        let watch = far.watch(Side::Beta, tx).unwrap();
        far.heartbeat().unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            matches!(got, Input::Heartbeat { side: Side::Beta }),
            "{got:?}"
        );
        // berth's own write is left out; someone else's edit comes through.
        far.apply(b"ours", Some(&Entry::Dir), None).unwrap();
        std::fs::write(there.path().join("theirs"), "edited there").unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        match got {
            Input::Changed { side, paths, .. } => {
                assert_eq!((side, paths), (Side::Beta, vec![b"theirs".to_vec()]));
            }
            other => panic!("{other:?}"),
        }
        // Once the watch is dropped, nothing reaches the loop any more (the channel ends after
        // what was sent before).
        drop(watch);
        std::fs::write(there.path().join("later"), "x").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let after: Vec<Input> = rx.iter().collect();
        assert!(
            !after.iter().any(
                |i| matches!(i, Input::Changed { paths, .. } if paths.contains(&b"later".to_vec()))
            ),
            "{after:?}"
        );
    }

    #[test]
    fn content_that_breaks_off_leaves_nothing_on_the_far_side() {
        let there = tempfile::tempdir().unwrap();
        std::fs::write(there.path().join("f"), "old").unwrap();
        let mut far = served(there.path());
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Err(std::io::Error::other("the disk here failed"));
                }
                buf[0] = b'x';
                Ok(1)
            }
        }
        let entry = Entry::File {
            digest: [0; 32],
            executable: false,
        };
        let err = far
            .apply(b"f", Some(&entry), Some(&mut Broken(false)))
            .unwrap_err();
        assert!(err.to_string().contains("the disk here failed"), "{err}");
        assert_eq!(std::fs::read(there.path().join("f")).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(there.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        // The stream is still in step.
        assert_eq!(far.full().unwrap().0.len(), 1);
    }

    #[test]
    fn a_peer_of_another_protocol_is_refused_on_both_ends() {
        // The endpoint refuses a client of another protocol, saying what to do.
        let dir = tempfile::tempdir().unwrap();
        let input = frames(&[Request::Hello {
            protocol: PROTOCOL + 1,
            version: "9.9.9".into(),
            max_size: 1,
        }]);
        let (out_reader, out_writer) = pipe().unwrap();
        let err = serve(dir.path(), input.as_slice(), out_writer).unwrap_err();
        assert!(err.to_string().contains("same version of berth"), "{err}");
        let mut answers = FrameReader::new(out_reader);
        assert!(matches!(
            answers.read::<Response>().unwrap(),
            Response::Hello { .. }
        ));
        assert!(matches!(
            answers.read::<Response>().unwrap(),
            Response::Failed(Fault::Refused(_))
        ));
        // The client refuses an endpoint of another protocol.
        let (from_endpoint, mut to_client) = pipe().unwrap();
        let (_from_client, to_endpoint) = pipe().unwrap();
        let mut w = FrameWriter::new(&mut to_client);
        w.write(&Response::Hello {
            protocol: PROTOCOL + 1,
            version: "9.9.9".into(),
        })
        .unwrap();
        w.flush().unwrap();
        let err = RemoteEndpoint::connect("far", from_endpoint, to_endpoint, 1).unwrap_err();
        assert!(matches!(err, RemoteError::Version { .. }), "{err}");
        assert!(err.hint().unwrap().contains("same version"));
    }

    /// A launcher whose endpoint greets with another protocol (an older berth), counting what
    /// it is asked; its repair fails with `repair_fails` if given.
    struct OlderBerth {
        started: Arc<AtomicUsize>,
        repaired: Arc<AtomicUsize>,
        repair_fails: Option<String>,
    }

    impl Launcher for OlderBerth {
        fn command(&mut self) -> Result<std::process::Command, RemoteError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut c = std::process::Command::new("sh");
            // The frame of `Response::Hello { protocol: 0, version: "0.0.1" }`.
            c.args([
                "-c",
                r"printf '\000\000\000\010\000\000\005%s' 0.0.1; cat >/dev/null",
            ]);
            Ok(c)
        }

        fn repair(&mut self, failure: &RemoteError) -> Result<bool, RemoteError> {
            assert!(matches!(failure, RemoteError::Version { .. }), "{failure}");
            self.repaired.fetch_add(1, Ordering::SeqCst);
            match &self.repair_fails {
                Some(why) => Err(RemoteError::Install {
                    name: "far".into(),
                    message: why.clone(),
                }),
                None => Ok(true),
            }
        }
    }

    #[test]
    fn an_endpoint_that_fails_its_hello_is_repaired_and_tried_once_more_only() {
        let (started, repaired) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let launcher = OlderBerth {
            started: started.clone(),
            repaired: repaired.clone(),
            repair_fails: None,
        };
        // Repaired once, started once more, still another version: that is the error.
        let err = RemoteEndpoint::spawn("far", launcher, 1).unwrap_err();
        assert!(matches!(err, RemoteError::Version { .. }), "{err}");
        assert!(
            err.to_string().contains("berth 0.0.1 (protocol 0)"),
            "{err}"
        );
        assert_eq!(
            (
                started.load(Ordering::SeqCst),
                repaired.load(Ordering::SeqCst)
            ),
            (2, 1)
        );
        // A repair that fails says why, and nothing is started again.
        started.store(0, Ordering::SeqCst);
        let launcher = OlderBerth {
            started: started.clone(),
            repaired,
            repair_fails: Some("the disk there is full".into()),
        };
        let err = RemoteEndpoint::spawn("far", launcher, 1).unwrap_err();
        assert!(err.to_string().contains("the disk there is full"), "{err}");
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn garbage_on_the_stream_is_an_error_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // What a shell's greeting or an HTTP request looks like as frames.
        let (_r, w) = pipe().unwrap();
        let err = serve(dir.path(), &b"GET / HTTP/1.1\r\n\r\n"[..], w).unwrap_err();
        assert!(matches!(err, RemoteError::Frame(_)), "{err}");
        let (_r, w) = pipe().unwrap();
        let err =
            RemoteEndpoint::connect("far", &b"Welcome to the machine!\n"[..], w, 1).unwrap_err();
        assert!(matches!(err, RemoteError::NotStarted { .. }), "{err}");
        // A root that is not there is refused after the hello.
        let (from_client, to_endpoint) = pipe().unwrap();
        let (from_endpoint, to_client) = pipe().unwrap();
        let missing = dir.path().join("missing");
        std::thread::spawn(move || serve(&missing, from_client, to_client));
        let err = RemoteEndpoint::connect("far", from_endpoint, to_endpoint, 1).unwrap_err();
        assert!(err.to_string().contains("cannot scan"), "{err}");
    }
}
