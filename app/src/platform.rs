//! What a platform key is made of, pure: the scopes a key may carry ([`KeyScope`]), the origins a
//! platform's users may be sent back to ([`ReturnOrigin`], [`check_return_url`]), and the cursor
//! the `/api/v1` lists are paged by ([`Cursor`]). A platform is an analytics product that starts
//! Onramp from its own "Integrate" button and then reads the connection through `/api/v1` with an
//! `Authorization: Bearer onp_…` key (issue 22). Unit-tested; `store::platform` keeps the keys.

use std::collections::BTreeSet;
use std::fmt;

/// The prefix of platform keys, so they are recognisable (and scannable) in leaks; API tokens of
/// people start with `onr_`.
pub const PLATFORM_KEY_PREFIX: &str = "onp_";

/// What a platform key may do. A call outside its key's scopes is answered 403 naming the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyScope {
    /// Create connect sessions (send an end user into the wizard).
    ConnectSessionsWrite,
    /// Read workspaces, connections, their health and their chosen projects; never a secret.
    ConnectionsRead,
    /// Read a connection's GitLab token: the one place a token leaves Onramp.
    CredentialsRead,
    /// Register webhook endpoints.
    WebhooksWrite,
}

impl KeyScope {
    pub const ALL: [KeyScope; 4] =
        [KeyScope::ConnectSessionsWrite, KeyScope::ConnectionsRead, KeyScope::CredentialsRead, KeyScope::WebhooksWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::ConnectSessionsWrite => "connect_sessions:write",
            KeyScope::ConnectionsRead => "connections:read",
            KeyScope::CredentialsRead => "credentials:read",
            KeyScope::WebhooksWrite => "webhooks:write",
        }
    }

    pub fn parse(text: &str) -> Option<KeyScope> {
        KeyScope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What the scope allows, for `--help`, the settings page and the README.
    pub fn allows(self) -> &'static str {
        match self {
            KeyScope::ConnectSessionsWrite => "send an end user into the wizard (connect sessions)",
            KeyScope::ConnectionsRead => "read workspaces, connections, their health and chosen projects; no secret",
            KeyScope::CredentialsRead => "read a connection's GitLab token: the one place a token leaves Onramp",
            KeyScope::WebhooksWrite => "register, test and remove webhook endpoints",
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's scopes: a set, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<KeyScope>);

impl Scopes {
    /// `connections:read,credentials:read` (commas or spaces). Unknown or no scopes are refused
    /// with a message that lists the valid ones.
    pub fn parse(list: &str) -> Result<Scopes, String> {
        let mut set = BTreeSet::new();
        for word in list.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()) {
            match KeyScope::parse(word) {
                Some(scope) => {
                    set.insert(scope);
                }
                None => {
                    return Err(format!(
                        "{:?} is not a scope of platform keys. The scopes are: {}.",
                        word.chars().take(60).collect::<String>(),
                        Self::valid_list()
                    ))
                }
            }
        }
        if set.is_empty() {
            return Err(format!("Give the key at least one scope: {}.", Self::valid_list()));
        }
        Ok(Scopes(set))
    }

    fn valid_list() -> String {
        KeyScope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn contains(&self, scope: KeyScope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = KeyScope> + '_ {
        self.0.iter().copied()
    }

    /// Space-separated, as stored.
    pub fn to_stored(&self) -> String {
        self.iter().map(KeyScope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// What is stored; a scope a newer Onramp wrote and this one does not know is dropped.
    pub fn from_stored(text: &str) -> Scopes {
        Scopes(text.split(' ').filter_map(KeyScope::parse).collect())
    }

    /// The 403 of a call outside the key's scopes, naming the scope it needs.
    pub fn require(&self, scope: KeyScope) -> Result<(), String> {
        if self.contains(scope) {
            Ok(())
        } else {
            Err(format!(
                "This platform key lacks the scope {scope}, which this call needs. Make a key with it \
                 (`onramp platform-key create --scopes {scope},…`) and revoke the old one."
            ))
        }
    }
}

/// An origin a platform's users may be sent back to: `https://host[:port]`, or `http://` on a
/// loopback host (a platform developer's machine). Kept in the canonical form the browser uses
/// (`url::Url::origin`), lower-case, without a default port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReturnOrigin(String);

impl ReturnOrigin {
    pub fn parse(text: &str) -> Result<ReturnOrigin, String> {
        let text = text.trim();
        let shown: String = text.chars().take(80).collect();
        let url = url::Url::parse(text)
            .map_err(|_| format!("{shown:?} is not an origin: write it as https://platform.example.com"))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || text.ends_with('/') {
            return Err(format!(
                "{shown:?} has a path: an origin is only the scheme, host and port (https://platform.example.com)"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{shown:?} carries a user name or password: leave them out"));
        }
        secure_scheme(&url).map_err(|problem| format!("{shown:?}: {problem}"))?;
        Ok(ReturnOrigin(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReturnOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// https, or http when the host is loopback (`localhost`, 127.0.0.0/8, `[::1]`).
fn secure_scheme(url: &url::Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("http is allowed only on loopback (localhost, 127.0.0.1, [::1]); use https"),
        _ => Err("only https (or http on loopback) URLs are allowed"),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A `return_url` or `refresh_url` of a connect session: https (or http on loopback), no user
/// name or password, and on one of the key's return origins. The answer is the URL as parsed
/// (Onramp adds its own query parameters to it later).
pub fn check_return_url(text: &str, origins: &[ReturnOrigin]) -> Result<url::Url, String> {
    let shown: String = text.chars().take(80).collect();
    if text.len() > 2048 {
        return Err("the URL is longer than 2,048 bytes".to_owned());
    }
    let url = url::Url::parse(text.trim()).map_err(|_| format!("{shown:?} is not an absolute URL"))?;
    secure_scheme(&url).map_err(|p| format!("{shown:?}: {p}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{shown:?} carries a user name or password"));
    }
    let origin = url.origin().ascii_serialization();
    if !origins.iter().any(|o| o.0 == origin) {
        return Err(if origins.is_empty() {
            "this platform key has no return origins: create one with --return-origin".to_owned()
        } else {
            format!(
                "{origin} is not one of this key's return origins ({})",
                origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
            )
        });
    }
    Ok(url)
}

/// What a platform hears about (`/api/v1/events`, webhooks), by its `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    ConnectSessionCompleted,
    ConnectionCreated,
    ConnectionTokenReplaced,
    ConnectionTokenRotated,
    ConnectionCheckFailed,
    ConnectionRecovered,
    ConnectionExpiring,
    ConnectionDeleted,
    ScopeUpdated,
    /// An endpoint that kept failing for 5 days was disabled (only its key hears it).
    WebhookEndpointDisabled,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::ConnectSessionCompleted,
        EventType::ConnectionCreated,
        EventType::ConnectionTokenReplaced,
        EventType::ConnectionTokenRotated,
        EventType::ConnectionCheckFailed,
        EventType::ConnectionRecovered,
        EventType::ConnectionExpiring,
        EventType::ConnectionDeleted,
        EventType::ScopeUpdated,
        EventType::WebhookEndpointDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConnectSessionCompleted => "connect_session.completed",
            EventType::ConnectionCreated => "connection.created",
            EventType::ConnectionTokenReplaced => "connection.token_replaced",
            EventType::ConnectionTokenRotated => "connection.token_rotated",
            EventType::ConnectionCheckFailed => "connection.check_failed",
            EventType::ConnectionRecovered => "connection.recovered",
            EventType::ConnectionExpiring => "connection.expiring",
            EventType::ConnectionDeleted => "connection.deleted",
            EventType::ScopeUpdated => "scope.updated",
            EventType::WebhookEndpointDisabled => "webhook_endpoint.disabled",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The types a webhook endpoint subscribes to, as sent (`["connection.created", ...]`, or
    /// `["*"]` for all); an unknown one is refused naming the known ones.
    pub fn parse_list(list: &[String]) -> Result<Vec<EventType>, String> {
        if list.is_empty() {
            return Err("`events` lists the event types to send (or [\"*\"] for all of them)".to_owned());
        }
        let mut out = BTreeSet::new();
        for item in list {
            if item == "*" {
                out.extend(EventType::ALL);
                continue;
            }
            let found = EventType::parse(item).ok_or_else(|| {
                let shown: String = item.chars().take(60).collect();
                format!(
                    "{shown:?} is not an event type; the types are: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                )
            })?;
            out.insert(found);
        }
        Ok(out.into_iter().collect())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook endpoint's URL: http or https, a host, no user name or password, no fragment, at
/// most 2,048 bytes. Whether its address may be called is the outbound guard's to say (a literal
/// address when the endpoint is made, a name when a delivery resolves it).
pub fn check_webhook_url(text: &str) -> Result<url::Url, String> {
    let shown: String = text.chars().take(80).collect();
    if text.len() > 2048 {
        return Err("the URL is longer than 2,048 bytes".to_owned());
    }
    let url = url::Url::parse(text.trim()).map_err(|_| format!("{shown:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(format!("{shown:?}: a webhook URL is https://host/path (or http://)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{shown:?} carries a user name or password: Onramp signs every delivery instead"));
    }
    if url.fragment().is_some() {
        return Err(format!("{shown:?} has a #fragment, which is never sent: leave it out"));
    }
    Ok(url)
}

/// After a delivery's `attempts`-th failed try, how many seconds until the next one: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h (Svix's schedule, which the Standard Webhooks authors run): 8 tries
/// over 27.6 hours. `None`: no try is left.
pub fn retry_in(attempts: i64) -> Option<i64> {
    const AFTER: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    usize::try_from(attempts).ok().and_then(|n| n.checked_sub(1)).and_then(|i| AFTER.get(i).copied())
}

/// Where a page of a `/api/v1` list starts: after the item with this ordered key. Opaque to the
/// platform (URL-safe base64 of the key), so lists may change their ordering key later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    pub fn encode(key: &str) -> String {
        use base64_url::encode;
        encode(key.as_bytes())
    }

    /// The key a `next` value names; anything else is refused with a message (never a panic).
    pub fn decode(text: &str) -> Result<Cursor, String> {
        let bad = || "The cursor is not one Onramp gave: pass the `next` of the previous page unchanged.".to_owned();
        if text.len() > 512 {
            return Err(bad());
        }
        let bytes = base64_url::decode(text).ok_or_else(bad)?;
        String::from_utf8(bytes).map(Cursor).map_err(|_| bad())
    }
}

/// A page size: `?limit=` from 1 to 100, default 50.
pub fn page_limit(limit: Option<&str>) -> Result<usize, String> {
    match limit {
        None | Some("") => Ok(50),
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err("`limit` is a number from 1 to 100.".to_owned()),
        },
    }
}

/// URL-safe base64 without padding, in a few lines (both builds; `base64` is a server-only
/// dependency).
mod base64_url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let values: Vec<u32> =
            text.bytes().map(|c| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)).collect::<Option<_>>()?;
        for chunk in values.chunks(4) {
            if chunk.len() == 1 {
                return None;
            }
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_name_what_is_missing() {
        let s = Scopes::parse("connections:read, credentials:read").unwrap();
        assert!(s.contains(KeyScope::ConnectionsRead) && s.contains(KeyScope::CredentialsRead));
        assert!(!s.contains(KeyScope::WebhooksWrite));
        assert_eq!(s.to_stored(), "connections:read credentials:read");
        assert_eq!(Scopes::from_stored(&s.to_stored()), s);
        assert_eq!(Scopes::from_stored("connections:read gitlab:write"), Scopes::parse("connections:read").unwrap());
        let refused = s.require(KeyScope::WebhooksWrite).unwrap_err();
        assert!(refused.contains("webhooks:write"), "{refused}");
        assert!(s.require(KeyScope::ConnectionsRead).is_ok());
        let unknown = Scopes::parse("connections:read,api").unwrap_err();
        assert!(unknown.contains("\"api\"") && unknown.contains("credentials:read"), "{unknown}");
        assert!(Scopes::parse(" , ").is_err());
        // A long or odd word is shown cut by characters, never sliced inside one.
        assert!(Scopes::parse(&"é".repeat(500)).unwrap_err().len() < 400);
    }

    #[test]
    fn return_origins_are_https_or_loopback_and_canonical() {
        assert_eq!(
            ReturnOrigin::parse("https://Platform.Example.com").unwrap().as_str(),
            "https://platform.example.com"
        );
        assert_eq!(ReturnOrigin::parse("https://p.example:443").unwrap().as_str(), "https://p.example");
        assert_eq!(ReturnOrigin::parse("https://p.example:8443").unwrap().as_str(), "https://p.example:8443");
        assert_eq!(ReturnOrigin::parse("http://127.0.0.1:4000").unwrap().as_str(), "http://127.0.0.1:4000");
        assert_eq!(ReturnOrigin::parse("http://localhost:4000").unwrap().as_str(), "http://localhost:4000");
        assert_eq!(ReturnOrigin::parse("http://[::1]:4000").unwrap().as_str(), "http://[::1]:4000");
        for bad in [
            "http://platform.example.com",
            "https://platform.example.com/",
            "https://platform.example.com/return",
            "https://platform.example.com?x=1",
            "https://user:pw@platform.example.com",
            "javascript:alert(1)",
            "ftp://platform.example.com",
            "platform.example.com",
            "",
        ] {
            assert!(ReturnOrigin::parse(bad).is_err(), "{bad:?} was allowed");
        }
    }

    #[test]
    fn return_urls_must_be_on_an_origin_of_the_key() {
        let origins = vec![ReturnOrigin::parse("https://platform.example.com").unwrap()];
        let ok = check_return_url("https://platform.example.com/integrations/gitlab?team=7", &origins).unwrap();
        assert_eq!(ok.query(), Some("team=7"));
        for bad in [
            "https://platform.example.com.evil.example/return",
            "https://evil.example/return",
            "http://platform.example.com/return",
            "https://platform.example.com:8443/return",
            "https://x@platform.example.com/return",
            "//platform.example.com/return",
            "/return",
            "javascript:alert(1)",
        ] {
            assert!(check_return_url(bad, &origins).is_err(), "{bad:?} was allowed");
        }
        assert!(check_return_url("https://platform.example.com/r", &[]).unwrap_err().contains("--return-origin"));
        assert!(check_return_url(&format!("https://platform.example.com/{}", "a".repeat(3000)), &origins).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_onramp_did_not_give() {
        for key in ["", "a", "ab", "abc", "0123456789abcdef", "é/ü"] {
            let encoded = Cursor::encode(key);
            assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{encoded}");
            assert_eq!(Cursor::decode(&encoded).unwrap(), Cursor(key.to_owned()));
        }
        assert_eq!(Cursor::encode("abc"), "YWJj");
        assert_eq!(Cursor::encode("ab"), "YWI");
        for bad in ["%%", "Y", "/w", &"A".repeat(600), "_w"] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_one_to_a_hundred() {
        assert_eq!(page_limit(None), Ok(50));
        assert_eq!(page_limit(Some("100")), Ok(100));
        assert_eq!(page_limit(Some("1")), Ok(1));
        for bad in ["0", "101", "-1", "x", "1e3"] {
            assert!(page_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_parse_as_listed_with_a_star_for_all() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let star = EventType::parse_list(&["*".into()]).unwrap();
        assert_eq!(star.len(), EventType::ALL.len());
        let two = EventType::parse_list(&["scope.updated".into(), "connection.created".into(), "scope.updated".into()]);
        assert_eq!(two.unwrap(), vec![EventType::ConnectionCreated, EventType::ScopeUpdated]);
        let e = EventType::parse_list(&["connection.made".into()]).unwrap_err();
        assert!(e.contains("connection.made") && e.contains("connection.created"), "{e}");
        assert!(EventType::parse_list(&[]).is_err());
    }

    #[test]
    fn a_failing_delivery_is_tried_within_30_seconds_then_for_more_than_a_day() {
        assert_eq!(retry_in(0), None, "nothing failed yet");
        assert!(retry_in(1).unwrap() <= 30, "the first retry comes within 30 seconds");
        let waits: Vec<i64> = (1..).map_while(retry_in).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "backs off: {waits:?}");
        assert!(waits.iter().sum::<i64>() >= 24 * 3600, "retried for at least 24 hours");
        assert_eq!(retry_in(8), None, "eight tries in all");
    }

    #[test]
    fn webhook_urls_are_plain_http_addresses() {
        assert_eq!(
            check_webhook_url(" https://p.example/hooks/onramp?x=1 ").unwrap().as_str(),
            "https://p.example/hooks/onramp?x=1"
        );
        for bad in
            ["ftp://p.example/", "https://u:p@p.example/", "https://p.example/#x", "/hooks", "mailto:a@b.c", "data:,x"]
        {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
        assert!(check_webhook_url(&format!("https://p.example/{}", "é".repeat(1100))).is_err());
    }
}
