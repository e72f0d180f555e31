//! HTTP/1.x: transactions, bodies as files, URLs.
//!
//! [`HttpState`] is the per-flow state. It consumes each direction's reassembled stream
//! ([`StreamEvent`]) and pushes `http` and `fileinfo` EVE bodies, anomalies and artifacts into an
//! [`Emit`]; file bytes go to a [`FileSink`]. Where the standard and browsers differ the parser
//! follows browsers, since the goal is to see what the victim's client saw: bare LF line endings,
//! folded headers, leading empty lines, chunked bodies with extensions and a missing CRLF after a
//! chunk, `Content-Encoding` layers in any order, HTTP/0.9 responses.
//!
//! Every buffer an attacker can grow is bounded by a field of [`HttpConfig`] or a constant here.
//! Where Weir copies Suricata's observable behaviour (file sizes counting gaps, lines after a
//! body) see `NOTES.md` beside this file.
//!
//! A worker drives it like this, per flow, after [`probe`] said `Http` (`app_proto: "http"`):
//!
//! ```
//! use weir_core::{Direction, StreamEvent, Timestamp};
//! use weir_extract::{emit::Emit, files::NullSink, http::{HttpConfig, HttpState}};
//!
//! let mut http = HttpState::new(&HttpConfig::default());
//! let (mut files, mut out, ts) = (NullSink, Emit::default(), Timestamp::ZERO);
//! http.on_stream(Direction::ToServer, StreamEvent::Data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), ts, &mut files, &mut out);
//! http.on_stream(Direction::ToClient, StreamEvent::Data(b"HTTP/1.1 204 No Content\r\n\r\n"), ts, &mut files, &mut out);
//! assert_eq!(out.events[0].event_type, "http");
//! // Detection reads the finished transactions' buffers, then they are dropped.
//! assert_eq!(http.take_finished()[0].uri_raw, b"/");
//! ```

mod decode;
mod eve;
mod held;
mod multipart;
mod range;
mod tx;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::Map;
use weir_core::{Anomaly, Artifact, Direction, SeenIn, StreamEvent, Timestamp, UrlArtifact};

use crate::emit::{AnomalyCounter, AppEvent, Emit, ParserException};
use crate::files::{FileSink, OpenFile};
use crate::mime::HeldMessageBudget;
use decode::{parse_codings, ContentDecoder};
use held::{parse_header_lines, HeaderCharge};
use multipart::{form_data_boundary, Multipart, PartEvent};

pub use eve::http_object;
pub use held::DEFAULT_MAX_HELD_HEADER_BYTES;
pub use range::{
    RangeJoiner, RangeStats, SharedRangeJoiner, MAX_RANGE_BLOCKS_PER_FILE, MAX_RANGE_FILES, MAX_RANGE_HELD_BYTES,
    RANGE_TIMEOUT,
};
pub use tx::{normalize_uri, Header, HttpTx, TxFile, MAX_INSPECTED_FILES_PER_TX};

/// Each distinct anomaly is emitted at most this many times per flow; all are counted. A
/// million bad chunk lines must not become a million EVE records.
pub const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

/// Longest chunk-size line (size, extensions, whitespace). Browsers accept extensions, not
/// novels.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// Junk a response may carry before its status line and still be read as HTTP/1.x, as
/// Firefox does; beyond it the reply is taken as an HTTP/0.9 body.
pub const MAX_JUNK_BEFORE_STATUS_BYTES: usize = 4096;

/// Methods that let a stream be recognised (and resynchronised) as HTTP by content.
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH", b"PROPFIND",
    b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH", b"REPORT", b"SUBSCRIBE",
];

/// HTTP parser limits and logging options (`[app_layer.http]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Decoded request body bytes kept for inspection (`http.request_body`). Default 100 KiB.
    pub request_body_limit: usize,
    /// Decoded response body bytes kept for inspection (`http.response_body`, `file.data`).
    /// Default 100 KiB.
    pub response_body_limit: usize,
    /// Most bytes extracted into one file; beyond it the file ends TRUNCATED. Default 1 GiB.
    pub file_size_limit: u64,
    /// Most bytes one body may decompress to; beyond it the file ends TRUNCATED. Default 64 MiB.
    pub decompress_max_bytes: u64,
    /// Largest decompressed/compressed ratio allowed once output passes 1 MiB (a bomb guard).
    /// Default 2000, above what deflate (~1032:1) reaches on real content.
    pub decompress_max_ratio: u64,
    /// Most stacked Content-Encoding layers undone. Default 3.
    pub decompress_layer_limit: usize,
    /// Most bytes in one header block (start line plus headers). Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most headers kept per message; further ones are counted and dropped. Default 256.
    pub max_headers: usize,
    /// Most transactions waiting for their response (pipelining); the oldest is logged as it is
    /// when a new one would exceed it. Default 256.
    pub max_open_transactions: usize,
    /// Log `request_headers` and `response_headers` in EVE `http`. Default false.
    pub log_headers: bool,
    /// Header bytes held at once by every HTTP flow built from this config (clones share it:
    /// one budget per worker), unfinished header blocks and those of open transactions alike.
    /// A block that needs more is cut: its later lines are dropped and counted
    /// (`http.request_header_memcap` / `http.response_header_memcap`), and the message goes on
    /// with the headers that arrived. Default [`DEFAULT_MAX_HELD_HEADER_BYTES`].
    #[serde(skip)]
    pub held_header_budget: HeldMessageBudget,
    /// Joins 206 parts, from any flow, into whole files. Clones of a config share one joiner,
    /// so every worker given a copy of this config joins into the same files. Default: a new
    /// joiner that logs whole files without storing them; give it a filestore to store them.
    #[serde(skip)]
    pub range_joiner: SharedRangeJoiner,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            request_body_limit: 100 * 1024,
            response_body_limit: 100 * 1024,
            file_size_limit: 1 << 30,
            decompress_max_bytes: 64 << 20,
            decompress_max_ratio: 2000,
            decompress_layer_limit: 3,
            max_header_bytes: 64 * 1024,
            max_headers: 256,
            max_open_transactions: 256,
            log_headers: false,
            held_header_budget: HeldMessageBudget::new(DEFAULT_MAX_HELD_HEADER_BYTES),
            range_joiner: SharedRangeJoiner::default(),
        }
    }
}

/// The verdict of content-based protocol detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// The stream is HTTP (`app_proto: "http"`).
    Http,
    NotHttp,
    /// Too few bytes to tell.
    NeedMore,
}

/// Detects HTTP by content, on any port: a known method and a space from the client, `HTTP/`
/// from the server.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> ProbeResult {
    // Browsers and servers skip empty lines before a message.
    let start = first_bytes.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(first_bytes.len());
    let bytes = &first_bytes[start..];
    if bytes.is_empty() {
        return ProbeResult::NeedMore;
    }
    let prefix_match = |want: &[u8]| {
        let n = bytes.len().min(want.len());
        bytes[..n] == want[..n]
    };
    match dir {
        Direction::ToServer => {
            let mut could_be = false;
            for m in KNOWN_METHODS {
                let mut with_space = m.to_vec();
                with_space.push(b' ');
                if bytes.len() >= with_space.len() && bytes.starts_with(&with_space) {
                    return ProbeResult::Http;
                }
                could_be |= prefix_match(&with_space);
            }
            if could_be { ProbeResult::NeedMore } else { ProbeResult::NotHttp }
        }
        Direction::ToClient => {
            if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"HTTP/") {
                ProbeResult::Http
            } else if bytes.len() < 5 && bytes.eq_ignore_ascii_case(&b"HTTP/"[..bytes.len()]) {
                ProbeResult::NeedMore
            } else {
                ProbeResult::NotHttp
            }
        }
    }
}

