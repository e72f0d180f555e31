//! MIME: what SMTP, POP3 and IMAP share once they hold a whole message.
//!
//! A protocol parser collects a message's bytes in a [`MessageBuffer`] (capped: MIME parsing
//! needs the whole message in memory) and hands it to [`deliver`], which
//!
//! - stores the message unchanged in the mail store ([`crate::mailstore`]),
//! - reads the top-level header block as Suricata logs it (raw values, see [`headers`]),
//! - walks the MIME tree with `mail-parser` (nested multiparts, message/rfc822, RFC 2047 and
//!   RFC 2231 names) and streams every part that has a file name through the shared file
//!   pipeline ([`crate::files`]), decoding base64 and quoted-printable with the tolerant
//!   decoders of [`decode`],
//! - collects the URLs of text and HTML bodies ([`url`]),
//! - emits `fileinfo` events, and File, Url and Email artifacts,
//!
//! and returns the `email` object for the protocol's own record.
//!
//! Hostile messages are bounded before `mail-parser` sees them: at most
//! [`MimeConfig::max_parts`] boundary lines and [`MAX_HEADER_LIKE_LINES`] header-like lines are
//! handed to it (the rest of the message is still stored, and the cut is marked), parts deeper
//! than [`MimeConfig::max_depth`] are not extracted, and a panic inside the parser is caught and
//! counted rather than taking the sensor down.

pub mod decode;
pub mod headers;
pub(crate) mod lines;
#[cfg(test)]
pub(crate) mod manifest_check;
#[cfg(test)]
pub(crate) mod test_pcap;
pub mod url;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};
use md5::Md5;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use weir_core::{Anomaly, Artifact, Direction, EmailArtifact, SeenIn, Timestamp, UrlArtifact, hex};

use crate::emit::{AppEvent, Emit, ParserException};
use crate::files::{FileSink, OpenFile};
use crate::mailstore::MailSink;

/// Lines that look like header fields (`name:` at the start of a line) handed to the MIME
/// parser per message. Each costs the parser a header record far larger than its wire bytes,
/// so a message made of millions of `a:b` lines is cut here.
pub const MAX_HEADER_LIKE_LINES: usize = 20_000;

/// Bytes of each extracted file kept in the transaction for `file.data` inspection.
pub const FILE_DATA_INSPECT_BYTES: usize = 64 * 1024;

/// Files extracted from one message; further named parts are listed but not extracted.
pub const MAX_FILES_PER_MESSAGE: usize = 256;

/// Message bytes that every message buffer built from one [`MimeConfig`] (and its clones) may
/// hold together, by default; `weir` builds one config per protocol and worker, as the stream
/// memcap is per worker. Each message is capped by
/// [`MimeConfig::max_message_bytes`]; without this, thousands of sessions that never finish
/// their message would each hold that much. Past it a message gets no more bytes and is stored
/// truncated and marked, as past its own cap.
pub const DEFAULT_MAX_HELD_MESSAGE_BYTES: usize = 256 << 20;

/// A byte budget that message buffers charge their memory to; clones share it.
#[derive(Clone, Debug)]
pub struct HeldMessageBudget {
    held: Arc<AtomicUsize>,
    max: usize,
}

impl HeldMessageBudget {
    pub fn new(max: usize) -> Self {
        HeldMessageBudget { held: Arc::new(AtomicUsize::new(0)), max }
    }

    /// Bytes charged now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes up to `want` bytes of what is left; returns how many it got.
    pub(crate) fn take(&self, want: usize) -> usize {
        let mut current = self.held.load(Ordering::Relaxed);
        loop {
            let grant = want.min(self.max.saturating_sub(current));
            if grant == 0 {
                return 0;
            }
            match self.held.compare_exchange_weak(current, current + grant, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return grant,
                Err(now) => current = now,
            }
        }
    }

