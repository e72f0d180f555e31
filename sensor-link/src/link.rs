//! The sensor side of protocol v1.
//!
//! Life of an outbound item: [`Link::event`] / [`Link::file`] / [`Link::email`] put it on a bounded
//! intake channel and return at once. The intake thread batches events (by count, bytes and age)
//! and pushes each batch, with its idempotency key chosen once, as one spool item; files and
//! emails are pushed as references into their content stores. An item leaves the spool only when
//! the Central Node answers 2xx (or 409 "already have it" for content), when the CN refuses it for
//! good (400/413/422: dropped with a counted, logged record), or when it outlives the retention.
//! Events in the intake, not yet in a batch, are in memory for at most `batch_max_age`;
//! [`Link::flush`] returns once everything offered before it is in the spool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Client, Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use weir_spool::{ContentError, ContentRef, ContentStore, Item, NewItem, Payload, Spool, SpoolConfig, SpoolError, hex};

use crate::protocol::{
    self, API_PREFIX, IDEMPOTENCY_KEY, LicenseState, MAX_DOCUMENT_BYTES, MAX_UPLOAD_BYTES, Manifest, PROTOCOL_HEADER,
    PROTOCOL_VERSION, Policy, UpdateKind,
};

/// Spool queue of event batches (NDJSON bodies).
pub const EVENTS_QUEUE: &str = "central.events";
/// Spool queue of extracted files to upload.
pub const FILES_QUEUE: &str = "central.files";
/// Spool queue of email messages to upload.
pub const EMAILS_QUEUE: &str = "central.emails";
/// Records waiting in the intake channel before the offering side is refused.
pub const INTAKE_CAPACITY: usize = 65_536;
/// Largest single EVE record accepted; bigger records are refused (and counted).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Longest an idle sender sleeps before looking at its queue again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How often undelivered items are checked against the retention.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

/// Called with a staged update's folder; `Err(reason)` rejects the update and the old one stays.
/// Runs on a blocking thread, so loading a full ruleset is fine.
pub type UpdateValidator = Arc<dyn Fn(UpdateKind, &Path) -> Result<(), String> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("[central] configuration: {0}")]
    Config(String),
    #[error("[central] reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("[central] {0}")]
    Spool(#[from] SpoolError),
    #[error("[central] runtime: {0}")]
    Runtime(std::io::Error),
    #[error("[central] the link is stopped")]
    Stopped,
}

/// The sensor's client certificate and key and the Central Node's CA, as PEM.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl ClientTls {
    /// Reads the `[central]` `ca`, `cert` and `key` files.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<ClientTls, LinkError> {
        let read = |p: &Path| std::fs::read(p).map_err(|source| LinkError::Read { path: p.display().to_string(), source });
        Ok(ClientTls { ca_pem: read(ca)?, cert_pem: read(cert)?, key_pem: read(key)? })
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls { .. }")
    }
}

/// Everything the link needs; [`LinkConfig::new`] fills the documented defaults.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// The Central Node's base URL, `https://host:port/`.
    pub url: String,
    pub sensor_id: String,
    pub tls: ClientTls,
    /// Optional bearer token sent with every request.
    pub token: Option<String>,
    pub spool_dir: PathBuf,
    /// Default 21 (SPEC section 7).
    pub retention_days: u64,
    /// Default `weir_spool::DEFAULT_MAX_BYTES`.
    pub spool_max_bytes: u64,
    /// A batch is sent when it holds this many events (default 500) ...
    pub batch_max_events: usize,
    /// ... or this many bytes (default 1 MiB) ...
    pub batch_max_bytes: usize,
    /// ... or its first event is this old (default 1 s).
    pub batch_max_age: Duration,
    /// Files (and, separately, emails) uploaded at once (default 2).
    pub upload_concurrency: usize,
    /// Whole-request timeout (default 60 s) and connect timeout (default 10 s).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Retry delay after the first failure, doubled per further failure up to the maximum, with
    /// jitter (defaults 500 ms, 60 s).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Health report period (default 60 s).
    pub health_interval: Duration,
    /// Policy and update poll period (default 300 s).
    pub poll_interval: Duration,
    /// Warn this long before the license expires (default 14 days).
    pub license_warning: Duration,
}

