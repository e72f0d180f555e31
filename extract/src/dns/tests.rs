use proptest::prelude::*;
use serde_json::{json, Value};
use weir_core::{Anomaly, Artifact, Direction, SeenIn, StreamEvent, Timestamp, UrlArtifact};

use super::wire::{self, read_name, Issue, RrType, WireError};
use super::*;
use crate::emit::Emit;

const TS: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);

fn anomalies(out: &Emit) -> Vec<&'static str> {
    out.anomalies.iter().map(|(_, a)| a.event).collect()
}

fn dns_of(out: &Emit, i: usize) -> &Value {
    &out.events[i].fields["dns"]
}

/// A query for `example.com` A, id 0x1234, RD set.
fn example_query() -> Vec<u8> {
    let mut m = vec![
        0x12, 0x34, // id
        0x01, 0x00, // flags: RD
        0x00, 0x01, // QDCOUNT 1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // AN, NS, AR
    ];
    m.extend_from_slice(b"\x07example\x03com\x00"); // QNAME at offset 12
    m.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]); // QTYPE A, QCLASS IN
    m
}

/// A resource record owned by the name at offset 12 (`c0 0c`).
fn rr(rrtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0xc0, 0x0c]; // NAME: pointer to the question's name
    r.extend_from_slice(&rrtype.to_be_bytes()); // TYPE
    r.extend_from_slice(&[0x00, 0x01]); // CLASS IN
    r.extend_from_slice(&ttl.to_be_bytes()); // TTL
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes()); // RDLENGTH
    r.extend_from_slice(rdata);
    r
}

/// A response to [`example_query`] with one record of each decoded type, an unknown type, an
/// SOA authority and an empty OPT additional.
fn example_response() -> Vec<u8> {
    let mut m = vec![
        0x12, 0x34, // id
        0x81, 0x80, // flags: QR, RD, RA, NOERROR
        0x00, 0x01, // QDCOUNT
        0x00, 0x0a, // ANCOUNT 10
        0x00, 0x01, // NSCOUNT
        0x00, 0x01, // ARCOUNT
    ];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend(rr(5, 60, b"\x03www\xc0\x0c")); // CNAME www.example.com
    m.extend(rr(1, 60, &[93, 184, 216, 34])); // A
    m.extend(rr(28, 60, &[0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0x00, 0x01, 0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46])); // AAAA
    m.extend(rr(15, 60, b"\x00\x0a\x04mail\xc0\x0c")); // MX preference 10, mail.example.com
    m.extend(rr(2, 60, b"\x03ns1\xc0\x0c")); // NS ns1.example.com
    m.extend(rr(12, 60, b"\xc0\x0c")); // PTR example.com
    m.extend(rr(16, 60, b"\x05hello\x03a=b")); // TXT two strings
    m.extend(rr(33, 60, b"\x00\x01\x00\x02\x13\xc4\x03sip\xc0\x0c")); // SRV 1 2 5060 sip.example.com
    m.extend(rr(257, 60, b"\x00\x05issue")); // CAA, not decoded
    m.extend(rr(28, 60, &[1, 2, 3])); // AAAA of 3 bytes: malformed data
    let mut soa = b"\x03ns1\xc0\x0c\x05admin\xc0\x0c".to_vec(); // MNAME, RNAME
    for v in [1u32, 7200, 900, 1_209_600, 86_400] {
        soa.extend_from_slice(&v.to_be_bytes()); // SERIAL REFRESH RETRY EXPIRE MINIMUM
    }
    m.extend(rr(6, 899, &soa));
    // OPT: root name, TYPE 41, CLASS = UDP size 4096, TTL 0, no options
    m.extend_from_slice(&[0x00, 0x00, 0x29, 0x10, 0x00, 0, 0, 0, 0, 0x00, 0x00]);
    m
}

#[test]
fn names_follow_pointers_and_report_where_they_end() {
    let msg = example_response();
    let (name, next) = read_name(&msg, 12).unwrap();
    assert_eq!(name.bytes, b"example.com");
    assert_eq!(next, 25);
    // The CNAME rdata "\x03www\xc0\x0c" starts 12 bytes into the first answer (offset 29+12).
    let (name, next) = read_name(&msg, 41).unwrap();
    assert_eq!(name.bytes, b"www.example.com");
    assert_eq!(next, 47, "ends after the pointer, not where the pointer led");
}

