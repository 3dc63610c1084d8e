//! The GitLab token: a secret from the form parser to the HTTP header (and, later, the cipher).
//! Its `Debug` and `Display` print `glpat-…[redacted]`; the value is zeroised when dropped and is
//! reachable only through [`GitlabToken::expose`], which the outbound client alone calls.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

pub struct GitlabToken(SecretString);

/// `text` fit for a log line: every word that could be a secret (20 or more letters, digits, `-`
/// and `_`, or a `gl…-` token prefix followed by anything) becomes `[redacted]`, and the whole is
/// cut to 200 characters. For addresses people typed: a token pasted into the wrong field must
/// not reach the logs.
pub fn redact_for_log(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let looks_secret = word.chars().count() >= 20
            || (word.starts_with("gl") && word.find('-').is_some_and(|i| i <= 8 && word.len() > i + 1));
        out.push_str(if looks_secret { "[redacted]" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(if c.is_control() { '?' } else { c });
        }
    }
    flush(&mut word, &mut out);
    match out.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]), // ok: cut comes from char_indices
        None => out,
    }
}

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
            Some(i) => &value[..i + "glpat-".len()], // ok: rfind returns a char boundary
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
    fn addresses_are_logged_without_anything_like_a_token() {
        assert_eq!(redact_for_log("https://gitlab.example.com/gitlab"), "https://gitlab.example.com/gitlab");
        assert_eq!(redact_for_log("glpat-AbCdEf123456"), "[redacted]");
        assert_eq!(redact_for_log("https://glpat-x1y2z3.example"), "https://[redacted].example");
        assert_eq!(redact_for_log("https://h/ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "https://h/[redacted]");
        assert_eq!(redact_for_log("gitlab.com/jdoe"), "gitlab.com/jdoe");
        assert_eq!(redact_for_log("a\nb"), "a?b");
        let long = redact_for_log(&"€a.".repeat(500));
        assert_eq!(long.chars().count(), 201);
    }

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
