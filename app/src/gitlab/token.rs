//! The GitLab token: a secret from the form parser to the HTTP header (and, later, the cipher).
//! Its `Debug` and `Display` print `glpat-…[redacted]`; the value is zeroised when dropped and is
//! reachable only through [`GitlabToken::expose`], which the outbound client alone calls.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

pub struct GitlabToken(SecretString);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Paste the token you copied in step 9.")]
    Empty,
    #[error("A token is a single line: paste only the token you copied in step 9.")]
    Multiline,
}

impl GitlabToken {
    /// Trims surrounding whitespace. The token is never judged by its prefix or length: admins can
    /// change the prefix, and very old tokens have none.
    pub fn parse(input: &str) -> Result<Self, TokenError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty);
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(TokenError::Multiline);
        }
        Ok(GitlabToken(SecretString::from(trimmed.to_owned())))
    }

    /// The raw value, for the `PRIVATE-TOKEN` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The last four characters, the only part ever shown (for telling tokens apart).
    pub fn last_four(&self) -> String {
        let chars: Vec<char> = self.expose().chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }

    /// A visible hint of the token's kind: `glpat-`, a custom `mycompany-glpat-`, or nothing.
    fn prefix(&self) -> &str {
        let value = self.expose();
        match value.rfind("glpat-") {
            Some(i) => &value[..i + "glpat-".len()],
            None => "",
        }
    }
}

impl fmt::Debug for GitlabToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitlabToken({}…[redacted])", self.prefix())
    }
}

impl fmt::Display for GitlabToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…[redacted]", self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_itself() {
        let t = GitlabToken::parse("  glpat-abcdefghijklmnopqrst\n").unwrap();
        assert_eq!(t.to_string(), "glpat-…[redacted]");
        assert_eq!(format!("{t:?}"), "GitlabToken(glpat-…[redacted])");
        assert_eq!(format!("{t:#?}"), "GitlabToken(glpat-…[redacted])");
        assert_eq!(t.expose(), "glpat-abcdefghijklmnopqrst");
        assert_eq!(t.last_four(), "qrst");
        let custom = GitlabToken::parse("acme-glpat-zzzzzzzzzzzzzzzzzzzz").unwrap();
        assert_eq!(custom.to_string(), "acme-glpat-…[redacted]");
        let old = GitlabToken::parse("abcdefghij0123456789").unwrap();
        assert_eq!(old.to_string(), "…[redacted]");
        assert!(!format!("{old:?}").contains("abcdef"));
    }

    #[test]
    fn only_whitespace_is_trimmed() {
        assert_eq!(GitlabToken::parse("").unwrap_err(), TokenError::Empty);
        assert_eq!(GitlabToken::parse(" \t ").unwrap_err(), TokenError::Empty);
        assert_eq!(GitlabToken::parse("glpat-a\nb").unwrap_err(), TokenError::Multiline);
        assert_eq!(GitlabToken::parse("x").unwrap().expose(), "x");
        assert_eq!(GitlabToken::parse("ab").unwrap().last_four(), "ab");
    }
}
