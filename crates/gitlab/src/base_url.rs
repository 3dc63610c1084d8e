//! The GitLab instance's base URL: parsed from whatever people paste (a bare host, a profile URL, a
//! project URL, `https://https://…`, a trailing `/api/v4`) into a type that cannot hold a bad value.
//!
//! The base may carry a port and a relative URL root of any depth (`https://h:8443/a/b/gitlab`); the
//! API lives at `{base}/api/v4` and a profile at `{base}/{username}`.

use std::fmt;
use url::Url;

/// A normalised GitLab base URL: `http`/`https`, a host, maybe a port and a path prefix, no
/// credentials, query, fragment, trailing slash, `/api/v4` or `/-/` route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    /// Invariant: the serialisation of the URL minus its trailing slash.
    text: String,
    host: String,
    port: u16,
    https: bool,
    path_segments: usize,
}

/// Why a pasted address cannot be used. Each message says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("Enter your GitLab's web address, for example https://gitlab.com.")]
    Empty,
    #[error("A web address cannot contain spaces. Copy it again from your browser's address bar.")]
    Spaces,
    #[error("This is not a web address. Copy it from your browser's address bar, for example https://gitlab.example.com/jdoe.")]
    NotAWebAddress,
    #[error(
        "Only http:// and https:// addresses can be used, not {0}:. Copy the address from your browser's address bar."
    )]
    Scheme(String),
    #[error("Remove the user name and password from the address: Onramp only needs the address itself.")]
    Credentials,
    #[error("This address has no user name at the end. Open your profile (select your avatar, then your name) and copy the address from there.")]
    NoUsername,
    #[error("This is a project, group or settings page, not your profile. Open your profile (select your avatar, then your name) and copy the address from there.")]
    NotAProfile,
}

/// The parts of a pasted address, before deciding whether it is an instance or a profile.
struct Pasted {
    origin: Url,
    segments: Vec<String>,
    /// The address had GitLab's `/-/` route separator: it pointed into a project or settings page.
    route_separator: bool,
}

/// Hosts known to serve GitLab at the root, where a longer path is never a relative URL root.
const ROOT_ONLY_HOSTS: &[&str] = &["gitlab.com"];

