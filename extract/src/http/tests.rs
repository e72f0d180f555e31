//! Parser tests: annotated byte streams for each behaviour and bad input, and suricata-verify
//! captures replayed through a small in-test TCP reassembler.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use weir_core::{hex, Artifact, Direction, FileState, SeenIn, StreamEvent, Timestamp};

use super::*;
use crate::emit::{Emit, ParserException};
use crate::files::{MemorySink, NullSink};

const TS: Timestamp = Timestamp::ZERO;
const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

/// One owned step of a reassembled stream.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Data(Direction, Vec<u8>),
    Gap(Direction, u64),
    End(Direction),
}

struct Run {
    out: Emit,
    sink: MemorySink,
    state: HttpState,
}

impl Run {
    fn events(&self, kind: &str) -> Vec<&Map<String, Value>> {
        self.out.events.iter().filter(|e| e.event_type == kind).map(|e| &e.fields).collect()
    }
    fn fileinfos(&self) -> Vec<&Value> {
        self.events("fileinfo").into_iter().map(|f| &f["fileinfo"]).collect()
    }
    fn urls(&self, seen: SeenIn) -> Vec<String> {
        self.out
            .artifacts
            .iter()
            .filter_map(|(_, _, a)| match a {
                Artifact::Url(u) if u.seen_in == seen => Some(u.url.clone()),
                _ => None,
            })
            .collect()
    }
    fn anomalies(&self, event: &str) -> usize {
        self.out.anomalies.iter().filter(|(_, a)| a.event == event).count()
    }
    fn exceptions(&self) -> Vec<ParserException> {
        self.out.exceptions.iter().map(|(_, e)| *e).collect()
    }
}

fn run_cfg(cfg: &HttpConfig, steps: &[Step]) -> Run {
    let mut state = HttpState::new(cfg);
    let mut sink = MemorySink::new(256 << 20);
    let mut out = Emit::default();
    for s in steps {
        match s {
            Step::Data(d, b) => state.on_stream(*d, StreamEvent::Data(b), TS, &mut sink, &mut out),
            Step::Gap(d, n) => state.on_stream(*d, StreamEvent::Gap { len: *n }, TS, &mut sink, &mut out),
            Step::End(d) => state.on_stream(*d, StreamEvent::End, TS, &mut sink, &mut out),
        }
    }
    Run { out, sink, state }
}

/// Request bytes, then response bytes, then both ends.
fn exchange(request: &[u8], response: &[u8]) -> Run {
    run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToServer, request.to_vec()),
            Step::Data(Direction::ToClient, response.to_vec()),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    )
}

fn stored(run: &Run, info: &Value) -> Vec<u8> {
    let sha = info["sha256"].as_str().expect("sha256");
    run.sink
        .stored
        .iter()
        .find(|(h, _)| hex(h) == sha)
        .map(|(_, b)| b.clone())
        .expect("file stored")
}

// ---------------------------------------------------------------------------------------------
// Byte-array tests

#[test]
fn simple_get_logs_http_url_and_file() {
    let run = exchange(
        b"GET /dl/file.bin?x=1 HTTP/1.1\r\n\
          Host: Example.com:8080\r\n\
          User-Agent: test-agent\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\
          Content-Type: application/octet-stream\r\n\
          Content-Length: 5\r\n\r\n\
          hello",
    );
    let http = run.events("http");
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["tx_id"], 0);
    let h = &http[0]["http"];
    assert_eq!(h["hostname"], "example.com");
    assert_eq!(h["http_port"], 8080);
    assert_eq!(h["url"], "/dl/file.bin?x=1");
    assert_eq!(h["http_user_agent"], "test-agent");
    assert_eq!(h["status"], 200);
    assert_eq!(h["length"], 5);
    assert_eq!(h["protocol"], "HTTP/1.1");
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "/dl/file.bin");
    assert_eq!(files[0]["state"], "CLOSED");
    assert_eq!(files[0]["size"], 5);
    assert!(run.out.exceptions.is_empty(), "{:?}", run.out.exceptions);
    assert_eq!(files[0]["stored"], true);
    assert_eq!(run.events("fileinfo")[0]["http"]["url"], "/dl/file.bin?x=1");
    assert_eq!(stored(&run, files[0]), b"hello");
    assert_eq!(run.urls(SeenIn::HttpUrl), vec!["http://example.com:8080/dl/file.bin?x=1".to_string()]);
}

#[test]
fn pipelined_requests_pair_with_responses_in_order() {
    let run = exchange(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none\
          HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    );
    let http = run.events("http");
    let pairs: Vec<(Value, Value)> = http.iter().map(|e| (e["http"]["url"].clone(), e["http"]["status"].clone())).collect();
    assert_eq!(
        pairs,
        vec![("/1".into(), 200.into()), ("/2".into(), 404.into()), ("/3".into(), 200.into())]
    );
    let files = run.fileinfos();
    assert_eq!(files.len(), 2, "HEAD has no body");
    assert_eq!(stored(&run, files[1]), b"two");
}

#[test]
fn continue_100_then_final_response() {
    let run = exchange(
        b"PUT /up.txt HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    let http = run.events("http");
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["http"]["status"], 201);
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "/up.txt");
    assert_eq!(stored(&run, files[0]), b"data");
}

#[test]
fn status_204_and_304_have_no_body() {
    let run = exchange(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(run.events("http").len(), 3);
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(stored(&run, files[0]), b"ok");
}

#[test]
fn connection_close_body_ends_at_end_of_stream() {
    let run = exchange(
        b"GET /x HTTP/1.0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n%PDF-1.4 body",
    );
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "report.pdf");
    assert_eq!(files[0]["state"], "CLOSED");
    assert_eq!(files[0]["magic"], "PDF document");
    assert_eq!(stored(&run, files[0]), b"%PDF-1.4 body");
}

#[test]
fn chunked_with_extensions_trailers_and_bare_lf() {
    let run = exchange(
        b"GET /c HTTP/1.1\nHost: h\n\n",
        b"HTTP/1.1 200 OK\n\
          Transfer-Encoding: gzip, chunked\n\n\
          4;name=value\nWiki\n\
          5 \r\npedia\r\n\
          0\r\nX-Trailer: t\r\n\r\n",
    );
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(stored(&run, files[0]), b"Wikipedia");
    assert_eq!(files[0]["state"], "CLOSED");
    let txs: Vec<&HttpTx> = run.state.transactions().collect();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].header(Direction::ToClient, "x-trailer"), Some(&b"t"[..]));
}

