//! Reading rotating logs back: the daemon's (`run/daemon.log`) and every agent's output log.
//!
//! The writers (`berth_supervisor::logs::RotatingFile`) rename `NAME` to `NAME.1` when it is
//! full (older files shift up) and start a fresh `NAME`. A reader therefore goes backwards
//! through `NAME`, `NAME.1`, … for a tail, and follows by inode: when the file at `NAME` is no
//! longer the one it has open, it finishes the old one and starts the new one from its
//! beginning. A [`Mark`] remembers where a log ended at one moment, so the lines written since
//! (one daemon run's, say) can be told from older ones.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_core::home::rotated_log;

/// How many rotated files a tail looks into at most.
const MAX_ROTATED: u32 = 64;

/// Splits bytes into lines (a final partial line included, a final empty one not).
fn lines_of(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = bytes
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Keeps the last `n` of `lines`.
fn last(mut lines: Vec<String>, n: usize) -> Vec<String> {
    let from = lines.len().saturating_sub(n);
    lines.split_off(from)
}

/// The last `n` lines of `path` and, if it is short, of its rotated files. Oldest first.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let files =
        std::iter::once(path.to_path_buf()).chain((1..=MAX_ROTATED).map(|i| rotated_log(path, i)));
    for file in files {
        if lines.len() >= n {
            break;
        }
        let Ok(bytes) = std::fs::read(&file) else {
            break;
        };
        let mut kept = last(lines_of(&bytes), n - lines.len());
        kept.extend(lines);
        lines = kept;
    }
    lines
}

/// Where a log ended at one moment: the file's identity and its length then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    ino: u64,
    len: u64,
}

impl Mark {
    /// Where the log at `path` ends now; `None` when it does not exist yet.
    pub fn now(path: &Path) -> Option<Mark> {
        let m = std::fs::metadata(path).ok()?;
        Some(Mark {
            ino: m.ino(),
            len: m.len(),
        })
    }
}

/// Reads `path` from byte `from`.
fn read_from(path: &Path, from: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = f.read_to_end(&mut bytes);
    }
    bytes
}

/// The last `n` lines written to the log at `path` since `mark` (all of it when there was no
/// log then), following one rotation: what was appended to the marked file, now `NAME.1`, and
/// the new file after it. Lines from before the mark are never included.
pub fn tail_since(path: &Path, mark: Option<Mark>, n: usize) -> Vec<String> {
    let Some(mark) = mark else {
        return tail(path, n);
    };
    let same_file = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| m.ino() == mark.ino);
    let current = path.to_path_buf();
    let mut bytes = Vec::new();
    if same_file(&current) {
        bytes = read_from(&current, mark.len);
    } else {
        let older = rotated_log(path, 1);
        if same_file(&older) {
            bytes = read_from(&older, mark.len);
        }
        bytes.extend(read_from(&current, 0));
    }
    last(lines_of(&bytes), n)
}

/// Follows a log from its end: every call to [`Follower::poll`] returns the whole lines
/// appended since the last call, across rotations.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    current: Option<(File, u64)>,
    pending: Vec<u8>,
}

/// A place in a log a follower had read to: the file's identity and the byte after the last
/// whole line read. Written as `INODE:OFFSET` (an SSE event id, for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub ino: u64,
    pub offset: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ino, self.offset)
    }
}

impl std::str::FromStr for Position {
    type Err = ();

    fn from_str(s: &str) -> Result<Position, ()> {
        let (ino, offset) = s.trim().split_once(':').ok_or(())?;
        Ok(Position {
            ino: ino.parse().map_err(|_| ())?,
            offset: offset.parse().map_err(|_| ())?,
        })
    }
}

/// Opens the log, positioned at its end (`at_end`) or start; with its inode.
fn open_log(path: &Path, at_end: bool) -> Option<(File, u64)> {
    let mut f = File::open(path).ok()?;
    if at_end {
        f.seek(SeekFrom::End(0)).ok()?;
    }
    let ino = f.metadata().ok()?.ino();
    Some((f, ino))
}

impl Follower {
    /// Starts at the log's current end: only lines written from now on are returned.
    pub fn from_end(path: &Path) -> Follower {
        Follower {
            path: path.to_path_buf(),
            current: open_log(path, true),
            pending: Vec::new(),
        }
    }

