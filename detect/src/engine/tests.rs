//! Keyword-family tests with exact expectations, flowbits and threshold sequences, stream and
//! transaction semantics, and prefilter-vs-brute-force agreement.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use weir_core::{Direction, FlowKey, IpProto, Timestamp, Vlans};

use super::compile::{choose_fast_pattern, pattern_strength};
use super::*;
use crate::rules::{Classification, Vars, parse_rule};

fn rule(text: &str) -> Rule {
    let vars = Vars::default().resolve();
    parse_rule(text, &vars, &Classification::default(), None)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .0
}

fn compile(texts: &[&str]) -> CompiledRules {
    CompiledRules::new(texts.iter().map(|t| rule(t)).collect())
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn tcp_key() -> FlowKey {
    FlowKey {
        src_ip: ip([10, 0, 0, 1]),
        dst_ip: ip([192, 0, 2, 9]),
        src_port: 40000,
        dst_port: 80,
        proto: IpProto::TCP,
        vlans: Vlans::default(),
        tunnel_depth: 0,
    }
}

/// An established to-server TCP packet whose payload is inspected as a packet.
fn tcp_pkt(payload: &[u8]) -> PacketView<'_> {
    let mut p = PacketView::new(Timestamp::from_secs_nanos(1000, 0), tcp_key(), payload);
    p.direction = Some(Direction::ToServer);
    p.established = true;
    p.tcp = Some(TcpView {
        flags: 0x18,
        seq: 1,
        ack: 1,
        window: 512,
    });
    p
}

fn sids(alerts: &[Alert]) -> Vec<u32> {
    alerts.iter().map(|a| a.sid).collect()
}

