//! The dispatcher: takes artifacts from the capture side without blocking it, spools the eligible
//! ones, submits them at a bounded pace, polls for verdicts and queues the EVE records.
//!
//! Life of an item in the spool queue [`SUBMIT_QUEUE`]: pushed (durable) before any attempt; its
//! metadata gains `task_id` once the sandbox accepts it; when the verdict (or a final failure) is
//! known the item is acknowledged and its EVE records are pushed to [`RECORDS_QUEUE`] in the same
//! transaction, where [`Dispatcher::take_records`] collects them. A crash at any point leaves the
//! item in the spool; before submitting again an item that had an attempt recorded, the
//! dispatcher asks the sandbox (CAPE) whether that file is already a task, and adopts it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use weir_core::{Artifact, Sighting, hex};
use weir_spool::{
    ContentRef, ContentStore, Item, ItemId, NewItem, Payload, Spool, SpoolConfig, SpoolError,
};

use crate::api::{ApiError, SandboxApi, TaskStatus};
use crate::cache::{CachedVerdict, VerdictCache, unix_ms};
use crate::config::{ApiKind, SandboxConfig};
use crate::eve;
use crate::policy::{Decision, Exclusions, Policy, SNIFF_BYTES, normalise_url};

/// Spool queue of artifacts waiting for submission or for their verdict.
pub const SUBMIT_QUEUE: &str = "sandbox.submit";
/// Spool queue of EVE records waiting to be written.
pub const RECORDS_QUEUE: &str = "sandbox.records";
/// Items a worker looks at when choosing its next one; items past the window wait their turn.
pub const SCAN_WINDOW: usize = 512;
/// Submissions rejected by the sandbox (4xx other than auth) before the item is given up with a
/// `rejected` record.
pub const MAX_REJECTIONS: u32 = 5;
/// Sightings the intake decides and spools in one transaction (one fsync).
pub const INTAKE_BATCH: usize = 64;
/// Longest an idle worker sleeps before looking at the spool again.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// How often undelivered items are checked against the retention.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("[sandbox] configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("sandbox dispatcher runtime: {0}")]
    Runtime(std::io::Error),
}

/// What happened to an offered artifact, as far as the capture side needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Handed to the dispatcher's intake.
    Queued,
    /// The intake was full: decided and spooled on the caller's thread instead.
    Spilled,
    /// Could not be kept (spool full, dispatcher stopped); logged and counted.
    Refused(String),
}

/// Everything decided, since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchStats {
    pub offered: u64,
    /// Accepted by the sandbox (a task id came back, or an earlier task was adopted).
    pub submitted: u64,
    /// Of `submitted`: tasks found by hash after an interrupted attempt instead of submitting again.
    pub adopted: u64,
    pub skipped_policy: u64,
    /// Same SHA-256 or URL as one queued or judged already.
    pub duplicate: u64,
    pub excluded: u64,
    /// Gave up with a record: content unreadable, rejected, analysis timed out.
    pub failed: u64,
    /// The sandbox's own analysis failed (`failed_*`), recorded.
    pub analysis_failed: u64,
    pub verdicts: u64,
    pub malicious: u64,
    /// Sightings answered from the verdict cache.
    pub cached_verdicts: u64,
    /// Attempts that failed and were rescheduled.
    pub retries: u64,
    pub spilled: u64,
    /// Refused for a full spool.
    pub dropped_full: u64,
    pub dropped_retention: u64,
    pub circuit_opened: u64,
    /// Items in the spool waiting for submission or verdict.
    pub pending: u64,
    pub oldest_pending_secs: Option<u64>,
    /// EVE records not yet collected.
    pub records_waiting: u64,
}

