//! `git status --porcelain=v2 -z --branch --untracked-files=all`, parsed.
//!
//! [`parse`] is a pure function over the raw bytes git prints; [`status`] runs git and parses.
//! In `-z` mode every record ends in a NUL byte and paths are printed verbatim (never quoted),
//! so they are kept as bytes: a file name need not be UTF-8.
//!
//! Record formats (see `git help status`, "Porcelain Format Version 2"):
//!
//! ```text
//! # branch.oid <commit> | (initial)
//! # branch.head <branch> | (detached)
//! # branch.upstream <upstream>
//! # branch.ab +<ahead> -<behind>
//! 1 <XY> <sub> <mH> <mI> <mW> <hH> <hI> <path>
//! 2 <XY> <sub> <mH> <mI> <mW> <hH> <hI> <X><score> <path>NUL<original path>
//! u <XY> <sub> <m1> <m2> <m3> <mW> <h1> <h2> <h3> <path>
//! ? <path>
//! ! <path>
//! ```
//!
//! Other `# ` headers (such as `# stash <n>`) are ignored.

use std::fmt;

use crate::git::{Access, Git, GitError, render_args};
use crate::head::is_oid;

/// A parsed `git status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// The `# branch.*` headers.
    pub branch: BranchHeader,
    /// The file records, in the order git printed them.
    pub entries: Vec<Entry>,
}

impl Status {
    /// Whether there is nothing to commit and nothing untracked: no entries other than
    /// [`Entry::Ignored`].
    pub fn is_clean(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e, Entry::Ignored { .. }))
    }
}

/// The `# branch.*` headers. Every field is `None` when its header is absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BranchHeader {
    /// `# branch.oid`: the commit HEAD points at; `None` for `(initial)` (no commit yet).
    pub oid: Option<String>,
    /// `# branch.head`: the short branch name; `None` for `(detached)`.
    pub head: Option<String>,
    /// `# branch.upstream`: the upstream branch, e.g. `origin/main`.
    pub upstream: Option<String>,
    /// `# branch.ab`: commits ahead of and behind the upstream. `None` when git did not count
    /// them (`+? -?`) or the header is absent (no upstream, or the upstream is gone).
    pub ahead_behind: Option<(u64, u64)>,
}

/// One file record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `1`: an ordinary changed tracked entry.
    Changed {
        /// Staged (`X`) and unstaged (`Y`) status, each one of `.MTADRCU`.
        xy: [u8; 2],
        /// Whether the entry is a submodule, and how it changed.
        submodule: Submodule,
        /// File mode in HEAD (octal in the output, e.g. `0o100644`).
        mode_head: u32,
        /// File mode in the index.
        mode_index: u32,
        /// File mode in the worktree.
        mode_worktree: u32,
        /// Object name in HEAD.
        oid_head: String,
        /// Object name in the index.
        oid_index: String,
        /// The path, relative to the repository root.
        path: Vec<u8>,
    },
    /// `2`: a renamed or copied entry.
    Renamed {
        /// Staged (`X`) and unstaged (`Y`) status, each one of `.MTADRCU`.
        xy: [u8; 2],
        /// Whether the entry is a submodule, and how it changed.
        submodule: Submodule,
        /// File mode in HEAD.
        mode_head: u32,
        /// File mode in the index.
        mode_index: u32,
        /// File mode in the worktree.
        mode_worktree: u32,
        /// Object name in HEAD.
        oid_head: String,
        /// Object name in the index.
        oid_index: String,
        /// `'R'` for a rename, `'C'` for a copy.
        kind: char,
        /// Similarity score, 0 to 100.
        score: u8,
        /// The new path.
        path: Vec<u8>,
        /// The path it was renamed or copied from.
        original: Vec<u8>,
    },
    /// `u`: an unmerged (conflicted) entry.
    Unmerged {
        /// The conflict kind, e.g. `UU` (both modified), `AA` (both added), `UD` (deleted by
        /// them), `DU` (deleted by us).
        xy: [u8; 2],
        /// Whether the entry is a submodule, and how it changed.
        submodule: Submodule,
        /// Modes in stage 1 (base), stage 2 (ours), stage 3 (theirs) and the worktree; 0 when
        /// the stage is absent.
        modes: [u32; 4],
        /// Object names in stages 1, 2 and 3; all zeros when the stage is absent.
        oids: [String; 3],
        /// The path.
        path: Vec<u8>,
    },
    /// `?`: an untracked file.
    Untracked {
        /// The path.
        path: Vec<u8>,
    },
    /// `!`: an ignored file (only with `--ignored`).
    Ignored {
        /// The path.
        path: Vec<u8>,
    },
}

