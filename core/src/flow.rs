//! Flow identity: addresses, ports, protocol, VLAN ids, and which way a packet travels.

use std::fmt;
use std::net::IpAddr;

/// Which way data moves relative to the flow's initiator (Suricata's and Weir's single vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the side that opened the flow.
    ToServer,
    ToClient,
}

impl Direction {
    pub fn opposite(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// 0 for to-server, 1 for to-client: an index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// Suricata's spelling in EVE (`"to_server"` / `"to_client"`).
    pub fn eve(self) -> &'static str {
        match self {
            Direction::ToServer => "to_server",
            Direction::ToClient => "to_client",
        }
    }
}

/// An IP protocol number. Open: any value on the wire is representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProto(pub u8);

impl IpProto {
    pub const HOPOPT: IpProto = IpProto(0);
    pub const ICMP: IpProto = IpProto(1);
    pub const IGMP: IpProto = IpProto(2);
    pub const IPIP: IpProto = IpProto(4);
    pub const TCP: IpProto = IpProto(6);
    pub const UDP: IpProto = IpProto(17);
    pub const IPV6: IpProto = IpProto(41);
    pub const IPV6_ROUTE: IpProto = IpProto(43);
    pub const IPV6_FRAG: IpProto = IpProto(44);
    pub const GRE: IpProto = IpProto(47);
    pub const ESP: IpProto = IpProto(50);
    pub const AH: IpProto = IpProto(51);
    pub const ICMPV6: IpProto = IpProto(58);
    pub const IPV6_NONXT: IpProto = IpProto(59);
    pub const IPV6_OPTS: IpProto = IpProto(60);
    pub const SCTP: IpProto = IpProto(132);

    /// The name Suricata writes in EVE `proto`; unknown protocols are written as their number.
    pub fn eve_name(self) -> std::borrow::Cow<'static, str> {
        let name = match self {
            IpProto::ICMP => "ICMP",
            IpProto::IGMP => "IGMP",
            IpProto::TCP => "TCP",
            IpProto::UDP => "UDP",
            IpProto::GRE => "GRE",
            IpProto::ESP => "ESP",
            IpProto::AH => "AH",
            IpProto::ICMPV6 => "IPv6-ICMP",
            IpProto::SCTP => "SCTP",
            IpProto::IPIP => "IPIP",
            IpProto::IPV6 => "IPV6",
            other => return other.0.to_string().into(),
        };
        name.into()
    }

    /// Whether the flow key carries ports (or, for ICMP, type and code in their place).
    pub fn has_ports(self) -> bool {
        matches!(self, IpProto::TCP | IpProto::UDP | IpProto::SCTP)
    }
}

/// Up to three VLAN ids, outermost first, as Suricata tracks them (QinQ and one more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Vlans {
    ids: [u16; 3],
    len: u8,
}

impl Vlans {
    pub const MAX: usize = 3;

    /// Adds the next inner tag; returns false (and keeps the first three) when there are more.
    pub fn push(&mut self, id: u16) -> bool {
        if usize::from(self.len) < Self::MAX {
            self.ids[usize::from(self.len)] = id;
            self.len += 1;
            true
        } else {
            false
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A flow's identity as seen on one packet: the packet's source and destination. Both directions of
/// a flow map to one [`FlowKey::canonical`] form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// For ICMP: the type (Suricata's convention), for port-less protocols: 0.
    pub src_port: u16,
    /// For ICMP: the code, for port-less protocols: 0.
    pub dst_port: u16,
    pub proto: IpProto,
    pub vlans: Vlans,
    /// How many tunnel layers (GRE, VXLAN, ...) were peeled off to reach this packet: the same
    /// 5-tuple inside and outside a tunnel is two flows.
    pub tunnel_depth: u8,
}

impl FlowKey {
    /// The same key seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }

    /// The form both directions share (lower address/port first), and whether `self` had to be
    /// reversed to reach it. ICMP's type and code are not part of it: an echo request and its
    /// reply (types 8 and 0) are one flow, as Suricata keys them by addresses alone.
    pub fn canonical(&self) -> (FlowKey, bool) {
        let mut key = *self;
        if matches!(key.proto, IpProto::ICMP | IpProto::ICMPV6) {
            key.src_port = 0;
            key.dst_port = 0;
        }
        if (key.src_ip, key.src_port) <= (key.dst_ip, key.dst_port) {
            (key, false)
        } else {
            (key.reversed(), true)
        }
    }

    /// Whether a packet with key `packet` travels from this key's source. Port-less protocols,
    /// and ICMP whose "ports" are type and code, are told by address alone.
    pub fn is_from_source(&self, packet: &FlowKey) -> bool {
        packet.src_ip == self.src_ip && (!self.proto.has_ports() || packet.src_port == self.src_port)
    }

    /// A hash that is equal for both directions of a flow, for spreading flows over workers.
    pub fn symmetric_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.canonical().0.hash(&mut h);
        h.finish()
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            self.proto.eve_name(),
            self.src_ip,
            self.src_port,
            self.dst_ip,
            self.dst_port
        )
    }
}