impl BaseUrl {
    /// Parses an instance address as typed on step 12: scheme added when missing, a doubled scheme
    /// collapsed, trailing slashes, `/api/v4…` and GitLab `/-/…` routes removed. A profile or
    /// project path is kept: the connection check finds the real base among [`BaseUrl::candidates`].
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let pasted = Pasted::parse(input)?;
        Ok(Self::from_parts(&pasted.origin, &pasted.segments))
    }

    /// Derives the base URL from a profile URL (step 11): the profile URL minus its last segment,
    /// the username. Subpath and port are kept.
    pub fn from_profile_url(input: &str) -> Result<Self, UrlError> {
        let pasted = Pasted::parse(input)?;
        if pasted.route_separator {
            return Err(UrlError::NotAProfile);
        }
        let Some((_username, prefix)) = pasted.segments.split_last() else {
            return Err(UrlError::NoUsername);
        };
        let host = pasted.origin.host_str().unwrap_or_default();
        if !prefix.is_empty() && ROOT_ONLY_HOSTS.contains(&host) {
            return Err(UrlError::NotAProfile);
        }
        Ok(Self::from_parts(&pasted.origin, prefix))
    }

    fn from_parts(origin: &Url, segments: &[String]) -> Self {
        let mut url = origin.clone();
        url.set_path(&segments.join("/"));
        let text = url.as_str().trim_end_matches('/').to_owned();
        BaseUrl {
            text,
            host: origin.host_str().unwrap_or_default().to_owned(),
            port: origin.port_or_known_default().unwrap_or(443),
            https: origin.scheme() == "https",
            path_segments: segments.len(),
        }
    }

    /// The base as text, without a trailing slash: `https://git.acme.io:8443/gitlab`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host name or IP literal (IPv6 in brackets, as in URLs).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host as people read it, when it differs from [`BaseUrl::host`]: an internationalised
    /// name (`bücher.example` for `xn--bcher-kva.example`). Pages show both, so a look-alike
    /// written in another script is visible for what it is.
    pub fn unicode_host(&self) -> Option<String> {
        if !self.host.split('.').any(|label| label.starts_with("xn--")) {
            return None;
        }
        let (unicode, result) = idna::domain_to_unicode(&self.host);
        (result.is_ok() && unicode != self.host).then_some(unicode)
    }

    /// Does a label of the host mix letters of several scripts (Latin and Cyrillic, say), as
    /// look-alike domains do?
    pub fn mixes_scripts(&self) -> bool {
        self.unicode_host().is_some_and(|host| host.split('.').any(|label| scripts_in(label) > 1))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `{base}/api/v4{path}`; `path` starts with `/`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.text)
    }

    /// `{base}{path}` for a web page; `path` starts with `/`.
    pub fn page(&self, path: &str) -> String {
        format!("{}{path}", self.text)
    }

    /// This URL and every shorter prefix of its path, longest first: where GitLab may live when a
    /// profile or project URL was pasted. Capped, so a long pasted path cannot fan out.
    pub fn candidates(&self) -> Vec<BaseUrl> {
        const MAX: usize = 6;
        let url = Url::parse(&self.text).expect("a BaseUrl is a valid URL");
        let segments: Vec<String> =
            url.path_segments().map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
        (0..=segments.len()).rev().take(MAX).map(|n| Self::from_parts(&url, &segments[..n])).collect()
    }

    /// The number of path segments after the host (0 for an instance served at the root).
    pub fn depth(&self) -> usize {
        self.path_segments
    }

    /// The value for a `?base=` query parameter, percent-encoded.
    pub fn query_value(&self) -> String {
        url::form_urlencoded::byte_serialize(self.text.as_bytes()).collect()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pasted {
    fn parse(input: &str) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        if input.chars().any(char::is_whitespace) {
            return Err(UrlError::Spaces);
        }
        let input = collapse_doubled_scheme(input);
        let with_scheme = match explicit_scheme(input) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
                input.to_owned()
            }
            Some(scheme) => return Err(UrlError::Scheme(scheme.to_ascii_lowercase())),
            None => format!("https://{}", input.trim_start_matches('/')),
        };
        let url = Url::parse(&with_scheme).map_err(|_| UrlError::NotAWebAddress)?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(UrlError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let Some(host) = url.host() else {
            return Err(UrlError::NotAWebAddress);
        };
        if let url::Host::Domain(domain) = host {
            if !plausible_domain(domain) {
                return Err(UrlError::NotAWebAddress);
            }
        }

        let mut segments = Vec::new();
        let mut route_separator = false;
        let mut raw: Vec<&str> = url.path_segments().map(|s| s.filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        // `…/api/v4/…` is the API under the base; cut it and everything after.
        if let Some(i) = raw.windows(2).position(|w| w[0] == "api" && w[1].eq_ignore_ascii_case("v4")) {
            raw.truncate(i);
        }
        for segment in raw {
            if segment == "-" {
                route_separator = true;
                break;
            }
            segments.push(segment.to_owned());
        }
        let mut origin = url;
        origin.set_path("");
        origin.set_query(None);
        origin.set_fragment(None);
        Ok(Pasted { origin, segments, route_separator })
    }
}

/// `https://https://x` → `https://x`; `http://https://x` → `https://x` (the inner scheme is the
/// one that was copied from the address bar).
fn collapse_doubled_scheme(mut input: &str) -> &str {
    loop {
        let Some(rest) = strip_http_scheme(input) else { return input };
        if strip_http_scheme(rest).is_some() {
            input = rest;
        } else {
            return input;
        }
    }
}

fn strip_http_scheme(input: &str) -> Option<&str> {
    // `get` and not `[..]`: the input is user text, and a byte offset may fall inside a character.
    ["https://", "http://"].into_iter().find_map(|scheme| {
        let head = input.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then(|| input.get(scheme.len()..)).flatten()
    })
}

/// The scheme of `input` if it names one (`javascript:`, `https:`), telling `host:8080` apart.
fn explicit_scheme(input: &str) -> Option<&str> {
    let (scheme, rest) = input.split_once(':')?;
    let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid || scheme.contains('.') {
        return None; // `gitlab.example.com:8443/…` is a host and port
    }
    if rest.starts_with(|c: char| c.is_ascii_digit()) && !rest.starts_with("//") {
        return None; // `localhost:8080/…`
    }
    Some(scheme)
}

