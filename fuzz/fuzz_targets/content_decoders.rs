//! HTTP content decoding (gzip, deflate with and without zlib framing, brotli, stacked) on
//! response bodies from the input, through the HTTP parser's public API, with small caps.
//!
//! Input: one byte choosing the Content-Encoding and chunking, two bytes of cap, then the body
//! (fed in pieces whose sizes come from the body's own first bytes).
//!
//! Invariants: no extracted (decoded) file exceeds `decompress_max_bytes` nor `file_size_limit`;
//! the body kept for inspection never exceeds `response_body_limit`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::{Direction, StreamEvent, Timestamp};
use weir_extract::http::{HttpConfig, HttpState};
use weir_extract::Emit;
use weir_fuzz::{check_emit, CheckingFileSink, Input};

const CODINGS: [&str; 8] = ["gzip", "deflate", "br", "x-gzip", "gzip, br", "deflate, gzip", "br, br, br, br", "identity"];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let cap = 1 + u64::from(input.u16());
    let cfg = HttpConfig {
        response_body_limit: 4096,
        file_size_limit: 1 << 30,
        decompress_max_bytes: cap,
        decompress_max_ratio: if setup & 0x80 != 0 { 2000 } else { 10 },
        ..HttpConfig::default()
    };
    let coding = CODINGS[usize::from(setup) % CODINGS.len()];
    let chunked = setup & 0x40 != 0;
    let piece = 1 + usize::from(input.u8());
    let body = input.rest();

    let mut http = HttpState::new(&cfg);
    // `identity` is not a decompression: only the file size limit applies to it.
    let file_cap = if coding == "identity" { cfg.file_size_limit } else { cap.min(cfg.file_size_limit) };
    let mut files = CheckingFileSink::new(file_cap);
    let mut out = Emit::default();
    let ts = Timestamp::from_nanos(1);
    http.on_stream(Direction::ToServer, StreamEvent::Data(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), ts, &mut files, &mut out);
    let head = if chunked {
        format!("HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nTransfer-Encoding: chunked\r\n\r\n")
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n", body.len())
    };
    http.on_stream(Direction::ToClient, StreamEvent::Data(head.as_bytes()), ts, &mut files, &mut out);
    for part in body.chunks(piece) {
        if chunked {
            let framed = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
            http.on_stream(Direction::ToClient, StreamEvent::Data(&framed), ts, &mut files, &mut out);
        } else {
            http.on_stream(Direction::ToClient, StreamEvent::Data(part), ts, &mut files, &mut out);
        }
    }
    if chunked {
        http.on_stream(Direction::ToClient, StreamEvent::Data(b"0\r\n\r\n"), ts, &mut files, &mut out);
    }
    http.on_stream(Direction::ToClient, StreamEvent::End, ts, &mut files, &mut out);
    http.on_stream(Direction::ToServer, StreamEvent::End, ts, &mut files, &mut out);
    check_emit(&out);
    for tx in http.transactions() {
        assert!(tx.response_body.len() <= cfg.response_body_limit);
    }
    assert_eq!(files.open_files(), 0, "files left open after both sides ended");
});