#[test]
fn compression_loops_are_cut_off() {
    // Offset 12 points to itself.
    let mut msg = example_query();
    msg.truncate(12);
    msg.extend_from_slice(&[0xc0, 0x0c]);
    assert_eq!(read_name(&msg, 12), Err(WireError::PointerLoop));
    // Two pointers pointing at each other, behind a label.
    let mut msg = vec![0u8; 12];
    msg.extend_from_slice(&[0x01, b'a', 0xc0, 0x10, 0xc0, 0x0e]);
    assert_eq!(read_name(&msg, 12), Err(WireError::PointerLoop));
    assert_eq!(read_name(&msg, 100), Err(WireError::Truncated("name")));
    let msg = [0u8, 0, 0xc0, 0xff];
    assert_eq!(read_name(&msg, 2), Err(WireError::PointerOutOfRange(0xff)));
}

#[test]
fn labels_longer_than_63_bytes_are_rejected_and_counted() {
    let mut q = example_query();
    q[12] = 0x40; // a length byte of 64
    assert_eq!(read_name(&q, 12), Err(WireError::BadLabel(0x40)));
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_datagram(Direction::ToServer, &q, TS, &mut out);
    assert!(out.events.is_empty());
    assert_eq!(anomalies(&out), ["dns.label_too_long"]);
}

#[test]
fn names_past_255_bytes_are_cut_and_flagged() {
    let mut msg = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..5 {
        msg.push(63);
        msg.extend_from_slice(&[b'x'; 63]);
    }
    msg.push(0);
    msg.extend_from_slice(&[0, 1, 0, 1]);
    let m = wire::parse_message(&msg).unwrap();
    let name = &m.questions[0].name;
    assert!(name.truncated);
    assert_eq!(name.bytes.len(), 63 * 3 + 2, "three labels fit in 255 wire bytes, the fourth does not");
    assert_eq!(m.issues, [Issue::NameTooLong]);
    let mut out = Emit::default();
    DnsState::new().on_datagram(Direction::ToServer, &msg, TS, &mut out);
    assert_eq!(dns_of(&out, 0)["queries"][0]["rrname_truncated"], json!(true));
    assert_eq!(anomalies(&out), ["dns.name_too_long"]);
}

#[test]
fn request_record_is_version_3_with_queries() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_datagram(Direction::ToServer, &example_query(), TS, &mut out);
    assert_eq!(out.events.len(), 1);
    let ev = &out.events[0];
    assert_eq!(ev.event_type, "dns");
    assert_eq!(ev.tx_id, Some(0));
    assert_eq!(ev.direction, Direction::ToServer);
    assert_eq!(
        Value::Object(ev.fields.clone()),
        json!({"dns": {
            "version": 3, "type": "request", "tx_id": 0, "id": 0x1234, "flags": "100", "rd": true,
            "opcode": 0, "rcode": "NOERROR",
            "queries": [{"rrname": "example.com", "rrtype": "A"}],
        }})
    );
    assert_eq!(
        out.artifacts,
        [(TS, Some(0), Artifact::Url(UrlArtifact { url: "example.com".into(), seen_in: SeenIn::DnsQuery }))]
    );
    assert!(out.anomalies.is_empty());
    assert_eq!(dns.outstanding_queries(), 1);
}

