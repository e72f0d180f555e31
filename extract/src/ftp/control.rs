//! The FTP control connection: commands, replies, transactions and the expectations they imply.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};
use weir_core::{Anomaly, Direction, StreamEvent, Timestamp};

use super::expect::{
    DataMode, Expectation, MAX_EXPECTATIONS_PER_CONTROL_FLOW, Transfer, TransferCommand,
};
use super::{
    MAX_LINE_BYTES, MAX_PENDING_COMMANDS, MAX_REPLY_BYTES, MAX_REPLY_LINES,
    MAX_RETAINED_TRANSACTIONS, eve,
};
use crate::emit::{AnomalyCounter, AppEvent, Emit, ParserException};

/// User names whose password is by convention an e-mail address, logged unmasked (as Zeek's
/// `FTP::guest_ids`).
const GUEST_USERS: &[&[u8]] = &[b"anonymous", b"ftp", b"ftpuser", b"guest"];

/// What EVE shows instead of a non-guest password.
pub(super) const MASKED_PASSWORD: &str = "********";

/// One command and its replies (or a reply nobody asked for, such as the greeting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtpTx {
    pub id: u64,
    pub ts: Timestamp,
    pub(super) command: Option<Vec<u8>>,
    pub(super) command_data: Vec<u8>,
    pub(super) command_truncated: bool,
    /// Reply lines as sent, without their line ends.
    pub(super) replies: Vec<Vec<u8>>,
    pub(super) reply_truncated: bool,
    pub(super) dynamic_port: Option<u16>,
    pub(super) active: Option<bool>,
    pub(super) done: bool,
    /// The password is shown masked in EVE.
    pub(super) mask_data: bool,
    expectation: Option<Expectation>,
}

impl FtpTx {
    fn new(id: u64, ts: Timestamp) -> FtpTx {
        FtpTx {
            id,
            ts,
            command: None,
            command_data: Vec::new(),
            command_truncated: false,
            replies: Vec::new(),
            reply_truncated: false,
            dynamic_port: None,
            active: None,
            done: false,
            mask_data: false,
            expectation: None,
        }
    }

    /// The `ftp.command` buffer: the command name, upper case (`RETR`).
    pub fn command(&self) -> Option<&[u8]> {
        self.command.as_deref()
    }

    /// The `ftp.command_data` buffer: what followed the command and one space, as sent (trailing
    /// white space removed). Never masked.
    pub fn command_data(&self) -> &[u8] {
        &self.command_data
    }

    /// The reply lines, as sent.
    pub fn replies(&self) -> &[Vec<u8>] {
        &self.replies
    }

    /// Whether a final (non-1xx) reply arrived.
    pub fn reply_received(&self) -> bool {
        self.done
    }

    /// The EVE `ftp` object of this transaction (for its `ftp` record and for alerts on it).
    pub fn eve_object(&self) -> Value {
        eve::ftp_object(self)
    }

    /// The data port this command announced (PORT/EPRT) or got (PASV/EPSV).
    pub fn dynamic_port(&self) -> Option<u16> {
        self.dynamic_port
    }
}

/// Splits a stream into lines, bounded by [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    /// The current line passed the limit: the rest of it is skipped.
    truncated: bool,
    /// After a gap the current line's start is unknown: skip to the next line end.
    resync: bool,
}

impl Lines {
    /// The next complete line (without CR LF) and whether it was cut, consuming from `data`.
    fn next(&mut self, data: &mut &[u8]) -> Option<(Vec<u8>, bool)> {
        loop {
            if data.is_empty() {
                return None;
            }
            let (chunk, found) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], true),
                None => (*data, false),
            };
            *data = if found { &data[chunk.len() + 1..] } else { &[] };
            if !self.resync {
                let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
                if chunk.len() > room {
                    self.truncated = true;
                }
                self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            if !found {
                return None;
            }
            if std::mem::take(&mut self.resync) {
                continue;
            }
            let mut line = std::mem::take(&mut self.buf);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some((line, std::mem::take(&mut self.truncated)));
        }
    }

    fn gap(&mut self) {
        self.buf.clear();
        self.truncated = false;
        self.resync = true;
    }

    /// What is left at the end of the stream, as a last line.
    fn rest(&mut self) -> Option<(Vec<u8>, bool)> {
        if self.buf.is_empty() || self.resync {
            return None;
        }
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some((line, std::mem::take(&mut self.truncated)))
    }
}

/// A reply being collected (multi-line replies end with `NNN ` after `NNN-`).
#[derive(Debug, Default)]
struct Reply {
    lines: Vec<Vec<u8>>,
    truncated: bool,
    /// The code of an open multi-line reply.
    multi: Option<[u8; 3]>,
}

