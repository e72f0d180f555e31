//! Per-flow TCP session tracking: handshakes, windows, teardown, and the two directions'
//! assemblers.

use serde::Serialize;
use weir_core::{Anomaly, Direction, StreamEvent, Timestamp};

use crate::assembler::{Assembler, InsertLimits, Rejection};
use crate::config::{StreamConfig, UNKNOWN_WINDOW, WINDOW_SLACK};
use crate::policy::OverlapPolicy;

/// TCP header flag bits (RFC 9293 section 3.1, plus RFC 3168's ECE and CWR).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}
use tcp_flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};

/// RFC 7323 section 5.5: a timestamp older than the last one is acceptable again after the
/// connection was idle this long (24 days).
const PAWS_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(24 * 24 * 3600);

/// One TCP segment as the session needs it; built by the caller from the decoded packet.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub ts: Timestamp,
    /// The packet's source is the flow's first-seen source.
    pub from_initiator: bool,
    pub seq: u32,
    pub ack: u32,
    /// Raw flag byte, see [`tcp_flags`].
    pub flags: u8,
    /// Window field as on the wire (unscaled).
    pub window: u16,
    /// Window scale option (SYN and SYN/ACK only).
    pub wscale: Option<u8>,
    /// Timestamp option (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    pub sack_permitted: bool,
    pub payload: &'a [u8],
}

/// Suricata's TCP session states, spelled in EVE as Suricata does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TcpState {
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    LastAck,
    CloseWait,
    Closing,
    Closed,
}

impl TcpState {
    pub fn eve(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::LastAck => "last_ack",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }

    /// Past the handshake: data flows (or flowed) both ways.
    pub fn is_established(self) -> bool {
        !matches!(self, TcpState::None | TcpState::SynSent | TcpState::SynRecv)
    }
}

/// At most this many anomalies are reported per segment; more are counted in
/// [`SessionStats::anomalies_dropped`]. One segment rarely triggers more than two.
pub const MAX_ANOMALIES_PER_SEGMENT: usize = 4;

/// The anomalies one segment raised, without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    items: [Option<Anomaly>; MAX_ANOMALIES_PER_SEGMENT],
}

impl Anomalies {
    fn push(&mut self, anomaly: Anomaly) -> bool {
        match self.items.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => {
                *slot = Some(anomaly);
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Anomaly> + '_ {
        self.items.iter().flatten().copied()
    }

    pub fn contains(&self, event: &str) -> bool {
        self.iter().any(|a| a.event == event)
    }

    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }
}

/// The limits one segment met, for the caller's exception policies. Kept apart from the
/// anomaly list, which has room for a few events only and may drop one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitsMet {
    /// Storing it would have exceeded the session's memcap.
    pub memcap: bool,
    /// Its direction holds its maximum of segments or out-of-order regions.
    pub queue: bool,
    /// Its direction reached the reassembly depth for the first time.
    pub depth: bool,
}

/// What one segment did to its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// The packet's direction, already corrected when the session learned that the flow's
    /// first-seen source is the server.
    pub direction: Direction,
    /// This segment revealed that the flow's first-seen source is the server (midstream pickup
    /// on a SYN/ACK): the caller must swap the flow's client and server for its records. The
    /// session keeps mapping `from_initiator` correctly on its own.
    pub reversed: bool,
    /// The segment was used by stream tracking; false when it was ignored (no session and no
    /// midstream pickup, invalid, out of window, wrong handshake packet).
    pub accepted: bool,
    /// A SYN arrived on a closed session (port reuse): nothing was done with it. The caller must
    /// `flush` this session, end the flow, start a new flow and session, and feed it this segment.
    pub new_session: bool,
    pub state: TcpState,
    pub state_changed: bool,
    pub anomalies: Anomalies,
    pub limits: LimitsMet,
}

/// Per-session counters, for the caller's stats and EVE `stats` records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub overlaps: u64,
    pub overlaps_different_data: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub memcap_drops: u64,
    pub segment_limit_drops: u64,
    pub depth_reached: u64,
    pub out_of_window: u64,
    pub anomalies_dropped: u64,
}

/// The `tcp` object of an EVE `flow` record, as Suricata writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpEve {
    pub tcp_flags: String,
    pub tcp_flags_ts: String,
    pub tcp_flags_tc: String,
    #[serde(skip_serializing_if = "is_false")]
    pub syn: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub fin: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub rst: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub psh: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub ack: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub urg: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub ecn: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub cwr: bool,
    pub state: &'static str,
    /// Bytes of the server's stream were never seen.
    #[serde(skip_serializing_if = "is_false")]
    pub tc_gap: bool,
    /// Bytes of the client's stream were never seen.
    #[serde(skip_serializing_if = "is_false")]
    pub ts_gap: bool,
    pub ts_max_regions: usize,
    pub tc_max_regions: usize,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One side's sending half: its sequence space, what the peer acknowledged of it, its window,