#[test]
fn response_record_has_every_decoded_type() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_datagram(Direction::ToServer, &example_query(), TS, &mut out);
    dns.on_datagram(Direction::ToClient, &example_response(), TS, &mut out);
    assert_eq!(dns.outstanding_queries(), 0, "the response answered the query");
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[1].tx_id, Some(1));
    assert_eq!(anomalies(&out), ["dns.malformed_data"], "the 3-byte AAAA");
    let expected = json!({
        "version": 3, "type": "response", "tx_id": 1, "id": 0x1234, "flags": "8180",
        "qr": true, "rd": true, "ra": true, "opcode": 0, "rcode": "NOERROR",
        "queries": [{"rrname": "example.com", "rrtype": "A"}],
        "answers": [
            {"rrname": "example.com", "rrtype": "CNAME", "ttl": 60, "rdata": "www.example.com"},
            {"rrname": "example.com", "rrtype": "A", "ttl": 60, "rdata": "93.184.216.34"},
            {"rrname": "example.com", "rrtype": "AAAA", "ttl": 60, "rdata": "2606:2800:0220:0001:0248:1893:25c8:1946"},
            {"rrname": "example.com", "rrtype": "MX", "ttl": 60, "rdata": "mail.example.com"},
            {"rrname": "example.com", "rrtype": "NS", "ttl": 60, "rdata": "ns1.example.com"},
            {"rrname": "example.com", "rrtype": "PTR", "ttl": 60, "rdata": "example.com"},
            {"rrname": "example.com", "rrtype": "TXT", "ttl": 60, "rdata": "hello"},
            {"rrname": "example.com", "rrtype": "TXT", "ttl": 60, "rdata": "a=b"},
            {"rrname": "example.com", "rrtype": "SRV", "ttl": 60,
             "srv": {"priority": 1, "weight": 2, "port": 5060, "name": "sip.example.com"}},
            {"rrname": "example.com", "rrtype": "257", "ttl": 60},
            {"rrname": "example.com", "rrtype": "AAAA", "ttl": 60},
        ],
        "grouped": {
            "CNAME": ["www.example.com"],
            "A": ["93.184.216.34"],
            "AAAA": ["2606:2800:0220:0001:0248:1893:25c8:1946"],
            "MX": ["mail.example.com"],
            "NS": ["ns1.example.com"],
            "PTR": ["example.com"],
            "TXT": ["hello", "a=b"],
            "SRV": [{"priority": 1, "weight": 2, "port": 5060, "name": "sip.example.com"}],
        },
        "authorities": [{"rrname": "example.com", "rrtype": "SOA", "ttl": 899, "soa": {
            "mname": "ns1.example.com", "rname": "admin.example.com", "serial": 1, "refresh": 7200,
            "retry": 900, "expire": 1209600, "minimum": 86400}}],
    });
    assert_eq!(*dns_of(&out, 1), expected);
    // Key order is part of the contract (serde_json keeps insertion order here).
    let keys: Vec<&String> = dns_of(&out, 1).as_object().unwrap().keys().collect();
    assert_eq!(keys[..5], ["version", "type", "tx_id", "id", "flags"]);

    let tx = dns.transaction(1).unwrap();
    let answers: Vec<&[u8]> = tx.answer_names().collect();
    assert_eq!(answers.len(), 10);
    assert!(answers.iter().all(|n| *n == b"example.com"));
    assert_eq!(tx.query_names().collect::<Vec<_>>(), [b"example.com"]);
    let other = &tx.message.answers[8];
    assert_eq!((other.rrtype, &other.data), (RrType(257), &RData::Other { len: 7 }));
    assert_eq!(out.artifacts.len(), 1, "responses add no query artifact");
}

