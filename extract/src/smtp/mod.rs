//! SMTP (RFC 5321): commands and replies with pipelining, the envelope, DATA (dot-unstuffed)
//! and BDAT (RFC 3030) messages, RSET, AUTH and STARTTLS.
//!
//! [`SmtpState`] consumes both directions of one connection. Commands are matched to replies
//! in order (pipelining, RFC 2920). Where the meaning of the client's next bytes depends on a
//! reply (DATA, AUTH, STARTTLS), those bytes are held (at most [`MAX_HELD_CLIENT_BYTES`]) until
//! the reply says what they are: a rejected DATA carries no message, lines after a `334` are
//! credentials and are never logged, and after a `220` to STARTTLS the rest of the connection is
//! encrypted and parsing stops cleanly.
//!
//! A transaction is one envelope and at most one message; it is logged as an EVE `smtp` record
//! (`smtp` and `email` objects as Suricata 8 writes them) when its message ends, when an
//! accepted HELO/EHLO or a new MAIL starts over, or when the connection ends. Messages go
//! through [`crate::mime::deliver`].

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde_json::{Map, Value};
use weir_core::{Anomaly, Direction, StreamEvent, Timestamp};

use crate::emit::{AnomalyCounter, AppEvent, Emit, ParserException};
use crate::files::FileSink;
use crate::mailstore::MailSink;
use crate::mime::lines::{DotUnstuffer, Line, LineBuf};
use crate::mime::{self, EmailInfo, MailProto, MessageBuffer, MessageCtx, MimeConfig};

/// Longest command or reply line read (RFC 5321 allows 512; real clients stay far below this).
pub const MAX_LINE_BYTES: usize = 4096;

/// Commands waiting for their reply. A client pipelining more than this without replies is
/// not a mail client; the oldest are forgotten.
pub const MAX_PENDING_COMMANDS: usize = 256;

/// Recipients kept per transaction; further ones are counted and dropped.
pub const MAX_RECIPIENTS: usize = 1024;

/// Client bytes held while waiting for the reply that decides what they are (DATA, AUTH,
/// STARTTLS). A client that keeps sending past this without a reply is taken at its word:
/// after DATA the bytes are the message.
pub const MAX_HELD_CLIENT_BYTES: usize = 64 * 1024;

/// Finished transactions kept for detection until taken.
pub const MAX_RETAINED_TRANSACTIONS: usize = 32;

/// Each distinct anomaly is emitted at most this many times per flow; all are counted.
pub const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

/// Longest envelope or HELO argument kept.
pub const MAX_ARGUMENT_BYTES: usize = 1024;

/// Whether the first bytes of a direction look like SMTP: the server's `220` greeting, or a
/// client's HELO/EHLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Smtp,
    NoMatch,
    NeedMore,
}

pub fn probe(dir: Direction, first_bytes: &[u8]) -> Probe {
    let want: &[&[u8]] = match dir {
        Direction::ToClient => &[b"220 ", b"220-"],
        Direction::ToServer => &[b"EHLO ", b"HELO "],
    };
    let n = first_bytes.len().min(5);
    let mut could_be = false;
    for w in want {
        if first_bytes.len() >= w.len() && first_bytes[..w.len()].eq_ignore_ascii_case(w) {
            return Probe::Smtp;
        }
        could_be |= first_bytes[..n.min(w.len())].eq_ignore_ascii_case(&w[..n.min(w.len())]);
    }
    if could_be { Probe::NeedMore } else { Probe::NoMatch }
}

/// One SMTP transaction: an envelope and at most one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpTx {
    pub tx_id: u64,
    /// The `smtp.helo` buffer.
    pub helo: Option<String>,
    /// The `smtp.mail_from` buffer: the MAIL argument as sent, e.g. `<a@b>`.
    pub mail_from: Option<String>,
    /// The `smtp.rcpt_to` buffers.
    pub rcpt_to: Vec<String>,
    /// The message's `email` object, when a message was seen.
    pub email: Option<EmailInfo>,
    pub message_sha256: Option<[u8; 32]>,
    /// `file.data`: the first bytes of each attachment.
    pub file_data: Vec<Vec<u8>>,
}

