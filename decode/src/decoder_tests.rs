//! Decoder tests: annotated byte arrays for the header layouts, testkit builders for the rest.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use weir_core::{Anomaly, FlowKey, IpProto, LinkType, Timestamp};
use weir_testkit::packet as tk;

use super::*;
use crate::config::{DefragConfig, OverlapPolicy};

/// What one frame yielded, owned so tests can inspect it after the call.
#[derive(Debug)]
struct Seen {
    frame: Vec<u8>,
    link: LinkType,
    vlans: Vec<u16>,
    depth: u8,
    tunnel: Option<Tunnel>,
    outer: bool,
    version: IpVersion,
    src: IpAddr,
    dst: IpAddr,
    proto: IpProto,
    header_len: usize,
    transport: Transport,
    payload: Vec<u8>,
    fragment: Option<Fragment>,
    reassembled: bool,
    anomalies: Vec<&'static str>,
    checksums: Checksums,
    key: Option<FlowKey>,
}

fn run(d: &mut Decoder, link: LinkType, frame: &[u8]) -> (Vec<Seen>, Vec<&'static str>) {
    let mut seen = Vec::new();
    let mut loose = Vec::new();
    d.decode_with_anomalies(
        Timestamp::from_secs_nanos(1_000, 0),
        link,
        frame,
        &mut |p| {
            seen.push(Seen {
                frame: p.frame.to_vec(),
                link: p.link,
                vlans: p.vlans.as_slice().to_vec(),
                depth: p.tunnel_depth,
                tunnel: p.tunnel,
                outer: p.is_tunnel_outer,
                version: p.ip.version,
                src: p.ip.src,
                dst: p.ip.dst,
                proto: p.ip.proto,
                header_len: p.ip.header.len(),
                transport: p.transport,
                payload: p.payload.to_vec(),
                fragment: p.fragment,
                reassembled: p.reassembled,
                anomalies: p.anomalies.iter().map(|a| a.event).collect(),
                checksums: p.checksums,
                key: p.flow_key(),
            })
        },
        &mut |_, a: Anomaly| loose.push(a.event),
    );
    (seen, loose)
}

fn decode_one(link: LinkType, frame: &[u8]) -> (Vec<Seen>, Vec<&'static str>) {
    run(&mut Decoder::new(DecodeConfig::default()), link, frame)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
}

/// Ethernet / 802.1Q vlan 6 / IPv4 / TCP SYN with a window-scale option, as scapy writes it for
/// bug-6887 before fragmenting.
const VLAN_TCP_SYN: [u8; 62] = [
    0x05, 0x04, 0x03, 0x02, 0x01, 0x00, // destination MAC
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, // source MAC
    0x81, 0x00, 0x00, 0x06, // 802.1Q, vlan 6
    0x08, 0x00, // IPv4
    0x45, 0x00, 0x00, 0x2c, // version 4, IHL 5, total length 44
    0x00, 0x01, 0x00, 0x00, // id 1, no fragment bits
    0x40, 0x06, 0x74, 0xc6, // TTL 64, TCP, checksum
    0x01, 0x01, 0x01, 0x01, // 1.1.1.1
    0x02, 0x02, 0x02, 0x02, // 2.2.2.2
    0x30, 0x39, 0x1f, 0x90, // ports 12345 -> 8080
    0x00, 0x00, 0x00, 0x01, // seq 1
    0x00, 0x00, 0x00, 0x00, // ack 0
    0x60, 0x02, 0x20, 0x00, // data offset 6 words, SYN, window 8192
    0x19, 0x0c, 0x00, 0x00, // checksum, urgent pointer
    0x03, 0x03, 0x0e, 0x00, // window scale 14, end of options
];

#[test]
fn ethernet_vlan_ipv4_tcp_fields() {
    let config = DecodeConfig {
        checksum_validation: true,
        ..DecodeConfig::default()
    };
    let (seen, loose) = run(&mut Decoder::new(config), LinkType::ETHERNET, &VLAN_TCP_SYN);
    assert!(loose.is_empty());
    assert_eq!(seen.len(), 1);
    let p = &seen[0];
    assert_eq!(p.vlans, [6]);
    assert_eq!(p.version, IpVersion::V4);
    assert_eq!((p.src, p.dst), (v4([1, 1, 1, 1]), v4([2, 2, 2, 2])));
    assert_eq!(p.header_len, 20);
    let Transport::Tcp(tcp) = p.transport else {
        panic!("not tcp: {:?}", p.transport)
    };
    assert_eq!((tcp.src_port, tcp.dst_port, tcp.seq, tcp.ack), (12345, 8080, 1, 0));
    assert_eq!(tcp.flags, TcpFlags::SYN);
    assert_eq!(tcp.window, 8192);
    assert_eq!(tcp.header_len, 24);
    assert_eq!(tcp.options.window_scale, Some(14));
    assert_eq!(tcp.options.mss, None);
    assert!(p.payload.is_empty());
    assert!(p.anomalies.is_empty());
    assert_eq!(
        p.checksums,
        Checksums {
            ip: Some(true),
            transport: Some(true)
        }
    );
    let key = p.key.unwrap();
    assert_eq!((key.src_port, key.dst_port, key.proto), (12345, 8080, IpProto::TCP));
    assert_eq!(key.vlans.as_slice(), &[6]);
}

