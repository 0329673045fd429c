//! The inbox and turns in the store: ordering, idempotency keys, compare-and-swap moves, and a
//! turn's start and end settling its item in the same transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_store::{ItemRecord, NewItem, NewTurn, Store, StoreOptions, Tell, TurnEnd};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("berth.db"), StoreOptions::default()).unwrap()
}

/// The event a new item is told with.
fn told(item: &ItemRecord) -> Tell {
    Tell {
        kind: "inbox.queued",
        subject: item.agent.clone(),
        data: serde_json::json!({ "item": item.id }),
    }
}

fn send(store: &Store, p: i64, text: &str, priority: i64, key: Option<&str>) -> (i64, bool) {
    let (rec, new) = store
        .inbox_send(
            &NewItem {
                project_id: p,
                agent: "a",
                text,
                source: "message",
                priority,
                key,
                now_ms: 1,
            },
            told,
        )
        .unwrap();
    (rec.id, new)
}

fn turn(store: &Store, item: i64) -> Option<berth_store::TurnRecord> {
    store
        .begin_turn(&NewTurn {
            item_id: item,
            trigger: "message",
            mode: "turn",
            started_ms: 2,
            commit_before: Some("c0"),
        })
        .unwrap()
}

fn end(status: &str, item_state: Option<&'static str>) -> TurnEnd<'static> {
    TurnEnd {
        status: if status == "done" { "done" } else { "failed" },
        ended_ms: 3,
        exit_code: Some(if status == "done" { 0 } else { 1 }),
        error: None,
        output: "out",
        commit_after: Some("c1"),
        item_state,
    }
}

#[test]
fn now_first_then_oldest_and_the_delivering_one_before_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let (one, _) = send(&store, p, "one", 0, None);
    let (two, _) = send(&store, p, "two", 0, None);
    let (urgent, _) = send(&store, p, "urgent", 1, None);
    assert_eq!(store.inbox_next(p, "a").unwrap().unwrap().id, urgent);
    // Once `one` is being delivered it stays first, whatever arrives.
    turn(&store, one).unwrap();
    assert_eq!(store.inbox_next(p, "a").unwrap().unwrap().id, one);
    let t = store.last_turn(one).unwrap().unwrap();
    store.end_turn(t.id, &end("done", Some("done"))).unwrap();
    assert_eq!(store.inbox_next(p, "a").unwrap().unwrap().id, urgent);
    let busy = store.inbox_busy_agents().unwrap();
    assert_eq!(busy, vec![(p, "a".to_string())]);
    assert_eq!(store.inbox_item(two).unwrap().unwrap().state, "queued");
}

#[test]
fn a_key_makes_a_repeated_send_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let (first, new) = send(&store, p, "hello", 0, Some("k"));
    assert!(new);
    let (again, new) = send(&store, p, "other text", 0, Some("k"));
    assert!(!new);
    assert_eq!(again, first);
    assert_eq!(store.inbox_item(first).unwrap().unwrap().text, "hello");
    let (other, new) = send(&store, p, "x", 0, Some("k2"));
    assert!(new && other != first);
    // No key: always a new item.
    assert!(send(&store, p, "x", 0, None).1);
    assert!(send(&store, p, "x", 0, None).1);
    assert_eq!(store.inbox_items(p, "a", 10).unwrap().len(), 4);
}

#[test]
fn a_cancelled_item_is_never_delivered_and_a_delivering_one_never_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let (one, _) = send(&store, p, "one", 0, None);
    let (rec, moved) = store
        .inbox_move(one, "queued", "cancelled", 5)
        .unwrap()
        .unwrap();
    assert!(moved);
    assert_eq!(rec.state, "cancelled");
    assert!(turn(&store, one).is_none(), "a cancelled item gets no turn");
    assert!(store.last_turn(one).unwrap().is_none());
    let (two, _) = send(&store, p, "two", 0, None);
    turn(&store, two).unwrap();
    let (rec, moved) = store
        .inbox_move(two, "queued", "cancelled", 5)
        .unwrap()
        .unwrap();
    assert!(!moved);
    assert_eq!(rec.state, "delivering");
}

