//! Test-only packet walk: pcap -> Ethernet/VLAN/Null -> IPv4 -> TCP -> `TcpSegment`, and a
//! per-flow driver that records every stream event. The real decoder lives elsewhere; this is
//! the minimum needed to replay the corpus pcaps through `TcpSession`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use weir_core::{Direction, StreamEvent, Timestamp};
use weir_reassembly::{SegmentOutcome, StreamConfig, TcpSegment, TcpSession};

type Endpoint = (Ipv4Addr, u16);

pub const CORPUS: &str = "/work/shared/corpus/suricata-verify";

#[derive(Clone, Debug)]
pub struct Packet {
    pub ts: Timestamp,
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub wscale: Option<u8>,
    pub timestamp: Option<(u32, u32)>,
    pub sack_permitted: bool,
    pub payload: Vec<u8>,
}

pub fn read_pcap(relative: &str) -> Vec<Packet> {
    let path = PathBuf::from(CORPUS).join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut rest, header) = pcap_parser::parse_pcap_header(&bytes).expect("pcap header");
    assert!(!header.is_bigendian(), "test pcaps are little-endian");
    let link = header.network.0;
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let (next, frame) = pcap_parser::parse_pcap_frame(rest).expect("pcap frame");
        rest = next;
        let ts = Timestamp::from_secs_nanos(u64::from(frame.ts_sec), u64::from(frame.ts_usec) * 1000);
        if let Some(p) = parse_frame(link, frame.data, ts) {
            packets.push(p);
        }
    }
    packets
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_frame(link: i32, data: &[u8], ts: Timestamp) -> Option<Packet> {
    let ip = match link {
        // Ethernet, with any number of 802.1Q tags
        1 => {
            let mut at = 12;
            let mut ethertype = be16(data, at);
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                at += 4;
                ethertype = be16(data, at);
            }
            if ethertype != 0x0800 {
                return None;
            }
            &data[at + 2..]
        }
        // BSD loopback: 4-byte address family in host order
        0 => &data[4..],
        // raw IP
        101 | 12 | 228 => data,
        other => panic!("linktype {other} not handled by the test walker"),
    };
    if ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)).min(ip.len());
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp = &ip[ihl..total];
    let doff = usize::from(tcp[12] >> 4) * 4;
    let mut p = Packet {
        ts,
        src: (src, be16(tcp, 0)),
        dst: (dst, be16(tcp, 2)),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        flags: tcp[13],
        window: be16(tcp, 14),
        wscale: None,
        timestamp: None,
        sack_permitted: false,
        payload: tcp[doff..].to_vec(),
    };
    let mut options = &tcp[20..doff];
    while let Some(&kind) = options.first() {
        match kind {
            0 => break,
            1 => options = &options[1..],
            _ => {
                let len = usize::from(*options.get(1)?).max(2);
                let body = options.get(2..len)?;
                match kind {
                    3 => p.wscale = body.first().copied(),
                    4 => p.sack_permitted = true,
                    8 if body.len() == 8 => p.timestamp = Some((be32(body, 0), be32(body, 4))),
                    _ => {}
                }
                options = &options[len..];
            }
        }
    }
    Some(p)
}

/// Owned stream event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Data(Vec<u8>),
    Gap(u64),
    End,
}

impl Ev {
    pub fn of(ev: StreamEvent<'_>) -> Ev {
        match ev {
            StreamEvent::Data(d) => Ev::Data(d.to_vec()),
            StreamEvent::Gap { len } => Ev::Gap(len),
            StreamEvent::End => Ev::End,
        }
    }
}

/// What happened on one flow of a replay.
#[derive(Debug, Default)]
pub struct FlowRun {
    pub session: TcpSession,
    pub first_src: Option<(Ipv4Addr, u16)>,
    /// (index of the packet in the pcap, or None for the flush at the end; direction; event)
    pub events: Vec<(Option<usize>, Direction, Ev)>,
    pub outcomes: Vec<(usize, SegmentOutcome)>,
}

impl FlowRun {
    /// One direction's stream in Suricata's printable form: gaps as "[N bytes missing]".
    pub fn stream(&self, dir: Direction) -> String {
        let mut s = String::new();
        for (_, d, ev) in &self.events {
            if *d != dir {
                continue;
            }
            match ev {
                Ev::Data(bytes) => s.push_str(&String::from_utf8_lossy(bytes)),
                Ev::Gap(len) => s.push_str(&format!("[{len} bytes missing]")),
                Ev::End => {}
            }
        }
        s
    }

    /// Events of one direction that were released by packets (not by the final flush).
    pub fn released_before_flush(&self, dir: Direction) -> Vec<(usize, Ev)> {
        self.events.iter().filter(|(i, d, _)| *d == dir && i.is_some()).map(|(i, _, e)| (i.unwrap_or(0), e.clone())).collect()
    }

    pub fn ends(&self, dir: Direction) -> usize {
        self.events.iter().filter(|(_, d, e)| *d == dir && *e == Ev::End).count()
    }

    pub fn anomalies(&self) -> Vec<(usize, &'static str)> {
        self.outcomes.iter().flat_map(|(i, o)| o.anomalies.iter().map(move |a| (*i, a.event))).collect()
    }
}

/// Replays a pcap through one `TcpSession` per 4-tuple, then flushes every session.
pub fn replay(relative: &str, cfg: &StreamConfig) -> Vec<FlowRun> {
    let packets = read_pcap(relative);
    let mut order: Vec<(Endpoint, Endpoint)> = Vec::new();
    let mut flows: HashMap<(Endpoint, Endpoint), FlowRun> = HashMap::new();
    for (index, p) in packets.iter().enumerate() {
        let key = if p.src <= p.dst { (p.src, p.dst) } else { (p.dst, p.src) };
        if !flows.contains_key(&key) {
            order.push(key);
        }
        let run = flows.entry(key).or_default();
        let first = *run.first_src.get_or_insert(p.src);
        let seg = TcpSegment {
            ts: p.ts,
            from_initiator: p.src == first,
            seq: p.seq,
            ack: p.ack,
            flags: p.flags,
            window: p.window,
            wscale: p.wscale,
            timestamp: p.timestamp,
            sack_permitted: p.sack_permitted,
            payload: &p.payload,
        };
        let events = &mut run.events;
        let outcome = run.session.on_segment(cfg, &seg, &mut |dir, ev| events.push((Some(index), dir, Ev::of(ev))));
        run.outcomes.push((index, outcome));
    }
    let mut runs = Vec::new();
    for key in order {
        let Some(mut run) = flows.remove(&key) else { continue };
        let events = &mut run.events;
        run.session.flush(cfg, &mut |dir, ev| events.push((None, dir, Ev::of(ev))));
        runs.push(run);
    }
    runs
}

pub fn single(relative: &str, cfg: &StreamConfig) -> FlowRun {
    let mut runs = replay(relative, cfg);
    assert_eq!(runs.len(), 1, "{relative} has one flow");
    runs.remove(0)
}
