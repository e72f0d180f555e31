//! Test support for FTP and SMB: reads a capture and replays its TCP connections as a worker
//! would see them, in packet order across flows: a flow opening (with its key, oriented client to
//! server), then per-direction steps of reassembled bytes (retransmissions removed, holes as
//! gaps), then the ends. Tests only; deliberately small (no sequence wraparound beyond relative
//! offsets, no overlap policy).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use weir_core::{Direction, FlowKey, IpProto, Timestamp, Vlans};

pub(crate) fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/suricata-verify")
        .join(rel)
}

pub(crate) fn project_pcap(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../pcaps")
        .join(name)
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    Data(Vec<u8>),
    Gap(u64),
    End,
}

#[derive(Clone, Debug)]
pub(crate) enum Event {
    Open {
        conn: usize,
        key: FlowKey,
        ts: Timestamp,
    },
    Step {
        conn: usize,
        dir: Direction,
        step: Step,
        ts: Timestamp,
    },
}

struct Half {
    base: Option<u32>,
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    fin_at: Option<u64>,
    ended: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            base: None,
            next: 0,
            pending: BTreeMap::new(),
            fin_at: None,
            ended: false,
        }
    }
    fn rel(&self, seq: u32) -> u64 {
        u64::from(seq.wrapping_sub(self.base.unwrap_or(seq)))
    }
    fn drain(&mut self, out: &mut Vec<Step>) {
        while let Some((&off, _)) = self.pending.iter().next() {
            if off > self.next {
                break;
            }
            let data = self.pending.remove(&off).unwrap_or_default();
            let end = off + data.len() as u64;
            if end > self.next {
                out.push(Step::Data(data[(self.next - off) as usize..].to_vec()));
                self.next = end;
            }
        }
        if !self.ended && self.fin_at.is_some_and(|f| f <= self.next) {
            self.ended = true;
            out.push(Step::End);
        }
    }
    fn flush(&mut self, out: &mut Vec<Step>) {
        while let Some(&first) = self.pending.keys().next() {
            if first > self.next {
                out.push(Step::Gap(first - self.next));
                self.next = first;
            }
            self.drain(out);
        }
        if !self.ended {
            self.ended = true;
            out.push(Step::End);
        }
    }
}

struct Conn {
    key: FlowKey,
    halves: [Half; 2],
}

fn ip_addr(b: &[u8]) -> IpAddr {
    match b.len() {
        4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        _ => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    }
}

