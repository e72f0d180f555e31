//! Test harness: a PKI made at test time, the reference receiver on loopback, a fault-injecting
//! TCP proxy, and helpers to read what the receiver stored.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_sensor_link::receiver::{Receiver, ServerTls};
use weir_sensor_link::{ClientTls, LinkConfig};

pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).unwrap();
        Pki { ca_pem: ca.pem(), issuer: Issuer::new(params, key) }
    }

    /// A leaf certificate for `names` (PEM cert, PEM key).
    pub fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn server_tls(&self) -> ServerTls {
        let (cert, key) = self.leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        ServerTls { ca_pem: self.ca_pem.clone().into_bytes(), cert_pem: cert.into_bytes(), key_pem: key.into_bytes() }
    }

    /// A sensor's client TLS, trusting `server_ca` for the Central Node.
    pub fn client_tls(&self, sensor_id: &str, server_ca: &Pki) -> ClientTls {
        let (cert, key) = self.leaf(&[sensor_id], ExtendedKeyUsagePurpose::ClientAuth);
        ClientTls { ca_pem: server_ca.ca_pem.clone().into_bytes(), cert_pem: cert.into_bytes(), key_pem: key.into_bytes() }
    }
}

/// The reference receiver on its own runtime; dropping it stops it.
pub struct Cn {
    pub addr: SocketAddr,
    pub data: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Cn {
    pub fn start(data: &Path, tls: ServerTls, addr: Option<SocketAddr>) -> Cn {
        Cn::start_with(data, tls, addr, None)
    }

    pub fn start_with(data: &Path, tls: ServerTls, addr: Option<SocketAddr>, token: Option<&str>) -> Cn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listen = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let mut receiver = runtime.block_on(Receiver::bind(listen, data, tls)).unwrap();
        if let Some(t) = token {
            receiver = receiver.with_token(t);
        }
        let addr = receiver.local_addr().unwrap();
        runtime.spawn(receiver.run());
        Cn { addr, data: data.to_path_buf(), runtime: Some(runtime) }
    }

    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }
}

impl Drop for Cn {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A link configuration with short delays, so tests spend their time delivering, not sleeping.
pub fn fast_config(url: &str, sensor_id: &str, tls: ClientTls, spool: &Path) -> LinkConfig {
    let mut c = LinkConfig::new(url, sensor_id, tls, spool);
    c.batch_max_events = 100;
    c.batch_max_age = Duration::from_millis(50);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.health_interval = Duration::from_millis(200);
    c.poll_interval = Duration::from_millis(100);
    c
}

/// Polls `done` until it holds. The deadline only turns a hang into a failure with a message; no
/// test asserts how long anything took.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The event records the receiver stored for a sensor, in order.
pub fn stored_events(data: &Path, sensor: &str) -> Vec<Value> {
    match std::fs::read_to_string(data.join(sensor).join("events.ndjson")) {
        Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The `n` field of each stored event.
pub fn stored_ns(data: &Path, sensor: &str) -> Vec<u64> {
    stored_events(data, sensor).iter().map(|e| e["n"].as_u64().unwrap()).collect()
}

pub fn event(n: u64) -> Vec<u8> {
    format!(r#"{{"timestamp":"2024-01-31T12:00:00.000000+0000","event_type":"alert","n":{n}}}"#).into_bytes()
}

/// Deterministic file content number `n`.
pub fn file_bytes(n: u64) -> Vec<u8> {
    let mut b = format!("MZ file {n} ").into_bytes();
    b.extend((0..(n * 977 % 20_000)).map(|i| (i * 31 + n) as u8));
    b
}

/// What the fault proxy does to connection number `i`.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Answers garbage that is not TLS, then closes.
    Garbage,
    /// Forwards, but closes both ways after this many client bytes (mid-request or mid-body).
    CutAfter(usize),
    /// Waits this long before forwarding anything.
    Slow(Duration),
    /// Forwards, waiting this long before each chunk the client sends.
    Drip(Duration),
    Pass,
}

/// A TCP proxy to `upstream` applying `plan(i)` to the i-th connection; counts connections.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr, plan: fn(u64) -> Fault) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let i = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    match plan(i) {
                        Fault::Garbage => {
                            let _ = client.write_all(b"\x00\xffHTTP/1.1 200 OK\r\n\r\ngarbage").await;
                        }
                        Fault::Slow(d) => {
                            tokio::time::sleep(d).await;
                            pass(client, upstream, usize::MAX, Duration::ZERO).await;
                        }
                        Fault::CutAfter(n) => pass(client, upstream, n, Duration::ZERO).await,
                        Fault::Drip(d) => pass(client, upstream, usize::MAX, d).await,
                        Fault::Pass => pass(client, upstream, usize::MAX, Duration::ZERO).await,
                    }
                });
            }
        });
        FaultProxy { addr, connections, runtime: Some(runtime) }
    }

    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn pass(mut client: tokio::net::TcpStream, upstream: SocketAddr, limit: usize, drip: Duration) {
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 16 << 10];
        let mut sent = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if !drip.is_zero() {
                tokio::time::sleep(drip).await;
            }
            let n = n.min(limit - sent);
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            sent += n;
            if sent >= limit {
                return;
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    // Either side ending ends both: a cut connection is cut both ways.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
