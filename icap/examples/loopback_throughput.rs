//! Loopback throughput: CLIENTS connections each send REQUESTS RESPMOD transactions of BODY
//! bytes with `Allow: 204`, while one consumer drains the hand-over channel.
//!
//! `cargo run -p weir-icap --profile test --example loopback_throughput -- 8 500 65536`

use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use weir_icap::{IcapServer, ServerConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (clients, requests, body_len) = (arg(1, 8), arg(2, 500), arg(3, 65536));
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let (server, mut transactions) = IcapServer::bind(config).await?;
    let addr = server.local_addr()?;
    let stats = server.stats();
    tokio::spawn(server.run());
    let consumer = tokio::spawn(async move {
        let mut bytes = 0u64;
        while let Some(tx) = transactions.recv().await {
            bytes += tx.body.len() as u64;
        }
        bytes
    });

    let res_hdr = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
    let mut message = format!(
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nAllow: 204\r\n\
         Encapsulated: res-hdr=0, res-body={}\r\n\r\n",
        res_hdr.len()
    )
    .into_bytes();
    message.extend_from_slice(res_hdr);
    for piece in vec![0x5au8; body_len].chunks(16 * 1024) {
        message.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        message.extend_from_slice(piece);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"0\r\n\r\n");
    let message = std::sync::Arc::new(message);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let message = message.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = BufReader::new(TcpStream::connect(addr).await?);
            for _ in 0..requests {
                s.get_mut().write_all(&message).await?;
                let mut line = String::new();
                loop {
                    line.clear();
                    s.read_line(&mut line).await?;
                    if line == "\r\n" {
                        break;
                    }
                }
            }
            std::io::Result::Ok(())
        }));
    }
    for t in tasks {
        t.await.expect("client task")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = (clients * requests) as f64;
    println!(
        "{} transactions of {body_len} bytes over {clients} connections in {elapsed:.2}s: \
         {:.0} tx/s, {:.0} MB/s of bodies",
        total,
        total / elapsed,
        total * body_len as f64 / elapsed / 1e6
    );
    println!("{:?}", stats.snapshot());
    drop(consumer);
    Ok(())
}
