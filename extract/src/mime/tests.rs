use weir_core::{Anomaly, Artifact, Direction, Timestamp, hex};

use super::*;
use crate::files::MemorySink;
use crate::mailstore::MemoryMailSink;

struct Out {
    d: Delivered,
    emit: Emit,
    files: MemorySink,
    mails: MemoryMailSink,
}

fn run_with(raw: &[u8], cfg: &MimeConfig) -> Out {
    let mut buf = MessageBuffer::new(cfg.max_message_bytes);
    // Fed in pieces, as a stream delivers it.
    for piece in raw.chunks(64 * 1024) {
        buf.push(piece);
    }
    let mut emit = Emit::default();
    let mut files = MemorySink::new(256 << 20);
    let mut mails = MemoryMailSink::new(256 << 20);
    let mut next_file_id = 1;
    let ctx = MessageCtx {
        ts: Timestamp::ZERO,
        tx_id: 0,
        direction: Direction::ToServer,
        proto: MailProto::Smtp,
        proto_object: ("smtp", serde_json::json!({})),
        next_file_id: &mut next_file_id,
        partial: false,
        envelope_from: None,
        envelope_to: &[],
    };
    let d = deliver(&buf, cfg, ctx, &mut files, &mut mails, &mut emit);
    Out { d, emit, files, mails }
}

fn run(raw: &[u8]) -> Out {
    run_with(raw, &MimeConfig::default())
}

fn has_anomaly(o: &Out, event: &str) -> bool {
    o.emit.anomalies.iter().any(|(_, a)| *a == Anomaly::app_layer(leak(event)))
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn file_named<'a>(o: &'a Out, name: &str) -> Option<&'a [u8]> {
    o.emit.artifacts.iter().find_map(|(_, _, a)| match a {
        Artifact::File(f) if f.name == name => o.files.content(&f.sha256),
        _ => None,
    })
}

#[test]
fn rfc2231_and_rfc2047_file_names_are_decoded() {
    let raw = b"From: \"A\" <a@x.test>\r\nTo: b@x.test, \"C, D\" <c@x.test>\r\nSubject: =?UTF-8?B?w6l0w6k=?=\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nsee https://Example.TEST/Path?q=1 now\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename*=UTF-8''%E2%82%ACuro.bin\r\n\r\naGk=\r\n\
--b1\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?w6l0w6kucGRm?=\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%PDF=2D1=\r\n.4\r\n\
--b1--\r\n";
    let o = run(raw);
    assert_eq!(o.d.info.attachments, ["€uro.bin", "été.pdf"]);
    assert_eq!(file_named(&o, "€uro.bin"), Some(&b"hi"[..]));
    assert_eq!(file_named(&o, "été.pdf"), Some(&b"%PDF-1.4"[..]));
    assert_eq!(o.d.info.from.as_deref(), Some("\"A\" <a@x.test>"));
    assert_eq!(o.d.info.to, ["b@x.test", "\"C, D\" <c@x.test>"]);
    // Logged raw, as Suricata logs it.
    assert_eq!(o.d.info.subject.as_deref(), Some("=?UTF-8?B?w6l0w6k=?="));
    assert_eq!(o.d.info.urls, ["https://example.test/Path?q=1"]);
    assert_eq!(o.d.info.status, "PARSE_DONE");
    let email = o.emit.artifacts.iter().find_map(|(_, _, a)| match a {
        Artifact::Email(e) => Some(e.clone()),
        _ => None,
    });
    let email = email.expect("email artifact");
    assert_eq!(email.from.as_deref(), Some("a@x.test"));
    assert_eq!(email.to, ["b@x.test", "c@x.test"]);
    assert_eq!(hex(&email.sha256), hex(&o.d.sha256));
    assert_eq!(o.mails.content(&o.d.sha256), Some(&raw[..]));
    // Each file has its fileinfo event with the protocol and email objects beside it.
    let infos: Vec<_> = o.emit.events.iter().filter(|e| e.event_type == "fileinfo").collect();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].fields["fileinfo"]["file_id"], 1);
    assert_eq!(infos[1].fields["fileinfo"]["file_id"], 2);
    assert_eq!(infos[0].fields["email"]["attachment"][1], "été.pdf");
    assert!(infos[0].fields.contains_key("smtp"));
}

fn nested_message() -> Vec<u8> {
    b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/html\r\n\r\n<a href=\"http://a.test/x?y=1&amp;z=2\">x</a>\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n\
--i\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"in.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n\
--i--\r\n\
--o--\r\n"
        .to_vec()
}

#[test]
fn parts_of_a_nested_message_are_extracted() {
    let o = run(&nested_message());
    assert_eq!(o.d.info.attachments, ["in.zip"]);
    assert_eq!(file_named(&o, "in.zip"), Some(&b"PK\x03\x04"[..]));
    assert_eq!(o.d.info.urls, ["http://a.test/x?y=1&z=2"]);
}

