//! The decoder: link layer, VLAN, MPLS, IPv4/IPv6, transport, tunnels and defragmentation.
//!
//! Every read goes through [`be16`]/[`be32`]/[`byte`], which return 0 past the end of a slice, and
//! every layer checks its length first and raises an anomaly when it is short, so no input can
//! make the decoder panic; a zero read past the end is unreachable after those checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use weir_core::{Anomaly, IpProto, LinkType, Timestamp, Vlans};

use crate::checksum::{transport_verifies, verifies};
use crate::config::DecodeConfig;
use crate::counters::Counters;
use crate::defrag::{self, Defragmenter, FragKey, FragmentIn};
use crate::packet::{
    Anomalies, Checksums, Fragment, IcmpHeader, IpLayer, IpVersion, Packet, QuotedPacket, TcpFlags, TcpHeader,
    TcpOptions, Transport, Tunnel, TunnelKind, UdpHeader,
};

/// Most nested decode passes (tunnels plus rebuilt datagrams) for one frame, as Suricata's
/// `decoder.max-layers` default: a crafted frame cannot recurse without end.
pub const MAX_LAYERS: u8 = 16;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_II: u16 = 0x88be;
const ETHERTYPE_ERSPAN_III: u16 = 0x22eb;
const ETHERTYPE_PPP: u16 = 0x880b;

fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([byte(b, at), byte(b, at + 1)])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([byte(b, at), byte(b, at + 1), byte(b, at + 2), byte(b, at + 3)])
}

fn tail(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// Turns frames into packets. One per worker: it owns the defragmentation state.
pub struct Decoder {
    config: DecodeConfig,
    defrag: Defragmenter,
    counters: Counters,
}

/// Where a decode pass is: which bytes, what was peeled off, what went wrong so far.
#[derive(Clone, Copy)]
struct Ctx<'f> {
    ts: Timestamp,
    frame: &'f [u8],
    link: LinkType,
    vlans: Vlans,
    depth: u8,
    tunnel: Option<Tunnel>,
    reassembled: bool,
    layers: u8,
    anomalies: Anomalies,
    /// Stop at the first tunnel: hand over the packet carrying it, decode nothing inside.
    outer_layer_only: bool,
}

struct Sinks<'s> {
    on_packet: &'s mut dyn FnMut(&Packet<'_>),
    on_anomaly: &'s mut dyn FnMut(Timestamp, Anomaly),
}

/// A tunnel found in a packet's payload, opened after the carrying packet is handed over.
struct Inner<'f> {
    kind: TunnelKind,
    bytes: &'f [u8],
    link: LinkType,
    /// IP version a bare-IP tunnel announced, checked against the inner header.
    expect: Option<IpVersion>,
    extra_vlan: Option<u16>,
}

/// The result of decoding above IP.
struct Upper<'f> {
    transport: Transport,
    payload: &'f [u8],
    checksum: Option<bool>,
    inner: Option<Inner<'f>>,
}