#[test]
fn checksum_validation_flags_a_corrupted_segment() {
    let mut frame = VLAN_TCP_SYN;
    frame[60] = 0x05; // window scale 5: the TCP checksum no longer matches
    let config = DecodeConfig {
        checksum_validation: true,
        ..DecodeConfig::default()
    };
    let (seen, _) = run(&mut Decoder::new(config), LinkType::ETHERNET, &frame);
    assert_eq!(
        seen[0].checksums,
        Checksums {
            ip: Some(true),
            transport: Some(false)
        }
    );
    // Off by default: nothing is claimed.
    let (seen, _) = decode_one(LinkType::ETHERNET, &frame);
    assert_eq!(seen[0].checksums, Checksums::default());
}

#[test]
fn tcp_options_are_parsed() {
    let options = [
        2, 4, 0x05, 0xb4, // MSS 1460
        1,    // NOP
        3, 3, 7, // window scale 7
        4, 2, // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 2, // timestamps 1, 2
        5, 10, 0, 0, 0, 10, 0, 0, 0, 20, // SACK block 10..20
        34, 6, 0xaa, 0xbb, 0xcc, 0xdd, // TFO cookie
        0, 0, 0, 0, // end of options, padding
    ];
    let src = v4([10, 0, 0, 1]);
    let dst = v4([10, 0, 0, 2]);
    let mut h = tk::Tcp::new(1000, 80, 5, tk::SYN);
    h.options = options.to_vec();
    let seg = tk::tcp(src, dst, &h, b"hi");
    let frame = tk::ipv4(&tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_TCP), &seg);
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    let Transport::Tcp(tcp) = seen[0].transport else {
        panic!()
    };
    let o = tcp.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some((1, 2)));
    assert_eq!(o.sack_blocks(), &[(10, 20)]);
    assert_eq!(o.tfo_cookie(), Some(&[0xaa, 0xbb, 0xcc, 0xdd][..]));
    assert_eq!(seen[0].payload, b"hi");
    assert!(seen[0].anomalies.is_empty());
}

#[test]
fn bad_tcp_options_raise_suricata_events() {
    let src = v4([10, 0, 0, 1]);
    let dst = v4([10, 0, 0, 2]);
    let mut h = tk::Tcp::new(1000, 80, 5, tk::SYN);
    // MSS twice, then an MSS of length 3, then an option running past the header.
    h.options = vec![2, 4, 0, 1, 2, 4, 0, 2, 2, 3, 0, 1, 9, 9, 0, 0];
    let seg = tk::tcp(src, dst, &h, &[]);
    let frame = tk::ipv4(&tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_TCP), &seg);
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(
        seen[0].anomalies,
        ["tcp.opt_duplicate", "tcp.opt_invalid_len", "tcp.opt_invalid_len"]
    );
    let Transport::Tcp(tcp) = seen[0].transport else {
        panic!()
    };
    assert_eq!(tcp.options.mss, Some(1));
}

