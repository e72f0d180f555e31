//! Weir's packet decoder: link layer to transport, tunnels, and IP defragmentation.
//!
//! Sans-IO: [`Decoder::decode`] takes a packet timestamp, a link type and a frame, and hands every
//! packet the frame yields to a callback, borrowed from the frame. One frame can yield several
//! packets: a tunnel's outer packet and then its inner one, or a fragment and then the datagram
//! it completed. Malformed input never fails the call: it becomes an anomaly named as Suricata's
//! decoder events are (`ipv4.trunc_pkt`, `tcp.hlen_too_small`, ...), on the packet when there
//! is one, else handed to [`Decoder::decode_with_anomalies`]'s second callback. EVE writes these
//! under `anomaly.event` with Suricata's `decoder.` prefix.
//!
//! Supported: Ethernet, Linux SLL and SLL2, raw IPv4/IPv6, BSD NULL and LOOP; 802.1Q/QinQ VLANs
//! (three ids kept, as Suricata), MPLS, PPPoE sessions; IPv4 with options, IPv6 with extension
//! headers; TCP (with options), UDP, ICMP, ICMPv6; GRE (including transparent Ethernet bridging),
//! ERSPAN I/II/III, VXLAN, IP-in-IP and IPv6-in-IPv4/IPv6.

mod checksum;
mod config;
mod counters;
mod decoder;
mod defrag;
mod packet;

pub use checksum::{internet_checksum, transport_verifies};
pub use config::{ConfigError, DecodeConfig, DefragConfig, OverlapPolicy};
pub use counters::{Counters, DefragStats};
pub use decoder::{Decoder, MAX_LAYERS};
pub use defrag::{MAX_DATAGRAM_LEN, MAX_DATAGRAM_MEMORY};
pub use packet::{
    Anomalies, Checksums, Fragment, IcmpHeader, IpLayer, IpVersion, MAX_ANOMALIES_PER_PACKET, MAX_SACK_BLOCKS,
    MAX_TFO_COOKIE_LEN, Packet, QuotedPacket, TcpFlags, TcpHeader, TcpOptions, Transport, Tunnel, TunnelKind,
    UdpHeader,
};
