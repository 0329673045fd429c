//! `berth up` / `berth down`.

use berth_client::Client;

use super::stash::here;
use crate::Ctx;
use crate::cli::ComposeArgs;
use crate::error::CliResult;
use crate::output::emit;

pub async fn run(ctx: &Ctx, up: bool, args: ComposeArgs) -> CliResult<i32> {
    // The daemon enforces the overall timeout; the request may take that long and a bit.
    let client = Client::unix(ctx.home.socket())
        .with_timeout(args.timeout + std::time::Duration::from_secs(30));
    let body = serde_json::json!({
        "repo": here()?,
        "names": args.names,
        "timeout_ms": args.timeout.as_millis() as u64,
    });
    let path = if up { "/v1/up" } else { "/v1/down" };
    let report: serde_json::Value = client.post_json(path, &body).await?;
    emit(ctx.json, &report, |r| {
        let verb = if up { "started" } else { "stopped" };
        let mut s = String::new();
        for (i, level) in r["levels"].as_array().into_iter().flatten().enumerate() {
            let names: Vec<&str> = level
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .collect();
            s += &format!("{verb} (level {}): {}\n", i + 1, names.join(", "));
        }
        for k in r["killed"].as_array().into_iter().flatten() {
            s += &format!(
                "killed after the timeout: {}\n",
                k.as_str().unwrap_or_default()
            );
        }
        s
    });
    Ok(0)
}
