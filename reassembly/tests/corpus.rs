//! The suricata-verify stream cases, replayed through `TcpSession` with the options each
//! `test.yaml` sets. Each test states what the Suricata check implies for reassembly.

mod common;

use common::{replay, single, Ev};
use weir_core::Direction::{ToClient, ToServer};
use weir_reassembly::{OverlapPolicy, StreamConfig, TcpState};

fn suricata_defaults() -> StreamConfig {
    StreamConfig { midstream: false, async_oneside: false, ..StreamConfig::default() }
}

#[test]
fn exact_overlap_old_linux_takes_the_retransmitted_data() {
    // eve-payload-02: GOOD then EVIL at the same sequence; the server is old-linux, and the
    // stream alert fires on EVIL only.
    let cfg = StreamConfig { overlap_policy: OverlapPolicy::OldLinux, ..suricata_defaults() };
    let run = single("eve-payload-02-tcp-exact-overlap-policy-oldlinux/tcp-overlap.pcap", &cfg);
    assert_eq!(run.stream(ToServer), "EVIL");
    assert_eq!(run.anomalies(), vec![(5, "stream.reassembly_overlap_different_data")]);
    // Released by the server's ACK (packet 6), not by the flush.
    assert_eq!(run.released_before_flush(ToServer), vec![(6, Ev::Data(b"EVIL".to_vec()))]);
}

#[test]
fn exact_overlap_default_bsd_keeps_the_first_data() {
    let run = single("eve-payload-02-tcp-exact-overlap-policy-oldlinux/tcp-overlap.pcap", &suricata_defaults());
    assert_eq!(run.stream(ToServer), "GOOD");
    assert_eq!(run.session.stats().overlaps_different_data, 1);
}

#[test]
fn acked_hole_becomes_a_four_byte_gap() {
    // eve-payload-05: VERY at 2, DATA at 10, server ACKs 14; the stream payload is
    // "VERY[4 bytes missing]DATA" and "VERYGOODDATA" must not match.
    let run = single("eve-payload-05-tcp-data-gap/tcp-simple-gap2.pcap", &suricata_defaults());
    assert_eq!(
        run.released_before_flush(ToServer),
        vec![(6, Ev::Data(b"VERY".to_vec())), (6, Ev::Gap(4)), (6, Ev::Data(b"DATA".to_vec()))]
    );
    assert_eq!(run.stream(ToServer), "VERY[4 bytes missing]DATA");
    assert!(run.anomalies().contains(&(6, "stream.reassembly_seq_gap")));
    assert_eq!(run.session.stats().gap_bytes, 4);
    let eve = serde_json::to_value(run.session.eve()).expect("serializable");
    assert_eq!(eve["ts_gap"], serde_json::json!(true));
    assert_eq!(eve.get("tc_gap"), None);
    assert_eq!((run.ends(ToServer), run.ends(ToClient)), (1, 1));
}

#[test]
fn five_way_split_handshake_keeps_the_syn_sender_as_client() {
    // tcp-split-handshake-02-5whs: SYN, ACK, SYN, SYN/ACK, ACK, then EVIL from the client.
    let run = single("tcp-split-handshake-02-5whs/split-handshake-5whs.pcap", &suricata_defaults());
    assert_eq!(run.stream(ToServer), "EVIL");
    assert_eq!(run.stream(ToClient), "");
    assert_eq!(run.anomalies(), vec![(1, "stream.3whs_ack_in_wrong_dir")]);
    let states: Vec<TcpState> = run.outcomes.iter().map(|(_, o)| o.state).collect();
    use TcpState::*;
    assert_eq!(states, vec![SynSent, SynSent, SynRecv, SynRecv, Established, Established, Established, Closed]);
    // The RST released and ended both directions.
    assert_eq!(run.released_before_flush(ToServer).last(), Some(&(7, Ev::End)));
}

#[test]
fn fast_open_syn_data_is_the_start_of_the_stream() {
    // tcp-fastopen-01: a cookie request, then a SYN carrying 86 bytes of HTTP request.
    let runs = replay("tcp-fastopen-01/tfo.pcap", &suricata_defaults());
    assert_eq!(runs.len(), 2);
    assert!(runs[0].stream(ToServer).starts_with("GET /index.php HTTP/1.0"));
    assert!(runs[0].stream(ToClient).starts_with("HTTP/1.1 302"));
    let tfo = &runs[1];
    let request = tfo.stream(ToServer);
    assert_eq!(request.len(), 86);
    assert!(request.starts_with("GET //index.php?page=../../../etc/passwd"));
    assert_eq!(tfo.stream(ToClient).len(), 1307);
    for run in &runs {
        assert_eq!(run.session.state(), TcpState::Closed);
        assert_eq!(run.anomalies(), vec![]);
    }
}

#[test]
fn fast_open_data_is_released_by_the_synack_that_acks_it() {
    // tcp-fastopen-13: the SYN/ACK acknowledges the SYN's data, so parsers get it at packet 2.
    let run = single("tcp-fastopen-13/tfo.pcap", &suricata_defaults());
    let first = run.released_before_flush(ToServer).first().map(|(i, _)| *i);
    assert_eq!(first, Some(1));
}

#[test]
fn http_async_both_sides_in_order() {
    let run = single("http-async/input.pcap", &suricata_defaults());
    let request = run.stream(ToServer);
    assert_eq!(request.matches("GET /").count(), 2);
    assert_eq!(request.len(), 80);
    assert_eq!(run.stream(ToClient).len(), 149 + 111);
    assert!(run.stream(ToClient).ends_with("Hello People"));
    assert_eq!(run.session.state(), TcpState::Closed);
    assert_eq!(run.anomalies(), vec![]);
    // Everything, End included, was released by packets, none by the flush.
    assert_eq!(run.released_before_flush(ToServer).last().map(|(_, e)| e), Some(&Ev::End));
    assert_eq!(run.released_before_flush(ToClient).last().map(|(_, e)| e), Some(&Ev::End));
}

