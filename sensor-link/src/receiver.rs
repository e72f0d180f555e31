//! The reference Central Node: terminates mutual TLS, accepts protocol v1 from many sensors at
//! once, and keeps what they send under `DIR`. It is what tests and a first deployment use; it is
//! not a SIEM.
//!
//! ```text
//! DIR/policy/default.json            policy served to every sensor without its own
//! DIR/policy/<sensor_id>.json        policy for one sensor
//! DIR/updates/<kind>/<name>          update files (kind = rules | reputation | ioc); the manifest is
//!                                    computed from them, unless DIR/updates/<kind>/manifest.json
//!                                    exists, which is then served as it is
//! DIR/<sensor_id>/events.ndjson      every event batch, appended once per Idempotency-Key
//! DIR/<sensor_id>/idempotency.log    keys of the batches stored, one per line
//! DIR/<sensor_id>/files/<aa>/<sha256>
//! DIR/<sensor_id>/emails/<aa>/<sha256>.eml
//! DIR/<sensor_id>/health.json        the last health report
//! ```
//!
//! A sensor is identified by its client certificate, verified against the CA: the `{sensor_id}`
//! of every path must be one of the certificate's subjectAltName DNS names. File writes are plain
//! blocking calls: this server is small and its disk is local.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use weir_spool::hex;

use crate::protocol::{
    self, API_PREFIX, IDEMPOTENCY_KEY, MAX_DOCUMENT_BYTES, MAX_EVENT_BATCH_BYTES, MAX_UPLOAD_BYTES, Manifest, ManifestFile,
    PROTOCOL_HEADER, PROTOCOL_VERSION, UpdateKind,
};

/// Connections served at once; further ones wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Idempotency keys remembered in memory per sensor (all are kept on disk, and reloaded at start
/// up to this many, newest first).
pub const MAX_REMEMBERED_KEYS: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("central: TLS setup: {0}")]
    Tls(String),
    #[error("central: {what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
}

/// The receiver's certificate and key, and the CA that signs sensors' client certificates, as
/// PEM.
#[derive(Clone)]
pub struct ServerTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl ServerTls {
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<ServerTls, ReceiverError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| ReceiverError::Io { what: "reading", path: p.display().to_string(), source })
        };
        Ok(ServerTls { ca_pem: read(ca)?, cert_pem: read(cert)?, key_pem: read(key)? })
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, ReceiverError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = |what: &str, e: &dyn std::fmt::Display| ReceiverError::Tls(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots.add(cert.map_err(|e| tls("ca", &e))?).map_err(|e| tls("ca", &e))?;
        }
        if roots.is_empty() {
            return Err(ReceiverError::Tls("ca: no certificate in the PEM".into()));
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().map_err(|e| tls("client verifier", &e))?;
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls("cert", &e))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| tls("key", &e))?;
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| tls("cert/key", &e))
    }
}

/// A bound, not yet running, Central Node.
pub struct Receiver {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
}

struct State {
    data: PathBuf,
    token: Option<String>,
    sensors: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeyLog>>>>,
    connections: Arc<tokio::sync::Semaphore>,
}

/// The idempotency keys of one sensor's stored batches.
#[derive(Default)]
struct KeyLog {
    loaded: bool,
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl KeyLog {
    fn remember(&mut self, key: String) {
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > MAX_REMEMBERED_KEYS
                && let Some(old) = self.order.pop_front()
            {
                self.keys.remove(&old);
            }
        }
    }
}

