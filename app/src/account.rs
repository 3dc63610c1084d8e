//! What an account is made of, as plain rules: its e-mail address (a strict `addr-spec` in its
//! canonical form) and the names of its API tokens. Used by the store and the pages.

/// An e-mail address as Onramp keeps it: a strict RFC 5322 `addr-spec` (`local@domain`, the
/// local part a dot-atom, no quoted strings, comments, display names or domain literals), ASCII
/// only, at most 254 characters with at most 64 before the `@`, the domain made of at least two
/// valid DNS labels. Canonical form: the whole address lower-cased. RFC 5321 lets a server treat
/// the local part's case as significant, but virtually no mail provider does, and Onramp has
/// always matched addresses case-insensitively: `Jane@Example.COM` and `jane@example.com` are one
/// account. Nothing here says the address is its owner's: Onramp sends no confirmation mail, so
/// every address is unverified (pages say so where others see one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

/// The longest address (RFC 5321 §4.5.3.1.3, a path of 256 octets less the angle brackets).
pub const EMAIL_MAX: usize = 254;
/// The longest local part (RFC 5321 §4.5.3.1.1).
pub const EMAIL_LOCAL_MAX: usize = 64;

/// Why an e-mail address was refused, in words that say what to type instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailProblem {
    #[error("Enter an email address with one @, like name@example.com.")]
    Format,
    #[error("Type only the address, like name@example.com: no name, spaces, quotes, brackets or commas.")]
    NotJustAnAddress,
    #[error("An email address cannot contain control characters (such as a line break or NUL).")]
    Control,
    #[error("Type the address in plain ASCII letters: for an international domain, use its xn-- form.")]
    NotAscii,
    #[error("The address is longer than 254 characters.")]
    TooLong,
    #[error("The part before the @ is longer than 64 characters.")]
    LocalTooLong,
    #[error(
        "The part before the @ may have letters, digits and ! # $ % & ' * + - / = ? ^ _ ` {{ | }} ~, and dots \
         between them (not at either end, not two in a row)."
    )]
    LocalPart,
    #[error(
        "The part after the @ must be a domain like example.com: labels of letters, digits and hyphens \
         (not at either end of a label), separated by dots."
    )]
    Domain,
}

impl EmailProblem {
    pub const ALL: [EmailProblem; 8] = [
        EmailProblem::Format,
        EmailProblem::NotJustAnAddress,
        EmailProblem::Control,
        EmailProblem::NotAscii,
        EmailProblem::TooLong,
        EmailProblem::LocalTooLong,
        EmailProblem::LocalPart,
        EmailProblem::Domain,
    ];