#[test]
fn attempts_count_and_an_ended_turn_is_never_ended_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let (one, _) = send(&store, p, "one", 0, None);
    let t1 = turn(&store, one).unwrap();
    assert_eq!(t1.attempt, 1);
    store.end_turn(t1.id, &end("failed", None)).unwrap();
    assert_eq!(store.inbox_item(one).unwrap().unwrap().state, "delivering");
    let t2 = turn(&store, one).unwrap();
    assert_eq!(t2.attempt, 2);
    let ended = store
        .end_turn(t2.id, &end("failed", Some("failed")))
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, "failed");
    assert_eq!(ended.commit_after.as_deref(), Some("c1"));
    // Ending it again (a recovery that raced) changes nothing.
    let again = store
        .end_turn(t2.id, &end("done", Some("done")))
        .unwrap()
        .unwrap();
    assert_eq!(again.status, "failed");
    assert_eq!(store.inbox_item(one).unwrap().unwrap().state, "failed");
    assert_eq!(store.inbox_item(one).unwrap().unwrap().attempts, 2);
    let turns = store.turns(p, "a", 10).unwrap();
    assert_eq!(
        turns.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t1.id, t2.id]
    );
}

#[test]
fn removing_an_agent_cancels_what_it_had_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let (one, _) = send(&store, p, "one", 0, None);
    let (two, _) = send(&store, p, "two", 0, None);
    turn(&store, one).unwrap();
    assert_eq!(store.inbox_cancel_all(p, "a", 9).unwrap(), vec![two]);
    assert_eq!(store.inbox_item(one).unwrap().unwrap().state, "delivering");
}

/// The store takes an agent's next item as `berth_core::inbox::order` says (`now` first, then
/// oldest), whatever the mix; and the one being delivered before all.
#[test]
fn the_next_item_is_the_one_the_core_order_puts_first() {
    use berth_core::inbox::{Priority, order};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    // A fixed pseudo-random mix of priorities.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut queued: Vec<(Priority, i64)> = Vec::new();
    for n in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let priority = if x.is_multiple_of(3) {
            Priority::Now
        } else {
            Priority::Normal
        };
        let (id, _) = send(&store, p, &format!("m{n}"), priority.rank(), None);
        queued.push((priority, id));
        if n % 7 == 6 {
            // Deliver the first by the core's order; the store must agree.
            let first = *queued.iter().min_by_key(|(p, id)| order(*p, *id)).unwrap();
            let next = store.inbox_next(p, "a").unwrap().unwrap();
            assert_eq!(next.id, first.1);
            let t = turn(&store, next.id).unwrap();
            assert_eq!(store.inbox_next(p, "a").unwrap().unwrap().id, next.id);
            store.end_turn(t.id, &end("done", Some("done"))).unwrap();
            queued.retain(|q| q.1 != first.1);
        }
    }
}

#[test]
fn a_send_returns_the_item_as_stored_and_tells_of_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut live = store.subscribe();
    let p = store.project_id("/r", 0).unwrap();
    for key in [None, Some("k")] {
        let (sent, new) = store
            .inbox_send(
                &NewItem {
                    project_id: p,
                    agent: "a",
                    text: "hello",
                    source: "timer",
                    priority: 1,
                    key,
                    now_ms: 42,
                },
                told,
            )
            .unwrap();
        assert!(new);
        let stored = store.inbox_item(sent.id).unwrap();
        assert_eq!(Some(sent.clone()), stored);
        // Its event is in the log and was sent live.
        let event = live.try_recv().unwrap();
        assert_eq!(
            (event.kind.as_str(), event.subject.as_deref()),
            ("inbox.queued", Some("a"))
        );
        assert_eq!(event.data["item"], sent.id);
        assert_eq!(store.events_since(event.seq - 1, 10).unwrap(), [event]);
    }
    // A repeated key queues nothing and tells nothing.
    let last = store.last_seq().unwrap();
    assert!(!send(&store, p, "again", 0, Some("k")).1);
    assert_eq!(store.last_seq().unwrap(), last);
    assert!(live.try_recv().is_err());
}
