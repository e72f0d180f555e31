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
use crate::tls::{self, TlsState};

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
}

impl Default for AppLayerConfig {
    fn default() -> Self {
        AppLayerConfig { http: Some(HttpConfig::default()), dns: true, tls: true }
    }
}

enum Parser {
    Detecting(Detecting),
    Http(Box<HttpState>),
    Dns(Box<DnsState>),
    Tls(Box<TlsState>),
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
}

impl Default for AppLayer {
    fn default() -> Self {
        AppLayer { parser: Parser::Detecting(Detecting::default()) }
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
        files: &mut dyn FileSink,
        out: &mut Emit,
    ) -> Detection {
        match &mut self.parser {
            Parser::Http(p) => p.on_stream(dir, ev, ts, files, out),
            Parser::Dns(p) => p.on_stream(dir, ev, ts, out),
            Parser::Tls(p) => p.on_stream(dir, ev, ts, out),
            Parser::Failed => {}
            Parser::Detecting(_) => return self.detect_stream(cfg, dir, ev, ts, files, out),
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
        files: &mut dyn FileSink,
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
                        self.start(cfg, proto, reversed, ts, files, out)
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
        files: &mut dyn FileSink,
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
            _ => Parser::Failed,
        };
        for (dir, bytes) in held {
            let dir = if reversed { dir.opposite() } else { dir };
            self.on_stream(cfg, dir, StreamEvent::Data(&bytes), ts, files, out);
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
