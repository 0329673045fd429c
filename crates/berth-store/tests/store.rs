//! The store against real SQLite files in temporary directories.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use berth_store::{SCHEMA_VERSION, Store, StoreError, StoreOptions};
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

fn open(dir: &tempfile::TempDir, options: StoreOptions) -> Store {
    Store::open(&dir.path().join("state/berth.db"), options).unwrap()
}

#[test]
fn sequence_numbers_increase_by_one_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    assert_eq!(store.last_seq().unwrap(), 0);
    assert_eq!(store.first_seq().unwrap(), None);
    for i in 1..=5u64 {
        let ev = store
            .append("test.tick", Some("a"), json!({ "i": i }))
            .unwrap();
        assert_eq!(ev.seq, i);
    }
    drop(store);
    let store = open(&dir, StoreOptions::default());
    assert_eq!(store.last_seq().unwrap(), 5);
    assert_eq!(store.append("test.tick", None, json!(null)).unwrap().seq, 6);
    let all = store.events_since(0, 100).unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all[0].subject.as_deref(), Some("a"));
    assert_eq!(all[0].data, json!({ "i": 1 }));
    assert_eq!(all[5].subject, None);
}

#[test]
fn events_since_pages_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    for _ in 0..10 {
        store.append("k", None, json!({})).unwrap();
    }
    let page = store.events_since(3, 4).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert!(store.events_since(10, 4).unwrap().is_empty());
}

#[test]
fn retention_deletes_old_rows_but_never_reuses_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        retain_events: 3,
        ..StoreOptions::default()
    };
    let store = open(&dir, options.clone());
    for _ in 0..10 {
        store.append("k", None, json!({})).unwrap();
    }
    assert_eq!(store.prune().unwrap(), 7);
    assert_eq!(store.first_seq().unwrap(), Some(8));
    assert_eq!(store.last_seq().unwrap(), 10);
    drop(store);
    let store = open(&dir, options);
    assert_eq!(store.last_seq().unwrap(), 10);
    assert_eq!(store.append("k", None, json!({})).unwrap().seq, 11);
    let seqs: Vec<u64> = store
        .events_since(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [8, 9, 10, 11]);
}

#[test]
fn a_newer_schema_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/berth.db");
    drop(Store::open(&path, StoreOptions::default()).unwrap());
    let newer = SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    match Store::open(&path, StoreOptions::default()) {
        Err(StoreError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "file bytes unchanged"
    );
    assert!(matches!(
        Store::inspect(&path),
        Err(StoreError::NewerSchema { .. })
    ));
}

#[test]
fn inspect_tells_missing_garbage_and_good_files_apart_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    assert!(matches!(
        Store::inspect(&missing),
        Err(StoreError::Missing { .. })
    ));
    assert!(!missing.exists(), "inspect never creates");

    let garbage = dir.path().join("garbage.db");
    let bytes = b"not a database at all, just some bytes that go on for a while...".repeat(100);
    std::fs::write(&garbage, &bytes).unwrap();
    let err = Store::inspect(&garbage).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("berth doctor"));
    assert_eq!(std::fs::read(&garbage).unwrap(), bytes);

    let good = dir.path().join("state/berth.db");
    drop(Store::open(&good, StoreOptions::default()).unwrap());
    let info = Store::inspect(&good).unwrap();
    assert_eq!(
        (info.version, info.supported),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
}

#[test]
fn the_broadcast_delivers_appends_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let mut rx = store.subscribe();
    for _ in 0..5 {
        store.append("k", None, json!({})).unwrap();
    }
    let seqs: Vec<u64> = (0..5).map(|_| rx.try_recv().unwrap().seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn a_lagging_receiver_catches_up_from_the_store_with_nothing_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        StoreOptions {
            broadcast_capacity: 4,
            ..StoreOptions::default()
        },
    );
    let mut rx = store.subscribe();
    for _ in 0..20 {
        store.append("k", None, json!({})).unwrap();
    }
    let mut seen = Vec::new();
    let mut last = 0;
    let mut lagged = false;
    loop {
        match rx.try_recv() {
            Ok(ev) if ev.seq == last + 1 => {
                last = ev.seq;
                seen.push(ev.seq);
            }
            Ok(_) => {}
            Err(TryRecvError::Lagged(_)) => {
                lagged = true;
                for ev in store.events_since(last, 100).unwrap() {
                    last = ev.seq;
                    seen.push(ev.seq);
                }
            }
            Err(_) => break,
        }
    }
    assert!(lagged, "a capacity-4 receiver behind by 20 must lag");
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
}

