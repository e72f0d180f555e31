//! SMTP, POP3 and IMAP, each with MIME parsing and attachment extraction, on both directions of a
//! stream from the input, with small MIME limits so the fuzzer reaches them.
//!
//! Invariants: no stored message exceeds `max_message_bytes`, no attachment `max_file_bytes`;
//! files are written and closed through open handles only; every EVE body serialises.
//!
//! SMTP round-trip mode (bit 4 of the first byte): a message of CRLF lines from the input is
//! sent dot-stuffed in a complete session, cut at input-chosen places; the stored message must
//! be exactly the original.
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

fn smtp_round_trip(input: &mut Input<'_>) {
    use weir_core::{Direction, StreamEvent, Timestamp};
    let mime = MimeConfig::default();
    let cuts = input.u8();
    // The message: the rest of the input as CRLF-terminated lines.
    let mut message = Vec::new();
    for line in input.rest().split(|&b| b == b'\n') {
        message.extend(line.iter().filter(|&&b| b != b'\r'));
        message.extend(b"\r\n");
    }
    let mut stuffed = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            stuffed.push(b'.');
        }
        stuffed.extend(line);
    }
    stuffed.extend(b".\r\n");
    let mut p = SmtpState::new(&mime);
    let mut files = CheckingFileSink::new(mime.max_file_bytes);
    let mut mails = CheckingMailSink::new(mime.max_message_bytes);
    let mut out = Emit::default();
    let ts = Timestamp::from_nanos(1);
    let (c, s) = (Direction::ToServer, Direction::ToClient);
    let script: [(Direction, &[u8]); 13] = [
        (s, b"220 mx ready\r\n"),
        (c, b"EHLO client\r\n"),
        (s, b"250 mx\r\n"),
        (c, b"MAIL FROM:<a@example.com>\r\n"),
        (s, b"250 ok\r\n"),
        (c, b"RCPT TO:<b@example.org>\r\n"),
        (s, b"250 ok\r\n"),
        (c, b"DATA\r\n"),
        (s, b"354 go ahead\r\n"),
        (c, &stuffed),
        (s, b"250 queued\r\n"),
        (c, b"QUIT\r\n"),
        (s, b"221 bye\r\n"),
    ];
    let piece = 1 + usize::from(cuts);
    for (dir, bytes) in script {
        for chunk in bytes.chunks(piece) {
            p.on_stream(dir, StreamEvent::Data(chunk), ts, &mut files, &mut mails, &mut out);
        }
    }
    p.on_stream(c, StreamEvent::End, ts, &mut files, &mut mails, &mut out);
    p.on_stream(s, StreamEvent::End, ts, &mut files, &mut mails, &mut out);
    check_emit(&out);
    assert_eq!(mails.messages.len(), 1, "one message sent, {} stored", mails.messages.len());
    assert!(mails.messages[0] == message, "stored message differs from the one sent");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    if setup & 0x10 != 0 {
        smtp_round_trip(&mut input);
        return;
    }
    let mime = MimeConfig {
        max_message_bytes: 1 + usize::from(input.u16()),
        max_parts: 1 + usize::from(input.u8()),
        max_depth: usize::from(input.u8() & 0x1f),
        max_file_bytes: u64::from(input.u16()),
        body_md5: setup & 4 != 0,
        ..MimeConfig::default()
    };
    let mut files = CheckingFileSink::new(mime.max_file_bytes);
    let mut mails = CheckingMailSink::new(mime.max_message_bytes);
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
