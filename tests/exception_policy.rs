//! End-to-end: exception policies. Each cap is met on purpose by a tiny setting, and each policy
//! is checked for what it promises: `ignore` keeps going as the cap states, `pass-flow` keeps
//! parsing and logging the flow but inspects it no more, `bypass` gives it up unread; every time
//! a cap is met is counted, and the flow record lists what it met.

mod common;

use common::*;
use serde_json::{Value, json};

const HTTP_RULES: &str = "alert http any any -> any any (msg:\"evil uri\"; http.uri; content:\"/evil\"; sid:10; rev:1;)\n\
     alert tcp any any -> any any (msg:\"closing\"; flags:FA; sid:2; rev:1;)\n";

/// Replays `frames` with `config` (TOML) and `rules`; returns the EVE records.
fn run_frames(frames: &[(weir_core::Timestamp, Vec<u8>)], config: &str, rules: &str) -> Vec<Value> {
    let s = Scratch::new();
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, frames);
    let rules_path = s.path("test.rules");
    std::fs::write(&rules_path, rules).unwrap();
    let config_path = s.path("weir.toml");
    std::fs::write(&config_path, format!("[detect]\nrules = [{:?}]\n\n{config}", rules_path.display().to_string())).unwrap();
    let out = s.path("out");
    replay(&[&pcap], &out, &["--config", config_path.to_str().unwrap()]);
    eve(&out)
}

/// One HTTP request for `/evil` and its response, on a complete session.
fn http_session() -> Vec<(weir_core::Timestamp, Vec<u8>)> {
    tcp_session(
        40010,
        80,
        &[(b"GET /evil HTTP/1.1\r\nHost: example.test\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")],
        1.0,
    )
}

fn sids(events: &[Value]) -> Vec<u64> {
    let mut sids: Vec<u64> = of_type(events, "alert").iter().filter_map(|a| a["alert"]["signature_id"].as_u64()).collect();
    sids.sort();
    sids
}

fn only_flow(events: &[Value]) -> &Value {
    let flows = of_type(events, "flow");
    assert_eq!(flows.len(), 1, "{events:#?}");
    &flows[0]["flow"]
}

fn counted(events: &[Value]) -> Value {
    let last = *of_type(events, "stats").last().expect("a closing stats record");
    last["stats"]["exception_policy"].clone()
}

#[test]
fn stream_memcap_ignore_releases_what_is_held_and_the_streams_go_on() {
    // `[stream] memcap = 1`: every segment held for its ACK crosses it.
    let frames = tcp_session(40000, 8080, &[(b"now EVILNESS follows\n", b"hi\n"), (b"more MOREEVIL\n", b"ok\n")], 1.0);
    let rules = "alert tcp any any -> any any (msg:\"evil bytes\"; content:\"EVILNESS\"; sid:1; rev:1;)\n\
                 alert tcp any any -> any any (msg:\"closing\"; flags:FA; sid:2; rev:1;)\n\
                 alert tcp any any -> any any (msg:\"later bytes\"; content:\"MOREEVIL\"; sid:3; rev:1;)\n";
    let events = run_frames(&frames, "[stream]\nmemcap = 1\n", rules);
    // Both requests are reassembled and inspected (the session is not ended at the cap), and
    // both FIN/ACKs are.
    assert_eq!(sids(&events), [1, 2, 2, 3], "{events:#?}");
    let flow = only_flow(&events);
    assert_eq!(flow.get("bypassed"), None);
    assert_eq!(flow["exception_policy"], json!([{ "target": "stream_memcap", "policy": "ignore" }]));
    // Met by each of the four data segments.
    assert_eq!(counted(&events), json!({ "stream_memcap.ignore": 4 }));
}

