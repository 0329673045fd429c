//! `berth debug sync ALPHA BETA [--once]`: the sync engine between two plain directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_sync::engine::{DirKeeper, Scanners, Stats, sync_once};
use berth_sync::scan::Warning;

use crate::Ctx;
use crate::error::{CliError, CliResult, Kind};
use crate::output;

fn absolute(p: &Path) -> CliResult<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| {
        CliError::new(Kind::Usage, "bad_root", format!("{}: {e}", p.display()))
            .hint("both roots must be existing directories")
    })
}

fn report(ctx: &Ctx, stats: &Stats, kept_in: &Path) {
    let warnings: Vec<String> = stats
        .warnings
        .iter()
        .map(|w| match w {
            Warning::OtherType(p) => format!(
                "{}: not a file, link or directory; skipped",
                String::from_utf8_lossy(p)
            ),
            Warning::TooLarge { path, size } => format!(
                "{}: {size} bytes, over the limit; skipped",
                String::from_utf8_lossy(path)
            ),
            Warning::Unreadable { path, error } => {
                format!("{}: {error}", String::from_utf8_lossy(path))
            }
        })
        .collect();
    if ctx.json {
        output::json(&serde_json::json!({
            "to_alpha": stats.to_alpha,
            "to_beta": stats.to_beta,
            "conflicts": stats.conflicts,
            "kept_in": kept_in,
            "warnings": warnings,
        }));
        return;
    }
    println!(
        "→ alpha {}, → beta {}, conflicts {}",
        stats.to_alpha, stats.to_beta, stats.conflicts
    );
    if stats.conflicts > 0 {
        println!("beta's losing versions are in {}", kept_in.display());
    }
    for w in warnings {
        println!("warning: {w}");
    }
}

pub fn run(ctx: &Ctx, alpha: &Path, beta: &Path, once: bool, max_size: u64) -> CliResult<i32> {
    let (alpha, beta) = (absolute(alpha)?, absolute(beta)?);
    if alpha.starts_with(&beta) || beta.starts_with(&alpha) {
        return Err(
            CliError::new(Kind::Usage, "nested_roots", "one root is inside the other")
                .hint("sync two separate directories"),
        );
    }
    let id = blake3::hash(format!("{}\0{}", alpha.display(), beta.display()).as_bytes()).to_hex();
    let ancestor_file = ctx
        .home
        .root()
        .join("state/debug-sync")
        .join(format!("{}.json", &id[..16]));
    let fail = |e: std::io::Error| {
        CliError::failed("ancestor", format!("{}: {e}", ancestor_file.display()))
    };
    let mut ancestor = berth_sync::ancestor::load(&ancestor_file).map_err(fail)?;
    let name = beta
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept_in = beta.with_file_name(format!("{name}.berth-kept"));
    let mut keeper = DirKeeper {
        dir: kept_in.clone(),
        kept: 0,
    };
    let mut scanners = Scanners::default();
    loop {
        let stats = sync_once(
            &alpha,
            &beta,
            &mut ancestor,
            &mut scanners,
            &mut keeper,
            max_size,
        )
        .map_err(|e| CliError::failed("sync_failed", e.to_string()))?;
        berth_sync::ancestor::save(&ancestor_file, &ancestor).map_err(fail)?;
        if once || stats != Stats::default() {
            report(ctx, &stats, &kept_in);
        }
        if once {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
