//! One HTTP request/response exchange, with the buffers detection reads.
//!
//! Buffer mapping for the detection engine (Suricata keyword -> accessor):
//! `http.method` -> [`HttpTx::method`], `http.uri` -> [`HttpTx::uri_normalized`],
//! `http.uri.raw` -> [`HttpTx::uri_raw`], `http.host` -> [`HttpTx::host_normalized`],
//! `http.host.raw` -> [`HttpTx::host`], `http.header` / `http.header.raw` ->
//! [`HttpTx::headers_buffer`] / `request_headers_raw` and `response_headers_raw`,
//! `http.header_names` -> [`HttpTx::header_names_buffer`], `http.user_agent`, `http.cookie`,
//! `http.content_type` -> the accessors of those names, `http.stat_code` / `http.stat_msg` ->
//! `status_code_raw` / `status_message`, `http.request_line` / `http.response_line` -> the fields
//! of those names, `http.request_body` / `http.response_body` -> the decoded bodies, `file.data` /
//! `file.name` -> [`HttpTx::files`] (one instance per file: each multipart file part, else the
//! body).

use weir_core::Direction;

/// A header as it crossed the wire: name and value bytes, the value trimmed of surrounding
/// whitespace and folded lines joined with a single space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// One transaction. Byte fields are raw wire bytes unless their name says otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpTx {
    /// Per-flow transaction number, from 0 (EVE `tx_id`).
    pub id: u64,
    /// The request line without its line ending.
    pub request_line: Vec<u8>,
    pub method: Vec<u8>,
    /// The request target exactly as sent.
    pub uri_raw: Vec<u8>,
    /// The request target after Suricata-style normalisation (percent-decoding of the path and
    /// query, dot-segment removal); see [`normalize_uri`].
    pub uri_normalized: Vec<u8>,
    /// `HTTP/1.1`, `HTTP/1.0`, or empty for an HTTP/0.9 request.
    pub request_protocol: Vec<u8>,
    /// Request headers in wire order, duplicates kept.
    pub request_headers: Vec<Header>,
    /// The request header block as received, from the first header line through the empty line.
    pub request_headers_raw: Vec<u8>,
    /// Decoded request body, up to the configured inspection limit.
    pub request_body: Vec<u8>,
    /// Decoded request body length (all of it, not only what was kept).
    pub request_body_len: u64,
    pub response_line: Vec<u8>,
    pub response_protocol: Vec<u8>,
    /// The status code as sent (`http.stat_code`).
    pub status_code_raw: Vec<u8>,
    pub status_code: Option<u16>,
    pub status_message: Vec<u8>,
    pub response_headers: Vec<Header>,
    pub response_headers_raw: Vec<u8>,
    /// Decoded response body (`file.data`, `http.response_body`), up to the inspection limit.
    pub response_body: Vec<u8>,
    pub response_body_len: u64,
    /// Response body length after transfer decoding (chunks joined), before content decoding:
    /// EVE `length`.
    pub response_message_len: u64,
    /// The request headers were complete (empty line seen).
    pub request_complete: bool,
    /// The response (headers and body) was complete.
    pub response_complete: bool,
    /// Headers dropped because of the header count or size limits.
    pub dropped_headers: u32,
    /// The request body is multipart/form-data: its files are [`HttpTx::request_files`], not
    /// the body itself.
    pub request_multipart: bool,
    /// The files of a multipart request (parts with a filename), in order, at most
    /// [`MAX_INSPECTED_FILES_PER_TX`], their bytes within the request inspection limit.
    pub request_files: Vec<TxFile>,
}

/// Most files of one request kept for inspection; later parts are still extracted and logged,
/// only rules no longer see them. Each kept file costs its name (capped) plus its bytes (within
/// the body inspection limit, shared by all the request's files).
pub const MAX_INSPECTED_FILES_PER_TX: usize = 64;

/// A file carried inside a message body, as detection sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxFile {
    /// The name from the wire (multipart `filename`), as `file.name` inspects it.
    pub name: Vec<u8>,
    /// The file's first bytes (`file.data`).
    pub data: Vec<u8>,
}

