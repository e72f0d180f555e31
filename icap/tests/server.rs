//! The server over real loopback sockets: answers, hand-over, limits and hostile clients.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use weir_icap::{
    ConfigError, IcapServer, Mode, ServerConfig, ServerStats, StatsSnapshot, Transaction,
};

const RECV_BOUND: Duration = Duration::from_secs(10);

async fn start(
    config: ServerConfig,
) -> (
    String,
    mpsc::Receiver<Transaction>,
    std::sync::Arc<ServerStats>,
) {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    let (server, rx) = IcapServer::bind(config).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let stats = server.stats();
    tokio::spawn(server.run());
    (addr, rx, stats)
}

async fn next_tx(rx: &mut mpsc::Receiver<Transaction>) -> Transaction {
    tokio::time::timeout(RECV_BOUND, rx.recv())
        .await
        .expect("transaction in time")
        .expect("open")
}

/// Reads one ICAP response head (through its blank line).
async fn read_head<R: AsyncBufReadExt + Unpin>(r: &mut R) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.unwrap();
        assert!(n > 0, "connection closed inside a response head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            return head;
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Reads a chunked body to its last chunk.
async fn read_chunked<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
        if size == 0 {
            let mut end = String::new();
            r.read_line(&mut end).await.unwrap();
            assert_eq!(end, "\r\n");
            return body;
        }
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk).await.unwrap();
        assert_eq!(&chunk[size..], b"\r\n");
        body.extend_from_slice(&chunk[..size]);
    }
}