/// and the assembler holding its bytes.
#[derive(Debug, Default)]
struct Half {
    /// Its sequence space is anchored (`anchor_seq` is stream offset `anchor_offset`).
    anchored: bool,
    /// Packets from this side were captured.
    seen: bool,
    isn: u32,
    /// Payload carried by the SYN (TCP Fast Open).
    syn_data_len: u32,
    anchor_seq: u32,
    anchor_offset: u64,
    /// Offset after the highest byte this side sent (FIN not counted).
    next_offset: u64,
    /// How far the peer acknowledged this side's stream (FIN counted as one).
    acked: Option<u64>,
    /// Receive window this side advertises, scaled; None until it can be trusted.
    window: Option<u32>,
    wscale: Option<u8>,
    timestamps: bool,
    last_tsval: Option<u32>,
    /// Packet time of `last_tsval`.
    last_tsval_at: Timestamp,
    fin_offset: Option<u64>,
    flags: u8,
    /// A gap was reported in this side's stream.
    had_gap: bool,
    assembler: Assembler,
}

impl Half {
    /// Anchors offset 0 of this side's stream at `seq`.
    fn anchor(&mut self, seq: u32) {
        self.anchored = true;
        self.anchor_seq = seq;
        self.anchor_offset = 0;
    }

    /// Stream offset of `seq`, taken within 2^31 of the anchor (which follows the highest byte
    /// seen, so wrap-around of the 32-bit space is invisible here). None before the stream start.
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let delta = i64::from(seq.wrapping_sub(self.anchor_seq) as i32);
        u64::try_from(self.anchor_offset as i64 + delta).ok()
    }

    fn advance_anchor(&mut self, offset: u64) {
        if offset > self.anchor_offset {
            self.anchor_seq = self.anchor_seq.wrapping_add((offset - self.anchor_offset) as u32);
            self.anchor_offset = offset;
        }
    }

    fn note_ack(&mut self, offset: u64) {
        self.acked = Some(self.acked.map_or(offset, |a| a.max(offset)));
    }

    fn scaled_window(&self, raw: u16, scale: bool) -> u32 {
        let shift = if scale { self.wscale.unwrap_or(0).min(14) } else { 0 };
        u32::from(raw) << shift
    }
}

/// One TCP session: both directions' state and bytes. Not `Clone`: it owns buffers.
#[derive(Debug, Default)]
pub struct TcpSession {
    state: TcpState,
    /// Indexed by `Direction::index()`: the client's half (to-server bytes), the server's half.
    halves: [Half; 2],
    /// The flow's first-seen source is the server.
    initiator_is_server: bool,
    midstream: bool,
    /// Simultaneous open / split handshake in progress (SYN answered by SYN).
    four_way: bool,
    /// Window scaling and timestamps were agreed by both SYNs.
    wscale_agreed: bool,
    timestamps_agreed: bool,
    /// The direction that sent the first FIN.
    first_fin: Option<Direction>,
    /// Overlap policies of the flow's first-seen source and of its peer, as hosts receiving
    /// data (`StreamConfig::host_os_policy`); None: the configured default.
    host_policies: [Option<OverlapPolicy>; 2],
    stats: SessionStats,
}

type Emit<'e> = dyn FnMut(Direction, StreamEvent<'_>) + 'e;

impl TcpSession {
    pub fn new() -> Self {
        TcpSession::default()
    }

    pub fn state(&self) -> TcpState {
        self.state
    }

    /// The session was picked up without its handshake.
    pub fn is_midstream(&self) -> bool {
        self.midstream
    }

