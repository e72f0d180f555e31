use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use serde_json::{Value, json};
use weir_core::{Direction, FlowKey, IpProto, StreamEvent, Timestamp, Vlans, hex};

use super::test_pcap::{self, Event, Step};
use super::*;
use crate::emit::{AppEvent, Emit, ParserException};
use crate::files::MemorySink;

const TS: Timestamp = Timestamp::ZERO;

fn key(client: [u8; 4], cport: u16, server: [u8; 4], sport: u16) -> FlowKey {
    FlowKey {
        src_ip: IpAddr::V4(Ipv4Addr::from(client)),
        dst_ip: IpAddr::V4(Ipv4Addr::from(server)),
        src_port: cport,
        dst_port: sport,
        proto: IpProto::TCP,
        vlans: Vlans::default(),
        tunnel_depth: 0,
    }
}

/// Feeds a control connection, alternating directions as listed.
fn control(steps: &[(Direction, &[u8])]) -> (FtpState, Emit) {
    let mut s = FtpState::new();
    let mut out = Emit::default();
    for (dir, bytes) in steps {
        s.on_stream(*dir, StreamEvent::Data(bytes), TS, &mut out);
    }
    (s, out)
}

fn ftp_records(out: &Emit) -> Vec<Value> {
    out.events
        .iter()
        .filter(|e| e.event_type == "ftp")
        .map(|e| e.fields["ftp"].clone())
        .collect()
}

use Direction::{ToClient as C, ToServer as S};

#[test]
fn a_login_and_passive_download_make_suricata_records() {
    let (mut s, out) = control(&[
        (C, b"220 (vsFTPd 2.3.5)\r\n"),
        (S, b"USER alice\r\n"),
        (C, b"331 Please specify the password.\r\n"),
        (S, b"PASS secret\r\n"),
        (C, b"230 Login successful.\r\n"),
        (S, b"PASV\r\n"),
        (C, b"227 Entering Passive Mode (10,0,0,1,117,50).\r\n"),
        (S, b"RETR a.txt\r\n"),
        (
            C,
            b"150 Opening BINARY mode data connection for a.txt (3 bytes).\r\n",
        ),
        (C, b"226 Transfer complete.\r\n"),
    ]);
    let recs = ftp_records(&out);
    assert_eq!(recs.len(), 5);
    assert_eq!(
        recs[0],
        json!({"completion_code": ["220"], "reply": ["(vsFTPd 2.3.5)"], "reply_received": "yes", "reply_truncated": false})
    );
    assert_eq!(recs[1]["command"], "USER");
    assert_eq!(recs[1]["command_data"], "alice");
    // Not a guest: the password never reaches EVE, but detection still sees it.
    assert_eq!(recs[2]["command_data"], "********");
    let pass_tx = s
        .transactions()
        .find(|t| t.command() == Some(b"PASS"))
        .expect("PASS tx");
    assert_eq!(pass_tx.command_data(), b"secret");
    assert_eq!(pass_tx.eve_object(), recs[2]);
    assert_eq!(
        recs[3],
        json!({"command": "PASV", "completion_code": ["227"], "reply": ["Entering Passive Mode (10,0,0,1,117,50)."],
               "dynamic_port": 30002, "reply_received": "yes", "reply_truncated": false})
    );
    assert_eq!(
        recs[4],
        json!({"command": "RETR", "command_data": "a.txt", "command_truncated": false,
               "completion_code": ["150", "226"],
               "reply": ["Opening BINARY mode data connection for a.txt (3 bytes).", "Transfer complete."],
               "reply_received": "yes", "reply_truncated": false})
    );
    let exps = s.take_expectations();
    assert_eq!(exps.len(), 2);
    assert_eq!(
        (exps[0].mode, exps[0].port, exps[0].transfer.is_none()),
        (DataMode::Pasv, 30002, true)
    );
    let t = exps[1].transfer.as_ref().expect("transfer");
    assert_eq!(
        (t.command.clone(), t.argument.as_slice(), t.rest),
        (TransferCommand::Retr, &b"a.txt"[..], 0)
    );
    assert_eq!(exps[1].file_direction(), Some(Direction::ToClient));
    assert!(s.take_expectations().is_empty());
}

