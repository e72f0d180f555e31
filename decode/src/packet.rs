//! The decoded view of one packet, borrowed from the frame it was decoded from.

use std::net::IpAddr;

use weir_core::{Anomaly, FlowKey, IpProto, LinkType, Timestamp, Vlans};

/// One decoded IP packet: a captured frame, a tunnelled packet peeled out of one, or a datagram
/// rebuilt from fragments. Handed to the caller's callback; nothing in it outlives the call.
#[derive(Clone, Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    /// The bytes from the link header on. For a tunnelled packet: from the inner link header (or
    /// the inner IP header when the tunnel carries bare IP). For a rebuilt datagram: the link header
    /// of the first fragment followed by the rebuilt datagram, as Suricata logs it.
    pub frame: &'a [u8],
    /// How `frame` starts: [`LinkType::RAW`] for bare IP.
    pub link: LinkType,
    /// VLAN ids seen on the way here, outermost first; an inner packet inherits its tunnel's.
    pub vlans: Vlans,
    /// How many tunnel layers were peeled off to reach this packet (0 outside any tunnel).
    pub tunnel_depth: u8,
    /// For a packet peeled out of a tunnel: the tunnel and the packet that carried it.
    pub tunnel: Option<Tunnel>,
    /// This packet carries a tunnel whose inner packet is decoded (and handed over) next.
    pub is_tunnel_outer: bool,
    pub ip: IpLayer<'a>,
    pub transport: Transport,
    /// The bytes after the transport header (after the IP header for other protocols and for
    /// fragments), cut at the length the headers state.
    pub payload: &'a [u8],
    /// Set when this is one fragment of a datagram (not yet rebuilt). Fragments have no flow key.
    pub fragment: Option<Fragment>,
    /// Set when this datagram was rebuilt from fragments.
    pub reassembled: bool,
    pub anomalies: Anomalies,
    /// Checksum results, present only when validation is on.
    pub checksums: Checksums,
}

impl Packet<'_> {
    /// The flow this packet belongs to, oriented as the packet travels. None for fragments and for
    /// packets whose transport header could not be decoded (Suricata gives those no flow either).
    pub fn flow_key(&self) -> Option<FlowKey> {
        if self.fragment.is_some() {
            return None;
        }
        let (src_port, dst_port) = match self.transport {
            Transport::Tcp(ref tcp) => (tcp.src_port, tcp.dst_port),
            Transport::Udp(ref udp) => (udp.src_port, udp.dst_port),
            // Suricata's convention: type in the source port, code in the destination port.
            Transport::Icmp(icmp) => (u16::from(icmp.icmp_type), u16::from(icmp.code)),
            Transport::Other { .. } => (0, 0),
            Transport::Invalid { .. } => return None,
        };
        Some(FlowKey {
            src_ip: self.ip.src,
            dst_ip: self.ip.dst,
            src_port,
            dst_port,
            proto: self.ip.proto,
            vlans: self.vlans,
            tunnel_depth: self.tunnel_depth,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

/// The IP layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpLayer<'a> {
    pub version: IpVersion,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// The upper-layer protocol: after IPv6 extension headers, or the fragmented protocol.
    pub proto: IpProto,
    /// The packet's length as its header states it (IPv6: 40 + payload length).
    pub total_len: usize,
    /// The IP header with options (IPv4) or with the extension headers (IPv6).
    pub header: &'a [u8],
    /// IPv4 identification, or the IPv6 fragment header's identification (0 when absent).
    pub id: u32,
    /// Type of service / traffic class.
    pub tos: u8,
    pub dont_fragment: bool,
}

/// Where a fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in the datagram's fragmentable part, in bytes.
    pub offset: u32,
    pub more: bool,
    pub id: u32,
}

/// What rides on IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpHeader),
    Udp(UdpHeader),
    Icmp(IcmpHeader),
    /// A protocol this decoder does not open (or a fragment, see [`Packet::fragment`]).
    Other {
        proto: IpProto,
    },
    /// The transport header was malformed (see the packet's anomalies).
    Invalid {
        proto: IpProto,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    /// The length field: header and data.
    pub length: u16,
    pub checksum: u16,
}

/// ICMP or ICMPv6 (which, is the packet's IP version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpHeader {
    pub icmp_type: u8,
    pub code: u8,
    /// Identifier and sequence number of echo requests and replies.
    pub echo: Option<(u16, u16)>,
    /// For error messages (unreachable, time exceeded, ...): the packet that caused the error, as
    /// quoted in it. Suricata files such errors under the quoted packet's flow.
    pub quoted: Option<QuotedPacket>,
}