/// How many scripts the letters of `label` come from (roughly, by Unicode block: enough to tell
/// Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic and the rest apart).
fn scripts_in(label: &str) -> usize {
    let script = |c: char| match c as u32 {
        _ if !c.is_alphabetic() => None,
        0x0000..=0x024F | 0x1E00..=0x1EFF => Some(0), // Latin
        0x0370..=0x03FF | 0x1F00..=0x1FFF => Some(1), // Greek
        0x0400..=0x052F => Some(2),                   // Cyrillic
        0x0530..=0x058F => Some(3),                   // Armenian
        0x0590..=0x05FF => Some(4),                   // Hebrew
        0x0600..=0x06FF => Some(5),                   // Arabic
        n => Some(6 + (n >> 8) as usize),             // another block
    };
    let mut seen: Vec<usize> = label.chars().filter_map(script).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Host names as DNS has them: letters, digits, hyphens and underscores in dot-separated labels
/// (the `url` crate has already turned international names into punycode).
fn plausible_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_profile(input: &str, expected: Result<&str, UrlError>) {
        let got = BaseUrl::from_profile_url(input);
        assert_eq!(got.as_ref().map(BaseUrl::as_str), expected.as_ref().map(|s| *s), "profile {input:?}");
    }

    #[test]
    fn base_from_profile_url() {
        use UrlError::*;
        let cases: &[(&str, Result<&str, UrlError>)] = &[
            ("gitlab.com/jdoe", Ok("https://gitlab.com")),
            ("https://gitlab.com/jdoe", Ok("https://gitlab.com")),
            ("  https://gitlab.com/jdoe  ", Ok("https://gitlab.com")),
            ("https://gitlab.com/jdoe/", Ok("https://gitlab.com")),
            ("https://gitlab.com/jdoe?tab=activity#top", Ok("https://gitlab.com")),
            ("HTTPS://GitLab.com/jdoe", Ok("https://gitlab.com")),
            ("https://git.acme.io:8443/gitlab/jdoe/", Ok("https://git.acme.io:8443/gitlab")),
            ("https://h:8443/a/b/gitlab/jdoe", Ok("https://h:8443/a/b/gitlab")),
            ("http://gitlab.internal/jdoe", Ok("http://gitlab.internal")),
            ("https://gitlab.example.com:443/jdoe", Ok("https://gitlab.example.com")),
            ("gitlab.example.com:8443/jdoe", Ok("https://gitlab.example.com:8443")),
            ("localhost:8080/jdoe", Ok("https://localhost:8080")),
            ("https://https://gitlab.com/jdoe", Ok("https://gitlab.com")),
            ("http://https://gitlab.com/jdoe", Ok("https://gitlab.com")),
            ("https://git.acme.engineering/jdoe", Ok("https://git.acme.engineering")),
            ("https://gitlab.example.com//jdoe//", Ok("https://gitlab.example.com")),
            ("https://[2001:db8::1]:8443/jdoe", Ok("https://[2001:db8::1]:8443")),
            ("https://bücher.example/jdoe", Ok("https://xn--bcher-kva.example")),
            ("https://https://x", Err(NoUsername)),
            ("https://gitlab.com", Err(NoUsername)),
            ("https://gitlab.com/", Err(NoUsername)),
            ("https://gitlab.com/acme/widgets", Err(NotAProfile)),
            ("https://gitlab.example.com/acme/widgets/-/merge_requests/3", Err(NotAProfile)),
            ("https://gitlab.example.com/-/user_settings/profile", Err(NotAProfile)),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("https://gitlab.com/j doe", Err(Spaces)),
            ("not a url", Err(Spaces)),
            ("javascript:alert(1)", Err(Scheme("javascript".into()))),
            ("JavaScript:alert(1)", Err(Scheme("javascript".into()))),
            ("ftp://gitlab.com/jdoe", Err(Scheme("ftp".into()))),
            ("mailto:jdoe@example.com", Err(Scheme("mailto".into()))),
            ("data:text/html,hi", Err(Scheme("data".into()))),
            ("https://jdoe:secret@gitlab.com/jdoe", Err(Credentials)),
            ("https://!!!/jdoe", Err(NotAWebAddress)),
            ("https://", Err(NotAWebAddress)),
            ("https:///jdoe", Err(NoUsername)),
            ("://", Err(NotAWebAddress)),
        ];
        for (input, expected) in cases {
            check_profile(input, expected.clone());
        }
    }

    #[test]
    fn base_as_typed() {
        let cases: &[(&str, Result<&str, UrlError>)] = &[
            ("gitlab.com", Ok("https://gitlab.com")),
            ("https://gitlab.com/", Ok("https://gitlab.com")),
            ("https://gitlab.example.com/gitlab/", Ok("https://gitlab.example.com/gitlab")),
            ("https://gitlab.example.com/gitlab/api/v4", Ok("https://gitlab.example.com/gitlab")),
            ("https://gitlab.example.com/api/v4/", Ok("https://gitlab.example.com")),
            ("https://gitlab.example.com/api/v4/projects?x=1", Ok("https://gitlab.example.com")),
            ("https://gitlab.example.com/acme/widgets/-/tree/main", Ok("https://gitlab.example.com/acme/widgets")),
            ("https://gitlab.com/jdoe", Ok("https://gitlab.com/jdoe")),
            ("http://10.0.0.5:8080", Ok("http://10.0.0.5:8080")),
            ("https://https://x", Ok("https://x")),
            ("javascript:alert(1)", Err(UrlError::Scheme("javascript".into()))),
            ("", Err(UrlError::Empty)),
        ];
        for (input, expected) in cases {
            let got = BaseUrl::parse(input);
            assert_eq!(got.as_ref().map(BaseUrl::as_str), expected.as_ref().map(|s| *s), "{input:?}");
        }
    }

    #[test]
    fn international_hosts_show_both_forms() {
        let base = BaseUrl::parse("https://bücher.example/gitlab").unwrap();
        assert_eq!(base.as_str(), "https://xn--bcher-kva.example/gitlab");
        assert_eq!(base.unicode_host().as_deref(), Some("bücher.example"));
        assert!(!base.mixes_scripts());
        assert_eq!(BaseUrl::parse("https://gitlab.com").unwrap().unicode_host(), None);
        // "gitlаb" with a Cyrillic а
        let look_alike = BaseUrl::parse("https://git\u{0430}b.example.com").unwrap();
        assert!(look_alike.host().starts_with("xn--"), "{}", look_alike.host());
        assert!(look_alike.mixes_scripts());
        // all Cyrillic is one script
        assert!(!BaseUrl::parse("https://\u{0433}\u{0438}\u{0442}.example").unwrap().mixes_scripts());
    }

    #[test]
    fn non_ascii_input_never_panics() {
        // each once cut a character in two at a byte offset
        for input in
            ["€€€", "€", "ht€", "https:/€", "http://€€€€", "h\u{0301}ttps://x", "\u{202e}https://x", "€:€", "€/€"]
        {
            let _ = BaseUrl::parse(input);
            let _ = BaseUrl::from_profile_url(input);
        }
        // an international name: kept, in its ASCII form
        let euro = BaseUrl::parse("€€€").unwrap();
        assert!(euro.host().is_ascii() && euro.host().starts_with("xn--"), "{}", euro.host());
        assert_eq!(euro.unicode_host().as_deref(), Some("€€€"));
    }

    #[test]
    fn parts() {
        let base = BaseUrl::parse("https://git.acme.io:8443/gitlab").unwrap();
        assert_eq!(base.host(), "git.acme.io");
        assert_eq!(base.port(), 8443);
        assert!(base.is_https());
        assert_eq!(base.depth(), 1);
        assert_eq!(base.api("/user"), "https://git.acme.io:8443/gitlab/api/v4/user");
        assert_eq!(base.page("/users/sign_in"), "https://git.acme.io:8443/gitlab/users/sign_in");
        let plain = BaseUrl::parse("http://gitlab.internal").unwrap();
        assert_eq!((plain.port(), plain.is_https(), plain.depth()), (80, false, 0));
    }

    #[test]
    fn candidates_longest_first() {
        let base = BaseUrl::parse("https://h:8443/a/b/gitlab/jdoe").unwrap();
        let got: Vec<_> = base.candidates().iter().map(|b| b.as_str().to_owned()).collect();
        assert_eq!(
            got,
            [
                "https://h:8443/a/b/gitlab/jdoe",
                "https://h:8443/a/b/gitlab",
                "https://h:8443/a/b",
                "https://h:8443/a",
                "https://h:8443"
            ]
        );
        assert_eq!(BaseUrl::parse("gitlab.com").unwrap().candidates().len(), 1);
        let deep = BaseUrl::parse("https://h/1/2/3/4/5/6/7/8/9").unwrap();
        assert_eq!(deep.candidates().len(), 6);
    }

    #[test]
    fn query_value_round_trips() {
        let base = BaseUrl::parse("https://git.acme.io:8443/gitlab").unwrap();
        let encoded = base.query_value();
        assert!(!encoded.contains('/') && !encoded.contains(':'));
        let decoded: String =
            url::form_urlencoded::parse(format!("b={encoded}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap();
        assert_eq!(BaseUrl::parse(&decoded).unwrap(), base);
    }
}
