//! The rule header: action, protocol, address and port expressions, direction.

use std::net::{IpAddr, Ipv4Addr};

use super::RuleError;
use super::vars::ResolvedVars;

/// Deepest nesting of `[...]` groups and `$VAR` references in one address or port expression.
pub const MAX_EXPR_DEPTH: usize = 16;

/// Most items one address or port expression may expand to (after `$VAR` substitution).
pub const MAX_EXPR_ITEMS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Alert,
    Pass,
    /// Logged as an alert: Weir is passive.
    Drop,
    /// Logged as an alert: Weir is passive and sends no resets.
    Reject,
    RejectSrc,
    RejectDst,
    RejectBoth,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "alert" => Action::Alert,
            "pass" => Action::Pass,
            "drop" => Action::Drop,
            "reject" => Action::Reject,
            "rejectsrc" => Action::RejectSrc,
            "rejectdst" => Action::RejectDst,
            "rejectboth" => Action::RejectBoth,
            _ => return None,
        })
    }

    /// Whether a match produces an EVE alert record (everything but `pass`).
    pub fn alerts(self) -> bool {
        self != Action::Pass
    }
}

/// What the rule inspects: a packet-level protocol or an application-layer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ip,
    Tcp,
    /// `tcp-pkt`: TCP, packet payloads only (no reassembled stream).
    TcpPkt,
    /// `tcp-stream`: TCP, reassembled stream only.
    TcpStream,
    Udp,
    Icmp,
    Icmpv4,
    Icmpv6,
    Sctp,
    Pkthdr,
    /// An application-layer protocol, by its canonical Suricata name (`http` for `http1` too).
    App(&'static str),
}

/// Application-layer protocol names Suricata 8 accepts in a rule header and in
/// `app-layer-protocol`. `http1` is an alias of `http`.
const APP_PROTOCOLS: &[&str] = &[
    "http",
    "http2",
    "ftp",
    "ftp-data",
    "tls",
    "smb",
    "dcerpc",
    "dns",
    "smtp",
    "imap",
    "pop3",
    "ssh",
    "nfs",
    "tftp",
    "ike",
    "krb5",
    "dhcp",
    "snmp",
    "sip",
    "rfb",
    "mqtt",
    "rdp",
    "modbus",
    "dnp3",
    "enip",
    "ntp",
    "bittorrent-dht",
    "telnet",
    "websocket",
    "ldap",
    "quic",
    "doh2",
    "pgsql",
    "template",
    "failed",
    "unknown",
];

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        let lower = s.to_ascii_lowercase();
        Some(match lower.as_str() {
            "ip" | "ipv4" | "ipv6" => Protocol::Ip,
            "tcp" => Protocol::Tcp,
            "tcp-pkt" => Protocol::TcpPkt,
            "tcp-stream" => Protocol::TcpStream,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "icmpv4" => Protocol::Icmpv4,
            "icmpv6" => Protocol::Icmpv6,
            "sctp" => Protocol::Sctp,
            "pkthdr" => Protocol::Pkthdr,
            "http1" => Protocol::App("http"),
            "ssl" => Protocol::App("tls"),
            "ikev2" => Protocol::App("ike"),
            other => Protocol::App(app_protocol(other)?),
        })
    }
}

/// The canonical name of an application-layer protocol, if Suricata knows it.
pub fn app_protocol(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "http1" => Some("http"),
        "ssl" => Some("tls"),
        "ikev2" => Some("ike"),
        other => APP_PROTOCOLS.iter().copied().find(|p| *p == other),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDirection {
    /// `->`
    ToDestination,
    /// `<>`: either way round.
    Both,
    /// `=>`: Suricata 8's transactional rules (request and response of one transaction).
    Transactional,
}

impl RuleDirection {
    pub fn parse(s: &str) -> Option<RuleDirection> {
        Some(match s {
            "->" => RuleDirection::ToDestination,
            "<>" => RuleDirection::Both,
            "=>" => RuleDirection::Transactional,
            _ => return None,
        })
    }
}

/// An address block: `a.b.c.d/n`, `x::y/n`, a single address, or an inclusive range `a-b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpBlock {
    Cidr { network: IpAddr, prefix: u8 },
    Range { first: IpAddr, last: IpAddr },
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            IpBlock::Cidr { network, prefix } => match (network, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - u32::from(prefix))
                    };
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - u32::from(prefix))
                    };
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            },
            IpBlock::Range { first, last } => match (first, last, ip) {
                (IpAddr::V4(f), IpAddr::V4(l), IpAddr::V4(a)) => (f..=l).contains(&a),
                (IpAddr::V6(f), IpAddr::V6(l), IpAddr::V6(a)) => (f..=l).contains(&a),
                _ => false,
            },
        }
    }
}

