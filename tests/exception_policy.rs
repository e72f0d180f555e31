//! End-to-end: exception policies. A `[stream] memcap` too small for any held segment is met on
//! the first data of a session, while it waits for its ACK. `ignore` does what the cap states
//! (the session delivers what it holds and ends its streams), so a rule on those bytes fires;
//! `bypass` gives the flow up unread.

mod common;

use common::*;

/// Runs a session whose first request carries the rule's content, under `[exception_policy]`
/// `stream_memcap = policy`; returns the EVE records.
fn run(policy: &str) -> Vec<serde_json::Value> {
    let s = Scratch::new();
    let pcap = s.path("memcap.pcap");
    let frames = tcp_session(40000, 8080, &[(b"now EVILNESS follows\n", b"hi\n"), (b"more\n", b"ok\n")], 1.0);
    write_pcap(&pcap, &frames);
    let rules = s.path("test.rules");
    std::fs::write(
        &rules,
        "alert tcp any any -> any any (msg:\"evil bytes\"; content:\"EVILNESS\"; sid:1; rev:1;)\n\
         alert tcp any any -> any any (msg:\"closing\"; flags:FA; sid:2; rev:1;)\n",
    )
    .unwrap();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[stream]\nmemcap = 1\n\n[detect]\nrules = [{:?}]\n\n[exception_policy]\nstream_memcap = \"{policy}\"\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let out = s.path("out");
    replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    eve(&out)
}

#[test]
fn ignore_delivers_what_the_session_held_and_keeps_inspecting_packets() {
    let events = run("ignore");
    let alerts = of_type(&events, "alert");
    let sids: Vec<u64> = alerts.iter().filter_map(|a| a["alert"]["signature_id"].as_u64()).collect();
    // The held request's bytes, then both FIN/ACKs of the close.
    assert_eq!(sids, [1, 2, 2], "{events:#?}");
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flow"].get("bypassed"), None);
    assert_eq!(flows[0]["flow"]["alerted"], true);
    let stats = of_type(&events, "stats");
    let last = stats.last().expect("a closing stats record");
    // Met once: the flushed session reassembles nothing more, so holds nothing more.
    assert_eq!(last["stats"]["exception_policy"]["stream_memcap.ignore"], 1, "{last}");
    assert_eq!(last["stats"]["exception_policy"].get("stream_memcap.bypass"), None);
}

#[test]
fn bypass_stops_inspecting_the_flow_but_still_counts_and_logs_it() {
    let events = run("bypass");
    // Neither the held bytes nor any later packet (the FIN/ACKs) are inspected.
    assert!(of_type(&events, "alert").is_empty(), "{events:#?}");
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0]["flow"];
    assert_eq!(flow["bypassed"], true);
    // Every packet of the session is still counted: handshake, 2 x (request, ACK, reply, ACK), close.
    assert_eq!(flow["pkts_toserver"].as_u64().unwrap() + flow["pkts_toclient"].as_u64().unwrap(), 14);
    let stats = of_type(&events, "stats");
    let last = stats.last().expect("a closing stats record");
    assert_eq!(last["stats"]["exception_policy"]["stream_memcap.bypass"], 1, "once: the flow is given up");
    assert_eq!(last["stats"]["flow"]["memcap_flushes"], 1);
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
