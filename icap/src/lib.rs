//! ICAP/1.0 server (RFC 3507): a web proxy that terminates TLS hands Weir every HTTP request and
//! response; Weir answers at once (`204 No Content`: it observes, it never modifies) and passes
//! the encapsulated HTTP message on to the same pipeline as captured traffic.
//!
//! - [`wire`]: the sans-IO request parser (request line, headers, `Encapsulated`, `Preview`,
//!   `Allow: 204`, `X-Client-IP`, chunked bodies with `ieof`).
//! - [`response`]: the answers Weir writes.
//! - [`IcapServer`]: the tokio server. Each transaction arrives on a bounded channel as an owned
//!   [`Transaction`]; [`Transaction::http_stream`] frames it for an HTTP/1.x stream parser.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use weir_icap::{IcapServer, ServerConfig};
//! let config = ServerConfig { listen: "127.0.0.1:1344".parse().unwrap(), ..Default::default() };
//! let (server, mut transactions) = IcapServer::bind(config).await?;
//! tokio::spawn(server.run());
//! while let Some(tx) = transactions.recv().await {
//!     println!("{:?} {} body bytes from {:?}", tx.mode, tx.body_len, tx.client_ip);
//! }
//! # Ok(()) }
//! ```

pub mod response;
mod server;
mod transaction;
pub mod wire;

pub use server::{
    ConfigError, DEFAULT_HANDOFF_CAPACITY, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
    IcapServer, ServerConfig, ServerStats, StatsSnapshot,
};
pub use transaction::{HttpStream, Mode, Transaction};
pub use wire::{IcapError, Limits};