    /// Charges memory already allocated (an allocator rounding up, a clone), even past `max`.
    pub(crate) fn charge(&self, n: usize) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Default for HeldMessageBudget {
    fn default() -> Self {
        HeldMessageBudget::new(DEFAULT_MAX_HELD_MESSAGE_BYTES)
    }
}

/// Two configs are equal when their limits are: which budget instance they share is not
/// configuration.
impl PartialEq for HeldMessageBudget {
    fn eq(&self, other: &Self) -> bool {
        self.max == other.max
    }
}

impl Eq for HeldMessageBudget {}

/// MIME limits (`[app_layer.mime]`, shared by SMTP, POP3 and IMAP).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MimeConfig {
    /// Most bytes of one message held (and stored); past it the message is stored truncated
    /// and marked so. Default 32 MiB.
    pub max_message_bytes: usize,
    /// Most MIME boundary lines parsed per message (about the part count). Default 1000.
    pub max_parts: usize,
    /// Deepest nesting (multiparts and message/rfc822) whose parts are extracted. Default 16.
    pub max_depth: usize,
    /// Most decoded bytes extracted into one attachment file. Default 32 MiB.
    pub max_file_bytes: u64,
    /// Log `email.body_md5` (Suricata's `md5: [body]`). Default false, as in Suricata.
    pub body_md5: bool,
    /// What the message buffers of every flow using this config (or a clone of it) may hold
    /// together. Default [`DEFAULT_MAX_HELD_MESSAGE_BYTES`].
    #[serde(skip)]
    pub held_budget: HeldMessageBudget,
}

impl Default for MimeConfig {
    fn default() -> Self {
        MimeConfig {
            max_message_bytes: 32 << 20,
            max_parts: 1000,
            max_depth: 16,
            max_file_bytes: 32 << 20,
            body_md5: false,
            held_budget: HeldMessageBudget::default(),
        }
    }
}

/// Which protocol carried a message: names its anomalies and its artifacts' context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailProto {
    Smtp,
    Pop3,
    Imap,
}

