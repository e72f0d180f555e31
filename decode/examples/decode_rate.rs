//! Decode throughput over capture files held in memory:
//! `cargo run -p weir-decode --profile test --example decode_rate -- FILE.pcap...`.
//! Single-threaded, defragmentation on, checksum validation off, callbacks doing nothing.

use std::time::Instant;

use pcap_parser::{Block, LegacyPcapSlice, PcapBlockOwned, PcapNGSlice};
use weir_core::{LinkType, Timestamp};
use weir_decode::{DecodeConfig, Decoder};

fn frames(path: &str) -> Vec<(LinkType, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("readable capture");
    let mut out = Vec::new();
    if let Ok(slice) = LegacyPcapSlice::from_slice(&bytes) {
        let link = LinkType(slice.header.network.0 as u32);
        for block in slice.map_while(Result::ok) {
            if let PcapBlockOwned::Legacy(b) = block {
                out.push((link, b.data.to_vec()));
            }
        }
    } else if let Ok(slice) = PcapNGSlice::from_slice(&bytes) {
        let mut links = Vec::new();
        for block in slice.map_while(Result::ok) {
            match block {
                PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => links.push(LinkType(idb.linktype.0 as u32)),
                PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                    let link = links.get(epb.if_id as usize).copied().unwrap_or(LinkType::ETHERNET);
                    let len = (epb.caplen as usize).min(epb.data.len());
                    out.push((link, epb.data[..len].to_vec()));
                }
                _ => {}
            }
        }
    }
    out
}

fn main() {
    let all: Vec<(LinkType, Vec<u8>)> = std::env::args().skip(1).flat_map(|p| frames(&p)).collect();
    let bytes: usize = all.iter().map(|(_, f)| f.len()).sum();
    let rounds = (50_000_000 / bytes.max(1)).clamp(1, 1000);
    let mut decoder = Decoder::new(DecodeConfig::default());
    let mut handed = 0u64;
    let start = Instant::now();
    for round in 0..rounds {
        for (i, (link, f)) in all.iter().enumerate() {
            let ts = Timestamp::from_secs_nanos(round as u64 * 1000 + i as u64 / 1000, 0);
            decoder.decode(ts, *link, f, &mut |_| handed += 1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let frames = (all.len() * rounds) as f64;
    println!(
        "{} frames x {rounds} rounds: {:.2} Mframes/s, {:.0} MB/s, {handed} packets handed over",
        all.len(),
        frames / secs / 1e6,
        (bytes * rounds) as f64 / secs / 1e6
    );
}
