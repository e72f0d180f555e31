//! TLS handshake parsing.
//!
//! [`TlsState`] walks the record layer of both directions of a TCP flow, reassembles handshake
//! messages across records and segments (a ClientHello split over three segments, a certificate
//! chain over ten), and reads the ClientHello, ServerHello and (TLS <= 1.2) Certificate. It
//! writes one EVE `tls` record per flow, as Suricata 8 does, once the cleartext handshake is
//! over (or the flow ends), with SNI, version, certificate fields, JA3/JA3S and JA4. The SNI is
//! emitted as an artifact ([`weir_core::SeenIn::TlsSni`]); the accessors expose what detection
//! inspects (`tls.sni`, `tls.cert_subject`, `tls.cert_issuer`, `tls.version`, JA3/JA4).
//!
//! A record longer than [`MAX_RECORD_LEN`], or a handshake message longer than
//! [`MAX_HANDSHAKE_LEN`] (the 24-bit length can claim 16 MiB), is an anomaly and ends parsing of
//! the flow; what was learnt before is still logged.

pub mod fingerprint;
pub mod handshake;
pub mod x509;

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};
use weir_core::{Anomaly, Artifact, Direction, SeenIn, StreamEvent, Timestamp, UrlArtifact};

use crate::dns::escape_bytes;
use crate::emit::{AppEvent, Emit, ParserException};
pub use handshake::{ClientHello, ServerHello};
pub use x509::CertInfo;

/// RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes (RFC 8446 5.2 allows
/// less). A record header claiming more is not TLS, or is an attack on buffer sizes.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// The largest handshake message reassembled. Certificate chains are the big ones (a few KiB,
/// rarely past 30 KiB); the 24-bit length field would allow 16 MiB.
pub const MAX_HANDSHAKE_LEN: usize = 128 * 1024;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

/// The EVE `tls.version` spelling of a protocol version.
pub fn version_eve(v: u16) -> String {
    let s = match v {
        0 => "UNDETERMINED",
        0x0002 | 0x0200 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0x7f10..=0x7f1c => return format!("TLS 1.3 draft-{}", v & 0xff),
        0x7f00..=0x7f0f => "TLS 1.3 draft-<16",
        0xfb14..=0xfb1a => return format!("TLS 1.3 draft-{}-fb", v & 0xff),
        _ => return format!("0x{v:04x}"),
    };
    s.to_string()
}

/// Whether `v` is TLS 1.3 (final, IETF draft or Facebook draft), after whose ServerHello
/// everything but ChangeCipherSpec is encrypted.
fn is_tls13(v: u16) -> bool {
    v == 0x0304 || v >> 8 == 0x7f || (0xfb14..=0xfb1a).contains(&v)
}

/// What the first bytes of a TCP stream say about TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A ClientHello: the sender is the client.
    Request,
    /// A ServerHello: the sender is the server.
    Response,
    NoMatch,
    NeedMore,
}

/// Whether the start of a TCP stream is a TLS handshake record (on any port).
pub fn probe(stream: &[u8]) -> Probe {
    // Content type handshake, record version 3.0 to 3.4 (TLS 1.3 records say 3.1 or 3.3).
    for (i, ok) in [(0, HANDSHAKE..=HANDSHAKE), (1, 3..=3), (2, 0..=4)] {
        match stream.get(i) {
            None => return Probe::NeedMore,
            Some(b) if !ok.contains(b) => return Probe::NoMatch,
            Some(_) => {}
        }
    }
    let Some(len) = stream.get(3..5) else { return Probe::NeedMore };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if !(4..=MAX_RECORD_LEN).contains(&len) {
        return Probe::NoMatch;
    }
    match stream.get(5) {
        None => Probe::NeedMore,
        Some(&handshake::CLIENT_HELLO) => Probe::Request,
        Some(&handshake::SERVER_HELLO) => Probe::Response,
        Some(_) => Probe::NoMatch,
    }
}