#[derive(Default)]
struct Counters {
    offered: AtomicU64,
    submitted: AtomicU64,
    adopted: AtomicU64,
    skipped_policy: AtomicU64,
    duplicate: AtomicU64,
    excluded: AtomicU64,
    failed: AtomicU64,
    analysis_failed: AtomicU64,
    verdicts: AtomicU64,
    malicious: AtomicU64,
    cached_verdicts: AtomicU64,
    retries: AtomicU64,
    spilled: AtomicU64,
    dropped_full: AtomicU64,
    dropped_retention: AtomicU64,
    circuit_opened: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// An item still in the spool when [`Dispatcher::finish`] returned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pending {
    /// `sha256:<hex>` or `url:<normalised url>`
    pub key: String,
    pub task_id: Option<u64>,
    pub attempts: u32,
    pub age_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinishReport {
    pub stats: DispatchStats,
    pub pending: Vec<Pending>,
    /// EVE records not taken before `finish`, to be written with the rest.
    pub records: Vec<Value>,
}

#[derive(Default)]
struct Schedule {
    leased: HashSet<u64>,
    /// Item -> (not before, consecutive failures).
    retry: HashMap<u64, (Instant, u32)>,
}

struct Breaker {
    consecutive: u32,
    open_until: Option<Instant>,
}

struct Shared {
    config: SandboxConfig,
    api: SandboxApi,
    policy: Policy,
    exclusions: Arc<dyn Exclusions>,
    content: Arc<dyn ContentStore>,
    spool: Spool,
    cache: VerdictCache,
    counters: Counters,
    /// Dedup keys with an item in the submit queue. Held across check-and-push so two sightings
    /// of one file cannot both be spooled.
    known: Mutex<HashSet<String>>,
    schedule: Mutex<Schedule>,
    wake: tokio::sync::Notify,
    breaker: Mutex<Breaker>,
    next_slot: Mutex<Instant>,
    stopping: AtomicBool,
}

/// The sandbox dispatcher. Owns a small tokio runtime for the HTTP side and one intake thread;
/// [`Dispatcher::offer`] never waits on the network.
pub struct Dispatcher {
    shared: Arc<Shared>,
    intake: Option<SyncSender<Sighting>>,
    intake_thread: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Dispatcher {
    /// Opens the spool and the verdict cache in `config.spool_dir` and starts dispatching what an
    /// earlier run left there. `content` resolves file artifacts' bytes (the filestore).
    pub fn start(
        config: SandboxConfig,
        content: Arc<dyn ContentStore>,
        exclusions: Arc<dyn Exclusions>,
    ) -> Result<Dispatcher, DispatchError> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(DispatchError::Config(errors));
        }
        let api = SandboxApi::new(&config).map_err(|e| DispatchError::Config(vec![e]))?;
        let spool = Spool::open(
            &config.spool_dir,
            SpoolConfig {
                max_bytes: config.spool_max_bytes,
                retention: Duration::from_secs(config.retention_days.saturating_mul(86_400)),
                ..SpoolConfig::default()
            },
        )?;
        let cache = VerdictCache::open(
            &config.spool_dir,
            Duration::from_secs(config.verdict_ttl_days.saturating_mul(86_400)),
            config.verdict_cache_entries,
        )?;
        let mut known = HashSet::new();
        let mut after = None;
        loop {
            let page = spool.peek(SUBMIT_QUEUE, after, 1024)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            known.extend(page.iter().filter_map(|i| {
                i.meta
                    .get("key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }));
        }
        if !known.is_empty() {
            tracing::info!(
                pending = known.len(),
                "sandbox: resuming items left in the spool"
            );
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-sandbox")
            .enable_all()
            .build()
            .map_err(DispatchError::Runtime)?;
        let (tx, rx) = sync_channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            policy: Policy::new(&config),
            api,
            exclusions,
            content,
            spool,
            cache,
            counters: Counters::default(),
            known: Mutex::new(known),
            schedule: Mutex::new(Schedule::default()),
            wake: tokio::sync::Notify::new(),
            breaker: Mutex::new(Breaker {
                consecutive: 0,
                open_until: None,
            }),
            next_slot: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
            config,
        });
        for _ in 0..shared.config.concurrency {
            runtime.spawn(worker(shared.clone()));
        }
        runtime.spawn(housekeeping(shared.clone()));
        let intake_shared = shared.clone();
        let intake_thread = std::thread::Builder::new()
            .name("weir-sandbox-intake".into())
            .spawn(move || intake(intake_shared, rx))
            .map_err(DispatchError::Runtime)?;
        Ok(Dispatcher {
            shared,
            intake: Some(tx),
            intake_thread: Some(intake_thread),
            runtime: Some(runtime),
        })
    }

    /// Hands over an artifact. Never blocks on the sandbox: when the intake is full the decision
    /// and the (fsync'd) spool write happen on the caller's thread.
    pub fn offer(&self, sighting: Sighting) -> Offer {
        inc(&self.shared.counters.offered);
        let Some(tx) = &self.intake else {
            return Offer::Refused("dispatcher stopped".into());
        };
        match tx.try_send(sighting) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(s)) => {
                inc(&self.shared.counters.spilled);
                match admit(&self.shared, vec![s]) {
                    Ok(()) => Offer::Spilled,
                    Err(e) => Offer::Refused(e),
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("sandbox intake stopped; artifact not dispatched");
                Offer::Refused("dispatcher stopped".into())
            }
        }
    }

    /// EVE records of verdicts reached so far (`sandbox`, and `alert` for malicious ones), oldest
    /// first, removed from the spool as they are returned.
    /// `max` counts outcomes (one `sandbox` record, with its `alert` if any), not records.
    pub fn take_records(&self, max: usize) -> Result<Vec<Value>, DispatchError> {
        take_records(&self.shared, max)
    }

    pub fn stats(&self) -> DispatchStats {
        stats(&self.shared)
    }

    /// Stops taking artifacts, waits up to `wait` for every spooled item to get its verdict, then
    /// stops and reports what is still pending (it stays in the spool for the next run).
    pub fn finish(mut self, wait: Duration) -> FinishReport {
        self.intake = None;
        if let Some(t) = self.intake_thread.take() {
            let _ = t.join();
        }
        self.shared.wake.notify_waiters();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.shared.spool.depth(SUBMIT_QUEUE) {
                Ok(0) | Err(_) => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        // A durable commit that also makes the cache's lazily written verdicts durable.
        self.shared.cache.purge(SystemTime::now());
        let now = SystemTime::now();
        let pending: Vec<Pending> = self
            .shared
            .spool
            .peek(SUBMIT_QUEUE, None, usize::MAX)
            .unwrap_or_default()
            .into_iter()
            .map(|i| Pending {
                key: i
                    .meta
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                task_id: i.meta.get("task_id").and_then(Value::as_u64),
                attempts: i.attempts,
                age_secs: now.duration_since(i.enqueued_at).map_or(0, |d| d.as_secs()),
            })
            .collect();
        if !pending.is_empty() {
            tracing::warn!(
                pending = pending.len(),
                with_task = pending.iter().filter(|p| p.task_id.is_some()).count(),
                "sandbox: items still pending in the spool at exit; the next run resumes them"
            );
        }
        let records = take_records(&self.shared, usize::MAX).unwrap_or_else(|e| {
            tracing::error!("sandbox: verdict records left in the spool for the next run: {e}");
            Vec::new()
        });
        FinishReport {
            stats: stats(&self.shared),
            pending,
            records,
        }
    }
}

impl Drop for Dispatcher {
    /// Without [`Dispatcher::finish`]: stop at once, as a crash would; the spool keeps everything.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        // In-flight requests are abandoned mid-way; waiting for the threads to let go releases the
        // spool's file lock, so a restart in the same process can open it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        self.intake = None;
        if let Some(t) = self.intake_thread.take() {
            let _ = t.join();
        }
    }
}

fn take_records(shared: &Shared, max: usize) -> Result<Vec<Value>, DispatchError> {
    let items = shared.spool.peek(RECORDS_QUEUE, None, max)?;
    let mut out = Vec::new();
    for item in &items {
        if let Some(Value::Array(records)) = item.meta.get("records") {
            out.extend(records.iter().cloned());
        }
    }
    let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
    shared.spool.ack_many(RECORDS_QUEUE, &ids)?;
    Ok(out)
}

fn stats(s: &Shared) -> DispatchStats {
    let c = &s.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let spool = s.spool.stats().unwrap_or_default();
    let queue = spool.queues.get(SUBMIT_QUEUE).cloned().unwrap_or_default();
    DispatchStats {
        offered: get(&c.offered),
        submitted: get(&c.submitted),
        adopted: get(&c.adopted),
        skipped_policy: get(&c.skipped_policy),
        duplicate: get(&c.duplicate),
        excluded: get(&c.excluded),
        failed: get(&c.failed),
        analysis_failed: get(&c.analysis_failed),
        verdicts: get(&c.verdicts),
        malicious: get(&c.malicious),
        cached_verdicts: get(&c.cached_verdicts),
        retries: get(&c.retries),
        spilled: get(&c.spilled),
        dropped_full: get(&c.dropped_full),
        dropped_retention: get(&c.dropped_retention),
        circuit_opened: get(&c.circuit_opened),
        pending: queue.depth,
        oldest_pending_secs: queue.oldest.map(|t| {
            SystemTime::now()
                .duration_since(t)
                .map_or(0, |d| d.as_secs())
        }),
        records_waiting: spool.queues.get(RECORDS_QUEUE).map_or(0, |q| q.depth),
    }
}

fn intake(shared: Arc<Shared>, rx: Receiver<Sighting>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < INTAKE_BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let _ = admit(&shared, batch);
    }
}

/// Policy, dedup, spool, for a batch of sightings spooled in one transaction. Runs on the intake
/// thread, or on the caller's when the intake is full. Returns the first refusal.
fn admit(shared: &Shared, sightings: Vec<Sighting>) -> Result<(), String> {
    let c = &shared.counters;
    // Held across check and push so two sightings of one file cannot both be spooled.
    let mut known = shared
        .known
        .lock()
        .map_err(|_| "dedup set poisoned".to_string())?;
    let mut pushes = Vec::new();
    let mut keys = Vec::new();
    for s in sightings {
        let (key, subject, payload, head) = match &s.artifact {
            Artifact::File(f) => {
                let content = ContentRef {
                    sha256: f.sha256,
                    len: f.size,
                };
                let head = shared.content.head(&content, SNIFF_BYTES).ok();
                let sha = hex(&f.sha256);
                let subject = json!({"sha256": sha, "filename": f.name, "size": f.size});
                (
                    format!("sha256:{sha}"),
                    subject,
                    Payload::Content(content),
                    head,
                )
            }
            Artifact::Url(u) => {
                let norm = normalise_url(&u.url).unwrap_or_default();
                (
                    format!("url:{norm}"),
                    json!({"url": norm}),
                    Payload::None,
                    None,
                )
            }
            Artifact::Email(_) => (String::new(), Value::Null, Payload::None, None),
        };
        match shared
            .policy
            .decide(&s, head.as_deref(), shared.exclusions.as_ref())
        {
            Decision::Submit => {}
            Decision::Skip(reason) => {
                inc(&c.skipped_policy);
                tracing::debug!(key, reason, "sandbox: skipped by policy");
                continue;
            }
            Decision::Excluded(reason) => {
                inc(&c.excluded);
                tracing::debug!(key, reason, "sandbox: excluded");
                continue;
            }
        }
        let flow = eve::flow_header(&s.ctx);
        if let Some(v) = shared.cache.get(&key, SystemTime::now()) {
            inc(&c.duplicate);
            inc(&c.cached_verdicts);
            let sandbox = eve::sandbox_object(shared.api.kind().name(), &subject, &v, true, None);
            let records = eve::records(&flow, sandbox);
            pushes.push((
                RECORDS_QUEUE.to_string(),
                NewItem::new(json!({ "records": records }), Payload::None),
            ));
            keys.push(None);
            continue;
        }
        if !known.insert(key.clone()) {
            inc(&c.duplicate);
            continue;
        }
        let meta = json!({"key": key, "subject": subject, "flow": flow, "task_id": null, "submitted_ms": null});
        pushes.push((SUBMIT_QUEUE.to_string(), NewItem::new(meta, payload)));
        keys.push(Some(key));
    }
    if pushes.is_empty() {
        return Ok(());
    }
    let results = match shared.spool.push_batch(pushes) {
        Ok(results) => results
            .into_iter()
            .map(|r| r.map(drop).map_err(|e| e.to_string()))
            .collect(),
        Err(e) => vec![Err(e.to_string()); keys.len()],
    };
    let mut first_error = None;
    for (result, key) in results.into_iter().zip(keys) {
        if let Err(e) = result {
            inc(&c.dropped_full);
            tracing::error!(
                key = key.as_deref().unwrap_or("(cached verdict record)"),
                "sandbox: not spooled, not dispatched: {e}"
            );
            if let Some(k) = key {
                known.remove(&k);
            }
            first_error.get_or_insert(e);
        }
    }
    drop(known);
    shared.wake.notify_waiters();
    shared.wake.notify_one();
    first_error.map_or(Ok(()), Err)
}

async fn housekeeping(shared: Arc<Shared>) {
    loop {
        match shared.spool.expire(SystemTime::now()) {
            Ok(dropped) => {
                for d in dropped {
                    if d.queue == SUBMIT_QUEUE {
                        shared
                            .counters
                            .dropped_retention
                            .fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut s) = shared.schedule.lock() {
                            s.retry.remove(&d.id.0);
                        }
                        if let Some(k) = d.meta.get("key").and_then(Value::as_str)
                            && let Ok(mut known) = shared.known.lock()
                        {
                            known.remove(k);
                        }
                    }
                }
            }
            Err(e) => tracing::error!("sandbox spool retention sweep failed: {e}"),
        }
        shared.cache.purge(SystemTime::now());
        tokio::time::sleep(RETENTION_SWEEP).await;
    }
}

