//! One full reconcile of two trees: scan both, decide every path three ways, apply, and move
//! the ancestor on.
//!
//! Order matters where a path changes kind: removals go deepest first (a directory is emptied
//! before it goes), creations shallowest first (a directory exists before its children).
//! Conflicts hand beta's losing version to a [`Keeper`] before alpha's version replaces it.
//!
//! Both trees are reached through their [`Endpoint`]s ([`Sides`] is generic over them), so a
//! round decides the same way whether a tree is local or remote.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::ancestor::{Ancestor, Journal, Pending};
use crate::apply::{self, ApplyError};
use crate::endpoint::{Endpoint, transfer};
use crate::gate::{Gate, Gatekeeper};
use crate::reconcile::{Decision, Entry, Side, Triple, reconcile};
use crate::relpath::RelPath;
use crate::scan::{self, Scanner, Tree, Warning};
use crate::stats::Stats;

/// Receives the losing version of a conflict before it is overwritten; a file's bytes come
/// from `content`.
pub trait Keeper {
    fn keep(
        &mut self,
        rel: &[u8],
        entry: &Entry,
        content: Option<&mut dyn Read>,
    ) -> Result<(), ApplyError>;
}

/// Keeps losing versions as files in a directory (what `berth debug sync` uses): each in a
/// numbered slot of its own, numbering on from the slots already there, so nothing kept is
/// ever replaced.
pub struct DirKeeper {
    pub dir: PathBuf,
    pub kept: usize,
}

impl DirKeeper {
    pub fn new(dir: &Path) -> DirKeeper {
        let kept = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        DirKeeper {
            dir: dir.to_path_buf(),
            kept,
        }
    }
}

impl Keeper for DirKeeper {
    fn keep(
        &mut self,
        rel: &[u8],
        entry: &Entry,
        content: Option<&mut dyn Read>,
    ) -> Result<(), ApplyError> {
        self.kept += 1;
        let slot = self.dir.join(self.kept.to_string());
        std::fs::create_dir_all(&slot).map_err(|source| ApplyError::Io {
            path: slot.display().to_string(),
            source,
        })?;
        apply::apply(&slot, rel, Some(entry), content).map(|_| ())
    }
}

/// A round that would delete more than [`Sides::deletion_burst`] paths on one side (this many
/// unless set otherwise) is a *burst*: it is not carried out until the side the deletions come
/// from has been quiet for a moment ([`ApplyError::Burst`]; the live loop waits and sets
/// [`Sides::burst_settled`]). A tree being emptied (`rm -rf`, a removed checkout) is then seen
/// whole, and a side that lost more than half of what both agreed on (in more than this many
/// paths) halts like an emptied root, instead of being carried over a batch at a time.
pub const DELETION_BURST: usize = 64;

/// Files larger than this are not synced unless configured otherwise.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// Both trees' endpoints (local ones: their scanners), kept between rounds.
#[derive(Debug)]
pub struct Sides<A = Scanner, B = Scanner> {
    pub alpha: A,
    pub beta: B,
    /// Asked before scanning and again before applying; none: always open.
    pub gate: Option<Gatekeeper>,
    /// More deletions than this in one round wait for quiet (see [`DELETION_BURST`]). Pairing
    /// sets 0: every deletion waits, so even the first few files of an `rm -rf` never cross.
    pub deletion_burst: usize,
    /// Set by the live loop once a burst of deletions has been followed by quiet: the round
    /// may then carry it out.
    pub burst_settled: bool,
    /// Where a round's writes are recorded before it makes them (see [`crate::ancestor`]);
    /// none: not recorded.
    pub journal: Option<Journal>,
}

impl Sides {
    /// Scanners for `alpha` and `beta`; files larger than `max_size` are not synced.
    pub fn new(alpha: &Path, beta: &Path, max_size: u64) -> Sides {
        Sides::with(Scanner::new(alpha, max_size), Scanner::new(beta, max_size))
    }
}

impl<A: Endpoint, B: Endpoint> Sides<A, B> {
    /// Two endpoints, with no gate.
    pub fn with(alpha: A, beta: B) -> Sides<A, B> {
        Sides {
            alpha,
            beta,
            gate: None,
            deletion_burst: DELETION_BURST,
            burst_settled: false,
            journal: None,
        }
    }