impl Receiver {
    /// Binds `listen` and prepares TLS; `data` is created when missing.
    pub async fn bind(listen: SocketAddr, data: &Path, tls: ServerTls) -> Result<Receiver, ReceiverError> {
        let config = tls.server_config()?;
        std::fs::create_dir_all(data)
            .map_err(|source| ReceiverError::Io { what: "creating", path: data.display().to_string(), source })?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ReceiverError::Io { what: "listening on", path: listen.to_string(), source })?;
        let state = Arc::new(State {
            data: data.to_path_buf(),
            token: None,
            sensors: Mutex::new(HashMap::new()),
            connections: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        });
        Ok(Receiver { listener, acceptor: TlsAcceptor::from(Arc::new(config)), state })
    }

    /// Also require `Authorization: Bearer <token>` on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.token = Some(token.into());
        }
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn run(self) -> Result<(), ReceiverError> {
        tracing::info!(addr = ?self.listener.local_addr().ok(), data = %self.state.data.display(), "central: serving protocol v1");
        loop {
            let Ok(permit) = self.state.connections.clone().acquire_owned().await else { return Ok(()) };
            let (tcp, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!("central: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = self.acceptor.clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, "central: TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "central: TLS handshake timed out");
                        return;
                    }
                };
                let names = Arc::new(
                    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(certificate_names).unwrap_or_default(),
                );
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let names = names.clone();
                    async move { Ok::<_, Infallible>(state.handle(&names, req).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(%peer, "central: connection ended: {e}");
                }
            });
        }
    }
}

/// Binds and serves: `weir central --listen ADDR --data DIR`.
pub async fn serve(listen: SocketAddr, data: &Path, tls: ServerTls) -> Result<(), ReceiverError> {
    Receiver::bind(listen, data, tls).await?.run().await
}

/// The subjectAltName DNS names of a verified client certificate: the sensor ids it may act as.
fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(cert) {
        Ok(ee) => ee.valid_dns_names().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL_VERSION));
    resp
}

fn json_answer(status: StatusCode, value: Value) -> Answer {
    let mut resp = answer(status, value.to_string());
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, message: &str) -> Answer {
    json_answer(status, json!({ "error": message }))
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex(&Sha256::digest(bytes))[..32])
}

