//! Size-capped log files with rotation, shared by keepers (agent output) and the daemon log.
//! Their tails are read back by `berth-control`'s `logs`.
//!
//! `NAME` grows to `max_bytes`, then becomes `NAME.1` (older ones shift up, the one beyond
//! `keep` is deleted) and a fresh `NAME` starts. Records are written whole: a record never
//! straddles two files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_core::home::rotated_log as rotated;

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

    /// Writes the records in `records`, the `n`th ending at `ends[n]` (and the last at the
    /// end), as few writes as rotation allows. Returns whether it rotated.
    pub fn write_records(&mut self, records: &[u8], ends: &[usize]) -> std::io::Result<bool> {
        let mut rotated = false;
        let mut from = 0;
        let mut start = 0;
        for &end in ends {
            let len = (end - start) as u64;
            if self.size > 0 && self.size + len > self.max_bytes {
                self.file.write_all(&records[from..start])?;
                self.rotate()?;
                rotated = true;
                from = start;
            }
            self.size += len;
            start = end;
        }
        self.file.write_all(&records[from..])?;
        Ok(rotated)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_together_rotate_between_records_as_one_at_a_time_do() {
        let dir = tempfile::tempdir().unwrap();
        let (one, many) = (dir.path().join("one.log"), dir.path().join("many.log"));
        let records: Vec<String> = (0..300)
            .map(|i| format!("line {i:04} {}\n", "y".repeat(i % 50)))
            .collect();
        let mut log = RotatingFile::open(&one, 2048, 3).unwrap();
        for r in &records {
            log.write_record(r.as_bytes()).unwrap();
        }
        let mut log = RotatingFile::open(&many, 2048, 3).unwrap();
        for batch in records.chunks(7) {
            let mut bytes = Vec::new();
            let mut ends = Vec::new();
            for r in batch {
                bytes.extend_from_slice(r.as_bytes());
                ends.push(bytes.len());
            }
            log.write_records(&bytes, &ends).unwrap();
        }
        for n in 0..=3 {
            let (a, b) = match n {
                0 => (one.clone(), many.clone()),
                n => (rotated(&one, n), rotated(&many, n)),
            };
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "file {n}"
            );
        }
    }

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
        // Oldest first, the kept files hold one unbroken run of records ending with the newest.
        let kept: String = [rotated(&path, 2), rotated(&path, 1), path.clone()]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        let numbers: Vec<u32> = kept.lines().map(|l| l[5..9].parse().unwrap()).collect();
        assert_eq!(numbers.last(), Some(&399));
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    }
}
