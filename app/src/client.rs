//! Who is on the other end of a request: the client's address (read from `X-Forwarded-For` /
//! `Forwarded` only when the peer is a proxy Onramp was told to trust), whether the browser used
//! https, and the keys rate limits count by.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// `ONRAMP_TRUSTED_PROXIES`: the peers whose forwarding headers are believed. Default: nobody.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma- or space-separated CIDRs and IP addresses.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in spec.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                format!("ONRAMP_TRUSTED_PROXIES: {entry:?} is neither a CIDR (10.0.0.0/8) nor an IP address")
            })?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// What the request says about its client, once the forwarding headers have been judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The browser spoke https to Onramp (or to the trusted proxy in front of it).
    pub https: bool,
}

impl ClientInfo {
    /// `peer` is the TCP peer. Only when it is trusted are `X-Forwarded-For` (else `Forwarded`)
    /// and `X-Forwarded-Proto` read: the client is the rightmost address that is not a trusted
    /// proxy, since everything to its left was written by the client itself.
    pub fn from_request(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientInfo {
        let peer = canonical(peer);
        if !trusted.trusts(peer) {
            return ClientInfo { ip: peer, https: false };
        }
        let chain = forwarded_for(headers);
        let mut ip = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(hop) => {
                    ip = canonical(*hop);
                    if !trusted.trusts(ip) {
                        break;
                    }
                }
                // An entry that is not an address: the last trusted hop is the best we know.
                None => break,
            }
        }
        let https = header_str(headers, "x-forwarded-proto")
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
            || forwarded_proto_https(headers);
        ClientInfo { ip, https }
    }

    /// The key connection checks, sign-ups and log-ins are counted by: the address, with IPv6
    /// clients counted per /64 (one subscriber usually has a whole /64 to pick addresses from).
    pub fn limit_key(&self) -> IpAddr {
        limit_key(self.ip)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// See [`ClientInfo::limit_key`].
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A fixed-size key for any text (an e-mail address of any length): rate limiters never keep the
/// text itself.
pub fn text_key(text: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every hop of `X-Forwarded-For` (all its headers, in order), or else of `Forwarded: for=`;
/// `None` for a hop that is not an address (`unknown`, an obfuscated name, junk).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_hop(hop.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    forwarded_elements(headers)
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v.trim().trim_matches('"')))
            })
        })
        .collect()
}

fn forwarded_elements(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers.get_all("forwarded").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','))
}

fn forwarded_proto_https(headers: &HeaderMap) -> bool {
    forwarded_elements(headers).last().is_some_and(|element| {
        element.split(';').any(|pair| {
            pair.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("proto") && v.trim().trim_matches('"') == "https")
        })
    })
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse::<Ipv6Addr>().ok()).map(IpAddr::V6);
    }
    hop.rsplit_once(':').and_then(|(ip, _port)| ip.parse::<std::net::Ipv4Addr>().ok()).map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_are_ignored_from_untrusted_peers() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]);
        assert_eq!(
            ClientInfo::from_request(ip("203.0.113.9"), &h, &none),
            ClientInfo { ip: ip("203.0.113.9"), https: false }
        );
        let other = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(ClientInfo::from_request(ip("203.0.113.9"), &h, &other).ip, ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let peer = ip("10.0.0.2");
        let cases = [
            ("198.51.100.7", "198.51.100.7"),
            // the client wrote the left part itself: a spoofed first hop changes nothing
            ("1.1.1.1, 198.51.100.7", "198.51.100.7"),
            ("1.1.1.1, 198.51.100.7, 192.0.2.1", "198.51.100.7"),
            ("198.51.100.7:4711", "198.51.100.7"),
            ("[2001:db8::5]:4711", "2001:db8::5"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            // junk after the real client: the last trusted proxy is the best we know
            ("198.51.100.7, nonsense", "10.0.0.2"),
            // every hop trusted: the leftmost
            ("10.1.1.1, 10.2.2.2", "10.1.1.1"),
        ];
        for (xff, want) in cases {
            let got = ClientInfo::from_request(peer, &headers(&[("x-forwarded-for", xff)]), &trusted);
            assert_eq!(got.ip, ip(want), "{xff}");
        }
        // several headers are one list
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.8")]);
        assert_eq!(ClientInfo::from_request(peer, &h, &trusted).ip, ip("198.51.100.8"));
        // no header: the peer itself
        assert_eq!(ClientInfo::from_request(peer, &HeaderMap::new(), &trusted).ip, peer);
    }

    #[test]
    fn forwarded_header_and_proto() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let peer = ip("127.0.0.1");
        let h = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::9]:80";proto=https"#)]);
        let got = ClientInfo::from_request(peer, &h, &trusted);
        assert_eq!(got, ClientInfo { ip: ip("2001:db8::9"), https: true });
        let h = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]);
        assert!(ClientInfo::from_request(peer, &h, &trusted).https);
        let h = headers(&[("x-forwarded-proto", "http")]);
        assert!(!ClientInfo::from_request(peer, &h, &trusted).https);
    }

    #[test]
    fn trusted_proxies_parse() {
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert_eq!(TrustedProxies::parse("10.0.0.0/8 ::1,192.0.2.1").unwrap().0.len(), 3);
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
        // an IPv4 proxy seen through an IPv6 socket is still that proxy
        assert!(TrustedProxies::parse("10.0.0.0/8").unwrap().trusts(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::2")), limit_key(ip("2001:db8:1:2:cccc::3")));
        assert_ne!(limit_key(ip("2001:db8:1:2::1")), limit_key(ip("2001:db8:1:3::1")));
        assert_eq!(limit_key(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn text_keys_have_a_fixed_size() {
        let long = "a".repeat(2_000_000);
        assert_eq!(text_key(&long).len(), 16);
        assert_ne!(text_key("a@example.com"), text_key("b@example.com"));
    }
}