fn reply_code(line: &[u8]) -> Option<[u8; 3]> {
    match line {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some([*a, *b, *c])
        }
        _ => None,
    }
}

/// Per-flow FTP control connection state.
#[derive(Debug, Default)]
pub struct FtpState {
    lines: [Lines; 2],
    ended: [bool; 2],
    reply: Reply,
    /// Commands waiting for their final reply, oldest first.
    pending: VecDeque<FtpTx>,
    finished: VecDeque<FtpTx>,
    next_tx_id: u64,
    user_is_guest: bool,
    rest: u64,
    /// The data connection announced last and not yet used by a transfer command.
    channel: Option<Expectation>,
    next_channel_id: u64,
    expectations: Vec<Expectation>,
    anomaly_counts: AnomalyCounter,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

/// Anomaly records written per event name and flow; later ones are only counted.
const MAX_ANOMALY_RECORDS_PER_EVENT: u64 = 8;

impl FtpState {
    pub fn new() -> FtpState {
        FtpState::default()
    }

    /// Consumes one event of one direction of the control connection.
    pub fn on_stream(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        out: &mut Emit,
    ) {
        let d = dir.index();
        if self.ended[d] {
            return;
        }
        match ev {
            StreamEvent::Data(mut data) => {
                while let Some((line, truncated)) = self.lines[d].next(&mut data) {
                    self.on_line(dir, &line, truncated, ts, out);
                }
            }
            StreamEvent::Gap { .. } => {
                self.lines[d].gap();
                if dir == Direction::ToClient {
                    self.reply = Reply::default();
                }
                self.anomaly(out, ts, "ftp.gap");
            }
            StreamEvent::End => {
                if let Some((line, truncated)) = self.lines[d].rest() {
                    self.on_line(dir, &line, truncated, ts, out);
                }
                self.ended[d] = true;
                if dir == Direction::ToClient && !self.reply.lines.is_empty() {
                    // A reply cut by the end of the stream still belongs to its command.
                    let reply = std::mem::take(&mut self.reply);
                    let code = reply.lines.first().and_then(|l| reply_code(l));
                    self.on_reply(reply, code, ts, out);
                }
                if self.ended.iter().all(|&e| e) {
                    self.flush(ts, out);
                }
            }
        }
    }

    /// Logs every transaction still open (`reply_received: "no"`): the flow is going away.
    pub fn flush(&mut self, ts: Timestamp, out: &mut Emit) {
        while let Some(tx) = self.pending.pop_front() {
            self.finish(tx, ts, out);
        }
    }

    /// Expectations learnt since the last call, for the worker's [`super::ExpectationTable`].
    pub fn take_expectations(&mut self) -> Vec<Expectation> {
        std::mem::take(&mut self.expectations)
    }

    /// Finished transactions not yet taken, then those waiting for a reply, oldest first.
    pub fn transactions(&self) -> impl Iterator<Item = &FtpTx> {
        self.finished.iter().chain(self.pending.iter())
    }

    /// Hands over the finished transactions (for detection), oldest first.
    pub fn take_finished(&mut self) -> Vec<FtpTx> {
        self.finished.drain(..).collect()
    }

    /// How often an anomaly (by event name) was seen on this flow.
    pub fn anomaly_count(&self, event: &str) -> u64 {
        self.anomaly_counts.count(event)
    }

    fn anomaly(&mut self, out: &mut Emit, ts: Timestamp, event: &'static str) {
        let n = self.anomaly_counts.raise(event);
        if n <= MAX_ANOMALY_RECORDS_PER_EVENT {
            out.anomaly(ts, Anomaly::app_layer(event));
        }
    }

    fn on_line(
        &mut self,
        dir: Direction,
        line: &[u8],
        truncated: bool,
        ts: Timestamp,
        out: &mut Emit,
    ) {
        match dir {
            Direction::ToServer => self.on_command(line, truncated, ts, out),
            Direction::ToClient => self.on_reply_line(line, truncated, ts, out),
        }
    }

    fn push_expectation(&mut self, exp: Expectation) {
        // The worker drains these after every call; the bound only matters if it does not.
        if self.expectations.len() >= 2 * MAX_EXPECTATIONS_PER_CONTROL_FLOW {
            self.expectations.remove(0);
        }
        self.expectations.push(exp);
    }

