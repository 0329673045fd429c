//! The pure three-way decision for one path.

/// What one side has at a path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Entry {
    /// A regular file: its content hash and executable bit.
    File { digest: [u8; 32], executable: bool },
    /// A symbolic link (never followed): its target, as bytes.
    Symlink { target: Vec<u8> },
    /// A directory (its children are paths of their own).
    Dir,
}

/// A path's state in the ancestor and on both sides; `None`: absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triple {
    pub ancestor: Option<Entry>,
    pub alpha: Option<Entry>,
    pub beta: Option<Entry>,
}

/// Which tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Alpha,
    Beta,
}

/// What to do with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Both sides agree (possibly after making the same change): only the ancestor moves on.
    Agree(Option<Entry>),
    /// Make side `to` equal to the other side's `entry` (`None`: delete it there).
    Propagate { to: Side, entry: Option<Entry> },
    /// Both changed differently: alpha's `entry` wins and goes to beta; beta's version `kept`
    /// (if it had one) is handed to the keeper first.
    Conflict { entry: Entry, kept: Option<Entry> },
    /// Beta's version loses to alpha's structure (alpha put a non-directory where beta's path
    /// lives): it is handed to the keeper, then removed from beta. Only the engine's structure
    /// pass decides this; [`reconcile`] never does.
    Yield { kept: Entry },
}

/// Decides one path. Pure and total: every combination has an answer.
pub fn reconcile(t: &Triple) -> Decision {
    let (anc, a, b) = (&t.ancestor, &t.alpha, &t.beta);
    if a == b {
        return Decision::Agree(a.clone());
    }
    let alpha_changed = a != anc;
    let beta_changed = b != anc;
    match (alpha_changed, beta_changed) {
        (true, false) => Decision::Propagate {
            to: Side::Beta,
            entry: a.clone(),
        },
        (false, true) => Decision::Propagate {
            to: Side::Alpha,
            entry: b.clone(),
        },
        // Both changed, differently (a != b). A deletion never beats a modification.
        _ => match (a, b) {
            (None, Some(b)) => Decision::Propagate {
                to: Side::Alpha,
                entry: Some(b.clone()),
            },
            (Some(a), None) => Decision::Propagate {
                to: Side::Beta,
                entry: Some(a.clone()),
            },
            (Some(a), Some(b)) => Decision::Conflict {
                entry: a.clone(),
                kept: Some(b.clone()),
            },
            // a == b == None was handled above.
            (None, None) => Decision::Agree(None),
        },
    }
}

impl Decision {
    /// What both sides hold once the decision is carried out (the new ancestor).
    pub fn result(&self) -> Option<&Entry> {
        match self {
            Decision::Agree(e) | Decision::Propagate { entry: e, .. } => e.as_ref(),
            Decision::Conflict { entry, .. } => Some(entry),
            Decision::Yield { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8) -> Option<Entry> {
        Some(Entry::File {
            digest: [n; 32],
            executable: false,
        })
    }

    /// Every kind of state a side can be in relative to the ancestor `file(1)`:
    /// unchanged, created (only when the ancestor is absent), modified, mode-changed, deleted,
    /// type-changed (to a symlink, to a directory).
    fn variants(anc: &Option<Entry>) -> Vec<(&'static str, Option<Entry>)> {
        let mut v = vec![("unchanged", anc.clone()), ("deleted", None)];
        if anc.is_none() {
            v = vec![("unchanged", None), ("created", file(7))];
        } else {
            v.push(("modified", file(2)));
            v.push((
                "chmod",
                Some(Entry::File {
                    digest: [1; 32],
                    executable: true,
                }),
            ));
            v.push((
                "to-symlink",
                Some(Entry::Symlink {
                    target: b"x".to_vec(),
                }),
            ));
            v.push(("to-dir", Some(Entry::Dir)));
        }
        v
    }

    /// The whole table: for every ancestor (absent, file, symlink, dir) and every pair of side
    /// variants, the decision follows the rules, both sides end equal, and no version is lost.
    #[test]
    fn every_row_of_the_three_way_table() {
        let ancestors = [
            None,
            file(1),
            Some(Entry::Symlink {
                target: b"t".to_vec(),
            }),
            Some(Entry::Dir),
        ];
        let mut rows = 0;
        for anc in ancestors {
            for (an, a) in variants(&anc) {
                for (bn, b) in variants(&anc) {
                    // Beta's variants are distinct from alpha's where both "modified".
                    let b = if bn == "modified" { file(3) } else { b };
                    let t = Triple {
                        ancestor: anc.clone(),
                        alpha: a.clone(),
                        beta: b.clone(),
                    };
                    let d = reconcile(&t);
                    rows += 1;
                    let ctx = format!("ancestor {anc:?}, alpha {an}, beta {bn}: {d:?}");
                    let expected = if a == b {
                        Decision::Agree(a.clone())
                    } else if a == anc {
                        Decision::Propagate {
                            to: Side::Alpha,
                            entry: b.clone(),
                        }
                    } else if b == anc {
                        Decision::Propagate {
                            to: Side::Beta,
                            entry: a.clone(),
                        }
                    } else if a.is_none() {
                        Decision::Propagate {
                            to: Side::Alpha,
                            entry: b.clone(),
                        }
                    } else if b.is_none() {
                        Decision::Propagate {
                            to: Side::Beta,
                            entry: a.clone(),
                        }
                    } else {
                        Decision::Conflict {
                            entry: a.clone().unwrap(),
                            kept: b.clone(),
                        }
                    };
                    assert_eq!(d, expected, "{ctx}");
                    // Alpha's edit always survives; beta's survives or is kept.
                    if a != anc {
                        let survives =
                            d.result() == a.as_ref() || (a.is_none() && b.is_some() && b != anc);
                        assert!(survives, "alpha's edit lost: {ctx}");
                    }
                    if b != anc && b.is_some() {
                        let survives = d.result() == b.as_ref()
                            || matches!(&d, Decision::Conflict { kept, .. } if *kept == b);
                        assert!(survives, "beta's edit lost: {ctx}");
                    }
                }
            }
        }
        assert!(rows >= 4 + 3 * 36, "{rows} rows");
    }

    #[test]
    fn the_plain_cases_read_naturally() {
        let t = |anc, a, b| Triple {
            ancestor: anc,
            alpha: a,
            beta: b,
        };
        assert_eq!(
            reconcile(&t(file(1), file(2), file(1))),
            Decision::Propagate {
                to: Side::Beta,
                entry: file(2)
            }
        );
        assert_eq!(
            reconcile(&t(file(1), file(1), None)),
            Decision::Propagate {
                to: Side::Alpha,
                entry: None
            }
        );
        assert_eq!(
            reconcile(&t(None, file(2), file(2))),
            Decision::Agree(file(2))
        );
        assert_eq!(
            reconcile(&t(file(1), file(2), file(3))),
            Decision::Conflict {
                entry: Entry::File {
                    digest: [2; 32],
                    executable: false
                },
                kept: file(3)
            }
        );
        // Delete versus modify keeps the modification, on either side.
        assert_eq!(
            reconcile(&t(file(1), None, file(3))),
            Decision::Propagate {
                to: Side::Alpha,
                entry: file(3)
            }
        );
        assert_eq!(
            reconcile(&t(file(1), file(2), None)),
            Decision::Propagate {
                to: Side::Beta,
                entry: file(2)
            }
        );
    }
}
