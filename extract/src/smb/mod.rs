//! SMB2/3 over TCP (port 445, NetBIOS session service framing, RFC 1002 4.3.1), sans-IO.
//!
//! [`SmbState`] frames NBSS records, walks compound chains (NextCommand) and pairs requests with
//! responses by MessageId (multi-credit reads are one request and one response). It follows
//! NEGOTIATE (dialect), SESSION_SETUP, TREE_CONNECT (share names), CREATE (file names and
//! FileIds), READ and WRITE (file data at offsets) and CLOSE, and writes one EVE `smb` record per
//! request/response pair in Suricata's layout, plus a `fileinfo` (with the `smb` object) for each
//! file read or written. SMB1 is recognised (its NEGOTIATE is logged with the offered dialects);
//! an SMB3 transform header (encrypted, `0xFD 'SMB'`) or compression header is counted
//! (`smb.encrypted`) and its record skipped whole, so the framing stays in step.
//!
//! Files are rebuilt from the offsets of READ responses (offset from the matching request) and
//! WRITE requests; chunks may come out of order or overlap (see `assembly.rs`). A file that
//! misses bytes ends TRUNCATED with `gaps`, never padded. Records up to
//! [`MAX_BUFFERED_RECORD_BYTES`] are buffered whole; larger ones (an 8 MiB READ response) are
//! streamed: only their first [`STREAM_HEAD_BYTES`] are buffered and the data passes straight
//! through to the file, so memory per flow stays bounded whatever the lengths claim.

mod assembly;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use weir_core::{Anomaly, Artifact, Direction, StreamEvent, Timestamp};

use crate::emit::{AnomalyCounter, AppEvent, Emit, ParserException};
use crate::files::{FileSink, OpenFile};
use assembly::{Added, Assembly};
pub use assembly::{MAX_OFFSET_JUMP, MAX_OUT_OF_ORDER_BYTES, MAX_OUT_OF_ORDER_BYTES_PER_FLOW};
pub use wire::Command;
use wire::{u16_at, u32_at, u64_at};

/// NBSS records up to this size are buffered whole (every compound part parsed). Larger records
/// are streamed (READ/WRITE data) or skipped.
pub const MAX_BUFFERED_RECORD_BYTES: usize = 128 * 1024;

/// How much of a streamed record is buffered to read its SMB2 header and READ/WRITE fields;
/// data must start within it (clients and servers put it at offset 0x50 or 0x70).
pub const STREAM_HEAD_BYTES: usize = 1024;

/// Requests waiting for their response, per flow. Beyond it the oldest is logged without a
/// response and forgotten.
pub const MAX_PENDING_REQUESTS: usize = 512;

/// Open handles (CREATE responses not yet CLOSEd) remembered per flow. Beyond it the oldest is
/// dropped, its files closed as truncated.
pub const MAX_OPEN_HANDLES: usize = 256;

/// Trees (shares) remembered per flow.
pub const MAX_TREES: usize = 256;

/// Longest name (share or file, UTF-16 bytes on the wire) decoded.
pub const MAX_NAME_BYTES: usize = 2048;

/// Anomaly records written per event name and flow; later ones are only counted.
const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

/// SMB parser settings, as Suricata's `app-layer.protocols.smb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmbConfig {
    /// READ responses longer than this are not extracted (`0`: no limit).
    pub max_read_size: u32,
    /// WRITE requests longer than this are not extracted (`0`: no limit).
    pub max_write_size: u32,
}

impl Default for SmbConfig {
    fn default() -> Self {
        SmbConfig {
            max_read_size: 16 << 20,
            max_write_size: 16 << 20,
        }
    }
}

/// What the first bytes of a TCP stream say about SMB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Smb,
    NoMatch,
    NeedMore,
}