#[test]
fn guest_passwords_are_logged_and_multiline_replies_are_one_reply() {
    let (_, out) = control(&[
        (S, b"USER anonymous\r\n"),
        (C, b"331 ok\r\n"),
        (S, b"PASS anonymous\r\n"),
        (
            C,
            b"230-Welcome\r\n230-to the\r\n  server\r\n230 Login successful.\r\n",
        ),
        (S, b"NOOP\r\n"),
        (C, b"200 NOOP ok.\r\n"),
    ]);
    let recs = ftp_records(&out);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1]["command_data"], "anonymous");
    assert_eq!(recs[1]["completion_code"], json!(["230", "230", "230"]));
    assert_eq!(
        recs[1]["reply"],
        json!(["Welcome", "to the", "  server", "Login successful."])
    );
    assert_eq!(recs[2]["command"], "NOOP");
    assert_eq!(recs[2]["reply"], json!(["NOOP ok."]));
}

#[test]
fn active_modes_expect_the_server_to_connect_and_carry_rest() {
    let (mut s, out) = control(&[
        (S, b"PORT 192,168,0,13,234,10\r\n"),
        (C, b"200 PORT command successful.\r\n"),
        (S, b"REST 100\r\n"),
        (C, b"350 Restarting at 100.\r\n"),
        (S, b"STOR up.bin\r\n"),
        (C, b"150 ok\r\n226 done\r\n"),
        (S, b"EPRT |2|::1|5282|\r\n"),
        (C, b"200 ok\r\n"),
    ]);
    let recs = ftp_records(&out);
    assert_eq!(recs[0]["command_data"], "192,168,0,13,234,10");
    assert_eq!(recs[0]["dynamic_port"], 59914);
    assert_eq!(recs[0]["mode"], "active");
    assert_eq!(recs[3]["dynamic_port"], 5282);
    let exps = s.take_expectations();
    assert_eq!(exps.len(), 3);
    let t = exps[1].transfer.as_ref().expect("transfer");
    assert_eq!((t.command.clone(), t.rest), (TransferCommand::Stor, 100));
    // The server connects, so its data flow's to-server side carries... the client's upload
    // towards the server is the data flow's to-client side.
    assert_eq!(exps[1].file_direction(), Some(Direction::ToClient));
    assert_eq!(exps[2].announced_ip, Some("::1".parse().expect("v6")));
}

#[test]
fn a_refused_transfer_withdraws_its_expectation() {
    let (mut s, _) = control(&[
        (S, b"EPSV\r\n"),
        (C, b"229 Entering extended passive mode (|||30038|).\r\n"),
        (S, b"RETR missing\r\n"),
        (C, b"550 No such file or directory.\r\n"),
    ]);
    let exps = s.take_expectations();
    assert_eq!(exps.len(), 3);
    assert!(exps[2].withdrawn && exps[2].transfer.is_some());
    let control_key = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 21);
    let mut table = ExpectationTable::new();
    for e in exps {
        assert_eq!(table.offer(1, &control_key, e, TS), None);
    }
    assert!(table.is_empty());
}

#[test]
fn long_lines_are_cut_and_flagged_without_buffering_them() {
    let mut s = FtpState::new();
    let mut out = Emit::default();
    let mut long = b"RETR ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 3 * MAX_LINE_BYTES));
    for chunk in long.chunks(1000) {
        s.on_stream(S, StreamEvent::Data(chunk), TS, &mut out);
    }
    s.on_stream(S, StreamEvent::Data(b"\r\n"), TS, &mut out);
    s.on_stream(C, StreamEvent::Data(b"550 no\r\n"), TS, &mut out);
    let recs = ftp_records(&out);
    assert_eq!(recs[0]["command_truncated"], true);
    assert_eq!(
        recs[0]["command_data"].as_str().map(str::len),
        Some(MAX_LINE_BYTES - 5)
    );
}

#[test]
fn an_endless_preliminary_reply_is_capped() {
    let mut s = FtpState::new();
    let mut out = Emit::default();
    s.on_stream(S, StreamEvent::Data(b"RETR x\r\n"), TS, &mut out);
    let line = format!("150-{}\r\n", "z".repeat(1000));
    for _ in 0..1000 {
        s.on_stream(C, StreamEvent::Data(line.as_bytes()), TS, &mut out);
    }
    s.on_stream(
        C,
        StreamEvent::Data(b"150 go\r\n226 done\r\n"),
        TS,
        &mut out,
    );
    let tx = s.transactions().next().expect("tx");
    assert!(tx.replies().iter().map(Vec::len).sum::<usize>() <= MAX_REPLY_BYTES);
    let recs = ftp_records(&out);
    assert_eq!(recs[0]["reply_truncated"], true);
    assert_eq!(recs[0]["reply_received"], "yes");
    // Sixteen 1004-byte lines fill 16 KiB; the short final lines still fit after them.
    assert_eq!(
        recs[0]["completion_code"].as_array().map(Vec::len),
        Some(18)
    );
    assert_eq!(
        recs[0]["reply"].as_array().and_then(|r| r.last()).cloned(),
        Some(json!("done"))
    );
}

