//! `berth web`: a one-time login link for the web console (the daemon starts its loopback
//! listener if it has none), or `--logout-all` to end every browser session.

use berth_client::Client;
use berth_proto::{ConsoleOpened, LoggedOut};

use crate::Ctx;
use crate::cli::WebArgs;
use crate::error::{CliError, CliResult};
use crate::output::emit;

pub async fn run(ctx: &Ctx, args: WebArgs) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    let nothing = serde_json::json!({});
    if args.logout_all {
        let out: LoggedOut = client.post_json("/v1/console/logout-all", &nothing).await?;
        emit(ctx.json, &out, |o| match o.revoked {
            0 => "no console session was open".to_string(),
            1 => "ended 1 console session".to_string(),
            n => format!("ended {n} console sessions"),
        });
        return Ok(0);
    }
    let opened: ConsoleOpened = client.post_json("/v1/console/open", &nothing).await?;
    emit(ctx.json, &opened, |o| {
        format!(
            "The console is served on {}. Open it with this link (it works once, within 60 s):\n  {}",
            o.listener, o.url
        )
    });
    if args.open {
        open_in_browser(&opened.url)?;
    }
    Ok(0)
}

fn open_in_browser(url: &str) -> CliResult {
    let status = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(CliError::failed(
            "open_failed",
            format!("xdg-open could not open the link ({s})"),
        )
        .hint("open the link above in your browser yourself")),
        Err(e) => Err(CliError::failed(
            "open_failed",
            format!("cannot run xdg-open to open a browser: {e}"),
        )
        .hint("open the link above in your browser yourself")),
    }
}
