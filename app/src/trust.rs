//! Whether a GitLab instance named by a link may be linked to.
//!
//! Steps 5–12 are public and carry the instance as `?base=`, so anyone can send a link that makes
//! Onramp's own pages point a reader at a look-alike GitLab ("sign in here, create a token, paste
//! it here"). An instance is therefore *confirmed* before any page links into it or prefills it:
//! gitlab.com is, the reader's saved connection is, and so is a host the reader typed themselves or
//! confirmed with "Yes, this is my GitLab" (remembered in a cookie in this browser).

use crate::gitlab::base_url::BaseUrl;

/// The cookie that remembers the hosts this browser confirmed.
pub const CONFIRMED_COOKIE: &str = "onramp_gitlab_hosts";
/// How many hosts the cookie remembers (the newest).
pub const MAX_CONFIRMED: usize = 10;
/// Hosts every reader may be linked to without a question.
const WELL_KNOWN: &[&str] = &["gitlab.com"];

/// How a page may treat the instance of its `?base=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceTrust {
    /// Link into it and prefill it.
    Confirmed,
    /// Ask first; until then no link into it and no prefilled field.
    Unconfirmed {
        /// A label of its host mixes scripts (a Cyrillic "а" in "gitlab"): warn.
        mixes_scripts: bool,
        /// The reader's saved connection is another instance: say which.
        saved_elsewhere: Option<String>,
    },
}

impl InstanceTrust {
    pub fn is_confirmed(&self) -> bool {
        matches!(self, InstanceTrust::Confirmed)
    }
}

/// Judges `base` for a reader who confirmed `confirmed` hosts and whose workspace has connections
/// to `saved`.
pub fn judge(base: &BaseUrl, confirmed: &[String], saved: &[BaseUrl]) -> InstanceTrust {
    let host = base.host();
    if WELL_KNOWN.contains(&host) || confirmed.iter().any(|h| h == host) || saved.iter().any(|s| s.host() == host) {
        return InstanceTrust::Confirmed;
    }
    InstanceTrust::Unconfirmed {
        mixes_scripts: base.mixes_scripts(),
        saved_elsewhere: saved.first().map(BaseUrl::to_string),
    }
}

/// The hosts in the cookie's value (`host/host/…`), ignoring anything that is not a plain ASCII
/// host name or bracketed IPv6 literal.
pub fn parse_confirmed(value: &str) -> Vec<String> {
    value
        .split('/')
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'))
        })
        .take(MAX_CONFIRMED)
        .map(str::to_owned)
        .collect()
}

/// The cookie's new value once `host` is confirmed: newest first, no repeats, at most
/// [`MAX_CONFIRMED`].
pub fn add_confirmed(existing: &[String], host: &str) -> String {
    std::iter::once(host)
        .chain(existing.iter().map(String::as_str).filter(|h| *h != host))
        .take(MAX_CONFIRMED)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn only_known_instances_are_linked_without_a_question() {
        assert!(judge(&base("https://gitlab.com"), &[], &[]).is_confirmed());
        let evil = base("https://gitlab-acme.evil");
        assert_eq!(judge(&evil, &[], &[]), InstanceTrust::Unconfirmed { mixes_scripts: false, saved_elsewhere: None });
        assert!(judge(&evil, &["gitlab-acme.evil".to_owned()], &[]).is_confirmed());
        assert!(judge(&evil, &[], &[base("https://gitlab-acme.evil/gitlab")]).is_confirmed());
        assert_eq!(
            judge(&evil, &["git.acme.com".to_owned()], &[base("https://git.acme.com")]),
            InstanceTrust::Unconfirmed { mixes_scripts: false, saved_elsewhere: Some("https://git.acme.com".into()) }
        );
        let look_alike = base("https://git\u{0430}b.acme.com");
        assert!(matches!(judge(&look_alike, &[], &[]), InstanceTrust::Unconfirmed { mixes_scripts: true, .. }));
        // a subdomain of a confirmed host is another host
        assert!(!judge(&base("https://gitlab.com.evil"), &[], &[]).is_confirmed());
    }

    #[test]
    fn the_cookie_keeps_the_newest_hosts() {
        let mut value = String::new();
        for i in 0..15 {
            value = add_confirmed(&parse_confirmed(&value), &format!("h{i}.example"));
        }
        let hosts = parse_confirmed(&value);
        assert_eq!(hosts.len(), MAX_CONFIRMED);
        assert_eq!(hosts[0], "h14.example");
        assert_eq!(add_confirmed(&hosts, "h10.example").split('/').next(), Some("h10.example"));
        assert_eq!(add_confirmed(&hosts, "h10.example").split('/').count(), MAX_CONFIRMED);
        assert_eq!(parse_confirmed("good.example/<script>/;x/[2001:db8::1]"), ["good.example", "[2001:db8::1]"]);
    }
}