#[test]
fn a_port_flood_stays_bounded() {
    let control_key = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 21);
    let mut s = FtpState::new();
    let mut table = ExpectationTable::new();
    let mut out = Emit::default();
    for i in 0..10_000u32 {
        let cmd = format!("PORT 10,0,0,2,{},{}\r\n", (i >> 8) & 0xff, i & 0xff);
        s.on_stream(S, StreamEvent::Data(cmd.as_bytes()), TS, &mut out);
        for e in s.take_expectations() {
            table.offer(7, &control_key, e, TS);
        }
        assert!(table.len() <= MAX_EXPECTATIONS_PER_CONTROL_FLOW);
        assert!(s.transactions().count() <= MAX_PENDING_COMMANDS + MAX_RETAINED_TRANSACTIONS);
    }
    // Every new PORT replaces the unused one before it: only the last is still expected.
    assert_eq!(table.len(), 1);
    assert_eq!(
        s.anomaly_count("ftp.too_many_pending_commands"),
        10_000 - MAX_PENDING_COMMANDS as u64
    );
    assert!(out.anomalies.len() <= 8);
    // The server connects from its address to the last port.
    let data_key = key([10, 0, 0, 1], 20, [10, 0, 0, 2], 9999);
    let (_, exp) = table
        .match_flow(&data_key, 99, TS)
        .expect("last PORT expected");
    assert_eq!(exp.port, 9999);
}

#[test]
fn the_table_bounds_each_control_flow_and_ages_entries() {
    let control_key = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 21);
    let mut table = ExpectationTable::new();
    let exp = |id: u64, port: u16| Expectation {
        id,
        mode: DataMode::Pasv,
        port,
        announced_ip: None,
        transfer: None,
        withdrawn: false,
        announced: TS,
    };
    for id in 0..10 {
        table.offer(1, &control_key, exp(id, 30000 + id as u16), TS);
    }
    assert_eq!(table.len(), MAX_EXPECTATIONS_PER_CONTROL_FLOW);
    assert_eq!(table.evicted, 10 - MAX_EXPECTATIONS_PER_CONTROL_FLOW as u64);
    // The wrong client address never matches.
    assert!(
        table
            .match_flow(&key([10, 0, 0, 3], 5000, [10, 0, 0, 1], 30009), 5, TS)
            .is_none()
    );
    // A data connection that never comes is forgotten after the timeout.
    let later = TS.add(EXPECTATION_TIMEOUT);
    assert!(
        table
            .match_flow(&key([10, 0, 0, 2], 5000, [10, 0, 0, 1], 30009), 5, later)
            .is_none()
    );
    assert!(table.is_empty());
    assert_eq!(table.expired, MAX_EXPECTATIONS_PER_CONTROL_FLOW as u64);
}

#[test]
fn data_before_the_transfer_command_is_held_then_extracted() {
    let control_key = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 21);
    let (mut s, _) = control(&[
        (S, b"PASV\r\n"),
        (C, b"227 Entering Passive Mode (10,0,0,1,4,1).\r\n"),
    ]);
    let mut table = ExpectationTable::new();
    for e in s.take_expectations() {
        table.offer(1, &control_key, e, TS);
    }
    // The client connects before it sends STOR, and (captured out of order) its bytes come first.
    let data_key = key([10, 0, 0, 2], 40001, [10, 0, 0, 1], 1025);
    let (control_id, exp) = table.match_flow(&data_key, 2, TS).expect("match");
    assert_eq!(control_id, 1);
    let mut data = FtpDataState::new(exp);
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    data.on_stream(S, StreamEvent::Data(b"hello "), TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::Data(b"world"), TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::End, TS, &mut sink, &mut out);
    assert!(out.events.is_empty());
    let mut c_out = Emit::default();
    s.on_stream(S, StreamEvent::Data(b"STOR hello.txt\r\n"), TS, &mut c_out);
    for e in s.take_expectations() {
        if let Some(flow) = table.offer(1, &control_key, e.clone(), TS) {
            assert_eq!(flow, 2);
            data.update(e, TS, &mut sink, &mut out);
        }
    }
    assert!(table.is_empty());
    let info = &out
        .events
        .iter()
        .find(|e| e.event_type == "fileinfo")
        .expect("fileinfo")
        .fields;
    assert_eq!(info["fileinfo"]["filename"], "hello.txt");
    assert_eq!(info["fileinfo"]["state"], "CLOSED");
    assert_eq!(info["fileinfo"]["size"], 11);
    assert_eq!(
        info["ftp_data"],
        json!({"filename": "hello.txt", "command": "STOR"})
    );
    assert_eq!(sink.stored[0].1, b"hello world");
    assert_eq!(
        data.eve_object(),
        json!({"filename": "hello.txt", "command": "STOR"})
    );
    let rec = &out
        .events
        .iter()
        .find(|e| e.event_type == "ftp_data")
        .expect("ftp_data")
        .fields;
    assert_eq!(rec["ftp_data"]["command"], "STOR");
}