/// An address expression with every `$VAR` already substituted.
///
/// A list matches an address that any of its positive items match and none of its negated
/// items match; a list of only negated items starts from "any" (Suricata's semantics, so
/// `!$HOME_NET` and `[!1.2.3.4]` mean what they say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressExpr {
    Any,
    Block(IpBlock),
    Not(Box<AddressExpr>),
    List(Vec<AddressExpr>),
}

impl AddressExpr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            AddressExpr::Any => true,
            AddressExpr::Block(b) => b.contains(ip),
            AddressExpr::Not(inner) => !inner.contains(ip),
            AddressExpr::List(items) => list_contains(
                items,
                |item| item.contains(ip),
                |item| match item {
                    AddressExpr::Not(inner) => Some(inner.as_ref()),
                    _ => None,
                },
            ),
        }
    }
}

fn list_contains<T>(
    items: &[T],
    contains: impl Fn(&T) -> bool,
    negated_inner: impl Fn(&T) -> Option<&T>,
) -> bool {
    let mut any_positive = false;
    let mut hit = false;
    for item in items {
        match negated_inner(item) {
            Some(inner) => {
                if contains(inner) {
                    return false;
                }
            }
            None => {
                any_positive = true;
                hit |= contains(item);
            }
        }
    }
    hit || !any_positive
}

/// A port expression with every `$VAR` already substituted; list semantics as for addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortExpr {
    Any,
    /// Inclusive; a single port is `Range(p, p)`.
    Range(u16, u16),
    Not(Box<PortExpr>),
    List(Vec<PortExpr>),
}

impl PortExpr {
    pub fn contains(&self, port: u16) -> bool {
        match self {
            PortExpr::Any => true,
            PortExpr::Range(lo, hi) => (*lo..=*hi).contains(&port),
            PortExpr::Not(inner) => !inner.contains(port),
            PortExpr::List(items) => list_contains(
                items,
                |item| item.contains(port),
                |item| match item {
                    PortExpr::Not(inner) => Some(inner.as_ref()),
                    _ => None,
                },
            ),
        }
    }
}

/// Splits `a,[b,c],!d` at top-level commas.
fn split_list(s: &str) -> Result<Vec<&str>, RuleError> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or(RuleError::UnbalancedBrackets)?,
            ',' if depth == 0 => {
                items.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(RuleError::UnbalancedBrackets);
    }
    items.push(s[start..].trim());
    Ok(items)
}

/// What differs between address and port expressions; the grammar around the leaves (lists
/// with or without brackets, `!`, `$NAME`, `any`, nesting and size limits) is shared.
pub(crate) trait Expr: Sized + PartialEq {
    const ANY: Self;
    fn list(items: Vec<Self>) -> Self;
    fn not(inner: Self) -> Self;
    fn var(vars: &ResolvedVars, name: &str) -> Result<Self, RuleError>;
    /// A single address block or port range.
    fn leaf(s: &str) -> Result<Self, RuleError>;
    fn bad(s: &str) -> RuleError;
}

impl Expr for AddressExpr {
    const ANY: Self = AddressExpr::Any;
    fn list(items: Vec<Self>) -> Self {
        AddressExpr::List(items)
    }
    fn not(inner: Self) -> Self {
        AddressExpr::Not(Box::new(inner))
    }
    fn var(vars: &ResolvedVars, name: &str) -> Result<Self, RuleError> {
        vars.address(name)
    }
    fn leaf(s: &str) -> Result<Self, RuleError> {
        parse_block(s).map(AddressExpr::Block).ok_or_else(|| Self::bad(s))
    }
    fn bad(s: &str) -> RuleError {
        RuleError::BadAddress(s.to_string())
    }
}

