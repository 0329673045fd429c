//! The model of the engine's model-based tests (see `model.rs`), shared with the variant whose
//! beta is remote (`crates/berth/tests/cli/remote_model.rs`, over a real `berth __endpoint`).

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use berth_store::{Store, StoreOptions};
use berth_sync::ancestor::Ancestor;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::{DirKeeper, Sides, sync_once, sync_paths};
use berth_sync::reconcile::Entry;
use berth_sync::relpath::RelPath;
use berth_sync::scan::{Scanner, Tree};
use proptest::prelude::*;

pub const PATHS: [&str; 6] = ["a", "b", "d", "d/x", "d/y", "e/f"];

#[derive(Debug, Clone)]
pub enum Op {
    Write {
        alpha: bool,
        path: usize,
        content: u8,
        exec: bool,
    },
    Link {
        alpha: bool,
        path: usize,
        target: u8,
    },
    Mkdir {
        alpha: bool,
        path: usize,
    },
    Delete {
        alpha: bool,
        path: usize,
    },
    Rename {
        alpha: bool,
        from: usize,
        to: usize,
    },
    Sync,
    SyncChanged,
    Restart,
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0..PATHS.len(), 0u8..4, any::<bool>())
            .prop_map(|(alpha, path, content, exec)| Op::Write { alpha, path, content, exec }),
        1 => (any::<bool>(), 0..PATHS.len(), 0u8..3)
            .prop_map(|(alpha, path, target)| Op::Link { alpha, path, target }),
        1 => (any::<bool>(), 0..PATHS.len()).prop_map(|(alpha, path)| Op::Mkdir { alpha, path }),
        2 => (any::<bool>(), 0..PATHS.len()).prop_map(|(alpha, path)| Op::Delete { alpha, path }),
        1 => (any::<bool>(), 0..PATHS.len(), 0..PATHS.len())
            .prop_map(|(alpha, from, to)| Op::Rename { alpha, from, to }),
        1 => Just(Op::Sync),
        2 => Just(Op::SyncChanged),
        1 => Just(Op::Restart),
    ]
}

/// Removes whatever is at `p` (file, link or whole directory).
fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).unwrap(),
        Ok(_) => std::fs::remove_file(p).unwrap(),
        Err(_) => {}
    }
}

/// Makes every parent of `rel` a directory, replacing non-directories on the way (as a user
/// creating the path would have to); records each parent it changed in `touched`.
fn make_parents(root: &Path, rel: &str, touched: &mut BTreeSet<RelPath>) {
    let mut cur = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                std::fs::remove_file(&cur).unwrap();
                std::fs::create_dir(&cur).unwrap();
            }
            Err(_) => std::fs::create_dir(&cur).unwrap(),
        }
        touched.insert(parts[..=i].join("/").into_bytes());
    }
}

/// Carries out an edit; `touched` receives the paths a file watcher would report.
fn apply_op(alpha: &Path, beta: &Path, op: &Op, touched: &mut BTreeSet<RelPath>) {
    let root = |a: bool| if a { alpha } else { beta };
    let rel = |path: usize| PATHS[path];
    if let Op::Write { path, .. }
    | Op::Link { path, .. }
    | Op::Mkdir { path, .. }
    | Op::Delete { path, .. } = *op
    {
        touched.insert(rel(path).as_bytes().to_vec());
    }
    match *op {
        Op::Write {
            alpha: a,
            path,
            content,
            exec,
        } => {
            let rel = PATHS[path];
            make_parents(root(a), rel, touched);
            let p = root(a).join(rel);
            remove(&p);
            std::fs::write(
                &p,
                format!("{} {content}", if a { "alpha" } else { "beta" }),
            )
            .unwrap();
            let mode = if exec { 0o755 } else { 0o644 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Op::Link {
            alpha: a,
            path,
            target,
        } => {
            let rel = PATHS[path];
            make_parents(root(a), rel, touched);
            let p = root(a).join(rel);
            remove(&p);
            symlink(format!("target-{target}"), &p).unwrap();
        }
        Op::Mkdir { alpha: a, path } => {
            let rel = PATHS[path];
            make_parents(root(a), rel, touched);
            let p = root(a).join(rel);
            if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                remove(&p);
                std::fs::create_dir(&p).unwrap();
            }
        }
        Op::Delete { alpha: a, path } => remove(&root(a).join(PATHS[path])),
        Op::Rename { alpha: a, from, to } => {
            let (f, t) = (PATHS[from], PATHS[to]);
            let nested = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
            let src = root(a).join(f);
            if nested(f, t) || nested(t, f) || std::fs::symlink_metadata(&src).is_err() {
                return;
            }
            make_parents(root(a), t, touched);
            let dst = root(a).join(t);
            remove(&dst);
            std::fs::rename(&src, &dst).unwrap();
            touched.insert(f.as_bytes().to_vec());
            touched.insert(t.as_bytes().to_vec());
        }
        Op::Sync | Op::SyncChanged | Op::Restart => {}
    }
}

fn tree(root: &Path) -> Tree {
    Scanner::new(root, u64::MAX).full().unwrap().0
}

/// Every entry the keeper holds, by path (all slots).
fn kept(dir: &Path) -> Vec<(Vec<u8>, Entry)> {
    let mut out = Vec::new();
    for slot in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.extend(tree(&slot.path()));
    }
    out
}

