use proptest::prelude::*;
use serde_json::{Value, json};
use weir_core::{Direction, StreamEvent, Timestamp};

use super::*;
use crate::emit::Emit;
use crate::files::MemorySink;
use crate::ftp::test_pcap::{self, Event, Step};

const TS: Timestamp = Timestamp::ZERO;
const S: Direction = Direction::ToServer;
const C: Direction = Direction::ToClient;

const FID: [u8; 16] = [0x35, 0x01, 0, 0, 0, 0, 0, 0, 0x69, 0, 0, 0, 0, 0, 0, 0];

/// An SMB2 header ([MS-SMB2] 2.2.1.2, sync form).
fn header(command: u16, message_id: u64, response: bool, status: u32, tree_id: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(b"\xfeSMB");
    h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    h.extend_from_slice(&1u16.to_le_bytes()); // CreditCharge
    h.extend_from_slice(&status.to_le_bytes()); // Status
    h.extend_from_slice(&command.to_le_bytes()); // Command
    h.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    h.extend_from_slice(&u32::from(response).to_le_bytes()); // Flags
    h.extend_from_slice(&0u32.to_le_bytes()); // NextCommand
    h.extend_from_slice(&message_id.to_le_bytes()); // MessageId
    h.extend_from_slice(&0u32.to_le_bytes()); // Reserved
    h.extend_from_slice(&tree_id.to_le_bytes()); // TreeId
    h.extend_from_slice(&0x40u64.to_le_bytes()); // SessionId
    h.extend_from_slice(&[0u8; 16]); // Signature
    h
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// One NBSS record holding `msgs` as a compound chain (each padded to 8 bytes).
fn record(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let mut m = m.clone();
        if i + 1 < msgs.len() {
            while m.len() % 8 != 0 {
                m.push(0);
            }
            let next = m.len() as u32;
            m[20..24].copy_from_slice(&next.to_le_bytes());
        }
        body.extend_from_slice(&m);
    }
    let mut r = vec![0u8];
    r.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    r.extend_from_slice(&body);
    r
}

fn negotiate_req(id: u64) -> Vec<u8> {
    let mut m = header(0, id, false, 0, 0);
    m.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&2u16.to_le_bytes()); // DialectCount
    m.extend_from_slice(&[0u8; 32]); // SecurityMode .. ClientStartTime
    m.extend_from_slice(&0x0210u16.to_le_bytes());
    m.extend_from_slice(&0x0311u16.to_le_bytes());
    m
}

fn negotiate_resp(id: u64) -> Vec<u8> {
    let mut m = header(0, id, true, 0, 0);
    m.extend_from_slice(&65u16.to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode
    m.extend_from_slice(&0x0311u16.to_le_bytes()); // DialectRevision
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&FID); // ServerGuid
    m.extend_from_slice(&[0u8; 40]);
    m
}

fn tree_connect_req(id: u64, path: &str) -> Vec<u8> {
    let mut m = header(3, id, false, 0, 0);
    let p = utf16(path);
    m.extend_from_slice(&9u16.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&72u16.to_le_bytes()); // PathOffset
    m.extend_from_slice(&(p.len() as u16).to_le_bytes());
    m.extend_from_slice(&p);
    m
}

fn tree_connect_resp(id: u64, tree: u32) -> Vec<u8> {
    let mut m = header(3, id, true, 0, tree);
    m.extend_from_slice(&16u16.to_le_bytes());
    m.push(1); // ShareType: disk
    m.extend_from_slice(&[0u8; 13]);
    m
}

fn create_req(id: u64, tree: u32, name: &str) -> Vec<u8> {
    let mut m = header(5, id, false, 0, tree);
    let n = utf16(name);
    m.extend_from_slice(&57u16.to_le_bytes());
    m.extend_from_slice(&[0u8; 34]); // SecurityFlags .. ShareAccess
    m.extend_from_slice(&3u32.to_le_bytes()); // CreateDisposition: FILE_OPEN_IF
    m.extend_from_slice(&0u32.to_le_bytes()); // CreateOptions
    m.extend_from_slice(&120u16.to_le_bytes()); // NameOffset
    m.extend_from_slice(&(n.len() as u16).to_le_bytes());
    m.extend_from_slice(&[0u8; 8]); // CreateContexts
    m.extend_from_slice(&n);
    m
}

