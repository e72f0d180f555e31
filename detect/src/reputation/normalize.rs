//! URL and host normalisation: feeds and traffic spell the same resource in many ways, and both
//! sides go through these functions so that equal resources give equal keys.
//!
//! A URL key is `host[:port]/path[?query]`, all lower case:
//! - the scheme is dropped (feeds differ: Zeek intel writes URLs without one, OpenPhish with
//!   one), so `https://evil.example/x` and `http://evil.example/x` are one key;
//! - the port is kept only when it is not the scheme's default (80 and 443 both count as default
//!   when there is no scheme, since scheme-less feeds do not say which they meant);
//! - user information (`user:pass@`) is dropped: it is not part of where the resource lives, and
//!   phishing URLs use it to look like another host (`http://bank.example@evil.example/`);
//! - the fragment is dropped (never sent on the wire);
//! - the host is percent-decoded, lower-cased, loses trailing dots and is converted to punycode
//!   (IDNA); IP literals are written in their canonical form, including the IPv4 spellings
//!   browsers accept (`0x7f.1`, `2130706433`, octal parts);
//! - `\` in the path reads as `/`, as browsers read it;
//! - percent-encoded unreserved characters (RFC 3986 section 2.3) are decoded, bytes outside
//!   printable ASCII are percent-encoded, and dot segments are removed (RFC 3986 section 5.2.4);
//! - path and query are lower-cased too. RFC 3986 makes them case-sensitive, but the widely used
//!   urlhaus-filter derivation of URLhaus lowercases whole URLs (its own Suricata rules match the
//!   URI with `nocase`); a false match needs a URL that differs from a listed one on the same host
//!   only by letter case.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longer URLs are not looked up and not accepted from feeds (browsers and servers cap URLs near
/// 8 KiB; Apache's default `LimitRequestLine` is 8190).
pub const MAX_URL_LEN: usize = 8192;

/// RFC 1035 section 2.3.4: 255 octets on the wire, 253 characters as text.
pub const MAX_HOST_LEN: usize = 253;

/// RFC 1035 section 2.3.4.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a URL, host or address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("empty")]
    Empty,
    #[error("longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("not a valid host name")]
    BadHost,
    #[error("not a valid port")]
    BadPort,
    #[error("not a valid IP address or CIDR")]
    BadAddress,
}

/// A host: a DNS name (lower-case ASCII, punycode) or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A URL after normalisation. See the module documentation for the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedUrl {
    /// Lower case, when the input had one.
    pub scheme: Option<String>,
    pub host: Host,
    /// Only when it is not the default for the scheme.
    pub port: Option<u16>,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl NormalizedUrl {
    /// `host[:port]`, IPv6 in brackets: the part of the key before the path.
    pub fn authority(&self) -> String {
        let mut s = match &self.host {
            Host::Name(n) => n.clone(),
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        };
        if let Some(port) = self.port {
            s.push(':');
            s.push_str(&port.to_string());
        }
        s
    }

    /// The match key: `host[:port]/path?query`, without the scheme.
    pub fn key(&self) -> String {
        let mut s = self.authority();
        s.push_str(&self.path);
        s
    }

    /// The key with the scheme in front (`http` when the input had none), as URL masks are
    /// written.
    pub fn with_scheme(&self) -> String {
        format!(
            "{}://{}",
            self.scheme.as_deref().unwrap_or("http"),
            self.key()
        )
    }
}

fn default_port(scheme: Option<&str>, port: u16) -> bool {
    match scheme {
        None => port == 80 || port == 443,
        Some("http") | Some("ws") => port == 80,
        Some("https") | Some("wss") => port == 443,
        Some("ftp") => port == 21,
        Some(_) => false,
    }
}

/// RFC 3986 section 3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Normalises an absolute URL (`scheme://host/path`), a scheme-less one (`host/path`, as Zeek
/// intel writes them) or a scheme-relative one (`//host/path`).
pub fn normalize_url(input: &str) -> Result<NormalizedUrl, NormalizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(NormalizeError::Empty);
    }
    if s.len() > MAX_URL_LEN {
        return Err(NormalizeError::TooLong { limit: MAX_URL_LEN });
    }
    let s = s.split_once('#').map_or(s, |(before, _)| before);
    let (scheme, rest) = match s.find("://") {
        Some(at) if is_scheme(&s[..at]) => (Some(s[..at].to_ascii_lowercase()), &s[at + 3..]),
        _ => (None, s.strip_prefix("//").unwrap_or(s)),
    };
    let authority_end = rest.find(['/', '?', '\\']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host_text, port_text) = split_host_port(host_port)?;
    let host = if host_text.contains('%') {
        normalize_host(&percent_decode_host(host_text).ok_or(NormalizeError::BadHost)?)?
    } else {
        normalize_host(host_text)?
    };
    let port = match port_text {
        None | Some("") => None,
        Some(p) => {
            let port: u16 = p.parse().map_err(|_| NormalizeError::BadPort)?;
            (!default_port(scheme.as_deref(), port)).then_some(port)
        }
    };
    Ok(NormalizedUrl {
        scheme,
        host,
        port,
        path: normalize_path_query(path_query),
    })
}

