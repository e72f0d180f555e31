//! Packet builders: Ethernet, VLAN, IPv4/IPv6 (with fragments), TCP, UDP, ICMP, tunnels.
//!
//! Every builder returns the bytes of its layer with the layers inside it appended, with lengths
//! and checksums filled in, so a test composes a frame inside out:
//! `ethernet(MAC_A, MAC_B, &[6], ETHERTYPE_IPV4, &ipv4(&Ipv4::new(a, b, TCP), &tcp(...)))`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_TEB: u16 = 0x6558;
pub const ETHERTYPE_ERSPAN_II: u16 = 0x88be;
pub const ETHERTYPE_ERSPAN_III: u16 = 0x22eb;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_FRAGMENT: u8 = 44;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_ICMPV6: u8 = 58;

pub const MAC_A: [u8; 6] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05];
pub const MAC_B: [u8; 6] = [0x05, 0x04, 0x03, 0x02, 0x01, 0x00];

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// RFC 1071 checksum of `bytes` (checksum field zeroed by the caller).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("source and destination must be the same IP version"),
    }
    p
}

/// Fills the checksum at `at` of a TCP/UDP/ICMPv6 message over its pseudo-header.
fn fill_transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &mut [u8], at: usize) {
    segment[at] = 0;
    segment[at + 1] = 0;
    let mut all = pseudo_header(src, dst, proto, segment.len());
    all.extend_from_slice(segment);
    let mut sum = internet_checksum(&all);
    if proto == PROTO_UDP && sum == 0 {
        sum = 0xffff;
    }
    segment[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// An Ethernet II frame, with 802.1Q tags (outermost first) when `vlans` is not empty.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let tpids: Vec<u16> = vlans.iter().map(|_| ETHERTYPE_VLAN).collect();
    ethernet_tagged(dst, src, &tpids, vlans, ethertype, payload)
}

/// An Ethernet frame whose VLAN tags use the given TPIDs (0x8100, 0x88a8, 0x9100).
pub fn ethernet_tagged(
    dst: [u8; 6],
    src: [u8; 6],
    tpids: &[u16],
    vlans: &[u16],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, id) in tpids.iter().zip(vlans) {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An MPLS label stack (bottom-of-stack set on the last label, TTL 64) before `payload`.
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        let entry = (label << 12) | (bos << 8) | 64;
        f.extend_from_slice(&entry.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// IPv4 header fields; `ipv4` fills length and checksum.
#[derive(Clone, Debug)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub fragment_offset: u16,
    /// Options, padded by the caller to a multiple of 4 bytes.
    pub options: Vec<u8>,
}

impl Ipv4 {
    pub fn new(src: [u8; 4], dst: [u8; 4], proto: u8) -> Self {
        Ipv4 {
            src: Ipv4Addr::from(src),
            dst: Ipv4Addr::from(dst),
            proto,
            ttl: 64,
            id: 1,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            options: Vec::new(),
        }
    }
}

/// An IPv4 packet with a correct total length and header checksum.
pub fn ipv4(h: &Ipv4, payload: &[u8]) -> Vec<u8> {
    assert!(
        h.options.len().is_multiple_of(4) && h.options.len() <= 40,
        "options must be padded to 4 bytes"
    );
    let header_len = 20 + h.options.len();
    let mut p = Vec::with_capacity(header_len + payload.len());
    p.push(0x40 | (header_len / 4) as u8);
    p.push(0);
    p.extend_from_slice(&((header_len + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&h.id.to_be_bytes());
    let mut frag = h.fragment_offset / 8;
    if h.dont_fragment {
        frag |= 0x4000;
    }
    if h.more_fragments {
        frag |= 0x2000;
    }
    p.extend_from_slice(&frag.to_be_bytes());
    p.push(h.ttl);
    p.push(h.proto);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&h.src.octets());
    p.extend_from_slice(&h.dst.octets());
    p.extend_from_slice(&h.options);
    let sum = internet_checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; `extension` is inserted between the fixed header and `payload` as is (the
/// caller chains its next-header fields, `next_header` names the first).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, hop_limit: u8, extension: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + extension.len() + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&((extension.len() + payload.len()) as u16).to_be_bytes());
    p.push(next_header);
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(extension);
    p.extend_from_slice(payload);
    p
}

/// TCP header fields; `tcp` fills data offset and checksum.
#[derive(Clone, Debug)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Raw options, padded by the caller to a multiple of 4 bytes.
    pub options: Vec<u8>,
}

impl Tcp {
    pub fn new(src_port: u16, dst_port: u16, seq: u32, flags: u8) -> Self {
        Tcp {
            src_port,
            dst_port,
            seq,
            ack: 0,
            flags,
            window: 8192,
            options: Vec::new(),
        }
    }
}

/// A TCP segment with a correct checksum for the given addresses.
pub fn tcp(src: IpAddr, dst: IpAddr, h: &Tcp, payload: &[u8]) -> Vec<u8> {
    assert!(
        h.options.len().is_multiple_of(4) && h.options.len() <= 40,
        "options must be padded to 4 bytes"
    );
    let header_len = 20 + h.options.len();
    let mut s = Vec::with_capacity(header_len + payload.len());
    s.extend_from_slice(&h.src_port.to_be_bytes());
    s.extend_from_slice(&h.dst_port.to_be_bytes());
    s.extend_from_slice(&h.seq.to_be_bytes());
    s.extend_from_slice(&h.ack.to_be_bytes());
    s.push(((header_len / 4) as u8) << 4);
    s.push(h.flags);
    s.extend_from_slice(&h.window.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(&h.options);
    s.extend_from_slice(payload);
    fill_transport_checksum(src, dst, PROTO_TCP, &mut s, 16);
    s
}

/// A UDP datagram with a correct length and checksum.
pub fn udp(src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    fill_transport_checksum(src, dst, PROTO_UDP, &mut d, 6);
    d
}

/// An ICMP message: type, code, checksum, then `rest` (for echo: identifier, sequence, data).
pub fn icmpv4(icmp_type: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(rest);
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An ICMPv6 message with its pseudo-header checksum.
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, icmp_type: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(rest);
    fill_transport_checksum(IpAddr::V6(src), IpAddr::V6(dst), PROTO_ICMPV6, &mut m, 2);
    m
}

/// Echo identifier, sequence and data: the `rest` of an echo request or reply.
pub fn echo(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(4 + data.len());
    r.extend_from_slice(&id.to_be_bytes());
    r.extend_from_slice(&seq.to_be_bytes());
    r.extend_from_slice(data);
    r
}

/// Splits an IPv4 packet (no options are copied past the first fragment, as RFC 791 allows for
/// non-copied options; these builders make none) into fragments of at most `size` data bytes
/// (rounded down to a multiple of 8).
pub fn fragment_ipv4(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let data = &packet[header_len..];
    let step = (size / 8).max(1) * 8;
    data.chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * step;
            ipv4_fragment_of(packet, offset, offset + chunk.len() < data.len(), chunk)
        })
        .collect()
}

/// One IPv4 fragment carrying `data` at byte `offset`, with the header of `packet` (any data).
pub fn ipv4_fragment_of(packet: &[u8], offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let mut f = packet[..header_len].to_vec();
    f[2..4].copy_from_slice(&((header_len + data.len()) as u16).to_be_bytes());
    let keep_df = u16::from_be_bytes([f[6], f[7]]) & 0x4000;
    let field = keep_df | if more { 0x2000 } else { 0 } | (offset / 8) as u16;
    f[6..8].copy_from_slice(&field.to_be_bytes());
    f[10] = 0;
    f[11] = 0;
    let sum = internet_checksum(&f);
    f[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// An IPv6 fragment header (8 bytes).
pub fn ipv6_fragment_header(next_header: u8, offset: usize, more: bool, id: u32) -> [u8; 8] {
    let field = (offset as u16 & 0xfff8) | u16::from(more);
    let mut h = [0u8; 8];
    h[0] = next_header;
    h[2..4].copy_from_slice(&field.to_be_bytes());
    h[4..8].copy_from_slice(&id.to_be_bytes());
    h
}

/// Splits an IPv6 packet without extension headers into fragments of at most `size` data bytes
/// (rounded down to a multiple of 8), each with a fragment header of identification `id`.
pub fn fragment_ipv6(packet: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
    let next_header = packet[6];
    let data = &packet[40..];
    let step = (size / 8).max(1) * 8;
    data.chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * step;
            ipv6_fragment_of(
                packet,
                next_header,
                id,
                offset,
                offset + chunk.len() < data.len(),
                chunk,
            )
        })
        .collect()
}

/// One IPv6 fragment of `packet`'s addresses carrying `data` at byte `offset`.
pub fn ipv6_fragment_of(packet: &[u8], next_header: u8, id: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[8..24]).expect("16 bytes"));
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[24..40]).expect("16 bytes"));
    let header = ipv6_fragment_header(next_header, offset, more, id);
    ipv6(src, dst, PROTO_FRAGMENT, packet[7], &header, data)
}