#[test]
fn opt_with_options_is_logged_as_an_additional() {
    let mut m = example_query();
    m[11] = 1; // ARCOUNT 1
    // OPT with one option: code 10 (COOKIE), 8 bytes
    m.extend_from_slice(&[0x00, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0x00, 0x0c]);
    m.extend_from_slice(&[0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
    let mut out = Emit::default();
    DnsState::new().on_datagram(Direction::ToServer, &m, TS, &mut out);
    assert_eq!(
        dns_of(&out, 0)["additionals"],
        json!([{"rrname": "<root>", "rrtype": "OPT", "ttl": 0, "opt": [{"code": 10, "data": "0102030405060708"}]}])
    );
}

#[test]
fn truncated_messages_are_anomalies_not_events() {
    let full = example_response();
    for cut in [0, 5, 12, 20, 40, full.len() - 1] {
        let mut out = Emit::default();
        DnsState::new().on_datagram(Direction::ToClient, &full[..cut], TS, &mut out);
        assert!(out.events.is_empty(), "cut at {cut}");
        assert_eq!(anomalies(&out), ["dns.malformed_data"], "cut at {cut}");
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

#[test]
fn tcp_messages_split_anywhere_give_the_same_events() {
    let mut stream = framed(&example_query());
    stream.extend(framed(&example_query()));
    let mut whole = Emit::default();
    let mut dns = DnsState::new();
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&stream), TS, &mut whole);
    assert_eq!(whole.events.len(), 2, "two messages in one segment");
    assert_eq!(dns.buffered(Direction::ToServer), 0);
    for split in 1..stream.len() {
        let mut out = Emit::default();
        let mut dns = DnsState::new();
        dns.on_stream(Direction::ToServer, StreamEvent::Data(&stream[..split]), TS, &mut out);
        dns.on_stream(Direction::ToServer, StreamEvent::Data(&stream[split..]), TS, &mut out);
        assert_eq!(out.events, whole.events, "split at {split}");
    }
    let mut out = Emit::default();
    let mut dns = DnsState::new();
    for b in &stream {
        dns.on_stream(Direction::ToServer, StreamEvent::Data(std::slice::from_ref(b)), TS, &mut out);
    }
    assert_eq!(out.events, whole.events, "one byte at a time");
}

#[test]
fn tcp_gap_resyncs_on_a_message_boundary_or_gives_up() {
    let q = framed(&example_query());
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q[..10]), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Gap { len: 100 }, TS, &mut out);
    assert_eq!(dns.buffered(Direction::ToServer), 0, "the partial message is dropped");
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q), TS, &mut out);
    assert_eq!(out.events.len(), 1, "resynced on a whole message");
    assert!(out.anomalies.is_empty());

    // After a gap, bytes from the middle of a message: framing is lost for good.
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Gap { len: 7 }, TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&[0x00, 0x0c, 0xff, 0xff, 0xff, 0xff]), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&[0xff; 8]), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q), TS, &mut out);
    assert!(out.events.is_empty());
    assert_eq!(anomalies(&out), ["dns.resync_failed"]);
    assert_eq!(dns.buffered(Direction::ToServer), 0);

    // A prefix claiming 65535 bytes over a header that is not DNS: given up without buffering.
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Gap { len: 7 }, TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&[0xff, 0xff, 0, 0, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), TS, &mut out);
    assert_eq!(anomalies(&out), ["dns.resync_failed"]);
    assert_eq!(dns.buffered(Direction::ToServer), 0);
}

#[test]
fn tcp_end_inside_a_message_is_an_anomaly() {
    let q = framed(&example_query());
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q[..q.len() - 1]), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::End, TS, &mut out);
    assert!(out.events.is_empty());
    assert_eq!(anomalies(&out), ["dns.malformed_data"]);
}

#[test]
fn outstanding_queries_are_bounded() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    let mut q = example_query();
    for i in 0..(MAX_OUTSTANDING_QUERIES + 100) {
        q[..2].copy_from_slice(&(i as u16).to_be_bytes());
        dns.on_datagram(Direction::ToServer, &q, TS, &mut out);
    }
    assert_eq!(dns.outstanding_queries(), MAX_OUTSTANDING_QUERIES);
    assert_eq!(anomalies(&out), ["dns.flooded"], "reported once per flow");
    assert_eq!(dns.transactions().count(), MAX_RETAINED_TRANSACTIONS);
    assert_eq!(dns.transactions().next().unwrap().tx_id, (MAX_OUTSTANDING_QUERIES + 100 - MAX_RETAINED_TRANSACTIONS) as u64);
}

#[test]
fn records_per_message_are_bounded() {
    let mut m = example_query();
    m[6..8].copy_from_slice(&1000u16.to_be_bytes()); // ANCOUNT 1000
    for _ in 0..1000 {
        m.extend(rr(1, 1, &[10, 0, 0, 1]));
    }
    let parsed = wire::parse_message(&m).unwrap();
    assert_eq!(parsed.questions.len() + parsed.answers.len(), wire::MAX_RECORDS_PER_MESSAGE);
    assert_eq!(parsed.issues, [Issue::TooManyRecords]);
}

#[test]
fn wrong_direction_is_noted() {
    let mut out = Emit::default();
    DnsState::new().on_datagram(Direction::ToClient, &example_query(), TS, &mut out);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.anomalies, [(TS, Anomaly::app_layer("dns.not_a_response"))]);
}