#[test]
fn concurrent_appends_get_unique_contiguous_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| store.append("k", None, json!({})).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: BTreeSet<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(all, (1..=200).collect());
}

#[test]
fn concurrent_appends_are_broadcast_in_sequence_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let mut rx = store.subscribe();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    store.append("k", None, json!({})).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seqs: Vec<u64> = (0..200).map(|_| rx.try_recv().unwrap().seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
}

#[test]
fn retention_runs_by_itself_every_thousand_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        StoreOptions {
            retain_events: 10,
            ..StoreOptions::default()
        },
    );
    for _ in 0..999 {
        store.append("k", None, json!({})).unwrap();
    }
    assert_eq!(store.first_seq().unwrap(), Some(1), "not yet due");
    store.append("k", None, json!({})).unwrap();
    assert_eq!(store.first_seq().unwrap(), Some(991));
    assert_eq!(store.last_seq().unwrap(), 1000);
}

#[test]
fn open_creates_missing_directories_and_the_database_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    store.append("k", None, json!({})).unwrap();
    let state = dir.path().join("state");
    let mode = |name: &str| {
        std::fs::metadata(state.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(store.path(), state.join("berth.db"));
    for file in ["berth.db", "berth.db-wal", "berth.db-shm"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[test]
fn checkpoint_leaves_the_database_file_complete_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    for _ in 0..10 {
        store.append("k", None, json!({ "x": 1 })).unwrap();
    }
    let wal = dir.path().join("state/berth.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    store.checkpoint().unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    // A copy of the main file alone holds every event.
    let copy = dir.path().join("copy/berth.db");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    std::fs::copy(store.path(), &copy).unwrap();
    let copy = Store::open(&copy, StoreOptions::default()).unwrap();
    assert_eq!(copy.last_seq().unwrap(), 10);
    assert_eq!(copy.events_since(0, 100).unwrap().len(), 10);
}

#[test]
fn open_refuses_a_file_that_is_not_a_database_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/berth.db");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    let bytes = b"not a db ".repeat(1000);
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn snapshots_are_recorded_listed_and_ended() {
    use berth_proto::{SnapshotInfo, SnapshotMeta};
    use berth_store::SnapshotState;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let info = |id: &str, time_ms| SnapshotInfo {
        meta: SnapshotMeta {
            id: id.into(),
            branch: Some("refs/heads/main".into()),
            head: None,
            time_ms,
            reason: "test".into(),
            message: Some("m".into()),
            pairing: None,
        },
        repo: "/r".into(),
        commit: "c".repeat(40),
        warnings: vec!["w".into()],
        recorded: true,
    };
    store.record_snapshot(&info("b", 2)).unwrap();
    store.record_snapshot(&info("a", 1)).unwrap();
    let ids: Vec<String> = store
        .snapshots("/r")
        .unwrap()
        .into_iter()
        .map(|(i, _)| i.meta.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(store.snapshots("/other").unwrap().is_empty());
    assert!(
        store
            .end_snapshot("/r", "a", SnapshotState::Restored, 5)
            .unwrap()
    );
    assert!(
        !store
            .end_snapshot("/r", "zzz", SnapshotState::Dropped, 5)
            .unwrap()
    );
    let (a, state) = store.snapshot("/r", "a").unwrap().unwrap();
    assert_eq!(state, SnapshotState::Restored);
    assert_eq!(a.warnings, ["w"]);
    assert_eq!(
        store.snapshot("/r", "b").unwrap().unwrap(),
        (info("b", 2), SnapshotState::Kept)
    );
}

#[test]
fn projects_register_once_and_agents_round_trip() {
    use berth_store::AgentRecord;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let p = store.project_id("/repo", 1).unwrap();
    assert_eq!(store.project_id("/repo", 2).unwrap(), p);
    let q = store.project_id("/other", 3).unwrap();
    assert_ne!(p, q);
    let a = AgentRecord {
        kind: "agent".into(),
        stop_signal: "SIGTERM".into(),
        stop_grace_ms: 10_000,
        project_id: p,
        project_root: "/repo".into(),
        name: "fixer".into(),
        command: Some("sleep 1".into()),
        base: "b".repeat(40),
        restart: "on-failure".into(),
        env: [("K".to_string(), "V".to_string())].into(),
        ready: Some("tcp:127.0.0.1:1".into()),
        liveness: None,
        workspace: "/ws/fixer".into(),
        desired_running: false,
        created_ms: 5,
        tty: false,
        scrollback: None,
        turn: Some("cat >> seen".into()),
        turn_timeout_ms: Some(60_000),
        remote: Some("ssh://box/srv/fixer".into()),
    };
    store.put_agent(&a).unwrap();
    // Putting it again updates its definition but never its workspace.
    let changed = AgentRecord {
        command: Some("sleep 2".into()),
        workspace: "/elsewhere".into(),
        tty: true,
        scrollback: Some(500),
        ..a.clone()
    };
    store.put_agent(&changed).unwrap();
    let got = store.agent(p, "fixer").unwrap().unwrap();
    assert_eq!(got.command.as_deref(), Some("sleep 2"));
    assert_eq!(got.workspace, "/ws/fixer");
    assert!(
        got.tty,
        "whether it runs under a terminal is part of the definition"
    );
    assert_eq!(got.scrollback, Some(500), "and so is its scrollback");
    store.put_agent(&a).unwrap();
    let other = AgentRecord {
        project_id: q,
        project_root: "/other".into(),
        ..a.clone()
    };
    store.put_agent(&other).unwrap();
    assert_eq!(store.agent(p, "fixer").unwrap(), Some(a.clone()));
    store.set_desired(p, "fixer", true).unwrap();
    assert!(store.agent(p, "fixer").unwrap().unwrap().desired_running);
    assert_eq!(store.agents(Some(p)).unwrap().len(), 1);
    assert_eq!(store.agents(None).unwrap().len(), 2);
    assert_eq!(store.agent(p, "nobody").unwrap(), None);
}

#[test]
fn sync_ancestors_are_updated_per_path_kept_per_link_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir, StoreOptions::default());
        assert!(!store.has_ancestor("one").unwrap());
        store
            .update_ancestor(
                "one",
                [
                    (&b"a"[..], Some(b"d".to_vec())),
                    (&b"a/\xff"[..], Some(b"f1".to_vec())),
                ],
            )
            .unwrap();
        store
            .update_ancestor("two", [(&b"a"[..], Some(b"x".to_vec()))])
            .unwrap();
        store
            .update_ancestor(
                "one",
                [(&b"a/\xff"[..], None), (&b"b"[..], Some(b"l".to_vec()))],
            )
            .unwrap();
    }
    let store = open(&dir, StoreOptions::default());
    let mut rows = store.ancestor("one").unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            (b"a".to_vec(), b"d".to_vec()),
            (b"b".to_vec(), b"l".to_vec())
        ]
    );
    store.drop_ancestor("one").unwrap();
    assert!(store.ancestor("one").unwrap().is_empty());
    assert_eq!(store.ancestor("two").unwrap().len(), 1);
}