impl Decoder {
    pub fn new(config: DecodeConfig) -> Self {
        let defrag = Defragmenter::new(config.defrag.clone());
        Decoder {
            config,
            defrag,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Decodes one frame and hands every packet it yields to `on_packet`: the packet itself, then
    /// for a tunnel the inner packet, and for the fragment that completes a datagram the rebuilt
    /// datagram. Anomalies of frames that never reach IP are counted but not handed over; use
    /// [`Decoder::decode_with_anomalies`] to receive them.
    pub fn decode(&mut self, ts: Timestamp, link: LinkType, frame: &[u8], on_packet: &mut dyn FnMut(&Packet<'_>)) {
        self.decode_with_anomalies(ts, link, frame, on_packet, &mut |_, _| {});
    }

    /// As [`Decoder::decode`], and hands `on_anomaly` the anomalies that no packet carries (the
    /// frame, or a tunnelled frame, stopped before an IP layer).
    pub fn decode_with_anomalies(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        on_packet: &mut dyn FnMut(&Packet<'_>),
        on_anomaly: &mut dyn FnMut(Timestamp, Anomaly),
    ) {
        self.run(ts, link, frame, false, &mut Sinks { on_packet, on_anomaly });
    }

    /// As [`Decoder::decode_with_anomalies`], but stops at the frame's first tunnel: the packet
    /// carrying it is handed over (`is_tunnel_outer`), nothing inside it is decoded. For a worker
    /// that keeps a tunnel's outer flow while other workers take the packets it carries.
    pub fn decode_outer_layer(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        on_packet: &mut dyn FnMut(&Packet<'_>),
        on_anomaly: &mut dyn FnMut(Timestamp, Anomaly),
    ) {
        self.run(ts, link, frame, true, &mut Sinks { on_packet, on_anomaly });
    }

    fn run(&mut self, ts: Timestamp, link: LinkType, frame: &[u8], outer_layer_only: bool, sinks: &mut Sinks<'_>) {
        self.counters.packets += 1;
        self.counters.bytes += frame.len() as u64;
        self.expire(ts);
        let mut ctx = Ctx {
            ts,
            frame,
            link,
            vlans: Vlans::default(),
            depth: 0,
            tunnel: None,
            reassembled: false,
            layers: 0,
            anomalies: Anomalies::default(),
            outer_layer_only,
        };
        self.link(&mut ctx, sinks);
    }

    /// Drops datagrams under reassembly whose time ran out by packet time `now` (also done on every
    /// frame; call it when the capture goes idle).
    pub fn expire(&mut self, now: Timestamp) {
        self.defrag.expire(now);
        self.counters.defrag = self.defrag.stats;
    }

    fn raise(&mut self, ctx: &mut Ctx<'_>, event: &'static str) {
        *self.counters.anomalies.entry(event).or_default() += 1;
        ctx.anomalies.push(Anomaly::decode(event));
    }

    /// The frame stopped before an IP layer: its anomalies go to the caller on their own.
    fn stop(&mut self, ctx: &mut Ctx<'_>, sinks: &mut Sinks<'_>) {
        if !ctx.anomalies.is_empty() {
            self.counters.invalid += 1;
        }
        for a in ctx.anomalies.take().iter() {
            (sinks.on_anomaly)(ctx.ts, a);
        }
    }

    fn fail(&mut self, ctx: &mut Ctx<'_>, event: &'static str, sinks: &mut Sinks<'_>) {
        self.raise(ctx, event);
        self.stop(ctx, sinks);
    }

    fn link(&mut self, ctx: &mut Ctx<'_>, sinks: &mut Sinks<'_>) {
        let f = ctx.frame;
        match ctx.link {
            LinkType::ETHERNET => self.ethernet(ctx, 0, sinks),
            LinkType::LINUX_SLL => {
                self.counters.sll += 1;
                if f.len() < 16 {
                    return self.fail(ctx, "sll.pkt_too_small", sinks);
                }
                self.ethertype(ctx, be16(f, 14), 16, sinks)
            }
            LinkType::LINUX_SLL2 => {
                self.counters.sll += 1;
                if f.len() < 20 {
                    return self.fail(ctx, "sll.pkt_too_small", sinks);
                }
                self.ethertype(ctx, be16(f, 0), 20, sinks)
            }
            LinkType::NULL | LinkType::LOOP => {
                self.counters.null += 1;
                if f.len() < 4 {
                    return self.fail(ctx, "ltnull.pkt_too_small", sinks);
                }
                let raw = [byte(f, 0), byte(f, 1), byte(f, 2), byte(f, 3)];
                // NULL is in the capturing host's byte order, which the file does not record: try
                // both. LOOP is always network order.
                let family = if ctx.link == LinkType::LOOP {
                    loopback_family(u32::from_be_bytes(raw))
                } else {
                    loopback_family(u32::from_le_bytes(raw)).or_else(|| loopback_family(u32::from_be_bytes(raw)))
                };
                match family {
                    Some(version) => self.ip(ctx, 4, Some(version), sinks),
                    None => self.fail(ctx, "ltnull.unsupported_type", sinks),
                }
            }
            LinkType::IPV4 => {
                self.counters.raw += 1;
                self.ip(ctx, 0, Some(IpVersion::V4), sinks)
            }
            LinkType::IPV6 => {
                self.counters.raw += 1;
                self.ip(ctx, 0, Some(IpVersion::V6), sinks)
            }
            LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => {
                self.counters.raw += 1;
                match byte(f, 0) >> 4 {
                    4 | 6 => self.ip(ctx, 0, None, sinks),
                    _ => self.fail(ctx, "ipraw.invalid_ip_version", sinks),
                }
            }
            _ => {
                self.counters.unsupported_link += 1;
                self.stop(ctx, sinks)
            }
        }
    }

    fn ethernet(&mut self, ctx: &mut Ctx<'_>, at: usize, sinks: &mut Sinks<'_>) {
        self.counters.ethernet += 1;
        if ctx.frame.len() < at + 14 {
            return self.fail(ctx, "ethernet.pkt_too_small", sinks);
        }
        let ethertype = be16(ctx.frame, at + 12);
        self.ethertype(ctx, ethertype, at + 14, sinks)
    }

    fn ethertype(&mut self, ctx: &mut Ctx<'_>, ethertype: u16, at: usize, sinks: &mut Sinks<'_>) {
        let f = ctx.frame;
        match ethertype {
            ETHERTYPE_IPV4 => self.ip(ctx, at, Some(IpVersion::V4), sinks),
            ETHERTYPE_IPV6 => self.ip(ctx, at, Some(IpVersion::V6), sinks),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                if f.len() < at + 4 {
                    return self.fail(ctx, "vlan.header_too_small", sinks);
                }
                let layer = ctx.vlans.as_slice().len();
                if !ctx.vlans.push(be16(f, at) & 0x0fff) {
                    // Suricata stops here: a fourth tag would merge flows that differ in it.
                    return self.fail(ctx, "vlan.too_many_layers", sinks);
                }
                match layer {
                    0 => self.counters.vlan += 1,
                    1 => self.counters.vlan_qinq += 1,
                    _ => self.counters.vlan_qinqinq += 1,
                }
                self.ethertype(ctx, be16(f, at + 2), at + 4, sinks)
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => self.mpls(ctx, at, sinks),
            ETHERTYPE_PPPOE_SESSION => {
                // RFC 2516 session header (6 bytes), then the PPP protocol (2 bytes).
                if f.len() < at + 8 {
                    return self.fail(ctx, "pppoe.pkt_too_small", sinks);
                }
                match be16(f, at + 6) {
                    0x0021 => self.ip(ctx, at + 8, Some(IpVersion::V4), sinks),
                    0x0057 => self.ip(ctx, at + 8, Some(IpVersion::V6), sinks),
                    _ => self.stop(ctx, sinks),
                }
            }
            ETHERTYPE_ARP => {
                self.counters.arp += 1;
                self.stop(ctx, sinks)
            }
            _ => self.stop(ctx, sinks),
        }
    }

    fn mpls(&mut self, ctx: &mut Ctx<'_>, mut at: usize, sinks: &mut Sinks<'_>) {
        self.counters.mpls += 1;
        let f = ctx.frame;
        // The stack ends at the bottom-of-stack bit; each entry takes 4 bytes of a finite frame.
        let label = loop {
            if f.len() < at + 4 {
                return self.fail(ctx, "mpls.header_too_small", sinks);
            }
            let entry = be32(f, at);
            at += 4;
            if entry & 0x100 != 0 {
                break entry >> 12;
            }
        };
        match label {
            1 => self.raise(ctx, "mpls.bad_label_router_alert"),
            3 => self.raise(ctx, "mpls.bad_label_implicit_null"),
            4..=15 => self.raise(ctx, "mpls.bad_label_reserved"),
            _ => {}
        }
        if f.len() <= at {
            return self.fail(ctx, "mpls.pkt_too_small", sinks);
        }
        match byte(f, at) >> 4 {
            4 => self.ip(ctx, at, Some(IpVersion::V4), sinks),
            6 => self.ip(ctx, at, Some(IpVersion::V6), sinks),
            // An Ethernet pseudowire behind the RFC 4385 control word.
            0 => self.ethernet(ctx, at + 4, sinks),
            _ => self.fail(ctx, "mpls.unknown_payload_type", sinks),
        }
    }

    fn ip(&mut self, ctx: &mut Ctx<'_>, at: usize, expect: Option<IpVersion>, sinks: &mut Sinks<'_>) {
        let version = byte(ctx.frame, at) >> 4;
        match (expect, version) {
            (Some(IpVersion::V4), 4) | (None, 4) => self.ipv4(ctx, at, sinks),
            (Some(IpVersion::V6), 6) | (None, 6) => self.ipv6(ctx, at, sinks),
            (Some(IpVersion::V4), _) => {
                if ctx.frame.len() <= at {
                    self.fail(ctx, "ipv4.pkt_too_small", sinks)
                } else {
                    self.fail(ctx, "ipv4.wrong_ip_version", sinks)
                }
            }
            (Some(IpVersion::V6), _) => {
                if ctx.frame.len() <= at {
                    self.fail(ctx, "ipv6.pkt_too_small", sinks)
                } else {
                    self.fail(ctx, "ipv6.wrong_ip_version", sinks)
                }
            }
            (None, _) => self.fail(ctx, "ipraw.invalid_ip_version", sinks),
        }
    }

    fn ipv4(&mut self, ctx: &mut Ctx<'_>, at: usize, sinks: &mut Sinks<'_>) {
        let b = tail(ctx.frame, at);
        if b.len() < 20 {
            return self.fail(ctx, "ipv4.pkt_too_small", sinks);
        }
        let header_len = usize::from(byte(b, 0) & 0x0f) * 4;
        if header_len < 20 {
            return self.fail(ctx, "ipv4.hlen_too_small", sinks);
        }
        let total_len = usize::from(be16(b, 2));
        if total_len < header_len {
            return self.fail(ctx, "ipv4.iplen_smaller_than_hlen", sinks);
        }
        if b.len() < total_len {
            return self.fail(ctx, "ipv4.trunc_pkt", sinks);
        }
        self.counters.ipv4 += 1;
        // Link-layer padding past the stated length is not part of the packet.
        let packet = &b[..total_len];
        let header = &packet[..header_len];
        self.ipv4_options(ctx, &header[20..]);
        let frag_field = be16(b, 6);
        let proto = IpProto(byte(b, 9));
        let ip = IpLayer {
            version: IpVersion::V4,
            src: IpAddr::V4(Ipv4Addr::new(byte(b, 12), byte(b, 13), byte(b, 14), byte(b, 15))),
            dst: IpAddr::V4(Ipv4Addr::new(byte(b, 16), byte(b, 17), byte(b, 18), byte(b, 19))),
            ttl: byte(b, 8),
            proto,
            total_len,
            header,
            id: u32::from(be16(b, 4)),
            tos: byte(b, 1),
            dont_fragment: frag_field & 0x4000 != 0,
        };
        let ip_checksum = self.config.checksum_validation.then(|| verifies(header));
        if proto == IpProto::ICMPV6 {
            self.raise(ctx, "ipv4.icmpv6");
        }
        let more = frag_field & 0x2000 != 0;
        let offset = u32::from(frag_field & 0x1fff) * 8;
        let data = &packet[header_len..];
        if more || offset > 0 {
            let fragment = Fragment {
                offset,
                more,
                id: ip.id,
            };
            let frag_in = FragmentIn {
                key: self.frag_key(ctx, &ip, ip.id, proto.0),
                version: IpVersion::V4,
                offset,
                more,
                data,
                link_header: &ctx.frame[..at.min(ctx.frame.len())],
                ip_header: header,
                next_header_pos: 0,
                next_header: 0,
            };
            return self.fragment(ctx, ip, ip_checksum, fragment, &frag_in, sinks);
        }
        self.upper(ctx, ip, ip_checksum, data, sinks);
    }

    fn ipv4_options(&mut self, ctx: &mut Ctx<'_>, mut opts: &[u8]) {
        // Option types from the IANA "IP Option Numbers" registry that hosts still send.
        const KNOWN: [u8; 9] = [7, 25, 68, 130, 131, 133, 134, 136, 137];
        const ROUTER_ALERT: u8 = 148;
        let mut seen = [false; 256];
        while let [kind, rest @ ..] = opts {
            match *kind {
                0 => break,
                1 => opts = rest,
                kind => {
                    let Some(&len) = rest.first() else {
                        self.raise(ctx, "ipv4.opt_invalid_len");
                        break;
                    };
                    let len = usize::from(len);
                    if len < 2 || len > opts.len() {
                        self.raise(ctx, "ipv4.opt_invalid_len");
                        break;
                    }
                    if seen[usize::from(kind)] {
                        self.raise(ctx, "ipv4.opt_duplicate");
                    }
                    seen[usize::from(kind)] = true;
                    if !KNOWN.contains(&kind) && kind != ROUTER_ALERT {
                        self.raise(ctx, "ipv4.opt_unknown");
                    }
                    opts = &opts[len..];
                }
            }
        }
    }

    fn ipv6(&mut self, ctx: &mut Ctx<'_>, at: usize, sinks: &mut Sinks<'_>) {
        let b = tail(ctx.frame, at);
        if b.len() < 40 {
            return self.fail(ctx, "ipv6.pkt_too_small", sinks);
        }
        let payload_len = usize::from(be16(b, 4));
        if b.len() < 40 + payload_len {
            return self.fail(ctx, "ipv6.trunc_pkt", sinks);
        }
        self.counters.ipv6 += 1;
        let packet = &b[..40 + payload_len];
        let mut src = [0u8; 16];
        src.copy_from_slice(&packet[8..24]);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&packet[24..40]);
        let mut ip = IpLayer {
            version: IpVersion::V6,
            src: IpAddr::V6(Ipv6Addr::from(src)),
            dst: IpAddr::V6(Ipv6Addr::from(dst)),
            ttl: byte(b, 7),
            proto: IpProto(byte(b, 6)),
            total_len: 40 + payload_len,
            header: &packet[..40],
            id: 0,
            tos: ((be16(b, 0) >> 4) & 0xff) as u8,
            dont_fragment: false,
        };

        // Walk the extension headers (RFC 8200 section 4). Each takes at least 8 bytes of a
        // bounded packet, so the walk ends.
        let mut next = byte(b, 6);
        let mut next_pos = 6usize;
        let mut pos = 40usize;
        let (mut hbh, mut rh, mut fh, mut ah, mut dst_since_rh) = (0u8, 0u8, 0u8, 0u8, 0u8);
        loop {
            match next {
                0 | 43 | 60 | 51 => {
                    if packet.len() < pos + 8 {
                        return self.fail(ctx, "ipv6.trunc_exthdr", sinks);
                    }
                    let len = if next == 51 {
                        (usize::from(byte(packet, pos + 1)) + 2) * 4
                    } else {
                        (usize::from(byte(packet, pos + 1)) + 1) * 8
                    };
                    if packet.len() < pos + len {
                        return self.fail(ctx, "ipv6.trunc_exthdr", sinks);
                    }
                    let body = &packet[pos + 2..pos + len];
                    match next {
                        0 => {
                            hbh += 1;
                            if hbh > 1 {
                                self.raise(ctx, "ipv6.exthdr_dupl_hh");
                            }
                            self.ipv6_options(ctx, body, true);
                        }
                        43 => {
                            rh += 1;
                            dst_since_rh = 0;
                            if rh > 1 {
                                self.raise(ctx, "ipv6.exthdr_dupl_rh");
                            }
                            if byte(packet, pos + 2) == 0 {
                                self.raise(ctx, "ipv6.rh_type_0");
                            }
                        }
                        60 => {
                            // Destination options may come once before a routing header and once after.
                            dst_since_rh += 1;
                            if dst_since_rh > 1 {
                                self.raise(ctx, "ipv6.exthdr_dupl_dh");
                            }
                            self.ipv6_options(ctx, body, false);
                        }
                        _ => {
                            ah += 1;
                            if ah > 1 {
                                self.raise(ctx, "ipv6.exthdr_dupl_ah");
                            }
                            if be16(packet, pos + 2) != 0 {
                                self.raise(ctx, "ipv6.exthdr_ah_res_not_null");
                            }
                        }
                    }
                    next = byte(packet, pos);
                    next_pos = pos;
                    pos += len;
                }
                44 => {
                    if packet.len() < pos + 8 {
                        return self.fail(ctx, "ipv6.trunc_exthdr", sinks);
                    }
                    fh += 1;
                    if fh > 1 {
                        self.raise(ctx, "ipv6.exthdr_dupl_fh");
                    }
                    if byte(packet, pos + 1) != 0 {
                        self.raise(ctx, "ipv6.fh_non_zero_reserved_field");
                    }
                    let field = be16(packet, pos + 2);
                    let offset = u32::from(field & 0xfff8);
                    let more = field & 1 != 0;
                    let id = be32(packet, pos + 4);
                    let frag_next = byte(packet, pos);
                    ip.id = id;
                    if offset == 0 && !more {
                        // RFC 6946: an atomic fragment is processed on its own.
                        self.raise(ctx, "ipv6.exthdr_useless_fh");
                        next = frag_next;
                        next_pos = pos;
                        pos += 8;
                        continue;
                    }
                    if offset == 0 && frag_next == 44 {
                        self.raise(ctx, "ipv6.exthdr_dupl_fh");
                    }
                    ip.proto = IpProto(frag_next);
                    ip.header = &packet[..pos + 8];
                    let frag_in = FragmentIn {
                        // RFC 8200 section 4.5: fragments of one packet may name different next
                        // headers (only the first one's counts), so IPv6 is not keyed on it.
                        key: self.frag_key(ctx, &ip, id, 0),
                        version: IpVersion::V6,
                        offset,
                        more,
                        data: &packet[pos + 8..],
                        link_header: &ctx.frame[..at.min(ctx.frame.len())],
                        ip_header: &packet[..pos],
                        next_header_pos: next_pos,
                        next_header: frag_next,
                    };
                    let fragment = Fragment { offset, more, id };
                    return self.fragment(ctx, ip, None, fragment, &frag_in, sinks);
                }
                59 => {
                    if packet.len() > pos {
                        self.raise(ctx, "ipv6.data_after_none_header");
                    }
                    break;
                }
                _ => break,
            }
        }
        ip.proto = IpProto(next);
        ip.header = &packet[..pos];
        self.upper(ctx, ip, None, &packet[pos..], sinks);
    }

    fn ipv6_options(&mut self, ctx: &mut Ctx<'_>, mut opts: &[u8], hop_by_hop: bool) {
        // Option types from the IANA "Destination Options and Hop-by-Hop Options" registry.
        const KNOWN: [u8; 12] = [0x04, 0x05, 0x07, 0x26, 0x63, 0x6d, 0x8b, 0x8c, 0xc2, 0xc9, 0xee, 0x31];
        let mut only_padding = true;
        while let [kind, rest @ ..] = opts {
            if *kind == 0 {
                opts = rest;
                continue;
            }
            let Some(&len) = rest.first() else {
                self.raise(ctx, "ipv6.exthdr_invalid_optlen");
                return;
            };
            let len = usize::from(len);
            if opts.len() < 2 + len {
                self.raise(ctx, "ipv6.exthdr_invalid_optlen");
                return;
            }
            if *kind == 1 {
                if len == 0 {
                    self.raise(ctx, "ipv6.zero_len_padn");
                }
            } else {
                only_padding = false;
                // Low five bits 0x1e mark the RFC 4727 experimental types.
                if !KNOWN.contains(kind) && *kind & 0x1f != 0x1e {
                    self.raise(
                        ctx,
                        if hop_by_hop {
                            "ipv6.hopopts_unknown_opt"
                        } else {
                            "ipv6.dstopts_unknown_opt"
                        },
                    );
                }
            }
            opts = &opts[2 + len..];
        }
        if only_padding {
            self.raise(
                ctx,
                if hop_by_hop {
                    "ipv6.hopopts_only_padding"
                } else {
                    "ipv6.dstopts_only_padding"
                },
            );
        }
    }

    fn frag_key(&self, ctx: &Ctx<'_>, ip: &IpLayer<'_>, id: u32, proto: u8) -> FragKey {
        FragKey {
            src: ip.src,
            dst: ip.dst,
            id,
            proto,
            vlans: ctx.vlans,
            tunnel_depth: ctx.depth,
        }
    }

    /// Hands over a fragment, then the datagram it completes, if any.
    fn fragment(
        &mut self,
        ctx: &mut Ctx<'_>,
        ip: IpLayer<'_>,
        ip_checksum: Option<bool>,
        fragment: Fragment,
        frag_in: &FragmentIn<'_>,
        sinks: &mut Sinks<'_>,
    ) {
        let rebuilt = if self.defrag.enabled() {
            let mut events = Vec::new();
            let rebuilt = self.defrag.insert(ctx.ts, frag_in, &mut |e| events.push(e));
            self.counters.defrag = self.defrag.stats;
            for e in events {
                self.raise(ctx, defrag::event(frag_in.version, e));
            }
            rebuilt
        } else {
            None
        };
        let packet = Packet {
            ts: ctx.ts,
            frame: ctx.frame,
            link: ctx.link,
            vlans: ctx.vlans,
            tunnel_depth: ctx.depth,
            tunnel: ctx.tunnel,
            is_tunnel_outer: false,
            ip,
            transport: Transport::Other { proto: ip.proto },
            payload: frag_in.data,
            fragment: Some(fragment),
            reassembled: ctx.reassembled,
            anomalies: ctx.anomalies.take(),
            checksums: Checksums {
                ip: ip_checksum,
                transport: None,
            },
        };
        self.hand_over(&packet, sinks);
        let Some(rebuilt) = rebuilt else { return };
        let mut inner = Ctx {
            frame: &rebuilt.frame,
            reassembled: true,
            layers: ctx.layers + 1,
            anomalies: Anomalies::default(),
            ..*ctx
        };
        if inner.layers > MAX_LAYERS {
            return self.fail(&mut inner, "too_many_layers", sinks);
        }
        self.ip(&mut inner, rebuilt.ip_offset, None, sinks);
    }

    fn hand_over(&mut self, packet: &Packet<'_>, sinks: &mut Sinks<'_>) {
        self.counters.packets_out += 1;
        (sinks.on_packet)(packet);
    }

    fn upper(
        &mut self,
        ctx: &mut Ctx<'_>,
        ip: IpLayer<'_>,
        ip_checksum: Option<bool>,
        l4: &[u8],
        sinks: &mut Sinks<'_>,
    ) {
        let upper = match ip.proto {
            IpProto::TCP => self.tcp(ctx, &ip, l4),
            IpProto::UDP => self.udp(ctx, &ip, l4),
            IpProto::ICMP if ip.version == IpVersion::V4 => self.icmpv4(ctx, &ip, l4),
            IpProto::ICMPV6 if ip.version == IpVersion::V6 => self.icmpv6(ctx, &ip, l4),
            IpProto::ICMP => {
                self.raise(ctx, "ipv6.icmpv4");
                other(ip.proto, l4)
            }
            IpProto::IPIP | IpProto::IPV6 => self.ip_in_ip(ctx, &ip, l4),
            IpProto::GRE => self.gre(ctx, l4),
            proto => other(proto, l4),
        };
        let mut inner = upper.inner;
        if inner.is_some() && (ctx.depth >= self.config.max_tunnel_depth || ctx.layers >= MAX_LAYERS) {
            self.raise(ctx, "too_many_layers");
            inner = None;
        }
        if matches!(upper.transport, Transport::Invalid { .. }) {
            self.counters.invalid += 1;
        }
        let packet = Packet {
            ts: ctx.ts,
            frame: ctx.frame,
            link: ctx.link,
            vlans: ctx.vlans,
            tunnel_depth: ctx.depth,
            tunnel: ctx.tunnel,
            is_tunnel_outer: inner.is_some(),
            ip,
            transport: upper.transport,
            payload: upper.payload,
            fragment: None,
            reassembled: ctx.reassembled,
            anomalies: ctx.anomalies.take(),
            checksums: Checksums {
                ip: ip_checksum,
                transport: upper.checksum,
            },
        };
        let outer = packet.flow_key();
        self.hand_over(&packet, sinks);
        let (Some(inner), Some(outer)) = (inner, outer) else {
            return;
        };
        if ctx.outer_layer_only {
            return;
        }
        let mut inner_ctx = Ctx {
            ts: ctx.ts,
            frame: inner.bytes,
            link: inner.link,
            vlans: ctx.vlans,
            depth: ctx.depth + 1,
            tunnel: Some(Tunnel {
                kind: inner.kind,
                outer,
            }),
            reassembled: false,
            layers: ctx.layers + 1,
            anomalies: Anomalies::default(),
            outer_layer_only: false,
        };
        if let Some(vlan) = inner.extra_vlan
            && !inner_ctx.vlans.push(vlan)
        {
            return self.fail(&mut inner_ctx, "erspan.too_many_vlan_layers", sinks);
        }
        if inner.link == LinkType::RAW {
            self.ip(&mut inner_ctx, 0, inner.expect, sinks);
        } else {
            self.link(&mut inner_ctx, sinks);
        }
    }

    fn tcp<'f>(&mut self, ctx: &mut Ctx<'_>, ip: &IpLayer<'_>, b: &'f [u8]) -> Upper<'f> {
        if b.len() < 20 {
            self.raise(ctx, "tcp.pkt_too_small");
            return invalid(IpProto::TCP, b);
        }
        let header_len = usize::from(byte(b, 12) >> 4) * 4;
        // As Suricata: a data offset under 5 words leaves a negative option length.
        if header_len < 20 {
            self.raise(ctx, "tcp.invalid_optlen");
            return invalid(IpProto::TCP, b);
        }
        if b.len() < header_len {
            self.raise(ctx, "tcp.hlen_too_small");
            return invalid(IpProto::TCP, b);
        }
        self.counters.tcp += 1;
        let options = self.tcp_options(ctx, &b[20..header_len]);
        let header = TcpHeader {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            seq: be32(b, 4),
            ack: be32(b, 8),
            // A data offset of at most 15 words fits a u8.
            header_len: header_len as u8,
            flags: TcpFlags((u16::from(byte(b, 12) & 1) << 8) | u16::from(byte(b, 13))),
            window: be16(b, 14),
            checksum: be16(b, 16),
            urgent: be16(b, 18),
            options,
        };
        let checksum = self
            .config
            .checksum_validation
            .then(|| transport_verifies(ip.src, ip.dst, 6, b));
        Upper {
            transport: Transport::Tcp(header),
            payload: &b[header_len..],
            checksum,
            inner: None,
        }
    }

    fn tcp_options(&mut self, ctx: &mut Ctx<'_>, mut opts: &[u8]) -> TcpOptions {
        const MSS: u8 = 2;
        const WINDOW_SCALE: u8 = 3;
        const SACK_PERMITTED: u8 = 4;
        const SACK: u8 = 5;
        const TIMESTAMPS: u8 = 8;
        const FAST_OPEN: u8 = 34;
        let mut out = TcpOptions::default();
        let mut seen = [false; 256];
        while let [kind, rest @ ..] = opts {
            match *kind {
                0 => break,
                1 => {
                    opts = rest;
                    continue;
                }
                _ => {}
            }
            let kind = *kind;
            let Some(&len) = rest.first() else {
                self.raise(ctx, "tcp.opt_invalid_len");
                break;
            };
            let len = usize::from(len);
            if len < 2 || len > opts.len() {
                self.raise(ctx, "tcp.opt_invalid_len");
                break;
            }
            let value = &opts[2..len];
            let valid_len = match kind {
                MSS => len == 4,
                WINDOW_SCALE => len == 3,
                SACK_PERMITTED => len == 2,
                SACK => len >= 10 && (len - 2) % 8 == 0,
                TIMESTAMPS => len == 10,
                // RFC 7413: no cookie (a request) or 4 to 16 bytes, even.
                FAST_OPEN => len == 2 || ((6..=18).contains(&len) && len % 2 == 0),
                _ => true,
            };
            if !valid_len {
                self.raise(ctx, "tcp.opt_invalid_len");
            } else if matches!(
                kind,
                MSS | WINDOW_SCALE | SACK_PERMITTED | SACK | TIMESTAMPS | FAST_OPEN
            ) && seen[usize::from(kind)]
            {
                self.raise(ctx, "tcp.opt_duplicate");
            } else {
                seen[usize::from(kind)] = true;
                match kind {
                    MSS => out.mss = Some(be16(value, 0)),
                    WINDOW_SCALE => out.window_scale = Some(byte(value, 0)),
                    SACK_PERMITTED => out.sack_permitted = true,
                    SACK => {
                        for block in value.chunks_exact(8) {
                            out.push_sack((be32(block, 0), be32(block, 4)));
                        }
                    }
                    TIMESTAMPS => out.timestamps = Some((be32(value, 0), be32(value, 4))),
                    FAST_OPEN => out.set_tfo_cookie(value),
                    _ => {}
                }
            }
            opts = &opts[len..];
        }
        out
    }

    fn udp<'f>(&mut self, ctx: &mut Ctx<'_>, ip: &IpLayer<'_>, b: &'f [u8]) -> Upper<'f> {
        if b.len() < 8 {
            self.raise(ctx, "udp.pkt_too_small");
            return invalid(IpProto::UDP, b);
        }
        let length = usize::from(be16(b, 4));
        if length < 8 {
            self.raise(ctx, "udp.hlen_too_small");
            return invalid(IpProto::UDP, b);
        }
        if length > b.len() {
            self.raise(ctx, "udp.hlen_invalid");
            return invalid(IpProto::UDP, b);
        }
        self.counters.udp += 1;
        let header = UdpHeader {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            length: be16(b, 4),
            checksum: be16(b, 6),
        };
        let datagram = &b[..length];
        let payload = &datagram[8..];
        let checksum = self.config.checksum_validation.then(|| {
            // RFC 768: a zero checksum over IPv4 means none was computed.
            (ip.version == IpVersion::V4 && header.checksum == 0) || transport_verifies(ip.src, ip.dst, 17, datagram)
        });
        let inner = if self.config.vxlan_ports.contains(&header.dst_port) {
            self.vxlan(ctx, payload)
        } else {
            None
        };
        Upper {
            transport: Transport::Udp(header),
            payload,
            checksum,
            inner,
        }
    }