impl SmtpTx {
    fn has_content(&self) -> bool {
        self.helo.is_some() || self.mail_from.is_some() || !self.rcpt_to.is_empty() || self.email.is_some()
    }

    /// The EVE `smtp` object.
    pub fn smtp_object(&self) -> Value {
        let mut m = Map::new();
        if let Some(h) = &self.helo {
            m.insert("helo".into(), h.clone().into());
        }
        if let Some(f) = &self.mail_from {
            m.insert("mail_from".into(), f.clone().into());
        }
        if !self.rcpt_to.is_empty() {
            m.insert("rcpt_to".into(), self.rcpt_to.clone().into());
        }
        Value::Object(m)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    /// `resets`: an envelope was open when it was sent, which acceptance ends.
    Helo {
        resets: bool,
    },
    Mail,
    Rcpt,
    Data,
    /// The end of a DATA message (`.`) gets a reply of its own (a BDAT chunk does not).
    MessageEnd,
    Bdat,
    Rset,
    Auth,
    StartTls,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Commands,
    /// Waiting for the reply to this command before the next bytes can be read.
    Hold(Cmd),
    Data,
    /// BDAT chunk bytes still to come, and whether it is the last chunk.
    Bdat {
        left: u64,
        last: bool,
    },
    /// The next line is an AUTH response (credentials): dropped unread.
    AuthLine,
    /// Encrypted after STARTTLS, or given up: nothing more is parsed.
    Stopped,
}

/// Per-flow SMTP state.
pub struct SmtpState {
    mime: MimeConfig,
    client: Client,
    client_lines: LineBuf,
    server_lines: LineBuf,
    held: Vec<u8>,
    /// Client bytes lost while holding.
    held_gap: u64,
    pending: VecDeque<(Cmd, Option<String>)>,
    unstuffer: DotUnstuffer,
    message: Option<MessageBuffer>,
    /// The greeting or HELO name, carried into each new transaction.
    helo: Option<String>,
    tx: SmtpTx,
    next_tx_id: u64,
    next_file_id: u64,
    finished: VecDeque<SmtpTx>,
    /// A multi-line reply is in progress.
    in_multiline_reply: bool,
    stopped: bool,
    ended: [bool; 2],
    anomaly_counts: AnomalyCounter,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

impl SmtpState {
    pub fn new(mime: &MimeConfig) -> Self {
        SmtpState {
            mime: mime.clone(),
            client: Client::Commands,
            client_lines: LineBuf::default(),
            server_lines: LineBuf::default(),
            held: Vec::new(),
            held_gap: 0,
            pending: VecDeque::new(),
            unstuffer: DotUnstuffer::default(),
            message: None,
            helo: None,
            tx: SmtpTx::default(),
            next_tx_id: 0,
            next_file_id: 1,
            finished: VecDeque::new(),
            in_multiline_reply: false,
            stopped: false,
            ended: [false; 2],
            anomaly_counts: AnomalyCounter::default(),
            error_raised: false,
        }
    }

    /// Transactions logged since the last call, oldest first (for detection).
    pub fn take_finished(&mut self) -> Vec<SmtpTx> {
        self.finished.drain(..).collect()
    }

    /// The transaction in progress.
    pub fn current(&self) -> &SmtpTx {
        &self.tx
    }

    /// How often an anomaly (by event name) was seen on this flow.
    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    /// Whether parsing stopped (STARTTLS accepted).
    pub fn is_encrypted(&self) -> bool {
        self.stopped
    }