#[test]
fn truncated_layers_raise_their_events() {
    // Ethernet header cut short: no IP layer, the anomaly goes to the second callback.
    let (seen, loose) = decode_one(LinkType::ETHERNET, &VLAN_TCP_SYN[..10]);
    assert!(seen.is_empty());
    assert_eq!(loose, ["ethernet.pkt_too_small"]);
    // IPv4 total length larger than the frame.
    let (seen, loose) = decode_one(LinkType::ETHERNET, &VLAN_TCP_SYN[..50]);
    assert!(seen.is_empty());
    assert_eq!(loose, ["ipv4.trunc_pkt"]);
    // IHL of 4 words.
    let mut frame = VLAN_TCP_SYN;
    frame[18] = 0x44;
    assert_eq!(decode_one(LinkType::ETHERNET, &frame).1, ["ipv4.hlen_too_small"]);
    // TCP data offset past the segment: an IP packet with an invalid transport and no flow.
    let mut frame = VLAN_TCP_SYN;
    frame[50] = 0xf0;
    let (seen, _) = decode_one(LinkType::ETHERNET, &frame);
    assert_eq!(seen[0].anomalies, ["tcp.hlen_too_small"]);
    assert_eq!(seen[0].transport, Transport::Invalid { proto: IpProto::TCP });
    assert_eq!(seen[0].key, None);
    // IPv6 header cut short.
    let p = tk::ipv6(
        v6(1),
        v6(2),
        tk::PROTO_UDP,
        64,
        &[],
        &tk::udp(IpAddr::V6(v6(1)), IpAddr::V6(v6(2)), 1, 2, b"x"),
    );
    assert_eq!(decode_one(LinkType::RAW, &p[..30]).1, ["ipv6.pkt_too_small"]);
    assert_eq!(decode_one(LinkType::RAW, &p[..45]).1, ["ipv6.trunc_pkt"]);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let src = v4([10, 0, 0, 1]);
    let dst = v4([10, 0, 0, 2]);
    let ip = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_UDP),
        &tk::udp(src, dst, 53, 53, b"q"),
    );
    let mut frame = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &ip);
    frame.resize(60, 0);
    let (seen, _) = decode_one(LinkType::ETHERNET, &frame);
    assert_eq!(seen[0].payload, b"q");
    assert_eq!(
        seen[0].transport,
        Transport::Udp(UdpHeader {
            src_port: 53,
            dst_port: 53,
            length: 9,
            checksum: seen_udp_checksum(&ip)
        })
    );
}

fn seen_udp_checksum(ip: &[u8]) -> u16 {
    u16::from_be_bytes([ip[26], ip[27]])
}

#[test]
fn vlans_keep_three_ids_and_stop_at_a_fourth() {
    let icmp = tk::icmpv4(8, 0, &tk::echo(1, 1, b""));
    let ip = tk::ipv4(
        &tk::Ipv4::new([192, 168, 0, 1], [255, 255, 255, 255], tk::PROTO_ICMP),
        &icmp,
    );
    let tpids = [tk::ETHERTYPE_QINQ, tk::ETHERTYPE_VLAN, 0x9100];
    let frame = tk::ethernet_tagged(tk::MAC_B, tk::MAC_A, &tpids, &[1, 10, 100], tk::ETHERTYPE_IPV4, &ip);
    let mut d = Decoder::new(DecodeConfig::default());
    let (seen, _) = run(&mut d, LinkType::ETHERNET, &frame);
    assert_eq!(seen[0].vlans, [1, 10, 100]);
    let key = seen[0].key.unwrap();
    assert_eq!((key.src_port, key.dst_port, key.proto), (8, 0, IpProto::ICMP));
    assert_eq!(
        (d.counters().vlan, d.counters().vlan_qinq, d.counters().vlan_qinqinq),
        (1, 1, 1)
    );
    let frame = tk::ethernet(tk::MAC_B, tk::MAC_A, &[1, 2, 3, 4], tk::ETHERTYPE_IPV4, &ip);
    let (seen, loose) = run(&mut d, LinkType::ETHERNET, &frame);
    assert!(seen.is_empty());
    assert_eq!(loose, ["vlan.too_many_layers"]);
    assert_eq!(d.counters().anomalies.get("vlan.too_many_layers"), Some(&1));
}

#[test]
fn icmp_type_and_code_fill_the_flow_key_ports() {
    let icmp = tk::icmpv4(3, 3, &[0, 0, 0, 0]); // unused field, no quoted packet
    let ip = tk::ipv4(&tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_ICMP), &icmp);
    let (seen, _) = decode_one(LinkType::RAW, &ip);
    assert_eq!(
        seen[0].transport,
        Transport::Icmp(IcmpHeader {
            icmp_type: 3,
            code: 3,
            echo: None,
            quoted: None
        })
    );
    let key = seen[0].key.unwrap();
    assert_eq!((key.src_port, key.dst_port), (3, 3));
    // The error quotes nothing: Suricata's truncated-quote event.
    assert_eq!(seen[0].anomalies, ["icmpv4.ipv4_trunc_pkt"]);
    // An unassigned ICMPv4 type is still decoded, with an event.
    let ip = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_ICMP),
        &tk::icmpv4(99, 0, &[0; 4]),
    );
    assert_eq!(decode_one(LinkType::RAW, &ip).0[0].anomalies, ["icmpv4.unknown_type"]);
}