fn create_resp(id: u64, tree: u32, file_id: [u8; 16], end_of_file: u64) -> Vec<u8> {
    let mut m = header(5, id, true, 0, tree);
    m.extend_from_slice(&89u16.to_le_bytes());
    m.extend_from_slice(&[0u8; 46]); // OplockLevel .. AllocationSize
    m.extend_from_slice(&end_of_file.to_le_bytes()); // EndofFile (body offset 48)
    m.extend_from_slice(&[0u8; 8]); // FileAttributes, Reserved2
    m.extend_from_slice(&file_id); // FileId (body offset 64)
    m.extend_from_slice(&[0u8; 8]);
    m
}

fn write_req(id: u64, tree: u32, file_id: [u8; 16], offset: u64, data: &[u8]) -> Vec<u8> {
    let mut m = header(9, id, false, 0, tree);
    m.extend_from_slice(&49u16.to_le_bytes());
    m.extend_from_slice(&112u16.to_le_bytes()); // DataOffset
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
    m.extend_from_slice(&file_id);
    m.extend_from_slice(&[0u8; 16]); // Channel .. Flags
    m.extend_from_slice(data);
    m
}

fn read_req(id: u64, tree: u32, file_id: [u8; 16], offset: u64, len: u32) -> Vec<u8> {
    let mut m = header(8, id, false, 0, tree);
    m.extend_from_slice(&49u16.to_le_bytes());
    m.extend_from_slice(&[0u8; 2]);
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
    m.extend_from_slice(&file_id);
    m.extend_from_slice(&[0u8; 17]);
    m
}

fn read_resp(id: u64, tree: u32, data: &[u8]) -> Vec<u8> {
    let mut m = header(8, id, true, 0, tree);
    m.extend_from_slice(&17u16.to_le_bytes());
    m.push(80); // DataOffset
    m.push(0);
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0u8; 8]);
    m.extend_from_slice(data);
    m
}

fn close_req(id: u64, tree: u32, file_id: [u8; 16]) -> Vec<u8> {
    let mut m = header(6, id, false, 0, tree);
    m.extend_from_slice(&24u16.to_le_bytes());
    m.extend_from_slice(&[0u8; 6]);
    m.extend_from_slice(&file_id);
    m
}

fn close_resp(id: u64, tree: u32) -> Vec<u8> {
    let mut m = header(6, id, true, 0, tree);
    m.extend_from_slice(&60u16.to_le_bytes());
    m.extend_from_slice(&[0u8; 58]);
    m
}

struct Run {
    state: SmbState,
    sink: MemorySink,
    out: Emit,
}

impl Run {
    fn new(cfg: &SmbConfig) -> Run {
        Run {
            state: SmbState::new(cfg),
            sink: MemorySink::new(64 << 20),
            out: Emit::default(),
        }
    }
    fn feed(&mut self, dir: Direction, bytes: &[u8]) {
        self.state.on_stream(
            dir,
            StreamEvent::Data(bytes),
            TS,
            &mut self.sink,
            &mut self.out,
        );
    }
    fn feed_in(&mut self, dir: Direction, bytes: &[u8], chunk: usize) {
        for c in bytes.chunks(chunk) {
            self.feed(dir, c);
        }
    }
    fn of_type(&self, t: &str) -> Vec<&serde_json::Map<String, Value>> {
        self.out
            .events
            .iter()
            .filter(|e| e.event_type == t)
            .map(|e| &e.fields)
            .collect()
    }
}

fn session(run: &mut Run) {
    run.feed(S, &record(&[negotiate_req(0)]));
    run.feed(C, &record(&[negotiate_resp(0)]));
    run.feed(S, &record(&[tree_connect_req(1, "\\\\srv\\share")]));
    run.feed(C, &record(&[tree_connect_resp(1, 5)]));
}

