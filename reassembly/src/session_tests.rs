//! Handshake, teardown and limit cases, each a short scripted conversation.

use super::*;
use weir_core::Direction::{ToClient, ToServer};

/// Owned stream event.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Gap(u64),
    End,
}

/// A scripted conversation: `c(...)` sends from the flow's initiator, `s(...)` from the other
/// side; every released event is recorded with the direction it came out on.
struct Conv {
    session: TcpSession,
    cfg: StreamConfig,
    events: Vec<(Direction, Ev)>,
    clock: u64,
}

const C_ISN: u32 = 1000;
const S_ISN: u32 = 5000;

impl Conv {
    fn new(cfg: StreamConfig) -> Self {
        Conv { session: TcpSession::new(), cfg, events: Vec::new(), clock: 0 }
    }

    fn send(&mut self, seg: TcpSegment<'_>) -> SegmentOutcome {
        let events = &mut self.events;
        self.session.on_segment(&self.cfg, &seg, &mut |dir, ev| {
            events.push((dir, match ev {
                StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                StreamEvent::Gap { len } => Ev::Gap(len),
                StreamEvent::End => Ev::End,
            }))
        })
    }

    fn seg<'p>(&mut self, from_initiator: bool, seq: u32, ack: u32, flags: u8, payload: &'p [u8]) -> TcpSegment<'p> {
        self.clock += 1;
        TcpSegment {
            ts: Timestamp::from_secs_nanos(1_700_000_000 + self.clock, 0),
            from_initiator,
            seq,
            ack,
            flags,
            window: 65535,
            wscale: None,
            timestamp: None,
            sack_permitted: false,
            payload,
        }
    }

    fn c(&mut self, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> SegmentOutcome {
        let seg = self.seg(true, seq, ack, flags, payload);
        self.send(seg)
    }

    fn s(&mut self, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> SegmentOutcome {
        let seg = self.seg(false, seq, ack, flags, payload);
        self.send(seg)
    }

    /// SYN, SYN/ACK, ACK with the given initial sequence numbers.
    fn handshake(&mut self, c_isn: u32, s_isn: u32) {
        self.c(c_isn, 0, SYN, b"");
        self.s(s_isn, c_isn.wrapping_add(1), SYN | ACK, b"");
        let out = self.c(c_isn.wrapping_add(1), s_isn.wrapping_add(1), ACK, b"");
        assert_eq!(out.state, TcpState::Established);
        assert!(out.state_changed);
    }

    fn flush(&mut self) {
        let events = &mut self.events;
        self.session.flush(&self.cfg, &mut |dir, ev| {
            events.push((dir, match ev {
                StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                StreamEvent::Gap { len } => Ev::Gap(len),
                StreamEvent::End => Ev::End,
            }))
        });
    }

    /// Events of one direction, adjacent Data merged.
    fn stream(&self, dir: Direction) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for (d, ev) in &self.events {
            if *d != dir {
                continue;
            }
            match (out.last_mut(), ev) {
                (Some(Ev::Data(prev)), Ev::Data(more)) => prev.extend_from_slice(more),
                _ => out.push(ev.clone()),
            }
        }
        out
    }
}

fn data(bytes: &[u8]) -> Ev {
    Ev::Data(bytes.to_vec())
}

fn cfg() -> StreamConfig {
    StreamConfig::default()
}

#[test]
fn three_way_handshake_data_waits_for_the_ack() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK | PSH, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(conv.stream(ToServer), vec![], "not ACKed yet");
    conv.s(S_ISN + 1, C_ISN + 19, ACK | PSH, b"HTTP/1.0 200 OK\r\n\r\n");
    assert_eq!(conv.stream(ToServer), vec![data(b"GET / HTTP/1.0\r\n\r\n")]);
    conv.c(C_ISN + 19, S_ISN + 20, ACK, b"");
    assert_eq!(conv.stream(ToClient), vec![data(b"HTTP/1.0 200 OK\r\n\r\n")]);
    assert_eq!(conv.session.memory_used(), 0);
}

