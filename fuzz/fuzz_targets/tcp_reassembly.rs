//! TCP session tracking and stream reassembly on sequences of segments from the input: both
//! directions, any flags, sequence and ack numbers near two ISNs (wrap-around included), overlaps,
//! holes, small memory caps and depths, every overlap policy.
//!
//! Invariants: per direction, the stream delivered never exceeds the payload bytes given that
//! way, nor the depth; nothing follows `End`; data and gaps add up to the session's delivered
//! offset; the session never holds more than its memcap and holds nothing after a flush.
//!
//! In "consistent" mode (bit 3 of the first byte) the session opens with a handshake and every
//! segment's payload is cut from one fixed byte string per direction at its stream offset, so
//! however segments overlap, repeat or arrive out of order, every byte delivered must be the
//! string's byte at that offset. Now and then what the session holds is released early (as the
//! worker does at the global stream memcap), after which the same must hold.
#![no_main]
// Configs are spelled out in full but still end in `..Default` so new fields do not break the build.
#![allow(clippy::needless_update)]

use libfuzzer_sys::fuzz_target;
use weir_core::{Direction, StreamEvent, Timestamp};
use weir_fuzz::Input;
use weir_reassembly::{tcp_flags, OverlapPolicy, StreamConfig, TcpSegment, TcpSession};

/// What one direction of the stream delivered.
#[derive(Default)]
struct Delivered {
    data: u64,
    gaps: u64,
    ended: bool,
    /// Consistent mode: delivered bytes must equal [`stream_byte`] at their offset.
    check_content: bool,
}

/// Byte `offset` of the fixed stream of direction `dir` in consistent mode (not periodic over
/// any short span, so a byte delivered at the wrong offset shows).
fn stream_byte(dir: usize, offset: u64) -> u8 {
    let x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(dir as u64 * 0x5851_F42D);
    (x >> 56) as u8
}

struct Session {
    tcp: TcpSession,
    given: [u64; 2],
    out: [Delivered; 2],
}

impl Session {
    fn new() -> Self {
        Session { tcp: TcpSession::new(), given: [0; 2], out: Default::default() }
    }
}

fn record(out: &mut [Delivered; 2], dir: Direction, ev: StreamEvent<'_>) {
    let d = &mut out[dir.index()];
    assert!(!d.ended, "{dir:?} event {ev:?} after End");
    match ev {
        StreamEvent::Data(b) => {
            assert!(!b.is_empty(), "empty Data event");
            if d.check_content {
                let at = d.data + d.gaps;
                for (i, &byte) in b.iter().enumerate() {
                    let want = stream_byte(dir.index(), at + i as u64);
                    assert_eq!(byte, want, "{dir:?} byte at stream offset {} is wrong", at + i as u64);
                }
            }
            d.data += b.len() as u64;
        }
        StreamEvent::Gap { len } => {
            assert!(len > 0, "empty Gap event");
            d.gaps += len;
        }
        StreamEvent::End => d.ended = true,
    }
}

fn check(s: &Session, cfg: &StreamConfig) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let d = &s.out[dir.index()];
        assert!(
            d.data <= s.given[dir.index()],
            "{dir:?} delivered {} bytes of {} given",
            d.data,
            s.given[dir.index()]
        );
        if cfg.depth > 0 {
            assert!(d.data <= cfg.depth, "{dir:?} delivered {} bytes past depth {}", d.data, cfg.depth);
        }
    }
    assert!(s.tcp.memory_used() <= cfg.flow_memcap, "session holds {} bytes, memcap {}", s.tcp.memory_used(), cfg.flow_memcap);
}