#[test]
fn client_only_capture_needs_async_oneside() {
    // http-async-cli: SYN, then the client's packets only.
    let cfg = StreamConfig { async_oneside: true, ..suricata_defaults() };
    let run = single("http-async-cli/input.pcap", &cfg);
    let released: Vec<Ev> = run.released_before_flush(ToServer).into_iter().map(|(_, e)| e).collect();
    assert_eq!(released.len(), 3, "two requests and the End at the FIN: {released:?}");
    assert_eq!(run.stream(ToServer).matches("GET /").count(), 2);
    assert_eq!(run.session.state(), TcpState::Established);

    // Without it the SYN/ACK-less session never establishes and nothing is delivered.
    let run = single("http-async-cli/input.pcap", &suricata_defaults());
    assert_eq!(run.stream(ToServer), "");
    assert_eq!(run.session.state(), TcpState::SynSent);
}

#[test]
fn async_client_side_flow_record_matches_suricata() {
    // stream-async-6063-cli-01, midstream + async-oneside: tcp_flags 1b/1b/00, established.
    let cfg = StreamConfig { midstream: true, async_oneside: true, ..suricata_defaults() };
    let run = single("stream-async-6063-cli-01/http-request-header-async-cli.pcap", &cfg);
    assert_eq!(run.stream(ToServer).len(), 396);
    let eve = serde_json::to_value(run.session.eve()).expect("serializable");
    assert_eq!(
        eve,
        serde_json::json!({
            "tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "00",
            "syn": true, "fin": true, "psh": true, "ack": true,
            "state": "established", "ts_max_regions": 1, "tc_max_regions": 1
        })
    );
}

#[test]
fn midstream_one_sided_without_async_delivers_at_flow_end() {
    // stream-async-6063-cli-03: no SYN, client side only, async-oneside off: Suricata's alerts
    // and http records carry no pcap_cnt (they come from the flow-end flush).
    let cfg = StreamConfig { midstream: true, async_oneside: false, ..suricata_defaults() };
    let run = single("stream-async-6063-cli-03/simple_http_download.onesided.nosyn.pcap", &cfg);
    assert_eq!(run.released_before_flush(ToServer), vec![]);
    let stream = run.stream(ToServer);
    assert_eq!(stream.len(), 397 + 398 + 398);
    assert_eq!(stream.matches("GET /i/").count(), 3);
    let eve = run.session.eve();
    assert_eq!((eve.tcp_flags.as_str(), eve.tcp_flags_ts.as_str(), eve.tcp_flags_tc.as_str()), ("19", "19", "00"));
    assert_eq!(eve.state, "close_wait");
    assert!(run.session.is_midstream());
}

#[test]
fn midstream_synack_pickup_reverses_the_flow() {
    // alert-testmyids-async: the capture starts at the server's SYN/ACK and has only the
    // server's side; the alert must be src_port 80 and the http record dest_port 80.
    let cfg = StreamConfig { midstream: true, async_oneside: true, ..suricata_defaults() };
    let run = single("alert-testmyids-async/input.pcap", &cfg);
    let (_, first) = run.outcomes[0];
    assert!(first.reversed && first.accepted);
    assert_eq!(first.direction, ToClient);
    assert!(run.outcomes.iter().all(|(_, o)| o.direction == ToClient));
    let response = run.released_before_flush(ToClient);
    assert_eq!(response.first().map(|(i, _)| *i), Some(2));
    assert!(run.stream(ToClient).starts_with("HTTP/1.1 200 OK"));
    assert_eq!(run.stream(ToClient).len(), 259);
}

#[test]
fn midstream_data_pickup_takes_the_sender_as_client() {
    // alert-testmyids-midstream: first packet is the server's response. Reassembly takes the
    // sender as client (app-layer detection may reverse the flow later, as Suricata does);
    // the response is released by the other side's ACK.
    let cfg = StreamConfig { midstream: true, ..suricata_defaults() };
    let run = single("alert-testmyids-midstream/input.pcap", &cfg);
    assert!(!run.outcomes[0].1.reversed);
    assert_eq!(run.released_before_flush(ToServer).first().map(|(i, _)| *i), Some(1));
    assert_eq!(run.stream(ToServer).len(), 259);
    assert_eq!(run.session.state(), TcpState::Closed);
}

#[test]
fn single_packet_midstream_flow() {
    // iponly-midstream-01: one PSH/ACK from 192.168.1.5 to .1; sid 1 (.5 -> .1) alerts, so the
    // packet is to_server.
    let cfg = StreamConfig { midstream: true, ..suricata_defaults() };
    let run = single("iponly-midstream-01/input.pcap", &cfg);
    let (_, outcome) = run.outcomes[0];
    assert_eq!((outcome.direction, outcome.accepted, outcome.state), (ToServer, true, TcpState::Established));
    assert_eq!(run.stream(ToServer).len(), 54);
    assert_eq!(run.released_before_flush(ToServer), vec![]);

    let run = single("iponly-midstream-01/input.pcap", &suricata_defaults());
    assert!(!run.outcomes[0].1.accepted);
    assert_eq!(run.session.state(), TcpState::None);
    assert_eq!(run.stream(ToServer), "");
}
