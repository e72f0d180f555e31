use serde_json::Value;
use weir_core::{Direction, StreamEvent, Timestamp};

use super::*;
use crate::files::MemorySink;
use crate::mailstore::MemoryMailSink;
use crate::mime::test_pcap::{project_pcap, tcp_conns};

use Direction::{ToClient as S, ToServer as C};

fn records(out: &Emit, event_type: &str) -> Vec<Value> {
    out.events.iter().filter(|e| e.event_type == event_type).map(|e| Value::Object(e.fields.clone())).collect()
}

/// The project's capture of imaplib against Dovecot: FETCH BODY[] / BODY[HEADER] literals and
/// the APPEND upload come out byte-identical, with their attachments.
#[test]
fn project_capture_messages_and_attachments_are_byte_identical() {
    let mut out = Emit::default();
    let mut files = MemorySink::new(64 << 20);
    let mut mails = MemoryMailSink::new(64 << 20);
    for conn in tcp_conns(&project_pcap("pop3-imap.pcap")).iter().filter(|c| c.server_port == 143) {
        let mut state = ImapState::new(&MimeConfig::default());
        conn.replay(&mut |dir, ev, ts| state.on_stream(dir, ev, ts, &mut files, &mut mails, &mut out));
    }
    let checked = crate::mime::manifest_check::check("pop3-imap.manifest.json", "imap", &mails, &files);
    assert_eq!(checked, 10);
    let recs = records(&out, "imap");
    let summary: Vec<String> = recs
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["imap"]["command"].as_str().unwrap_or(""),
                r["imap"]["item"].as_str().unwrap_or("-"),
                r["imap"]["msg_seq"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        ["FETCH BODY[HEADER] 1", "FETCH BODY[] 1", "FETCH BODY[] 2", "UID FETCH BODY[] 3", "APPEND - null"]
    );
    assert_eq!(recs[4]["imap"]["mailbox"], "INBOX");
    assert_eq!(out.events.iter().filter(|e| e.event_type == "imap").map(|e| e.direction).next_back(), Some(C));
    assert!(!out.events.iter().any(|e| serde_json::to_string(&e.fields).unwrap_or_default().contains("secret")));
}

