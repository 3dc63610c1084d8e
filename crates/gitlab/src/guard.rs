//! The outbound guard: which addresses Onramp may connect to on a user's behalf (no SSRF).
//!
//! Public unicast addresses pass. Loopback, private, link-local (the cloud metadata address among
//! them), CGNAT, multicast, unspecified, reserved, and the IPv6 forms that embed such an IPv4
//! address are refused, unless `ONRAMP_OUTBOUND_ALLOW` (comma-separated CIDRs, IPs and host names,
//! `*.example.com` for a domain's subdomains) admits them — e.g. a self-managed GitLab on a
//! private network.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, Default)]
pub struct OutboundGuard {
    allow_nets: Vec<IpNet>,
    allow_hosts: Vec<String>,
}

/// An address the guard refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub ip: IpAddr,
    pub kind: &'static str,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Onramp does not connect to {} addresses ({})", self.kind, self.ip)
    }
}

impl OutboundGuard {
    /// Parses an allow-list such as `10.0.0.0/8, 192.168.1.7, gitlab.internal, *.corp.example`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut guard = OutboundGuard::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                guard.allow_nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                guard.allow_nets.push(IpNet::from(ip));
            } else if is_host_pattern(entry) {
                guard.allow_hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "ONRAMP_OUTBOUND_ALLOW: {entry:?} is neither a CIDR (10.0.0.0/8), an IP address nor a host name"
                ));
            }
        }
        Ok(guard)
    }

    /// Is this host name admitted by name, whatever it resolves to?
    pub fn admits_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_hosts.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => {
                host.strip_suffix(domain).and_then(|sub| sub.strip_suffix('.')).is_some_and(|sub| !sub.is_empty())
            }
            None => *pattern == host,
        })
    }

    /// May Onramp connect to `ip` (resolved from `host`)?
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        if self.admits_host(host) || self.allow_nets.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        // An allow-listed IPv4 network also admits its IPv4-mapped IPv6 form.
        if let Some(v4) = embedded_ipv4(ip) {
            if self.allow_nets.iter().any(|net| net.contains(&IpAddr::V4(v4))) {
                return Ok(());
            }
        }
        match classify(ip) {
            None => Ok(()),
            Some(kind) => Err(Blocked { ip, kind }),
        }
    }
}

fn is_host_pattern(entry: &str) -> bool {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    !name.is_empty()
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The kind of a non-public address, or `None` for a public unicast one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(ip) {
                return classify_v4(v4).or_else(|| {
                    // 6to4 and NAT64 relays of public addresses are still relays: leave them be;
                    // IPv4-compatible (::a.b.c.d) is deprecated and never routed.
                    (v6.segments()[..6] == [0; 6]).then_some("reserved")
                });
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match a {
        0 => "unspecified",
        10 => "private",
        127 => "loopback",
        100 if (64..128).contains(&b) => "shared (carrier-grade NAT)",
        169 if b == 254 => "link-local",
        172 if (16..32).contains(&b) => "private",
        192 if b == 168 => "private",
        192 if b == 0 && c == 0 => "reserved",
        192 if b == 0 && c == 2 => "reserved",
        198 if b == 18 || b == 19 => "reserved",
        198 if b == 51 && c == 100 => "reserved",
        203 if b == 0 && c == 113 => "reserved",
        224..=239 => "multicast",
        240..=255 => "reserved",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let unique_local = s[0] & 0xfe00 == 0xfc00;
    let site_local = s[0] & 0xffc0 == 0xfec0;
    let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
    let discard = s[..4] == [0x0100, 0, 0, 0];
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if unique_local || site_local {
        "private"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if documentation || discard {
        "reserved"
    } else {
        return None;
    })
}

/// The IPv4 address inside an IPv6 one: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compatible = s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if mapped || compatible || nat64 {
        Some(tail)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_what_is_not_public() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("100.127.255.254", Some("shared (carrier-grade NAT)")),
            ("224.0.0.1", Some("multicast")),
            ("0.0.0.0", Some("unspecified")),
            ("255.255.255.255", Some("reserved")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00::1", Some("private")),
            ("fe80::1", Some("link-local")),
            ("ff02::1", Some("multicast")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::127.0.0.1", Some("loopback")),
            ("::10.0.0.1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("2002:7f00:1::", Some("loopback")),
            ("::8.8.8.8", Some("reserved")),
            // public
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("169.255.0.1", None),
            ("2a00:1450:4001::200e", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
        ];
        for (addr, expected) in cases {
            assert_eq!(classify(ip(addr)), expected, "{addr}");
        }
    }

    #[test]
    fn allow_list_admits_networks_and_names() {
        let guard = OutboundGuard::parse(" 10.0.0.0/8, 127.0.0.1 ,gitlab.internal,*.corp.example").unwrap();
        assert!(guard.check("x", ip("10.9.9.9")).is_ok());
        assert!(guard.check("x", ip("::ffff:10.9.9.9")).is_ok());
        assert!(guard.check("x", ip("127.0.0.1")).is_ok());
        assert!(guard.check("x", ip("127.0.0.2")).is_err());
        assert!(guard.check("gitlab.internal", ip("192.168.0.4")).is_ok());
        assert!(guard.check("GitLab.Internal.", ip("192.168.0.4")).is_ok());
        assert!(guard.check("git.corp.example", ip("192.168.0.4")).is_ok());
        assert!(guard.check("corp.example", ip("192.168.0.4")).is_err());
        assert!(guard.check("evilcorp.example", ip("192.168.0.4")).is_err());
        let blocked = guard.check("metadata", ip("169.254.169.254")).unwrap_err();
        assert_eq!(blocked.to_string(), "Onramp does not connect to link-local addresses (169.254.169.254)");
    }

    #[test]
    fn allow_list_rejects_junk() {
        assert!(OutboundGuard::parse("").is_ok());
        assert!(OutboundGuard::parse("10.0.0.0/33").is_err());
        assert!(OutboundGuard::parse("http://x").is_err());
    }
}
