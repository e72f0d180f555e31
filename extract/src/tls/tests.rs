use proptest::prelude::*;
use serde_json::{json, Value};
use weir_core::{Artifact, Direction, SeenIn, StreamEvent, Timestamp, UrlArtifact};

use super::*;
use crate::dns::test_pcap;
use crate::emit::Emit;

const TS: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);

fn anomalies(out: &Emit) -> Vec<&'static str> {
    out.anomalies.iter().map(|(_, a)| a.event).collect()
}

/// Runs every TCP connection of a corpus pcap through a fresh parser, segment by segment.
fn run(rel: &str) -> Vec<(TlsState, Emit, usize)> {
    let segs = test_pcap::read(rel);
    test_pcap::tcp_conns(&segs)
        .into_iter()
        .map(|conn| {
            let mut tls = TlsState::new();
            let mut out = Emit::default();
            for (dir, ts, bytes) in &conn.chunks {
                tls.on_stream(*dir, StreamEvent::Data(bytes), *ts, &mut out);
            }
            tls.on_stream(Direction::ToServer, StreamEvent::End, TS, &mut out);
            tls.on_stream(Direction::ToClient, StreamEvent::End, TS, &mut out);
            let to_server_segments = conn.chunks.iter().filter(|c| c.0 == Direction::ToServer).count();
            (tls, out, to_server_segments)
        })
        .collect()
}

fn tls_of(out: &Emit) -> &Value {
    assert_eq!(out.events.len(), 1, "one tls record per flow");
    assert_eq!(out.events[0].event_type, "tls");
    &out.events[0].fields["tls"]
}

#[test]
fn corpus_fragmented_client_hello_and_certificate_chain() {
    let conns = run("tls-client-hello-frag-01/dump_mtu300.pcap");
    assert_eq!(conns.len(), 1);
    let (tls, out, to_server_segments) = &conns[0];
    assert!(*to_server_segments >= 3, "the ClientHello really is split over segments");
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    let t = tls_of(out);
    assert_eq!(t["sni"], "www.google.com");
    assert_eq!(t["version"], "TLS 1.2");
    assert_eq!(t["subject"], "CN=www.google.com");
    assert_eq!(t["issuerdn"], "C=US, O=Google Trust Services LLC, CN=GTS CA 1C3");
    assert_eq!(t["subjectaltname"], json!(["www.google.com"]));
    // openssl: serial=BB2A80CC14FCDDBC1202B2A086BD1D17 (the DER integer has a leading 00)
    assert_eq!(t["serial"], "00:BB:2A:80:CC:14:FC:DD:BC:12:02:B2:A0:86:BD:1D:17");
    // openssl: sha1 Fingerprint=27:2E:56:1B:56:00:B7:8D:84:07:C7:62:41:02:94:F3:9A:A0:C3:5E
    assert_eq!(t["fingerprint"], "27:2e:56:1b:56:00:b7:8d:84:07:c7:62:41:02:94:f3:9a:a0:c3:5e");
    assert_eq!(t["notbefore"], "2022-07-18T08:25:34");
    assert_eq!(t["notafter"], "2022-10-10T08:25:33");
    assert_eq!(t["client_alpns"], json!(["h2", "http/1.1"]));
    assert_eq!(t["server_alpns"], json!(["h2"]));
    assert_eq!(t["ja4"], "t12d8008h2_9cedc1f1428b_046e095b7c4a");
    assert_eq!(
        out.artifacts,
        [(out.artifacts[0].0, Some(0), Artifact::Url(UrlArtifact { url: "www.google.com".into(), seen_in: SeenIn::TlsSni }))]
    );
    let chain: Vec<&str> = tls.certificates().iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        chain,
        [
            "CN=www.google.com",
            "C=US, O=Google Trust Services LLC, CN=GTS CA 1C3",
            "C=US, O=Google Trust Services LLC, CN=GTS Root R1"
        ]
    );
    assert_eq!(tls.certificates()[2].issuer, "C=BE, O=GlobalSign nv-sa, OU=Root CA, CN=GlobalSign Root CA");
    assert_eq!(tls.sni(), Some(&b"www.google.com"[..]));
    assert_eq!(tls.version(), Some(0x0303));
    assert_eq!(tls.subject(), Some("CN=www.google.com"));
    assert_eq!(tls.issuer(), Some("C=US, O=Google Trust Services LLC, CN=GTS CA 1C3"));
}