/// Every TCP connection of the capture, replayed in packet order.
pub(crate) fn replay(path: &Path) -> Vec<Event> {
    use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = create_reader(1 << 20, file).expect("reader");
    let mut linktype = 1i32;
    let mut packets: Vec<(Timestamp, Vec<u8>)> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => linktype = h.network.0,
                    PcapBlockOwned::Legacy(p) => {
                        let ts = Timestamp::from_secs_nanos(
                            u64::from(p.ts_sec),
                            u64::from(p.ts_usec) * 1000,
                        );
                        packets.push((ts, p.data.to_vec()))
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::InterfaceDescription(i)) => {
                        linktype = i.linktype.0
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(p)) => {
                        let t = (u64::from(p.ts_high) << 32) | u64::from(p.ts_low);
                        packets.push((Timestamp::from_nanos(t * 1000), p.data.to_vec()))
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
            Err(e) => panic!("pcap error {e:?}"),
        }
    }

    let mut conns: Vec<Conn> = Vec::new();
    let mut events = Vec::new();
    let mut last_ts = Timestamp::ZERO;
    for (ts, pkt) in packets {
        last_ts = ts;
        let ip = match linktype {
            1 if pkt.len() >= 14 => {
                let mut off = 12;
                let mut ethertype = u16::from_be_bytes([pkt[12], pkt[13]]);
                while ethertype == 0x8100 && pkt.len() >= off + 6 {
                    off += 4;
                    ethertype = u16::from_be_bytes([pkt[off], pkt[off + 1]]);
                }
                &pkt[off + 2..]
            }
            0 if pkt.len() >= 4 => &pkt[4..],
            101 => &pkt[..],
            113 if pkt.len() >= 16 => &pkt[16..],
            _ => continue,
        };
        let (src, dst, tcp) = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
                if ip[9] != 6 || total < ihl {
                    continue;
                }
                (ip_addr(&ip[12..16]), ip_addr(&ip[16..20]), &ip[ihl..total])
            }
            Some(6) if ip.len() >= 40 => {
                let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                if ip[6] != 6 {
                    continue;
                }
                (
                    ip_addr(&ip[8..24]),
                    ip_addr(&ip[24..40]),
                    &ip[40..(40 + plen).min(ip.len())],
                )
            }
            _ => continue,
        };
        if tcp.len() < 20 {
            continue;
        }
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let doff = usize::from(tcp[12] >> 4) * 4;
        let flags = tcp[13];
        let (fin, syn, rst, ack) = (
            flags & 1 != 0,
            flags & 2 != 0,
            flags & 4 != 0,
            flags & 0x10 != 0,
        );
        let payload = tcp.get(doff..).unwrap_or(&[]);
        let same = |k: &FlowKey| {
            (k.src_ip == src && k.src_port == sport && k.dst_ip == dst && k.dst_port == dport)
                || (k.src_ip == dst
                    && k.src_port == dport
                    && k.dst_ip == src
                    && k.dst_port == sport)
        };
        let existing = conns
            .iter()
            .rposition(|c| same(&c.key) && !(syn && !ack && c.halves.iter().all(|h| h.ended)));
        let idx = match existing {
            Some(i) => i,
            None => {
                let (s, sp, d, dp) = if syn && ack {
                    (dst, dport, src, sport)
                } else {
                    (src, sport, dst, dport)
                };
                let key = FlowKey {
                    src_ip: s,
                    dst_ip: d,
                    src_port: sp,
                    dst_port: dp,
                    proto: IpProto::TCP,
                    vlans: Vlans::default(),
                    tunnel_depth: 0,
                };
                conns.push(Conn {
                    key,
                    halves: [Half::new(), Half::new()],
                });
                events.push(Event::Open {
                    conn: conns.len() - 1,
                    key,
                    ts,
                });
                conns.len() - 1
            }
        };
        let conn = &mut conns[idx];
        let dir = if conn.key.src_ip == src && conn.key.src_port == sport {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let half = &mut conn.halves[dir.index()];
        if syn {
            half.base = Some(seq.wrapping_add(1));
        }
        if half.base.is_none() {
            half.base = Some(seq);
        }
        let mut steps = Vec::new();
        if rst {
            for d in [Direction::ToServer, Direction::ToClient] {
                let mut s = Vec::new();
                conn.halves[d.index()].flush(&mut s);
                events.extend(s.into_iter().map(|step| Event::Step {
                    conn: idx,
                    dir: d,
                    step,
                    ts,
                }));
            }
            continue;
        }
        let off = half.rel(seq);
        if !payload.is_empty() && off < 1 << 31 {
            half.pending.insert(off, payload.to_vec());
        }
        if fin && off < 1 << 31 {
            half.fin_at = Some(off + payload.len() as u64);
        }
        half.drain(&mut steps);
        events.extend(steps.into_iter().map(|step| Event::Step {
            conn: idx,
            dir,
            step,
            ts,
        }));
    }
    for (idx, conn) in conns.iter_mut().enumerate() {
        for d in [Direction::ToServer, Direction::ToClient] {
            let mut s = Vec::new();
            conn.halves[d.index()].flush(&mut s);
            events.extend(s.into_iter().map(|step| Event::Step {
                conn: idx,
                dir: d,
                step,
                ts: last_ts,
            }));
        }
    }
    events
}