#[test]
fn probes_tell_dns_from_other_bytes() {
    assert_eq!(probe_udp(&example_query()), Probe::Request);
    assert_eq!(probe_udp(&example_response()), Probe::Response);
    assert_eq!(probe_udp(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Probe::NoMatch);
    assert_eq!(probe_udp(&[0; 12]), Probe::NoMatch, "no question");
    let f = framed(&example_query());
    assert_eq!(probe_tcp(&f), Probe::Request);
    assert_eq!(probe_tcp(&f[..1]), Probe::NeedMore);
    assert_eq!(probe_tcp(&f[..10]), Probe::NeedMore);
    assert_eq!(probe_tcp(&f[..22]), Probe::NeedMore, "question name cut short");
    assert_eq!(probe_tcp(&f[..27]), Probe::Request, "question name complete");
    assert_eq!(probe_tcp(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x5a\x11\x22"), Probe::NoMatch, "TLS");
    assert_eq!(probe_tcp(b"SSH-2.0-OpenSSH_9.6\r\n"), Probe::NoMatch);
}

// ---- the suricata-verify corpus ----

fn run_udp(rel: &str) -> Emit {
    let mut out = Emit::default();
    let mut dns = DnsState::new();
    let segs = test_pcap::read(rel);
    let client = segs.iter().find(|s| s.tcp.is_none()).map(|s| s.src.clone());
    for s in segs.iter().filter(|s| s.tcp.is_none()) {
        let dir = if Some(&s.src) == client.as_ref() { Direction::ToServer } else { Direction::ToClient };
        dns.on_datagram(dir, &s.payload, s.ts, &mut out);
    }
    out
}

fn run_tcp(rel: &str) -> Vec<Emit> {
    let segs = test_pcap::read(rel);
    test_pcap::tcp_conns(&segs)
        .into_iter()
        .map(|conn| {
            let mut out = Emit::default();
            let mut dns = DnsState::new();
            for (dir, ts, bytes) in &conn.chunks {
                dns.on_stream(*dir, StreamEvent::Data(bytes), *ts, &mut out);
            }
            dns.on_stream(Direction::ToServer, StreamEvent::End, TS, &mut out);
            dns.on_stream(Direction::ToClient, StreamEvent::End, TS, &mut out);
            out
        })
        .collect()
}

#[test]
fn corpus_nxdomain_soa_authority() {
    let out = run_udp("dns-eve-v2-udp-nxdomain-soa/dns-udp-nxdomain-soa.pcap");
    assert_eq!(out.events.len(), 2);
    let resp = dns_of(&out, 1);
    assert_eq!(resp["type"], "response");
    assert_eq!(resp["rcode"], "NXDOMAIN");
    assert_eq!(resp["queries"], json!([{"rrname": "dne.oisf.net", "rrtype": "A"}]));
    assert_eq!(
        resp["authorities"][0],
        json!({"rrname": "oisf.net", "rrtype": "SOA", "ttl": 899, "soa": {
            "mname": "ns-110.awsdns-13.com", "rname": "awsdns-hostmaster.amazon.com", "serial": 1,
            "refresh": 7200, "retry": 900, "expire": 1209600, "minimum": 86400}})
    );
    assert!(resp.get("answers").is_none());
    assert!(out.anomalies.is_empty());
}

#[test]
fn corpus_udp_and_tcp_give_two_records_each() {
    // bug-8205-gna-tna-una: one exchange over TCP, then one over UDP.
    let rel = "bug-8205-gna-tna-una/input.pcap";
    let udp = run_udp(rel);
    assert_eq!(udp.events.len(), 2);
    let tcp = run_tcp(rel);
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].events.len(), 2);
    assert!(tcp[0].anomalies.is_empty(), "{:?}", tcp[0].anomalies);
    for out in [&udp, &tcp[0]] {
        assert_eq!(dns_of(out, 0)["type"], "request");
        assert_eq!(dns_of(out, 0)["queries"][0]["rrname"], "suricata.io");
        assert_eq!(dns_of(out, 1)["type"], "response");
        assert_eq!(dns_of(out, 1)["grouped"], json!({"A": ["35.209.168.153"]}));
        assert!(dns_of(out, 1).get("additionals").is_none(), "an empty OPT is left out");
    }
    assert_eq!(dns_of(&tcp[0], 0)["id"], 0x44be);
    assert_eq!(dns_of(&udp, 0)["id"], 0xd2dc);
}

#[test]
fn corpus_tcp_dns_issue_4759() {
    let conns = run_tcp("issue-4759.1/tcpdns.pcap");
    assert_eq!(conns.len(), 2);
    let total: usize = conns.iter().map(|c| c.events.len()).sum();
    assert_eq!(total, 4);
    assert_eq!(dns_of(&conns[0], 0)["queries"][0]["rrname"], "google.com");
    assert_eq!(dns_of(&conns[1], 0)["queries"][0]["rrname"], "aol.com");
    let resp = dns_of(&conns[0], 1);
    assert_eq!(resp["grouped"]["A"].as_array().unwrap().len(), 11);
    assert_eq!(resp["grouped"]["A"][0], "74.125.228.46");
    assert_eq!(resp["authorities"].as_array().unwrap().len(), 4);
    assert_eq!(resp["authorities"][0]["rdata"], "ns4.google.com");
    assert_eq!(resp["additionals"].as_array().unwrap().len(), 4);
    let artifacts: Vec<_> = conns
        .iter()
        .flat_map(|c| c.artifacts.iter())
        .map(|(_, _, a)| match a {
            Artifact::Url(u) => u.url.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(artifacts, ["google.com", "aol.com"]);
}

#[test]
fn corpus_txt_query_name_for_detection() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    for s in test_pcap::read("dns-detect-query-04/input.pcap") {
        dns.on_datagram(Direction::ToServer, &s.payload, s.ts, &mut out);
    }
    let tx = dns.transactions().next().unwrap();
    assert_eq!(tx.query_names().collect::<Vec<_>>(), [b"google.com"]);
    assert_eq!(dns_of(&out, 0)["queries"], json!([{"rrname": "google.com", "rrtype": "TXT"}]));
}

proptest! {
    #[test]
    fn random_datagrams_never_panic_and_stay_bounded(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut dns = DnsState::new();
        let mut out = Emit::default();
        dns.on_datagram(Direction::ToServer, &payload, TS, &mut out);
        prop_assert!(out.events.len() <= 1);
        prop_assert!(out.anomalies.len() <= 5);
        prop_assert!(dns.transactions().count() <= 1);
    }

    #[test]
    fn random_dns_like_datagrams_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300), counts in any::<[u8; 4]>()) {
        // A valid-looking header with random counts, so the record parsers get exercised.
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, counts[0] & 3, 0, counts[1], 0, counts[2], 0, counts[3]];
        m.extend_from_slice(&tail);
        let mut out = Emit::default();
        DnsState::new().on_datagram(Direction::ToClient, &m, TS, &mut out);
        prop_assert!(out.events.len() <= 1);
    }

    #[test]
    fn random_tcp_streams_never_panic_and_buffer_is_bounded(
        chunks in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..300), 0u8..10), 0..20)
    ) {
        let mut dns = DnsState::new();
        let mut out = Emit::default();
        let mut fed = 0usize;
        for (bytes, kind) in &chunks {
            let ev = match kind {
                0 => StreamEvent::Gap { len: 10 },
                1 => StreamEvent::End,
                _ => StreamEvent::Data(bytes),
            };
            fed += bytes.len();
            dns.on_stream(Direction::ToClient, ev, TS, &mut out);
            prop_assert!(dns.buffered(Direction::ToClient) <= MAX_TCP_FRAME_LEN);
        }
        // Every event needs at least 2 + 12 bytes of input.
        prop_assert!(out.events.len() <= fed / 14 + 1);
        prop_assert!(dns.transactions().count() <= MAX_RETAINED_TRANSACTIONS);
    }
}

