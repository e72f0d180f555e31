//! TCP session tracking and per-direction stream reassembly, sans-IO.
//!
//! The caller (the flow table) owns one [`TcpSession`] per TCP flow and feeds it every TCP
//! segment of that flow as a [`TcpSegment`] with the packet's timestamp; the session answers
//! with a [`SegmentOutcome`] (direction, anomalies, state) and pushes each direction's
//! reassembled stream as `weir_core::StreamEvent`s (`Data | Gap { len } | End`) into a callback.
//!
//! # Caller contract (the flow table)
//!
//! * `from_initiator` is "this packet's source is the flow's first-seen source". The session
//!   works out who the client is (the first SYN's sender, a midstream SYN/ACK's receiver) and
//!   returns the corrected [`SegmentOutcome::direction`]; `reversed` says the flow's record must
//!   swap client and server. [`TcpSession::swap_directions`] does the same later, for app-layer
//!   protocol detection.
//! * `new_session` (a SYN on a closed or time-wait session: port reuse): flush this session, end
//!   the flow, create a new flow and `TcpSession`, and feed the same segment to it.
//! * Flow timeout, eviction, end of capture: [`TcpSession::flush`].
//!
//! # Delivery rule (IDS mode, as Suricata)
//!
//! * A direction's bytes are released once the other side has ACKed them, so overlapping
//!   retransmissions are settled by the [`OverlapPolicy`] before any parser sees them.
//! * A hole is given up on, and reported as `Gap { len }` reaching to the next held byte, when
//!   the peer ACKs past the hole's start and held data follows it. A hole at the tail waits.
//! * One-sided sessions (`async_oneside`, the peer never seen) release contiguous data as it
//!   arrives; their holes are reported when the flow ends, or as soon as a limit refuses data
//!   (waiting would only lose more).
//! * Sessions picked up midstream whose peer is never seen, without `async_oneside`, release
//!   their data only when the flow ends (as Suricata, which logs them at flow timeout).
//! * A FIN ends its direction (`End`) once the peer ACKs it (or at once in a one-sided
//!   session); a valid RST ends both directions after releasing everything held.
//! * [`TcpSession::flush`] (flow timeout, eviction, end of capture) releases everything held,
//!   holes between held bytes as gaps, bytes cut by the depth as a final gap, then `End`.
//!
//! # Inline mode (`StreamConfig::inline`, Suricata's `stream.inline`)
//!
//! * In-order bytes are released as they arrive (a SYN's Fast Open payload on the SYN), so
//!   detection sees them on the packet that carried them. Holes are given up on as above, when
//!   the peer ACKs past them; `End` still waits for the FIN's ACK.
//! * The first copy of a byte wins every overlap, whatever the overlap policy: released bytes
//!   are final, and an inline sensor rewrites later copies on the wire to match the first.
//!
//! # Per-host policies
//!
//! [`StreamConfig::host_os_policy`] picks the overlap policy by the address of the host
//! receiving a direction's bytes, once the caller gave the session its addresses with
//! [`TcpSession::set_endpoints`].
//!
//! # Raw stream for detection
//!
//! The events pushed to the callback ARE the raw reassembled stream: detection can feed the
//! same events to a streaming matcher, or keep the last `max_pattern_len - 1` bytes of each
//! direction with [`RawStreamWindow`] so a pattern spanning segment (and event) boundaries
//! matches. A `Gap` breaks such a match, as Suricata's raw stream does.
//!
//! # Anomalies
//!
//! Suricata's stream event names, in [`SegmentOutcome::anomalies`]: `stream.3whs_*` and
//! `stream.4whs_*` (broken handshakes), `stream.est_*` (SYNs on a live session, packets out of
//! window), `stream.pkt_invalid_ack`, `stream.pkt_invalid_timestamp` (PAWS),
//! `stream.pkt_spurious_retransmission`, `stream.rst_but_no_session`,
//! `stream.fin_but_no_session`, `stream.rst_invalid_ack`, `stream.suspected_rst_inject`,
//! `stream.reassembly_overlap_different_data`, `stream.reassembly_seq_gap`,
//! `stream.reassembly_depth_reached`, `stream.reassembly_insert_memcap`,
//! `stream.reassembly_insert_limit`. Counters are in [`SessionStats`].
//!
//! # Memory
//!
//! Every held byte and every held segment's bookkeeping is charged to the session
//! ([`TcpSession::memory_used`]); per-session limits are in [`StreamConfig`]. The caller enforces
//! the global cap by summing sessions and flushing/evicting flows when it is exceeded.

mod assembler;
pub mod config;
pub mod hostpolicy;
pub mod policy;
mod raw;
mod session;

pub use assembler::BOOKKEEPING_BYTES;
pub use config::{ConfigError, StreamConfig};
pub use hostpolicy::{HostOsPolicy, HostPolicyError, IpNet};
pub use policy::OverlapPolicy;
pub use raw::RawStreamWindow;
pub use session::{
    tcp_flags, Anomalies, LimitsMet, SegmentOutcome, SessionStats, TcpEve, TcpSegment, TcpSession, TcpState,
    MAX_ANOMALIES_PER_SEGMENT,
};
