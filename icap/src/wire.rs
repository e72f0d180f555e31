//! Sans-IO ICAP/1.0 request parser (RFC 3507): bytes in, [`Event`]s out.
//!
//! The parser owns a small buffer. The caller [`RequestParser::push`]es whatever the socket gave
//! and [`RequestParser::poll`]s events until `Ok(None)`. Body data is handed out as soon as it is
//! decoded, so the buffer never holds more than one head (bounded by [`Limits`]) or one chunk-size
//! line plus the caller's last read.
//!
//! After an error the byte stream is out of step (a wrong `Encapsulated` offset, a bad chunk
//! size): the connection must be answered with an error status and closed, never resynced.

use std::net::IpAddr;

use thiserror::Error;

/// Largest ICAP request line plus ICAP headers accepted, by default. Squid sends well under 1 KiB.
pub const DEFAULT_MAX_ICAP_HEAD_BYTES: usize = 16 * 1024;
/// Largest total of the encapsulated HTTP headers (request and response heads together), by
/// default. Matches Squid's default `request_header_max_size` plus `reply_header_max_size`.
pub const DEFAULT_MAX_HTTP_HEADS_BYTES: usize = 128 * 1024;
/// Most ICAP header fields in one request.
pub const MAX_ICAP_HEADERS: usize = 64;
/// Longest chunk-size line (size, extensions such as `ieof`, line end). RFC 3507 4.5 only defines
/// `ieof`, so a long line is an attack or a broken client.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;
/// Most bytes of chunked-body trailer fields after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 4 * 1024;
/// Largest `Preview` value accepted; the server echoes preview bytes, so it keeps them.
pub const MAX_PREVIEW_BYTES: u64 = 1024 * 1024;

/// Size limits applied while parsing; every one is a bound on memory held per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// ICAP request line plus headers.
    pub max_icap_head_bytes: usize,
    /// All encapsulated HTTP header sections of one request together.
    pub max_http_heads_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_icap_head_bytes: DEFAULT_MAX_ICAP_HEAD_BYTES,
            max_http_heads_bytes: DEFAULT_MAX_HTTP_HEADS_BYTES,
        }
    }
}

/// ICAP method. Open: an unknown token is kept, and answered `501`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Options,
    Reqmod,
    Respmod,
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "OPTIONS" => Method::Options,
            "REQMOD" => Method::Reqmod,
            "RESPMOD" => Method::Respmod,
            other => Method::Other(other.to_string()),
        }
    }
}

/// One entity named in the `Encapsulated` header (RFC 3507 4.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    ReqHdr,
    ResHdr,
    ReqBody,
    ResBody,
    OptBody,
    NullBody,
}

impl Section {
    fn from_name(name: &str) -> Option<Section> {
        Some(match name {
            "req-hdr" => Section::ReqHdr,
            "res-hdr" => Section::ResHdr,
            "req-body" => Section::ReqBody,
            "res-body" => Section::ResBody,
            "opt-body" => Section::OptBody,
            "null-body" => Section::NullBody,
            _ => return None,
        })
    }

    /// The RFC spelling, as written in `Encapsulated`.
    pub fn name(self) -> &'static str {
        match self {
            Section::ReqHdr => "req-hdr",
            Section::ResHdr => "res-hdr",
            Section::ReqBody => "req-body",
            Section::ResBody => "res-body",
            Section::OptBody => "opt-body",
            Section::NullBody => "null-body",
        }
    }

    fn is_header(self) -> bool {
        matches!(self, Section::ReqHdr | Section::ResHdr)
    }
}

/// The parsed `Encapsulated` header: sections in wire order with their byte offsets from the end
/// of the ICAP head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encapsulated {
    pub sections: Vec<(Section, usize)>,
}

impl Encapsulated {
    /// The body section (always last), if the header named one.
    pub fn body(&self) -> Option<Section> {
        self.sections
            .last()
            .map(|(s, _)| *s)
            .filter(|s| !s.is_header())
    }

    /// Whether a chunked body follows the encapsulated headers.
    pub fn has_body(&self) -> bool {
        matches!(
            self.body(),
            Some(Section::ReqBody | Section::ResBody | Section::OptBody)
        )
    }

    /// Bytes of encapsulated headers between the ICAP head and the body: the body's offset.
    pub fn heads_len(&self) -> usize {
        self.sections.last().map_or(0, |(_, off)| *off)
    }
}