#[test]
fn icmpv6_echo_and_checksum() {
    let m = tk::icmpv6(v6(1), v6(2), 128, 0, &tk::echo(7, 9, b"ping"));
    let p = tk::ipv6(v6(1), v6(2), tk::PROTO_ICMPV6, 64, &[], &m);
    let config = DecodeConfig {
        checksum_validation: true,
        ..DecodeConfig::default()
    };
    let (seen, _) = run(&mut Decoder::new(config), LinkType::IPV6, &p);
    assert_eq!(
        seen[0].transport,
        Transport::Icmp(IcmpHeader {
            icmp_type: 128,
            code: 0,
            echo: Some((7, 9)),
            quoted: None
        })
    );
    assert_eq!(seen[0].checksums.transport, Some(true));
    assert_eq!(seen[0].payload, b"ping");
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let src = IpAddr::V6(v6(1));
    let dst = IpAddr::V6(v6(2));
    let udp = tk::udp(src, dst, 5000, 53, b"dns");
    let ext = [
        60, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next = dest opts, len 0 (8 bytes), PadN(4)
        43, 0, 5, 2, 0, 0, 0, 0, // dest opts: next = routing, len 0, option 5 (router alert) len 2
        17, 0, 4, 0, 0, 0, 0, 0, // routing: next = UDP, type 4 (segment routing), segments left 0
    ];
    let p = tk::ipv6(v6(1), v6(2), 0, 64, &ext, &udp);
    let (seen, _) = decode_one(LinkType::RAW, &p);
    assert_eq!(seen[0].proto, IpProto::UDP);
    assert_eq!(seen[0].header_len, 64);
    assert_eq!(seen[0].payload, b"dns");
    assert_eq!(seen[0].anomalies, ["ipv6.hopopts_only_padding"]);
    // A type 0 routing header is reported.
    let mut ext0 = ext;
    ext0[18] = 0;
    assert!(
        decode_one(LinkType::RAW, &tk::ipv6(v6(1), v6(2), 0, 64, &ext0, &udp)).0[0]
            .anomalies
            .contains(&"ipv6.rh_type_0")
    );
}

#[test]
fn atomic_ipv6_fragment_is_decoded_in_place() {
    let src = IpAddr::V6(v6(1));
    let dst = IpAddr::V6(v6(2));
    let udp = tk::udp(src, dst, 5000, 53, b"x");
    let fh = tk::ipv6_fragment_header(tk::PROTO_UDP, 0, false, 99);
    let p = tk::ipv6(v6(1), v6(2), tk::PROTO_FRAGMENT, 64, &fh, &udp);
    let (seen, _) = decode_one(LinkType::RAW, &p);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].fragment, None);
    assert!(matches!(seen[0].transport, Transport::Udp(_)));
    assert_eq!(seen[0].anomalies, ["ipv6.exthdr_useless_fh"]);
}

#[test]
fn link_types_reach_the_same_ip_packet() {
    let ip = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_ICMP),
        &tk::icmpv4(8, 0, &tk::echo(1, 1, b"")),
    );
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&ip);
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&ip);
    let cases = [
        (
            LinkType::ETHERNET,
            tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &ip),
        ),
        (LinkType::LINUX_SLL, tk::linux_sll(tk::ETHERTYPE_IPV4, &ip)),
        (LinkType::LINUX_SLL2, tk::linux_sll2(tk::ETHERTYPE_IPV4, &ip)),
        (LinkType::RAW, ip.clone()),
        (LinkType::RAW_DLT12, ip.clone()),
        (LinkType::IPV4, ip.clone()),
        (LinkType::NULL, null_le.clone()),
        (LinkType::NULL, null_be),
        (LinkType::LOOP, {
            let mut f = 2u32.to_be_bytes().to_vec();
            f.extend_from_slice(&ip);
            f
        }),
        (
            LinkType::ETHERNET,
            tk::ethernet(
                tk::MAC_B,
                tk::MAC_A,
                &[],
                tk::ETHERTYPE_MPLS,
                &tk::mpls(&[100, 200], &ip),
            ),
        ),
    ];
    for (link, frame) in cases {
        let (seen, loose) = decode_one(link, &frame);
        assert_eq!(seen.len(), 1, "{link:?}");
        assert!(loose.is_empty(), "{link:?}: {loose:?}");
        assert_eq!(seen[0].src, v4([10, 0, 0, 1]), "{link:?}");
        assert_eq!(seen[0].link, link);
    }
    // An unknown loopback family and a bad raw version.
    let mut bad = 99u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&ip);
    assert_eq!(decode_one(LinkType::NULL, &bad).1, ["ltnull.unsupported_type"]);
    assert_eq!(decode_one(LinkType::RAW, &[0x50; 30]).1, ["ipraw.invalid_ip_version"]);
    // DLT IPV4 and IPV6 name their version.
    let mut v6_in_v4 = ip.clone();
    v6_in_v4[0] = 0x65;
    assert_eq!(decode_one(LinkType::IPV4, &v6_in_v4).1, ["ipv4.wrong_ip_version"]);
    assert_eq!(decode_one(LinkType::IPV6, &ip).1, ["ipv6.wrong_ip_version"]);
}