/// Where a direction's parser is in its message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request or status line.
    #[default]
    Idle,
    Headers,
    /// Identity body with this many bytes left.
    Length(u64),
    /// Body until the connection closes (responses without length).
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    /// The line break after chunk data.
    ChunkEnd,
    Trailers,
    /// CONNECT or Upgrade: the rest is not HTTP.
    Tunnel,
    /// After a gap or garbage: skipping lines until one starts a message.
    Resync,
}

/// A line-splitting buffer that never holds more than its limit.
#[derive(Debug, Default)]
struct LineBuf {
    held: Vec<u8>,
    /// The capacity of `held` while it waits for the rest of a line, when a budget was given.
    charge: HeaderCharge,
    /// The current line passed the limit; discard until its end.
    overflow: bool,
}

enum Line {
    /// A complete line including its terminator.
    Complete(Vec<u8>),
    /// The line just passed the limit; the rest of it is skipped silently.
    TooLong,
    /// The shared budget could not hold more of the line; the rest of it is skipped silently.
    OverBudget,
    /// The end of an over-long line was skipped.
    Skipped,
    Partial,
}

impl LineBuf {
    /// Splits the next line off `data`. A partial line held for the next call is charged to
    /// `budget` when one is given.
    fn take(&mut self, data: &mut &[u8], limit: usize, budget: Option<&HeldMessageBudget>) -> Line {
        match data.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let (line_part, rest) = data.split_at(nl + 1);
                *data = rest;
                if self.overflow {
                    self.overflow = false;
                    return Line::Skipped;
                }
                if self.held.len() + line_part.len() > limit {
                    self.held.clear();
                    return Line::TooLong;
                }
                let mut line = std::mem::take(&mut self.held);
                // The held bytes leave with `line`: only the block they join holds them now.
                self.charge.release();
                line.extend_from_slice(line_part);
                Line::Complete(line)
            }
            None => {
                let whole = std::mem::take(data);
                if self.overflow {
                    return Line::Partial;
                }
                if self.held.len() + whole.len() <= limit {
                    if let Some(budget) = budget
                        && !self.charge.reserve(&mut self.held, whole.len(), limit, budget)
                    {
                        self.overflow = true;
                        self.held.clear();
                        return Line::OverBudget;
                    }
                    self.held.extend_from_slice(whole);
                    return Line::Partial;
                }
                self.overflow = true;
                self.held.clear();
                Line::TooLong
            }
        }
    }

    /// What is held of an unterminated line (at the end of the stream).
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        let held = std::mem::take(&mut self.held);
        self.charge.release();
        (!self.overflow && !held.is_empty()).then_some(held)
    }

    fn clear(&mut self) {
        self.held.clear();
        self.overflow = false;
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// A header block being read: its lines as they came, parsed into headers once it ends.
#[derive(Debug, Default)]
struct HeaderBlock {
    raw: Vec<u8>,
    /// The capacity of `raw`, charged to the shared header budget.
    charge: HeaderCharge,
    /// Headers counted so far (at most `max_headers`), for the too-many-headers event.
    kept: usize,
    bytes: usize,
    dropped: u32,
    /// The header budget ran out: later lines of this block are dropped.
    cut: bool,
}

/// What becomes of decoded body bytes.
enum Target {
    /// One file for the whole body, opened at its first byte; a 206 part also feeds the whole
    /// file being joined from ranges.
    File { name: Vec<u8>, file: Option<OpenFile>, join: Option<Box<JoinFeed>> },
    /// multipart/form-data: one file per part that has a filename. `inspected`: the current
    /// part's bytes also go to the last of the transaction's `request_files`.
    Multipart { splitter: Multipart, file: Option<OpenFile>, inspected: bool },
}

/// A 206 body feeding the [`RangeJoiner`]: its next byte is byte `offset` of the file at
/// `url`, `total` bytes long, and it carries at most up to `end` (exclusive).
struct JoinFeed {
    url: String,
    total: u64,
    name: Vec<u8>,
    offset: u64,
    end: u64,
    /// This part's bytes completed the file.
    completed: bool,
}

/// A body in progress.
struct Body {
    tx_id: u64,
    decoder: Option<ContentDecoder>,
    /// Decoding failed or hit a cap, or a gap broke the compressed stream: the rest is not
    /// decodable, so the file ends truncated.
    decode_broken: bool,
    target: Target,
    /// Bytes missed inside the body.
    gaps: bool,
    /// Decoded bytes delivered to files so far, against the file size limit.
    delivered: u64,
    file_limit_hit: bool,
    /// A valid chunk-size line was read (for chunked bodies).
    chunk_seen: bool,
    /// Delimited by Content-Length.
    by_length: bool,
}

#[derive(Default)]
struct Side {
    phase: Phase,
    line: LineBuf,
    block: HeaderBlock,
    /// The transaction the current message belongs to.
    tx_id: Option<u64>,
    body: Option<Body>,
    ended: bool,
    /// Lines before a status line, up to [`MAX_JUNK_BEFORE_STATUS_BYTES`].
    junk: Vec<u8>,
}


struct Slot {
    tx: HttpTx,
    /// The `http` record was emitted.
    logged: bool,
    /// The header bytes `tx` holds, charged until the slot is retired.
    header_charge: HeaderCharge,
}

/// Everything that outlives one call and that body handling needs besides the body itself.
struct Ctx<'a> {
    files: &'a mut dyn FileSink,
    out: &'a mut Emit,
    ts: Timestamp,
    next_file_id: &'a mut u64,
    log_headers: bool,
    inspect_limit: usize,
    file_size_limit: u64,
    joiner: &'a SharedRangeJoiner,
}

/// Per-flow HTTP/1.x state.
pub struct HttpState {
    cfg: HttpConfig,
    slots: VecDeque<Slot>,
    /// Recently finished transactions, kept for detection until taken with
    /// [`HttpState::take_finished`]; at most `max_open_transactions` (oldest dropped first).
    finished: VecDeque<HttpTx>,
    next_tx_id: u64,
    /// The oldest transaction still waiting for its response.
    next_response_tx: u64,
    next_file_id: u64,
    sides: [Side; 2],
    /// A response body that reached its Content-Length, kept open until the next status line
    /// or the end of the current data: lines before it still belong to the body, as libhtp
    /// (and so Suricata's file sizes) count them.
    lingering: Option<Body>,
    anomaly_counts: AnomalyCounter,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

impl HttpState {
    pub fn new(cfg: &HttpConfig) -> Self {
        HttpState {
            cfg: cfg.clone(),
            slots: VecDeque::new(),
            finished: VecDeque::new(),
            next_tx_id: 0,
            next_response_tx: 0,
            next_file_id: 1,
            sides: [Side::default(), Side::default()],
            lingering: None,
            anomaly_counts: AnomalyCounter::default(),
            error_raised: false,
        }
    }

    /// Recently finished transactions (not yet taken) and those in progress, oldest first.
    pub fn transactions(&self) -> impl Iterator<Item = &HttpTx> {
        self.finished.iter().chain(self.slots.iter().map(|s| &s.tx))
    }

    /// Hands over the finished transactions (for detection), oldest first.
    pub fn take_finished(&mut self) -> Vec<HttpTx> {
        self.finished.drain(..).collect()
    }

    fn push_finished(&mut self, tx: HttpTx) {
        if self.finished.len() >= self.cfg.max_open_transactions.max(1) {
            self.finished.pop_front();
        }
        self.finished.push_back(tx);
    }

    /// How often an anomaly (by its event name) was seen on this flow, records or not.
    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    /// Consumes one event of one direction's stream.
    pub fn on_stream(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let d = dir.index();
        if self.sides[d].ended {
            return;
        }
        match ev {
            StreamEvent::Data(data) => self.on_data(dir, data, ts, files, out),
            StreamEvent::Gap { len } => self.on_gap(dir, len, ts, files, out),
            StreamEvent::End => self.on_end(dir, ts, files, out),
        }
    }