#[test]
fn a_session_writes_a_file_out_of_order_and_logs_suricata_records() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    run.feed(S, &record(&[create_req(2, 5, "docs\\a.txt")]));
    run.feed(C, &record(&[create_resp(2, 5, FID, 0)]));
    run.feed(S, &record(&[write_req(3, 5, FID, 6, b"world")]));
    run.feed(S, &record(&[write_req(4, 5, FID, 0, b"hello ")]));
    run.feed(S, &record(&[close_req(5, 5, FID)]));
    run.feed(C, &record(&[close_resp(5, 5)]));

    let smb = run.of_type("smb");
    let neg = &smb[0]["smb"];
    assert_eq!(
        *neg,
        json!({"id": 1, "dialect": "3.11", "command": "SMB2_COMMAND_NEGOTIATE_PROTOCOL", "status": "STATUS_SUCCESS",
               "status_code": "0x0", "session_id": 64, "tree_id": 0, "client_dialects": ["2.10", "3.11"],
               "server_guid": "00000135-0000-0000-6900-000000000000"})
    );
    let tree = &smb[1]["smb"];
    assert_eq!(tree["share"], "\\\\srv\\share");
    assert_eq!(tree["share_type"], "FILE");
    assert_eq!(tree["tree_id"], 5);
    let create = &smb[2]["smb"];
    assert_eq!(create["command"], "SMB2_COMMAND_CREATE");
    assert_eq!(create["filename"], "docs\\a.txt");
    assert_eq!(create["disposition"], "FILE_OPEN_IF");
    assert_eq!(create["share"], "\\\\srv\\share");
    assert_eq!(create["fuid"], "00000135-0000-0000-6900-000000000000");

    let files = run.of_type("fileinfo");
    assert_eq!(files.len(), 1);
    let f = &files[0]["fileinfo"];
    assert_eq!(f["filename"], "docs\\a.txt");
    assert_eq!(f["state"], "CLOSED");
    assert_eq!(f["size"], 11);
    assert_eq!(files[0]["smb"]["command"], "SMB2_COMMAND_WRITE");
    assert_eq!(files[0]["smb"]["share"], "\\\\srv\\share");
    assert_eq!(run.sink.stored[0].1, b"hello world");
    // No per-chunk records: the writes are one file transaction.
    assert_eq!(
        smb.iter()
            .filter(|r| r["smb"]["command"] == "SMB2_COMMAND_WRITE")
            .count(),
        1
    );
    assert_eq!(
        smb.iter()
            .filter(|r| r["smb"]["command"] == "SMB2_COMMAND_CLOSE")
            .count(),
        1
    );
}

#[test]
fn a_large_multi_credit_read_streams_through_bounded_buffers() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    run.feed(S, &record(&[create_req(2, 5, "big.bin")]));
    run.feed(C, &record(&[create_resp(2, 5, FID, content.len() as u64)]));
    run.feed(S, &record(&[read_req(3, 5, FID, 0, 300_000)]));
    let resp = record(&[read_resp(3, 5, &content)]);
    assert!(resp.len() > MAX_BUFFERED_RECORD_BYTES);
    for c in resp.chunks(1460) {
        run.feed(C, c);
        assert!(run.state.buffered() <= MAX_BUFFERED_RECORD_BYTES);
    }
    // The framing is still in step: the CLOSE after it is parsed.
    run.feed(S, &record(&[close_req(4, 5, FID)]));
    let files = run.of_type("fileinfo");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["fileinfo"]["state"], "CLOSED");
    assert_eq!(files[0]["fileinfo"]["size"], 300_000);
    assert_eq!(files[0]["smb"]["command"], "SMB2_COMMAND_READ");
    assert_eq!(run.sink.stored[0].1, content);
}

