//! Model-based test of the engine: random edits on both trees (files, links, directories, file
//! ↔ directory, deletions, chmod), interleaved with sync rounds and restarts from the persisted
//! ancestor. After every round both trees are equal, every alpha edit stands exactly as made,
//! and every beta edit either stands or was handed to the keeper.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use berth_sync::engine::{DirKeeper, Scanners, sync_once};
use berth_sync::reconcile::Entry;
use berth_sync::scan::{self, Cache, Tree};
use proptest::prelude::*;

const PATHS: [&str; 6] = ["a", "b", "d", "d/x", "d/y", "e/f"];

#[derive(Debug, Clone)]
enum Op {
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
    Sync,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0..PATHS.len(), 0u8..4, any::<bool>())
            .prop_map(|(alpha, path, content, exec)| Op::Write { alpha, path, content, exec }),
        1 => (any::<bool>(), 0..PATHS.len(), 0u8..3)
            .prop_map(|(alpha, path, target)| Op::Link { alpha, path, target }),
        1 => (any::<bool>(), 0..PATHS.len()).prop_map(|(alpha, path)| Op::Mkdir { alpha, path }),
        2 => (any::<bool>(), 0..PATHS.len()).prop_map(|(alpha, path)| Op::Delete { alpha, path }),
        2 => Just(Op::Sync),
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
/// creating the path would have to).
fn make_parents(root: &Path, rel: &str) {
    let mut cur = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur).unwrap();
                std::fs::create_dir(&cur).unwrap();
            }
            Err(_) => std::fs::create_dir(&cur).unwrap(),
        }
    }
}

fn apply_op(alpha: &Path, beta: &Path, op: &Op) {
    let root = |a: bool| if a { alpha } else { beta };
    match *op {
        Op::Write {
            alpha: a,
            path,
            content,
            exec,
        } => {
            let rel = PATHS[path];
            make_parents(root(a), rel);
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
            make_parents(root(a), rel);
            let p = root(a).join(rel);
            remove(&p);
            symlink(format!("target-{target}"), &p).unwrap();
        }
        Op::Mkdir { alpha: a, path } => {
            let rel = PATHS[path];
            make_parents(root(a), rel);
            let p = root(a).join(rel);
            if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                remove(&p);
                std::fs::create_dir(&p).unwrap();
            }
        }
        Op::Delete { alpha: a, path } => remove(&root(a).join(PATHS[path])),
        Op::Sync | Op::Restart => {}
    }
}

fn tree(root: &Path) -> Tree {
    scan::scan(root, &mut Cache::default(), u64::MAX).unwrap().0
}

/// Every entry the keeper holds, by path (all slots).
fn kept(dir: &Path) -> Vec<(Vec<u8>, Entry)> {
    let mut out = Vec::new();
    for slot in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.extend(tree(&slot.path()));
    }
    out
}

struct World {
    _dir: tempfile::TempDir,
    alpha: PathBuf,
    beta: PathBuf,
    ancestor_file: PathBuf,
    keeper: DirKeeper,
    scanners: Scanners,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
        std::fs::create_dir(&alpha).unwrap();
        std::fs::create_dir(&beta).unwrap();
        let keeper = DirKeeper {
            dir: dir.path().join("kept"),
            kept: 0,
        };
        let ancestor_file = dir.path().join("ancestor.json");
        World {
            _dir: dir,
            alpha,
            beta,
            ancestor_file,
            keeper,
            scanners: Scanners::default(),
        }
    }

    fn sync(&mut self) -> Result<(), TestCaseError> {
        let mut ancestor = berth_sync::ancestor::load(&self.ancestor_file).unwrap();
        let (a0, b0, anc0) = (tree(&self.alpha), tree(&self.beta), ancestor.clone());
        sync_once(
            &self.alpha,
            &self.beta,
            &mut ancestor,
            &mut self.scanners,
            &mut self.keeper,
            u64::MAX,
        )
        .map_err(|e| TestCaseError::fail(format!("sync failed: {e}")))?;
        berth_sync::ancestor::save(&self.ancestor_file, &ancestor).unwrap();
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_on_both_sides_converge_without_losing_anything(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in &ops {
            match op {
                Op::Sync => w.sync()?,
                Op::Restart => w.scanners = Scanners::default(),
                _ => apply_op(&w.alpha, &w.beta, op),
            }
        }
        w.sync()?;
        let before = (tree(&w.alpha), tree(&w.beta));
        w.sync()?;
        prop_assert_eq!(before, (tree(&w.alpha), tree(&w.beta)));
    }
}
