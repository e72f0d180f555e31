//! The HTTP/1.x parser on both directions of a stream from the input (data, gaps and ends in any
//! order), with small limits so the fuzzer reaches them.
//!
//! Invariants: bodies kept for inspection never exceed their limits, nor headers their count;
//! no extracted file exceeds `file_size_limit`; open transactions stay bounded; files are written
//! and closed through open handles only; every EVE body serialises.
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

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
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
