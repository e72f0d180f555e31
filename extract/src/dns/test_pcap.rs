//! Test support: reads the corpus's classic pcap files (Ethernet, IPv4/IPv6, UDP/TCP) and turns
//! them into what the parsers take: UDP payloads, and per-direction TCP byte streams in order.
//! Deliberately small: the corpus files used here are clean captures.

use std::path::PathBuf;

use weir_core::{Direction, Timestamp};

/// A file of the shared suricata-verify corpus, which sits beside the work tree.
pub(crate) fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/suricata-verify").join(rel)
}

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub ts: Timestamp,
    pub src: (Vec<u8>, u16),
    pub dst: (Vec<u8>, u16),
    pub tcp: Option<TcpInfo>,
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpInfo {
    pub seq: u32,
    pub syn: bool,
}

fn rd16(b: &[u8], i: usize, le: bool) -> u16 {
    let v = [b[i], b[i + 1]];
    if le { u16::from_le_bytes(v) } else { u16::from_be_bytes(v) }
}

fn rd32(b: &[u8], i: usize, le: bool) -> u32 {
    let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if le { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) }
}

/// Every UDP or TCP packet of the file, in file order.
pub(crate) fn read(rel: &str) -> Vec<Segment> {
    let path = corpus(rel);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let (le, nanos) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        other => panic!("not a classic pcap: {other:#x}"),
    };
    assert_eq!(rd32(&data, 20, le), 1, "only Ethernet captures are read here");
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let secs = u64::from(rd32(&data, pos, le));
        let frac = u64::from(rd32(&data, pos + 4, le));
        let caplen = rd32(&data, pos + 8, le) as usize;
        let frame = &data[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        let ts = Timestamp::from_secs_nanos(secs, if nanos { frac } else { frac * 1000 });
        if let Some(seg) = decode(frame, ts) {
            out.push(seg);
        }
    }
    out
}

fn decode(frame: &[u8], ts: Timestamp) -> Option<Segment> {
    let mut ethertype = rd16(frame, 12, false);
    let mut l3 = 14;
    while ethertype == 0x8100 {
        ethertype = rd16(frame, l3 + 2, false);
        l3 += 4;
    }
    let ip = &frame[l3..];
    let (proto, src, dst, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(rd16(ip, 2, false));
            (ip[9], ip[12..16].to_vec(), ip[16..20].to_vec(), &ip[ihl..total.min(ip.len())])
        }
        0x86dd => {
            let plen = usize::from(rd16(ip, 4, false));
            (ip[6], ip[8..24].to_vec(), ip[24..40].to_vec(), &ip[40..(40 + plen).min(ip.len())])
        }
        _ => return None,
    };
    let sport = rd16(l4, 0, false);
    let dport = rd16(l4, 2, false);
    match proto {
        17 => Some(Segment { ts, src: (src, sport), dst: (dst, dport), tcp: None, payload: l4[8..].to_vec() }),
        6 => {
            let off = usize::from(l4[12] >> 4) * 4;
            let tcp = TcpInfo { seq: rd32(l4, 4, false), syn: l4[13] & 0x02 != 0 };
            Some(Segment { ts, src: (src, sport), dst: (dst, dport), tcp: Some(tcp), payload: l4[off..].to_vec() })
        }
        _ => None,
    }
}

/// One TCP connection: each payload-carrying segment in capture order, with its direction,
/// retransmitted bytes removed.
#[derive(Debug)]
pub(crate) struct TcpConn {
    pub client: (Vec<u8>, u16),
    pub chunks: Vec<(Direction, Timestamp, Vec<u8>)>,
}

pub(crate) fn tcp_conns(segments: &[Segment]) -> Vec<TcpConn> {
    // (connection, server endpoint, next expected sequence number per direction)
    type Tracked = (TcpConn, (Vec<u8>, u16), [Option<u32>; 2]);
    let mut conns: Vec<Tracked> = Vec::new();
    for seg in segments {
        let Some(tcp) = seg.tcp else { continue };
        let idx = conns.iter().position(|(c, server, _)| {
            (c.client == seg.src && *server == seg.dst) || (c.client == seg.dst && *server == seg.src)
        });
        let idx = match idx {
            Some(i) => i,
            None => {
                // Whoever sends the first SYN (or the first packet) is the client.
                let conn = TcpConn { client: seg.src.clone(), chunks: Vec::new() };
                conns.push((conn, seg.dst.clone(), [None, None]));
                conns.len() - 1
            }
        };
        let (conn, _, next) = &mut conns[idx];
        let dir = if conn.client == seg.src { Direction::ToServer } else { Direction::ToClient };
        let next_seq = &mut next[dir.index()];
        let start = tcp.seq.wrapping_add(u32::from(tcp.syn));
        let expected = *next_seq.get_or_insert(start);
        let skip = expected.wrapping_sub(start) as usize;
        if skip >= seg.payload.len() {
            continue;
        }
        let fresh = &seg.payload[skip..];
        *next_seq = Some(expected.wrapping_add(fresh.len() as u32));
        conn.chunks.push((dir, seg.ts, fresh.to_vec()));
    }
    conns.into_iter().map(|(c, _, _)| c).collect()
}