/// An ICAP request head with its encapsulated HTTP header sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The ICAP URI as sent, e.g. `icap://127.0.0.1:1344/respmod`.
    pub uri: String,
    /// Header fields in order, names as sent, values trimmed; folded lines joined by one space.
    pub headers: Vec<(String, String)>,
    pub encapsulated: Encapsulated,
    /// `Preview: n`: the client sends at most `n` body bytes, then waits for `100 Continue`.
    pub preview: Option<u64>,
    /// `Allow: 204`: the server may answer `204` after the whole body (RFC 3507 4.6).
    pub allow_204: bool,
    /// `X-Client-IP`, when present and an address.
    pub client_ip: Option<IpAddr>,
    /// `Connection: close`.
    pub connection_close: bool,
    /// The encapsulated HTTP request head (`req-hdr`), byte-exact, or empty.
    pub http_request_head: Vec<u8>,
    /// The encapsulated HTTP response head (`res-hdr`), byte-exact, or empty.
    pub http_response_head: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the parser found next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete request head. When `encapsulated.has_body()`, body events follow.
    Head(Box<Request>),
    /// Decoded body bytes (chunk framing removed).
    BodyData(Vec<u8>),
    /// The zero-size chunk. With a preview and `ieof == false`, more body follows only once the
    /// caller answers `100 Continue` and calls [`RequestParser::resume_body`]; otherwise the
    /// request is complete and the parser expects the next request.
    BodyEnd { ieof: bool },
}