#[test]
fn folded_and_duplicate_headers_are_kept_in_order() {
    let run = exchange(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\nX-A: three\r\nCookie: s=1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let tx = run.state.transactions().next().expect("tx");
    let values: Vec<&[u8]> = tx.request_headers.iter().map(|h| h.value.as_slice()).collect();
    assert_eq!(values, vec![&b"h"[..], b"one two", b"three", b"s=1"]);
    assert_eq!(tx.cookie(), Some(&b"s=1"[..]));
    assert_eq!(tx.request_line, b"GET / HTTP/1.1");
    assert_eq!(tx.response_line, b"HTTP/1.1 200 OK");
    assert_eq!(tx.status_code_raw, b"200");
    assert_eq!(tx.status_message, b"OK");
    assert!(tx.request_headers_raw.starts_with(b"Host: h\r\n") && tx.request_headers_raw.ends_with(b"\r\n\r\n"));
}

#[test]
fn uri_with_spaces_and_absolute_form() {
    let run = exchange(
        b"GET /a b/c.txt HTTP/1.1\r\nHost: h\r\n\r\nGET http://Other.example:81/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n",
        b"",
    );
    let txs: Vec<&HttpTx> = run.state.transactions().collect();
    assert_eq!(txs[0].uri_raw, b"/a b/c.txt");
    assert_eq!(txs[1].host(), Some(&b"Other.example:81"[..]));
    assert_eq!(
        run.urls(SeenIn::HttpUrl),
        vec!["http://h/a b/c.txt".to_string(), "http://Other.example:81/p?q".to_string()]
    );
    // No responses: both logged at the end of the flow.
    assert_eq!(run.events("http").len(), 2);
}

#[test]
fn redirect_targets_are_url_artifacts() {
    let run = exchange(
        b"GET /dir/page?x HTTP/1.1\r\nHost: h.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: next.html\r\nContent-Length: 0\r\n\r\n\
          HTTP/1.1 301 Moved\r\nLocation: https://x.example/\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        run.urls(SeenIn::HttpRedirect),
        vec!["http://h.example/dir/next.html".to_string(), "https://x.example/".to_string()]
    );
    assert_eq!(run.events("http")[0]["http"]["redirect"], "next.html");
}

#[test]
fn gzip_response_is_stored_decoded() {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(EICAR).expect("gzip");
    let gz = e.finish().expect("gzip");
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz.len()).into_bytes();
    response.extend_from_slice(&gz);
    let run = exchange(b"GET /e.txt HTTP/1.1\r\nHost: h\r\n\r\n", &response);
    let files = run.fileinfos();
    assert_eq!(files[0]["sha256"], EICAR_SHA256);
    assert_eq!(files[0]["state"], "CLOSED");
    let tx = run.state.transactions().next().expect("tx");
    assert_eq!(tx.response_body, EICAR);
    assert_eq!(run.events("http")[0]["http"]["length"], gz.len() as u64);
}

#[test]
fn multipart_upload_makes_one_file_per_named_part() {
    let body = b"--b0\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n\
--b0\r\nContent-Disposition: form-data; name=\"f1\"; filename=\"a.txt\"\r\n\r\nAAAA\r\n\
--b0\r\nContent-Disposition: form-data; name=\"f2\"; filename=\"b.bin\"\r\n\r\nBB\r\n--b0--\r\n";
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut run = exchange(&request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    // Detection sees each file on its own (file.name, file.data), not the multipart body.
    let tx = run.state.take_finished().remove(0);
    let seen: Vec<(Vec<u8>, &[u8])> = tx.files(Direction::ToServer);
    assert_eq!(seen, vec![(b"a.txt".to_vec(), &b"AAAA"[..]), (b"b.bin".to_vec(), &b"BB"[..])]);
    assert!(tx.files(Direction::ToClient).is_empty());
    let files = run.fileinfos();
    let names: Vec<&Value> = files.iter().map(|f| &f["filename"]).collect();
    assert_eq!(names, vec!["a.txt", "b.bin"]);
    assert_eq!(stored(&run, files[0]), b"AAAA");
    assert_eq!(stored(&run, files[1]), b"BB");
    assert!(files.iter().all(|f| f["state"] == "CLOSED"));
    let events = run.events("fileinfo");
    assert_eq!(events[0]["http"]["url"], "/upload");
    assert_eq!(events[0]["http"]["http_method"], "POST");
}

/// A multipart request of `n` file parts named `f<i>.txt` holding `data<i>`.
fn multipart_request(n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        body.extend_from_slice(
            format!("--b0\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f{i}.txt\"\r\n\r\ndata{i}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"--b0--\r\n");
    let mut request = format!(
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

#[test]
fn inspected_multipart_files_are_bounded_by_count_and_body_limit() {
    let parts = MAX_INSPECTED_FILES_PER_TX + 6;
    let mut run = exchange(&multipart_request(parts), b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let tx = run.state.take_finished().remove(0);
    let seen = tx.files(Direction::ToServer);
    assert_eq!(seen.len(), MAX_INSPECTED_FILES_PER_TX);
    assert_eq!(seen[63], (b"f63.txt".to_vec(), &b"data63"[..]));
    // Every part is still extracted and logged.
    assert_eq!(run.fileinfos().len(), parts);

    // 8 bytes of inspection: "data0" whole, 3 bytes of "data1", nothing of "data2".
    let cfg = HttpConfig { request_body_limit: 8, ..HttpConfig::default() };
    let request = multipart_request(3);
    let mut run = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, request),
            Step::Data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ],
    );
    let tx = run.state.take_finished().remove(0);
    let data: Vec<&[u8]> = tx.files(Direction::ToServer).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, vec![&b"data0"[..], b"dat", b""]);
}

#[test]
fn a_plain_body_is_one_file_named_by_its_uri() {
    let mut run = exchange(
        b"PUT /dir/up%20load.bin?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Disposition: attachment; filename=\"r.exe\"\r\n\r\nMZ",
    );
    let tx = run.state.take_finished().remove(0);
    assert_eq!(tx.files(Direction::ToServer), vec![(b"/dir/up load.bin".to_vec(), &b"abc"[..])]);
    assert_eq!(tx.files(Direction::ToClient), vec![(b"r.exe".to_vec(), &b"MZ"[..])]);
}

#[test]
fn content_length_body_cut_by_close_is_truncated() {
    let run = exchange(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    let files = run.fileinfos();
    assert_eq!(files[0]["state"], "TRUNCATED");
    assert_eq!(files[0]["gaps"], true);
    assert_eq!(files[0]["size"], 9);
}

#[test]
fn gap_in_body_truncates_and_parsing_continues() {
    let run = run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToServer, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()),
            Step::Gap(Direction::ToClient, 4),
            Step::Data(Direction::ToClient, b"hij".to_vec()),
            Step::Data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    );
    let files = run.fileinfos();
    assert_eq!(files.len(), 2);
    // EVE size counts the 4 missing bytes, as Suricata does.
    assert_eq!((files[0]["size"].clone(), files[0]["state"].clone(), files[0]["gaps"].clone()), (10.into(), "TRUNCATED".into(), true.into()));
    assert_eq!(stored(&run, files[0]), b"abchij", "never padded");
    assert_eq!(files[1]["state"], "CLOSED");
}

#[test]
fn http09_response_is_a_body_until_close() {
    let run = exchange(b"GET /old\r\n", b"<html>plain</html>");
    let files = run.fileinfos();
    assert_eq!(files.len(), 1);
    assert_eq!(stored(&run, files[0]), b"<html>plain</html>");
    assert_eq!(run.events("http")[0]["http"]["url"], "/old");
}

#[test]
fn connect_tunnel_is_not_parsed() {
    let run = exchange(
        b"CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n\x16\x03\x01\x02\x00",
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x10",
    );
    assert_eq!(run.events("http").len(), 1);
    assert!(run.fileinfos().is_empty());
    assert!(run.urls(SeenIn::HttpUrl).is_empty(), "authority form is not a resource URL");
}

#[test]
fn probe_by_content() {
    assert_eq!(probe(Direction::ToServer, b"GET / HTTP/1.1\r\n"), ProbeResult::Http);
    assert_eq!(probe(Direction::ToServer, b"\r\nPOST /x"), ProbeResult::Http);
    assert_eq!(probe(Direction::ToServer, b"GE"), ProbeResult::NeedMore);
    assert_eq!(probe(Direction::ToServer, b"\x16\x03\x01\x00"), ProbeResult::NotHttp);
    assert_eq!(probe(Direction::ToClient, b"HTTP/1.1 200"), ProbeResult::Http);
    assert_eq!(probe(Direction::ToClient, b"HTT"), ProbeResult::NeedMore);
    assert_eq!(probe(Direction::ToClient, b"SSH-2.0"), ProbeResult::NotHttp);
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn header_flood_is_bounded_and_counted() {
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..100_000 {
        request.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let run = exchange(&request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let tx = run.state.transactions().next().expect("tx");
    let cfg = HttpConfig::default();
    assert!(tx.request_headers.len() <= cfg.max_headers);
    assert!(tx.request_headers_raw.len() <= cfg.max_header_bytes);
    assert!(tx.dropped_headers > 0);
    assert_eq!(tx.dropped_headers as usize + tx.request_headers.len(), 100_001);
    let counted = run.state.anomaly_count("http.request_field_too_long") + run.state.anomaly_count("http.request_too_many_headers");
    assert_eq!(counted, u64::from(tx.dropped_headers));
    // Records are capped even though every drop was counted.
    assert!(run.out.anomalies.len() as u64 <= 4 * MAX_ANOMALY_RECORDS_PER_EVENT);
    assert_eq!(run.events("http")[0]["http"]["status"], 200, "the flow kept being parsed");
}

#[test]
fn held_headers_of_all_flows_share_one_budget_and_a_block_past_it_is_cut() {
    // Two flows of one worker; the budget holds 2.5 KiB of header lines in all.
    let cfg = HttpConfig { held_header_budget: HeldMessageBudget::new(2560), ..HttpConfig::default() };
    let line = |i: usize| format!("X-Pad-{i:03}: {}\r\n", "p".repeat(50)).into_bytes(); // 63 bytes
    let mut slow = b"GET /slow HTTP/1.1\r\n".to_vec();
    for i in 0..24 {
        slow.extend_from_slice(&line(i)); // 1512 bytes, never finished
    }
    let slow_run = run_cfg(&cfg, &[Step::Data(Direction::ToServer, slow)]);
    let held_by_slow = cfg.held_header_budget.held();
    assert_eq!(held_by_slow, 2016, "capacity doubled from 63 bytes");

    let mut second = b"GET /second HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..16 {
        second.extend_from_slice(&line(i));
    }
    second.extend_from_slice(b"\r\n");
    let response = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n", "b".repeat(1000)).into_bytes();
    let run = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, second),
            Step::Data(Direction::ToClient, response),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    );
    let tx = run.state.transactions().next().expect("tx");
    // What fitted is kept whole, raw and parsed alike; the rest was dropped and counted once.
    let kept = tx.request_headers.len();
    assert!((2..16).contains(&kept), "{kept}");
    assert_eq!(tx.request_headers[0].name, b"Host");
    assert_eq!(tx.request_headers[kept - 1].name, format!("X-Pad-{:03}", kept - 2).as_bytes());
    // The response's 1 KiB header did not fit either (the request holds its headers until
    // the transaction is retired): cut there, its Content-Length dropped with it.
    assert_eq!(tx.dropped_headers as usize, 17 - kept + 2);
    assert!(tx.response_headers.is_empty());
    assert_eq!(run.state.anomaly_count("http.response_header_memcap"), 1);
    let raw_lines = tx.request_headers_raw.split(|&b| b == b'\n').count() - 1;
    assert_eq!(raw_lines, kept + 1, "headers plus the blank line");
    assert_eq!(run.state.anomaly_count("http.request_header_memcap"), 1);
    assert_eq!(run.anomalies("http.request_header_memcap"), 1);
    // One exception per cut block: the request's, then the response's.
    assert_eq!(run.exceptions(), [ParserException::HeaderMemcap, ParserException::HeaderMemcap]);
    // The transaction went on: the request ended and the response was matched to it.
    assert!(tx.request_complete);
    assert_eq!(run.events("http")[0]["http"]["status"], 200);
    assert!(cfg.held_header_budget.held() <= 2560 + 64);

    // Flows give back what they held when they go.
    drop(run);
    assert_eq!(cfg.held_header_budget.held(), held_by_slow);
    drop(slow_run);
    assert_eq!(cfg.held_header_budget.held(), 0);
}

#[test]
fn a_partial_header_line_is_charged_too_and_cut_past_the_budget() {
    // One 60 KiB header line without its newline per connection: held by the line splitter.
    let cfg = HttpConfig { held_header_budget: HeldMessageBudget::new(1000), ..HttpConfig::default() };
    let mut slow = b"GET /slow HTTP/1.1\r\nX-Slow: ".to_vec();
    slow.extend_from_slice(&[b's'; 900]);
    let slow_run = run_cfg(&cfg, &[Step::Data(Direction::ToServer, slow)]);
    let held_by_slow = cfg.held_header_budget.held();
    assert_eq!(held_by_slow, slow_run.state.sides[0].line.held.capacity());
    assert!(held_by_slow >= 908);

    let mut long = b"X-Long: ".to_vec();
    long.extend_from_slice(&[b'l'; 500]);
    let run = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, b"GET /second HTTP/1.1\r\nHost: h\r\n".to_vec()),
            Step::Data(Direction::ToServer, long),
            Step::Data(Direction::ToServer, b"end of the long line\r\nX-After: a\r\n\r\n".to_vec()),
        ],
    );
    let tx = run.state.transactions().next().expect("tx");
    // Host fitted (whole lines in one piece are never held by the splitter); the long line did
    // not, and the block was cut there.
    assert_eq!(tx.request_headers.len(), 1);
    assert_eq!(tx.request_headers[0].name, b"Host");
    assert_eq!(tx.dropped_headers, 2, "the long line and X-After");
    assert_eq!(run.state.anomaly_count("http.request_header_memcap"), 1);
    assert_eq!(run.exceptions(), [ParserException::HeaderMemcap]);
    assert!(tx.request_complete);
    drop(run);
    assert_eq!(cfg.held_header_budget.held(), held_by_slow);
    drop(slow_run);
    assert_eq!(cfg.held_header_budget.held(), 0);
}

