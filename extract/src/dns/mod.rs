//! DNS over UDP and TCP.
//!
//! [`DnsState`] is the per-flow parser: [`DnsState::on_datagram`] takes one UDP payload (one
//! message), [`DnsState::on_stream`] takes one direction's reassembled TCP stream, where each
//! message carries a 2-byte length prefix (RFC 1035 4.2.2), several may share a segment and one
//! may span several. Every message is its own transaction, as in Suricata 8, and yields one EVE
//! `dns` record (version 3 layout). Query names are emitted as artifacts
//! ([`weir_core::SeenIn::DnsQuery`]); the last transactions stay readable for detection
//! (`dns.query`, `dns.answer.name`) through [`DnsState::transactions`].

mod eve;
pub mod wire;

#[cfg(test)]
pub(crate) mod test_pcap;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde_json::{Map, Value};
use weir_core::{Anomaly, Artifact, Direction, SeenIn, StreamEvent, Timestamp, UrlArtifact};

use crate::emit::{AppEvent, Emit, ParserException};
pub use eve::{dns_object, escape_bytes, name_text};
pub use wire::{Message, Name, RData, Record, RrType, WireError};
use wire::Header;

/// Requests whose response has not been seen yet, remembered per flow. A client sending more
/// than this without answers is flooding (Suricata's `dns.flooded`, whose default is 500); the
/// oldest are forgotten.
pub const MAX_OUTSTANDING_QUERIES: usize = 512;

/// Parsed transactions kept per flow for detection to inspect. The owner inspects after each
/// call, so this only needs to cover the messages of one segment in the common case; older
/// transactions are dropped first.
pub const MAX_RETAINED_TRANSACTIONS: usize = 64;

/// The largest TCP message plus its prefix: the prefix is 16 bits, so the per-direction buffer
/// can never hold more than this.
pub const MAX_TCP_FRAME_LEN: usize = 2 + u16::MAX as usize;

/// One DNS message, which Suricata 8 and Weir treat as one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsTransaction {
    /// Per-flow transaction number, from 0, shared by both directions.
    pub tx_id: u64,
    pub ts: Timestamp,
    pub direction: Direction,
    pub message: Message,
}

impl DnsTransaction {
    /// The `dns.query` buffers: each question's name, as on the wire.
    pub fn query_names(&self) -> impl Iterator<Item = &[u8]> {
        self.message.questions.iter().map(|q| q.name.bytes.as_slice())
    }

    /// The `dns.answer.name` buffers: each answer record's owner name.
    pub fn answer_names(&self) -> impl Iterator<Item = &[u8]> {
        self.message.answers.iter().map(|r| r.name.bytes.as_slice())
    }

    pub fn is_response(&self) -> bool {
        self.message.header.is_response()
    }
}

/// What the first bytes of a flow say about DNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A DNS query: the sender is the client.
    Request,
    /// A DNS response: the sender is the server.
    Response,
    NoMatch,
    /// Not enough bytes to tell yet.
    NeedMore,
}

/// Whether a UDP payload is a DNS message.
pub fn probe_udp(payload: &[u8]) -> Probe {
    match Header::parse(payload) {
        Some(h) if plausible_header(&h) => {}
        Some(_) => return Probe::NoMatch,
        None => return Probe::NoMatch,
    }
    match wire::parse_message(payload) {
        Ok(m) if m.header.is_response() => Probe::Response,
        Ok(_) => Probe::Request,
        Err(_) => Probe::NoMatch,
    }
}

/// Whether the start of a TCP stream is DNS (length-prefixed messages).
pub fn probe_tcp(stream: &[u8]) -> Probe {
    let Some(prefix) = stream.get(..2) else { return Probe::NeedMore };
    let msg_len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    if msg_len < wire::HEADER_LEN {
        return Probe::NoMatch;
    }
    let body = &stream[2..];
    let Some(header) = Header::parse(body) else { return Probe::NeedMore };
    if !plausible_header(&header) {
        return Probe::NoMatch;
    }
    let verdict = if header.is_response() { Probe::Response } else { Probe::Request };
    if let Some(whole) = body.get(..msg_len) {
        return match wire::parse_message(whole) {
            Ok(_) => verdict,
            Err(_) => Probe::NoMatch,
        };
    }
    // Only part of the message is here: the first question must at least start well.
    match wire::read_name(body, wire::HEADER_LEN) {
        Ok(_) => verdict,
        Err(WireError::Truncated(_)) | Err(WireError::PointerOutOfRange(_)) => Probe::NeedMore,
        Err(_) => Probe::NoMatch,
    }
}

