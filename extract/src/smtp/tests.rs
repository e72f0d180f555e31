use serde_json::{Value, json};
use weir_core::{Artifact, Direction, StreamEvent, Timestamp, hex};

use super::*;
use crate::files::MemorySink;
use crate::mailstore::MemoryMailSink;
use crate::mime::test_pcap::{corpus, project_pcap, tcp_conns};

/// What one replay produced.
struct Run {
    out: Emit,
    files: MemorySink,
    mails: MemoryMailSink,
}

impl Run {
    /// The bodies of the records of one type, in order.
    fn events(&self, event_type: &str) -> Vec<Value> {
        self.out.events.iter().filter(|e| e.event_type == event_type).map(|e| Value::Object(e.fields.clone())).collect()
    }
}

fn replay(path: &std::path::Path) -> Run {
    let mut run = Run { out: Emit::default(), files: MemorySink::new(64 << 20), mails: MemoryMailSink::new(64 << 20) };
    for conn in tcp_conns(path) {
        let mut state = SmtpState::new(&MimeConfig::default());
        conn.replay(&mut |dir, ev, ts| state.on_stream(dir, ev, ts, &mut run.files, &mut run.mails, &mut run.out));
    }
    run
}

fn feed(state: &mut SmtpState, run: &mut Run, chunks: &[(Direction, &[u8])]) {
    for (dir, data) in chunks {
        state.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    for dir in [Direction::ToServer, Direction::ToClient] {
        state.on_stream(dir, StreamEvent::End, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
}

fn empty_run() -> Run {
    Run { out: Emit::default(), files: MemorySink::new(64 << 20), mails: MemoryMailSink::new(64 << 20) }
}

use Direction::{ToClient, ToServer};
use ToClient as S;
use ToServer as C;

#[test]
fn corpus_smtp_pipelining() {
    let run = replay(&corpus("smtp-pipelining/input.pcap"));
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["mail_from"], "<username@domain.com>");
    assert_eq!(smtp[0]["smtp"]["rcpt_to"][0], "<john.doe@example.com>");
    assert_eq!(smtp[0]["email"]["status"], "PARSE_DONE");
}

#[test]
fn corpus_smtp_rejected_ehlo_preserves_envelope() {
    let run = replay(&corpus("smtp-rejected-ehlo-preserves-envelope/input.pcap"));
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    let r = &smtp[0];
    assert_eq!(r["tx_id"], 0);
    assert_eq!(r["smtp"]["helo"], "client.example.com");
    assert_eq!(r["smtp"]["mail_from"], "<alice@example.com>");
    assert_eq!(r["smtp"]["rcpt_to"], json!(["<bob@example.com>"]));
    assert_eq!(r["email"]["from"], "alice@example.com");
    assert_eq!(r["email"]["to"], json!(["bob@example.com"]));
    assert_eq!(r["email"]["status"], "PARSE_DONE");
}

#[test]
fn corpus_smtp_startssl_logs_helo_without_email() {
    let run = replay(&corpus("smtp-startssl/input.pcap"));
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["helo"], "desktop.unx.ca");
    assert!(smtp[0].get("email").is_none());
    assert!(run.mails.stored.is_empty());
}

#[test]
fn corpus_smtp_to_comma() {
    let run = replay(&corpus("smtp-to-comma/10.7.29.101_49898-178.63.41.150_25.pcap"));
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["cc"][0], "\"jam,abrakadabra.ch\" <mirjam@abrakadabra.ch>");
    assert!(smtp[0]["email"].get("to").is_none());
    // The capture is cut inside the second DATA: the message is kept, marked truncated.
    assert_eq!(smtp[0]["smtp"]["mail_from"], "<uprootedx38@gateway2c.dhl.com>");
    assert_eq!(smtp[0]["email"]["truncated"], true);
}