#[test]
fn sequence_numbers_wrap_around_two_to_the_32() {
    let c_isn = u32::MAX - 5; // data starts 5 bytes before the wrap
    let s_isn = u32::MAX;
    let mut conv = Conv::new(cfg());
    conv.handshake(c_isn, s_isn);
    let first = c_isn.wrapping_add(1);
    conv.c(first.wrapping_add(8), 0, ACK, b"89abcdef"); // out of order, past the wrap
    conv.c(first, 0, ACK, b"01234567"); // straddles the wrap
    conv.s(0, first.wrapping_add(16), ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"0123456789abcdef")]);
    assert_eq!(conv.session.delivered(ToServer), 16);
}

#[test]
fn fin_from_client_first_walks_suricatas_states() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    assert_eq!(conv.c(C_ISN + 1, S_ISN + 1, FIN | ACK, b"bye").state, TcpState::CloseWait);
    let out = conv.s(S_ISN + 1, C_ISN + 5, ACK, b"");
    assert_eq!(out.state, TcpState::CloseWait);
    // The client's FIN is ACKed: its direction ends.
    assert_eq!(conv.stream(ToServer), vec![data(b"bye"), Ev::End]);
    assert_eq!(conv.s(S_ISN + 1, C_ISN + 5, FIN | ACK, b"").state, TcpState::LastAck);
    assert_eq!(conv.c(C_ISN + 5, S_ISN + 2, ACK, b"").state, TcpState::Closed);
    assert_eq!(conv.stream(ToClient), vec![Ev::End]);
    conv.flush();
    assert_eq!(conv.stream(ToServer), vec![data(b"bye"), Ev::End], "End is sent once");
}

#[test]
fn fin_from_server_first_walks_suricatas_states() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    assert_eq!(conv.s(S_ISN + 1, C_ISN + 1, FIN | ACK, b"").state, TcpState::FinWait1);
    assert_eq!(conv.c(C_ISN + 1, S_ISN + 2, ACK, b"").state, TcpState::FinWait2);
    assert_eq!(conv.c(C_ISN + 1, S_ISN + 2, FIN | ACK, b"").state, TcpState::TimeWait);
    assert_eq!(conv.s(S_ISN + 2, C_ISN + 2, ACK, b"").state, TcpState::Closed);
    assert_eq!((conv.stream(ToServer), conv.stream(ToClient)), (vec![Ev::End], vec![Ev::End]));
}

#[test]
fn simultaneous_fins_go_through_closing() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    assert_eq!(conv.s(S_ISN + 1, C_ISN + 1, FIN | ACK, b"").state, TcpState::FinWait1);
    // The client's FIN crosses the server's: it does not acknowledge it.
    assert_eq!(conv.c(C_ISN + 1, S_ISN + 1, FIN | ACK, b"").state, TcpState::Closing);
    assert_eq!(conv.s(S_ISN + 2, C_ISN + 2, ACK, b"").state, TcpState::TimeWait);
}

#[test]
fn rst_releases_unacked_data_and_ends_both_directions() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"attack");
    let out = conv.s(S_ISN + 1, 0, RST, b"");
    assert_eq!(out.state, TcpState::Closed);
    assert_eq!(conv.stream(ToServer), vec![data(b"attack"), Ev::End]);
    assert_eq!(conv.stream(ToClient), vec![Ev::End]);
    // A FIN after the RST changes nothing.
    let out = conv.c(C_ISN + 7, S_ISN + 1, FIN | ACK, b"");
    assert_eq!((out.state, out.state_changed), (TcpState::Closed, false));
    assert_eq!(conv.stream(ToServer), vec![data(b"attack"), Ev::End]);
}

#[test]
fn fin_then_rst_closes() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, FIN | ACK, b"x");
    let out = conv.c(C_ISN + 3, 0, RST, b"");
    assert_eq!(out.state, TcpState::Closed);
    assert_eq!(conv.stream(ToServer), vec![data(b"x"), Ev::End]);
}

#[test]
fn rst_far_behind_the_window_is_suspected_injection() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, &[b'a'; 1000]);
    conv.s(S_ISN + 1, C_ISN + 1001, ACK, b"");
    let out = conv.c(C_ISN + 10, 0, RST, b"");
    assert!(out.anomalies.contains("stream.suspected_rst_inject"));
    assert_eq!(out.state, TcpState::Established);
}

