//! Model test: random segment sets (overlaps, duplicates, reordering, holes, different data in
//! overlaps) and random ACKs, fed through a real `TcpSession`, against a naive oracle that writes
//! each segment into a plain byte array under the same overlap rule and delivery rule, in IDS
//! mode (release on ACK) and inline mode (release on arrival, first copy wins).

use proptest::prelude::*;
use weir_core::{Direction, StreamEvent, Timestamp};
use weir_reassembly::{tcp_flags, OverlapPolicy, StreamConfig, TcpSegment, TcpSession};

#[derive(Clone, Debug)]
enum Op {
    /// Client data at stream offset `off`.
    Segment { off: u64, data: Vec<u8> },
    /// Server ACK of client stream offset `off`.
    Ack { off: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..64, proptest::collection::vec(b'a'..=b'c', 1..16)).prop_map(|(off, data)| Op::Segment { off, data }),
        1 => (0u64..84).prop_map(|off| Op::Ack { off }),
    ]
}

/// Normalised event: adjacent Data merged, adjacent gaps summed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Gap(u64),
    End,
}

fn push(events: &mut Vec<Ev>, ev: Ev) {
    match (events.last_mut(), ev) {
        (Some(Ev::Data(prev)), Ev::Data(more)) => prev.extend_from_slice(&more),
        (Some(Ev::Gap(prev)), Ev::Gap(more)) => *prev += more,
        (_, ev) => events.push(ev),
    }
}

/// The policy rule restated on plain numbers: does the new copy of a byte replace the held one,
/// for new segment [s, e) against held segment [hs, he)?
fn new_wins(policy: OverlapPolicy, s: u64, e: u64, hs: u64, he: u64) -> bool {
    use OverlapPolicy::*;
    match policy {
        Last => true,
        First | BsdRight | OldSolaris | Vista => false,
        Solaris | Hpux11 => (s <= hs && e >= he) || (s > hs && e > he),
        OldLinux => s < hs || (s == hs && e >= he),
        Linux => s < hs || (s == hs && e > he),
        Bsd | Hpux10 | Irix | Macos | Windows | Windows2k3 => s < hs,
    }
}

/// The oracle: one slot per stream offset, every segment ever stored, delivered bytes frozen.
struct Oracle {
    policy: OverlapPolicy,
    /// Inline mode: in-order bytes are released as they arrive.
    inline: bool,
    /// Bytes at or past it are never stored; the stream ends with a gap covering them.
    depth: u64,
    /// Highest offset any segment reached, past the depth included.
    highest_end: u64,
    bytes: Vec<Option<u8>>,
    extents: Vec<(u64, u64)>,
    delivered: u64,
    acked: u64,
    events: Vec<Ev>,
}

impl Oracle {
    fn segment(&mut self, s: u64, data: &[u8]) {
        self.highest_end = self.highest_end.max(s + data.len() as u64);
        if s >= self.depth {
            return;
        }
        let data = &data[..data.len().min((self.depth - s) as usize)];
        let e = s + data.len() as u64;
        if e <= self.delivered {
            return;
        }
        if self.bytes.len() < e as usize {
            self.bytes.resize(e as usize, None);
        }
        let mut buf = data.to_vec();
        // The held segments consulted, as Suricata walks its tree ordered by (start, end): the
        // exact duplicate, the predecessors back to the first that ends at or before `s`, and
        // the successors that start before `e`. Segments wholly delivered are gone.
        let mut live: Vec<(u64, u64)> = self.extents.iter().copied().filter(|&(_, he)| he > self.delivered).collect();
        live.sort();
        let mut consulted: Vec<(u64, u64)> = live.iter().copied().filter(|&x| x == (s, e)).collect();
        for &(hs, he) in live.iter().rev().filter(|&&x| x < (s, e)) {
            if he <= s {
                break;
            }
            consulted.push((hs, he));
        }
        for &(hs, he) in live.iter().filter(|&&x| x > (s, e)) {
            if hs >= e {
                break;
            }
            consulted.push((hs, he));
        }
        for (hs, he) in consulted {
            if new_wins(self.policy, s, e, hs, he) {
                continue;
            }
            for i in s.max(hs).max(self.delivered)..e.min(he) {
                if let Some(held) = self.bytes[i as usize] {
                    buf[(i - s) as usize] = held;
                }
            }
        }
        for i in s.max(self.delivered)..e {
            self.bytes[i as usize] = Some(buf[(i - s) as usize]);
        }
        if !self.extents.contains(&(s, e)) {
            self.extents.push((s, e));
        }
        self.deliver(self.acked);
        self.deliver_arrived();
    }