    /// The code a page shows it by (`?error=email_<code>`).
    pub fn code(self) -> &'static str {
        match self {
            EmailProblem::Format => "format",
            EmailProblem::NotJustAnAddress => "not_just_an_address",
            EmailProblem::Control => "control",
            EmailProblem::NotAscii => "not_ascii",
            EmailProblem::TooLong => "too_long",
            EmailProblem::LocalTooLong => "local_too_long",
            EmailProblem::LocalPart => "local_part",
            EmailProblem::Domain => "domain",
        }
    }

    pub fn from_code(code: &str) -> Option<EmailProblem> {
        EmailProblem::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// `atext` of RFC 5322 §3.2.3: what a dot-atom's pieces are made of.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// A DNS label (RFC 1035 §2.3.1 as relaxed by RFC 1123: may start with a digit): 1 to 63
/// letters, digits and hyphens, no hyphen at either end.
fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl Email {
    /// Parses an address as typed (surrounding spaces trimmed) into its canonical form.
    pub fn parse(input: &str) -> Result<Email, EmailProblem> {
        let typed = input.trim();
        if typed.chars().any(char::is_control) {
            return Err(EmailProblem::Control);
        }
        // What a display name, a quoted local part, a comment, a domain literal or a list of
        // addresses needs: `Name <a@b>`, `"a b"@c`, `a(x)@b`, `a@[1.2.3.4]`, `a@b, c@d`.
        if typed.chars().any(|c| c.is_whitespace() || "<>\"()[],;:\\".contains(c)) {
            return Err(EmailProblem::NotJustAnAddress);
        }
        if !typed.is_ascii() {
            return Err(EmailProblem::NotAscii);
        }
        if typed.len() > EMAIL_MAX {
            return Err(EmailProblem::TooLong);
        }
        let email = typed.to_ascii_lowercase();
        let Some((local, domain)) = email.split_once('@') else { return Err(EmailProblem::Format) };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(EmailProblem::Format);
        }
        if local.len() > EMAIL_LOCAL_MAX {
            return Err(EmailProblem::LocalTooLong);
        }
        // dot-atom-text: 1*atext *("." 1*atext)
        if !local.split('.').all(|piece| !piece.is_empty() && piece.chars().all(is_atext)) {
            return Err(EmailProblem::LocalPart);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let top_is_numeric = labels.last().is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
        if labels.len() < 2 || !labels.iter().all(|l| is_label(l)) || top_is_numeric {
            return Err(EmailProblem::Domain);
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest API-token name, in characters: a longer one is cut there.
pub const TOKEN_NAME_MAX: usize = 100;
/// API tokens one account may have at once.
pub const MAX_API_TOKENS: i64 = 20;

/// Why an API token's name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenNameProblem {
    #[error("Give the token a name, so you know later what uses it.")]
    Empty,
    #[error("A token name is one line of visible text: no line breaks, tabs or invisible characters.")]
    Invisible,
}

/// An API token's name as typed: trimmed, without invisible characters (see [`crate::workspace::is_invisible`]),
/// cut to [`TOKEN_NAME_MAX`] characters (characters, never bytes).
pub fn token_name(typed: &str) -> Result<String, TokenNameProblem> {
    let name = typed.trim();
    if name.is_empty() {
        return Err(TokenNameProblem::Empty);
    }
    if name.chars().any(crate::workspace::is_invisible) {
        return Err(TokenNameProblem::Invisible);
    }
    Ok(name.chars().take(TOKEN_NAME_MAX).collect::<String>().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_parse_strictly_into_their_canonical_form() {
        assert_eq!(Email::parse("  Jane@Example.COM ").unwrap().as_str(), "jane@example.com");
        use EmailProblem::*;
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(63) + "." + &"c".repeat(63) + "." + &"d".repeat(60));
        let table: &[(&str, EmailProblem)] = &[
            ("", Format),
            ("jane", Format),
            ("jane@", Format),
            ("@example.com", Format),
            ("a@b@c.com", Format),
            ("jane@example", Domain),
            ("jane@.com", Domain),
            ("jane@example.com.", Domain),
            ("jane@-corp.example", Domain),
            ("jane@corp-.example", Domain),
            ("jane@corp_x.example", Domain),
            ("jane@10.0.0.1", Domain),
            ("ja ne@example.com", NotJustAnAddress),
            ("x<victim@corp.example>", NotJustAnAddress),
            ("Jane <jane@example.com>", NotJustAnAddress),
            ("\"jane\"@example.com", NotJustAnAddress),
            ("\"a b\"@example.com", NotJustAnAddress),
            ("jane(comment)@example.com", NotJustAnAddress),
            ("jane@[127.0.0.1]", NotJustAnAddress),
            ("a@b.com,c@d.com", NotJustAnAddress),
            ("a\\b@example.com", NotJustAnAddress),
            ("jane\u{0}@example.com", Control),
            ("jane@example.com\r\nBcc: x@y.z", Control),
            ("jane\u{7f}@example.com", Control),
            ("jäne@example.com", NotAscii),
            ("jane@bücher.example", NotAscii),
            ("jane\u{200B}@example.com", NotAscii),
            (".jane@example.com", LocalPart),
            ("jane.@example.com", LocalPart),
            ("ja..ne@example.com", LocalPart),
            (long_local.as_str(), LocalTooLong),
            (long.as_str(), TooLong),
        ];
        for (bad, problem) in table {
            assert_eq!(Email::parse(bad), Err(*problem), "{bad:?}");
        }
        for good in ["o'brien+tag@mail.corp.example", "a@b.co", "x_y-z@xn--bcher-kva.example", "1@2.example3"] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good.to_ascii_lowercase(), "{good:?}");
        }
        let longest = format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(57));
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        for problem in EmailProblem::ALL {
            assert_eq!(EmailProblem::from_code(problem.code()), Some(problem));
            assert!(problem.to_string().ends_with('.'), "{problem:?} says what to do");
        }
    }

    #[test]
    fn token_names_are_one_cut_line() {
        assert_eq!(token_name("  nightly export "), Ok("nightly export".into()));
        assert_eq!(token_name("   "), Err(TokenNameProblem::Empty));
        for bad in ["a\nb", "a\rb", "a\tb", "a\u{0}", "a\u{202E}b", "a\u{200B}b", "a\u{2028}b"] {
            assert_eq!(token_name(bad), Err(TokenNameProblem::Invisible), "{bad:?}");
        }
        // cut at 100 characters, never in the middle of one
        let long = "é".repeat(15_000);
        let cut = token_name(&long).unwrap();
        assert_eq!(cut.chars().count(), TOKEN_NAME_MAX);
        assert_eq!(cut, "é".repeat(TOKEN_NAME_MAX));
    }
}
