//! Property tests: no parser of user-controlled text panics on any input, and the invariants the
//! rest of Onramp relies on hold for every input, not only for the examples in the unit tests.
//!
//! Run with `cargo test -p app --features ssr --test properties`. Failures are not persisted to a
//! `proptest-regressions/` file: the minimal failing case proptest prints is what to copy into a
//! unit test.

use app::account::{token_name, TOKEN_NAME_MAX};
use app::auth::safe_next;
use app::client::{limit_key, text_key, ClientInfo, TrustedProxies};
use app::gitlab::base_url::BaseUrl;
use app::gitlab::guard::OutboundGuard;
use app::gitlab::token::{redact_for_log, GitlabToken};
use app::store::accounts::{check_password, Email};
use app::trust::{add_confirmed, parse_confirmed, MAX_CONFIRMED};
use app::wizard::Step;
use app::workspace::{audit_cursor, is_invisible, parse_name};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Cheap properties: thousands of cases.
const MANY: u32 = 2000;
/// Properties over 64 KiB inputs: a handful of cases.
const HUGE: u32 = 16;

fn config(cases: u32) -> ProptestConfig {
    // No regression files: this suite must not write into the source tree.
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases) }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Fragments that have broken URL handling somewhere, some time: schemes, separators, brackets,
/// multi-byte and combining characters, bidi controls, right-to-left letters, incomplete
/// percent-encodings, NUL and other control characters, GitLab route words.
const PIECES: &[&str] = &[
    "https://",
    "http://",
    "HTTPS://",
    "hTtP://",
    "https:",
    "https:/",
    "javascript:",
    "ftp://",
    ":",
    "/",
    "//",
    "@",
    "%",
    "[",
    "]",
    "?",
    "#",
    "\\",
    ".",
    "..",
    "-",
    "_",
    "€",
    "\u{0301}",
    "e\u{0301}",
    "\u{202E}",
    "\u{200F}",
    "\u{200D}",
    "\u{FEFF}",
    "ש",
    "שלום",
    "ع",
    "عربي",
    "а",
    "gitаb",
    "bücher",
    "%E2%82",
    "%E2%82%AC",
    "%",
    "%2",
    "%2e",
    "%2E%2e",
    "%00",
    "%2F",
    "\0",
    "\u{7}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\t",
    "\n",
    " ",
    "api",
    "v4",
    "V4",
    "xn--",
    "xn--bcher-kva",
    "gitlab.com",
    "gitlab.example.com",
    "localhost",
    "127.0.0.1",
    "0x7f.1",
    "::1",
    "[::1]",
    "[2001:db8::1]",
    "::ffff:10.0.0.1",
    "443",
    "8443",
    "65536",
    "99999999999",
    "jdoe",
    "user:pass@",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(PIECES).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9.-]{1,8}",
        1 => any::<char>().prop_map(String::from),
        1 => "\\PC{1,4}",
    ]
}

/// Strings made of hostile fragments.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|v| v.concat())
}

/// Addresses that mostly parse: a scheme (or none), a host, maybe a port, path segments mixing
/// plain words with hostile fragments, maybe a query and fragment.
fn urlish() -> impl Strategy<Value = String> {
    let scheme = select(&["", "https://", "http://", "HTTPS://", "https://https://", "http://https://", "//"][..]);
    let host = prop_oneof![
        select(
            &[
                "gitlab.com",
                "gitlab.example.com",
                "git.acme.io",
                "localhost",
                "h",
                "x.",
                "127.0.0.1",
                "10.0.0.5",
                "[::1]",
                "[2001:db8::1]",
                "[::ffff:10.0.0.1]",
                "bücher.example",
                "git\u{0430}b.example.com",
                "\u{0433}\u{0438}\u{0442}.example",
                "שלום.example",
                "عربي.example",
                "€€€",
                "xn--bcher-kva.example",
                "GitLab.COM",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}",
        nasty(),
    ];
    let port = prop_oneof![Just(String::new()), (0u32..70_000).prop_map(|p| format!(":{p}")), Just(":".to_owned())];
    let segment = prop_oneof![
        3 => "[a-zA-Z0-9._~-]{1,10}",
        1 => select(&["api", "v4", "V4", "-", ".", "..", "%2e", "%2e%2e", "", "jdoe", "gitlab"][..]).prop_map(str::to_owned),
        1 => piece(),
    ];
    let path = prop::collection::vec(segment, 0..10);
    let tail = select(&["", "/", "//", "?tab=activity", "#top", "?x=1#y", "/?", "/#"][..]);
    (scheme, host, port, path, tail).prop_map(|(scheme, host, port, path, tail)| {
        let path: String = path.iter().map(|s| format!("/{s}")).collect();
        format!("{scheme}{host}{port}{path}{tail}")
    })
}

/// Every kind of string a pasted address may be.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![2 => "\\PC*", 3 => nasty(), 5 => urlish(), 1 => ".*"]
}