impl MailProto {
    fn event(self, what: MimeAnomaly) -> &'static str {
        use MailProto::*;
        use MimeAnomaly::*;
        // Suricata's SMTP event names where it has them; the same suffixes for POP3 and IMAP.
        match (self, what) {
            (Smtp, MessageTruncated) => "smtp.mime_message_truncated",
            (Smtp, InvalidBase64) => "smtp.mime_invalid_base64",
            (Smtp, InvalidQp) => "smtp.mime_invalid_qp",
            (Smtp, ParseLimit) => "smtp.mime_parse_limit",
            (Smtp, ParseFailed) => "smtp.mime_parse_failed",
            (Smtp, LongHeader) => "smtp.mime_long_header_value",
            (Smtp, DepthExceeded) => "smtp.mime_depth_exceeded",
            (Pop3, MessageTruncated) => "pop3.mime_message_truncated",
            (Pop3, InvalidBase64) => "pop3.mime_invalid_base64",
            (Pop3, InvalidQp) => "pop3.mime_invalid_qp",
            (Pop3, ParseLimit) => "pop3.mime_parse_limit",
            (Pop3, ParseFailed) => "pop3.mime_parse_failed",
            (Pop3, LongHeader) => "pop3.mime_long_header_value",
            (Pop3, DepthExceeded) => "pop3.mime_depth_exceeded",
            (Imap, MessageTruncated) => "imap.mime_message_truncated",
            (Imap, InvalidBase64) => "imap.mime_invalid_base64",
            (Imap, InvalidQp) => "imap.mime_invalid_qp",
            (Imap, ParseLimit) => "imap.mime_parse_limit",
            (Imap, ParseFailed) => "imap.mime_parse_failed",
            (Imap, LongHeader) => "imap.mime_long_header_value",
            (Imap, DepthExceeded) => "imap.mime_depth_exceeded",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MimeAnomaly {
    MessageTruncated,
    InvalidBase64,
    InvalidQp,
    ParseLimit,
    ParseFailed,
    LongHeader,
    DepthExceeded,
}

/// One message's bytes as they cross the wire, held up to a cap.
#[derive(Debug, Default)]
pub struct MessageBuffer {
    bytes: Vec<u8>,
    wire_len: u64,
    cap: usize,
    gaps: bool,
    /// Where the capacity of `bytes` is charged; None: nowhere.
    budget: Option<HeldMessageBudget>,
    /// The shared budget refused bytes this message would have held.
    budget_refused: bool,
    /// `budget_refused` was handed out as a `ParserException::MessageMemcap`.
    refusal_reported: bool,
}

impl MessageBuffer {
    /// A buffer capped at `cap` bytes and charged to no shared budget.
    pub fn new(cap: usize) -> Self {
        MessageBuffer::empty(cap)
    }

    /// A buffer capped by `cfg.max_message_bytes` whose memory is charged to `cfg.held_budget`.
    pub fn for_config(cfg: &MimeConfig) -> Self {
        let mut buffer = MessageBuffer::empty(cfg.max_message_bytes);
        buffer.budget = Some(cfg.held_budget.clone());
        buffer
    }

    fn empty(cap: usize) -> Self {
        MessageBuffer {
            bytes: Vec::new(),
            wire_len: 0,
            cap,
            gaps: false,
            budget: None,
            budget_refused: false,
            refusal_reported: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.wire_len = self.wire_len.saturating_add(data.len() as u64);
        let mut take = self.cap.saturating_sub(self.bytes.len()).min(data.len());
        let (len, capacity) = (self.bytes.len(), self.bytes.capacity());
        if capacity - len < take {
            // Grow by doubling as Vec does, but never past the cap: a 32 MiB message must not
            // reserve 64 MiB.
            let want = (len * 2).max(len + take).min(self.cap);
            let extra = want - capacity;
            let granted = self.budget.as_ref().map_or(extra, |b| b.take(extra));
            let room = capacity + granted - len;
            if room < take {
                self.budget_refused = true;
            }
            take = take.min(room);
            if granted > 0 {
                self.bytes.reserve_exact(capacity + granted - len);
                if let Some(b) = &self.budget {
                    // The allocator may hand out more than asked: charge what was really taken.
                    let grown = self.bytes.capacity() - capacity;
                    if grown >= granted {
                        b.charge(grown - granted);
                    } else {
                        b.give_back(granted - grown);
                    }
                }
            }
        }
        self.bytes.extend_from_slice(&data[..take]);
    }

    /// Bytes of the message were never seen: it will be stored truncated, never padded.
    pub fn gap(&mut self, len: u64) {
        self.gaps = true;
        self.wire_len = self.wire_len.saturating_add(len);
    }

    /// Whether what is held is not the whole message (a gap, or past the cap).
    pub fn is_truncated(&self) -> bool {
        self.gaps || self.wire_len > self.bytes.len() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes on the wire, counting those past the cap and in gaps.
    pub fn wire_len(&self) -> u64 {
        self.wire_len
    }

    /// Whether the shared budget refused this message bytes (it is stored truncated).
    pub fn budget_refused(&self) -> bool {
        self.budget_refused
    }

    /// Raises [`ParserException::MessageMemcap`] if the shared budget refused this message bytes
    /// and that was not raised yet: once per message. Mail parsers call it before they hand back
    /// control; [`deliver`] covers a message refused and finished within one call.
    pub fn report_budget_refusal(&mut self, ts: Timestamp, out: &mut Emit) {
        if self.budget_refused && !std::mem::replace(&mut self.refusal_reported, true) {
            out.exception(ts, ParserException::MessageMemcap);
        }
    }
}

impl Clone for MessageBuffer {
    fn clone(&self) -> Self {
        let bytes = self.bytes.clone();
        if let Some(b) = &self.budget {
            b.charge(bytes.capacity());
        }
        MessageBuffer {
            bytes,
            wire_len: self.wire_len,
            cap: self.cap,
            gaps: self.gaps,
            budget: self.budget.clone(),
            budget_refused: self.budget_refused,
            refusal_reported: self.refusal_reported,
        }
    }
}

impl Drop for MessageBuffer {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.bytes.capacity());
        }
    }
}

/// What the `email` object says about one message, and what detection inspects
/// (`email.from`, `email.subject`, `email.to`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailInfo {
    /// Suricata's parser state words: `PARSE_DONE`, or `BODY_STARTED` / `HEADER_STARTED` for a
    /// message cut short.
    pub status: &'static str,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub date: Option<String>,
    pub x_mailer: Option<String>,
    pub attachments: Vec<String>,
    pub urls: Vec<String>,
    pub body_md5: Option<String>,
    /// Not part of Suricata's object: the message is not all there (cut by a cap or a gap, or
    /// only its header was fetched).
    pub truncated: bool,
}

