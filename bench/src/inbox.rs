//! The inbox benchmark (SPEC §10.2): `berth send`'s round trip over the Unix socket, the time
//! from a send to its turn's process starting, messages stored per second by 20 concurrent
//! clients, a webhook's verify + queue over TCP, and the load check — 10,000 messages from 20
//! concurrent clients to 10 turn agents, each delivered exactly once and in per-agent order
//! (checked against what the turns themselves received).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_client::Client;
use serde_json::{Value, json};

use crate::machine;
use crate::stats::{Summary, ms};
use crate::supervisor::empty_project;

const SENDS: usize = 2_000;
const STARTS: usize = 100;
const STORED: usize = 10_000;
const CLIENTS: usize = 20;
const HOOKS: usize = 1_000;
const LOAD_AGENTS: usize = 10;
const LOAD_MESSAGES: usize = 10_000;

struct Bench {
    bin: PathBuf,
    home: PathBuf,
    repo: PathBuf,
    client: Client,
    gate: PathBuf,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Bench {
    fn berth(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .env("BERTH_HOME", &self.home)
            .current_dir(&self.repo)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(err)?;
        if !out.status.success() {
            return Err(format!(
                "berth {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn turn_agent(&self, name: &str, turn: &str) -> Result<(), String> {
        self.berth(&["agent", "new", name, "--turn", turn])
            .map(drop)
    }

    /// A turn agent whose first turn waits at the gate: everything sent to it stays queued.
    fn gated_agent(&self, name: &str) -> Result<(), String> {
        // It also ends when the benchmark's directory is gone, whatever happened to the run.
        let gate = self.gate.display();
        let dir = self.gate.parent().unwrap_or(&self.gate).display();
        self.turn_agent(
            name,
            &format!("while [ ! -e {gate} ] && [ -d {dir} ]; do sleep 0.05; done"),
        )
    }

    fn send_body(&self, name: &str, text: &str) -> Value {
        json!({ "repo": self.repo.display().to_string(), "name": name, "text": text })
    }
}

async fn send(client: &Client, body: &Value) -> Result<Value, String> {
    client
        .post_json::<_, Value>("/v1/inbox/send", body)
        .await
        .map_err(err)
}

/// Posts a signed webhook delivery; the status of the answer.
fn post_hook(
    addr: SocketAddr,
    path: &str,
    secret: &str,
    delivery: &str,
    body: &[u8],
) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(err)?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nX-Hub-Signature-256: {}\r\nX-Berth-Delivery: {delivery}\r\nConnection: close\r\n\r\n",
        body.len(),
        berth_core::hook::sign(secret, body)
    );
    stream.write_all(request.as_bytes()).map_err(err)?;
    stream.write_all(body).map_err(err)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(err)?;
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {answer:?}"))
}

/// Messages queued per second by the store alone (what a send writes: the item and its event,
/// in one transaction), one writer, in a database of its own.
fn store_rate() -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(err)?;
    let store =
        berth_store::Store::open(&dir.path().join("berth.db"), Default::default()).map_err(err)?;
    let project_id = store.project_id("/bench", 0).map_err(err)?;
    let began = Instant::now();
    for n in 0..STORED {
        let text = format!("message {n}");
        store
            .inbox_send(
                &berth_store::NewItem {
                    project_id,
                    agent: "bench",
                    text: &text,
                    source: "message",
                    priority: 0,
                    key: None,
                    now_ms: 0,
                },
                |item| berth_store::Tell {
                    kind: "inbox.queued",
                    subject: item.agent.clone(),
                    data: json!({ "item": item.id }),
                },
            )
            .map_err(err)?;
    }
    Ok(STORED as f64 / began.elapsed().as_secs_f64())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(err)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn run(bin: &Path, root: &Path) -> Result<PathBuf, String> {
    let tmp = tempfile::tempdir().map_err(err)?;
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    empty_project(&repo)?;
    let token = tmp.path().join("token");
    std::fs::write(&token, "bench-token-nobody-uses\n").map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse().map_err(err)?;
    let b = Bench {
        bin: bin.to_path_buf(),
        client: Client::unix(home.join("run/berth.sock")),
        home,
        repo,
        gate: tmp.path().join("gate"),
    };
    let listen = addr.to_string();
    b.berth(&[
        "daemon",
        "start",
        "--listen",
        &listen,
        "--token-file",
        &token.display().to_string(),
    ])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(err)?;
    let result = measure(&b, &rt, addr);
    // Whatever happened: stop delivering, then let the gated turns end.
    let _ = b.berth(&["daemon", "stop"]);
    let _ = std::fs::write(&b.gate, "");
    std::thread::sleep(Duration::from_millis(500));
    let report = result?;
    let path = root.join("bench/results/inbox.md");
    std::fs::write(&path, report).map_err(err)?;
    Ok(path)
}

fn measure(b: &Bench, rt: &tokio::runtime::Runtime, addr: SocketAddr) -> Result<String, String> {
    // 1. Send round trip: one client, one message at a time, to an agent whose delivery waits.
    b.gated_agent("queue")?;
    let body = b.send_body("queue", "hello");
    let round_trips = rt.block_on(async {
        let mut v = Vec::with_capacity(SENDS);
        for _ in 0..SENDS {
            let began = Instant::now();
            send(&b.client, &body).await?;
            v.push(began.elapsed());
        }
        Ok::<_, String>(v)
    })?;
    let round_trip = Summary::of(&round_trips);
    eprintln!("send round trip p50 {} ms", ms(round_trip.p50));

    // 2. Messages stored per second: CLIENTS clients at once, STORED messages in all.
    let began = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let client = b.client.clone();
                let body = b.send_body("queue", "stored");
                tokio::spawn(async move {
                    for _ in 0..STORED / CLIENTS {
                        send(&client, &body).await?;
                    }
                    Ok::<_, String>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(err)??;
        }
        Ok::<_, String>(())
    })?;
    let stored_in = began.elapsed();
    let per_second = STORED as f64 / stored_in.as_secs_f64();
    let in_store = store_rate()?;
    eprintln!("{per_second:.0} messages/s through the API, {in_store:.0}/s into the store");

    // 3. Queue → turn start: the turn writes the time its process started.
    let starts = b.repo.parent().unwrap_or(&b.repo).join("starts");
    b.turn_agent("starter", &format!("date +%s%N > {}", starts.display()))?;
    let body = b.send_body("starter", "go");
    let mut latencies = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let _ = std::fs::remove_file(&starts);
        let sent_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(err)?
            .as_nanos();
        rt.block_on(send(&b.client, &body))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let started_ns: u128 = loop {
            if let Some(ns) = std::fs::read_to_string(&starts)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break ns;
            }
            if Instant::now() > deadline {
                return Err("a turn did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        latencies.push(Duration::from_nanos(
            u64::try_from(started_ns.saturating_sub(sent_ns)).unwrap_or(u64::MAX),
        ));
        // Let the turn be recorded before the next send.
        std::thread::sleep(Duration::from_millis(30));
    }
    let start = Summary::of(&latencies);
    eprintln!("queue → turn start p50 {} ms", ms(start.p50));

