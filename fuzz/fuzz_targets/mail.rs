//! SMTP, POP3 and IMAP, each with MIME parsing and attachment extraction, on both directions of a
//! stream from the input, with small MIME limits so the fuzzer reaches them.
//!
//! Invariants: no stored message exceeds `max_message_bytes`, no attachment `max_file_bytes`;
//! files are written and closed through open handles only; every EVE body serialises.
#![no_main]
// Configs are spelled out in full but still end in `..Default` so new fields do not break the build.
#![allow(clippy::needless_update)]

use libfuzzer_sys::fuzz_target;
use weir_extract::imap::ImapState;
use weir_extract::mime::MimeConfig;
use weir_extract::pop3::Pop3State;
use weir_extract::smtp::SmtpState;
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, CheckingFileSink, CheckingMailSink, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let mime = MimeConfig {
        max_message_bytes: 1 + usize::from(input.u16()),
        max_parts: 1 + usize::from(input.u8()),
        max_depth: usize::from(input.u8() & 0x1f),
        max_file_bytes: u64::from(input.u16()),
        body_md5: setup & 4 != 0,
        ..MimeConfig::default()
    };
    let mut files = CheckingFileSink::new(mime.max_file_bytes);
    let mut mails = CheckingMailSink { max_message_bytes: mime.max_message_bytes, stored: 0 };
    let take_finished = setup & 8 != 0;
    match setup % 3 {
        0 => {
            let mut p = SmtpState::new(&mime);
            stream_steps(&mut input, |dir, ev, ts| {
                let mut out = Emit::default();
                p.on_stream(dir, ev, ts, &mut files, &mut mails, &mut out);
                check_emit(&out);
                if take_finished {
                    p.take_finished();
                }
            });
        }
        1 => {
            let mut p = Pop3State::new(&mime);
            stream_steps(&mut input, |dir, ev, ts| {
                let mut out = Emit::default();
                p.on_stream(dir, ev, ts, &mut files, &mut mails, &mut out);
                check_emit(&out);
                if take_finished {
                    p.take_finished();
                }
            });
        }
        _ => {
            let mut p = ImapState::new(&mime);
            stream_steps(&mut input, |dir, ev, ts| {
                let mut out = Emit::default();
                p.on_stream(dir, ev, ts, &mut files, &mut mails, &mut out);
                check_emit(&out);
                if take_finished {
                    p.take_finished();
                }
            });
        }
    }
});
