//! Size-capped log files with rotation, shared by keepers (agent output) and the daemon log.
//!
//! `NAME` grows to `max_bytes`, then becomes `NAME.1` (older ones shift up, the one beyond
//! `keep` is deleted) and a fresh `NAME` starts. Records are written whole: a record never
//! straddles two files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// The `n`th rotated file of `path` (`n >= 1`; larger is older).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    pub fn open(
        path: impl Into<PathBuf>,
        max_bytes: u64,
        keep: u32,
    ) -> std::io::Result<RotatingFile> {
        let path = path.into();
        let (file, size) = open_append(&path)?;
        Ok(RotatingFile {
            path,
            max_bytes,
            keep,
            file,
            size,
        })
    }

    /// The file currently written to.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes one record; rotates first if it would not fit. Returns whether it rotated.
    pub fn write_record(&mut self, record: &[u8]) -> std::io::Result<bool> {
        let rotate = self.size > 0 && self.size + record.len() as u64 > self.max_bytes;
        if rotate {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(rotate)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        let (file, size) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

/// The last `n` lines of `path` and, if it is short, of its rotated files. Oldest first.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let files = std::iter::once(path.to_path_buf()).chain((1..=64).map(|i| rotated(path, i)));
    for file in files {
        if lines.len() >= n {
            break;
        }
        let Ok(bytes) = std::fs::read(&file) else {
            break;
        };
        let mut from_file: Vec<String> = bytes
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        if from_file.last().is_some_and(String::is_empty) {
            from_file.pop();
        }
        let take = from_file.len().min(n - lines.len());
        let mut kept = from_file.split_off(from_file.len() - take);
        kept.extend(lines);
        lines = kept;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_caps_each_file_keeps_whole_records_and_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut log = RotatingFile::open(&path, 4096, 2).unwrap();
        for i in 0..400 {
            log.write_record(format!("line {i:04} {}\n", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.len() <= 4096 && text.ends_with('\n') && text.starts_with("line "),
                "{p:?}"
            );
        }
        assert!(!rotated(&path, 3).exists());
        let t = tail(&path, 150);
        assert_eq!(t.len(), 150);
        assert!(
            t[149].starts_with("line 0399") && t[0].starts_with("line 0250"),
            "{t:?}"
        );
        assert!(tail(&dir.path().join("missing"), 5).is_empty());
    }
}
