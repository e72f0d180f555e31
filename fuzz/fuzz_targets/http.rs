//! The HTTP/1.x parser on both directions of a stream from the input (data, gaps and ends in any
//! order), with small limits so the fuzzer reaches them.
//!
//! Invariants: bodies kept for inspection never exceed their limits, nor headers their count;
//! no extracted file exceeds `file_size_limit`; open transactions stay bounded; files are written
//! and closed through open handles only; every EVE body serialises.
//!
//! Round-trip mode (bit 4 of the first byte): a well-formed request and response are built from
//! the input (method, target, headers, Content-Length bodies) and fed cut at input-chosen
//! places; the transaction must give back exactly what was sent.
#![no_main]
// Configs are spelled out in full but still end in `..Default` so new fields do not break the build.
#![allow(clippy::needless_update)]

use libfuzzer_sys::fuzz_target;
use weir_extract::http::{HttpConfig, HttpState, HttpTx};
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, CheckingFileSink, Input};

fn check_tx(tx: &HttpTx, cfg: &HttpConfig) {
    assert!(tx.request_body.len() <= cfg.request_body_limit, "request body {} kept", tx.request_body.len());
    assert!(tx.response_body.len() <= cfg.response_body_limit, "response body {} kept", tx.response_body.len());
    assert!(tx.request_headers.len() <= cfg.max_headers, "{} request headers", tx.request_headers.len());
    assert!(tx.response_headers.len() <= cfg.max_headers, "{} response headers", tx.response_headers.len());
}

/// Up to `max` bytes of the input mapped onto the visible ASCII characters `allowed` accepts.
fn token(input: &mut Input<'_>, max: usize, allowed: impl Fn(u8) -> bool, fallback: u8) -> Vec<u8> {
    let len = 1 + usize::from(input.u8()) % max;
    let mut t: Vec<u8> = input.take(len).iter().map(|&b| if allowed(b) { b } else { fallback }).collect();
    if t.is_empty() {
        t.push(fallback);
    }
    t
}

fn round_trip(input: &mut Input<'_>) {
    let cfg = HttpConfig { request_body_limit: 300, response_body_limit: 300, ..HttpConfig::default() };
    let method: &[u8] = [b"GET".as_slice(), b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"][usize::from(input.u8()) % 6];
    let mut target = b"/".to_vec();
    target.extend(token(input, 64, |b| (0x21..0x7f).contains(&b), b'a'));
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for _ in 0..input.u8() % 6 {
        let mut name = b"X-".to_vec();
        name.extend(token(input, 16, |b| b.is_ascii_alphanumeric() || b == b'-', b'h'));
        let value = token(input, 32, |b| (0x21..0x7f).contains(&b), b'v');
        headers.push((name, value));
    }
    let len = usize::from(input.u16()) % 600;
    let request_body = input.take(len).to_vec();
    let code = 200 + u16::from(input.u8()) % 100;
    let code = if code == 204 { 200 } else { code };
    let len = usize::from(input.u16()) % 600;
    let response_body = input.take(len).to_vec();

    let mut request = [method, b" ", &target, b" HTTP/1.1\r\nHost: h\r\n"].concat();
    for (n, v) in &headers {
        request.extend([n.as_slice(), b": ", v, b"\r\n"].concat());
    }
    request.extend(format!("Content-Length: {}\r\n\r\n", request_body.len()).as_bytes());
    request.extend(&request_body);
    let mut response = format!("HTTP/1.1 {code} OK\r\nContent-Length: {}\r\n\r\n", response_body.len()).into_bytes();
    response.extend(&response_body);

    let mut http = HttpState::new(&cfg);
    let mut files = CheckingFileSink::new(u64::MAX);
    let mut out = Emit::default();
    let ts = weir_core::Timestamp::from_nanos(1);
    for (dir, bytes) in [(weir_core::Direction::ToServer, &request), (weir_core::Direction::ToClient, &response)] {
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let cut = (1 + usize::from(input.u8()) * 4).min(rest.len());
            http.on_stream(dir, weir_core::StreamEvent::Data(&rest[..cut]), ts, &mut files, &mut out);
            rest = &rest[cut..];
        }
    }
    check_emit(&out);
    let txs: Vec<&HttpTx> = http.transactions().collect();
    assert_eq!(txs.len(), 1, "one exchange, {} transactions", txs.len());
    let tx = txs[0];
    assert_eq!(tx.method, method);
    assert_eq!(tx.uri_raw, target);
    assert_eq!(tx.request_protocol, b"HTTP/1.1");
    let mut want: Vec<(&[u8], &[u8])> = vec![(b"Host", b"h")];
    want.extend(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
    let cl = request_body.len().to_string();
    want.push((b"Content-Length", cl.as_bytes()));
    let got: Vec<(&[u8], &[u8])> = tx.request_headers.iter().map(|h| (h.name.as_slice(), h.value.as_slice())).collect();
    assert_eq!(got, want, "request headers");
    assert_eq!(tx.request_body, &request_body[..request_body.len().min(cfg.request_body_limit)]);
    assert_eq!(tx.request_body_len, request_body.len() as u64);
    assert_eq!(tx.status_code, Some(code));
    assert_eq!(tx.response_body, &response_body[..response_body.len().min(cfg.response_body_limit)]);
    assert_eq!(tx.response_body_len, response_body.len() as u64);
    assert!(tx.request_complete && tx.response_complete, "complete exchange not complete");
    assert_eq!(files.written, (request_body.len() + response_body.len()) as u64, "file bytes extracted");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    if setup & 0x10 != 0 {
        round_trip(&mut input);
        return;
    }
    let cfg = HttpConfig {
        request_body_limit: usize::from(input.u8()) * 16,
        response_body_limit: usize::from(input.u8()) * 16,
        file_size_limit: u64::from(input.u16()),
        decompress_max_bytes: u64::from(input.u16()) * 4,
        decompress_max_ratio: 1 + u64::from(input.u8()) * 8,
        decompress_layer_limit: usize::from(setup & 3) + 1,
        max_header_bytes: 64 + usize::from(input.u8()) * 16,
        max_headers: 1 + usize::from(input.u8() & 0x1f),
        max_open_transactions: 1 + usize::from(input.u8() & 0x0f),
        log_headers: setup & 4 != 0,
        ..HttpConfig::default()
    };
    let take_finished = setup & 8 != 0;
    let mut http = HttpState::new(&cfg);
    let mut files = CheckingFileSink::new(cfg.file_size_limit);
    stream_steps(&mut input, |dir, ev, ts| {
        let mut out = Emit::default();
        http.on_stream(dir, ev, ts, &mut files, &mut out);
        check_emit(&out);
        let mut open = 0usize;
        for tx in http.transactions() {
            check_tx(tx, &cfg);
            open += 1;
        }
        // Finished transactions kept for detection, plus those waiting for their response.
        assert!(open <= 2 * cfg.max_open_transactions + 2, "{open} transactions held");
        if take_finished {
            http.take_finished();
        }
    });
});
