//! IMAP4rev1 (RFC 3501): FETCH responses carrying a whole message (`BODY[]`, `RFC822`,
//! `BINARY[]`) or its header (`BODY[HEADER]`, `RFC822.HEADER`) as a literal, and APPEND
//! uploads, are messages.
//!
//! [`ImapState`] reads both directions as lines and literals: a line ending in `{n}` (or
//! `{n+}`, RFC 7888) is followed by exactly `n` bytes, and the line goes on after them. Message
//! literals go through [`crate::mime::deliver`] and are logged as EVE `imap` records with the
//! `email` object (see `docs/eve-mail.md`); other literals are skipped without being held.
//! LOGIN arguments and AUTHENTICATE exchanges are never logged; after a tagged OK to STARTTLS
//! the connection is encrypted and parsing stops.

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};
use weir_core::{Anomaly, Direction, StreamEvent, Timestamp};

use crate::emit::{AnomalyCounter, AppEvent, Emit, ParserException};
use crate::files::FileSink;
use crate::mailstore::MailSink;
use crate::mime::lines::{Line, LineBuf};
use crate::mime::{self, EmailInfo, MailProto, MessageBuffer, MessageCtx, MimeConfig};

/// Longest line read between literals. Real command and response lines are far shorter
/// (RFC 7162 suggests clients accept 8192 octets).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Message transactions kept for detection until taken.
pub const MAX_RETAINED_TRANSACTIONS: usize = 32;

/// Each distinct anomaly is emitted at most this many times per flow; all are counted.
pub const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

/// Longest tag, mailbox or item name kept.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Whether the first bytes of a direction look like IMAP: the server's untagged greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Imap,
    NoMatch,
    NeedMore,
}

pub fn probe(dir: Direction, first_bytes: &[u8]) -> Probe {
    if dir == Direction::ToServer {
        return Probe::NoMatch;
    }
    for w in [&b"* OK"[..], b"* PREAUTH", b"* BYE"] {
        let n = first_bytes.len().min(w.len());
        if first_bytes[..n].eq_ignore_ascii_case(&w[..n]) {
            return if n == w.len() { Probe::Imap } else { Probe::NeedMore };
        }
    }
    Probe::NoMatch
}

/// One message seen in a FETCH response or an APPEND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapTx {
    pub tx_id: u64,
    /// `FETCH`, `UID FETCH` or `APPEND`.
    pub command: String,
    /// The fetch item (`BODY[]`, `RFC822`, `BODY[HEADER]`, ...), for FETCH responses.
    pub item: Option<String>,
    /// The message sequence number of a FETCH response.
    pub msg_seq: Option<u64>,
    /// The mailbox of an APPEND.
    pub mailbox: Option<String>,
    pub direction: Direction,
    pub email: EmailInfo,
    pub message_sha256: [u8; 32],
    /// `file.data`: the first bytes of each attachment.
    pub file_data: Vec<Vec<u8>>,
}

/// What a literal being read is.
#[derive(Clone, Debug)]
enum Literal {
    Skip,
    /// A message, and what its record says about it.
    Message {
        buf: MessageBuffer,
        command: String,
        item: Option<String>,
        msg_seq: Option<u64>,
        mailbox: Option<String>,
        partial: bool,
    },
}

/// One direction's reader.
#[derive(Default)]
struct Side {
    lines: LineBuf,
    /// Bytes of the current literal still to come.
    literal_left: u64,
    literal: Option<Literal>,
    /// The start of a line that a literal interrupted (the command or response so far).
    line_so_far: Vec<u8>,
}