    /// Whether `seg` would start this session as a midstream pickup (its handshake unseen). Asked
    /// before feeding it, so a caller's policy for such sessions covers their very first bytes.
    pub fn picks_up_midstream(&self, cfg: &StreamConfig, seg: &TcpSegment<'_>) -> bool {
        self.state == TcpState::None && cfg.midstream && seg.flags & RST == 0 && seg.flags & (SYN | ACK) != SYN
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Bytes held undelivered by both directions, bookkeeping included. The caller sums this over
    /// sessions to enforce the global reassembly memcap (flush and evict the largest or oldest).
    pub fn memory_used(&self) -> usize {
        self.halves.iter().map(|h| h.assembler.memory_used()).sum()
    }

    /// Swaps client and server, for when a later stage learns the session was picked up the
    /// wrong way round (midstream pickup on a server's packet, app-layer protocol detection
    /// seeing a response first). From now on `from_initiator` segments are to-client; events
    /// already delivered keep the direction they had. The closing state is mirrored.
    pub fn swap_directions(&mut self) {
        self.halves.swap(0, 1);
        self.initiator_is_server = !self.initiator_is_server;
        self.first_fin = self.first_fin.map(Direction::opposite);
        self.state = match self.state {
            TcpState::CloseWait => TcpState::FinWait1,
            TcpState::FinWait1 => TcpState::CloseWait,
            state => state,
        };
    }

    /// Tells the session the addresses of the flow's first-seen source (`from_initiator`
    /// segments) and of its peer, so each direction's overlaps are resolved by the policy of the
    /// host receiving it (`StreamConfig::host_os_policy`). Call once, before the first segment;
    /// without it every direction uses `StreamConfig::overlap_policy`.
    pub fn set_endpoints(&mut self, cfg: &StreamConfig, initiator: std::net::IpAddr, responder: std::net::IpAddr) {
        self.host_policies = [cfg.host_os_policy.lookup(initiator), cfg.host_os_policy.lookup(responder)];
    }

    /// The policy settling overlaps in `dir`'s bytes.
    fn overlap_policy(&self, cfg: &StreamConfig, dir: Direction) -> OverlapPolicy {
        if cfg.inline {
            // An inline sensor rewrites later copies on the wire to match the first one.
            return OverlapPolicy::First;
        }
        // `dir`'s bytes are received by the server for to-server data; the server is the
        // first-seen source exactly when the flow was picked up backwards.
        let receiver_is_initiator = (dir == Direction::ToServer) == self.initiator_is_server;
        let receiver = if receiver_is_initiator { 0 } else { 1 };
        self.host_policies[receiver].unwrap_or(cfg.overlap_policy)
    }

    /// Stream offset up to which `dir` has been delivered (gaps included).
    pub fn delivered(&self, dir: Direction) -> u64 {
        self.halves[dir.index()].assembler.delivered()
    }

    /// The `tcp` object of the EVE `flow` record.
    pub fn eve(&self) -> TcpEve {
        let ts = self.halves[0].flags;
        let tc = self.halves[1].flags;
        let all = ts | tc;
        TcpEve {
            tcp_flags: format!("{all:02x}"),
            tcp_flags_ts: format!("{ts:02x}"),
            tcp_flags_tc: format!("{tc:02x}"),
            syn: all & SYN != 0,
            fin: all & FIN != 0,
            rst: all & RST != 0,
            psh: all & PSH != 0,
            ack: all & ACK != 0,
            urg: all & URG != 0,
            ecn: all & ECE != 0,
            cwr: all & CWR != 0,
            state: self.state.eve(),
            tc_gap: self.halves[1].had_gap,
            ts_gap: self.halves[0].had_gap,
            ts_max_regions: self.halves[0].assembler.max_regions_seen().max(1),
            tc_max_regions: self.halves[1].assembler.max_regions_seen().max(1),
        }
    }

    /// Feeds one segment of this flow. Stream events released by it go to `out`.
    pub fn on_segment(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, out: &mut Emit<'_>) -> SegmentOutcome {
        let before = self.state;
        let mut ctx = Ctx {
            anomalies: Anomalies::default(),
            accepted: true,
            reversed: false,
            new_session: false,
            limits: LimitsMet::default(),
        };
        let mut dir = self.direction_of(seg);

        if self.state == TcpState::None {
            // The first handshake packet says who the client is, whoever the flow table saw
            // first: a SYN's sender is the client, a SYN/ACK's (midstream pickup) the server.
            let handshake = seg.flags & (SYN | ACK | RST);
            let sender_is_client = match handshake {
                SYN => Some(true),
                h if h == SYN | ACK && cfg.midstream => Some(false),
                _ => None,
            };
            if sender_is_client.is_some_and(|client| client != (dir == Direction::ToServer)) {
                self.initiator_is_server = !self.initiator_is_server;
                ctx.reversed = true;
                dir = dir.opposite();
            }
        }
        self.halves[dir.index()].flags |= seg.flags;

        match self.state {
            TcpState::None => self.on_none(cfg, seg, dir, &mut ctx),
            TcpState::SynSent => self.on_syn_sent(cfg, seg, dir, &mut ctx),
            TcpState::SynRecv => self.on_syn_recv(cfg, seg, dir, &mut ctx),
            _ => self.on_established(cfg, seg, dir, &mut ctx),
        }
        self.release(cfg, &mut ctx, out);

        SegmentOutcome {
            direction: dir,
            reversed: ctx.reversed,
            accepted: ctx.accepted,
            new_session: ctx.new_session,
            state: self.state,
            state_changed: self.state != before,
            anomalies: ctx.anomalies,
            limits: ctx.limits,
        }
    }

    /// Ends both directions: everything held is delivered (holes as gaps), then `End`. For flow
    /// timeout, eviction and end of capture. The session keeps its state for the flow record.
    pub fn flush(&mut self, cfg: &StreamConfig, out: &mut Emit<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            self.finish(cfg, dir, out);
        }
    }