#[test]
fn an_unfinished_header_block_holds_one_copy_of_its_lines() {
    // The slow-headers attack: 60 KiB of header lines that never end. Only the raw lines are
    // held (one charged allocation), not a parsed copy besides.
    let cfg = HttpConfig::default();
    let mut request = b"GET /slow HTTP/1.1\r\nHost: slow.example\r\n".to_vec();
    for i in 0..960 {
        request.extend_from_slice(format!("X-Slow-{i:04}: {}\r\n", "s".repeat(48)).as_bytes());
    }
    let run = run_cfg(&cfg, &[Step::Data(Direction::ToServer, request.clone())]);
    let block = &run.state.sides[0].block;
    assert_eq!(block.raw.len(), request.len() - b"GET /slow HTTP/1.1\r\n".len());
    assert_eq!(block.kept, cfg.max_headers);
    assert_eq!(cfg.held_header_budget.held(), block.raw.capacity());
    assert!(block.raw.capacity() <= cfg.max_header_bytes, "{}", block.raw.capacity());
}

#[test]
fn million_chunk_body_streams_in_constant_memory() {
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..1_000_000 {
        response.extend_from_slice(b"1\r\na\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");
    let mut state = HttpState::new(&HttpConfig::default());
    let mut out = Emit::default();
    let mut sink = NullSink;
    state.on_stream(Direction::ToServer, StreamEvent::Data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), TS, &mut sink, &mut out);
    for piece in response.chunks(1460) {
        state.on_stream(Direction::ToClient, StreamEvent::Data(piece), TS, &mut sink, &mut out);
    }
    let info = &out.events.iter().find(|e| e.event_type == "fileinfo").expect("file").fields["fileinfo"];
    assert_eq!(info["size"], 1_000_000);
    assert_eq!(info["state"], "CLOSED");
    let tx = state.transactions().next().expect("tx");
    assert_eq!(tx.response_body.len(), HttpConfig::default().response_body_limit);
    assert_eq!(tx.response_body_len, 1_000_000);
}

