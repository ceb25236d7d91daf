//! Outbound HTTP policy: which URLs a plugin may reach, which addresses no
//! plugin reaches unless named literally, and the limits on each request.
//!
//! A manifest grants hosts with Spin's syntax, in `grants`:
//!
//! ```toml
//! [grants]
//! allowed_outbound_hosts = [
//!     "https://api.openai.com",      # port 443, the scheme's default
//!     "https://*.example.com:8443",  # any subdomain, one port
//!     "http://127.0.0.1:*",          # any port of a literal address
//! ]
//! ```
//!
//! Nothing is allowed by default. The scheme is `http`, `https` or `*`;
//! the host a name, `*.` and a domain (its subdomains, not the domain
//! itself), `*` (any host), an IPv4 address or a bracketed IPv6 one; the
//! port a number or `*`, and may be left out only with a named scheme. No
//! path, query or user.
//!
//! The host checks every request against the list, resolves the name
//! itself, and refuses loopback, private, link-local, shared, multicast
//! and reserved addresses (cloud metadata at 169.254.169.254 among them)
//! unless the entry that allowed the request names its host literally. A
//! name that resolves to such an address through a wildcard entry (DNS
//! rebinding) is refused; the address checked is the one connected to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

mod sending;

pub use sending::HttpState;

/// The entries of a manifest's `allowed_outbound_hosts`, parsed; cheap to
/// clone (every call's sandbox holds them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Arc<[HostRule]>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    /// As written, for listings and logs.
    text: String,
    scheme: SchemeRule,
    host: HostPattern,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemeRule {
    Http,
    Https,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A name (lowercase) or an address, written out: this entry may reach
    /// an address no wildcard may.
    Literal(String),
    /// `*.suffix`: any name ending in `.suffix`.
    Subdomains(String),
    /// `*`: any host.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    Exact(u16),
    Any,
}

/// How an allowed request may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// The entry that allowed the request names its host literally, so the
    /// host may resolve to a loopback or private address.
    pub private_ok: bool,
    /// The host as the entry names it: the host itself for a literal entry,
    /// `*.domain` or `*` for a wildcard. A bounded label for metrics.
    pub label: Arc<str>,
}

impl AllowedHosts {
    /// Parses the entries; the error names the entry at fault and why.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| HostRule::parse(e).map_err(|why| format!("{e:?}: {why}")))
            .collect::<Result<Arc<[_]>, _>>()
            .map(AllowedHosts)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as written.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| r.text.as_str())
    }

    /// Whether a request to `scheme://host:port` is allowed, and how; None
    /// when no entry allows it. `host` is a name or an address (IPv6
    /// without brackets); names compare without case.
    pub fn check(&self, scheme: &str, host: &str, port: u16) -> Option<Permit> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut found: Option<Permit> = None;
        for rule in self.0.iter() {
            if rule.matches(scheme, &host, port) {
                let private_ok = matches!(rule.host, HostPattern::Literal(_));
                // A literal entry beats a wildcard one for the same URL.
                if found.as_ref().is_none_or(|f| private_ok && !f.private_ok) {
                    let label = match &rule.host {
                        HostPattern::Literal(h) => h.as_str().into(),
                        HostPattern::Subdomains(d) => format!("*.{d}").into(),
                        HostPattern::Any => "*".into(),
                    };
                    found = Some(Permit { private_ok, label });
                }
            }
        }
        found
    }
}

impl Serialize for AllowedHosts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries())
    }
}

impl HostRule {
    fn parse(text: &str) -> Result<HostRule, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("write it as scheme://host[:port], e.g. \"https://api.example.com\"")?;
        let scheme = match scheme {
            "http" => SchemeRule::Http,
            "https" => SchemeRule::Https,
            "*" => SchemeRule::Any,
            other => return Err(format!("scheme {other:?} is not http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("only scheme, host and port: no path, query or user".into());
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            Some("*") => PortRule::Any,
            Some(p) => PortRule::Exact(
                p.parse()
                    .map_err(|_| format!("port {p:?} is not a number from 0 to 65535 or *"))?,
            ),
            None => match scheme {
                SchemeRule::Http => PortRule::Exact(80),
                SchemeRule::Https => PortRule::Exact(443),
                SchemeRule::Any => {
                    return Err("a port (or *) is needed when the scheme is *".into());
                }
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            check_name(domain)?;
            HostPattern::Subdomains(domain.to_owned())
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = v6
                .parse()
                .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
            HostPattern::Literal(ip.to_string())
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            HostPattern::Literal(ip.to_string())
        } else {
            check_name(&host)?;
            HostPattern::Literal(host)
        };
        Ok(HostRule {
            text: text.to_owned(),
            scheme,
            host,
            port,
        })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemeRule::Http => scheme == "http",
            SchemeRule::Https => scheme == "https",
            SchemeRule::Any => scheme == "http" || scheme == "https",
        };
        let port_ok = match self.port {
            PortRule::Exact(p) => p == port,
            PortRule::Any => true,
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Literal(h) => match host.parse::<IpAddr>() {
                // Addresses compare parsed, so "::1" and "0:0::1" agree.
                Ok(ip) => h.parse::<IpAddr>().is_ok_and(|rule| rule == ip),
                Err(_) => h == host,
            },
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        };
        scheme_ok && port_ok && host_ok
    }
}

/// `host[:port]`, with an IPv6 host in brackets.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or("an IPv6 address needs its closing ]")?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {rest:?} after the address")),
            },
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name (letters, digits, '-' and dots; '*.' only at the start)"
        ))
    }
}