impl Entry {
    /// The entry's (current) path.
    pub fn path(&self) -> &[u8] {
        match self {
            Entry::Changed { path, .. }
            | Entry::Renamed { path, .. }
            | Entry::Unmerged { path, .. }
            | Entry::Untracked { path }
            | Entry::Ignored { path } => path,
        }
    }
}

/// The `<sub>` field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submodule {
    /// `N...`: not a submodule.
    NotASubmodule,
    /// `S<c><m><u>`: a submodule.
    Submodule {
        /// `C`: the recorded commit changed.
        commit_changed: bool,
        /// `M`: it has tracked changes.
        tracked_changes: bool,
        /// `U`: it has untracked files.
        untracked_changes: bool,
    },
}

/// Why [`parse`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusParseError {
    /// Byte offset of the start of the offending record.
    pub offset: usize,
    /// What is wrong with it.
    pub kind: StatusParseErrorKind,
}

/// What is wrong with a record; see [`StatusParseError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusParseErrorKind {
    /// The input does not end in a NUL byte: the last record is cut short.
    Unterminated,
    /// An empty record (two NULs in a row).
    EmptyRecord,
    /// The record starts with something other than `#`, `1`, `2`, `u`, `?` or `!`.
    UnknownRecord(String),
    /// A field is missing.
    MissingField(&'static str),
    /// A field has an invalid value (shown lossily).
    InvalidField {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A rename or copy record is not followed by its original path.
    MissingOriginalPath,
}

impl fmt::Display for StatusParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record at byte {}: ", self.offset)?;
        match &self.kind {
            StatusParseErrorKind::Unterminated => write!(f, "not NUL-terminated"),
            StatusParseErrorKind::EmptyRecord => write!(f, "empty record"),
            StatusParseErrorKind::UnknownRecord(r) => write!(f, "unknown record {r:?}"),
            StatusParseErrorKind::MissingField(field) => write!(f, "missing {field}"),
            StatusParseErrorKind::InvalidField { field, value } => {
                write!(f, "invalid {field} {value:?}")
            }
            StatusParseErrorKind::MissingOriginalPath => {
                write!(f, "rename or copy without its original path")
            }
        }
    }
}

impl std::error::Error for StatusParseError {}

/// Parses the output of `git status --porcelain=v2 -z [--branch] [--untracked-files=…]
/// [--ignored=…]`. Empty input is a clean status without headers.
pub fn parse(bytes: &[u8]) -> Result<Status, StatusParseError> {
    let mut status = Status::default();
    let mut records = Records { bytes, pos: 0 };
    while let Some(next) = records.next_record() {
        let (offset, record) = next?;
        let err = |kind| StatusParseError { offset, kind };
        let Some((&tag, rest)) = record.split_first() else {
            return Err(err(StatusParseErrorKind::EmptyRecord));
        };
        match tag {
            b'#' => parse_header(rest, &mut status.branch).map_err(err)?,
            b'1' => status.entries.push(parse_changed(rest).map_err(err)?),
            b'2' => {
                let original = match records.next_record() {
                    Some(Ok((_, original))) if !original.is_empty() => original.to_vec(),
                    _ => return Err(err(StatusParseErrorKind::MissingOriginalPath)),
                };
                status
                    .entries
                    .push(parse_renamed(rest, original).map_err(err)?);
            }
            b'u' => status.entries.push(parse_unmerged(rest).map_err(err)?),
            b'?' => status.entries.push(Entry::Untracked {
                path: simple_path(rest).map_err(err)?,
            }),
            b'!' => status.entries.push(Entry::Ignored {
                path: simple_path(rest).map_err(err)?,
            }),
            _ => {
                let shown = String::from_utf8_lossy(&record[..record.len().min(16)]).into_owned();
                return Err(err(StatusParseErrorKind::UnknownRecord(shown)));
            }
        }
    }
    Ok(status)
}