async fn expect_closed<R: AsyncReadExt + Unpin>(r: &mut R) {
    let mut rest = Vec::new();
    let n = tokio::time::timeout(RECV_BOUND, r.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "unexpected bytes after the last response: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

const REQ_HDR: &[u8] = b"GET /file.bin HTTP/1.1\r\nHost: origin.test\r\n\r\n";
const RES_HDR: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A RESPMOD carrying `body` in `chunks` (each one ICAP chunk), with extra ICAP headers.
fn respmod(extra: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut msg = format!(
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\n{extra}\
         Encapsulated: req-hdr=0, res-hdr={}, res-body={}\r\n\r\n",
        REQ_HDR.len(),
        REQ_HDR.len() + RES_HDR.len()
    )
    .into_bytes();
    msg.extend_from_slice(REQ_HDR);
    msg.extend_from_slice(RES_HDR);
    for c in chunks {
        msg.extend_from_slice(&chunk(c));
    }
    msg.extend_from_slice(b"0\r\n\r\n");
    msg
}

#[tokio::test]
async fn options_advertises_the_service() {
    let config = ServerConfig {
        max_connections: 7,
        preview_bytes: 1024,
        ..Default::default()
    };
    let (addr, _rx, stats) = start(config).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 200 OK\r\n"), "{head}");
    assert_eq!(header(&head, "Methods"), Some("RESPMOD"));
    assert_eq!(
        header(&head, "ISTag"),
        Some(concat!("\"weir-", env!("CARGO_PKG_VERSION"), "\""))
    );
    assert_eq!(header(&head, "Preview"), Some("1024"));
    assert_eq!(header(&head, "Transfer-Preview"), Some("*"));
    assert_eq!(header(&head, "Allow"), Some("204"));
    assert_eq!(header(&head, "Max-Connections"), Some("7"));
    assert_eq!(header(&head, "Options-TTL"), Some("3600"));
    assert_eq!(header(&head, "Encapsulated"), Some("null-body=0"));
    assert!(header(&head, "Date").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(stats.snapshot().options, 1);
}

#[tokio::test]
async fn respmod_with_allow_204_is_answered_204_and_handed_over_twice_on_one_connection() {
    let (addr, mut rx, stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    for round in 0..2u8 {
        let body: &[u8] = if round == 0 { b"first body" } else { b"second" };
        let msg = respmod("Allow: 204\r\nX-Client-IP: 10.1.2.3\r\n", &[body]);
        s.get_mut().write_all(&msg).await.unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("ICAP/1.0 204 No Content\r\n"), "{head}");
        let tx = next_tx(&mut rx).await;
        assert_eq!(tx.mode, Mode::Respmod);
        assert_eq!(tx.service_uri, "icap://127.0.0.1/respmod");
        assert_eq!(tx.client_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(tx.proxy_addr, s.get_ref().local_addr().unwrap());
        assert_eq!(tx.http_request_head, REQ_HDR);
        assert_eq!(tx.http_response_head, RES_HDR);
        assert_eq!(
            (tx.body.as_slice(), tx.body_len, tx.complete),
            (body, body.len() as u64, true)
        );
    }
    let snap = stats.snapshot();
    assert_eq!(
        (snap.respmod, snap.answered_204, snap.handed_over),
        (2, 2, 2)
    );
    assert_eq!(snap.connections_accepted, 1);
}

#[tokio::test]
async fn reqmod_without_allow_204_echoes_the_message_unchanged() {
    let (addr, mut rx, stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    let req_hdr = b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 11\r\n\r\n";
    let mut msg = format!(
        "REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body={}\r\n\r\n",
        req_hdr.len()
    )
    .into_bytes();
    msg.extend_from_slice(req_hdr);
    msg.extend_from_slice(&chunk(b"hello "));
    msg.extend_from_slice(&chunk(b"world"));
    msg.extend_from_slice(b"0\r\n\r\n");
    s.get_mut().write_all(&msg).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 200 OK\r\n"), "{head}");
    let encapsulated = format!("req-hdr=0, req-body={}", req_hdr.len());
    assert_eq!(header(&head, "Encapsulated"), Some(encapsulated.as_str()));
    let mut echoed = vec![0; req_hdr.len()];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, req_hdr);
    assert_eq!(read_chunked(&mut s).await, b"hello world");
    let tx = next_tx(&mut rx).await;
    assert_eq!(
        (tx.mode, tx.body.as_slice()),
        (Mode::Reqmod, &b"hello world"[..])
    );
    assert_eq!(stats.snapshot().answered_200_echo, 1);
}

#[tokio::test]
async fn a_get_without_body_or_allow_204_is_echoed_with_null_body() {
    let (addr, mut rx, _stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    let mut msg = format!(
        "REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body={}\r\n\r\n",
        REQ_HDR.len()
    )
    .into_bytes();
    msg.extend_from_slice(REQ_HDR);
    s.get_mut().write_all(&msg).await.unwrap();
    let head = read_head(&mut s).await;
    let encapsulated = format!("req-hdr=0, null-body={}", REQ_HDR.len());
    assert_eq!(header(&head, "Encapsulated"), Some(encapsulated.as_str()));
    let mut echoed = vec![0; REQ_HDR.len()];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, REQ_HDR);
    let tx = next_tx(&mut rx).await;
    assert!(!tx.has_body);
    assert_eq!(tx.http_request_head, REQ_HDR);
}

#[tokio::test]
async fn preview_then_continue_then_204() {
    let (addr, mut rx, _stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    let full = respmod("Preview: 4\r\nAllow: 204\r\n", &[b"abcd"]);
    s.get_mut().write_all(&full).await.unwrap();
    assert_eq!(read_head(&mut s).await, "ICAP/1.0 100 Continue\r\n\r\n");
    s.get_mut()
        .write_all(&[chunk(b"efghij"), b"0\r\n\r\n".to_vec()].concat())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 204 No Content\r\n"), "{head}");
    assert_eq!(next_tx(&mut rx).await.body, b"abcdefghij");
}

#[tokio::test]
async fn preview_holding_the_whole_body_gets_204_even_without_allow_204() {
    let (addr, mut rx, _stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    let mut msg = respmod("Preview: 1024\r\n", &[b"small"]);
    let at = msg.len() - b"0\r\n\r\n".len();
    msg.splice(at.., b"0; ieof\r\n\r\n".iter().copied());
    s.get_mut().write_all(&msg).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 204 No Content\r\n"), "{head}");
    assert_eq!(next_tx(&mut rx).await.body, b"small");
}

#[tokio::test]
async fn preview_without_allow_204_echoes_preview_and_rest() {
    let (addr, mut rx, _stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(&respmod("Preview: 3\r\n", &[b"abc"]))
        .await
        .unwrap();
    assert_eq!(read_head(&mut s).await, "ICAP/1.0 100 Continue\r\n\r\n");
    s.get_mut()
        .write_all(&[chunk(b"defg"), b"0\r\n\r\n".to_vec()].concat())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 200 OK\r\n"), "{head}");
    let encapsulated = format!("res-hdr=0, res-body={}", RES_HDR.len());
    assert_eq!(header(&head, "Encapsulated"), Some(encapsulated.as_str()));
    let mut echoed = vec![0; RES_HDR.len()];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, RES_HDR);
    assert_eq!(read_chunked(&mut s).await, b"abcdefg");
    assert_eq!(next_tx(&mut rx).await.body, b"abcdefg");
}

#[tokio::test]
async fn a_large_echo_streams_while_the_client_still_sends() {
    let (addr, mut rx, _stats) = start(ServerConfig::default()).await;
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let pieces: Vec<&[u8]> = body.chunks(8192).collect();
    let msg = respmod("", &pieces);
    let writer = tokio::spawn(async move { write.write_all(&msg).await.map(|_| write) });
    let mut r = BufReader::new(read);
    let head = read_head(&mut r).await;
    assert!(head.starts_with("ICAP/1.0 200 OK\r\n"), "{head}");
    let mut echoed = vec![0; RES_HDR.len()];
    r.read_exact(&mut echoed).await.unwrap();
    assert_eq!(read_chunked(&mut r).await, body);
    writer.await.unwrap().unwrap();
    let tx = next_tx(&mut rx).await;
    assert_eq!(tx.body, body);
}

#[tokio::test]
async fn a_body_past_the_limit_is_truncated_and_counted() {
    let config = ServerConfig {
        max_body_bytes: 10,
        ..Default::default()
    };
    let (addr, mut rx, stats) = start(config).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(&respmod("Allow: 204\r\n", &[&[b'x'; 60], &[b'y'; 40]]))
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("ICAP/1.0 204"));
    let tx = next_tx(&mut rx).await;
    assert_eq!((tx.body, tx.body_len), (vec![b'x'; 10], 100));
    assert_eq!(stats.snapshot().bodies_truncated, 1);
}

#[tokio::test]
async fn a_full_channel_still_gets_204_and_the_drop_is_counted() {
    let config = ServerConfig {
        handoff_capacity: 1,
        handoff_wait: Duration::from_millis(5),
        ..Default::default()
    };
    let (addr, mut rx, stats) = start(config).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    for _ in 0..3 {
        s.get_mut()
            .write_all(&respmod("Allow: 204\r\n", &[b"z"]))
            .await
            .unwrap();
        assert!(read_head(&mut s).await.starts_with("ICAP/1.0 204"));
    }
    // The hand-over happens after the answer; wait until all three are accounted for.
    let mut snap = stats.snapshot();
    while snap.handed_over + snap.dropped_full < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        snap = stats.snapshot();
    }
    assert_eq!((snap.handed_over, snap.dropped_full), (1, 2));
    assert_eq!(next_tx(&mut rx).await.body, b"z");
}

async fn expect_error(addr: &str, msg: &[u8], status_line: &str) {
    let mut s = BufReader::new(TcpStream::connect(addr).await.unwrap());
    s.get_mut().write_all(msg).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with(status_line), "{head}");
    assert_eq!(header(&head, "Connection"), Some("close"));
    expect_closed(&mut s).await;
}

#[tokio::test]
async fn malformed_requests_get_an_error_and_a_close_and_others_are_still_served() {
    let (addr, mut rx, stats) = start(ServerConfig::default()).await;
    expect_error(
        &addr,
        b"REQMOD icap://h/reqmod ICAP/1.0\r\nbroken header\r\n\r\n",
        "ICAP/1.0 400 ",
    )
    .await;
    expect_error(
        &addr,
        b"REQMOD icap://h/reqmod ICAP/9.0\r\n\r\n",
        "ICAP/1.0 505 ",
    )
    .await;
    expect_error(
        &addr,
        b"PATCH icap://h/reqmod ICAP/1.0\r\n\r\n",
        "ICAP/1.0 501 ",
    )
    .await;
    // A wrong Encapsulated offset: res-body two bytes short of the response head's end.
    let wrong = respmod("Allow: 204\r\n", &[b"data"]);
    let good = format!("res-body={}", REQ_HDR.len() + RES_HDR.len());
    let bad = format!("res-body={}", REQ_HDR.len() + RES_HDR.len() - 2);
    let text = String::from_utf8(wrong).unwrap().replacen(&good, &bad, 1);
    expect_error(&addr, text.as_bytes(), "ICAP/1.0 400 ").await;
    assert_eq!(stats.snapshot().protocol_errors, 4);

    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(&respmod("Allow: 204\r\n", &[b"fine"]))
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("ICAP/1.0 204"));
    assert_eq!(next_tx(&mut rx).await.body, b"fine");
}

#[tokio::test]
async fn a_client_stopping_mid_chunk_hands_over_what_arrived() {
    let (addr, mut rx, stats) = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let full = respmod("Allow: 204\r\n", &[b"0123456789"]);
    let cut = full.len() - b"789\r\n0\r\n\r\n".len();
    s.write_all(&full[..cut]).await.unwrap();
    s.shutdown().await.unwrap();
    let tx = next_tx(&mut rx).await;
    assert_eq!((tx.body.as_slice(), tx.complete), (&b"0123456"[..], false));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "no answer to an aborted request: {rest:?}");
    while stats.snapshot().aborted == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stats.snapshot().aborted, 1);
}

