//! A git operation in progress in a checkout: what git calls it and how to finish or abandon it.

use serde::{Deserialize, Serialize};

/// A git operation that can be in progress in a checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Merge,
    Rebase,
    /// `git am` (a mailbox of patches being applied).
    Am,
    CherryPick,
    Revert,
    Bisect,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::Merge,
        Operation::Rebase,
        Operation::Am,
        Operation::CherryPick,
        Operation::Revert,
        Operation::Bisect,
    ];

    /// As git calls it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Merge => "merge",
            Operation::Rebase => "rebase",
            Operation::Am => "am",
            Operation::CherryPick => "cherry-pick",
            Operation::Revert => "revert",
            Operation::Bisect => "bisect",
        }
    }

    /// How to finish or abandon it.
    pub fn fix(self) -> &'static str {
        match self {
            Operation::Merge => "commit the merge or run `git merge --abort`",
            Operation::Rebase => "run `git rebase --continue` or `git rebase --abort`",
            Operation::Am => "run `git am --continue` or `git am --abort`",
            Operation::CherryPick => {
                "run `git cherry-pick --continue` or `git cherry-pick --abort`"
            }
            Operation::Revert => "run `git revert --continue` or `git revert --abort`",
            Operation::Bisect => "run `git bisect reset`",
        }
    }
}