/// 60 000 to 66 000 arbitrary characters.
fn huge_chars() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 60_000..66_000).prop_map(|v| v.into_iter().collect())
}

/// About 64 KiB with no whitespace, so it gets past the early "no spaces" check.
fn huge_no_spaces() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 60_000..66_000)
        .prop_map(|v| v.into_iter().map(|c| if c.is_whitespace() { 'x' } else { c }).collect())
}

/// About 64 KiB of a well-formed address: thousands of path segments.
fn huge_url() -> impl Strategy<Value = String> {
    (select(&["https://gitlab.example.com", "http://h:8080", "gitlab.com", "[::1]"][..]), "[a-z0-9%-]{1,6}").prop_map(
        |(base, segment)| {
            let mut s = base.to_owned();
            while s.len() < 64 * 1024 {
                s.push('/');
                s.push_str(&segment);
            }
            s
        },
    )
}

fn huge() -> impl Strategy<Value = String> {
    prop_oneof![huge_chars(), huge_no_spaces(), huge_url()]
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        select(&[[127, 0, 0, 1], [10, 0, 0, 2], [192, 0, 2, 1], [0, 0, 0, 0], [255, 255, 255, 255]][..])
            .prop_map(Ipv4Addr::from),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        ipv4().prop_map(IpAddr::V4),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // IPv4-mapped IPv6: how an IPv4 client looks through a dual-stack socket
        ipv4().prop_map(|v4| IpAddr::V6(v4.to_ipv6_mapped())),
        select(&[Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED][..]).prop_map(IpAddr::V6),
    ]
}

/// What `ClientInfo` reports for a peer: IPv4-mapped IPv6 as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A CIDR or bare address in text, as `ONRAMP_TRUSTED_PROXIES` / `ONRAMP_OUTBOUND_ALLOW` hold them.
fn net_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ip().prop_map(|ip| ip.to_string()),
        (ipv4(), 0u8..=32).prop_map(|(ip, len)| format!("{ip}/{len}")),
        (any::<u128>(), 0u8..=128).prop_map(|(v, len)| format!("{}/{len}", Ipv6Addr::from(v))),
    ]
}

/// A list of entries joined by commas and/or spaces, valid and not.
fn entry_list() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        3 => net_text(),
        1 => "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
        1 => "\\*\\.[a-z0-9-]{1,10}\\.[a-z]{2,4}",
        1 => piece(),
        1 => select(&["*", "*.", ".", "/", "/33", "10.0.0.0/", "::/129", "1.2.3.4/-1", "[::1]", "", " "][..])
            .prop_map(str::to_owned),
    ];
    let sep = select(&[",", ", ", " ", ",,", " , ", "\t,"][..]);
    prop::collection::vec((entry, sep), 0..8).prop_map(|v| v.into_iter().map(|(e, s)| format!("{e}{s}")).collect())
}

/// One forwarding hop, as proxies and clients write them.
fn hop() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ip().prop_map(|ip| ip.to_string()),
        1 => (ipv4(), any::<u16>()).prop_map(|(ip, port)| format!("{ip}:{port}")),
        1 => (any::<u128>(), any::<u16>()).prop_map(|(v, port)| format!("[{}]:{port}", Ipv6Addr::from(v))),
        1 => any::<u128>().prop_map(|v| format!("[{}", Ipv6Addr::from(v))),
        1 => select(&["unknown", "_hidden", "", "[", "]", "[]:", ":", "::", "1.2.3.4:", "\"", "for="][..])
            .prop_map(str::to_owned),
        1 => "[ -~]{0,20}",
    ]
}

