//! The packet decoder on arbitrary frames of every link type it reads, tunnels and fragments
//! included. Input: one byte picking the link type and checksum validation, then the frame.
//!
//! Invariants: every packet handed over is borrowed from the frame (or, rebuilt from fragments,
//! no longer than a maximal datagram after its link header); its IP header and payload lie inside
//! its frame; tunnel nesting and packets per frame stay under their limits; the counters add up.
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

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else { return };
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
