//! The packet decoder on arbitrary frames of every link type it reads, tunnels and fragments
//! included. Input: one byte picking the link type and checksum validation, then the frame.
//!
//! Invariants: every packet handed over is borrowed from the frame (or, rebuilt from fragments,
//! no longer than a maximal datagram after its link header); its IP header and payload lie inside
//! its frame; tunnel nesting and packets per frame stay under their limits; the counters add up.
//!
//! Build mode (selector 0xff): a well-formed Ethernet frame (0-3 VLAN tags, IPv4 or IPv6, TCP or
//! UDP, valid checksums) is built from the input's fields; decoding must give back every field
//! and the payload exactly, with no anomaly and checksums verified.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::{LinkType, Timestamp};
use weir_decode::{DecodeConfig, Decoder, MAX_ANOMALIES_PER_PACKET, MAX_DATAGRAM_LEN, MAX_LAYERS};

const LINKS: [LinkType; 11] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType(147),
];

fn inside(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let bytes: Vec<u8> = parts.concat();
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn build_and_decode(input: &mut weir_fuzz::Input<'_>) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use weir_core::IpProto;
    use weir_decode::Transport;

    let shape = input.u8();
    let v6 = shape & 1 != 0;
    let tcp = shape & 2 != 0;
    let vlans: Vec<u16> = (0..(shape >> 2) % 4).map(|_| input.u16() & 0x0fff).collect();
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a.iter_mut().chain(b.iter_mut()).for_each(|x| *x = input.u8());
        // Addresses a packet can carry: not multicast as a source.
        a[0] &= 0x7f;
        (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())
    } else {
        (Ipv4Addr::from(input.u32() & 0x7fff_ffff).into(), Ipv4Addr::from(input.u32()).into())
    };
    let ttl = input.u8().max(1);
    let (sport, dport, seq, ack, flags, window) = (input.u16(), input.u16(), input.u32(), input.u32(), input.u8(), input.u16());
    let payload = input.rest();
    // Stay clear of the ports decoded as tunnels.
    let (sport, dport) = if !tcp && (sport == 4789 || dport == 4789) { (sport ^ 1, dport ^ 1) } else { (sport, dport) };

    let mut l4 = if tcp {
        let mut h = Vec::new();
        h.extend(sport.to_be_bytes());
        h.extend(dport.to_be_bytes());
        h.extend(seq.to_be_bytes());
        h.extend(ack.to_be_bytes());
        h.extend([5 << 4, flags]);
        h.extend(window.to_be_bytes());
        h.extend([0, 0, 0, 0]);
        h
    } else {
        let len = (8 + payload.len()) as u16;
        [sport.to_be_bytes(), dport.to_be_bytes(), len.to_be_bytes(), [0, 0]].concat()
    };
    l4.extend(payload);
    let proto = if tcp { 6u8 } else { 17 };
    let len = l4.len() as u16;
    let pseudo: Vec<u8> = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => [&a.octets()[..], &b.octets(), &[0, proto], &len.to_be_bytes()].concat(),
        (IpAddr::V6(a), IpAddr::V6(b)) => [&a.octets()[..], &b.octets(), &[0, 0], &len.to_be_bytes(), &[0, 0, 0, proto]].concat(),
        _ => unreachable!(),
    };
    let mut sum = checksum(&[&pseudo, &l4]);
    if !tcp && sum == 0 {
        sum = 0xffff;
    }
    let at = if tcp { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());

    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for id in &vlans {
        frame.extend([0x81, 0x00]);
        frame.extend(id.to_be_bytes());
    }
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            frame.extend([0x08, 0x00]);
            let total = (20 + l4.len()) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend(total.to_be_bytes());
            ip.extend([0, 1, 0x40, 0, ttl, proto, 0, 0]);
            ip.extend(a.octets());
            ip.extend(b.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend(ip);
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            frame.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
            frame.extend((l4.len() as u16).to_be_bytes());
            frame.extend([proto, ttl]);
            frame.extend(a.octets());
            frame.extend(b.octets());
        }
        _ => unreachable!(),
    }
    frame.extend(&l4);
    if frame.len() > 65_535 {
        return;
    }

    let mut decoder = Decoder::new(DecodeConfig { checksum_validation: true, ..DecodeConfig::default() });
    let mut seen = 0;
    decoder.decode(Timestamp::from_nanos(1), LinkType::ETHERNET, &frame, &mut |p| {
        seen += 1;
        let anomalies: Vec<_> = p.anomalies.iter().map(|a| a.event).collect();
        assert!(anomalies.is_empty(), "anomalies {anomalies:?} on a well-formed frame");
        assert_eq!(p.vlans.as_slice(), &vlans[..vlans.len().min(3)]);
        assert_eq!((p.ip.src, p.ip.dst, p.ip.ttl), (src, dst, ttl));
        assert_eq!(p.ip.proto, IpProto(proto));
        assert_eq!(p.checksums.transport, Some(true), "transport checksum");
        if !v6 {
            assert_eq!(p.checksums.ip, Some(true), "IPv4 header checksum");
        }
        match p.transport {
            Transport::Tcp(h) => {
                assert!(tcp);
                assert_eq!((h.src_port, h.dst_port, h.seq, h.ack, h.window), (sport, dport, seq, ack, window));
                assert_eq!(h.flags.0 & 0xff, u16::from(flags));
            }
            Transport::Udp(h) => {
                assert!(!tcp);
                assert_eq!((h.src_port, h.dst_port), (sport, dport));
            }
            other => panic!("decoded as {other:?}"),
        }
        assert_eq!(p.payload, payload, "payload");
    });
    assert_eq!(seen, 1, "one packet in a plain frame");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else { return };
    if selector == 0xff {
        build_and_decode(&mut weir_fuzz::Input::new(frame));
        return;
    }
    let link = LINKS[usize::from(selector) % LINKS.len()];
    let config = DecodeConfig { checksum_validation: selector & 0x80 != 0, ..DecodeConfig::default() };
    let max_tunnel_depth = config.max_tunnel_depth;
    let mut decoder = Decoder::new(config);
    let mut packets = 0usize;
    // Twice: the second pass meets the defragmenter holding what the first left behind.
    for round in 0..2u64 {
        decoder.decode(Timestamp::from_nanos(round), link, frame, &mut |p| {
            packets += 1;
            if p.reassembled {
                assert!(p.frame.len() <= frame.len() + MAX_DATAGRAM_LEN, "rebuilt frame of {} bytes", p.frame.len());
            } else {
                assert!(inside(frame, p.frame), "packet frame not borrowed from the input frame");
            }
            assert!(inside(p.frame, p.ip.header), "IP header outside its frame");
            assert!(inside(p.frame, p.payload), "payload outside its frame");
            assert!(p.tunnel_depth <= max_tunnel_depth.saturating_add(1), "tunnel depth {}", p.tunnel_depth);
            assert_eq!(p.tunnel.is_some(), p.tunnel_depth > 0);
            assert!(p.anomalies.len() <= MAX_ANOMALIES_PER_PACKET);
            if p.fragment.is_some() {
                assert!(p.flow_key().is_none(), "a fragment has no flow");
            }
        });
    }
    let counters = decoder.counters();
    assert_eq!(counters.packets, 2);
    assert_eq!(counters.bytes, 2 * frame.len() as u64);
    assert_eq!(counters.packets_out, packets as u64);
    assert!(packets <= 2 * (usize::from(MAX_LAYERS) + 2), "{packets} packets from one frame twice");
});