/// Runs `git status --porcelain=v2 -z --branch --untracked-files=all --ahead-behind`, with
/// `--ignored=matching` when `include_ignored`, read-only (no index refresh is written), and
/// parses it. A parse failure is a [`GitError::Parse`].
pub fn status(git: &Git, include_ignored: bool) -> Result<Status, GitError> {
    let mut args = vec![
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--untracked-files=all",
        "--ahead-behind",
    ];
    if include_ignored {
        args.push("--ignored=matching");
    }
    let out = git.run(Access::Read, &args)?;
    parse(&out.stdout).map_err(|e| GitError::Parse {
        args: render_args(&args),
        detail: e.to_string(),
    })
}

/// NUL-terminated records with their offsets.
struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Records<'a> {
    fn next_record(&mut self) -> Option<Result<(usize, &'a [u8]), StatusParseError>> {
        let rest = self.bytes.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.pos;
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                Some(Ok((offset, &rest[..end])))
            }
            None => {
                self.pos = self.bytes.len();
                Some(Err(StatusParseError {
                    offset,
                    kind: StatusParseErrorKind::Unterminated,
                }))
            }
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn invalid(field: &'static str, value: &[u8]) -> StatusParseErrorKind {
    StatusParseErrorKind::InvalidField {
        field,
        value: lossy(value),
    }
}

/// `rest` is the record after `#`.
fn parse_header(rest: &[u8], branch: &mut BranchHeader) -> Result<(), StatusParseErrorKind> {
    let Some(rest) = rest.strip_prefix(b" ") else {
        return Err(invalid("header", rest));
    };
    let (name, value) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let text = |field: &'static str| -> Result<String, StatusParseErrorKind> {
        if value.is_empty() {
            return Err(StatusParseErrorKind::MissingField(field));
        }
        match std::str::from_utf8(value) {
            Ok(s) if !s.contains(' ') => Ok(s.to_string()),
            _ => Err(invalid(field, value)),
        }
    };
    match name {
        b"branch.oid" => {
            let v = text("branch.oid")?;
            branch.oid = if v == "(initial)" {
                None
            } else if is_oid(&v) {
                Some(v)
            } else {
                return Err(invalid("branch.oid", value));
            };
        }
        b"branch.head" => {
            let v = text("branch.head")?;
            branch.head = if v == "(detached)" { None } else { Some(v) };
        }
        b"branch.upstream" => branch.upstream = Some(text("branch.upstream")?),
        b"branch.ab" => {
            if value == b"+? -?" {
                branch.ahead_behind = None;
                return Ok(());
            }
            let parsed = (|| {
                let (a, b) = std::str::from_utf8(value).ok()?.split_once(' ')?;
                Some((
                    decimal(a.strip_prefix('+')?)?,
                    decimal(b.strip_prefix('-')?)?,
                ))
            })();
            match parsed {
                Some(ab) => branch.ahead_behind = Some(ab),
                None => return Err(invalid("branch.ab", value)),
            }
        }
        _ => {}
    }
    Ok(())
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits `n` space-separated fields off the front of `rest`; the remainder (the path) may
/// itself contain spaces.
fn fields<'a, const N: usize>(
    rest: &'a [u8],
    names: [&'static str; N],
) -> Result<([&'a [u8]; N], &'a [u8]), StatusParseErrorKind> {
    let mut out = [&b""[..]; N];
    let mut rest = rest;
    for (slot, name) in out.iter_mut().zip(names) {
        let Some(after_space) = rest.strip_prefix(b" ") else {
            return Err(StatusParseErrorKind::MissingField(name));
        };
        let end = after_space
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(after_space.len());
        if end == 0 {
            return Err(StatusParseErrorKind::MissingField(name));
        }
        *slot = &after_space[..end];
        rest = &after_space[end..];
    }
    // What remains is " <path>".
    match rest.strip_prefix(b" ") {
        Some(path) if !path.is_empty() => Ok((out, path)),
        _ => Err(StatusParseErrorKind::MissingField("path")),
    }
}

fn simple_path(rest: &[u8]) -> Result<Vec<u8>, StatusParseErrorKind> {
    match rest.strip_prefix(b" ") {
        Some(path) if !path.is_empty() => Ok(path.to_vec()),
        _ => Err(StatusParseErrorKind::MissingField("path")),
    }
}

fn xy(field: &[u8], allowed: &[u8]) -> Result<[u8; 2], StatusParseErrorKind> {
    match field {
        &[x, y] if allowed.contains(&x) && allowed.contains(&y) => Ok([x, y]),
        _ => Err(invalid("XY", field)),
    }
}

const XY_CHANGED: &[u8] = b".MTADRCU";
const XY_UNMERGED: &[u8] = b"UAD";

fn submodule(field: &[u8]) -> Result<Submodule, StatusParseErrorKind> {
    match field {
        b"N..." => Ok(Submodule::NotASubmodule),
        &[b'S', c, m, u]
            if matches!(c, b'C' | b'.') && matches!(m, b'M' | b'.') && matches!(u, b'U' | b'.') =>
        {
            Ok(Submodule::Submodule {
                commit_changed: c == b'C',
                tracked_changes: m == b'M',
                untracked_changes: u == b'U',
            })
        }
        _ => Err(invalid("submodule state", field)),
    }
}

fn mode(field: &[u8], name: &'static str) -> Result<u32, StatusParseErrorKind> {
    if field.is_empty() || field.len() > 8 || !field.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(invalid(name, field));
    }
    Ok(field
        .iter()
        .fold(0u32, |acc, &b| acc * 8 + u32::from(b - b'0')))
}