    // 4. Webhook verify + queue, over TCP, each a new delivery id.
    let hook: Value =
        serde_json::from_str(&b.berth(&["--json", "hook", "add", "queue", "--name", "ci"])?)
            .map_err(err)?;
    let secret = hook["secret"].as_str().unwrap_or_default().to_string();
    let payload = br#"{"action":"completed","check_run":{"name":"test","conclusion":"success"}}"#;
    let mut hook_times = Vec::with_capacity(HOOKS);
    for i in 0..HOOKS {
        let began = Instant::now();
        let status = post_hook(addr, "/hooks/queue/ci", &secret, &format!("d-{i}"), payload)?;
        hook_times.push(began.elapsed());
        if status != 202 {
            return Err(format!("a webhook delivery answered {status}"));
        }
    }
    let hooks = Summary::of(&hook_times);
    eprintln!("webhook verify + queue p50 {} ms", ms(hooks.p50));

    // 5. Load: LOAD_MESSAGES from CLIENTS clients to LOAD_AGENTS agents, each turn appending
    // its message to a file in its workspace.
    let names: Vec<String> = (0..LOAD_AGENTS).map(|i| format!("load{i}")).collect();
    for name in &names {
        b.turn_agent(name, "cat >> received.txt; echo >> received.txt")?;
    }
    let began = Instant::now();
    let sent: Vec<(usize, String, i64)> = rt.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let client = b.client.clone();
                let bodies: Vec<(usize, Value)> = (0..LOAD_MESSAGES / CLIENTS)
                    .map(|n| {
                        let agent = (c + n) % LOAD_AGENTS;
                        (agent, b.send_body(&names[agent], &format!("c{c}-m{n}")))
                    })
                    .collect();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    for (agent, body) in bodies {
                        let answer = send(&client, &body).await?;
                        let id = answer["item"]["id"].as_i64().unwrap_or(-1);
                        mine.push((
                            agent,
                            body["text"].as_str().unwrap_or_default().to_string(),
                            id,
                        ));
                    }
                    Ok::<_, String>(mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(err)??);
        }
        Ok::<_, String>(all)
    })?;
    let sent_in = began.elapsed();
    let mut expected: Vec<Vec<(i64, String)>> = vec![Vec::new(); LOAD_AGENTS];
    for (agent, text, id) in sent {
        expected[agent].push((id, text));
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    for (i, name) in names.iter().enumerate() {
        let show: Value =
            serde_json::from_str(&b.berth(&["--json", "agent", "show", name])?).map_err(err)?;
        let file =
            PathBuf::from(show["workspace"].as_str().unwrap_or_default()).join("received.txt");
        expected[i].sort();
        let want: Vec<&str> = expected[i].iter().map(|(_, t)| t.as_str()).collect();
        loop {
            let got = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = got.lines().collect();
            if lines.len() >= want.len() {
                if lines != want {
                    return Err(format!(
                        "{name} received its messages out of order, twice or not at all"
                    ));
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name}: {} of {} delivered",
                    lines.len(),
                    want.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let delivered_in = began.elapsed();
    eprintln!("load: sent in {sent_in:?}, delivered in {delivered_in:?}");

    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    Ok(format!(
        "# Inbox benchmark\n\n\
         `cargo run --release --locked -p berth-bench -- inbox` (SPEC §10.2). Release build, one \
         daemon, a fresh home; the sending clients are `berth-client` over the Unix socket (a new \
         connection per request, as the CLI makes), webhooks raw HTTP/1.1 over loopback TCP.\n\n\
         {machine}- load average at the end: {load}\n\n\
         | measure | n | p50 | p99 | max | goal |\n\
         | --- | --- | --- | --- | --- | --- |\n\
         | send round trip (ms) | {rn} | {r50} | {r99} | {rmax} | p50 ≤ 2 ms: {rv} |\n\
         | queue → turn process started (ms) | {sn} | {s50} | {s99} | {smax} | p50 ≤ 20 ms: {sv} |\n\
         | webhook verify + queue (ms) | {hn} | {h50} | {h99} | {hmax} | — |\n\n\
         Messages stored (goal ≥ 5,000/s): into the store itself (the item and its event in one transaction, one \
         writer) **{in_store:.0} messages/s** ({sv2}); through the API — {STORED} sends from \
         {CLIENTS} concurrent clients, each a new connection and request — {per_second:.0} \
         messages/s in {stored:.2} s ({pv}).\n\n\
         Load: {LOAD_MESSAGES} messages from {CLIENTS} concurrent clients to {LOAD_AGENTS} turn \
         agents, sent in {sent:.2} s, all delivered in {delivered:.1} s (each a turn: a keeper and \
         a process); every agent received every message of its own exactly once, in the order \
         they were queued (checked against what the turns wrote).\n\n\
         The send round trip and the stored rate are to an agent whose first turn waits, so they \
         measure queueing alone; the turn-start latency is measured one message at a time to an \
         idle agent, from before the send to the turn's own clock reading.\n",
        machine = machine::describe(),
        load = load_average(),
        rn = round_trip.n,
        r50 = ms(round_trip.p50),
        r99 = ms(round_trip.p99),
        rmax = ms(round_trip.max),
        rv = verdict(round_trip.p50 <= Duration::from_millis(2)),
        sn = start.n,
        s50 = ms(start.p50),
        s99 = ms(start.p99),
        smax = ms(start.max),
        sv = verdict(start.p50 <= Duration::from_millis(20)),
        hn = hooks.n,
        h50 = ms(hooks.p50),
        h99 = ms(hooks.p99),
        hmax = ms(hooks.max),
        stored = stored_in.as_secs_f64(),
        pv = verdict(per_second >= 5_000.0),
        sv2 = verdict(in_store >= 5_000.0),
        sent = sent_in.as_secs_f64(),
        delivered = delivered_in.as_secs_f64(),
    ))
}
