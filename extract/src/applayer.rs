//! Per-flow app-layer dispatch: detects the protocol by content (any port), then hands every
//! stream event or datagram to that protocol's parser.
//!
//! Until a protocol is recognised, the first bytes of each direction are held (at most
//! [`MAX_PROBE_BYTES`] per flow) and replayed into the parser once it is chosen, so the parser
//! sees its stream from the start.

use weir_core::{AppProto, Direction, StreamEvent, Timestamp};

use crate::dns::{self, DnsState};
use crate::emit::Emit;
use crate::files::FileSink;
use crate::http::{self, HttpConfig, HttpState};
use crate::mailstore::MailSink;
use crate::mime::MimeConfig;
use crate::ftp::{self, Expectation, FtpDataState, FtpState};
use crate::imap::{self, ImapState};
use crate::smb::{self, SmbConfig, SmbState};
use crate::pop3::{self, Pop3State};
use crate::smtp::{self, SmtpState};
use crate::tls::{self, TlsState};

/// Where parsers put what they extract: files (attachments, downloads) and whole email messages.
pub struct Sinks<'a> {
    pub files: &'a mut dyn FileSink,
    pub mails: &'a mut dyn MailSink,
}

/// Bytes held per flow while the protocol is unknown. Past it the flow is given up as
/// `app_proto: "failed"`: every protocol Weir parses announces itself well before this.
pub const MAX_PROBE_BYTES: usize = 8192;

/// Which parsers are switched on, and their settings.
#[derive(Clone, Debug)]
pub struct AppLayerConfig {
    /// `None` switches HTTP off.
    pub http: Option<HttpConfig>,
    pub dns: bool,
    pub tls: bool,
    /// `None` switches SMTP off.
    pub smtp: Option<MimeConfig>,
    /// `None` switches POP3 off.
    pub pop3: Option<MimeConfig>,
    /// `None` switches IMAP off.
    pub imap: Option<MimeConfig>,
    /// FTP control and data channels.
    pub ftp: bool,
    /// `None` switches SMB off.
    pub smb: Option<SmbConfig>,
}

impl Default for AppLayerConfig {
    fn default() -> Self {
        AppLayerConfig {
            http: Some(HttpConfig::default()),
            dns: true,
            tls: true,
            smtp: Some(MimeConfig::default()),
            pop3: Some(MimeConfig::default()),
            imap: Some(MimeConfig::default()),
            ftp: true,
            smb: Some(SmbConfig::default()),
        }
    }
}

enum Parser {
    Detecting(Detecting),
    Http(Box<HttpState>),
    Dns(Box<DnsState>),
    Tls(Box<TlsState>),
    Smtp(Box<SmtpState>),
    Pop3(Box<Pop3State>),
    Imap(Box<ImapState>),
    Ftp(Box<FtpState>),
    FtpData(Box<FtpDataState>),
    Smb(Box<SmbState>),
    /// No known protocol; nothing more is parsed.
    Failed,
}

#[derive(Default)]
struct Detecting {
    /// Held stream bytes in arrival order, so the parser sees both directions as they came.
    held: Vec<(Direction, Vec<u8>)>,
    held_bytes: usize,
    /// Bytes of each direction seen so far (for probing each direction from its start).
    seen: [Vec<u8>; 2],
    /// A direction whose start matched no protocol, or that ended or lost bytes undetected.
    failed: [bool; 2],
}

/// What detection decided on this call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    /// The protocol was recognised now (or detection failed now: `Some(AppProto::Failed)`).
    pub detected: Option<AppProto>,
    /// The content showed that the flow's "client" is really the server (e.g. a response seen
    /// first after midstream pickup): the caller must swap the flow's orientation. The parser has
    /// already been fed with directions swapped.
    pub reversed: bool,
}

/// The app-layer state of one flow.
pub struct AppLayer {
    parser: Parser,
    /// Directions that ended; when both have, parsers that keep state across the flow close it.
    ended: [bool; 2],
}

impl Default for AppLayer {
    fn default() -> Self {
        AppLayer { parser: Parser::Detecting(Detecting::default()), ended: [false; 2] }
    }
}

impl AppLayer {
    pub fn new() -> AppLayer {
        AppLayer::default()
    }