#[test]
fn corpus_tls13_draft18_version_and_ja3() {
    let conns = run("tls13-draft18/tls13_draft18.pcap");
    assert_eq!(conns.len(), 1);
    let (_, out, _) = &conns[0];
    let t = tls_of(out);
    assert_eq!(t["version"], "TLS 1.3 draft-18");
    assert_eq!(t["ja3"]["hash"], "23d254f72096d25c350e4a4a792f4948");
    assert_eq!(
        t["ja3"]["string"],
        "771,4865-4866-4867-49195-49199-158-49196-49200-159-52393-52392-52244-52243-49161-49187-49171-49191-51-103-49162-49188-49172-49192-57-107-156-157-47-60-53-61-10,65281-23-35-13-11-40-45-43-10,29-23-24,0"
    );
    assert!(t.get("sni").is_none(), "this client sent no SNI");
    assert!(t.get("subject").is_none(), "TLS 1.3 certificates are encrypted");
    assert_eq!(t["ja4"], "t00i320900_be6088d3a083_c5dd8abecdb0");
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
}

#[test]
fn corpus_ja4_client_handshake_fields() {
    let conns = run("ja4-cl-handshake/input.pcap");
    assert_eq!(conns.len(), 1);
    let (_, out, _) = &conns[0];
    let t = tls_of(out);
    assert_eq!(
        t["client_handshake"],
        json!({
            "version": "TLS 1.2",
            "ciphers": [49196,49200,159,52393,52392,52394,49195,49199,158,49188,49192,107,49187,49191,103,49162,49172,57,49161,49171,51,157,156,61,60,53,47,255],
            "exts": [0,11,10,35,22,23,13],
            "sig_algs": [1027,1283,1539,2055,2056,2057,2058,2059,2052,2053,2054,1025,1281,1537,771,515,769,513,770,514,1026,1282,1538],
        })
    );
    assert_eq!(t["ja4"], "t12d280700_d943125447b4_3c5a66c06c35");
    assert_eq!(t["sni"], "dogfish");
    assert_eq!(
        t["subject"],
        "C=US, ST=New Hampshire, L=Portsmouth, O=CloudShark, CN=tls, Email=support@cloudshark.org"
    );
    assert_eq!(t["serial"], "00:91:BA:74:7B:F2:8A:9A:E4");
    assert_eq!(t["fingerprint"], "93:30:fe:1e:f2:ad:af:21:6f:4b:11:b9:f2:55:f3:c1:05:16:17:be");
    assert_eq!(t["notbefore"], "2018-07-23T18:44:07");
    assert_eq!(t["notafter"], "2019-07-23T18:44:07");
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["subject", "issuerdn", "serial", "fingerprint", "sni", "version", "notbefore", "notafter", "ja3", "ja3s", "ja4", "client_handshake"]
    );
}