    /// Fails with [`ApplyError::Gated`] unless the gate is open.
    fn pass_gate(&mut self) -> Result<(), ApplyError> {
        let answer = self.gate.as_mut().map_or(Gate::Open, Gatekeeper::check);
        match answer {
            Gate::Open => Ok(()),
            Gate::Busy(why) => Err(ApplyError::Gated { busy: true, why }),
            Gate::Closed(why) => Err(ApplyError::Gated { busy: false, why }),
        }
    }

    /// Adds extra exclusions (gitignore syntax) to both sides.
    pub fn exclude(&mut self, patterns: &[String]) -> Result<(), scan::ScanError> {
        self.alpha.exclude(patterns)?;
        self.beta.exclude(patterns)
    }

    /// Forgets the ignore rules both sides read so far (an ignore file changed).
    pub fn forget_rules(&mut self) -> Result<(), ApplyError> {
        self.alpha.forget_rules().map_err(scan_err)?;
        self.beta.forget_rules().map_err(scan_err)
    }

    /// Whether an event on `rel` of `side` is only the echo of berth's own last write there.
    pub fn is_echo(&mut self, side: Side, rel: &[u8]) -> bool {
        match side {
            Side::Alpha => self.alpha.is_echo(rel),
            Side::Beta => self.beta.is_echo(rel),
        }
    }

    /// Sends a heartbeat through `side`'s watch.
    pub fn heartbeat(&mut self, side: Side) -> std::io::Result<()> {
        match side {
            Side::Alpha => self.alpha.heartbeat(),
            Side::Beta => self.beta.heartbeat(),
        }
    }

    /// The name of `side`'s tree, for messages.
    pub fn name(&self, side: Side) -> String {
        match side {
            Side::Alpha => self.alpha.name(),
            Side::Beta => self.beta.name(),
        }
    }
}

/// One side's whole tree and what its scan left out.
pub type Scanned = (Tree, Vec<Warning>);

impl<A: Endpoint, B: Endpoint> Sides<A, B> {
    /// Both whole trees, scanned at the same time (beta on a thread of its own): a full scan
    /// of a large tree is mostly system calls and hashing, which two cores share.
    pub fn scan_both(&mut self) -> Result<(Scanned, Scanned), scan::ScanError> {
        let (alpha, beta) = (&mut self.alpha, &mut self.beta);
        std::thread::scope(|s| {
            let b = std::thread::Builder::new()
                .name("berth-scan".into())
                .spawn_scoped(s, move || beta.full());
            let a = alpha.full();
            let b = match b {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(e) => Err(scan::ScanError {
                    root: "both trees".into(),
                    error: format!("cannot start a thread to scan with: {e}"),
                }),
            };
            Ok((a?, b?))
        })
    }
}

/// A scan error as a round's error.
fn scan_err(e: scan::ScanError) -> ApplyError {
    ApplyError::Io {
        path: e.root.clone(),
        source: std::io::Error::other(e.error),
    }
}

fn depth(rel: &[u8]) -> usize {
    rel.iter().filter(|b| **b == b'/').count()
}

/// Reconciles the whole of both trees against `ancestor` once; on success `ancestor` is what
/// both now hold.
pub fn sync_once<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &mut Ancestor,
    keeper: &mut dyn Keeper,
) -> Result<Stats, ApplyError> {
    sides.pass_gate()?;
    guard(sides, ancestor)?;
    let ((a, wa), (b, wb)) = sides.scan_both().map_err(scan_err)?;
    sides.pass_gate()?;
    let known: Vec<RelPath> = ancestor.paths().collect();
    let stats = settle(sides, ancestor, keeper, a, b, known, [wa, wb].concat());
    ancestor.pack();
    stats
}

/// The safety halt: when what both agreed on is not nothing, but one root is now empty or
/// gone (a removed checkout, an unmounted disk) and the other is not, syncing would empty the
/// other side too. Refuse instead, until the root is back or both sides are empty.
fn guard<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &Ancestor,
) -> Result<(), ApplyError> {
    if ancestor.is_empty() {
        return Ok(());
    }
    let a = sides.alpha.root_is_empty().map_err(scan_err)?;
    let b = sides.beta.root_is_empty().map_err(scan_err)?;
    if a == b {
        return Ok(());
    }
    let root = sides.name(if a { Side::Alpha } else { Side::Beta });
    Err(ApplyError::RootEmptied { root })
}

