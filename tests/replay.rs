//! End-to-end: `weir replay` on captures built here, checked through eve.json.

mod common;

use common::*;

#[test]
fn flows_count_packets_and_bytes_per_direction() {
    let s = Scratch::new();
    let mut frames = tcp_session(40000, 80, &[(b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nhello")], 0.0);
    frames.push((at(0.5), udp(CLIENT, 5353, SERVER, 53, b"query")));
    frames.push((at(0.6), udp(SERVER, 53, CLIENT, 5353, b"answer!")));
    let bytes = |range: &[(weir_core::Timestamp, Vec<u8>)], from_client: bool| -> (u64, u64) {
        let mut n = (0, 0);
        for (_, f) in range {
            // The IPv4 source address sits at bytes 26..30 of an Ethernet frame.
            if (f[26..30] == CLIENT) == from_client {
                n.0 += 1;
                n.1 += f.len() as u64;
            }
        }
        n
    };
    let tcp_frames = &frames[..frames.len() - 2];
    let (ts_pkts, ts_bytes) = bytes(tcp_frames, true);
    let (tc_pkts, tc_bytes) = bytes(tcp_frames, false);
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &frames);
    let out = s.path("out");
    replay(&[&pcap], &out, &[]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 2, "{events:#?}");
    let tcp = flows.iter().find(|f| f["proto"] == "TCP").unwrap();
    assert_eq!(tcp["src_ip"], "10.1.1.1");
    assert_eq!(tcp["src_port"], 40000);
    assert_eq!(tcp["dest_ip"], "10.2.2.2");
    assert_eq!(tcp["dest_port"], 80);
    assert_eq!(tcp["flow"]["pkts_toserver"], ts_pkts);
    assert_eq!(tcp["flow"]["pkts_toclient"], tc_pkts);
    assert_eq!(tcp["flow"]["bytes_toserver"], ts_bytes);
    assert_eq!(tcp["flow"]["bytes_toclient"], tc_bytes);
    assert_eq!(tcp["flow"]["reason"], "shutdown");
    let udp = flows.iter().find(|f| f["proto"] == "UDP").unwrap();
    assert_eq!(udp["flow"]["pkts_toserver"], 1);
    assert_eq!(udp["flow"]["pkts_toclient"], 1);
    assert_eq!(udp["flow"]["bytes_toserver"], 14 + 20 + 8 + 5);
    assert_eq!(udp["flow"]["bytes_toclient"], 14 + 20 + 8 + 7);
    assert_eq!(udp["flow"]["state"], "established");
    assert_eq!(udp["flow"]["start"], udp["timestamp"]);
    assert!(tcp["flow_id"].as_u64().unwrap() != udp["flow_id"].as_u64().unwrap());
}

#[test]
fn idle_flows_time_out_by_packet_time() {
    let s = Scratch::new();
    let frames = vec![
        (at(0.0), udp(CLIENT, 1000, SERVER, 53, b"a")),
        // 40 s later: past UDP's 30 s "new" timeout, so this is a second flow.
        (at(40.0), udp(CLIENT, 1000, SERVER, 53, b"b")),
        (at(41.0), udp(CLIENT, 2000, SERVER, 53, b"c")),
    ];
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &frames);
    let out = s.path("out");
    replay(&[&pcap], &out, &[]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 3);
    assert_eq!(flows[0]["flow"]["reason"], "timeout");
    assert_eq!(flows[0]["src_port"], 1000);
    assert_eq!(flows[1]["flow"]["reason"], "shutdown");
    assert_eq!(flows[2]["flow"]["reason"], "shutdown");
}

#[test]
fn a_full_flow_table_evicts_and_logs_the_oldest() {
    let s = Scratch::new();
    let frames: Vec<_> = (0..50u16).map(|i| (at(f64::from(i) * 0.01), udp(CLIENT, 1000 + i, SERVER, 53, b"x"))).collect();
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &frames);
    let config = s.path("weir.toml");
    std::fs::write(&config, "[stream]\nmax_flows = 10\n").unwrap();
    let out = s.path("out");
    replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 50, "every flow is logged, evicted or not");
    let forced: Vec<_> = flows.iter().filter(|f| f["flow"]["reason"] == "forced").collect();
    assert_eq!(forced.len(), 40);
    assert_eq!(forced[0]["src_port"], 1000, "the least recently seen goes first");
}