    /// Starts right after `at`, when the log still holds it: in the current file, or in the
    /// one rotation made since (then the rest of that file comes first). `None` when that place
    /// is gone (rotated further, or the log was replaced).
    pub fn resume(path: &Path, at: Position) -> Option<Follower> {
        let open_at = |p: &Path| -> Option<(File, u64)> {
            let mut f = File::open(p).ok()?;
            let m = f.metadata().ok()?;
            if m.ino() != at.ino || m.len() < at.offset {
                return None;
            }
            f.seek(SeekFrom::Start(at.offset)).ok()?;
            Some((f, m.ino()))
        };
        if let Some(current) = open_at(path) {
            return Some(Follower {
                path: path.to_path_buf(),
                current: Some(current),
                pending: Vec::new(),
            });
        }
        // The rotated file is read to its end first; `poll` then sees the inode change and moves
        // on to the new file from its beginning.
        open_at(&rotated_log(path, 1)).map(|older| Follower {
            path: path.to_path_buf(),
            current: Some(older),
            pending: Vec::new(),
        })
    }

    /// Where the lines returned so far end; `None` before the log exists.
    pub fn position(&mut self) -> Option<Position> {
        let (file, ino) = self.current.as_mut()?;
        let read = file.stream_position().ok()?;
        Some(Position {
            ino: *ino,
            offset: read - self.pending.len() as u64,
        })
    }

    /// The whole lines appended since the last call (oldest first).
    pub fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let rotated = match (&self.current, std::fs::metadata(&self.path)) {
            (Some((_, ino)), Ok(m)) => m.ino() != *ino,
            (None, Ok(_)) => true,
            _ => false,
        };
        let mut lines = Vec::new();
        if let Some((file, _)) = self.current.as_mut() {
            file.read_to_end(&mut self.pending)?;
            while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
        }
        if rotated {
            // The old file was fully read above; the new one is read from its beginning.
            self.current = open_log(&self.path, false);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn numbered(from: u32, to: u32) -> String {
        (from..to).map(|i| format!("line {i:04}\n")).collect()
    }

    #[test]
    fn the_tail_reads_back_into_rotated_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        append(&rotated_log(&path, 2), &numbered(0, 100));
        append(&rotated_log(&path, 1), &numbered(100, 200));
        append(&path, &numbered(200, 250));
        let t = tail(&path, 150);
        assert_eq!(t.len(), 150);
        assert!(t[0] == "line 0100" && t[149] == "line 0249", "{t:?}");
        assert_eq!(tail(&path, 1000).len(), 250);
        assert!(tail(&dir.path().join("missing"), 5).is_empty());
    }

    #[test]
    fn the_tail_since_a_mark_holds_only_what_came_after_it_across_one_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        append(&path, &numbered(0, 10));
        let mark = Mark::now(&path);
        append(&path, &numbered(10, 13));
        assert_eq!(
            tail_since(&path, mark, 100),
            ["line 0010", "line 0011", "line 0012"]
        );
        std::fs::rename(&path, rotated_log(&path, 1)).unwrap();
        append(&path, &numbered(13, 15));
        let t = tail_since(&path, mark, 100);
        assert_eq!(t.first().map(String::as_str), Some("line 0010"));
        assert_eq!(t.last().map(String::as_str), Some("line 0014"));
        assert_eq!(t.len(), 5);
        assert_eq!(tail_since(&path, mark, 2), ["line 0013", "line 0014"]);
        // No log at the mark: everything there now was written since, rotated files included.
        assert_eq!(tail_since(&path, None, 100).len(), 15);
    }

    #[test]
    fn a_follower_sees_appended_lines_and_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        append(&path, "old\n");
        let mut f = Follower::from_end(&path);
        assert!(f.poll().unwrap().is_empty());
        append(&path, "one\ntw");
        assert_eq!(f.poll().unwrap(), ["one"]);
        append(&path, "o\n");
        std::fs::rename(&path, rotated_log(&path, 1)).unwrap();
        append(&path, "three\n");
        assert_eq!(f.poll().unwrap(), ["two"]);
        assert_eq!(f.poll().unwrap(), ["three"]);
    }

    #[test]
    fn a_follower_resumes_where_another_stopped_also_after_one_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        append(&path, "zero\n");
        let mut first = Follower::from_end(&path);
        append(&path, "one\ntw");
        assert_eq!(first.poll().unwrap(), ["one"]);
        let at = first.position().unwrap();
        assert_eq!(at.to_string().parse::<Position>(), Ok(at));
        append(&path, "o\n");

        let mut again = Follower::resume(&path, at).unwrap();
        assert_eq!(again.poll().unwrap(), ["two"]);

        std::fs::rename(&path, rotated_log(&path, 1)).unwrap();
        append(&path, "three\n");
        let mut after_rotation = Follower::resume(&path, at).unwrap();
        assert_eq!(after_rotation.poll().unwrap(), ["two"]);
        assert_eq!(after_rotation.poll().unwrap(), ["three"]);

        // Rotated twice: that place is gone.
        std::fs::rename(rotated_log(&path, 1), rotated_log(&path, 2)).unwrap();
        assert!(Follower::resume(&path, at).is_none());
        assert!("nonsense".parse::<Position>().is_err());
    }
}