    /// Consumes one event of one direction's stream.
    pub fn on_stream(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        files: &mut dyn FileSink,
        mails: &mut dyn MailSink,
        out: &mut Emit,
    ) {
        if self.ended[dir.index()] {
            return;
        }
        let mut io = Io { ts, files, mails, out };
        match (dir, ev) {
            (_, StreamEvent::End) => {
                self.ended[dir.index()] = true;
                if dir == Direction::ToServer || self.ended == [true, true] {
                    self.finish(&mut io);
                }
            }
            _ if self.stopped => {}
            (Direction::ToServer, StreamEvent::Data(d)) => self.client_data(d, &mut io),
            (Direction::ToClient, StreamEvent::Data(d)) => self.server_data(d, &mut io),
            (Direction::ToServer, StreamEvent::Gap { len }) => self.client_gap(len, &mut io),
            (Direction::ToClient, StreamEvent::Gap { .. }) => {
                self.server_lines.reset();
                self.in_multiline_reply = false;
            }
        }
        if let Some(m) = self.message.as_mut() {
            m.report_budget_refusal(ts, io.out);
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

    fn client_data(&mut self, mut data: &[u8], io: &mut Io<'_>) {
        while !data.is_empty() && !self.stopped {
            match self.client {
                Client::Stopped => return,
                Client::Hold(_) => {
                    let room = MAX_HELD_CLIENT_BYTES.saturating_sub(self.held.len());
                    let take = room.min(data.len());
                    self.held.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.held.len() >= MAX_HELD_CLIENT_BYTES {
                        self.anomaly(io, "smtp.unable_to_match_reply_with_request");
                        self.decide_unanswered(io);
                    }
                }
                Client::Data => {
                    let msg = self.message.get_or_insert_with(|| MessageBuffer::for_config(&self.mime));
                    match self.unstuffer.feed(data, &mut |b| msg.push(b)) {
                        Some(used) => {
                            data = &data[used..];
                            self.client = Client::Commands;
                            self.push_pending(Cmd::MessageEnd, None, io);
                            self.end_message(io);
                        }
                        None => data = &[],
                    }
                }
                Client::Bdat { left, last } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let msg = self.message.get_or_insert_with(|| MessageBuffer::for_config(&self.mime));
                    msg.push(&data[..take]);
                    data = &data[take..];
                    let left = left - take as u64;
                    if left == 0 {
                        self.client = Client::Commands;
                        if last {
                            // The BDAT command's own reply covers the end of the message.
                            self.end_message(io);
                        }
                    } else {
                        self.client = Client::Bdat { left, last };
                    }
                }
                Client::Commands | Client::AuthLine => match self.client_lines.next_line(&mut data, MAX_LINE_BYTES) {
                    Line::Complete(line) => {
                        if self.client == Client::AuthLine {
                            // Credentials: neither parsed nor kept.
                            self.client = Client::Hold(Cmd::Auth);
                            self.push_pending(Cmd::Auth, None, io);
                        } else {
                            self.command(&line, io);
                        }
                    }
                    Line::TooLong => self.anomaly(io, "smtp.max_command_line_len_exceeded"),
                    Line::Partial => {}
                },
            }
        }
    }

    /// A held command got no reply within [`MAX_HELD_CLIENT_BYTES`]: act as if it was accepted.
    fn decide_unanswered(&mut self, io: &mut Io<'_>) {
        if let Client::Hold(cmd) = self.client {
            if let Some(pos) = self.pending.iter().position(|(c, _)| *c == cmd) {
                self.pending.remove(pos);
            }
            let code = match cmd {
                Cmd::Data => 354,
                Cmd::Auth => 235,
                _ => 220,
            };
            self.apply_hold_reply(cmd, code, io);
        }
    }

    fn push_pending(&mut self, cmd: Cmd, arg: Option<String>, io: &mut Io<'_>) {
        if self.pending.len() >= MAX_PENDING_COMMANDS {
            self.pending.pop_front();
            self.anomaly(io, "smtp.invalid_pipelined_sequence");
        }
        self.pending.push_back((cmd, arg));
    }

    /// Starts a new transaction when the current one already holds a message.
    fn fresh_tx(&mut self, io: &mut Io<'_>) {
        if self.tx.email.is_some() {
            self.log_tx(io);
        }
    }

    fn command(&mut self, line: &[u8], io: &mut Io<'_>) {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = line[..verb_end].to_ascii_uppercase();
        let arg = line[verb_end..].trim_ascii();
        match verb.as_slice() {
            b"HELO" | b"EHLO" => {
                let name = text(arg);
                if self.tx.helo.is_none() && !name.is_empty() {
                    self.tx.helo = Some(name.clone());
                }
                let resets = self.tx.mail_from.is_some() || !self.tx.rcpt_to.is_empty() || self.tx.email.is_some();
                self.push_pending(Cmd::Helo { resets }, Some(name), io);
            }
            b"MAIL" => {
                self.fresh_tx(io);
                let from = strip_keyword(arg, b"FROM:");
                self.tx.mail_from = Some(text(from));
                self.push_pending(Cmd::Mail, None, io);
            }
            b"RCPT" => {
                self.fresh_tx(io);
                let to = strip_keyword(arg, b"TO:");
                if self.tx.rcpt_to.len() < MAX_RECIPIENTS {
                    self.tx.rcpt_to.push(text(to));
                } else {
                    self.anomaly(io, "smtp.max_recipients_exceeded");
                }
                self.push_pending(Cmd::Rcpt, None, io);
            }
            b"DATA" => {
                self.push_pending(Cmd::Data, None, io);
                self.client = Client::Hold(Cmd::Data);
            }
            b"BDAT" => {
                let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
                let size = words.next().and_then(|w| std::str::from_utf8(w).ok()).and_then(|w| w.parse::<u64>().ok());
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"LAST"));
                match size {
                    Some(left) => {
                        self.fresh_tx(io);
                        self.push_pending(Cmd::Bdat, None, io);
                        self.client = if left == 0 {
                            if last {
                                self.end_message(io);
                            }
                            Client::Commands
                        } else {
                            Client::Bdat { left, last }
                        };
                    }
                    None => {
                        self.anomaly(io, "smtp.bdat_chunk_len_exceeded");
                        // The chunk that follows has no length the parser can frame: its bytes
                        // will be read as commands, the app-layer error (once per flow).
                        self.raise_error(io);
                        self.push_pending(Cmd::Other, None, io);
                    }
                }
            }
            b"RSET" => {
                // Applied at once: pipelined commands after it belong to a new envelope.
                if self.tx.email.is_none() {
                    self.tx.mail_from = None;
                    self.tx.rcpt_to.clear();
                }
                self.message = None;
                self.push_pending(Cmd::Rset, None, io);
            }
            b"AUTH" => {
                self.push_pending(Cmd::Auth, None, io);
                self.client = Client::Hold(Cmd::Auth);
            }
            b"STARTTLS" => {
                self.push_pending(Cmd::StartTls, None, io);
                self.client = Client::Hold(Cmd::StartTls);
            }
            _ => self.push_pending(Cmd::Other, None, io),
        }
    }