/// A header value for `x-forwarded-for`, `forwarded` or `x-forwarded-proto`.
fn header_text() -> impl Strategy<Value = String> {
    let forwarded_pair = (
        select(&["for", "FOR", "proto", "by", "host", "For "][..]),
        hop(),
        select(&["", "\""][..]),
        select(&[";", ",", ", ", "; "][..]),
    )
        .prop_map(|(k, v, q, sep)| format!("{k}={q}{v}{q}{sep}"));
    prop_oneof![
        2 => "[ -~]{0,80}",
        3 => prop::collection::vec(hop(), 0..6).prop_map(|hops| hops.join(", ")),
        2 => prop::collection::vec(forwarded_pair, 0..6).prop_map(|v| v.concat()),
        1 => select(&["https", "http", "HTTPS", "https, http", "http,https", " https ", ""][..]).prop_map(str::to_owned),
    ]
}

/// Raw header bytes: mostly text, sometimes `obs-text` (bytes 0x80–0xFF), which `HeaderValue`
/// accepts but `to_str` refuses.
fn header_value() -> impl Strategy<Value = Option<HeaderValue>> {
    prop_oneof![
        4 => header_text().prop_map(|s| HeaderValue::from_str(&s).ok()),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| HeaderValue::from_bytes(&b).ok()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = select(&["x-forwarded-for", "forwarded", "x-forwarded-proto"][..]);
    prop::collection::vec((name, header_value()), 0..6).prop_map(|entries| {
        let mut map = HeaderMap::new();
        for (name, value) in entries {
            if let Some(value) = value {
                map.append(HeaderName::from_static(name), value);
            }
        }
        map
    })
}

/// A host a browser may really confirm: a plain ASCII DNS name or a bracketed IPv6 literal.
fn plausible_host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9_-]{1,20}(\\.[a-z0-9_-]{1,20}){0,4}",
        1 => any::<u128>().prop_map(|v| format!("[{}]", Ipv6Addr::from(v))),
        1 => ipv4().prop_map(|ip| ip.to_string()),
        1 => select(&["gitlab.com", "localhost", "xn--bcher-kva.example"][..]).prop_map(str::to_owned),
    ]
}

/// A secret-looking word: 20 or more of `[A-Za-z0-9_-]`.
fn secret_word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{20,64}"
}

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

/// The invariants every `BaseUrl` holds, however it was obtained.
fn check_base(base: &BaseUrl) -> Result<(), TestCaseError> {
    let text = base.as_str();
    prop_assert!(text.starts_with("https://") || text.starts_with("http://"), "scheme: {text:?}");
    prop_assert!(!text.ends_with('/'), "trailing slash: {text:?}");
    prop_assert!(base.host().is_ascii(), "host not ASCII: {:?}", base.host());
    prop_assert!(!base.host().is_empty(), "empty host: {text:?}");
    prop_assert_eq!(base.to_string(), text);

    let again = BaseUrl::parse(text);
    prop_assert_eq!(again.as_ref(), Ok(base), "parse(as_str()) differs for {:?}", text);

    let candidates = base.candidates();
    prop_assert!((1..=6).contains(&candidates.len()), "{} candidates for {text:?}", candidates.len());
    prop_assert_eq!(&candidates[0], base);
    for c in &candidates {
        prop_assert!(c.as_str().len() <= text.len(), "candidate {:?} longer than {text:?}", c.as_str());
        prop_assert!(text.starts_with(c.as_str()), "candidate {:?} not a prefix of {text:?}", c.as_str());
        prop_assert_eq!(c.host(), base.host());
    }

    let query = base.query_value();
    prop_assert!(!query.contains(['/', ':', '&', '?', '#']), "query value {query:?}");

    // no panic; what a page shows of the host
    let unicode = base.unicode_host();
    let _ = base.mixes_scripts();
    if let Some(unicode) = unicode {
        prop_assert_ne!(unicode.as_str(), base.host());
    }
    let _ = base.api("/user");
    let _ = base.page("/users/sign_in");
    Ok(())
}