#[test]
fn corpus_smtp_url_base64() {
    let run = replay(&corpus("smtp-url-base64/smtp-url-b64.pcap"));
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["url"][0], "http://codashop-free01.duckdns.org/");
    let urls: Vec<_> = run
        .out
        .artifacts
        .iter()
        .filter_map(|(_, _, a)| match a {
            Artifact::Url(u) => Some(u.url.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(urls, ["http://codashop-free01.duckdns.org/"]);
}

#[test]
fn corpus_mime_quoted_printable() {
    let run = replay(&corpus("mime-quoted-printable/input.pcap"));
    let files = run.events("fileinfo");
    let patch: Vec<_> = files.iter().filter(|f| f["fileinfo"]["filename"] == "related.patch").collect();
    assert_eq!(patch.len(), 1);
    assert_eq!(patch[0]["fileinfo"]["size"], 34224);
    assert_eq!(patch[0]["fileinfo"]["sha256"], "359641873610597882317aee0f72104ed54fe8aa82d6fa323a5418e4529bd3b9");
}

const BUG_6207_NAME: &str =
    "smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13ddf80e995fd98ae442f3be499ea928c67f..zip";

#[test]
fn corpus_bug_6207_1_invalid_base64_characters_are_skipped() {
    let run = replay(&corpus("bug-6207-1/input.pcap"));
    let files = run.events("fileinfo");
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f["email"]["attachment"][0], BUG_6207_NAME);
    assert_eq!(f["fileinfo"]["filename"], BUG_6207_NAME);
    assert_eq!(f["fileinfo"]["size"], 286);
    assert_eq!(f["smtp"]["helo"], "smtp.intra");
    assert_eq!(f["smtp"]["mail_from"], "blah@smtp.lab.com");
    assert_eq!(f["smtp"]["rcpt_to"][0], "test@wut.com");
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["attachment"][0], BUG_6207_NAME);
    assert_eq!(smtp[0]["email"]["status"], "PARSE_DONE");
    assert_eq!(smtp[0]["smtp"]["helo"], "smtp.intra");
}

#[test]
fn corpus_bug_6207_2_split_padding_decodes_to_42() {
    let run = replay(&corpus("bug-6207-2/input.pcap"));
    let files = run.events("fileinfo");
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f["email"]["attachment"][0], BUG_6207_NAME);
    assert_eq!(f["fileinfo"]["size"], 2);
    assert_eq!(f["fileinfo"]["state"], "CLOSED");
    assert_eq!(f["fileinfo"]["sha256"], "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049");
    assert_eq!(f["smtp"]["mail_from"], "blah@smtp.lab.com");
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["status"], "PARSE_DONE");
}

/// The project's capture of smtplib and a raw pipelining client against aiosmtpd: every
/// message and attachment comes out byte-identical, with its envelope.
#[test]
fn project_capture_messages_and_attachments_are_byte_identical() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(project_pcap("smtp.manifest.json")).expect("manifest")).expect("json");
    let run = replay(&project_pcap("smtp.pcap"));
    let smtp = run.events("smtp");
    let mut messages = 0;
    for item in manifest["items"].as_array().expect("items") {
        let sha = item["sha256"].as_str().expect("sha");
        let size = item["size"].as_u64().expect("size") as usize;
        match item["kind"].as_str() {
            Some("message") => {
                messages += 1;
                let stored = run.mails.stored.iter().find(|(h, _)| hex(h) == sha);
                let (_, bytes) = stored.unwrap_or_else(|| panic!("message {} not stored", item["name"]));
                assert_eq!(bytes.len(), size);
                // Records come in wire order, as the manifest's items do.
                let rec = smtp.iter().filter(|r| r["email"].is_object()).nth(messages - 1).expect("record");
                // smtplib adds `size=N` after the path; it is not part of `mail_from`.
                assert_eq!(rec["smtp"]["mail_from"], format!("<{}>", item["mail_from"].as_str().expect("from")));
                let want_rcpt: Vec<String> = item["rcpt_to"]
                    .as_array()
                    .expect("rcpt")
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|r| format!("<{r}>"))
                    .collect();
                assert_eq!(rec["smtp"]["rcpt_to"], json!(want_rcpt));
                // The Email artifact names every envelope recipient, Bcc-only ones included.
                let artifact = run.out.artifacts.iter().find_map(|(_, _, a)| match a {
                    Artifact::Email(e) if hex(&e.sha256) == sha => Some(e),
                    _ => None,
                });
                let artifact = artifact.expect("email artifact");
                for r in item["rcpt_to"].as_array().expect("rcpt").iter().filter_map(Value::as_str) {
                    assert!(artifact.to.iter().any(|t| t == r), "{r} not in {:?}", artifact.to);
                }
                assert!(!artifact.truncated);
            }
            Some("attachment") => {
                let f = run.files.stored.iter().find(|(h, _)| hex(h) == sha);
                let (_, bytes) = f.unwrap_or_else(|| panic!("attachment {} not extracted", item["name"]));
                assert_eq!(bytes.len(), size, "{}", item["name"]);
                let info = run.events("fileinfo");
                assert!(
                    info.iter().any(|r| r["fileinfo"]["filename"] == item["name"] && r["fileinfo"]["sha256"] == sha)
                );
            }
            _ => {}
        }
    }
    assert_eq!(messages, 5);
    assert_eq!(smtp.iter().filter(|r| r["email"].is_object()).count(), 5);
    // AUTH PLAIN credentials never reach a record.
    for r in &smtp {
        assert!(!r.to_string().contains("AHNl"), "credentials leaked: {r}");
    }
}

