//! A block of lines berth adds to a repository's `info/exclude` (a comment naming berth and one
//! pattern) and takes out again so that the file is byte for byte as it was.
//!
//! Adding is planned first ([`plan`]) so the caller can record what it is about to do before it
//! does it: whether the file is created, and whether a newline goes before the block (a file
//! that did not end with one). Nothing is added when a line with the pattern is there already —
//! it may be the user's, and is never berth's to remove. Removing ([`remove`]) takes out exactly
//! berth's block (and the newline it put before it; the file itself if berth created it and
//! nothing else was written to it since); a block that is not there any more (the user edited it
//! away) leaves the file as it is. Files are replaced whole (a temporary file renamed over them).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Git, GitError};

/// What berth writes: its comment line, then its pattern.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// A comment line naming berth (with its `#`).
    pub comment: &'a str,
    /// The pattern line.
    pub pattern: &'a str,
}

impl Block<'_> {
    fn text(&self) -> String {
        format!("{}\n{}\n", self.comment, self.pattern)
    }
}

/// What adding the block does to the file (recorded before it is done, needed to undo it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addition {
    /// The file did not exist.
    pub created: bool,
    /// The file did not end with a newline: one goes before the block.
    pub separator: bool,
}

/// Why the exclude file could not be found, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("cannot find the repository's info/exclude: {0}")]
    Git(#[from] GitError),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The repository's `info/exclude` (also of a linked worktree: the common one).
pub fn path(git: &Git) -> Result<PathBuf, ExcludeError> {
    let p = git.query(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-path",
        "info/exclude",
    ])?;
    Ok(PathBuf::from(p))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExcludeError + '_ {
    move |source| ExcludeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's text (`None`: it does not exist).
fn read(path: &Path) -> Result<Option<String>, ExcludeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// What adding `block` to a file holding `text` (`None`: none) does; `None`: nothing, a line
/// with its pattern is there already.
pub fn plan_for(text: Option<&str>, block: Block<'_>) -> Option<Addition> {
    let created = text.is_none();
    let text = text.unwrap_or_default();
    if text.lines().any(|l| l.trim() == block.pattern) {
        return None;
    }
    Some(Addition {
        created,
        separator: !text.is_empty() && !text.ends_with('\n'),
    })
}

/// [`plan_for`] the file at `path`.
pub fn plan(path: &Path, block: Block<'_>) -> Result<Option<Addition>, ExcludeError> {
    Ok(plan_for(read(path)?.as_deref(), block))
}

/// Appends `block` as `addition` planned it.
pub fn add(path: &Path, block: Block<'_>, addition: Addition) -> Result<(), ExcludeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut text = if addition.separator { "\n" } else { "" }.to_string();
    text.push_str(&block.text());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io(path))
}

/// Where the last whole `lines` (starting a line) are in `text`.
fn find(text: &str, lines: &str) -> Option<usize> {
    text.rmatch_indices(lines)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
}

/// Whether the file at `path` holds `block`.
pub fn holds(path: &Path, block: Block<'_>) -> Result<bool, ExcludeError> {
    Ok(read(path)?.is_some_and(|t| find(&t, &block.text()).is_some()))
}

/// `text` without `block` (its last occurrence, and the newline `addition` put before it);
/// `None` if the block is not there.
pub fn without(text: &str, block: Block<'_>, addition: Addition) -> Option<String> {
    let lines = block.text();
    let at = find(text, &lines)?;
    let mut start = at;
    // The newline berth put before its block, when the block is still the file's end.
    if addition.separator && at > 0 && at + lines.len() == text.len() {
        start = at - 1;
    }
    Some(format!("{}{}", &text[..start], &text[at + lines.len()..]))
}

/// Takes `block` out of the file at `path`, as `addition` put it in; `false` if it was not
/// there (or the file is gone).
pub fn remove(path: &Path, block: Block<'_>, addition: Addition) -> Result<bool, ExcludeError> {
    let Some(text) = read(path)? else {
        return Ok(false);
    };
    let Some(rest) = without(&text, block, addition) else {
        return Ok(false);
    };
    if rest.is_empty() && addition.created {
        std::fs::remove_file(path).map_err(io(path))?;
        return Ok(true);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".berth-new");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, rest.as_bytes()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: Block<'static> = Block {
        comment: "# berth: temporary files",
        pattern: ".berth-tmp-*",
    };
    const ADDED: &str = "# berth: temporary files\n.berth-tmp-*\n";

    #[test]
    fn every_kind_of_file_gets_the_block_only_when_the_pattern_is_missing() {
        let new = |created, separator| Some(Addition { created, separator });
        let table: [(Option<&str>, Option<Addition>); 7] = [
            (None, new(true, false)),
            (Some(""), new(false, false)),
            (Some("*.log\n"), new(false, false)),
            (Some("*.log"), new(false, true)),
            (
                Some("# git ls-files --others --exclude-from=.git/info/exclude\n"),
                new(false, false),
            ),
            // The user's own line (even with spaces around it) is left alone.
            (Some(".berth-tmp-*\n"), None),
            (Some("a\n  .berth-tmp-*  \nb\n"), None),
        ];
        for (text, want) in table {
            assert_eq!(plan_for(text, BLOCK), want, "{text:?}");
        }
    }

    #[test]
    fn removing_gives_back_exactly_what_was_there() {
        for before in ["", "*.log\n", "*.log", "a\n\nb\n"] {
            let addition = plan_for(Some(before), BLOCK).unwrap();
            let sep = if addition.separator { "\n" } else { "" };
            let after = format!("{before}{sep}{ADDED}");
            assert_eq!(
                without(&after, BLOCK, addition).as_deref(),
                Some(before),
                "{before:?}"
            );
            // Lines the user added after berth's block stay, and so does the separator.
            let more = format!("{after}mine\n");
            assert_eq!(
                without(&more, BLOCK, addition),
                Some(format!("{before}{sep}mine\n"))
            );
        }
        let addition = Addition {
            created: false,
            separator: false,
        };
        // Edited away, or only the pattern left: nothing is taken out.
        assert_eq!(without("*.log\n", BLOCK, addition), None);
        assert_eq!(without(".berth-tmp-*\n", BLOCK, addition), None);
        // Only a whole block at the start of a line counts.
        assert_eq!(
            without("x# berth: temporary files\n.berth-tmp-*\n", BLOCK, addition),
            None
        );
    }

    #[test]
    fn a_file_berth_created_goes_again_and_the_users_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("info/exclude");
        let addition = plan(&path, BLOCK).unwrap().unwrap();
        assert!(addition.created);
        assert!(!holds(&path, BLOCK).unwrap());
        add(&path, BLOCK, addition).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ADDED);
        assert!(holds(&path, BLOCK).unwrap());
        assert!(remove(&path, BLOCK, addition).unwrap());
        assert!(!path.exists());
        assert!(
            !remove(&path, BLOCK, addition).unwrap(),
            "gone: nothing to do"
        );

        std::fs::write(&path, "*.log").unwrap();
        let addition = plan(&path, BLOCK).unwrap().unwrap();
        add(&path, BLOCK, addition).unwrap();
        assert_eq!(plan(&path, BLOCK).unwrap(), None, "added once");
        assert!(remove(&path, BLOCK, addition).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"*.log");
        assert!(!remove(&path, BLOCK, addition).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"*.log");
    }
}