#[test]
fn stream_memcap_bypass_stops_inspecting_the_flow_but_still_counts_and_logs_it() {
    let frames = tcp_session(40000, 8080, &[(b"now EVILNESS follows\n", b"hi\n"), (b"more\n", b"ok\n")], 1.0);
    let rules = "alert tcp any any -> any any (msg:\"evil bytes\"; content:\"EVILNESS\"; sid:1; rev:1;)\n\
                 alert tcp any any -> any any (msg:\"closing\"; flags:FA; sid:2; rev:1;)\n";
    let events =
        run_frames(&frames, "[stream]\nmemcap = 1\n\n[exception_policy]\nstream_memcap = \"bypass\"\n", rules);
    // Neither the held bytes nor any later packet (the FIN/ACKs) are inspected.
    assert_eq!(sids(&events), [] as [u64; 0], "{events:#?}");
    let flow = only_flow(&events);
    assert_eq!(flow["bypassed"], true);
    assert_eq!(flow["exception_policy"], json!([{ "target": "stream_memcap", "policy": "bypass" }]));
    // Every packet of the session is still counted: handshake, 2 x (request, ACK, reply, ACK), close.
    assert_eq!(flow["pkts_toserver"].as_u64().unwrap() + flow["pkts_toclient"].as_u64().unwrap(), 14);
    assert_eq!(counted(&events), json!({ "stream_memcap.bypass": 1 }), "once: the flow is given up");
}

#[test]
fn pass_flow_keeps_parsing_and_logging_but_inspects_no_more() {
    let config = |policy: &str| format!("[stream]\nmemcap = 1\n\n[exception_policy]\nstream_memcap = \"{policy}\"\n");
    let ignored = run_frames(&http_session(), &config("ignore"), HTTP_RULES);
    assert_eq!(sids(&ignored), [2, 2, 10], "{ignored:#?}");

    let passed = run_frames(&http_session(), &config("pass-flow"), HTTP_RULES);
    assert_eq!(sids(&passed), [] as [u64; 0], "{passed:#?}");
    // Still parsed and logged: the transaction and its file.
    let http = of_type(&passed, "http");
    assert_eq!(http.len(), 1, "{passed:#?}");
    assert_eq!(http[0]["http"]["url"], "/evil");
    assert_eq!(of_type(&passed, "fileinfo").len(), 1, "{passed:#?}");
    let flow = only_flow(&passed);
    assert_eq!(flow.get("bypassed"), None);
    assert_eq!(flow["alerted"], false);
    assert_eq!(flow["exception_policy"], json!([{ "target": "stream_memcap", "policy": "pass_flow" }]));
    assert_eq!(counted(&passed)["stream_memcap.pass_flow"], 2);

    // Bypass: not parsed either.
    let bypassed = run_frames(&http_session(), &config("bypass"), HTTP_RULES);
    assert!(of_type(&bypassed, "http").is_empty(), "{bypassed:#?}");
    assert_eq!(only_flow(&bypassed)["bypassed"], true);
}

#[test]
fn the_master_switch_sets_every_cap_not_named() {
    let config = "[stream]\nmemcap = 1\n\n[exception_policy]\ndefault = \"pass-flow\"\n";
    let events = run_frames(&http_session(), config, HTTP_RULES);
    assert_eq!(sids(&events), [] as [u64; 0], "{events:#?}");
    assert_eq!(counted(&events)["stream_memcap.pass_flow"], 2);
    let named = "[stream]\nmemcap = 1\n\n[exception_policy]\ndefault = \"pass-flow\"\nstream_memcap = \"ignore\"\n";
    let events = run_frames(&http_session(), named, HTTP_RULES);
    assert_eq!(sids(&events), [2, 2, 10], "{events:#?}");
}

#[test]
fn depth_takes_its_own_policy() {
    // 20 bytes of each direction: the request line fits, the rest of the session does not.
    let config = |policy: &str| format!("[stream]\ndepth = 20\n\n[exception_policy]\ndepth = \"{policy}\"\n");
    let ignored = run_frames(&http_session(), &config("ignore"), HTTP_RULES);
    let flow = only_flow(&ignored);
    assert_eq!(flow.get("bypassed"), None);
    assert_eq!(flow["exception_policy"], json!([{ "target": "stream_depth", "policy": "ignore" }]));
    // Packets are still inspected past the depth (the FIN/ACKs).
    assert!(sids(&ignored).contains(&2), "{ignored:#?}");

    let bypassed = run_frames(&http_session(), &config("bypass"), HTTP_RULES);
    let flow = only_flow(&bypassed);
    assert_eq!(flow["bypassed"], true, "{bypassed:#?}");
    assert_eq!(flow["exception_policy"], json!([{ "target": "stream_depth", "policy": "bypass" }]));
    assert_eq!(sids(&bypassed), [] as [u64; 0], "{bypassed:#?}");
    assert_eq!(counted(&bypassed), json!({ "stream_depth.bypass": 1 }));
}