/// Neither constructor panics; what they accept is a valid `BaseUrl`.
fn check_address(input: &str) -> Result<(), TestCaseError> {
    if let Ok(base) = BaseUrl::parse(input) {
        check_base(&base)?;
    }
    if let Ok(base) = BaseUrl::from_profile_url(input) {
        check_base(&base)?;
    }
    Ok(())
}

fn check_redacted(input: &str) -> Result<String, TestCaseError> {
    let out = redact_for_log(input);
    prop_assert!(out.chars().count() <= 201, "{} chars", out.chars().count());
    prop_assert!(!out.chars().any(char::is_control), "control character in {out:?}");
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(MANY))]

    // --- app::gitlab::base_url ---------------------------------------------------------------

    #[test]
    fn base_url_never_panics_and_is_normalised(input in address()) {
        check_address(&input)?;
    }

    #[test]
    fn base_url_survives_surrounding_junk(before in nasty(), url in urlish(), after in nasty()) {
        check_address(&format!("{before}{url}{after}"))?;
        check_address(&format!("{url}{after}"))?;
        check_address(&format!("{before}{url}"))?;
    }

    #[test]
    fn base_url_accepts_plain_addresses(
        https in any::<bool>(),
        host in "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}",
        segments in prop::collection::vec(prop_oneof![
            5 => "[a-z][a-z0-9_]{0,8}",
            1 => select(&["api", "v4", "V4"][..]).prop_map(str::to_owned),
        ], 0..8),
    ) {
        let scheme = if https { "https" } else { "http" };
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        let input = format!("{scheme}://{host}{path}");
        // `…/api/v4/…` is the API: it and everything after it is cut
        let kept = segments
            .windows(2)
            .position(|w| w[0] == "api" && w[1].eq_ignore_ascii_case("v4"))
            .map_or(&segments[..], |i| &segments[..i]);

        let base = BaseUrl::parse(&input);
        prop_assert!(base.is_ok(), "{input:?}: {base:?}");
        let base = base.unwrap();
        check_base(&base)?;
        prop_assert_eq!(base.depth(), kept.len());
        prop_assert_eq!(base.host(), host.as_str());
        prop_assert_eq!(base.is_https(), https);

        let profile = BaseUrl::from_profile_url(&input);
        if kept.is_empty() || (kept.len() > 1 && host == "gitlab.com") {
            prop_assert!(profile.is_err(), "{input:?}: {profile:?}");
        } else {
            prop_assert!(profile.is_ok(), "{input:?}: {profile:?}");
            let profile = profile.unwrap();
            check_base(&profile)?;
            prop_assert_eq!(profile.depth(), kept.len() - 1);
        }
    }

    // --- app::client -------------------------------------------------------------------------

    #[test]
    fn trusted_proxies_parse_never_panics(spec in prop_oneof!["\\PC*", entry_list(), nasty()]) {
        if let Ok(trusted) = TrustedProxies::parse(&spec) {
            let _ = trusted.trusts(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
    }

    #[test]
    fn trusted_proxies_accept_every_cidr_and_address(nets in prop::collection::vec(net_text(), 0..8), sep in select(&[",", ", ", " ", " , "][..])) {
        let spec = nets.join(sep);
        prop_assert!(TrustedProxies::parse(&spec).is_ok(), "{spec:?}");
    }

    #[test]
    fn limit_key_counts_a_64_per_subscriber(high in any::<u64>(), low_a in any::<u64>(), low_b in any::<u64>()) {
        // The /64 `::/64` is excluded: the IPv4-mapped addresses in it (`::ffff:a.b.c.d`) are IPv4
        // clients and are keyed by their IPv4 address on purpose. See the next property.
        prop_assume!(high != 0);
        let a = IpAddr::V6(Ipv6Addr::from((u128::from(high) << 64) | u128::from(low_a)));
        let b = IpAddr::V6(Ipv6Addr::from((u128::from(high) << 64) | u128::from(low_b)));
        prop_assert_eq!(limit_key(a), limit_key(b));
        prop_assert_eq!(limit_key(a), IpAddr::V6(Ipv6Addr::from(u128::from(high) << 64)));
        prop_assert_eq!(limit_key(limit_key(a)), limit_key(a));
    }

    #[test]
    fn limit_key_in_the_zero_64(low in prop_oneof![any::<u64>(), any::<u32>().prop_map(|v| 0xffff_0000_0000 | u64::from(v))]) {
        let ip = IpAddr::V6(Ipv6Addr::from(u128::from(low)));
        let want = match canonical(ip) {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        prop_assert_eq!(limit_key(ip), want);
    }

    #[test]
    fn limit_key_keeps_ipv4(v4 in ipv4()) {
        prop_assert_eq!(limit_key(IpAddr::V4(v4)), IpAddr::V4(v4));
        prop_assert_eq!(limit_key(IpAddr::V6(v4.to_ipv6_mapped())), IpAddr::V4(v4));
    }

    #[test]
    fn text_key_is_16_bytes(text in prop_oneof!["\\PC*", ".*", nasty()]) {
        let key = text_key(&text);
        prop_assert_eq!(key.len(), 16);
        prop_assert_eq!(key, text_key(&text));
    }

    #[test]
    fn client_info_ignores_headers_from_untrusted_peers(
        peer in ip(),
        nets in prop::collection::vec(net_text(), 0..4),
        headers in headers(),
    ) {
        let trusted = TrustedProxies::parse(&nets.join(",")).expect("valid CIDRs");
        let info = ClientInfo::from_request(peer, &headers, &trusted);
        if !trusted.trusts(peer) {
            prop_assert_eq!(info, ClientInfo { ip: canonical(peer), https: false });
        }
        prop_assert_eq!(info.ip, canonical(info.ip), "not canonical");
    }

    #[test]
    fn client_info_never_panics_behind_trusted_proxies(
        peer in ip(),
        nets in prop::collection::vec(net_text(), 0..4),
        everyone in any::<bool>(),
        headers in headers(),
    ) {
        let spec = if everyone { "0.0.0.0/0, ::/0".to_owned() } else { nets.join(",") };
        let trusted = TrustedProxies::parse(&spec).expect("valid CIDRs");
        let info = ClientInfo::from_request(peer, &headers, &trusted);
        prop_assert_eq!(info.ip, canonical(info.ip), "not canonical");
        if headers.is_empty() {
            prop_assert_eq!(info, ClientInfo { ip: canonical(peer), https: false });
        }
        let _ = info.limit_key();
    }

    // --- app::trust --------------------------------------------------------------------------

    #[test]
    fn parse_confirmed_is_bounded_and_ascii(value in prop_oneof!["\\PC*", nasty(), prop::collection::vec(plausible_host(), 0..30).prop_map(|v| v.join("/"))]) {
        let hosts = parse_confirmed(&value);
        prop_assert!(hosts.len() <= MAX_CONFIRMED);
        for h in &hosts {
            prop_assert!(h.is_ascii() && !h.is_empty() && h.len() <= 253 && !h.contains('/'), "{h:?}");
        }
    }

    #[test]
    fn add_confirmed_puts_the_host_first(existing in prop_oneof!["\\PC*", prop::collection::vec(plausible_host(), 0..30).prop_map(|v| v.join("/"))], host in plausible_host()) {
        let before = parse_confirmed(&existing);
        let value = add_confirmed(&before, &host);
        let after = parse_confirmed(&value);
        prop_assert_eq!(after.first(), Some(&host), "{:?}", value);
        prop_assert!(after.len() <= MAX_CONFIRMED);
        prop_assert_eq!(after.iter().filter(|h| **h == host).count(), 1);
    }

    // --- app::gitlab::guard ------------------------------------------------------------------

    #[test]
    fn outbound_guard_parse_never_panics(spec in prop_oneof!["\\PC*", entry_list(), nasty()], host in address(), ip in ip()) {
        if let Ok(guard) = OutboundGuard::parse(&spec) {
            let _ = guard.admits_host(&host);
            let _ = guard.check(&host, ip);
        }
    }

    #[test]
    fn outbound_guard_accepts_cidrs_addresses_and_names(entries in prop::collection::vec(prop_oneof![
        net_text(),
        "[a-z0-9_-]{1,10}(\\.[a-z0-9_-]{1,10}){0,3}",
        "\\*\\.[a-z0-9-]{1,10}\\.[a-z]{2,4}",
    ], 0..8)) {
        let spec = entries.join(", ");
        prop_assert!(OutboundGuard::parse(&spec).is_ok(), "{spec:?}");
    }

    // --- app::gitlab::token ------------------------------------------------------------------

    #[test]
    fn redact_for_log_is_bounded(input in prop_oneof!["\\PC*", ".*", nasty(), urlish()]) {
        check_redacted(&input)?;
    }

    #[test]
    fn redact_for_log_hides_secret_words(before in prop_oneof![urlish(), nasty()], secret in secret_word(), after in prop_oneof![urlish(), nasty(), Just(String::new())]) {
        for input in [format!("{before}{secret}{after}"), format!("{before}/{secret}"), format!("{secret}.{after}"), format!("https://{secret}.example/x")] {
            let out = check_redacted(&input)?;
            prop_assert!(!out.contains(&secret), "{secret:?} leaked from {input:?}: {out:?}");
        }
    }

    #[test]
    fn gitlab_token_parse_never_panics(input in prop_oneof!["\\PC*", ".*", nasty()]) {
        if let Ok(token) = GitlabToken::parse(&input) {
            prop_assert_eq!(token.expose(), input.trim());
            prop_assert!(token.last_four().chars().count() <= 4);
            let _ = format!("{token:?} {token} {token:#?}");
        }
    }

    #[test]
    fn gitlab_token_never_prints_itself(
        secret in "[A-Za-z0-9]{24,64}",
        prefix in select(&["glpat-", "acme-glpat-", "glpat-glpat-"][..]),
        padding in select(&["", " ", "\n", "\t \r\n"][..]),
    ) {
        let input = format!("{padding}{prefix}{secret}{padding}");
        let token = GitlabToken::parse(&input).expect("a single-line token");
        for shown in [format!("{token:?}"), format!("{token:#?}"), token.to_string()] {
            prop_assert!(!shown.contains(&secret), "{shown:?}");
            prop_assert!(!shown.contains(input.trim()), "{shown:?}");
        }
    }

    // --- app::wizard -------------------------------------------------------------------------

    #[test]
    fn step_from_segment_accepts_exactly_1_to_13(segment in prop_oneof![
        "\\PC{0,6}",
        "[0-9]{0,4}",
        (0u32..400).prop_map(|n| n.to_string()),
        "[+0 -]{0,2}[0-9]{1,3}[ /]?",
        select(&["１", "٣", "1\u{0301}", "13\0", "256", "269", "65537"][..]).prop_map(str::to_owned),
    ]) {
        let step = Step::from_segment(&segment);
        let canonical = (1..=13).any(|n: u8| n.to_string() == segment);
        prop_assert_eq!(step.is_some(), canonical, "{:?}", segment);
        if let Some(step) = step {
            prop_assert_eq!(step.number.to_string(), segment);
        }
    }

    // --- app::auth ---------------------------------------------------------------------------

    #[test]
    fn safe_next_stays_on_site(
        next in prop::option::of(prop_oneof![
            "\\PC*",
            ".*",
            nasty(),
            nasty().prop_map(|s| format!("/{s}")),
            nasty().prop_map(|s| format!("//{s}")),
            "[/\\\\]{1,3}[a-z.]{0,12}",
        ]),
        fallback in select(&["/", "/settings/integrations", "/integrations/gitlab/step/2"][..]),
    ) {
        let got = safe_next(next.as_deref(), fallback);
        prop_assert!(!got.starts_with("//"), "{got:?}");
        prop_assert!(!got.contains('\\'), "{got:?}");
        prop_assert!(!got.chars().any(char::is_control), "{got:?}");
        prop_assert!(got.starts_with('/') || got == fallback, "{got:?}");
        prop_assert!(got == fallback || Some(got.as_str()) == next.as_deref());
    }

    // --- app::store::accounts ----------------------------------------------------------------

    #[test]
    fn email_parse_never_panics(input in prop_oneof![
        "\\PC*",
        ".*",
        nasty(),
        "[ ]?[A-Za-z0-9.+_-]{0,20}@[A-Za-z0-9.-]{0,20}[ ]?",
        "\\PC{0,10}@\\PC{0,10}\\.\\PC{0,5}",
    ]) {
        if let Ok(email) = Email::parse(&input) {
            let s = email.as_str();
            prop_assert!(s.len() <= 254);
            prop_assert_eq!(s.matches('@').count(), 1, "{:?}", s);
            prop_assert!(!s.chars().any(char::is_whitespace), "{s:?}");
            prop_assert_eq!(Email::parse(s), Ok(email.clone()));
        }
    }

    #[test]
    fn email_is_ascii_and_within_its_limits(input in prop_oneof!["\\PC*", nasty(), "[a-z.<>\"]{0,8}@[a-z.-]{0,12}"]) {
        if let Ok(email) = Email::parse(&input) {
            let s = email.as_str();
            prop_assert!(s.is_ascii(), "{s:?}");
            prop_assert!(!s.contains(['<', '>', '"', '\\', '(', ')', ',', ';', ':', '[', ']']), "{s:?}");
            prop_assert!(s.split('@').next().unwrap().len() <= 64, "{s:?}");
            prop_assert_eq!(s.to_ascii_lowercase(), s);
        }
    }

    #[test]
    fn token_names_and_workspace_names_show_what_they_are(input in prop_oneof!["\\PC*", ".*", nasty()]) {
        if let Ok(name) = token_name(&input) {
            prop_assert!(!name.is_empty() && name.chars().count() <= TOKEN_NAME_MAX);
            prop_assert!(!name.chars().any(is_invisible), "{name:?}");
            prop_assert!(input.contains(name.as_str()), "a piece of what was typed");
        }
        if let Ok(name) = parse_name(&input) {
            prop_assert!(!name.chars().any(is_invisible), "{name:?}");
            prop_assert!((1..=80).contains(&name.chars().count()));
        }
    }

    #[test]
    fn audit_cursors_are_bounds_of_hex(input in prop_oneof!["\\PC*", "[0-9]{0,20}", "[0-9a-fA-F]{22,26}", nasty()]) {
        if let Ok(Some(bound)) = audit_cursor(Some(&input)) {
            prop_assert!(bound.len() == 16 || bound.len() == 24, "{bound:?}");
            prop_assert!(bound.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{bound:?}");
        }
    }

    #[test]
    fn check_password_never_panics(password in prop_oneof!["\\PC*", ".*", "\\PC{8,12}", "\\PC{198,202}"]) {
        let n = password.chars().count();
        prop_assert_eq!(check_password(&password).is_ok(), (10..=200).contains(&n), "{} chars", n);
    }
}

proptest! {
    #![proptest_config(config(HUGE))]

    /// 64 KiB inputs: every parser copes, quickly, and the bounds still hold.
    #[test]
    fn huge_inputs(input in huge()) {
        check_address(&input)?;
        check_redacted(&input)?;
        let _ = TrustedProxies::parse(&input);
        let _ = OutboundGuard::parse(&input);
        prop_assert!(parse_confirmed(&input).len() <= MAX_CONFIRMED);
        let _ = GitlabToken::parse(&input);
        prop_assert!(Step::from_segment(&input).is_none());
        let next = safe_next(Some(&input), "/");
        prop_assert!(next == "/" || next == input);
        prop_assert!(Email::parse(&input).is_err());
        prop_assert!(token_name(&input).map_or(true, |n| n.chars().count() <= TOKEN_NAME_MAX));
        let _ = audit_cursor(Some(&input));
        prop_assert!(check_password(&input).is_err());
        prop_assert_eq!(text_key(&input).len(), 16);
    }
}