#[test]
fn gzip_bomb_is_cut_and_marked_truncated() {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 200 << 20]).expect("gzip");
    let bomb = e.finish().expect("gzip");
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", bomb.len()).into_bytes();
    response.extend_from_slice(&bomb);
    let cfg = HttpConfig { decompress_max_bytes: 8 << 20, ..HttpConfig::default() };
    let run = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, b"GET /bomb HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, response),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    );
    let files = run.fileinfos();
    assert_eq!(files[0]["state"], "TRUNCATED");
    assert_eq!(files[0]["size"], 8 << 20);
    assert_eq!(run.anomalies("http.decompression_size_limit"), 1);
    assert_eq!(run.events("http")[0]["http"]["status"], 200);
}

#[test]
fn binary_garbage_does_not_make_transactions() {
    let mut garbage = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        garbage.push((x >> 16) as u8);
    }
    let run = exchange(&garbage, &garbage);
    assert!(run.state.transactions().all(|tx| tx.method.is_empty() || tx.request_line.len() <= HttpConfig::default().max_header_bytes));
    assert!(run.out.anomalies.len() as u64 <= 16 * MAX_ANOMALY_RECORDS_PER_EVENT);
    assert_eq!(run.state.anomaly_count("http.request_line_invalid"), 1);
}

#[test]
fn response_before_request_is_kept_and_flagged() {
    let run = run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec()),
            Step::Data(Direction::ToServer, b"GET /late HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    );
    assert_eq!(run.anomalies("http.unable_to_match_response_to_request"), 1);
    let http = run.events("http");
    assert_eq!(http.len(), 2);
    assert_eq!(http[0]["http"]["status"], 200);
    assert_eq!(http[1]["http"]["url"], "/late");
}

#[test]
fn unterminated_header_block_is_bounded_and_logged_at_end() {
    let mut request = b"GET /u HTTP/1.1\r\nHost: h\r\nX-Long: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1 << 20));
    let run = exchange(&request, b"");
    assert_eq!(run.anomalies("http.request_field_too_long"), 1);
    assert_eq!(run.anomalies("http.request_headers_unterminated"), 1);
    let tx = run.state.transactions().next().expect("tx");
    assert!(!tx.request_complete);
    assert_eq!(tx.header(Direction::ToServer, "host"), Some(&b"h"[..]));
    assert_eq!(run.events("http")[0]["http"]["url"], "/u");
}

#[test]
fn too_many_pipelined_requests_evict_the_oldest() {
    let mut request = Vec::new();
    for i in 0..1000 {
        request.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
    }
    let cfg = HttpConfig::default();
    let run = run_cfg(&cfg, &[Step::Data(Direction::ToServer, request)]);
    assert!(run.state.slots.len() <= cfg.max_open_transactions);
    assert_eq!(run.state.anomaly_count("http.too_many_transactions"), 1000 - cfg.max_open_transactions as u64);
    assert_eq!(run.events("http").len(), 1000 - cfg.max_open_transactions);
}

// ---------------------------------------------------------------------------------------------
// suricata-verify captures

const CORPUS: &str = "/work/shared/corpus/suricata-verify";

/// Reads a capture and reassembles each TCP connection into per-direction steps, in packet
/// order. Missing segments become gaps once the other side acknowledges past them and later
/// data is waiting (or at the end of the capture). Deliberately simple: no wraparound beyond u32 relative offsets, no
/// overlap policy. Tests only.
fn pcap_flows(path: &Path) -> Vec<Vec<Step>> {
    use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

    let file = std::fs::File::open(path).expect("pcap");
    let mut reader = create_reader(1 << 20, file).expect("reader");
    let mut linktype = 1i32;
    let mut packets: Vec<Vec<u8>> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => linktype = h.network.0,
                    PcapBlockOwned::Legacy(p) => packets.push(p.data.to_vec()),
                    PcapBlockOwned::NG(pcap_parser::Block::InterfaceDescription(i)) => linktype = i.linktype.0,
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(p)) => packets.push(p.data.to_vec()),
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
            Err(e) => panic!("pcap error {e:?}"),
        }
    }

    struct Half {
        base: Option<u32>,
        next: u64,
        pending: BTreeMap<u64, Vec<u8>>,
    }
    struct Conn {
        client: (Vec<u8>, u16),
        halves: [Half; 2],
        steps: Vec<Step>,
    }
    impl Half {
        fn rel(&self, seq: u32) -> u64 {
            u64::from(seq.wrapping_sub(self.base.unwrap_or(seq)))
        }
        fn drain(&mut self, dir: Direction, steps: &mut Vec<Step>) {
            while let Some((&off, _)) = self.pending.iter().next() {
                if off > self.next {
                    break;
                }
                let data = self.pending.remove(&off).unwrap_or_default();
                let end = off + data.len() as u64;
                if end > self.next {
                    steps.push(Step::Data(dir, data[(self.next - off) as usize..].to_vec()));
                    self.next = end;
                }
            }
        }
        fn gap_to(&mut self, upto: u64, dir: Direction, steps: &mut Vec<Step>) {
            let first = self.pending.keys().next().copied();
            let target = match first {
                Some(f) => f.min(upto),
                None => upto,
            };
            if target > self.next {
                steps.push(Step::Gap(dir, target - self.next));
                self.next = target;
            }
            self.drain(dir, steps);
        }
    }
    type ConnKey = (Vec<u8>, u16, Vec<u8>, u16);
    let mut conns: Vec<(ConnKey, Conn)> = Vec::new();
    for pkt in packets {
        let ip = match linktype {
            1 if pkt.len() >= 14 => {
                let mut off = 12;
                let mut ethertype = u16::from_be_bytes([pkt[12], pkt[13]]);
                while ethertype == 0x8100 && pkt.len() >= off + 6 {
                    off += 4;
                    ethertype = u16::from_be_bytes([pkt[off], pkt[off + 1]]);
                }
                &pkt[off + 2..]
            }
            0 if pkt.len() >= 4 => &pkt[4..],
            101 => &pkt[..],
            113 if pkt.len() >= 16 => &pkt[16..],
            _ => continue,
        };
        let (src, dst, tcp) = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
                if ip[9] != 6 || total < ihl {
                    continue;
                }
                (ip[12..16].to_vec(), ip[16..20].to_vec(), &ip[ihl..total])
            }
            Some(6) if ip.len() >= 40 => {
                let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                if ip[6] != 6 {
                    continue;
                }
                (ip[8..24].to_vec(), ip[24..40].to_vec(), &ip[40..(40 + plen).min(ip.len())])
            }
            _ => continue,
        };
        if tcp.len() < 20 {
            continue;
        }
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
        let doff = usize::from(tcp[12] >> 4) * 4;
        let flags = tcp[13];
        let (syn, rst, has_ack) = (flags & 0x02 != 0, flags & 0x04 != 0, flags & 0x10 != 0);
        let payload = tcp.get(doff..).unwrap_or(&[]);
        let a = (src.clone(), sport);
        let b = (dst.clone(), dport);
        let key = if a <= b { (a.0.clone(), a.1, b.0.clone(), b.1) } else { (b.0.clone(), b.1, a.0.clone(), a.1) };
        let idx = match conns.iter().position(|(k, _)| *k == key) {
            Some(i) if !(syn && !has_ack && conns[i].1.steps.iter().any(|s| matches!(s, Step::Data(..)))) => i,
            _ => {
                // A new connection (or a SYN reusing the ports of a finished one).
                let fresh = || Half { base: None, next: 0, pending: BTreeMap::new() };
                let client = if syn && has_ack { b.clone() } else { a.clone() };
                conns.push((key, Conn { client, halves: [fresh(), fresh()], steps: Vec::new() }));
                conns.len() - 1
            }
        };
        let conn = &mut conns[idx].1;
        let dir = if a == conn.client { Direction::ToServer } else { Direction::ToClient };
        let d = dir.index();
        if syn {
            conn.halves[d].base = Some(seq.wrapping_add(1));
        }
        if rst {
            continue;
        }
        if conn.halves[d].base.is_none() {
            conn.halves[d].base = Some(seq);
        }
        // Acknowledged bytes of the other side that never arrived are a gap.
        let o = dir.opposite();
        if has_ack && conn.halves[o.index()].base.is_some() {
            let acked = conn.halves[o.index()].rel(ack);
            // Only with later data waiting: captures often show an ACK before the data it
            // acknowledges.
            let waiting = !conn.halves[o.index()].pending.is_empty();
            if waiting && acked > conn.halves[o.index()].next && acked < 1 << 31 {
                let Conn { halves, steps, .. } = conn;
                halves[o.index()].gap_to(acked, o, steps);
            }
        }
        if !payload.is_empty() {
            let off = conn.halves[d].rel(seq);
            if off < 1 << 31 {
                conn.halves[d].pending.insert(off, payload.to_vec());
                let Conn { halves, steps, .. } = conn;
                halves[d].drain(dir, steps);
            }
        }
    }
    conns
        .into_iter()
        .map(|(_, mut c)| {
            for dir in [Direction::ToServer, Direction::ToClient] {
                let Conn { halves, steps, .. } = &mut c;
                while let Some(&first) = halves[dir.index()].pending.keys().next() {
                    halves[dir.index()].gap_to(first, dir, steps);
                }
            }
            c.steps.push(Step::End(Direction::ToServer));
            c.steps.push(Step::End(Direction::ToClient));
            c.steps
        })
        .filter(|s| s.iter().any(|st| matches!(st, Step::Data(..))))
        .collect()
}