#[test]
fn a_gap_inside_a_streamed_read_truncates_the_file_and_keeps_framing() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    let content = vec![b'x'; 200_000];
    run.feed(S, &record(&[create_req(2, 5, "f")]));
    run.feed(C, &record(&[create_resp(2, 5, FID, 200_000)]));
    run.feed(S, &record(&[read_req(3, 5, FID, 0, 200_000)]));
    let resp = record(&[read_resp(3, 5, &content)]);
    run.feed(C, &resp[..50_000]);
    run.state.on_stream(
        C,
        StreamEvent::Gap { len: 10_000 },
        TS,
        &mut run.sink,
        &mut run.out,
    );
    run.feed(C, &resp[60_000..]);
    run.feed(S, &record(&[close_req(4, 5, FID)]));
    let f = &run.of_type("fileinfo")[0]["fileinfo"];
    assert_eq!(f["state"], "TRUNCATED");
    assert_eq!(f["gaps"], true);
    assert_eq!(f["size"], 200_000);
    assert_eq!(run.sink.stored[0].1.len(), 190_000);
}

#[test]
fn compound_requests_with_related_file_ids_are_followed() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    let related = |mut m: Vec<u8>, response: bool| {
        let flags = wire::FLAG_RELATED | if response { wire::FLAG_RESPONSE } else { 0 };
        m[16..20].copy_from_slice(&flags.to_le_bytes());
        m
    };
    // CREATE + READ + CLOSE in one request, the last two on "the file just opened".
    run.feed(
        S,
        &record(&[
            create_req(2, 5, "c.txt"),
            related(read_req(3, 5, [0xff; 16], 0, 4), false),
            related(close_req(4, 5, [0xff; 16]), false),
        ]),
    );
    run.feed(
        C,
        &record(&[
            create_resp(2, 5, FID, 4),
            related(read_resp(3, 5, b"data"), true),
            related(close_resp(4, 5), true),
        ]),
    );
    let files = run.of_type("fileinfo");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["fileinfo"]["filename"], "c.txt");
    assert_eq!(files[0]["fileinfo"]["state"], "CLOSED");
    assert_eq!(run.sink.stored[0].1, b"data");
    assert!(run.state.handles.is_empty());
}

#[test]
fn compound_responses_are_split_on_next_command() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    run.feed(
        S,
        &record(&[
            create_req(2, 5, "x.txt"),
            read_req(3, 5, FID, 0, 3),
            close_req(4, 5, FID),
        ]),
    );
    run.feed(C, &record(&[create_resp(2, 5, FID, 3)]));
    run.feed(C, &record(&[read_resp(3, 5, b"abc"), close_resp(4, 5)]));
    let smb = run.of_type("smb");
    let commands: Vec<&str> = smb
        .iter()
        .filter_map(|r| r["smb"]["command"].as_str())
        .collect();
    assert_eq!(
        commands,
        [
            "SMB2_COMMAND_NEGOTIATE_PROTOCOL",
            "SMB2_COMMAND_TREE_CONNECT",
            "SMB2_COMMAND_CREATE",
            "SMB2_COMMAND_CLOSE"
        ]
    );
    assert_eq!(run.state.anomaly_count("smb.invalid_next_command"), 0);
}

#[test]
fn encrypted_records_are_skipped_whole() {
    let mut run = Run::new(&SmbConfig::default());
    let mut transform = b"\xfdSMB".to_vec();
    transform.extend_from_slice(&[0xaa; 48]); // Signature, Nonce, sizes, flags, SessionId
    transform.extend_from_slice(&[0x55; 500]); // ciphertext
    let mut rec = vec![0u8];
    rec.extend_from_slice(&(transform.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&transform);
    run.feed_in(S, &rec, 100);
    run.feed(S, &record(&[negotiate_req(0)]));
    run.feed(C, &record(&[negotiate_resp(0)]));
    assert_eq!(run.state.anomaly_count("smb.encrypted"), 1);
    assert_eq!(run.state.dialect(), Some(0x0311));
    assert_eq!(run.of_type("smb").len(), 1);
}

#[test]
fn smb1_negotiate_is_recognised() {
    let mut run = Run::new(&SmbConfig::default());
    let mut m = b"\xffSMB".to_vec();
    m.push(0x72); // Command: NEGOTIATE
    m.extend_from_slice(&[0u8; 4]); // Status
    m.push(0x18); // Flags: request
    m.extend_from_slice(&[0u8; 22]); // Flags2 .. MID
    m.push(0); // WordCount
    let dialects = b"\x02NT LM 0.12\x00\x02SMB 2.002\x00\x02SMB 2.???\x00";
    m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    m.extend_from_slice(dialects);
    let mut rec = vec![0u8];
    rec.extend_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&m);
    assert_eq!(probe(&rec), Probe::Smb);
    run.feed(S, &rec);
    let smb = run.of_type("smb");
    assert_eq!(smb[0]["smb"]["command"], "SMB1_COMMAND_NEGOTIATE_PROTOCOL");
    assert_eq!(
        smb[0]["smb"]["client_dialects"],
        json!(["NT LM 0.12", "SMB 2.002", "SMB 2.???"])
    );
}