/// The application protocol detected on a flow, spelled as Suricata spells `app_proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    Ftp,
    FtpData,
    Smtp,
    Pop3,
    Imap,
    Tls,
    Dns,
    Smb,
    /// Detection ran and found no protocol it knows (`"failed"` in EVE).
    Failed,
}

impl AppProto {
    pub fn eve_name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Ftp => "ftp",
            AppProto::FtpData => "ftp-data",
            AppProto::Smtp => "smtp",
            AppProto::Pop3 => "pop3",
            AppProto::Imap => "imap",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Smb => "smb",
            AppProto::Failed => "failed",
        }
    }

    /// Parses a rule's or config's protocol name (`http`, `http1`, `ftp-data`, ...).
    pub fn from_name(name: &str) -> Option<AppProto> {
        Some(match name.to_ascii_lowercase().as_str() {
            "http" | "http1" => AppProto::Http,
            "ftp" => AppProto::Ftp,
            "ftp-data" => AppProto::FtpData,
            "smtp" => AppProto::Smtp,
            "pop3" => AppProto::Pop3,
            "imap" => AppProto::Imap,
            "tls" => AppProto::Tls,
            "dns" => AppProto::Dns,
            "smb" => AppProto::Smb,
            "failed" => AppProto::Failed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(a: [u8; 4], ap: u16, b: [u8; 4], bp: u16) -> FlowKey {
        FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::from(a)),
            dst_ip: IpAddr::V4(Ipv4Addr::from(b)),
            src_port: ap,
            dst_port: bp,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        }
    }

    #[test]
    fn both_directions_share_a_canonical_key() {
        let k = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 80);
        let (c1, swapped1) = k.canonical();
        let (c2, swapped2) = k.reversed().canonical();
        assert_eq!(c1, c2);
        assert_ne!(swapped1, swapped2);
        assert_eq!(k.symmetric_hash(), k.reversed().symmetric_hash());
    }

    #[test]
    fn icmp_request_and_reply_share_a_flow() {
        let mut req = key([10, 0, 0, 2], 8, [10, 0, 0, 1], 0);
        req.proto = IpProto::ICMP;
        let mut reply = key([10, 0, 0, 1], 0, [10, 0, 0, 2], 0);
        reply.proto = IpProto::ICMP;
        assert_eq!(req.canonical().0, reply.canonical().0);
        assert!(req.is_from_source(&req));
        assert!(!req.is_from_source(&reply));
        let tcp = key([10, 0, 0, 2], 1000, [10, 0, 0, 2], 2000);
        assert!(!tcp.is_from_source(&tcp.reversed()), "same address, told apart by port");
    }

    #[test]
    fn vlans_keep_three_outermost() {
        let mut v = Vlans::default();
        assert!(v.push(1) && v.push(10) && v.push(100));
        assert!(!v.push(1000));
        assert_eq!(v.as_slice(), &[1, 10, 100]);
    }

    #[test]
    fn unknown_protocols_print_their_number() {
        assert_eq!(IpProto::TCP.eve_name(), "TCP");
        assert_eq!(IpProto::ICMPV6.eve_name(), "IPv6-ICMP");
        assert_eq!(IpProto(253).eve_name(), "253");
    }
}