#[test]
fn mpls_reserved_label_is_reported() {
    let ip = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_ICMP),
        &tk::icmpv4(8, 0, &tk::echo(1, 1, b"")),
    );
    let frame = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_MPLS, &tk::mpls(&[7], &ip));
    let (seen, _) = decode_one(LinkType::ETHERNET, &frame);
    assert_eq!(seen[0].anomalies, ["mpls.bad_label_reserved"]);
}

fn inner_icmp() -> Vec<u8> {
    let icmp = tk::icmpv4(8, 0, &tk::echo(0x50c, 1, b"abc"));
    tk::ipv4(
        &tk::Ipv4::new([192, 168, 203, 3], [192, 168, 203, 5], tk::PROTO_ICMP),
        &icmp,
    )
}

fn outer_ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    tk::ipv4(&tk::Ipv4::new([172, 16, 0, 1], [172, 16, 0, 2], proto), payload)
}

#[test]
fn vxlan_yields_outer_udp_then_inner_icmp() {
    let inner_frame = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &inner_icmp());
    let udp = tk::udp(
        v4([172, 16, 0, 1]),
        v4([172, 16, 0, 2]),
        45149,
        4789,
        &tk::vxlan(100, &inner_frame),
    );
    let frame = tk::ethernet(
        tk::MAC_B,
        tk::MAC_A,
        &[5],
        tk::ETHERTYPE_IPV4,
        &outer_ipv4(tk::PROTO_UDP, &udp),
    );
    let mut d = Decoder::new(DecodeConfig::default());
    let (seen, _) = run(&mut d, LinkType::ETHERNET, &frame);
    assert_eq!(seen.len(), 2);
    assert!(seen[0].outer);
    assert_eq!(seen[0].depth, 0);
    let outer_key = seen[0].key.unwrap();
    assert_eq!(
        (outer_key.src_port, outer_key.dst_port, outer_key.proto),
        (45149, 4789, IpProto::UDP)
    );
    let inner = &seen[1];
    assert!(!inner.outer);
    assert_eq!(inner.depth, 1);
    assert_eq!(inner.link, LinkType::ETHERNET);
    assert_eq!(inner.frame, inner_frame);
    assert_eq!(inner.vlans, [5]);
    assert_eq!(
        inner.tunnel,
        Some(Tunnel {
            kind: TunnelKind::Vxlan { vni: 100 },
            outer: outer_key
        })
    );
    assert_eq!(
        inner.transport,
        Transport::Icmp(IcmpHeader {
            icmp_type: 8,
            code: 0,
            echo: Some((0x50c, 1)),
            quoted: None
        })
    );
    assert_eq!(inner.key.unwrap().tunnel_depth, 1);
    assert_eq!(d.counters().vxlan, 1);
    // Another port is plain UDP unless configured.
    let udp = tk::udp(
        v4([172, 16, 0, 1]),
        v4([172, 16, 0, 2]),
        45149,
        8472,
        &tk::vxlan(100, &inner_frame),
    );
    let frame = outer_ipv4(tk::PROTO_UDP, &udp);
    assert_eq!(decode_one(LinkType::RAW, &frame).0.len(), 1);
    let config = DecodeConfig {
        vxlan_ports: vec![8472],
        ..DecodeConfig::default()
    };
    assert_eq!(run(&mut Decoder::new(config), LinkType::RAW, &frame).0.len(), 2);
}