fn oid(field: &[u8], name: &'static str) -> Result<String, StatusParseErrorKind> {
    match std::str::from_utf8(field) {
        Ok(s) if is_oid(s) => Ok(s.to_string()),
        _ => Err(invalid(name, field)),
    }
}

/// `rest` is the record after `1`.
fn parse_changed(rest: &[u8]) -> Result<Entry, StatusParseErrorKind> {
    let ([x, s, mh, mi, mw, hh, hi], path) = fields(
        rest,
        ["XY", "submodule state", "mH", "mI", "mW", "hH", "hI"],
    )?;
    Ok(Entry::Changed {
        xy: xy(x, XY_CHANGED)?,
        submodule: submodule(s)?,
        mode_head: mode(mh, "mH")?,
        mode_index: mode(mi, "mI")?,
        mode_worktree: mode(mw, "mW")?,
        oid_head: oid(hh, "hH")?,
        oid_index: oid(hi, "hI")?,
        path: path.to_vec(),
    })
}

/// `rest` is the record after `2`; `original` is the record after it.
fn parse_renamed(rest: &[u8], original: Vec<u8>) -> Result<Entry, StatusParseErrorKind> {
    let ([x, s, mh, mi, mw, hh, hi, score], path) = fields(
        rest,
        [
            "XY",
            "submodule state",
            "mH",
            "mI",
            "mW",
            "hH",
            "hI",
            "score",
        ],
    )?;
    let (kind, pct) = match score.split_first() {
        Some((b'R', pct)) => ('R', pct),
        Some((b'C', pct)) => ('C', pct),
        _ => return Err(invalid("score", score)),
    };
    let pct = std::str::from_utf8(pct)
        .ok()
        .and_then(decimal)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n <= 100)
        .ok_or_else(|| invalid("score", score))?;
    Ok(Entry::Renamed {
        xy: xy(x, XY_CHANGED)?,
        submodule: submodule(s)?,
        mode_head: mode(mh, "mH")?,
        mode_index: mode(mi, "mI")?,
        mode_worktree: mode(mw, "mW")?,
        oid_head: oid(hh, "hH")?,
        oid_index: oid(hi, "hI")?,
        kind,
        score: pct,
        path: path.to_vec(),
        original,
    })
}