    /// Makes `exp` the current data connection; one still unused is withdrawn.
    fn announce(
        &mut self,
        mode: DataMode,
        port: u16,
        announced_ip: Option<IpAddr>,
        ts: Timestamp,
    ) -> Expectation {
        if let Some(mut old) = self.channel.take() {
            old.withdrawn = true;
            self.push_expectation(old);
        }
        let exp = Expectation {
            id: self.next_channel_id,
            mode,
            port,
            announced_ip,
            transfer: None,
            withdrawn: false,
            announced: ts,
        };
        self.next_channel_id += 1;
        self.channel = Some(exp.clone());
        self.push_expectation(exp.clone());
        exp
    }

    fn on_command(&mut self, line: &[u8], truncated: bool, ts: Timestamp, out: &mut Emit) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let (name, data) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        let end = data
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let data = &data[..end];
        let name = name.to_ascii_uppercase();

        let mut tx = FtpTx::new(self.next_tx_id, ts);
        self.next_tx_id += 1;
        tx.command_data = data.to_vec();
        tx.command_truncated = truncated;

        match name.as_slice() {
            b"USER" => {
                self.user_is_guest = GUEST_USERS.iter().any(|g| data.eq_ignore_ascii_case(g));
            }
            b"PASS" => tx.mask_data = !self.user_is_guest,
            b"PORT" | b"EPRT" => {
                let parsed = if name == b"PORT" {
                    parse_port(data)
                } else {
                    parse_eprt(data)
                };
                match parsed {
                    Some((ip, port)) => {
                        let mode = if name == b"PORT" {
                            DataMode::Port
                        } else {
                            DataMode::Eprt
                        };
                        let exp = self.announce(mode, port, Some(ip), ts);
                        tx.dynamic_port = Some(port);
                        tx.active = Some(true);
                        tx.expectation = Some(exp);
                    }
                    None => self.anomaly(out, ts, "ftp.invalid_port"),
                }
            }
            b"REST" => match std::str::from_utf8(data)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(offset) => self.rest = offset,
                None => self.anomaly(out, ts, "ftp.invalid_rest"),
            },
            _ => {
                if let Some(command) = TransferCommand::from_name(&name) {
                    let rest = std::mem::take(&mut self.rest);
                    if let Some(mut exp) = self.channel.take() {
                        exp.transfer = Some(Transfer {
                            command,
                            argument: data.to_vec(),
                            rest,
                            control_tx_id: tx.id,
                        });
                        self.push_expectation(exp.clone());
                        tx.expectation = Some(exp);
                    }
                }
            }
        }
        tx.command = Some(name);