fn run(chunks: &[(Direction, &[u8])]) -> (Emit, MemoryMailSink, ImapState) {
    let mut out = Emit::default();
    let mut files = MemorySink::new(1 << 20);
    let mut mails = MemoryMailSink::new(1 << 20);
    let mut state = ImapState::new(&MimeConfig::default());
    for (dir, data) in chunks {
        state.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut files, &mut mails, &mut out);
    }
    state.on_stream(C, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
    state.on_stream(S, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
    (out, mails, state)
}

#[test]
fn literals_split_anywhere_and_non_message_literals_are_skipped() {
    let wire: &[u8] = b"* 1 FETCH (BODY[TEXT] {5}\r\n{9}\r\n BODY[] {16}\r\nSubject: x\r\n\r\nab)\r\na1 OK done\r\n";
    for cut in 0..wire.len() {
        let (out, mails, _) = run(&[(C, b"a1 FETCH 1 (BODY[TEXT] BODY[])\r\n"), (S, &wire[..cut]), (S, &wire[cut..])]);
        assert_eq!(mails.stored.len(), 1, "cut {cut}");
        assert_eq!(mails.stored[0].1, b"Subject: x\r\n\r\nab", "cut {cut}");
        assert!(out.anomalies.is_empty(), "cut {cut}: {:?}", out.anomalies);
    }
}

#[test]
fn authenticate_exchange_is_skipped_and_starttls_stops() {
    let (out, mails, state) = run(&[
        (S, b"* OK ready\r\n"),
        (C, b"a1 AUTHENTICATE PLAIN\r\n"),
        (S, b"+ \r\n"),
        (C, b"AGJvYgBodW50ZXIy\r\n"),
        (S, b"a1 OK done\r\n"),
        (C, b"a2 STARTTLS\r\n"),
        (S, b"a2 OK begin\r\n"),
        (S, b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n"),
    ]);
    assert!(state.is_encrypted());
    assert!(mails.stored.is_empty());
    assert!(out.events.is_empty());
}

#[test]
fn an_absurd_literal_length_is_bounded_by_the_message_cap() {
    let mut out = Emit::default();
    let mut files = MemorySink::new(1 << 20);
    let mut mails = MemoryMailSink::new(1 << 20);
    let cfg = MimeConfig { max_message_bytes: 64, ..MimeConfig::default() };
    let mut state = ImapState::new(&cfg);
    state.on_stream(
        S,
        StreamEvent::Data(b"* 1 FETCH (RFC822 {9999999999999999999}\r\n"),
        Timestamp::ZERO,
        &mut files,
        &mut mails,
        &mut out,
    );
    for _ in 0..1000 {
        state.on_stream(S, StreamEvent::Data(&[b'x'; 1000]), Timestamp::ZERO, &mut files, &mut mails, &mut out);
    }
    state.on_stream(S, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
    assert_eq!(mails.stored[0].1.len(), 64);
    assert_eq!(records(&out, "imap")[0]["email"]["truncated"], true);
}

#[test]
fn probe_recognises_the_greeting() {
    assert_eq!(probe(S, b"* OK [CAPABILITY IMAP4rev1] ready"), Probe::Imap);
    assert_eq!(probe(S, b"* O"), Probe::NeedMore);
    assert_eq!(probe(S, b"+OK"), Probe::NoMatch);
}

proptest::proptest! {
    /// Arbitrary bytes in both directions never panic, and a message never holds more than the cap.
    #[test]
    fn arbitrary_input_is_survived(
        chunks in proptest::collection::vec((proptest::bool::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..1024)), 0..32)
    ) {
        let mut out = Emit::default();
        let mut files = MemorySink::new(1 << 20);
        let mut mails = MemoryMailSink::new(1 << 20);
        let mut state = ImapState::new(&MimeConfig { max_message_bytes: 2048, ..MimeConfig::default() });
        state.on_stream(S, StreamEvent::Data(b"* 1 FETCH (BODY[] {100000}\r\n"), Timestamp::ZERO, &mut files, &mut mails, &mut out);
        for (to_server, c) in &chunks {
            let dir = if *to_server { C } else { S };
            state.on_stream(dir, StreamEvent::Data(c), Timestamp::ZERO, &mut files, &mut mails, &mut out);
            for side in &state.sides {
                proptest::prop_assert!(side.line_so_far.len() <= MAX_LINE_BYTES);
                if let Some(Literal::Message { buf, .. }) = &side.literal {
                    proptest::prop_assert!(buf.bytes().len() <= 2048);
                }
            }
        }
        state.on_stream(S, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
        proptest::prop_assert!(mails.stored.iter().all(|(_, m)| m.len() <= 2048));
    }
}

fn exceptions(out: &Emit) -> Vec<ParserException> {
    out.exceptions.iter().map(|(_, e)| *e).collect()
}

#[test]
fn a_tagged_response_that_is_not_imap_is_one_parser_error() {
    let (out, _, _) = run(&[
        (S, b"* OK ready\r\n"),
        (C, b"a1 NOOP\r\n"),
        (S, b"a1 \x00\x01 junk\r\n"),
        (C, b"a2 NOOP\r\n"),
        (S, b"a2 \x00\x01 junk\r\n"),
    ]);
    assert_eq!(out.exceptions, [(Timestamp::ZERO, ParserException::Error)]);
}

#[test]
fn a_fetch_cut_at_the_shared_budget_raises_one_memcap_and_a_small_one_after_none() {
    let cfg = MimeConfig { held_budget: crate::mime::HeldMessageBudget::new(300), ..MimeConfig::default() };
    let mut out = Emit::default();
    let mut files = MemorySink::new(1 << 20);
    let mut mails = MemoryMailSink::new(1 << 20);
    let mut state = ImapState::new(&cfg);
    let mut step = |dir: Direction, data: &[u8], out: &mut Emit| {
        state.on_stream(dir, StreamEvent::Data(data), Timestamp::ZERO, &mut files, &mut mails, out);
    };
    step(S, b"* OK ready\r\n", &mut out);
    step(C, b"a1 FETCH 1 (BODY[])\r\n", &mut out);
    step(S, b"* 1 FETCH (BODY[] {1000}\r\n", &mut out);
    for _ in 0..10 {
        step(S, &[b'x'; 100], &mut out);
    }
    assert_eq!(exceptions(&out), [ParserException::MessageMemcap]);
    step(S, b")\r\na1 OK done\r\n", &mut out);
    step(C, b"a2 FETCH 2 (BODY[])\r\n", &mut out);
    step(S, b"* 2 FETCH (BODY[] {16}\r\nSubject: x\r\n\r\nab)\r\na2 OK done\r\n", &mut out);
    assert_eq!(records(&out, "imap").len(), 2);
    assert_eq!(exceptions(&out), [ParserException::MessageMemcap]);
}

#[test]
fn a_whole_session_raises_no_exception() {
    let (out, mails, _) = run(&[
        (S, b"* OK ready\r\n"),
        (C, b"a1 FETCH 1 (BODY[])\r\n"),
        (S, b"* 1 FETCH (BODY[] {16}\r\nSubject: x\r\n\r\nab)\r\na1 OK done\r\n"),
    ]);
    assert_eq!(mails.stored.len(), 1);
    assert!(out.exceptions.is_empty(), "{:?}", out.exceptions);
}
