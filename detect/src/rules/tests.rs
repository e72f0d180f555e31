//! Keyword-by-keyword tests of the rule parser with exact parsed values, and loader tests.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Rule {
    try_parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn try_parse(text: &str) -> Result<Rule, RuleError> {
    let vars = Vars::default().resolve();
    parse_rule(text, &vars, &Classification::default(), None).map(|(rule, _)| rule)
}

/// Wraps options in a minimal header and a sid.
fn opts(options: &str) -> Rule {
    parse(&format!("alert tcp any any -> any any ({options} sid:1;)"))
}

fn opts_err(options: &str) -> RuleError {
    match try_parse(&format!("alert tcp any any -> any any ({options} sid:1;)")) {
        Ok(rule) => panic!("{options} parsed: {rule:?}"),
        Err(e) => e,
    }
}

fn content(m: &Match) -> &Content {
    match &m.inspection {
        Inspection::Content(c) => c,
        other => panic!("not a content: {other:?}"),
    }
}

fn lit(n: i64) -> Option<Value> {
    Some(Value::Lit(n))
}

#[test]
fn header_and_meta_of_a_typical_et_rule() {
    let r = parse(
        r#"alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"ET TROJAN Test \"quoted\" \; semi"; flow:established,to_server; reference:url,example.com/a; reference:md5,0123; classtype:trojan-activity; sid:2000001; rev:3; metadata:created_at 2019_01_01, former_category TROJAN;)"#,
    );
    assert_eq!(r.action, Action::Alert);
    assert_eq!(r.protocol, Protocol::App("http"));
    assert_eq!(r.direction, RuleDirection::ToDestination);
    assert_eq!(r.dst_port, PortExpr::Range(80, 80));
    assert_eq!(r.msg, r#"ET TROJAN Test "quoted" ; semi"#);
    assert_eq!((r.sid, r.gid, r.rev), (2000001, 1, 3));
    assert_eq!(r.classtype.as_deref(), Some("trojan-activity"));
    assert_eq!(r.priority, 1);
    assert_eq!(
        r.references,
        vec![
            Reference {
                kind: "url".into(),
                value: "example.com/a".into()
            },
            Reference {
                kind: "md5".into(),
                value: "0123".into()
            }
        ]
    );
    assert_eq!(
        r.metadata,
        vec![
            ("created_at".into(), "2019_01_01".into()),
            ("former_category".into(), "TROJAN".into())
        ]
    );
    assert_eq!(
        r.conditions,
        vec![Detection::Flow(FlowOptions {
            direction: Some(weir_core::Direction::ToServer),
            established: true,
            ..Default::default()
        })]
    );
}

#[test]
fn actions_and_directions() {
    for (text, action) in [
        ("alert", Action::Alert),
        ("pass", Action::Pass),
        ("drop", Action::Drop),
        ("reject", Action::Reject),
        ("rejectsrc", Action::RejectSrc),
        ("rejectdst", Action::RejectDst),
        ("rejectboth", Action::RejectBoth),
    ] {
        assert_eq!(
            parse(&format!("{text} ip any any -> any any (sid:1;)")).action,
            action
        );
    }
    assert!(Action::Drop.alerts() && !Action::Pass.alerts());
    assert_eq!(
        parse("alert ip any any <> any any (sid:1;)").direction,
        RuleDirection::Both
    );
    assert_eq!(
        try_parse("log ip any any -> any any (sid:1;)"),
        Err(RuleError::UnknownAction("log".into()))
    );
    assert_eq!(
        try_parse("alert ip any any >> any any (sid:1;)"),
        Err(RuleError::BadDirection(">>".into()))
    );
    assert_eq!(
        try_parse("alert ip any any -> any (sid:1;)"),
        Err(RuleError::HeaderFields(6))
    );
}

#[test]
fn content_with_hex_negation_and_modifiers() {
    let r = opts(
        r#"content:!"GET |20|/"; nocase; offset:2; depth:10; content:"x"; distance:0; within:5; fast_pattern;"#,
    );
    assert_eq!(r.matches.len(), 2);
    let first = content(&r.matches[0]);
    assert_eq!(
        *first,
        Content {
            pattern: b"GET  /".to_vec(),
            negated: true,
            nocase: true,
            offset: lit(2),
            depth: lit(10),
            ..Content::default()
        }
    );
    let second = content(&r.matches[1]);
    assert_eq!(second.distance, lit(0));
    assert_eq!(second.within, lit(5));
    assert_eq!(second.fast_pattern, Some(FastPattern::Yes));
    assert!(second.is_relative());
    assert!(r.matches.iter().all(|m| m.buffer.is_payload()));
}

#[test]
fn content_modifier_errors_match_suricata() {
    assert_eq!(
        opts_err("nocase;"),
        RuleError::NoPrecedingContent {
            keyword: "nocase".into()
        }
    );
    assert!(
        matches!(opts_err(r#"content:"abcd"; depth:2;"#), RuleError::BadValue { keyword, .. } if keyword == "depth")
    );
    assert!(
        matches!(opts_err(r#"content:"a"; content:"abcd"; within:3;"#), RuleError::BadValue { keyword, .. } if keyword == "within")
    );
    assert!(
        matches!(opts_err(r#"content:"a"; depth:4; distance:1;"#), RuleError::BadValue { keyword, .. } if keyword == "distance")
    );
    assert!(
        matches!(opts_err(r#"content:"a"; depth:4; depth:5;"#), RuleError::BadValue { keyword, .. } if keyword == "depth")
    );
    assert!(
        matches!(opts_err(r#"content:"|4"; "#), RuleError::BadValue { keyword, .. } if keyword == "content")
    );
    assert!(
        matches!(opts_err("content:abc;"), RuleError::BadValue { keyword, .. } if keyword == "content")
    );
    assert_eq!(opts_err(r#"content:"abc;"#), RuleError::UnbalancedQuotes);
}

#[test]
fn startswith_endswith_and_fast_pattern_forms() {
    let r = opts(r#"content:"ab"; startswith; endswith; content:"cdef"; fast_pattern:only;"#);
    let a = content(&r.matches[0]);
    assert!(a.startswith && a.endswith);
    assert_eq!(content(&r.matches[1]).fast_pattern, Some(FastPattern::Only));
    let r = opts(r#"content:"ghij"; fast_pattern:1,2;"#);
    assert_eq!(
        content(&r.matches[0]).fast_pattern,
        Some(FastPattern::Slice {
            offset: 1,
            length: 2
        })
    );
    assert!(matches!(
        opts_err(r#"content:"ab"; fast_pattern; content:"cd"; fast_pattern;"#),
        RuleError::BadValue { keyword, .. } if keyword == "fast_pattern"
    ));
    assert!(matches!(
        opts_err(r#"content:"ab"; fast_pattern:1,5;"#),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err(r#"content:"ab"; offset:1; startswith;"#),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn legacy_modifiers_move_the_previous_content() {
    let r = opts(
        r#"content:"POST"; http_method; content:"/a.php"; http_uri; content:"x"; http_client_body; uricontent:"/b"; content:"raw"; rawbytes;"#,
    );
    let buffers: Vec<&str> = r.matches.iter().map(|m| m.buffer.name).collect();
    assert_eq!(
        buffers,
        vec![
            "http.method",
            "http.uri",
            "http.request_body",
            "http.uri",
            "pkt_data"
        ]
    );
    assert!(content(&r.matches[4]).rawbytes);
    // A repeated modifier moves the last content still in the payload, as Suricata does.
    let r = opts(r#"content:"a"; content:"b"; http_host; http_host;"#);
    let buffers: Vec<&str> = r.matches.iter().map(|m| m.buffer.name).collect();
    assert_eq!(buffers, vec!["http.host", "http.host"]);
    assert!(matches!(
        opts_err(r#"content:"b"; http_host; http_host;"#),
        RuleError::NoPrecedingContent { .. }
    ));
    // Suricata refuses a modifier while a sticky buffer is active.
    assert!(
        matches!(opts_err(r#"http.uri; content:"a"; http_header;"#), RuleError::BadValue { keyword, .. } if keyword == "http_header")
    );
}

#[test]
fn sticky_buffers_apply_until_changed_and_pkt_data_resets() {
    let r = opts(
        r#"http.host; content:"example"; dns_query; content:"q"; tls.sni; content:"s"; file_data; content:"f"; pkt_data; content:"p"; ja3_hash; content:"h";"#,
    );
    let buffers: Vec<&str> = r.matches.iter().map(|m| m.buffer.name).collect();
    assert_eq!(
        buffers,
        vec![
            "http.host",
            "dns.query",
            "tls.sni",
            "file.data",
            "pkt_data",
            "ja3.hash"
        ]
    );
    let r = opts(r#"content:"a"; http_uri; content:"p"; content:"b"; http_uri; distance:0;"#);
    assert_eq!(r.buffers(), vec!["http.uri", "pkt_data"]);
    let uri: Vec<&[u8]> = r
        .matches_in("http.uri")
        .map(|m| content(m).pattern.as_slice())
        .collect();
    assert_eq!(uri, vec![&b"a"[..], &b"b"[..]]);
}

#[test]
fn transforms_attach_to_the_sticky_buffer() {
    let r = opts(
        r#"dns.query; dotprefix; content:".evil.com"; endswith; http.uri; to_lowercase; strip_whitespace; content:"a";"#,
    );
    assert_eq!(
        r.matches[0].buffer,
        Buffer {
            name: "dns.query",
            transforms: vec![Transform::DotPrefix],
            instance: 1,
        }
    );
    assert_eq!(
        r.matches[1].buffer.transforms,
        vec![Transform::ToLowercase, Transform::StripWhitespace]
    );
    assert!(
        matches!(opts_err("dotprefix;"), RuleError::BadValue { keyword, .. } if keyword == "dotprefix")
    );
}

#[test]
fn pcre_flags_buffers_and_validation() {
    let r = opts(r#"content:"a"; pcre:"/^x[0-9]+"y\;/UiR"; pcre:!"/z/smxAEGOB";"#);
    let Inspection::Pcre(p) = &r.matches[1].inspection else {
        panic!()
    };
    assert_eq!(r.matches[1].buffer.name, "http.uri");
    assert_eq!(
        *p,
        Pcre {
            pattern: r#"^x[0-9]+"y\;"#.into(),
            caseless: true,
            relative: true,
            ..Pcre::default()
        }
    );
    let Inspection::Pcre(q) = &r.matches[2].inspection else {
        panic!()
    };
    assert!(q.negated && q.dotall && q.multiline && q.extended && q.anchored && q.dollar_endonly);
    assert!(q.ungreedy && q.no_match_limit && q.rawbytes);
    for (flag, buffer) in [
        ("I", "http.uri.raw"),
        ("P", "http.request_body"),
        ("Q", "file.data"),
        ("H", "http.header"),
        ("D", "http.header.raw"),
        ("M", "http.method"),
        ("C", "http.cookie"),
        ("S", "http.stat_code"),
        ("Y", "http.stat_msg"),
        ("V", "http.user_agent"),
        ("W", "http.host"),
        ("Z", "http.host.raw"),
    ] {
        assert_eq!(
            opts(&format!(r#"pcre:"/a/{flag}";"#)).matches[0]
                .buffer
                .name,
            buffer,
            "{flag}"
        );
    }
    assert!(matches!(
        opts_err(r#"pcre:"/(unclosed/";"#),
        RuleError::BadPcre(_)
    ));
    assert!(
        matches!(opts_err(r#"pcre:"/a/L";"#), RuleError::BadValue { keyword, .. } if keyword == "pcre")
    );
    assert!(matches!(
        opts_err(r#"pcre:"a";"#),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err(r#"http.header_names; pcre:"/a/P";"#),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn byte_keywords_parse_every_argument() {
    let r = opts(
        "byte_extract:2,0,len,relative,little,multiplier 4; byte_test:4,!&,0x10,len,relative,big,string,hex,bitmask 0xff; \
         byte_jump:2,len,relative,little,align,from_beginning,post_offset -3,multiplier 2; \
         byte_math:bytes 1,offset 2,oper <<,rvalue len,result shifted,relative,endian little; isdataat:!shifted,relative;",
    );
    let kinds: Vec<&Inspection> = r.matches.iter().map(|m| &m.inspection).collect();
    assert_eq!(
        *kinds[0],
        Inspection::ByteExtract(ByteExtract {
            bytes: 2,
            offset: 0,
            name: "len".into(),
            relative: true,
            multiplier: 4,
            endian: Endian::Little,
            string: None,
            align: 0,
            dce: false,
            bitmask: None
        })
    );
    assert_eq!(
        *kinds[1],
        Inspection::ByteTest(ByteTest {
            bytes: 4,
            negated: true,
            op: ByteTestOp::And,
            value: Value::Lit(16),
            offset: Value::Var("len".into()),
            relative: true,
            endian: Endian::Big,
            string: Some(NumBase::Hex),
            dce: false,
            bitmask: Some(255)
        })
    );
    assert_eq!(
        *kinds[2],
        Inspection::ByteJump(ByteJump {
            bytes: 2,
            offset: Value::Var("len".into()),
            relative: true,
            multiplier: 2,
            endian: Endian::Little,
            string: None,
            align: true,
            from_beginning: true,
            from_end: false,
            post_offset: -3,
            dce: false,
            bitmask: None
        })
    );
    assert_eq!(
        *kinds[3],
        Inspection::ByteMath(ByteMath {
            bytes: 1,
            offset: 2,
            op: ByteMathOp::Shl,
            rvalue: Value::Var("len".into()),
            result: "shifted".into(),
            relative: true,
            endian: Endian::Little,
            string: None,
            dce: false,
            bitmask: None
        })
    );
    assert_eq!(
        *kinds[4],
        Inspection::IsDataAt(IsDataAt {
            offset: Value::Var("shifted".into()),
            negated: true,
            relative: true,
            rawbytes: false
        })
    );
    assert!(
        matches!(opts_err("byte_test:4,=,1,nosuchvar;"), RuleError::BadValue { keyword, .. } if keyword == "byte_test")
    );
    assert!(matches!(
        opts_err("byte_test:9,=,1,0;"),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err("byte_test:4,~,1,0;"),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err("byte_math:bytes 1,offset 0,oper +,rvalue 1;"),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn numeric_comparisons() {
    let r = opts(
        "dsize:>100; ttl:<5; itype:8; icode:0<>3; urilen:10<>20,raw; bsize:!7; ip_proto:!tcp; window:!0; ack:5; seq:6; id:7; icmp_id:8; icmp_seq:9;",
    );
    assert_eq!(
        r.conditions,
        vec![
            Detection::Dsize(Cmp::Gt(100)),
            Detection::Ttl(Cmp::Lt(5)),
            Detection::Itype(Cmp::Eq(8)),
            Detection::Icode(Cmp::Between(0, 3)),
            Detection::Urilen {
                cmp: Cmp::Between(10, 20),
                raw: true
            },
            Detection::IpProto { cmp: Cmp::Ne(6) },
            Detection::Window {
                size: 0,
                negated: true
            },
            Detection::Ack(5),
            Detection::Seq(6),
            Detection::IpId(7),
            Detection::IcmpId(8),
            Detection::IcmpSeq(9),
        ]
    );
    assert_eq!(r.matches[0].inspection, Inspection::Bsize(Cmp::Ne(7)));
    assert!(Cmp::Between(0, 3).matches(2) && !Cmp::Between(0, 3).matches(3));
    assert!(
        matches!(opts_err("dsize:abc;"), RuleError::BadValue { keyword, .. } if keyword == "dsize")
    );
    assert!(matches!(
        opts_err("dsize:5<>2;"),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn flow_flowbits_xbits_flowint() {
    let r = opts(
        "flow:from_server,not_established,only_stream; flowbits:isset,a|b; flowbits:set,c&d; flowbits:noalert; xbits:set,x.y,track ip_pair,expire 15; flowint:cnt,+,1;",
    );
    assert_eq!(
        r.conditions[0],
        Detection::Flow(FlowOptions {
            direction: Some(weir_core::Direction::ToClient),
            not_established: true,
            only_stream: true,
            ..Default::default()
        })
    );
    assert_eq!(
        r.conditions[1],
        Detection::Flowbit(Flowbit {
            cmd: FlowbitCmd::IsSet,
            names: vec!["a".into(), "b".into()],
            any_of: true
        })
    );
    assert_eq!(
        r.conditions[2],
        Detection::Flowbit(Flowbit {
            cmd: FlowbitCmd::Set,
            names: vec!["c".into(), "d".into()],
            any_of: false
        })
    );
    assert_eq!(
        r.conditions[3],
        Detection::Xbit {
            cmd: FlowbitCmd::Set,
            name: "x.y".into(),
            track: XbitTrack::IpPair,
            expire: Some(15)
        }
    );
    assert_eq!(
        r.conditions[4],
        Detection::Flowint {
            name: "cnt".into(),
            op: "+".into(),
            value: Some("1".into())
        }
    );
    assert!(r.noalert);
    assert!(matches!(
        opts_err("flow:to_server,to_client;"),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err("flow:sideways;"),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err("flowbits:set,a|b;"),
        RuleError::BadValue { .. }
    ));
    assert!(matches!(
        opts_err("flowbits:flip,a;"),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn threshold_and_detection_filter() {
    let r = opts(
        "threshold: type limit, track by_src, count 1, seconds 60; detection_filter:track by_dst, count 5, seconds 10;",
    );
    assert_eq!(
        r.threshold,
        Some(Threshold {
            kind: ThresholdKind::Limit,
            track: Track::BySrc,
            count: 1,
            seconds: 60,
            multiplier: None
        })
    );
    assert_eq!(
        r.detection_filter,
        Some(DetectionFilter {
            track: Track::ByDst,
            count: 5,
            seconds: 10,
            unique_on: None
        })
    );
    assert!(matches!(
        opts_err("threshold:type limit, count 1, seconds 60;"),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn flags_with_modifiers_and_mask() {
    let r = opts("flags:SA+,12; flags:!R; flags:0;");
    assert_eq!(
        r.conditions[0],
        Detection::Flags(TcpFlags {
            flags: 0x12,
            modifier: Some('+'),
            ignored: 0xc0
        })
    );
    assert_eq!(
        r.conditions[1],
        Detection::Flags(TcpFlags {
            flags: 0x04,
            modifier: Some('!'),
            ignored: 0
        })
    );
    assert_eq!(
        r.conditions[2],
        Detection::Flags(TcpFlags {
            flags: 0,
            modifier: None,
            ignored: 0
        })
    );
    assert!(matches!(opts_err("flags:SX;"), RuleError::BadValue { .. }));
}

#[test]
fn app_layer_protocol_target_gid_priority_and_kept_keywords() {
    let r = opts(
        "app-layer-protocol:!http1; target:dest_ip; gid:3; priority:2; classtype:misc-activity; tag:session,5,packets; ssl_state:client_hello;",
    );
    assert_eq!(
        r.conditions[0],
        Detection::AppLayerProtocol {
            name: "http",
            negated: true
        }
    );
    assert_eq!(r.target, Some(Target::Destination));
    assert_eq!(r.gid, 3);
    // An explicit priority beats the class type's.
    assert_eq!(r.priority, 2);
    assert_eq!(
        r.conditions[1],
        Detection::Other(OtherOption {
            keyword: "tag",
            value: Some("session,5,packets".into())
        })
    );
    assert!(matches!(
        opts_err("app-layer-protocol:gopher;"),
        RuleError::BadValue { .. }
    ));
}

#[test]
fn unknown_classtype_loads_at_priority_three_with_a_warning() {
    let vars = Vars::default().resolve();
    let (rule, warnings) = parse_rule(
        "alert ip any any -> any any (classtype:made-up; sid:1;)",
        &vars,
        &Classification::default(),
        None,
    )
    .unwrap();
    assert_eq!(rule.priority, 3);
    assert_eq!(rule.classtype.as_deref(), Some("made-up"));
    assert_eq!(warnings, vec![Warning::UnknownClasstype("made-up".into())]);
    assert_eq!(opts("classtype:misc-activity;").priority, 3);
    assert_eq!(
        opts("classtype:misc-activity; classtype:trojan-activity;")
            .classtype
            .as_deref(),
        Some("trojan-activity")
    );
}

#[test]
fn file_keywords() {
    let dir = std::env::temp_dir().join(format!("weir-detect-hashes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("md5.list"),
        "# comment\nD41D8CD98F00B204E9800998ECF8427E  empty\n\n00000000000000000000000000000001,one\n",
    )
    .unwrap();
    let vars = Vars::default().resolve();
    let (r, _) = parse_rule(
        r#"alert http any any -> any any (filename:"a.exe"; fileext:"exe"; filemagic:!"PE32"; filesize:>1000; filestore; filemd5:md5.list; sid:1;)"#,
        &vars,
        &Classification::default(),
        Some(&dir),
    )
    .unwrap();
    assert_eq!(r.matches[0].buffer.name, "file.name");
    assert_eq!(content(&r.matches[0]).pattern, b"a.exe");
    let ext = content(&r.matches[1]);
    assert_eq!(
        (ext.pattern.as_slice(), ext.nocase, ext.endswith),
        (&b".exe"[..], true, true)
    );
    assert_eq!(r.matches[2].buffer.name, "file.magic");
    assert!(content(&r.matches[2]).negated);
    assert_eq!(r.conditions[0], Detection::Filesize(Cmp::Gt(1000)));
    assert_eq!(r.conditions[1], Detection::Filestore { argument: None });
    let Detection::FileHash(list) = &r.conditions[2] else {
        panic!()
    };
    assert_eq!(list.kind, FileHashKind::Md5);
    assert_eq!(list.hashes.len(), 2);
    // Sorted for binary search.
    assert_eq!(list.hashes[0][15], 1);
    assert_eq!(list.hashes[1][..4], [0xd4, 0x1d, 0x8c, 0xd9]);
    let missing = parse_rule(
        "alert http any any -> any any (filesha256:nope.list; sid:1;)",
        &vars,
        &Classification::default(),
        Some(&dir),
    );
    assert!(matches!(missing, Err(RuleError::BadValue { keyword, .. }) if keyword == "filesha256"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rejections_for_common_mistakes() {
    assert_eq!(
        try_parse("alert ip any any -> any any (msg:\"x\";)"),
        Err(RuleError::MissingSid)
    );
    assert_eq!(
        try_parse("alert ip any any -> any any (msg:\"x; sid:1;)"),
        Err(RuleError::UnbalancedQuotes)
    );
    assert_eq!(
        try_parse("alert ip any any -> any any (frobnicate; sid:1;)"),
        Err(RuleError::UnknownKeyword("frobnicate".into()))
    );
    assert_eq!(
        try_parse("alert gopher any any -> any any (sid:1;)"),
        Err(RuleError::UnknownProtocol("gopher".into()))
    );
    assert_eq!(
        try_parse("alert ip $NOPE any -> any any (sid:1;)"),
        Err(RuleError::UnknownVar("NOPE".into()))
    );
    assert!(matches!(
        try_parse("alert ip any any -> any any (sid:0;)"),
        Err(RuleError::BadValue { .. })
    ));
    assert_eq!(
        RuleError::UnknownKeyword("frobnicate".into()).keyword(),
        "frobnicate"
    );
    assert_eq!(RuleError::MissingSid.keyword(), "sid");
}

#[test]
fn keywords_are_case_insensitive() {
    let r = parse(r#"alert tcp any any -> any any (MSG:"m"; Content:"a"; NOCASE; SID:5;)"#);
    assert_eq!((r.sid, r.msg.as_str()), (5, "m"));
    assert!(content(&r.matches[0]).nocase);
}

const ORIGIN: &str = "/nonexistent/test.rules";

fn load(text: &str) -> RuleSetReport {
    load_rules_from_str(
        text,
        Path::new(ORIGIN),
        &Vars::default(),
        &Classification::default(),
    )
}

#[test]
fn loader_skips_comments_joins_continuations_and_counts_rejections() {
    let text = "# a comment\n\
                #alert ip any any -> any any (sid:9;)\n\
                \n\
                alert ip any any -> any any (msg:\"one\"; \\\n   content:\"a\"; sid:1;)\n\
                alert ip any any -> any any (msg:\"bad\"; nosuch; sid:2;)\n\
                alert ip any any -> any any (msg:\"nosid\";)\n\
                alert ip any any -> any any (msg:\"three\"; sid:3;)";
    let report = load(text);
    assert_eq!(
        report.rules.iter().map(|r| r.sid).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        report.locations.iter().map(|l| l.line).collect::<Vec<_>>(),
        vec![4, 8]
    );
    let lines: Vec<String> = report.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            format!("{ORIGIN}:6: sid 2: unknown keyword `nosuch`"),
            format!("{ORIGIN}:7: sid ?: no sid"),
        ]
    );
    assert_eq!(report.summary_line(), "rules: 2 loaded, 2 rejected");
    assert_eq!(report.rejected_by_keyword.get("nosuch"), Some(&1));
    assert_eq!(report.rejected_by_keyword.get("sid"), Some(&1));
    let mut out = Vec::new();
    report.write_report(&mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with("rules: 2 loaded, 2 rejected\n")
    );
}

#[test]
fn duplicate_sids_follow_suricata_higher_rev_wins_else_first() {
    let text = "alert ip any any -> any any (msg:\"first\"; sid:1; rev:2;)\n\
                alert ip any any -> any any (msg:\"same rev\"; sid:1; rev:2;)\n\
                alert ip any any -> any any (msg:\"newer\"; sid:1; rev:3;)\n\
                alert ip any any -> any any (msg:\"other gid\"; sid:1; gid:2;)";
    let report = load(text);
    let kept: Vec<&str> = report.rules.iter().map(|r| r.msg.as_str()).collect();
    assert_eq!(kept, vec!["newer", "other gid"]);
    assert_eq!(report.duplicates.len(), 2);
    let reasons: Vec<String> = report.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        reasons,
        vec![
            format!("{ORIGIN}:2: sid 1: duplicate sid: rev 2 at {ORIGIN}:1 is kept"),
            format!("{ORIGIN}:1: sid 1: superseded by rev 3 at {ORIGIN}:3"),
        ]
    );
}

#[test]
fn unreadable_files_are_listed_not_fatal() {
    let report = load_rule_files(
        &["/nonexistent/x.rules"],
        &Vars::default(),
        &Classification::default(),
    );
    assert_eq!(report.file_errors.len(), 1);
    assert_eq!(report.summary_line(), "rules: 0 loaded, 0 rejected");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text, parsing returns (no panic), and a rule that loads has a sid.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            if let Ok(rule) = try_parse(&text) {
                prop_assert!(rule.sid > 0);
            }
        }

        /// Option bodies built from real keyword fragments never panic either.
        #[test]
        fn keyword_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("content:\"a|41|\";"), Just("nocase;"), Just("depth:3;"), Just("within:2;"), Just("distance:-1;"),
            Just("pcre:\"/a(b/\";"), Just("http_uri;"), Just("http.host;"), Just("pkt_data;"), Just("byte_test:4,>,1,0;"),
            Just("byte_extract:1,0,v;"), Just("isdataat:!v,relative;"), Just("flowbits:set,x;"), Just("dotprefix;"),
            Just("fast_pattern:0,1;"), Just("\\;"), Just("\"") , Just("sid:7;"), Just("flags:S+;"), Just("bsize:<>;"),
        ], 0..12)) {
            let text = format!("alert tcp any any -> any any ({})", parts.concat());
            let _ = try_parse(&text);
        }

        /// The loader accounts for every non-comment rule: loaded + rejected = rules given.
        #[test]
        fn loader_accounts_for_every_rule(sids in proptest::collection::vec(1u32..5, 0..20), broken in proptest::collection::vec(any::<bool>(), 20)) {
            let text: String = sids.iter().zip(&broken).map(|(sid, bad)| {
                if *bad { format!("alert ip any any -> any any (nosuch; sid:{sid};)\n") }
                else { format!("alert ip any any -> any any (sid:{sid}; rev:{sid};)\n") }
            }).collect();
            let report = load(&text);
            prop_assert_eq!(report.rules.len() + report.rejected.len(), sids.len());
            let mut seen = std::collections::HashSet::new();
            for r in &report.rules {
                prop_assert!(seen.insert((r.gid, r.sid)));
            }
        }
    }
}