async fn worker(shared: Arc<Shared>) {
    while !shared.stopping.load(Ordering::Relaxed) {
        let (item, wait) = next_due(&shared);
        match item {
            Some(item) => {
                let id = item.id;
                process(&shared, item).await;
                if let Ok(mut s) = shared.schedule.lock() {
                    s.leased.remove(&id.0);
                }
            }
            None => {
                let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
            }
        }
    }
}

/// The oldest item nobody holds and whose retry time has come; otherwise how long to wait.
fn next_due(shared: &Shared) -> (Option<Item>, Duration) {
    let Ok(mut sched) = shared.schedule.lock() else {
        return (None, IDLE_WAIT);
    };
    let ids = match shared.spool.ids(SUBMIT_QUEUE, None, SCAN_WINDOW) {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!("sandbox spool read failed: {e}");
            return (None, IDLE_WAIT);
        }
    };
    let now = Instant::now();
    let mut wait = IDLE_WAIT;
    for id in ids {
        if sched.leased.contains(&id.0) {
            continue;
        }
        match sched.retry.get(&id.0) {
            Some((at, _)) if *at > now => wait = wait.min(*at - now),
            _ => match shared.spool.get(SUBMIT_QUEUE, id) {
                Ok(Some(item)) => {
                    sched.leased.insert(id.0);
                    return (Some(item), Duration::ZERO);
                }
                Ok(None) => {}
                Err(e) => {
                    // A corrupt item must not block the queue: log it and try it again later.
                    tracing::error!("sandbox spool item unreadable: {e}");
                    sched.retry.insert(id.0, (now + IDLE_WAIT * 10, 0));
                }
            },
        }
    }
    (None, wait)
}