/// Why a request could not be parsed. The connection is out of step afterwards.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum IcapError {
    #[error("ICAP head longer than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("more than {MAX_ICAP_HEADERS} ICAP header fields")]
    TooManyHeaders,
    #[error("malformed ICAP request line")]
    BadRequestLine,
    #[error("unsupported ICAP version")]
    UnsupportedVersion,
    #[error("malformed ICAP header field on line {line}")]
    BadHeader { line: usize },
    #[error("missing Encapsulated header")]
    MissingEncapsulated,
    #[error("malformed Encapsulated header: {reason}")]
    BadEncapsulated { reason: &'static str },
    #[error("encapsulated HTTP heads of {len} bytes exceed the limit of {limit}")]
    HttpHeadsTooLarge { len: usize, limit: usize },
    #[error("Encapsulated offset of {section} does not end an HTTP head")]
    OffsetMismatch { section: &'static str },
    #[error("malformed Preview header")]
    BadPreview,
    #[error("malformed chunk: {reason}")]
    BadChunk { reason: &'static str },
}

impl IcapError {
    /// The ICAP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            IcapError::HeadTooLarge { .. }
            | IcapError::TooManyHeaders
            | IcapError::HttpHeadsTooLarge { .. } => 413,
            IcapError::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}

#[derive(Debug)]
enum State {
    Head,
    HttpHeads(Box<Request>),
    Body(Chunked),
    /// A preview ended without `ieof`; waiting for the caller's decision.
    PreviewPaused,
    Failed,
}

enum Outcome {
    NeedMore,
    Advanced,
    Emit(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    SizeLine,
    Data { remaining: u64 },
    DataEnd,
    Trailer { ieof: bool, seen: usize },
}

/// Incremental ICAP request parser for one connection.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed; compacted lazily so draining is not quadratic.
    start: usize,
    state: State,
    in_preview: bool,
    /// Bytes of a pending ICAP head already scanned for its end (a line start).
    head_scanned: usize,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            buf: Vec::new(),
            start: 0,
            state: State::Head,
            in_preview: false,
            head_scanned: 0,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Failed) {
            // Out of step for good: keep nothing.
            return;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes pushed but not yet consumed by an event.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the parser sits between requests with nothing buffered: a clean place for the
    /// peer to close.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.buffered() == 0
    }

    /// After a preview ended without `ieof` and the caller sent `100 Continue`: read the rest.
    pub fn resume_body(&mut self) {
        if matches!(self.state, State::PreviewPaused) {
            self.state = State::Body(Chunked::SizeLine);
            self.in_preview = false;
        }
    }

    /// After a preview ended without `ieof` and the caller answered without `100 Continue`: the
    /// client sends no more of this body, the next bytes are a new request.
    pub fn abandon_body(&mut self) {
        if matches!(self.state, State::PreviewPaused) {
            self.state = State::Head;
            self.in_preview = false;
        }
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Event>, IcapError> {
        let result = self.step();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self) -> Result<Option<Event>, IcapError> {
        loop {
            match std::mem::replace(&mut self.state, State::Failed) {
                State::Failed => return Ok(None),
                State::PreviewPaused => {
                    self.state = State::PreviewPaused;
                    return Ok(None);
                }
                State::Head => {
                    // Blank lines between requests are tolerated noise (RFC 7230 3.5).
                    let noise = self.buf[self.start..]
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    self.start += noise;
                    let pending = &self.buf[self.start..];
                    let end = match find_head_end_from(pending, self.head_scanned) {
                        Ok(end) => end,
                        Err(line_start) => {
                            if pending.len() > self.limits.max_icap_head_bytes {
                                return Err(IcapError::HeadTooLarge {
                                    limit: self.limits.max_icap_head_bytes,
                                });
                            }
                            self.head_scanned = line_start;
                            self.state = State::Head;
                            return Ok(None);
                        }
                    };
                    self.head_scanned = 0;
                    if end > self.limits.max_icap_head_bytes {
                        return Err(IcapError::HeadTooLarge {
                            limit: self.limits.max_icap_head_bytes,
                        });
                    }
                    let request = parse_head(&pending[..end], &self.limits)?;
                    self.start += end;
                    self.in_preview = request.preview.is_some();
                    self.state = State::HttpHeads(Box::new(request));
                }
                State::HttpHeads(mut request) => {
                    let need = request.encapsulated.heads_len();
                    if self.buffered() < need {
                        self.state = State::HttpHeads(request);
                        return Ok(None);
                    }
                    let heads = &self.buf[self.start..self.start + need];
                    split_http_heads(&mut request, heads)?;
                    self.start += need;
                    self.state = if request.encapsulated.has_body() {
                        State::Body(Chunked::SizeLine)
                    } else {
                        State::Head
                    };
                    return Ok(Some(Event::Head(request)));
                }
                State::Body(chunked) => {
                    let (next, outcome) = self.step_chunked(chunked)?;
                    self.state = next;
                    match outcome {
                        Outcome::NeedMore => return Ok(None),
                        Outcome::Advanced => {}
                        Outcome::Emit(event) => return Ok(Some(event)),
                    }
                }
            }
        }
    }

    fn step_chunked(&mut self, chunked: Chunked) -> Result<(State, Outcome), IcapError> {
        let pending = &self.buf[self.start..];
        match chunked {
            Chunked::SizeLine => {
                let Some(line_end) = pending.iter().position(|&b| b == b'\n') else {
                    if pending.len() > MAX_CHUNK_LINE_BYTES {
                        return Err(IcapError::BadChunk {
                            reason: "chunk-size line too long",
                        });
                    }
                    return Ok((State::Body(chunked), Outcome::NeedMore));
                };
                if line_end > MAX_CHUNK_LINE_BYTES {
                    return Err(IcapError::BadChunk {
                        reason: "chunk-size line too long",
                    });
                }
                let line = strip_cr(&pending[..line_end]);
                let (size, ieof) = parse_chunk_size_line(line)?;
                self.start += line_end + 1;
                if size == 0 {
                    Ok((
                        State::Body(Chunked::Trailer { ieof, seen: 0 }),
                        Outcome::Advanced,
                    ))
                } else {
                    Ok((
                        State::Body(Chunked::Data { remaining: size }),
                        Outcome::Advanced,
                    ))
                }
            }
            Chunked::Data { remaining } => {
                if pending.is_empty() {
                    return Ok((State::Body(chunked), Outcome::NeedMore));
                }
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(pending.len());
                let data = pending[..take].to_vec();
                self.start += take;
                let left = remaining - take as u64;
                let next = if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data { remaining: left }
                };
                Ok((State::Body(next), Outcome::Emit(Event::BodyData(data))))
            }
            Chunked::DataEnd => match pending {
                [b'\r', b'\n', ..] => {
                    self.start += 2;
                    Ok((State::Body(Chunked::SizeLine), Outcome::Advanced))
                }
                [b'\n', ..] => {
                    self.start += 1;
                    Ok((State::Body(Chunked::SizeLine), Outcome::Advanced))
                }
                [] | [b'\r'] => Ok((State::Body(chunked), Outcome::NeedMore)),
                _ => Err(IcapError::BadChunk {
                    reason: "chunk data longer than its size",
                }),
            },
            Chunked::Trailer { ieof, seen } => {
                let Some(line_end) = pending.iter().position(|&b| b == b'\n') else {
                    if seen + pending.len() > MAX_TRAILER_BYTES {
                        return Err(IcapError::BadChunk {
                            reason: "trailer too long",
                        });
                    }
                    return Ok((State::Body(chunked), Outcome::NeedMore));
                };
                let empty = strip_cr(&pending[..line_end]).is_empty();
                let seen = seen + line_end + 1;
                if seen > MAX_TRAILER_BYTES {
                    return Err(IcapError::BadChunk {
                        reason: "trailer too long",
                    });
                }
                self.start += line_end + 1;
                if !empty {
                    return Ok((
                        State::Body(Chunked::Trailer { ieof, seen }),
                        Outcome::Advanced,
                    ));
                }
                let next = if self.in_preview && !ieof {
                    State::PreviewPaused
                } else {
                    self.in_preview = false;
                    State::Head
                };
                Ok((next, Outcome::Emit(Event::BodyEnd { ieof })))
            }
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<Request, IcapError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(strip_cr)
        .enumerate()
        .skip_while(|(_, l)| l.is_empty());
    let (_, request_line) = lines.next().ok_or(IcapError::BadRequestLine)?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| IcapError::BadRequestLine)?;
    let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IcapError::BadRequestLine);
    };
    if !method
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        return Err(IcapError::BadRequestLine);
    }
    if !version.starts_with("ICAP/1.") {
        return Err(if version.starts_with("ICAP/") {
            IcapError::UnsupportedVersion
        } else {
            IcapError::BadRequestLine
        });
    }

    let mut headers: Vec<(String, String)> = Vec::new();
    for (index, line) in lines {
        if line.is_empty() {
            break;
        }
        let line_no = index + 1;
        if matches!(line[0], b' ' | b'\t') {
            let Some((_, value)) = headers.last_mut() else {
                return Err(IcapError::BadHeader { line: line_no });
            };
            value.push(' ');
            value.push_str(String::from_utf8_lossy(line).trim());
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(IcapError::BadHeader { line: line_no })?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            return Err(IcapError::BadHeader { line: line_no });
        }
        if headers.len() == MAX_ICAP_HEADERS {
            return Err(IcapError::TooManyHeaders);
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string(),
        ));
    }

    let method = Method::from_token(method);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let encapsulated = match find("Encapsulated") {
        Some(value) => parse_encapsulated(value)?,
        None if matches!(method, Method::Reqmod | Method::Respmod) => {
            return Err(IcapError::MissingEncapsulated);
        }
        None => Encapsulated::default(),
    };
    check_sections(&method, &encapsulated)?;
    let heads_len = encapsulated.heads_len();
    if heads_len > limits.max_http_heads_bytes {
        return Err(IcapError::HttpHeadsTooLarge {
            len: heads_len,
            limit: limits.max_http_heads_bytes,
        });
    }
    let preview = match find("Preview") {
        Some(v) => {
            let n: u64 = v.parse().map_err(|_| IcapError::BadPreview)?;
            if n > MAX_PREVIEW_BYTES {
                return Err(IcapError::BadPreview);
            }
            Some(n)
        }
        None => None,
    };
    let allow_204 = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Allow"))
        .any(|(_, v)| v.split(',').any(|t| t.trim() == "204"));
    let client_ip = find("X-Client-IP").and_then(|v| v.trim().parse::<IpAddr>().ok());
    let connection_close = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Connection"))
        .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));

    Ok(Request {
        method,
        uri: uri.to_string(),
        headers,
        encapsulated,
        preview,
        allow_204,
        client_ip,
        connection_close,
        http_request_head: Vec::new(),
        http_response_head: Vec::new(),
    })
}

