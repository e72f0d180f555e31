use serde_json::{Value, json};
use weir_core::{Direction, StreamEvent, Timestamp};

use super::*;
use crate::files::MemorySink;
use crate::mailstore::MemoryMailSink;
use crate::mime::test_pcap::{project_pcap, tcp_conns};

use Direction::{ToClient as S, ToServer as C};

fn records(out: &Emit, event_type: &str) -> Vec<Value> {
    out.events.iter().filter(|e| e.event_type == event_type).map(|e| Value::Object(e.fields.clone())).collect()
}

/// The project's capture of poplib against Dovecot: TOP and RETR bodies and their attachments
/// come out byte-identical, dot-stuffing undone.
#[test]
fn project_capture_messages_and_attachments_are_byte_identical() {
    let mut out = Emit::default();
    let mut files = MemorySink::new(64 << 20);
    let mut mails = MemoryMailSink::new(64 << 20);
    for conn in tcp_conns(&project_pcap("pop3-imap.pcap")).iter().filter(|c| c.server_port == 110) {
        let mut state = Pop3State::new(&MimeConfig::default());
        conn.replay(&mut |dir, ev, ts| state.on_stream(dir, ev, ts, &mut files, &mut mails, &mut out));
    }
    let checked = crate::mime::manifest_check::check("pop3-imap.manifest.json", "pop3", &mails, &files);
    assert_eq!(checked, 9);
    let recs = records(&out, "pop3");
    let commands: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r["pop3"]["command"].as_str().unwrap_or(""), r["pop3"]["argument"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(commands, [("TOP", "1 0"), ("RETR", "1"), ("RETR", "2"), ("RETR", "3")]);
    assert_eq!(recs[0]["pop3"]["user"], "alice");
    assert_eq!(recs[0]["email"]["truncated"], true);
    assert_eq!(recs[1]["email"]["status"], "PARSE_DONE");
    assert!(!out.events.iter().any(|e| serde_json::to_string(&e.fields).unwrap_or_default().contains("secret")));
    let infos = records(&out, "fileinfo");
    assert_eq!(infos.len(), 5);
    assert!(infos.iter().all(|f| f["pop3"]["command"] == "RETR"));
}

fn run(chunks: &[(Direction, &[u8])]) -> (Emit, MemoryMailSink, Pop3State) {
    let mut out = Emit::default();
    let mut files = MemorySink::new(1 << 20);
    let mut mails = MemoryMailSink::new(1 << 20);
    let mut state = Pop3State::new(&MimeConfig::default());
    for (dir, data) in chunks {
        state.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut files, &mut mails, &mut out);
    }
    state.on_stream(C, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
    state.on_stream(S, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
    (out, mails, state)
}

#[test]
fn pipelined_commands_and_errors_match_in_order() {
    let (out, mails, _) = run(&[
        (S, b"+OK ready\r\n"),
        (C, b"USER bob\r\nPASS hunter2\r\nLIST\r\nRETR 9\r\nRETR 1\r\nQUIT\r\n"),
        (S, b"+OK\r\n+OK\r\n+OK 1 messages\r\n1 20\r\n.\r\n-ERR no such message\r\n+OK 20 octets\r\nSubject: a\r\n\r\n..x\r\n.\r\n+OK bye\r\n"),
    ]);
    assert_eq!(mails.stored.len(), 1);
    assert_eq!(mails.stored[0].1, b"Subject: a\r\n\r\n.x\r\n");
    let recs = records(&out, "pop3");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["pop3"], json!({"command": "RETR", "argument": "1", "user": "bob"}));
    assert!(!format!("{:?}", out.events).contains("hunter2"));
}

#[test]
fn sasl_exchange_is_skipped_and_stls_stops() {
    let (out, mails, state) = run(&[
        (S, b"+OK ready\r\n"),
        (C, b"AUTH PLAIN\r\n"),
        (S, b"+ \r\n"),
        (C, b"AGJvYgBodW50ZXIy\r\n"),
        (S, b"+OK logged in\r\n"),
        (C, b"STLS\r\n"),
        (S, b"+OK begin TLS\r\n"),
        (C, b"\x16\x03\x01RETR 1\r\n"),
        (S, b"\x16\x03\x03+OK\r\nSubject: no\r\n\r\n.\r\n"),
    ]);
    assert!(state.is_encrypted());
    assert!(mails.stored.is_empty());
    assert!(out.events.is_empty());
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
}

#[test]
fn a_body_cut_by_the_connection_end_is_kept_truncated() {
    let (out, mails, _) = run(&[(S, b"+OK\r\n"), (C, b"RETR 1\r\n"), (S, b"+OK\r\nSubject: cut\r\n\r\npart")]);
    assert_eq!(mails.stored[0].1, b"Subject: cut\r\n\r\npart");
    let recs = records(&out, "pop3");
    assert_eq!(recs[0]["email"]["status"], "BODY_STARTED");
    assert_eq!(recs[0]["email"]["truncated"], true);
}

#[test]
fn probe_recognises_the_greeting() {
    assert_eq!(probe(S, b"+OK Dovecot ready."), Probe::Pop3);
    assert_eq!(probe(S, b"+O"), Probe::NeedMore);
    assert_eq!(probe(S, b"* OK IMAP"), Probe::NoMatch);
    assert_eq!(probe(C, b"CAPA\r\n"), Probe::Pop3);
}

proptest::proptest! {
    /// Where segments split a RETR response changes nothing.
    #[test]
    fn segmentation_does_not_change_the_message(cut1 in 0usize..200, cut2 in 0usize..200) {
        let wire: &[u8] = b"+OK 40 octets\r\nSubject: p\r\n\r\n..a\r\n..\r\n\r\nb\r\n.\r\n+OK bye\r\n";
        let (a, b) = (cut1.min(wire.len()), cut2.min(wire.len()));
        let (lo, hi) = (a.min(b), a.max(b));
        let (_, mails, _) = run(&[(S, b"+OK\r\n"), (C, b"RETR 1\r\nQUIT\r\n"), (S, &wire[..lo]), (S, &wire[lo..hi]), (S, &wire[hi..])]);
        proptest::prop_assert_eq!(mails.stored.len(), 1);
        proptest::prop_assert_eq!(&mails.stored[0].1, b"Subject: p\r\n\r\n.a\r\n.\r\n\r\nb\r\n");
    }

    /// Arbitrary server bytes after a RETR never panic and never hold more than the cap.
    #[test]
    fn arbitrary_input_is_survived(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..1024), 0..32)) {
        let mut out = Emit::default();
        let mut files = MemorySink::new(1 << 20);
        let mut mails = MemoryMailSink::new(1 << 20);
        let mut state = Pop3State::new(&MimeConfig { max_message_bytes: 2048, ..MimeConfig::default() });
        state.on_stream(S, StreamEvent::Data(b"+OK\r\n"), Timestamp::ZERO, &mut files, &mut mails, &mut out);
        state.on_stream(C, StreamEvent::Data(b"RETR 1\r\n"), Timestamp::ZERO, &mut files, &mut mails, &mut out);
        for c in &chunks {
            state.on_stream(S, StreamEvent::Data(c), Timestamp::ZERO, &mut files, &mut mails, &mut out);
            proptest::prop_assert!(state.message.as_ref().is_none_or(|m| m.bytes().len() <= 2048));
        }
        state.on_stream(S, StreamEvent::End, Timestamp::ZERO, &mut files, &mut mails, &mut out);
        proptest::prop_assert!(mails.stored.iter().all(|(_, m)| m.len() <= 2048));
    }
}