#[test]
fn rejected_data_carries_no_message_and_rset_starts_over() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO c.test\r\n"),
            (S, b"250-mx\r\n250 PIPELINING\r\n"),
            (C, b"MAIL FROM:<bad@x>\r\nRCPT TO:<r@y>\r\nDATA\r\n"),
            (S, b"553 no\r\n503 no\r\n503 no\r\n"),
            (C, b"RSET\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"MAIL FROM:<good@x>\r\nRCPT TO:<r@y>\r\nDATA\r\n"),
            (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
            (C, b"Subject: s\r\n\r\n..dot\r\n.\r\nQUIT\r\n"),
            (S, b"250 queued\r\n221 bye\r\n"),
        ],
    );
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"], json!({"helo": "c.test", "mail_from": "<good@x>", "rcpt_to": ["<r@y>"]}));
    assert_eq!(run.mails.stored.len(), 1);
    assert_eq!(run.mails.stored[0].1, b"Subject: s\r\n\r\n.dot\r\n");
    assert_eq!(state.anomaly_count("smtp.data_command_rejected"), 1);
}

#[test]
fn auth_lines_are_not_commands_and_not_logged() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[
            (S, b"220 mx\r\n"),
            (C, b"EHLO c\r\n"),
            (S, b"250 mx\r\n"),
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, b"MAIL FROM:<looks-like-a-command>\r\n"),
            (S, b"334 UGFzc3dvcmQ6\r\n"),
            (C, b"c2VjcmV0\r\n"),
            (S, b"235 ok\r\n"),
            (C, b"MAIL FROM:<real@x>\r\n"),
            (S, b"250 ok\r\n"),
        ],
    );
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["mail_from"], "<real@x>");
    assert!(!smtp[0].to_string().contains("c2VjcmV0"));
}

#[test]
fn bdat_chunks_make_one_message() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[
            (S, b"220 mx\r\n"),
            (C, b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 14\r\nSubject: x\r\n\r\n"),
            (C, b"BDAT 9 LAST\r\n.body\r\n\r\nQUIT\r\n"),
        ],
    );
    assert_eq!(run.mails.stored.len(), 1);
    assert_eq!(run.mails.stored[0].1, b"Subject: x\r\n\r\n.body\r\n\r\n");
    assert_eq!(run.events("smtp").len(), 1);
}