#[test]
fn the_outer_layer_alone_stops_at_the_first_tunnel() {
    // GRE inside VXLAN: the outer-layer decode hands over the VXLAN-carrying UDP packet only.
    let gre = outer_ipv4(tk::PROTO_GRE, &tk::gre(tk::ETHERTYPE_IPV4, None, None, &inner_icmp()));
    let inner_frame = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &gre);
    let udp = tk::udp(v4([172, 16, 0, 1]), v4([172, 16, 0, 2]), 45149, 4789, &tk::vxlan(100, &inner_frame));
    let frame = outer_ipv4(tk::PROTO_UDP, &udp);
    let mut whole = Decoder::new(DecodeConfig::default());
    assert_eq!(run(&mut whole, LinkType::RAW, &frame).0.len(), 3);
    let mut d = Decoder::new(DecodeConfig::default());
    let mut seen = Vec::new();
    d.decode_outer_layer(
        Timestamp::from_secs_nanos(1_000, 0),
        LinkType::RAW,
        &frame,
        &mut |p| seen.push((p.tunnel_depth, p.is_tunnel_outer, p.flow_key().map(|k| k.dst_port))),
        &mut |_, a| panic!("{a:?}"),
    );
    assert_eq!(seen, [(0, true, Some(4789))]);
    // The VXLAN header was read (it is the outer packet's payload); the GRE inside it was not.
    assert_eq!((d.counters().vxlan, d.counters().gre), (1, 0));
    // A frame without a tunnel decodes as usual.
    let mut plain = Vec::new();
    d.decode_outer_layer(Timestamp::from_secs_nanos(1_000, 0), LinkType::RAW, &inner_icmp(), &mut |p| plain.push(p.ip.proto), &mut |_, _| {});
    assert_eq!(plain, [IpProto::ICMP]);
}

#[test]
fn gre_carries_ip_and_ethernet() {
    let inner = inner_icmp();
    let frame = outer_ipv4(tk::PROTO_GRE, &tk::gre(tk::ETHERTYPE_IPV4, Some(1), None, &inner));
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].transport, Transport::Other { proto: IpProto::GRE });
    assert!(seen[0].outer);
    assert_eq!(seen[1].tunnel.unwrap().kind, TunnelKind::Gre);
    assert_eq!(seen[1].link, LinkType::RAW);
    assert_eq!(seen[1].frame, inner);
    let teb = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &inner);
    let frame = outer_ipv4(tk::PROTO_GRE, &tk::gre(tk::ETHERTYPE_TEB, None, None, &teb));
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(seen[1].link, LinkType::ETHERNET);
    assert_eq!(seen[1].src, v4([192, 168, 203, 3]));
    // A GRE header that claims a key it does not have.
    let frame = outer_ipv4(tk::PROTO_GRE, &[0x20, 0x00, 0x08, 0x00]);
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].anomalies, ["gre.version0_hdr_too_big"]);
}

#[test]
fn erspan_types_two_and_three() {
    let mirrored = tk::ethernet(tk::MAC_B, tk::MAC_A, &[], tk::ETHERTYPE_IPV4, &inner_icmp());
    let frame = outer_ipv4(
        tk::PROTO_GRE,
        &tk::gre(
            tk::ETHERTYPE_ERSPAN_II,
            None,
            Some(1),
            &tk::erspan2(33, 12, 0, &mirrored),
        ),
    );
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].tunnel.unwrap().kind, TunnelKind::ErspanII { session: 33 });
    assert_eq!(seen[1].vlans, [12]);
    assert_eq!(seen[1].frame, mirrored);
    let frame = outer_ipv4(
        tk::PROTO_GRE,
        &tk::gre(
            tk::ETHERTYPE_ERSPAN_III,
            None,
            Some(1),
            &tk::erspan3(44, 0, 5, &mirrored),
        ),
    );
    let (seen, _) = decode_one(LinkType::RAW, &frame);
    assert_eq!(seen[1].tunnel.unwrap().kind, TunnelKind::ErspanIII { session: 44 });
    assert!(seen[1].vlans.is_empty());
    // Version 2 announced as type II.
    let mut bad = tk::erspan3(44, 0, 5, &mirrored);
    bad.truncate(30);
    let frame = outer_ipv4(tk::PROTO_GRE, &tk::gre(tk::ETHERTYPE_ERSPAN_II, None, Some(1), &bad));
    assert_eq!(
        decode_one(LinkType::RAW, &frame).0[0].anomalies,
        ["erspan.unsupported_version"]
    );
}

