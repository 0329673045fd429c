//! Timers and webhooks in the store: a fire moves its timer on and queues its item in one
//! transaction, once; hooks are unique per agent and name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_store::{HookRecord, ItemRecord, NewItem, Store, StoreOptions, Tell, TimerRecord};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("berth.db"), StoreOptions::default()).unwrap()
}

fn new_timer(p: i64, next_ms: Option<i64>) -> TimerRecord {
    TimerRecord {
        id: 0,
        project_id: p,
        agent: "a".into(),
        agent_created_ms: 5,
        kind: "every".into(),
        spec: "10s".into(),
        zone: "UTC".into(),
        message: "tick".into(),
        anchor_ms: 0,
        next_ms,
        fired: 0,
        last_fired_ms: None,
        created_ms: 0,
    }
}

/// The event a new item is told with.
fn told(item: &ItemRecord) -> Tell {
    Tell {
        kind: "inbox.queued",
        subject: item.agent.clone(),
        data: serde_json::json!({ "item": item.id }),
    }
}

/// The items the event log told of, oldest first.
fn told_items(store: &Store) -> Vec<i64> {
    store
        .events_since(0, 100)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "inbox.queued")
        .map(|e| e.data["item"].as_i64().unwrap())
        .collect()
}

fn item<'a>(p: i64, key: &'a str, now_ms: i64) -> NewItem<'a> {
    NewItem {
        project_id: p,
        agent: "a",
        text: "tick",
        source: "timer",
        priority: 0,
        key: Some(key),
        now_ms,
    }
}

#[test]
fn a_fire_queues_once_and_moves_the_timer_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let t = store.timer_add(&new_timer(p, Some(10_000))).unwrap();
    assert_eq!(store.timers_earliest().unwrap(), Some(10_000));
    assert!(store.timers_due(9_999).unwrap().is_empty());
    assert_eq!(store.timers_due(10_000).unwrap()[0].id, t.id);

    let (rec, new) = store
        .timer_fire(
            t.id,
            10_000,
            Some(20_000),
            &item(p, "timer:1:10000", 10_005),
            told,
        )
        .unwrap()
        .unwrap();
    assert!(new);
    assert_eq!(rec.source, "timer");
    assert_eq!(
        told_items(&store),
        [rec.id],
        "the item is told of with its fire"
    );
    let after = store.timer(t.id).unwrap().unwrap();
    assert_eq!(
        (after.next_ms, after.fired, after.last_fired_ms),
        (Some(20_000), 1, Some(10_005))
    );
    // The same fire again (a second loop, a stale read): the timer moved on, nothing queued.
    assert!(
        store
            .timer_fire(
                t.id,
                10_000,
                Some(20_000),
                &item(p, "timer:1:10000", 10_006),
                told,
            )
            .unwrap()
            .is_none()
    );
    assert_eq!(store.inbox_items(p, "a", 10).unwrap().len(), 1);
    // A fire whose item was queued already (its key seen) still moves the timer on.
    let (seen, _) = store
        .inbox_send(&item(p, "timer:1:20000", 20_001), told)
        .unwrap();
    let (_, new) = store
        .timer_fire(t.id, 20_000, None, &item(p, "timer:1:20000", 20_002), told)
        .unwrap()
        .unwrap();
    assert!(!new);
    assert_eq!(store.inbox_items(p, "a", 10).unwrap().len(), 2);
    assert_eq!(
        told_items(&store),
        [rec.id, seen.id],
        "an item already there is not told of again"
    );
    assert_eq!(
        store.timers_earliest().unwrap(),
        None,
        "it will not fire again"
    );
    assert_eq!(store.timers(p, Some("a")).unwrap().len(), 1);
    assert_eq!(store.timer_remove(t.id).unwrap().unwrap().id, t.id);
    assert!(store.timer_remove(t.id).unwrap().is_none());
}

#[test]
fn hooks_are_unique_per_agent_and_name_and_found_by_name_across_projects() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    let q = store.project_id("/s", 0).unwrap();
    let hook = |project_id, secret: &str| HookRecord {
        project_id,
        agent: "a".into(),
        name: "ci".into(),
        agent_created_ms: 5,
        secret: secret.into(),
        template: None,
        created_ms: 0,
    };
    assert!(store.hook_add(&hook(p, "s1")).unwrap());
    assert!(
        !store.hook_add(&hook(p, "s2")).unwrap(),
        "one per agent and name"
    );
    assert!(store.hook_add(&hook(q, "s3")).unwrap());
    let named = store.hooks_named("a", "ci").unwrap();
    assert_eq!(
        named.iter().map(|h| h.secret.as_str()).collect::<Vec<_>>(),
        ["s1", "s3"]
    );
    assert_eq!(store.hooks(p, None).unwrap().len(), 1);
    assert!(store.hook_remove(p, "a", "ci").unwrap());
    assert!(!store.hook_remove(p, "a", "ci").unwrap());
}

#[test]
fn removing_an_agent_removes_its_timers_and_hooks_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let p = store.project_id("/r", 0).unwrap();
    store.timer_add(&new_timer(p, Some(1))).unwrap();
    let mut other = new_timer(p, Some(1));
    other.agent = "b".into();
    store.timer_add(&other).unwrap();
    let hook = |agent: &str| HookRecord {
        project_id: p,
        agent: agent.into(),
        name: "ci".into(),
        agent_created_ms: 5,
        secret: "s".into(),
        template: None,
        created_ms: 0,
    };
    store.hook_add(&hook("a")).unwrap();
    store.hook_add(&hook("b")).unwrap();
    store.remove_agent(p, "a").unwrap();
    assert!(store.timers(p, Some("a")).unwrap().is_empty());
    assert!(store.hooks(p, Some("a")).unwrap().is_empty());
    assert_eq!(store.timers(p, Some("b")).unwrap().len(), 1);
    assert_eq!(store.hooks(p, Some("b")).unwrap().len(), 1);
}