fn reschedule(shared: &Shared, id: ItemId, after: Duration, failed: bool) {
    if let Ok(mut s) = shared.schedule.lock() {
        let failures = s.retry.get(&id.0).map_or(0, |r| r.1);
        let failures = if failed {
            failures.saturating_add(1)
        } else {
            0
        };
        s.retry.insert(id.0, (Instant::now() + after, failures));
    }
}

fn failures(shared: &Shared, id: ItemId) -> u32 {
    shared
        .schedule
        .lock()
        .ok()
        .and_then(|s| s.retry.get(&id.0).map(|r| r.1))
        .unwrap_or(0)
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of many
/// items after an outage do not arrive together.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(max);
    exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
}

async fn process(shared: &Shared, mut item: Item) {
    let kind = shared.api.kind();
    let key = item
        .meta
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(wait) = circuit_wait(shared) {
        reschedule(shared, item.id, wait, false);
        return;
    }
    let task = item.meta.get("task_id").and_then(Value::as_u64);
    let Some(task) = task else {
        if let Some(v) = shared.cache.get(&key, SystemTime::now()) {
            // Judged while this item waited (a second sighting spooled by a spill, say).
            inc(&shared.counters.duplicate);
            inc(&shared.counters.cached_verdicts);
            finish(shared, &item, &v, true, None);
            return;
        }
        submit(shared, &mut item, &key, kind).await;
        return;
    };
    match shared.api.status(task).await {
        Ok(TaskStatus::Reported) => match shared.api.report(task).await {
            Ok(report) => {
                breaker_success(shared);
                let c = &shared.config;
                let verdict = eve::classify(
                    report.score,
                    report.family.as_deref(),
                    c.malicious_score,
                    c.suspicious_score,
                );
                let v = CachedVerdict {
                    task_id: task,
                    status: "reported".into(),
                    score: report.score,
                    family: report.family,
                    verdict: verdict.into(),
                    at_ms: unix_ms(SystemTime::now()),
                };
                // A partial report is not cached: the next sighting may get the whole one.
                if report.partial.is_none() {
                    shared.cache.put(&key, &v);
                }
                inc(&shared.counters.verdicts);
                if verdict == "malicious" {
                    inc(&shared.counters.malicious);
                }
                finish(shared, &item, &v, false, report.partial.as_deref());
            }
            Err(e) => on_error(shared, &item, &key, "report", e),
        },
        Ok(TaskStatus::Failed(state)) => {
            breaker_success(shared);
            tracing::warn!(key, task, state, "sandbox analysis failed");
            inc(&shared.counters.analysis_failed);
            let v = final_verdict(task, &state);
            finish(shared, &item, &v, false, None);
        }
        Ok(TaskStatus::InProgress(state)) => {
            breaker_success(shared);
            let submitted = item
                .meta
                .get("submitted_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let age = unix_ms(SystemTime::now()).saturating_sub(submitted);
            if age > shared.config.analysis_timeout_secs.saturating_mul(1000) {
                tracing::warn!(
                    key,
                    task,
                    state,
                    "sandbox analysis not reported in time; giving up"
                );
                inc(&shared.counters.failed);
                finish(
                    shared,
                    &item,
                    &final_verdict(task, "timeout"),
                    false,
                    Some("analysis timeout"),
                );
            } else {
                reschedule(
                    shared,
                    item.id,
                    SandboxConfig::ms(shared.config.poll_interval_ms),
                    false,
                );
            }
        }
        Err(ApiError::NoSuchTask(_)) => {
            tracing::warn!(key, task, "sandbox lost the task; submitting again");
            set_task(shared, &mut item, None);
            reschedule(shared, item.id, Duration::ZERO, false);
        }
        Err(e) => on_error(shared, &item, &key, "status", e),
    }
}

async fn submit(shared: &Shared, item: &mut Item, key: &str, kind: ApiKind) {
    let subject = item.meta.get("subject").cloned().unwrap_or(Value::Null);
    let sha = subject
        .get("sha256")
        .and_then(Value::as_str)
        .map(str::to_string);
    if item.attempts > 0
        && let Some(sha) = &sha
    {
        // An earlier attempt may have reached the sandbox before a crash hid its answer.
        match shared.api.find_file_task(sha).await {
            Ok(Some(task)) => {
                tracing::info!(
                    key,
                    task,
                    "sandbox: adopting the task an interrupted attempt created"
                );
                inc(&shared.counters.submitted);
                inc(&shared.counters.adopted);
                set_task(shared, item, Some(task));
                reschedule(shared, item.id, Duration::ZERO, false);
                return;
            }
            Ok(None) => {}
            Err(e) => return on_error(shared, item, key, "search", e),
        }
    }
    pace(shared).await;
    if let Err(e) = shared.spool.record_attempt(SUBMIT_QUEUE, item.id) {
        tracing::error!(
            key,
            "sandbox: cannot record the attempt, not submitting: {e}"
        );
        reschedule(shared, item.id, IDLE_WAIT, true);
        return;
    }
    let result = match (&item.payload, &sha) {
        (Payload::Content(content), Some(_)) => {
            match shared.content.read(content, shared.config.max_size) {
                Ok(bytes) => {
                    let name = subject
                        .get("filename")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    shared.api.submit_file(name, bytes).await
                }
                Err(e) => {
                    tracing::error!(key, "sandbox: file content unavailable, giving up: {e}");
                    inc(&shared.counters.failed);
                    finish(
                        shared,
                        item,
                        &final_verdict(0, "error"),
                        false,
                        Some(&e.to_string()),
                    );
                    return;
                }
            }
        }
        _ => {
            let url = subject
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            shared.api.submit_url(url).await
        }
    };
    match result {
        Ok(task) => {
            breaker_success(shared);
            inc(&shared.counters.submitted);
            tracing::debug!(key, task, api = kind.name(), "sandbox: submitted");
            set_task(shared, item, Some(task));
            reschedule(
                shared,
                item.id,
                SandboxConfig::ms(shared.config.poll_interval_ms),
                false,
            );
        }
        Err(ApiError::Rejected { status, message })
            if failures(shared, item.id) + 1 >= MAX_REJECTIONS =>
        {
            tracing::error!(
                key,
                status,
                message,
                "sandbox keeps rejecting the submission; giving up"
            );
            inc(&shared.counters.failed);
            finish(
                shared,
                item,
                &final_verdict(0, "rejected"),
                false,
                Some(&message),
            );
        }
        Err(e) => on_error(shared, item, key, "submit", e),
    }
}

fn final_verdict(task_id: u64, status: &str) -> CachedVerdict {
    CachedVerdict {
        task_id,
        status: status.into(),
        score: None,
        family: None,
        verdict: "unknown".into(),
        at_ms: unix_ms(SystemTime::now()),
    }
}

fn set_task(shared: &Shared, item: &mut Item, task: Option<u64>) {
    if let Some(m) = item.meta.as_object_mut() {
        m.insert("task_id".into(), task.map_or(Value::Null, Value::from));
        m.insert(
            "submitted_ms".into(),
            Value::from(unix_ms(SystemTime::now())),
        );
    }
    if let Err(e) = shared
        .spool
        .update_meta(SUBMIT_QUEUE, item.id, item.meta.clone())
    {
        // The next attempt finds the task by search (CAPE) or submits again.
        tracing::error!("sandbox: task id not recorded in the spool: {e}");
    }
}

/// Acknowledges the item and queues its records in one spool transaction.
fn finish(shared: &Shared, item: &Item, v: &CachedVerdict, cached: bool, error: Option<&str>) {
    let subject = item.meta.get("subject").cloned().unwrap_or(Value::Null);
    let flow = item.meta.get("flow").cloned().unwrap_or(Value::Null);
    let sandbox = eve::sandbox_object(shared.api.kind().name(), &subject, v, cached, error);
    let records = eve::records(&flow, sandbox);
    let follow = NewItem::new(json!({ "records": records }), Payload::None);
    match shared
        .spool
        .ack_and_push(SUBMIT_QUEUE, item.id, RECORDS_QUEUE, follow)
    {
        Ok(_) => {
            if let Some(k) = item.meta.get("key").and_then(Value::as_str)
                && let Ok(mut known) = shared.known.lock()
            {
                known.remove(k);
            }
            if let Ok(mut s) = shared.schedule.lock() {
                s.retry.remove(&item.id.0);
            }
        }
        Err(e) => {
            tracing::error!("sandbox: verdict record not spooled, will retry: {e}");
            reschedule(shared, item.id, IDLE_WAIT, true);
        }
    }
}

fn on_error(shared: &Shared, item: &Item, key: &str, during: &str, e: ApiError) {
    inc(&shared.counters.retries);
    if e.is_outage() {
        breaker_failure(shared);
    }
    let n = failures(shared, item.id) + 1;
    let delay = match &e {
        ApiError::RateLimited {
            retry_after: Some(d),
        } => *d,
        _ => backoff(
            SandboxConfig::ms(shared.config.backoff_base_ms),
            Duration::from_secs(shared.config.backoff_max_secs),
            n,
        ),
    };
    tracing::warn!(
        key,
        during,
        attempt = n,
        retry_in_ms = delay.as_millis() as u64,
        "sandbox {during} failed: {e}"
    );
    reschedule(shared, item.id, delay, true);
}

fn circuit_wait(shared: &Shared) -> Option<Duration> {
    let b = shared.breaker.lock().ok()?;
    let now = Instant::now();
    b.open_until.filter(|t| *t > now).map(|t| t - now)
}

fn breaker_success(shared: &Shared) {
    if let Ok(mut b) = shared.breaker.lock() {
        if b.open_until.is_some() {
            tracing::info!("sandbox answers again; circuit closed");
        }
        b.consecutive = 0;
        b.open_until = None;
    }
}

/// After `circuit_failures` outages in a row every request stops for the cooldown; once it has
/// passed, requests go again and the first further outage reopens the circuit.
fn breaker_failure(shared: &Shared) {
    let Ok(mut b) = shared.breaker.lock() else {
        return;
    };
    b.consecutive = b.consecutive.saturating_add(1);
    let now = Instant::now();
    if b.consecutive >= shared.config.circuit_failures && b.open_until.is_none_or(|t| t <= now) {
        let cooldown = SandboxConfig::ms(shared.config.circuit_cooldown_ms);
        b.open_until = Some(now + cooldown);
        inc(&shared.counters.circuit_opened);
        tracing::error!(
            failures = b.consecutive,
            cooldown_ms = cooldown.as_millis() as u64,
            "sandbox unavailable; circuit open"
        );
    }
}

/// Spaces submissions `60 / submissions_per_minute` seconds apart.
async fn pace(shared: &Shared) {
    let interval = Duration::from_secs(60) / shared.config.submissions_per_minute.max(1);
    let slot = {
        let Ok(mut next) = shared.next_slot.lock() else {
            return;
        };
        let slot = (*next).max(Instant::now());
        *next = slot + interval;
        slot
    };
    tokio::time::sleep_until(slot.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter_in_range() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for _ in 0..50 {
            let d1 = backoff(base, max, 1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= base, "{d1:?}");
            let d4 = backoff(base, max, 4);
            assert!(
                d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800),
                "{d4:?}"
            );
            let d30 = backoff(base, max, 30);
            assert!(d30 >= max / 2 && d30 <= max, "{d30:?}");
        }
    }
}