#[test]
fn vlan_ids_are_part_of_the_flow() {
    let s = Scratch::new();
    let mut frames = Vec::new();
    for (i, vlans) in [vec![], vec![6u16], vec![1, 10]].iter().enumerate() {
        frames.push((at(i as f64), with_vlans(udp(CLIENT, 1000, SERVER, 53, b"q"), vlans)));
    }
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &frames);
    let out = s.path("out");
    replay(&[&pcap], &out, &[]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 3);
    let mut vlans: Vec<String> = flows.iter().map(|f| f.get("vlan").map(|v| v.to_string()).unwrap_or_default()).collect();
    vlans.sort();
    assert_eq!(vlans, ["", "[1,10]", "[6]"]);
}

#[test]
fn eve_json_is_appended_unless_overwrite() {
    let s = Scratch::new();
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &[(at(0.0), udp(CLIENT, 1, SERVER, 2, b"x"))]);
    let out = s.path("out");
    replay(&[&pcap], &out, &[]);
    replay(&[&pcap], &out, &[]);
    assert_eq!(of_type(&eve(&out), "flow").len(), 2);
    replay(&[&pcap], &out, &["--overwrite"]);
    assert_eq!(of_type(&eve(&out), "flow").len(), 1);
}

#[test]
fn outputs_are_not_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let pcap = s.path("in.pcap");
    let frames = tcp_session(40000, 80, &[(b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")], 1.0);
    write_pcap(&pcap, &frames);
    let out = s.path("new/out");
    replay(&[&pcap], &out, &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // Whatever the umask takes away, others get nothing; the group at most reads.
    assert_eq!(mode(&out) & 0o027, 0, "{:o}", mode(&out));
    assert_eq!(mode(&out.join("eve.json")) & 0o137, 0, "{:o}", mode(&out.join("eve.json")));
    let stored: Vec<_> = walk_files(&out.join("filestore"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(mode(&stored[0]) & 0o077, 0);
    assert_eq!(mode(stored[0].parent().unwrap()) & 0o077, 0);
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { found.extend(walk_files(&path)) } else { found.push(path) }
    }
    found
}

#[test]
fn several_files_and_directories_are_one_capture() {
    let s = Scratch::new();
    let dir = s.path("caps");
    std::fs::create_dir(&dir).unwrap();
    // One UDP flow split over two files: it must be one flow, not two.
    write_pcap(&dir.join("a.pcap"), &[(at(0.0), udp(CLIENT, 7, SERVER, 53, b"q"))]);
    write_pcap(&dir.join("b.pcap"), &[(at(1.0), udp(SERVER, 53, CLIENT, 7, b"r"))]);
    let out = s.path("out");
    replay(&[&dir], &out, &[]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flow"]["pkts_toclient"], 1);
}

#[test]
fn icmp_echo_pairs_and_errors_count_on_their_flows() {
    use etherparse::{Icmpv4Type, PacketBuilder};
    let s = Scratch::new();
    let icmp = |src: [u8; 4], dst: [u8; 4], t: Icmpv4Type, payload: &[u8]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .icmpv4(t)
            .write(&mut f, payload)
            .unwrap();
        f
    };
    let echo = etherparse::IcmpEchoHeader { id: 7, seq: 1 };
    let query = udp(CLIENT, 5000, SERVER, 53, b"q");
    // The error quotes the query's IP header and first 8 bytes of UDP.
    let quoted = &query[14..14 + 28];
    let unreachable = Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port);
    let frames = vec![
        (at(0.0), icmp(CLIENT, SERVER, Icmpv4Type::EchoRequest(echo.clone()), b"ping")),
        (at(0.1), icmp(SERVER, CLIENT, Icmpv4Type::EchoReply(echo), b"ping")),
        (at(0.2), query.clone()),
        (at(0.3), icmp(SERVER, CLIENT, unreachable, quoted)),
    ];
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &frames);
    let out = s.path("out");
    replay(&[&pcap], &out, &[]);
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 2, "{flows:#?}");
    let icmp_flow = flows.iter().find(|f| f["proto"] == "ICMP").unwrap();
    assert_eq!(icmp_flow["flow"]["pkts_toserver"], 1);
    assert_eq!(icmp_flow["flow"]["pkts_toclient"], 1);
    assert_eq!(icmp_flow["icmp_type"], 8);
    let udp_flow = flows.iter().find(|f| f["proto"] == "UDP").unwrap();
    assert_eq!(udp_flow["flow"]["pkts_toserver"], 1);
    assert_eq!(udp_flow["flow"]["pkts_toclient"], 1, "the port-unreachable counts toward the client");
}