/// A GRE (RFC 2784/2890) header with optional key and sequence number, then `payload`.
pub fn gre(protocol: u16, key: Option<u32>, sequence: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let mut flags = 0u16;
    if key.is_some() {
        flags |= 0x2000;
    }
    if sequence.is_some() {
        flags |= 0x1000;
    }
    let mut g = Vec::new();
    g.extend_from_slice(&flags.to_be_bytes());
    g.extend_from_slice(&protocol.to_be_bytes());
    if let Some(k) = key {
        g.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = sequence {
        g.extend_from_slice(&s.to_be_bytes());
    }
    g.extend_from_slice(payload);
    g
}

/// A VXLAN header (I flag set) for `vni`, then the inner Ethernet frame: a UDP payload.
pub fn vxlan(vni: u32, inner_frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner_frame);
    v
}

/// An ERSPAN type II header (version 1), then the mirrored frame: a GRE payload (use GRE with a
/// sequence number and protocol 0x88be).
pub fn erspan2(session: u16, vlan: u16, index: u32, inner_frame: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&((1u16 << 12) | (vlan & 0x0fff)).to_be_bytes());
    e.extend_from_slice(&(session & 0x03ff).to_be_bytes());
    e.extend_from_slice(&(index & 0x000f_ffff).to_be_bytes());
    e.extend_from_slice(inner_frame);
    e
}

