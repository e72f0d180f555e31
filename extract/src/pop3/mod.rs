//! POP3 (RFC 1939): RETR and TOP responses are messages.
//!
//! [`Pop3State`] matches commands to responses in order (RFC 2449 PIPELINING). A `+OK` to RETR,
//! TOP, LIST, UIDL or CAPA is followed by a dot-stuffed multi-line body ending in `.`; the
//! bodies of RETR and TOP are unstuffed and delivered through [`crate::mime::deliver`] (a TOP
//! body is only the header and a few lines, so its message is marked truncated). Each message
//! is logged as an EVE `pop3` record with the `email` object (see `docs/eve-mail.md`). PASS and
//! AUTH arguments and SASL exchanges are never logged; after an accepted STLS the connection is
//! encrypted and parsing stops.

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

/// Longest command or status line read (RFC 1939 allows 255 and 512 octets).
pub const MAX_LINE_BYTES: usize = 4096;

/// Commands waiting for their response; the oldest are forgotten beyond it.
pub const MAX_PENDING_COMMANDS: usize = 256;

/// Message transactions kept for detection until taken.
pub const MAX_RETAINED_TRANSACTIONS: usize = 32;

/// Each distinct anomaly is emitted at most this many times per flow; all are counted.
pub const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

/// Longest command argument or user name kept.
pub const MAX_ARGUMENT_BYTES: usize = 256;

/// Whether the first bytes of a direction look like POP3: the server's `+OK` greeting or a
/// client's first command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Pop3,
    NoMatch,
    NeedMore,
}

pub fn probe(dir: Direction, first_bytes: &[u8]) -> Probe {
    let want: &[&[u8]] = match dir {
        Direction::ToClient => &[b"+OK"],
        Direction::ToServer => &[b"CAPA", b"USER ", b"APOP ", b"AUTH ", b"STLS"],
    };
    let mut could_be = false;
    for w in want {
        let n = first_bytes.len().min(w.len());
        if first_bytes[..n].eq_ignore_ascii_case(&w[..n]) {
            if n == w.len() {
                return Probe::Pop3;
            }
            could_be = true;
        }
    }
    if could_be { Probe::NeedMore } else { Probe::NoMatch }
}

/// One retrieved message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pop3Tx {
    pub tx_id: u64,
    /// `RETR` or `TOP`.
    pub command: &'static str,
    pub argument: String,
    pub user: Option<String>,
    pub email: EmailInfo,
    pub message_sha256: [u8; 32],
    /// `file.data`: the first bytes of each attachment.
    pub file_data: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Retr,
    Top,
    /// Another command whose `+OK` starts a multi-line body.
    MultiLine,
    SingleLine,
    Auth,
    Stls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// Reading status lines.
    Status,
    /// In a multi-line body; `deliver` for RETR/TOP.
    Body { cmd: Cmd },
}

/// Per-flow POP3 state.
pub struct Pop3State {
    mime: MimeConfig,
    client_lines: LineBuf,
    server_lines: LineBuf,
    pending: VecDeque<(Cmd, String)>,
    server: Server,
    unstuffer: DotUnstuffer,
    message: Option<MessageBuffer>,
    /// A SASL exchange is in progress: client lines are credentials.
    in_auth: bool,
    user: Option<String>,
    greeted: bool,
    next_tx_id: u64,
    next_file_id: u64,
    finished: VecDeque<Pop3Tx>,
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

impl Pop3State {
    pub fn new(mime: &MimeConfig) -> Self {
        Pop3State {
            mime: mime.clone(),
            client_lines: LineBuf::default(),
            server_lines: LineBuf::default(),
            pending: VecDeque::new(),
            server: Server::Status,
            unstuffer: DotUnstuffer::default(),
            message: None,
            in_auth: false,
            user: None,
            greeted: false,
            next_tx_id: 0,
            next_file_id: 1,
            finished: VecDeque::new(),
            stopped: false,
            anomaly_counts: AnomalyCounter::default(),
            error_raised: false,
        }
    }