#[derive(Debug, Default)]
struct Side {
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current record not yet seen.
    body_remaining: usize,
    /// Whether the current record's body goes into `handshake`.
    capture: bool,
    /// Handshake bytes not yet consumed as whole messages.
    handshake: Vec<u8>,
    /// A ChangeCipherSpec was sent: later handshake records are ciphertext.
    encrypted: bool,
    /// The record layer is lost (gap, bad header) or the direction ended.
    finished: bool,
}

/// Per-flow TLS state.
#[derive(Debug, Default)]
pub struct TlsState {
    sides: [Side; 2],
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    certificates: Vec<CertInfo>,
    certificate_seen: bool,
    session_resumed: bool,
    logged: bool,
    /// `ParserException::Error` was raised (once per flow).
    error_raised: bool,
}

impl TlsState {
    pub fn new() -> TlsState {
        TlsState::default()
    }

    /// One step of one direction of the flow.
    pub fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, ts: Timestamp, out: &mut Emit) {
        match event {
            StreamEvent::Data(data) => self.on_data(dir, data, ts, out),
            StreamEvent::Gap { .. } | StreamEvent::End => {
                // Records have no sync marker: after a gap the direction cannot be followed.
                let side = &mut self.sides[dir.index()];
                side.finished = true;
                side.handshake = Vec::new();
                if self.sides.iter().all(|s| s.finished) {
                    self.log(dir, ts, out);
                }
            }
        }
    }

    /// The server name the client asked for.
    pub fn sni(&self) -> Option<&[u8]> {
        self.client_hello.as_ref()?.sni.as_deref()
    }

    /// The negotiated version, once the ServerHello was seen.
    pub fn version(&self) -> Option<u16> {
        self.server_hello.as_ref().map(ServerHello::version)
    }

    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.client_hello.as_ref()
    }

    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.server_hello.as_ref()
    }

    /// The server's certificate chain as sent (TLS <= 1.2), the server's own first.
    pub fn certificates(&self) -> &[CertInfo] {
        &self.certificates
    }

    pub fn subject(&self) -> Option<&str> {
        self.certificates.first().map(|c| c.subject.as_str())
    }

    pub fn issuer(&self) -> Option<&str> {
        self.certificates.first().map(|c| c.issuer.as_str())
    }

    /// The JA3 string of the ClientHello (hash it with [`fingerprint::md5_hex`]).
    pub fn ja3(&self) -> Option<String> {
        self.client_hello.as_ref().map(fingerprint::ja3_string)
    }

    pub fn ja4(&self) -> Option<String> {
        self.client_hello.as_ref().map(fingerprint::ja4)
    }

    /// Whether the `tls` EVE record was written.
    pub fn logged(&self) -> bool {
        self.logged
    }

    #[cfg(test)]
    pub(crate) fn buffered(&self, dir: Direction) -> usize {
        self.sides[dir.index()].handshake.len()
    }

    fn give_up(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit, event: &'static str) {
        out.anomaly(ts, Anomaly::app_layer(event));
        // A record layer that cannot be followed ends parsing of both directions: the app-layer
        // error. (Gaps end a direction too, but those are the stream's loss, not bad input.)
        if !std::mem::replace(&mut self.error_raised, true) {
            out.exception(ts, ParserException::Error);
        }
        for side in &mut self.sides {
            side.finished = true;
            side.handshake = Vec::new();
        }
        self.log(dir, ts, out);
    }

    fn on_data(&mut self, dir: Direction, mut input: &[u8], ts: Timestamp, out: &mut Emit) {
        let i = dir.index();
        while !input.is_empty() && !self.sides[i].finished {
            let side = &mut self.sides[i];
            if side.header_len < 5 {
                let take = (5 - side.header_len).min(input.len());
                side.header[side.header_len..side.header_len + take].copy_from_slice(&input[..take]);
                side.header_len += take;
                input = &input[take..];
                if side.header_len == 5 {
                    self.on_record_header(dir, ts, out);
                }
                continue;
            }
            let take = side.body_remaining.min(input.len());
            if side.capture {
                side.handshake.extend_from_slice(&input[..take]);
            }
            side.body_remaining -= take;
            input = &input[take..];
            if side.body_remaining == 0 {
                self.end_of_record(dir, ts, out);
            }
        }
    }

    fn on_record_header(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        let [content_type, major, _minor, len_hi, len_lo] = self.sides[dir.index()].header;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if !matches!(content_type, CHANGE_CIPHER_SPEC | ALERT | HANDSHAKE | APPLICATION_DATA | HEARTBEAT) {
            return self.give_up(dir, ts, out, "tls.invalid_record_type");
        }
        if major != 3 {
            return self.give_up(dir, ts, out, "tls.invalid_record_version");
        }
        if len > MAX_RECORD_LEN {
            return self.give_up(dir, ts, out, "tls.record_overflow");
        }
        let side = &mut self.sides[dir.index()];
        side.body_remaining = len;
        side.capture = content_type == HANDSHAKE && !side.encrypted && !self.logged;

        // Encrypted traffic starting means the cleartext handshake is over.
        let server_done = dir == Direction::ToClient
            && self.server_hello.is_some()
            && matches!(content_type, CHANGE_CIPHER_SPEC | APPLICATION_DATA);
        let client_done = dir == Direction::ToServer && content_type == APPLICATION_DATA;
        if content_type == CHANGE_CIPHER_SPEC {
            self.sides[dir.index()].encrypted = true;
        }
        // RFC 5246 7.3: an abbreviated handshake echoes the client's session id and goes
        // straight to ChangeCipherSpec, without a Certificate.
        if let (true, false, Some(c), Some(s)) =
            (server_done, self.certificate_seen, &self.client_hello, &self.server_hello)
        {
            self.session_resumed =
                !is_tls13(s.version()) && !c.session_id.is_empty() && c.session_id == s.session_id;
        }
        if server_done || client_done {
            self.log(dir, ts, out);
        }
        if len == 0 {
            self.end_of_record(dir, ts, out);
        }
    }

    fn end_of_record(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        let side = &mut self.sides[dir.index()];
        side.header_len = 0;
        if !std::mem::take(&mut side.capture) {
            return;
        }
        let mut buf = std::mem::take(&mut side.handshake);
        let mut consumed = 0;
        while let Some(head) = buf.get(consumed..consumed + 4) {
            let msg_type = head[0];
            let len = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
            if len > MAX_HANDSHAKE_LEN {
                return self.give_up(dir, ts, out, "tls.handshake_invalid_length");
            }
            let Some(body) = buf.get(consumed + 4..consumed + 4 + len) else { break };
            consumed += 4 + len;
            self.on_handshake_message(dir, msg_type, body, ts, out);
            if self.logged {
                return; // the rest of the handshake is not read
            }
        }
        buf.drain(..consumed);
        self.sides[dir.index()].handshake = buf;
    }

    fn on_handshake_message(&mut self, dir: Direction, msg_type: u8, body: &[u8], ts: Timestamp, out: &mut Emit) {
        match (dir, msg_type) {
            (Direction::ToServer, handshake::CLIENT_HELLO) if self.client_hello.is_none() => {
                let Some(hello) = handshake::parse_client_hello(body) else {
                    return out.anomaly(ts, Anomaly::app_layer("tls.invalid_handshake_message"));
                };
                if let Some(sni) = hello.sni.as_deref().filter(|s| !s.is_empty()) {
                    let url = escape_bytes(sni).to_ascii_lowercase();
                    out.artifact(ts, Some(0), Artifact::Url(UrlArtifact { url, seen_in: SeenIn::TlsSni }));
                }
                self.client_hello = Some(hello);
            }
            (Direction::ToClient, handshake::SERVER_HELLO) if self.server_hello.is_none() => {
                let Some(hello) = handshake::parse_server_hello(body) else {
                    return out.anomaly(ts, Anomaly::app_layer("tls.invalid_handshake_message"));
                };
                let is_13 = is_tls13(hello.version());
                self.server_hello = Some(hello);
                if is_13 {
                    // Certificates and everything after are encrypted from here on.
                    self.sides[Direction::ToClient.index()].encrypted = true;
                    self.log(dir, ts, out);
                }
            }
            (Direction::ToClient, handshake::CERTIFICATE) if !self.certificate_seen => {
                self.certificate_seen = true;
                let Some(list) = handshake::parse_certificate_list(body) else {
                    return out.anomaly(ts, Anomaly::app_layer("tls.certificate_invalid_length"));
                };
                for der in list {
                    match x509::parse(der) {
                        Some(cert) => self.certificates.push(cert),
                        None => out.anomaly(ts, Anomaly::app_layer("tls.certificate_invalid_der")),
                    }
                }
            }
            (Direction::ToClient, handshake::SERVER_HELLO_DONE) => self.log(dir, ts, out),
            _ => {}
        }
    }

    /// Writes the flow's `tls` record, once, when something of the handshake was seen.
    fn log(&mut self, dir: Direction, ts: Timestamp, out: &mut Emit) {
        if self.logged || (self.client_hello.is_none() && self.server_hello.is_none()) {
            return;
        }
        self.logged = true;
        for side in &mut self.sides {
            side.capture = false;
            side.handshake = Vec::new();
        }
        let mut fields = Map::new();
        fields.insert("tls".into(), Value::Object(self.eve_object()));
        out.event(AppEvent { ts, event_type: "tls", tx_id: Some(0), direction: dir, fields });
    }

    /// The `tls` object, fields in the order Suricata 8's extended logging writes them.
    pub fn eve_object(&self) -> Map<String, Value> {
        let mut o = Map::new();
        let cert = self.certificates.first();
        if let Some(c) = cert {
            o.insert("subject".into(), json!(c.subject));
            o.insert("issuerdn".into(), json!(c.issuer));
            if !c.subject_alt_names.is_empty() {
                o.insert("subjectaltname".into(), json!(c.subject_alt_names));
            }
        }
        if self.session_resumed {
            o.insert("session_resumed".into(), json!(true));
        }
        if let Some(c) = cert {
            o.insert("serial".into(), json!(c.serial));
            o.insert("fingerprint".into(), json!(c.fingerprint));
        }
        if let Some(sni) = self.sni() {
            o.insert("sni".into(), json!(escape_bytes(sni)));
        }
        o.insert("version".into(), json!(version_eve(self.version().unwrap_or(0))));
        if let Some(c) = cert {
            o.insert("notbefore".into(), json!(c.not_before));
            o.insert("notafter".into(), json!(c.not_after));
        }
        if let Some(ch) = &self.client_hello {
            let s = fingerprint::ja3_string(ch);
            o.insert("ja3".into(), json!({"hash": fingerprint::md5_hex(&s), "string": s}));
        }
        if let Some(sh) = &self.server_hello {
            let s = fingerprint::ja3s_string(sh);
            o.insert("ja3s".into(), json!({"hash": fingerprint::md5_hex(&s), "string": s}));
        }
        if let Some(ch) = &self.client_hello {
            o.insert("ja4".into(), json!(fingerprint::ja4(ch)));
            if !ch.alpn.is_empty() {
                let alpns: Vec<String> = ch.alpn.iter().map(|a| escape_bytes(a)).collect();
                o.insert("client_alpns".into(), json!(alpns));
            }
        }
        if let Some(sh) = self.server_hello.as_ref().filter(|sh| !sh.alpn.is_empty()) {
            let alpns: Vec<String> = sh.alpn.iter().map(|a| escape_bytes(a)).collect();
            o.insert("server_alpns".into(), json!(alpns));
        }
        if let Some(ch) = &self.client_hello {
            let version = ch
                .supported_versions
                .iter()
                .copied()
                .filter(|v| !handshake::is_grease(*v))
                .max()
                .unwrap_or(ch.legacy_version);
            let not_grease = |v: &&u16| !handshake::is_grease(**v);
            o.insert(
                "client_handshake".into(),
                json!({
                    "version": version_eve(version),
                    "ciphers": ch.cipher_suites.iter().filter(not_grease).collect::<Vec<_>>(),
                    "exts": ch.extensions.iter().filter(not_grease).collect::<Vec<_>>(),
                    "sig_algs": ch.signature_algorithms.iter().filter(not_grease).collect::<Vec<_>>(),
                }),
            );
        }
        o
    }
}