#[test]
fn held_bytes_are_bounded_and_counted_as_a_gap() {
    let exp = Expectation {
        id: 0,
        mode: DataMode::Pasv,
        port: 1025,
        announced_ip: None,
        transfer: None,
        withdrawn: false,
        announced: TS,
    };
    let mut data = FtpDataState::new(exp.clone());
    let mut sink = MemorySink::new(4 << 20);
    let mut out = Emit::default();
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..8 {
        data.on_stream(C, StreamEvent::Data(&chunk), TS, &mut sink, &mut out);
    }
    let transfer = Transfer {
        command: TransferCommand::Retr,
        argument: b"big".to_vec(),
        rest: 0,
        control_tx_id: 3,
    };
    data.update(
        Expectation {
            transfer: Some(transfer),
            ..exp
        },
        TS,
        &mut sink,
        &mut out,
    );
    data.on_stream(C, StreamEvent::End, TS, &mut sink, &mut out);
    let info = &out
        .events
        .iter()
        .find(|e| e.event_type == "fileinfo")
        .expect("fileinfo")
        .fields["fileinfo"];
    assert_eq!(info["state"], "TRUNCATED");
    assert_eq!(info["gaps"], true);
    assert_eq!(info["size"], 8 * 64 * 1024);
    assert_eq!(sink.stored[0].1.len(), MAX_HELD_DATA_BYTES);
}

#[test]
fn a_gap_in_the_data_truncates_the_file() {
    let exp = Expectation {
        id: 0,
        mode: DataMode::Port,
        port: 1025,
        announced_ip: None,
        transfer: Some(Transfer {
            command: TransferCommand::Retr,
            argument: b"f".to_vec(),
            rest: 0,
            control_tx_id: 0,
        }),
        withdrawn: false,
        announced: TS,
    };
    let mut data = FtpDataState::new(exp);
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    // Active RETR: the server connected, so the file is the data flow's to-server side.
    data.on_stream(S, StreamEvent::Data(b"abc"), TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::Gap { len: 10 }, TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::Data(b"def"), TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::End, TS, &mut sink, &mut out);
    let info = &out.events[0].fields["fileinfo"];
    assert_eq!(
        (info["state"].as_str(), info["size"].as_u64()),
        (Some("TRUNCATED"), Some(16))
    );
    assert_eq!(sink.stored[0].1, b"abcdef");
}

#[test]
fn probe_recognises_both_sides() {
    assert_eq!(probe(C, b"220 (vsFTPd)"), Probe::Ftp);
    assert_eq!(probe(C, b"22"), Probe::NeedMore);
    assert_eq!(probe(C, b"HTTP/1.1 200"), Probe::NoMatch);
    assert_eq!(probe(S, b"user bob\r\n"), Probe::Ftp);
    assert_eq!(probe(S, b"GET / HTTP/1.1"), Probe::NoMatch);
}

proptest! {
    #[test]
    fn random_control_bytes_never_panic_and_stay_bounded(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..40),
        gap_at in 0usize..50,
    ) {
        let mut s = FtpState::new();
        let mut out = Emit::default();
        for (i, (to_server, bytes)) in chunks.iter().enumerate() {
            let dir = if *to_server { S } else { C };
            if i == gap_at {
                s.on_stream(dir, StreamEvent::Gap { len: 5 }, TS, &mut out);
            }
            s.on_stream(dir, StreamEvent::Data(bytes), TS, &mut out);
            prop_assert!(s.take_expectations().len() <= 2 * MAX_EXPECTATIONS_PER_CONTROL_FLOW);
        }
        s.on_stream(S, StreamEvent::End, TS, &mut out);
        s.on_stream(C, StreamEvent::End, TS, &mut out);
        prop_assert!(s.transactions().count() <= MAX_RETAINED_TRANSACTIONS);
        // Both ends seen: everything was logged, nothing is left to flush.
        let logged = out.events.len();
        s.flush(TS, &mut out);
        prop_assert_eq!(out.events.len(), logged);
        prop_assert!(out.events.iter().all(|e| e.fields["ftp"]["reply_received"].is_string()));
    }

    #[test]
    fn control_records_do_not_depend_on_segmentation(cuts in proptest::collection::vec(1usize..40, 1..10)) {
        let server: &[u8] = b"220-hi\r\n220 ready\r\n331 pw\r\n230 ok\r\n227 Entering Passive Mode (1,2,3,4,5,6)\r\n150 go\r\n226 done\r\n";
        let client: &[u8] = b"USER a\r\nPASS b\r\nPASV\r\nRETR x y\r\n";
        let whole = {
            let (_, out) = control(&[(C, &server[..19]), (S, client), (C, &server[19..])]);
            ftp_records(&out)
        };
        let mut s = FtpState::new();
        let mut out = Emit::default();
        s.on_stream(C, StreamEvent::Data(&server[..19]), TS, &mut out);
        let mut rest = client;
        for c in cuts.iter().cycle().take(50) {
            if rest.is_empty() { break; }
            let n = (*c).min(rest.len());
            s.on_stream(S, StreamEvent::Data(&rest[..n]), TS, &mut out);
            rest = &rest[n..];
        }
        let mut rest = &server[19..];
        for c in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let n = (*c).min(rest.len());
            s.on_stream(C, StreamEvent::Data(&rest[..n]), TS, &mut out);
            rest = &rest[n..];
        }
        prop_assert_eq!(ftp_records(&out), whole);
    }
}

