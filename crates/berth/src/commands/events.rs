//! `berth events`: the event log, and with `--follow` the live stream (resuming across daemon
//! restarts from the last sequence number seen).

use std::time::Duration;

use berth_client::{Client, StreamItem};
use berth_proto::Event;

use crate::Ctx;
use crate::cli::EventsArgs;
use crate::error::{CliError, CliResult};
use crate::output;

const PAGE: usize = 1000;

fn print_event(ctx: &Ctx, args: &EventsArgs, ev: &Event) {
    if args
        .agent
        .as_ref()
        .is_some_and(|a| ev.subject.as_ref() != Some(a))
    {
        return;
    }
    if ctx.json {
        output::json(ev);
        return;
    }
    let subject = ev
        .subject
        .as_deref()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    let data = if ev.data.is_null() {
        String::new()
    } else {
        format!(" {}", ev.data)
    };
    println!(
        "#{:<6} {} {}{subject}{data}",
        ev.seq,
        output::time_ms(ev.time_ms),
        ev.kind
    );
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    let mut last = args.since;
    if !args.follow {
        loop {
            let page = client.events_page(last, PAGE).await?;
            if let Some(first) = page.first_seq.filter(|f| *f > last + 1) {
                eprintln!(
                    "note: events {}..{} were removed by retention",
                    last + 1,
                    first - 1
                );
            }
            for ev in &page.events {
                print_event(ctx, &args, ev);
                last = ev.seq;
            }
            if page.events.len() < PAGE || last >= page.last_seq {
                return Ok(0);
            }
        }
    }
    let mut connected_once = false;
    loop {
        match client.subscribe(last).await {
            Ok(mut stream) => {
                connected_once = true;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(StreamItem::Event(ev)) => {
                            print_event(ctx, &args, &ev);
                            last = ev.seq;
                        }
                        Ok(StreamItem::Gap { from, to }) => {
                            eprintln!("note: events {from}..{to} were removed by retention");
                            last = last.max(to);
                        }
                        Err(e) => {
                            eprintln!("note: event stream interrupted: {e}");
                            break;
                        }
                    }
                }
                eprintln!("note: the daemon closed the event stream; waiting for it to come back");
            }
            Err(e) if !connected_once => return Err(CliError::from(e)),
            // The daemon is restarting: keep trying until it is back.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