fn packet_sids(rules: &CompiledRules, pkt: &PacketView<'_>) -> Vec<u32> {
    let mut m = Matcher::new(rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut alerts = Vec::new();
    m.inspect_packet(rules, Some(&mut flow), pkt, &mut alerts);
    sids(&alerts)
}

/// Whether a single `tcp-pkt` rule with these options matches this payload.
fn payload_matches(options: &str, payload: &[u8]) -> bool {
    let rules = compile(&[&format!(
        "alert tcp-pkt any any -> any any ({options} sid:7;)"
    )]);
    assert!(
        rules.report().unsupported.is_empty(),
        "{options}: {:?}",
        rules.report().unsupported
    );
    packet_sids(&rules, &tcp_pkt(payload)) == [7]
}

#[test]
fn content_case_offset_depth() {
    assert!(payload_matches(r#"content:"abc";"#, b"xxabcxx"));
    assert!(!payload_matches(r#"content:"ABC";"#, b"xxabcxx"));
    assert!(payload_matches(r#"content:"ABC"; nocase;"#, b"xxabcxx"));
    // offset 2, depth 3: the match must lie in bytes 2..5.
    assert!(payload_matches(
        r#"content:"abc"; offset:2; depth:3;"#,
        b"xxabcxx"
    ));
    assert!(!payload_matches(
        r#"content:"abc"; offset:3; depth:3;"#,
        b"xxabcxx"
    ));
    assert!(!payload_matches(r#"content:"abc"; depth:4;"#, b"xxabcxx"));
    assert!(payload_matches(r#"content:"abc"; depth:5;"#, b"xxabcxx"));
    assert!(payload_matches(r#"content:"|00 ff|"; "#, b"a\x00\xffb"));
}

#[test]
fn startswith_and_endswith() {
    assert!(payload_matches(r#"content:"GET"; startswith;"#, b"GET /"));
    assert!(!payload_matches(r#"content:"GET"; startswith;"#, b" GET /"));
    assert!(payload_matches(
        r#"content:".exe"; endswith;"#,
        b"a.exe.exe"
    ));
    assert!(!payload_matches(r#"content:".exe"; endswith;"#, b"a.exe "));
}

#[test]
fn relative_chain_retries_earlier_occurrences() {
    // The first "a" is followed by "c" too far away; the second "a" works.
    let payload = b"a....c..ab.c";
    assert!(payload_matches(
        r#"content:"a"; content:"b"; distance:0; within:1; content:"c"; distance:1; within:1;"#,
        payload
    ));
    assert!(!payload_matches(
        r#"content:"a"; content:"b"; distance:0; within:1; content:"c"; distance:0; within:1;"#,
        payload
    ));
    // Negative distance looks back.
    assert!(payload_matches(
        r#"content:"cd"; content:"ab"; distance:-4; within:2;"#,
        b"abcd"
    ));
    // within counts from the end of the previous match.
    assert!(payload_matches(
        r#"content:"x"; content:"y"; within:3;"#,
        b"x12y"
    ));
    assert!(!payload_matches(
        r#"content:"x"; content:"y"; within:3;"#,
        b"x123y"
    ));
}

#[test]
fn negated_contents() {
    assert!(payload_matches(
        r#"content:"GET"; content:!"admin";"#,
        b"GET /index"
    ));
    assert!(!payload_matches(
        r#"content:"GET"; content:!"admin";"#,
        b"GET /admin"
    ));
    // Relative negation: "admin" right after "GET " fails, elsewhere is fine.
    let rule = r#"content:"GET "; content:!"admin"; distance:0; within:5;"#;
    assert!(!payload_matches(rule, b"GET admin"));
    assert!(payload_matches(rule, b"GET /x?admin"));
    // The retry finds a second GET not followed by admin.
    assert!(payload_matches(rule, b"GET admin GET other"));
}

#[test]
fn isdataat_and_bsize_and_dsize() {
    assert!(payload_matches(
        r#"content:"ab"; isdataat:2,relative;"#,
        b"abxyz"
    ));
    assert!(!payload_matches(
        r#"content:"ab"; isdataat:3,relative;"#,
        b"abxyz"
    ));
    assert!(payload_matches(
        r#"content:"ab"; isdataat:!1,relative;"#,
        b"xab"
    ));
    assert!(payload_matches(r#"isdataat:4; content:"a";"#, b"abcde"));
    assert!(!payload_matches(r#"isdataat:5; content:"a";"#, b"abcde"));
    assert!(payload_matches(r#"content:"a"; bsize:5;"#, b"abcde"));
    assert!(!payload_matches(r#"content:"a"; bsize:>5;"#, b"abcde"));
    assert!(payload_matches(r#"dsize:5; content:"a";"#, b"abcde"));
    assert!(!payload_matches(r#"dsize:<5; content:"a";"#, b"abcde"));
}

#[test]
fn pcre_absolute_relative_negated() {
    assert!(payload_matches(r#"pcre:"/user=\d+/";"#, b"x user=42"));
    assert!(!payload_matches(r#"pcre:"/^user/";"#, b"x user=42"));
    // R: the subject starts after the previous match, so ^ anchors there.
    assert!(payload_matches(
        r#"content:"x "; pcre:"/^user/R";"#,
        b"x user=42"
    ));
    assert!(!payload_matches(
        r#"content:"x"; pcre:"/^user/R";"#,
        b"x user=42"
    ));
    assert!(payload_matches(
        r#"content:"x"; pcre:"/user/iR";"#,
        b"x USER=42"
    ));
    assert!(payload_matches(
        r#"content:"x"; pcre:!"/root/";"#,
        b"x user"
    ));
    assert!(!payload_matches(
        r#"content:"x"; pcre:!"/user/";"#,
        b"x user"
    ));
    // A content relative to the pcre's match end.
    assert!(payload_matches(
        r#"pcre:"/id=\d+/"; content:"|3B|"; within:1;"#,
        b"id=12;"
    ));
    assert!(!payload_matches(
        r#"pcre:"/id=\d+/"; content:"|3B|"; within:1;"#,
        b"id=12 ;"
    ));
}

#[test]
fn byte_test_jump_extract_math() {
    // Big-endian 2-byte length 0x0005 at offset 1.
    let payload = b"\x01\x00\x05hello!";
    assert!(payload_matches(
        r#"content:"|01|"; byte_test:2,=,5,1;"#,
        payload
    ));
    assert!(!payload_matches(
        r#"content:"|01|"; byte_test:2,>,5,1;"#,
        payload
    ));
    assert!(payload_matches(
        r#"content:"|01|"; byte_test:2,!=,6,1;"#,
        payload
    ));
    assert!(payload_matches(
        r#"content:"|01|"; byte_test:2,<,6,0,relative;"#,
        payload
    ));
    assert!(payload_matches(
        r#"content:"|01|"; byte_test:2,&,4,0,relative;"#,
        payload
    ));
    // ASCII decimal.
    assert!(payload_matches(
        r#"content:"len="; byte_test:3,>,99,0,relative,string,dec;"#,
        b"len=120;"
    ));
    // Jump over the 5-byte body; "!" must follow immediately.
    assert!(payload_matches(
        r#"content:"|01|"; byte_jump:2,0,relative; content:"!"; within:1;"#,
        payload
    ));
    assert!(!payload_matches(
        r#"content:"|01|"; byte_jump:2,0,relative; content:"o"; within:1;"#,
        payload
    ));
    // Extract the length, then use it as a depth-like distance.
    assert!(payload_matches(
        r#"content:"|01|"; byte_extract:2,0,len,relative; content:"!"; distance:len; within:1;"#,
        payload
    ));
    assert!(payload_matches(
        r#"content:"|01|"; byte_math:bytes 2, offset 0, oper +, rvalue 2, result total, relative; byte_test:1,=,0x21,total,relative;"#,
        payload
    ));
    // Little endian and bitmask.
    assert!(payload_matches(
        r#"content:"A"; byte_test:2,=,0x0201,0,relative,little;"#,
        b"A\x01\x02"
    ));
    assert!(payload_matches(
        r#"content:"A"; byte_test:1,=,3,0,relative,bitmask 0xf0;"#,
        b"A\x30"
    ));
    // Reading past the end never matches.
    assert!(!payload_matches(
        r#"content:"A"; byte_test:4,>,0,0,relative;"#,
        b"A\x01"
    ));
}

#[test]
fn huge_variables_saturate_instead_of_overflowing() {
    // Found by the arbitrary-payload property: 0xff << 56 saturates the variable, and the
    // relative isdataat must not overflow adding it to the cursor.
    let rule = r#"content:"|00|"; byte_extract:2,0,n,relative; byte_math:bytes 1, offset 0, oper <<, rvalue n, result r, relative; isdataat:r,relative;"#;
    assert!(!payload_matches(rule, b"\x00\x00\x38\xff"));
    assert!(!payload_matches(
        r#"content:"|00|"; byte_extract:1,0,d,relative; content:"x"; distance:d; within:d;"#,
        b"\x00\xffx"
    ));
}

fn header_match(options: &str, pkt: &PacketView<'_>) -> bool {
    let rules = compile(&[&format!("alert ip any any -> any any ({options} sid:9;)")]);
    packet_sids(&rules, pkt) == [9]
}

#[test]
fn header_keywords() {
    let p = tcp_pkt(b"");
    assert!(header_match("flags:PA;", &p));
    assert!(!header_match("flags:S;", &p));
    assert!(header_match("flags:A+;", &p));
    assert!(header_match("flags:*SA;", &p));
    assert!(!header_match("flags:!A;", &p));
    assert!(header_match("flags:A,P;", &p));
    assert!(header_match("ttl:64;", &p));
    assert!(header_match("ttl:>10;", &p));
    assert!(!header_match("ttl:<10;", &p));
    assert!(header_match("ip_proto:6;", &p));
    assert!(header_match("ip_proto:TCP;", &p));
    assert!(!header_match("ip_proto:17;", &p));
    assert!(header_match("seq:1; ack:1; window:512;", &p));
    assert!(!header_match("window:!512;", &p));
    let mut icmp = PacketView::new(
        Timestamp::ZERO,
        FlowKey {
            proto: IpProto::ICMP,
            src_port: 8,
            dst_port: 0,
            ..tcp_key()
        },
        b"",
    );
    icmp.icmp = Some(IcmpView {
        icmp_type: 8,
        code: 0,
        echo: Some((7, 3)),
    });
    assert!(header_match("itype:8; icode:0;", &icmp));
    assert!(header_match("itype:>5; icmp_id:7; icmp_seq:3;", &icmp));
    assert!(!header_match("itype:0;", &icmp));
    assert!(!header_match("flags:S;", &icmp));
}

#[test]
fn protocols_addresses_ports_and_direction() {
    let rules = compile(&[
        "alert tcp 10.0.0.0/8 any -> any 80 (sid:1; flow:to_server;)",
        "alert tcp any any -> 10.0.0.0/8 any (sid:2; flow:to_server;)",
        "alert tcp any 80 <> 10.0.0.0/8 any (sid:3; flow:to_server;)",
        "alert udp any any -> any any (sid:4; flow:to_server;)",
        "alert tcp any any -> any !80 (sid:5; flow:to_server;)",
        "alert icmp any 0 -> any any (sid:6; flow:to_server;)",
        "alert tcp any any -> any any (sid:7; flow:to_client;)",
        "alert tcp any any -> any any (sid:8; flow:established,to_server;)",
        "alert tcp any any -> any any (sid:9; flow:not_established;)",
    ]);
    assert_eq!(packet_sids(&rules, &tcp_pkt(b"")), [1, 3, 8]);
}

#[test]
fn ip_only_rules_fire_once_per_flow_direction() {
    let rules = compile(&["alert ip any any -> 192.0.2.9 any (sid:1;)"]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut alerts = Vec::new();
    for _ in 0..3 {
        m.inspect_packet(&rules, Some(&mut flow), &tcp_pkt(b"x"), &mut alerts);
    }
    assert_eq!(sids(&alerts), [1]);
    // Without a flow each packet is judged on its own.
    for _ in 0..2 {
        m.inspect_packet(&rules, None, &tcp_pkt(b"x"), &mut alerts);
    }
    assert_eq!(sids(&alerts), [1, 1, 1]);
}

#[test]
fn flowbits_sequence_across_packets() {
    let rules = compile(&[
        r#"alert tcp-pkt any any -> any any (content:"EHLO"; flowbits:set,helo; flowbits:noalert; sid:1;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isset,helo; content:"DATA"; flowbits:unset,helo; flowbits:set,data; sid:2;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isset,data; content:"Subject"; sid:3;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isnotset,helo; content:"DATA"; sid:4;)"#,
        r#"alert tcp-pkt any any -> any any (content:"Z"; flowbits:toggle,t; flowbits:noalert; sid:5;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isset,t; content:"Q"; sid:6;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut step = |payload: &[u8]| {
        let mut alerts = Vec::new();
        m.inspect_packet(&rules, Some(&mut flow), &tcp_pkt(payload), &mut alerts);
        sids(&alerts)
    };
    assert_eq!(step(b"Subject: x"), Vec::<u32>::new());
    assert_eq!(step(b"DATA"), [4]);
    assert_eq!(step(b"EHLO me"), Vec::<u32>::new());
    // Rule 2 unsets helo before rule 4 (a reader, ordered after setters) runs, as in Suricata.
    assert_eq!(step(b"DATA"), [2, 4]);
    assert_eq!(step(b"DATA"), [4]);
    assert_eq!(step(b"Subject: x"), [3]);
    assert_eq!(step(b"ZQ"), [6]);
    assert_eq!(step(b"ZQ"), Vec::<u32>::new());
    assert_eq!(step(b"Q"), Vec::<u32>::new());
    assert_eq!(step(b"Z"), Vec::<u32>::new());
    assert_eq!(step(b"Q"), [6]);
}

#[test]
fn flowbits_any_and_all_of() {
    let rules = compile(&[
        r#"alert tcp-pkt any any -> any any (content:"A"; flowbits:set,a; flowbits:noalert; sid:1;)"#,
        r#"alert tcp-pkt any any -> any any (content:"B"; flowbits:set,b; flowbits:noalert; sid:2;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isset,a|b; content:"X"; sid:3;)"#,
        r#"alert tcp-pkt any any -> any any (flowbits:isset,a&b; content:"X"; sid:4;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut alerts = Vec::new();
    m.inspect_packet(&rules, Some(&mut flow), &tcp_pkt(b"A X"), &mut alerts);
    assert_eq!(sids(&alerts), [3]);
    alerts.clear();
    m.inspect_packet(&rules, Some(&mut flow), &tcp_pkt(b"B X"), &mut alerts);
    assert_eq!(sids(&alerts), [3, 4]);
}

fn at_secs(p: &PacketView<'_>, secs: u64) -> PacketView<'static> {
    let mut q = PacketView::new(Timestamp::from_secs_nanos(secs, 0), p.key, b"");
    q.direction = p.direction;
    q.established = p.established;
    q.tcp = p.tcp;
    q
}

/// Alert pattern of one rule over packets at these times (seconds).
fn threshold_pattern(options: &str, times: &[u64]) -> Vec<bool> {
    let rules = compile(&[&format!(
        "alert tcp any any -> any any (flow:to_server; {options} sid:1;)"
    )]);
    let mut m = Matcher::new(&rules).unwrap();
    let base = tcp_pkt(b"");
    times
        .iter()
        .map(|t| {
            let mut alerts = Vec::new();
            m.inspect_packet(&rules, None, &at_secs(&base, *t), &mut alerts);
            !alerts.is_empty()
        })
        .collect()
}

#[test]
fn thresholds_by_packet_time() {
    let limit = threshold_pattern(
        "threshold:type limit, track by_src, count 2, seconds 10;",
        &[0, 1, 2, 3, 11, 12, 13],
    );
    assert_eq!(limit, [true, true, false, false, true, true, false]);
    let every = threshold_pattern(
        "threshold:type threshold, track by_src, count 3, seconds 60;",
        &[0, 1, 2, 3, 4, 5, 6],
    );
    assert_eq!(every, [false, false, true, false, false, true, false]);
    let both = threshold_pattern(
        "threshold:type both, track by_dst, count 2, seconds 10;",
        &[0, 1, 2, 3, 20, 21],
    );
    assert_eq!(both, [false, true, false, false, false, true]);
    let backoff = threshold_pattern(
        "threshold:type backoff, track by_flow, count 1, multiplier 3;",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    // Alerts on the 1st, 3rd and 9th match.
    assert_eq!(
        backoff,
        [
            true, false, true, false, false, false, false, false, true, false
        ]
    );
    let backoff2 = threshold_pattern(
        "threshold:type backoff, track by_rule, count 2, multiplier 2;",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    // Alerts on the 2nd, 4th and 8th match.
    assert_eq!(
        backoff2,
        [false, true, false, true, false, false, false, true, false]
    );
    let df = threshold_pattern(
        "detection_filter:track by_src, count 2, seconds 10;",
        &[0, 1, 2, 3, 20, 21, 22],
    );
    assert_eq!(df, [false, false, true, true, false, false, true]);
}

#[test]
fn detection_filter_unique_ports() {
    let rules = compile(&[
        "alert tcp any any -> any any (flow:stateless; detection_filter:track by_src, count 2, seconds 60, unique_on src_port; sid:1;)",
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut out = Vec::new();
    for port in [1000, 1000, 1001, 1001, 1002, 1003] {
        let mut p = tcp_pkt(b"");
        p.key.src_port = port;
        let mut alerts = Vec::new();
        m.inspect_packet(&rules, None, &p, &mut alerts);
        out.push(!alerts.is_empty());
    }
    assert_eq!(out, [false, false, false, false, true, true]);
}

#[test]
fn stream_matches_across_deliveries_once() {
    let rules = compile(&[
        r#"alert tcp any any -> any any (flow:established,to_server; content:"EVILTHING"; sid:1;)"#,
        r#"alert tcp any any -> any any (flow:established,to_server; content:"GET"; depth:3; sid:2;)"#,
        r#"alert tcp-pkt any any -> any any (content:"EVIL"; sid:3;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut pkt = tcp_pkt(b"");
    pkt.payload_in_stream = true;
    let mut alerts = Vec::new();
    m.inspect_stream(&rules, &mut flow, &pkt, b"GET /EVIL", &mut alerts);
    assert_eq!(sids(&alerts), [2]);
    alerts.clear();
    m.inspect_stream(&rules, &mut flow, &pkt, b"THING and more", &mut alerts);
    assert_eq!(sids(&alerts), [1]);
    alerts.clear();
    // The old bytes are re-inspected but do not alert again; "GET" is past depth 3 now.
    m.inspect_stream(&rules, &mut flow, &pkt, b" GET tail", &mut alerts);
    assert_eq!(sids(&alerts), Vec::<u32>::new());
    m.inspect_stream(&rules, &mut flow, &pkt, b"EVILTHING", &mut alerts);
    assert_eq!(sids(&alerts), [1]);
    alerts.clear();
    // A gap breaks continuity.
    m.inspect_stream(&rules, &mut flow, &pkt, b"EVILTH", &mut alerts);
    flow.stream_gap(Direction::ToServer, 10);
    m.inspect_stream(&rules, &mut flow, &pkt, b"ING", &mut alerts);
    assert_eq!(sids(&alerts), Vec::<u32>::new());
    // Packets whose payload goes to the stream skip the stream-preferred rules.
    m.inspect_packet(
        &rules,
        Some(&mut flow),
        &tcp_pkt_in_stream(b"EVILTHING"),
        &mut alerts,
    );
    assert_eq!(sids(&alerts), [3]);
    alerts.clear();
    m.inspect_packet(&rules, Some(&mut flow), &tcp_pkt(b"EVILTHING"), &mut alerts);
    assert_eq!(sids(&alerts), [1, 3]);
}

#[test]
fn stream_rule_alerts_when_any_of_its_matches_is_new() {
    // Found by the segmentation property: the rule's last content lies in already-inspected
    // bytes, its first in the new ones.
    let rules = compile(&[
        r#"alert tcp any any -> any any (flow:established; content:"cAa"; content:"aab"; sid:1;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let pkt = tcp_pkt_in_stream(b"");
    let mut alerts = Vec::new();
    m.inspect_stream(&rules, &mut flow, &pkt, b"aab", &mut alerts);
    assert_eq!(sids(&alerts), Vec::<u32>::new());
    m.inspect_stream(&rules, &mut flow, &pkt, b"aaaacAa", &mut alerts);
    assert_eq!(sids(&alerts), [1]);
    // Nothing new matched: no second alert.
    m.inspect_stream(&rules, &mut flow, &pkt, b"zz", &mut alerts);
    assert_eq!(sids(&alerts), [1]);
}

fn tcp_pkt_in_stream(payload: &[u8]) -> PacketView<'_> {
    let mut p = tcp_pkt(payload);
    p.payload_in_stream = true;
    p
}

#[test]
fn transactions_alert_once_per_rule_per_tx() {
    let rules = compile(&[
        r#"alert http any any -> any any (flow:to_server; http.uri; content:"/admin"; sid:1;)"#,
        r#"alert http any any -> any any (http.method; content:"POST"; http.uri; content:".php"; endswith; sid:2;)"#,
        r#"alert http any any -> any any (http.host; to_lowercase; content:"evil.example"; bsize:12; sid:3;)"#,
        r#"alert dns any any -> any any (dns.query; content:"bad.example"; nocase; sid:4;)"#,
        r#"alert http any any -> any any (urilen:>10; sid:5;)"#,
        r#"alert http any any -> any any (http.stat_code; content:"404"; sid:6;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let mut flow = FlowDetectState::new();
    let mut pkt = tcp_pkt(b"");
    pkt.app_proto = Some("http");
    let buffers: &[(&str, &[u8])] = &[
        ("http.method", b"POST"),
        ("http.uri", b"/admin/x.php"),
        ("http.host", b"EVIL.example"),
    ];
    let tx = TxView {
        tx_id: 0,
        direction: Direction::ToServer,
        buffers,
    };
    let mut alerts = Vec::new();
    m.inspect_tx(&rules, &mut flow, &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), [1, 2, 3, 5]);
    assert!(alerts.iter().all(|a| a.source == AlertSource::Tx(0)));
    alerts.clear();
    // Inspecting the grown transaction again: only the new response rule fires.
    let more: &[(&str, &[u8])] = &[("http.uri", b"/admin/x.php"), ("http.stat_code", b"404")];
    let tx = TxView {
        tx_id: 0,
        direction: Direction::ToClient,
        buffers: more,
    };
    m.inspect_tx(&rules, &mut flow, &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), [6]);
    alerts.clear();
    // A new transaction alerts again.
    let tx = TxView {
        tx_id: 1,
        direction: Direction::ToServer,
        buffers,
    };
    m.inspect_tx(&rules, &mut flow, &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), [1, 2, 3, 5]);
    alerts.clear();
    // Several instances of one buffer: any may match. Wrong app proto: nothing.
    pkt.app_proto = Some("dns");
    let queries: &[(&str, &[u8])] = &[
        ("dns.query", b"good.example"),
        ("dns.query", b"BAD.example"),
    ];
    let tx = TxView {
        tx_id: 0,
        direction: Direction::ToServer,
        buffers: queries,
    };
    m.inspect_tx(&rules, &mut flow, &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), [4]);
}

#[test]
fn each_declaration_of_a_multi_instance_buffer_matches_one_instance() {
    // The file-match-crossed case: two files, matches of one `file.data` must hold in one file.
    let rules = compile(&[
        r#"alert http any any -> any any (file.data; content:"Titi"; file.data; content:"minet"; sid:5;)"#,
        r#"alert http any any -> any any (file.data; content:"bateau"; file.data; content:"minet"; sid:7;)"#,
        r#"alert http any any -> any any (file.data; content:"bateau"; content:"minet"; sid:8;)"#,
        r#"alert http any any -> any any (file.data; content:"bateau"; file.name; content:"titi.txt"; sid:1;)"#,
        // A single-instance buffer declared twice is one chain: both contents in the one URI.
        r#"alert http any any -> any any (http.uri; content:"/a"; http.uri; content:"bateau"; sid:9;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let buffers: &[(&str, &[u8])] = &[
        ("http.uri", b"/a"),
        ("file.name", b"toto.txt"),
        ("file.data", b"toto est dans un bateau"),
        ("file.name", b"titi.txt"),
        ("file.data", b"Titi a vu un gros minet."),
    ];
    let tx = TxView {
        tx_id: 0,
        direction: Direction::ToServer,
        buffers,
    };
    let mut pkt = tcp_pkt(b"");
    pkt.app_proto = Some("http");
    let mut alerts = Vec::new();
    m.inspect_tx(&rules, &mut FlowDetectState::new(), &pkt, &tx, &mut alerts);
    let mut got = sids(&alerts);
    got.sort_unstable();
    assert_eq!(got, [1, 5, 7]);
    let parsed = rule(
        r#"alert http any any -> any any (file.data; content:"a"; content:"b"; file.data; content:"c"; http.uri; content:"d"; http.uri; content:"e"; sid:1;)"#,
    );
    let instances: Vec<u32> = parsed.matches.iter().map(|m| m.buffer.instance).collect();
    assert_eq!(instances, [1, 1, 3, 0, 0]);
}

#[test]
fn transaction_rules_with_payload_matches_use_the_packet() {
    let rules = compile(&[
        r#"alert http any any -> any any (http.uri; content:"/a"; pkt_data; content:"PAYLOADMARK"; fast_pattern; sid:1;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    let buffers: &[(&str, &[u8])] = &[("http.uri", b"/a")];
    let tx = TxView {
        tx_id: 3,
        direction: Direction::ToServer,
        buffers,
    };
    let mut alerts = Vec::new();
    let mut pkt = tcp_pkt(b"GET /a HTTP/1.1 no mark");
    pkt.app_proto = Some("http");
    m.inspect_tx(&rules, &mut FlowDetectState::new(), &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), Vec::<u32>::new());
    let mut pkt = tcp_pkt(b"GET /a HTTP/1.1 PAYLOADMARK");
    pkt.app_proto = Some("http");
    m.inspect_tx(&rules, &mut FlowDetectState::new(), &pkt, &tx, &mut alerts);
    assert_eq!(sids(&alerts), [1]);
}

#[test]
fn byte_jump_lands_at_the_end_and_clamps_before_the_start() {
    // Length 3 jumps exactly to the end: allowed, and nothing is left after it.
    assert!(payload_matches(
        r#"content:"L"; byte_jump:1,0,relative; isdataat:!0,relative;"#,
        b"L\x03abc"
    ));
    assert!(!payload_matches(
        r#"content:"L"; byte_jump:1,0,relative;"#,
        b"L\x04abc"
    ));
    // A negative post_offset past the start lands at the start.
    assert!(payload_matches(
        r#"content:"L"; byte_jump:1,0,relative,post_offset -100; content:"L"; within:1;"#,
        b"L\x00abc"
    ));
}

#[test]
fn fast_pattern_selection_follows_suricata() {
    let explicit = rule(
        r#"alert tcp any any -> any any (content:"longer one"; content:"short"; fast_pattern; sid:1;)"#,
    );
    assert_eq!(choose_fast_pattern(&explicit).unwrap().1.pattern, b"short");
    let buffer_first = rule(
        r#"alert http any any -> any any (content:"a much longer payload"; http.uri; content:"/x"; sid:1;)"#,
    );
    assert_eq!(choose_fast_pattern(&buffer_first).unwrap().1.pattern, b"/x");
    let method_low = rule(
        r#"alert http any any -> any any (http.method; content:"POST"; pkt_data; content:"abc"; sid:1;)"#,
    );
    assert_eq!(choose_fast_pattern(&method_low).unwrap().1.pattern, b"POST");
    let longest = rule(r#"alert tcp any any -> any any (content:"abc"; content:"abcd"; sid:1;)"#);
    assert_eq!(choose_fast_pattern(&longest).unwrap().1.pattern, b"abcd");
    let strongest = rule(
        r#"alert tcp any any -> any any (content:"aaaa"; content:"abcd"; content:"abce"; sid:1;)"#,
    );
    assert_eq!(choose_fast_pattern(&strongest).unwrap().1.pattern, b"abcd");
    let negated_ignored =
        rule(r#"alert tcp any any -> any any (content:!"longer negated"; content:"ab"; sid:1;)"#);
    assert_eq!(
        choose_fast_pattern(&negated_ignored).unwrap().1.pattern,
        b"ab"
    );
    assert_eq!(pattern_strength(b"aab"), 3 + 1 + 3);
    assert_eq!(pattern_strength(b"a1|00|"), 3 + 4 + 4 + 4 + 1 + 1);
    assert_eq!(pattern_strength(&[0x00, 0x02]), 4 + 6);
}

#[test]
fn compile_report_counts_groups_and_unsupported() {
    let rules = compile(&[
        r#"alert tcp any any -> any any (content:"abc"; sid:1;)"#,
        r#"alert tcp any any -> any any (pcre:"/a.c/"; sid:2;)"#,
        r#"alert ip any any -> 1.2.3.4 any (sid:3;)"#,
        r#"alert tcp any any -> any any (content:"x"; xbits:set,a,track ip_src; sid:4;)"#,
        r#"alert tls any any -> any any (ssl_state:client_hello; sid:5;)"#,
    ]);
    let r = rules.report();
    assert_eq!(
        (r.rules, r.prefiltered, r.always_checked, r.ip_only),
        (5, 1, 1, 1)
    );
    assert_eq!(
        r.unsupported,
        [(1, 4, "xbits".to_string()), (1, 5, "ssl_state".to_string())]
    );
    assert_eq!(r.prefilter_patterns, 1);
}

#[test]
fn eve_alert_object_as_suricata_writes_it() {
    let rules = compile(&[
        r#"alert tcp any any -> any any (msg:"ET TEST thing"; content:"x"; classtype:trojan-activity; metadata:created_at 2019_01_01, tag a, tag b; rev:3; sid:2000001;)"#,
    ]);
    let alert = Alert {
        rule_index: 0,
        gid: 1,
        sid: 2000001,
        rev: 3,
        source: AlertSource::Packet,
    };
    let eve = Value::Object(rules.eve_alert(&alert));
    assert_eq!(
        serde_json::to_string(&eve).unwrap(),
        r#"{"action":"allowed","gid":1,"signature_id":2000001,"rev":3,"signature":"ET TEST thing","category":"A Network Trojan was detected","severity":1,"metadata":{"created_at":["2019_01_01"],"tag":["a","b"]}}"#
    );
    let plain = compile(&[r#"alert tcp any any -> any any (sid:5;)"#]);
    let eve = Value::Object(plain.eve_alert(&Alert {
        sid: 5,
        rev: 0,
        ..alert
    }));
    assert_eq!(
        serde_json::to_string(&eve).unwrap(),
        r#"{"action":"allowed","gid":1,"signature_id":5,"rev":0,"signature":"","category":"","severity":3}"#
    );
}

#[test]
fn pass_rules_stop_later_alerts() {
    let rules = compile(&[
        r#"alert tcp-pkt any any -> any any (content:"x"; sid:1;)"#,
        r#"pass tcp-pkt any any -> any any (content:"ok"; sid:2;)"#,
    ]);
    assert_eq!(packet_sids(&rules, &tcp_pkt(b"x ok")), Vec::<u32>::new());
    assert_eq!(packet_sids(&rules, &tcp_pkt(b"x")), [1]);
}

#[test]
fn compiled_rules_are_shareable_and_matchers_sendable() {
    fn shareable<T: Send + Sync>() {}
    fn sendable<T: Send>() {}
    shareable::<CompiledRules>();
    sendable::<Matcher>();
    sendable::<FlowDetectState>();
}

#[test]
fn without_hyperscan_scratch_every_prefiltered_rule_is_checked() {
    let rules = compile(&[
        r#"alert tcp-pkt any any -> any any (content:"one"; sid:1;)"#,
        r#"alert tcp-pkt any any -> any any (content:"two"; nocase; sid:2;)"#,
        r#"alert tcp-pkt any any -> any any (content:"three"; sid:3;)"#,
    ]);
    let mut m = Matcher::new(&rules).unwrap();
    m.scratch = None;
    let mut alerts = Vec::new();
    m.inspect_packet(&rules, None, &tcp_pkt(b"one TWO"), &mut alerts);
    assert_eq!(sids(&alerts), [1, 2]);
    assert_eq!(m.stats().prefilter_errors, 1);
}

#[test]
fn matcher_follows_a_reloaded_rule_set() {
    let first = compile(&[r#"alert tcp-pkt any any -> any any (content:"one"; sid:1;)"#]);
    let second = compile(&[
        r#"alert tcp-pkt any any -> any any (content:"two"; sid:2;)"#,
        r#"alert tcp-pkt any any -> any any (content:"one"; sid:3;)"#,
    ]);
    let mut m = Matcher::new(&first).unwrap();
    let mut alerts = Vec::new();
    m.inspect_packet(&first, None, &tcp_pkt(b"one two"), &mut alerts);
    m.inspect_packet(&second, None, &tcp_pkt(b"one two"), &mut alerts);
    assert_eq!(sids(&alerts), [1, 2, 3]);
}

/// Runs every rule on one payload, with and without the prefilter.
fn both_ways(rules: &CompiledRules, payload: &[u8]) -> (Vec<u32>, Vec<u32>) {
    let mut m = Matcher::new(rules).unwrap();
    let mut fast = Vec::new();
    m.inspect_packet(rules, None, &tcp_pkt(payload), &mut fast);
    let mut brute = Vec::new();
    m.force_all = true;
    m.inspect_packet(rules, None, &tcp_pkt(payload), &mut brute);
    (sids(&fast), sids(&brute))
}

fn arb_address() -> impl Strategy<Value = String> {
    let item = prop::sample::select(vec![
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.0/30",
        "10.0.1.0/24",
        "10.0.0.0/8",
        "192.0.2.9",
        "2001:db8::1",
        "2001:db8::/120",
        "any",
        "!10.0.0.1",
        "!10.0.1.0/24",
    ]);
    proptest::collection::vec(item, 1..4).prop_map(|items| {
        let positive = items.iter().any(|i| !i.starts_with('!') && *i != "any");
        let has_any = items.contains(&"any");
        if items.len() == 1 && !items[0].starts_with('!') {
            items[0].to_string()
        } else if has_any {
            "any".to_string()
        } else if !positive {
            format!(
                "[{}]",
                items
                    .iter()
                    .filter(|i| i.starts_with('!'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(",")
            )
        } else {
            format!("[{}]", items.join(","))
        }
    })
}

fn arb_content() -> impl Strategy<Value = String> {
    let word = proptest::collection::vec(prop::sample::select(vec!['a', 'b', 'c', 'A']), 1..4)
        .prop_map(|v| v.into_iter().collect::<String>());
    (
        word,
        any::<bool>(),
        any::<bool>(),
        0u8..4,
        0u8..6,
        any::<bool>(),
    )
        .prop_map(|(w, nocase, negated, kind, n, fp)| {
            let neg = if negated { "!" } else { "" };
            let mut s = format!("content:{neg}\"{w}\";");
            if nocase {
                s.push_str(" nocase;");
            }
            match kind {
                1 => s.push_str(&format!(" offset:{n};")),
                2 => s.push_str(&format!(" distance:{n};")),
                3 => s.push_str(&format!(
                    " distance:0; within:{};",
                    w.len() + usize::from(n)
                )),
                _ => {}
            }
            if fp && !negated {
                s.push_str(" fast_pattern;");
            }
            s
        })
}

fn arb_option() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        0i64..8,
        Just(255i64),
        Just(65535i64),
        Just(-3i64),
        Just(i32::MAX as i64)
    ];
    let word = prop::sample::select(vec!["a", "ab", "|00|", "|ff 00|", "A"]);
    (0u8..12, num, word, any::<bool>()).prop_map(|(kind, n, w, flag)| {
        let neg = if flag { "!" } else { "" };
        let rel = if flag { ",relative" } else { "" };
        match kind {
            0 => format!("content:{neg}\"{w}\";"),
            1 => format!("content:\"{w}\"; distance:{n};"),
            2 => format!("content:\"{w}\"; offset:{}; depth:{};", n.max(0), n.max(0) + 4),
            3 => format!("pcre:{neg}\"/a.?b/{}\";", if flag { "R" } else { "s" }),
            4 => format!("byte_test:2,>,{n},{}{rel};", n.clamp(-3, 8)),
            5 => format!("byte_jump:1,{}{rel},post_offset {n};", n.clamp(-3, 8)),
            6 => format!("isdataat:{neg}{}{rel};", n.max(0)),
            7 => format!("byte_extract:1,0,v{}{rel}; content:\"a\"; distance:v{};", n.rem_euclid(3), n.rem_euclid(3)),
            8 => format!("byte_math:bytes 2, offset 0, oper <<, rvalue {}, result m{}{rel}; isdataat:m{},relative;", n.clamp(0, 63), n.rem_euclid(3), n.rem_euclid(3)),
            9 => format!("bsize:>{};", n.max(0)),
            10 => format!("content:\"{w}\"; endswith;"),
            _ => format!("byte_test:3,=,{},0{rel},string,dec;", n.max(0)),
        }
    })
}

/// One positive content for the exhaustive model: pattern, nocase, and its position keyword
/// (0 none, 1 offset n, 2 distance n - 2, 3 distance 0 + within len + n, 4 depth len + n).
type ContentSpec = (Vec<u8>, bool, u8, i64);

fn arb_spec() -> impl Strategy<Value = ContentSpec> {
    (
        proptest::collection::vec(prop::sample::select(b"abA".to_vec()), 1..3),
        any::<bool>(),
        0u8..5,
        0i64..5,
    )
}

fn render(spec: &ContentSpec) -> String {
    let (pat, nocase, kind, n) = spec;
    let mut s = format!("content:\"{}\";", String::from_utf8_lossy(pat));
    if *nocase {
        s.push_str(" nocase;");
    }
    match kind {
        1 => s.push_str(&format!(" offset:{n};")),
        2 => s.push_str(&format!(" distance:{};", n - 2)),
        3 => s.push_str(&format!(" distance:0; within:{};", pat.len() as i64 + n)),
        4 => s.push_str(&format!(" depth:{};", pat.len() as i64 + n)),
        _ => {}
    }
    s
}

/// Tries every placement of every content: the chain matches if some placement satisfies all
/// position constraints, each relative one counted from the previous content's end.
fn exhaustive(payload: &[u8], specs: &[ContentSpec], prev_end: i64) -> bool {
    let Some(((pat, nocase, kind, n), rest)) = specs.split_first() else {
        return true;
    };
    let plen = pat.len() as i64;
    let len = payload.len() as i64;
    (0..=(len - plen)).any(|start| {
        let end = start + plen;
        let window_ok = match kind {
            1 => start >= *n,
            2 => start >= (prev_end + n - 2).max(0),
            3 => start >= prev_end && end <= prev_end + plen + n,
            4 => end <= plen + n,
            _ => true,
        };
        let slice = &payload[start as usize..end as usize];
        let bytes_ok = if *nocase {
            slice.eq_ignore_ascii_case(pat)
        } else {
            slice == &pat[..]
        };
        window_ok && bytes_ok && exhaustive(payload, rest, end)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn verifier_agrees_with_exhaustive_placement(
        specs in proptest::collection::vec(arb_spec(), 1..5),
        payload in proptest::collection::vec(prop::sample::select(b"abAB".to_vec()), 0..24),
    ) {
        let options: Vec<String> = specs.iter().map(render).collect();
        let expected = exhaustive(&payload, &specs, 0);
        prop_assert_eq!(
            payload_matches(&options.join(" "), &payload),
            expected,
            "{} on {:?}", options.join(" "), String::from_utf8_lossy(&payload)
        );
    }

    #[test]
    fn prefilter_agrees_with_brute_force(
        rule_contents in proptest::collection::vec(proptest::collection::vec(arb_content(), 1..4), 1..12),
        payloads in proptest::collection::vec(proptest::collection::vec(prop::sample::select(b"abcAB ".to_vec()), 0..40), 1..6),
    ) {
        let texts: Vec<String> = rule_contents.iter().enumerate().map(|(i, contents)| {
            // Only the first fast_pattern of a rule is allowed.
            let mut seen_fp = false;
            let parts: Vec<String> = contents.iter().map(|c| {
                if c.contains("fast_pattern") {
                    if seen_fp { return c.replace(" fast_pattern;", ""); }
                    seen_fp = true;
                }
                c.clone()
            }).collect();
            format!("alert tcp-pkt any any -> any any ({} sid:{};)", parts.join(" "), i + 1)
        }).collect();
        let vars = Vars::default().resolve();
        let parsed: Vec<Rule> = texts.iter().filter_map(|t| parse_rule(t, &vars, &Classification::default(), None).ok().map(|r| r.0)).collect();
        let rules = CompiledRules::new(parsed);
        for p in &payloads {
            let (fast, brute) = both_ways(&rules, p);
            prop_assert_eq!(fast, brute, "payload {:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn ip_only_index_agrees_with_brute_force(
        headers in proptest::collection::vec((arb_address(), arb_address(), any::<bool>()), 1..10),
        packets in proptest::collection::vec((0usize..6, 0usize..6), 1..8),
    ) {
        let texts: Vec<String> = headers.iter().enumerate().map(|(i, (src, dst, both))| {
            let arrow = if *both { "<>" } else { "->" };
            format!("alert ip {src} any {arrow} {dst} any (sid:{};)", i + 1)
        }).collect();
        let vars = Vars::default().resolve();
        let parsed: Vec<Rule> = texts.iter().filter_map(|t| parse_rule(t, &vars, &Classification::default(), None).ok().map(|r| r.0)).collect();
        let rules = CompiledRules::new(parsed);
        let pool: [IpAddr; 6] = [
            ip([10, 0, 0, 1]), ip([10, 0, 0, 3]), ip([10, 0, 1, 77]), ip([10, 9, 9, 9]),
            "2001:db8::1".parse().unwrap(), "2001:db8::ff".parse().unwrap(),
        ];
        let mut m = Matcher::new(&rules).unwrap();
        for (s, d) in packets {
            let mut p = tcp_pkt(b"");
            p.key.src_ip = pool[s];
            p.key.dst_ip = pool[d];
            let mut fast = Vec::new();
            m.force_all = false;
            m.inspect_packet(&rules, None, &p, &mut fast);
            let mut brute = Vec::new();
            m.force_all = true;
            m.inspect_packet(&rules, None, &p, &mut brute);
            prop_assert_eq!(sids(&fast), sids(&brute), "{:?} -> {:?}", p.key.src_ip, p.key.dst_ip);
        }
    }

    /// Splitting a stream anywhere finds the same rules as one delivery, for positive patterns
    /// whose matches fit in the re-inspected tail.
    #[test]
    fn stream_segmentation_invariance(
        rule_contents in proptest::collection::vec(proptest::collection::vec(arb_content(), 1..3), 1..8),
        data in proptest::collection::vec(prop::sample::select(b"abcAB ".to_vec()), 1..200),
        cuts in proptest::collection::vec(1usize..200, 0..6),
    ) {
        let texts: Vec<String> = rule_contents.iter().enumerate().map(|(i, contents)| {
            let parts: Vec<String> = contents.iter().map(|c| c.replace("!\"", "\"").replace(" fast_pattern;", "")).collect();
            format!("alert tcp any any -> any any (flow:established; {} sid:{};)", parts.join(" "), i + 1)
        }).collect();
        let vars = Vars::default().resolve();
        let parsed: Vec<Rule> = texts.iter().filter_map(|t| parse_rule(t, &vars, &Classification::default(), None).ok().map(|r| r.0)).collect();
        // Absolute offsets count from the stream start either way; keep them.
        let rules = CompiledRules::new(parsed);
        let mut m = Matcher::new(&rules).unwrap();
        let pkt = tcp_pkt_in_stream(b"");
        let mut whole = Vec::new();
        m.inspect_stream(&rules, &mut FlowDetectState::new(), &pkt, &data, &mut whole);
        let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c < data.len()).collect();
        points.sort_unstable();
        points.dedup();
        let mut flow = FlowDetectState::new();
        let mut split = Vec::new();
        let mut start = 0;
        for end in points.into_iter().chain(std::iter::once(data.len())) {
            m.inspect_stream(&rules, &mut flow, &pkt, &data[start..end], &mut split);
            start = end;
        }
        let mut a = sids(&whole);
        let mut b = sids(&split);
        a.sort_unstable();
        b.sort_unstable();
        b.dedup();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn random_rules_never_panic_and_prefilter_loses_nothing(
        rule_options in proptest::collection::vec(proptest::collection::vec(arb_option(), 1..5), 1..8),
        payloads in proptest::collection::vec(proptest::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff, b'a', b'b', b'A', b'1', b'9']), 0..48), 1..4),
    ) {
        let texts: Vec<String> = rule_options.iter().enumerate().map(|(i, opts)| {
            format!("alert tcp any any -> any any ({} sid:{};)", opts.join(" "), i + 1)
        }).collect();
        let vars = Vars::default().resolve();
        let parsed: Vec<Rule> = texts.iter().filter_map(|t| parse_rule(t, &vars, &Classification::default(), None).ok().map(|r| r.0)).collect();
        let rules = CompiledRules::new(parsed);
        let mut m = Matcher::new(&rules).unwrap();
        for p in &payloads {
            let (fast, brute) = both_ways(&rules, p);
            prop_assert_eq!(fast, brute);
            let mut flow = FlowDetectState::new();
            let mut alerts = Vec::new();
            m.inspect_stream(&rules, &mut flow, &tcp_pkt_in_stream(b""), p, &mut alerts);
            m.inspect_stream(&rules, &mut flow, &tcp_pkt_in_stream(b""), p, &mut alerts);
            prop_assert!(alerts.len() <= 2 * MAX_ALERTS_PER_INSPECTION);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic_and_respect_the_alert_cap(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let rules = compile(&[
            r#"alert tcp-pkt any any -> any any (content:"|00|"; byte_jump:4,0,relative,little,multiplier 3; content:"|01|"; within:4; sid:1;)"#,
            r#"alert tcp-pkt any any -> any any (content:"|00|"; byte_extract:2,0,n,relative; byte_math:bytes 1, offset 0, oper <<, rvalue n, result r, relative; isdataat:r,relative; sid:2;)"#,
            r#"alert tcp-pkt any any -> any any (pcre:"/(\x00|\x01)+\x02/"; byte_test:10,>,5,0,relative,string,hex; sid:3;)"#,
        ]);
        let mut m = Matcher::new(&rules).unwrap();
        let mut alerts = Vec::new();
        m.inspect_packet(&rules, None, &tcp_pkt(&payload), &mut alerts);
        prop_assert!(alerts.len() <= 3);
    }
}

/// Real ET Open 2019 rules (verbatim) on hand-built transaction buffers.
#[test]
fn et_rules_on_http_transactions() {
    let rules = compile(&[
        r#"alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN Potential Blackhole Exploit Pack Binary Load Request"; flow:established,to_server; content:".php?f="; fast_pattern; http_uri; content:"&e="; http_uri; content:!"Referer|3a|"; http_header; content:"User-Agent|3a|"; http_header; content:"Host|3a|"; http_header; distance:0; pcre:"/^[^?#]+?\.php\?f=\w+&e=\d+$/U"; flowbits:set,et.exploitkitlanding; classtype:bad-unknown; sid:2012169; rev:9;)"#,
        r#"alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET CURRENT_EVENTS Possible Dynamic DNS Exploit Pack Landing Page /de/sN"; flow:established,to_server; content:"/de/s"; http_uri; depth:5; urilen:6; flowbits:set,et.exploitkitlanding;  classtype:bad-unknown; sid:2014446; rev:2;)"#,
        r#"alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"set"; flow:established,to_server; http.uri; content:"/fake"; flowbits:set,FakeIEMinimal; flowbits:noalert; sid:9;)"#,
        r#"alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"ET CURRENT_EVENTS Possible CryptoLocker TorComponent DL"; flow:from_server,established; flowbits:isset,FakeIEMinimal; file_data; byte_extract:1,0,size,relative; content:"|00 00 00|"; within:3; content:!"|00|"; within:size; content:"|00|"; distance:size; within:1; pcre:"/^.\x00\x00\x00[a-z0-9]+?\x00/s"; classtype:trojan-activity; sid:2019345; rev:2;)"#,
    ]);
    assert!(rules.report().unsupported.is_empty());
    let mut m = Matcher::new(&rules).unwrap();
    let request = |m: &mut Matcher, uri: &[u8], header: &[u8], flow: &mut FlowDetectState| {
        let mut pkt = tcp_pkt(b"");
        pkt.app_proto = Some("http");
        let buffers: &[(&str, &[u8])] = &[("http.uri", uri), ("http.header", header)];
        let tx = TxView {
            tx_id: 0,
            direction: Direction::ToServer,
            buffers,
        };
        let mut alerts = Vec::new();
        m.inspect_tx(&rules, flow, &pkt, &tx, &mut alerts);
        sids(&alerts)
    };
    let header = b"User-Agent: Java/1.6\r\nHost: bad.example\r\n\r\n";
    assert_eq!(
        request(
            &mut m,
            b"/x/load.php?f=abc&e=3",
            header,
            &mut FlowDetectState::new()
        ),
        [2012169]
    );
    let with_referer = b"Referer: http://a/\r\nUser-Agent: Java/1.6\r\nHost: bad.example\r\n\r\n";
    assert_eq!(
        request(
            &mut m,
            b"/x/load.php?f=abc&e=3",
            with_referer,
            &mut FlowDetectState::new()
        ),
        Vec::<u32>::new()
    );
    let host_first = b"Host: bad.example\r\nUser-Agent: Java/1.6\r\n\r\n";
    assert_eq!(
        request(
            &mut m,
            b"/x/load.php?f=abc&e=3",
            host_first,
            &mut FlowDetectState::new()
        ),
        Vec::<u32>::new()
    );
    assert_eq!(
        request(
            &mut m,
            b"/x/load.php?f=abc&e=3x",
            header,
            &mut FlowDetectState::new()
        ),
        Vec::<u32>::new()
    );
    assert_eq!(
        request(&mut m, b"/de/s1", header, &mut FlowDetectState::new()),
        [2014446]
    );
    assert_eq!(
        request(&mut m, b"/de/s12", header, &mut FlowDetectState::new()),
        Vec::<u32>::new()
    );

    // The response rule needs the bit set by an earlier request on the same flow.
    let body: &[u8] = b"\x05\x00\x00\x00abcde\x00rest";
    let response = |m: &mut Matcher, flow: &mut FlowDetectState| {
        let mut pkt = PacketView::new(Timestamp::ZERO, tcp_key().reversed(), b"");
        pkt.direction = Some(Direction::ToClient);
        pkt.established = true;
        pkt.app_proto = Some("http");
        let buffers: &[(&str, &[u8])] = &[("file.data", body)];
        let tx = TxView {
            tx_id: 1,
            direction: Direction::ToClient,
            buffers,
        };
        let mut alerts = Vec::new();
        m.inspect_tx(&rules, flow, &pkt, &tx, &mut alerts);
        sids(&alerts)
    };
    let mut flow = FlowDetectState::new();
    assert_eq!(response(&mut m, &mut flow), Vec::<u32>::new());
    let mut flow = FlowDetectState::new();
    assert_eq!(
        request(&mut m, b"/fake", header, &mut flow),
        Vec::<u32>::new()
    );
    assert!(flow.is_set("FakeIEMinimal"));
    assert_eq!(response(&mut m, &mut flow), [2019345]);
}
