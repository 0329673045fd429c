//! A tree's ignore rules, as git reads them: the `.gitignore` of every directory (a deeper file
//! overrides a shallower one, and within a file the last matching line wins), then
//! `.git/info/exclude`, then `core.excludesFile`. A path inside an ignored directory is ignored
//! whatever its own rules say (git never looks inside).
//!
//! Matchers are loaded lazily per directory and kept until [`Ignores::forget`]; the engine
//! forgets them whenever an event touches an ignore file, so the rules are always the live ones.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::pathmap::PathMap;
use crate::relpath;

/// The name of the per-directory ignore file.
pub const IGNORE_FILE: &[u8] = b".gitignore";

/// Whether a change to `rel` can change what is ignored.
pub fn is_rules_file(rel: &[u8]) -> bool {
    let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel);
    name == IGNORE_FILE || rel == b".git/info/exclude"
}

/// The ignore rules of one tree.
#[derive(Debug)]
pub struct Ignores {
    root: PathBuf,
    /// `core.excludesFile`, found once (asking git costs a process).
    excludes_file: Option<PathBuf>,
    /// `.git/info/exclude` and `core.excludesFile`, in that order (lowest priority last).
    base: Vec<Gitignore>,
    /// Extra exclusions given by the user: they exclude whatever the tree's rules say.
    extra: Option<Gitignore>,
    /// Each directory's `.gitignore` (`None`: it has none), by relative path (`""`: the root).
    /// Packed ([`PathMap`]): after a full scan it holds every directory of the tree for as
    /// long as a pairing lasts, most of them with no rules, so the rules are behind a pointer
    /// (shared: a walk hands each directory's [`Chain`] down to the one below).
    dirs: PathMap<Option<Arc<Gitignore>>>,
}

/// The `.gitignore` rules that decide for the entries of one directory: its own and those of
/// every directory above it, deepest first. A full walk makes each directory's from its
/// parent's, instead of looking up every directory above each entry.
pub type Chain = Vec<Arc<Gitignore>>;

fn load(root: &Path, file: &Path) -> Option<Gitignore> {
    if !file.is_file() {
        return None;
    }
    let mut b = GitignoreBuilder::new(root);
    // A partly invalid file still yields its valid lines, as git does.
    let _ = b.add(file);
    b.build().ok().filter(|g| !g.is_empty())
}

/// `core.excludesFile` as git resolves it for `root` (repository config first, then global),
/// or git's default location. Only a repository's own config needs git itself to answer.
fn excludes_file(root: &Path) -> Option<PathBuf> {
    if !root.join(".git").exists() {
        return ignore::gitignore::gitconfig_excludes_path();
    }
    let configured = std::process::Command::new("git")
        .args(["config", "--path", "--get", "core.excludesFile"])
        .current_dir(root)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = o.stdout.strip_suffix(b"\n").unwrap_or(&o.stdout).to_vec();
            PathBuf::from(OsStr::from_bytes(&text))
        })
        .filter(|p| !p.as_os_str().is_empty());
    configured.or_else(ignore::gitignore::gitconfig_excludes_path)
}

impl Ignores {
    /// The rules of the tree at `root` (read now; per-directory files are read when needed).
    pub fn new(root: &Path) -> Ignores {
        let mut ig = Ignores {
            root: root.to_path_buf(),
            excludes_file: excludes_file(root),
            base: Vec::new(),
            extra: None,
            dirs: PathMap::default(),
        };
        ig.forget();
        ig
    }

    /// Drops every loaded rule; the next questions read the files again (where
    /// `core.excludesFile` points is settled once, when the rules are first made).
    pub fn forget(&mut self) {
        self.dirs = PathMap::default();
        let exclude = load(&self.root, &self.root.join(".git/info/exclude"));
        let global = self
            .excludes_file
            .as_ref()
            .and_then(|f| load(&self.root, f));
        self.base = exclude.into_iter().chain(global).collect();
    }

    fn dir_rules(&mut self, dir: &[u8]) -> Option<Arc<Gitignore>> {
        if let Some(known) = self.dirs.get(dir) {
            return known.clone();
        }
        let mut file = relpath::absolute(&self.root, dir);
        if dir.is_empty() {
            file = self.root.clone();
        }
        let rules = load(&file, &file.join(OsStr::from_bytes(IGNORE_FILE))).map(Arc::new);
        self.dirs.set(dir, Some(rules.clone()));
        rules
    }

    /// The [`Chain`] of directory `dir`, whose parent's is `parent`.
    pub fn chain(&mut self, dir: &[u8], parent: &[Arc<Gitignore>]) -> Chain {
        self.dir_rules(dir)
            .into_iter()
            .chain(parent.iter().cloned())
            .collect()
    }