/// An SMB1 message: header with `command`, unicode flag, then words and bytes.
fn smb1(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut m = b"\xffSMB".to_vec();
    m.push(command);
    m.extend_from_slice(&[0u8; 4]); // Status
    m.push(0x18); // Flags: request
    m.extend_from_slice(&0xc807u16.to_le_bytes()); // Flags2: unicode, NT status, ...
    m.extend_from_slice(&[0u8; 20]); // PIDHigh .. MID
    m.push((words.len() / 2) as u8);
    m.extend_from_slice(words);
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend_from_slice(bytes);
    let mut rec = vec![0u8];
    rec.extend_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&m);
    rec
}

#[test]
fn smb1_tree_connect_and_create_names_are_logged() {
    let mut run = Run::new(&SmbConfig::default());
    // TREE_CONNECT_ANDX: AndX(4), Flags(2), PasswordLength = 1; bytes: password, pad, path, service.
    let mut words = vec![0xff, 0, 0, 0, 0, 0];
    words.extend_from_slice(&1u16.to_le_bytes());
    let mut bytes = vec![0u8]; // password
    bytes.extend_from_slice(&utf16("\\\\SRV\\IPC$\0"));
    bytes.extend_from_slice(b"?????\0");
    run.feed(S, &smb1(0x75, &words, &bytes));
    // NT_CREATE_ANDX: 24 words, NameLength at word offset 5; the name follows one pad byte.
    let name = utf16("\\evil.exe\0");
    let mut words = vec![0xff, 0, 0, 0, 0];
    words.extend_from_slice(&(name.len() as u16).to_le_bytes());
    words.resize(48, 0);
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&name);
    run.feed(S, &smb1(0xa2, &words, &bytes));
    let smb = run.of_type("smb");
    assert_eq!(smb[0]["smb"]["command"], "SMB1_COMMAND_TREE_CONNECT_ANDX");
    assert_eq!(smb[0]["smb"]["share"], "\\\\SRV\\IPC$");
    assert_eq!(smb[1]["smb"]["command"], "SMB1_COMMAND_NT_CREATE_ANDX");
    assert_eq!(smb[1]["smb"]["filename"], "\\evil.exe");
}

#[test]
fn absurd_offsets_and_lengths_stay_bounded() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    run.feed(S, &record(&[create_req(2, 5, "evil")]));
    run.feed(C, &record(&[create_resp(2, 5, FID, 0)]));
    run.feed(S, &record(&[write_req(3, 5, FID, u64::MAX - 2, b"abcdef")]));
    run.feed(S, &record(&[write_req(4, 5, FID, 1 << 40, b"abcdef")]));
    // A WRITE that claims 4 GiB of data but carries 6 bytes.
    let mut w = write_req(5, 5, FID, 0, b"abcdef");
    w[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
    run.feed(S, &record(&[w]));
    // A record header claiming 16 MiB of garbage.
    run.feed(S, &[0, 0xff, 0xff, 0xff]);
    run.feed_in(S, &vec![0x41; 2 << 20], 65536);
    assert!(run.state.buffered() <= MAX_BUFFERED_RECORD_BYTES);
    assert_eq!(run.state.anomaly_count("smb.file_offset_too_far"), 2);
    assert!(run.state.anomaly_count("smb.write_request_too_large") == 1);
    run.state
        .on_stream(S, StreamEvent::End, TS, &mut run.sink, &mut run.out);
    run.state
        .on_stream(C, StreamEvent::End, TS, &mut run.sink, &mut run.out);
    assert!(
        run.of_type("fileinfo")
            .iter()
            .all(|f| f["fileinfo"]["state"] == "TRUNCATED")
    );
    assert!(run.out.anomalies.len() < 64);
}