// ---------------------------------------------------------------------------------------------
// Captures, replayed through a miniature worker: control flows on port 21, every other TCP flow
// matched against the expectation table (held and retried while unmatched, as a worker may).

#[derive(Default)]
struct MiniWorker {
    table: ExpectationTable,
    sink: MemorySink,
    keys: HashMap<usize, FlowKey>,
    control: HashMap<usize, FtpState>,
    data: HashMap<usize, FtpDataState>,
    unmatched: HashMap<usize, Vec<(Direction, Step, Timestamp)>>,
    /// (connection, event), in emission order.
    events: Vec<(usize, AppEvent)>,
}

impl MiniWorker {
    fn run(path: &std::path::Path) -> MiniWorker {
        let mut w = MiniWorker {
            sink: MemorySink::new(64 << 20),
            ..Default::default()
        };
        for ev in test_pcap::replay(path) {
            match ev {
                Event::Open { conn, key, ts } => {
                    w.keys.insert(conn, key);
                    if key.dst_port == 21 {
                        w.control.insert(conn, FtpState::new());
                    } else if let Some((_, exp)) = w.table.match_flow(&key, conn as u64, ts) {
                        w.data.insert(conn, FtpDataState::new(exp));
                    } else {
                        w.unmatched.insert(conn, Vec::new());
                    }
                }
                Event::Step {
                    conn,
                    dir,
                    step,
                    ts,
                } => w.step(conn, dir, step, ts),
            }
        }
        let mut out = Emit::default();
        for d in w.data.values_mut() {
            d.finish(Timestamp::ZERO, &mut w.sink, &mut out);
        }
        w.events
            .extend(out.events.into_iter().map(|e| (usize::MAX, e)));
        w
    }

    fn step(&mut self, conn: usize, dir: Direction, step: Step, ts: Timestamp) {
        let mut out = Emit::default();
        let ev = match &step {
            Step::Data(d) => StreamEvent::Data(d),
            Step::Gap(n) => StreamEvent::Gap { len: *n },
            Step::End => StreamEvent::End,
        };
        if let Some(c) = self.control.get_mut(&conn) {
            c.on_stream(dir, ev, ts, &mut out);
            let exps = c.take_expectations();
            let key = self.keys[&conn];
            for e in exps {
                if let Some(flow) = self.table.offer(conn as u64, &key, e.clone(), ts)
                    && let Some(d) = self.data.get_mut(&(flow as usize))
                {
                    d.update(e, ts, &mut self.sink, &mut out);
                }
            }
            // Flows waiting for an expectation get another chance.
            let waiting: Vec<usize> = self.unmatched.keys().copied().collect();
            for w in waiting {
                if let Some((_, exp)) = self.table.match_flow(&self.keys[&w], w as u64, ts) {
                    let mut d = FtpDataState::new(exp);
                    for (dir, step, ts) in self.unmatched.remove(&w).unwrap_or_default() {
                        let ev = match &step {
                            Step::Data(b) => StreamEvent::Data(b),
                            Step::Gap(n) => StreamEvent::Gap { len: *n },
                            Step::End => StreamEvent::End,
                        };
                        d.on_stream(dir, ev, ts, &mut self.sink, &mut out);
                    }
                    self.data.insert(w, d);
                }
            }
        } else if let Some(d) = self.data.get_mut(&conn) {
            d.on_stream(dir, ev, ts, &mut self.sink, &mut out);
        } else if let Some(held) = self.unmatched.get_mut(&conn) {
            held.push((dir, step.clone(), ts));
        }
        self.events
            .extend(out.events.into_iter().map(|e| (conn, e)));
    }