impl EmailInfo {
    /// The EVE `email` object, Suricata's fields in Suricata's order; empty fields are left out.
    pub fn eve(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), self.status.into());
        if let Some(from) = &self.from {
            m.insert("from".into(), from.clone().into());
        }
        if !self.to.is_empty() {
            m.insert("to".into(), self.to.clone().into());
        }
        if !self.cc.is_empty() {
            m.insert("cc".into(), self.cc.clone().into());
        }
        for (key, v) in [
            ("message_id", &self.message_id),
            ("subject", &self.subject),
            ("x_mailer", &self.x_mailer),
            ("date", &self.date),
        ] {
            if let Some(v) = v {
                m.insert(key.into(), v.clone().into());
            }
        }
        if let Some(md5) = &self.body_md5 {
            m.insert("body_md5".into(), md5.clone().into());
        }
        if !self.attachments.is_empty() {
            m.insert("attachment".into(), self.attachments.clone().into());
        }
        if !self.urls.is_empty() {
            m.insert("url".into(), self.urls.clone().into());
        }
        if self.truncated {
            m.insert("truncated".into(), true.into());
        }
        Value::Object(m)
    }
}

/// Where a message was seen: what its events and artifacts carry.
pub struct MessageCtx<'a> {
    pub ts: Timestamp,
    pub tx_id: u64,
    /// The direction the message travelled.
    pub direction: Direction,
    pub proto: MailProto,
    /// The protocol's object for the `fileinfo` records of the attachments, e.g.
    /// `("smtp", {"helo": ..})`.
    pub proto_object: (&'static str, Value),
    /// The flow's file counter (Suricata's `file_id`, from 1).
    pub next_file_id: &'a mut u64,
    /// Only part of the message was asked for (POP3 TOP, IMAP BODY[HEADER]).
    pub partial: bool,
    /// The SMTP envelope (MAIL FROM, RCPT TO), when there is one: the Email artifact's sender
    /// when the header has none, and its recipients besides those the header names (Bcc).
    pub envelope_from: Option<&'a str>,
    pub envelope_to: &'a [String],
}

/// A delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub info: EmailInfo,
    pub sha256: [u8; 32],
    pub size: u64,
    pub stored: bool,
    /// The first [`FILE_DATA_INSPECT_BYTES`] of each extracted file, for `file.data`.
    pub file_data: Vec<Vec<u8>>,
}

/// A part that becomes a file.
struct FilePart {
    name: String,
    body: Vec<u8>,
    encoding: Encoding,
    /// The part may continue past what the parser was given.
    cut: bool,
}