impl LinkConfig {
    pub fn new(url: impl Into<String>, sensor_id: impl Into<String>, tls: ClientTls, spool_dir: impl Into<PathBuf>) -> Self {
        LinkConfig {
            url: url.into(),
            sensor_id: sensor_id.into(),
            tls,
            token: None,
            spool_dir: spool_dir.into(),
            retention_days: 21,
            spool_max_bytes: weir_spool::DEFAULT_MAX_BYTES,
            batch_max_events: 500,
            batch_max_bytes: 1 << 20,
            batch_max_age: Duration::from_secs(1),
            upload_concurrency: 2,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            health_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(300),
            license_warning: Duration::from_secs(14 * 86_400),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if !self.url.starts_with("https://") {
            errors.push(format!("url {:?} must be https:// (protocol v1 requires mutual TLS)", self.url));
        }
        if !protocol::valid_sensor_id(&self.sensor_id) {
            errors.push(format!("sensor_id {:?} must be 1..=64 bytes of [A-Za-z0-9._-], not policy/updates", self.sensor_id));
        }
        if self.retention_days == 0 {
            errors.push("retention_days must be at least 1".into());
        }
        if self.batch_max_events == 0 || self.batch_max_bytes == 0 || self.batch_max_bytes > protocol::MAX_EVENT_BATCH_BYTES {
            errors.push(format!("batch limits must be positive and at most {} bytes", protocol::MAX_EVENT_BATCH_BYTES));
        }
        if self.upload_concurrency == 0 || self.upload_concurrency > 16 {
            errors.push("upload_concurrency must be 1..=16".into());
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}

/// What became of an offered record, file or email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not kept (intake full, record too large, link stopped); counted and logged.
    Refused(String),
}

/// Counters since this link started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub events_offered: u64,
    pub events_spooled: u64,
    pub batches_delivered: u64,
    pub events_delivered: u64,
    pub files_delivered: u64,
    pub emails_delivered: u64,
    /// Files and emails the CN already had (HEAD 200, PUT 200/409).
    pub content_already_present: u64,
    /// Attempts that failed and will be retried.
    pub retries: u64,
    /// Items the CN refused for good (400/413/422), dropped with a log record.
    pub rejected_by_cn: u64,
    /// Files or emails whose content was missing or changed in the local store.
    pub content_unreadable: u64,
    /// Refused at intake: the channel was full or the record too large.
    pub refused_intake: u64,
    /// Lost because the spool was full (or its disk failed) when they were to be stored.
    pub dropped_spool_full: u64,
    pub dropped_retention: u64,
    pub health_reports: u64,
    pub policy_updates: u64,
    pub updates_applied: u64,
    pub updates_rejected: u64,
}

#[derive(Default)]
struct Counters {
    events_offered: AtomicU64,
    events_spooled: AtomicU64,
    batches_delivered: AtomicU64,
    events_delivered: AtomicU64,
    files_delivered: AtomicU64,
    emails_delivered: AtomicU64,
    content_already_present: AtomicU64,
    retries: AtomicU64,
    rejected_by_cn: AtomicU64,
    content_unreadable: AtomicU64,
    refused_intake: AtomicU64,
    dropped_spool_full: AtomicU64,
    dropped_retention: AtomicU64,
    health_reports: AtomicU64,
    policy_updates: AtomicU64,
    updates_applied: AtomicU64,
    updates_rejected: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LinkStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            events_offered: g(&self.events_offered),
            events_spooled: g(&self.events_spooled),
            batches_delivered: g(&self.batches_delivered),
            events_delivered: g(&self.events_delivered),
            files_delivered: g(&self.files_delivered),
            emails_delivered: g(&self.emails_delivered),
            content_already_present: g(&self.content_already_present),
            retries: g(&self.retries),
            rejected_by_cn: g(&self.rejected_by_cn),
            content_unreadable: g(&self.content_unreadable),
            refused_intake: g(&self.refused_intake),
            dropped_spool_full: g(&self.dropped_spool_full),
            dropped_retention: g(&self.dropped_retention),
            health_reports: g(&self.health_reports),
            policy_updates: g(&self.policy_updates),
            updates_applied: g(&self.updates_applied),
            updates_rejected: g(&self.updates_rejected),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueHealth {
    pub depth: u64,
    pub oldest_age_secs: Option<u64>,
}

/// An update that passed verification and validation and is in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedUpdate {
    pub version: String,
    /// The folder holding its files; it stays until the next update replaces it.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpdateStatus {
    pub applied_version: Option<String>,
    /// The last update refused (bad hash, failed validation), with why.
    pub last_rejected: Option<(String, String)>,
}

/// A snapshot for reports and the health endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    pub stats: LinkStats,
    pub queues: BTreeMap<String, QueueHealth>,
    pub spool_bytes: u64,
    pub license: LicenseState,
    pub updates: BTreeMap<UpdateKind, UpdateStatus>,
    pub last_error: Option<String>,
}

impl LinkStatus {
    /// Items waiting in the spool over all queues.
    pub fn pending(&self) -> u64 {
        self.queues.values().map(|q| q.depth).sum()
    }
}