/// Throughput figure for the report; prints, never asserts a time.
/// `cargo test -p weir-extract --lib -- --ignored --nocapture measure_`
#[test]
#[ignore]
fn measure_dns_throughput() {
    let query = framed(&example_query());
    let response = framed(&example_response());
    let mut stream = Vec::new();
    for _ in 0..1000 {
        stream.extend_from_slice(&query);
        stream.extend_from_slice(&response);
    }
    let start = std::time::Instant::now();
    let mut messages = 0;
    for _ in 0..20 {
        let mut dns = DnsState::new();
        let mut out = Emit::default();
        for chunk in stream.chunks(1460) {
            dns.on_stream(Direction::ToServer, StreamEvent::Data(chunk), TS, &mut out);
        }
        messages += out.events.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "dns: {messages} messages, {:.0} messages/s, {:.1} MB/s (EVE objects built)",
        messages as f64 / secs,
        (stream.len() * 20) as f64 / secs / 1e6
    );
}

#[test]
#[ignore]
fn measure_dns_parts() {
    let response = example_response();
    let n = 20000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(wire::parse_message(std::hint::black_box(&response)).unwrap());
    }
    let parse = start.elapsed().as_secs_f64() / n as f64;
    let m = wire::parse_message(&response).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(dns_object(std::hint::black_box(&m), 1));
    }
    let eve = start.elapsed().as_secs_f64() / n as f64;
    println!("dns parts: parse {:.2} us, eve {:.2} us per response of 12 records", parse * 1e6, eve * 1e6);
}