/// An ERSPAN type III header (version 2, no platform sub-header), then the mirrored frame: a GRE
/// payload with protocol 0x22eb.
pub fn erspan3(session: u16, vlan: u16, timestamp: u32, inner_frame: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&((2u16 << 12) | (vlan & 0x0fff)).to_be_bytes());
    e.extend_from_slice(&(session & 0x03ff).to_be_bytes());
    e.extend_from_slice(&timestamp.to_be_bytes());
    e.extend_from_slice(&[0, 0, 0, 0]);
    e.extend_from_slice(inner_frame);
    e
}

/// Linux cooked capture (SLL) header for an outgoing packet of `protocol`, then `payload`.
pub fn linux_sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 4, 0, 1, 0, 6];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked capture v2 (SLL2) header, then `payload`.
pub fn linux_sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&[0, 1, 4, 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(&Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], PROTO_TCP), &[0; 8]);
        assert_eq!(internet_checksum(&p[..20]), 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 28);
    }

    #[test]
    fn fragments_cover_the_data_in_multiples_of_8() {
        let p = ipv4(&Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], PROTO_UDP), &[7; 20]);
        let frags = fragment_ipv4(&p, 8);
        assert_eq!(frags.len(), 3);
        assert_eq!(frags[1][6..8], [0x20, 0x01]);
        assert_eq!(frags[2][6..8], [0x00, 0x02]);
        assert_eq!(frags[2].len(), 24);
    }
}