    fn of_type(&self, t: &str) -> Vec<&serde_json::Map<String, Value>> {
        self.events
            .iter()
            .filter(|(_, e)| e.event_type == t)
            .map(|(_, e)| &e.fields)
            .collect()
    }

    fn fileinfos(&self) -> Vec<(&FlowKey, &Value)> {
        self.events
            .iter()
            .filter(|(_, e)| e.event_type == "fileinfo")
            .map(|(c, e)| (&self.keys[c], &e.fields["fileinfo"]))
            .collect()
    }
}

#[test]
fn corpus_ftp_command_data_01_exposes_command_buffers() {
    let w = MiniWorker::run(&test_pcap::corpus("ftp-command-data-01/input.pcap"));
    let txs: Vec<(Vec<u8>, Vec<u8>)> = w
        .control
        .values()
        .flat_map(|c| c.transactions())
        .filter_map(|t| Some((t.command()?.to_vec(), t.command_data().to_vec())))
        .collect();
    for (cmd, data) in [
        ("USER", "anonymous"),
        ("PASS", "anonymous"),
        ("RETR", "temp.txt"),
        ("PORT", "192,168,0,13,234,10"),
    ] {
        let n = txs
            .iter()
            .filter(|(c, d)| c == cmd.as_bytes() && d == data.as_bytes())
            .count();
        assert_eq!(n, 1, "{cmd} {data}");
    }
    let recs = w.of_type("ftp");
    let port = recs
        .iter()
        .find(|r| r["ftp"]["command"] == "PORT")
        .expect("PORT record");
    assert_eq!(port["ftp"]["dynamic_port"], 59914);
    assert_eq!(port["ftp"]["mode"], "active");
    assert_eq!(
        port["ftp"]["reply"],
        json!(["PORT command successful. Consider using PASV."])
    );
}

#[test]
fn corpus_output_eve_ftp_data_logs_both_transfers() {
    let w = MiniWorker::run(&test_pcap::corpus("output-eve-ftp-data/input.pcap"));
    let recs = w.of_type("ftp_data");
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs.iter()
            .filter(|r| r["ftp_data"] == json!({"filename": "temp.txt", "command": "RETR"}))
            .count(),
        1
    );
    assert_eq!(
        recs.iter()
            .filter(|r| r["ftp_data"] == json!({"command": "NLST"}))
            .count(),
        1
    );
}

#[test]
fn corpus_bug_4877_active_mode_files_in_both_directions() {
    let w = MiniWorker::run(&test_pcap::corpus("bug-4877/input.pcap"));
    let files = w.fileinfos();
    assert_eq!(files.len(), 4);
    let expect = [
        (
            42987,
            "test.pdf",
            "7d400735ff3054837da5d92a10ad2faa8b6825f100dc167a6b008e753015b382",
            118196,
        ),
        (
            52407,
            "test.pdf",
            "7d400735ff3054837da5d92a10ad2faa8b6825f100dc167a6b008e753015b382",
            118196,
        ),
        (
            48902,
            "notepad.exe",
            "fefeac4c10bbe237cc6c861229ecaacbd2a366ac4fbd04a3862b62bd7a778093",
            69120,
        ),
        (
            57829,
            "notepad.exe",
            "fefeac4c10bbe237cc6c861229ecaacbd2a366ac4fbd04a3862b62bd7a778093",
            69120,
        ),
    ];
    for (port, name, sha, size) in expect {
        let (_, f) = files
            .iter()
            .find(|(k, _)| k.dst_port == port)
            .unwrap_or_else(|| panic!("file on {port}"));
        assert_eq!(f["filename"], name);
        assert_eq!(f["sha256"], sha);
        assert_eq!(f["size"], size);
        assert_eq!(f["state"], "CLOSED");
        assert_eq!(f["gaps"], false);
        assert_eq!(f["tx_id"], 0);
        // Active mode: the server connects from port 20.
        assert_eq!(
            files
                .iter()
                .find(|(k, _)| k.dst_port == port)
                .map(|(k, _)| k.src_port),
            Some(20)
        );
    }
}

#[test]
fn corpus_filestore_ftp_active_mode_stores_one_file() {
    let w = MiniWorker::run(&test_pcap::corpus(
        "filestore-ftp-active-mode/ftp-active-mode.pcap",
    ));
    assert_eq!(w.fileinfos().len(), 1);
    assert_eq!(w.sink.stored.len(), 1);
    assert_eq!(w.fileinfos()[0].1["state"], "CLOSED");
}