#[test]
fn unprintable_name_bytes_are_escaped_in_eve_and_artifacts() {
    assert_eq!(escape_bytes(b"a b.c"), "a b.c");
    assert_eq!(escape_bytes(b"a\x01\xff\"."), "a\\x01\\xff\".");
    assert_eq!(name_text(b""), "<root>");
    let mut q = example_query();
    q[13] = 0x07; // "example" -> "\x07xample"
    let mut out = Emit::default();
    DnsState::new().on_datagram(Direction::ToServer, &q, TS, &mut out);
    assert_eq!(dns_of(&out, 0)["queries"][0]["rrname"], "\\x07xample.com");
    assert_eq!(out.artifacts[0].2, Artifact::Url(UrlArtifact { url: "\\x07xample.com".into(), seen_in: SeenIn::DnsQuery }));
}

fn exceptions(out: &Emit) -> Vec<ParserException> {
    out.exceptions.iter().map(|(_, e)| *e).collect()
}

#[test]
fn a_udp_datagram_that_is_not_dns_is_one_parser_error_per_flow() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_datagram(Direction::ToServer, &example_query(), TS, &mut out);
    assert!(out.exceptions.is_empty());
    let cut = &example_response()[..20];
    dns.on_datagram(Direction::ToClient, cut, TS, &mut out);
    assert_eq!(out.exceptions, [(TS, ParserException::Error)]);
    dns.on_datagram(Direction::ToClient, cut, TS, &mut out);
    assert_eq!(exceptions(&out), [ParserException::Error]);
    // Later datagrams are still parsed.
    dns.on_datagram(Direction::ToClient, &example_response(), TS, &mut out);
    assert_eq!(out.events.len(), 2);
}

#[test]
fn tcp_framing_lost_after_a_gap_is_one_parser_error() {
    let junk = [0x00, 0x0c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Gap { len: 7 }, TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&junk), TS, &mut out);
    assert_eq!(out.exceptions, [(TS, ParserException::Error)]);
    // The other direction losing its framing the same way is still the same flow's one error.
    dns.on_stream(Direction::ToClient, StreamEvent::Gap { len: 7 }, TS, &mut out);
    dns.on_stream(Direction::ToClient, StreamEvent::Data(&junk), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&junk), TS, &mut out);
    assert_eq!(exceptions(&out), [ParserException::Error]);
    assert_eq!(anomalies(&out), ["dns.resync_failed", "dns.resync_failed"]);
}

#[test]
fn well_formed_dns_and_a_resynced_gap_raise_no_parser_error() {
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_datagram(Direction::ToServer, &example_query(), TS, &mut out);
    dns.on_datagram(Direction::ToClient, &example_response(), TS, &mut out);
    assert_eq!(out.events.len(), 2);
    assert!(out.exceptions.is_empty());

    let q = framed(&example_query());
    let mut dns = DnsState::new();
    let mut out = Emit::default();
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q[..10]), TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Gap { len: 100 }, TS, &mut out);
    dns.on_stream(Direction::ToServer, StreamEvent::Data(&q), TS, &mut out);
    dns.on_stream(Direction::ToClient, StreamEvent::Data(&framed(&example_response())), TS, &mut out);
    assert_eq!(out.events.len(), 2);
    assert!(out.exceptions.is_empty());
}
