//! Property tests: defragmentation against the original datagram, and hostile frames against the
//! decoder's invariants.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use weir_core::{LinkType, Timestamp};
use weir_decode::{DecodeConfig, Decoder, DefragConfig, OverlapPolicy};
use weir_testkit::packet as tk;

fn policy() -> impl Strategy<Value = OverlapPolicy> {
    prop_oneof![
        Just(OverlapPolicy::First),
        Just(OverlapPolicy::Last),
        Just(OverlapPolicy::Bsd),
        Just(OverlapPolicy::BsdRight),
        Just(OverlapPolicy::Linux),
        Just(OverlapPolicy::Windows),
        Just(OverlapPolicy::Solaris),
    ]
}

/// Fragment ranges over `len` (> 8) bytes: a partition at 8 and at random multiples of 8, plus extra
/// ranges that overlap it, each (start, end) with start a multiple of 8 and end a multiple of 8 or
/// `len`. None covers the whole datagram: that would be an unfragmented (atomic) packet.
fn ranges(len: usize, cuts: &[usize], extras: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| (c % len) / 8 * 8).filter(|&c| c > 0).collect();
    points.push(8);
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    let mut out: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
    for &(a, b) in extras {
        let start = (a % len) / 8 * 8;
        let end = (start + 8 + (b % len) / 8 * 8).min(len);
        if start < end && (start, end) != (0, len) {
            out.push((start, end));
        }
    }
    out
}

/// Feeds fragments in the given order; returns every rebuilt frame.
fn reassemble(config: DecodeConfig, frags: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut d = Decoder::new(config);
    let mut rebuilt = Vec::new();
    for f in frags {
        d.decode(Timestamp::from_secs_nanos(1, 0), LinkType::RAW, f, &mut |p| {
            if p.reassembled {
                rebuilt.push(p.frame.to_vec());
            }
        });
    }
    rebuilt
}

fn shuffled<T: Clone>(items: &[T], order: &[usize], duplicates: &[usize]) -> Vec<T> {
    let mut keyed: Vec<(usize, T)> = items
        .iter()
        .enumerate()
        .map(|(i, x)| (order.get(i).copied().unwrap_or(i), x.clone()))
        .collect();
    for (n, &d) in duplicates.iter().enumerate() {
        let i = d % items.len();
        keyed.push((order.get(n).copied().unwrap_or(n) ^ d, items[i].clone()));
    }
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, x)| x).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any fragmentation of a datagram, in any order, with duplicates and consistent overlaps,
    /// rebuilds the original bytes under every policy.
    #[test]
    fn ipv4_any_fragmentation_rebuilds_the_original(
        data in proptest::collection::vec(any::<u8>(), 9..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        extras in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..6),
        order in proptest::collection::vec(any::<usize>(), 0..32),
        duplicates in proptest::collection::vec(any::<usize>(), 0..4),
        policy in policy(),
    ) {
        let original = tk::ipv4(&tk::Ipv4::new([10, 1, 1, 1], [10, 2, 2, 2], 253), &data);
        let frags: Vec<Vec<u8>> = ranges(data.len(), &cuts, &extras)
            .into_iter()
            .map(|(s, e)| tk::ipv4_fragment_of(&original, s, e < data.len(), &data[s..e]))
            .collect();
        let config = DecodeConfig { defrag: DefragConfig { policy, ..DefragConfig::default() }, ..DecodeConfig::default() };
        let rebuilt = reassemble(config, &shuffled(&frags, &order, &duplicates));
        prop_assert!(!rebuilt.is_empty());
        for r in rebuilt {
            prop_assert_eq!(&r, &original);
        }
    }

    #[test]
    fn ipv6_any_fragmentation_rebuilds_the_original(
        data in proptest::collection::vec(any::<u8>(), 9..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        extras in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..6),
        order in proptest::collection::vec(any::<usize>(), 0..32),
        duplicates in proptest::collection::vec(any::<usize>(), 0..4),
        policy in policy(),
    ) {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let original = tk::ipv6(src, dst, 253, 64, &[], &data);
        let frags: Vec<Vec<u8>> = ranges(data.len(), &cuts, &extras)
            .into_iter()
            .map(|(s, e)| tk::ipv6_fragment_of(&original, 253, 77, s, e < data.len(), &data[s..e]))
            .collect();
        let config = DecodeConfig { defrag: DefragConfig { policy, ..DefragConfig::default() }, ..DecodeConfig::default() };
        let rebuilt = reassemble(config, &shuffled(&frags, &order, &duplicates));
        prop_assert!(!rebuilt.is_empty());
        for r in rebuilt {
            prop_assert_eq!(&r, &original);
        }
    }

    /// Arbitrary bytes under every link type: no panic, and every packet's payload and IP header
    /// lie inside the frame handed over with it.
    #[test]
    fn hostile_frames_keep_views_inside_the_frame(
        link in prop_oneof![Just(LinkType::ETHERNET), Just(LinkType::RAW), Just(LinkType::LINUX_SLL),
                            Just(LinkType::LINUX_SLL2), Just(LinkType::NULL), Just(LinkType::LOOP)],
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        check_views(link, &bytes)?;
    }

    /// Valid frames with a few bytes changed reach deeper layers than random bytes do.
    #[test]
    fn mutated_tunnel_frames_keep_views_inside_the_frame(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        which in 0usize..4,
    ) {
        let mut frame = sample(which);
        for (at, value) in edits {
            let i = at % frame.len();
            frame[i] = value;
        }
        frame.truncate(cut % (frame.len() + 1));
        check_views(LinkType::ETHERNET, &frame)?;
    }
}