    /// Inline mode: every byte that follows the delivered ones without a hole goes out now.
    fn deliver_arrived(&mut self) {
        if !self.inline {
            return;
        }
        while self.delivered < self.depth {
            let Some(b) = self.bytes.get(self.delivered as usize).copied().flatten() else { break };
            push(&mut self.events, Ev::Data(vec![b]));
            self.delivered += 1;
        }
    }

    /// Same rule as the session: data up to `limit`; a hole is given up on (as a gap up to the
    /// next held byte) only when held data follows it.
    fn deliver(&mut self, limit: u64) {
        let limit = limit.min(self.depth);
        while self.delivered < limit {
            match self.bytes.get(self.delivered as usize).copied().flatten() {
                Some(b) => {
                    push(&mut self.events, Ev::Data(vec![b]));
                    self.delivered += 1;
                }
                None => {
                    let next = (self.delivered as usize..self.bytes.len()).find(|&i| self.bytes[i].is_some());
                    let Some(next) = next else { break };
                    push(&mut self.events, Ev::Gap(next as u64 - self.delivered));
                    self.delivered = next as u64;
                }
            }
        }
    }
}

fn run_session(
    policy: OverlapPolicy,
    inline: bool,
    depth: u64,
    c_isn: u32,
    s_isn: u32,
    ops: &[Op],
) -> (Vec<Ev>, TcpSession) {
    let cfg = StreamConfig { overlap_policy: policy, inline, depth, ..StreamConfig::default() };
    let mut session = TcpSession::new();
    let mut events = Vec::new();
    let mut feed = |session: &mut TcpSession, from_initiator: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]| {
        let seg = TcpSegment {
            ts: Timestamp::from_secs_nanos(1, 0),
            from_initiator,
            seq,
            ack,
            flags,
            window: 65535,
            wscale: None,
            timestamp: None,
            sack_permitted: false,
            payload,
        };
        session.on_segment(&cfg, &seg, &mut |dir, ev| {
            if dir == Direction::ToServer {
                push(&mut events, match ev {
                    StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                    StreamEvent::Gap { len } => Ev::Gap(len),
                    StreamEvent::End => Ev::End,
                })
            }
        });
    };
    let base = c_isn.wrapping_add(1);
    feed(&mut session, true, c_isn, 0, tcp_flags::SYN, b"");
    feed(&mut session, false, s_isn, base, tcp_flags::SYN | tcp_flags::ACK, b"");
    feed(&mut session, true, base, s_isn.wrapping_add(1), tcp_flags::ACK, b"");
    for op in ops {
        match op {
            Op::Segment { off, data } => {
                feed(&mut session, true, base.wrapping_add(*off as u32), s_isn.wrapping_add(1), tcp_flags::ACK, data)
            }
            Op::Ack { off } => {
                feed(&mut session, false, s_isn.wrapping_add(1), base.wrapping_add(*off as u32), tcp_flags::ACK, b"")
            }
        }
    }
    session.flush(&cfg, &mut |dir, ev| {
        if dir == Direction::ToServer {
            push(&mut events, match ev {
                StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                StreamEvent::Gap { len } => Ev::Gap(len),
                StreamEvent::End => Ev::End,
            })
        }
    });
    (events, session)
}