#[test]
fn midstream_pickup_takes_its_own_policy() {
    // The session without its handshake: picked up midstream on the first request.
    let frames: Vec<_> = http_session().into_iter().skip(3).collect();
    let run = |policy: Option<&str>| {
        let config = policy.map_or(String::new(), |p| format!("[exception_policy]\nmidstream = \"{p}\"\n"));
        run_frames(&frames, &config, HTTP_RULES)
    };
    let ignored = run(None);
    assert_eq!(sids(&ignored), [2, 2, 10], "{ignored:#?}");
    assert_eq!(only_flow(&ignored)["exception_policy"], json!([{ "target": "stream_midstream", "policy": "ignore" }]));

    let passed = run(Some("pass-flow"));
    assert_eq!(sids(&passed), [] as [u64; 0], "{passed:#?}");
    assert_eq!(of_type(&passed, "http").len(), 1, "{passed:#?}");
    assert_eq!(counted(&passed), json!({ "stream_midstream.pass_flow": 1 }));

    let bypassed = run(Some("bypass"));
    assert!(of_type(&bypassed, "http").is_empty(), "{bypassed:#?}");
    assert_eq!(only_flow(&bypassed)["bypassed"], true);

    // A session with its handshake meets nothing.
    let whole = run_frames(&http_session(), "[exception_policy]\nmidstream = \"bypass\"\n", HTTP_RULES);
    assert_eq!(only_flow(&whole).get("exception_policy"), None, "{whole:#?}");
    assert_eq!(counted(&whole), json!({}));
}

/// Two segments past a hole in the client's stream, with room for one: the second is refused
/// at `[stream] max_queued_segments`, and so is the one filling the hole (nothing is ACKed yet,
/// so the first is still held) unless the flow was bypassed by then.
fn run_queue_limit(policy: &str) -> Vec<serde_json::Value> {
    let s = Scratch::new();
    let pcap = s.path("queue.pcap");
    let (c, sv) = (1001u32, 5001u32);
    let mut frames = vec![
        (at(1.000), tcp(CLIENT, 40001, SERVER, 8080, c - 1, 0, SYN, b"")),
        (at(1.001), tcp(SERVER, 8080, CLIENT, 40001, sv - 1, c, SYN | ACK, b"")),
        (at(1.002), tcp(CLIENT, 40001, SERVER, 8080, c, sv, ACK, b"")),
        (at(1.003), tcp(CLIENT, 40001, SERVER, 8080, c + 10, sv, ACK | PSH, b"AAAAAAAAAA")),
        (at(1.004), tcp(CLIENT, 40001, SERVER, 8080, c + 20, sv, ACK | PSH, b"BBBBBBBBBB")),
        (at(1.005), tcp(CLIENT, 40001, SERVER, 8080, c, sv, ACK | PSH, b"0123456789")),
    ];
    frames.push((at(1.006), tcp(SERVER, 8080, CLIENT, 40001, sv, c + 30, ACK, b"")));
    write_pcap(&pcap, &frames);
    let config = s.path("weir.toml");
    std::fs::write(&config, format!("[stream]\nmax_queued_segments = 1\n\n[exception_policy]\nmax_queued_segments = \"{policy}\"\n"))
        .unwrap();
    let out = s.path("out");
    replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    eve(&out)
}

#[test]
fn the_queued_segment_limit_takes_its_own_policy() {
    for (policy, bypassed, refused) in [("ignore", None, 2), ("bypass", Some(true), 1)] {
        let events = run_queue_limit(policy);
        let flows = of_type(&events, "flow");
        assert_eq!(flows.len(), 1, "{events:#?}");
        assert_eq!(flows[0]["flow"].get("bypassed").and_then(|b| b.as_bool()), bypassed, "{policy}");
        assert_eq!(flows[0]["flow"]["pkts_toserver"], 5, "{policy}");
        let last = *of_type(&events, "stats").last().expect("a closing stats record");
        let counted = &last["stats"]["exception_policy"];
        assert_eq!(counted[format!("max_queued_segments.{policy}")], refused, "{policy}: {last}");
        assert_eq!(counted.as_object().map(|m| m.len()), Some(1), "{policy}: {last}");
    }
}