/// Runs every connection of a capture through its own parser, into one sink.
fn run_pcap(path: &str, cfg: &HttpConfig) -> Vec<Run> {
    let full = Path::new(CORPUS).join(path);
    pcap_flows(&full).iter().map(|steps| run_cfg(cfg, steps)).collect()
}

fn all_fileinfos(runs: &[Run]) -> Vec<Value> {
    runs.iter().flat_map(|r| r.fileinfos().into_iter().cloned()).collect()
}

fn all_http(runs: &[Run]) -> Vec<Value> {
    runs.iter().flat_map(|r| r.events("http").into_iter().map(|e| e["http"].clone())).collect()
}

#[test]
fn evader_cases_yield_eicar_unchanged() {
    for case in ["022", "058", "078", "098", "144", "153", "182", "249", "282", "323", "352", "378", "485", "500"] {
        let runs = run_pcap(&format!("http-evader-{case}/input.pcap"), &HttpConfig::default());
        let files: Vec<(Value, Vec<u8>)> = runs
            .iter()
            .flat_map(|r| r.events("fileinfo").into_iter().map(move |e| (e.clone(), r)))
            .map(|(e, r)| (Value::Object(e.clone()), stored(r, &e["fileinfo"])))
            .collect();
        assert_eq!(files.len(), 1, "case {case}: one file");
        let (event, content) = &files[0];
        assert_eq!(event["fileinfo"]["filename"], "eicar.txt", "case {case}");
        assert_eq!(event["http"]["http_method"], "GET", "case {case}");
        assert_eq!(event["http"]["hostname"], "evader.example.com", "case {case}");
        assert!(
            content.windows(EICAR.len()).any(|w| w == EICAR),
            "case {case}: file.data holds EICAR, got {:?}",
            String::from_utf8_lossy(content)
        );
    }
}

#[test]
fn http_gap_simple_and_double() {
    for case in ["http-gap-simple", "http-gap-double"] {
        let runs = run_pcap(&format!("{case}/input.pcap"), &HttpConfig::default());
        let http = all_http(&runs);
        for url in ["/1", "/2", "/3"] {
            assert_eq!(http.iter().filter(|h| h["url"] == url && h["status"] == 200).count(), 1, "{case} {url}");
        }
        let files = all_fileinfos(&runs);
        let closed14 = files.iter().filter(|f| f["size"] == 14 && f["state"] == "CLOSED" && f["gaps"] == false).count();
        let trunc70 = files.iter().filter(|f| f["size"] == 70 && f["state"] == "TRUNCATED" && f["gaps"] == true).count();
        assert_eq!((closed14, trunc70), (2, 1), "{case}: {files:?}");
    }
}

#[test]
fn http_gap_whole_body() {
    let runs = run_pcap("http-gap-whole-body/input.pcap", &HttpConfig::default());
    let files = all_fileinfos(&runs);
    let count = |size: u64, state: &str, gaps: bool| {
        files.iter().filter(|f| f["size"] == size && f["state"] == state && f["gaps"] == gaps).count()
    };
    assert_eq!(count(14, "CLOSED", false), 1, "{files:?}");
    assert_eq!(count(12, "TRUNCATED", true), 1, "{files:?}");
    assert_eq!(count(70, "CLOSED", false), 1, "{files:?}");
}

#[test]
fn bug_5392_truncated_file_with_gaps() {
    let runs = run_pcap("bug-5392/TPWhite-carved-out-7787-s1.pcap", &HttpConfig::default());
    assert_eq!(all_http(&runs).len(), 1);
    let files = all_fileinfos(&runs);
    // The POST body, cut by capture loss; the 404 page is a second (complete) file.
    let truncated: Vec<&Value> = files.iter().filter(|f| f["state"] == "TRUNCATED").collect();
    assert_eq!(truncated.len(), 1, "{files:?}");
    assert_eq!(truncated[0]["size"], 59466);
    assert_eq!(truncated[0]["gaps"], true);
    assert_eq!(truncated[0]["filename"], "/ch23/");
}

#[test]
fn http_multiple100() {
    let runs = run_pcap("http-multiple100/input.pcap", &HttpConfig::default());
    let files = all_fileinfos(&runs);
    assert_eq!(files.iter().filter(|f| f["size"] == 34293).count(), 1, "{files:?}");
    assert_eq!(all_http(&runs).iter().filter(|h| h["status"] == 200).count(), 1);
}

#[test]
fn file_match_crossed_multipart_hashes() {
    let runs = run_pcap("file-match-crossed/http-multipart-post.pcap", &HttpConfig::default());
    let files = all_fileinfos(&runs);
    for sha in [
        "c345c434702129224a0a3e89810a7ed2556718221c0d36fdb7e52b93fa732b00",
        "0605686b5f3a54d2fe07b3b6ed039779911f43ff079d7ff6fecbf4f75bf5ee10",
    ] {
        assert_eq!(files.iter().filter(|f| f["sha256"] == sha).count(), 1, "{sha} in {files:?}");
    }
}

#[test]
fn filestore_cases_hashes() {
    let files = all_fileinfos(&run_pcap("filestore-dont/input.pcap", &HttpConfig::default()));
    assert_eq!(
        files.iter().filter(|f| f["sha256"] == "eb076a2ec6ced9ee2e823e098446513cf5b2bb60fbcb04e6c85dc23dedaa414a").count(),
        1,
        "{files:?}"
    );
    let files = all_fileinfos(&run_pcap("filestore-issue-5868/bidi-logo.pcap", &HttpConfig::default()));
    let want = "c59b846043b2cf6b6ac73bf67f9c5660f354a12311ce405927a8916bffc70c4f";
    assert!(files.iter().any(|f| f["sha256"] == want && f["size"].as_u64() > Some(0)), "{files:?}");
}

#[test]
fn http_all_headers_are_logged_when_configured() {
    let cfg = HttpConfig { log_headers: true, ..HttpConfig::default() };
    let http = all_http(&run_pcap("http-all-headers/input.pcap", &cfg));
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["request_headers"][0]["name"], "Host");
    assert_eq!(http[0]["request_headers"][0]["value"], "www.ethereal.com");
    assert_eq!(http[0]["response_headers"][5]["name"], "Content-Length");
    assert_eq!(http[0]["response_headers"][5]["value"], "18070");
    assert_eq!(http[0]["response_headers"].as_array().map(Vec::len), Some(9));
    assert_eq!(http[0]["request_headers"].as_array().map(Vec::len), Some(9));
}