/// The model's world: two trees, alpha local and beta reached through `B` (made anew by
/// `open_beta` at every restart), an ancestor persisted in a real store, a keeper.
pub struct World<B: Endpoint> {
    _dir: tempfile::TempDir,
    alpha: PathBuf,
    beta: PathBuf,
    db: PathBuf,
    store: Store,
    ancestor: Ancestor,
    keeper: DirKeeper,
    sides: Sides<Scanner, B>,
    open_beta: Box<dyn Fn(&Path) -> B>,
    /// What changed on either side since the last round.
    touched: BTreeSet<RelPath>,
}

const LINK: &str = "model";

impl<B: Endpoint> World<B> {
    pub fn new(open_beta: impl Fn(&Path) -> B + 'static) -> World<B> {
        let dir = tempfile::tempdir().unwrap();
        let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
        std::fs::create_dir(&alpha).unwrap();
        std::fs::create_dir(&beta).unwrap();
        let keeper = DirKeeper::new(&dir.path().join("kept"));
        // A file no operation touches: an emptied root is a safety halt (tested on its own), not
        // what this test is about.
        std::fs::write(alpha.join("sentinel"), "never edited").unwrap();
        let db = dir.path().join("state/berth.db");
        World {
            store: Store::open(&db, StoreOptions::default()).unwrap(),
            sides: Sides::with(Scanner::new(&alpha, u64::MAX), open_beta(&beta)),
            open_beta: Box::new(open_beta),
            _dir: dir,
            alpha,
            beta,
            db,
            ancestor: Ancestor::default(),
            keeper,
            touched: BTreeSet::from([b"sentinel".to_vec()]),
        }
    }

    /// A new engine: fresh scanners, the store reopened, the ancestor read back from it.
    fn restart(&mut self) {
        self.store = Store::open(&self.db, StoreOptions::default()).unwrap();
        self.ancestor = berth_sync::ancestor::from_rows(self.store.ancestor(LINK).unwrap());
        self.sides.beta = (self.open_beta)(&self.beta);
        self.sides.alpha = Scanner::new(&self.alpha, u64::MAX);
    }

    /// One round: everything, or only the paths that changed.
    fn sync(&mut self, only_changed: bool) -> Result<(), TestCaseError> {
        let (a0, b0, anc0) = (tree(&self.alpha), tree(&self.beta), self.ancestor.tree());
        let touched = std::mem::take(&mut self.touched);
        if only_changed {
            sync_paths(
                &mut self.sides,
                &mut self.ancestor,
                &mut self.keeper,
                &touched,
            )
        } else {
            sync_once(&mut self.sides, &mut self.ancestor, &mut self.keeper)
        }
        .map_err(|e| TestCaseError::fail(format!("sync failed: {e}")))?;
        self.store
            .update_ancestor(LINK, self.ancestor.unsaved_rows())
            .unwrap();
        self.ancestor.mark_saved();
        let ancestor = self.ancestor.tree();
        let (a1, b1) = (tree(&self.alpha), tree(&self.beta));
        prop_assert_eq!(&a1, &b1, "trees differ after a round");
        prop_assert_eq!(&a1, &ancestor, "the ancestor is not what both hold");
        for (p, e) in &a0 {
            if anc0.get(p) != Some(e) {
                prop_assert_eq!(
                    a1.get(p),
                    Some(e),
                    "alpha's edit at {:?} was changed",
                    String::from_utf8_lossy(p)
                );
            }
        }
        let kept = kept(&self.keeper.dir);
        for (p, e) in &b0 {
            if anc0.get(p) != Some(e) && b1.get(p) != Some(e) && *e != Entry::Dir {
                prop_assert!(
                    kept.iter().any(|(kp, ke)| kp == p && ke == e),
                    "beta's edit at {:?} is neither in beta nor in the keeper",
                    String::from_utf8_lossy(p)
                );
            }
        }
        Ok(())
    }
}

/// Runs `ops` in `world`, then checks that two more full rounds find both trees settled.
pub fn run<B: Endpoint>(mut w: World<B>, ops: &[Op]) -> Result<(), TestCaseError> {
    for op in ops {
        match op {
            Op::Sync => w.sync(false)?,
            Op::SyncChanged => w.sync(true)?,
            Op::Restart => w.restart(),
            _ => apply_op(&w.alpha, &w.beta, op, &mut w.touched),
        }
    }
    w.sync(false)?;
    let before = (tree(&w.alpha), tree(&w.beta));
    w.sync(false)?;
    prop_assert_eq!(before, (tree(&w.alpha), tree(&w.beta)));
    Ok(())
}
