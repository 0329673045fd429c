//! The sync benchmark's command line: sizes (full or `--quick`), which tools, and overrides.

use std::time::Duration;

use super::tools::Tool;

/// What one run measures, and how much of it.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub tools: Vec<Tool>,
    /// Run the continuous-sync measurements (edits, rewrite, idle) and/or the first copy.
    pub live: bool,
    pub copy: bool,
    /// Files in the small and the large edit tree.
    pub small_tree: usize,
    pub large_tree: usize,
    /// Single-file edits per direction and tree.
    pub edits: usize,
    /// The least time from one edit's arrival to the next edit, the same for every tool: long
    /// enough that each edit is an isolated one for all of them. Unison's watch loop sleeps a
    /// fixed second after every synchronisation, and the echo of its own writes costs it one more
    /// such cycle, so an edit within about 2 s of the previous one waits out the rest; Syncthing's
    /// watcher timer keeps ticking for a second or two after an event, so an edit then is picked
    /// up sooner than an isolated one.
    pub edit_gap: Duration,
    /// How long one edit may take to arrive before it counts as a failure.
    pub edit_timeout: Duration,
    /// Files rewritten at once in the large tree.
    pub rewrite: usize,
    /// Files in the first-copy tree, and its mean file size in bytes.
    pub copy_files: usize,
    pub copy_mean_size: usize,
    /// First-copy runs per cache state for the fast tools (cp, rsync, berth) and for Unison.
    pub copy_runs: usize,
    pub copy_runs_slow: usize,
    /// How long each tool is left idle for the CPU and RSS figures.
    pub idle: Duration,
    /// Do not require berth's `"event":"ready"` line (for binaries without the live watcher):
    /// the harness's own convergence and canary checks decide when berth is in sync.
    pub berth_no_ready: bool,
}

pub const USAGE: &str = "usage: berth-bench sync [--quick] [--tools berth,unison,syncthing,cp,rsync] [--only live|copy] \
[--edits N] [--edit-timeout-ms MS] [--edit-gap-ms MS] [--small-tree N] [--large-tree N] [--rewrite N] \
[--copy-files N] [--copy-runs N] [--idle-secs N] [--berth-no-ready]";

impl Options {
    fn full() -> Options {
        Options {
            quick: false,
            tools: Tool::ALL.to_vec(),
            live: true,
            copy: true,
            small_tree: 1_000,
            large_tree: 50_000,
            edits: 100,
            edit_timeout: Duration::from_secs(10),
            edit_gap: Duration::from_millis(2200),
            rewrite: 10_000,
            copy_files: 50_000,
            copy_mean_size: 20_000,
            copy_runs: 3,
            copy_runs_slow: 2,
            idle: Duration::from_secs(10),
            berth_no_ready: false,
        }
    }

    fn quick() -> Options {
        Options {
            quick: true,
            small_tree: 200,
            large_tree: 2_000,
            edits: 3,
            rewrite: 500,
            copy_files: 2_000,
            copy_runs: 1,
            copy_runs_slow: 1,
            idle: Duration::from_secs(2),
            ..Options::full()
        }
    }

    /// Parses the arguments after `sync`: `--quick` picks the small sizes, later options override.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        Options::parse_among(args, &Tool::ALL, USAGE)
    }

    /// Parses the arguments of a benchmark that measures `tools` (all of them unless `--tools`
    /// names some) and is used as `usage` says.
    pub fn parse_among(args: &[String], tools: &[Tool], usage: &str) -> Result<Options, String> {
        let mut o = if args.iter().any(|a| a == "--quick") {
            Options::quick()
        } else {
            Options::full()
        };
        o.tools = tools.to_vec();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value\n{usage}"))
            };
            let number = |v: String| -> Result<usize, String> {
                v.replace([',', '_'], "")
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{flag}: {v:?} is not a positive number"))
            };
            match flag {
                "--quick" => {}
                "--berth-no-ready" => o.berth_no_ready = true,
                "--tools" => {
                    o.tools = Tool::parse_list(&value()?)?;
                    if let Some(t) = o.tools.iter().find(|t| !tools.contains(t)) {
                        return Err(format!("{} is not measured here\n{usage}", t.name()));
                    }
                }
                "--only" => match value()?.as_str() {
                    "live" => (o.live, o.copy) = (true, false),
                    "copy" => (o.live, o.copy) = (false, true),
                    other => return Err(format!("--only {other:?}: live or copy")),
                },
                "--edits" => o.edits = number(value()?)?,
                "--edit-timeout-ms" => {
                    o.edit_timeout = Duration::from_millis(number(value()?)? as u64)
                }
                "--edit-gap-ms" => {
                    let ms: u64 = value()?
                        .parse()
                        .map_err(|_| format!("{flag}: not a number of milliseconds"))?;
                    o.edit_gap = Duration::from_millis(ms);
                }
                "--small-tree" => o.small_tree = number(value()?)?,
                "--large-tree" => o.large_tree = number(value()?)?,
                "--rewrite" => o.rewrite = number(value()?)?,
                "--copy-files" => o.copy_files = number(value()?)?,
                "--copy-runs" => {
                    o.copy_runs = number(value()?)?;
                    o.copy_runs_slow = o.copy_runs_slow.min(o.copy_runs);
                }
                "--idle-secs" => o.idle = Duration::from_secs(number(value()?)? as u64),
                _ => return Err(format!("unknown option {arg:?}\n{usage}")),
            }
        }
        if o.rewrite > o.large_tree {
            return Err(format!(
                "--rewrite {} is more than the large tree's {} files",
                o.rewrite, o.large_tree
            ));
        }
        Ok(o)
    }

    pub fn uses(&self, tool: Tool) -> bool {
        self.tools.contains(&tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn quick_then_overrides_in_either_spelling() {
        let o = parse(&[
            "--edits",
            "7",
            "--quick",
            "--tools=unison,berth",
            "--large-tree=3,000",
        ])
        .expect("parses");
        assert!(o.quick);
        assert_eq!(o.edits, 7);
        assert_eq!(o.large_tree, 3_000);
        assert_eq!(o.small_tree, 200);
        assert_eq!(o.tools, vec![Tool::Berth, Tool::Unison]);
    }

    #[test]
    fn the_full_run_is_the_default() {
        let o = parse(&[]).expect("parses");
        assert_eq!((o.small_tree, o.large_tree, o.edits), (1_000, 50_000, 100));
        assert_eq!((o.rewrite, o.copy_files), (10_000, 50_000));
        assert_eq!(o.tools, Tool::ALL.to_vec());
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(parse(&["--edits"]).is_err());
        assert!(parse(&["--edits", "0"]).is_err());
        assert!(parse(&["--tools", "dropbox"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--quick", "--rewrite", "5000"]).is_err());
    }

    #[test]
    fn a_benchmark_of_fewer_tools_measures_those_and_refuses_others() {
        let among = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            Options::parse_among(&args, &[Tool::Berth, Tool::Unison], "usage")
        };
        assert_eq!(
            among(&[]).expect("parses").tools,
            vec![Tool::Berth, Tool::Unison]
        );
        assert_eq!(
            among(&["--tools", "unison"]).expect("parses").tools,
            vec![Tool::Unison]
        );
        assert!(among(&["--tools", "berth,syncthing"]).is_err());
    }
}