        self.pending.push_back(tx);
        if self.pending.len() > MAX_PENDING_COMMANDS
            && let Some(oldest) = self.pending.pop_front()
        {
            self.anomaly(out, ts, "ftp.too_many_pending_commands");
            self.finish(oldest, ts, out);
        }
    }

    fn on_reply_line(&mut self, line: &[u8], truncated: bool, ts: Timestamp, out: &mut Emit) {
        let code = reply_code(line);
        let reply = &mut self.reply;
        if room_for(&reply.lines, line.len()) {
            reply.lines.push(line.to_vec());
        } else {
            reply.truncated = true;
        }
        reply.truncated |= truncated;
        let complete = match reply.multi {
            // RFC 959 4.2: the last line starts with the same code and a space.
            Some(open) => code == Some(open) && line.get(3) != Some(&b'-'),
            None => {
                if code.is_some() && line.get(3) == Some(&b'-') {
                    reply.multi = code;
                    false
                } else {
                    true
                }
            }
        };
        if !complete {
            return;
        }
        let reply = std::mem::take(&mut self.reply);
        if code.is_none() {
            self.anomaly(out, ts, "ftp.invalid_reply");
            // A reply without a code still takes a command's place, and nothing realigns replies
            // with commands afterwards: the control channel is desynced for good, the app-layer
            // error (once per flow). Gaps and over-long lines resync on the next line.
            if !std::mem::replace(&mut self.error_raised, true) {
                out.exception(ts, ParserException::Error);
            }
        }
        self.on_reply(reply, code, ts, out);
    }

    fn on_reply(&mut self, reply: Reply, code: Option<[u8; 3]>, ts: Timestamp, out: &mut Emit) {
        let mut tx = match self.pending.pop_front() {
            Some(tx) => tx,
            None => {
                // The greeting, or a reply to nothing (421 before closing).
                let tx = FtpTx::new(self.next_tx_id, ts);
                self.next_tx_id += 1;
                tx
            }
        };
        for line in reply.lines {
            if room_for(&tx.replies, line.len()) {
                tx.replies.push(line);
            } else {
                tx.reply_truncated = true;
            }
        }
        tx.reply_truncated |= reply.truncated;

        let preliminary = code.is_some_and(|c| c[0] == b'1');
        if preliminary {
            self.pending.push_front(tx);
            return;
        }
        tx.done = true;
        let refused = code.is_some_and(|c| c[0] == b'4' || c[0] == b'5');
        let command = tx.command.clone().unwrap_or_default();
        match (command.as_slice(), code) {
            (b"PASV", Some([b'2', b'2', b'7'])) => {
                let text = tx
                    .replies
                    .last()
                    .map(|l| l.get(4..).unwrap_or_default())
                    .unwrap_or_default();
                match parse_pasv_reply(text) {
                    Some((ip, port)) => {
                        let exp = self.announce(DataMode::Pasv, port, Some(ip), ts);
                        tx.dynamic_port = Some(port);
                        tx.expectation = Some(exp);
                    }
                    None => self.anomaly(out, ts, "ftp.invalid_pasv_reply"),
                }
            }
            (b"EPSV", Some([b'2', b'2', b'9'])) => {
                let text = tx
                    .replies
                    .last()
                    .map(|l| l.get(4..).unwrap_or_default())
                    .unwrap_or_default();
                match parse_epsv_reply(text) {
                    Some(port) => {
                        let exp = self.announce(DataMode::Epsv, port, None, ts);
                        tx.dynamic_port = Some(port);
                        tx.expectation = Some(exp);
                    }
                    None => self.anomaly(out, ts, "ftp.invalid_pasv_reply"),
                }
            }
            _ if refused => {
                if let Some(mut exp) = tx.expectation.take() {
                    if self.channel.as_ref().is_some_and(|c| c.id == exp.id) {
                        self.channel = None;
                    }
                    exp.withdrawn = true;
                    self.push_expectation(exp);
                }
            }
            _ => {}
        }
        self.finish(tx, ts, out);
    }

    fn finish(&mut self, tx: FtpTx, ts: Timestamp, out: &mut Emit) {
        let mut fields = Map::new();
        fields.insert("tx_id".into(), Value::from(tx.id));
        fields.insert("ftp".into(), eve::ftp_object(&tx));
        out.event(AppEvent {
            ts,
            event_type: "ftp",
            tx_id: Some(tx.id),
            direction: Direction::ToClient,
            fields,
        });
        if self.finished.len() >= MAX_RETAINED_TRANSACTIONS {
            self.finished.pop_front();
        }
        self.finished.push_back(tx);
    }
}

/// Whether one more reply line of `len` bytes stays within [`MAX_REPLY_LINES`] and
/// [`MAX_REPLY_BYTES`].
fn room_for(lines: &[Vec<u8>], len: usize) -> bool {
    lines.len() < MAX_REPLY_LINES
        && lines.iter().map(Vec::len).sum::<usize>() + len <= MAX_REPLY_BYTES
}

fn ascii_number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    let s = std::str::from_utf8(bytes).ok()?.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The data-connection endpoint one control-channel line announces: a `PORT` or `EPRT` command
/// (the client listens) or a `227` or `229` reply (the server listens; `229` names no address).
/// For steering a data connection to the worker that holds its control connection before that
/// worker has parsed the line.
pub fn announced_endpoint(line: &[u8]) -> Option<(Option<IpAddr>, u16)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (head, rest) = line.split_at(line.len().min(4));
    let arg = rest.strip_prefix(b" ").unwrap_or(rest);
    if head.eq_ignore_ascii_case(b"PORT") {
        return parse_port(arg).map(|(ip, port)| (Some(ip), port));
    }
    if head.eq_ignore_ascii_case(b"EPRT") {
        return parse_eprt(arg).map(|(ip, port)| (Some(ip), port));
    }
    match line.get(..3)? {
        b"227" => parse_pasv_reply(&line[3..]).map(|(ip, port)| (Some(ip), port)),
        b"229" => parse_epsv_reply(&line[3..]).map(|port| (None, port)),
        _ => None,
    }
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959 PORT argument and the 227 reply's numbers).
fn parse_six(text: &[u8]) -> Option<(IpAddr, u16)> {
    let mut nums = [0u8; 6];
    let mut parts = text.split(|&b| b == b',');
    for n in &mut nums {
        *n = ascii_number(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    let ip = IpAddr::V4(Ipv4Addr::new(nums[0], nums[1], nums[2], nums[3]));
    Some((ip, u16::from_be_bytes([nums[4], nums[5]])))
}

fn parse_port(arg: &[u8]) -> Option<(IpAddr, u16)> {
    parse_six(arg)
}

/// RFC 2428: `EPRT |1|132.235.1.2|6275|` (any delimiter in 33..126, 1 = IPv4, 2 = IPv6).
fn parse_eprt(arg: &[u8]) -> Option<(IpAddr, u16)> {
    let delim = *arg.first()?;
    let fields: Vec<&[u8]> = arg[1..].split(|&b| b == delim).collect();
    let [proto, addr, port, rest @ ..] = fields.as_slice() else {
        return None;
    };
    if rest.iter().any(|r| !r.is_empty()) {
        return None;
    }
    let addr = std::str::from_utf8(addr).ok()?;
    let ip = match *proto {
        b"1" => IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?),
        b"2" => IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?),
        _ => return None,
    };
    Some((ip, ascii_number(port)?))
}