/// The smallest set of paths covering `dirty`: none is below another.
fn covering(dirty: &BTreeSet<RelPath>) -> Vec<&RelPath> {
    dirty
        .iter()
        .filter(|p| {
            !p.iter()
                .enumerate()
                .any(|(i, b)| *b == b'/' && dirty.contains(&p[..i]))
        })
        .collect()
}

/// Reconciles only what is at or below the `dirty` paths (those the watcher saw change, on
/// either side); the rest of the ancestor is untouched.
pub fn sync_paths<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &mut Ancestor,
    keeper: &mut dyn Keeper,
    dirty: &BTreeSet<RelPath>,
) -> Result<Stats, ApplyError> {
    sides.pass_gate()?;
    guard(sides, ancestor)?;
    let (mut a, mut b, mut known, mut warnings) = (Tree::new(), Tree::new(), Vec::new(), vec![]);
    for root in covering(dirty) {
        let (ta, wa) = sides.alpha.under(root).map_err(scan_err)?;
        let (tb, wb) = sides.beta.under(root).map_err(scan_err)?;
        a.extend(ta);
        b.extend(tb);
        warnings.extend(wa.into_iter().chain(wb));
        known.extend(ancestor.paths_under(root));
    }
    sides.pass_gate()?;
    settle(sides, ancestor, keeper, a, b, known, warnings)
}

/// Decides every path in `a`, `b` and `known` (ancestor paths in scope), applies the decisions
/// in a safe order, and moves the ancestor on.
fn settle<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &mut Ancestor,
    keeper: &mut dyn Keeper,
    a: Tree,
    b: Tree,
    known: Vec<RelPath>,
    warnings: Vec<Warning>,
) -> Result<Stats, ApplyError> {
    let skipped: BTreeSet<&RelPath> = warnings.iter().map(Warning::path).collect();
    let paths: BTreeSet<&RelPath> = a.keys().chain(b.keys()).chain(&known).collect();
    let mut decisions = Vec::new();
    for p in paths {
        if skipped.contains(p) {
            continue; // never decide on what one side could not see
        }
        let (alpha, beta, agreed) = (a.get(p), b.get(p), ancestor.get(p));
        if alpha.is_some() && alpha == beta && beta == agreed {
            // Unchanged on both sides: nothing to write, nothing to record, and (both sides
            // holding it) its directories are directories on both sides already.
            continue;
        }
        let t = Triple {
            ancestor: agreed.cloned(),
            alpha: alpha.cloned(),
            beta: beta.cloned(),
        };
        decisions.push((p.clone(), reconcile(&t)));
    }
    make_structure_consistent(&mut decisions);
    check_deletions(sides, ancestor.len(), &decisions)?;
    carry_out(sides, ancestor, keeper, decisions, warnings)
}

/// The deletion safety checks of a round: a burst waits for quiet; after it, a side that lost
/// more than half of what both agreed on (in more than [`DELETION_BURST`] paths) halts syncing
/// (as an emptied root does) rather than emptying the other side too.
fn check_deletions<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    agreed: usize,
    decisions: &[(RelPath, Decision)],
) -> Result<(), ApplyError> {
    for to in [Side::Alpha, Side::Beta] {
        let deletions = decisions
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Propagate { to: t, entry: None } if *t == to))
            .count();
        if deletions == 0 || deletions <= sides.deletion_burst {
            continue;
        }
        let from = match to {
            Side::Alpha => Side::Beta,
            Side::Beta => Side::Alpha,
        };
        if !sides.burst_settled {
            return Err(ApplyError::Burst {
                root: sides.name(from),
                deletions,
            });
        }
        if deletions > DELETION_BURST && deletions * 2 > agreed {
            return Err(ApplyError::RootEmptied {
                root: sides.name(from),
            });
        }
    }
    sides.burst_settled = false;
    Ok(())
}