#[test]
fn starttls_stops_parsing_cleanly() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[
            (S, b"220 mx\r\n"),
            (C, b"EHLO c\r\n"),
            (S, b"250 STARTTLS\r\n"),
            (C, b"STARTTLS\r\n"),
            (S, b"220 go ahead\r\n"),
            (C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\nDATA\r\n"),
            (S, b"\x16\x03\x03\x00\x5a\x02\x00\x00"),
        ],
    );
    assert!(state.is_encrypted());
    assert!(run.out.anomalies.is_empty(), "{:?}", run.out.anomalies);
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["smtp"]["helo"], "c");
}

#[test]
fn a_message_over_the_cap_is_stored_truncated_and_marked() {
    let mut run = empty_run();
    let cfg = MimeConfig { max_message_bytes: 100, ..MimeConfig::default() };
    let mut state = SmtpState::new(&cfg);
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..1000 {
        body.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    body.extend_from_slice(b".\r\n");
    feed(
        &mut state,
        &mut run,
        &[
            (S, b"220 mx\r\n"),
            (C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
            (S, b"250 a\r\n250 b\r\n250 c\r\n354 go\r\n"),
            (C, &body),
        ],
    );
    assert_eq!(run.mails.stored.len(), 1);
    assert_eq!(run.mails.stored[0].1.len(), 100);
    let smtp = run.events("smtp");
    assert_eq!(smtp[0]["email"]["status"], "BODY_STARTED");
    assert_eq!(smtp[0]["email"]["truncated"], true);
    let email = run.out.artifacts.iter().find_map(|(_, _, a)| match a {
        Artifact::Email(e) => Some(e),
        _ => None,
    });
    assert!(email.expect("email artifact").truncated);
}

#[test]
fn probe_recognises_greetings_and_helo() {
    assert_eq!(probe(Direction::ToClient, b"220 mx ESMTP"), Probe::Smtp);
    assert_eq!(probe(Direction::ToClient, b"22"), Probe::NeedMore);
    assert_eq!(probe(Direction::ToServer, b"ehlo x"), Probe::Smtp);
    assert_eq!(probe(Direction::ToClient, b"+OK POP3"), Probe::NoMatch);
}

/// A session touching every client mode: pipelining, AUTH, DATA with stuffed dots and an
/// attachment, RSET, BDAT.
const SESSION: &[(Direction, &[u8])] = &[
    (S, b"220 mx ESMTP\r\n"),
    (C, b"EHLO client.test\r\n"),
    (S, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
    (C, b"AUTH PLAIN\r\n"),
    (S, b"334 \r\n"),
    (C, b"AGFsaWNlAHNlY3JldA==\r\n"),
    (S, b"235 ok\r\n"),
    (C, b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
    (S, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    (C, b"From: a@x.test\r\nTo: b@x.test\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\
Content-Type: text/plain\r\n\r\n..see http://u.test/a\r\n..\r\n--q\r\nContent-Disposition: attachment; filename=f.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--q--\r\n.\r\n"),
    (S, b"250 queued\r\n"),
    (C, b"RSET\r\nMAIL FROM:<d@x.test>\r\nRCPT TO:<e@x.test>\r\nBDAT 20 LAST\r\nSubject: b\r\n\r\nbdat\r\n"),
    (C, b"MAIL FROM:<f@x.test>\r\nRCPT TO:<g@x.test>\r\nDATA\r\n"),
    (S, b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
    (C, b"Subject: c\r\n\r\nthird\r\n.\r\nQUIT\r\n"),
    (S, b"250 queued\r\n221 bye\r\n"),
];

/// Stored content by SHA-256, as the memory sinks keep it.
type Stored = Vec<([u8; 32], Vec<u8>)>;

fn run_session(split: &[usize]) -> (Vec<AppEvent>, Stored, Stored) {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    for (n, (dir, data)) in SESSION.iter().enumerate() {
        let cut = split.get(n).copied().unwrap_or(0) % (data.len() + 1);
        for piece in [&data[..cut], &data[cut..]] {
            if !piece.is_empty() {
                state.on_stream(
                    *dir,
                    StreamEvent::Data(piece),
                    Timestamp::ZERO,
                    &mut run.files,
                    &mut run.mails,
                    &mut run.out,
                );
            }
        }
    }
    for dir in [ToServer, ToClient] {
        state.on_stream(dir, StreamEvent::End, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    (run.out.events, run.mails.stored, run.files.stored)
}

#[test]
fn the_reference_session_gives_three_transactions() {
    let (events, mails, files) = run_session(&[]);
    let smtp: Vec<_> = events.iter().filter(|e| e.event_type == "smtp").collect();
    assert_eq!(smtp.len(), 3);
    assert_eq!(
        smtp[0].fields["smtp"],
        json!({"helo": "client.test", "mail_from": "<a@x.test>", "rcpt_to": ["<b@x.test>", "<c@x.test>"]})
    );
    assert_eq!(smtp[0].fields["email"]["url"], json!(["http://u.test/a"]));
    assert_eq!(smtp[0].fields["email"]["attachment"], json!(["f.bin"]));
    assert_eq!(smtp[1].fields["smtp"]["mail_from"], "<d@x.test>");
    assert_eq!(smtp[2].fields["smtp"]["mail_from"], "<f@x.test>");
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[2].1, b"Subject: c\r\n\r\nthird\r\n");
    assert!(mails[0].1.windows(17).any(|w| w == b"\r\n.see http://u.t"));
    assert_eq!(mails[1].1, b"Subject: b\r\n\r\nbdat\r\n");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1, [0, 1, 2, 3, 4, 5]);
    assert!(!format!("{events:?}").contains("AGFsaWNl"));
}

proptest::proptest! {
    /// Where TCP segments happen to split the streams changes nothing.
    #[test]
    fn segmentation_does_not_change_the_result(split in proptest::collection::vec(0usize..4096, SESSION.len())) {
        proptest::prop_assert_eq!(run_session(&split), run_session(&[]));
    }

    /// Arbitrary bytes in both directions never panic, and what is held stays bounded.
    #[test]
    fn arbitrary_input_is_survived_with_bounded_state(
        chunks in proptest::collection::vec((proptest::bool::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..2048)), 0..64)
    ) {
        let mut run = empty_run();
        let mut state = SmtpState::new(&MimeConfig { max_message_bytes: 4096, ..MimeConfig::default() });
        let prefix: &[(Direction, &[u8])] = &[(S, b"220 x\r\n"), (C, b"MAIL FROM:<a@b>\r\nDATA\r\n"), (S, b"354 go\r\n")];
        for (dir, data) in prefix {
            state.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
        }
        for (to_server, data) in &chunks {
            let dir = if *to_server { ToServer } else { ToClient };
            state.on_stream(dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
            proptest::prop_assert!(state.held.len() <= MAX_HELD_CLIENT_BYTES);
            proptest::prop_assert!(state.pending.len() <= MAX_PENDING_COMMANDS);
            proptest::prop_assert!(state.message.as_ref().is_none_or(|m| m.bytes().len() <= 4096));
        }
        for dir in [ToServer, ToClient] {
            state.on_stream(dir, StreamEvent::End, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
        }
        proptest::prop_assert!(run.mails.stored.iter().all(|(_, m)| m.len() <= 4096));
    }
}

#[test]
fn a_client_only_capture_still_yields_the_message() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[(C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: one-sided\r\n\r\nhi\r\n.\r\nQUIT\r\n")],
    );
    assert_eq!(run.mails.stored.len(), 1);
    assert_eq!(run.mails.stored[0].1, b"Subject: one-sided\r\n\r\nhi\r\n");
    assert_eq!(run.events("smtp")[0]["email"]["status"], "PARSE_DONE");
}

#[test]
fn a_gap_inside_data_truncates_the_message_without_padding() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    let chunks: &[(Direction, &[u8])] = &[
        (S, b"220 mx\r\n"),
        (C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 a\r\n250 b\r\n250 c\r\n354 go\r\n"),
        (C, b"Subject: gap\r\n\r\nbefore "),
    ];
    for (dir, data) in chunks {
        state.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    state.on_stream(C, StreamEvent::Gap { len: 500 }, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    feed(&mut state, &mut run, &[(C, b"after\r\n.\r\nQUIT\r\n"), (S, b"250 ok\r\n221 bye\r\n")]);
    assert_eq!(run.mails.stored[0].1, b"Subject: gap\r\n\r\nbefore after\r\n");
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["status"], "BODY_STARTED");
    assert_eq!(smtp[0]["email"]["truncated"], true);
}

/// Parse and extraction throughput over the project's SMTP capture; prints MB/s.
/// `cargo test -p weir-extract --lib smtp::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let conns = tcp_conns(&project_pcap("smtp.pcap"));
    let bytes: usize = conns.iter().flat_map(|c| &c.chunks).map(|c| c.2.len()).sum();
    let rounds = 200;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut run = empty_run();
        for conn in &conns {
            let mut state = SmtpState::new(&MimeConfig::default());
            conn.replay(&mut |dir, ev, ts| state.on_stream(dir, ev, ts, &mut run.files, &mut run.mails, &mut run.out));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("smtp: {} bytes x {rounds} in {secs:.3}s = {:.1} MB/s", bytes, (bytes * rounds) as f64 / secs / 1e6);
}

#[test]
fn a_gap_while_waiting_for_the_data_reply_marks_the_message() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    let step = |state: &mut SmtpState, run: &mut Run, dir: Direction, ev: StreamEvent<'_>| {
        state.on_stream(dir, ev, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    };
    step(&mut state, &mut run, S, StreamEvent::Data(b"220 mx\r\n"));
    step(&mut state, &mut run, C, StreamEvent::Data(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: lo"));
    step(&mut state, &mut run, C, StreamEvent::Gap { len: 100 });
    step(&mut state, &mut run, S, StreamEvent::Data(b"250 a\r\n250 b\r\n354 go\r\n"));
    feed(&mut state, &mut run, &[(C, b"tail\r\n.\r\nQUIT\r\n"), (S, b"250 ok\r\n221 bye\r\n")]);
    assert_eq!(run.mails.stored[0].1, b"tail\r\n");
    let smtp = run.events("smtp");
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0]["email"]["truncated"], true);
    assert_eq!(smtp[0]["smtp"]["mail_from"], "<a@b>");
}

#[test]
fn sessions_of_one_config_share_the_held_message_budget() {
    let cfg = MimeConfig { held_budget: crate::mime::HeldMessageBudget::new(1000), ..MimeConfig::default() };
    let envelope: &[(Direction, &[u8])] = &[
        (S, b"220 mx\r\n"),
        (C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 a\r\n250 b\r\n250 c\r\n354 go\r\n"),
    ];
    let line = [b'x'; 98];
    let mut run = empty_run();
    // A session that never ends its message holds 400 bytes of it (and as much capacity).
    let mut slow = SmtpState::new(&cfg);
    for (dir, data) in envelope {
        slow.on_stream(*dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    for _ in 0..4 {
        let chunk = [&line[..], b"\r\n"].concat();
        slow.on_stream(C, StreamEvent::Data(&chunk), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    assert_eq!(cfg.held_budget.held(), 400);
    // Another session's 1000-byte message gets the 600 left and is stored truncated.
    let mut body = Vec::new();
    for _ in 0..10 {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    let mut other = SmtpState::new(&cfg);
    let mut chunks = envelope.to_vec();
    chunks.push((C, &body));
    feed(&mut other, &mut run, &chunks);
    assert_eq!(run.mails.stored.len(), 1);
    assert_eq!(run.mails.stored[0].1.len(), 600);
    assert_eq!(run.events("smtp")[0]["email"]["truncated"], true);
    // Delivered, the second message's bytes are back in the budget.
    assert_eq!(cfg.held_budget.held(), 400);
}

fn exceptions(run: &Run) -> Vec<ParserException> {
    run.out.exceptions.iter().map(|(_, e)| *e).collect()
}

#[test]
fn a_message_cut_at_the_shared_budget_raises_one_memcap_and_a_small_one_after_none() {
    let cfg = MimeConfig { held_budget: crate::mime::HeldMessageBudget::new(300), ..MimeConfig::default() };
    let mut run = empty_run();
    let mut state = SmtpState::new(&cfg);
    let mut step = |dir: Direction, data: &[u8], run: &mut Run| {
        state.on_stream(dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    };
    step(S, b"220 mx\r\n", &mut run);
    step(C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", &mut run);
    step(S, b"250 a\r\n250 b\r\n250 c\r\n354 go\r\n", &mut run);
    let line = [&[b'x'; 98][..], b"\r\n"].concat();
    // A 1000-byte message in ten segments: refused once the budget is spent, raised once.
    for _ in 0..10 {
        step(C, &line, &mut run);
    }
    assert_eq!(exceptions(&run), [ParserException::MessageMemcap]);
    step(C, b".\r\n", &mut run);
    step(S, b"250 queued\r\n", &mut run);
    assert_eq!(run.mails.stored[0].1.len(), 300);
    // The next message fits in the budget the first gave back.
    step(C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", &mut run);
    step(S, b"250 a\r\n250 b\r\n354 go\r\n", &mut run);
    step(C, b"Subject: small\r\n\r\nhi\r\n.\r\n", &mut run);
    assert_eq!(run.mails.stored.len(), 2);
    assert_eq!(exceptions(&run), [ParserException::MessageMemcap]);

    // Refused and finished within one segment: raised at delivery, still once.
    let mut run = empty_run();
    let mut state = SmtpState::new(&cfg);
    let mut body = line.repeat(10);
    body.extend_from_slice(b".\r\n");
    let chunks: &[(Direction, &[u8])] = &[
        (S, b"220 mx\r\n"),
        (C, b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 a\r\n250 b\r\n250 c\r\n354 go\r\n"),
        (C, &body),
    ];
    feed(&mut state, &mut run, chunks);
    assert_eq!(exceptions(&run), [ParserException::MessageMemcap]);
}

#[test]
fn a_reply_without_a_code_or_a_bdat_without_a_size_is_one_parser_error() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[(S, b"220 mx\r\n"), (C, b"EHLO c\r\n"), (S, b"\x00garbage\r\n"), (C, b"NOOP\r\n"), (S, b"\x00garbage\r\n")],
    );
    assert_eq!(run.out.exceptions, [(Timestamp::ZERO, ParserException::Error)]);

    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    feed(
        &mut state,
        &mut run,
        &[(S, b"220 mx\r\n"), (C, b"EHLO c\r\nMAIL FROM:<a@b>\r\nBDAT lots\r\nxyz\r\nBDAT lots\r\n")],
    );
    assert_eq!(exceptions(&run), [ParserException::Error]);
}

#[test]
fn a_whole_session_with_long_lines_and_a_gap_raises_no_exception() {
    let mut run = empty_run();
    let mut state = SmtpState::new(&MimeConfig::default());
    let long = [b'z'; 5000];
    for (dir, data) in [
        (S, &b"220 mx ESMTP\r\n"[..]),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 PIPELINING\r\n"),
        (C, b"NOOP "),
        (C, &long[..]),
        (C, b"\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
        (S, b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        (C, b"Subject: s\r\n\r\nbody\r\n"),
    ] {
        state.on_stream(dir, StreamEvent::Data(data), Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    }
    state.on_stream(C, StreamEvent::Gap { len: 10 }, Timestamp::ZERO, &mut run.files, &mut run.mails, &mut run.out);
    feed(&mut state, &mut run, &[(C, b"more\r\n.\r\nQUIT\r\n"), (S, b"250 queued\r\n221 bye\r\n")]);
    assert_eq!(run.events("smtp").len(), 1);
    assert!(run.out.exceptions.is_empty(), "{:?}", run.out.exceptions);
}