enum Intake {
    Event(Vec<u8>),
    Content { queue: &'static str, content: ContentRef, meta: Value },
    Flush(SyncSender<()>),
    Stop,
}

#[derive(Default)]
struct PollState {
    policy_etag: Option<String>,
    update_etags: BTreeMap<UpdateKind, String>,
    updates: BTreeMap<UpdateKind, UpdateStatus>,
    last_error: Option<String>,
    license_warned: Option<String>,
}

struct Shared {
    config: LinkConfig,
    base: String,
    http: Client,
    spool: Spool,
    files: Arc<dyn ContentStore>,
    emails: Arc<dyn ContentStore>,
    validator: UpdateValidator,
    counters: Counters,
    wake: [Notify; 3],
    state: Mutex<PollState>,
    sensor_counters: Mutex<BTreeMap<String, u64>>,
    policy_tx: watch::Sender<Option<Arc<Policy>>>,
    updates_tx: watch::Sender<BTreeMap<UpdateKind, AppliedUpdate>>,
    stopping: AtomicBool,
}

/// The Central Node link. Owns a small tokio runtime and one intake thread; nothing it offers to
/// the capture side waits on the network. Start and drop it outside any async context (it owns a
/// runtime, which tokio refuses to drop inside another).
pub struct Link {
    shared: Arc<Shared>,
    intake: Option<SyncSender<Intake>>,
    intake_thread: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Link {
    /// Opens the spool in `config.spool_dir`, loads the last policy and updates applied, and starts
    /// delivering what an earlier run left. `files` and `emails` resolve content references (the
    /// filestore and [`crate::MailStore`]); `validator` checks staged updates.
    pub fn start(
        config: LinkConfig,
        files: Arc<dyn ContentStore>,
        emails: Arc<dyn ContentStore>,
        validator: UpdateValidator,
    ) -> Result<Link, LinkError> {
        config.validate().map_err(LinkError::Config)?;
        let http = http_client(&config)?;
        let spool = Spool::open(
            &config.spool_dir,
            SpoolConfig {
                max_bytes: config.spool_max_bytes,
                retention: Duration::from_secs(config.retention_days.saturating_mul(86_400)),
                ..SpoolConfig::default()
            },
        )?;
        let base = format!("{}{API_PREFIX}/{}", config.url.trim_end_matches('/'), config.sensor_id);
        let mut state = PollState::default();
        let (policy, policy_etag) = load_saved_policy(&config.spool_dir);
        state.policy_etag = policy_etag;
        let mut applied = BTreeMap::new();
        for kind in UpdateKind::ALL {
            if let Some((update, etag)) = load_current_update(&config.spool_dir, kind) {
                state.updates.entry(kind).or_default().applied_version = Some(update.version.clone());
                state.update_etags.insert(kind, etag);
                applied.insert(kind, update);
            }
        }
        let (policy_tx, _) = watch::channel(policy.map(Arc::new));
        let (updates_tx, _) = watch::channel(applied);
        let shared = Arc::new(Shared {
            config,
            base,
            http,
            spool,
            files,
            emails,
            validator,
            counters: Counters::default(),
            wake: [Notify::new(), Notify::new(), Notify::new()],
            state: Mutex::new(state),
            sensor_counters: Mutex::new(BTreeMap::new()),
            policy_tx,
            updates_tx,
            stopping: AtomicBool::new(false),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-central")
            .enable_all()
            .build()
            .map_err(LinkError::Runtime)?;
        runtime.spawn(events_sender(shared.clone()));
        runtime.spawn(content_sender(shared.clone(), FILES_QUEUE));
        runtime.spawn(content_sender(shared.clone(), EMAILS_QUEUE));
        runtime.spawn(health_reporter(shared.clone()));
        runtime.spawn(poller(shared.clone()));
        runtime.spawn(retention_sweeper(shared.clone()));
        let (tx, rx) = sync_channel(INTAKE_CAPACITY);
        let intake_shared = shared.clone();
        let intake_thread = std::thread::Builder::new()
            .name("weir-central-intake".into())
            .spawn(move || intake_loop(&intake_shared, &rx))
            .map_err(LinkError::Runtime)?;
        Ok(Link { shared, intake: Some(tx), intake_thread: Some(intake_thread), runtime: Some(runtime) })
    }

    /// Offers one EVE record: one JSON object on one line, without the trailing newline. Anything
    /// else is refused and counted in `refused_intake`.
    pub fn event(&self, record: Vec<u8>) -> Offer {
        add(&self.shared.counters.events_offered, 1);
        // One bad record would make the CN refuse its whole batch (400), so it is refused here.
        let one_object = record.len() <= MAX_EVENT_BYTES
            && !record.contains(&b'\n')
            && record.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&record).is_ok();
        if !one_object {
            add(&self.shared.counters.refused_intake, 1);
            tracing::error!(len = record.len(), "central link: EVE record refused (not one JSON object on one line, or over {MAX_EVENT_BYTES} bytes)");
            return Offer::Refused("not one JSON object on one line, or too large".into());
        }
        self.offer(Intake::Event(record))
    }

    /// Offers an extracted file stored in the filestore. `meta` is kept for logs.
    pub fn file(&self, content: ContentRef, meta: Value) -> Offer {
        self.offer(Intake::Content { queue: FILES_QUEUE, content, meta })
    }

    /// Offers an email message stored in the mail store.
    pub fn email(&self, content: ContentRef, meta: Value) -> Offer {
        self.offer(Intake::Content { queue: EMAILS_QUEUE, content, meta })
    }

    fn offer(&self, item: Intake) -> Offer {
        let Some(tx) = &self.intake else { return Offer::Refused("link stopped".into()) };
        match tx.try_send(item) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(_)) => {
                add(&self.shared.counters.refused_intake, 1);
                tracing::error!("central link: intake full ({INTAKE_CAPACITY} waiting); item refused");
                Offer::Refused("intake full".into())
            }
            Err(TrySendError::Disconnected(_)) => Offer::Refused("link stopped".into()),
        }
    }

    /// Returns once everything offered before the call is in the spool (or counted as lost).
    pub fn flush(&self) -> Result<(), LinkError> {
        let tx = self.intake.as_ref().ok_or(LinkError::Stopped)?;
        let (done_tx, done_rx) = sync_channel(1);
        tx.send(Intake::Flush(done_tx)).map_err(|_| LinkError::Stopped)?;
        done_rx.recv().map_err(|_| LinkError::Stopped)
    }

    /// Sensor-wide counters (packets, drops, flows, ...) to include in the next health report.
    pub fn set_sensor_counters(&self, counters: BTreeMap<String, u64>) {
        if let Ok(mut c) = self.shared.sensor_counters.lock() {
            *c = counters;
        }
    }

    /// The current policy, as last received (or loaded from the spool directory at start).
    pub fn policy(&self) -> watch::Receiver<Option<Arc<Policy>>> {
        self.shared.policy_tx.subscribe()
    }

    /// The updates in use, per kind; changes when a new update is swapped in.
    pub fn updates(&self) -> watch::Receiver<BTreeMap<UpdateKind, AppliedUpdate>> {
        self.shared.updates_tx.subscribe()
    }