#[test]
fn pending_writes_replace_the_last_rounds_and_go_with_the_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    store
        .record_pending(
            "one",
            [(&b"a"[..], 0, Some(b"f1".to_vec())), (&b"b"[..], 1, None)],
        )
        .unwrap();
    store.record_pending("two", [(&b"c"[..], 1, None)]).unwrap();
    let mut rows = store.pending("one").unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            (b"a".to_vec(), 0, Some(b"f1".to_vec())),
            (b"b".to_vec(), 1, None)
        ]
    );
    // The next round's replace the last round's.
    store
        .record_pending("one", [(&b"z"[..], 1, Some(b"d".to_vec()))])
        .unwrap();
    assert_eq!(store.pending("one").unwrap().len(), 1);
    store.clear_pending("one").unwrap();
    assert!(store.pending("one").unwrap().is_empty());
    store.drop_ancestor("two").unwrap();
    assert!(store.pending("two").unwrap().is_empty());
}

fn pairing(id: &str, project: &str, agent: &str, at: i64) -> berth_store::PairingRecord {
    berth_store::PairingRecord {
        id: id.into(),
        project_root: project.into(),
        agent: agent.into(),
        state: r#"{"state":"starting","step":"validate","carried":false,"stop_requested":false}"#
            .into(),
        original_branch: Some("main".into()),
        original_head: Some("a".repeat(40)),
        mirror_before: None,
        snapshot: None,
        created_ms: at,
        updated_ms: at,
        ended_ms: None,
    }
}