fn run_oracle(policy: OverlapPolicy, inline: bool, depth: u64, ops: &[Op]) -> Vec<Ev> {
    let depth = if depth == 0 { u64::MAX } else { depth };
    let mut oracle = Oracle {
        // Inline, the first copy of a byte wins whatever the configured policy.
        policy: if inline { OverlapPolicy::First } else { policy },
        inline,
        depth,
        highest_end: 0,
        bytes: Vec::new(),
        extents: Vec::new(),
        delivered: 0,
        acked: 0,
        events: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Segment { off, data } => oracle.segment(*off, data),
            Op::Ack { off } => {
                // ACKs past what the client sent are refused by the session as invalid only far
                // beyond the window; these stay inside it.
                oracle.acked = oracle.acked.max(*off);
                oracle.deliver(oracle.acked);
                oracle.deliver_arrived();
            }
        }
    }
    oracle.deliver(u64::MAX);
    // Bytes seen past the depth are reported once everything before it was handed out.
    if oracle.delivered >= depth && oracle.highest_end > oracle.delivered {
        let len = oracle.highest_end - oracle.delivered;
        push(&mut oracle.events, Ev::Gap(len));
    }
    oracle.events.push(Ev::End);
    oracle.events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn session_matches_the_byte_array_oracle(
        policy in proptest::sample::select(OverlapPolicy::ALL.to_vec()),
        inline in any::<bool>(),
        // 0 is unlimited; small depths cut inside the segments' range
        depth in prop_oneof![Just(0u64), 8u64..90],
        c_isn in any::<u32>(),
        s_isn in any::<u32>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let (events, session) = run_session(policy, inline, depth, c_isn, s_isn, &ops);
        prop_assert_eq!(&events, &run_oracle(policy, inline, depth, &ops));
        prop_assert_eq!(session.memory_used(), 0);
    }
}

#[test]
fn oracle_agrees_on_a_hand_checked_case() {
    // BSD: [2,6) "cccc" then [0,4) "aaaa" (starts before: new wins), then [4,8) "bbbb"
    // (starts after [2,6): held wins on 4..6).
    let ops = vec![
        Op::Segment { off: 2, data: b"cccc".to_vec() },
        Op::Segment { off: 0, data: b"aaaa".to_vec() },
        Op::Segment { off: 4, data: b"bbbb".to_vec() },
    ];
    let expected = vec![Ev::Data(b"aaaaccbb".to_vec()), Ev::End];
    assert_eq!(run_oracle(OverlapPolicy::Bsd, false, 0, &ops), expected);
    assert_eq!(run_session(OverlapPolicy::Bsd, false, 0, 7, 9, &ops).0, expected);
    // With a depth of 6 the last two bytes are a gap.
    let cut = vec![Ev::Data(b"aaaacc".to_vec()), Ev::Gap(2), Ev::End];
    assert_eq!(run_oracle(OverlapPolicy::Bsd, false, 6, &ops), cut);
    assert_eq!(run_session(OverlapPolicy::Bsd, false, 6, 7, 9, &ops).0, cut);
}

#[test]
fn oracle_agrees_on_a_hand_checked_inline_case() {
    // Inline: [2,6) "cccc" is held (hole before it); [0,4) "aaaa" fills the hole and keeps
    // nothing of its own past the first copy of 2..4; all of 0..6 goes out at once. Then [4,8)
    // "bbbb": 4..6 were released as "cc", so only 6..8 is new.
    let ops = vec![
        Op::Segment { off: 2, data: b"cccc".to_vec() },
        Op::Segment { off: 0, data: b"aaaa".to_vec() },
        Op::Segment { off: 4, data: b"bbbb".to_vec() },
    ];
    let expected = vec![Ev::Data(b"aaccccbb".to_vec()), Ev::End];
    assert_eq!(run_oracle(OverlapPolicy::Bsd, true, 0, &ops), expected);
    assert_eq!(run_session(OverlapPolicy::Bsd, true, 0, 7, 9, &ops).0, expected);
}