#[tokio::test]
async fn a_stalled_head_times_out_with_408() {
    let config = ServerConfig {
        head_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let (addr, _rx, stats) = start(config).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(b"RESPMOD icap://h/respmod ICAP/1.0\r\nHost: h\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("ICAP/1.0 408 "), "{head}");
    expect_closed(&mut s).await;
    assert_eq!(stats.snapshot().timeouts, 1);
}

#[tokio::test]
async fn a_connection_flood_is_bounded_and_service_resumes() {
    let config = ServerConfig {
        max_connections: 4,
        ..Default::default()
    };
    let (addr, _rx, stats) = start(config).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
        // A served connection answers OPTIONS, which proves it holds a slot.
        s.get_mut()
            .write_all(b"OPTIONS icap://h/x ICAP/1.0\r\n\r\n")
            .await
            .unwrap();
        assert!(read_head(&mut s).await.starts_with("ICAP/1.0 200 OK"));
        idle.push(s);
    }
    for _ in 0..50 {
        let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
        let head = read_head(&mut s).await;
        assert!(head.starts_with("ICAP/1.0 503 "), "{head}");
        expect_closed(&mut s).await;
    }
    // The connections holding slots are still served during the flood.
    for s in &mut idle {
        s.get_mut()
            .write_all(&respmod("Allow: 204\r\n", &[b"during flood"]))
            .await
            .unwrap();
        assert!(read_head(s).await.starts_with("ICAP/1.0 204"));
    }
    let snap: StatsSnapshot = stats.snapshot();
    assert_eq!(
        (snap.connections_accepted, snap.connections_rejected),
        (4, 50)
    );
    assert_eq!(snap.connections_active, 4);
    drop(idle);
    // Slots come back once the server sees the closes; retry until one is served.
    let mut served = false;
    for _ in 0..500 {
        let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
        // A rejected connection may be reset under our write; that is a retry, not a failure.
        let _ = s
            .get_mut()
            .write_all(b"OPTIONS icap://h/x ICAP/1.0\r\n\r\n")
            .await;
        let mut status = String::new();
        let _ = s.read_line(&mut status).await;
        if status.starts_with("ICAP/1.0 200 OK") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "no connection served after the flood ended");
}

#[tokio::test]
async fn connection_close_is_honoured_after_the_answer() {
    let (addr, _rx, _stats) = start(ServerConfig::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
    s.get_mut()
        .write_all(b"OPTIONS icap://h/reqmod ICAP/1.0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(header(&head, "Methods"), Some("REQMOD"));
    expect_closed(&mut s).await;
}

#[tokio::test]
async fn invalid_settings_are_all_reported_before_binding() {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_connections: 0,
        read_timeout: Duration::ZERO,
        preview_bytes: 2 << 20,
        istag: "has \"quotes\"".into(),
        ..Default::default()
    };
    assert_eq!(
        config.validate(),
        vec![
            ConfigError::Zero {
                field: "max_connections"
            },
            ConfigError::Zero {
                field: "read_timeout"
            },
            ConfigError::PreviewTooLarge { value: 2 << 20 },
            ConfigError::BadIstag,
        ]
    );
    let err = IcapServer::bind(config).await.err().expect("rejected");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(ServerConfig::default().validate().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections_are_all_served() {
    const CLIENTS: usize = 32;
    const ROUNDS: usize = 10;
    // Room for every transaction: this test is about serving, not about drops under load.
    let config = ServerConfig {
        handoff_capacity: CLIENTS * ROUNDS,
        ..Default::default()
    };
    let (addr, mut rx, stats) = start(config).await;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let addr = addr.clone();
        clients.push(tokio::spawn(async move {
            let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
            for round in 0..ROUNDS {
                let body = format!("client {client} round {round}");
                let msg = respmod("Allow: 204\r\n", &[body.as_bytes()]);
                s.get_mut().write_all(&msg).await.unwrap();
                assert!(read_head(&mut s).await.starts_with("ICAP/1.0 204"));
            }
        }));
    }
    let mut bodies = Vec::new();
    for _ in 0..CLIENTS * ROUNDS {
        bodies.push(String::from_utf8(next_tx(&mut rx).await.body).unwrap());
    }
    for c in clients {
        c.await.unwrap();
    }
    bodies.sort();
    let mut want: Vec<String> = (0..CLIENTS)
        .flat_map(|c| (0..ROUNDS).map(move |r| format!("client {c} round {r}")))
        .collect();
    want.sort();
    assert_eq!(bodies, want);
    let snap = stats.snapshot();
    assert_eq!(
        (snap.connections_accepted, snap.respmod, snap.dropped_full),
        (32, 320, 0)
    );
}
