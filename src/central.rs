//! `weir central`: the reference Central Node receiver (protocol v1, docs/protocol-v1.md) until
//! SIGINT or SIGTERM. Mutual TLS: the receiver's certificate and key, and the CA that signed the
//! sensors' certificates, default to DATA/tls/{cn.pem, cn.key, ca.pem}.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use weir_sensor_link::receiver::{self, ServerTls};

pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

pub fn run(listen: &str, data: &Path, tls: TlsFiles) -> anyhow::Result<()> {
    let listen: SocketAddr = listen.parse().with_context(|| format!("--listen {listen}: not an address:port"))?;
    let tls_dir = data.join("tls");
    let ca = tls.ca.unwrap_or_else(|| tls_dir.join("ca.pem"));
    let cert = tls.cert.unwrap_or_else(|| tls_dir.join("cn.pem"));
    let key = tls.key.unwrap_or_else(|| tls_dir.join("cn.key"));
    let server_tls = ServerTls::from_files(&ca, &cert, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the receiver's runtime")?;
    runtime.block_on(async {
        let serving = receiver::serve(listen, data, server_tls);
        eprintln!("weir: Central Node receiver on {listen}, data in {}", data.display());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            result = serving => result.map_err(|e| anyhow::anyhow!("{e}")),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    })
}