    fn anomaly(&mut self, out: &mut Emit, ts: Timestamp, event: &'static str) {
        let count = self.anomaly_counts.raise(event);
        if count <= MAX_ANOMALY_RECORDS_PER_EVENT {
            out.anomaly(ts, Anomaly::app_layer(event));
        }
    }

    fn raise_error(&mut self, ts: Timestamp, out: &mut Emit) {
        if !std::mem::replace(&mut self.error_raised, true) {
            out.exception(ts, ParserException::Error);
        }
    }

    fn header_memcap(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        // Raised for every cut block, unlike the anomaly record, which is capped per flow.
        out.exception(ts, ParserException::HeaderMemcap);
        let event = match dir {
            Direction::ToServer => "http.request_header_memcap",
            Direction::ToClient => "http.response_header_memcap",
        };
        self.anomaly(out, ts, event);
    }

    fn slot_mut(&mut self, id: u64) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.tx.id == id)
    }

    fn on_data(&mut self, dir: Direction, mut data: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        while !data.is_empty() {
            match self.sides[d].phase {
                Phase::Idle | Phase::Headers | Phase::Trailers | Phase::Resync => {
                    let limit = self.cfg.max_header_bytes;
                    match self.sides[d].line.take(&mut data, limit, Some(&self.cfg.held_header_budget)) {
                        Line::Partial => break,
                        Line::OverBudget => self.on_line_over_budget(dir, ts, out),
                        Line::Skipped => {}
                        Line::Complete(line) => self.on_line(dir, &line, ts, files, out),
                        Line::TooLong => self.on_long_line(dir, ts, out),
                    }
                }
                Phase::ChunkSize | Phase::ChunkEnd => match self.sides[d].line.take(&mut data, MAX_CHUNK_LINE_BYTES, None) {
                    Line::Partial => break,
                    Line::OverBudget => {}
                    Line::Skipped => {}
                    Line::Complete(line) => self.on_chunk_line(dir, &line, ts, files, out),
                    Line::TooLong => {
                        self.anomaly(out, ts, chunk_len_event(dir));
                        // A chunk-size line past any sane length: the body cannot be framed.
                        self.raise_error(ts, out);
                        self.lose_sync(dir, ts, files, out);
                    }
                },
                Phase::Length(left) => {
                    let n = left.min(data.len() as u64) as usize;
                    self.body_bytes(dir, &data[..n], ts, files, out);
                    data = &data[n..];
                    let left = left - n as u64;
                    if left == 0 {
                        self.end_body(dir, true, ts, files, out);
                    } else {
                        self.sides[d].phase = Phase::Length(left);
                    }
                }
                Phase::ChunkData(left) => {
                    let n = left.min(data.len() as u64) as usize;
                    self.body_bytes(dir, &data[..n], ts, files, out);
                    data = &data[n..];
                    let left = left - n as u64;
                    self.sides[d].phase = if left == 0 { Phase::ChunkEnd } else { Phase::ChunkData(left) };
                }
                Phase::UntilClose => {
                    self.body_bytes(dir, data, ts, files, out);
                    data = &[];
                }
                Phase::Tunnel => data = &[],
            }
        }
        if dir == Direction::ToClient {
            // Lines after a body only join it when they came with it: a file must not wait for
            // the next response (or the end of an idle keep-alive connection) to be logged.
            self.close_lingering(ts, files, out);
        }
    }

    /// A partial line found the header budget spent: it is skipped as an over-long one is, and
    /// the header block is cut as when a whole line does not fit (see `header_line`).
    fn on_line_over_budget(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        let d = dir.index();
        if self.sides[d].phase == Phase::Headers {
            let block = &mut self.sides[d].block;
            block.dropped += 1;
            if block.cut {
                return;
            }
            block.cut = true;
        }
        self.header_memcap(dir, ts, out);
    }

    fn on_long_line(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        let event = match dir {
            Direction::ToServer => "http.request_field_too_long",
            Direction::ToClient => "http.response_field_too_long",
        };
        self.anomaly(out, ts, event);
        let d = dir.index();
        if self.sides[d].phase == Phase::Headers {
            self.sides[d].block.dropped += 1;
        }
    }

    fn on_line(&mut self, dir: Direction, line: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let content = strip_eol(line);
        if !content.windows(2).any(|w| w[0] == b'\r' && !w[1].is_ascii_whitespace()) {
            self.on_one_line(dir, line, ts, files, out);
            return;
        }
        let breaks: Vec<usize> = content
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == b'\r' && !w[1].is_ascii_whitespace())
            .map(|(i, _)| i)
            .collect();
        if breaks.is_empty() || !matches!(self.sides[dir.index()].phase, Phase::Idle | Phase::Headers | Phase::Trailers) {
            self.on_one_line(dir, line, ts, files, out);
            return;
        }
        // A lone CR followed by more text ends a line for browsers (old Mac line endings).
        self.anomaly(out, ts, "http.cr_only_line_ending");
        let mut start = 0;
        for end in breaks.into_iter().chain(std::iter::once(content.len())) {
            let piece = &content[start..end];
            start = end + 1;
            if piece.is_empty() {
                continue;
            }
            let mut owned = piece.to_vec();
            owned.extend_from_slice(b"\r\n");
            self.on_one_line(dir, &owned, ts, files, out);
        }
    }

    fn on_one_line(&mut self, dir: Direction, line: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        let content = strip_eol(line);
        match self.sides[d].phase {
            Phase::Idle | Phase::Resync => {
                if content.is_empty() {
                    if dir == Direction::ToClient && self.sides[d].phase == Phase::Idle {
                        self.extend_lingering(line, ts, files, out);
                    }
                    return;
                }
                let resync = self.sides[d].phase == Phase::Resync;
                match dir {
                    Direction::ToServer => self.on_request_line(content, resync, ts, out),
                    Direction::ToClient => self.on_status_line(line, content, resync, ts, files, out),
                }
            }
            Phase::Headers => {
                if content.is_empty() {
                    self.end_headers(dir, line, ts, files, out);
                } else {
                    self.header_line(dir, line, content, ts, out);
                }
            }
            Phase::Trailers => {
                if content.is_empty() {
                    if let Some(id) = self.sides[d].tx_id {
                        self.commit_headers(dir, id, line);
                    }
                    self.end_message(dir, true, ts, files, out);
                } else {
                    // Trailers join the message's headers, as Suricata logs them.
                    self.header_line(dir, line, content, ts, out);
                }
            }
            _ => {}
        }
    }

    fn on_request_line(&mut self, content: &[u8], resync: bool, ts: Timestamp, out: &mut Emit) {
        let Some(req) = parse_request_line(content) else {
            if !resync {
                self.anomaly(out, ts, "http.request_line_invalid");
                // Not a request line in a flow detected as HTTP: the request stream is given up
                // until a known method starts a line: the app-layer error (once per flow).
                self.raise_error(ts, out);
                self.sides[0].phase = Phase::Resync;
            }
            return;
        };
        if resync && !KNOWN_METHODS.contains(&req.method) {
            return;
        }
        if self.slots.len() >= self.cfg.max_open_transactions {
            self.anomaly(out, ts, "http.too_many_transactions");
            self.evict_oldest(ts, out);
        }
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        let tx = HttpTx {
            id,
            request_line: content.to_vec(),
            method: req.method.to_vec(),
            uri_raw: req.uri.to_vec(),
            uri_normalized: normalize_uri(req.uri),
            request_protocol: req.protocol.to_vec(),
            ..Default::default()
        };
        self.slots.push_back(Slot { tx, logged: false, header_charge: HeaderCharge::default() });
        let side = &mut self.sides[0];
        side.tx_id = Some(id);
        side.block = HeaderBlock { bytes: content.len(), ..Default::default() };
        if req.protocol.is_empty() {
            // HTTP/0.9: no headers, no body.
            if let Some(slot) = self.slot_mut(id) {
                slot.tx.request_complete = true;
            }
            self.sides[0].phase = Phase::Idle;
        } else {
            self.sides[0].phase = Phase::Headers;
        }
    }

    fn on_status_line(
        &mut self,
        line: &[u8],
        content: &[u8],
        resync: bool,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let is_status = content.len() >= 5 && content[..5].eq_ignore_ascii_case(b"HTTP/");
        if !is_status && !resync && self.extend_lingering(line, ts, files, out) {
            return;
        }
        self.close_lingering(ts, files, out);
        if resync && !is_status {
            return;
        }
        if !is_status && self.sides[1].junk.len() + line.len() <= MAX_JUNK_BEFORE_STATUS_BYTES {
            // Browsers skip a little junk before the status line; hold it in case the reply
            // turns out to be HTTP/0.9 after all.
            if self.sides[1].junk.is_empty() {
                self.anomaly(out, ts, "http.junk_before_status_line");
            }
            self.sides[1].junk.extend_from_slice(line);
            return;
        }
        if is_status {
            self.sides[1].junk.clear();
        }
        let id = match self.sides[1].tx_id {
            // An interim (1xx) response already bound this message to its transaction.
            Some(id) if self.slots.iter().any(|s| s.tx.id == id && !s.tx.response_complete) => id,
            _ => {
                if self.next_response_tx >= self.next_tx_id {
                    // A response before its request: keep it, in a transaction of its own.
                    self.anomaly(out, ts, "http.unable_to_match_response_to_request");
                    if self.slots.len() >= self.cfg.max_open_transactions {
                        self.evict_oldest(ts, out);
                    }
                    let id = self.next_tx_id;
                    self.next_tx_id += 1;
                    self.slots.push_back(Slot {
                        tx: HttpTx { id, ..Default::default() },
                        logged: false,
                        header_charge: HeaderCharge::default(),
                    });
                }
                let id = self.next_response_tx;
                self.next_response_tx += 1;
                id
            }
        };
        self.sides[1].tx_id = Some(id);
        if !is_status {
            // Not a status line: browsers show such a reply as an HTTP/0.9 body until close.
            self.anomaly(out, ts, "http.response_invalid_protocol");
            self.start_http09(id, line, ts, files, out);
            return;
        }
        let (protocol, code_raw, message) = split_status_line(content);
        let code = std::str::from_utf8(code_raw).ok().filter(|c| c.len() == 3).and_then(|c| c.parse::<u16>().ok());
        if code.is_none() {
            self.anomaly(out, ts, "http.response_invalid_status");
        }
        if let Some(slot) = self.slot_mut(id) {
            let tx = &mut slot.tx;
            tx.response_line = content.to_vec();
            tx.response_protocol = protocol.to_vec();
            tx.status_code_raw = code_raw.to_vec();
            tx.status_code = code;
            tx.status_message = message.to_vec();
            tx.response_headers.clear();
            tx.response_headers_raw.clear();
        }
        self.sides[1].block = HeaderBlock { bytes: content.len(), ..Default::default() };
        self.sides[1].phase = Phase::Headers;
    }

    /// Starts an HTTP/0.9 reply: everything (held junk, then `first`) is body until close.
    fn start_http09(&mut self, id: u64, first: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        self.sides[1].phase = Phase::UntilClose;
        self.start_body(Direction::ToClient, id, None);
        let junk = std::mem::take(&mut self.sides[1].junk);
        self.body_bytes(Direction::ToClient, &junk, ts, files, out);
        self.body_bytes(Direction::ToClient, first, ts, files, out);
    }

    fn header_line(&mut self, dir: Direction, line: &[u8], content: &[u8], ts: Timestamp, out: &mut Emit) {
        let max_bytes = self.cfg.max_header_bytes;
        let max_headers = self.cfg.max_headers;
        let d = dir.index();
        let block = &mut self.sides[d].block;
        block.bytes += line.len();
        if block.bytes > max_bytes {
            block.dropped += 1;
            let event = match dir {
                Direction::ToServer => "http.request_field_too_long",
                Direction::ToClient => "http.response_field_too_long",
            };
            self.anomaly(out, ts, event);
            return;
        }
        if block.cut {
            block.dropped += 1;
            return;
        }
        if !block.charge.reserve(&mut block.raw, line.len(), max_bytes, &self.cfg.held_header_budget) {
            // Every flow's held headers together reached the budget: this block ends here, and
            // the message goes on with the headers that came (Suricata cuts at its limits too).
            block.cut = true;
            block.dropped += 1;
            self.header_memcap(dir, ts, out);
            return;
        }
        block.raw.extend_from_slice(line);
        if content.contains(&0) {
            self.anomaly(out, ts, "http.header_nul_byte");
        }
        let block = &mut self.sides[d].block;
        // Headers are parsed from `raw` when the block ends (`parse_header_lines`); here they
        // are only counted, with the same rules.
        if matches!(content.first(), Some(b' ' | b'\t')) && block.kept > 0 {
            // Obsolete line folding: joins the previous header.
            return;
        }
        if !content.contains(&b':') {
            let event = match dir {
                Direction::ToServer => "http.request_field_missing_colon",
                Direction::ToClient => "http.response_field_missing_colon",
            };
            self.anomaly(out, ts, event);
            return;
        }
        if block.kept >= max_headers {
            block.dropped += 1;
            let event = match dir {
                Direction::ToServer => "http.request_too_many_headers",
                Direction::ToClient => "http.response_too_many_headers",
            };
            self.anomaly(out, ts, event);
            return;
        }
        block.kept += 1;
    }

    /// Moves the finished header block into the transaction.
    fn commit_headers(&mut self, dir: Direction, id: u64, terminator: &[u8]) {
        let d = dir.index();
        let max_headers = self.cfg.max_headers;
        let mut block = std::mem::take(&mut self.sides[d].block);
        let mut parsed = parse_header_lines(&block.raw, max_headers);
        let capacity = block.raw.capacity();
        block.raw.extend_from_slice(terminator);
        block.charge.charge_growth(block.raw.capacity() - capacity);
        if let Some(slot) = self.slot_mut(id) {
            let tx = &mut slot.tx;
            tx.dropped_headers += block.dropped;
            let (headers, raw) = match dir {
                Direction::ToServer => (&mut tx.request_headers, &mut tx.request_headers_raw),
                Direction::ToClient => (&mut tx.response_headers, &mut tx.response_headers_raw),
            };
            // Trailers join headers already kept: the cap is on the message's headers together.
            let room = max_headers.saturating_sub(headers.len());
            if parsed.len() > room {
                tx.dropped_headers = tx.dropped_headers.saturating_add(u32::try_from(parsed.len() - room).unwrap_or(u32::MAX));
                parsed.truncate(room);
            }
            headers.append(&mut parsed);
            if raw.is_empty() {
                // Moved, not copied: the charged allocation is the one the transaction keeps.
                *raw = std::mem::take(&mut block.raw);
            } else {
                raw.append(&mut block.raw);
            }
            slot.header_charge.absorb(block.charge);
        }
    }

    fn end_headers(&mut self, dir: Direction, terminator: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        let Some(id) = self.sides[d].tx_id else {
            self.sides[d].phase = Phase::Idle;
            return;
        };
        self.commit_headers(dir, id, terminator);
        let Some(slot) = self.slots.iter().find(|s| s.tx.id == id) else {
            self.sides[d].phase = Phase::Idle;
            return;
        };
        let tx = &slot.tx;
        let framing = framing(tx, dir);
        match dir {
            Direction::ToServer => {
                let url = request_url(tx);
                let missing_host = tx.host().is_none() && tx.request_protocol.eq_ignore_ascii_case(b"HTTP/1.1");
                if let Some(slot) = self.slot_mut(id) {
                    slot.tx.request_complete = true;
                }
                if let Some(url) = url {
                    out.artifact(ts, Some(id), Artifact::Url(UrlArtifact { url, seen_in: SeenIn::HttpUrl }));
                }
                if missing_host {
                    self.anomaly(out, ts, "http.missing_host_header");
                }
                self.begin_body(dir, id, framing, ts, files, out);
            }
            Direction::ToClient => {
                let code = tx.status_code.unwrap_or(0);
                let method = tx.method.clone();
                let upgrade = tx.header(Direction::ToServer, "upgrade").is_some();
                let redirect = (300..400).contains(&code).then(|| redirect_url(tx)).flatten();
                if let Some(url) = redirect {
                    out.artifact(ts, Some(id), Artifact::Url(UrlArtifact { url, seen_in: SeenIn::HttpRedirect }));
                }
                if (100..200).contains(&code) && code != 101 {
                    // Interim response (100 Continue): the real one follows for the same request.
                    self.sides[1].phase = Phase::Idle;
                    return;
                }
                let tunnel = (code == 101 && upgrade) || (method.eq_ignore_ascii_case(b"CONNECT") && (200..300).contains(&code));
                if tunnel {
                    self.end_message(dir, true, ts, files, out);
                    self.sides[0].phase = Phase::Tunnel;
                    self.sides[1].phase = Phase::Tunnel;
                    return;
                }
                let no_body = method.eq_ignore_ascii_case(b"HEAD") || code == 204 || code == 304 || code == 101;
                let framing = if no_body { Framing::None } else { framing };
                self.begin_body(dir, id, framing, ts, files, out);
            }
        }
    }

    fn begin_body(&mut self, dir: Direction, id: u64, framing: Framing, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        match framing {
            Framing::None | Framing::Length(0) => {
                self.end_message(dir, true, ts, files, out);
                return;
            }
            Framing::Length(n) => self.sides[d].phase = Phase::Length(n),
            Framing::Chunked => self.sides[d].phase = Phase::ChunkSize,
            Framing::UntilClose => self.sides[d].phase = Phase::UntilClose,
        }
        let conflict = self.slots.iter().find(|s| s.tx.id == id).is_some_and(|s| content_length_conflict(&s.tx, dir));
        if conflict {
            self.anomaly(out, ts, "http.duplicate_content_length_field");
        }
        let encoding = self.slots.iter().find(|s| s.tx.id == id).and_then(|s| {
            let values: Vec<&[u8]> = headers_of(&s.tx, dir)
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(b"content-encoding"))
                .map(|h| h.value.as_slice())
                .collect();
            (!values.is_empty()).then(|| values.join(&b","[..]))
        });
        self.start_body(dir, id, encoding.as_deref());
        if let (Framing::Length(_), Some(body)) = (framing, self.sides[d].body.as_mut()) {
            body.by_length = true;
        }
        if let Some(enc) = encoding {
            let (_, unknown, over) = parse_codings(&enc, self.cfg.decompress_layer_limit);
            if unknown {
                self.anomaly(out, ts, "http.abnormal_ce_header");
            }
            if over {
                self.anomaly(out, ts, "http.too_many_encoding_layers");
            }
        }
    }

    /// Sets up the body pipeline (decoders, multipart splitting, file naming) for `id`.
    fn start_body(&mut self, dir: Direction, id: u64, encoding: Option<&[u8]>) {
        let decoder = encoding.and_then(|enc| {
            let (codings, _, _) = parse_codings(enc, self.cfg.decompress_layer_limit);
            (!codings.is_empty())
                .then(|| ContentDecoder::new(&codings, self.cfg.decompress_max_bytes, self.cfg.decompress_max_ratio))
        });
        let tx = self.slots.iter().find(|s| s.tx.id == id).map(|s| &s.tx);
        let boundary = match (dir, tx) {
            (Direction::ToServer, Some(tx)) => tx.header(dir, "content-type").and_then(form_data_boundary),
            _ => None,
        };
        let join = match (dir, tx, &decoder) {
            (Direction::ToClient, Some(tx), None) if tx.status_code == Some(206) => {
                join_feed(tx, self.cfg.file_size_limit).map(Box::new)
            }
            _ => None,
        };
        if boundary.is_some()
            && let Some(slot) = self.slots.iter_mut().find(|s| s.tx.id == id)
        {
            slot.tx.request_multipart = true;
        }
        let tx = self.slots.iter().find(|s| s.tx.id == id).map(|s| &s.tx);
        let target = match boundary {
            Some(b) => Target::Multipart { splitter: Multipart::new(&b), file: None, inspected: false },
            None => Target::File { name: tx.map(|tx| file_name(tx, dir)).unwrap_or_default(), file: None, join },
        };
        self.sides[dir.index()].body = Some(Body {
            tx_id: id,
            decoder,
            decode_broken: false,
            target,
            gaps: false,
            delivered: 0,
            file_limit_hit: false,
            chunk_seen: false,
            by_length: false,
        });
    }

    fn ctx<'a>(&'a mut self, dir: Direction, files: &'a mut dyn FileSink, out: &'a mut Emit, ts: Timestamp) -> (Ctx<'a>, &'a mut VecDeque<Slot>, &'a mut Option<Body>) {
        let inspect_limit = match dir {
            Direction::ToServer => self.cfg.request_body_limit,
            Direction::ToClient => self.cfg.response_body_limit,
        };
        let ctx = Ctx {
            files,
            out,
            ts,
            next_file_id: &mut self.next_file_id,
            log_headers: self.cfg.log_headers,
            inspect_limit,
            file_size_limit: self.cfg.file_size_limit,
            joiner: &self.cfg.range_joiner,
        };
        (ctx, &mut self.slots, &mut self.sides[dir.index()].body)
    }

    /// Body bytes after transfer decoding.
    fn body_bytes(&mut self, dir: Direction, data: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        if data.is_empty() {
            return;
        }
        let mut stop = None;
        {
            let (mut ctx, slots, body) = self.ctx(dir, files, out, ts);
            let Some(body) = body.as_mut() else { return };
            let mut tx = slots.iter_mut().find(|s| s.tx.id == body.tx_id).map(|s| &mut s.tx);
            if dir == Direction::ToClient
                && let Some(tx) = tx.as_deref_mut()
            {
                tx.response_message_len += data.len() as u64;
            }
            let Body { decoder, decode_broken, target, delivered, file_limit_hit, .. } = body;
            if *decode_broken {
                return;
            }
            match decoder {
                Some(dec) => {
                    stop = dec.feed(data, &mut |plain| {
                        deliver(target, plain, tx.as_deref_mut(), dir, delivered, file_limit_hit, &mut ctx)
                    });
                    if stop.is_some() {
                        *decode_broken = true;
                    }
                }
                None => deliver(target, data, tx, dir, delivered, file_limit_hit, &mut ctx),
            }
        }
        if let Some(why) = stop {
            self.anomaly(out, ts, decode_stop_event(why));
        }
    }

    /// The body (or the message, when it has none) is over.
    fn end_body(&mut self, dir: Direction, complete: bool, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let mut stop = None;
        let mut linger = None;
        {
            let (mut ctx, slots, body_slot) = self.ctx(dir, files, out, ts);
            if let Some(mut body) = body_slot.take() {
                let mut tx = slots.iter_mut().find(|s| s.tx.id == body.tx_id).map(|s| &mut s.tx);
                let may_linger = body.by_length && body.decoder.is_none();
                let Body { decoder, decode_broken, target, delivered, file_limit_hit, gaps, .. } = &mut body;
                if let Some(dec) = decoder
                    && !*decode_broken
                {
                    stop = dec.finish(&mut |plain| {
                        deliver(target, plain, tx.as_deref_mut(), dir, delivered, file_limit_hit, &mut ctx)
                    });
                    if stop.is_some() || dec.stopped().is_some() {
                        *decode_broken = true;
                    }
                }
                let whole = complete && !*decode_broken && !*gaps && !*file_limit_hit;
                // A part's bytes are in the joiner already; lines after it are not the file's.
                let joined = matches!(target, Target::File { join: Some(_), .. });
                let Body { target, .. } = &mut body;
                if dir == Direction::ToClient && whole && may_linger && !joined {
                    linger = Some(body);
                } else {
                    close_target(target, whole, tx.as_deref(), dir, &mut ctx);
                }
            }
        }
        if let Some(body) = linger {
            self.close_lingering(ts, files, out);
            self.lingering = Some(body);
        }
        if let Some(why) = stop {
            self.anomaly(out, ts, decode_stop_event(why));
        }
        self.end_message(dir, complete, ts, files, out);
    }

    fn close_lingering(&mut self, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let Some(mut body) = self.lingering.take() else { return };
        let tx = self.slots.iter().map(|s| &s.tx).chain(self.finished.iter()).find(|t| t.id == body.tx_id);
        let mut ctx = Ctx {
            files,
            out,
            ts,
            next_file_id: &mut self.next_file_id,
            log_headers: self.cfg.log_headers,
            inspect_limit: self.cfg.response_body_limit,
            file_size_limit: self.cfg.file_size_limit,
            joiner: &self.cfg.range_joiner,
        };
        let whole = !body.file_limit_hit;
        close_target(&mut body.target, whole, tx, Direction::ToClient, &mut ctx);
    }

    /// Appends a non-status line to the lingering body; false when there is none.
    fn extend_lingering(&mut self, line: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) -> bool {
        let Some(body) = self.lingering.as_mut() else { return false };
        let mut ctx = Ctx {
            files,
            out,
            ts,
            next_file_id: &mut self.next_file_id,
            log_headers: self.cfg.log_headers,
            inspect_limit: self.cfg.response_body_limit,
            file_size_limit: self.cfg.file_size_limit,
            joiner: &self.cfg.range_joiner,
        };
        deliver(&mut body.target, line, None, Direction::ToClient, &mut body.delivered, &mut body.file_limit_hit, &mut ctx);
        true
    }

    /// The message in `dir` is over: the request side waits for the next request; the
    /// response side completes the transaction.
    fn end_message(&mut self, dir: Direction, complete: bool, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        if self.sides[d].body.is_some() {
            // A message ending with its body open (no length): close the body first.
            self.end_body(dir, complete, ts, files, out);
            return;
        }
        self.sides[d].phase = Phase::Idle;
        self.sides[d].line.clear();
        let Some(id) = self.sides[d].tx_id.take() else { return };
        if dir == Direction::ToClient {
            if let Some(slot) = self.slot_mut(id) {
                slot.tx.response_complete = true;
            }
            self.log_tx(id, ts, out);
        }
        self.retire_done();
    }

    /// Emits the `http` record of a transaction once.
    fn log_tx(&mut self, id: u64, ts: Timestamp, out: &mut Emit) {
        let log_headers = self.cfg.log_headers;
        let Some(slot) = self.slot_mut(id) else { return };
        if slot.logged {
            return;
        }
        slot.logged = true;
        let mut fields = Map::new();
        fields.insert("tx_id".into(), id.into());
        fields.insert("http".into(), http_object(&slot.tx, log_headers));
        out.event(AppEvent { ts, event_type: "http", tx_id: Some(id), direction: Direction::ToClient, fields });
    }

    /// Moves logged transactions no side is still working on to `finished`.
    fn retire_done(&mut self) {
        let busy = [self.sides[0].tx_id, self.sides[1].tx_id];
        while let Some(front) = self.slots.front() {
            if front.logged && !busy.contains(&Some(front.tx.id)) {
                if let Some(slot) = self.slots.pop_front() {
                    self.push_finished(slot.tx);
                }
            } else {
                break;
            }
        }
    }

    fn evict_oldest(&mut self, ts: Timestamp, out: &mut Emit) {
        let Some(id) = self.slots.front().map(|s| s.tx.id) else { return };
        self.log_tx(id, ts, out);
        if let Some(slot) = self.slots.pop_front() {
            self.push_finished(slot.tx);
        }
        if self.next_response_tx <= id {
            self.next_response_tx = id + 1;
        }
    }

    fn on_chunk_line(&mut self, dir: Direction, line: &[u8], ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        let content = strip_eol(line);
        if self.sides[d].phase == Phase::ChunkEnd {
            if content.is_empty() {
                self.sides[d].phase = Phase::ChunkSize;
                return;
            }
            // Data ran past the chunk's line break; browsers read the line as the next size.
            self.anomaly(out, ts, "http.chunk_data_without_crlf");
        }
        match parse_chunk_size(content) {
            Some(0) => self.sides[d].phase = Phase::Trailers,
            Some(n) => self.sides[d].phase = Phase::ChunkData(n),
            None if content.trim_ascii().is_empty() => {} // stray empty line before a size
            None => {
                self.anomaly(out, ts, chunk_len_event(dir));
                let first_chunk = self.sides[d].body.as_ref().is_some_and(|b| !b.chunk_seen);
                if dir == Direction::ToClient && first_chunk {
                    // Not chunked after all (a mangled Transfer-Encoding): like libhtp and
                    // browsers, read the body as it is until the connection closes.
                    self.sides[d].phase = Phase::UntilClose;
                    self.body_bytes(dir, line, ts, files, out);
                } else {
                    // A chunk size that does not parse mid-body (or in a request, which has no
                    // until-close reading): the message cannot be framed, the app-layer error.
                    self.raise_error(ts, out);
                    self.lose_sync(dir, ts, files, out);
                }
            }
        }
        if let Some(body) = self.sides[d].body.as_mut() {
            body.chunk_seen = true;
        }
    }

    /// The framing can no longer be followed: finish the message truncated and look for the
    /// next one.
    fn lose_sync(&mut self, dir: Direction, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        if let Some(body) = self.sides[d].body.as_mut() {
            body.gaps = true;
        }
        if self.sides[d].tx_id.is_some() {
            self.end_message(dir, false, ts, files, out);
        }
        self.sides[d].phase = Phase::Resync;
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        if dir == Direction::ToClient {
            self.close_lingering(ts, files, out);
        }
        self.anomaly(out, ts, "http.stream_gap");
        let within = |left: u64| len <= left;
        match self.sides[d].phase {
            Phase::Length(left) if !within(left) => {
                // The gap covers the rest of the body and runs into what follows.
                self.body_gap(dir, left, files);
                self.end_body(dir, false, ts, files, out);
                self.sides[d].line.clear();
                self.sides[d].phase = Phase::Resync;
            }
            Phase::Length(left) => {
                self.body_gap(dir, len, files);
                let left = left - len;
                if left == 0 {
                    self.end_body(dir, false, ts, files, out);
                } else {
                    self.sides[d].phase = Phase::Length(left);
                }
            }
            Phase::ChunkData(left) if within(left) => {
                self.body_gap(dir, len, files);
                let left = left - len;
                self.sides[d].phase = if left == 0 { Phase::ChunkEnd } else { Phase::ChunkData(left) };
            }
            Phase::UntilClose => self.body_gap(dir, len, files),
            Phase::Tunnel => {}
            Phase::Idle | Phase::Resync => {
                self.sides[d].line.clear();
                self.sides[d].phase = Phase::Resync;
            }
            _ => {
                self.body_gap(dir, len, files);
                if self.sides[d].phase == Phase::Headers && dir == Direction::ToClient {
                    // The status line was seen; the rest of this response is lost.
                    if let Some(id) = self.sides[d].tx_id {
                        self.commit_headers(dir, id, b"");
                    }
                }
                self.sides[d].line.clear();
                self.lose_sync(dir, ts, files, out);
            }
        }
    }

    fn body_gap(&mut self, dir: Direction, len: u64, files: &mut dyn FileSink) {
        let d = dir.index();
        let next_file_id = &mut self.next_file_id;
        let Some(body) = self.sides[d].body.as_mut() else { return };
        body.gaps = true;
        if body.decoder.is_some() {
            // Compressed bytes are missing: nothing after this point can be decoded.
            body.decode_broken = true;
        }
        if let Target::File { name, file, join } = &mut body.target {
            // Where the bytes after a gap belong in the file is not known for every framing:
            // the part stops feeding the joiner (what it gave stays there).
            *join = None;
            let f = file.get_or_insert_with(|| {
                *next_file_id += 1;
                OpenFile::open(files, name, Some(body.tx_id), *next_file_id - 1)
            });
            f.gap(files, len);
        } else if let Target::Multipart { file: Some(f), .. } = &mut body.target {
            f.gap(files, len);
        }
    }

    fn on_end(&mut self, dir: Direction, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        let d = dir.index();
        match self.sides[d].phase {
            Phase::Idle | Phase::Headers | Phase::Trailers => {
                if let Some(last) = self.sides[d].line.take_partial() {
                    // The stream ended mid-line: what came is still a line.
                    self.on_line(dir, &last, ts, files, out);
                }
            }
            Phase::ChunkSize => {
                if let Some(last) = self.sides[d].line.take_partial() {
                    self.on_chunk_line(dir, &last, ts, files, out);
                }
            }
            _ => {}
        }
        if dir == Direction::ToClient {
            self.close_lingering(ts, files, out);
        }
        match self.sides[d].phase {
            Phase::UntilClose => self.end_body(dir, true, ts, files, out),
            Phase::Length(_) | Phase::ChunkData(_) | Phase::ChunkSize | Phase::ChunkEnd | Phase::Trailers => {
                self.end_body(dir, false, ts, files, out);
            }
            Phase::Headers => {
                let event = match dir {
                    Direction::ToServer => "http.request_headers_unterminated",
                    Direction::ToClient => "http.response_headers_unterminated",
                };
                self.anomaly(out, ts, event);
                if let Some(id) = self.sides[d].tx_id {
                    self.commit_headers(dir, id, b"");
                }
                self.end_message(dir, false, ts, files, out);
            }
            Phase::Idle
                if dir == Direction::ToClient
                    && !self.sides[1].junk.is_empty()
                    && self.next_response_tx < self.next_tx_id =>
            {
                // Only junk and no status line: an HTTP/0.9 reply to the waiting request.
                let id = self.next_response_tx;
                self.next_response_tx += 1;
                self.sides[1].tx_id = Some(id);
                self.start_http09(id, b"", ts, files, out);
                self.end_body(dir, true, ts, files, out);
            }
            _ => {}
        }
        self.sides[d].ended = true;
        self.sides[d].phase = Phase::Tunnel;
        if self.sides[0].ended && self.sides[1].ended {
            // The flow is over: log what never got a complete response.
            let ids: Vec<u64> = self.slots.iter().map(|s| s.tx.id).collect();
            for id in ids {
                self.log_tx(id, ts, out);
            }
            self.sides[0].tx_id = None;
            self.sides[1].tx_id = None;
            self.retire_done();
        }
    }
}