/// A minimal ClientHello record for `a.example` with one cipher and ALPN h2.
fn client_hello_record() -> Vec<u8> {
    let mut hs_body = vec![0x03, 0x03]; // legacy_version
    hs_body.extend_from_slice(&[0x22; 32]); // random
    hs_body.push(0x00); // session_id: empty
    hs_body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // cipher_suites: TLS_AES_128_GCM_SHA256
    hs_body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let exts: &[u8] = &[
        0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09, b'a', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e', // SNI
        0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2', // ALPN h2
    ];
    hs_body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    hs_body.extend_from_slice(exts);
    let mut hs = vec![0x01]; // ClientHello
    hs.extend_from_slice(&(hs_body.len() as u32).to_be_bytes()[1..]); // 24-bit length
    hs.extend(hs_body);
    record(HANDSHAKE, &hs)
}

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 0x03, 0x01]; // type, record version TLS 1.0
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A TLS 1.2 ServerHello followed by ServerHelloDone, in one record.
fn server_flight() -> Vec<u8> {
    let mut sh = vec![0x03, 0x03]; // version
    sh.extend_from_slice(&[0x33; 32]); // random
    sh.push(0x00); // session_id
    sh.extend_from_slice(&[0xc0, 0x2f]); // cipher
    sh.push(0x00); // compression
    sh.extend_from_slice(&[0x00, 0x00]); // no extensions
    let mut hs = vec![0x02];
    hs.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
    hs.extend(sh);
    hs.extend_from_slice(&[0x0e, 0x00, 0x00, 0x00]); // ServerHelloDone
    record(HANDSHAKE, &hs)
}

#[test]
fn client_hello_split_anywhere_gives_the_same_record() {
    let ch = client_hello_record();
    let reference = {
        let mut tls = TlsState::new();
        let mut out = Emit::default();
        tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch), TS, &mut out);
        tls.on_stream(Direction::ToClient, StreamEvent::Data(&server_flight()), TS, &mut out);
        assert_eq!(tls_of(&out)["sni"], "a.example");
        assert_eq!(tls_of(&out)["version"], "TLS 1.2");
        assert_eq!(tls_of(&out)["client_alpns"], json!(["h2"]));
        assert_eq!(tls_of(&out)["ja3s"]["string"], "771,49199,");
        out
    };
    for split in 1..ch.len() {
        let mut tls = TlsState::new();
        let mut out = Emit::default();
        tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch[..split]), TS, &mut out);
        tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch[split..]), TS, &mut out);
        tls.on_stream(Direction::ToClient, StreamEvent::Data(&server_flight()), TS, &mut out);
        assert_eq!(out.events, reference.events, "split at {split}");
        assert_eq!(out.artifacts, reference.artifacts, "split at {split}");
    }
}

#[test]
fn client_hello_across_two_records() {
    let ch = client_hello_record();
    let hs = &ch[5..];
    let mut stream = record(HANDSHAKE, &hs[..20]);
    stream.extend(record(HANDSHAKE, &hs[20..]));
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&stream), TS, &mut out);
    assert_eq!(tls.sni(), Some(&b"a.example"[..]));
    assert_eq!(tls.buffered(Direction::ToServer), 0);
    assert!(out.events.is_empty(), "the record waits for the server");
    tls.on_stream(Direction::ToServer, StreamEvent::End, TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::End, TS, &mut out);
    assert_eq!(tls_of(&out)["version"], "UNDETERMINED");
}

#[test]
fn oversized_record_is_an_anomaly_and_ends_parsing() {
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&client_hello_record()), TS, &mut out);
    // A record header claiming 65535 bytes (the 16-bit maximum; 2^14 + 2048 is the limit).
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&[0x16, 0x03, 0x03, 0xff, 0xff, 0x02]), TS, &mut out);
    assert_eq!(anomalies(&out), ["tls.record_overflow"]);
    assert_eq!(out.events.len(), 1, "what was known is still logged");
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&server_flight()), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&[0u8; 4096]), TS, &mut out);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.anomalies.len(), 1);
    assert_eq!(tls.buffered(Direction::ToClient), 0);
}

#[test]
fn sixteen_megabyte_handshake_message_is_refused() {
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    // A Certificate message claiming 0xffffff bytes, then filler records.
    let mut stream = record(HANDSHAKE, &[0x0b, 0xff, 0xff, 0xff, 0x00]);
    for _ in 0..20 {
        stream.extend(record(HANDSHAKE, &[0x55; 16000]));
    }
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&stream), TS, &mut out);
    assert_eq!(anomalies(&out), ["tls.handshake_invalid_length"]);
    assert_eq!(tls.buffered(Direction::ToClient), 0, "nothing is held for it");
    // The flow is given up: a valid exchange afterwards is not parsed.
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&client_hello_record()), TS, &mut out);
    assert!(tls.client_hello().is_none());
    assert!(out.events.is_empty());
}