/// Stores, parses and reports one message. See the module documentation.
pub fn deliver(
    msg: &MessageBuffer,
    cfg: &MimeConfig,
    ctx: MessageCtx<'_>,
    files: &mut dyn FileSink,
    mails: &mut dyn MailSink,
    out: &mut Emit,
) -> Delivered {
    let raw = msg.bytes();
    let truncated = msg.is_truncated() || ctx.partial;
    let anomaly = |out: &mut Emit, what| out.anomaly(ctx.ts, Anomaly::app_layer(ctx.proto.event(what)));
    if msg.budget_refused && !msg.refusal_reported {
        // Refused and finished before the parser handed back control.
        out.exception(ctx.ts, ParserException::MessageMemcap);
    }
    if msg.is_truncated() {
        anomaly(out, MimeAnomaly::MessageTruncated);
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&Sha256::digest(raw));
    let stored = mails.store(&sha256, raw).unwrap_or(false);

    let block = headers::parse_header_block(raw);
    if block.clipped {
        anomaly(out, MimeAnomaly::LongHeader);
    }
    let text = |name: &str| block.first(name).map(|v| String::from_utf8_lossy(v).into_owned());
    let list = |name: &str| block.first(name).map(headers::split_addresses).unwrap_or_default();
    let mut info = EmailInfo {
        status: match (msg.is_truncated(), block.body_offset) {
            (false, _) => "PARSE_DONE",
            (true, Some(_)) => "BODY_STARTED",
            (true, None) => "HEADER_STARTED",
        },
        from: text("from").filter(|s| !s.is_empty()),
        to: list("to"),
        cc: list("cc"),
        subject: text("subject"),
        message_id: text("message-id"),
        date: text("date"),
        x_mailer: text("x-mailer"),
        truncated,
        ..Default::default()
    };
    if cfg.body_md5 {
        let body = block.body_offset.and_then(|o| raw.get(o..)).unwrap_or_default();
        info.body_md5 = Some(hex(&Md5::digest(body)));
    }

    let (parse_len, cut) = parse_bound(raw, cfg.max_parts);
    if cut {
        anomaly(out, MimeAnomaly::ParseLimit);
    }
    let input = &raw[..parse_len];
    let input_cut = cut || msg.is_truncated();
    let mut file_parts = Vec::new();
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let parser = MessageParser::default();
        let mut urls = Vec::new();
        let mut found = Vec::new();
        let mut deep = false;
        if let Some(message) = parser.parse(input) {
            walk(&message, input, input_cut, cfg.max_depth, &mut found, &mut urls, &mut deep);
        }
        (found, urls, deep)
    }));
    match parsed {
        Ok((found, urls, deep)) => {
            if deep {
                anomaly(out, MimeAnomaly::DepthExceeded);
            }
            info.urls = urls;
            file_parts = found;
        }
        Err(_) => anomaly(out, MimeAnomaly::ParseFailed),
    }
    info.attachments = file_parts.iter().map(|p| p.name.clone()).collect();

    let mut closed = Vec::new();
    let mut file_data = Vec::new();
    for part in file_parts.iter().take(MAX_FILES_PER_MESSAGE) {
        let decoded = match part.encoding {
            Encoding::Base64 => {
                let d = decode::base64(&part.body);
                if d.damaged {
                    anomaly(out, MimeAnomaly::InvalidBase64);
                }
                d.bytes
            }
            Encoding::QuotedPrintable => {
                let d = decode::quoted_printable(&part.body);
                if d.damaged {
                    anomaly(out, MimeAnomaly::InvalidQp);
                }
                d.bytes
            }
            Encoding::None => part.body.clone(),
        };
        *ctx.next_file_id += 1;
        let mut file = OpenFile::open(files, part.name.as_bytes(), Some(ctx.tx_id), *ctx.next_file_id - 1);
        let take = decoded.len().min(usize::try_from(cfg.max_file_bytes).unwrap_or(usize::MAX));
        file.write(files, &decoded[..take]);
        let complete = take == decoded.len() && !part.cut;
        file_data.push(decoded[..take.min(FILE_DATA_INSPECT_BYTES)].to_vec());
        closed.push(file.close(files, complete));
    }

    let email = info.eve();
    for c in closed {
        let mut fields = Map::new();
        fields.insert("tx_id".into(), ctx.tx_id.into());
        fields.insert(ctx.proto_object.0.into(), ctx.proto_object.1.clone());
        fields.insert("email".into(), email.clone());
        fields.insert("fileinfo".into(), c.fileinfo());
        out.event(AppEvent {
            ts: ctx.ts,
            event_type: "fileinfo",
            tx_id: Some(ctx.tx_id),
            direction: ctx.direction,
            fields,
        });
        out.artifact(ctx.ts, Some(ctx.tx_id), Artifact::File(c.artifact));
    }
    for u in &info.urls {
        out.artifact(ctx.ts, Some(ctx.tx_id), Artifact::Url(UrlArtifact { url: u.clone(), seen_in: SeenIn::EmailUrl }));
    }
    out.artifact(
        ctx.ts,
        Some(ctx.tx_id),
        Artifact::Email(EmailArtifact {
            sha256,
            size: raw.len() as u64,
            from: info
                .from
                .as_deref()
                .map(headers::bare_address)
                .or_else(|| ctx.envelope_from.map(headers::bare_address)),
            to: recipients(&info, ctx.envelope_to),
            truncated,
        }),
    );
    Delivered { info, sha256, size: raw.len() as u64, stored, file_data }
}