#[test]
fn ip_in_ip_and_ipv6_in_ipv4() {
    let inner = inner_icmp();
    let (seen, _) = decode_one(LinkType::RAW, &outer_ipv4(tk::PROTO_IPIP, &inner));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].tunnel.unwrap().kind, TunnelKind::IpInIp);
    assert_eq!(seen[1].tunnel.unwrap().outer.proto, IpProto::IPIP);
    let m = tk::icmpv6(v6(1), v6(2), 128, 0, &tk::echo(1, 1, b""));
    let inner6 = tk::ipv6(v6(1), v6(2), tk::PROTO_ICMPV6, 64, &[], &m);
    let (seen, _) = decode_one(LinkType::RAW, &outer_ipv4(tk::PROTO_IPV6, &inner6));
    assert_eq!(seen[1].version, IpVersion::V6);
    // IPv4 in IPv6 that is too small: judged on the outer packet.
    let outer6 = tk::ipv6(v6(3), v6(4), tk::PROTO_IPIP, 64, &[], &inner[..10]);
    let (seen, _) = decode_one(LinkType::RAW, &outer6);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].anomalies, ["ipv6.ipv4_in_ipv6_too_small"]);
}

#[test]
fn tunnel_depth_is_bounded() {
    let mut packet = inner_icmp();
    for _ in 0..20 {
        packet = outer_ipv4(tk::PROTO_IPIP, &packet);
    }
    let config = DecodeConfig {
        max_tunnel_depth: 3,
        ..DecodeConfig::default()
    };
    let (seen, _) = run(&mut Decoder::new(config), LinkType::RAW, &packet);
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3].depth, 3);
    assert!(!seen[3].outer);
    assert_eq!(seen[3].anomalies, ["too_many_layers"]);
}

#[test]
fn ipv4_fragments_rebuild_with_the_first_link_header() {
    let src = v4([1, 1, 1, 1]);
    let dst = v4([2, 2, 2, 2]);
    let seg = tk::tcp(src, dst, &tk::Tcp::new(12345, 8080, 1, tk::SYN), &[0x55; 40]);
    let ip = tk::ipv4(&tk::Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], tk::PROTO_TCP), &seg);
    let frags = tk::fragment_ipv4(&ip, 16);
    assert_eq!(frags.len(), 4);
    let mut d = Decoder::new(DecodeConfig::default());
    let mut all = Vec::new();
    for (i, f) in frags.iter().enumerate().rev() {
        let frame = tk::ethernet(tk::MAC_B, [i as u8; 6], &[6], tk::ETHERTYPE_IPV4, f);
        all.extend(run(&mut d, LinkType::ETHERNET, &frame).0);
    }
    assert_eq!(all.len(), 5);
    assert!(all[..4].iter().all(|p| p.fragment.is_some() && p.key.is_none()));
    let rebuilt = &all[4];
    assert!(rebuilt.reassembled);
    // The first fragment's link header (source MAC 00:00:..), then the original datagram.
    assert_eq!(
        rebuilt.frame,
        tk::ethernet(tk::MAC_B, [0; 6], &[6], tk::ETHERTYPE_IPV4, &ip)
    );
    assert_eq!(rebuilt.payload, [0x55; 40]);
    assert_eq!(rebuilt.key.unwrap().vlans.as_slice(), &[6]);
    assert_eq!(d.counters().defrag.ipv4_fragments, 4);
    assert_eq!(d.counters().defrag.ipv4_reassembled, 1);
}

#[test]
fn ipv4_overlap_is_reported_on_the_fragment() {
    let base = tk::ipv4(&tk::Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], 253), &[0; 24]);
    let config = DecodeConfig {
        defrag: DefragConfig {
            policy: OverlapPolicy::First,
            ..DefragConfig::default()
        },
        ..DecodeConfig::default()
    };
    let mut d = Decoder::new(config);
    let (a, _) = run(
        &mut d,
        LinkType::RAW,
        &tk::ipv4_fragment_of(&base, 0, true, &[b'a'; 16]),
    );
    let (b, _) = run(
        &mut d,
        LinkType::RAW,
        &tk::ipv4_fragment_of(&base, 8, false, &[b'b'; 16]),
    );
    assert!(a[0].anomalies.is_empty());
    assert_eq!(b[0].anomalies, ["ipv4.frag_overlap"]);
    assert_eq!(b[1].payload, [[b'a'; 16].as_slice(), &[b'b'; 8]].concat());
    assert_eq!(b[1].transport, Transport::Other { proto: IpProto(253) });
}