    /// Hands out everything both directions hold now, holes between held bytes as gaps, without
    /// ending either stream: later segments carry on from there (retransmissions of what was
    /// handed out are then old data). For a memory cap met under the `ignore` exception policy,
    /// where waiting for the peer's ACKs would keep memory the sensor no longer has.
    pub fn release_held(&mut self, cfg: &StreamConfig, out: &mut Emit<'_>) {
        let depth = cfg.depth_limit();
        for dir in [Direction::ToServer, Direction::ToClient] {
            let half = &mut self.halves[dir.index()];
            if half.assembler.is_ended() {
                continue;
            }
            // Everything held goes, bytes past a FIN included, as `flush` hands them out; the
            // FIN's own release still ends the direction.
            let gap = half.assembler.deliver(u64::MAX, depth, true, &mut |ev| out(dir, ev));
            half.had_gap |= gap > 0;
            if gap > 0 {
                self.stats.gaps += 1;
                self.stats.gap_bytes += gap;
            }
        }
    }

    fn finish(&mut self, cfg: &StreamConfig, dir: Direction, out: &mut Emit<'_>) {
        let half = &mut self.halves[dir.index()];
        let stream_end = half.fin_offset.unwrap_or(0);
        let gap = half.assembler.finish(stream_end, cfg.depth_limit(), &mut |ev| out(dir, ev));
        half.had_gap |= gap > 0;
        if gap > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes += gap;
        }
    }

    fn direction_of(&self, seg: &TcpSegment<'_>) -> Direction {
        if seg.from_initiator != self.initiator_is_server { Direction::ToServer } else { Direction::ToClient }
    }

    fn set_state(&mut self, state: TcpState) {
        self.state = state;
    }

    fn anomaly(&mut self, ctx: &mut Ctx, event: &'static str) {
        if !ctx.anomalies.push(Anomaly::stream(event)) {
            self.stats.anomalies_dropped += 1;
        }
    }

    fn ignore(&mut self, ctx: &mut Ctx, event: Option<&'static str>) {
        ctx.accepted = false;
        if let Some(event) = event {
            self.anomaly(ctx, event);
        }
    }

    /// Records the options a SYN or SYN/ACK carries.
    fn note_syn_options(&mut self, dir: Direction, seg: &TcpSegment<'_>) {
        let half = &mut self.halves[dir.index()];
        half.wscale = seg.wscale;
        half.timestamps = seg.timestamp.is_some();
        half.last_tsval = seg.timestamp.map(|(val, _)| val);
        half.last_tsval_at = seg.ts;
        half.seen = true;
        // A SYN's window is never scaled (RFC 7323 section 2.2).
        half.window = Some(u32::from(seg.window));
    }

    fn on_none(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, dir: Direction, ctx: &mut Ctx) {
        let flags = seg.flags;
        if flags & RST != 0 {
            return self.ignore(ctx, Some("stream.rst_but_no_session"));
        }
        if flags & (SYN | ACK) == SYN {
            let client = &mut self.halves[dir.index()];
            client.isn = seg.seq;
            client.anchor(seg.seq.wrapping_add(1));
            client.syn_data_len = seg.payload.len() as u32;
            self.note_syn_options(dir, seg);
            self.set_state(TcpState::SynSent);
            // TCP Fast Open: the SYN's payload is the stream's first bytes.
            self.insert(cfg, dir, seg.seq.wrapping_add(1), seg.payload, ctx);
            return;
        }
        if !cfg.midstream {
            let event = if flags & FIN != 0 { Some("stream.fin_but_no_session") } else { None };
            return self.ignore(ctx, event);
        }
        self.midstream = true;
        if flags & SYN != 0 {
            // SYN/ACK pickup: `dir` is already ToClient.
            let server = &mut self.halves[dir.index()];
            server.isn = seg.seq;
            server.anchor(seg.seq.wrapping_add(1));
            self.note_syn_options(dir, seg);
            // The client's window scale is unknown, so no window can be trusted.
            self.halves[dir.index()].window = None;
            let client = &mut self.halves[dir.opposite().index()];
            client.anchor(seg.ack);
            client.note_ack(0);
            self.set_state(TcpState::SynRecv);
            self.insert(cfg, dir, seg.seq.wrapping_add(1), seg.payload, ctx);
            return;
        }
        // Pickup on an ACK or data segment: its sender is taken as the client.
        self.halves[dir.index()].anchor(seg.seq);
        if flags & ACK != 0 {
            self.halves[dir.opposite().index()].anchor(seg.ack);
        }
        self.set_state(TcpState::Established);
        self.on_established(cfg, seg, dir, ctx);
    }

    fn on_syn_sent(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, dir: Direction, ctx: &mut Ctx) {
        let flags = seg.flags;
        let client_isn = self.halves[Direction::ToServer.index()].isn;
        match dir {
            Direction::ToServer => {
                if flags & RST != 0 {
                    self.set_state(TcpState::Closed);
                } else if flags & (SYN | ACK) == SYN {
                    if seg.seq != client_isn {
                        // A new attempt replaces the old one (its flags stay for the record).
                        let flags_seen = self.halves[0].flags;
                        self.halves[0] = Half { flags: flags_seen, ..Half::default() };
                        self.set_state(TcpState::None);
                        self.on_none(cfg, seg, dir, ctx);
                    }
                } else if flags & SYN != 0 {
                    self.ignore(ctx, Some("stream.3whs_synack_in_wrong_direction"));
                } else if cfg.async_oneside {
                    // The server's SYN/ACK is not on this link: one-sided session.
                    self.halves[1].anchor(seg.ack);
                    self.set_state(TcpState::Established);
                    self.on_established(cfg, seg, dir, ctx);
                } else {
                    self.ignore(ctx, None);
                }
            }
            Direction::ToClient => {
                let expected = client_isn.wrapping_add(1);
                let tfo_expected = expected.wrapping_add(self.halves[0].syn_data_len);
                if flags & RST != 0 {
                    if flags & ACK != 0 && (seg.ack == expected || seg.ack == tfo_expected) {
                        self.set_state(TcpState::Closed);
                    } else {
                        self.ignore(ctx, Some("stream.rst_invalid_ack"));
                    }
                } else if flags & (SYN | ACK) == SYN | ACK {
                    if seg.ack != expected && seg.ack != tfo_expected {
                        return self.ignore(ctx, Some("stream.3whs_synack_with_wrong_ack"));
                    }
                    let server = &mut self.halves[1];
                    server.isn = seg.seq;
                    server.anchor(seg.seq.wrapping_add(1));
                    self.note_syn_options(dir, seg);
                    self.agree_options();
                    if let Some(offset) = self.halves[0].offset_of(seg.ack) {
                        self.halves[0].note_ack(offset);
                    }
                    self.set_state(TcpState::SynRecv);
                    // A SYN/ACK may carry data too (Fast Open servers answering at once).
                    self.insert(cfg, dir, seg.seq.wrapping_add(1), seg.payload, ctx);
                } else if flags & SYN != 0 {
                    // Split handshake or simultaneous open: the responder sent its own SYN.
                    let server = &mut self.halves[1];
                    server.isn = seg.seq;
                    server.anchor(seg.seq.wrapping_add(1));
                    self.note_syn_options(dir, seg);
                    self.four_way = true;
                    self.set_state(TcpState::SynRecv);
                } else {
                    self.ignore(ctx, Some("stream.3whs_ack_in_wrong_dir"));
                }
            }
        }
    }

    fn agree_options(&mut self) {
        self.wscale_agreed = self.halves[0].wscale.is_some() && self.halves[1].wscale.is_some();
        self.timestamps_agreed = self.halves[0].timestamps && self.halves[1].timestamps;
        if !self.wscale_agreed {
            for half in &mut self.halves {
                half.wscale = None;
            }
        }
    }

    fn on_syn_recv(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, dir: Direction, ctx: &mut Ctx) {
        let flags = seg.flags;
        if flags & RST != 0 {
            return self.on_established(cfg, seg, dir, ctx);
        }
        if self.four_way {
            return self.on_split_handshake(cfg, seg, dir, ctx);
        }
        match dir {
            Direction::ToServer => {
                if flags & SYN != 0 {
                    let event = if flags & ACK != 0 {
                        Some("stream.3whs_synack_toserver_on_syn_recv")
                    } else if seg.seq != self.halves[0].isn {
                        Some("stream.3whs_syn_resend_diff_seq_on_syn_recv")
                    } else {
                        None // a plain retransmission
                    };
                    return self.ignore(ctx, event);
                }
                if flags & ACK == 0 {
                    return self.ignore(ctx, None);
                }
                let server = &self.halves[1];
                match server.offset_of(seg.ack) {
                    Some(ack) if ack <= server.next_offset + 1 || !server.seen => {}
                    _ => return self.ignore(ctx, Some("stream.3whs_wrong_seq_wrong_ack")),
                }
                if !self.halves[0].anchored {
                    self.halves[0].anchor(seg.seq);
                }
                self.set_state(TcpState::Established);
                self.on_established(cfg, seg, dir, ctx);
            }
            Direction::ToClient => {
                if flags & SYN != 0 {
                    let server_isn = self.halves[1].isn;
                    let acked = self.halves[0].acked;
                    let ack_offset = self.halves[0].offset_of(seg.ack);
                    if flags & ACK != 0 && seg.seq == server_isn && ack_offset != acked {
                        return self.ignore(ctx, Some("stream.3whs_synack_resend_with_different_ack"));
                    }
                    return; // retransmitted SYN/ACK
                }
                let client_unseen = !self.halves[0].seen;
                if self.midstream && client_unseen && cfg.async_oneside {
                    // Only the server's side is on this link.
                    self.set_state(TcpState::Established);
                    return self.on_established(cfg, seg, dir, ctx);
                }
                // The client's ACK may simply be missing from the capture: accept server data
                // that acknowledges what the SYN/ACK acknowledged.
                let consistent = self.halves[0].offset_of(seg.ack).is_some_and(|a| Some(a) >= self.halves[0].acked);
                if flags & ACK != 0 && consistent {
                    self.set_state(TcpState::Established);
                    self.on_established(cfg, seg, dir, ctx);
                } else {
                    self.ignore(ctx, Some("stream.3whs_ack_in_wrong_dir"));
                }
            }
        }
    }

    /// SYN answered by SYN (Beardsley's split handshake, or simultaneous open): each side must
    /// then acknowledge the other's SYN, with a SYN/ACK or a plain ACK, in either order.
    fn on_split_handshake(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, dir: Direction, ctx: &mut Ctx) {
        let flags = seg.flags;
        if flags & ACK == 0 {
            if flags & SYN == 0 {
                self.ignore(ctx, Some("stream.4whs_wrong_seq"));
            }
            return; // a retransmitted SYN
        }
        let (me, peer) = (dir.index(), dir.opposite().index());
        if flags & SYN != 0 && seg.seq != self.halves[me].isn {
            return self.ignore(ctx, Some("stream.4whs_synack_with_wrong_syn"));
        }
        if seg.ack != self.halves[peer].isn.wrapping_add(1) {
            let event = if flags & SYN != 0 { "stream.4whs_synack_with_wrong_ack" } else { "stream.4whs_invalid_ack" };
            return self.ignore(ctx, Some(event));
        }
        self.halves[peer].note_ack(0);
        if flags & SYN != 0 {
            self.note_syn_options(dir, seg);
            self.agree_options();
        }
        if self.halves[0].acked.is_some() && self.halves[1].acked.is_some() {
            self.four_way = false;
            self.set_state(TcpState::Established);
            if flags & SYN == 0 {
                self.on_established(cfg, seg, dir, ctx);
            }
        }
    }

    fn on_established(&mut self, cfg: &StreamConfig, seg: &TcpSegment<'_>, dir: Direction, ctx: &mut Ctx) {
        let flags = seg.flags;
        let (me, peer) = (dir.index(), dir.opposite().index());
        if !self.halves[me].anchored {
            // First packet of a side whose sequence space the other side's ACKs did not reveal.
            self.halves[me].anchor(seg.seq);
        }

        if flags & SYN != 0 {
            if matches!(self.state, TcpState::Closed | TcpState::TimeWait) && flags & ACK == 0 {
                ctx.new_session = true;
                ctx.accepted = false;
                return;
            }
            let event = match (dir, flags & ACK != 0) {
                (Direction::ToServer, false) if seg.seq == self.halves[me].isn => "stream.est_syn_resend",
                (Direction::ToServer, false) => "stream.est_syn_resend_diff_seq",
                (Direction::ToServer, true) => "stream.est_synack_toserver",
                (Direction::ToClient, false) => "stream.est_syn_toclient",
                (Direction::ToClient, true) => "stream.est_synack_resend",
            };
            return self.ignore(ctx, Some(event));
        }

        let Some(start) = self.halves[me].offset_of(seg.seq) else {
            return self.ignore(ctx, Some("stream.est_packet_out_of_window"));
        };
        if !self.in_window(dir, start, seg.payload.len() as u64) {
            self.stats.out_of_window += 1;
            return self.ignore(ctx, Some("stream.est_packet_out_of_window"));
        }
        self.halves[me].seen = true;
        if self.timestamps_agreed && flags & RST == 0 {
            // RFC 7323 section 5 (PAWS): a TSval older than the last one seen is a stale or
            // forged segment; compared modulo 2^32 as the clock wraps. After 24 days idle the
            // peer's clock may legitimately have wrapped past it (section 5.5).
            let half = &self.halves[me];
            let idle_too_long = seg.ts.since(half.last_tsval_at) > PAWS_IDLE_LIMIT;
            if let (Some(last), Some((val, _))) = (half.last_tsval, seg.timestamp)
                && (last.wrapping_sub(val) as i32) > 0
                && !idle_too_long
            {
                return self.ignore(ctx, Some("stream.pkt_invalid_timestamp"));
            }
            if let Some((val, _)) = seg.timestamp {
                self.halves[me].last_tsval = Some(val);
                self.halves[me].last_tsval_at = seg.ts;
            }
        }

        if flags & RST != 0 {
            // Accept a reset inside the receiver's window; a blind injection guesses elsewhere.
            let half = &self.halves[me];
            let lowest = half.acked.unwrap_or(0).min(half.next_offset);
            if start + 1 < lowest {
                return self.ignore(ctx, Some("stream.suspected_rst_inject"));
            }
            self.set_state(TcpState::Closed);
            return;
        }

        if flags & ACK != 0 {
            self.on_ack(dir, seg.ack, ctx);
        }
        let raw_window = seg.window;
        let scale = self.wscale_agreed;
        let window = self.halves[me].scaled_window(raw_window, scale);
        if scale || !self.midstream {
            self.halves[me].window = Some(window);
        }

        if !seg.payload.is_empty() {
            let end = start + seg.payload.len() as u64;
            if self.halves[me].acked.is_some_and(|acked| end <= acked) && self.halves[peer].seen {
                self.anomaly(ctx, "stream.pkt_spurious_retransmission");
            }
            self.insert(cfg, dir, seg.seq, seg.payload, ctx);
        }
        if flags & FIN != 0 {
            let fin_at = start + seg.payload.len() as u64;
            let half = &mut self.halves[me];
            if half.fin_offset.is_none() {
                half.fin_offset = Some(fin_at);
            }
            self.on_fin(dir, cfg.async_oneside);
        }
        let next = start + seg.payload.len() as u64;
        let half = &mut self.halves[me];
        half.next_offset = half.next_offset.max(next);
        half.advance_anchor(next);
    }

    /// Whether data starting at `start` fits what the receiver allows.
    fn in_window(&self, dir: Direction, start: u64, len: u64) -> bool {
        let me = &self.halves[dir.index()];
        let receiver = &self.halves[dir.opposite().index()];
        let end = start + len;
        // Far behind the highest byte seen: garbage, or a sequence number from the other half
        // of the 32-bit space.
        if end + u64::from(UNKNOWN_WINDOW) < me.next_offset {
            return false;
        }
        match (me.acked, receiver.window) {
            (Some(acked), Some(window)) => start <= acked + u64::from(window) + u64::from(WINDOW_SLACK),
            _ => start <= me.next_offset + u64::from(UNKNOWN_WINDOW),
        }
    }

    fn on_ack(&mut self, dir: Direction, ack: u32, ctx: &mut Ctx) {
        let window = self.halves[dir.index()].window;
        let acked_half = &mut self.halves[dir.opposite().index()];
        if !acked_half.anchored {
            acked_half.anchor(ack);
        }
        let Some(offset) = acked_half.offset_of(ack) else {
            self.anomaly(ctx, "stream.pkt_invalid_ack");
            return;
        };
        // ACKing far past what the peer was seen sending: the peer's packets may be missing
        // from the capture, but not more than the acknowledging side's window of them.
        let fin = u64::from(acked_half.fin_offset.is_some());
        let allowance = u64::from(window.unwrap_or(UNKNOWN_WINDOW)) + u64::from(WINDOW_SLACK);
        if acked_half.seen && offset > acked_half.next_offset + fin + allowance {
            self.anomaly(ctx, "stream.pkt_invalid_ack");
            return;
        }
        acked_half.note_ack(offset);
        if !acked_half.seen {
            // Nothing was seen of that side: its stream starts where its peer says it is.
            acked_half.advance_anchor(offset);
            acked_half.next_offset = acked_half.next_offset.max(offset);
        }
        self.advance_close(dir);
    }

    /// The first FIN moves the state as Suricata names it; the second FIN as well.
    fn on_fin(&mut self, dir: Direction, async_oneside: bool) {
        if async_oneside && self.is_one_sided() {
            // Suricata cannot check a one-sided FIN against the unseen peer's window and keeps
            // such sessions established; its flow records are what users compare against.
            return;
        }
        match (self.state, self.first_fin) {
            (TcpState::Established, _) => {
                self.first_fin = Some(dir);
                self.set_state(if dir == Direction::ToServer { TcpState::CloseWait } else { TcpState::FinWait1 });
            }
            (TcpState::CloseWait, Some(first)) if first != dir => self.set_state(TcpState::LastAck),
            (TcpState::FinWait1, Some(first)) if first != dir => {
                let first_fin_acked = self.fin_acked(first);
                self.set_state(if first_fin_acked { TcpState::TimeWait } else { TcpState::Closing });
            }
            (TcpState::FinWait2, Some(first)) if first != dir => self.set_state(TcpState::TimeWait),
            _ => {}
        }
    }

    /// ACKs that move the closing states forward (`dir` is the acknowledging side).
    fn advance_close(&mut self, dir: Direction) {
        let Some(first) = self.first_fin else { return };
        let acks_first = dir != first && self.fin_acked(first);
        let acks_second = dir == first && self.fin_acked(first.opposite());
        let next = match self.state {
            TcpState::FinWait1 if acks_first => TcpState::FinWait2,
            TcpState::Closing if acks_first || acks_second => TcpState::TimeWait,
            TcpState::LastAck if acks_second => TcpState::Closed,
            TcpState::TimeWait if acks_second => TcpState::Closed,
            state => state,
        };
        self.set_state(next);
    }

    fn fin_acked(&self, sender: Direction) -> bool {
        let half = &self.halves[sender.index()];
        matches!((half.fin_offset, half.acked), (Some(fin), Some(acked)) if acked > fin)
    }

    /// Only one side of the session is on this link, and async-oneside handling applies.
    fn is_one_sided(&self) -> bool {
        !(self.halves[0].seen && self.halves[1].seen)
    }

    fn insert(&mut self, cfg: &StreamConfig, dir: Direction, seq: u32, payload: &[u8], ctx: &mut Ctx) {
        if payload.is_empty() {
            return;
        }
        let used = self.memory_used();
        let policy = self.overlap_policy(cfg, dir);
        let half = &mut self.halves[dir.index()];
        let Some(start) = half.offset_of(seq) else { return };
        half.next_offset = half.next_offset.max(start + payload.len() as u64);
        let limits = InsertLimits {
            policy,
            depth: cfg.depth_limit(),
            memory_budget: cfg.flow_memcap.saturating_sub(used),
            max_segments: cfg.max_queued_segments,
            max_regions: cfg.max_regions,
        };
        let report = half.assembler.insert(start, payload, &limits);
        if report.overlap {
            self.stats.overlaps += 1;
        }
        if report.different_data {
            self.stats.overlaps_different_data += 1;
            if cfg.check_overlap_different_data {
                self.anomaly(ctx, "stream.reassembly_overlap_different_data");
            }
        }
        let depth_hit = report.depth_cut || report.rejected == Some(Rejection::BeyondDepth);
        if depth_hit {
            if self.stats.depth_reached == 0 {
                ctx.limits.depth = true;
                self.anomaly(ctx, "stream.reassembly_depth_reached");
            }
            self.stats.depth_reached += 1;
        }
        match report.rejected {
            Some(Rejection::Memcap) => {
                self.stats.memcap_drops += 1;
                ctx.limits.memcap = true;
                self.anomaly(ctx, "stream.reassembly_insert_memcap");
            }
            Some(Rejection::SegmentLimit | Rejection::RegionLimit) => {
                self.stats.segment_limit_drops += 1;
                ctx.limits.queue = true;
                self.anomaly(ctx, "stream.reassembly_insert_limit");
            }
            Some(Rejection::BeforeDelivered | Rejection::BeyondDepth) | None => {}
        }
    }

    /// Applies the delivery rule to both directions after a segment.
    fn release(&mut self, cfg: &StreamConfig, ctx: &mut Ctx, out: &mut Emit<'_>) {
        let depth = cfg.depth_limit();
        let closed = self.state == TcpState::Closed;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let peer_seen = self.halves[dir.opposite().index()].seen;
            if closed {
                self.finish(cfg, dir, out);
                continue;
            }
            let half = &mut self.halves[dir.index()];
            if half.assembler.is_ended() || !half.anchored {
                continue;
            }
            let mut gap = 0;
            let one_sided = cfg.async_oneside && !peer_seen && half.seen && self.state.is_established();
            if one_sided {
                // No ACK will ever prove a hole lost; once the direction is full, waiting only
                // loses more, so its holes are given up on.
                let give_up_holes = ctx.limits.memcap || ctx.limits.queue;
                gap += half.assembler.deliver(u64::MAX, depth, give_up_holes, &mut |ev| out(dir, ev));
                if half.fin_offset.is_some_and(|fin| half.assembler.delivered() >= fin) {
                    self.finish(cfg, dir, out);
                }
            } else {
                if let Some(acked) = half.acked {
                    let limit = half.fin_offset.map_or(acked, |fin| acked.min(fin));
                    gap += half.assembler.deliver(limit, depth, true, &mut |ev| out(dir, ev));
                    if half.fin_offset.is_some_and(|fin| acked > fin) {
                        self.finish(cfg, dir, out);
                    }
                }
                let half = &mut self.halves[dir.index()];
                if cfg.inline && !half.assembler.is_ended() {
                    // Inline: in-order bytes go out on arrival, before any ACK; a hole still
                    // waits for the peer's ACK (above) to be given up on.
                    let limit = half.fin_offset.unwrap_or(u64::MAX);
                    gap += half.assembler.deliver(limit, depth, false, &mut |ev| out(dir, ev));
                }
            }
            if gap > 0 {
                self.halves[dir.index()].had_gap = true;
                self.stats.gaps += 1;
                self.stats.gap_bytes += gap;
                self.anomaly(ctx, "stream.reassembly_seq_gap");
            }
        }
    }
}

/// Per-segment scratch.
struct Ctx {
    anomalies: Anomalies,
    accepted: bool,
    reversed: bool,
    new_session: bool,
    limits: LimitsMet,
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
