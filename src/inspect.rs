//! The app-layer buffers rules inspect, named as the rule language names them. This is the one
//! place that knows both the parsers' transaction types (extract) and the rule buffer names
//! (detect), so neither crate imports the other.

use weir_core::Direction;
use weir_extract::dns::DnsTransaction;
use weir_extract::http::HttpTx;
use weir_extract::mime::EmailInfo;
use weir_extract::tls::TlsState;

/// Owned buffers of one transaction in one direction.
#[derive(Debug, Default)]
pub struct TxBuffers {
    items: Vec<(&'static str, Vec<u8>)>,
}

impl TxBuffers {
    /// Adds one named buffer.
    pub fn add(&mut self, name: &'static str, bytes: &[u8]) {
        self.put(name, bytes);
    }

    fn put(&mut self, name: &'static str, bytes: &[u8]) {
        self.items.push((name, bytes.to_vec()));
    }

    fn put_opt(&mut self, name: &'static str, bytes: Option<&[u8]>) {
        if let Some(b) = bytes {
            self.put(name, b);
        }
    }

    /// Borrowed (name, bytes) pairs, the shape the matcher takes.
    pub fn view(&self) -> Vec<(&str, &[u8])> {
        self.items.iter().map(|(n, b)| (*n, b.as_slice())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// An HTTP transaction as seen after data of `dir`: request buffers always (rules may combine
/// them with response buffers), and the header buffers of `dir` itself.
pub fn http(tx: &HttpTx, dir: Direction) -> TxBuffers {
    let mut b = TxBuffers::default();
    if !tx.request_line.is_empty() {
        b.put("http.method", &tx.method);
        b.put("http.uri", &tx.uri_normalized);
        b.put("http.uri.raw", &tx.uri_raw);
        b.put("http.protocol", &tx.request_protocol);
        b.put("http.request_line", &tx.request_line);
        b.put_opt("http.host.raw", tx.host());
        if let Some(host) = tx.host_normalized() {
            b.put("http.host", &host);
        }
        b.put_opt("http.user_agent", tx.user_agent());
        b.put_opt("http.cookie", tx.cookie());
        b.put_opt("http.referer", tx.referer());
        b.put_opt("http.accept", tx.header(Direction::ToServer, "Accept"));
        b.put_opt("http.accept_enc", tx.header(Direction::ToServer, "Accept-Encoding"));
        b.put_opt("http.accept_lang", tx.header(Direction::ToServer, "Accept-Language"));
        b.put_opt("http.connection", tx.header(Direction::ToServer, "Connection"));
        if !tx.request_body.is_empty() {
            b.put("http.request_body", &tx.request_body);
        }
    }
    // One `Name: value` instance per header, for http.request_header / http.response_header.
    let each_header = |b: &mut TxBuffers, name: &'static str, headers: &[weir_extract::http::Header]| {
        for h in headers {
            let mut line = h.name.clone();
            line.extend_from_slice(b": ");
            line.extend_from_slice(&h.value);
            b.items.push((name, line));
        }
    };
    each_header(&mut b, "http.request_header", &tx.request_headers);
    match dir {
        Direction::ToServer => {
            b.put("http.header", &tx.headers_buffer(Direction::ToServer));
            b.put("http.header.raw", &tx.request_headers_raw);
            b.put("http.header_names", &tx.header_names_buffer(Direction::ToServer));
            b.put_opt("http.content_type", tx.header(Direction::ToServer, "Content-Type"));
            b.put_opt("http.content_len", tx.header(Direction::ToServer, "Content-Length"));
            put_http_files(&mut b, tx, Direction::ToServer);
        }
        Direction::ToClient if !tx.response_line.is_empty() => {
            each_header(&mut b, "http.response_header", &tx.response_headers);
            b.put("http.stat_code", &tx.status_code_raw);
            b.put("http.stat_msg", &tx.status_message);
            b.put("http.response_line", &tx.response_line);
            b.put("http.header", &tx.headers_buffer(Direction::ToClient));
            b.put("http.header.raw", &tx.response_headers_raw);
            b.put("http.header_names", &tx.header_names_buffer(Direction::ToClient));
            b.put_opt("http.content_type", tx.header(Direction::ToClient, "Content-Type"));
            b.put_opt("http.content_len", tx.header(Direction::ToClient, "Content-Length"));
            b.put_opt("http.server", tx.header(Direction::ToClient, "Server"));
            b.put_opt("http.location", tx.header(Direction::ToClient, "Location"));
            if !tx.response_body.is_empty() {
                b.put("http.response_body", &tx.response_body);
            }
            put_http_files(&mut b, tx, Direction::ToClient);
        }
        Direction::ToClient => {}
    }
    b
}

/// One `file.name` and one `file.data` instance per file of `dir`, so that a rule's matches on
/// one `file.data` hold within a single file, as Suricata inspects each file separately.
fn put_http_files(b: &mut TxBuffers, tx: &HttpTx, dir: Direction) {
    for (name, data) in tx.files(dir) {
        b.put("file.name", &name);
        if !data.is_empty() {
            b.put("file.data", data);
        }
    }
}

/// A DNS message: its question names (requests) or its answer names (responses).
pub fn dns(tx: &DnsTransaction) -> TxBuffers {
    let mut b = TxBuffers::default();
    for name in tx.query_names() {
        if !tx.is_response() {
            b.put("dns.query", name);
        }
        b.put("dns.queries.rrname", name);
    }
    for name in tx.answer_names() {
        b.put("dns.answer.name", name);
        b.put("dns.answers.rrname", name);
    }
    b
}

/// The TLS handshake so far: the client's fields after client data, the server's after server
/// data (with the client's, for rules that combine them).
pub fn tls(state: &TlsState, dir: Direction) -> TxBuffers {
    let mut b = TxBuffers::default();
    b.put_opt("tls.sni", state.sni());
    if let Some(ja3) = state.ja3() {
        b.put("ja3.hash", weir_extract::tls::fingerprint::md5_hex(&ja3).as_bytes());
        b.put("ja3.string", ja3.as_bytes());
    }
    if let Some(ja4) = state.ja4() {
        b.put("ja4.hash", ja4.as_bytes());
    }
    if dir == Direction::ToClient {
        if let Some(s) = state.subject() {
            b.put("tls.cert_subject", s.as_bytes());
        }
        if let Some(s) = state.issuer() {
            b.put("tls.cert_issuer", s.as_bytes());
        }
    }
    b
}

/// An SMTP transaction: the envelope, the message's headers and URLs, attachment contents.
pub fn smtp(tx: &weir_extract::smtp::SmtpTx) -> TxBuffers {
    let mut b = TxBuffers::default();
    b.put_opt("smtp.helo", tx.helo.as_deref().map(str::as_bytes));
    b.put_opt("smtp.mail_from", tx.mail_from.as_deref().map(str::as_bytes));
    for r in &tx.rcpt_to {
        b.put("smtp.rcpt_to", r.as_bytes());
    }
    if let Some(email) = &tx.email {
        put_email(&mut b, email);
    }
    put_files(&mut b, &tx.file_data);
    b
}

/// A message retrieved over POP3 or IMAP: its headers, URLs and attachment contents.
pub fn retrieved(email: &EmailInfo, file_data: &[Vec<u8>]) -> TxBuffers {
    let mut b = TxBuffers::default();
    put_email(&mut b, email);
    put_files(&mut b, file_data);
    b
}

fn put_email(b: &mut TxBuffers, email: &EmailInfo) {
    b.put_opt("email.from", email.from.as_deref().map(str::as_bytes));
    b.put_opt("email.subject", email.subject.as_deref().map(str::as_bytes));
    b.put_opt("email.message_id", email.message_id.as_deref().map(str::as_bytes));
    b.put_opt("email.date", email.date.as_deref().map(str::as_bytes));
    b.put_opt("email.x_mailer", email.x_mailer.as_deref().map(str::as_bytes));
    for to in &email.to {
        b.put("email.to", to.as_bytes());
    }
    for cc in &email.cc {
        b.put("email.cc", cc.as_bytes());
    }
    for url in &email.urls {
        b.put("email.url", url.as_bytes());
    }
}

fn put_files(b: &mut TxBuffers, file_data: &[Vec<u8>]) {
    for data in file_data {
        b.put("file.data", data);
    }
}

/// An FTP command: `ftp.command` and `ftp.command_data`.
pub fn ftp(tx: &weir_extract::ftp::FtpTx) -> TxBuffers {
    let mut b = TxBuffers::default();
    b.put_opt("ftp.command", tx.command());
    b.put("ftp.command_data", tx.command_data());
    b
}