#[test]
fn corpus_filestore_stream_depth_file_is_whole() {
    let w = MiniWorker::run(&test_pcap::corpus("filestore-v2.9-stream-depth/input.pcap"));
    let files = w.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1["state"], "CLOSED");
    assert_eq!(files[0].1["size"], 157548);
}

#[test]
fn project_capture_every_transfer_is_byte_identical() {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(test_pcap::project_pcap("ftp.manifest.json")).expect("manifest"),
    )
    .expect("json");
    let w = MiniWorker::run(&test_pcap::project_pcap("ftp.pcap"));
    let files = w.fileinfos();
    let items = manifest["items"].as_array().expect("items");
    assert_eq!(files.len(), items.len());
    for item in items {
        let sha = item["sha256"].as_str().expect("sha");
        let (key, f) = files
            .iter()
            .find(|(_, f)| f["sha256"] == sha)
            .unwrap_or_else(|| panic!("no file for {}", item["how"]));
        let stored = w
            .sink
            .stored
            .iter()
            .find(|(h, _)| hex(h) == sha)
            .expect("stored");
        assert_eq!(stored.1.len() as u64, item["size"].as_u64().expect("size"));
        if item["kind"] == "listing" {
            assert_eq!(f["filename"], "");
        } else {
            assert_eq!(f["filename"], item["name"]);
        }
        let partial = item["kind"] == "partial";
        assert_eq!(
            f["state"],
            if partial { "TRUNCATED" } else { "CLOSED" },
            "{}",
            item["how"]
        );
        // Who connected: the client in PASV/EPSV, the server in PORT/EPRT.
        let client_connects = matches!(item["data_mode"].as_str(), Some("PASV" | "EPSV"));
        let server: IpAddr = manifest["server_ip"]
            .as_str()
            .expect("ip")
            .parse()
            .expect("ip");
        assert_eq!(key.dst_ip == server, client_connects, "{}", item["how"]);
    }
    // The refused RETR left no file and no ftp_data record.
    assert_eq!(w.of_type("ftp_data").len(), items.len());
    let refused = w.of_type("ftp");
    let r = refused
        .iter()
        .find(|r| r["ftp"]["command_data"] == "no-such-file.bin")
        .expect("550 record");
    assert_eq!(r["ftp"]["completion_code"], json!(["550"]));
}