/// Why no plugin reaches `ip` through a wildcard entry, or None when it is
/// a public address.
pub fn forbidden_address(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return forbidden_v4(Ipv4Addr::new(a, b, c, d));
            }
            if v6.is_loopback() {
                Some(AddressClass::Loopback)
            } else if v6.is_unspecified() {
                Some(AddressClass::Unspecified)
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(AddressClass::Private)
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(AddressClass::LinkLocal)
            } else if v6.is_multicast() {
                Some(AddressClass::Multicast)
            } else if s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
                // Documentation and discard-only prefixes.
                Some(AddressClass::Reserved)
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_unspecified() || a == 0 {
        Some(AddressClass::Unspecified)
    } else if ip.is_private() {
        Some(AddressClass::Private)
    } else if ip.is_link_local() {
        // 169.254.0.0/16: the cloud metadata services live here.
        Some(AddressClass::LinkLocal)
    } else if a == 100 && (64..128).contains(&b) {
        Some(AddressClass::Shared)
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some(AddressClass::Multicast)
    } else if (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

/// The kinds of address a wildcard entry does not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    Shared,
    Multicast,
    Unspecified,
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address (cloud metadata lives there)",
            AddressClass::Shared => "a shared (carrier-grade NAT) address",
            AddressClass::Multicast => "a multicast, broadcast or reserved address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Reserved => "a documentation or benchmarking address",
        })
    }
}

/// Limits on one plugin's outbound requests: a manifest's `[limits]`
/// `http_*` keys, clamped by the host's maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HttpLimits {
    /// Until the connection (and TLS) is up.
    pub connect_timeout: Duration,
    /// From the request sent to the response's head.
    pub first_byte_timeout: Duration,
    /// Between two pieces of the response body.
    pub between_bytes_timeout: Duration,
    /// Most bytes of one response body.
    pub response_bytes: u64,
    /// Requests of this plugin in flight at once, over all its calls.
    pub concurrency: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            response_bytes: 16 << 20,
            concurrency: 8,
        }
    }
}

impl HttpLimits {
    /// The host's ceilings when none are configured.
    pub fn maxima() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(60),
            first_byte_timeout: Duration::from_secs(300),
            between_bytes_timeout: Duration::from_secs(300),
            response_bytes: 256 << 20,
            concurrency: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&entries).unwrap()
    }

    #[test]
    fn spin_syntax_matches_scheme_host_and_port() {
        let h = hosts(&[
            "https://api.openai.com",
            "https://*.example.com:8443",
            "http://127.0.0.1:*",
            "*://[::1]:9000",
        ]);
        let ok = |s, host, port| h.check(s, host, port).is_some();
        assert!(ok("https", "api.openai.com", 443));
        assert!(ok("https", "API.OpenAI.com.", 443), "case and root dot");
        assert!(!ok("http", "api.openai.com", 443), "scheme");
        assert!(!ok("https", "api.openai.com", 8443), "port");
        assert!(!ok("https", "evil-api.openai.com", 443));
        assert!(ok("https", "a.b.example.com", 8443));
        assert!(!ok("https", "example.com", 8443), "*. is subdomains only");
        assert!(!ok("https", "badexample.com", 8443));
        assert!(ok("http", "127.0.0.1", 1));
        assert!(!ok("http", "127.0.0.2", 1));
        assert!(ok("http", "::1", 9000) && ok("https", "0:0::1", 9000));
        assert!(
            AllowedHosts::default()
                .check("https", "example.com", 443)
                .is_none()
        );
    }

    #[test]
    fn only_literal_entries_reach_private_addresses() {
        let h = hosts(&["https://*:443", "http://localhost:8080"]);
        let permit = |h: &AllowedHosts, s, host, port| {
            h.check(s, host, port)
                .map(|p| (p.private_ok, p.label.to_string()))
        };
        assert_eq!(
            permit(&h, "https", "example.com", 443),
            Some((false, "*".into()))
        );
        assert_eq!(
            permit(&h, "http", "localhost", 8080),
            Some((true, "localhost".into()))
        );
        let both = hosts(&["*://*:*", "http://10.0.0.5:80", "https://*.corp.example"]);
        assert_eq!(
            permit(&both, "http", "10.0.0.5", 80),
            Some((true, "10.0.0.5".into()))
        );
        assert_eq!(
            permit(&both, "https", "a.corp.example", 443),
            Some((false, "*".into())),
            "the first of two wildcards"
        );
    }

    #[test]
    fn bad_entries_say_why() {
        for (entry, why) in [
            ("api.openai.com", "scheme://host"),
            ("ftp://x.com", "scheme"),
            ("https://x.com/v1", "no path"),
            ("*://x.com", "port"),
            ("https://x.com:99999", "port"),
            ("https://foo.*.com", "host name"),
            ("https://[::1", "closing"),
        ] {
            let err = AllowedHosts::parse(&[entry.to_string()]).unwrap_err();
            assert!(err.contains(why), "{entry}: {err}");
        }
    }

    #[test]
    fn inside_addresses_are_classified() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_address(ip).is_some(), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "93.184.216.34",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_address(ip), None, "{ip} is public");
        }
    }
}