    /// The protocol once detected (`Failed` when detection gave up).
    pub fn proto(&self) -> Option<AppProto> {
        match self.parser {
            Parser::Detecting(_) => None,
            Parser::Http(_) => Some(AppProto::Http),
            Parser::Dns(_) => Some(AppProto::Dns),
            Parser::Tls(_) => Some(AppProto::Tls),
            Parser::Smtp(_) => Some(AppProto::Smtp),
            Parser::Pop3(_) => Some(AppProto::Pop3),
            Parser::Imap(_) => Some(AppProto::Imap),
            Parser::Ftp(_) => Some(AppProto::Ftp),
            Parser::FtpData(_) => Some(AppProto::FtpData),
            Parser::Smb(_) => Some(AppProto::Smb),
            Parser::Failed => Some(AppProto::Failed),
        }
    }

    pub fn http(&self) -> Option<&HttpState> {
        match &self.parser {
            Parser::Http(h) => Some(h),
            _ => None,
        }
    }

    pub fn http_mut(&mut self) -> Option<&mut HttpState> {
        match &mut self.parser {
            Parser::Http(h) => Some(h),
            _ => None,
        }
    }

    pub fn dns(&self) -> Option<&DnsState> {
        match &self.parser {
            Parser::Dns(d) => Some(d),
            _ => None,
        }
    }

    pub fn smtp_mut(&mut self) -> Option<&mut SmtpState> {
        match &mut self.parser {
            Parser::Smtp(p) => Some(p),
            _ => None,
        }
    }

    pub fn pop3_mut(&mut self) -> Option<&mut Pop3State> {
        match &mut self.parser {
            Parser::Pop3(p) => Some(p),
            _ => None,
        }
    }

    pub fn imap_mut(&mut self) -> Option<&mut ImapState> {
        match &mut self.parser {
            Parser::Imap(p) => Some(p),
            _ => None,
        }
    }

    pub fn ftp_mut(&mut self) -> Option<&mut FtpState> {
        match &mut self.parser {
            Parser::Ftp(p) => Some(p),
            _ => None,
        }
    }

    pub fn ftp_data(&self) -> Option<&FtpDataState> {
        match &self.parser {
            Parser::FtpData(p) => Some(p),
            _ => None,
        }
    }

    /// Drops the finished transactions parsers keep for detection, when nothing inspects them:
    /// their buffers (bodies up to the inspection limits) would otherwise wait for the flow's end.
    pub fn discard_finished(&mut self) {
        match &mut self.parser {
            Parser::Http(p) => drop(p.take_finished()),
            Parser::Smtp(p) => drop(p.take_finished()),
            Parser::Pop3(p) => drop(p.take_finished()),
            Parser::Imap(p) => drop(p.take_finished()),
            Parser::Ftp(p) => drop(p.take_finished()),
            _ => {}
        }
    }

    /// Whether no protocol was chosen yet (nothing decided, nothing parsed).
    pub fn is_undetected(&self) -> bool {
        matches!(self.parser, Parser::Detecting(_))
    }

    /// Makes this flow an FTP data connection announced on a control channel. Bytes held while
    /// detecting are replayed into it.
    pub fn start_ftp_data(&mut self, expectation: Expectation, ts: Timestamp, sinks: &mut Sinks<'_>, out: &mut Emit) {
        let held = match std::mem::replace(&mut self.parser, Parser::FtpData(Box::new(FtpDataState::new(expectation)))) {
            Parser::Detecting(d) => d.held,
            _ => Vec::new(),
        };
        if let Parser::FtpData(p) = &mut self.parser {
            for (dir, bytes) in held {
                p.on_stream(dir, StreamEvent::Data(&bytes), ts, sinks.files, out);
            }
        }
    }

    /// A newer announcement of this data connection's transfer (the command after PASV/PORT).
    pub fn update_ftp_data(&mut self, expectation: Expectation, ts: Timestamp, sinks: &mut Sinks<'_>, out: &mut Emit) {
        if let Parser::FtpData(p) = &mut self.parser {
            p.update(expectation, ts, sinks.files, out);
        }
    }