/// Per-flow IMAP state.
pub struct ImapState {
    mime: MimeConfig,
    sides: [Side; 2],
    /// The most recent FETCH-type command, which untagged FETCH responses answer.
    last_fetch: Option<String>,
    /// Tag of an AUTHENTICATE in progress: client lines until its tagged response are
    /// credentials.
    auth_tag: Option<Vec<u8>>,
    starttls_tag: Option<Vec<u8>>,
    next_tx_id: u64,
    next_file_id: u64,
    finished: std::collections::VecDeque<ImapTx>,
    stopped: bool,
    anomaly_counts: AnomalyCounter,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

struct Io<'a> {
    ts: Timestamp,
    files: &'a mut dyn FileSink,
    mails: &'a mut dyn MailSink,
    out: &'a mut Emit,
}

impl ImapState {
    pub fn new(mime: &MimeConfig) -> Self {
        ImapState {
            mime: mime.clone(),
            sides: [Side::default(), Side::default()],
            last_fetch: None,
            auth_tag: None,
            starttls_tag: None,
            next_tx_id: 0,
            next_file_id: 1,
            finished: Default::default(),
            stopped: false,
            anomaly_counts: AnomalyCounter::default(),
            error_raised: false,
        }
    }

    /// Messages logged since the last call, oldest first (for detection).
    pub fn take_finished(&mut self) -> Vec<ImapTx> {
        self.finished.drain(..).collect()
    }

    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    /// Whether parsing stopped (STARTTLS accepted).
    pub fn is_encrypted(&self) -> bool {
        self.stopped
    }

    pub fn on_stream(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        files: &mut dyn FileSink,
        mails: &mut dyn MailSink,
        out: &mut Emit,
    ) {
        let mut io = Io { ts, files, mails, out };
        let d = dir.index();
        match ev {
            StreamEvent::End => {
                // A message literal cut by the end of the connection is kept, marked.
                if let Some(Literal::Message { mut buf, command, item, msg_seq, mailbox, partial }) =
                    self.sides[d].literal.take()
                {
                    buf.gap(self.sides[d].literal_left);
                    self.sides[d].literal_left = 0;
                    self.deliver(dir, buf, command, item, msg_seq, mailbox, partial, &mut io);
                }
            }
            _ if self.stopped => {}
            StreamEvent::Gap { len } => {
                let side = &mut self.sides[d];
                if side.literal_left > 0 {
                    let lost = len.min(side.literal_left);
                    side.literal_left -= lost;
                    if let Some(Literal::Message { buf, .. }) = side.literal.as_mut() {
                        buf.gap(lost);
                    }
                    if side.literal_left == 0 {
                        self.end_literal(dir, &mut io);
                    }
                    if len > lost {
                        self.sides[d].lines.reset();
                    }
                } else {
                    side.lines.reset();
                    side.line_so_far.clear();
                }
            }
            StreamEvent::Data(data) => self.on_data(dir, data, &mut io),
        }
        for side in &mut self.sides {
            if let Some(Literal::Message { buf, .. }) = side.literal.as_mut() {
                buf.report_budget_refusal(ts, io.out);
            }
        }
    }

    fn raise_error(&mut self, io: &mut Io<'_>) {
        if !std::mem::replace(&mut self.error_raised, true) {
            io.out.exception(io.ts, ParserException::Error);
        }
    }

    fn anomaly(&mut self, io: &mut Io<'_>, event: &'static str) {
        let n = self.anomaly_counts.raise(event);
        if n <= MAX_ANOMALY_RECORDS_PER_EVENT {
            io.out.anomaly(io.ts, Anomaly::app_layer(event));
        }
    }

    fn on_data(&mut self, dir: Direction, mut data: &[u8], io: &mut Io<'_>) {
        let d = dir.index();
        while !data.is_empty() && !self.stopped {
            let side = &mut self.sides[d];
            if side.literal_left > 0 {
                let take = usize::try_from(side.literal_left).unwrap_or(usize::MAX).min(data.len());
                if let Some(Literal::Message { buf, .. }) = side.literal.as_mut() {
                    buf.push(&data[..take]);
                }
                side.literal_left -= take as u64;
                data = &data[take..];
                if side.literal_left == 0 {
                    self.end_literal(dir, io);
                }
                continue;
            }
            match side.lines.next_line(&mut data, MAX_LINE_BYTES) {
                Line::Complete(line) => self.on_line(dir, line, io),
                Line::TooLong => {
                    self.sides[d].line_so_far.clear();
                    self.anomaly(io, "imap.too_long_line");
                }
                Line::Partial => {}
            }
        }
    }

