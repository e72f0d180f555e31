//! IPv4 and IPv6 defragmentation over sequences of fragments built from the input: a few
//! datagram ids, arbitrary offsets, lengths, MF flags and contents, every overlap policy.
//!
//! Invariants: every byte of a rebuilt datagram was given at that offset by some fragment of that
//! datagram (the policy only chooses among them); a rebuilt datagram is at most 65 535 bytes; the
//! memory held stays under the configured memcap.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use weir_core::{LinkType, Timestamp};
use weir_decode::{DecodeConfig, Decoder, DefragConfig, IpVersion, OverlapPolicy, MAX_DATAGRAM_LEN};
use weir_fuzz::Input;

const POLICIES: [OverlapPolicy; 7] = [
    OverlapPolicy::Bsd,
    OverlapPolicy::BsdRight,
    OverlapPolicy::Linux,
    OverlapPolicy::First,
    OverlapPolicy::Last,
    OverlapPolicy::Windows,
    OverlapPolicy::Solaris,
];

/// Fragment contents given per datagram since it was last rebuilt: (offset, bytes).
type Given = HashMap<(bool, u32), Vec<(usize, Vec<u8>)>>;

fn ipv4_fragment(id: u16, offset8: u16, more: bool, proto: u8, data: &[u8]) -> Vec<u8> {
    let total = 20 + data.len();
    let flags_off = (offset8 & 0x1fff) | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags_off.to_be_bytes());
    // The source address names the datagram too: a rebuilt IPv6 datagram has no id left.
    p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1 + id as u8, 10, 0, 0, 2]);
    p.extend_from_slice(data);
    p
}

fn ipv6_fragment(id: u32, offset8: u16, more: bool, proto: u8, data: &[u8]) -> Vec<u8> {
    let payload = 8 + data.len();
    let mut p = vec![0x60, 0, 0, 0, (payload >> 8) as u8, payload as u8, 44, 64];
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 + id as u8]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let off_flags = ((offset8 & 0x1fff) << 3) | u16::from(more);
    p.extend_from_slice(&[proto, 0]);
    p.extend_from_slice(&off_flags.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(data);
    p
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let memcap = 512 * 1024 + usize::from(input.u16()) * 16;
    let config = DecodeConfig {
        defrag: DefragConfig {
            memcap,
            max_fragments: 1 + usize::from(input.u8()),
            policy: POLICIES[usize::from(setup) % POLICIES.len()],
            ..DefragConfig::default()
        },
        ..DecodeConfig::default()
    };
    // The upper protocol is fixed per run: a protocol the decoder does not open (59: no next
    // header) keeps the rebuilt payload raw, TCP/UDP exercise transport decoding on it.
    let proto = [59u8, 6, 17, 1][usize::from(setup >> 4) % 4];
    let mut decoder = Decoder::new(config);
    let mut given: Given = HashMap::new();
    let mut ns = 0u64;
    while !input.is_empty() {
        let head = input.u8();
        let v6 = head & 1 == 1;
        let more = head & 2 == 2;
        let id = u32::from((head >> 2) & 3);
        // Offsets in 8-byte units: small ones overlap often, large ones reach the 64 KiB edge.
        let offset8 = if head & 0x10 != 0 { input.u16() & 0x1fff } else { u16::from(input.u8()) };
        let len = if head & 0x20 != 0 { usize::from(input.u16()) % 4096 } else { usize::from(input.u8()) };
        let mut bytes = input.take(len).to_vec();
        bytes.resize(len, head);
        if head & 0x40 != 0 {
            ns += u64::from(input.u8()) * 1_000_000_000;
        }
        let packet = if v6 {
            ipv6_fragment(id, offset8, more, proto, &bytes)
        } else {
            ipv4_fragment(id as u16, offset8, more, proto, &bytes)
        };
        given.entry((v6, id)).or_default().push((usize::from(offset8) * 8, bytes));
        let mut rebuilt: Vec<(bool, u32)> = Vec::new();
        decoder.decode(Timestamp::from_nanos(ns), LinkType::RAW, &packet, &mut |p| {
            if !p.reassembled {
                return;
            }
            assert!(p.frame.len() <= MAX_DATAGRAM_LEN + 40, "rebuilt datagram of {} bytes", p.frame.len());
            let v6 = p.ip.version == IpVersion::V6;
            let id = match p.ip.src {
                std::net::IpAddr::V4(a) => u32::from(a.octets()[3]) - 1,
                std::net::IpAddr::V6(a) => u32::from(a.octets()[15]) - 1,
            };
            let key = (v6, id);
            let header = if v6 { 40 } else { 20 };
            let datagram = p.frame.get(header..).unwrap_or(&[]);
            let frags = given.get(&key).expect("a rebuilt datagram whose fragments were never given");
            for (at, &byte) in datagram.iter().enumerate() {
                let candidates: Vec<u8> = frags
                    .iter()
                    .filter(|(off, b)| *off <= at && at < off + b.len())
                    .map(|(off, b)| b[at - off])
                    .collect();
                assert!(
                    candidates.contains(&byte),
                    "datagram {key:?} byte {at} is {byte:#x}, fragments gave {candidates:?}"
                );
            }
            rebuilt.push(key);
        });
        for key in rebuilt {
            given.remove(&key);
        }
        let stats = decoder.counters().defrag;
        assert!(stats.memory_in_use <= memcap as u64, "defrag holds {} bytes, memcap {memcap}", stats.memory_in_use);
    }
});