/// The 227 reply text: the six numbers are usually in parentheses, but RFC 1123 4.1.2.6 asks
/// clients to scan for them anywhere.
fn parse_pasv_reply(text: &[u8]) -> Option<(IpAddr, u16)> {
    let start = text.iter().position(u8::is_ascii_digit)?;
    let len = text[start..]
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b',' || b == b' '))
        .unwrap_or(text.len() - start);
    let numbers: Vec<u8> = text[start..start + len]
        .iter()
        .copied()
        .filter(|&b| b != b' ')
        .collect();
    let numbers = numbers.strip_suffix(b",").unwrap_or(&numbers);
    parse_six(numbers)
}

/// The 229 reply text: `Entering Extended Passive Mode (|||6446|)`.
fn parse_epsv_reply(text: &[u8]) -> Option<u16> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = open + text[open..].iter().position(|&b| b == b')')?;
    let inner = &text[open + 1..close];
    let delim = *inner.first()?;
    let fields: Vec<&[u8]> = inner.split(|&b| b == delim).collect();
    // "", "", "", "6446", "" for |||6446|
    match fields.as_slice() {
        [_, _, _, port, _] => ascii_number(port),
        _ => None,
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn announced_endpoints_of_commands_and_replies() {
        let v4 = |a, b, c, d| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
        assert_eq!(announced_endpoint(b"PORT 10,0,0,2,4,1\r\n"), Some((v4(10, 0, 0, 2), 1025)));
        assert_eq!(announced_endpoint(b"eprt |1|10.0.0.2|6275|\r\n"), Some((v4(10, 0, 0, 2), 6275)));
        assert_eq!(
            announced_endpoint(b"227 Entering Passive Mode (10,0,0,1,200,10).\r\n"),
            Some((v4(10, 0, 0, 1), 51210))
        );
        assert_eq!(announced_endpoint(b"229 Entering Extended Passive Mode (|||6446|)\r\n"), Some((None, 6446)));
        assert_eq!(announced_endpoint(b"RETR file.bin\r\n"), None);
        assert_eq!(announced_endpoint(b"PORT garbage"), None);
        assert_eq!(announced_endpoint(b"22"), None);
    }

    #[test]
    fn port_arguments() {
        assert_eq!(
            parse_port(b"192,168,0,13,234,10"),
            Some((IpAddr::V4(Ipv4Addr::new(192, 168, 0, 13)), 59914))
        );
        assert_eq!(parse_port(b"192,168,0,13,234"), None);
        assert_eq!(parse_port(b"192,168,0,13,234,10,1"), None);
        assert_eq!(parse_port(b"300,168,0,13,234,10"), None);
        assert_eq!(
            parse_eprt(b"|1|10.77.0.2|43253|"),
            Some((IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)), 43253))
        );
        assert_eq!(
            parse_eprt(b"|2|::1|5282|"),
            Some(("::1".parse().expect("v6"), 5282))
        );
        assert_eq!(parse_eprt(b"|3|x|1|"), None);
        assert_eq!(parse_eprt(b"|1|10.0.0.1|99999|"), None);
    }

    #[test]
    fn passive_replies() {
        assert_eq!(
            parse_pasv_reply(b"Entering passive mode (10,77,0,1,117,50)."),
            Some((IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 30002))
        );
        assert_eq!(
            parse_pasv_reply(b"=10,77,0,1,117,50"),
            Some((IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 30002))
        );
        assert_eq!(parse_pasv_reply(b"Entering passive mode"), None);
        assert_eq!(
            parse_epsv_reply(b"Entering extended passive mode (|||30038|)."),
            Some(30038)
        );
        assert_eq!(parse_epsv_reply(b"(!!!30038!)"), Some(30038));
        assert_eq!(parse_epsv_reply(b"(|||x|)"), None);
    }
}
