//! The event stream against an in-process daemon: real socket, real SQLite, real HTTP.
//!
//! In-process so the test can append events straight into the daemon's own store (its live
//! broadcast included) while clients subscribe, disconnect and read slowly over the socket.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use berth_client::{Client, EventStream, StreamItem};
use berth_core::config::ServeConfig;
use berth_daemon::state::Shared;
use berth_daemon::{ServeOptions, launch};
use serde_json::json;

struct InProcess {
    _home: tempfile::TempDir,
    shared: Arc<Shared>,
    client: Client,
    run: tokio::task::JoinHandle<Result<(), berth_daemon::ServeError>>,
}

async fn daemon() -> InProcess {
    let home = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        config: ServeConfig::new(home.path()),
        token: None,
        ready_fd: None,
        log_to_stderr: false,
        stderr_is_log: false,
    };
    let d = launch(opts, &mut None).await.unwrap();
    let shared = d.shared().clone();
    let client = Client::unix(home.path().join("run/berth.sock"));
    InProcess {
        _home: home,
        shared,
        client,
        run: tokio::spawn(d.run_until_stopped()),
    }
}

impl InProcess {
    fn append(&self, n: usize) {
        let store = &self.shared.services().unwrap().store;
        for i in 0..n {
            store
                .append("test.event", Some("t"), json!({ "i": i }))
                .unwrap();
        }
    }

    async fn stop(self) {
        self.shared
            .advance(berth_core::lifecycle::Input::ShutdownRequested)
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Reads events until `last` has been seen; returns their sequence numbers.
async fn read_until(stream: &mut EventStream, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        match item {
            StreamItem::Event(ev) => seqs.push(ev.seq),
            StreamItem::Gap { .. } => panic!("unexpected gap"),
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_disconnects_and_resumes_sees_every_event_exactly_once() {
    let d = daemon().await;
    // Event 1 is daemon.ready; 2..=101 are ours.
    d.append(100);
    let mut stream = d.client.subscribe(0).await.unwrap();
    let mut seen = read_until(&mut stream, 40).await;
    drop(stream);
    // Written while nobody listens: replayed from the store on resume.
    d.append(100);
    let mut resumed = d.client.subscribe(*seen.last().unwrap()).await.unwrap();
    seen.extend(read_until(&mut resumed, 201).await);
    // And live events after the replay arrive on the same stream.
    d.append(10);
    seen.extend(read_until(&mut resumed, 211).await);
    assert_eq!(seen, (1..=211).collect::<Vec<_>>());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_resumed_from_the_store_never_skipped() {
    let d = daemon().await;
    let mut stream = d.client.subscribe(0).await.unwrap();
    assert_eq!(read_until(&mut stream, 1).await, [1]);
    // Far more than the broadcast (1024) and the per-client queue hold, while the client does
    // not read: the feed lags and must fill the gap from the store.
    let writer = {
        let store = d.shared.services().unwrap().store.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..5000 {
                store.append("test.burst", None, json!({ "i": i })).unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.await.unwrap();
    let seqs = read_until(&mut stream, 5001).await;
    assert_eq!(seqs, (2..=5001).collect::<Vec<_>>());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pages_and_a_subscription_resumes_after_the_given_event() {
    let d = daemon().await;
    d.append(5);
    let resp = d
        .client
        .request(hyper::Method::GET, "/v1/events/log?since=3", None)
        .await
        .unwrap();
    let page: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6]);
    assert_eq!(page["last_seq"], 6);
    // `subscribe` resumes with Last-Event-ID: only what came after event 4.
    let mut stream = d.client.subscribe(4).await.unwrap();
    assert_eq!(read_until(&mut stream, 6).await, [5, 6]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_instead_of_hanging() {
    let d = daemon().await;
    let mut stream = d.client.subscribe(0).await.unwrap();
    assert_eq!(read_until(&mut stream, 1).await, [1]);
    let began = std::time::Instant::now();
    d.stop().await;
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "took {:?}",
        began.elapsed()
    );
    // Whatever was queued (daemon.stopping) may still arrive; then the stream ends.
    while let Some(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {}
}