    fn end_literal(&mut self, dir: Direction, io: &mut Io<'_>) {
        if let Some(Literal::Message { buf, command, item, msg_seq, mailbox, partial }) =
            self.sides[dir.index()].literal.take()
        {
            self.deliver(dir, buf, command, item, msg_seq, mailbox, partial, io);
        }
    }

    /// A line up to its end or up to a literal announcement.
    fn on_line(&mut self, dir: Direction, line: Vec<u8>, io: &mut Io<'_>) {
        let d = dir.index();
        let continuing = !self.sides[d].line_so_far.is_empty();
        let mut whole = std::mem::take(&mut self.sides[d].line_so_far);
        if whole.len() + line.len() <= MAX_LINE_BYTES {
            whole.extend_from_slice(&line);
        }
        if let Some(len) = literal_len(&line) {
            // The statement goes on after the literal; what precedes it says what it is.
            let literal = self.classify_literal(dir, &whole);
            let side = &mut self.sides[d];
            side.line_so_far = whole;
            side.literal_left = len;
            side.literal = Some(literal);
            if len == 0 {
                self.end_literal(dir, io);
            }
            return;
        }
        match dir {
            Direction::ToServer => self.command_done(&whole, continuing),
            Direction::ToClient => self.response_done(&whole, io),
        }
    }

