//! Which outbound destinations may be called: public addresses only, unless allow-listed.
//!
//! **Invariant:** the check runs on every address a name resolves to at connection time
//! (see the sender's resolver), not only on the URL when the endpoint is saved, so a name
//! that later resolves to an internal address is still refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

use crate::error::{Error, Refusal};

/// An address range, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// An address range that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address range {0:?}")]
pub struct InvalidIpNet(pub String);

impl IpNet {
    /// A range; the prefix is clamped to the address width.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr: canonical(addr),
            prefix: prefix.min(max),
        }
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = InvalidIpNet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidIpNet(s.to_owned());
        match s.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                if prefix > max {
                    return Err(bad());
                }
                Ok(Self::new(addr, prefix))
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| bad())?;
                Ok(Self::new(addr, if addr.is_ipv4() { 32 } else { 128 }))
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is globally routable (not loopback, private, link-local, CGNAT,
/// multicast, documentation, benchmarking, reserved, or an IPv6 form embedding one).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = || {
        let [_, _, _, _, _, _, g, h] = s;
        let [g1, g2] = g.to_be_bytes();
        let [h1, h2] = h.to_be_bytes();
        Ipv4Addr::new(g1, g2, h1, h2)
    };
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    match s[0] {
        // Unique local fc00::/7, link-local fe80::/10, old site-local fec0::/10.
        x if (x & 0xfe00) == 0xfc00 || (x & 0xffc0) == 0xfe80 || (x & 0xffc0) == 0xfec0 => false,
        // Documentation 2001:db8::/32 and Teredo 2001::/32 (tunnels to anywhere).
        0x2001 if s[1] == 0x0db8 || s[1] == 0 => false,
        // 6to4 embeds an IPv4 address in bits 16..48.
        0x2002 => {
            let [a, b] = s[1].to_be_bytes();
            let [c, d] = s[2].to_be_bytes();
            is_public_v4(Ipv4Addr::new(a, b, c, d))
        }
        // NAT64 64:ff9b::/96 embeds an IPv4 address.
        0x0064 if s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) => is_public_v4(embedded_v4()),
        // Discard-only 100::/64.
        0x0100 if s[1..4].iter().all(|&x| x == 0) => false,
        // The rest of ::/8 (IPv4-compatible and reserved forms) is not routable.
        x if x & 0xff00 == 0 => false,
        _ => true,
    }
}

/// Where outbound webhooks may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Ranges allowed even though they are not public (e.g. `127.0.0.1/32` in tests).
    pub allow: Vec<IpNet>,
    /// Refuse plain `http` URLs.
    pub require_https: bool,
}

impl Default for DestinationPolicy {
    fn default() -> Self {
        Self::strict()
    }
}

impl DestinationPolicy {
    /// Public `https` destinations only.
    pub fn strict() -> Self {
        Self {
            allow: Vec::new(),
            require_https: true,
        }
    }

    /// Also allows loopback (`127.0.0.0/8`, `::1`) and plain `http`: for tests and local
    /// development only.
    pub fn allow_loopback_http() -> Self {
        Self {
            allow: vec![
                IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
                IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
            require_https: false,
        }
    }

    /// The policy of the settings `HAVEN_WEBHOOK_ALLOW` (comma-separated address ranges
    /// allowed although not public) and `HAVEN_WEBHOOK_ALLOW_HTTP`; `Err` names the range
    /// that does not parse.
    pub fn from_settings(allow: &str, allow_http: bool) -> Result<Self, String> {
        let allow = allow
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .map_err(|_| format!("{range:?} is not an address or address/prefix"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            allow,
            require_https: !allow_http,
        })
    }

    /// Whether `ip` may be connected to.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(ip)) || is_public(ip)
    }

    /// Checks one resolved address of `host`.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Error> {
        if self.is_allowed(ip) {
            Ok(())
        } else {
            Err(Error::DestinationRefused {
                host: host.to_owned(),
                ip: Some(ip),
                reason: Refusal::NonPublicAddress,
            })
        }
    }

    /// Checks a URL's shape, and its address when the host is an IP literal (names are
    /// checked when they resolve). Returns the parsed URL.
    pub fn check_url(&self, raw: &str) -> Result<Url, Error> {
        let refuse = |host: &str, reason| Error::DestinationRefused {
            host: host.to_owned(),
            ip: None,
            reason,
        };
        let url = Url::parse(raw).map_err(|_| refuse("", Refusal::Url))?;
        let host_text = url.host_str().unwrap_or_default().to_owned();
        match url.scheme() {
            "https" => {}
            "http" if !self.require_https => {}
            "http" => return Err(refuse(&host_text, Refusal::InsecureScheme)),
            _ => return Err(refuse(&host_text, Refusal::Url)),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(&host_text, Refusal::Credentials));
        }
        match url.host() {
            None => Err(refuse(&host_text, Refusal::Url)),
            Some(Host::Ipv4(v4)) => self.check_ip(&host_text, IpAddr::V4(v4)).map(|()| url),
            Some(Host::Ipv6(v6)) => self.check_ip(&host_text, IpAddr::V6(v6)).map(|()| url),
            // Names are checked on every resolution, where the answer is known.
            Some(Host::Domain(_)) => Ok(url.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::",
            "64:ff9b::a00:1",
            "100::1",
        ] {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    #[test]
    fn allow_list_and_ranges() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let odd: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(odd.contains(ip("172.31.1.1")));
        assert!(!odd.contains(ip("172.32.1.1")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
        let single: IpNet = "::1".parse().unwrap();
        assert!(single.contains(ip("::1")));

        let strict = DestinationPolicy::strict();
        assert!(strict.check_ip("h", ip("127.0.0.1")).is_err());
        let mut custom = DestinationPolicy::strict();
        custom.allow.push(net);
        assert!(custom.check_ip("h", ip("10.0.0.5")).is_ok());
        assert!(custom.check_ip("h", ip("127.0.0.1")).is_err());
    }

    #[test]
    fn url_checks() {
        let strict = DestinationPolicy::strict();
        let refused = |p: &DestinationPolicy, u: &str| match p.check_url(u) {
            Err(Error::DestinationRefused { reason, .. }) => Some(reason),
            Err(other) => panic!("{other:?}"),
            Ok(_) => None,
        };
        assert_eq!(refused(&strict, "https://example.com/hook"), None);
        assert_eq!(
            refused(&strict, "http://example.com/hook"),
            Some(Refusal::InsecureScheme)
        );
        assert_eq!(refused(&strict, "ftp://example.com"), Some(Refusal::Url));
        assert_eq!(refused(&strict, "not a url"), Some(Refusal::Url));
        assert_eq!(
            refused(&strict, "https://u:p@example.com"),
            Some(Refusal::Credentials)
        );
        assert_eq!(
            refused(&strict, "https://127.0.0.1/x"),
            Some(Refusal::NonPublicAddress)
        );
        assert_eq!(
            refused(&strict, "https://[::1]/x"),
            Some(Refusal::NonPublicAddress)
        );
        assert_eq!(
            refused(&strict, "https://169.254.169.254/latest"),
            Some(Refusal::NonPublicAddress)
        );
        let dev = DestinationPolicy::allow_loopback_http();
        assert_eq!(refused(&dev, "http://127.0.0.1:8080/x"), None);
        assert_eq!(refused(&dev, "http://localhost:8080/x"), None);
        assert_eq!(
            refused(&dev, "http://10.0.0.1/x"),
            Some(Refusal::NonPublicAddress)
        );
    }
}
