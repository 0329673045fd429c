//! `berth stash save|list|show|restore|drop`: snapshots of uncommitted work, through the daemon
//! (which owns the database and serialises git operations).

use std::io::{BufRead, IsTerminal, Write};

use berth_client::Client;
use berth_proto::{
    RestoreResult, SnapshotDetail, SnapshotInfo, SnapshotList, StashRepo, StashSave, StashTarget,
};

use crate::Ctx;
use crate::cli::StashCommand;
use crate::error::{CliError, CliResult, Kind};
use crate::output::{self, emit};

/// The directory berth was run in; the daemon finds the repository from it. The API carries
/// paths as text, so a path that is not UTF-8 is refused here rather than sent mangled.
pub fn here() -> CliResult<String> {
    let dir = std::env::current_dir()
        .map_err(|e| CliError::failed("cwd", format!("cannot read the current directory: {e}")))?;
    dir.to_str().map(str::to_string).ok_or_else(|| {
        CliError::failed(
            "path_not_utf8",
            format!(
                "the path of this directory is not valid UTF-8 ({}), and berth passes paths to \
                 its daemon as text",
                dir.display()
            ),
        )
        .hint("rename it (or the directory above it that is not UTF-8) to a UTF-8 name")
    })
}

fn short(oid: &Option<String>) -> String {
    oid.as_deref().map_or_else(
        || "(no commits yet)".to_string(),
        |o| o.chars().take(10).collect(),
    )
}

fn branch(b: &Option<String>) -> String {
    b.as_deref().map_or_else(
        || "detached HEAD".to_string(),
        |b| b.strip_prefix("refs/heads/").unwrap_or(b).to_string(),
    )
}

fn warnings(i: &SnapshotInfo) -> String {
    i.warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect()
}

pub async fn run(ctx: &Ctx, cmd: StashCommand) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    let repo = here()?;
    match cmd {
        StashCommand::Save { message } => {
            let i: SnapshotInfo = client
                .post_json("/v1/stash/save", &StashSave { repo, message })
                .await?;
            emit(ctx.json, &i, |i| {
                format!(
                    "{}saved snapshot {} ({} at {})\nrestore it with `berth stash restore {}`",
                    warnings(i),
                    i.meta.id,
                    branch(&i.meta.branch),
                    short(&i.meta.head),
                    i.meta.id
                )
            });
        }
        StashCommand::List => {
            let l: SnapshotList = client
                .post_json("/v1/stash/list", &StashRepo { repo })
                .await?;
            emit(ctx.json, &l, render_list);
        }
        StashCommand::Show { id } => {
            let d: SnapshotDetail = client
                .post_json("/v1/stash/show", &StashTarget { repo, id })
                .await?;
            emit(ctx.json, &d, render_detail);
        }
        StashCommand::Restore { id } => {
            let r: RestoreResult = client
                .post_json("/v1/stash/restore", &StashTarget { repo, id })
                .await?;
            emit(ctx.json, &r, |r| {
                let mut s = format!(
                    "restored snapshot {} on {}",
                    r.snapshot.meta.id,
                    branch(&r.branch)
                );
                if let Some(b) = &r.onto_moved_branch {
                    s += &format!(
                        "\n{b} had moved since; the snapshot's changes were applied on its new tip"
                    );
                }
                s
            });
        }
        StashCommand::Drop { id, yes } => {
            if !yes {
                confirm(&format!(
                    "drop snapshot {id}? it cannot be restored afterwards [y/N] "
                ))?;
            }
            let i: SnapshotInfo = client
                .post_json("/v1/stash/drop", &StashTarget { repo, id })
                .await?;
            emit(ctx.json, &i, |i| {
                format!(
                    "dropped snapshot {}\nuntil git prunes it, `git update-ref refs/berth/stash/{} {}` brings it back",
                    i.meta.id, i.meta.id, i.commit
                )
            });
        }
    }
    Ok(0)
}

/// Asks on the terminal; without one, refuses and names the flag.
fn confirm(question: &str) -> CliResult {
    let refuse = || {
        CliError::new(Kind::Usage, "not_confirmed", "not dropped")
            .hint("pass --yes to drop without being asked")
    };
    if !std::io::stdin().is_terminal() {
        return Err(refuse());
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(refuse())
    }
}

fn render_list(l: &SnapshotList) -> String {
    let mut s = String::new();
    if l.snapshots.is_empty() {
        s += "no snapshots in this repository\n";
    }
    for i in &l.snapshots {
        let note = i.meta.message.as_deref().unwrap_or(&i.meta.reason);
        let found = if i.recorded {
            ""
        } else {
            "  (found from its ref; recorded again)"
        };
        s += &format!(
            "{}  {}  {:<20}  {note}{found}\n",
            i.meta.id,
            output::time_ms(i.meta.time_ms),
            branch(&i.meta.branch)
        );
    }
    for m in &l.missing {
        s += &format!(
            "note: snapshot {m} is recorded but its ref is gone (deleted outside berth)\n"
        );
    }
    s
}

fn render_detail(d: &SnapshotDetail) -> String {
    let i = &d.snapshot;
    let mut s = format!(
        "snapshot {}\n  taken     {}\n  branch    {}\n  head      {}\n  reason    {}\n  commit    {}\n",
        i.meta.id,
        output::time_ms(i.meta.time_ms),
        branch(&i.meta.branch),
        short(&i.meta.head),
        i.meta.message.as_deref().unwrap_or(&i.meta.reason),
        i.commit
    );
    for (title, list) in [
        ("staged", &d.staged),
        ("not staged (untracked included)", &d.unstaged),
    ] {
        s += &format!("{title}:\n");
        if list.is_empty() {
            s += "  (nothing)\n";
        }
        for c in list {
            s += &format!("  {} {}\n", c.status, c.path);
        }
    }
    s + &warnings(i)
}