/// Applies `decisions` in a safe order and moves the ancestor on, path by path.
fn carry_out<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &mut Ancestor,
    keeper: &mut dyn Keeper,
    mut decisions: Vec<(RelPath, Decision)>,
    warnings: Vec<Warning>,
) -> Result<Stats, ApplyError> {
    let mut stats = Stats {
        warnings,
        ..Stats::default()
    };
    // Removals (and replacements of a directory) deepest first, then everything else
    // shallowest first.
    let removal = |d: &Decision| {
        matches!(
            d,
            Decision::Propagate { entry: None, .. } | Decision::Yield { .. }
        )
    };
    decisions.sort_by(|(pa, da), (pb, db)| match (removal(da), removal(db)) {
        (true, true) => depth(pb).cmp(&depth(pa)).then(pb.cmp(pa)),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => depth(pa).cmp(&depth(pb)).then(pa.cmp(pb)),
    });
    if let Some(journal) = sides.journal.as_mut() {
        let pending: Vec<Pending> = decisions
            .iter()
            .filter_map(|(p, d)| pending(p, d))
            .collect();
        if !pending.is_empty() {
            journal.record(&pending).map_err(|e| ApplyError::Io {
                path: "the journal of pending writes".into(),
                source: std::io::Error::other(e),
            })?;
        }
    }
    let half_way = (decisions.len() > 1).then_some(decisions.len() / 2);
    for (i, (p, d)) in decisions.into_iter().enumerate() {
        if Some(i) == half_way
            && let Some(e) = crate::failpoint::hit(crate::failpoint::ROUND_HALF_WAY)
        {
            return Err(ApplyError::Io {
                path: String::from_utf8_lossy(&p).into_owned(),
                source: e,
            });
        }
        let result = match &d {
            Decision::Agree(e) => e.clone(),
            Decision::Propagate { to, entry } => match to {
                Side::Alpha => {
                    stats.to_alpha += 1;
                    transfer(&mut sides.beta, &mut sides.alpha, &p, entry.as_ref())?
                }
                Side::Beta => {
                    stats.to_beta += 1;
                    transfer(&mut sides.alpha, &mut sides.beta, &p, entry.as_ref())?
                }
            },
            Decision::Yield { kept } => {
                keep(&mut sides.beta, keeper, &p, kept)?;
                sides.beta.apply(&p, None, None)?;
                stats.conflicts += 1;
                None
            }
            Decision::Conflict { entry, kept } => {
                if let Some(k) = kept {
                    keep(&mut sides.beta, keeper, &p, k)?;
                }
                let written = transfer(&mut sides.alpha, &mut sides.beta, &p, Some(entry))?;
                stats.conflicts += 1;
                written
            }
        };
        ancestor.set(&p, result);
    }
    Ok(stats)
}

/// The write a decision makes, if any.
fn pending(path: &RelPath, d: &Decision) -> Option<Pending> {
    let (side, entry) = match d {
        Decision::Agree(_) => return None,
        Decision::Propagate { to, entry } => (*to, entry.clone()),
        Decision::Conflict { entry, .. } => (Side::Beta, Some(entry.clone())),
        Decision::Yield { .. } => (Side::Beta, None),
    };
    Some(Pending {
        path: path.clone(),
        side,
        entry,
    })
}

/// Hands beta's version `kept` of `rel` to the keeper (a file's bytes read from beta).
fn keep<B: Endpoint>(
    beta: &mut B,
    keeper: &mut dyn Keeper,
    rel: &[u8],
    kept: &Entry,
) -> Result<(), ApplyError> {
    match kept {
        Entry::File { .. } => {
            let mut content = beta.read(rel)?;
            keeper.keep(rel, kept, Some(&mut content))
        }
        _ => keeper.keep(rel, kept, None),
    }
}