#[test]
fn ipv6_fragments_rebuild_without_the_fragment_header() {
    let src = IpAddr::V6(v6(1));
    let dst = IpAddr::V6(v6(2));
    let udp = tk::udp(src, dst, 1, 2, &[9; 100]);
    let p = tk::ipv6(v6(1), v6(2), tk::PROTO_UDP, 64, &[], &udp);
    let frags = tk::fragment_ipv6(&p, 48, 0xabcd);
    let mut d = Decoder::new(DecodeConfig::default());
    let mut all = Vec::new();
    for f in &frags {
        all.extend(run(&mut d, LinkType::RAW, f).0);
    }
    assert_eq!(all.len(), frags.len() + 1);
    assert_eq!(
        all[0].fragment,
        Some(Fragment {
            offset: 0,
            more: true,
            id: 0xabcd
        })
    );
    assert_eq!(all[0].proto, IpProto::UDP);
    let rebuilt = all.last().unwrap();
    assert_eq!(rebuilt.frame, p);
    assert_eq!(rebuilt.payload, [9; 100]);
    assert_eq!(d.counters().defrag.ipv6_reassembled, 1);
}

#[test]
fn defrag_off_hands_fragments_over_unchanged() {
    let base = tk::ipv4(&tk::Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], 253), &[0; 16]);
    let config = DecodeConfig {
        defrag: DefragConfig {
            enabled: false,
            ..DefragConfig::default()
        },
        ..DecodeConfig::default()
    };
    let mut d = Decoder::new(config);
    for f in tk::fragment_ipv4(&base, 8) {
        assert_eq!(run(&mut d, LinkType::RAW, &f).0.len(), 1);
    }
}

#[test]
fn counters_add_up() {
    let mut d = Decoder::new(DecodeConfig::default());
    run(&mut d, LinkType::ETHERNET, &VLAN_TCP_SYN);
    run(&mut d, LinkType::ETHERNET, &VLAN_TCP_SYN[..5]);
    run(&mut d, LinkType(9999), &[1, 2, 3]);
    let c = d.counters();
    assert_eq!((c.packets, c.bytes), (3, 62 + 5 + 3));
    assert_eq!((c.ethernet, c.vlan, c.ipv4, c.tcp), (2, 1, 1, 1));
    assert_eq!(c.unsupported_link, 1);
    assert_eq!(c.invalid, 1);
    assert_eq!(c.packets_out, 1);
    assert_eq!(c.anomalies.get("ethernet.pkt_too_small"), Some(&1));
}

#[test]
fn icmp_errors_expose_the_quoted_packet() {
    let a = v4([10, 0, 0, 1]);
    let b = v4([10, 0, 0, 2]);
    // The DNS query that drew a port unreachable: quoted IP header and 8 bytes of UDP.
    let query = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_UDP),
        &tk::udp(a, b, 5353, 53, b"q"),
    );
    let mut rest = vec![0, 0, 0, 0];
    rest.extend_from_slice(&query[..28]);
    let error = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 2], [10, 0, 0, 1], tk::PROTO_ICMP),
        &tk::icmpv4(3, 3, &rest),
    );
    let (seen, _) = decode_one(LinkType::RAW, &error);
    let Transport::Icmp(icmp) = seen[0].transport else {
        panic!()
    };
    assert_eq!(
        icmp.quoted,
        Some(QuotedPacket {
            src: a,
            dst: b,
            proto: IpProto::UDP,
            src_port: 5353,
            dst_port: 53
        })
    );
    assert!(seen[0].anomalies.is_empty());
    // ICMPv6 packet too big quoting an IPv6 TCP segment.
    let s6 = IpAddr::V6(v6(1));
    let d6 = IpAddr::V6(v6(2));
    let seg = tk::ipv6(
        v6(1),
        v6(2),
        tk::PROTO_TCP,
        64,
        &[],
        &tk::tcp(s6, d6, &tk::Tcp::new(4000, 443, 1, tk::ACK), &[]),
    );
    let mut rest = 1280u32.to_be_bytes().to_vec();
    rest.extend_from_slice(&seg);
    let m = tk::icmpv6(v6(9), v6(1), 2, 0, &rest);
    let (seen, _) = decode_one(LinkType::RAW, &tk::ipv6(v6(9), v6(1), tk::PROTO_ICMPV6, 64, &[], &m));
    let Transport::Icmp(icmp) = seen[0].transport else {
        panic!()
    };
    assert_eq!(
        icmp.quoted,
        Some(QuotedPacket {
            src: s6,
            dst: d6,
            proto: IpProto::TCP,
            src_port: 4000,
            dst_port: 443
        })
    );
    // A quote that is not IPv6.
    let m = tk::icmpv6(v6(9), v6(1), 1, 4, &[0u8; 44]);
    let (seen, _) = decode_one(LinkType::RAW, &tk::ipv6(v6(9), v6(1), tk::PROTO_ICMPV6, 64, &[], &m));
    assert_eq!(seen[0].anomalies, ["icmpv6.ipv6_unknown_version"]);
}