fn exceptions(out: &Emit) -> Vec<ParserException> {
    out.exceptions.iter().map(|(_, e)| *e).collect()
}

#[test]
fn a_status_line_that_is_not_pop3_is_one_parser_error() {
    let (out, _, _) = run(&[
        (S, b"+OK ready\r\n"),
        (C, b"USER bob\r\n"),
        (S, b"\x00 what\r\n"),
        (C, b"PASS x\r\n"),
        (S, b"\x00 what\r\n"),
    ]);
    assert_eq!(out.exceptions, [(Timestamp::ZERO, ParserException::Error)]);
}

#[test]
fn a_retr_cut_at_the_shared_budget_raises_one_memcap_and_a_small_one_after_none() {
    let cfg = MimeConfig { held_budget: crate::mime::HeldMessageBudget::new(300), ..MimeConfig::default() };
    let mut out = Emit::default();
    let mut files = MemorySink::new(1 << 20);
    let mut mails = MemoryMailSink::new(1 << 20);
    let mut state = Pop3State::new(&cfg);
    let mut step = |dir: Direction, data: &[u8], out: &mut Emit| {
        state.on_stream(dir, StreamEvent::Data(data), Timestamp::ZERO, &mut files, &mut mails, out);
    };
    step(S, b"+OK ready\r\n", &mut out);
    step(C, b"RETR 1\r\n", &mut out);
    step(S, b"+OK\r\n", &mut out);
    let line = [&[b'x'; 98][..], b"\r\n"].concat();
    for _ in 0..10 {
        step(S, &line, &mut out);
    }
    step(S, b".\r\n", &mut out);
    assert_eq!(exceptions(&out), [ParserException::MessageMemcap]);
    step(C, b"RETR 2\r\n", &mut out);
    step(S, b"+OK\r\nSubject: small\r\n\r\nhi\r\n.\r\n", &mut out);
    assert_eq!(records(&out, "pop3").len(), 2);
    assert_eq!(exceptions(&out), [ParserException::MessageMemcap]);
}

#[test]
fn a_whole_session_raises_no_exception() {
    let (out, mails, _) = run(&[
        (S, b"+OK ready\r\n"),
        (C, b"USER bob\r\nPASS x\r\nRETR 1\r\nQUIT\r\n"),
        (S, b"+OK\r\n+OK\r\n+OK 20 octets\r\nSubject: a\r\n\r\nx\r\n.\r\n+OK bye\r\n"),
    ]);
    assert_eq!(mails.stored.len(), 1);
    assert!(out.exceptions.is_empty(), "{:?}", out.exceptions);
}