/// Makes side `to` identical to the other side, one way, and sets the ancestor to the result
/// (a pairing's start copies the agent's working files over the checkout this way). Nothing of
/// `to` is kept: call it only when everything `to` holds is held elsewhere as well. Paths
/// either side could not read are left alone. `from`: the other side's scan if it was made
/// already — then only `to` is scanned (the scan is taken once the gate lets the copy begin);
/// whatever changed on the other side since must be known to whoever syncs next (its watch
/// began before that scan).
pub fn copy_over<A: Endpoint, B: Endpoint>(
    sides: &mut Sides<A, B>,
    ancestor: &mut Ancestor,
    to: Side,
    from: &mut Option<Scanned>,
) -> Result<Stats, ApplyError> {
    sides.pass_gate()?;
    let ((a, wa), (b, wb)) = match (from.take(), to) {
        (None, _) => sides.scan_both().map_err(scan_err)?,
        (Some(from), Side::Alpha) => (sides.alpha.full().map_err(scan_err)?, from),
        (Some(from), Side::Beta) => (from, sides.beta.full().map_err(scan_err)?),
    };
    sides.pass_gate()?;
    let warnings = [wa, wb].concat();
    let skipped: BTreeSet<&RelPath> = warnings.iter().map(Warning::path).collect();
    let (from, onto) = match to {
        Side::Alpha => (b, a),
        Side::Beta => (a, b),
    };
    // What both already hold becomes the ancestor at once; only the rest is carried over.
    // Both trees are walked together in path order, their entries moved, not copied.
    let (mut agreed, mut changes) = (Vec::new(), Vec::new());
    let (mut from, mut onto) = (from.into_iter().peekable(), onto.into_iter().peekable());
    loop {
        let order = match (from.peek(), onto.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((f, _)), Some((o, _))) => f.cmp(o),
        };
        // The next path, with what the side copied from and the side copied onto hold there.
        let (path, there, here) = match order {
            Ordering::Less => match from.next() {
                Some((p, e)) => (p, Some(e), None),
                None => break,
            },
            Ordering::Greater => match onto.next() {
                Some((p, h)) => (p, None, Some(h)),
                None => break,
            },
            Ordering::Equal => match (from.next(), onto.next()) {
                (Some((p, e)), Some((_, h))) => (p, Some(e), Some(h)),
                _ => break,
            },
        };
        if skipped.contains(&path) {
            continue;
        }
        match there {
            Some(e) if here.as_ref() == Some(&e) => agreed.push((path, e)),
            entry => changes.push((path, Decision::Propagate { to, entry })),
        }
    }
    // Only `Propagate` is decided here, which hands nothing to a keeper.
    struct Unused;
    impl Keeper for Unused {
        fn keep(
            &mut self,
            rel: &[u8],
            _: &Entry,
            _: Option<&mut dyn Read>,
        ) -> Result<(), ApplyError> {
            Err(ApplyError::BadPath(
                String::from_utf8_lossy(rel).into_owned(),
            ))
        }
    }
    // Whatever the ancestor held before is forgotten (and its rows deleted when saved).
    ancestor.replace(agreed);
    let stats = carry_out(sides, ancestor, &mut Unused, changes, warnings);
    ancestor.pack();
    stats
}

/// Whether `ancestor` is a proper prefix directory of `path`.
fn is_under(path: &[u8], ancestor: &[u8]) -> bool {
    path.len() > ancestor.len() && path.starts_with(ancestor) && path[ancestor.len()] == b'/'
}