#[test]
fn a_parser_error_takes_the_app_layer_error_policy() {
    // A request, then bytes the HTTP parser cannot read as a request, then another request.
    let frames = tcp_session(
        40020,
        80,
        &[
            (b"GET /first HTTP/1.1\r\nHost: example.test\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            (b"\x16\x03\x01 not a request\r\n", b""),
            (b"GET /later HTTP/1.1\r\nHost: example.test\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ],
        1.0,
    );
    let rules = "alert http any any -> any any (msg:\"later uri\"; http.uri; content:\"/later\"; sid:11; rev:1;)\n";
    let run = |policy: &str| run_frames(&frames, &format!("[exception_policy]\napp_layer_error = \"{policy}\"\n"), rules);
    let urls = |events: &[Value]| -> Vec<String> {
        of_type(events, "http").iter().map(|h| h["http"]["url"].as_str().unwrap_or("?").to_string()).collect()
    };
    let errors = |events: &[Value]| -> Value {
        of_type(events, "stats").last().expect("a closing stats record")["stats"]["app_layer"]["error"].clone()
    };

    let ignored = run("ignore");
    // The parser finds its footing again and the later request is inspected.
    assert_eq!(sids(&ignored), [11], "{ignored:#?}");
    assert_eq!(urls(&ignored), ["/first", "/later"]);
    assert_eq!(only_flow(&ignored)["exception_policy"], json!([{ "target": "app_layer_error", "policy": "ignore" }]));
    assert_eq!(errors(&ignored), json!({ "http": 1 }));

    let passed = run("pass-flow");
    assert_eq!(sids(&passed), [] as [u64; 0], "{passed:#?}");
    assert_eq!(urls(&passed), ["/first", "/later"]);
    assert_eq!(counted(&passed), json!({ "app_layer_error.pass_flow": 1 }));

    let bypassed = run("bypass");
    assert_eq!(sids(&bypassed), [] as [u64; 0], "{bypassed:#?}");
    assert_eq!(urls(&bypassed), ["/first"]);
    assert_eq!(only_flow(&bypassed)["bypassed"], true);
    assert_eq!(errors(&bypassed), json!({ "http": 1 }));
}

#[test]
fn a_cut_header_block_takes_the_http_header_memcap_policy() {
    let mut request = b"GET /evil HTTP/1.1\r\nHost: example.test\r\n".to_vec();
    for i in 0..40 {
        request.extend_from_slice(format!("X-Padding-{i:02}: {}\r\n", "p".repeat(40)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let frames = tcp_session(40030, 80, &[(&request, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")], 1.0);
    let run = |policy: &str| {
        let config = format!("[app_layer.http]\nheader_memcap = \"1kb\"\n\n[exception_policy]\nhttp_header_memcap = \"{policy}\"\n");
        run_frames(&frames, &config, HTTP_RULES)
    };
    let ignored = run("ignore");
    // The request goes on with the headers that fit; its kept headers still fill the budget
    // while the response's block comes, so that block is cut too.
    assert_eq!(of_type(&ignored, "http").len(), 1, "{ignored:#?}");
    assert!(sids(&ignored).contains(&10), "{ignored:#?}");
    assert_eq!(counted(&ignored), json!({ "http_header_memcap.ignore": 2 }), "{ignored:#?}");

    let bypassed = run("bypass");
    assert_eq!(only_flow(&bypassed)["bypassed"], true, "{bypassed:#?}");
    assert_eq!(only_flow(&bypassed)["exception_policy"], json!([{ "target": "http_header_memcap", "policy": "bypass" }]));
    assert_eq!(sids(&bypassed), [] as [u64; 0], "{bypassed:#?}");
}

#[test]
fn a_message_cut_at_the_mail_budget_takes_the_mail_memcap_policy() {
    // A 100 KiB message against a 64 KiB budget for unfinished SMTP messages.
    let mut exchanges: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (Vec::new(), b"220 mx.example.test ESMTP\r\n".to_vec()),
        (b"EHLO client\r\n".to_vec(), b"250 mx\r\n".to_vec()),
        (b"MAIL FROM:<a@example.test>\r\n".to_vec(), b"250 ok\r\n".to_vec()),
        (b"RCPT TO:<b@example.test>\r\n".to_vec(), b"250 ok\r\n".to_vec()),
        (b"DATA\r\n".to_vec(), b"354 go\r\n".to_vec()),
        (b"Subject: big\r\n\r\n".to_vec(), Vec::new()),
    ];
    let line = format!("{}\r\n", "m".repeat(1022));
    for _ in 0..100 {
        exchanges.push((line.clone().into_bytes(), Vec::new()));
    }
    exchanges.push((b".\r\n".to_vec(), b"250 queued\r\n".to_vec()));
    exchanges.push((b"QUIT\r\n".to_vec(), b"221 bye\r\n".to_vec()));
    let borrowed: Vec<(&[u8], &[u8])> = exchanges.iter().map(|(c, s)| (c.as_slice(), s.as_slice())).collect();
    let frames = tcp_session(40040, 25, &borrowed, 1.0);
    let run = |policy: &str| {
        let config = format!("[app_layer.smtp]\nmessage_memcap = \"64kb\"\n\n[exception_policy]\nmail_memcap = \"{policy}\"\n");
        run_frames(&frames, &config, "alert tcp any any -> any any (msg:\"closing\"; flags:FA; sid:2; rev:1;)\n")
    };
    let ignored = run("ignore");
    assert_eq!(of_type(&ignored, "smtp").len(), 1, "{ignored:#?}");
    assert_eq!(counted(&ignored), json!({ "mail_memcap.ignore": 1 }));
    assert_eq!(only_flow(&ignored)["exception_policy"], json!([{ "target": "mail_memcap", "policy": "ignore" }]));
    assert_eq!(sids(&ignored), [2, 2]);

    let passed = run("pass-flow");
    assert_eq!(of_type(&passed, "smtp").len(), 1, "{passed:#?}");
    assert_eq!(sids(&passed), [] as [u64; 0], "{passed:#?}");
    assert_eq!(counted(&passed), json!({ "mail_memcap.pass_flow": 1 }));
}

#[test]
fn a_full_flow_table_evicts_or_refuses_by_the_flow_table_policy() {
    // Two sessions fill a table of two; a third starts while both are in use.
    let exchanges: &[(&[u8], &[u8])] = &[(b"hello\n", b"hi\n"), (b"more\n", b"ok\n")];
    let mut frames = tcp_session(41001, 9000, exchanges, 1.0);
    frames.extend(tcp_session(41002, 9000, exchanges, 1.0005));
    frames.extend(tcp_session(41003, 9000, exchanges, 1.005));
    frames.sort_by_key(|(ts, _)| *ts);
    let run = |policy: &str| {
        run_frames(&frames, &format!("[stream]\nmax_flows = 2\n\n[exception_policy]\nflow_table = \"{policy}\"\n"), "")
    };
    let ports = |events: &[Value]| -> Vec<u64> {
        let mut p: Vec<u64> = of_type(events, "flow").iter().filter_map(|f| f["src_port"].as_u64()).collect();
        p.sort();
        p
    };

    let bypassed = run("bypass");
    // The sessions in use are kept whole; the third is counted, not tracked.
    assert_eq!(ports(&bypassed), [41001, 41002], "{bypassed:#?}");
    for flow in of_type(&bypassed, "flow") {
        assert_eq!(flow["flow"]["pkts_toserver"].as_u64().unwrap() + flow["flow"]["pkts_toclient"].as_u64().unwrap(), 14);
        assert_eq!(flow["flow"]["reason"], "shutdown");
    }
    assert_eq!(counted(&bypassed), json!({ "flow_table.bypass": 14 }));
    let last = *of_type(&bypassed, "stats").last().unwrap();
    assert_eq!(last["stats"]["decoder"]["no_flow"], 14);

    let ignored = run("ignore");
    // Room is made by ending the least recently seen flow, again and again.
    let forced = of_type(&ignored, "flow").iter().filter(|f| f["flow"]["reason"] == "forced").count();
    assert!(forced > 0, "{ignored:#?}");
    assert_eq!(counted(&ignored)["flow_table.ignore"], forced as u64);
}
