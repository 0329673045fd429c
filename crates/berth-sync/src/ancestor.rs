//! The ancestor — what both trees last agreed on — kept in a file, so a restart resumes
//! without false conflicts. Written atomically (temporary file, then rename).

use std::path::Path;

use crate::scan::Tree;

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    version: u32,
    /// Paths as bytes, in the tree's order.
    entries: Vec<(Vec<u8>, crate::reconcile::Entry)>,
}

/// Loads the ancestor; a missing file is an empty ancestor (the first sync).
pub fn load(path: &Path) -> std::io::Result<Tree> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tree::new()),
        Err(e) => return Err(e),
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    if stored.version != 1 {
        return Err(std::io::Error::other(format!(
            "{} has format {}, this berth reads 1",
            path.display(),
            stored.version
        )));
    }
    Ok(stored.entries.into_iter().collect())
}

/// Saves the ancestor atomically.
pub fn save(path: &Path, tree: &Tree) -> std::io::Result<()> {
    let stored = Stored {
        version: 1,
        entries: tree.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    let bytes = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Entry;

    #[test]
    fn round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/ancestor.json");
        assert!(load(&p).unwrap().is_empty());
        let mut t = Tree::new();
        t.insert(
            b"x/\xff".to_vec(),
            Entry::File {
                digest: [7; 32],
                executable: true,
            },
        );
        t.insert(
            b"l".to_vec(),
            Entry::Symlink {
                target: b"x".to_vec(),
            },
        );
        t.insert(b"x".to_vec(), Entry::Dir);
        save(&p, &t).unwrap();
        assert_eq!(load(&p).unwrap(), t);
        std::fs::write(&p, b"{not json").unwrap();
        assert!(load(&p).is_err());
    }
}
