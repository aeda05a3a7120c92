//! Client-IP resolution behind reverse proxies, and address sets for exclusions.
//!
//! With a trusted proxy count `N > 0` the client is the `N`-th entry from the right of
//! `X-Forwarded-For`; with fewer entries than `N`, an unparsable entry, or `N = 0`, the
//! socket peer is used and the header ignored (a client can write anything into it).
//! In CIDR mode ([`ClientIpConfig::trusted_proxies`]) the header is read only when the
//! peer is a trusted proxy, and the client is the right-most entry that is not one.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::parse::{ParseError, Problem};

/// The most `X-Forwarded-For` bytes looked at; entries beyond are never needed since only
/// the right-most few can be trusted.
pub const MAX_FORWARDED_BYTES: usize = 8 * 1024;

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Builds a network; host bits are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ParseError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ParseError::new("network", Problem::PrefixTooLong));
        }
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl FromStr for IpNet {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a,
                Some(
                    p.parse::<u8>()
                        .map_err(|_| ParseError::new("network", Problem::BadPrefixLength))?,
                ),
            ),
            None => (s, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| ParseError::new("network", Problem::NotAnAddress))?,
        );
        let prefix = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        Self::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A set of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet(Vec<IpNet>);

impl IpSet {
    /// The set of the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Parses a list such as `["10.0.0.0/8", "::1"]`.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ParseError> {
        items
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether any network contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How to find the client behind proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIpConfig {
    /// Reverse-proxy hops in front of the server (default 0: `X-Forwarded-For` is ignored).
    pub trusted_proxy_count: usize,
    /// The legacy "behind reverse proxy" switch: means a count of 1 when the count is 0.
    pub behind_reverse_proxy: bool,
    /// CIDR mode: when non-empty, `X-Forwarded-For` is read only if the peer is in this
    /// set, and the client is the right-most entry outside it. Takes precedence over the count.
    pub trusted_proxies: IpSet,
}

impl ClientIpConfig {
    /// The proxy count in force, after the legacy switch.
    pub fn effective_proxy_count(&self) -> usize {
        if self.trusted_proxy_count == 0 && self.behind_reverse_proxy {
            1
        } else {
            self.trusted_proxy_count
        }
    }

    /// Resolves the client address from the socket peer and the raw `X-Forwarded-For`
    /// header values (in the order received; several headers are read as one list).
    /// Never panics, whatever the bytes.
    pub fn resolve(&self, peer: IpAddr, forwarded_for: &[&[u8]]) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted_proxies.is_empty() {
            if !self.trusted_proxies.contains(peer) {
                return peer;
            }
            for entry in entries_from_right(forwarded_for) {
                match entry {
                    Some(ip) if self.trusted_proxies.contains(ip) => continue,
                    Some(ip) => return ip,
                    None => return peer,
                }
            }
            return peer;
        }
        let n = self.effective_proxy_count();
        if n == 0 {
            return peer;
        }
        match entries_from_right(forwarded_for).nth(n - 1) {
            Some(Some(ip)) => ip,
            _ => peer,
        }
    }
}

/// The header entries from right to left, each parsed (`None` when unparsable), looking
/// at no more than [`MAX_FORWARDED_BYTES`] from the right.
fn entries_from_right<'a>(values: &'a [&'a [u8]]) -> impl Iterator<Item = Option<IpAddr>> + 'a {
    let mut budget = MAX_FORWARDED_BYTES;
    values
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(|b| *b == b','))
        .take_while(move |e| {
            let fits = e.len() < budget;
            budget = budget.saturating_sub(e.len() + 1);
            fits
        })
        .map(parse_entry)
}