/// Hands decoded body bytes to the inspection buffer and the file(s).
fn deliver(
    target: &mut Target,
    data: &[u8],
    tx: Option<&mut HttpTx>,
    dir: Direction,
    delivered: &mut u64,
    file_limit_hit: &mut bool,
    ctx: &mut Ctx<'_>,
) {
    if data.is_empty() {
        return;
    }
    let mut tx = tx;
    let tx_id = tx.as_ref().map(|t| t.id);
    if let Some(tx) = tx.as_deref_mut() {
        let (kept, len) = match dir {
            Direction::ToServer => (&mut tx.request_body, &mut tx.request_body_len),
            Direction::ToClient => (&mut tx.response_body, &mut tx.response_body_len),
        };
        *len += data.len() as u64;
        let room = ctx.inspect_limit.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..room.min(data.len())]);
    }
    let room = ctx.file_size_limit.saturating_sub(*delivered);
    let take = (data.len() as u64).min(room) as usize;
    if take < data.len() {
        *file_limit_hit = true;
    }
    let data = &data[..take];
    *delivered += take as u64;
    if data.is_empty() {
        return;
    }
    match target {
        Target::File { name, file, join } => {
            let f = file.get_or_insert_with(|| {
                *ctx.next_file_id += 1;
                OpenFile::open(ctx.files, name, tx_id, *ctx.next_file_id - 1)
            });
            f.write(ctx.files, data);
            if let Some(feed) = join
                && !feed.completed
            {
                // A server sending more than its Content-Range is not trusted beyond it.
                let len = (data.len() as u64).min(feed.end.saturating_sub(feed.offset)) as usize;
                let whole = ctx.joiner.lock().write(&feed.url, feed.total, &feed.name, feed.offset, &data[..len], ctx.ts);
                feed.offset += len as u64;
                if let Some(mut whole) = whole {
                    // The rest of this part would only start the file over in the joiner.
                    feed.completed = true;
                    *ctx.next_file_id += 1;
                    whole.tx_id = tx_id;
                    whole.file_id = *ctx.next_file_id - 1;
                    // Logged with the transaction of the part that completed it, as Suricata does.
                    emit_file(whole, tx.as_deref(), dir, ctx, FileKind::Joined);
                }
            }
        }
        Target::Multipart { splitter, file, inspected } => {
            let mut closed = Vec::new();
            let inspect_limit = ctx.inspect_limit;
            splitter.feed(data, &mut |ev| match ev {
                PartEvent::Start { filename: Some(name) } => {
                    *ctx.next_file_id += 1;
                    *file = Some(OpenFile::open(ctx.files, &name, tx_id, *ctx.next_file_id - 1));
                    *inspected = false;
                    if let Some(tx) = tx.as_deref_mut()
                        && tx.request_files.len() < MAX_INSPECTED_FILES_PER_TX
                    {
                        let name = name[..name.len().min(crate::files::MAX_FILE_NAME_BYTES)].to_vec();
                        tx.request_files.push(TxFile { name, data: Vec::new() });
                        *inspected = true;
                    }
                }
                PartEvent::Start { filename: None } => {
                    *file = None;
                    *inspected = false;
                }
                PartEvent::Data(d) => {
                    if let Some(f) = file.as_mut() {
                        f.write(ctx.files, d);
                        if *inspected
                            && let Some(tx) = tx.as_deref_mut()
                        {
                            keep_file_bytes(&mut tx.request_files, d, inspect_limit);
                        }
                    }
                }
                PartEvent::End { complete } => {
                    if let Some(f) = file.take() {
                        closed.push(f.close(ctx.files, complete));
                    }
                }
            });
            // Part files are logged with the request as it stands (no response yet).
            for c in closed {
                emit_file(c, tx.as_deref(), dir, ctx, FileKind::Body);
            }
        }
    }
}

