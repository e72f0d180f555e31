//! Serves ICAP and prints one line per transaction: what a proxy is sending Weir.
//!
//! `cargo run -p weir-icap --example observe -- 127.0.0.1:1344`

use weir_icap::{IcapServer, ServerConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1344".to_string());
    let listen = listen
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let (server, mut transactions) = IcapServer::bind(ServerConfig {
        listen,
        ..Default::default()
    })
    .await?;
    eprintln!("ICAP on {}", server.local_addr()?);
    let stats = server.stats();
    tokio::spawn(server.run());
    while let Some(tx) = transactions.recv().await {
        let request_line = tx
            .http_request_head
            .split(|&b| b == b'\r')
            .next()
            .unwrap_or_default();
        println!(
            "{} {:?} client={} {} body={}{}{}",
            tx.received_at,
            tx.mode,
            tx.client_ip.map_or("-".to_string(), |ip| ip.to_string()),
            String::from_utf8_lossy(request_line),
            tx.body_len,
            if tx.body_truncated() {
                " truncated"
            } else {
                ""
            },
            if tx.complete { "" } else { " incomplete" },
        );
        eprintln!("{:?}", stats.snapshot());
    }
    Ok(())
}