fn parse_entry(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // "[v6]:port" or "v4:port"
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, _) = rest.split_once(']')?;
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(IpAddr::V6(ip)));
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 addresses become IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl IpNet {
    /// The network of `prefix` bits that contains `ip` (IPv4-mapped addresses as IPv4).
    pub(crate) fn network_of(ip: IpAddr, prefix: u8) -> IpAddr {
        mask(canonical(ip), prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg(n: usize) -> ClientIpConfig {
        ClientIpConfig {
            trusted_proxy_count: n,
            ..Default::default()
        }
    }

    #[test]
    fn forwarded_for_is_ignored_when_no_proxy_is_trusted() {
        let peer = ip("203.0.113.9");
        assert_eq!(cfg(0).resolve(peer, &[b"1.2.3.4"]), peer);
    }

    #[test]
    fn one_trusted_proxy_takes_the_right_most_entry_and_ignores_prepended_fakes() {
        let peer = ip("10.0.0.2");
        assert_eq!(
            cfg(1).resolve(peer, &[b"6.6.6.6, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            cfg(1).resolve(peer, &[b"6.6.6.6", b"198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn two_trusted_proxies_take_the_second_entry_from_the_right() {
        let peer = ip("10.0.0.2");
        assert_eq!(
            cfg(2).resolve(peer, &[b"6.6.6.6, 198.51.100.7, 10.0.0.1"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn fewer_entries_than_proxies_falls_back_to_the_peer() {
        let peer = ip("10.0.0.2");
        assert_eq!(cfg(2).resolve(peer, &[b"198.51.100.7"]), peer);
        assert_eq!(cfg(1).resolve(peer, &[]), peer);
    }

    #[test]
    fn the_legacy_reverse_proxy_switch_means_one_proxy() {
        let c = ClientIpConfig {
            behind_reverse_proxy: true,
            ..Default::default()
        };
        assert_eq!(c.effective_proxy_count(), 1);
        assert_eq!(
            c.resolve(ip("10.0.0.2"), &[b"1.1.1.1, 2.2.2.2"]),
            ip("2.2.2.2")
        );
        let explicit = ClientIpConfig {
            trusted_proxy_count: 2,
            behind_reverse_proxy: true,
            ..Default::default()
        };
        assert_eq!(explicit.effective_proxy_count(), 2);
    }

    #[test]
    fn entries_with_ports_and_brackets_parse() {
        let peer = ip("10.0.0.2");
        assert_eq!(
            cfg(1).resolve(peer, &[b"198.51.100.7:4711"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            cfg(1).resolve(peer, &[b"[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(cfg(1).resolve(peer, &[b"::ffff:1.2.3.4"]), ip("1.2.3.4"));
    }

    #[test]
    fn an_unparsable_trusted_entry_falls_back_to_the_peer() {
        let peer = ip("10.0.0.2");
        assert_eq!(cfg(1).resolve(peer, &[b"unknown"]), peer);
        assert_eq!(cfg(1).resolve(peer, &[b"\xff\xfe"]), peer);
    }

    #[test]
    fn cidr_mode_ignores_forwarded_for_from_an_untrusted_peer() {
        let c = ClientIpConfig {
            trusted_proxies: IpSet::parse(&["10.0.0.0/8"]).unwrap(),
            ..Default::default()
        };
        assert_eq!(
            c.resolve(ip("203.0.113.5"), &[b"1.2.3.4"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            c.resolve(ip("10.0.0.2"), &[b"6.6.6.6, 198.51.100.7, 10.1.1.1"]),
            ip("198.51.100.7")
        );
        assert_eq!(c.resolve(ip("10.0.0.2"), &[b"10.1.1.1"]), ip("10.0.0.2"));
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let n: IpNet = "192.168.1.77/24".parse().unwrap();
        assert_eq!(n.to_string(), "192.168.1.0/24");
        assert!(n.contains(ip("192.168.1.1")));
        assert!(n.contains(ip("::ffff:192.168.1.1")));
        assert!(!n.contains(ip("192.168.2.1")));
        let single: IpNet = "::1".parse().unwrap();
        assert!(single.contains(ip("::1")));
        assert!(!single.contains(ip("::2")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
        assert!("10.0.0.0/x".parse::<IpNet>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
    }

    #[test]
    fn an_oversized_entry_is_not_inspected_and_the_peer_is_used() {
        let peer = ip("10.0.0.2");
        let junk = "9".repeat(MAX_FORWARDED_BYTES + 1);
        assert_eq!(cfg(1).resolve(peer, &[junk.as_bytes()]), peer);
        let long = format!("{}, 198.51.100.7", "1.1.1.1, ".repeat(5000));
        assert_eq!(cfg(1).resolve(peer, &[long.as_bytes()]), ip("198.51.100.7"));
    }

    proptest! {
        #[test]
        fn resolution_never_panics_on_arbitrary_header_bytes(
            headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5),
            n in 0usize..5,
            legacy in any::<bool>(),
        ) {
            let refs: Vec<&[u8]> = headers.iter().map(|h| h.as_slice()).collect();
            let c = ClientIpConfig { trusted_proxy_count: n, behind_reverse_proxy: legacy, ..Default::default() };
            let _ = c.resolve(ip("10.0.0.1"), &refs);
        }

        #[test]
        fn no_client_supplied_entry_wins_when_no_proxy_is_trusted(
            entries in proptest::collection::vec(any::<[u8; 4]>(), 0..10),
            junk in proptest::collection::vec(any::<u8>(), 0..100),
            peer in any::<[u8; 4]>(),
        ) {
            let peer = IpAddr::from(peer);
            let header = entries.iter().map(|e| IpAddr::from(*e).to_string()).collect::<Vec<_>>().join(", ");
            let resolved = cfg(0).resolve(peer, &[header.as_bytes(), &junk]);
            prop_assert_eq!(resolved, peer);
        }

        #[test]
        fn the_resolved_address_is_the_peer_or_a_header_entry(
            entries in proptest::collection::vec(any::<[u8; 4]>(), 0..10),
            n in 1usize..4,
        ) {
            let peer = ip("10.9.9.9");
            let parsed: Vec<IpAddr> = entries.iter().map(|e| IpAddr::from(*e)).collect();
            let header = parsed.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
            let resolved = cfg(n).resolve(peer, &[header.as_bytes()]);
            if parsed.len() >= n {
                prop_assert_eq!(resolved, parsed[parsed.len() - n]);
            } else {
                prop_assert_eq!(resolved, peer);
            }
        }
    }
}