    pub fn tls(&self) -> Option<&TlsState> {
        match &self.parser {
            Parser::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// One event of a TCP stream direction.
    pub fn on_stream(
        &mut self,
        cfg: &AppLayerConfig,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        sinks: &mut Sinks<'_>,
        out: &mut Emit,
    ) -> Detection {
        match &mut self.parser {
            Parser::Http(p) => p.on_stream(dir, ev, ts, sinks.files, out),
            Parser::Dns(p) => p.on_stream(dir, ev, ts, out),
            Parser::Tls(p) => p.on_stream(dir, ev, ts, out),
            Parser::Smtp(p) => p.on_stream(dir, ev, ts, sinks.files, sinks.mails, out),
            Parser::Pop3(p) => p.on_stream(dir, ev, ts, sinks.files, sinks.mails, out),
            Parser::Imap(p) => p.on_stream(dir, ev, ts, sinks.files, sinks.mails, out),
            Parser::Ftp(p) => p.on_stream(dir, ev, ts, out),
            Parser::FtpData(p) => p.on_stream(dir, ev, ts, sinks.files, out),
            Parser::Smb(p) => p.on_stream(dir, ev, ts, sinks.files, out),
            Parser::Failed => {}
            Parser::Detecting(_) => return self.detect_stream(cfg, dir, ev, ts, sinks, out),
        }
        if ev == StreamEvent::End && !std::mem::replace(&mut self.ended[dir.index()], true) && self.ended == [true, true] {
            match &mut self.parser {
                Parser::Ftp(p) => p.flush(ts, out),
                Parser::FtpData(p) => p.finish(ts, sinks.files, out),
                Parser::Smb(p) => p.flush(ts, sinks.files, out),
                _ => {}
            }
        }
        Detection::default()
    }

    /// One UDP datagram.
    pub fn on_datagram(&mut self, cfg: &AppLayerConfig, dir: Direction, payload: &[u8], ts: Timestamp, out: &mut Emit) -> Detection {
        let mut detection = Detection::default();
        if let Parser::Detecting(d) = &mut self.parser {
            if payload.is_empty() {
                return detection;
            }
            let verdict = if cfg.dns { dns::probe_udp(payload) } else { dns::Probe::NoMatch };
            match verdict {
                dns::Probe::Request | dns::Probe::Response => {
                    detection.reversed = (verdict == dns::Probe::Response) == (dir == Direction::ToServer);
                    detection.detected = Some(AppProto::Dns);
                    self.parser = Parser::Dns(Box::new(DnsState::new()));
                }
                dns::Probe::NoMatch | dns::Probe::NeedMore => {
                    d.failed[dir.index()] = true;
                    if d.failed[dir.opposite().index()] {
                        self.parser = Parser::Failed;
                        detection.detected = Some(AppProto::Failed);
                    }
                }
            }
        }
        if let Parser::Dns(p) = &mut self.parser {
            let dir = if detection.reversed { dir.opposite() } else { dir };
            p.on_datagram(dir, payload, ts, out);
        }
        detection
    }

    fn detect_stream(
        &mut self,
        cfg: &AppLayerConfig,
        dir: Direction,
        ev: StreamEvent<'_>,
        ts: Timestamp,
        sinks: &mut Sinks<'_>,
        out: &mut Emit,
    ) -> Detection {
        let Parser::Detecting(d) = &mut self.parser else { return Detection::default() };
        let i = dir.index();
        match ev {
            StreamEvent::Data(data) if !data.is_empty() && !d.failed[i] => {
                if d.held_bytes + data.len() > MAX_PROBE_BYTES {
                    return self.fail();
                }
                d.held_bytes += data.len();
                d.seen[i].extend_from_slice(data);
                match d.held.last_mut() {
                    Some((last_dir, bytes)) if *last_dir == dir => bytes.extend_from_slice(data),
                    _ => d.held.push((dir, data.to_vec())),
                }
                match probe_stream(cfg, dir, &d.seen[i]) {
                    Probe::Match(proto, sender_is_server) => {
                        let reversed = sender_is_server == (dir == Direction::ToServer);
                        self.start(cfg, proto, reversed, ts, sinks, out)
                    }
                    Probe::NoMatch => {
                        d.failed[i] = true;
                        d.seen[i] = Vec::new();
                        if d.failed[1 - i] { self.fail() } else { Detection::default() }
                    }
                    Probe::NeedMore => Detection::default(),
                }
            }
            StreamEvent::Data(_) => Detection::default(),
            StreamEvent::Gap { .. } | StreamEvent::End => {
                // Bytes lost (or the side closed) before the protocol showed: this direction can no
                // longer be recognised from its start.
                d.failed[i] = true;
                if d.failed[1 - i] { self.fail() } else { Detection::default() }
            }
        }
    }

    fn fail(&mut self) -> Detection {
        self.parser = Parser::Failed;
        Detection { detected: Some(AppProto::Failed), reversed: false }
    }

    /// Switches to a parser and replays the held bytes into it.
    fn start(
        &mut self,
        cfg: &AppLayerConfig,
        proto: AppProto,
        reversed: bool,
        ts: Timestamp,
        sinks: &mut Sinks<'_>,
        out: &mut Emit,
    ) -> Detection {
        let held = match std::mem::replace(&mut self.parser, Parser::Failed) {
            Parser::Detecting(d) => d.held,
            _ => Vec::new(),
        };
        self.parser = match proto {
            AppProto::Http => match &cfg.http {
                Some(h) => Parser::Http(Box::new(HttpState::new(h))),
                None => Parser::Failed,
            },
            AppProto::Dns => Parser::Dns(Box::new(DnsState::new())),
            AppProto::Tls => Parser::Tls(Box::new(TlsState::new())),
            AppProto::Smtp => match &cfg.smtp {
                Some(m) => Parser::Smtp(Box::new(SmtpState::new(m))),
                None => Parser::Failed,
            },
            AppProto::Pop3 => match &cfg.pop3 {
                Some(m) => Parser::Pop3(Box::new(Pop3State::new(m))),
                None => Parser::Failed,
            },
            AppProto::Imap => match &cfg.imap {
                Some(m) => Parser::Imap(Box::new(ImapState::new(m))),
                None => Parser::Failed,
            },
            AppProto::Ftp if cfg.ftp => Parser::Ftp(Box::new(FtpState::new())),
            AppProto::Smb => match &cfg.smb {
                Some(c) => Parser::Smb(Box::new(SmbState::new(c))),
                None => Parser::Failed,
            },
            _ => Parser::Failed,
        };
        for (dir, bytes) in held {
            let dir = if reversed { dir.opposite() } else { dir };
            self.on_stream(cfg, dir, StreamEvent::Data(&bytes), ts, sinks, out);
        }
        Detection { detected: Some(proto), reversed }
    }
}

enum Probe {
    /// The protocol, and whether the bytes' sender is the server.
    Match(AppProto, bool),
    NoMatch,
    NeedMore,
}

/// Tries every enabled protocol on the start of one direction's stream.
fn probe_stream(cfg: &AppLayerConfig, dir: Direction, start: &[u8]) -> Probe {
    let mut need_more = false;
    if cfg.http.is_some() {
        match http::probe(dir, start) {
            http::ProbeResult::Http => return Probe::Match(AppProto::Http, dir == Direction::ToClient),
            http::ProbeResult::NeedMore => need_more = true,
            http::ProbeResult::NotHttp => {
                // A response seen first (midstream pickup the wrong way round) shows the sender is
                // the server.
                if http::probe(dir.opposite(), start) == http::ProbeResult::Http {
                    return Probe::Match(AppProto::Http, dir == Direction::ToServer);
                }
            }
        }
    }
    if cfg.tls {
        match tls::probe(start) {
            tls::Probe::Request => return Probe::Match(AppProto::Tls, false),
            tls::Probe::Response => return Probe::Match(AppProto::Tls, true),
            tls::Probe::NeedMore => need_more = true,
            tls::Probe::NoMatch => {}
        }
    }
    match probe_mail_or_ftp(cfg, dir, start) {
        Banner::Match(proto, sender_is_server) => return Probe::Match(proto, sender_is_server),
        Banner::NeedMore => need_more = true,
        Banner::No => {}
    }
    if cfg.smb.is_some() {
        match smb::probe(start) {
            smb::Probe::NoMatch => {}
            smb::Probe::NeedMore => need_more = true,
            // SMB requests and responses share their framing; the first sender is the client.
            _ => return Probe::Match(AppProto::Smb, false),
        }
    }
    if cfg.pop3.is_some() {
        match pop3::probe(dir, start) {
            pop3::Probe::Pop3 => return Probe::Match(AppProto::Pop3, dir == Direction::ToClient),
            pop3::Probe::NeedMore => need_more = true,
            pop3::Probe::NoMatch => {}
        }
    }
    if cfg.imap.is_some() {
        match imap::probe(dir, start) {
            imap::Probe::Imap => return Probe::Match(AppProto::Imap, dir == Direction::ToClient),
            imap::Probe::NeedMore => need_more = true,
            imap::Probe::NoMatch => {}
        }
    }
    if cfg.dns {
        match dns::probe_tcp(start) {
            dns::Probe::Request => return Probe::Match(AppProto::Dns, false),
            dns::Probe::Response => return Probe::Match(AppProto::Dns, true),
            dns::Probe::NeedMore => need_more = true,
            dns::Probe::NoMatch => {}
        }
    }
    if need_more { Probe::NeedMore } else { Probe::NoMatch }
}

enum Banner {
    /// The protocol, and whether the bytes' sender is the server.
    Match(AppProto, bool),
    NeedMore,
    No,
}

/// Servers of SMTP and FTP both greet with `220`: the greeting names its protocol often enough
/// (`ESMTP`, `FTP`), and otherwise the client's first command decides (`EHLO`/`HELO` for SMTP,
/// `USER`, `AUTH`, `FEAT` for FTP), so an unnamed `220` waits for the client.
fn probe_mail_or_ftp(cfg: &AppLayerConfig, dir: Direction, start: &[u8]) -> Banner {
    let smtp_on = cfg.smtp.is_some();
    if dir == Direction::ToServer {
        if smtp_on && smtp::probe(dir, start) == smtp::Probe::Smtp {
            return Banner::Match(AppProto::Smtp, false);
        }
        if cfg.ftp && ftp::probe(dir, start) == ftp::Probe::Ftp {
            return Banner::Match(AppProto::Ftp, false);
        }
        let could = (smtp_on && smtp::probe(dir, start) == smtp::Probe::NeedMore)
            || (cfg.ftp && ftp::probe(dir, start) == ftp::Probe::NeedMore);
        return if could { Banner::NeedMore } else { Banner::No };
    }
    let greets = (smtp_on && smtp::probe(dir, start) == smtp::Probe::Smtp) || (cfg.ftp && ftp::probe(dir, start) == ftp::Probe::Ftp);
    if !greets {
        let could = (smtp_on && smtp::probe(dir, start) == smtp::Probe::NeedMore)
            || (cfg.ftp && ftp::probe(dir, start) == ftp::Probe::NeedMore);
        return if could { Banner::NeedMore } else { Banner::No };
    }
    let line = &start[..start.iter().position(|&b| b == b'\n').unwrap_or(start.len())];
    let upper = line.to_ascii_uppercase();
    let names = |word: &[u8]| upper.windows(word.len()).any(|w| w == word);
    if smtp_on && (names(b"SMTP") || names(b"POSTFIX") || names(b"EXIM") || names(b"SENDMAIL") || names(b" MAIL")) {
        Banner::Match(AppProto::Smtp, true)
    } else if cfg.ftp && names(b"FTP") {
        Banner::Match(AppProto::Ftp, true)
    } else {
        // A greeting that does not say (or is not complete yet): the client's first command will.
        Banner::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::MemorySink;
    use crate::mailstore::MemoryMailSink;

    struct Run {
        app: AppLayer,
        cfg: AppLayerConfig,
        files: MemorySink,
        mails: MemoryMailSink,
        out: Emit,
    }

    impl Run {
        fn new() -> Run {
            Run {
                app: AppLayer::new(),
                cfg: AppLayerConfig::default(),
                files: MemorySink::new(1 << 20),
                mails: MemoryMailSink::new(1 << 20),
                out: Emit::default(),
            }
        }

        fn feed(&mut self, dir: Direction, ev: StreamEvent<'_>) -> Detection {
            let mut sinks = Sinks { files: &mut self.files, mails: &mut self.mails };
            self.app.on_stream(&self.cfg, dir, ev, Timestamp::ZERO, &mut sinks, &mut self.out)
        }

        fn event_types(&self) -> Vec<&'static str> {
            self.out.events.iter().map(|e| e.event_type).collect()
        }
    }

    const REQUEST: &[u8] = b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

    #[test]
    fn http_on_any_port_is_recognised_from_its_first_bytes() {
        let mut r = Run::new();
        // A request split so the method alone cannot decide yet.
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(b"GE")).detected, None);
        let d = r.feed(Direction::ToServer, StreamEvent::Data(&REQUEST[2..]));
        assert_eq!(d, Detection { detected: Some(AppProto::Http), reversed: false });
        r.feed(Direction::ToClient, StreamEvent::Data(RESPONSE));
        assert_eq!(r.app.proto(), Some(AppProto::Http));
        assert!(r.event_types().contains(&"http"), "the held first bytes reached the parser: {:?}", r.event_types());
    }