#[test]
fn parts_deeper_than_the_limit_are_not_extracted() {
    let cfg = MimeConfig { max_depth: 1, ..MimeConfig::default() };
    let o = run_with(&nested_message(), &cfg);
    assert!(o.d.info.attachments.is_empty());
    assert!(has_anomaly(&o, "smtp.mime_depth_exceeded"));
}

#[test]
fn a_million_parts_are_cut_at_the_part_limit() {
    let mut raw = b"Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..1_000_000 {
        raw.extend_from_slice(b"--b\r\nContent-Disposition: attachment; filename=f\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let o = run(&raw);
    assert!(has_anomaly(&o, "smtp.mime_parse_limit"));
    assert!(o.d.info.attachments.len() <= MimeConfig::default().max_parts);
    assert!(o.d.info.attachments.len() >= 900);
    let files = o.emit.artifacts.iter().filter(|(_, _, a)| matches!(a, Artifact::File(_))).count();
    assert_eq!(files, MAX_FILES_PER_MESSAGE);
    // 55 MB on the wire: stored up to the message cap, marked truncated.
    assert_eq!(o.mails.content(&o.d.sha256).map(<[u8]>::len), Some(MimeConfig::default().max_message_bytes));
    assert!(o.d.info.truncated);
}

#[test]
fn a_flood_of_header_lines_is_cut() {
    let mut raw = Vec::new();
    for i in 0..(MAX_HEADER_LIKE_LINES * 3) {
        raw.extend_from_slice(format!("X-{i}:v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\nbody\r\n");
    let o = run(&raw);
    assert!(has_anomaly(&o, "smtp.mime_parse_limit"));
    assert!(has_anomaly(&o, "smtp.mime_long_header_value"));
}

#[test]
fn an_endless_header_line_is_bounded() {
    let mut raw = b"Subject: ".to_vec();
    raw.extend(std::iter::repeat_n(b'A', 8 << 20));
    let o = run(&raw);
    assert_eq!(o.d.info.subject.as_ref().map(String::len), Some(headers::MAX_HEADER_VALUE_BYTES - 1));
    assert_eq!(o.mails.content(&o.d.sha256).map(<[u8]>::len), Some(raw.len()));
}

#[test]
fn broken_base64_is_decoded_as_far_as_it_goes_and_flagged() {
    let raw =
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Disposition: attachment; filename=a\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVs!!bG8=\r\n=====\r\n\x00\xff\r\n--z--\r\n";
    let o = run(raw);
    assert_eq!(file_named(&o, "a"), Some(&b"hello"[..]));
    assert!(has_anomaly(&o, "smtp.mime_invalid_base64"));
}

#[test]
fn a_missing_boundary_runs_the_part_to_the_end() {
    let raw = b"Content-Type: multipart/mixed; boundary=never\r\n\r\n--never\r\n\
Content-Disposition: attachment; filename=tail.txt\r\n\r\nline one\r\nline two\r\n";
    let o = run(raw);
    assert_eq!(o.d.info.attachments, ["tail.txt"]);
    let content = file_named(&o, "tail.txt").expect("extracted");
    assert!(content.starts_with(b"line one\r\nline two"), "{content:?}");
    // A boundary declared but never used: the body is just text, and nothing is extracted.
    let o = run(b"Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts here\r\n");
    assert!(o.d.info.attachments.is_empty());
    assert_eq!(o.d.info.status, "PARSE_DONE");
}

#[test]
fn eight_bit_junk_never_panics_and_is_stored_unchanged() {
    // A fixed pseudo-random stream (xorshift), with MIME-ish punctuation mixed in.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut raw = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n".to_vec();
    for _ in 0..2_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = match x % 16 {
            0 => b'\n',
            1 => b'-',
            2 => b'=',
            3 => b':',
            _ => (x >> 24) as u8,
        };
        raw.push(b);
    }
    let o = run(&raw);
    assert_eq!(o.mails.content(&o.d.sha256), Some(&raw[..]));
    let o = run(&raw[40..]);
    assert_eq!(o.d.size, (raw.len() - 40) as u64);
}

#[test]
fn a_message_over_the_cap_is_stored_truncated() {
    let cfg = MimeConfig { max_message_bytes: 32, ..MimeConfig::default() };
    let mut buf = MessageBuffer::new(cfg.max_message_bytes);
    buf.push(b"Subject: 0123456789\r\n\r\n0123456789abcdef");
    assert!(buf.is_truncated());
    assert_eq!(buf.wire_len(), 39);
    let o = run_with(b"Subject: 0123456789\r\n\r\n0123456789abcdef", &cfg);
    assert_eq!(o.d.size, 32);
    assert_eq!(o.d.info.status, "BODY_STARTED");
    assert!(o.d.info.truncated);
    assert!(has_anomaly(&o, "smtp.mime_message_truncated"));
    let eve = o.d.info.eve();
    assert_eq!(eve["truncated"], true);
}

#[test]
fn body_md5_is_logged_only_when_asked() {
    let raw = b"Subject: s\r\n\r\nhello world\n";
    assert!(run(raw).d.info.eve().get("body_md5").is_none());
    let cfg = MimeConfig { body_md5: true, ..MimeConfig::default() };
    // md5("hello world\n")
    assert_eq!(run_with(raw, &cfg).d.info.eve()["body_md5"], "6f5902ac237024bdd0c176cb93063dc4");
}

#[test]
fn deeply_nested_rfc822_parts_do_not_exhaust_a_worker_stack() {
    let mut raw = Vec::new();
    for _ in 0..MAX_HEADER_LIKE_LINES {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Content-Disposition: attachment; filename=deep.txt\r\n\r\nbottom\r\n");
    // Worker threads get the default 2 MiB stack.
    let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(move || run(&raw).d.info.status);
    assert_eq!(handle.expect("spawn").join().expect("no stack overflow"), "PARSE_DONE");
}

#[test]
fn deeply_nested_multiparts_do_not_exhaust_a_worker_stack() {
    let mut raw = Vec::new();
    for n in 0..MimeConfig::default().max_parts {
        raw.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\nContent-Type: message/rfc822\r\n\r\n"
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Disposition: attachment; filename=deep.txt\r\n\r\nbottom\r\n");
    let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(move || {
        let o = run(&raw);
        (o.d.info.status, o.d.info.attachments.len())
    });
    let (status, attachments) = handle.expect("spawn").join().expect("no stack overflow");
    assert_eq!(status, "PARSE_DONE");
    // Deeper than max_depth: nothing extracted.
    assert_eq!(attachments, 0);
}

#[test]
fn the_line_break_before_a_boundary_belongs_to_the_boundary() {
    for eol in ["\r\n", "\n"] {
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=b{eol}{eol}--b{eol}Content-Disposition: attachment; filename=a.txt{eol}{eol}\
line one{eol}line two{eol}--b{eol}Content-Disposition: attachment; filename=b.txt{eol}{eol}last{eol}{eol}--b--{eol}"
        );
        let o = run(raw.as_bytes());
        assert_eq!(file_named(&o, "a.txt"), Some(format!("line one{eol}line two").as_bytes()), "{eol:?}");
        assert_eq!(file_named(&o, "b.txt"), Some(format!("last{eol}").as_bytes()), "{eol:?}");
    }
}

#[test]
fn buffers_sharing_a_budget_hold_no_more_than_it_together() {
    let cfg = MimeConfig { max_message_bytes: 1000, held_budget: HeldMessageBudget::new(100), ..MimeConfig::default() };
    let mut first = MessageBuffer::for_config(&cfg);
    first.push(&[b'a'; 80]);
    assert_eq!((first.bytes().len(), cfg.held_budget.held()), (80, 80));
    // A second message gets only what is left, and is marked truncated.
    let mut second = MessageBuffer::for_config(&cfg);
    second.push(&[b'b'; 80]);
    assert_eq!((second.bytes().len(), cfg.held_budget.held()), (20, 100));
    assert!(second.is_truncated());
    assert_eq!(second.wire_len(), 80);
    // Delivered messages give their bytes back: the next push may grow again (doubling 20 to 40).
    drop(first);
    assert_eq!(cfg.held_budget.held(), 20);
    second.push(&[b'c'; 10]);
    assert_eq!((second.bytes().len(), cfg.held_budget.held()), (30, 40));
    let copy = second.clone();
    assert_eq!(cfg.held_budget.held(), 70);
    drop(copy);
    drop(second);
    assert_eq!(cfg.held_budget.held(), 0);
    // A buffer made without a config charges nothing.
    let mut free = MessageBuffer::new(1000);
    free.push(&[b'd'; 500]);
    assert_eq!((free.bytes().len(), cfg.held_budget.held()), (500, 0));
}

#[test]
fn a_refused_buffer_reports_its_memcap_once() {
    use crate::emit::{Emit, ParserException};
    use weir_core::Timestamp;
    let cfg = MimeConfig { max_message_bytes: 1000, held_budget: HeldMessageBudget::new(100), ..MimeConfig::default() };
    let mut out = Emit::default();
    let mut fits = MessageBuffer::for_config(&cfg);
    fits.push(&[b'a'; 60]);
    fits.report_budget_refusal(Timestamp::ZERO, &mut out);
    assert!(!fits.budget_refused());
    assert!(out.exceptions.is_empty());
    let mut cut = MessageBuffer::for_config(&cfg);
    cut.push(&[b'b'; 60]);
    assert!(cut.budget_refused());
    cut.push(&[b'b'; 60]);
    cut.report_budget_refusal(Timestamp::ZERO, &mut out);
    cut.push(&[b'b'; 60]);
    cut.report_budget_refusal(Timestamp::ZERO, &mut out);
    assert_eq!(out.exceptions, [(Timestamp::ZERO, ParserException::MessageMemcap)]);
    // The per-message cap is not the shared budget: no refusal.
    let mut capped = MessageBuffer::new(10);
    capped.push(&[b'c'; 60]);
    assert!(capped.is_truncated());
    assert!(!capped.budget_refused());
}
