//! Names of agents and services: `[a-z0-9][a-z0-9_-]{0,62}`.
//!
//! A name becomes a branch (`berth/<name>`), a ref (`refs/berth/agents/<name>`), a directory
//! and a socket file name, so anything else is rejected before any side effect.

/// Why a name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid name {name:?}: {reason}; use 1 to 63 of a-z, 0-9, '_' and '-', starting with a \
     letter or digit"
)]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

/// Checks a name.
pub fn validate(name: &str) -> Result<(), NameError> {
    let err = |reason| {
        Err(NameError {
            name: name.to_string(),
            reason,
        })
    };
    let bytes = name.as_bytes();
    match bytes.first() {
        None => return err("it is empty"),
        Some(b) if !(b.is_ascii_lowercase() || b.is_ascii_digit()) => {
            return err("it must start with a lowercase letter or a digit");
        }
        _ => {}
    }
    if bytes.len() > 63 {
        return err("it is longer than 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
    {
        return err("it contains a character other than a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "0", "fixer", "web-2", "db_main", &"a".repeat(63)] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let cases = [
            ("", "it is empty"),
            ("-a", "it must start with a lowercase letter or a digit"),
            ("_a", "it must start with a lowercase letter or a digit"),
            ("Fixer", "it must start with a lowercase letter or a digit"),
            (
                "fiXer",
                "it contains a character other than a-z, 0-9, '_' and '-'",
            ),
            (
                "a/b",
                "it contains a character other than a-z, 0-9, '_' and '-'",
            ),
            (
                "a..b",
                "it contains a character other than a-z, 0-9, '_' and '-'",
            ),
            (
                "a b",
                "it contains a character other than a-z, 0-9, '_' and '-'",
            ),
            (
                "a\0",
                "it contains a character other than a-z, 0-9, '_' and '-'",
            ),
            ("é", "it must start with a lowercase letter or a digit"),
        ];
        for (name, reason) in cases {
            assert_eq!(validate(name).unwrap_err().reason, reason, "{name:?}");
        }
        assert_eq!(
            validate(&"a".repeat(64)).unwrap_err().reason,
            "it is longer than 63 characters"
        );
    }
}