#[test]
fn simultaneous_open_establishes_with_two_synacks() {
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    assert_eq!(conv.s(S_ISN, 0, SYN, b"").state, TcpState::SynRecv);
    assert_eq!(conv.s(S_ISN, C_ISN + 1, SYN | ACK, b"").state, TcpState::SynRecv);
    let out = conv.c(C_ISN, S_ISN + 1, SYN | ACK, b"");
    assert_eq!(out.state, TcpState::Established);
    assert!(out.anomalies.is_empty());
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"hi");
    conv.s(S_ISN + 1, C_ISN + 3, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"hi")]);
}

#[test]
fn split_handshake_with_wrong_synack_is_flagged() {
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    conv.s(S_ISN, 0, SYN, b"");
    let out = conv.c(C_ISN, S_ISN + 7, SYN | ACK, b"");
    assert!(out.anomalies.contains("stream.4whs_synack_with_wrong_ack"));
    assert!(!out.accepted);
}

#[test]
fn syn_with_another_isn_after_the_synack_is_flagged() {
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    conv.s(S_ISN, C_ISN + 1, SYN | ACK, b"");
    assert!(conv.c(C_ISN, 0, SYN, b"").anomalies.is_empty(), "plain retransmission");
    let out = conv.c(C_ISN + 40, 0, SYN, b"");
    assert!(out.anomalies.contains("stream.3whs_syn_resend_diff_seq_on_syn_recv"));
    assert_eq!(out.state, TcpState::SynRecv);
}

#[test]
fn synack_with_wrong_ack_is_ignored() {
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    let out = conv.s(S_ISN, C_ISN + 99, SYN | ACK, b"");
    assert!(out.anomalies.contains("stream.3whs_synack_with_wrong_ack"));
    assert_eq!((out.accepted, out.state), (false, TcpState::SynSent));
}

#[test]
fn syn_data_not_acked_by_the_server_is_retransmitted_once() {
    // TCP Fast Open refused: the SYN/ACK acknowledges only the SYN, the client resends.
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"hello");
    conv.s(S_ISN, C_ISN + 1, SYN | ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![]);
    conv.c(C_ISN + 1, S_ISN + 1, ACK | PSH, b"hello");
    conv.s(S_ISN + 1, C_ISN + 6, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"hello")]);
    assert_eq!(conv.session.stats().overlaps_different_data, 0);
}

#[test]
fn syn_on_a_closed_session_asks_for_a_new_session() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, RST, b"");
    let out = conv.c(90_000, 0, SYN, b"");
    assert!(out.new_session && !out.accepted);
    assert_eq!(out.state, TcpState::Closed);
    // The caller starts over: a fresh session takes the same SYN.
    let mut fresh = Conv::new(cfg());
    assert_eq!(fresh.c(90_000, 0, SYN, b"").state, TcpState::SynSent);
}

#[test]
fn syn_on_an_established_session_is_an_anomaly_not_a_reset() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    let out = conv.c(C_ISN + 500, 0, SYN, b"");
    assert!(out.anomalies.contains("stream.est_syn_resend_diff_seq"));
    assert!(!out.new_session);
    assert_eq!(out.state, TcpState::Established);
}

#[test]
fn midstream_pickup_is_off_when_configured_off() {
    let mut conv = Conv::new(StreamConfig { midstream: false, ..cfg() });
    let out = conv.c(C_ISN, S_ISN, ACK | PSH, b"data");
    assert_eq!((out.accepted, out.state), (false, TcpState::None));
    let out = conv.c(C_ISN, S_ISN, FIN | ACK, b"");
    assert!(out.anomalies.contains("stream.fin_but_no_session"));
    conv.flush();
    assert_eq!(conv.stream(ToServer), vec![Ev::End]);
}

#[test]
fn a_midstream_pickup_is_known_before_the_segment_is_fed() {
    let mut conv = Conv::new(cfg());
    let data = conv.seg(true, C_ISN + 1, S_ISN + 1, ACK | PSH, b"GET");
    assert!(conv.session.picks_up_midstream(&conv.cfg, &data));
    let syn = conv.seg(true, C_ISN, 0, SYN, b"");
    assert!(!conv.session.picks_up_midstream(&conv.cfg, &syn));
    let rst = conv.seg(true, C_ISN, 0, RST, b"");
    assert!(!conv.session.picks_up_midstream(&conv.cfg, &rst));
    conv.send(data);
    assert!(conv.session.is_midstream());
    // Once picked up, later segments start nothing.
    let more = conv.seg(true, C_ISN + 4, S_ISN + 1, ACK | PSH, b" /");
    assert!(!conv.session.picks_up_midstream(&conv.cfg, &more));

    let mut off = Conv::new(StreamConfig { midstream: false, ..cfg() });
    let data = off.seg(true, C_ISN + 1, S_ISN + 1, ACK | PSH, b"GET");
    assert!(!off.session.picks_up_midstream(&off.cfg, &data));
}

