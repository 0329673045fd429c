//! The home kept private: the home and berth's folders in it 0700, the database files 0600.
//!
//! What agents run, write and log is nobody else's business, and an older berth (or a umask of
//! 022) may have left the home readable. The daemon makes it private at every start
//! ([`make_private`]); `berth doctor` reports what is open ([`open_paths`]) and `--fix` closes it.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use berth_core::home::Home;

/// A path of the home that group or others may read, write or enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPath {
    pub path: PathBuf,
    pub mode: u32,
    /// The mode berth keeps it at.
    pub private: u32,
}

impl std::fmt::Display for OpenPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} has mode {:o}, not {:o}",
            self.path.display(),
            self.mode,
            self.private
        )
    }
}

fn directories(home: &Home) -> impl Iterator<Item = PathBuf> {
    std::iter::once(home.root().to_path_buf()).chain(home.folders())
}

/// Every path of the home that is not private; paths that do not exist are not listed.
pub fn open_paths(home: &Home) -> Vec<OpenPath> {
    let dirs = directories(home).map(|p| (p, 0o700));
    let files = home.database_files().into_iter().map(|p| (p, 0o600));
    dirs.chain(files)
        .filter_map(|(path, private)| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(OpenPath {
                path,
                mode,
                private,
            })
        })
        .collect()
}

/// Sets each path to its private mode.
pub fn tighten(open: &[OpenPath]) -> std::io::Result<()> {
    for o in open {
        std::fs::set_permissions(&o.path, std::fs::Permissions::from_mode(o.private))?;
    }
    Ok(())
}

/// Creates the home and its folders (0700) where missing and tightens whatever is open;
/// returns what it tightened.
pub fn make_private(home: &Home) -> std::io::Result<Vec<OpenPath>> {
    for dir in directories(home) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let open = open_paths(home);
    tighten(&open)?;
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_home_is_found_and_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        assert_eq!(make_private(&home).unwrap(), []);
        for d in directories(&home) {
            assert_eq!(mode(&d), 0o700, "{d:?}");
        }
        std::fs::write(home.database(), b"db").unwrap();
        let set = |p: &std::path::Path, m| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(home.root(), 0o755);
        set(&home.agents_dir(), 0o750);
        set(&home.database(), 0o644);
        let open = open_paths(&home);
        assert_eq!(
            open.iter()
                .map(|o| (o.path.clone(), o.mode, o.private))
                .collect::<Vec<_>>(),
            [
                (home.root().to_path_buf(), 0o755, 0o700),
                (home.agents_dir(), 0o750, 0o700),
                (home.database(), 0o644, 0o600),
            ]
        );
        assert_eq!(
            open[2].to_string(),
            format!("{} has mode 644, not 600", home.database().display())
        );
        assert_eq!(make_private(&home).unwrap(), open);
        assert_eq!(open_paths(&home), []);
        assert_eq!(mode(&home.database()), 0o600);
    }
}
