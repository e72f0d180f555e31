//! Parser tests over messages written after RFC 3507's examples (sections 4.5, 4.8, 4.9, 4.10)
//! and over broken ones.

use super::*;
use proptest::prelude::*;

/// Feeds `bytes` in one push and collects events until the parser wants more.
fn events(parser: &mut RequestParser, bytes: &[u8]) -> Result<Vec<Event>, IcapError> {
    parser.push(bytes);
    let mut out = Vec::new();
    while let Some(ev) = parser.poll()? {
        out.push(ev);
    }
    Ok(out)
}

fn parse_all(bytes: &[u8]) -> Result<Vec<Event>, IcapError> {
    events(&mut RequestParser::new(Limits::default()), bytes)
}

fn head(ev: &Event) -> &Request {
    match ev {
        Event::Head(r) => r,
        other => panic!("expected a head, got {other:?}"),
    }
}

/// Body data events joined, then the end marker.
fn body_of(evs: &[Event]) -> (Vec<u8>, Option<bool>) {
    let mut body = Vec::new();
    let mut end = None;
    for ev in evs {
        match ev {
            Event::BodyData(d) => body.extend_from_slice(d),
            Event::BodyEnd { ieof } => end = Some(*ieof),
            Event::Head(_) => {}
        }
    }
    (body, end)
}

// RFC 3507 4.8.2: a GET carried in REQMOD, no body.
const REQ_HDR_GET: &[u8] = b"GET / HTTP/1.1\r\n\
Host: www.origin-server.com\r\n\
Accept: text/html, text/plain\r\n\
Accept-Encoding: compress\r\n\
Cookie: ff39fk3jur@4ii0e02i\r\n\
If-None-Match: \"xyzzy\", \"r2d2xxxx\"\r\n\
\r\n";

#[test]
fn reqmod_get_with_null_body() {
    assert_eq!(REQ_HDR_GET.len(), 170);
    let mut msg = b"REQMOD icap://icap-server.net/server?arg=87 ICAP/1.0\r\n\
Host: icap-server.net\r\n\
Encapsulated: req-hdr=0, null-body=170\r\n\
\r\n"
        .to_vec();
    msg.extend_from_slice(REQ_HDR_GET);
    let evs = parse_all(&msg).unwrap();
    assert_eq!(evs.len(), 1);
    let r = head(&evs[0]);
    assert_eq!(r.method, Method::Reqmod);
    assert_eq!(r.uri, "icap://icap-server.net/server?arg=87");
    assert_eq!(r.header("host"), Some("icap-server.net"));
    assert_eq!(
        r.encapsulated.sections,
        vec![(Section::ReqHdr, 0), (Section::NullBody, 170)]
    );
    assert!(!r.encapsulated.has_body());
    assert_eq!(r.http_request_head, REQ_HDR_GET);
    assert!(r.http_response_head.is_empty());
    assert_eq!(
        (r.preview, r.allow_204, r.client_ip, r.connection_close),
        (None, false, None, false)
    );
}

// RFC 3507 4.8.2's second example: a POST whose body is sent chunked.
const REQ_HDR_POST: &[u8] = b"POST /origin-resource/form.pl HTTP/1.1\r\n\
Host: www.origin-server.com\r\n\
Accept: text/html, text/plain\r\n\
Accept-Encoding: compress\r\n\
Pragma: no-cache\r\n\
\r\n";

