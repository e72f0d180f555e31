//! What the server hands its caller: one proxied HTTP message, owned.

use std::net::{IpAddr, SocketAddr};

use weir_core::{Direction, StreamEvent, Timestamp};

/// Which side of the HTTP exchange the proxy sent for inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The client's request (REQMOD): head and body are the request's.
    Reqmod,
    /// The server's response (RESPMOD): the body is the response's; the request head comes along
    /// for context when the proxy sends it.
    Respmod,
}

/// One REQMOD or RESPMOD transaction, handed over after Weir answered the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub mode: Mode,
    /// The ICAP service URI the proxy called.
    pub service_uri: String,
    /// Wall-clock time the ICAP request head arrived.
    pub received_at: Timestamp,
    /// The proxy's end of the ICAP connection.
    pub proxy_addr: SocketAddr,
    /// The proxy's client, from `X-Client-IP`.
    pub client_ip: Option<IpAddr>,
    /// The encapsulated HTTP request head, byte-exact (empty when not sent).
    pub http_request_head: Vec<u8>,
    /// The encapsulated HTTP response head, byte-exact (empty when not sent).
    pub http_response_head: Vec<u8>,
    /// Whether the proxy sent a body section (`req-body`/`res-body`) rather than `null-body`.
    pub has_body: bool,
    /// The decoded body (ICAP chunking removed; HTTP content coding untouched), at most the
    /// server's `max_body_bytes`.
    pub body: Vec<u8>,
    /// Body bytes the proxy sent, kept or not.
    pub body_len: u64,
    /// False when the proxy stopped mid-message (closed, timed out, broke framing): the body
    /// is what arrived before that.
    pub complete: bool,
}

/// One direction of the HTTP exchange, framed so an HTTP/1.x parser reads it as it would from
/// the wire: the head, the kept body, then a gap for body bytes not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpStream<'a> {
    pub head: Vec<u8>,
    pub body: &'a [u8],
    /// Body bytes sent by the proxy but not kept (over the body limit).
    pub missing: u64,
}

impl HttpStream<'_> {
    /// The stream as reassembly would hand it to a parser; no `End`, the caller decides that.
    pub fn events(&self) -> impl Iterator<Item = StreamEvent<'_>> {
        let head = (!self.head.is_empty()).then_some(StreamEvent::Data(&self.head));
        let body = (!self.body.is_empty()).then_some(StreamEvent::Data(self.body));
        let gap = (self.missing > 0).then_some(StreamEvent::Gap { len: self.missing });
        head.into_iter().chain(body).chain(gap)
    }
}

impl Transaction {
    /// Whether body bytes were dropped at the body limit.
    pub fn body_truncated(&self) -> bool {
        (self.body.len() as u64) < self.body_len
    }

    /// The HTTP bytes of one direction. ICAP carries bodies de-chunked, so a head that framed
    /// its body with `Transfer-Encoding: chunked` or a `Content-Length` is rewritten to say
    /// `Content-Length: <bytes the proxy sent>`; heads without a body section are unchanged,
    /// except that in RESPMOD the request body is never sent, so the request head is rewritten
    /// to announce none. Empty when the proxy sent nothing for that direction.
    pub fn http_stream(&self, dir: Direction) -> HttpStream<'_> {
        let body_dir = match self.mode {
            Mode::Reqmod => Direction::ToServer,
            Mode::Respmod => Direction::ToClient,
        };
        let head = match dir {
            Direction::ToServer => &self.http_request_head,
            Direction::ToClient => &self.http_response_head,
        };
        if dir == body_dir && self.has_body {
            return HttpStream {
                head: reframe(head, self.body_len),
                body: &self.body,
                missing: self.body_len - self.body.len() as u64,
            };
        }
        let head =
            if dir == Direction::ToServer && self.mode == Mode::Respmod && declares_body(head) {
                reframe(head, 0)
            } else {
                head.clone()
            };
        HttpStream {
            head,
            body: &[],
            missing: 0,
        }
    }
}

fn header_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn is_framing(line: &[u8]) -> bool {
    let name = line.split(|&b| b == b':').next().unwrap_or(line);
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

fn declares_body(head: &[u8]) -> bool {
    header_lines(head).skip(1).any(|line| {
        if !is_framing(line) {
            return false;
        }
        let value = line.splitn(2, |&b| b == b':').nth(1).unwrap_or(b"");
        let value = String::from_utf8_lossy(value);
        value.trim() != "0"
    })
}

/// The head with its framing headers replaced by one `Content-Length`. Folded continuation
/// lines of a dropped header go with it. Empty heads stay empty.
fn reframe(head: &[u8], body_len: u64) -> Vec<u8> {
    if head.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(head.len() + 24);
    let mut dropping = false;
    for (i, line) in header_lines(head).enumerate() {
        if line.is_empty() {
            break;
        }
        if i > 0 {
            let continuation = matches!(line[0], b' ' | b'\t');
            if !continuation {
                dropping = is_framing(line);
            }
            if dropping {
                continue;
            }
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {body_len}\r\n\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(mode: Mode, req: &[u8], res: &[u8], body: &[u8], body_len: u64) -> Transaction {
        Transaction {
            mode,
            service_uri: "icap://127.0.0.1/x".into(),
            received_at: Timestamp::ZERO,
            proxy_addr: "127.0.0.1:9".parse().unwrap(),
            client_ip: None,
            http_request_head: req.to_vec(),
            http_response_head: res.to_vec(),
            has_body: true,
            body: body.to_vec(),
            body_len,
            complete: true,
        }
    }

    #[test]
    fn chunked_response_is_reframed_with_length_and_gap() {
        let res =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n";
        let t = tx(
            Mode::Respmod,
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            res,
            b"hello",
            9,
        );
        assert!(t.body_truncated());
        let s = t.http_stream(Direction::ToClient);
        assert_eq!(
            s.head,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n".to_vec()
        );
        let events: Vec<_> = s.events().collect();
        assert_eq!(
            events,
            vec![
                StreamEvent::Data(&s.head),
                StreamEvent::Data(b"hello"),
                StreamEvent::Gap { len: 4 }
            ]
        );
        // The request head needs no rewrite: it announces no body.
        let req = t.http_stream(Direction::ToServer);
        assert_eq!(req.head, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n".to_vec());
        assert_eq!(req.events().count(), 1);
    }

    #[test]
    fn respmod_request_head_with_body_announces_none() {
        let req = b"POST /u HTTP/1.1\r\nContent-Length: 7\r\nHost: h\r\n\r\n";
        let t = tx(
            Mode::Respmod,
            req,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"",
            0,
        );
        assert_eq!(
            t.http_stream(Direction::ToServer).head,
            b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn reqmod_body_goes_to_server_and_folded_framing_is_dropped() {
        let req = b"POST /u HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\nHost: h\r\n\r\n";
        let t = tx(Mode::Reqmod, req, b"", b"abc", 3);
        let s = t.http_stream(Direction::ToServer);
        assert_eq!(
            s.head,
            b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n".to_vec()
        );
        assert_eq!(s.missing, 0);
        assert_eq!(t.http_stream(Direction::ToClient).events().count(), 0);
    }
}