/// Appends a multipart file's bytes to the last inspected file, within `limit` bytes over all
/// of the request's files.
fn keep_file_bytes(files: &mut [TxFile], data: &[u8], limit: usize) {
    let held: usize = files.iter().map(|f| f.data.len()).sum();
    let take = limit.saturating_sub(held).min(data.len());
    if let Some(last) = files.last_mut() {
        last.data.extend_from_slice(&data[..take]);
    }
}

/// Closes the body's file(s); `whole` says whether every byte was seen and decoded.
fn close_target(target: &mut Target, whole: bool, tx: Option<&HttpTx>, dir: Direction, ctx: &mut Ctx<'_>) {
    match target {
        Target::File { file, .. } => {
            if let Some(f) = file.take() {
                let closed = f.close(ctx.files, whole);
                emit_file(closed, tx, dir, ctx, FileKind::Body);
            }
        }
        Target::Multipart { splitter, file, .. } => {
            let mut closed = Vec::new();
            splitter.finish(&mut |ev| match ev {
                PartEvent::Data(d) => {
                    if let Some(f) = file.as_mut() {
                        f.write(ctx.files, d);
                    }
                }
                PartEvent::End { complete } => {
                    if let Some(f) = file.take() {
                        closed.push(f.close(ctx.files, complete && whole));
                    }
                }
                PartEvent::Start { .. } => {}
            });
            for c in closed {
                emit_file(c, tx, dir, ctx, FileKind::Body);
            }
        }
    }
}

