//! The suricata-verify cases that hinge on decoding: what Weir's decoder must deliver for them to
//! pass, asserted on the decoder's output (flows and alerts are other crates' work; here we check
//! the packets, keys and bytes those are built from). Every corpus capture must also decode
//! without a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pcap_parser::{Block, LegacyPcapSlice, PcapBlockOwned, PcapNGSlice};
use weir_core::{FlowKey, IpProto, LinkType, Timestamp};
use weir_decode::{DecodeConfig, Decoder, IcmpHeader, Packet, TcpFlags, Transport};

const CORPUS: &str = "/work/shared/corpus/suricata-verify";

struct Frame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
}

/// Every frame of a pcap or pcapng file (a truncated tail is dropped, as a reader warns and goes on).
fn read_capture(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let blocks: Box<dyn Iterator<Item = Result<PcapBlockOwned<'_>, _>>> = match LegacyPcapSlice::from_slice(&bytes) {
        Ok(slice) => Box::new(std::iter::once(Ok(PcapBlockOwned::LegacyHeader(slice.header.clone()))).chain(slice)),
        Err(_) => Box::new(PcapNGSlice::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))),
    };
    let mut frames = Vec::new();
    let mut legacy_link = LinkType::ETHERNET;
    let mut ng_links: Vec<(LinkType, u64)> = Vec::new();
    for block in blocks {
        let Ok(block) = block else { break };
        match block {
            PcapBlockOwned::LegacyHeader(h) => legacy_link = LinkType(h.network.0 as u32),
            PcapBlockOwned::Legacy(b) => {
                let nanos = if reader_is_nanos(&b) {
                    b.ts_usec as u64
                } else {
                    b.ts_usec as u64 * 1000
                };
                frames.push(Frame {
                    ts: Timestamp::from_secs_nanos(b.ts_sec as u64, nanos),
                    link: legacy_link,
                    data: b.data.to_vec(),
                })
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => ng_links.clear(),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let per_sec = if idb.if_tsresol & 0x80 == 0 {
                    10u64.pow(u32::from(idb.if_tsresol))
                } else {
                    1 << (idb.if_tsresol & 0x7f)
                };
                ng_links.push((LinkType(idb.linktype.0 as u32), per_sec))
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let (link, per_sec) = ng_links
                    .get(epb.if_id as usize)
                    .copied()
                    .unwrap_or((LinkType::ETHERNET, 1_000_000));
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let nanos = units % per_sec * 1_000_000_000 / per_sec;
                let len = (epb.caplen as usize).min(epb.data.len());
                frames.push(Frame {
                    ts: Timestamp::from_secs_nanos(units / per_sec, nanos),
                    link,
                    data: epb.data[..len].to_vec(),
                })
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let link = ng_links.first().map(|l| l.0).unwrap_or(LinkType::ETHERNET);
                frames.push(Frame {
                    ts: Timestamp::ZERO,
                    link,
                    data: spb.data.to_vec(),
                })
            }
            PcapBlockOwned::NG(_) => {}
        }
    }
    frames
}

/// The corpus captures are microsecond pcaps; a nanosecond one would show sub-second values over
/// one million, which microsecond files never have.
fn reader_is_nanos(b: &pcap_parser::LegacyPcapBlock<'_>) -> bool {
    b.ts_usec >= 1_000_000
}

/// What the tests need of a packet, owned.
#[derive(Debug, Clone)]
struct Out {
    frame: Vec<u8>,
    link: LinkType,
    transport: Transport,
    key: Option<FlowKey>,
    tunnel_outer: Option<FlowKey>,
    reassembled: bool,
    anomalies: Vec<&'static str>,
    checksums: weir_decode::Checksums,
}

fn out(p: &Packet<'_>) -> Out {
    Out {
        frame: p.frame.to_vec(),
        link: p.link,
        transport: p.transport,
        key: p.flow_key(),
        tunnel_outer: p.tunnel.map(|t| t.outer),
        reassembled: p.reassembled,
        anomalies: p.anomalies.iter().map(|a| a.event).collect(),
        checksums: p.checksums,
    }
}

fn decode_capture(path: &Path, config: DecodeConfig) -> (Vec<Out>, Decoder) {
    let mut decoder = Decoder::new(config);
    let mut packets = Vec::new();
    for f in read_capture(path) {
        decoder.decode(f.ts, f.link, &f.data, &mut |p| packets.push(out(p)));
    }
    (packets, decoder)
}