#[test]
fn too_many_pending_requests_are_logged_and_dropped() {
    let mut run = Run::new(&SmbConfig::default());
    for id in 0..(MAX_PENDING_REQUESTS as u64 + 100) {
        let mut echo = header(13, id, false, 0, 0);
        echo.extend_from_slice(&[4, 0, 0, 0]);
        run.feed(S, &record(&[echo]));
    }
    assert_eq!(run.state.pending.len(), MAX_PENDING_REQUESTS);
    assert_eq!(
        run.state.anomaly_count("smb.too_many_pending_requests"),
        100
    );
    assert_eq!(run.of_type("smb").len(), 100);
}

#[test]
fn probe_wants_nbss_and_a_magic() {
    assert_eq!(probe(&[0, 0, 0, 0x40, 0xfe, b'S', b'M', b'B']), Probe::Smb);
    assert_eq!(probe(&[0, 0, 0, 0x40, 0xfe]), Probe::NeedMore);
    assert_eq!(probe(&[0, 0, 0, 0x40, b'G']), Probe::NoMatch);
    assert_eq!(probe(b"GET / HTTP/1.1"), Probe::NoMatch);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..400)), 0..30),
        gap in proptest::option::of(0u64..100_000),
    ) {
        let mut run = Run::new(&SmbConfig::default());
        for (i, (to_server, bytes)) in chunks.iter().enumerate() {
            let dir = if *to_server { S } else { C };
            // Valid-looking record starts make the fuzzing reach the SMB2 parsing.
            let mut rec = vec![0u8, 0, (bytes.len() >> 8) as u8, bytes.len() as u8];
            if i % 2 == 0 {
                rec.extend_from_slice(b"\xfeSMB");
            }
            rec.extend_from_slice(bytes);
            run.feed(dir, &rec);
            if let (Some(g), 3) = (gap, i) {
                run.state.on_stream(dir, StreamEvent::Gap { len: g }, TS, &mut run.sink, &mut run.out);
            }
            prop_assert!(run.state.buffered() <= MAX_BUFFERED_RECORD_BYTES);
            prop_assert!(run.state.held_out_of_order <= MAX_OUT_OF_ORDER_BYTES_PER_FLOW);
        }
        run.state.on_stream(S, StreamEvent::End, TS, &mut run.sink, &mut run.out);
        run.state.on_stream(C, StreamEvent::End, TS, &mut run.sink, &mut run.out);
        prop_assert!(run.state.pending.is_empty() && run.state.handles.is_empty());
        prop_assert_eq!(run.state.held_out_of_order, 0);
    }

    #[test]
    fn file_content_does_not_depend_on_segmentation(chunk in 1usize..3000) {
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        let mut run = Run::new(&SmbConfig::default());
        session(&mut run);
        run.feed(S, &record(&[create_req(2, 5, "seg.bin")]));
        run.feed(C, &record(&[create_resp(2, 5, FID, 20_000)]));
        let mut writes = Vec::new();
        for (i, part) in content.chunks(4096).enumerate() {
            writes.extend(record(&[write_req(3 + i as u64, 5, FID, (i * 4096) as u64, part)]));
        }
        run.feed_in(S, &writes, chunk);
        run.feed(S, &record(&[close_req(99, 5, FID)]));
        prop_assert_eq!(&run.sink.stored[0].1, &content);
    }
}

