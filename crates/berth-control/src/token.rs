//! The bearer token of the TCP listener.
//!
//! The value lives only in memory, inside [`Token`], whose `Debug` is redacted so it cannot reach
//! a log by accident. Comparison hashes both sides and compares the digests in constant time, so
//! neither the content nor the length of the real token leaks through timing.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use subtle::ConstantTimeEq;

/// A bearer token. Never printed, never written anywhere.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the token file {path} can be read or changed by other users (mode {mode:03o}); make it \
         private with `chmod 600 {path}`"
    )]
    NotPrivate { path: String, mode: u32 },
    #[error("the token {origin} is empty; put a long random string in it")]
    Empty { origin: String },
}

impl Token {
    /// A token from a string (surrounding whitespace, such as a file's final newline, is ignored).
    pub fn new(value: &str, origin: &str) -> Result<Token, TokenError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_string(),
            });
        }
        Ok(Token {
            digest: *blake3::hash(value.as_bytes()).as_bytes(),
        })
    }

    /// The token in a file only its owner can read and write, as ssh asks of a private key.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let read = |source| TokenError::Read {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read)?;
        let mode = file.metadata().map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TokenError::NotPrivate {
                path: path.display().to_string(),
                mode,
            });
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read)?;
        Token::new(&text, &format!("file {}", path.display()))
    }

    /// Constant-time check of a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = blake3::hash(presented.as_bytes());
        self.digest.ct_eq(presented.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_token() {
        let t = Token::new("s3cret\n", "test").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cretx"));
        assert!(!t.matches(""));
    }

    #[test]
    fn a_token_file_others_can_read_or_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Token::from_file(&path).unwrap_err();
            assert!(matches!(err, TokenError::NotPrivate { mode: m, .. } if m == mode));
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                Token::from_file(&path).unwrap().matches("s3cret"),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn empty_tokens_are_refused_and_debug_is_redacted() {
        assert!(matches!(
            Token::new(" \n", "env"),
            Err(TokenError::Empty { .. })
        ));
        let t = Token::new("visible?", "test").unwrap();
        assert!(!format!("{t:?}").contains("visible"));
    }
}