#[test]
fn http_async_and_post_file() {
    let http = all_http(&run_pcap("http-async/input.pcap", &HttpConfig::default()));
    for url in ["/1", "/2"] {
        assert_eq!(http.iter().filter(|h| h["url"] == url && h["status"] == 200).count(), 1, "{url}: {http:?}");
    }
    let runs = run_pcap("http-post-file/input.pcap", &HttpConfig::default());
    let files = all_fileinfos(&runs);
    assert!(files.iter().any(|f| f["sha256"] == EICAR_SHA256 || f["size"].as_u64() > Some(0)), "{files:?}");
    let _ = FileState::Closed;
}

#[test]
#[ignore]
fn debug_dump_steps() {
    let path = std::env::var("WEIR_PCAP").expect("WEIR_PCAP");
    for (i, flow) in pcap_flows(Path::new(&path)).iter().enumerate() {
        let run = run_cfg(&HttpConfig::default(), flow);
        for e in &run.out.events {
            eprintln!("flow {i} event {} {}", e.event_type, Value::Object(e.fields.clone()));
        }
        for a in &run.out.anomalies {
            eprintln!("flow {i} anomaly {:?}", a.1.event);
        }
        for s in flow {
            match s {
                Step::Data(d, b) => eprintln!("flow {i} {d:?} data {} {:?}", b.len(), String::from_utf8_lossy(&b[..b.len().min(40)])),
                other => eprintln!("flow {i} {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A flow exercising most of the state machine: pipelining, 100 Continue, chunked with
/// extensions, gzip, multipart, a Connection: close body.
fn busy_flow() -> (Vec<u8>, Vec<u8>) {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&EICAR.repeat(50)).expect("gzip");
    let gz = e.finish().expect("gzip");
    let part = b"--zz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"up.bin\"\r\n\r\nUPLOADED\r\n--zz--\r\n";
    let mut req = format!(
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
         POST /form HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: {}\r\n\r\n",
        part.len()
    )
    .into_bytes();
    req.extend_from_slice(part);
    req.extend_from_slice(b"GET /z HTTP/1.0\r\nHost: h\r\n\r\n");
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec();
    resp.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    resp.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz.len()).as_bytes());
    resp.extend_from_slice(&gz);
    resp.extend_from_slice(b"HTTP/1.0 200 OK\r\n\r\nuntil close");
    (req, resp)
}

fn split_at_points(data: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain(std::iter::once(data.len())) {
        if c > last {
            pieces.push(data[last..c].to_vec());
            last = c;
        }
    }
    pieces
}

fn events_json(run: &Run) -> Vec<Value> {
    run.out.events.iter().map(|e| Value::Object(e.fields.clone())).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// How reassembly happens to cut the stream never changes what is extracted or logged.
    #[test]
    fn segmentation_does_not_change_results(
        req_cuts in proptest::collection::vec(0usize..10_000, 0..40),
        resp_cuts in proptest::collection::vec(0usize..10_000, 0..40),
    ) {
        let (req, resp) = busy_flow();
        let whole = exchange(&req, &resp);
        let mut steps: Vec<Step> = split_at_points(&req, &req_cuts).into_iter().map(|p| Step::Data(Direction::ToServer, p)).collect();
        steps.extend(split_at_points(&resp, &resp_cuts).into_iter().map(|p| Step::Data(Direction::ToClient, p)));
        steps.push(Step::End(Direction::ToServer));
        steps.push(Step::End(Direction::ToClient));
        let pieces = run_cfg(&HttpConfig::default(), &steps);
        proptest::prop_assert_eq!(events_json(&whole), events_json(&pieces));
        proptest::prop_assert_eq!(whole.fileinfos().len(), 4);
    }

    /// Arbitrary bytes, gaps and ends in any order: no panic, and every buffer stays within its
    /// limit.
    #[test]
    fn arbitrary_input_stays_bounded(
        ops in proptest::collection::vec((0u8..4, proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0u64..5000), 0..60),
    ) {
        let cfg = HttpConfig { max_header_bytes: 512, max_headers: 8, request_body_limit: 64, response_body_limit: 64, max_open_transactions: 4, ..HttpConfig::default() };
        let mut state = HttpState::new(&cfg);
        let mut sink = MemorySink::new(1 << 20);
        let mut out = Emit::default();
        for (kind, bytes, len) in &ops {
            let dir = if kind & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
            let mut data = bytes.clone();
            // Bias toward HTTP-looking input so deeper states are reached.
            const PREFIXES: &[&[u8]] = &[
                b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"GET http:// HTTP/1.1\r\nHost:\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br, deflate\r\nContent-Length: 40\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=a\r\nContent-Length: 90\r\n\r\n--a\r\n",
                b"HTTP/1.1 101 Switching\r\n\r\n",
                b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-1/2\r\nTransfer-Encoding: chunked\r\n\r\n",
            ];
            if kind & 2 == 0 && !data.is_empty() {
                let prefix = PREFIXES[(*len as usize) % PREFIXES.len()];
                data.splice(0..0, prefix.iter().copied());
            }
            let ev = match (kind, *len) {
                (_, l) if l < 300 => StreamEvent::Gap { len: l },
                (_, l) if l > 4990 => StreamEvent::End,
                _ => StreamEvent::Data(&data),
            };
            state.on_stream(dir, ev, TS, &mut sink, &mut out);
        }
        proptest::prop_assert!(state.slots.len() <= cfg.max_open_transactions);
        for tx in state.transactions() {
            proptest::prop_assert!(tx.request_body.len() <= cfg.request_body_limit);
            proptest::prop_assert!(tx.response_body.len() <= cfg.response_body_limit);
            proptest::prop_assert!(tx.request_headers_raw.len() <= cfg.max_header_bytes + 2);
        }
        for side in &state.sides {
            proptest::prop_assert!(side.line.held.len() <= cfg.max_header_bytes.max(MAX_CHUNK_LINE_BYTES));
            proptest::prop_assert!(side.junk.len() <= MAX_JUNK_BEFORE_STATUS_BYTES);
        }
    }
}

/// Real downloads (curl against a Python server over loopback, see testdata/make_downloads.sh):
/// every served file comes out byte-identical, whatever the framing or coding.
#[test]
fn real_downloads_are_extracted_byte_identical() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/testdata");
    let manifest = std::fs::read_to_string(dir.join("served.sha256")).expect("manifest");
    let runs: Vec<Run> = pcap_flows(&dir.join("downloads.pcap")).iter().map(|s| run_cfg(&HttpConfig::default(), s)).collect();
    let files = all_fileinfos(&runs);
    for line in manifest.lines() {
        let (sha, name) = line.split_once("  ").expect("sha256sum line");
        let found: Vec<&Value> = files.iter().filter(|f| f["sha256"] == sha).collect();
        assert_eq!(found.len(), 1, "{name} ({sha}) not extracted exactly once: {files:?}");
        assert_eq!(found[0]["state"], "CLOSED", "{name}");
        let stored_len = runs
            .iter()
            .flat_map(|r| r.sink.stored.iter())
            .find(|(h, _)| hex(h) == sha)
            .map(|(_, b)| b.len() as u64);
        assert_eq!(found[0]["size"].as_u64(), stored_len, "{name}");
    }
    let names: Vec<&str> = files.iter().filter_map(|f| f["filename"].as_str()).collect();
    for want in ["/random.bin", "/page.html", "/data.json", "/chunked.exe", "report.pdf", "upload.bin"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let exe = files.iter().find(|f| f["filename"] == "/chunked.exe").expect("exe");
    assert_eq!(exe["magic"], "PE32 executable (MS-DOS)");
}

#[test]
fn gzipped_request_body_is_decoded_for_inspection() {
    let runs = run_pcap("http-post-data-decompression/input.pcap", &HttpConfig::default());
    let tx = runs[0].state.transactions().next().expect("tx");
    assert_eq!(tx.method, b"POST");
    let body = String::from_utf8_lossy(&tx.request_body).to_ascii_lowercase();
    assert!(body.contains("name"), "decoded request body: {body:?}");
    assert!(!String::from_utf8_lossy(&tx.response_body).to_ascii_lowercase().contains("name"));
}

#[test]
fn config_rejects_unknown_keys_and_defaults_the_rest() {
    let cfg: HttpConfig = serde_json::from_str(r#"{"log_headers": true, "max_headers": 10}"#).expect("config");
    assert_eq!(cfg, HttpConfig { log_headers: true, max_headers: 10, ..HttpConfig::default() });
    assert!(serde_json::from_str::<HttpConfig>(r#"{"max_header": 10}"#).is_err());
}

#[test]
fn partial_content_files_carry_their_range() {
    let run = exchange(
        b"GET /big.iso HTTP/1.1\r\nHost: h\r\nRange: bytes=100-104\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-104/1000\r\nContent-Length: 5\r\n\r\nabcde",
    );
    let files = run.fileinfos();
    assert_eq!((files[0]["start"].clone(), files[0]["end"].clone()), (100.into(), 104.into()));
    assert_eq!(files[0]["size"], 5);
    assert_eq!(super::parse_content_range(b"bytes 5-1/10"), None);
    assert_eq!(super::parse_content_range(b"bytes */10"), None);
    assert_eq!(super::parse_content_range(b"bytes 0-9/*"), Some((0, 9, None)));
}

#[test]
fn in_order_and_overlapping_ranges_in_one_flow_join_into_the_whole_file() {
    let whole = b"0123456789ABCDEFGHIJ";
    let mut req = Vec::new();
    let mut resp = Vec::new();
    // Parts 0-7, 5-14 (overlapping), 15-19.
    for (first, last) in [(0usize, 7usize), (5, 14), (15, 19)] {
        req.extend_from_slice(format!("GET /v.bin HTTP/1.1\r\nHost: h\r\nRange: bytes={first}-{last}\r\n\r\n").as_bytes());
        resp.extend_from_slice(
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\nContent-Length: {}\r\n\r\n",
                whole.len(),
                last - first + 1
            )
            .as_bytes(),
        );
        resp.extend_from_slice(&whole[first..=last]);
    }
    let store = SharedMemorySink::default();
    let cfg = HttpConfig { range_joiner: SharedRangeJoiner::new(Box::new(store.clone())), ..HttpConfig::default() };
    let run = run_cfg(
        &cfg,
        &[Step::Data(Direction::ToServer, req), Step::Data(Direction::ToClient, resp), Step::End(Direction::ToServer), Step::End(Direction::ToClient)],
    );
    let files = run.fileinfos();
    assert_eq!(files.len(), 4, "three parts and the joined file: {files:?}");
    let joined: Vec<&&Value> = files.iter().filter(|f| f["size"] == 20).collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["state"], "CLOSED");
    assert_eq!(joined[0]["filename"], "/v.bin");
    assert_eq!(joined[0]["stored"], true);
    // Logged with the part that completed it, but it is not a part.
    assert_eq!(joined[0]["tx_id"], 2);
    assert!(joined[0].get("start").is_none());
    assert_eq!(store.content(joined[0]), whole);
}

/// A memory sink the test keeps a handle on after giving it to a joiner.
#[derive(Clone, Default)]
struct SharedMemorySink(std::sync::Arc<std::sync::Mutex<MemorySink>>);

impl SharedMemorySink {
    fn content(&self, info: &Value) -> Vec<u8> {
        let sha = info["sha256"].as_str().expect("sha256");
        let sink = self.0.lock().expect("sink");
        sink.stored.iter().find(|(h, _)| hex(h) == sha).map(|(_, b)| b.clone()).unwrap_or_default()
    }
}

impl crate::files::FileSink for SharedMemorySink {
    fn open(&mut self) -> Result<crate::files::StoreHandle, crate::files::FileError> {
        let mut sink = self.0.lock().expect("sink");
        if sink.max_bytes == 0 {
            sink.max_bytes = 1 << 20;
        }
        sink.open()
    }
    fn write(&mut self, h: crate::files::StoreHandle, data: &[u8]) -> Result<(), crate::files::FileError> {
        self.0.lock().expect("sink").write(h, data)
    }
    fn close(&mut self, h: crate::files::StoreHandle, sha256: &[u8; 32]) -> Result<bool, crate::files::FileError> {
        self.0.lock().expect("sink").close(h, sha256)
    }
    fn discard(&mut self, h: crate::files::StoreHandle) {
        self.0.lock().expect("sink").discard(h)
    }
}

/// A 206 exchange on its own flow: `GET url` answered with `whole[first..=last]`.
fn range_flow(cfg: &HttpConfig, path: &str, whole: &[u8], first: usize, last: usize) -> Run {
    let req = format!("GET {path} HTTP/1.1\r\nHost: files.example\r\nRange: bytes={first}-{last}\r\n\r\n").into_bytes();
    let mut resp = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\nContent-Length: {}\r\n\r\n",
        whole.len(),
        last - first + 1
    )
    .into_bytes();
    resp.extend_from_slice(&whole[first..=last]);
    run_cfg(cfg, &[Step::Data(Direction::ToServer, req), Step::Data(Direction::ToClient, resp), Step::End(Direction::ToServer), Step::End(Direction::ToClient)])
}

#[test]
fn ranges_from_several_flows_join_once_all_parts_are_seen() {
    let whole: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let store = SharedMemorySink::default();
    // One config per worker, cloned from one: they share the joiner.
    let cfg = HttpConfig { range_joiner: SharedRangeJoiner::new(Box::new(store.clone())), ..HttpConfig::default() };
    let other_worker = cfg.clone();
    // Out of order, overlapping, and a part of another resource that must not mix in.
    let a = range_flow(&cfg, "/f.bin", &whole, 1000, 1999);
    let b = range_flow(&other_worker, "/other.bin", &whole, 0, 999);
    let c = range_flow(&other_worker, "/f.bin", &whole, 2000, 2999);
    let d = range_flow(&cfg, "/f.bin", &whole, 0, 1499);
    for (run, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        assert_eq!(run.fileinfos().len(), 1, "{name}: only its part");
    }
    let files = d.fileinfos();
    assert_eq!(files.len(), 2, "the whole file and its part: {files:?}");
    assert_eq!(files[0]["size"], 3000);
    assert_eq!(files[0]["state"], "CLOSED");
    assert_eq!(files[0]["filename"], "/f.bin");
    assert_eq!((files[0]["file_id"].clone(), files[1]["file_id"].clone()), (2.into(), 1.into()));
    assert_eq!(store.content(files[0]), whole);
    assert_eq!(d.events("fileinfo")[0]["http"]["url"], "/f.bin");
    assert_eq!(files[1]["size"], 1500);
    // The joined file is a file artifact too (for sandbox dispatch and hash lists).
    let artifacts = d.out.artifacts.iter().filter(|(_, _, a)| matches!(a, Artifact::File(f) if f.size == 3000)).count();
    assert_eq!(artifacts, 1);
    let joiner = cfg.range_joiner.lock();
    assert_eq!((joiner.tracked(), joiner.held_bytes()), (1, 0), "only /other.bin waits");
}

#[test]
fn a_part_that_lost_bytes_stops_feeding_the_join() {
    let whole: Vec<u8> = (0..20u8).collect();
    let cfg = HttpConfig::default();
    let req = b"GET /g HTTP/1.1\r\nHost: files.example\r\n\r\n".to_vec();
    let head = b"HTTP/1.1 206 P\r\nContent-Range: bytes 0-9/20\r\nContent-Length: 10\r\n\r\n".to_vec();
    let run = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, req),
            Step::Data(Direction::ToClient, [head, whole[..4].to_vec()].concat()),
            Step::Gap(Direction::ToClient, 2),
            Step::Data(Direction::ToClient, whole[6..10].to_vec()),
        ],
    );
    assert_eq!(run.fileinfos()[0]["state"], "TRUNCATED");
    // Bytes 0..4 are in the joiner; the rest of the file completes nothing yet.
    let second = range_flow(&cfg, "/g", &whole, 10, 19);
    assert_eq!(second.fileinfos().len(), 1);
    // Once 4..10 come again, the file is whole.
    let third = range_flow(&cfg, "/g", &whole, 4, 9);
    let sizes: Vec<&Value> = third.fileinfos().iter().map(|f| &f["size"]).collect();
    assert_eq!(sizes, [20, 6], "the whole file is logged as the completing part's bytes arrive");
    assert_eq!(cfg.range_joiner.lock().tracked(), 0);
    // A part whose first bytes complete the file does not start it over with the rest.
    let fourth = range_flow(&cfg, "/g", &whole, 12, 19);
    let fifth = run_cfg(
        &cfg,
        &[
            Step::Data(Direction::ToServer, b"GET /g HTTP/1.1\r\nHost: files.example\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, b"HTTP/1.1 206 P\r\nContent-Range: bytes 0-15/20\r\nContent-Length: 16\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, whole[..12].to_vec()),
            Step::Data(Direction::ToClient, whole[12..16].to_vec()),
        ],
    );
    assert_eq!((fourth.fileinfos().len(), fifth.fileinfos().len()), (1, 2));
    assert_eq!(cfg.range_joiner.lock().tracked(), 0);
}