/// Answers a document with its ETag, or 304 when the sensor has it.
fn conditional(req_etag: Option<&HeaderValue>, body: Vec<u8>) -> Answer {
    let etag = etag_of(&body);
    if req_etag.and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        let mut resp = answer(StatusCode::NOT_MODIFIED, Bytes::new());
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return resp;
    }
    let mut resp = answer(StatusCode::OK, body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

fn body_error(e: BodyError) -> Answer {
    match e {
        BodyError::TooLarge => error(StatusCode::PAYLOAD_TOO_LARGE, "body over the limit"),
        BodyError::Broken => error(StatusCode::BAD_REQUEST, "body ended early"),
    }
}

impl State {
    async fn handle(&self, names: &[String], req: Request<Incoming>) -> Answer {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix(API_PREFIX).and_then(|r| r.strip_prefix('/')) else {
            return error(StatusCode::NOT_FOUND, "not a protocol v1 path");
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let sensor = segments[0];
        if !protocol::valid_sensor_id(sensor) {
            return error(StatusCode::NOT_FOUND, "invalid sensor id");
        }
        if !names.iter().any(|n| n == sensor) {
            tracing::warn!(sensor, certificate = ?names, "central: request for a sensor id the client certificate does not name");
            return error(StatusCode::FORBIDDEN, "the client certificate does not name this sensor");
        }
        if let Some(token) = &self.token {
            let sent = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            if sent != Some(format!("Bearer {token}").as_str()) {
                return error(StatusCode::UNAUTHORIZED, "bearer token missing or wrong");
            }
        }
        let method = req.method().clone();
        let result = match (&method, &segments[1..]) {
            (&Method::POST, ["events"]) => self.events(sensor, req).await,
            (&Method::POST, ["health"]) => self.health(sensor, req).await,
            (&Method::GET, ["policy"]) => self.policy(sensor, &req),
            (&Method::HEAD | &Method::PUT, [kind @ ("files" | "emails"), sha]) => self.content(sensor, kind, sha, req).await,
            (&Method::GET, ["updates", kind]) => self.manifest(kind, &req),
            (&Method::GET, ["updates", kind, name]) => self.update_file(kind, name),
            (_, ["events" | "health" | "policy"] | ["files" | "emails" | "updates", _] | ["updates", _, _]) => {
                Ok(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"))
            }
            _ => Ok(error(StatusCode::NOT_FOUND, "unknown endpoint")),
        };
        result.unwrap_or_else(|e| {
            tracing::error!(sensor, %path, "central: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
        })
    }

    fn sensor_dir(&self, sensor: &str) -> PathBuf {
        self.data.join(sensor)
    }

    fn key_log(&self, sensor: &str) -> Arc<tokio::sync::Mutex<KeyLog>> {
        let mut sensors = self.sensors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sensors.entry(sensor.to_string()).or_default().clone()
    }

    async fn events(&self, sensor: &str, req: Request<Incoming>) -> Result<Answer, ReceiverError> {
        let key = req.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(key) = key.filter(|k| protocol::valid_idempotency_key(k)) else {
            return Ok(error(StatusCode::BAD_REQUEST, "missing or invalid Idempotency-Key"));
        };
        let body = match read_body(req, MAX_EVENT_BATCH_BYTES).await {
            Ok(b) => b,
            Err(e) => return Ok(body_error(e)),
        };
        let mut count = 0u64;
        for (n, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(_)) => count += 1,
                _ => return Ok(error(StatusCode::BAD_REQUEST, &format!("line {} is not a JSON object", n + 1))),
            }
        }
        let log = self.key_log(sensor);
        // One batch of a sensor at a time: a retry racing its original cannot store twice.
        let mut log = log.lock().await;
        let dir = self.sensor_dir(sensor);
        if !log.loaded {
            if let Ok(text) = std::fs::read_to_string(dir.join("idempotency.log")) {
                let lines: Vec<&str> = text.lines().collect();
                for k in &lines[lines.len().saturating_sub(MAX_REMEMBERED_KEYS)..] {
                    log.remember((*k).to_string());
                }
            }
            log.loaded = true;
        }
        if log.keys.contains(&key) {
            return Ok(json_answer(StatusCode::OK, json!({ "accepted": 0, "duplicate": true })));
        }
        mkdir(&dir)?;
        let mut data = body.to_vec();
        if data.last().is_some_and(|&b| b != b'\n') {
            data.push(b'\n');
        }
        // Events first, then the key: a crash between the two stores a batch that a retry may
        // store again, never a key without its events.
        append(&dir.join("events.ndjson"), &data)?;
        append(&dir.join("idempotency.log"), format!("{key}\n").as_bytes())?;
        log.remember(key);
        Ok(json_answer(StatusCode::CREATED, json!({ "accepted": count, "duplicate": false })))
    }

    async fn health(&self, sensor: &str, req: Request<Incoming>) -> Result<Answer, ReceiverError> {
        let body = match read_body(req, MAX_DOCUMENT_BYTES).await {
            Ok(b) => b,
            Err(e) => return Ok(body_error(e)),
        };
        if serde_json::from_slice::<Value>(&body).map_or(true, |v| !v.is_object()) {
            return Ok(error(StatusCode::BAD_REQUEST, "health report is not a JSON object"));
        }
        let dir = self.sensor_dir(sensor);
        mkdir(&dir)?;
        write_atomic(&dir.join("health.json"), &body)?;
        Ok(answer(StatusCode::NO_CONTENT, Bytes::new()))
    }

    fn policy(&self, sensor: &str, req: &Request<Incoming>) -> Result<Answer, ReceiverError> {
        let dir = self.data.join("policy");
        for name in [format!("{sensor}.json"), "default.json".to_string()] {
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => return Ok(conditional(req.headers().get(header::IF_NONE_MATCH), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io("reading", &dir.join(name), source)),
            }
        }
        Ok(error(StatusCode::NOT_FOUND, "no policy for this sensor"))
    }

    async fn content(&self, sensor: &str, kind: &str, sha: &str, req: Request<Incoming>) -> Result<Answer, ReceiverError> {
        let Some(digest) = weir_spool::unhex32(sha) else {
            return Ok(error(StatusCode::BAD_REQUEST, "not a SHA-256"));
        };
        let name = hex(&digest);
        let file = if kind == "files" { name.clone() } else { format!("{name}.eml") };
        let path = self.sensor_dir(sensor).join(kind).join(&name[..2]).join(file);
        let present = path.exists();
        if req.method() == Method::HEAD {
            let status = if present { StatusCode::OK } else { StatusCode::NOT_FOUND };
            return Ok(answer(status, Bytes::new()));
        }
        if present {
            // Content addressed: what is stored under this name is this content.
            return Ok(answer(StatusCode::OK, Bytes::new()));
        }
        let limit = usize::try_from(MAX_UPLOAD_BYTES).unwrap_or(usize::MAX);
        let body = match read_body(req, limit).await {
            Ok(b) => b,
            Err(e) => return Ok(body_error(e)),
        };
        let got: [u8; 32] = Sha256::digest(&body).into();
        if got != digest {
            return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, "body does not hash to the SHA-256 in the path"));
        }
        if let Some(parent) = path.parent() {
            mkdir(parent)?;
        }
        write_atomic(&path, &body)?;
        Ok(answer(StatusCode::CREATED, Bytes::new()))
    }

    fn manifest(&self, kind: &str, req: &Request<Incoming>) -> Result<Answer, ReceiverError> {
        let Some(kind) = UpdateKind::parse(kind) else { return Ok(error(StatusCode::NOT_FOUND, "unknown update kind")) };
        let dir = self.data.join("updates").join(kind.as_str());
        let given = dir.join("manifest.json");
        let body = match std::fs::read(&given) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match build_manifest(kind, &dir)? {
                Some(m) => serde_json::to_vec(&m).unwrap_or_default(),
                None => return Ok(error(StatusCode::NOT_FOUND, "no update of this kind")),
            },
            Err(source) => return Err(io("reading", &given, source)),
        };
        Ok(conditional(req.headers().get(header::IF_NONE_MATCH), body))
    }

    fn update_file(&self, kind: &str, name: &str) -> Result<Answer, ReceiverError> {
        let (Some(kind), true) = (UpdateKind::parse(kind), protocol::valid_file_name(name)) else {
            return Ok(error(StatusCode::NOT_FOUND, "unknown update file"));
        };
        let path = self.data.join("updates").join(kind.as_str()).join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut resp = answer(StatusCode::OK, bytes);
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                Ok(resp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(error(StatusCode::NOT_FOUND, "unknown update file")),
            Err(source) => Err(io("reading", &path, source)),
        }
    }
}