impl HttpTx {
    /// The first header with this name (case-insensitive) in the given direction's headers.
    pub fn header(&self, dir: Direction, name: &str) -> Option<&[u8]> {
        let headers = match dir {
            Direction::ToServer => &self.request_headers,
            Direction::ToClient => &self.response_headers,
        };
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.as_slice())
    }

    /// The Host header value as sent (`http.host.raw`); for an absolute-form request target,
    /// the host of the target wins, as RFC 9112 section 3.2.2 requires.
    pub fn host(&self) -> Option<&[u8]> {
        if let Some(authority) = absolute_authority(&self.uri_raw) {
            return Some(authority);
        }
        self.header(Direction::ToServer, "host")
    }

    /// Host in lower case without the port (`http.host`).
    pub fn host_normalized(&self) -> Option<Vec<u8>> {
        let host = self.host()?;
        let (name, _) = split_host_port(host);
        Some(name.to_ascii_lowercase())
    }

    /// The port given in the Host (or the absolute target), when there is one.
    pub fn host_port(&self) -> Option<u16> {
        split_host_port(self.host()?).1
    }

    pub fn user_agent(&self) -> Option<&[u8]> {
        self.header(Direction::ToServer, "user-agent")
    }

    pub fn cookie(&self) -> Option<&[u8]> {
        self.header(Direction::ToServer, "cookie")
    }

    /// The response's Content-Type (EVE `http_content_type` takes it without parameters).
    pub fn content_type(&self) -> Option<&[u8]> {
        self.header(Direction::ToClient, "content-type")
    }

    pub fn referer(&self) -> Option<&[u8]> {
        self.header(Direction::ToServer, "referer")
    }

    /// `http.header` for one direction: each header as `Name: value\r\n`, in wire order
    /// (Suricata leaves out Cookie, which has its own buffer).
    pub fn headers_buffer(&self, dir: Direction) -> Vec<u8> {
        let headers = match dir {
            Direction::ToServer => &self.request_headers,
            Direction::ToClient => &self.response_headers,
        };
        let mut out = Vec::new();
        for h in headers {
            if h.name.eq_ignore_ascii_case(b"cookie") || h.name.eq_ignore_ascii_case(b"set-cookie") {
                continue;
            }
            out.extend_from_slice(&h.name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The name a body's file gets when it is not a multipart part: the Content-Disposition
    /// filename, else the URI path, as Suricata names it.
    pub fn file_name(&self, dir: Direction) -> Vec<u8> {
        if let Some(name) = self.header(dir, "content-disposition").and_then(super::multipart::disposition_filename) {
            return name;
        }
        let path_end = self.uri_raw.iter().position(|&b| b == b'?').unwrap_or(self.uri_raw.len());
        normalize_uri(&self.uri_raw[..path_end])
    }

    /// The files of one direction as `(file.name, file.data)` pairs, one per file: each file
    /// part of a multipart request, else the decoded body (when there is one).
    pub fn files(&self, dir: Direction) -> Vec<(Vec<u8>, &[u8])> {
        match dir {
            Direction::ToServer if self.request_multipart => {
                self.request_files.iter().map(|f| (f.name.clone(), f.data.as_slice())).collect()
            }
            Direction::ToServer if self.request_body.is_empty() => Vec::new(),
            Direction::ToServer => vec![(self.file_name(dir), self.request_body.as_slice())],
            Direction::ToClient if self.response_body.is_empty() => Vec::new(),
            Direction::ToClient => vec![(self.file_name(dir), self.response_body.as_slice())],
        }
    }

    /// `http.header_names`: `\r\n` then each name followed by `\r\n`, then a final `\r\n`.
    pub fn header_names_buffer(&self, dir: Direction) -> Vec<u8> {
        let headers = match dir {
            Direction::ToServer => &self.request_headers,
            Direction::ToClient => &self.response_headers,
        };
        let mut out = b"\r\n".to_vec();
        for h in headers {
            out.extend_from_slice(&h.name);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// For an absolute-form target (`http://host:port/path`), the `host:port` part.
pub(crate) fn absolute_authority(uri: &[u8]) -> Option<&[u8]> {
    absolute_parts(uri).map(|(host, _)| host)
}

/// The host part of an absolute-form target and where its path starts.
fn absolute_parts(uri: &[u8]) -> Option<(&[u8], usize)> {
    let starts = |p: &[u8]| uri.len() >= p.len() && uri[..p.len()].eq_ignore_ascii_case(p);
    let scheme_len = if starts(b"http://") {
        7
    } else if starts(b"https://") {
        8
    } else {
        return None;
    };
    let rest = &uri[scheme_len..];
    let end = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo is not part of the host.
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    Some((host, scheme_len + end))
}

/// Splits `host[:port]` (IPv6 literals in brackets keep their colons).
pub(crate) fn split_host_port(host: &[u8]) -> (&[u8], Option<u16>) {
    let search_from = if host.first() == Some(&b'[') {
        host.iter().position(|&b| b == b']').unwrap_or(0)
    } else {
        0
    };
    match host[search_from..].iter().rposition(|&b| b == b':') {
        Some(rel) => {
            let colon = search_from + rel;
            let port = std::str::from_utf8(&host[colon + 1..]).ok().and_then(|p| p.trim().parse().ok());
            (&host[..colon], port)
        }
        None => (host, None),
    }
}

/// Suricata-style normalisation of a request target: `%xx` escapes decoded (invalid ones kept
/// as they are), `\` left alone, `.` and `..` path segments removed. The query is decoded but
/// not restructured.
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    // For an absolute target only the path and query are the URI.
    let target = match absolute_parts(raw) {
        Some((_, path_start)) => &raw[path_start..],
        None => raw,
    };
    let split = target.iter().position(|&b| b == b'?').unwrap_or(target.len());
    let path = percent_decode(&target[..split]);
    let mut out = remove_dot_segments(&path);
    if split < target.len() {
        out.extend_from_slice(&percent_decode(&target[split..]));
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (s.get(i + 1).and_then(hex_val), s.get(i + 2).and_then(hex_val))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn hex_val(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 section 5.2.4, over bytes.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let absolute = path.first() == Some(&b'/');
    let mut segments: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            b"." => trailing_slash = i == last,
            b".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            b"" if i == 0 && absolute => {}
            _ => {
                segments.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for seg in &segments {
        if absolute || !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(seg);
    }
    if trailing_slash || (absolute && segments.is_empty()) {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalisation_decodes_and_removes_dots() {
        assert_eq!(normalize_uri(b"/a/./b/../c%2Ehtml?x=%41"), b"/a/c.html?x=A");
        assert_eq!(normalize_uri(b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(normalize_uri(b"/dir/"), b"/dir/");
        assert_eq!(normalize_uri(b"/%zz"), b"/%zz");
        assert_eq!(normalize_uri(b"http://h:8080/a/../b"), b"/b");
        assert_eq!(normalize_uri(b"http://u@h/a"), b"/a");
        assert_eq!(normalize_uri(b"http://"), b"/");
        assert_eq!(normalize_uri(b"http:///x"), b"/x");
    }

    #[test]
    fn host_port_split_handles_ipv6() {
        assert_eq!(split_host_port(b"example.com:8080"), (&b"example.com"[..], Some(8080)));
        assert_eq!(split_host_port(b"[::1]:81"), (&b"[::1]"[..], Some(81)));
        assert_eq!(split_host_port(b"[::1]"), (&b"[::1]"[..], None));
    }

    #[test]
    fn header_names_buffer_matches_suricata_layout() {
        let tx = HttpTx {
            request_headers: vec![
                Header { name: b"Host".to_vec(), value: b"a".to_vec() },
                Header { name: b"Cookie".to_vec(), value: b"c=1".to_vec() },
            ],
            ..Default::default()
        };
        assert_eq!(tx.header_names_buffer(Direction::ToServer), b"\r\nHost\r\nCookie\r\n\r\n");
        assert_eq!(tx.headers_buffer(Direction::ToServer), b"Host: a\r\n");
        assert_eq!(tx.cookie(), Some(&b"c=1"[..]));
    }
}