#[test]
fn http_range_multiflows_joins_the_whole_file_once() {
    let runs = run_pcap("http-range-multiflows/input.pcap", &HttpConfig::default());
    let files = all_fileinfos(&runs);
    let whole: Vec<&Value> = files.iter().filter(|f| f["size"] == 37323).collect();
    assert_eq!(whole.len(), 1, "{} files", files.len());
    assert_eq!(whole[0]["state"], "CLOSED");
}

#[test]
fn a_range_join_with_a_missing_part_is_not_logged() {
    let req = b"GET /v HTTP/1.1\r\nHost: h\r\n\r\nGET /v HTTP/1.1\r\nHost: h\r\n\r\n";
    let resp = b"HTTP/1.1 206 P\r\nContent-Range: bytes 0-1/6\r\nContent-Length: 2\r\n\r\nab\
HTTP/1.1 206 P\r\nContent-Range: bytes 4-5/6\r\nContent-Length: 2\r\n\r\nef";
    let run = exchange(req, resp);
    assert_eq!(run.fileinfos().len(), 2, "only the parts");
}

#[test]
fn http_async_cli_and_chunked_request_headers() {
    let http = all_http(&run_pcap("http-async-cli/input.pcap", &HttpConfig::default()));
    for url in ["/1", "/2"] {
        assert_eq!(http.iter().filter(|h| h["url"] == url).count(), 1, "{url}: {http:?}");
    }
    let runs = run_pcap("http-chunked/input.pcap", &HttpConfig::default());
    let tx = runs[0].state.transactions().next().expect("tx");
    let names: Vec<String> = tx.request_headers.iter().map(|h| String::from_utf8_lossy(&h.name).to_ascii_lowercase()).collect();
    for want in ["host", "cookie", "x-qlik-user", "user-agent", "content-length", "transfer-encoding"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let header_buf = tx.headers_buffer(Direction::ToServer);
    assert!(!header_buf.windows(6).any(|w| w.eq_ignore_ascii_case(b"cookie")), "http.header leaves Cookie out");
}

#[test]
fn a_keep_alive_response_file_is_logged_without_waiting_for_the_next_one() {
    let mut state = HttpState::new(&HttpConfig::default());
    let mut sink = MemorySink::new(1 << 20);
    let mut out = Emit::default();
    state.on_stream(Direction::ToServer, StreamEvent::Data(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n"), TS, &mut sink, &mut out);
    state.on_stream(Direction::ToClient, StreamEvent::Data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\r\n"), TS, &mut sink, &mut out);
    let info = &out.events.iter().find(|e| e.event_type == "fileinfo").expect("logged now").fields["fileinfo"];
    // The line break that came with the body is counted in it, as libhtp does.
    assert_eq!(info["size"], 5);
    assert_eq!(info["state"], "CLOSED");
}

#[test]
fn uri_and_host_buffers_of_the_detect_corpus() {
    for (case, uri) in [("detect-uricontent-04/input.pcap", "/../../images.gif"), ("detect-uricontent-05/input.pcap", "/%2e%2e/images.gif")] {
        let runs = run_pcap(case, &HttpConfig::default());
        let tx = runs[0].state.transactions().next().expect("tx");
        assert_eq!(tx.method, b"GET", "{case}");
        assert_eq!(tx.uri_raw, uri.as_bytes(), "{case}");
        assert_eq!(tx.uri_normalized, b"/images.gif", "{case}");
        assert_eq!(tx.host_normalized().as_deref(), Some(&b"www.example.com"[..]), "{case}");
    }
    // The request line arrives in two segments.
    let runs = run_pcap("DetectEngineHttpRawUriTest22/test.fpc.pcap", &HttpConfig::default());
    let tx = runs[0].state.transactions().next().expect("tx");
    assert_eq!(tx.uri_raw, b"/../a/b/../c/./d.html");
    assert_eq!(tx.uri_normalized, b"/a/c/d.html");
}

/// Found by fuzzing: trailers were appended past `max_headers`.
#[test]
fn trailers_count_against_the_header_cap() {
    let cfg = HttpConfig { max_headers: 1, ..HttpConfig::default() };
    let request = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let run = run_cfg(&cfg, &[Step::Data(Direction::ToServer, request.to_vec())]);
    let txs: Vec<&HttpTx> = run.state.transactions().collect();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].request_headers.len(), 1);
    assert_eq!(txs[0].dropped_headers, 1);
}

#[test]
fn a_request_line_that_is_not_http_is_one_parser_error() {
    let junk = b"\x16\x03\x01 not a request\r\n".to_vec();
    let run = run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToServer, junk.clone()),
            // The parser resyncs on a known method, then meets the same junk again.
            Step::Data(Direction::ToServer, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToServer, junk),
        ],
    );
    assert_eq!(run.out.exceptions, [(TS, ParserException::Error)]);
    assert_eq!(run.state.transactions().count(), 2);
}

#[test]
fn a_response_chunk_size_that_does_not_parse_mid_body_is_one_parser_error() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n".to_vec();
    let run = run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, response.clone()),
            Step::Data(Direction::ToClient, response),
        ],
    );
    assert_eq!(run.anomalies("http.invalid_response_chunk_len"), 2);
    assert_eq!(run.exceptions(), [ParserException::Error]);
}

#[test]
fn well_formed_exchanges_gaps_and_http09_raise_no_parser_error() {
    let run = run_cfg(
        &HttpConfig::default(),
        &[
            Step::Data(Direction::ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            Step::Data(Direction::ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec()),
            Step::Gap(Direction::ToServer, 100),
            Step::Data(Direction::ToServer, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            // Not a status line: read as an HTTP/0.9 body, as browsers do.
            Step::Data(Direction::ToClient, b"<html>old server</html>\r\n".to_vec()),
            Step::End(Direction::ToServer),
            Step::End(Direction::ToClient),
        ],
    );
    assert_eq!(run.events("http").len(), 2);
    assert!(run.out.exceptions.is_empty(), "{:?}", run.out.exceptions);
}