/// `rest` is the record after `u`.
fn parse_unmerged(rest: &[u8]) -> Result<Entry, StatusParseErrorKind> {
    let ([x, s, m1, m2, m3, mw, h1, h2, h3], path) = fields(
        rest,
        [
            "XY",
            "submodule state",
            "m1",
            "m2",
            "m3",
            "mW",
            "h1",
            "h2",
            "h3",
        ],
    )?;
    Ok(Entry::Unmerged {
        xy: xy(x, XY_UNMERGED)?,
        submodule: submodule(s)?,
        modes: [
            mode(m1, "m1")?,
            mode(m2, "m2")?,
            mode(m3, "m3")?,
            mode(mw, "mW")?,
        ],
        oids: [oid(h1, "h1")?, oid(h2, "h2")?, oid(h3, "h3")?],
        path: path.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O1: &str = "1111111111111111111111111111111111111111";
    const O2: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn empty_is_clean() {
        let s = parse(b"").unwrap();
        assert!(s.is_clean());
        assert_eq!(s.branch, BranchHeader::default());
    }

    #[test]
    fn headers() {
        let input = format!(
            "# branch.oid {O1}\0# branch.head main\0# branch.upstream origin/main\0\
             # branch.ab +3 -0\0# stash 2\0# future.header whatever it says\0"
        );
        let s = parse(input.as_bytes()).unwrap();
        assert_eq!(
            s.branch,
            BranchHeader {
                oid: Some(O1.into()),
                head: Some("main".into()),
                upstream: Some("origin/main".into()),
                ahead_behind: Some((3, 0)),
            }
        );
        let s = parse(b"# branch.oid (initial)\0# branch.head (detached)\0# branch.ab +? -?\0")
            .unwrap();
        assert_eq!(s.branch, BranchHeader::default());
    }

    #[test]
    fn records() {
        let input = format!(
            "1 .M N... 100644 100644 100755 {O1} {O1} a b  c\0\
             2 R. N... 100644 100644 100644 {O1} {O1} R87 new name\0old name\0\
             u UU SCMU 100644 100644 100644 100644 {O1} {O2} {O1} conflict\0\
             ? dir/untracked\0! ignored \0"
        );
        let s = parse(input.as_bytes()).unwrap();
        assert_eq!(s.entries.len(), 5);
        assert_eq!(
            s.entries[0],
            Entry::Changed {
                xy: *b".M",
                submodule: Submodule::NotASubmodule,
                mode_head: 0o100644,
                mode_index: 0o100644,
                mode_worktree: 0o100755,
                oid_head: O1.into(),
                oid_index: O1.into(),
                path: b"a b  c".to_vec(),
            }
        );
        match &s.entries[1] {
            Entry::Renamed {
                kind,
                score,
                path,
                original,
                ..
            } => {
                assert_eq!((*kind, *score), ('R', 87));
                assert_eq!(path, b"new name");
                assert_eq!(original, b"old name");
            }
            other => panic!("{other:?}"),
        }
        match &s.entries[2] {
            Entry::Unmerged {
                submodule, oids, ..
            } => {
                assert_eq!(
                    *submodule,
                    Submodule::Submodule {
                        commit_changed: true,
                        tracked_changes: true,
                        untracked_changes: true
                    }
                );
                assert_eq!(oids[1], O2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.entries[3].path(), b"dir/untracked");
        assert_eq!(s.entries[4].path(), b"ignored ");
        assert!(!s.is_clean());
    }

    #[test]
    fn malformed() {
        let kind = |input: &[u8]| parse(input).unwrap_err().kind;
        assert_eq!(kind(b"? a"), StatusParseErrorKind::Unterminated);
        assert_eq!(kind(b"? a\0\0"), StatusParseErrorKind::EmptyRecord);
        assert_eq!(kind(b"? \0"), StatusParseErrorKind::MissingField("path"));
        assert!(matches!(
            kind(b"x y\0"),
            StatusParseErrorKind::UnknownRecord(_)
        ));
        assert!(matches!(
            kind(b"#branch.oid x\0"),
            StatusParseErrorKind::InvalidField { .. }
        ));
        assert!(matches!(
            kind(b"# branch.oid abc\0"),
            StatusParseErrorKind::InvalidField { .. }
        ));
        assert!(matches!(
            kind(b"# branch.ab +1\0"),
            StatusParseErrorKind::InvalidField { .. }
        ));
        let rename = format!("2 R. N... 100644 100644 100644 {O1} {O1} R100 new\0");
        assert_eq!(
            kind(rename.as_bytes()),
            StatusParseErrorKind::MissingOriginalPath
        );
        let bad_mode = format!("1 .M N... 100644 100648 100644 {O1} {O1} p\0");
        assert!(matches!(
            kind(bad_mode.as_bytes()),
            StatusParseErrorKind::InvalidField { .. }
        ));
        let bad_score = format!("2 R. N... 100644 100644 100644 {O1} {O1} R101 a\0b\0");
        assert!(matches!(
            kind(bad_score.as_bytes()),
            StatusParseErrorKind::InvalidField { .. }
        ));
        let no_path = format!("1 .M N... 100644 100644 100644 {O1} {O1}\0");
        assert_eq!(
            kind(no_path.as_bytes()),
            StatusParseErrorKind::MissingField("path")
        );
        let err = parse(b"? a\0? b").unwrap_err();
        assert_eq!(err.offset, 4);
    }
}