fn sample(which: usize) -> Vec<u8> {
    let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut h = tk::Tcp::new(1, 2, 3, tk::SYN);
    h.options = vec![2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 0, 0];
    let tcp = tk::ipv4(
        &tk::Ipv4::new([10, 0, 0, 1], [10, 0, 0, 2], tk::PROTO_TCP),
        &tk::tcp(a, b, &h, b"data"),
    );
    let inner = tk::ethernet(tk::MAC_A, tk::MAC_B, &[7], tk::ETHERTYPE_IPV4, &tcp);
    let outer = |proto, payload: &[u8]| tk::ipv4(&tk::Ipv4::new([1, 1, 1, 1], [2, 2, 2, 2], proto), payload);
    let ip = match which {
        0 => outer(tk::PROTO_UDP, &tk::udp(a, b, 999, 4789, &tk::vxlan(5, &inner))),
        1 => outer(
            tk::PROTO_GRE,
            &tk::gre(tk::ETHERTYPE_ERSPAN_II, None, Some(1), &tk::erspan2(1, 2, 3, &inner)),
        ),
        2 => outer(tk::PROTO_GRE, &tk::gre(tk::ETHERTYPE_TEB, Some(1), Some(2), &inner)),
        _ => {
            let s = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
            let d = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
            let ext = [44, 0, 1, 4, 0, 0, 0, 0];
            return tk::ethernet(
                tk::MAC_A,
                tk::MAC_B,
                &[],
                tk::ETHERTYPE_IPV6,
                &tk::ipv6(
                    s,
                    d,
                    0,
                    64,
                    &ext,
                    &tk::ipv6_fragment_of(&tcp, 6, 9, 0, true, &tcp[..16])[40..],
                ),
            );
        }
    };
    tk::ethernet(tk::MAC_A, tk::MAC_B, &[1, 2], tk::ETHERTYPE_IPV4, &ip)
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn check_views(link: LinkType, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut d = Decoder::new(DecodeConfig {
        checksum_validation: true,
        ..DecodeConfig::default()
    });
    let mut ok = true;
    let mut loose = 0u64;
    d.decode_with_anomalies(
        Timestamp::ZERO,
        link,
        bytes,
        &mut |p| {
            ok &= within(p.frame, p.payload) && within(p.frame, p.ip.header) && p.ip.header.len() <= p.ip.total_len;
        },
        &mut |_, _| loose += 1,
    );
    prop_assert!(ok);
    // Every anomaly counted went either to a packet or to the second callback.
    let counted: u64 = d.counters().anomalies.values().sum();
    prop_assert!(counted >= loose);
    Ok(())
}