    fn server_data(&mut self, mut data: &[u8], io: &mut Io<'_>) {
        while !data.is_empty() && !self.stopped {
            match self.server_lines.next_line(&mut data, MAX_LINE_BYTES) {
                Line::Complete(line) => self.reply_line(&line, io),
                Line::TooLong => self.anomaly(io, "smtp.max_reply_line_len_exceeded"),
                Line::Partial => {}
            }
        }
    }

    fn reply_line(&mut self, line: &[u8], io: &mut Io<'_>) {
        let code = match line.get(..3).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse::<u16>().ok()) {
            Some(c) if (200..600).contains(&c) => c,
            _ => {
                self.anomaly(io, "smtp.invalid_reply");
                // Replies decide how client bytes are read (DATA, BDAT, AUTH, STARTTLS); a
                // server line without a reply code is not SMTP any more: the app-layer error
                // (once per flow), as Suricata's SMTP parser. The line is skipped as before.
                self.raise_error(io);
                return;
            }
        };
        if line.get(3) == Some(&b'-') {
            self.in_multiline_reply = true;
            return;
        }
        self.in_multiline_reply = false;
        let Some((cmd, arg)) = self.pending.pop_front() else {
            // The greeting, or a reply to something not seen.
            return;
        };
        let ok = (200..400).contains(&code);
        match cmd {
            // An accepted HELO/EHLO ends the transaction in progress (RFC 5321 4.1.4); a
            // rejected one changes nothing.
            Cmd::Helo { resets } if (200..300).contains(&code) => {
                if resets && self.tx.has_content() {
                    self.log_tx(io);
                }
                if let Some(name) = arg.filter(|n| !n.is_empty()) {
                    self.helo = Some(name.clone());
                    self.tx.helo = Some(name);
                }
            }
            Cmd::Data | Cmd::Auth | Cmd::StartTls if self.client == Client::Hold(cmd) => {
                self.apply_hold_reply(cmd, code, io);
            }
            Cmd::Data if !ok => self.anomaly(io, "smtp.data_command_rejected"),
            _ => {}
        }
    }