    fn classify_literal(&mut self, dir: Direction, so_far: &[u8]) -> Literal {
        let words: Vec<&[u8]> = so_far.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect();
        match dir {
            Direction::ToServer => {
                // `tag APPEND mailbox [(flags)] [date] {n}`: the first literal is the message.
                let cmd = words.get(1).map(|w| w.to_ascii_uppercase());
                if cmd.as_deref() == Some(b"APPEND") && words.len() >= 3 && count_literals(so_far) == 1 {
                    Literal::Message {
                        buf: MessageBuffer::for_config(&self.mime),
                        command: "APPEND".into(),
                        item: None,
                        msg_seq: None,
                        mailbox: words.get(2).map(|m| token(trim_quotes(m))),
                        partial: false,
                    }
                } else {
                    Literal::Skip
                }
            }
            Direction::ToClient => {
                // `* n FETCH (... ITEM {n}`: the item is the word before the literal.
                let is_fetch =
                    words.first() == Some(&&b"*"[..]) && words.get(2).is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH"));
                let Some(item) = words.len().checked_sub(2).and_then(|i| words.get(i)) else { return Literal::Skip };
                let item = item.trim_ascii_start().strip_prefix(b"(").unwrap_or(item).to_ascii_uppercase();
                let (whole, header) = fetch_item_kind(&item);
                if !is_fetch || !(whole || header) {
                    return Literal::Skip;
                }
                Literal::Message {
                    buf: MessageBuffer::for_config(&self.mime),
                    command: self.last_fetch.clone().unwrap_or_else(|| "FETCH".into()),
                    item: Some(token(&item)),
                    msg_seq: words.get(1).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| n.parse().ok()),
                    mailbox: None,
                    partial: header,
                }
            }
        }
    }

    fn command_done(&mut self, line: &[u8], continuing: bool) {
        if self.auth_tag.is_some() && !continuing {
            // A SASL response: credentials, neither parsed nor kept.
            return;
        }
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let Some(tag) = words.next() else { return };
        let Some(cmd) = words.next().map(|w| w.to_ascii_uppercase()) else { return };
        match cmd.as_slice() {
            b"FETCH" => self.last_fetch = Some("FETCH".into()),
            b"UID" if words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH")) => {
                self.last_fetch = Some("UID FETCH".into())
            }
            b"AUTHENTICATE" => self.auth_tag = Some(tag.to_vec()),
            b"STARTTLS" => self.starttls_tag = Some(tag.to_vec()),
            _ => {}
        }
    }

    fn response_done(&mut self, line: &[u8], io: &mut Io<'_>) {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let Some(tag) = words.next() else { return };
        if tag == b"*" || tag == b"+" {
            return;
        }
        let status = words.next().map(|w| w.to_ascii_uppercase());
        if self.auth_tag.as_deref() == Some(tag) {
            self.auth_tag = None;
        }
        if self.starttls_tag.as_deref() == Some(tag) {
            self.starttls_tag = None;
            if status.as_deref() == Some(b"OK") {
                self.stopped = true;
            }
        }
        if !matches!(status.as_deref(), Some(b"OK" | b"NO" | b"BAD")) {
            self.anomaly(io, "imap.invalid_response");
            // A tagged line without OK/NO/BAD: the server stream is not IMAP as the parser
            // reads it (literal framing rests on reading its lines right), the app-layer error
            // (once per flow). The line is skipped as before.
            self.raise_error(io);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        dir: Direction,
        buf: MessageBuffer,
        command: String,
        item: Option<String>,
        msg_seq: Option<u64>,
        mailbox: Option<String>,
        partial: bool,
        io: &mut Io<'_>,
    ) {
        let tx_id = self.next_tx_id;
        self.next_tx_id += 1;
        let mut imap = Map::new();
        imap.insert("command".into(), command.clone().into());
        if let Some(i) = &item {
            imap.insert("item".into(), i.clone().into());
        }
        if let Some(n) = msg_seq {
            imap.insert("msg_seq".into(), n.into());
        }
        if let Some(m) = &mailbox {
            imap.insert("mailbox".into(), m.clone().into());
        }
        let imap = Value::Object(imap);
        let ctx = MessageCtx {
            ts: io.ts,
            tx_id,
            direction: dir,
            proto: MailProto::Imap,
            proto_object: ("imap", imap.clone()),
            next_file_id: &mut self.next_file_id,
            partial,
            envelope_from: None,
            envelope_to: &[],
        };
        let d = mime::deliver(&buf, &self.mime, ctx, io.files, io.mails, io.out);
        let mut fields = Map::new();
        fields.insert("tx_id".into(), tx_id.into());
        fields.insert("imap".into(), imap);
        fields.insert("email".into(), d.info.eve());
        io.out.event(AppEvent { ts: io.ts, event_type: "imap", tx_id: Some(tx_id), direction: dir, fields });
        if self.finished.len() >= MAX_RETAINED_TRANSACTIONS {
            self.finished.pop_front();
        }
        self.finished.push_back(ImapTx {
            tx_id,
            command,
            item,
            msg_seq,
            mailbox,
            direction: dir,
            email: d.info,
            message_sha256: d.sha256,
            file_data: d.file_data,
        });
    }
}

/// `{123}` or `{123+}` at the end of a line.
fn literal_len(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn count_literals(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b == b'{').count()
}

/// (a whole message, only its header) for a FETCH item name, upper-cased.
fn fetch_item_kind(item: &[u8]) -> (bool, bool) {
    // `BODY[]<0>` is a partial fetch from the start; it is still the message as far as it goes.
    let base = match item.iter().position(|&b| b == b'<') {
        Some(p) if item.ends_with(b">") => &item[..p],
        _ => item,
    };
    let whole = matches!(base, b"BODY[]" | b"RFC822" | b"BINARY[]" | b"BODY.PEEK[]");
    let header = matches!(base, b"BODY[HEADER]" | b"RFC822.HEADER" | b"BODY.PEEK[HEADER]");
    (whole, header)
}

fn trim_quotes(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\"").and_then(|b| b.strip_suffix(b"\"")).unwrap_or(b)
}

fn token(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_TOKEN_BYTES)]).into_owned()
}