#[test]
fn a_project_has_at_most_one_open_pairing_and_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let p1 = pairing("p1", "/repo", "fixer", 10);
    assert!(store.create_pairing(&p1).unwrap());
    assert!(
        !store
            .create_pairing(&pairing("p2", "/repo", "other", 11))
            .unwrap(),
        "the project is busy"
    );
    assert!(
        store
            .create_pairing(&pairing("p3", "/elsewhere", "fixer", 12))
            .unwrap()
    );
    assert_eq!(store.pairing("p2").unwrap(), None);
    assert_eq!(store.open_pairing("/repo").unwrap(), Some(p1.clone()));

    let mut p1b = p1.clone();
    p1b.snapshot = Some("20261122-abc".into());
    p1b.mirror_before = Some("b".repeat(40));
    p1b.state = r#"{"state":"active","activity":"idle"}"#.into();
    p1b.updated_ms = 20;
    assert!(store.update_pairing(&p1b).unwrap());
    assert_eq!(store.pairing("p1").unwrap(), Some(p1b.clone()));
    assert!(
        store
            .set_pairing_state("p1", r#"{"state":"paused","notices":[]}"#, 25)
            .unwrap()
    );
    assert_eq!(store.pairing("p1").unwrap().unwrap().updated_ms, 25);
    assert!(!store.set_pairing_state("nope", "{}", 25).unwrap());

    // Not JSON is refused before anything is written.
    let err = store.set_pairing_state("p1", "{not json", 26).unwrap_err();
    assert!(matches!(err, StoreError::BadData { .. }), "{err:?}");

    assert!(store.end_pairing("p1", r#"{"state":"off"}"#, 30).unwrap());
    assert!(!store.end_pairing("p1", r#"{"state":"off"}"#, 31).unwrap());
    let ended = store.pairing("p1").unwrap().unwrap();
    assert_eq!(
        (ended.ended_ms, ended.state.as_str()),
        (Some(30), r#"{"state":"off"}"#)
    );
    assert_eq!(store.open_pairing("/repo").unwrap(), None);
    // Once it ended, the project can pair again.
    assert!(
        store
            .create_pairing(&pairing("p2", "/repo", "other", 40))
            .unwrap()
    );
    let ids: Vec<String> = store
        .pairings("/repo")
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["p1", "p2"]);
    let open: Vec<String> = store
        .open_pairings()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(open, ["p3", "p2"]);
}

#[test]
fn a_switch_hands_over_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let mut old = pairing("p1", "/repo", "fixer", 10);
    old.snapshot = Some("s1".into());
    store.create_pairing(&old).unwrap();
    let new = berth_store::PairingRecord {
        agent: "other".into(),
        ..pairing("p2", "/repo", "other", 50)
    };
    let new = berth_store::PairingRecord {
        snapshot: old.snapshot.clone(),
        ..new
    };
    assert!(
        !store
            .hand_over_pairing("nope", r#"{"state":"off"}"#, &new)
            .unwrap()
    );
    assert!(
        store
            .hand_over_pairing("p1", r#"{"state":"off"}"#, &new)
            .unwrap()
    );
    assert_eq!(store.pairing("p1").unwrap().unwrap().ended_ms, Some(50));
    let open = store.open_pairing("/repo").unwrap().unwrap();
    assert_eq!(
        (open.id.as_str(), open.snapshot.as_deref()),
        ("p2", Some("s1"))
    );
    // A handover whose new record cannot be written changes nothing.
    let clash = pairing("p2", "/repo", "third", 60);
    assert!(
        store
            .hand_over_pairing("p2", r#"{"state":"off"}"#, &clash)
            .is_err()
    );
    assert_eq!(store.open_pairing("/repo").unwrap().unwrap().ended_ms, None);
}

#[test]
fn the_intent_journal_is_append_only_and_ordered_per_pairing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    store.create_pairing(&pairing("p1", "/a", "x", 1)).unwrap();
    store.create_pairing(&pairing("p2", "/b", "y", 1)).unwrap();
    let mut seqs = Vec::new();
    for (i, p) in ["p1", "p2", "p1", "p1"].iter().enumerate() {
        let intent = format!(r#"{{"state":{{"state":"starting","n":{i}}}}}"#);
        let seq = store.append_intent(p, &intent, i as i64).unwrap();
        seqs.push(seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert!(store.mark_intent_done(1, 10).unwrap());
    assert!(!store.mark_intent_done(1, 11).unwrap(), "done once");
    assert!(!store.mark_intent_done(99, 11).unwrap());
    let j = store.journal("p1").unwrap();
    assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(j[0].done_ms, Some(10));
    assert!(j[0].done() && !j[1].done());
    assert!(j[2].intent.contains(r#""n":3"#));
    assert_eq!(store.journal("p2").unwrap().len(), 1);
    assert_eq!(store.last_intent("p1").unwrap().unwrap().seq, 4);
    assert_eq!(store.last_intent("none").unwrap(), None);
    // An intent for a pairing that does not exist, or that is not JSON, is refused.
    assert!(store.append_intent("ghost", "{}", 5).is_err());
    assert!(matches!(
        store.append_intent("p1", "nope", 5),
        Err(StoreError::BadData { .. })
    ));
    assert_eq!(store.journal("p1").unwrap().len(), 3);
    // The next number is still the next one.
    assert_eq!(store.append_intent("p2", "{}", 6).unwrap(), 5);
}

#[test]
fn an_unfinished_intent_is_found_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let step = |s: &str| format!(r#"{{"state":{{"state":"starting","step":"{s}"}}}}"#);
    {
        let store = open(&dir, StoreOptions::default());
        store
            .create_pairing(&pairing("p1", "/repo", "fixer", 1))
            .unwrap();
        for (i, s) in ["validate", "snapshot"].iter().enumerate() {
            let seq = store.append_intent("p1", &step(s), i as i64).unwrap();
            assert_eq!(store.unfinished_intent("p1").unwrap().unwrap().seq, seq);
            store.mark_intent_done(seq, i as i64).unwrap();
        }
        assert_eq!(store.unfinished_intent("p1").unwrap(), None);
        store
            .append_intent("p1", &step("mirror_branch"), 5)
            .unwrap();
        // The daemon dies here: the store is dropped without marking it done.
    }
    let store = open(&dir, StoreOptions::default());
    let open_pairings = store.open_pairings().unwrap();
    assert_eq!(open_pairings.len(), 1);
    let unfinished = store.unfinished_intent("p1").unwrap().unwrap();
    assert_eq!(unfinished.seq, 3);
    assert_eq!(unfinished.intent, step("mirror_branch"));
    assert!(!unfinished.done());
    assert_eq!(store.last_intent("p1").unwrap(), Some(unfinished.clone()));
    // Recovery appends its own intents after it; nothing before is rewritten.
    let undo = store
        .append_intent("p1", r#"{"state":{"state":"rolling_back"}}"#, 9)
        .unwrap();
    assert_eq!(undo, 4);
    let j = store.journal("p1").unwrap();
    assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(
        j[..3].iter().map(|e| e.done()).collect::<Vec<_>>(),
        [true, true, false]
    );
}

/// A database at `path` with every migration applied before the one whose SQL contains
/// `marker`: what an older berth left behind.
fn migrated_up_to(path: &std::path::Path, marker: &str) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let before = berth_store::migrations::MIGRATIONS
        .iter()
        .position(|sql| sql.contains(marker))
        .unwrap();
    for (i, sql) in berth_store::migrations::MIGRATIONS[..before]
        .iter()
        .enumerate()
    {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", (i + 1) as u32)
            .unwrap();
        tx.commit().unwrap();
    }
    conn
}

#[test]
fn the_pairing_tables_are_added_to_an_existing_database() {
    // A database at the previous schema version keeps its rows and gains the pairing tables.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/berth.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = migrated_up_to(&path, "CREATE TABLE pairings");
        conn.execute(
            "INSERT INTO events (time_ms, kind, data) VALUES (1, 'old', '{}')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.last_seq().unwrap(), 1);
    assert!(
        store
            .create_pairing(&pairing("p1", "/repo", "fixer", 1))
            .unwrap()
    );
    assert_eq!(Store::inspect(&path).unwrap().version, SCHEMA_VERSION);
}

#[test]
fn agents_defined_before_terminals_existed_are_not_terminal_agents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/berth.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = migrated_up_to(&path, "ADD COLUMN tty");
        conn.execute_batch(
            "INSERT INTO projects (root, created_ms) VALUES ('/repo', 1);
             INSERT INTO agents (project_id, name, command, base, restart, workspace, created_ms)
             VALUES (1, 'old', 'sleep 1', 'b', 'no', '/ws/old', 2);",
        )
        .unwrap();
    }
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let old = store.agent(1, "old").unwrap().unwrap();
    assert!(!old.tty);
    assert_eq!(old.scrollback, None, "the default scrollback");
    assert_eq!(old.command.as_deref(), Some("sleep 1"));
}

#[test]
fn exclude_lines_are_left_over_only_once_their_project_has_no_open_pairing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreOptions::default());
    let line = |path: &str, project: &str| berth_store::ExcludeLine {
        path: path.into(),
        project: project.into(),
        created: false,
        separator: true,
        added_ms: 7,
    };
    store
        .create_pairing(&pairing("p1", "/repo", "fixer", 1))
        .unwrap();
    for l in [
        line("/repo/.git/info/exclude", "/repo"),
        line("/ws/fixer/.git/info/exclude", "/repo"),
        line("/other/.git/info/exclude", "/other"),
    ] {
        store.record_exclude_line(&l).unwrap();
    }
    // Recorded again (added anew after it was taken out): still one row.
    store
        .record_exclude_line(&line("/other/.git/info/exclude", "/other"))
        .unwrap();
    assert_eq!(store.exclude_lines("/repo").unwrap().len(), 2);
    let left: Vec<_> = store
        .leftover_exclude_lines()
        .unwrap()
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(left, ["/other/.git/info/exclude"], "/repo is still paired");
    store.end_pairing("p1", r#"{"state":"off"}"#, 9).unwrap();
    assert_eq!(store.leftover_exclude_lines().unwrap().len(), 3);
    assert_eq!(
        store.exclude_lines("/repo").unwrap()[0],
        line("/repo/.git/info/exclude", "/repo")
    );
    for l in store.leftover_exclude_lines().unwrap() {
        store.forget_exclude_line(&l.path).unwrap();
    }
    assert!(store.leftover_exclude_lines().unwrap().is_empty());
}
