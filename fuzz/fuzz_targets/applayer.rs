//! The app-layer dispatcher: protocol detection by content on both directions of a stream from
//! the input, the replay of held bytes into the chosen parser, and that parser from then on;
//! with a UDP mode for DNS detection.
//!
//! Invariants: once a protocol is decided it never changes, and a decision reported is the
//! protocol the flow then has; extracted files and stored messages respect their caps; every EVE
//! body serialises; a flow's parser reports a parser error at most once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::{AppProto, Direction};
use weir_extract::applayer::{AppLayer, AppLayerConfig, Detection, Sinks};
use weir_extract::mime::MimeConfig;
use weir_extract::{Emit, ParserException};
use weir_fuzz::{check_emit, stream_steps, CheckingFileSink, CheckingMailSink, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let cfg = AppLayerConfig::default();
    let mime = MimeConfig::default();
    let mut app = AppLayer::new();
    let mut files = CheckingFileSink::new(cfg.http.as_ref().map_or(0, |h| h.file_size_limit).max(mime.max_file_bytes));
    let mut mails = CheckingMailSink::new(mime.max_message_bytes);
    let mut decided: Option<AppProto> = None;
    let mut parser_errors = 0usize;
    let mut count_errors = |out: &Emit| {
        parser_errors += out.exceptions.iter().filter(|(_, e)| *e == ParserException::Error).count();
        assert!(parser_errors <= 1, "{parser_errors} parser errors on one flow");
    };
    let mut check = |app: &AppLayer, detection: Detection| {
        if let Some(now) = app.proto() {
            if let Some(was) = decided {
                assert_eq!(was, now, "protocol changed after detection");
            }
            decided = Some(now);
        }
        if let Some(p) = detection.detected {
            assert_eq!(Some(p), app.proto(), "detection reported {p:?}");
        }
    };
    if setup & 1 == 0 {
        stream_steps(&mut input, |dir, ev, ts| {
            let mut out = Emit::default();
            let mut sinks = Sinks { files: &mut files, mails: &mut mails };
            let detection = app.on_stream(&cfg, dir, ev, ts, &mut sinks, &mut out);
            check_emit(&out);
            count_errors(&out);
            check(&app, detection);
        });
    } else {
        let mut ns = 0u64;
        while !input.is_empty() {
            let head = input.u8();
            let len = usize::from(input.u16() % 1500);
            let datagram = input.take(len);
            let dir = if head & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
            ns += 1_000_000;
            let mut out = Emit::default();
            let detection = app.on_datagram(&cfg, dir, datagram, weir_core::Timestamp::from_nanos(ns), &mut out);
            check_emit(&out);
            count_errors(&out);
            check(&app, detection);
        }
    }
});