/// Header To and Cc, then envelope recipients not already named, as bare addresses.
fn recipients(info: &EmailInfo, envelope: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in info.to.iter().chain(&info.cc).chain(envelope) {
        let bare = headers::bare_address(a);
        if !bare.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&bare)) {
            out.push(bare);
        }
    }
    out
}

/// How much of `raw` the MIME parser may see: up to the line that would pass `max_parts`
/// boundary-like lines or [`MAX_HEADER_LIKE_LINES`] header-like lines. Returns the length and
/// whether it cut.
fn parse_bound(raw: &[u8], max_parts: usize) -> (usize, bool) {
    let mut boundaries = 0usize;
    let mut header_like = 0usize;
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..].iter().position(|&b| b == b'\n').map_or(raw.len(), |n| pos + n + 1);
        let line = &raw[pos..end];
        if line.starts_with(b"--") {
            boundaries += 1;
        } else if is_header_like(line) {
            header_like += 1;
        }
        if boundaries > max_parts || header_like > MAX_HEADER_LIKE_LINES {
            return (pos, true);
        }
        pos = end;
    }
    (raw.len(), false)
}

fn is_header_like(line: &[u8]) -> bool {
    match line.first() {
        Some(b' ' | b'\t' | b'\r' | b'\n') | None => false,
        Some(_) => line.iter().take(80).position(|&b| b == b':').is_some_and(|c| !line[..c].contains(&b' ')),
    }
}

/// Collects the file parts and body URLs of a parsed message, depth first.
fn walk(
    message: &mail_parser::Message<'_>,
    raw: &[u8],
    raw_cut: bool,
    depth_left: usize,
    found: &mut Vec<FilePart>,
    urls: &mut Vec<String>,
    deep: &mut bool,
) {
    // Iterative over the part tree so a deep nest cannot exhaust the stack.
    let mut stack: Vec<(u32, usize)> = vec![(0, 0)];
    let mut visited = 0usize;
    while let Some((id, depth)) = stack.pop() {
        visited += 1;
        if visited > message.parts.len() {
            break;
        }
        let Some(part) = message.parts.get(id as usize) else { continue };
        if depth > depth_left {
            *deep = true;
            continue;
        }
        match &part.body {
            PartType::Multipart(children) => {
                for &child in children.iter().rev() {
                    if child != id {
                        stack.push((child, depth + 1));
                    }
                }
            }
            PartType::Message(nested) => {
                if depth + 1 > depth_left {
                    *deep = true;
                } else {
                    // Offsets inside a nested message are relative to its own raw bytes.
                    let nested_raw: &[u8] = nested.raw_message.as_ref();
                    let nested_cut = raw_cut && std::ptr::eq(nested_raw.as_ptr(), raw.as_ptr());
                    walk(nested, nested_raw, nested_cut, depth_left - depth - 1, found, urls, deep);
                }
            }
            PartType::Text(t) | PartType::Html(t) => {
                let html = matches!(part.body, PartType::Html(_));
                if let Some(name) = part.attachment_name() {
                    push_file(found, name, part, raw, raw_cut);
                } else {
                    url::find_urls(t, html, urls);
                }
            }
            PartType::Binary(_) | PartType::InlineBinary(_) => {
                if let Some(name) = part.attachment_name() {
                    push_file(found, name, part, raw, raw_cut);
                }
            }
        }
    }
}

fn push_file(found: &mut Vec<FilePart>, name: &str, part: &mail_parser::MessagePart<'_>, raw: &[u8], raw_cut: bool) {
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    found.push(FilePart {
        name: name.to_owned(),
        body: raw[start..end].to_vec(),
        // The header, not the parser's verdict: the parser reports a body it could not decode
        // as unencoded, where mail clients decode what they can.
        encoding: transfer_encoding(part),
        // A part running to the end of a cut message may have lost its tail.
        cut: raw_cut && end + 2 >= raw.len(),
    });
}

fn transfer_encoding(part: &mail_parser::MessagePart<'_>) -> Encoding {
    match part.content_transfer_encoding().map(str::trim) {
        Some(e) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
        Some(e) if e.eq_ignore_ascii_case("quoted-printable") => Encoding::QuotedPrintable,
        _ => Encoding::None,
    }
}

#[cfg(test)]
mod tests;