/// Splits `host:port`, `[v6]:port`, `host`; a second colon outside brackets is refused.
fn split_host_port(hp: &str) -> Result<(&str, Option<&str>), NormalizeError> {
    if let Some(inner) = hp.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or(NormalizeError::BadHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(NormalizeError::BadPort)?),
        };
        return Ok((&hp[..v6.len() + 2], port));
    }
    match hp.split_once(':') {
        None => Ok((hp, None)),
        Some((h, p)) if !p.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((h, Some(p)))
        }
        Some(_) => Err(NormalizeError::BadPort),
    }
}

/// Normalises a host as written in a `Host` header, SNI, DNS query or domain feed: port dropped
/// when present (`host:8080`), lower case, trailing dots removed, IDNA to punycode, IP literals
/// (with or without brackets) parsed.
pub fn normalize_host(input: &str) -> Result<Host, NormalizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(NormalizeError::Empty);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let v6 = inner
            .split_once(']')
            .map(|(v6, _)| v6)
            .ok_or(NormalizeError::BadHost)?;
        return v6
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| NormalizeError::BadHost);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // A Host header may carry a port; a name never contains a colon.
    let s = match s.split_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return Err(NormalizeError::BadHost),
        None => s,
    };
    let s = s.trim_end_matches('.');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if let Some(v4) = whatwg_ipv4(s) {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    normalize_domain_name(s).map(Host::Name)
}

/// The IPv4 forms browsers and curl accept besides dotted decimal (WHATWG URL, "IPv4 parser"):
/// one to four parts, each decimal, `0x` hex or `0`-led octal, the last filling the remaining
/// bytes (`0x7f.1`, `2130706433`, `0177.0.0.01` are all 127.0.0.1). Without this a listed
/// address could be dodged by writing it another way. `None` when `s` is not such a form.
fn whatwg_ipv4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
            None => (*part, 10),
        };
        // from_str_radix would take a sign; the URL parser does not.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        numbers.push(n);
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 255) {
        return None;
    }
    // At most 4 parts (checked above), so the shift stays within 8..=32 bits.
    let last_bits = 8 * (5 - numbers.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut addr = *last;
    for (i, n) in leading.iter().enumerate() {
        addr |= n << (24 - 8 * i as u32);
    }
    u32::try_from(addr).ok().map(Ipv4Addr::from)
}

/// A URL's host with percent-encoding undone, as browsers do before resolving it
/// (`%65vil.example` is `evil.example`). `None` when the bytes are not UTF-8.
fn percent_decode_host(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hi = bytes.get(i + 1).copied().and_then(hex_value);
        let lo = bytes.get(i + 2).copied().and_then(hex_value);
        match (bytes[i], hi, lo) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A DNS name to lower-case punycode; refuses empty labels, over-long names and labels, and
/// characters no registered name uses (underscores are kept: they occur in real names).
fn normalize_domain_name(s: &str) -> Result<String, NormalizeError> {
    if s.is_empty() {
        return Err(NormalizeError::Empty);
    }
    // Bound the work IDNA does on hostile input before calling it.
    if s.len() > MAX_HOST_LEN * 4 {
        return Err(NormalizeError::TooLong {
            limit: MAX_HOST_LEN,
        });
    }
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).map_err(|_| NormalizeError::BadHost)?
    };
    if ascii.len() > MAX_HOST_LEN {
        return Err(NormalizeError::TooLong {
            limit: MAX_HOST_LEN,
        });
    }
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    if labels_ok {
        Ok(ascii)
    } else {
        Err(NormalizeError::BadHost)
    }
}

/// RFC 3986 section 2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes percent-encoded unreserved characters, encodes bytes outside printable ASCII, and
/// lower-cases everything (see the module documentation for why the path is case-folded).
fn normalize_percent(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let v = hi << 4 | lo;
                if is_unreserved(v) {
                    out.push(char::from(v.to_ascii_lowercase()));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(hi)]));
                    out.push(char::from(HEX[usize::from(lo)]));
                }
                i += 3;
                continue;
            }
        }
        if b.is_ascii_graphic() {
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        i += 1;
    }
}