#[test]
fn corpus_smb_length_5786_write_shorter_than_its_record() {
    let events = test_pcap::replay(&test_pcap::corpus("smb-length-5786/input.pcap"));
    // As the test's arguments: app-layer.protocols.smb.max-write-size=200.
    let cfg = SmbConfig {
        max_write_size: 200,
        ..SmbConfig::default()
    };
    let mut run = Run::new(&cfg);
    let mut server_port = 0;
    for ev in events {
        match ev {
            Event::Open { key, .. } => server_port = key.dst_port,
            Event::Step { dir, step, ts, .. } => {
                let ev = match &step {
                    Step::Data(d) => StreamEvent::Data(d),
                    Step::Gap(n) => StreamEvent::Gap { len: *n },
                    Step::End => StreamEvent::End,
                };
                run.state
                    .on_stream(dir, ev, ts, &mut run.sink, &mut run.out);
            }
        }
    }
    assert_eq!(server_port, 445);
    let files = run.of_type("fileinfo");
    let toto: Vec<_> = files
        .iter()
        .filter(|f| f["fileinfo"]["filename"] == "toto.txt")
        .collect();
    assert_eq!(toto.len(), 1);
    assert_eq!(toto[0]["smb"]["command"], "SMB2_COMMAND_WRITE");
    assert_eq!(run.state.anomaly_count("smb.invalid_header"), 0);
    assert_eq!(run.state.dialect(), Some(0x0302));
    let shares: Vec<&Value> = run
        .of_type("smb")
        .iter()
        .filter_map(|r| r["smb"].get("share"))
        .collect();
    assert!(shares.iter().any(|s| *s == "\\\\127.0.0.1\\PUBLIC"));
}

#[test]
fn project_capture_every_file_is_byte_identical() {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(test_pcap::project_pcap("smb.manifest.json")).expect("manifest"),
    )
    .expect("json");
    let mut runs: Vec<Run> = Vec::new();
    let mut conn_of: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for ev in test_pcap::replay(&test_pcap::project_pcap("smb.pcap")) {
        match ev {
            Event::Open { conn, key, .. } => {
                assert_eq!(key.dst_port, 445);
                conn_of.insert(conn, runs.len());
                runs.push(Run::new(&SmbConfig::default()));
            }
            Event::Step {
                conn,
                dir,
                step,
                ts,
            } => {
                let run = &mut runs[conn_of[&conn]];
                let ev = match &step {
                    Step::Data(d) => StreamEvent::Data(d),
                    Step::Gap(n) => StreamEvent::Gap { len: *n },
                    Step::End => StreamEvent::End,
                };
                run.state
                    .on_stream(dir, ev, ts, &mut run.sink, &mut run.out);
            }
        }
    }
    assert_eq!(runs.len(), 5);
    let items = manifest["items"].as_array().expect("items");
    let files: Vec<(usize, &serde_json::Map<String, Value>)> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.of_type("fileinfo").into_iter().map(move |f| (i, f)))
        .collect();
    assert_eq!(files.len(), items.len());
    for item in items {
        let sha = item["sha256"].as_str().expect("sha");
        let (conn, f) = files
            .iter()
            .find(|(_, f)| f["fileinfo"]["sha256"] == sha)
            .unwrap_or_else(|| panic!("no file for {}", item["name"]));
        // Connections open in capture order: conn N of the manifest is runs[N - 1].
        assert_eq!(*conn as u64 + 1, item["conn"].as_u64().expect("conn"));
        assert_eq!(f["fileinfo"]["filename"], item["name"]);
        assert_eq!(f["fileinfo"]["state"], "CLOSED");
        assert_eq!(f["fileinfo"]["size"], item["size"]);
        assert_eq!(
            f["smb"]["command"],
            format!(
                "SMB2_COMMAND_{}",
                item["command"].as_str().expect("command")
            )
        );
        assert_eq!(f["smb"]["share"], "\\\\10.77.0.1\\files");
        let stored = runs[*conn]
            .sink
            .stored
            .iter()
            .find(|(h, _)| weir_core::hex(h) == sha)
            .expect("stored");
        assert_eq!(stored.1.len() as u64, item["size"].as_u64().expect("size"));
    }
    // The NTLMSSP AUTHENTICATE of every session names the account.
    for r in &runs[..4] {
        let users: Vec<&Value> = r
            .of_type("smb")
            .iter()
            .filter_map(|e| e["smb"].get("ntlmssp"))
            .map(|n| &n["user"])
            .collect();
        assert_eq!(users, [&json!("nobody")]);
    }
    let dialects: Vec<Option<u16>> = runs.iter().map(|r| r.state.dialect()).collect();
    assert_eq!(
        dialects,
        [
            Some(0x0311),
            Some(0x0210),
            Some(0x0300),
            Some(0x0202),
            Some(0x0311)
        ]
    );
    // The encrypted session: counted, skipped, nothing extracted, framing intact.
    let secret = &runs[4];
    assert!(secret.state.anomaly_count("smb.encrypted") > 0);
    assert!(secret.of_type("fileinfo").is_empty());
    for r in &runs {
        assert_eq!(r.state.anomaly_count("smb.invalid_header"), 0);
        assert_eq!(r.state.anomaly_count("smb.invalid_nbss_record"), 0);
    }
}