    #[test]
    fn a_response_seen_as_client_data_reverses_the_flow() {
        let mut r = Run::new();
        let d = r.feed(Direction::ToServer, StreamEvent::Data(RESPONSE));
        assert_eq!(d, Detection { detected: Some(AppProto::Http), reversed: true });
        // After the caller swaps, the request arrives as to-server data.
        r.feed(Direction::ToServer, StreamEvent::Data(REQUEST));
        assert_eq!(r.app.proto(), Some(AppProto::Http));
    }

    #[test]
    fn tls_and_smtp_are_recognised() {
        let mut r = Run::new();
        // A TLS 1.2 handshake record header and the start of a ClientHello.
        let hello = [0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03];
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(&hello)).detected, Some(AppProto::Tls));

        let mut r = Run::new();
        let d = r.feed(Direction::ToClient, StreamEvent::Data(b"220 mx.example ESMTP Postfix\r\n"));
        assert_eq!(d.detected, Some(AppProto::Smtp));
        assert!(!d.reversed);
    }

    #[test]
    fn pop3_and_imap_greetings_are_recognised() {
        let mut r = Run::new();
        assert_eq!(r.feed(Direction::ToClient, StreamEvent::Data(b"+OK Dovecot ready.\r\n")).detected, Some(AppProto::Pop3));
        let mut r = Run::new();
        assert_eq!(
            r.feed(Direction::ToClient, StreamEvent::Data(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")).detected,
            Some(AppProto::Imap)
        );
    }

    #[test]
    fn ftp_is_told_from_smtp_by_greeting_or_first_command() {
        let mut r = Run::new();
        assert_eq!(r.feed(Direction::ToClient, StreamEvent::Data(b"220 (vsFTPd 3.0.3)\r\n")).detected, Some(AppProto::Ftp));
        let mut r = Run::new();
        assert_eq!(r.feed(Direction::ToClient, StreamEvent::Data(b"220 welcome\r\n")).detected, None);
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(b"USER anonymous\r\n")).detected, Some(AppProto::Ftp));
    }

    #[test]
    fn an_unnamed_220_greeting_waits_for_the_client() {
        let mut r = Run::new();
        assert_eq!(r.feed(Direction::ToClient, StreamEvent::Data(b"220 welcome\r\n")).detected, None);
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(b"EHLO client\r\n")).detected, Some(AppProto::Smtp));
    }

    #[test]
    fn unknown_bytes_or_gaps_on_both_sides_fail_detection() {
        let mut r = Run::new();
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(b"\x00\x01binary junk here")).detected, None);
        let d = r.feed(Direction::ToClient, StreamEvent::Gap { len: 100 });
        assert_eq!(d.detected, Some(AppProto::Failed));
        assert_eq!(r.app.proto(), Some(AppProto::Failed));
        // Nothing more is parsed or held.
        assert_eq!(r.feed(Direction::ToServer, StreamEvent::Data(REQUEST)).detected, None);
        assert!(r.out.events.is_empty());
    }

    #[test]
    fn held_bytes_are_bounded() {
        let mut r = Run::new();
        // Each chunk could still be the start of something: a long run of CRLF (HTTP allows
        // leading empty lines) is held only up to the limit.
        let chunk = vec![b'\n'; 1024];
        let mut detected = None;
        for _ in 0..(MAX_PROBE_BYTES / 1024 + 2) {
            detected = detected.or(r.feed(Direction::ToServer, StreamEvent::Data(&chunk)).detected);
        }
        assert_eq!(detected, Some(AppProto::Failed));
    }

    #[test]
    fn dns_over_udp_is_recognised_and_parsed() {
        let mut r = Run::new();
        // A query for a.example, type A, class IN.
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x00\x00\x01\x00\x01";
        let d = r.app.on_datagram(&r.cfg, Direction::ToServer, query, Timestamp::ZERO, &mut r.out);
        assert_eq!(d, Detection { detected: Some(AppProto::Dns), reversed: false });
        assert_eq!(r.event_types(), ["dns"]);
    }
}