/// Parses `req-hdr=0, res-hdr=137, res-body=296` (RFC 3507 4.4.1), checking what can be checked
/// without the bytes: known names, no repeats, offsets starting at 0 and growing, headers before
/// at most one body, which comes last.
pub fn parse_encapsulated(value: &str) -> Result<Encapsulated, IcapError> {
    let bad = |reason| IcapError::BadEncapsulated { reason };
    let mut sections: Vec<(Section, usize)> = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim();
        let (name, offset) = entry.split_once('=').ok_or(bad("entry without '='"))?;
        let section = Section::from_name(name.trim()).ok_or(bad("unknown entity"))?;
        let offset = offset.trim();
        if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("offset is not a decimal number"));
        }
        let offset: usize = offset.parse().map_err(|_| bad("offset out of range"))?;
        if let Some(&(prev, prev_off)) = sections.last() {
            if !prev.is_header() {
                return Err(bad("entity after the body"));
            }
            // A header section is never empty: it holds at least its blank line.
            if offset <= prev_off {
                return Err(bad("offsets not increasing"));
            }
        } else if offset != 0 {
            return Err(bad("first offset is not 0"));
        }
        if sections.iter().any(|(s, _)| *s == section) {
            return Err(bad("entity repeated"));
        }
        sections.push((section, offset));
    }
    Ok(Encapsulated { sections })
}

