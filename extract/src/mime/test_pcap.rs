//! Test support for the mail protocols: reads a classic pcap (Ethernet, BSD loopback, raw IP or
//! Linux cooked) into per-connection TCP byte streams in capture order, retransmissions
//! removed, and replays them into a parser. A truncated last record ends the file, as some
//! corpus captures are cut.

use std::path::{Path, PathBuf};

use weir_core::{Direction, StreamEvent, Timestamp};

/// A file of the shared suricata-verify corpus, which sits beside the work tree.
pub(crate) fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/suricata-verify").join(rel)
}

/// A capture the project made (`pcaps/` at the root of the work tree).
pub(crate) fn project_pcap(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps").join(name)
}

/// One TCP connection: payload chunks with direction and time, in capture order.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    pub server_port: u16,
    pub chunks: Vec<(Direction, Timestamp, Vec<u8>)>,
}

impl Conn {
    /// Feeds the chunks and then `End` on both directions into `feed`.
    pub(crate) fn replay(&self, feed: &mut dyn FnMut(Direction, StreamEvent<'_>, Timestamp)) {
        let mut last = Timestamp::ZERO;
        for (dir, ts, data) in &self.chunks {
            feed(*dir, StreamEvent::Data(data), *ts);
            last = *ts;
        }
        feed(Direction::ToServer, StreamEvent::End, last);
        feed(Direction::ToClient, StreamEvent::End, last);
    }
}

fn rd16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn rd32(b: &[u8], i: usize, le: bool) -> Option<u32> {
    let v = [*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?];
    Some(if le { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
}

struct Seg {
    ts: Timestamp,
    src: (Vec<u8>, u16),
    dst: (Vec<u8>, u16),
    seq: u32,
    syn: bool,
    payload: Vec<u8>,
}

/// The TCP connections of a capture, in order of first packet.
pub(crate) fn tcp_conns(path: &Path) -> Vec<Conn> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let magic = rd32(&data, 0, true).expect("pcap header");
    let (le, nanos) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        other => panic!("not a classic pcap: {other:#x}"),
    };
    let linktype = rd32(&data, 20, le).expect("linktype");
    let mut segs = Vec::new();
    let mut pos = 24;
    while let (Some(secs), Some(frac), Some(caplen)) =
        (rd32(&data, pos, le), rd32(&data, pos + 4, le), rd32(&data, pos + 8, le))
    {
        let Some(frame) = data.get(pos + 16..pos + 16 + caplen as usize) else { break };
        pos += 16 + caplen as usize;
        let ts =
            Timestamp::from_secs_nanos(u64::from(secs), if nanos { u64::from(frac) } else { u64::from(frac) * 1000 });
        let l3 = match linktype {
            1 => {
                let mut off = 12;
                while rd16(frame, off) == Some(0x8100) {
                    off += 4;
                }
                off + 2
            }
            0 => 4,
            101 | 12 => 0,
            113 => 16,
            other => panic!("link type {other} not read here"),
        };
        if let Some(s) = decode(frame.get(l3..).unwrap_or_default(), ts) {
            segs.push(s);
        }
    }
    assemble(segs)
}

fn decode(ip: &[u8], ts: Timestamp) -> Option<Seg> {
    let (proto, src, dst, l4) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(rd16(ip, 2)?);
            (*ip.get(9)?, ip.get(12..16)?.to_vec(), ip.get(16..20)?.to_vec(), ip.get(ihl..total.min(ip.len()))?)
        }
        6 => {
            let plen = usize::from(rd16(ip, 4)?);
            (*ip.get(6)?, ip.get(8..24)?.to_vec(), ip.get(24..40)?.to_vec(), ip.get(40..(40 + plen).min(ip.len()))?)
        }
        _ => return None,
    };
    if proto != 6 {
        return None;
    }
    let off = usize::from(l4.get(12)? >> 4) * 4;
    Some(Seg {
        ts,
        src: (src, rd16(l4, 0)?),
        dst: (dst, rd16(l4, 2)?),
        seq: rd32(l4, 4, false)?,
        syn: l4.get(13)? & 0x02 != 0,
        payload: l4.get(off..)?.to_vec(),
    })
}

fn assemble(segs: Vec<Seg>) -> Vec<Conn> {
    struct Track {
        conn: Conn,
        client: (Vec<u8>, u16),
        server: (Vec<u8>, u16),
        next: [Option<u32>; 2],
    }
    let mut tracks: Vec<Track> = Vec::new();
    for s in segs {
        let idx = tracks
            .iter()
            .position(|t| (t.client == s.src && t.server == s.dst) || (t.client == s.dst && t.server == s.src));
        let idx = match idx {
            Some(i) => i,
            None => {
                // The first packet's sender is the client unless it is a SYN/ACK... these
                // captures all start with the client's SYN or first data.
                tracks.push(Track {
                    conn: Conn { server_port: s.dst.1, chunks: Vec::new() },
                    client: s.src.clone(),
                    server: s.dst.clone(),
                    next: [None, None],
                });
                tracks.len() - 1
            }
        };
        let t = &mut tracks[idx];
        let dir = if t.client == s.src { Direction::ToServer } else { Direction::ToClient };
        let start = s.seq.wrapping_add(u32::from(s.syn));
        let expected = *t.next[dir.index()].get_or_insert(start);
        let skip = expected.wrapping_sub(start) as usize;
        if skip >= s.payload.len() {
            continue;
        }
        let fresh = &s.payload[skip..];
        t.next[dir.index()] = Some(expected.wrapping_add(fresh.len() as u32));
        t.conn.chunks.push((dir, s.ts, fresh.to_vec()));
    }
    tracks.into_iter().map(|t| t.conn).collect()
}