/// Whether a logged file is a message's body (or part) or a file joined from 206 parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Body,
    Joined,
}

fn emit_file(mut closed: crate::files::ClosedFile, tx: Option<&HttpTx>, dir: Direction, ctx: &mut Ctx<'_>, kind: FileKind) {
    if dir == Direction::ToClient
        && kind == FileKind::Body
        && let Some(tx) = tx
        && tx.status_code == Some(206)
    {
        closed.range = tx
            .header(Direction::ToClient, "content-range")
            .and_then(parse_content_range)
            .map(|(first, last, _)| (first, last));
    }
    let mut fields = Map::new();
    if let Some(id) = closed.tx_id {
        fields.insert("tx_id".into(), id.into());
    }
    if let Some(tx) = tx {
        fields.insert("http".into(), http_object(tx, ctx.log_headers));
    }
    fields.insert("fileinfo".into(), closed.fileinfo());
    ctx.out.event(AppEvent {
        ts: ctx.ts,
        event_type: "fileinfo",
        tx_id: closed.tx_id,
        direction: dir,
        fields,
    });
    ctx.out.artifact(ctx.ts, closed.tx_id, Artifact::File(closed.artifact));
}

/// The joiner feed of a 206 response: a part of a known total length, not the whole file, within
/// the file size limit, of a resource with a URL.
fn join_feed(tx: &HttpTx, file_size_limit: u64) -> Option<JoinFeed> {
    let (first, last, total) = tx.header(Direction::ToClient, "content-range").and_then(parse_content_range)?;
    let total = total?;
    if (first == 0 && last + 1 >= total) || total > file_size_limit {
        return None;
    }
    Some(JoinFeed { url: request_url(tx)?, total, name: file_name(tx, Direction::ToClient), offset: first, end: last + 1, completed: false })
}