#[test]
fn reqmod_post_with_chunked_body() {
    assert_eq!(REQ_HDR_POST.len(), 147);
    let mut msg = b"REQMOD icap://icap-server.net/server?arg=87 ICAP/1.0\r\n\
Host: icap-server.net\r\n\
Encapsulated: req-hdr=0, req-body=147\r\n\
Allow: 204\r\n\
X-Client-IP: 192.0.2.7\r\n\
\r\n"
        .to_vec();
    msg.extend_from_slice(REQ_HDR_POST);
    msg.extend_from_slice(b"1e\r\nI am posting this information.\r\n0\r\n\r\n");
    let evs = parse_all(&msg).unwrap();
    let r = head(&evs[0]);
    assert!(r.allow_204);
    assert_eq!(r.client_ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(r.http_request_head, REQ_HDR_POST);
    assert_eq!(r.encapsulated.body(), Some(Section::ReqBody));
    assert_eq!(
        body_of(&evs),
        (b"I am posting this information.".to_vec(), Some(false))
    );
}

// RFC 3507 4.9.2: RESPMOD with the request head, the response head and a body.
const RES_REQ_HDR: &[u8] = b"GET /origin-resource HTTP/1.1\r\n\
Host: www.origin-server.com\r\n\
Accept: text/html, text/plain, image/gif\r\n\
Accept-Encoding: gzip, compress\r\n\
\r\n";
const RES_RES_HDR: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Mon, 10 Jan 2000 09:52:22 GMT\r\n\
Server: Apache/1.3.6 (Unix)\r\n\
ETag: \"63840-1ab7-378d415b\"\r\n\
Content-Type: text/html\r\n\
Content-Length: 51\r\n\
\r\n";

fn respmod_example() -> Vec<u8> {
    let mut msg = b"RESPMOD icap://icap.example.org/satisf ICAP/1.0\r\n\
Host: icap.example.org\r\n\
Encapsulated: req-hdr=0, res-hdr=137, res-body=296\r\n\
\r\n"
        .to_vec();
    msg.extend_from_slice(RES_REQ_HDR);
    msg.extend_from_slice(RES_RES_HDR);
    msg.extend_from_slice(
        b"33\r\nThis is data that was returned by an origin server.\r\n0\r\n\r\n",
    );
    msg
}

#[test]
fn respmod_with_both_heads_and_body() {
    assert_eq!((RES_REQ_HDR.len(), RES_RES_HDR.len()), (137, 159));
    let evs = parse_all(&respmod_example()).unwrap();
    let r = head(&evs[0]);
    assert_eq!(r.method, Method::Respmod);
    assert_eq!(r.http_request_head, RES_REQ_HDR);
    assert_eq!(r.http_response_head, RES_RES_HDR);
    assert_eq!(
        body_of(&evs),
        (
            b"This is data that was returned by an origin server.".to_vec(),
            Some(false)
        )
    );
}

#[test]
fn byte_at_a_time_gives_the_same_message() {
    let msg = respmod_example();
    let mut parser = RequestParser::new(Limits::default());
    let mut evs = Vec::new();
    for b in &msg {
        evs.extend(events(&mut parser, std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(head(&evs[0]).http_response_head, RES_RES_HDR);
    assert_eq!(
        body_of(&evs).0,
        b"This is data that was returned by an origin server."
    );
    assert!(parser.is_idle());
}

// RFC 3507 4.5: a preview that holds the whole body says so with `ieof`.
#[test]
fn preview_with_ieof_ends_the_body() {
    let res_hdr = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    let mut msg = format!(
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nPreview: 1024\r\nAllow: 204, trailers\r\n\
         Encapsulated: res-hdr=0, res-body={}\r\n\r\n",
        res_hdr.len()
    )
    .into_bytes();
    msg.extend_from_slice(res_hdr);
    msg.extend_from_slice(b"5\r\nhello\r\n0; ieof\r\n\r\n");
    let mut parser = RequestParser::new(Limits::default());
    let evs = events(&mut parser, &msg).unwrap();
    let r = head(&evs[0]);
    assert_eq!((r.preview, r.allow_204), (Some(1024), true));
    assert_eq!(body_of(&evs), (b"hello".to_vec(), Some(true)));
    assert!(parser.is_idle(), "ieof completes the request");
}

// RFC 3507 4.5: a preview without `ieof` pauses until `100 Continue`.
#[test]
fn preview_without_ieof_pauses_then_resumes() {
    let mut msg = b"REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nPreview: 4\r\n\
Encapsulated: req-hdr=0, req-body=26\r\n\r\n"
        .to_vec();
    msg.extend_from_slice(b"POST /u HTTP/1.1\r\nA: b\r\n\r\n");
    msg.extend_from_slice(b"4\r\nabcd\r\n0\r\n\r\n");
    let mut parser = RequestParser::new(Limits::default());
    let evs = events(&mut parser, &msg).unwrap();
    assert_eq!(body_of(&evs), (b"abcd".to_vec(), Some(false)));
    // Bytes that arrive before the caller decides stay buffered, untouched.
    assert_eq!(
        events(&mut parser, b"3\r\nefg\r\n0\r\n\r\n").unwrap(),
        vec![]
    );
    parser.resume_body();
    let rest = events(&mut parser, b"").unwrap();
    assert_eq!(body_of(&rest), (b"efg".to_vec(), Some(false)));
    assert!(parser.is_idle());
}

#[test]
fn preview_answered_early_expects_a_new_request() {
    let msg = b"REQMOD icap://h/reqmod ICAP/1.0\r\nPreview: 0\r\nEncapsulated: req-hdr=0, req-body=19\r\n\r\n\
POST / HTTP/1.1\r\n\r\n0\r\n\r\n";
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(events(&mut parser, msg).unwrap().len(), 2);
    parser.abandon_body();
    let next = events(&mut parser, b"OPTIONS icap://h/reqmod ICAP/1.0\r\n\r\n").unwrap();
    assert_eq!(head(&next[0]).method, Method::Options);
}

// RFC 3507 4.10.1: OPTIONS has no Encapsulated header to speak of.
#[test]
fn options_request() {
    let msg = b"OPTIONS icap://icap.server.net/sample-service ICAP/1.0\r\n\
Host: icap.server.net\r\n\
User-Agent: BazookaDotCom-ICAP-Client-Library/2.3\r\n\
\r\n";
    let evs = parse_all(msg).unwrap();
    let r = head(&evs[0]);
    assert_eq!(r.method, Method::Options);
    assert_eq!(r.uri, "icap://icap.server.net/sample-service");
    assert_eq!(
        r.header("User-Agent"),
        Some("BazookaDotCom-ICAP-Client-Library/2.3")
    );
    assert!(r.encapsulated.sections.is_empty());
}

#[test]
fn pipelined_requests_and_folded_header_and_bare_lf() {
    let msg = b"OPTIONS icap://h/x ICAP/1.0\r\nX-Long: a\r\n  b\r\nConnection: close\r\n\r\n\
\r\nREQMOD icap://h/x ICAP/1.0\nEncapsulated: null-body=0\nX-Client-IP: 2001:db8::1\n\n";
    let evs = parse_all(msg).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(head(&evs[0]).header("x-long"), Some("a b"));
    assert!(head(&evs[0]).connection_close);
    assert_eq!(head(&evs[1]).method, Method::Reqmod);
    assert_eq!(
        head(&evs[1]).client_ip,
        Some("2001:db8::1".parse().unwrap())
    );
}

#[test]
fn unknown_method_is_kept_and_unparseable_client_ip_ignored() {
    let evs = parse_all(b"LOCK icap://h/x ICAP/1.0\r\nX-Client-IP: not-an-ip\r\n\r\n").unwrap();
    assert_eq!(head(&evs[0]).method, Method::Other("LOCK".into()));
    assert_eq!(head(&evs[0]).client_ip, None);
}

#[test]
fn malformed_heads_are_typed_errors() {
    let cases: &[(&[u8], IcapError)] = &[
        (b"REQMOD icap://h/x\r\n\r\n", IcapError::BadRequestLine),
        (b"REQMOD icap://h/x HTTP/1.1\r\n\r\n", IcapError::BadRequestLine),
        (b"REQ\x01MOD icap://h/x ICAP/1.0\r\n\r\n", IcapError::BadRequestLine),
        (b"REQMOD icap://h/x ICAP/2.0\r\n\r\n", IcapError::UnsupportedVersion),
        (b"REQMOD icap://h/x ICAP/1.0\r\nno colon here\r\n\r\n", IcapError::BadHeader { line: 2 }),
        (b"REQMOD icap://h/x ICAP/1.0\r\n : v\r\n\r\n", IcapError::BadHeader { line: 2 }),
        (b"REQMOD icap://h/x ICAP/1.0\r\nHost: h\r\n\r\n", IcapError::MissingEncapsulated),
        (
            b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=1\r\nPreview: x\r\n\r\n",
            IcapError::BadPreview,
        ),
        (
            b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=1\r\nPreview: 99999999\r\n\r\n",
            IcapError::BadPreview,
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(
            parse_all(msg).as_ref(),
            Err(want),
            "{}",
            String::from_utf8_lossy(msg)
        );
    }
}

#[test]
fn encapsulated_header_rules() {
    let bad = |reason| Err(IcapError::BadEncapsulated { reason });
    assert_eq!(
        parse_encapsulated("req-hdr=0, foo-body=10"),
        bad("unknown entity")
    );
    assert_eq!(
        parse_encapsulated("req-hdr=5, req-body=10"),
        bad("first offset is not 0")
    );
    assert_eq!(
        parse_encapsulated("req-hdr=0, res-hdr=0, res-body=9"),
        bad("offsets not increasing")
    );
    assert_eq!(
        parse_encapsulated("res-body=0, res-hdr=4"),
        bad("entity after the body")
    );
    assert_eq!(
        parse_encapsulated("req-hdr=0, req-hdr=4"),
        bad("entity repeated")
    );
    assert_eq!(
        parse_encapsulated("req-hdr=0, req-body=-4"),
        bad("offset is not a decimal number")
    );
    assert_eq!(parse_encapsulated("req-hdr"), bad("entry without '='"));
    assert_eq!(
        parse_encapsulated("req-hdr=0, req-body=99999999999999999999999"),
        bad("offset out of range")
    );
    let ok = parse_encapsulated("req-hdr=0,res-hdr=137 , res-body=296").unwrap();
    assert_eq!(ok.heads_len(), 296);
    // A REQMOD cannot carry a response body; a RESPMOD needs a body entity.
    for msg in [
        &b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=5\r\n\r\n"[..],
        b"RESPMOD icap://h/x ICAP/1.0\r\nEncapsulated: res-hdr=0\r\n\r\n",
    ] {
        assert!(matches!(
            parse_all(msg),
            Err(IcapError::BadEncapsulated { .. })
        ));
    }
}

#[test]
fn wrong_encapsulated_offsets_are_caught() {
    // res-hdr 3 bytes too early: the request head would end mid-line.
    let short = respmod_example().replace_once(b"res-hdr=137", b"res-hdr=134");
    assert_eq!(
        parse_all(&short),
        Err(IcapError::OffsetMismatch { section: "req-hdr" })
    );
    // res-body 3 bytes too late: the response head would swallow the chunk size line.
    let long = respmod_example().replace_once(b"res-body=296", b"res-body=299");
    assert_eq!(
        parse_all(&long),
        Err(IcapError::OffsetMismatch { section: "res-hdr" })
    );
    // req-hdr covering both heads: a blank line before the end.
    let merged = respmod_example().replace_once(b"req-hdr=0, res-hdr=137, ", b"req-hdr=0, ");
    let merged = merged.replace_once(b"res-body=296", b"req-body=296");
    assert!(matches!(
        parse_all(&merged),
        Err(IcapError::BadEncapsulated { .. })
    ));
    let merged_req = b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=37\r\n\r\n\
GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    assert_eq!(
        parse_all(merged_req),
        Err(IcapError::OffsetMismatch { section: "req-hdr" })
    );
}

#[test]
fn bad_chunks_are_typed_errors() {
    let prefix = b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=19\r\n\r\nPOST / HTTP/1.1\r\n\r\n";
    let cases: &[(&[u8], &str)] = &[
        (b"zz\r\n", "chunk size is not hexadecimal"),
        (b"\r\n", "chunk size is not hexadecimal"),
        (b"2\r\nabc\r\n", "chunk data longer than its size"),
        (b"3; ieof\r\nabc\r\n", "ieof on a chunk with data"),
        (b"11111111111111111\r\n", "chunk size is not hexadecimal"),
    ];
    for (chunk, reason) in cases {
        let mut msg = prefix.to_vec();
        msg.extend_from_slice(chunk);
        let mut parser = RequestParser::new(Limits::default());
        let result = events(&mut parser, &msg);
        assert_eq!(result, Err(IcapError::BadChunk { reason }), "{chunk:?}");
        // The parser stays failed: no event can follow an out-of-step stream.
        assert_eq!(events(&mut parser, b"0\r\n\r\n"), Ok(vec![]));
    }
    let mut long_line = prefix.to_vec();
    long_line.extend(std::iter::repeat_n(b'0', MAX_CHUNK_LINE_BYTES + 1));
    assert_eq!(
        parse_all(&long_line).unwrap_err(),
        IcapError::BadChunk {
            reason: "chunk-size line too long"
        }
    );
}

#[test]
fn head_limits_bound_the_buffer() {
    let limits = Limits {
        max_icap_head_bytes: 256,
        max_http_heads_bytes: 100,
    };
    let mut parser = RequestParser::new(limits);
    let mut flood = b"REQMOD icap://h/x ICAP/1.0\r\n".to_vec();
    flood.extend(std::iter::repeat_n(b'a', 300));
    assert_eq!(
        events(&mut parser, &flood),
        Err(IcapError::HeadTooLarge { limit: 256 })
    );

    let big = b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=101\r\n\r\n";
    assert_eq!(
        events(&mut RequestParser::new(limits), big),
        Err(IcapError::HttpHeadsTooLarge {
            len: 101,
            limit: 100
        })
    );

    let mut many = b"OPTIONS icap://h/x ICAP/1.0\r\n".to_vec();
    for i in 0..=MAX_ICAP_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(parse_all(&many), Err(IcapError::TooManyHeaders));
}

#[test]
fn error_statuses() {
    assert_eq!(IcapError::HeadTooLarge { limit: 1 }.status(), 413);
    assert_eq!(IcapError::UnsupportedVersion.status(), 505);
    assert_eq!(
        IcapError::OffsetMismatch { section: "req-hdr" }.status(),
        400
    );
}

trait ReplaceOnce {
    fn replace_once(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceOnce for Vec<u8> {
    fn replace_once(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern in message");
        let mut out = self[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&self[at + from.len()..]);
        out
    }
}

fn chunked(body: &[u8], cuts: &[usize], ext: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    bounds.push(body.len());
    bounds.sort_unstable();
    for end in bounds {
        if end > pos {
            let ext = if ext { ";x=1" } else { "" };
            out.extend_from_slice(format!("{:X}{ext}\r\n", end - pos).as_bytes());
            out.extend_from_slice(&body[pos..end]);
            out.extend_from_slice(b"\r\n");
            pos = end;
        }
    }
    out.extend_from_slice(b"0; ieof\r\nX-Trailer: t\r\n\r\n");
    out
}

proptest! {
    /// Whatever the chunking and however the bytes are split across reads, the body comes out
    /// whole and the parser is back between requests.
    #[test]
    fn chunked_body_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        reads in proptest::collection::vec(1usize..300, 1..20),
        ext in any::<bool>(),
    ) {
        let mut msg = b"RESPMOD icap://h/respmod ICAP/1.0\r\nPreview: 1048576\r\n\
Encapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n".to_vec();
        msg.extend_from_slice(&chunked(&body, &cuts, ext));
        let mut parser = RequestParser::new(Limits::default());
        let mut evs = Vec::new();
        let mut rest = &msg[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = reads[i % reads.len()].min(rest.len());
            evs.extend(events(&mut parser, &rest[..n]).unwrap());
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(body_of(&evs), (body, Some(true)));
        prop_assert!(parser.is_idle());
    }

    /// Arbitrary bytes never panic, and the parser never holds more than a head limit plus the
    /// last push.
    #[test]
    fn hostile_bytes_are_bounded(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"REQMOD icap://h/x ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=19\r\n\r\nPOST / HTTP/1.1\r\n\r\n",
        ]),
        pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..20),
    ) {
        let limits = Limits { max_icap_head_bytes: 1024, max_http_heads_bytes: 1024 };
        let mut parser = RequestParser::new(limits);
        parser.push(prefix);
        for bytes in pushes {
            let len = bytes.len();
            parser.push(&bytes);
            while let Ok(Some(_)) = parser.poll() {}
            prop_assert!(parser.buffered() <= 2048 + MAX_TRAILER_BYTES + len);
        }
    }
}