fn check_sections(method: &Method, enc: &Encapsulated) -> Result<(), IcapError> {
    let bad = |reason| IcapError::BadEncapsulated { reason };
    let allowed: &[Section] = match method {
        Method::Reqmod => &[Section::ReqHdr, Section::ReqBody, Section::NullBody],
        Method::Respmod => &[
            Section::ReqHdr,
            Section::ResHdr,
            Section::ResBody,
            Section::NullBody,
        ],
        Method::Options => &[Section::OptBody, Section::NullBody],
        Method::Other(_) => return Ok(()),
    };
    if enc.sections.iter().any(|(s, _)| !allowed.contains(s)) {
        return Err(bad("entity not allowed for this method"));
    }
    if matches!(method, Method::Reqmod | Method::Respmod) && enc.body().is_none() {
        return Err(bad("no body entity"));
    }
    if enc
        .sections
        .windows(2)
        .any(|w| w[0].0 == Section::ResHdr && w[1].0 == Section::ReqHdr)
    {
        return Err(bad("req-hdr after res-hdr"));
    }
    Ok(())
}

/// Cuts the encapsulated header bytes at the `Encapsulated` offsets. Each cut must fall right
/// after an HTTP head's blank line: anything else means the offsets are wrong and the body
/// framing that follows cannot be trusted either.
fn split_http_heads(request: &mut Request, heads: &[u8]) -> Result<(), IcapError> {
    let sections = &request.encapsulated.sections;
    for (i, &(section, start)) in sections.iter().enumerate() {
        if !section.is_header() {
            continue;
        }
        let end = sections.get(i + 1).map_or(heads.len(), |(_, off)| *off);
        let bytes = &heads[start..end];
        let blank_line_at = find_head_end(bytes);
        if blank_line_at != Some(bytes.len()) {
            return Err(IcapError::OffsetMismatch {
                section: section.name(),
            });
        }
        match section {
            Section::ReqHdr => request.http_request_head = bytes.to_vec(),
            _ => request.http_response_head = bytes.to_vec(),
        }
    }
    Ok(())
}

/// End of the first head in `bytes` (just past its blank line), tolerating bare LF line ends.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    find_head_end_from(bytes, 0).ok()
}

/// Like [`find_head_end`], starting at line start `from` (bytes before it hold no blank line).
/// `Err` gives the last line start, where the next scan can resume: a head trickled in byte by
/// byte is then scanned once, not once per byte.
fn find_head_end_from(bytes: &[u8], from: usize) -> Result<usize, usize> {
    let mut line_start = from;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        if b == b'\n' {
            if strip_cr(&bytes[line_start..i]).is_empty() && line_start > 0 {
                return Ok(i + 1);
            }
            line_start = i + 1;
        }
    }
    Err(line_start)
}

/// `1a; ieof` → (26, true). Extensions other than `ieof` are ignored (RFC 7230 4.1.1).
fn parse_chunk_size_line(line: &[u8]) -> Result<(u64, bool), IcapError> {
    let bad = |reason| IcapError::BadChunk { reason };
    let text = std::str::from_utf8(line).map_err(|_| bad("chunk-size line is not text"))?;
    let (size, extensions) = text.split_once(';').unwrap_or((text, ""));
    let size = size.trim();
    if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("chunk size is not hexadecimal"));
    }
    let size = u64::from_str_radix(size, 16).map_err(|_| bad("chunk size out of range"))?;
    let ieof = extensions
        .split(';')
        .any(|e| e.trim().eq_ignore_ascii_case("ieof"));
    if ieof && size != 0 {
        return Err(bad("ieof on a chunk with data"));
    }
    Ok((size, ieof))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