impl Expr for PortExpr {
    const ANY: Self = PortExpr::Any;
    fn list(items: Vec<Self>) -> Self {
        PortExpr::List(items)
    }
    fn not(inner: Self) -> Self {
        PortExpr::Not(Box::new(inner))
    }
    fn var(vars: &ResolvedVars, name: &str) -> Result<Self, RuleError> {
        vars.port(name)
    }
    fn leaf(s: &str) -> Result<Self, RuleError> {
        let number = |t: &str| t.trim().parse::<u16>().map_err(|_| Self::bad(s));
        let (lo, hi) = match s.split_once(':') {
            Some((lo, hi)) => (
                if lo.trim().is_empty() { 0 } else { number(lo)? },
                if hi.trim().is_empty() { u16::MAX } else { number(hi)? },
            ),
            None => {
                let p = number(s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(Self::bad(s));
        }
        Ok(PortExpr::Range(lo, hi))
    }
    fn bad(s: &str) -> RuleError {
        RuleError::BadPort(s.to_string())
    }
}

/// Parses the text of an address expression; `$NAME` is looked up in `vars`.
pub fn parse_address(s: &str, vars: &ResolvedVars) -> Result<AddressExpr, RuleError> {
    parse_expr_at(s, vars, 0, &mut { MAX_EXPR_ITEMS })
}

/// Parses the text of a port expression; `$NAME` is looked up in `vars`.
pub fn parse_port(s: &str, vars: &ResolvedVars) -> Result<PortExpr, RuleError> {
    parse_expr_at(s, vars, 0, &mut { MAX_EXPR_ITEMS })
}

pub(crate) fn parse_expr_at<E: Expr>(
    s: &str,
    vars: &ResolvedVars,
    depth: usize,
    budget: &mut usize,
) -> Result<E, RuleError> {
    if depth > MAX_EXPR_DEPTH {
        return Err(RuleError::ExpressionTooDeep {
            limit: MAX_EXPR_DEPTH,
        });
    }
    *budget = budget.checked_sub(1).ok_or(RuleError::ExpressionTooLarge {
        limit: MAX_EXPR_ITEMS,
    })?;
    let s = s.trim();
    // Suricata also accepts a list without brackets: `!5800,!445`.
    let top_level = split_list(s)?;
    if top_level.len() > 1 {
        let items = top_level
            .into_iter()
            .map(|item| parse_expr_at(item, vars, depth + 1, budget))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(E::list(items));
    }
    if let Some(rest) = s.strip_prefix('!') {
        let inner = parse_expr_at::<E>(rest, vars, depth + 1, budget)?;
        // Suricata rejects a negation that can match nothing.
        if inner == E::ANY {
            return Err(E::bad(s));
        }
        return Ok(E::not(inner));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(RuleError::UnbalancedBrackets)?;
        let items = split_list(inner)?
            .into_iter()
            .map(|item| parse_expr_at(item, vars, depth + 1, budget))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(E::list(items));
    }
    if let Some(name) = s.strip_prefix('$') {
        return E::var(vars, name);
    }
    if s.eq_ignore_ascii_case("any") {
        return Ok(E::ANY);
    }
    E::leaf(s)
}

fn parse_block(s: &str) -> Option<IpBlock> {
    if let Some((addr, prefix)) = s.split_once('/') {
        let network: IpAddr = addr.trim().parse().ok()?;
        let prefix = prefix.trim();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match prefix.parse::<u8>() {
            Ok(p) if p <= max => p,
            Ok(_) => return None,
            // A dotted netmask (`10.0.0.0/255.0.0.0`) as Suricata also accepts for IPv4.
            Err(_) => {
                let mask: Ipv4Addr = prefix.parse().ok()?;
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return None;
                }
                u8::try_from(bits.leading_ones()).ok()?
            }
        };
        return Some(IpBlock::Cidr { network, prefix });
    }
    if let Some((first, last)) = s.split_once('-') {
        let first: IpAddr = first.trim().parse().ok()?;
        let last: IpAddr = last.trim().parse().ok()?;
        if first.is_ipv4() != last.is_ipv4() || first > last {
            return None;
        }
        return Some(IpBlock::Range { first, last });
    }
    let network: IpAddr = s.parse().ok()?;
    let prefix = if network.is_ipv4() { 32 } else { 128 };
    Some(IpBlock::Cidr { network, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::vars::Vars;

    fn vars() -> ResolvedVars {
        Vars::default().resolve()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_v4_and_v6_parse_to_blocks() {
        let v = vars();
        assert_eq!(
            parse_address("10.0.0.0/8", &v).unwrap(),
            AddressExpr::Block(IpBlock::Cidr {
                network: ip("10.0.0.0"),
                prefix: 8
            })
        );
        assert_eq!(
            parse_address("2001:db8::/32", &v).unwrap(),
            AddressExpr::Block(IpBlock::Cidr {
                network: ip("2001:db8::"),
                prefix: 32
            })
        );
        assert_eq!(
            parse_address("1.2.3.4", &v).unwrap(),
            AddressExpr::Block(IpBlock::Cidr {
                network: ip("1.2.3.4"),
                prefix: 32
            })
        );
        assert!(parse_address("1.2.3.4/33", &v).is_err());
        assert!(parse_address("1.2.3", &v).is_err());
    }

    #[test]
    fn nested_lists_with_negation_follow_suricata_semantics() {
        let v = vars();
        let e = parse_address("[10.0.0.0/8,![10.1.0.0/16,10.2.0.0/16]]", &v).unwrap();
        assert!(e.contains(ip("10.3.0.1")));
        assert!(!e.contains(ip("10.1.2.3")));
        assert!(!e.contains(ip("10.2.2.3")));
        assert!(!e.contains(ip("11.0.0.1")));
        let only_negated = parse_address("[!1.2.3.4]", &v).unwrap();
        assert!(only_negated.contains(ip("1.2.3.5")));
        assert!(!only_negated.contains(ip("1.2.3.4")));
    }

    #[test]
    fn home_and_external_net_defaults() {
        let v = vars();
        let home = parse_address("$HOME_NET", &v).unwrap();
        let external = parse_address("$EXTERNAL_NET", &v).unwrap();
        for inside in ["192.168.1.1", "10.9.9.9", "172.31.255.255"] {
            assert!(
                home.contains(ip(inside)) && !external.contains(ip(inside)),
                "{inside}"
            );
        }
        assert!(!home.contains(ip("8.8.8.8")) && external.contains(ip("8.8.8.8")));
    }

    #[test]
    fn port_ranges_open_and_closed() {
        let v = vars();
        assert_eq!(
            parse_port("1024:", &v).unwrap(),
            PortExpr::Range(1024, 65535)
        );
        assert_eq!(parse_port(":1023", &v).unwrap(), PortExpr::Range(0, 1023));
        assert_eq!(parse_port("80:90", &v).unwrap(), PortExpr::Range(80, 90));
        assert_eq!(
            parse_port("$HTTP_PORTS", &v).unwrap(),
            PortExpr::Range(80, 80)
        );
        let e = parse_port("[1:100,!80,![20:21]]", &v).unwrap();
        assert!(
            e.contains(1)
                && e.contains(100)
                && !e.contains(80)
                && !e.contains(21)
                && !e.contains(101)
        );
        assert!(parse_port("90:80", &v).is_err());
        assert!(parse_port("70000", &v).is_err());
        assert!(parse_port("[80", &v).is_err());
        assert_eq!(
            parse_port("!any", &v),
            Err(RuleError::BadPort("!any".into()))
        );
        assert_eq!(
            parse_address("!any", &v),
            Err(RuleError::BadAddress("!any".into()))
        );
        let bare = parse_port("!5800,!445", &v).unwrap();
        assert!(bare.contains(80) && !bare.contains(445) && !bare.contains(5800));
    }

    #[test]
    fn ranges_and_netmasks() {
        let v = vars();
        let r = parse_address("10.0.0.5-10.0.0.9", &v).unwrap();
        assert!(
            r.contains(ip("10.0.0.5"))
                && r.contains(ip("10.0.0.9"))
                && !r.contains(ip("10.0.0.10"))
        );
        assert_eq!(
            parse_address("10.0.0.0/255.255.0.0", &v).unwrap(),
            AddressExpr::Block(IpBlock::Cidr {
                network: ip("10.0.0.0"),
                prefix: 16
            })
        );
    }

    #[test]
    fn protocols_and_aliases() {
        assert_eq!(Protocol::parse("http1"), Some(Protocol::App("http")));
        assert_eq!(Protocol::parse("ftp-data"), Some(Protocol::App("ftp-data")));
        assert_eq!(Protocol::parse("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("icmpv6"), Some(Protocol::Icmpv6));
        assert_eq!(Protocol::parse("gopher"), None);
    }
}
