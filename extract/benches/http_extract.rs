//! Extraction throughput of the HTTP parser with hashing (MD5, SHA-1, SHA-256), per framing and
//! coding, with files discarded (hashing only) and written to a filestore on disk.
//!
//! The `ranges` case fetches the body as 206 parts of [`RANGE_PART_BYTES`], one flow each, odd
//! parts first (so half the file waits in the joiner for its holes), and counts the joined
//! file's bytes: each byte is hashed twice, once in its part's file and once in the whole file.
//!
//! `cargo bench -p weir-extract --bench http_extract`. A plain timing loop (no criterion) to keep
//! the build light; each case reports the best of several runs in MiB/s of body bytes on the
//! wire.

use std::io::Write;
use std::time::Instant;

use weir_core::{Direction, StreamEvent, Timestamp};
use weir_extract::emit::Emit;
use weir_extract::files::{FileSink, Filestore, NullSink};
use weir_extract::http::{HttpConfig, HttpState, SharedRangeJoiner};

const BODY_BYTES: usize = 32 << 20;
const SEGMENT_BYTES: usize = 1460;
const RUNS: usize = 5;
const RANGE_PART_BYTES: usize = 1 << 20;

fn body() -> Vec<u8> {
    // Compressible but not trivial: pseudo-random words.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(BODY_BYTES);
    while out.len() < BODY_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("w{} ", x % 5000).as_bytes());
    }
    out.truncate(BODY_BYTES);
    out
}

fn response(kind: &str, body: &[u8]) -> Vec<u8> {
    match kind {
        "length" => {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            r.extend_from_slice(body);
            r
        }
        "chunked" => {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for c in body.chunks(8192) {
                r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                r.extend_from_slice(c);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            r
        }
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).expect("gzip");
            let gz = e.finish().expect("gzip");
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz.len()).into_bytes();
            r.extend_from_slice(&gz);
            r
        }
        _ => unreachable!("bench kinds are fixed"),
    }
}

fn run_once(resp: &[u8], sink: &mut dyn FileSink) -> f64 {
    let cfg = HttpConfig { decompress_max_bytes: 1 << 30, ..HttpConfig::default() };
    let mut state = HttpState::new(&cfg);
    let mut out = Emit::default();
    let ts = Timestamp::ZERO;
    let start = Instant::now();
    state.on_stream(Direction::ToServer, StreamEvent::Data(b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n"), ts, sink, &mut out);
    for seg in resp.chunks(SEGMENT_BYTES) {
        state.on_stream(Direction::ToClient, StreamEvent::Data(seg), ts, sink, &mut out);
    }
    state.on_stream(Direction::ToClient, StreamEvent::End, ts, sink, &mut out);
    let secs = start.elapsed().as_secs_f64();
    assert!(out.events.iter().any(|e| e.event_type == "fileinfo"), "a file was extracted");
    secs
}

/// The body as 206 parts over one flow each, odd parts first; the joined file must come out.
fn run_ranges(body: &[u8], sink: &mut dyn FileSink, joiner: SharedRangeJoiner) -> f64 {
    let cfg = HttpConfig { range_joiner: joiner, ..HttpConfig::default() };
    let parts = body.len().div_ceil(RANGE_PART_BYTES);
    let order: Vec<usize> = (0..parts).filter(|i| i % 2 == 1).chain((0..parts).filter(|i| i % 2 == 0)).collect();
    let messages: Vec<Vec<u8>> = order
        .iter()
        .map(|&i| {
            let first = i * RANGE_PART_BYTES;
            let last = (first + RANGE_PART_BYTES).min(body.len()) - 1;
            let mut r = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\nContent-Length: {}\r\n\r\n",
                body.len(),
                last - first + 1
            )
            .into_bytes();
            r.extend_from_slice(&body[first..=last]);
            r
        })
        .collect();
    let ts = Timestamp::ZERO;
    let mut whole = 0;
    let start = Instant::now();
    for resp in &messages {
        let mut state = HttpState::new(&cfg);
        let mut out = Emit::default();
        state.on_stream(Direction::ToServer, StreamEvent::Data(b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n"), ts, sink, &mut out);
        for seg in resp.chunks(SEGMENT_BYTES) {
            state.on_stream(Direction::ToClient, StreamEvent::Data(seg), ts, sink, &mut out);
        }
        state.on_stream(Direction::ToClient, StreamEvent::End, ts, sink, &mut out);
        whole += out.events.iter().filter(|e| e.event_type == "fileinfo" && e.fields["fileinfo"]["size"] == body.len()).count();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(whole, 1, "the joined file was logged once");
    secs
}

fn main() {
    let body = body();
    let out_dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    for kind in ["length", "chunked", "gzip"] {
        let resp = response(kind, &body);
        for store in ["hash-only", "filestore"] {
            let mut best = f64::MAX;
            for _ in 0..RUNS {
                let secs = match store {
                    "hash-only" => run_once(&resp, &mut NullSink),
                    _ => {
                        let _ = std::fs::remove_dir_all(&out_dir);
                        let mut fs = Filestore::new(&out_dir).expect("filestore");
                        run_once(&resp, &mut fs)
                    }
                };
                best = best.min(secs);
            }
            let wire_mib = resp.len() as f64 / (1 << 20) as f64;
            let body_mib = body.len() as f64 / (1 << 20) as f64;
            println!(
                "{kind:8} {store:10} wire {wire_mib:7.1} MiB  decoded {body_mib:5.1} MiB  best {:7.3} s  {:8.1} MiB/s decoded",
                best,
                body_mib / best
            );
        }
    }
    for store in ["hash-only", "filestore"] {
        let mut best = f64::MAX;
        for _ in 0..RUNS {
            let secs = match store {
                "hash-only" => run_ranges(&body, &mut NullSink, SharedRangeJoiner::default()),
                _ => {
                    let _ = std::fs::remove_dir_all(&out_dir);
                    let mut fs = Filestore::new(&out_dir).expect("filestore");
                    let joined = SharedRangeJoiner::new(Box::new(Filestore::new(&out_dir).expect("filestore")));
                    run_ranges(&body, &mut fs, joined)
                }
            };
            best = best.min(secs);
        }
        let body_mib = body.len() as f64 / (1 << 20) as f64;
        println!("ranges   {store:10} {} parts of 1 MiB, odd first  best {best:7.3} s  {:8.1} MiB/s of the joined file", body.len().div_ceil(RANGE_PART_BYTES), body_mib / best);
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}