#[test]
fn midstream_pickup_on_data_both_sides() {
    let mut conv = Conv::new(cfg());
    let out = conv.c(C_ISN, S_ISN, ACK | PSH, b"req");
    assert_eq!((out.accepted, out.state, out.direction), (true, TcpState::Established, ToServer));
    assert!(conv.session.is_midstream());
    conv.s(S_ISN, C_ISN + 3, ACK | PSH, b"resp");
    conv.c(C_ISN + 3, S_ISN + 4, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"req")]);
    assert_eq!(conv.stream(ToClient), vec![data(b"resp")]);
}

#[test]
fn one_sided_client_flow_delivers_as_it_arrives_with_async_oneside() {
    let mut conv = Conv::new(StreamConfig { async_oneside: true, ..cfg() });
    conv.c(C_ISN, 0, SYN, b"");
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"");
    conv.c(C_ISN + 1, S_ISN + 1, ACK | PSH, b"one");
    assert_eq!(conv.stream(ToServer), vec![data(b"one")]);
    conv.c(C_ISN + 8, S_ISN + 1, ACK | PSH, b"three"); // hole of 4: held
    assert_eq!(conv.stream(ToServer), vec![data(b"one")]);
    conv.c(C_ISN + 4, S_ISN + 1, ACK | PSH, b"two!");
    assert_eq!(conv.stream(ToServer), vec![data(b"onetwo!three")]);
    conv.c(C_ISN + 20, S_ISN + 1, ACK | PSH, b"late");
    conv.flush();
    assert_eq!(conv.stream(ToServer), vec![data(b"onetwo!three"), Ev::Gap(7), data(b"late"), Ev::End]);
}

#[test]
fn data_far_outside_the_window_is_dropped() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    let out = conv.c(C_ISN + 1 + 10_000_000, S_ISN + 1, ACK, b"far");
    assert!(out.anomalies.contains("stream.est_packet_out_of_window"));
    assert!(!out.accepted);
    assert_eq!(conv.session.memory_used(), 0);
    assert_eq!(conv.session.stats().out_of_window, 1);
}

#[test]
fn ack_for_data_never_sent_is_invalid() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"abc");
    let out = conv.s(S_ISN + 1, C_ISN + 1 + 3 + 500_000, ACK, b"");
    assert!(out.anomalies.contains("stream.pkt_invalid_ack"));
    assert_eq!(conv.stream(ToServer), vec![], "the bogus ACK releases nothing");
}

#[test]
fn paws_rejects_an_older_timestamp() {
    let mut conv = Conv::new(cfg());
    let mut syn = conv.seg(true, C_ISN, 0, SYN, b"");
    syn.timestamp = Some((100, 0));
    conv.send(syn);
    let mut synack = conv.seg(false, S_ISN, C_ISN + 1, SYN | ACK, b"");
    synack.timestamp = Some((7000, 100));
    conv.send(synack);
    let mut ack = conv.seg(true, C_ISN + 1, S_ISN + 1, ACK, b"new");
    ack.timestamp = Some((200, 7000));
    assert!(conv.send(ack).anomalies.is_empty());
    let mut stale = conv.seg(true, C_ISN + 4, S_ISN + 1, ACK, b"old");
    stale.timestamp = Some((150, 7000));
    let out = conv.send(stale);
    assert!(out.anomalies.contains("stream.pkt_invalid_timestamp"));
    assert!(!out.accepted);
}

#[test]
fn spurious_retransmission_of_acked_data_is_flagged() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"abc");
    conv.s(S_ISN + 1, C_ISN + 4, ACK, b"");
    let out = conv.c(C_ISN + 1, S_ISN + 1, ACK, b"xyz");
    assert!(out.anomalies.contains("stream.pkt_spurious_retransmission"));
    conv.flush();
    assert_eq!(conv.stream(ToServer), vec![data(b"abc"), Ev::End]);
}