    /// The reply that decides what the held client bytes are.
    fn apply_hold_reply(&mut self, cmd: Cmd, code: u16, io: &mut Io<'_>) {
        self.client = match (cmd, code) {
            (Cmd::Data, 354) => {
                self.fresh_tx(io);
                let mut message = MessageBuffer::for_config(&self.mime);
                self.unstuffer = DotUnstuffer::default();
                if self.held_gap > 0 {
                    message.gap(self.held_gap);
                    self.unstuffer.gap();
                }
                self.message = Some(message);
                Client::Data
            }
            (Cmd::Data, _) => {
                self.anomaly(io, "smtp.data_command_rejected");
                Client::Commands
            }
            (Cmd::Auth, 334) => Client::AuthLine,
            (Cmd::StartTls, 220) => {
                self.stopped = true;
                self.held.clear();
                return;
            }
            (Cmd::StartTls, _) => {
                self.anomaly(io, "smtp.tls_rejected");
                Client::Commands
            }
            _ => Client::Commands,
        };
        self.held_gap = 0;
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            self.client_data(&held, io);
        }
    }

    fn client_gap(&mut self, len: u64, io: &mut Io<'_>) {
        match self.client {
            Client::Data => {
                if let Some(m) = self.message.as_mut() {
                    m.gap(len);
                }
                self.unstuffer.gap();
            }
            Client::Bdat { left, last } => {
                if let Some(m) = self.message.as_mut() {
                    m.gap(len.min(left));
                }
                if len >= left {
                    // Where the next command starts is unknown; resync on a line.
                    self.client = Client::Commands;
                    self.client_lines.reset();
                    if last {
                        self.end_message(io);
                    }
                } else {
                    self.client = Client::Bdat { left: left - len, last };
                }
            }
            Client::Hold(_) => {
                // Still waiting for the reply: what was held and lost may have been the start
                // of a message, which will then be marked truncated.
                self.held.clear();
                self.client_lines.reset();
                self.held_gap = self.held_gap.saturating_add(len);
            }
            _ => {
                self.client_lines.reset();
                if self.client == Client::AuthLine {
                    self.client = Client::Commands;
                }
            }
        }
    }

    /// A message ended (its terminator, BDAT LAST, or the connection's end): deliver it and
    /// log the transaction.
    fn end_message(&mut self, io: &mut Io<'_>) {
        let Some(msg) = self.message.take() else { return };
        let ctx = MessageCtx {
            ts: io.ts,
            tx_id: self.tx.tx_id,
            direction: Direction::ToServer,
            proto: MailProto::Smtp,
            proto_object: ("smtp", self.tx.smtp_object()),
            next_file_id: &mut self.next_file_id,
            partial: false,
            envelope_from: self.tx.mail_from.as_deref(),
            envelope_to: &self.tx.rcpt_to,
        };
        let d = mime::deliver(&msg, &self.mime, ctx, io.files, io.mails, io.out);
        self.tx.email = Some(d.info);
        self.tx.message_sha256 = Some(d.sha256);
        self.tx.file_data = d.file_data;
        self.log_tx(io);
    }

    /// Emits the transaction's `smtp` record and starts the next one.
    fn log_tx(&mut self, io: &mut Io<'_>) {
        let next = SmtpTx {
            tx_id: self.next_tx_id + 1,
            helo: self.helo.clone().or_else(|| self.tx.helo.clone()),
            ..Default::default()
        };
        let tx = std::mem::replace(&mut self.tx, next);
        self.next_tx_id += 1;
        let mut fields = Map::new();
        fields.insert("tx_id".into(), tx.tx_id.into());
        fields.insert("smtp".into(), tx.smtp_object());
        if let Some(email) = &tx.email {
            fields.insert("email".into(), email.eve());
        }
        io.out.event(AppEvent {
            ts: io.ts,
            event_type: "smtp",
            tx_id: Some(tx.tx_id),
            direction: Direction::ToServer,
            fields,
        });
        if self.finished.len() >= MAX_RETAINED_TRANSACTIONS {
            self.finished.pop_front();
        }
        self.finished.push_back(tx);
    }

    fn finish(&mut self, io: &mut Io<'_>) {
        if matches!(self.client, Client::Hold(_)) && !self.held.is_empty() && !self.stopped {
            // The reply never came (a one-sided capture): read the held bytes as accepted.
            self.decide_unanswered(io);
        }
        if self.message.is_some() {
            if let Some(m) = self.message.as_mut() {
                // The terminator never came: the message may be incomplete.
                if matches!(self.client, Client::Data | Client::Bdat { .. }) {
                    m.gap(0);
                }
            }
            self.end_message(io);
        } else if self.tx.has_content() && !self.tx_is_only_carried_helo() {
            self.log_tx(io);
        }
        self.client = Client::Stopped;
        self.stopped = true;
    }

    /// A transaction that holds nothing but the HELO carried over from the last one was never
    /// really started.
    fn tx_is_only_carried_helo(&self) -> bool {
        self.next_tx_id > 0 && self.tx.mail_from.is_none() && self.tx.rcpt_to.is_empty() && self.tx.email.is_none()
    }
}

/// The sinks of one call.
struct Io<'a> {
    ts: Timestamp,
    files: &'a mut dyn FileSink,
    mails: &'a mut dyn MailSink,
    out: &'a mut Emit,
}

fn text(b: &[u8]) -> String {
    let b = &b[..b.len().min(MAX_ARGUMENT_BYTES)];
    String::from_utf8_lossy(b).into_owned()
}

/// `FROM:<a@b> SIZE=10` -> `<a@b>`: tolerant of case and of spaces around the colon; ESMTP
/// parameters after the path (RFC 1870 SIZE, RFC 3461 NOTIFY, ...) are not part of it, as
/// Suricata logs it.
fn strip_keyword<'a>(arg: &'a [u8], keyword: &[u8]) -> &'a [u8] {
    let word = &keyword[..keyword.len() - 1];
    let path = if arg.len() >= word.len() && arg[..word.len()].eq_ignore_ascii_case(word) {
        let rest = arg[word.len()..].trim_ascii_start();
        rest.strip_prefix(b":").unwrap_or(rest).trim_ascii()
    } else {
        arg
    };
    let end = path.iter().position(|&b| b == b' ').unwrap_or(path.len());
    &path[..end]
}