/// Makes the per-path decisions agree on the tree's shape, alpha winning:
/// - where alpha's non-directory wins at a path, beta's changes *below* it yield (kept, removed);
/// - where something survives below a path, that path must be a directory: a directory one side
///   deleted is restored there (a deletion never beats a change), and a non-directory beta put
///   in place of alpha's directory is kept and replaced by the directory.
fn make_structure_consistent(decisions: &mut [(RelPath, Decision)]) {
    let alpha_non_dirs: Vec<RelPath> = decisions
        .iter()
        .filter(|(_, d)| match d {
            Decision::Propagate {
                to: Side::Beta,
                entry: Some(e),
            } => *e != Entry::Dir,
            Decision::Conflict { entry, .. } => *entry != Entry::Dir,
            _ => false,
        })
        .map(|(p, _)| p.clone())
        .collect();
    for (p, d) in decisions.iter_mut() {
        if let Decision::Propagate {
            to: Side::Alpha,
            entry: Some(e),
        } = d
            && alpha_non_dirs.iter().any(|n| is_under(p, n))
        {
            *d = Decision::Yield { kept: e.clone() };
        }
    }
    let mut needed: BTreeSet<RelPath> = BTreeSet::new();
    for (p, d) in decisions.iter() {
        if d.result().is_some() {
            for (i, b) in p.iter().enumerate() {
                if *b == b'/' {
                    needed.insert(p[..i].to_vec());
                }
            }
        }
    }
    for (p, d) in decisions.iter_mut() {
        if !needed.contains(p) {
            continue;
        }
        match d {
            Decision::Propagate { to, entry: None } => {
                let deleted_on = match to {
                    Side::Alpha => Side::Beta,
                    Side::Beta => Side::Alpha,
                };
                *d = Decision::Propagate {
                    to: deleted_on,
                    entry: Some(Entry::Dir),
                };
            }
            Decision::Propagate {
                to: Side::Alpha,
                entry: Some(e),
            } if *e != Entry::Dir => {
                *d = Decision::Conflict {
                    entry: Entry::Dir,
                    kept: Some(e.clone()),
                };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Setup {
        _dir: tempfile::TempDir,
        alpha: PathBuf,
        beta: PathBuf,
        keeper: DirKeeper,
        ancestor: Ancestor,
        sides: Sides,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
        std::fs::create_dir(&alpha).unwrap();
        std::fs::create_dir(&beta).unwrap();
        let keeper = DirKeeper::new(&dir.path().join("kept"));
        Setup {
            sides: Sides::new(&alpha, &beta, u64::MAX),
            _dir: dir,
            alpha,
            beta,
            keeper,
            ancestor: Ancestor::default(),
        }
    }

    impl Setup {
        fn sync(&mut self) -> Stats {
            sync_once(&mut self.sides, &mut self.ancestor, &mut self.keeper).unwrap()
        }
        fn trees(&mut self) -> (Tree, Tree) {
            let a = Scanner::new(&self.alpha, u64::MAX).full().unwrap().0;
            let b = Scanner::new(&self.beta, u64::MAX).full().unwrap().0;
            (a, b)
        }
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn edits_flow_both_ways_and_both_trees_end_equal() {
        let mut s = setup();
        write(&s.alpha, "a/user.txt", "from alpha");
        write(&s.beta, "b/agent.txt", "from beta");
        std::fs::create_dir(s.beta.join("empty")).unwrap();
        let stats = s.sync();
        assert_eq!((stats.to_alpha, stats.to_beta), (3, 2));
        let (a, b) = s.trees();
        assert_eq!(a, b);
        assert_eq!(
            std::fs::read_to_string(s.beta.join("a/user.txt")).unwrap(),
            "from alpha"
        );
        // Deletion propagates; a second round is quiet.
        std::fs::remove_file(s.alpha.join("b/agent.txt")).unwrap();
        s.sync();
        assert!(!s.beta.join("b/agent.txt").exists());
        assert!(s.sync().is_quiet());
    }

    #[test]
    fn a_shut_gate_lets_nothing_through_before_or_after_the_scan() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut s = setup();
        write(&s.alpha, "f", "from alpha");
        // Open for the first question (before the scan), shut for the second (after it): the
        // tree changed meaning while it was read, so nothing may be applied.
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        s.sides.gate = Some(Gatekeeper::new(move || {
            match counter.fetch_add(1, Ordering::SeqCst) {
                0 => Gate::Open,
                _ => Gate::Closed("the checkout switched branches".into()),
            }
        }));
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(
            matches!(err, ApplyError::Gated { busy: false, .. }),
            "{err}"
        );
        assert!(!s.beta.join("f").exists());
        assert!(s.ancestor.is_empty());
        let dirty = BTreeSet::from([b"f".to_vec()]);
        let err = sync_paths(&mut s.sides, &mut s.ancestor, &mut s.keeper, &dirty).unwrap_err();
        assert_eq!(err.to_string(), "the checkout switched branches");
        assert!(!s.beta.join("f").exists());
        s.sides.gate = Some(Gatekeeper::new(|| Gate::Busy("index.lock".into())));
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(matches!(err, ApplyError::Gated { busy: true, .. }));
        s.sides.gate = None;
        s.sync();
        assert_eq!(
            std::fs::read_to_string(s.beta.join("f")).unwrap(),
            "from alpha"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn copy_over_makes_one_side_exactly_the_other_and_the_ancestor_what_both_hold() {
        let mut s = setup();
        write(&s.alpha, "old/gone.txt", "only in alpha");
        write(&s.alpha, "same.txt", "same");
        write(&s.alpha, "x", "a file where beta has a directory");
        s.sync();
        std::fs::remove_file(s.beta.join("x")).unwrap();
        write(&s.beta, "x/inside.txt", "beta's");
        write(&s.beta, "same.txt", "beta's edit");
        std::fs::remove_dir_all(s.beta.join("old")).unwrap();
        std::os::unix::fs::symlink("same.txt", s.beta.join("link")).unwrap();
        let stats = copy_over(&mut s.sides, &mut s.ancestor, Side::Alpha, &mut None).unwrap();
        assert_eq!(stats.to_beta, 0);
        assert_eq!(stats.conflicts, 0);
        let (a, b) = s.trees();
        assert_eq!(a, b);
        assert_eq!(s.ancestor.tree(), a);
        assert!(!s.alpha.join("old").exists());
        assert_eq!(
            std::fs::read_to_string(s.alpha.join("x/inside.txt")).unwrap(),
            "beta's"
        );
        // Nothing is left to do, and nothing looks like a conflict afterwards.
        assert!(s.sync().is_quiet());
    }

    #[test]
    fn a_burst_of_deletions_waits_for_quiet_and_losing_most_of_a_side_halts() {
        let mut s = setup();
        for i in 0..200 {
            write(&s.alpha, &format!("d{}/f{i}", i % 4), "x");
        }
        s.sync();
        // 100 of 200 deleted on beta: a burst, but not most of the tree.
        for i in 0..100 {
            std::fs::remove_file(s.beta.join(format!("d{}/f{i}", i % 4))).unwrap();
        }
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(
            matches!(err, ApplyError::Burst { deletions: 100, .. }),
            "{err}"
        );
        assert!(
            s.alpha.join("d0/f0").exists(),
            "nothing deleted while it waits"
        );
        s.sides.burst_settled = true;
        let stats = s.sync();
        assert_eq!(stats.to_alpha, 100);
        assert!(!s.sides.burst_settled, "a settled burst is used once");
        // Then 99 of the remaining 100: more than half of what both agreed on.
        for i in 100..199 {
            std::fs::remove_file(s.beta.join(format!("d{}/f{i}", i % 4))).unwrap();
        }
        s.sides.burst_settled = true;
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(matches!(err, ApplyError::RootEmptied { .. }), "{err}");
        assert!(err.is_pausing());
        assert!(
            s.alpha.join("d0/f100").exists(),
            "the other side is not emptied"
        );
    }

    #[test]
    fn with_no_allowance_even_one_deletion_waits_for_quiet() {
        let mut s = setup();
        s.sides.deletion_burst = 0;
        write(&s.alpha, "a", "x");
        write(&s.alpha, "b", "y");
        s.sync();
        std::fs::remove_file(s.beta.join("a")).unwrap();
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(
            matches!(err, ApplyError::Burst { deletions: 1, .. }),
            "{err}"
        );
        assert!(s.alpha.join("a").exists(), "nothing deleted while it waits");
        // Quiet followed: it goes through (half of a two-file tree is no halt: too few paths).
        s.sides.burst_settled = true;
        s.sync();
        assert!(!s.alpha.join("a").exists());
        assert!(s.alpha.join("b").exists());
    }

    #[test]
    fn a_conflict_keeps_betas_version_and_alpha_wins() {
        let mut s = setup();
        write(&s.alpha, "f", "base");
        s.sync();
        write(&s.alpha, "f", "user edit");
        write(&s.beta, "f", "agent edit");
        let stats = s.sync();
        assert_eq!(stats.conflicts, 1);
        assert_eq!(
            std::fs::read_to_string(s.beta.join("f")).unwrap(),
            "user edit"
        );
        assert_eq!(
            std::fs::read_to_string(s.keeper.dir.join("1/f")).unwrap(),
            "agent edit"
        );
    }

    #[test]
    fn a_deleted_directory_comes_back_for_a_change_made_inside_it() {
        let mut s = setup();
        write(
            &s.alpha,
            "README",
            "so that alpha never becomes empty (a safety halt)",
        );
        write(&s.alpha, "d/keep.txt", "v1");
        write(&s.alpha, "d/other.txt", "v1");
        s.sync();
        std::fs::remove_dir_all(s.alpha.join("d")).unwrap();
        write(&s.beta, "d/keep.txt", "v2 by the agent");
        s.sync();
        assert_eq!(
            std::fs::read_to_string(s.alpha.join("d/keep.txt")).unwrap(),
            "v2 by the agent"
        );
        assert!(
            !s.beta.join("d/other.txt").exists(),
            "the unchanged file's deletion still propagates"
        );
        let (a, b) = s.trees();
        assert_eq!(a, b);
    }

    #[test]
    fn alpha_replacing_a_directory_wins_over_a_change_inside_it_which_is_kept() {
        let mut s = setup();
        write(&s.alpha, "x/inner.txt", "v1");
        s.sync();
        std::fs::remove_dir_all(s.alpha.join("x")).unwrap();
        write(&s.alpha, "x", "alpha's file");
        write(&s.beta, "x/inner.txt", "beta's change");
        let stats = s.sync();
        assert_eq!(stats.conflicts, 1);
        assert_eq!(
            std::fs::read_to_string(s.beta.join("x")).unwrap(),
            "alpha's file"
        );
        let kept = std::fs::read_to_string(s.keeper.dir.join("1/x/inner.txt")).unwrap();
        assert_eq!(kept, "beta's change");
        let (a, b) = s.trees();
        assert_eq!(a, b);
    }

    #[test]
    fn beta_replacing_a_directory_loses_to_a_change_inside_it_and_is_kept() {
        let mut s = setup();
        write(&s.alpha, "x/inner.txt", "v1");
        s.sync();
        std::fs::remove_dir_all(s.beta.join("x")).unwrap();
        write(&s.beta, "x", "beta's file");
        write(&s.alpha, "x/inner.txt", "alpha's change");
        let stats = s.sync();
        assert_eq!(stats.conflicts, 1);
        assert_eq!(
            std::fs::read_to_string(s.beta.join("x/inner.txt")).unwrap(),
            "alpha's change"
        );
        assert_eq!(
            std::fs::read_to_string(s.keeper.dir.join("1/x")).unwrap(),
            "beta's file"
        );
        let (a, b) = s.trees();
        assert_eq!(a, b);
    }

    #[test]
    fn a_file_replacing_a_directory_on_one_side_reaches_the_other() {
        let mut s = setup();
        write(&s.alpha, "x/inner.txt", "inside");
        s.sync();
        std::fs::remove_dir_all(s.alpha.join("x")).unwrap();
        write(&s.alpha, "x", "now a file");
        s.sync();
        assert_eq!(
            std::fs::read_to_string(s.beta.join("x")).unwrap(),
            "now a file"
        );
        let (a, b) = s.trees();
        assert_eq!(a, b);
    }

    #[test]
    fn non_utf8_names_sync_and_links_leading_outside_are_never_written_through() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let mut s = setup();
        let outside = s._dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(s.alpha.join(OsStr::from_bytes(b"caf\xe9")), "latin-1 name").unwrap();
        // alpha: `d` is a link out of the tree; beta: `d` is a directory with a file in it.
        std::os::unix::fs::symlink(&outside, s.alpha.join("d")).unwrap();
        write(&s.beta, "d/f", "beta's file");
        let stats = s.sync();
        assert_eq!(stats.conflicts, 2, "beta's d and d/f lose to alpha's link");
        assert_eq!(
            std::fs::read(s.beta.join(OsStr::from_bytes(b"caf\xe9"))).unwrap(),
            b"latin-1 name"
        );
        assert_eq!(std::fs::read_link(s.beta.join("d")).unwrap(), outside);
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
        assert_eq!(
            std::fs::read_to_string(s.keeper.dir.join("1/d/f")).unwrap(),
            "beta's file"
        );
        // A change beta now makes "inside" the link is a change of the link's target, which
        // the engine never follows: only the link itself is synced.
        std::fs::write(outside.join("new"), "outside").unwrap();
        let stats = s.sync();
        assert!(stats.is_quiet(), "{stats:?}");
        let (a, b) = s.trees();
        assert_eq!(a, b);
    }

    #[test]
    fn an_emptied_root_halts_syncing_instead_of_emptying_the_other_side() {
        let mut s = setup();
        write(&s.alpha, "a/one", "1");
        write(&s.alpha, "two", "2");
        s.sync();
        for entry in std::fs::read_dir(&s.beta).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
        let err = sync_once(&mut s.sides, &mut s.ancestor, &mut s.keeper).unwrap_err();
        assert!(matches!(err, ApplyError::RootEmptied { .. }) && err.is_pausing());
        let dirty = BTreeSet::from([b"two".to_vec()]);
        let err = sync_paths(&mut s.sides, &mut s.ancestor, &mut s.keeper, &dirty).unwrap_err();
        assert!(matches!(err, ApplyError::RootEmptied { .. }));
        assert!(s.alpha.join("a/one").exists() && s.alpha.join("two").exists());
        // Once the root holds something again, syncing goes on (and the deletions it then sees
        // are real ones).
        write(&s.beta, "new", "3");
        s.sync();
        assert!(s.alpha.join("new").exists());
        // Both sides empty: nothing to protect.
        for root in [&s.alpha, &s.beta] {
            for entry in std::fs::read_dir(root).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    std::fs::remove_dir_all(p).unwrap();
                } else {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        s.sync();
        assert!(s.ancestor.is_empty());
    }
}