fn case(name: &str, file: &str) -> PathBuf {
    Path::new(CORPUS).join(name).join(file)
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64 digit") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Flows as a flow table would see them: both directions under one canonical key.
fn flows(packets: &[Out]) -> BTreeMap<String, (FlowKey, usize)> {
    let mut flows = BTreeMap::new();
    for p in packets {
        if let Some(k) = p.key {
            let (c, _) = k.canonical();
            flows.entry(format!("{c:?}")).or_insert((c, 0)).1 += 1;
        }
    }
    flows
}

#[test]
fn bug_6887_rebuilt_frame_equals_suricatas_packet_field() {
    let (packets, decoder) = decode_capture(
        &case("bug-6887-defrag-eth-vlan-ipv4-tcp-syn", "frag-eth-vlan-ip-tcp-syn.pcap"),
        DecodeConfig::default(),
    );
    // test.yaml: one alert for `tcp.flags:S`, whose packet field is the rebuilt frame.
    let syns: Vec<&Out> = packets
        .iter()
        .filter(|p| matches!(p.transport, Transport::Tcp(t) if t.flags.contains(TcpFlags::SYN)))
        .collect();
    assert_eq!(syns.len(), 1);
    let rebuilt = syns[0];
    assert!(rebuilt.reassembled);
    assert_eq!(rebuilt.link, LinkType::ETHERNET);
    let want = base64("BQQDAgEAAAECAwQFgQAABggARQAALAABAABABnTGAQEBAQICAgIwOR+QAAAAAQAAAABgAiAAGQwAAAMDDgA=");
    assert_eq!(rebuilt.frame, want);
    let key = rebuilt.key.unwrap();
    assert_eq!(key.vlans.as_slice(), &[6]);
    assert_eq!((key.src_port, key.dst_port), (12345, 8080));
    assert_eq!(decoder.counters().defrag.ipv4_fragments, 3);
    assert_eq!(decoder.counters().defrag.ipv4_reassembled, 1);
}

fn vlan_lists(name: &str) -> BTreeSet<Vec<u16>> {
    let (packets, _) = decode_capture(&case(name, "input.pcap"), DecodeConfig::default());
    let f = flows(&packets);
    let lists: Vec<Vec<u16>> = f.values().map(|(k, _)| k.vlans.as_slice().to_vec()).collect();
    // One flow per vlan list, no two flows sharing one.
    let set: BTreeSet<Vec<u16>> = lists.iter().cloned().collect();
    assert_eq!(set.len(), lists.len(), "{lists:?}");
    set
}

#[test]
fn eve_flow_vlan_gives_one_flow_per_tag_stack() {
    assert_eq!(vlan_lists("eve-flow-vlan"), BTreeSet::from([vec![6], vec![1, 10]]));
    assert_eq!(
        vlan_lists("eve-flow-vlan-02"),
        BTreeSet::from([vec![6], vec![1, 10], vec![1, 10, 100]])
    );
}

fn parameter_problems(name: &str, file: &str) -> (usize, Vec<Out>) {
    let (packets, _) = decode_capture(&case(name, file), DecodeConfig::default());
    let count = packets
        .iter()
        .filter(|p| {
            p.key.is_some_and(|k| k.proto == IpProto::ICMPV6)
                && matches!(
                    p.transport,
                    Transport::Icmp(IcmpHeader {
                        icmp_type: 4,
                        code: 0,
                        ..
                    })
                )
        })
        .count();
    (count, packets)
}

#[test]
fn ipv6_malformed_fragments_yield_exactly_one_parameter_problem() {
    for (name, file) in [
        ("ipv6-malformed-fragments-35", "frag-35.pcap"),
        ("ipv6-malformed-fragments-36", "frag-36.pcap"),
    ] {
        let (count, packets) = parameter_problems(name, file);
        // test.yaml: `itype:4; icode:0` alerts once: only frame 10 is one; no rebuilt datagram may
        // turn into another.
        assert_eq!(count, 1, "{name}");
        // The nested fragment headers are reported, and the nesting does not crash or loop.
        assert!(
            packets.iter().any(|p| p.anomalies.contains(&"ipv6.exthdr_dupl_fh")),
            "{name}"
        );
    }
}

#[test]
fn vxlan_decoder_02_opens_the_tunnel() {
    let (packets, decoder) = decode_capture(&case("vxlan-decoder-02", "vxlan.pcap"), DecodeConfig::default());
    let f = flows(&packets);
    // Four outer UDP flows to 4789 (one per source port).
    let outer: Vec<_> = f
        .values()
        .filter(|(k, _)| k.proto == IpProto::UDP && (k.dst_port == 4789 || k.src_port == 4789))
        .collect();
    assert_eq!(outer.len(), 4);
    // Inner ICMP: 4 echo requests one way, 4 replies the other, all inside the tunnel.
    let inner: Vec<&Out> = packets
        .iter()
        .filter(|p| p.key.is_some_and(|k| k.proto == IpProto::ICMP))
        .collect();
    assert_eq!(inner.len(), 8);
    let requests: Vec<&&Out> = inner
        .iter()
        .filter(|p| matches!(p.transport, Transport::Icmp(IcmpHeader { icmp_type: 8, .. })))
        .collect();
    assert_eq!(requests.len(), 4);
    // `alert icmp any any -> any any (itype:8;)` fires 4 times with tunnel.dest_port 4789.
    assert!(
        requests
            .iter()
            .all(|p| p.tunnel_outer.is_some_and(|t| t.dst_port == 4789) && p.key.unwrap().tunnel_depth == 1)
    );
    let src = requests[0].key.unwrap().src_ip;
    assert!(requests.iter().all(|p| p.key.unwrap().src_ip == src));
    assert!(
        inner
            .iter()
            .filter(|p| p.key.unwrap().src_ip != src)
            .all(|p| matches!(p.transport, Transport::Icmp(IcmpHeader { icmp_type: 0, .. })))
    );
    assert_eq!(decoder.counters().vxlan, 10);
    assert_eq!(decoder.counters().arp, 2);
}

#[test]
fn every_corpus_capture_decodes() {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(CORPUS).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "corpus not found");
    let mut total_frames = 0u64;
    let mut total_out = 0u64;
    let mut anomalies: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut bad_checksums = 0usize;
    for path in &files {
        let config = DecodeConfig {
            checksum_validation: true,
            ..DecodeConfig::default()
        };
        let (packets, decoder) = decode_capture(path, config);
        let c = decoder.counters();
        total_frames += c.packets;
        total_out += c.packets_out;
        for (name, n) in &c.anomalies {
            *anomalies.entry(name).or_default() += n;
        }
        let bad = packets
            .iter()
            .filter(|p| p.checksums.ip == Some(false) || p.checksums.transport == Some(false))
            .count();
        if bad > 0 && std::env::var_os("WEIR_SHOW_CHECKSUMS").is_some() {
            eprintln!("{}: {bad} of {} bad checksums", path.display(), packets.len());
        }
        bad_checksums += bad;
        assert_eq!(c.packets_out as usize, packets.len());
        // Every frame of these captures is Ethernet or raw IP carrying IP, except ARP and the like.
        assert!(c.packets_out > 0, "{}: nothing decoded", path.display());
    }
    eprintln!(
        "{} files, {total_frames} frames, {total_out} packets, {bad_checksums} bad checksums, anomalies {anomalies:?}",
        files.len()
    );
    assert!(total_out >= total_frames / 2);
}

#[test]
fn ipv6_nested_fragments_rebuild_layer_by_layer() {
    // frag-35: fragment 0x1aaaa carries, as its data, the first fragment of 0x1bbbb. Rebuilding
    // 0x1aaaa yields that fragment, which with frames 8 and 9 rebuilds 0x1bbbb: an echo request
    // of 1208 bytes.
    let (packets, decoder) = decode_capture(
        &case("ipv6-malformed-fragments-35", "frag-35.pcap"),
        DecodeConfig::default(),
    );
    let rebuilt: Vec<&Out> = packets.iter().filter(|p| p.reassembled).collect();
    assert_eq!(decoder.counters().defrag.ipv6_reassembled, 2);
    assert_eq!(rebuilt.len(), 2);
    // The first rebuilt datagram is itself a fragment (of 0x1bbbb): 408 bytes after the header.
    assert_eq!(rebuilt[0].frame.len(), 14 + 40 + 408);
    assert_eq!(rebuilt[0].key, None);
    let last = rebuilt[1];
    assert!(matches!(
        last.transport,
        Transport::Icmp(IcmpHeader {
            icmp_type: 128,
            code: 0,
            ..
        })
    ));
    assert_eq!(last.frame.len(), 14 + 40 + 1208);
}