#[test]
fn depth_cuts_the_stream_and_reports_the_rest_as_gap() {
    let mut conv = Conv::new(StreamConfig { depth: 1024, ..cfg() });
    conv.handshake(C_ISN, S_ISN);
    let out = conv.c(C_ISN + 1, S_ISN + 1, ACK, &[b'x'; 1000]);
    assert!(out.anomalies.is_empty());
    let out = conv.c(C_ISN + 1001, S_ISN + 1, ACK, &[b'y'; 1000]);
    assert!(out.anomalies.contains("stream.reassembly_depth_reached"));
    let out = conv.c(C_ISN + 2001, S_ISN + 1, ACK, &[b'z'; 1000]);
    assert!(out.anomalies.is_empty(), "raised once per session");
    conv.s(S_ISN + 1, C_ISN + 3001, ACK, b"");
    conv.flush();
    let mut expected = vec![b'x'; 1000];
    expected.extend_from_slice(&[b'y'; 24]);
    assert_eq!(conv.stream(ToServer), vec![Ev::Data(expected), Ev::Gap(3000 - 1024), Ev::End]);
}

#[test]
fn release_held_gives_up_holes_and_the_stream_goes_on() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"ab");
    conv.c(C_ISN + 10, S_ISN + 1, ACK, b"yz");
    let events = &mut conv.events;
    conv.session.release_held(&conv.cfg, &mut |dir, ev| {
        events.push((dir, match ev {
            StreamEvent::Data(d) => Ev::Data(d.to_vec()),
            StreamEvent::Gap { len } => Ev::Gap(len),
            StreamEvent::End => Ev::End,
        }))
    });
    assert_eq!(conv.session.memory_used(), 0);
    assert_eq!(conv.stream(ToServer), vec![data(b"ab"), Ev::Gap(7), data(b"yz")]);
    // The late bytes of the hole are old data now; what follows the released bytes is new and
    // still waits for its ACK as usual.
    conv.c(C_ISN + 3, S_ISN + 1, ACK, b"cdefghi");
    conv.c(C_ISN + 12, S_ISN + 1, ACK, b"next");
    assert_eq!(conv.stream(ToServer), vec![data(b"ab"), Ev::Gap(7), data(b"yz")]);
    conv.s(S_ISN + 1, C_ISN + 16, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"ab"), Ev::Gap(7), data(b"yznext")]);
    assert_eq!(conv.session.stats().gap_bytes, 7);
    assert!(conv.session.eve().ts_gap);
}

#[test]
fn the_limits_a_segment_meets_are_reported_apart_from_anomalies() {
    let mut conv = Conv::new(StreamConfig { max_queued_segments: 1, depth: 30, ..cfg() });
    conv.handshake(C_ISN, S_ISN);
    assert_eq!(conv.c(C_ISN + 11, S_ISN + 1, ACK, b"later").limits, LimitsMet::default());
    let out = conv.c(C_ISN + 21, S_ISN + 1, ACK, b"after");
    assert_eq!(out.limits, LimitsMet { queue: true, ..LimitsMet::default() });
    // Past the depth, once.
    conv.s(S_ISN + 1, C_ISN + 1, ACK, b"");
    let out = conv.c(C_ISN + 1, S_ISN + 1, ACK, &[b'x'; 40]);
    assert!(out.limits.depth);
    assert!(!conv.c(C_ISN + 41, S_ISN + 1, ACK, b"more").limits.depth);

    let mut tight = Conv::new(StreamConfig { flow_memcap: 16, ..cfg() });
    tight.handshake(C_ISN, S_ISN);
    let out = tight.c(C_ISN + 1, S_ISN + 1, ACK, &[b'y'; 100]);
    assert_eq!(out.limits, LimitsMet { memcap: true, ..LimitsMet::default() });
}

#[test]
fn release_held_lets_go_of_bytes_past_a_fin_too() {
    // Found by the tcp_reassembly fuzz target: bytes sent past the FIN stayed held.
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK | FIN, b"ab");
    conv.c(C_ISN + 5, S_ISN + 1, ACK, b"zz");
    assert!(conv.session.memory_used() > 0);
    conv.session.release_held(&conv.cfg, &mut |_, _| {});
    assert_eq!(conv.session.memory_used(), 0);
}