/// Throughput of READ extraction through streamed records (64 MiB in 8 MiB multi-credit reads,
/// 1448-byte segments). Prints a figure; asserts only the content. Run with `--ignored`.
#[test]
#[ignore]
fn measure_streamed_read_throughput() {
    let content: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut run = Run::new(&SmbConfig::default());
    run.sink = MemorySink::new(0);
    session(&mut run);
    run.feed(S, &record(&[create_req(2, 5, "big")]));
    run.feed(
        C,
        &record(&[create_resp(2, 5, FID, 8 * content.len() as u64)]),
    );
    let start = std::time::Instant::now();
    for i in 0..8u64 {
        run.feed(
            S,
            &record(&[read_req(
                3 + i,
                5,
                FID,
                i * content.len() as u64,
                content.len() as u32,
            )]),
        );
        let resp = record(&[read_resp(3 + i, 5, &content)]);
        for c in resp.chunks(1448) {
            run.feed(C, c);
        }
    }
    run.feed(S, &record(&[close_req(20, 5, FID)]));
    let secs = start.elapsed().as_secs_f64();
    let f = &run.of_type("fileinfo")[0]["fileinfo"];
    assert_eq!(f["size"], 64u64 << 20);
    assert_eq!(f["state"], "CLOSED");
    eprintln!(
        "smb streamed READ: {:.0} MiB/s (hashing included)",
        64.0 / secs
    );
}

#[test]
fn netbios_framing_it_cannot_follow_is_one_parser_error() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    assert!(run.out.exceptions.is_empty());
    // NBSS type 0x47 ("GET "...) is no session message: framing is lost.
    let junk = b"GET / HTTP/1.1\r\n\r\n";
    run.feed(S, junk);
    assert_eq!(run.out.exceptions, [(TS, ParserException::Error)]);
    // The parser resyncs on the next record start and meets the same junk again: still one.
    run.feed(S, &record(&[create_req(2, 5, "a.txt")]));
    run.feed(S, junk);
    run.feed(C, junk);
    assert_eq!(run.out.exceptions.len(), 1);
    assert_eq!(run.state.anomaly_count("smb.invalid_nbss_record"), 3);
}

#[test]
fn a_whole_session_and_a_gap_raise_no_parser_error() {
    let mut run = Run::new(&SmbConfig::default());
    session(&mut run);
    run.feed(S, &record(&[create_req(2, 5, "docs\\a.txt")]));
    run.feed(C, &record(&[create_resp(2, 5, FID, 0)]));
    run.feed(S, &record(&[write_req(3, 5, FID, 0, b"hello")]));
    run.state.on_stream(C, StreamEvent::Gap { len: 10 }, TS, &mut run.sink, &mut run.out);
    run.feed(S, &record(&[close_req(5, 5, FID)]));
    assert_eq!(run.of_type("fileinfo").len(), 1);
    assert!(run.out.exceptions.is_empty());
}