fn plausible_header(h: &Header) -> bool {
    // Opcodes 0-2 and 4-6 are assigned (QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO).
    let opcode_known = matches!(h.opcode(), 0 | 1 | 2 | 4 | 5 | 6);
    // Real queries ask one question (a few resolvers more); zero or hundreds is not DNS.
    let questions_plausible = (1..=16).contains(&h.qdcount);
    // A query carries no answers, and at most an OPT and a TSIG/SIG(0) record besides; UPDATE
    // (opcode 5) reuses the sections for prerequisites and updates.
    let request_plausible =
        h.is_response() || h.opcode() == 5 || (h.ancount == 0 && h.nscount == 0 && h.arcount <= 4);
    opcode_known && questions_plausible && request_plausible
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Framing {
    /// At a known message boundary (or inside a message whose prefix was read).
    #[default]
    InSync,
    /// Bytes were lost: the next whole frame must look like DNS or the direction is given up.
    AfterGap,
    /// Framing is lost for good in this direction.
    GaveUp,
}

#[derive(Debug, Default)]
struct TcpDirection {
    /// The incomplete frame, prefix included; never longer than [`MAX_TCP_FRAME_LEN`].
    frame: Vec<u8>,
    framing: Framing,
}

/// Per-flow DNS state.
#[derive(Debug, Default)]
pub struct DnsState {
    next_tx_id: u64,
    /// (wire id, tx_id) of requests not yet answered, oldest first.
    outstanding: VecDeque<(u16, u64)>,
    flood_reported: bool,
    transactions: VecDeque<DnsTransaction>,
    tcp: [TcpDirection; 2],
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

impl DnsState {
    pub fn new() -> DnsState {
        DnsState::default()
    }

    /// One UDP payload: exactly one DNS message.
    pub fn on_datagram(&mut self, dir: Direction, payload: &[u8], ts: Timestamp, out: &mut Emit) {
        if !self.on_message(dir, payload, ts, out) {
            // A datagram of a DNS flow that is not a DNS message: the app-layer error (once per
            // flow; later datagrams are still parsed, as each stands alone).
            self.raise_error(ts, out);
        }
    }

    /// One step of one direction of a TCP flow.
    pub fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, ts: Timestamp, out: &mut Emit) {
        match event {
            StreamEvent::Data(data) => self.on_tcp_data(dir, data, ts, out),
            StreamEvent::Gap { .. } => {
                let side = &mut self.tcp[dir.index()];
                if side.framing != Framing::GaveUp {
                    side.frame.clear();
                    side.framing = Framing::AfterGap;
                }
            }
            StreamEvent::End => {
                let side = &mut self.tcp[dir.index()];
                if !side.frame.is_empty() {
                    side.frame.clear();
                    out.anomaly(ts, Anomaly::app_layer("dns.malformed_data"));
                }
            }
        }
    }

    /// The transactions kept for detection, oldest first (at most
    /// [`MAX_RETAINED_TRANSACTIONS`]).
    pub fn transactions(&self) -> impl Iterator<Item = &DnsTransaction> {
        self.transactions.iter()
    }

    pub fn transaction(&self, tx_id: u64) -> Option<&DnsTransaction> {
        self.transactions.iter().find(|t| t.tx_id == tx_id)
    }

    /// Requests not yet answered.
    pub fn outstanding_queries(&self) -> usize {
        self.outstanding.len()
    }

    #[cfg(test)]
    pub(crate) fn buffered(&self, dir: Direction) -> usize {
        self.tcp[dir.index()].frame.len()
    }

    fn on_tcp_data(&mut self, dir: Direction, mut input: &[u8], ts: Timestamp, out: &mut Emit) {
        while !input.is_empty() {
            let side = &mut self.tcp[dir.index()];
            if side.framing == Framing::GaveUp {
                return;
            }
            let want = if side.frame.len() < 2 {
                2 - side.frame.len()
            } else {
                let msg_len = usize::from(u16::from_be_bytes([side.frame[0], side.frame[1]]));
                2 + msg_len - side.frame.len()
            };
            let take = want.min(input.len());
            side.frame.extend_from_slice(&input[..take]);
            input = &input[take..];
            if side.frame.len() < 2 {
                continue;
            }
            let msg_len = usize::from(u16::from_be_bytes([side.frame[0], side.frame[1]]));
            if side.frame.len() < 2 + msg_len {
                // After a gap, give up as soon as the header shows this is not a message start,
                // rather than buffering up to 64 KiB of whatever the length prefix claimed.
                if side.framing == Framing::AfterGap && probe_tcp(&side.frame) == Probe::NoMatch {
                    side.framing = Framing::GaveUp;
                    side.frame.clear();
                    out.anomaly(ts, Anomaly::app_layer("dns.resync_failed"));
                    // Length framing lost for good in this direction: the app-layer error.
                    self.raise_error(ts, out);
                    return;
                }
                continue;
            }
            let frame = std::mem::take(&mut side.frame);
            if side.framing == Framing::AfterGap {
                if matches!(probe_tcp(&frame), Probe::Request | Probe::Response) {
                    side.framing = Framing::InSync;
                } else {
                    side.framing = Framing::GaveUp;
                    out.anomaly(ts, Anomaly::app_layer("dns.resync_failed"));
                    // Length framing lost for good in this direction: the app-layer error.
                    self.raise_error(ts, out);
                    return;
                }
            }
            self.on_message(dir, &frame[2..], ts, out);
            // Reuse the allocation for the next frame.
            let side = &mut self.tcp[dir.index()];
            if side.frame.is_empty() {
                side.frame = frame;
                side.frame.clear();
            }
        }
    }

    fn raise_error(&mut self, ts: Timestamp, out: &mut Emit) {
        if !std::mem::replace(&mut self.error_raised, true) {
            out.exception(ts, ParserException::Error);
        }
    }

    /// Parses and logs one message; false when it does not parse (an anomaly was counted).
    fn on_message(&mut self, dir: Direction, bytes: &[u8], ts: Timestamp, out: &mut Emit) -> bool {
        let message = match wire::parse_message(bytes) {
            Ok(m) => m,
            Err(e) => {
                out.anomaly(ts, Anomaly::app_layer(e.anomaly_event()));
                return false;
            }
        };
        for issue in &message.issues {
            let event = match issue {
                wire::Issue::NameTooLong => "dns.name_too_long",
                wire::Issue::BadRdata => "dns.malformed_data",
                wire::Issue::TooManyRecords => "dns.too_many_records",
            };
            out.anomaly(ts, Anomaly::app_layer(event));
        }
        let is_response = message.header.is_response();
        match (dir, is_response) {
            (Direction::ToServer, true) => out.anomaly(ts, Anomaly::app_layer("dns.not_a_request")),
            (Direction::ToClient, false) => out.anomaly(ts, Anomaly::app_layer("dns.not_a_response")),
            _ => {}
        }

        let tx_id = self.next_tx_id;
        self.next_tx_id += 1;
        if is_response {
            if let Some(i) = self.outstanding.iter().position(|&(id, _)| id == message.header.id) {
                self.outstanding.remove(i);
            }
        } else {
            self.outstanding.push_back((message.header.id, tx_id));
            if self.outstanding.len() > MAX_OUTSTANDING_QUERIES {
                self.outstanding.pop_front();
                if !self.flood_reported {
                    self.flood_reported = true;
                    out.anomaly(ts, Anomaly::app_layer("dns.flooded"));
                }
            }
            let mut seen: Vec<&[u8]> = Vec::new();
            for q in &message.questions {
                let name = q.name.bytes.as_slice();
                if name.is_empty() || seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                let url = escape_bytes(name).to_ascii_lowercase();
                out.artifact(ts, Some(tx_id), Artifact::Url(UrlArtifact { url, seen_in: SeenIn::DnsQuery }));
            }
        }

        let mut fields = Map::new();
        fields.insert("dns".into(), Value::Object(dns_object(&message, tx_id)));
        out.event(AppEvent { ts, event_type: "dns", tx_id: Some(tx_id), direction: dir, fields });

        self.transactions.push_back(DnsTransaction { tx_id, ts, direction: dir, message });
        if self.transactions.len() > MAX_RETAINED_TRANSACTIONS {
            self.transactions.pop_front();
        }
        true
    }
}