#[test]
fn flush_reports_holes_between_held_data() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"ab");
    conv.c(C_ISN + 10, S_ISN + 1, ACK, b"yz");
    assert_eq!(conv.session.memory_used(), 2 + 2 + 4 * crate::BOOKKEEPING_BYTES);
    conv.flush();
    assert_eq!(conv.stream(ToServer), vec![data(b"ab"), Ev::Gap(7), data(b"yz"), Ev::End]);
    assert_eq!(conv.stream(ToClient), vec![Ev::End]);
    assert_eq!(conv.session.memory_used(), 0);
    assert_eq!(conv.session.stats().gap_bytes, 7);
}

#[test]
fn eve_tcp_object_spells_flags_and_state_like_suricata() {
    let mut conv = Conv::new(cfg());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK | PSH | ECE | CWR, b"x");
    let eve = conv.session.eve();
    assert_eq!(eve.tcp_flags, "da");
    assert_eq!(eve.tcp_flags_ts, "da");
    assert_eq!(eve.tcp_flags_tc, "12");
    assert!(eve.ecn && eve.cwr && eve.syn && !eve.fin && !eve.rst);
    assert_eq!(eve.state, "established");
}

#[test]
fn syn_from_the_flows_second_side_makes_it_the_client() {
    // The flow table saw the other side first (a stray packet, midstream off), then this SYN.
    let mut conv = Conv::new(StreamConfig { midstream: false, ..cfg() });
    assert!(!conv.s(S_ISN, C_ISN, ACK, b"stray").accepted);
    let out = conv.c(C_ISN, 0, SYN, b"");
    assert_eq!((out.reversed, out.direction, out.state), (false, ToServer, TcpState::SynSent));
    let mut conv = Conv::new(StreamConfig { midstream: false, ..cfg() });
    conv.c(C_ISN, S_ISN, ACK, b"stray");
    let out = conv.s(S_ISN, 0, SYN, b"");
    assert_eq!((out.reversed, out.direction, out.state), (true, ToServer, TcpState::SynSent));
    // From now on the flow's first-seen side is the server.
    let out = conv.c(C_ISN, S_ISN + 1, SYN | ACK, b"");
    assert_eq!((out.direction, out.state), (ToClient, TcpState::SynRecv));
}

#[test]
fn one_sided_flow_gives_up_its_hole_when_full() {
    let mut conv = Conv::new(StreamConfig { async_oneside: true, max_regions: 2, ..cfg() });
    conv.c(C_ISN, 0, SYN, b"");
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"");
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"ab");
    conv.c(C_ISN + 10, S_ISN + 1, ACK, b"kl"); // region 1 (the hole at 3..10 is never filled)
    conv.c(C_ISN + 20, S_ISN + 1, ACK, b"uv"); // region 2
    assert_eq!(conv.stream(ToServer), vec![data(b"ab")]);
    let out = conv.c(C_ISN + 30, S_ISN + 1, ACK, b"yz"); // a third region: refused, and the
    assert!(out.anomalies.contains("stream.reassembly_insert_limit")); // direction is full
    assert_eq!(conv.stream(ToServer), vec![data(b"ab"), Ev::Gap(7), data(b"kl"), Ev::Gap(8), data(b"uv")]);
}

#[test]
fn server_speaking_first_establishes_even_without_the_clients_final_ack() {
    // SMTP-style banner; the client's ACK of the SYN/ACK is missing from the capture.
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    conv.s(S_ISN, C_ISN + 1, SYN | ACK, b"");
    let out = conv.s(S_ISN + 1, C_ISN + 1, ACK | PSH, b"220 mail ESMTP\r\n");
    assert_eq!((out.state, out.accepted), (TcpState::Established, true));
    conv.c(C_ISN + 1, S_ISN + 17, ACK, b"EHLO x\r\n");
    assert_eq!(conv.stream(ToClient), vec![data(b"220 mail ESMTP\r\n")]);
}