    /// License state now, from the current policy.
    pub fn license(&self) -> LicenseState {
        self.shared.license_state()
    }

    pub fn status(&self) -> LinkStatus {
        self.shared.status()
    }

    /// Spools what is still in the intake and stops. Undelivered items stay in the spool for the
    /// next start.
    pub fn shutdown(mut self) -> LinkStatus {
        self.stop();
        self.shared.status()
    }

    fn stop(&mut self) {
        if let Some(tx) = self.intake.take() {
            let _ = tx.send(Intake::Stop);
        }
        if let Some(t) = self.intake_thread.take() {
            let _ = t.join();
        }
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn license_state(&self) -> LicenseState {
        let policy = self.policy_tx.borrow().clone();
        LicenseState::evaluate(
            policy.as_ref().and_then(|p| p.license.as_ref()),
            SystemTime::now(),
            self.config.license_warning,
        )
    }

    fn status(&self) -> LinkStatus {
        let now = SystemTime::now();
        let mut queues = BTreeMap::new();
        let mut spool_bytes = 0;
        let mut last_error = None;
        match self.spool.stats() {
            Ok(s) => {
                spool_bytes = s.bytes;
                for (name, q) in s.queues.into_iter().filter(|(n, _)| n.starts_with("central.")) {
                    let oldest_age_secs = q.oldest.map(|t| now.duration_since(t).map_or(0, |d| d.as_secs()));
                    queues.insert(name, QueueHealth { depth: q.depth, oldest_age_secs });
                }
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        let (updates, poll_error) = match self.state.lock() {
            Ok(s) => (s.updates.clone(), s.last_error.clone()),
            Err(_) => (BTreeMap::new(), None),
        };
        LinkStatus {
            stats: self.counters.snapshot(),
            queues,
            spool_bytes,
            license: self.license_state(),
            updates,
            last_error: last_error.or(poll_error),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/{tail}", self.base)
    }

    fn backoff(&self, failures: u32) -> Duration {
        backoff_for(&self.config, failures)
    }

    fn wake(&self, queue: &str) {
        let i = match queue {
            EVENTS_QUEUE => 0,
            FILES_QUEUE => 1,
            _ => 2,
        };
        self.wake[i].notify_one();
    }

    async fn idle(&self, queue: &str) {
        let i = match queue {
            EVENTS_QUEUE => 0,
            FILES_QUEUE => 1,
            _ => 2,
        };
        let _ = tokio::time::timeout(IDLE_WAIT, self.wake[i].notified()).await;
    }

    fn note_error(&self, message: String) {
        if let Ok(mut s) = self.state.lock() {
            s.last_error = Some(message);
        }
    }
}

/// Delay after `failures` consecutive failures (at least 1).
fn backoff_for(config: &LinkConfig, failures: u32) -> Duration {
    let min = config.backoff_min.as_millis().max(1) as u64;
    let max = config.backoff_max.as_millis().max(1) as u64;
    let full = min.saturating_mul(1u64 << failures.saturating_sub(1).min(20)).min(max);
    // Equal jitter: at least half the delay, so sensors restarted together spread out without
    // any of them hammering.
    Duration::from_millis(full / 2 + fastrand::u64(0..=full / 2))
}

fn http_client(config: &LinkConfig) -> Result<Client, LinkError> {
    // reqwest is built without a default crypto provider; installing ring twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bad = |what: &str, e: reqwest::Error| LinkError::Config(format!("{what}: {e}"));
    let roots = reqwest::Certificate::from_pem_bundle(&config.tls.ca_pem).map_err(|e| bad("ca", e))?;
    if roots.is_empty() {
        return Err(LinkError::Config("ca: no certificate in the PEM".into()));
    }
    let mut identity_pem = config.tls.cert_pem.clone();
    identity_pem.push(b'\n');
    identity_pem.extend_from_slice(&config.tls.key_pem);
    let identity = reqwest::Identity::from_pem(&identity_pem).map_err(|e| bad("cert/key", e))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(PROTOCOL_HEADER, reqwest::header::HeaderValue::from_static(PROTOCOL_VERSION));
    if let Some(token) = &config.token {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| LinkError::Config("token has characters not allowed in a header".into()))?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    Client::builder()
        .tls_certs_only(roots)
        .identity(identity)
        .default_headers(headers)
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .pool_max_idle_per_host(4)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| bad("client", e))
}

// ---------------------------------------------------------------------------------------------
// Intake

fn intake_loop(sh: &Shared, rx: &Receiver<Intake>) {
    let mut batch: Vec<u8> = Vec::new();
    let mut count = 0usize;
    let mut started: Option<Instant> = None;
    loop {
        let wait = started.map_or(Duration::from_secs(3600), |s| {
            (s + sh.config.batch_max_age).saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait) {
            Ok(Intake::Event(record)) => {
                if count > 0 && batch.len() + record.len() + 1 > sh.config.batch_max_bytes {
                    spool_batch(sh, &mut batch, &mut count);
                    started = None;
                }
                batch.extend_from_slice(&record);
                batch.push(b'\n');
                count += 1;
                started.get_or_insert_with(Instant::now);
                if count >= sh.config.batch_max_events || batch.len() >= sh.config.batch_max_bytes {
                    spool_batch(sh, &mut batch, &mut count);
                    started = None;
                }
            }
            Ok(Intake::Content { queue, content, meta }) => {
                let meta = json!({ "sha256": hex(&content.sha256), "len": content.len, "meta": meta });
                match sh.spool.push(queue, NewItem::new(meta, Payload::Content(content))) {
                    Ok(_) => sh.wake(queue),
                    Err(e) => {
                        add(&sh.counters.dropped_spool_full, 1);
                        tracing::error!(queue, sha256 = %hex(&content.sha256), "central link: not spooled, lost: {e}");
                    }
                }
            }
            Ok(Intake::Flush(done)) => {
                spool_batch(sh, &mut batch, &mut count);
                started = None;
                let _ = done.send(());
            }
            Ok(Intake::Stop) | Err(RecvTimeoutError::Disconnected) => {
                spool_batch(sh, &mut batch, &mut count);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                spool_batch(sh, &mut batch, &mut count);
                started = None;
            }
        }
    }
}

/// Stores the pending batch as one spool item. The idempotency key is chosen here, once, so every
/// retry, after any restart, carries the same key.
fn spool_batch(sh: &Shared, batch: &mut Vec<u8>, count: &mut usize) {
    if *count == 0 {
        return;
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let key = format!("{}:{now_ms}:{:016x}", sh.config.sensor_id, fastrand::u64(..));
    let meta = json!({ "key": key, "count": *count });
    let body = std::mem::take(batch);
    match sh.spool.push(EVENTS_QUEUE, NewItem::new(meta, Payload::Inline(body))) {
        Ok(_) => {
            add(&sh.counters.events_spooled, *count as u64);
            sh.wake(EVENTS_QUEUE);
        }
        Err(e) => {
            add(&sh.counters.dropped_spool_full, *count as u64);
            tracing::error!(events = *count, "central link: event batch not spooled, {} events lost: {e}", *count);
        }
    }
    *count = 0;
}

// ---------------------------------------------------------------------------------------------
// Delivery

enum Outcome {
    /// 2xx; `present` when the CN already had the content.
    Delivered { present: bool },
    /// Refused for good by the CN.
    Rejected(String),
    /// Cannot ever be sent: the local content is gone or changed.
    Unusable(String),
    Retry(String, Option<Duration>),
}

fn classify(result: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(error_chain(&e), None),
    };
    let status = resp.status();
    if status.is_success() {
        return Outcome::Delivered { present: status == StatusCode::OK };
    }
    match status {
        StatusCode::CONFLICT => Outcome::Delivered { present: true },
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY => {
            Outcome::Rejected(format!("HTTP {status}"))
        }
        _ => {
            let hint = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            Outcome::Retry(format!("HTTP {status}"), hint)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Spool calls fsync; keep them off the async workers' hot path.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn events_sender(sh: Arc<Shared>) {
    let mut failures = 0u32;
    while !sh.stopping.load(Ordering::Relaxed) {
        let item = match blocking(|| sh.spool.peek(EVENTS_QUEUE, None, 1)) {
            Ok(mut v) if !v.is_empty() => v.swap_remove(0),
            Ok(_) => {
                sh.idle(EVENTS_QUEUE).await;
                continue;
            }
            Err(e) => {
                tracing::error!("central link: reading the event spool: {e}");
                failures += 1;
                tokio::time::sleep(sh.backoff(failures)).await;
                continue;
            }
        };
        let outcome = send_batch(&sh, &item).await;
        failures = settle(&sh, EVENTS_QUEUE, &item, outcome, failures).await;
    }
}

async fn send_batch(sh: &Shared, item: &Item) -> Outcome {
    let (Some(key), Payload::Inline(body)) = (item.meta.get("key").and_then(Value::as_str), &item.payload) else {
        return Outcome::Rejected("spool item is not an event batch".into());
    };
    let _ = blocking(|| sh.spool.record_attempt(EVENTS_QUEUE, item.id));
    let req = sh
        .http
        .post(sh.url("events"))
        .header(IDEMPOTENCY_KEY, key)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body.clone());
    classify(req.send().await)
}

/// Acts on an outcome; returns the new consecutive-failure count (sleeping after a failure).
async fn settle(sh: &Shared, queue: &str, item: &Item, outcome: Outcome, failures: u32) -> u32 {
    let events = item.meta.get("count").and_then(Value::as_u64).unwrap_or(0);
    let what = item.meta.get("sha256").and_then(Value::as_str).or_else(|| item.meta.get("key").and_then(Value::as_str));
    let what = what.unwrap_or("?").to_string();
    match outcome {
        Outcome::Delivered { present } => {
            ack(sh, queue, item);
            let c = &sh.counters;
            match queue {
                EVENTS_QUEUE => {
                    add(&c.batches_delivered, 1);
                    add(&c.events_delivered, events);
                }
                FILES_QUEUE => add(&c.files_delivered, 1),
                _ => add(&c.emails_delivered, 1),
            }
            if present && queue != EVENTS_QUEUE {
                add(&c.content_already_present, 1);
            }
            0
        }
        Outcome::Rejected(reason) => {
            ack(sh, queue, item);
            add(&sh.counters.rejected_by_cn, 1);
            tracing::error!(queue, item = %what, events, "central link: dropped, refused by the Central Node: {reason}");
            sh.note_error(format!("{queue} {what}: refused by the Central Node: {reason}"));
            0
        }
        Outcome::Unusable(reason) => {
            ack(sh, queue, item);
            add(&sh.counters.content_unreadable, 1);
            tracing::error!(queue, item = %what, "central link: dropped, local content unusable: {reason}");
            sh.note_error(format!("{queue} {what}: local content unusable: {reason}"));
            0
        }
        Outcome::Retry(reason, hint) => {
            add(&sh.counters.retries, 1);
            let failures = failures.saturating_add(1);
            let delay = sh.backoff(failures).max(hint.unwrap_or_default());
            tracing::warn!(queue, item = %what, attempt = item.attempts + 1, "central link: delivery failed, retrying in {delay:?}: {reason}");
            sh.note_error(format!("{queue}: {reason}"));
            tokio::time::sleep(delay).await;
            failures
        }
    }
}

fn ack(sh: &Shared, queue: &str, item: &Item) {
    if let Err(e) = blocking(|| sh.spool.ack(queue, item.id)) {
        // The item stays and is sent again; the CN dedups it.
        tracing::error!(queue, id = item.id.0, "central link: delivered but not removed from the spool: {e}");
    }
}

async fn content_sender(sh: Arc<Shared>, queue: &'static str) {
    let mut failures = 0u32;
    while !sh.stopping.load(Ordering::Relaxed) {
        let items = match blocking(|| sh.spool.peek(queue, None, sh.config.upload_concurrency)) {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                sh.idle(queue).await;
                continue;
            }
            Err(e) => {
                tracing::error!(queue, "central link: reading the spool: {e}");
                failures += 1;
                tokio::time::sleep(sh.backoff(failures)).await;
                continue;
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for item in items {
            let sh = sh.clone();
            set.spawn(async move {
                let outcome = send_content(&sh, queue, &item).await;
                (item, outcome)
            });
        }
        let mut retry: Option<(Item, Outcome)> = None;
        while let Some(joined) = set.join_next().await {
            let Ok((item, outcome)) = joined else { continue };
            match outcome {
                Outcome::Retry(..) => retry = Some((item, outcome)),
                other => {
                    settle(&sh, queue, &item, other, 0).await;
                }
            }
        }
        failures = match retry {
            Some((item, outcome)) => settle(&sh, queue, &item, outcome, failures).await,
            None => 0,
        };
    }
}

async fn send_content(sh: &Shared, queue: &'static str, item: &Item) -> Outcome {
    let Payload::Content(content) = item.payload else {
        return Outcome::Rejected("spool item has no content reference".into());
    };
    let sha = hex(&content.sha256);
    let url = sh.url(&format!("{}/{sha}", if queue == FILES_QUEUE { "files" } else { "emails" }));
    // Ask first: content the CN already has (from this or another sensor's earlier upload, or a
    // delivery whose answer was lost) is not sent again.
    match sh.http.request(Method::HEAD, &url).send().await {
        Ok(r) if r.status() == StatusCode::OK => return Outcome::Delivered { present: true },
        Ok(r) if r.status() == StatusCode::NOT_FOUND => {}
        other => return classify(other),
    }
    let store = if queue == FILES_QUEUE { sh.files.clone() } else { sh.emails.clone() };
    let read = tokio::task::spawn_blocking(move || store.read(&content, MAX_UPLOAD_BYTES)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e @ (ContentError::Missing { .. } | ContentError::Mismatch { .. } | ContentError::TooLarge { .. }))) => {
            return Outcome::Unusable(e.to_string());
        }
        Ok(Err(e)) => return Outcome::Retry(e.to_string(), None),
        Err(e) => return Outcome::Retry(format!("reader task: {e}"), None),
    };
    let _ = blocking(|| sh.spool.record_attempt(queue, item.id));
    let req = sh.http.put(&url).header(reqwest::header::CONTENT_TYPE, "application/octet-stream").body(bytes);
    classify(req.send().await)
}

// ---------------------------------------------------------------------------------------------
// Health, retention

async fn health_reporter(sh: Arc<Shared>) {
    loop {
        tokio::time::sleep(sh.config.health_interval).await;
        let status = sh.status();
        let counters = sh.sensor_counters.lock().map(|c| c.clone()).unwrap_or_default();
        let body = json!({
            "sensor_id": sh.config.sensor_id,
            "time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "counters": counters,
            "link": status.stats,
            "queues": status.queues,
            "spool_bytes": status.spool_bytes,
            "license": status.license,
            "updates": status.updates,
        });
        let req = sh.http.post(sh.url("health")).header(reqwest::header::CONTENT_TYPE, "application/json");
        match req.body(body.to_string()).send().await {
            Ok(r) if r.status().is_success() => add(&sh.counters.health_reports, 1),
            Ok(r) => tracing::warn!("central link: health report answered HTTP {}", r.status()),
            Err(e) => tracing::warn!("central link: health report failed: {}", error_chain(&e)),
        }
    }
}

async fn retention_sweeper(sh: Arc<Shared>) {
    loop {
        match blocking(|| sh.spool.expire(SystemTime::now())) {
            Ok(dropped) => {
                let ours: Vec<_> = dropped.iter().filter(|d| d.queue.starts_with("central.")).collect();
                if !ours.is_empty() {
                    let events: u64 = ours.iter().filter_map(|d| d.meta.get("count").and_then(Value::as_u64)).sum();
                    add(&sh.counters.dropped_retention, ours.len() as u64);
                    tracing::error!(
                        items = ours.len(),
                        events,
                        "central link: undelivered items older than {} days dropped",
                        sh.config.retention_days
                    );
                }
            }
            Err(e) => tracing::error!("central link: retention sweep: {e}"),
        }
        tokio::time::sleep(RETENTION_SWEEP).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Policy and updates

async fn poller(sh: Arc<Shared>) {
    loop {
        if let Err(e) = poll_policy(&sh).await {
            tracing::warn!("central link: policy poll: {e}");
            sh.note_error(format!("policy: {e}"));
        }
        for kind in UpdateKind::ALL {
            if let Err(e) = poll_update(&sh, kind).await {
                tracing::warn!(kind = kind.as_str(), "central link: update poll: {e}");
                sh.note_error(format!("update {}: {e}", kind.as_str()));
            }
        }
        check_license(&sh);
        tokio::time::sleep(sh.config.poll_interval).await;
    }
}

fn check_license(sh: &Shared) {
    let state = sh.license_state();
    let summary = match &state {
        LicenseState::Expiring { expires, seconds_left, .. } => {
            format!("license expires {expires} (in {} days)", seconds_left / 86_400)
        }
        LicenseState::Expired { expires, disabled } => {
            format!("license expired {expires}: disabled {}", disabled.join(", "))
        }
        LicenseState::Invalid { reason } => format!("license unreadable: {reason}"),
        _ => return,
    };
    let Ok(mut s) = sh.state.lock() else { return };
    if s.license_warned.as_deref() != Some(summary.as_str()) {
        match state {
            LicenseState::Expiring { .. } => tracing::warn!("central link: {summary}"),
            _ => tracing::error!("central link: {summary}"),
        }
        s.license_warned = Some(summary);
    }
}

/// GET with `If-None-Match`; `Ok(None)` for 304/404 (nothing new), `Ok(Some((etag, body)))`.
async fn conditional_get(sh: &Shared, url: &str, etag: Option<String>, limit: usize) -> Result<Option<(Option<String>, Vec<u8>)>, String> {
    let mut req = sh.http.get(url);
    if let Some(etag) = etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let resp = req.send().await.map_err(|e| error_chain(&e))?;
    match resp.status() {
        StatusCode::NOT_MODIFIED | StatusCode::NOT_FOUND => return Ok(None),
        StatusCode::OK => {}
        other => return Err(format!("HTTP {other}")),
    }
    let etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Some((etag, read_limited(resp, limit as u64).await?)))
}

async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(format!("answer longer than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn poll_policy(sh: &Shared) -> Result<(), String> {
    let etag = sh.state.lock().map_err(|_| "state lock")?.policy_etag.clone();
    let Some((etag, body)) = conditional_get(sh, &sh.url("policy"), etag, MAX_DOCUMENT_BYTES).await? else {
        return Ok(());
    };
    let value: Value = serde_json::from_slice(&body).map_err(|e| format!("policy is not JSON ({e}); the old one stays"))?;
    let unknown = Policy::unknown_fields(&value);
    if !unknown.is_empty() {
        tracing::warn!(fields = %unknown.join(", "), "central link: policy fields this version does not know are ignored");
    }
    let policy: Policy = serde_json::from_value(value).map_err(|e| format!("policy rejected ({e}); the old one stays"))?;
    save_policy(&sh.config.spool_dir, &policy, etag.as_deref());
    if let Ok(mut s) = sh.state.lock() {
        s.policy_etag = etag;
    }
    add(&sh.counters.policy_updates, 1);
    tracing::info!("central link: new policy received");
    sh.policy_tx.send_replace(Some(Arc::new(policy)));
    Ok(())
}

fn policy_path(spool_dir: &Path) -> PathBuf {
    spool_dir.join("policy.json")
}

fn save_policy(spool_dir: &Path, policy: &Policy, etag: Option<&str>) {
    let doc = json!({ "etag": etag, "policy": policy });
    if let Err(e) = write_atomic(&policy_path(spool_dir), doc.to_string().as_bytes()) {
        tracing::error!("central link: saving the policy for the next start: {e}");
    }
}

fn load_saved_policy(spool_dir: &Path) -> (Option<Policy>, Option<String>) {
    let Ok(bytes) = std::fs::read(policy_path(spool_dir)) else { return (None, None) };
    let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else { return (None, None) };
    let policy = doc.get("policy").cloned().and_then(|p| serde_json::from_value(p).ok());
    let etag = doc.get("etag").and_then(Value::as_str).map(str::to_string);
    match policy {
        Some(p) => (Some(p), etag),
        None => (None, None),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn updates_root(spool_dir: &Path, kind: UpdateKind) -> PathBuf {
    spool_dir.join("updates").join(kind.as_str())
}

fn load_current_update(spool_dir: &Path, kind: UpdateKind) -> Option<(AppliedUpdate, String)> {
    let root = updates_root(spool_dir, kind);
    let doc: Value = serde_json::from_slice(&std::fs::read(root.join("current.json")).ok()?).ok()?;
    let dir_name = doc.get("dir")?.as_str()?;
    if !protocol::valid_file_name(dir_name) {
        return None;
    }
    let dir = root.join(dir_name);
    let files = doc
        .get("files")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| protocol::valid_file_name(n))
        .map(|n| dir.join(n))
        .collect();
    let version = doc.get("version")?.as_str()?.to_string();
    let etag = doc.get("etag").and_then(Value::as_str).unwrap_or_default().to_string();
    Some((AppliedUpdate { version, dir, files }, etag))
}

async fn poll_update(sh: &Shared, kind: UpdateKind) -> Result<(), String> {
    let etag = sh.state.lock().map_err(|_| "state lock")?.update_etags.get(&kind).cloned();
    let url = sh.url(&format!("updates/{}", kind.as_str()));
    let Some((etag, body)) = conditional_get(sh, &url, etag, MAX_DOCUMENT_BYTES).await? else { return Ok(()) };
    let etag = etag.unwrap_or_else(|| format!("\"{}\"", &hex(&Sha256::digest(&body))[..32]));
    let manifest: Manifest = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return reject(sh, kind, "?", &etag, &format!("manifest is not valid: {e}")),
    };
    if let Err(reason) = manifest.check(kind) {
        return reject(sh, kind, &manifest.version, &etag, &reason);
    }
    let root = updates_root(&sh.config.spool_dir, kind);
    let staging = root.join(".staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("staging {}: {e}", staging.display()))?;
    for f in &manifest.files {
        let file_url = format!("{url}/{}", f.name);
        let resp = sh.http.get(&file_url).send().await.map_err(|e| error_chain(&e))?;
        if resp.status() != StatusCode::OK {
            // The CN's problem, perhaps passing: try again at the next poll.
            return Err(format!("{} answered HTTP {}", f.name, resp.status()));
        }
        let bytes = read_limited(resp, f.size).await;
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) if e.starts_with("answer longer") => {
                return reject(sh, kind, &manifest.version, &etag, &format!("{} is longer than the manifest says", f.name));
            }
            Err(e) => return Err(format!("{}: {e}", f.name)),
        };
        let digest = hex(&Sha256::digest(&bytes));
        if bytes.len() as u64 != f.size || !digest.eq_ignore_ascii_case(&f.sha256) {
            let reason = format!("{}: sha256 {digest} ({} bytes) does not match the manifest", f.name, bytes.len());
            return reject(sh, kind, &manifest.version, &etag, &reason);
        }
        write_atomic(&staging.join(&f.name), &bytes).map_err(|e| format!("staging {}: {e}", f.name))?;
    }
    let validator = sh.validator.clone();
    let staged = staging.clone();
    let verdict = tokio::task::spawn_blocking(move || validator(kind, &staged)).await.map_err(|e| e.to_string())?;
    if let Err(reason) = verdict {
        return reject(sh, kind, &manifest.version, &etag, &format!("validation failed: {reason}"));
    }
    // Swap: the staged folder gets a name of its own, then current.json (renamed into place) points
    // at it. A crash before the rename of current.json leaves the old update in use.
    let dir_name = format!("v-{}", &hex(&Sha256::digest(format!("{}\n{etag}", manifest.version)))[..16]);
    let dir = root.join(&dir_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).map_err(|e| format!("promoting the update: {e}"))?;
    let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let doc = json!({ "version": manifest.version, "dir": dir_name, "etag": etag, "files": names });
    write_atomic(&root.join("current.json"), doc.to_string().as_bytes()).map_err(|e| format!("current.json: {e}"))?;
    let previous = sh.updates_tx.borrow().get(&kind).map(|u| u.dir.clone());
    let applied = AppliedUpdate {
        version: manifest.version.clone(),
        dir: dir.clone(),
        files: manifest.files.iter().map(|f| dir.join(&f.name)).collect(),
    };
    sh.updates_tx.send_modify(|m| {
        m.insert(kind, applied);
    });
    if let Some(old) = previous.filter(|old| *old != dir) {
        let _ = std::fs::remove_dir_all(old);
    }
    if let Ok(mut s) = sh.state.lock() {
        s.update_etags.insert(kind, etag);
        s.updates.entry(kind).or_default().applied_version = Some(manifest.version.clone());
    }
    add(&sh.counters.updates_applied, 1);
    tracing::info!(kind = kind.as_str(), version = %manifest.version, "central link: update applied");
    Ok(())
}

/// Refuses an update: the staged files go, the one in use stays, and the ETag is remembered so
/// the same bad update is not fetched again at every poll.
fn reject(sh: &Shared, kind: UpdateKind, version: &str, etag: &str, reason: &str) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(updates_root(&sh.config.spool_dir, kind).join(".staging"));
    add(&sh.counters.updates_rejected, 1);
    let kept = sh.updates_tx.borrow().get(&kind).map_or("none".to_string(), |u| u.version.clone());
    tracing::error!(kind = kind.as_str(), version, kept = %kept, "central link: update rejected: {reason}");
    if let Ok(mut s) = sh.state.lock() {
        s.update_etags.insert(kind, etag.to_string());
        s.updates.entry(kind).or_default().last_rejected = Some((version.to_string(), reason.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let tls = ClientTls { ca_pem: Vec::new(), cert_pem: Vec::new(), key_pem: Vec::new() };
        let bad = LinkConfig::new("http://cn.example/", "sensor/1", tls, dir.path());
        let err = bad.validate().unwrap_err();
        assert!(err.contains("must be https://") && err.contains("sensor_id"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_bounded_jitter() {
        let tls = ClientTls { ca_pem: Vec::new(), cert_pem: Vec::new(), key_pem: Vec::new() };
        let mut c = LinkConfig::new("https://cn/", "s", tls, "/nonexistent");
        c.backoff_min = Duration::from_millis(100);
        c.backoff_max = Duration::from_millis(1000);
        let delay = |failures: u32| {
            let full = (100u64 << (failures - 1).min(20)).min(1000);
            move |d: Duration| d.as_millis() as u64 >= full / 2 && d.as_millis() as u64 <= full
        };
        for failures in [1u32, 2, 3, 4, 5, 40] {
            for _ in 0..50 {
                let d = backoff_for(&c, failures);
                assert!(delay(failures)(d), "failures {failures}: {d:?}");
            }
        }
    }
}