/// `bytes first-last/total` (RFC 9110 section 14.4): the first and last offsets, and the
/// total when known (not `*`).
fn parse_content_range(v: &[u8]) -> Option<(u64, u64, Option<u64>)> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let rest = v.strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = total.trim().parse().ok();
    (first <= last && total.is_none_or(|t| last < t)).then_some((first, last, total))
}

fn decode_stop_event(why: decode::DecodeStop) -> &'static str {
    match why {
        decode::DecodeStop::Corrupt => "http.gzip_decompression_failed",
        decode::DecodeStop::SizeLimit => "http.decompression_size_limit",
        decode::DecodeStop::RatioLimit => "http.compression_bomb",
    }
}

fn chunk_len_event(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "http.invalid_request_chunk_len",
        Direction::ToClient => "http.invalid_response_chunk_len",
    }
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn headers_of(tx: &HttpTx, dir: Direction) -> &[Header] {
    match dir {
        Direction::ToServer => &tx.request_headers,
        Direction::ToClient => &tx.response_headers,
    }
}

/// RFC 9112 section 6.3, as browsers apply it: any `chunked` coding wins over Content-Length;
/// then the first valid Content-Length; else requests have no body and responses run to close.
fn framing(tx: &HttpTx, dir: Direction) -> Framing {
    let headers = headers_of(tx, dir);
    let chunked = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(b"transfer-encoding")).any(|h| {
        h.value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        return Framing::Chunked;
    }
    let length = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(b"content-length"))
        .find_map(|h| parse_content_length(&h.value));
    match (length, dir) {
        (Some(n), _) => Framing::Length(n),
        (None, Direction::ToServer) => Framing::None,
        (None, Direction::ToClient) => Framing::UntilClose,
    }
}