#[test]
fn synack_data_is_the_start_of_the_server_stream() {
    let mut conv = Conv::new(cfg());
    conv.c(C_ISN, 0, SYN, b"");
    conv.s(S_ISN, C_ISN + 1, SYN | ACK, b"hi!");
    conv.c(C_ISN + 1, S_ISN + 4, ACK, b"");
    assert_eq!(conv.stream(ToClient), vec![data(b"hi!")]);
}

#[test]
fn paws_accepts_an_old_timestamp_after_24_days_idle() {
    let mut conv = Conv::new(cfg());
    let mut syn = conv.seg(true, C_ISN, 0, SYN, b"");
    syn.timestamp = Some((100, 0));
    conv.send(syn);
    let mut synack = conv.seg(false, S_ISN, C_ISN + 1, SYN | ACK, b"");
    synack.timestamp = Some((7000, 100));
    conv.send(synack);
    let mut ack = conv.seg(true, C_ISN + 1, S_ISN + 1, ACK, b"");
    ack.timestamp = Some((5000, 7000));
    conv.send(ack);
    let mut later = conv.seg(true, C_ISN + 1, S_ISN + 1, ACK, b"x");
    later.timestamp = Some((10, 7000));
    later.ts = later.ts.add(std::time::Duration::from_secs(25 * 24 * 3600));
    assert!(conv.send(later).anomalies.is_empty());
}

#[test]
fn swapping_directions_relabels_later_segments() {
    // Midstream pickup on the server's response; a later stage says so.
    let mut conv = Conv::new(cfg());
    conv.c(S_ISN, C_ISN, ACK | PSH, b"HTTP/1.1 200 OK\r\n");
    conv.session.swap_directions();
    let out = conv.s(C_ISN, S_ISN + 17, ACK, b"");
    assert_eq!(out.direction, ToServer);
    assert_eq!(conv.stream(ToClient), vec![data(b"HTTP/1.1 200 OK\r\n")]);
    let out = conv.c(S_ISN + 17, C_ISN, FIN | ACK, b"");
    assert_eq!((out.direction, out.state), (ToClient, TcpState::FinWait1));
}

fn inline() -> StreamConfig {
    StreamConfig { inline: true, ..StreamConfig::default() }
}

#[test]
fn inline_releases_fast_open_data_on_the_syn() {
    let mut conv = Conv::new(inline());
    let out = conv.c(C_ISN, 0, SYN, b"GET /index.php HTTP/1.1\r\n\r\n");
    assert_eq!(out.state, TcpState::SynSent);
    assert_eq!(conv.stream(ToServer), vec![data(b"GET /index.php HTTP/1.1\r\n\r\n")], "no ACK needed");
    conv.s(S_ISN, C_ISN + 28, SYN | ACK, b"");
    conv.c(C_ISN + 28, S_ISN + 1, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"GET /index.php HTTP/1.1\r\n\r\n")], "delivered once");
    // IDS mode waits for the server's ACK of the SYN data.
    let mut ids = Conv::new(cfg());
    ids.c(C_ISN, 0, SYN, b"GET /");
    assert_eq!(ids.stream(ToServer), vec![]);
    ids.s(S_ISN, C_ISN + 6, SYN | ACK, b"");
    assert_eq!(ids.stream(ToServer), vec![data(b"GET /")]);
}

#[test]
fn inline_releases_in_order_data_on_arrival_and_holes_on_ack() {
    let mut conv = Conv::new(inline());
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"abcd");
    assert_eq!(conv.stream(ToServer), vec![data(b"abcd")]);
    conv.c(C_ISN + 9, S_ISN + 1, ACK, b"ijkl"); // after a 4-byte hole: held
    assert_eq!(conv.stream(ToServer), vec![data(b"abcd")]);
    conv.s(S_ISN + 1, C_ISN + 13, ACK, b""); // the receiver ACKs past the hole
    assert_eq!(conv.stream(ToServer), vec![data(b"abcd"), Ev::Gap(4), data(b"ijkl")]);
    // The FIN's End still waits for its ACK.
    conv.c(C_ISN + 13, S_ISN + 1, FIN | ACK, b"mn");
    assert_eq!(conv.stream(ToServer), vec![data(b"abcd"), Ev::Gap(4), data(b"ijklmn")]);
    conv.s(S_ISN + 1, C_ISN + 16, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"abcd"), Ev::Gap(4), data(b"ijklmn"), Ev::End]);
}