/// RFC 3986 section 5.2.4, for a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.strip_prefix('/').unwrap_or(path).split('/') {
        trailing_slash = false;
        match segment {
            "." => trailing_slash = true,
            ".." => {
                kept.pop();
                trailing_slash = true;
            }
            _ => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&kept.join("/"));
    if trailing_slash && !kept.is_empty() {
        out.push('/');
    }
    out
}

/// Path and query (`/a/./b?x=%41`) to their normal form; an empty path becomes `/`.
fn normalize_path_query(path_query: &str) -> String {
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    // Browsers read `\` as `/` in http(s) paths; a feed or mask never means a literal one.
    let path = path.replace('\\', "/");
    let path = path.as_str();
    let mut encoded = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        encoded.push('/');
    }
    normalize_percent(path, &mut encoded);
    let mut out = remove_dot_segments(&encoded);
    if let Some(q) = query {
        out.push('?');
        normalize_percent(q, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> String {
        normalize_url(url)
            .map(|u| u.key())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn scheme_and_host_case_fold() {
        assert_eq!(key("HTTP://Evil.EXAMPLE/Path"), "evil.example/path");
        assert_eq!(
            normalize_url("HTTPS://a.example/").map(|u| u.scheme),
            Ok(Some("https".into()))
        );
    }

    #[test]
    fn default_ports_are_dropped_others_kept() {
        assert_eq!(key("http://a.example:80/x"), "a.example/x");
        assert_eq!(key("https://a.example:443/x"), "a.example/x");
        assert_eq!(key("http://a.example:443/x"), "a.example:443/x");
        assert_eq!(key("https://a.example:8443/x"), "a.example:8443/x");
        assert_eq!(key("a.example:80/x"), "a.example/x");
        assert_eq!(key("a.example:443/x"), "a.example/x");
        assert_eq!(key("a.example:8080/x"), "a.example:8080/x");
        assert_eq!(key("http://a.example:/x"), "a.example/x");
    }

    #[test]
    fn with_and_without_scheme_give_one_key() {
        assert_eq!(key("http://evil.example/a?b=1"), key("evil.example/a?b=1"));
        assert_eq!(
            key("https://evil.example/a?b=1"),
            key("//evil.example/a?b=1")
        );
        assert_eq!(
            normalize_url("evil.example/a").map(|u| u.with_scheme()),
            Ok("http://evil.example/a".into())
        );
    }

    #[test]
    fn percent_encoding_of_unreserved_is_undone_others_kept_in_one_case() {
        // %41 = 'A', %7E = '~', %2F = '/' (reserved, stays encoded), %3D = '='.
        assert_eq!(
            key("http://a.example/%41b%7Ec%2Fd?q=%3D%3d"),
            "a.example/ab~c%2fd?q=%3d%3d"
        );
        // Non-ASCII and space are encoded as their UTF-8 bytes.
        assert_eq!(key("http://a.example/ü x"), "a.example/%c3%bc%20x");
        // A stray percent sign is kept as it is.
        assert_eq!(key("http://a.example/100%"), "a.example/100%");
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(key("http://a.example/a/b/../c/./d"), "a.example/a/c/d");
        assert_eq!(key("http://a.example/a/b/.."), "a.example/a/");
        assert_eq!(key("http://a.example/../../etc"), "a.example/etc");
        assert_eq!(key("http://a.example/a/%2e%2E/b"), "a.example/b");
        assert_eq!(key("http://a.example/.."), "a.example/");
        // Dots in the query are data, not segments.
        assert_eq!(key("http://a.example/x?p=../y"), "a.example/x?p=../y");
    }

    #[test]
    fn empty_path_is_slash_and_fragment_goes() {
        assert_eq!(key("http://a.example"), "a.example/");
        assert_eq!(key("http://a.example?q"), "a.example/?q");
        assert_eq!(key("http://a.example/x#frag"), "a.example/x");
    }

    #[test]
    fn trailing_dots_on_hosts_go() {
        assert_eq!(key("http://evil.example./x"), "evil.example/x");
        assert_eq!(
            normalize_host("Evil.Example.."),
            Ok(Host::Name("evil.example".into()))
        );
    }

    #[test]
    fn userinfo_is_dropped() {
        assert_eq!(
            key("http://bank.example:pw@evil.example/login"),
            "evil.example/login"
        );
    }

    #[test]
    fn idn_hosts_become_punycode() {
        assert_eq!(key("http://Bücher.example/a"), "xn--bcher-kva.example/a");
        assert_eq!(
            normalize_host("пример.рф"),
            Ok(Host::Name("xn--e1afmkfd.xn--p1ai".into()))
        );
        // Already-punycode input is left as it is, so feed and traffic agree.
        assert_eq!(
            normalize_host("XN--BCHER-KVA.example"),
            Ok(Host::Name("xn--bcher-kva.example".into()))
        );
    }

    #[test]
    fn ip_literals_in_urls() {
        assert_eq!(key("http://[2001:DB8:0::1]:8080/x"), "[2001:db8::1]:8080/x");
        assert_eq!(key("http://[2001:db8::1]/x"), "[2001:db8::1]/x");
        assert_eq!(key("http://192.0.2.1:80/x"), "192.0.2.1/x");
        assert_eq!(
            normalize_url("http://[2001:db8::1]/").map(|u| u.host),
            Ok(Host::Ip(
                "2001:db8::1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            ))
        );
        assert_eq!(
            normalize_host("[::1]:443"),
            Ok(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        );
        assert_eq!(
            normalize_host("2001:db8::1"),
            Ok(Host::Ip(
                "2001:db8::1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            ))
        );
    }

    #[test]
    fn other_ipv4_spellings_are_the_address() {
        let v4 = |a, b, c, d| Ok(Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d))));
        assert_eq!(normalize_host("2130706433"), v4(127, 0, 0, 1));
        assert_eq!(normalize_host("0x7f.1"), v4(127, 0, 0, 1));
        assert_eq!(normalize_host("0177.0.0.01"), v4(127, 0, 0, 1));
        assert_eq!(normalize_host("0XC0.0xa8.0x1.0x02"), v4(192, 168, 1, 2));
        assert_eq!(normalize_host("192.168.258"), v4(192, 168, 1, 2));
        assert_eq!(key("http://0xC0A80102:8080/x"), "192.168.1.2:8080/x");
        // Not addresses: out of range parts, signs, five parts, letters.
        assert_eq!(
            normalize_host("256.1.1.1"),
            Ok(Host::Name("256.1.1.1".into()))
        );
        assert_eq!(
            normalize_host("1.2.3.4.5"),
            Ok(Host::Name("1.2.3.4.5".into()))
        );
        assert_eq!(
            normalize_host("4294967296"),
            Ok(Host::Name("4294967296".into()))
        );
        assert_eq!(normalize_host("0x1g"), Ok(Host::Name("0x1g".into())));
        assert_eq!(
            normalize_host("123.example"),
            Ok(Host::Name("123.example".into()))
        );
    }

    #[test]
    fn percent_encoded_hosts_and_backslashes_read_as_browsers_do() {
        assert_eq!(key("http://%65vil.EXAMPLE/x"), "evil.example/x");
        assert_eq!(key("http://b%C3%BCcher.example/"), "xn--bcher-kva.example/");
        assert_eq!(
            normalize_url("http://%ff.example/"),
            Err(NormalizeError::BadHost)
        );
        assert_eq!(
            key("http://evil.example\\dl\\a.exe"),
            "evil.example/dl/a.exe"
        );
    }

    #[test]
    fn host_headers_lose_their_port() {
        assert_eq!(
            normalize_host("Evil.example:8080"),
            Ok(Host::Name("evil.example".into()))
        );
        assert_eq!(
            normalize_host("192.0.2.7:80"),
            Ok(Host::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))))
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(normalize_url(""), Err(NormalizeError::Empty));
        assert_eq!(normalize_url("http://"), Err(NormalizeError::Empty));
        assert_eq!(
            normalize_url("http://a b.example/"),
            Err(NormalizeError::BadHost)
        );
        assert_eq!(
            normalize_url("http://a.example:99999/"),
            Err(NormalizeError::BadPort)
        );
        assert_eq!(
            normalize_url("http://a.example:8x/"),
            Err(NormalizeError::BadPort)
        );
        assert_eq!(
            normalize_url("http://[2001:db8::1/"),
            Err(NormalizeError::BadHost)
        );
        assert_eq!(
            normalize_url("http://a..example/"),
            Err(NormalizeError::BadHost)
        );
        assert_eq!(normalize_host("<html>"), Err(NormalizeError::BadHost));
        let long_label = "a".repeat(64);
        assert_eq!(
            normalize_host(&format!("{long_label}.example")),
            Err(NormalizeError::BadHost)
        );
        let long_url = format!("http://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(
            normalize_url(&long_url),
            Err(NormalizeError::TooLong { limit: MAX_URL_LEN })
        );
    }
}