#[test]
fn not_tls_gives_up_at_once() {
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(b"GET / HTTP/1.1\r\n\r\n"), TS, &mut out);
    assert_eq!(anomalies(&out), ["tls.invalid_record_type"]);
    assert!(out.events.is_empty());
}

#[test]
fn truncated_client_hello_logs_nothing() {
    let ch = client_hello_record();
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch[..40]), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Gap { len: 1000 }, TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch[40..]), TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::End, TS, &mut out);
    assert!(out.events.is_empty());
    assert!(tls.client_hello().is_none());
    assert_eq!(tls.buffered(Direction::ToServer), 0);
}

#[test]
fn malformed_client_hello_is_an_anomaly() {
    let mut ch = client_hello_record();
    ch[5 + 4 + 2 + 32] = 33; // session_id length past the message
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch), TS, &mut out);
    assert_eq!(anomalies(&out), ["tls.invalid_handshake_message"]);
}

#[test]
fn resumed_session_is_flagged() {
    let mut ch = client_hello_record();
    // Give the ClientHello a 1-byte session id: rebuild with session_id = [0x42].
    let at = 5 + 4 + 2 + 32;
    ch.splice(at..at + 1, [0x01, 0x42]);
    let hs_len = ch.len() - 9;
    ch[6..9].copy_from_slice(&(hs_len as u32).to_be_bytes()[1..]);
    let rec_len = ch.len() - 5;
    ch[3..5].copy_from_slice(&(rec_len as u16).to_be_bytes());
    let mut sh = vec![0x03, 0x03];
    sh.extend_from_slice(&[0x33; 32]);
    sh.extend_from_slice(&[0x01, 0x42, 0xc0, 0x2f, 0x00]); // same session id, cipher, compression
    let mut hs = vec![0x02, 0x00, 0x00, sh.len() as u8];
    hs.extend(sh);
    let mut server = record(HANDSHAKE, &hs);
    server.extend(record(CHANGE_CIPHER_SPEC, &[0x01]));
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&ch), TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&server), TS, &mut out);
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert_eq!(tls_of(&out)["session_resumed"], json!(true));
}

#[test]
fn versions_as_eve_spells_them() {
    assert_eq!(version_eve(0), "UNDETERMINED");
    assert_eq!(version_eve(0x0300), "SSLv3");
    assert_eq!(version_eve(0x0301), "TLSv1");
    assert_eq!(version_eve(0x0302), "TLS 1.1");
    assert_eq!(version_eve(0x0303), "TLS 1.2");
    assert_eq!(version_eve(0x0304), "TLS 1.3");
    assert_eq!(version_eve(0x7f12), "TLS 1.3 draft-18");
    assert_eq!(version_eve(0x7f1c), "TLS 1.3 draft-28");
    assert_eq!(version_eve(0x7f0e), "TLS 1.3 draft-<16");
    assert_eq!(version_eve(0xfb17), "TLS 1.3 draft-23-fb");
    assert_eq!(version_eve(0x1234), "0x1234");
}

#[test]
fn probe_tells_tls_from_other_bytes() {
    let ch = client_hello_record();
    assert_eq!(probe(&ch), Probe::Request);
    assert_eq!(probe(&server_flight()), Probe::Response);
    assert_eq!(probe(&ch[..3]), Probe::NeedMore);
    assert_eq!(probe(&ch[..5]), Probe::NeedMore);
    assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(probe(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]), Probe::NoMatch, "record too long");
    assert_eq!(probe(&[0x17, 0x03, 0x03, 0x00, 0x10, 0x01]), Probe::NoMatch, "not a handshake");
}