#[test]
fn inline_keeps_the_first_copy_whatever_the_policy() {
    // Last would take the retransmission in IDS mode; inline, the first copy was already
    // released (and an inline sensor rewrites the second to match).
    let cfg = StreamConfig { overlap_policy: OverlapPolicy::Last, ..inline() };
    let mut conv = Conv::new(cfg);
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"GOOD");
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"EVIL");
    assert_eq!(conv.stream(ToServer), vec![data(b"GOOD")]);
    // Held (out-of-order) bytes too: first copy wins.
    conv.c(C_ISN + 7, S_ISN + 1, ACK, b"xy");
    let out = conv.c(C_ISN + 7, S_ISN + 1, ACK, b"XY");
    assert!(out.anomalies.contains("stream.reassembly_overlap_different_data"));
    conv.c(C_ISN + 5, S_ISN + 1, ACK, b"--");
    assert_eq!(conv.stream(ToServer), vec![data(b"GOOD--xy")]);
}

#[test]
fn host_os_policy_resolves_each_direction_by_its_receiver() {
    let windows = vec!["192.0.2.0/24".to_string()];
    let old_linux = vec!["198.51.100.7".to_string()];
    let table = crate::HostOsPolicy::new([
        (OverlapPolicy::Windows, windows.as_slice()),
        (OverlapPolicy::OldLinux, old_linux.as_slice()),
    ])
    .expect("valid table");
    let cfg = StreamConfig { host_os_policy: table, ..cfg() };
    let client: std::net::IpAddr = "192.0.2.10".parse().expect("address");
    let server: std::net::IpAddr = "198.51.100.7".parse().expect("address");
    // An exact retransmission with other bytes: old-linux (the server) takes the new copy,
    // windows (the client) keeps the old one.
    let mut conv = Conv::new(cfg);
    conv.session.set_endpoints(&conv.cfg, client, server);
    conv.handshake(C_ISN, S_ISN);
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"OLD!");
    conv.c(C_ISN + 1, S_ISN + 1, ACK, b"NEW!");
    conv.s(S_ISN + 1, C_ISN + 5, ACK, b"old?");
    conv.s(S_ISN + 1, C_ISN + 5, ACK, b"new?");
    conv.c(C_ISN + 5, S_ISN + 5, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"NEW!")]);
    assert_eq!(conv.stream(ToClient), vec![data(b"old?")]);
    // Without addresses the configured default (bsd) keeps the first copy both ways.
    let mut plain = Conv::new(conv.cfg.clone());
    plain.handshake(C_ISN, S_ISN);
    plain.c(C_ISN + 1, S_ISN + 1, ACK, b"OLD!");
    plain.c(C_ISN + 1, S_ISN + 1, ACK, b"NEW!");
    plain.s(S_ISN + 1, C_ISN + 5, ACK, b"");
    assert_eq!(plain.stream(ToServer), vec![data(b"OLD!")]);
}

#[test]
fn host_os_policy_follows_the_server_when_the_flow_was_picked_up_backwards() {
    let old_linux = vec!["198.51.100.7".to_string()];
    let table = crate::HostOsPolicy::new([(OverlapPolicy::OldLinux, old_linux.as_slice())]).expect("valid");
    let cfg = StreamConfig { host_os_policy: table, ..cfg() };
    let server: std::net::IpAddr = "198.51.100.7".parse().expect("address");
    let client: std::net::IpAddr = "192.0.2.10".parse().expect("address");
    let mut conv = Conv::new(cfg);
    // The flow's first packet is the server's SYN/ACK: the first-seen source is the server.
    conv.session.set_endpoints(&conv.cfg, server, client);
    let out = conv.c(S_ISN, C_ISN + 1, SYN | ACK, b"");
    assert!(out.reversed);
    conv.s(C_ISN + 1, S_ISN + 1, ACK, b"OLD!"); // the client's data, from the flow's second side
    conv.s(C_ISN + 1, S_ISN + 1, ACK, b"NEW!");
    conv.c(S_ISN + 1, C_ISN + 5, ACK, b"");
    assert_eq!(conv.stream(ToServer), vec![data(b"NEW!")], "received by the old-linux server");
}