/// The start of the packet an ICMP error quotes (RFC 792, RFC 4443 section 2.4 c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProto,
    /// Ports of a quoted TCP or UDP header, when its first 4 bytes were quoted; else 0.
    pub src_port: u16,
    pub dst_port: u16,
}

/// TCP flags, as the 8 bits of the header (CWR..FIN) plus the ECN-nonce bit above them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    pub const NS: TcpFlags = TcpFlags(0x100);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// Header length in bytes, options included.
    pub header_len: u8,
    pub flags: TcpFlags,
    pub window: u16,
    pub checksum: u16,
    pub urgent: u16,
    pub options: TcpOptions,
}

/// Most SACK blocks that fit in 40 bytes of options (RFC 2018 section 3).
pub const MAX_SACK_BLOCKS: usize = 4;
/// Longest TCP Fast Open cookie (RFC 7413 section 4.1.1).
pub const MAX_TFO_COOKIE_LEN: usize = 16;

/// The TCP options a sensor needs; others are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    sack_blocks: [(u32, u32); MAX_SACK_BLOCKS],
    sack_len: u8,
    /// (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    tfo_cookie: Option<([u8; MAX_TFO_COOKIE_LEN], u8)>,
}

impl TcpOptions {
    /// SACK blocks as (left edge, right edge).
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        &self.sack_blocks[..usize::from(self.sack_len)]
    }

    /// The TCP Fast Open option: `Some(&[])` is a cookie request.
    pub fn tfo_cookie(&self) -> Option<&[u8]> {
        self.tfo_cookie.as_ref().map(|(bytes, len)| &bytes[..usize::from(*len)])
    }

    pub(crate) fn push_sack(&mut self, block: (u32, u32)) {
        if usize::from(self.sack_len) < MAX_SACK_BLOCKS {
            self.sack_blocks[usize::from(self.sack_len)] = block;
            self.sack_len += 1;
        }
    }

    pub(crate) fn set_tfo_cookie(&mut self, cookie: &[u8]) {
        let mut bytes = [0u8; MAX_TFO_COOKIE_LEN];
        let len = cookie.len().min(MAX_TFO_COOKIE_LEN);
        bytes[..len].copy_from_slice(&cookie[..len]);
        // len <= 16 fits a u8.
        self.tfo_cookie = Some((bytes, len as u8));
    }
}

/// What kind of tunnel a packet was peeled out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    Gre,
    Vxlan {
        vni: u32,
    },
    ErspanII {
        session: u16,
    },
    ErspanIII {
        session: u16,
    },
    /// IPv4 or IPv6 carried directly in IPv4 or IPv6 (protocols 4 and 41).
    IpInIp,
}

/// The tunnel an inner packet came out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// The outer packet's addresses, ports and protocol (EVE's `tunnel` object).
    pub outer: FlowKey,
}

/// Checksum results; `None` where not checked (validation off, or nothing to check).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksums {
    /// IPv4 header checksum.
    pub ip: Option<bool>,
    /// TCP, UDP, ICMP or ICMPv6 checksum (not checked on fragments).
    pub transport: Option<bool>,
}

/// Most anomalies kept per packet; further ones are still counted in [`crate::Counters`].
pub const MAX_ANOMALIES_PER_PACKET: usize = 8;

/// The anomalies of one packet, in the order found. A fixed array: decoding allocates nothing
/// per packet for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    items: [Option<Anomaly>; MAX_ANOMALIES_PER_PACKET],
    len: u8,
}

impl Anomalies {
    pub(crate) fn push(&mut self, anomaly: Anomaly) {
        if usize::from(self.len) < MAX_ANOMALIES_PER_PACKET {
            self.items[usize::from(self.len)] = Some(anomaly);
            self.len += 1;
        }
    }

    pub(crate) fn take(&mut self) -> Anomalies {
        std::mem::take(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = Anomaly> + '_ {
        self.items[..usize::from(self.len)].iter().flatten().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether an anomaly with this event name (`ipv4.trunc_pkt`) is present.
    pub fn contains(&self, event: &str) -> bool {
        self.iter().any(|a| a.event == event)
    }
}
