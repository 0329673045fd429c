//! Deterministic test trees: nested directories of text files whose path, size and content follow
//! from the file's index, so the receiving side can be checked without keeping a copy.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Files per leaf directory; leaf directories are nested ten to a parent, a hundred to a top one.
const FILES_PER_DIR: usize = 50;
/// Filler text that file bodies are cut from (longer than the largest file).
const FILLER_LEN: usize = 256 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Tree {
    pub files: usize,
    pub min_size: usize,
    pub max_size: usize,
}

/// splitmix64: a cheap, well-mixed hash of an index.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn filler() -> &'static [u8] {
    static FILLER: OnceLock<Vec<u8>> = OnceLock::new();
    FILLER.get_or_init(|| {
        const WORDS: [&str; 16] = [
            "berth", "sync", "alpha", "beta", "file", "edit", "tree", "watch", "copy", "agent",
            "latency", "kernel", "inode", "rename", "commit", "branch",
        ];
        let mut text = Vec::with_capacity(FILLER_LEN + 64);
        let mut i = 0u64;
        while text.len() < FILLER_LEN {
            let h = mix(i);
            text.extend_from_slice(WORDS[(h % 16) as usize].as_bytes());
            text.push(if h.is_multiple_of(11) { b'\n' } else { b' ' });
            i += 1;
        }
        text.truncate(FILLER_LEN);
        text
    })
}

/// `header` followed by filler text up to `size` bytes (at least the header and a newline).
pub fn body(header: &str, seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(header.len() + 1));
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    let rest = size.saturating_sub(out.len()).min(FILLER_LEN / 2);
    let start = (mix(seed) as usize) % (FILLER_LEN - rest);
    out.extend_from_slice(&filler()[start..start + rest]);
    out
}

impl Tree {
    /// Small text files of a few hundred bytes to a few KB, as edited by hand or by an agent.
    pub fn small(files: usize) -> Tree {
        Tree {
            files,
            min_size: 200,
            max_size: 4_000,
        }
    }

    /// Files averaging `mean` bytes (from a twentieth of it to nearly twice it).
    pub fn with_mean(files: usize, mean: usize) -> Tree {
        Tree {
            files,
            min_size: (mean / 20).max(64),
            max_size: mean * 2 - mean / 20,
        }
    }

    /// `dNN/eN/fN/fileNN.txt`: three levels of directories.
    pub fn path(&self, i: usize) -> PathBuf {
        let leaf = i / FILES_PER_DIR;
        PathBuf::from(format!(
            "d{:02}/e{}/f{}/file{:02}.txt",
            leaf / 100,
            (leaf / 10) % 10,
            leaf % 10,
            i % FILES_PER_DIR
        ))
    }

    pub fn size(&self, i: usize) -> usize {
        self.min_size + (mix(i as u64 ^ 0x5eed) as usize) % (self.max_size - self.min_size + 1)
    }

    /// The content a file starts with.
    pub fn content(&self, i: usize) -> Vec<u8> {
        body(&format!("file {i}"), i as u64, self.size(i))
    }

    /// The sum of all file sizes.
    pub fn bytes(&self) -> u64 {
        (0..self.files).map(|i| self.size(i) as u64).sum()
    }

    /// Writes the whole tree under `root` (which must exist).
    pub fn generate(&self, root: &Path) -> Result<(), String> {
        for i in 0..self.files {
            let path = root.join(self.path(i));
            if i % FILES_PER_DIR == 0
                && let Some(dir) = path.parent()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, self.content(i))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The `count` files spread evenly over the tree (for rewriting many at once).
    pub fn spread(&self, count: usize) -> Vec<usize> {
        (0..count).map(|k| k * self.files / count).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_three_levels_fifty_files_a_directory() {
        let t = Tree::small(50_000);
        assert_eq!(t.path(0), PathBuf::from("d00/e0/f0/file00.txt"));
        assert_eq!(t.path(49), PathBuf::from("d00/e0/f0/file49.txt"));
        assert_eq!(t.path(50), PathBuf::from("d00/e0/f1/file00.txt"));
        assert_eq!(t.path(49_999), PathBuf::from("d09/e9/f9/file49.txt"));
        let distinct: std::collections::HashSet<_> = (0..t.files).map(|i| t.path(i)).collect();
        assert_eq!(distinct.len(), t.files);
    }

    #[test]
    fn contents_are_deterministic_distinct_and_sized() {
        let t = Tree::with_mean(1_000, 20_000);
        for i in 0..t.files {
            let c = t.content(i);
            assert_eq!(c.len(), t.size(i));
            assert!((t.min_size..=t.max_size).contains(&c.len()));
            assert_eq!(c, t.content(i));
        }
        assert_ne!(t.content(1), t.content(2));
        let mean = t.bytes() / t.files as u64;
        assert!((18_000..22_000).contains(&mean), "{mean}");
    }

    #[test]
    fn spread_picks_distinct_files() {
        let t = Tree::small(50_000);
        let picked = t.spread(10_000);
        let distinct: std::collections::HashSet<_> = picked.iter().collect();
        assert_eq!(distinct.len(), 10_000);
        assert!(picked.iter().all(|&i| i < t.files));
    }
}