fn flush_and_check(mut s: Session, cfg: &StreamConfig) {
    let out = &mut s.out;
    s.tcp.flush(cfg, &mut |dir, ev| record(out, dir, ev));
    check(&s, cfg);
    assert_eq!(s.tcp.memory_used(), 0, "memory held after flush");
    for dir in [Direction::ToServer, Direction::ToClient] {
        let d = &s.out[dir.index()];
        assert!(d.ended, "{dir:?} not ended by flush");
        assert_eq!(d.data + d.gaps, s.tcp.delivered(dir), "{dir:?} data + gaps vs delivered offset");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let cfg = StreamConfig {
        midstream: setup & 1 == 0,
        async_oneside: setup & 2 != 0,
        check_overlap_different_data: setup & 4 == 0,
        overlap_policy: OverlapPolicy::ALL[usize::from(setup >> 4) % OverlapPolicy::ALL.len()],
        depth: [0, 1, 100, 3000, 1 << 20][usize::from(input.u8()) % 5],
        flow_memcap: [2048, 8192, 64 * 1024, 2 << 20][usize::from(input.u8()) % 4],
        max_queued_segments: [1, 4, 64, 4096][usize::from(input.u8()) % 4],
        max_regions: [1, 2, 8, 64][usize::from(input.u8()) % 4],
        ..StreamConfig::default()
    };
    // Initial sequence numbers: the fuzzer's, often near the 32-bit wrap.
    let isn = [input.u32(), input.u32()];
    let mut session = Session::new();
    let mut ns = 1_000_000_000u64;
    if setup & 8 != 0 {
        consistent(&mut input, &cfg, isn, session);
        return;
    }
    while !input.is_empty() {
        let head = input.u8();
        let from_initiator = head & 1 == 0;
        let me = usize::from(!from_initiator);
        let flags = if head & 2 != 0 {
            input.u8()
        } else {
            // Mostly plain data segments, now and then closing.
            tcp_flags::ACK | tcp_flags::PSH | if head & 0x80 != 0 { tcp_flags::FIN } else { 0 }
        };
        let seq = if head & 4 != 0 { input.u32() } else { isn[me].wrapping_add(u32::from(input.u16())) };
        let ack = isn[1 - me].wrapping_add(u32::from(input.u16()));
        let window = if head & 8 != 0 { input.u16() } else { u16::MAX };
        let (wscale, timestamp) = if head & 0x10 != 0 {
            (Some(input.u8()), Some((input.u32(), input.u32())))
        } else {
            (None, None)
        };
        let len = if head & 0x20 != 0 { usize::from(input.u16()) % 3000 } else { usize::from(input.u8() & 0x3f) };
        let payload = input.take(len);
        ns += if head & 0x40 != 0 { u64::from(input.u8()) * 1_000_000_000 } else { 1_000 };
        let seg = TcpSegment {
            ts: Timestamp::from_nanos(ns),
            from_initiator,
            seq,
            ack,
            flags,
            window,
            wscale,
            timestamp,
            sack_permitted: head & 0x10 != 0,
            payload,
        };
        let mut outcome = {
            let out = &mut session.out;
            session.tcp.on_segment(&cfg, &seg, &mut |dir, ev| record(out, dir, ev))
        };
        if outcome.new_session {
            // The caller's contract: end this session and feed the segment to a new one.
            flush_and_check(std::mem::replace(&mut session, Session::new()), &cfg);
            let out = &mut session.out;
            outcome = session.tcp.on_segment(&cfg, &seg, &mut |dir, ev| record(out, dir, ev));
            assert!(!outcome.new_session, "a fresh session asked for another");
        }
        session.given[outcome.direction.index()] += payload.len() as u64;
        check(&session, &cfg);
    }
    flush_and_check(session, &cfg);
});

/// Consistent mode: handshake, then segments cut from the fixed per-direction streams.
fn consistent(input: &mut Input<'_>, cfg: &StreamConfig, isn: [u32; 2], mut session: Session) {
    use tcp_flags::{ACK, FIN, PSH, RST, SYN};
    session.out[0].check_content = true;
    session.out[1].check_content = true;
    let mut ns = 1_000_000_000u64;
    let feed = |session: &mut Session, from_initiator: bool, seq: u32, ack: u32, flags: u8, payload: &[u8], ns: u64| {
        let seg = TcpSegment {
            ts: Timestamp::from_nanos(ns),
            from_initiator,
            seq,
            ack,
            flags,
            window: u16::MAX,
            wscale: None,
            timestamp: None,
            sack_permitted: false,
            payload,
        };
        let out = &mut session.out;
        let outcome = session.tcp.on_segment(cfg, &seg, &mut |dir, ev| record(out, dir, ev));
        if !outcome.new_session {
            session.given[outcome.direction.index()] += payload.len() as u64;
        }
        check(session, cfg);
        outcome.new_session
    };
    feed(&mut session, true, isn[0], 0, SYN, &[], ns);
    feed(&mut session, false, isn[1], isn[0].wrapping_add(1), SYN | ACK, &[], ns + 1);
    feed(&mut session, true, isn[0].wrapping_add(1), isn[1].wrapping_add(1), ACK, &[], ns + 2);
    let mut buf = Vec::new();
    while !input.is_empty() {
        let head = input.u8();
        let d = usize::from(head & 1);
        let offset = u64::from(input.u16()) % 60_000;
        let len = if head & 2 != 0 { usize::from(input.u16()) % 3000 } else { usize::from(input.u8()) };
        let acked = u32::from(input.u16());
        let flags = ACK | match (head >> 2) & 7 {
            0 => FIN,
            1 => RST,
            _ => PSH,
        };
        buf.clear();
        buf.extend((0..len as u64).map(|i| stream_byte(d, offset + i)));
        let seq = isn[d].wrapping_add(1).wrapping_add(offset as u32);
        let ack = isn[1 - d].wrapping_add(1).wrapping_add(acked);
        ns += if head & 0x20 != 0 { 100_000_000_000 } else { 1_000 };
        if feed(&mut session, d == 0, seq, ack, flags, &buf, ns) {
            // Port reuse needs a SYN, which consistent mode never sends after the handshake.
            panic!("new session requested without a SYN");
        }
        if (head >> 2) & 7 == 7 {
            let out = &mut session.out;
            session.tcp.release_held(cfg, &mut |dir, ev| record(out, dir, ev));
            assert_eq!(session.tcp.memory_used(), 0, "memory held after release_held");
            check(&session, cfg);
        }
    }
    flush_and_check(session, cfg);
}