    /// Messages logged since the last call, oldest first (for detection).
    pub fn take_finished(&mut self) -> Vec<Pop3Tx> {
        self.finished.drain(..).collect()
    }

    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    /// Whether parsing stopped (STLS accepted).
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
        match (dir, ev) {
            (Direction::ToClient, StreamEvent::End) => {
                if let Server::Body { cmd } = self.server
                    && let Some(mut m) = self.message.take()
                {
                    // The connection closed inside a body: keep what came, marked.
                    m.gap(0);
                    self.deliver(cmd, m, &mut io);
                }
                self.stopped = true;
            }
            (Direction::ToServer, StreamEvent::End) => {}
            _ if self.stopped => {}
            (Direction::ToServer, StreamEvent::Data(mut d)) => {
                while !d.is_empty() && !self.stopped {
                    match self.client_lines.next_line(&mut d, MAX_LINE_BYTES) {
                        Line::Complete(line) => self.command(&line, &mut io),
                        Line::TooLong => self.anomaly(&mut io, "pop3.too_long_line"),
                        Line::Partial => {}
                    }
                }
            }
            (Direction::ToClient, StreamEvent::Data(d)) => self.server_data(d, &mut io),
            (Direction::ToServer, StreamEvent::Gap { .. }) => self.client_lines.reset(),
            (Direction::ToClient, StreamEvent::Gap { len }) => match self.server {
                Server::Body { .. } => {
                    if let Some(m) = self.message.as_mut() {
                        m.gap(len);
                    }
                    self.unstuffer.gap();
                }
                Server::Status => self.server_lines.reset(),
            },
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

    fn command(&mut self, line: &[u8], io: &mut Io<'_>) {
        if self.in_auth {
            // A SASL response (credentials): neither parsed nor kept. `*` cancels.
            return;
        }
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = line[..verb_end].to_ascii_uppercase();
        let arg = line[verb_end..].trim_ascii();
        let has_arg = !arg.is_empty();
        let cmd = match verb.as_slice() {
            b"RETR" => Cmd::Retr,
            b"TOP" => Cmd::Top,
            b"LIST" | b"UIDL" if !has_arg => Cmd::MultiLine,
            b"CAPA" => Cmd::MultiLine,
            b"AUTH" if has_arg => {
                self.in_auth = true;
                Cmd::Auth
            }
            // AUTH without a mechanism lists them (RFC 1734 servers).
            b"AUTH" => Cmd::MultiLine,
            b"STLS" => Cmd::Stls,
            b"USER" => {
                self.user = Some(text(arg));
                Cmd::SingleLine
            }
            _ => Cmd::SingleLine,
        };
        // Only message numbers are kept as arguments: PASS and APOP carry secrets.
        let kept = if matches!(cmd, Cmd::Retr | Cmd::Top) { text(arg) } else { String::new() };
        if self.pending.len() >= MAX_PENDING_COMMANDS {
            self.pending.pop_front();
            self.anomaly(io, "pop3.too_many_pending_commands");
        }
        self.pending.push_back((cmd, kept));
    }

    fn server_data(&mut self, mut data: &[u8], io: &mut Io<'_>) {
        while !data.is_empty() && !self.stopped {
            match self.server {
                Server::Body { cmd } => {
                    let keep = matches!(cmd, Cmd::Retr | Cmd::Top);
                    let msg = &mut self.message;
                    let done = self.unstuffer.feed(data, &mut |b| {
                        if keep && let Some(m) = msg.as_mut() {
                            m.push(b);
                        }
                    });
                    match done {
                        Some(used) => {
                            data = &data[used..];
                            self.server = Server::Status;
                            if let Some(m) = self.message.take() {
                                self.deliver(cmd, m, io);
                            }
                        }
                        None => data = &[],
                    }
                }
                Server::Status => match self.server_lines.next_line(&mut data, MAX_LINE_BYTES) {
                    Line::Complete(line) => self.status_line(&line, io),
                    Line::TooLong => self.anomaly(io, "pop3.too_long_line"),
                    Line::Partial => {}
                },
            }
        }
    }

    fn status_line(&mut self, line: &[u8], io: &mut Io<'_>) {
        let ok = line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"+OK");
        let err = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"-ERR");
        if !self.greeted {
            self.greeted = true;
            if ok || err {
                return;
            }
        }
        if line.first() == Some(&b'+') && !ok {
            // A SASL challenge (`+ base64`): the exchange goes on.
            if self.in_auth {
                return;
            }
        }
        if !ok && !err {
            self.anomaly(io, "pop3.invalid_response");
            // A status line that is neither +OK nor -ERR: whether a multi-line body follows
            // rests on it, so the server stream cannot be followed, the app-layer error (once
            // per flow), as Suricata's POP3 parser. The line is skipped as before.
            self.raise_error(io);
            return;
        }
        let Some((cmd, arg)) = self.pending.pop_front() else {
            self.anomaly(io, "pop3.unexpected_response");
            return;
        };
        match cmd {
            Cmd::Auth => self.in_auth = false,
            Cmd::Stls if ok => self.stopped = true,
            Cmd::Retr | Cmd::Top | Cmd::MultiLine if ok => {
                self.unstuffer = DotUnstuffer::default();
                if cmd != Cmd::MultiLine {
                    self.message = Some(MessageBuffer::for_config(&self.mime));
                    self.pending.push_front((cmd, arg));
                }
                self.server = Server::Body { cmd };
            }
            _ => {}
        }
    }

    fn deliver(&mut self, cmd: Cmd, msg: MessageBuffer, io: &mut Io<'_>) {
        let Some((_, argument)) = self.pending.pop_front() else { return };
        let command = if cmd == Cmd::Top { "TOP" } else { "RETR" };
        let tx_id = self.next_tx_id;
        self.next_tx_id += 1;
        let mut pop3 = Map::new();
        pop3.insert("command".into(), command.into());
        pop3.insert("argument".into(), argument.clone().into());
        if let Some(u) = &self.user {
            pop3.insert("user".into(), u.clone().into());
        }
        let pop3 = Value::Object(pop3);
        let ctx = MessageCtx {
            ts: io.ts,
            tx_id,
            direction: Direction::ToClient,
            proto: MailProto::Pop3,
            proto_object: ("pop3", pop3.clone()),
            next_file_id: &mut self.next_file_id,
            partial: cmd == Cmd::Top,
            envelope_from: None,
            envelope_to: &[],
        };
        let d = mime::deliver(&msg, &self.mime, ctx, io.files, io.mails, io.out);
        let mut fields = Map::new();
        fields.insert("tx_id".into(), tx_id.into());
        fields.insert("pop3".into(), pop3);
        fields.insert("email".into(), d.info.eve());
        io.out.event(AppEvent {
            ts: io.ts,
            event_type: "pop3",
            tx_id: Some(tx_id),
            direction: Direction::ToClient,
            fields,
        });
        if self.finished.len() >= MAX_RETAINED_TRANSACTIONS {
            self.finished.pop_front();
        }
        self.finished.push_back(Pop3Tx {
            tx_id,
            command,
            argument,
            user: self.user.clone(),
            email: d.info,
            message_sha256: d.sha256,
            file_data: d.file_data,
        });
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_ARGUMENT_BYTES)]).into_owned()
}