    /// RFC 7348: 8 bytes (flags with the I bit, VNI), then an Ethernet frame.
    fn vxlan<'f>(&mut self, ctx: &mut Ctx<'_>, b: &'f [u8]) -> Option<Inner<'f>> {
        if b.len() < 8 + 14 || byte(b, 0) & 0x08 == 0 {
            return None;
        }
        let ethertype = be16(b, 8 + 12);
        if !matches!(
            ethertype,
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_ARP | ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
        ) {
            self.raise(ctx, "vxlan.unknown_payload_type");
            return None;
        }
        self.counters.vxlan += 1;
        Some(Inner {
            kind: TunnelKind::Vxlan { vni: be32(b, 4) >> 8 },
            bytes: &b[8..],
            link: LinkType::ETHERNET,
            expect: None,
            extra_vlan: None,
        })
    }

    fn icmpv4<'f>(&mut self, ctx: &mut Ctx<'_>, _ip: &IpLayer<'_>, b: &'f [u8]) -> Upper<'f> {
        if b.len() < 8 {
            self.raise(ctx, "icmpv4.pkt_too_small");
            return invalid(IpProto::ICMP, b);
        }
        self.counters.icmpv4 += 1;
        let (icmp_type, code) = (byte(b, 0), byte(b, 1));
        // Highest code per type (RFC 792, 950, 1256, 1812, 2521; IANA "ICMP Parameters").
        let max_code = match icmp_type {
            0 | 4 | 8 | 10 | 13..=18 => Some(0),
            3 => Some(15),
            5 => Some(3),
            9 => Some(16),
            11 => Some(1),
            12 => Some(2),
            _ => None,
        };
        match max_code {
            None => self.raise(ctx, "icmpv4.unknown_type"),
            Some(max) if code > max && !(icmp_type == 9 && code == 0) => self.raise(ctx, "icmpv4.unknown_code"),
            _ => {}
        }
        let echo = matches!(icmp_type, 0 | 8).then(|| (be16(b, 4), be16(b, 6)));
        // Destination unreachable, source quench, redirect, time exceeded, parameter problem.
        let quoted = if matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
            self.quoted_ipv4(ctx, &b[8..])
        } else {
            None
        };
        let checksum = self.config.checksum_validation.then(|| verifies(b));
        Upper {
            transport: Transport::Icmp(IcmpHeader {
                icmp_type,
                code,
                echo,
                quoted,
            }),
            payload: &b[8..],
            checksum,
            inner: None,
        }
    }

    fn icmpv6<'f>(&mut self, ctx: &mut Ctx<'_>, ip: &IpLayer<'_>, b: &'f [u8]) -> Upper<'f> {
        if b.len() < 8 {
            self.raise(ctx, "icmpv6.pkt_too_small");
            return invalid(IpProto::ICMPV6, b);
        }
        self.counters.icmpv6 += 1;
        let (icmp_type, code) = (byte(b, 0), byte(b, 1));
        match icmp_type {
            1 if code > 7 => self.raise(ctx, "icmpv6.unknown_code"),
            2 | 128 | 129 if code != 0 => self.raise(ctx, "icmpv6.unknown_code"),
            3 if code > 1 => self.raise(ctx, "icmpv6.unknown_code"),
            4 if code > 10 => self.raise(ctx, "icmpv6.unknown_code"),
            1..=4 | 128..=162 => {}
            100 | 101 | 200 | 201 => self.raise(ctx, "icmpv6.experimentation_type"),
            _ => self.raise(ctx, "icmpv6.unknown_type"),
        }
        // RFC 2710 / 3810: MLD messages are link-local, sent with hop limit 1.
        if matches!(icmp_type, 130 | 131 | 132 | 143) && ip.ttl != 1 {
            self.raise(ctx, "icmpv6.mld_message_with_invalid_hl");
        }
        let echo = matches!(icmp_type, 128 | 129).then(|| (be16(b, 4), be16(b, 6)));
        let quoted = if matches!(icmp_type, 1..=4) {
            self.quoted_ipv6(ctx, &b[8..])
        } else {
            None
        };
        let checksum = self
            .config
            .checksum_validation
            .then(|| transport_verifies(ip.src, ip.dst, 58, b));
        Upper {
            transport: Transport::Icmp(IcmpHeader {
                icmp_type,
                code,
                echo,
                quoted,
            }),
            payload: &b[8..],
            checksum,
            inner: None,
        }
    }

    fn quoted_ipv4(&mut self, ctx: &mut Ctx<'_>, b: &[u8]) -> Option<QuotedPacket> {
        if b.len() < 20 {
            self.raise(ctx, "icmpv4.ipv4_trunc_pkt");
            return None;
        }
        if byte(b, 0) >> 4 != 4 {
            self.raise(ctx, "icmpv4.ipv4_unknown_ver");
            return None;
        }
        let header_len = usize::from(byte(b, 0) & 0x0f) * 4;
        let proto = IpProto(byte(b, 9));
        Some(quoted(
            IpAddr::V4(Ipv4Addr::new(byte(b, 12), byte(b, 13), byte(b, 14), byte(b, 15))),
            IpAddr::V4(Ipv4Addr::new(byte(b, 16), byte(b, 17), byte(b, 18), byte(b, 19))),
            proto,
            tail(b, header_len.max(20)),
        ))
    }

    fn quoted_ipv6(&mut self, ctx: &mut Ctx<'_>, b: &[u8]) -> Option<QuotedPacket> {
        if b.len() < 40 {
            self.raise(ctx, "icmpv6.ipv6_trunc_pkt");
            return None;
        }
        if byte(b, 0) >> 4 != 6 {
            self.raise(ctx, "icmpv6.ipv6_unknown_version");
            return None;
        }
        let mut src = [0u8; 16];
        src.copy_from_slice(&b[8..24]);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&b[24..40]);
        // Extension headers of the quoted packet are not walked: ports only when TCP/UDP follow.
        Some(quoted(
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
            IpProto(byte(b, 6)),
            &b[40..],
        ))
    }

    fn ip_in_ip<'f>(&mut self, ctx: &mut Ctx<'_>, ip: &IpLayer<'_>, b: &'f [u8]) -> Upper<'f> {
        let inner_v4 = ip.proto == IpProto::IPIP;
        let version = byte(b, 0) >> 4;
        let (min, want) = if inner_v4 { (20, 4) } else { (40, 6) };
        if ip.version == IpVersion::V6 {
            // Suricata judges IP in IPv6 on the outer packet.
            let (small, wrong) = if inner_v4 {
                ("ipv6.ipv4_in_ipv6_too_small", "ipv6.ipv4_in_ipv6_wrong_version")
            } else {
                ("ipv6.ipv6_in_ipv6_too_small", "ipv6.ipv6_in_ipv6_wrong_version")
            };
            if b.len() < min {
                self.raise(ctx, small);
                return other(ip.proto, b);
            }
            if version != want {
                self.raise(ctx, wrong);
                return other(ip.proto, b);
            }
        }
        match (ip.version, inner_v4) {
            (IpVersion::V4, true) => self.counters.ipv4_in_ipv4 += 1,
            (IpVersion::V4, false) => self.counters.ipv6_in_ipv4 += 1,
            (IpVersion::V6, true) => self.counters.ipv4_in_ipv6 += 1,
            (IpVersion::V6, false) => self.counters.ipv6_in_ipv6 += 1,
        }
        Upper {
            transport: Transport::Other { proto: ip.proto },
            payload: b,
            checksum: None,
            inner: Some(Inner {
                kind: TunnelKind::IpInIp,
                bytes: b,
                link: LinkType::RAW,
                expect: Some(if inner_v4 { IpVersion::V4 } else { IpVersion::V6 }),
                extra_vlan: None,
            }),
        }
    }

    /// GRE: RFC 2784/2890 (version 0) and RFC 2637's enhanced GRE (version 1, PPTP).
    fn gre<'f>(&mut self, ctx: &mut Ctx<'_>, b: &'f [u8]) -> Upper<'f> {
        const CHECKSUM: u16 = 0x8000;
        const ROUTING: u16 = 0x4000;
        const KEY: u16 = 0x2000;
        const SEQUENCE: u16 = 0x1000;
        const STRICT_ROUTE: u16 = 0x0800;
        const RECURSION: u16 = 0x0700;
        const ACK: u16 = 0x0080;
        const V0_RESERVED: u16 = 0x00f8;
        const V1_RESERVED: u16 = 0x0078;
        let plain = other(IpProto::GRE, b);
        if b.len() < 4 {
            self.raise(ctx, "gre.pkt_too_small");
            return plain;
        }
        self.counters.gre += 1;
        let flags = be16(b, 0);
        let proto = be16(b, 2);
        match flags & 0x7 {
            0 => {
                if flags & RECURSION != 0 {
                    self.raise(ctx, "gre.version0_recur");
                }
                if flags & V0_RESERVED != 0 {
                    self.raise(ctx, "gre.version0_flags");
                }
                let mut len = 4;
                if flags & (CHECKSUM | ROUTING) != 0 {
                    len += 4;
                }
                if flags & KEY != 0 {
                    len += 4;
                }
                if flags & SEQUENCE != 0 {
                    len += 4;
                }
                if b.len() < len {
                    self.raise(ctx, "gre.version0_hdr_too_big");
                    return plain;
                }
                if flags & ROUTING != 0 {
                    // RFC 1701 source route entries, ended by an entry of family 0 and length 0.
                    loop {
                        if b.len() < len + 4 {
                            self.raise(ctx, "gre.version0_malformed_sre_hdr");
                            return plain;
                        }
                        let family = be16(b, len);
                        let sre_len = usize::from(byte(b, len + 3));
                        len += 4 + sre_len;
                        if family == 0 && sre_len == 0 {
                            break;
                        }
                        if b.len() < len {
                            self.raise(ctx, "gre.version0_malformed_sre_hdr");
                            return plain;
                        }
                    }
                }
                let payload = &b[len..];
                let inner = match proto {
                    ETHERTYPE_IPV4 => Some((TunnelKind::Gre, payload, LinkType::RAW, Some(IpVersion::V4))),
                    ETHERTYPE_IPV6 => Some((TunnelKind::Gre, payload, LinkType::RAW, Some(IpVersion::V6))),
                    ETHERTYPE_TEB => Some((TunnelKind::Gre, payload, LinkType::ETHERNET, None)),
                    // ERSPAN type I has no header of its own (and no sequence number).
                    ETHERTYPE_ERSPAN_II if flags & SEQUENCE == 0 => {
                        self.counters.erspan += 1;
                        Some((TunnelKind::ErspanII { session: 0 }, payload, LinkType::ETHERNET, None))
                    }
                    ETHERTYPE_ERSPAN_II | ETHERTYPE_ERSPAN_III => {
                        return self.erspan(ctx, proto == ETHERTYPE_ERSPAN_III, b, payload);
                    }
                    _ => None,
                };
                Upper {
                    transport: Transport::Other { proto: IpProto::GRE },
                    payload,
                    checksum: None,
                    inner: inner.map(|(kind, bytes, link, expect)| Inner {
                        kind,
                        bytes,
                        link,
                        expect,
                        extra_vlan: None,
                    }),
                }
            }
            1 => {
                if flags & CHECKSUM != 0 {
                    self.raise(ctx, "gre.version1_chksum");
                }
                if flags & ROUTING != 0 {
                    self.raise(ctx, "gre.version1_route");
                }
                if flags & STRICT_ROUTE != 0 {
                    self.raise(ctx, "gre.version1_ssr");
                }
                if flags & RECURSION != 0 {
                    self.raise(ctx, "gre.version1_recur");
                }
                if flags & V1_RESERVED != 0 {
                    self.raise(ctx, "gre.version1_flags");
                }
                if flags & KEY == 0 {
                    self.raise(ctx, "gre.version1_no_key");
                }
                if proto != ETHERTYPE_PPP {
                    self.raise(ctx, "gre.version1_wrong_protocol");
                }
                let mut len = 8;
                if flags & SEQUENCE != 0 {
                    len += 4;
                }
                if flags & ACK != 0 {
                    len += 4;
                }
                if b.len() < len {
                    self.raise(ctx, "gre.version1_hdr_too_big");
                    return plain;
                }
                // PPP inside PPTP is not opened.
                other(IpProto::GRE, &b[len..])
            }
            _ => {
                self.raise(ctx, "gre.wrong_version");
                plain
            }
        }
    }

    /// ERSPAN type II (8-byte header, version 1) and type III (12 bytes, version 2, plus an
    /// 8-byte platform sub-header when the O bit is set), from draft-foschiano-erspan.
    fn erspan<'f>(&mut self, ctx: &mut Ctx<'_>, type3: bool, gre: &'f [u8], b: &'f [u8]) -> Upper<'f> {
        let plain = other(IpProto::GRE, gre);
        let (mut len, want_version) = if type3 { (12, 2) } else { (8, 1) };
        if b.len() < len {
            self.raise(ctx, "erspan.header_too_small");
            return plain;
        }
        if byte(b, 0) >> 4 != want_version {
            self.raise(ctx, "erspan.unsupported_version");
            return plain;
        }
        if type3 && byte(b, 11) & 1 != 0 {
            len += 8;
            if b.len() < len {
                self.raise(ctx, "erspan.header_too_small");
                return plain;
            }
        }
        self.counters.erspan += 1;
        let vlan = be16(b, 0) & 0x0fff;
        let session = be16(b, 2) & 0x03ff;
        let kind = if type3 {
            TunnelKind::ErspanIII { session }
        } else {
            TunnelKind::ErspanII { session }
        };
        Upper {
            transport: Transport::Other { proto: IpProto::GRE },
            payload: b,
            checksum: None,
            inner: Some(Inner {
                kind,
                bytes: &b[len..],
                link: LinkType::ETHERNET,
                expect: None,
                extra_vlan: (vlan != 0).then_some(vlan),
            }),
        }
    }
}

fn quoted(src: IpAddr, dst: IpAddr, proto: IpProto, l4: &[u8]) -> QuotedPacket {
    let (src_port, dst_port) = if matches!(proto, IpProto::TCP | IpProto::UDP) && l4.len() >= 4 {
        (be16(l4, 0), be16(l4, 2))
    } else {
        (0, 0)
    };
    QuotedPacket {
        src,
        dst,
        proto,
        src_port,
        dst_port,
    }
}

fn other(proto: IpProto, payload: &[u8]) -> Upper<'_> {
    Upper {
        transport: Transport::Other { proto },
        payload,
        checksum: None,
        inner: None,
    }
}

fn invalid(proto: IpProto, payload: &[u8]) -> Upper<'_> {
    Upper {
        transport: Transport::Invalid { proto },
        payload,
        checksum: None,
        inner: None,
    }
}

/// The IP version of a loopback address family: AF_INET is 2 everywhere; AF_INET6 is 10 on Linux,
/// 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
fn loopback_family(family: u32) -> Option<IpVersion> {
    match family {
        2 => Some(IpVersion::V4),
        10 | 24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