/// The manifest of the files in an update folder (sorted by name), versioned by their hashes.
fn build_manifest(kind: UpdateKind, dir: &Path) -> Result<Option<Manifest>, ReceiverError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io("listing", dir, source)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| protocol::valid_file_name(n) && n != "manifest.json")
        .collect();
    names.sort();
    names.truncate(protocol::MAX_MANIFEST_FILES);
    if names.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    let mut listing = Sha256::new();
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| io("reading", &path, source))?;
        let sha256 = hex(&Sha256::digest(&bytes));
        listing.update(format!("{name} {sha256}\n"));
        files.push(ManifestFile { name, sha256, size: bytes.len() as u64 });
    }
    Ok(Some(Manifest { kind, version: hex(&listing.finalize())[..16].to_string(), files }))
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> ReceiverError {
    ReceiverError::Io { what, path: path.display().to_string(), source }
}

fn mkdir(dir: &Path) -> Result<(), ReceiverError> {
    std::fs::create_dir_all(dir).map_err(|source| io("creating", dir, source))
}

fn append(path: &Path, bytes: &[u8]) -> Result<(), ReceiverError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| io("opening", path, source))?;
    f.write_all(bytes).map_err(|source| io("appending to", path, source))?;
    f.sync_data().map_err(|source| io("syncing", path, source))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReceiverError> {
    let tmp = path.with_file_name(format!(
        ".{}.{:016x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        fastrand::u64(..)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        io("writing", path, source)
    })
}