    /// The [`Chain`] of the directory holding `rel`.
    pub fn chain_above(&mut self, rel: &[u8]) -> Chain {
        let mut chain = Chain::new();
        let mut cut = rel.len();
        loop {
            cut = rel[..cut].iter().rposition(|b| *b == b'/').unwrap_or(0);
            chain.extend(self.dir_rules(&rel[..cut]));
            if cut == 0 {
                return chain;
            }
        }
    }

    /// Whether any rule at all can ignore an entry of the directory whose chain is `chain`
    /// (if not, there is nothing to ask).
    pub fn any_rules(&self, chain: &[Arc<Gitignore>]) -> bool {
        self.extra.is_some() || !chain.is_empty() || !self.base.is_empty()
    }

    /// Whether `abs` (the absolute path of an entry of the directory whose chain is `chain`)
    /// is ignored, assuming its directories are not.
    pub fn is_ignored_by(&self, chain: &[Arc<Gitignore>], abs: &Path, is_dir: bool) -> bool {
        if let Some(extra) = &self.extra
            && extra.matched(abs, is_dir).is_ignore()
        {
            return true;
        }
        for rules in chain.iter().map(|r| &**r).chain(&self.base) {
            match rules.matched(abs, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    /// Packs what was loaded (after a full scan loaded every directory's rules).
    pub fn pack(&mut self) {
        self.dirs.repack();
    }

    /// Adds extra exclusions (gitignore syntax, relative to the root); they apply on top of
    /// the tree's own rules and cannot be re-included by them.
    pub fn exclude(&mut self, patterns: &[String]) -> Result<(), ignore::Error> {
        let mut b = GitignoreBuilder::new(&self.root);
        for p in patterns {
            b.add_line(None, p)?;
        }
        self.extra = Some(b.build()?).filter(|g| !g.is_empty());
        Ok(())
    }

    /// Whether `rel` itself is ignored, assuming its parent directories are not.
    pub fn is_ignored(&mut self, rel: &[u8], is_dir: bool) -> bool {
        let chain = self.chain_above(rel);
        self.is_ignored_by(&chain, &relpath::absolute(&self.root, rel), is_dir)
    }

    /// Whether `rel` is ignored, itself or through any directory above it.
    pub fn is_ignored_with_parents(&mut self, rel: &[u8], is_dir: bool) -> bool {
        for (i, b) in rel.iter().enumerate() {
            if *b == b'/' && self.is_ignored(&rel[..i], true) {
                return true;
            }
        }
        self.is_ignored(rel, is_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn deeper_files_override_and_ignored_directories_hide_everything_inside() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", "*.log\nbuild/\n");
        write(r, "src/.gitignore", "!keep.log\n");
        write(r, ".git/info/exclude", "local\n");
        let mut ig = Ignores::new(r);
        assert!(ig.is_ignored(b"a.log", false));
        assert!(ig.is_ignored(b"src/a.log", false));
        assert!(!ig.is_ignored(b"src/keep.log", false), "re-included deeper");
        assert!(ig.is_ignored(b"build", true));
        assert!(
            !ig.is_ignored(b"build", false),
            "build/ matches directories only"
        );
        assert!(ig.is_ignored_with_parents(b"build/out/x.txt", false));
        assert!(!ig.is_ignored(b"build/out/x.txt", false));
        assert!(ig.is_ignored(b"local", false));
        assert!(ig.is_ignored(b"src/local", false));
        assert!(!ig.is_ignored(b"src/main.rs", false));
    }

    #[test]
    fn extra_exclusions_win_over_the_trees_own_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", "!*.keep\n");
        let mut ig = Ignores::new(r);
        ig.exclude(&["*.keep".into(), "/scratch/".into()]).unwrap();
        assert!(ig.is_ignored(b"a.keep", false));
        assert!(ig.is_ignored(b"scratch", true));
        assert!(!ig.is_ignored(b"sub/scratch", true), "anchored to the root");
        assert!(
            ig.exclude(&["{a".into()]).is_err(),
            "a bad pattern is an error"
        );
    }

    #[test]
    fn forget_reads_the_rules_again() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut ig = Ignores::new(r);
        assert!(!ig.is_ignored(b"x.tmp", false));
        write(r, ".gitignore", "*.tmp\n");
        assert!(!ig.is_ignored(b"x.tmp", false), "cached until forgotten");
        ig.forget();
        assert!(ig.is_ignored(b"x.tmp", false));
        assert!(is_rules_file(b"a/b/.gitignore"));
        assert!(is_rules_file(b".git/info/exclude"));
        assert!(!is_rules_file(b"a/gitignore"));
    }
}