proptest! {
    #[test]
    fn random_streams_never_panic_and_stay_bounded(
        chunks in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..400), any::<bool>(), 0u8..12), 0..24)
    ) {
        let mut tls = TlsState::new();
        let mut out = Emit::default();
        for (bytes, to_client, kind) in &chunks {
            let dir = if *to_client { Direction::ToClient } else { Direction::ToServer };
            let ev = match kind {
                0 => StreamEvent::Gap { len: 5 },
                1 => StreamEvent::End,
                _ => StreamEvent::Data(bytes),
            };
            tls.on_stream(dir, ev, TS, &mut out);
            prop_assert!(tls.buffered(dir) <= MAX_HANDSHAKE_LEN + MAX_RECORD_LEN);
        }
        prop_assert!(out.events.len() <= 1);
        prop_assert!(out.artifacts.len() <= 1);
    }

    #[test]
    fn random_handshake_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), msg_type in 0u8..16) {
        // Well-framed records around random handshake messages reach the message parsers.
        let mut hs = vec![msg_type];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut tls = TlsState::new();
        let mut out = Emit::default();
        let dir = if msg_type % 2 == 0 { Direction::ToClient } else { Direction::ToServer };
        tls.on_stream(dir, StreamEvent::Data(&record(HANDSHAKE, &hs)), TS, &mut out);
        prop_assert!(out.events.len() <= 1);
        let _ = handshake::parse_certificate_list(&body);
        let _ = x509::parse(&body);
    }
}

/// Throughput figure for the report; prints, never asserts a time.
#[test]
#[ignore]
fn measure_tls_throughput() {
    let segs = test_pcap::read("tls-client-hello-frag-01/dump_mtu300.pcap");
    let conn = test_pcap::tcp_conns(&segs).remove(0);
    let bytes: usize = conn.chunks.iter().map(|c| c.2.len()).sum();
    let rounds = 2000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut tls = TlsState::new();
        let mut out = Emit::default();
        for (dir, ts, chunk) in &conn.chunks {
            tls.on_stream(*dir, StreamEvent::Data(chunk), *ts, &mut out);
        }
        assert_eq!(out.events.len(), 1);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "tls: {:.0} full handshakes/s (3-cert chain, x509 + JA3 + JA4 + EVE), {:.1} MB/s of flow bytes",
        rounds as f64 / secs,
        (bytes * rounds) as f64 / secs / 1e6
    );
}

fn exceptions(out: &Emit) -> Vec<ParserException> {
    out.exceptions.iter().map(|(_, e)| *e).collect()
}

#[test]
fn a_record_layer_it_cannot_follow_is_one_parser_error() {
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&client_hello_record()), TS, &mut out);
    assert!(out.exceptions.is_empty());
    // A record header claiming 65535 bytes ends parsing of the flow.
    let overflow = [0x16, 0x03, 0x03, 0xff, 0xff, 0x02];
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&overflow), TS, &mut out);
    assert_eq!(out.exceptions, [(TS, ParserException::Error)]);
    // The same bytes again (either direction) raise nothing more.
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&overflow), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&overflow), TS, &mut out);
    assert_eq!(exceptions(&out), [ParserException::Error]);

    // A record type that is not TLS is the same error.
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(b"GET / HTTP/1.1\r\n\r\n"), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Data(b"GET / HTTP/1.1\r\n\r\n"), TS, &mut out);
    assert_eq!(exceptions(&out), [ParserException::Error]);
}

#[test]
fn a_whole_handshake_and_gaps_raise_no_parser_error() {
    let mut tls = TlsState::new();
    let mut out = Emit::default();
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&client_hello_record()), TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&server_flight()), TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::Data(&record(CHANGE_CIPHER_SPEC, &[1])), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Data(&record(APPLICATION_DATA, &[0x5a; 300])), TS, &mut out);
    tls.on_stream(Direction::ToServer, StreamEvent::Gap { len: 100 }, TS, &mut out);
    tls.on_stream(Direction::ToClient, StreamEvent::End, TS, &mut out);
    assert_eq!(out.events.len(), 1);
    assert!(out.anomalies.is_empty());
    assert!(out.exceptions.is_empty());
}