/// Content-Length, allowing the `n, n` repetition some proxies produce.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    let mut value = None;
    for part in v.split(|&b| b == b',') {
        let s = std::str::from_utf8(part.trim_ascii()).ok()?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = s.parse().ok()?;
        if value.is_some_and(|v| v != n) {
            return None;
        }
        value = Some(n);
    }
    value
}

fn content_length_conflict(tx: &HttpTx, dir: Direction) -> bool {
    let mut values = headers_of(tx, dir)
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(b"content-length"))
        .map(|h| parse_content_length(&h.value));
    let Some(first) = values.next() else { return false };
    values.any(|v| v != first)
}

/// A chunk-size line: hex digits, then optional whitespace and `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.trim_ascii_start();
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return None;
    }
    let s = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(s, 16).ok()
}

struct RequestLine<'a> {
    method: &'a [u8],
    uri: &'a [u8],
    /// Empty for HTTP/0.9.
    protocol: &'a [u8],
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `METHOD SP target SP HTTP/x.y`, tolerating runs of whitespace and spaces inside the target
/// (the protocol is the last word when it starts with `HTTP/`).
fn parse_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let line = line.trim_ascii();
    let method_end = line.iter().position(|b| b.is_ascii_whitespace())?;
    let method = &line[..method_end];
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let rest = line[method_end..].trim_ascii_start();
    if rest.is_empty() {
        return None;
    }
    let (uri, protocol) = match rest.iter().rposition(|b| b.is_ascii_whitespace()) {
        Some(sp) if rest[sp + 1..].len() >= 5 && rest[sp + 1..sp + 6].eq_ignore_ascii_case(b"HTTP/") => {
            (rest[..sp].trim_ascii_end(), &rest[sp + 1..])
        }
        _ => (rest, &b""[..]),
    };
    if uri.is_empty() || uri.iter().any(|&b| b < 0x20 && b != b'\t') {
        return None;
    }
    Some(RequestLine { method, uri, protocol })
}

/// `HTTP/x.y SP code SP reason`.
fn split_status_line(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let proto_end = line.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(line.len());
    let rest = line[proto_end..].trim_ascii_start();
    let code_end = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len());
    (&line[..proto_end], &rest[..code_end], rest[code_end..].trim_ascii())
}

/// The file name Suricata gives a body: Content-Disposition's filename, else the URI path.
fn file_name(tx: &HttpTx, dir: Direction) -> Vec<u8> {
    tx.file_name(dir)
}

/// The request's URL in absolute form, `http://host[:port]/path?query`.
fn request_url(tx: &HttpTx) -> Option<String> {
    let uri = String::from_utf8_lossy(&tx.uri_raw);
    if tx::absolute_authority(&tx.uri_raw).is_some() {
        return Some(uri.into_owned());
    }
    if !uri.starts_with('/') {
        return None; // `*` or authority-form (CONNECT): not a resource URL
    }
    let host = String::from_utf8_lossy(tx.host()?).to_ascii_lowercase();
    Some(format!("http://{host}{uri}"))
}

/// A redirect's Location resolved against the request URL.
fn redirect_url(tx: &HttpTx) -> Option<String> {
    let location = String::from_utf8_lossy(tx.header(Direction::ToClient, "location")?).trim().to_owned();
    if location.is_empty() {
        return None;
    }
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location);
    }
    let base = request_url(tx)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("http://{rest}"));
    }
    let origin_end = base.find("://").map(|p| p + 3).and_then(|s| base[s..].find('/').map(|p| p + s)).unwrap_or(base.len());
    if location.starts_with('/') {
        return Some(format!("{}{location}", &base[..origin_end]));
    }
    let path = &base[origin_end..];
    let path = &path[..path.find('?').unwrap_or(path.len())];
    let dir = &path[..path.rfind('/').map_or(0, |p| p + 1)];
    Some(format!("{}{dir}{location}", &base[..origin_end]))
}