/// Detects SMB by content: an NBSS session message (type 0) holding an SMB1, SMB2 or SMB3
/// transform header.
pub fn probe(first_bytes: &[u8]) -> Probe {
    match first_bytes.first() {
        None => return Probe::NeedMore,
        Some(0) => {}
        Some(_) => return Probe::NoMatch,
    }
    let Some(magic) = first_bytes.get(4..8) else {
        let have = &first_bytes[first_bytes.len().min(4)..];
        let could = [wire::SMB2_MAGIC, wire::SMB1_MAGIC, wire::TRANSFORM_MAGIC]
            .iter()
            .any(|m| m.starts_with(have));
        return if could {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    if [
        wire::SMB2_MAGIC,
        wire::SMB1_MAGIC,
        wire::TRANSFORM_MAGIC,
        wire::COMPRESSION_MAGIC,
    ]
    .iter()
    .any(|m| m.as_slice() == magic)
    {
        Probe::Smb
    } else {
        Probe::NoMatch
    }
}

/// Where streamed data goes.
#[derive(Clone, Copy, Debug)]
struct Target {
    file_id: [u8; 16],
    offset: u64,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Header,
    Record {
        len: usize,
        buf: Vec<u8>,
    },
    StreamHead {
        len: u64,
        buf: Vec<u8>,
    },
    StreamData {
        left_in_record: u64,
        data_left: u64,
        target: Option<Target>,
    },
    Skip {
        left: u64,
    },
    /// Record boundaries were lost (a gap across a record end, or garbage): look for the next
    /// record start.
    Lost,
}

#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    header: [u8; 4],
    have: usize,
    ended: bool,
}

#[derive(Debug)]
struct Pending {
    tx_id: u64,
    command: Command,
    session_id: u64,
    tree_id: Option<u32>,
    /// Request fields for the record (`filename`, `share`, `client_dialects`, ...).
    fields: Map<String, Value>,
    share: Option<String>,
    name: Option<String>,
    read: Option<Target>,
    read_len: u32,
    /// A CLOSE of "the previous file" in a compound: done when its response names the file.
    close_related: bool,
}

#[derive(Debug)]
struct Handle {
    name: String,
    share: Option<String>,
    end_of_file: Option<u64>,
    tree_id: Option<u32>,
    session_id: u64,
    /// Per direction: WRITE data (to server), READ data (to client).
    files: [Option<Assembly>; 2],
    /// Order of creation, to drop the oldest handle first.
    seq: u64,
}

/// Per-flow SMB state.
#[derive(Debug)]
pub struct SmbState {
    cfg: SmbConfig,
    sides: [Side; 2],
    dialect: Option<u16>,
    smb1_dialects: Vec<String>,
    pending: BTreeMap<u64, Pending>,
    trees: HashMap<u32, (String, u8)>,
    handles: HashMap<[u8; 16], Handle>,
    next_handle_seq: u64,
    next_tx_id: u64,
    next_file_id: u64,
    /// The FileId of the last CREATE response in the current compound, for related operations.
    last_file_id: Option<[u8; 16]>,
    anomaly_counts: AnomalyCounter,
    /// Out-of-order file bytes held by all files of the flow.
    held_out_of_order: usize,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

/// The FileId that, in a related compound operation, means "the file of the previous one".
const RELATED_FILE_ID: [u8; 16] = [0xff; 16];

impl SmbState {
    pub fn new(cfg: &SmbConfig) -> SmbState {
        SmbState {
            cfg: cfg.clone(),
            sides: Default::default(),
            dialect: None,
            smb1_dialects: Vec::new(),
            pending: BTreeMap::new(),
            trees: HashMap::new(),
            handles: HashMap::new(),
            next_handle_seq: 0,
            next_tx_id: 0,
            next_file_id: 1,
            last_file_id: None,
            anomaly_counts: AnomalyCounter::default(),
            held_out_of_order: 0,
            error_raised: false,
        }
    }

    /// The negotiated dialect (`0x0311` for SMB 3.1.1).
    pub fn dialect(&self) -> Option<u16> {
        self.dialect
    }

    /// How often an anomaly (by event name) was seen on this flow.
    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    /// Bytes buffered for framing (record buffers), for tests of the bounds. Out-of-order file
    /// chunks are bounded apart, by [`MAX_OUT_OF_ORDER_BYTES_PER_FLOW`].
    pub fn buffered(&self) -> usize {
        self.sides
            .iter()
            .map(|s| match &s.phase {
                Phase::Record { buf, .. } | Phase::StreamHead { buf, .. } => buf.capacity(),
                _ => 0,
            })
            .sum()
    }

    fn anomaly(&mut self, out: &mut Emit, ts: Timestamp, event: &'static str) {
        let n = self.anomaly_counts.raise(event);
        // An encrypted session is one fact, however many records it has.
        let cap = if event == "smb.encrypted" {
            1
        } else {
            MAX_ANOMALY_RECORDS_PER_EVENT
        };
        if n <= cap {
            out.anomaly(ts, Anomaly::app_layer(event));
        }
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
        if self.sides[dir.index()].ended {
            return;
        }
        match ev {
            StreamEvent::Data(data) => self.on_data(dir, data, ts, files, out),
            StreamEvent::Gap { len } => self.on_gap(dir, len, ts, files, out),
            StreamEvent::End => {
                self.sides[dir.index()].ended = true;
                self.sides[dir.index()].phase = Phase::Lost;
                if self.sides.iter().all(|s| s.ended) {
                    self.flush(ts, files, out);
                }
            }
        }
    }

    /// The flow is going away: requests without a response are logged, files still open end
    /// truncated.
    pub fn flush(&mut self, ts: Timestamp, files: &mut dyn FileSink, out: &mut Emit) {
        while let Some((_, p)) = self.pending.pop_first() {
            self.log_tx(p, None, Map::new(), ts, out);
        }
        let mut handles: Vec<([u8; 16], Handle)> = self.handles.drain().collect();
        handles.sort_by_key(|(_, h)| h.seq);
        for (id, h) in handles {
            self.close_handle(id, h, false, ts, files, out);
        }
    }

    fn on_gap(
        &mut self,
        dir: Direction,
        len: u64,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let phase = std::mem::take(&mut self.sides[dir.index()].phase);
        let next = match phase {
            Phase::Record { len: rlen, buf } if ((rlen - buf.len()) as u64) > len => {
                // The record is damaged but its end is still known: skip the rest of it.
                Phase::Skip {
                    left: (rlen - buf.len()) as u64 - len,
                }
            }
            Phase::StreamHead { len: rlen, buf } if rlen - buf.len() as u64 > len => Phase::Skip {
                left: rlen - buf.len() as u64 - len,
            },
            Phase::StreamData {
                left_in_record,
                data_left,
                target,
            } if left_in_record > len => {
                let in_data = data_left.min(len);
                if let Some(t) = target
                    && in_data > 0
                {
                    self.file_gap(t.file_id, dir, t.offset, in_data, files);
                }
                let target = target.map(|t| Target {
                    offset: t.offset.saturating_add(len),
                    ..t
                });
                Phase::StreamData {
                    left_in_record: left_in_record - len,
                    data_left: data_left - in_data,
                    target,
                }
            }
            Phase::Skip { left } if left > len => Phase::Skip { left: left - len },
            _ => Phase::Lost,
        };
        self.sides[dir.index()].phase = next;
        if matches!(self.sides[dir.index()].phase, Phase::Lost) {
            self.sides[dir.index()].have = 0;
        }
        self.anomaly(out, ts, "smb.gap");
    }

    fn on_data(
        &mut self,
        dir: Direction,
        mut data: &[u8],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let d = dir.index();
        while !data.is_empty() {
            let phase = std::mem::take(&mut self.sides[d].phase);
            self.sides[d].phase = match phase {
                Phase::Header => {
                    let side = &mut self.sides[d];
                    let take = (4 - side.have).min(data.len());
                    side.header[side.have..side.have + take].copy_from_slice(&data[..take]);
                    side.have += take;
                    data = &data[take..];
                    if side.have < 4 {
                        Phase::Header
                    } else {
                        side.have = 0;
                        let h = side.header;
                        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]);
                        match h[0] {
                            0x00 if len == 0 => Phase::Header,
                            0x00 if (len as usize) <= MAX_BUFFERED_RECORD_BYTES => Phase::Record {
                                len: len as usize,
                                buf: Vec::with_capacity(len as usize),
                            },
                            0x00 => Phase::StreamHead {
                                len: u64::from(len),
                                buf: Vec::with_capacity(STREAM_HEAD_BYTES),
                            },
                            // Session request/response, keep-alive (port 139 framing): skip.
                            0x81..=0x85 => Phase::Skip {
                                left: u64::from(len & 0x1_ffff),
                            },
                            _ => {
                                self.anomaly(out, ts, "smb.invalid_nbss_record");
                                // NetBIOS framing it cannot follow (not a gap): the app-layer
                                // error, once per flow; the parser still looks for a record start.
                                if !std::mem::replace(&mut self.error_raised, true) {
                                    out.exception(ts, ParserException::Error);
                                }
                                Phase::Lost
                            }
                        }
                    }
                }
                Phase::Record { len, mut buf } => {
                    let take = (len - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < len {
                        Phase::Record { len, buf }
                    } else {
                        self.on_record(dir, &buf, ts, files, out);
                        Phase::Header
                    }
                }
                Phase::StreamHead { len, mut buf } => {
                    let want = (STREAM_HEAD_BYTES as u64).min(len) as usize;
                    let take = (want - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < want {
                        Phase::StreamHead { len, buf }
                    } else {
                        self.on_stream_head(dir, len, &buf, ts, files, out)
                    }
                }
                Phase::StreamData {
                    left_in_record,
                    data_left,
                    target,
                } => {
                    let take = (left_in_record.min(data.len() as u64)) as usize;
                    let file_part = (data_left.min(take as u64)) as usize;
                    if let Some(t) = target
                        && file_part > 0
                    {
                        self.file_data(
                            t.file_id,
                            dir,
                            t.offset,
                            &data[..file_part],
                            ts,
                            files,
                            out,
                        );
                    }
                    data = &data[take..];
                    let left_in_record = left_in_record - take as u64;
                    if left_in_record == 0 {
                        Phase::Header
                    } else {
                        let target = target.map(|t| Target {
                            offset: t.offset.saturating_add(file_part as u64),
                            ..t
                        });
                        Phase::StreamData {
                            left_in_record,
                            data_left: data_left - file_part as u64,
                            target,
                        }
                    }
                }
                Phase::Skip { left } => {
                    let take = left.min(data.len() as u64);
                    data = &data[take as usize..];
                    if take == left {
                        Phase::Header
                    } else {
                        Phase::Skip { left: left - take }
                    }
                }
                Phase::Lost => match resync_point(data) {
                    Some(i) => {
                        data = &data[i..];
                        Phase::Header
                    }
                    None => {
                        data = &[];
                        Phase::Lost
                    }
                },
            };
        }
    }

    /// A record too large to buffer: read its head, stream READ/WRITE data, skip the rest.
    fn on_stream_head(
        &mut self,
        dir: Direction,
        len: u64,
        head: &[u8],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) -> Phase {
        let rest = len - head.len() as u64;
        let Some(hdr) = wire::parse_header(head) else {
            if head.starts_with(wire::TRANSFORM_MAGIC) || head.starts_with(wire::COMPRESSION_MAGIC)
            {
                self.anomaly(out, ts, "smb.encrypted");
            } else {
                self.anomaly(out, ts, "smb.record_too_large");
            }
            return Phase::Skip { left: rest };
        };
        let body = &head[wire::HEADER_LEN..];
        // (data offset from the header, data length, target)
        let stream = match (hdr.command, hdr.is_response()) {
            (Command::WRITE, false) => {
                let fid = u16_at(body, 2)
                    .zip(u32_at(body, 4))
                    .zip(u64_at(body, 8))
                    .zip(wire::file_id_at(body, 16));
                fid.and_then(|(((data_off, data_len), offset), file_id)| {
                    if self.cfg.max_write_size != 0 && data_len > self.cfg.max_write_size {
                        return None;
                    }
                    let file_id = self.resolve(file_id, &hdr);
                    Some((
                        usize::from(data_off),
                        u64::from(data_len),
                        Target { file_id, offset },
                    ))
                })
            }
            (Command::READ, true)
                if hdr.status == wire::STATUS_SUCCESS
                    || hdr.status == wire::STATUS_BUFFER_OVERFLOW =>
            {
                let pending = self.pending.remove(&hdr.message_id);
                let data_off = body.get(2).copied().map(usize::from);
                let data_len = u32_at(body, 4);
                let target = pending.as_ref().and_then(|p| p.read);
                let asked = pending.as_ref().map_or(0, |p| p.read_len);
                let data_len = data_len.map(|l| l.min(asked));
                if let Some(p) = pending {
                    self.log_tx(p, Some(&hdr), Map::new(), ts, out);
                }
                match (data_off, data_len, target) {
                    (Some(o), Some(l), Some(t))
                        if self.cfg.max_read_size == 0 || l <= self.cfg.max_read_size =>
                    {
                        Some((o, u64::from(l), t))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((data_off, data_len, target)) = stream else {
            if !matches!(hdr.command, Command::READ | Command::WRITE) {
                self.anomaly(out, ts, "smb.record_too_large");
            } else {
                self.anomaly(out, ts, "smb.read_write_not_extracted");
            }
            return Phase::Skip { left: rest };
        };
        if data_off < wire::HEADER_LEN || data_off > head.len() {
            self.anomaly(out, ts, "smb.invalid_data_offset");
            return Phase::Skip { left: rest };
        }
        let in_head = ((head.len() - data_off) as u64).min(data_len) as usize;
        self.file_data(
            target.file_id,
            dir,
            target.offset,
            &head[data_off..data_off + in_head],
            ts,
            files,
            out,
        );
        if rest == 0 {
            return Phase::Header;
        }
        Phase::StreamData {
            left_in_record: rest,
            data_left: data_len - in_head as u64,
            target: Some(Target {
                offset: target.offset.saturating_add(in_head as u64),
                ..target
            }),
        }
    }

    fn on_record(
        &mut self,
        dir: Direction,
        rec: &[u8],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        if rec.starts_with(wire::TRANSFORM_MAGIC) || rec.starts_with(wire::COMPRESSION_MAGIC) {
            self.anomaly(out, ts, "smb.encrypted");
            return;
        }
        if rec.starts_with(wire::SMB1_MAGIC) {
            self.on_smb1(rec, ts, out);
            return;
        }
        self.last_file_id = None;
        let mut at = 0usize;
        loop {
            let msg = &rec[at..];
            let Some(hdr) = wire::parse_header(msg) else {
                self.anomaly(out, ts, "smb.invalid_header");
                return;
            };
            let next = hdr.next_command as usize;
            let end = if next == 0 { msg.len() } else { next };
            if end < wire::HEADER_LEN || end > msg.len() {
                self.anomaly(out, ts, "smb.invalid_next_command");
                return;
            }
            self.on_smb2(dir, &hdr, &msg[..end], ts, files, out);
            if next == 0 {
                return;
            }
            at += next;
        }
    }

    fn resolve(&self, file_id: [u8; 16], hdr: &wire::Header) -> [u8; 16] {
        if file_id == RELATED_FILE_ID && hdr.flags & wire::FLAG_RELATED != 0 {
            self.last_file_id.unwrap_or(file_id)
        } else {
            file_id
        }
    }

    fn begin_tx(
        &mut self,
        hdr: &wire::Header,
        fields: Map<String, Value>,
        out: &mut Emit,
        ts: Timestamp,
    ) -> u64 {
        self.begin_tx_with(hdr, fields, None, None, None, 0, out, ts)
    }

    #[allow(clippy::too_many_arguments)]
    fn begin_tx_with(
        &mut self,
        hdr: &wire::Header,
        fields: Map<String, Value>,
        share: Option<String>,
        name: Option<String>,
        read: Option<Target>,
        read_len: u32,
        out: &mut Emit,
        ts: Timestamp,
    ) -> u64 {
        // READs are not logged on their own (their file is): they take no transaction number.
        let tx_id = self.next_tx_id;
        if hdr.command != Command::READ {
            self.next_tx_id += 1;
        }
        let p = Pending {
            tx_id,
            command: hdr.command,
            session_id: hdr.session_id,
            tree_id: hdr.tree_id,
            fields,
            share,
            name,
            read,
            read_len,
            close_related: false,
        };
        if let Some(old) = self.pending.insert(hdr.message_id, p) {
            self.anomaly(out, ts, "smb.duplicate_message_id");
            self.log_tx(old, None, Map::new(), ts, out);
        }
        if self.pending.len() > MAX_PENDING_REQUESTS
            && let Some((_, oldest)) = self.pending.pop_first()
        {
            self.anomaly(out, ts, "smb.too_many_pending_requests");
            self.log_tx(oldest, None, Map::new(), ts, out);
        }
        tx_id
    }

    fn on_smb2(
        &mut self,
        dir: Direction,
        hdr: &wire::Header,
        msg: &[u8],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        let body = msg.get(wire::HEADER_LEN..).unwrap_or_default();
        if hdr.is_response() {
            if hdr.status == wire::STATUS_PENDING && hdr.flags & wire::FLAG_ASYNC != 0 {
                // An interim response: the real one follows with the same MessageId.
                return;
            }
            let pending = self.pending.remove(&hdr.message_id);
            let mut fields = Map::new();
            let ok = hdr.status == wire::STATUS_SUCCESS;
            match hdr.command {
                Command::NEGOTIATE if ok => {
                    if let Some(d) = u16_at(body, 4) {
                        self.dialect = Some(d);
                    }
                    if let Some(guid) = wire::file_id_at(body, 8) {
                        fields.insert("server_guid".into(), wire::fuid(&guid).into());
                    }
                }
                Command::TREE_CONNECT if ok => {
                    let share_type = body.get(2).copied().unwrap_or(0);
                    fields.insert("share_type".into(), share_type_eve(share_type).into());
                    if let (Some(tree), Some(share)) =
                        (hdr.tree_id, pending.as_ref().and_then(|p| p.share.clone()))
                    {
                        if self.trees.len() >= MAX_TREES && !self.trees.contains_key(&tree) {
                            self.trees.clear();
                        }
                        self.trees.insert(tree, (share, share_type));
                    }
                }
                Command::CREATE if ok => {
                    let eof = u64_at(body, 48);
                    if let Some(size) = eof {
                        fields.insert("size".into(), size.into());
                    }
                    if let Some(file_id) = wire::file_id_at(body, 64) {
                        fields.insert("fuid".into(), wire::fuid(&file_id).into());
                        self.last_file_id = Some(file_id);
                        let (name, share, tree_id, session_id) = match &pending {
                            Some(p) => (
                                p.name.clone().unwrap_or_default(),
                                p.share.clone(),
                                p.tree_id,
                                p.session_id,
                            ),
                            None => (String::new(), None, hdr.tree_id, hdr.session_id),
                        };
                        self.add_handle(
                            file_id,
                            Handle {
                                name,
                                share,
                                end_of_file: eof,
                                tree_id,
                                session_id,
                                files: [None, None],
                                seq: 0,
                            },
                            ts,
                            files,
                            out,
                        );
                    }
                }
                Command::READ if ok || hdr.status == wire::STATUS_BUFFER_OVERFLOW => {
                    let data_off = body.get(2).copied().map(usize::from).unwrap_or(0);
                    let data_len = u32_at(body, 4).unwrap_or(0);
                    if let Some(mut t) = pending.as_ref().and_then(|p| p.read) {
                        if t.file_id == RELATED_FILE_ID {
                            // A READ chained after the CREATE that opened the file.
                            t.file_id = self.last_file_id.unwrap_or(t.file_id);
                        }
                        let asked = pending.as_ref().map_or(0, |p| p.read_len);
                        let data_len = if data_len > asked {
                            // More than was asked for: not a real server, maybe an evasion.
                            self.anomaly(out, ts, "smb.read_response_longer_than_request");
                            asked
                        } else {
                            data_len
                        };
                        if self.cfg.max_read_size != 0 && data_len > self.cfg.max_read_size {
                            self.anomaly(out, ts, "smb.read_response_too_large");
                            self.mark_dropped(t.file_id, dir);
                        } else if data_off >= wire::HEADER_LEN && data_off <= msg.len() {
                            let end = data_off.saturating_add(data_len as usize).min(msg.len());
                            if end < data_off + data_len as usize {
                                self.anomaly(out, ts, "smb.read_response_short");
                            }
                            self.file_data(
                                t.file_id,
                                dir,
                                t.offset,
                                &msg[data_off..end],
                                ts,
                                files,
                                out,
                            );
                        } else {
                            self.anomaly(out, ts, "smb.invalid_data_offset");
                        }
                    }
                }
                Command::CLOSE => {
                    if pending.as_ref().is_some_and(|p| p.close_related)
                        && let Some(id) = self.last_file_id
                        && let Some(h) = self.handles.remove(&id)
                    {
                        self.close_handle(id, h, true, ts, files, out);
                    }
                }
                _ => {}
            }
            match pending {
                Some(p) => self.log_tx(p, Some(hdr), fields, ts, out),
                None if hdr.command == Command::NEGOTIATE => {
                    // The answer to an SMB1 negotiate offering SMB2 ("multi-protocol").
                    let tx_id = self.next_tx_id;
                    self.next_tx_id += 1;
                    let p = Pending {
                        tx_id,
                        command: hdr.command,
                        session_id: hdr.session_id,
                        tree_id: hdr.tree_id,
                        fields: Map::new(),
                        share: None,
                        name: None,
                        read: None,
                        read_len: 0,
                        close_related: false,
                    };
                    self.log_tx(p, Some(hdr), fields, ts, out);
                }
                None => {}
            }
            return;
        }

        // Requests.
        let mut fields = Map::new();
        match hdr.command {
            Command::NEGOTIATE => {
                let count = u16_at(body, 2).unwrap_or(0);
                let dialects: Vec<Value> = (0..usize::from(count))
                    .map_while(|i| u16_at(body, 36 + 2 * i))
                    .map(|d| Value::from(wire::dialect_eve(d)))
                    .collect();
                fields.insert("client_dialects".into(), dialects.into());
                self.begin_tx(hdr, fields, out, ts);
            }
            Command::SESSION_SETUP => {
                let blob = u16_at(body, 12)
                    .zip(u16_at(body, 14))
                    .and_then(|(off, len)| {
                        let off = usize::from(off);
                        msg.get(off..off.checked_add(usize::from(len))?.min(msg.len()))
                    });
                if let Some(ntlm) = blob.and_then(ntlmssp_auth) {
                    fields.insert("ntlmssp".into(), ntlm);
                }
                self.begin_tx(hdr, fields, out, ts);
            }
            Command::TREE_CONNECT => {
                let share = name_at(msg, u16_at(body, 4), u16_at(body, 6));
                if let Some(s) = &share {
                    fields.insert("share".into(), s.clone().into());
                }
                self.begin_tx_with(hdr, fields, share, None, None, 0, out, ts);
            }
            Command::CREATE => {
                let name = name_at(msg, u16_at(body, 44), u16_at(body, 46));
                let share = hdr
                    .tree_id
                    .and_then(|t| self.trees.get(&t))
                    .map(|(s, _)| s.clone());
                if let Some(n) = &name {
                    fields.insert("filename".into(), n.clone().into());
                }
                if let Some(d) = u32_at(body, 36) {
                    fields.insert("disposition".into(), wire::disposition_eve(d).into());
                }
                let delete_on_close = u32_at(body, 40).is_some_and(|o| o & 0x1000 != 0);
                fields.insert(
                    "access".into(),
                    if delete_on_close {
                        "delete on close"
                    } else {
                        "normal"
                    }
                    .into(),
                );
                if let Some(s) = &share {
                    fields.insert("share".into(), s.clone().into());
                }
                self.begin_tx_with(hdr, fields, share, name, None, 0, out, ts);
            }
            Command::READ => {
                let len = u32_at(body, 4).unwrap_or(0);
                let target = u64_at(body, 8)
                    .zip(wire::file_id_at(body, 16))
                    .map(|(offset, id)| Target {
                        file_id: self.resolve(id, hdr),
                        offset,
                    });
                if let Some(t) = &target {
                    self.tx_file_fields(&t.file_id, &mut fields);
                }
                self.begin_tx_with(hdr, fields, None, None, target, len, out, ts);
            }
            Command::WRITE => {
                let parsed = u16_at(body, 2)
                    .zip(u32_at(body, 4))
                    .zip(u64_at(body, 8))
                    .zip(wire::file_id_at(body, 16));
                if let Some((((data_off, data_len), offset), file_id)) = parsed {
                    let file_id = self.resolve(file_id, hdr);
                    self.tx_file_fields(&file_id, &mut fields);
                    let data_off = usize::from(data_off);
                    if self.cfg.max_write_size != 0 && data_len > self.cfg.max_write_size {
                        self.anomaly(out, ts, "smb.write_request_too_large");
                        self.mark_dropped(file_id, dir);
                    } else if data_off >= wire::HEADER_LEN && data_off <= msg.len() {
                        // The length field, not the record, says how much is file data: what
                        // follows it is padding (suricata-verify smb-length-5786).
                        let end = data_off.saturating_add(data_len as usize).min(msg.len());
                        if end < data_off + data_len as usize {
                            self.anomaly(out, ts, "smb.write_request_short");
                        }
                        self.file_data(file_id, dir, offset, &msg[data_off..end], ts, files, out);
                    } else {
                        self.anomaly(out, ts, "smb.invalid_data_offset");
                    }
                } else {
                    self.anomaly(out, ts, "smb.malformed_write");
                }
            }
            Command::CLOSE => {
                let mut related = false;
                if let Some(id) = wire::file_id_at(body, 8) {
                    let id = self.resolve(id, hdr);
                    if id == RELATED_FILE_ID {
                        // Which file is known only from the compound's CREATE response.
                        related = true;
                    } else {
                        self.tx_file_fields(&id, &mut fields);
                        if let Some(h) = self.handles.remove(&id) {
                            self.close_handle(id, h, true, ts, files, out);
                        }
                    }
                }
                self.begin_tx(hdr, fields, out, ts);
                if let Some(p) = self.pending.get_mut(&hdr.message_id) {
                    p.close_related = related;
                }
            }
            _ => {
                self.begin_tx(hdr, fields, out, ts);
            }
        }
    }

    fn tx_file_fields(&self, file_id: &[u8; 16], fields: &mut Map<String, Value>) {
        if let Some(h) = self.handles.get(file_id) {
            fields.insert("filename".into(), h.name.clone().into());
            if let Some(s) = &h.share {
                fields.insert("share".into(), s.clone().into());
            }
        }
        fields.insert("fuid".into(), wire::fuid(file_id).into());
    }

    fn add_handle(
        &mut self,
        id: [u8; 16],
        mut h: Handle,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        h.seq = self.next_handle_seq;
        self.next_handle_seq += 1;
        if let Some(old) = self.handles.remove(&id) {
            self.close_handle(id, old, false, ts, files, out);
        }
        if self.handles.len() >= MAX_OPEN_HANDLES {
            let oldest = self
                .handles
                .iter()
                .min_by_key(|(_, h)| h.seq)
                .map(|(k, _)| *k);
            if let Some(k) = oldest
                && let Some(old) = self.handles.remove(&k)
            {
                self.anomaly(out, ts, "smb.too_many_open_files");
                self.close_handle(k, old, false, ts, files, out);
            }
        }
        self.handles.insert(id, h);
    }

    fn handle_mut(
        &mut self,
        id: [u8; 16],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) -> Option<&mut Handle> {
        if !self.handles.contains_key(&id) {
            // Data on a handle whose CREATE was not seen (capture started mid-session).
            let h = Handle {
                name: String::new(),
                share: None,
                end_of_file: None,
                tree_id: None,
                session_id: 0,
                files: [None, None],
                seq: 0,
            };
            self.add_handle(id, h, ts, files, out);
        }
        self.handles.get_mut(&id)
    }

    #[allow(clippy::too_many_arguments)]
    fn file_data(
        &mut self,
        id: [u8; 16],
        dir: Direction,
        offset: u64,
        data: &[u8],
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        if data.is_empty() {
            return;
        }
        let file_id = self.next_file_id;
        let tx_id = self.next_tx_id;
        if self.handle_mut(id, ts, files, out).is_none() {
            return;
        }
        let mut held = self.held_out_of_order;
        let Some(h) = self.handles.get_mut(&id) else {
            return;
        };
        let mut opened = false;
        let slot = &mut h.files[dir.index()];
        let asm = slot.get_or_insert_with(|| {
            opened = true;
            Assembly::new(OpenFile::open(
                files,
                h.name.as_bytes(),
                Some(tx_id),
                file_id,
            ))
        });
        let added = asm.add(files, offset, data, &mut held);
        self.held_out_of_order = held;
        if opened {
            // The file is its own transaction, as in Suricata.
            self.next_file_id += 1;
            self.next_tx_id += 1;
        }
        match added {
            Added::Ok => {}
            Added::TooFarAhead => self.anomaly(out, ts, "smb.file_offset_too_far"),
            Added::GaveUpHole => self.anomaly(out, ts, "smb.file_reassembly_limit"),
        }
    }

    fn file_gap(
        &mut self,
        id: [u8; 16],
        dir: Direction,
        offset: u64,
        len: u64,
        files: &mut dyn FileSink,
    ) {
        if let Some(h) = self.handles.get_mut(&id)
            && let Some(asm) = h.files[dir.index()].as_mut()
        {
            asm.gap_at(files, offset, len);
        }
    }

    fn mark_dropped(&mut self, id: [u8; 16], dir: Direction) {
        if let Some(h) = self.handles.get_mut(&id)
            && let Some(asm) = h.files[dir.index()].as_mut()
        {
            asm.dropped = true;
        }
    }

    fn close_handle(
        &mut self,
        id: [u8; 16],
        mut h: Handle,
        closed: bool,
        ts: Timestamp,
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let Some(asm) = h.files[dir.index()].take() else {
                continue;
            };
            // Reads are checked against the size CREATE reported; writes cannot be.
            let expected = if dir == Direction::ToClient {
                h.end_of_file
            } else {
                None
            };
            self.held_out_of_order = self.held_out_of_order.saturating_sub(asm.held_bytes());
            let mut c = asm.close(files, expected);
            if !closed {
                c.artifact.state = weir_core::FileState::Truncated;
                c.artifact.gaps = true;
            }
            let mut smb = Map::new();
            smb.insert("id".into(), (c.tx_id.unwrap_or(0) + 1).into());
            smb.insert("dialect".into(), self.dialect_text().into());
            let command = if dir == Direction::ToServer {
                Command::WRITE
            } else {
                Command::READ
            };
            smb.insert("command".into(), command.eve().into());
            smb.insert("status".into(), "STATUS_SUCCESS".into());
            smb.insert("status_code".into(), "0x0".into());
            smb.insert("session_id".into(), h.session_id.into());
            smb.insert("tree_id".into(), h.tree_id.unwrap_or(0).into());
            smb.insert("filename".into(), h.name.clone().into());
            if let Some(s) = &h.share {
                smb.insert("share".into(), s.clone().into());
            }
            smb.insert("fuid".into(), wire::fuid(&id).into());
            let mut fields = Map::new();
            fields.insert("tx_id".into(), c.tx_id.unwrap_or(0).into());
            fields.insert("smb".into(), Value::Object(smb.clone()));
            out.event(AppEvent {
                ts,
                event_type: "smb",
                tx_id: c.tx_id,
                direction: dir,
                fields,
            });
            let mut fields = Map::new();
            fields.insert("smb".into(), Value::Object(smb));
            fields.insert("fileinfo".into(), c.fileinfo());
            out.event(AppEvent {
                ts,
                event_type: "fileinfo",
                tx_id: c.tx_id,
                direction: dir,
                fields,
            });
            out.artifact(ts, c.tx_id, Artifact::File(c.artifact));
        }
    }

    fn dialect_text(&self) -> String {
        match (self.dialect, self.smb1_dialects.is_empty()) {
            (Some(d), _) => wire::dialect_eve(d),
            (None, false) => "NT LM 0.12".into(),
            (None, true) => "unknown".into(),
        }
    }

    fn log_tx(
        &mut self,
        p: Pending,
        hdr: Option<&wire::Header>,
        response: Map<String, Value>,
        ts: Timestamp,
        out: &mut Emit,
    ) {
        if matches!(p.command, Command::READ | Command::WRITE) {
            // Data moves are logged once per file, when it closes, as Suricata's file
            // transactions: not once per chunk.
            return;
        }
        let mut smb = Map::new();
        smb.insert("id".into(), (p.tx_id + 1).into());
        smb.insert("dialect".into(), self.dialect_text().into());
        smb.insert("command".into(), p.command.eve().into());
        if let Some(h) = hdr {
            if let Some(name) = wire::status_name(h.status) {
                smb.insert("status".into(), name.into());
            }
            smb.insert("status_code".into(), format!("0x{:x}", h.status).into());
        }
        let session_id = if p.session_id == 0 {
            hdr.map_or(0, |h| h.session_id)
        } else {
            p.session_id
        };
        smb.insert("session_id".into(), session_id.into());
        let tree_id = match (p.command, hdr) {
            (Command::TREE_CONNECT, Some(h)) => h.tree_id,
            _ => p.tree_id,
        };
        smb.insert("tree_id".into(), tree_id.unwrap_or(0).into());
        for (k, v) in p.fields.into_iter().chain(response) {
            smb.insert(k, v);
        }
        let mut fields = Map::new();
        fields.insert("tx_id".into(), p.tx_id.into());
        fields.insert("smb".into(), Value::Object(smb));
        out.event(AppEvent {
            ts,
            event_type: "smb",
            tx_id: Some(p.tx_id),
            direction: Direction::ToClient,
            fields,
        });
    }

    /// SMB1 ([MS-CIFS] 2.2.3.1): NEGOTIATE (the dialects offered, and which one the server
    /// picked), and the names in TREE_CONNECT_ANDX and NT_CREATE_ANDX requests. SMB1 file data
    /// is not extracted; other commands are only counted.
    fn on_smb1(&mut self, msg: &[u8], ts: Timestamp, out: &mut Emit) {
        const NEGOTIATE: u8 = 0x72;
        const TREE_CONNECT_ANDX: u8 = 0x75;
        const NT_CREATE_ANDX: u8 = 0xa2;
        let (Some(&command), Some(&flags), Some(flags2)) =
            (msg.get(4), msg.get(9), u16_at(msg, 10))
        else {
            self.anomaly(out, ts, "smb.invalid_header");
            return;
        };
        let reply = flags & 0x80 != 0;
        let unicode = flags2 & 0x8000 != 0;
        // Header 32 bytes, WordCount, words, ByteCount, bytes.
        let word_count = usize::from(msg.get(32).copied().unwrap_or(0));
        let bytes_at = 33 + 2 * word_count + 2;
        let mut smb = Map::new();
        let name = match (command, reply) {
            (NEGOTIATE, false) => {
                let dialects: Vec<String> = msg
                    .get(bytes_at..)
                    .unwrap_or_default()
                    .split(|&b| b == 0)
                    .filter_map(|s| s.strip_prefix(&[0x02]))
                    .take(32)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                smb.insert("client_dialects".into(), dialects.clone().into());
                self.smb1_dialects = dialects;
                "NEGOTIATE_PROTOCOL"
            }
            (NEGOTIATE, true) => {
                if let Some(index) = u16_at(msg, 33)
                    && let Some(name) = self.smb1_dialects.get(usize::from(index))
                {
                    smb.insert("dialect".into(), name.clone().into());
                }
                "NEGOTIATE_PROTOCOL"
            }
            (TREE_CONNECT_ANDX, false) => {
                // Words: AndX (4 bytes), Flags, PasswordLength; bytes: password, path, service.
                let password_len = usize::from(u16_at(msg, 39).unwrap_or(0));
                if let Some(path) = smb1_string(msg, bytes_at + password_len, unicode) {
                    smb.insert("share".into(), path.into());
                }
                "TREE_CONNECT_ANDX"
            }
            (NT_CREATE_ANDX, false) => {
                // Words: AndX (4 bytes), Reserved, NameLength, ...; bytes: the name.
                let name_len = usize::from(u16_at(msg, 38).unwrap_or(0));
                let mut at = bytes_at;
                if unicode && at % 2 == 1 {
                    at += 1;
                }
                let raw = msg.get(
                    at..at
                        .saturating_add(name_len.min(MAX_NAME_BYTES))
                        .min(msg.len()),
                );
                if let Some(raw) = raw {
                    let name = if unicode {
                        wire::utf16(raw)
                    } else {
                        String::from_utf8_lossy(raw).into_owned()
                    };
                    smb.insert("filename".into(), name.trim_end_matches('\0').into());
                }
                "NT_CREATE_ANDX"
            }
            _ => {
                self.anomaly(out, ts, "smb.smb1_command");
                return;
            }
        };
        let tx_id = self.next_tx_id;
        self.next_tx_id += 1;
        let mut obj = Map::new();
        obj.insert("id".into(), (tx_id + 1).into());
        obj.insert("dialect".into(), self.dialect_text().into());
        obj.insert("command".into(), format!("SMB1_COMMAND_{name}").into());
        for (k, v) in smb {
            obj.insert(k, v);
        }
        let mut fields = Map::new();
        fields.insert("tx_id".into(), tx_id.into());
        fields.insert("smb".into(), Value::Object(obj));
        let direction = if reply {
            Direction::ToClient
        } else {
            Direction::ToServer
        };
        out.event(AppEvent {
            ts,
            event_type: "smb",
            tx_id: Some(tx_id),
            direction,
            fields,
        });
    }
}

/// A NUL-terminated SMB1 string at `at` (UTF-16 aligned to 2 from the header when `unicode`).
fn smb1_string(msg: &[u8], mut at: usize, unicode: bool) -> Option<String> {
    if unicode && at % 2 == 1 {
        at += 1;
    }
    let rest = msg.get(at..)?;
    let rest = &rest[..rest.len().min(MAX_NAME_BYTES)];
    if unicode {
        let end = rest
            .chunks_exact(2)
            .position(|c| c == [0, 0])
            .map_or(rest.len() & !1, |i| 2 * i);
        Some(wire::utf16(&rest[..end]))
    } else {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

fn share_type_eve(t: u8) -> &'static str {
    match t {
        1 => "FILE",
        2 => "PIPE",
        3 => "PRINT",
        _ => "UNKNOWN",
    }
}

/// A UTF-16 name at `offset` (from the header start) of `len` bytes, capped at
/// [`MAX_NAME_BYTES`].
fn name_at(msg: &[u8], offset: Option<u16>, len: Option<u16>) -> Option<String> {
    let (offset, len) = (usize::from(offset?), usize::from(len?));
    let bytes = msg.get(offset..offset.checked_add(len)?.min(msg.len()))?;
    Some(wire::utf16(&bytes[..bytes.len().min(MAX_NAME_BYTES)]))
}

/// The user, domain and host of an NTLMSSP AUTHENTICATE message ([MS-NLMP] 2.2.1.3) found in a
/// SESSION_SETUP security blob (inside its SPNEGO wrapping), as Suricata's `ntlmssp` object.
fn ntlmssp_auth(blob: &[u8]) -> Option<Value> {
    let start = blob.windows(8).position(|w| w == b"NTLMSSP\0")?;
    let m = &blob[start..];
    if u32_at(m, 8)? != 3 {
        return None;
    }
    let unicode = u32_at(m, 60).is_some_and(|flags| flags & 1 != 0);
    let field = |at: usize| -> Option<String> {
        let len = usize::from(u16_at(m, at)?);
        let off = usize::try_from(u32_at(m, at + 4)?).ok()?;
        let bytes = m.get(off..off.checked_add(len.min(MAX_NAME_BYTES))?)?;
        Some(if unicode {
            wire::utf16(bytes)
        } else {
            crate::dns::escape_bytes(bytes)
        })
    };
    let mut o = Map::new();
    o.insert("domain".into(), field(28)?.into());
    o.insert("user".into(), field(36)?.into());
    o.insert("host".into(), field(44)?.into());
    Some(Value::Object(o))
}

/// Where in `data` a record seems to start again: an NBSS session message header followed by an
/// SMB magic.
fn resync_point(data: &[u8]) -> Option<usize> {
    data.windows(8).position(|w| {
        w[0] == 0
            && [wire::SMB2_MAGIC, wire::SMB1_MAGIC, wire::TRANSFORM_MAGIC]
                .iter()
                .any(|m| &w[4..8] == m.as_slice())
    })
}