/// Throughput of an FTP data connection into the file pipeline (64 MiB in 1448-byte segments)
/// and of the control parser on a long session. Prints figures. Run with `--ignored`.
#[test]
#[ignore]
fn measure_throughput() {
    let exp = Expectation {
        id: 0,
        mode: DataMode::Pasv,
        port: 1025,
        announced_ip: None,
        transfer: Some(Transfer {
            command: TransferCommand::Retr,
            argument: b"f".to_vec(),
            rest: 0,
            control_tx_id: 0,
        }),
        withdrawn: false,
        announced: TS,
    };
    let mut data = FtpDataState::new(exp);
    let mut sink = MemorySink::new(0);
    let mut out = Emit::default();
    let chunk = vec![0x5au8; 1448];
    let start = std::time::Instant::now();
    for _ in 0..(64 << 20) / 1448 {
        data.on_stream(C, StreamEvent::Data(&chunk), TS, &mut sink, &mut out);
    }
    data.on_stream(C, StreamEvent::End, TS, &mut sink, &mut out);
    eprintln!(
        "ftp-data: {:.0} MiB/s (hashing included)",
        64.0 / start.elapsed().as_secs_f64()
    );

    let mut s = FtpState::new();
    let mut out = Emit::default();
    let start = std::time::Instant::now();
    let n = 200_000;
    for _ in 0..n {
        s.on_stream(
            S,
            StreamEvent::Data(b"SIZE docs/some-file-name.zip\r\n"),
            TS,
            &mut out,
        );
        s.on_stream(C, StreamEvent::Data(b"213 41792\r\n"), TS, &mut out);
        s.take_finished();
        out.events.clear();
    }
    eprintln!(
        "ftp control: {:.0} commands/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

#[test]
fn a_data_flow_seen_before_the_pasv_reply_matches_on_retry() {
    // The worker holds an unmatched flow's first bytes and asks again after new offers.
    let control_key = key([10, 0, 0, 2], 40000, [10, 0, 0, 1], 21);
    let data_key = key([10, 0, 0, 2], 40001, [10, 0, 0, 1], 30002);
    let mut table = ExpectationTable::new();
    assert!(table.match_flow(&data_key, 2, TS).is_none());
    let held: Vec<&[u8]> = vec![b"early ", b"bytes"];

    let (mut s, _) = control(&[
        (S, b"PASV\r\n"),
        (C, b"227 Entering Passive Mode (10,0,0,1,117,50).\r\n"),
        (S, b"RETR early.txt\r\n"),
    ]);
    for e in s.take_expectations() {
        assert_eq!(table.offer(1, &control_key, e, TS), None);
    }
    let (control_id, exp) = table.match_flow(&data_key, 2, TS).expect("matches now");
    assert_eq!(control_id, 1);
    assert!(
        table.is_empty(),
        "a matched expectation with its transfer is used up"
    );
    let mut data = FtpDataState::new(exp);
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    for b in held {
        data.on_stream(C, StreamEvent::Data(b), TS, &mut sink, &mut out);
    }
    data.on_stream(C, StreamEvent::End, TS, &mut sink, &mut out);
    let info = &out
        .events
        .iter()
        .find(|e| e.event_type == "fileinfo")
        .expect("fileinfo")
        .fields;
    assert_eq!(info["fileinfo"]["filename"], "early.txt");
    assert_eq!(sink.stored[0].1, b"early bytes");
    // Another flow to the same port is not matched twice.
    assert!(
        table
            .match_flow(&key([10, 0, 0, 2], 40002, [10, 0, 0, 1], 30002), 3, TS)
            .is_none()
    );
}

fn retr_over_port() -> Expectation {
    Expectation {
        id: 0,
        mode: DataMode::Port,
        port: 1025,
        announced_ip: None,
        transfer: Some(Transfer {
            command: TransferCommand::Retr,
            argument: b"f".to_vec(),
            rest: 0,
            control_tx_id: 0,
        }),
        withdrawn: false,
        announced: TS,
    }
}

#[test]
fn a_control_reply_without_a_code_is_one_parser_error() {
    let junk: &[u8] = b"\x00\x01 not a reply\r\n";
    let (_, out) = control(&[
        (C, b"220 (vsFTPd 2.3.5)\r\n"),
        (S, b"USER alice\r\n"),
        (C, junk),
        (S, b"PASS secret\r\n"),
        (C, junk),
    ]);
    assert_eq!(out.exceptions, [(TS, ParserException::Error)]);
}

#[test]
fn a_well_formed_control_session_with_a_gap_and_long_lines_raises_no_parser_error() {
    let long = [b'a'; 3 * MAX_LINE_BYTES];
    let mut s = FtpState::new();
    let mut out = Emit::default();
    for (dir, bytes) in [
        (C, &b"220 (vsFTPd 2.3.5)\r\n"[..]),
        (S, b"USER "),
        (S, &long[..]),
        (S, b"\r\n"),
        (C, b"331 Please specify the password.\r\n"),
        (S, b"PASS secret\r\n"),
    ] {
        s.on_stream(dir, StreamEvent::Data(bytes), TS, &mut out);
    }
    s.on_stream(C, StreamEvent::Gap { len: 5 }, TS, &mut out);
    for (dir, bytes) in [(C, &b"ssful.\r\n"[..]), (S, b"QUIT\r\n"), (C, b"221 Goodbye.\r\n")] {
        s.on_stream(dir, StreamEvent::Data(bytes), TS, &mut out);
    }
    assert_eq!(ftp_records(&out).len(), 3);
    assert!(out.exceptions.is_empty());
}

#[test]
fn data_against_the_transfer_direction_is_one_parser_error() {
    let mut data = FtpDataState::new(retr_over_port());
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    // Active RETR: the file flows to-server; the other side has nothing to send.
    data.on_stream(S, StreamEvent::Data(b"abc"), TS, &mut sink, &mut out);
    assert!(out.exceptions.is_empty());
    data.on_stream(C, StreamEvent::Data(b"xyz"), TS, &mut sink, &mut out);
    data.on_stream(C, StreamEvent::Data(b"xyz"), TS, &mut sink, &mut out);
    assert_eq!(out.exceptions, [(TS, ParserException::Error)]);
    data.on_stream(S, StreamEvent::End, TS, &mut sink, &mut out);
    assert_eq!(sink.stored[0].1, b"abc");
}

#[test]
fn a_whole_data_transfer_raises_no_parser_error() {
    let mut data = FtpDataState::new(retr_over_port());
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    data.on_stream(S, StreamEvent::Data(b"abc"), TS, &mut sink, &mut out);
    data.on_stream(C, StreamEvent::Data(b""), TS, &mut sink, &mut out);
    data.on_stream(S, StreamEvent::End, TS, &mut sink, &mut out);
    assert_eq!(out.events.len(), 2);
    assert!(out.exceptions.is_empty());
}
