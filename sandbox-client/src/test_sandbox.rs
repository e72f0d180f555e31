//! An in-process imitation of the CAPEv2 and Cuckoo 2 endpoints Weir uses, on 127.0.0.1 with an
//! ephemeral port, with injectable faults. For this crate's tests and the binary's end-to-end
//! tests (feature `test-sandbox`).
//!
//! Verdicts are derived from content: a file containing `EVIL` (or a URL containing `evil`) gets
//! malscore 9 and family `TestFamily`; anything else gets 1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Largest upload accepted: above the client's largest submission (`max_size`, 32 MiB by default),
/// so a file the policy lets through is never refused here unless a test asks for it.
pub const MAX_UPLOAD: usize = 64 << 20;

/// Faults to inject; counts apply to the next requests of any kind.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Answer 503 to everything (a sandbox whose proxy is up but whose API is down).
    pub unavailable: bool,
    /// The next N requests get 500.
    pub server_error_next: u32,
    /// The next N requests get 429.
    pub rate_limit_next: u32,
    /// The next N requests get a 200 with a body that is not JSON.
    pub garbage_next: u32,
    /// Every answer waits this long first.
    pub delay: Duration,
    /// GET answers (status, view, report, search) wait this long more: a sandbox that takes
    /// submissions but is too slow to report on them.
    pub delay_reads: Duration,
    /// Task creation answers this long after the task exists: a client that dies meanwhile leaves
    /// a task it never heard of.
    pub delay_after_create: Duration,
    /// Reports are 2 GiB of JSON-looking padding, streamed.
    pub huge_report: bool,
    /// Every request is redirected to itself.
    pub redirect_loop: bool,
    /// Reports (only they) are a 200 whose body is not JSON: tasks exist, verdicts cannot be read.
    pub garbage_reports: bool,
    /// The `Retry-After` header sent with each 429, verbatim.
    pub retry_after: Option<String>,
    /// Tasks created from now on end in `failed_analysis`.
    pub fail_analysis: bool,
    /// Status polls a task answers before it is `reported` (pending, running, ...).
    pub polls_until_reported: u32,
    /// Uploads larger than this are answered 413 as soon as the limit is passed, before the rest
    /// of the body is read (as a proxy in front of a sandbox does).
    pub upload_limit: usize,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            unavailable: false,
            server_error_next: 0,
            rate_limit_next: 0,
            garbage_next: 0,
            delay: Duration::ZERO,
            delay_reads: Duration::ZERO,
            delay_after_create: Duration::ZERO,
            huge_report: false,
            redirect_loop: false,
            garbage_reports: false,
            retry_after: None,
            fail_analysis: false,
            polls_until_reported: 2,
            upload_limit: MAX_UPLOAD,
        }
    }
}

#[derive(Clone, Debug)]
struct Task {
    id: u64,
    sha256: Option<String>,
    url: Option<String>,
    malicious: bool,
    polls: u32,
    fails: bool,
}

#[derive(Default)]
struct Inner {
    faults: Faults,
    tasks: Vec<Task>,
    /// sha256 hex -> (bytes, times submitted)
    files: HashMap<String, (Vec<u8>, u32)>,
    urls: HashMap<String, u32>,
    requests: u64,
    refused_auth: u64,
    /// Seconds since the Unix epoch of the first and last task creation and the last report
    /// served: the span a benchmark measures dispatch over.
    first_create: Option<f64>,
    last_create: Option<f64>,
    last_report: Option<f64>,
}

#[derive(Clone)]
struct Ctx {
    inner: Arc<Mutex<Inner>>,
    token: String,
    /// Bytes of huge reports handed to the connection, counted as they are produced: what a client
    /// that stops reading at its limit made the server send.
    huge_report_bytes: Arc<AtomicU64>,
}

/// A running test sandbox.
pub struct TestSandbox {
    addr: SocketAddr,
    ctx: Ctx,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestSandbox {
    /// Starts on an ephemeral port; requests must carry `token`.
    pub fn start(token: &str) -> std::io::Result<TestSandbox> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, token)
    }

    /// Starts on a given address (to bring a sandbox up where a client already points).
    pub fn start_on(addr: SocketAddr, token: &str) -> std::io::Result<TestSandbox> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let ctx = Ctx {
            inner: Arc::new(Mutex::new(Inner::default())),
            token: token.to_string(),
            huge_report_bytes: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new()
            .route("/apiv2/tasks/create/file/", post(create_file))
            .route("/apiv2/tasks/create/url/", post(create_url))
            .route("/apiv2/tasks/status/{id}/", get(cape_status))
            .route("/apiv2/tasks/view/{id}/", get(cape_view))
            .route("/apiv2/tasks/get/report/{id}/", get(report))
            .route("/apiv2/tasks/search/sha256/{sha}/", get(cape_search))
            .route("/tasks/create/file", post(create_file))
            .route("/tasks/create/url", post(create_url))
            .route("/tasks/view/{id}", get(cuckoo_view))
            .route("/tasks/report/{id}", get(report))
            .layer(middleware::from_fn_with_state(ctx.clone(), faults_and_auth))
            .layer(DefaultBodyLimit::max(MAX_UPLOAD + (1 << 20)))
            // Outside the fault and token layer: the test harness's own view, not the API's.
            .route("/_test/summary", get(summary))
            .with_state(ctx.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestSandbox {
            addr,
            ctx,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_faults(&self, faults: Faults) {
        self.with(|i| i.faults = faults);
    }

    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        self.with(|i| change(&mut i.faults));
    }

    /// Every distinct file received: sha256 hex -> (bytes, times submitted).
    pub fn files(&self) -> HashMap<String, (Vec<u8>, u32)> {
        self.with(|i| i.files.clone())
    }

    /// Every URL received, with times submitted.
    pub fn urls(&self) -> HashMap<String, u32> {
        self.with(|i| i.urls.clone())
    }

    pub fn tasks_created(&self) -> usize {
        self.with(|i| i.tasks.len())
    }

    /// Tasks whose status has been asked at least once: the client recorded their ids.
    pub fn tasks_polled(&self) -> usize {
        self.with(|i| i.tasks.iter().filter(|t| t.polls > 0).count())
    }

    pub fn requests(&self) -> u64 {
        self.with(|i| i.requests)
    }

    pub fn refused_auth(&self) -> u64 {
        self.with(|i| i.refused_auth)
    }

    /// Bytes of 2 GiB reports actually produced for clients so far.
    pub fn huge_report_bytes_sent(&self) -> u64 {
        self.ctx.huge_report_bytes.load(Ordering::Relaxed)
    }

    /// What `GET /_test/summary` answers: counts, every file's hash, size and times submitted,
    /// every URL, and the creation/report timestamps.
    pub fn summary(&self) -> Value {
        self.with(|i| summary_of(i))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.ctx.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn summary_of(i: &Inner) -> Value {
    let files: serde_json::Map<String, Value> = i
        .files
        .iter()
        .map(|(sha, (bytes, times))| {
            (
                sha.clone(),
                json!({"size": bytes.len(), "times": times, "sha256_of_bytes": hex(&Sha256::digest(bytes))}),
            )
        })
        .collect();
    json!({
        "tasks": i.tasks.len(),
        "requests": i.requests,
        "refused_auth": i.refused_auth,
        "files": files,
        "urls": i.urls,
        "first_create": i.first_create,
        "last_create": i.last_create,
        "last_report": i.last_report,
    })
}

async fn summary(State(ctx): State<Ctx>) -> Json<Value> {
    Json(summary_of(&lock(&ctx)))
}

fn lock(ctx: &Ctx) -> std::sync::MutexGuard<'_, Inner> {
    ctx.inner.lock().unwrap_or_else(|p| p.into_inner())
}

async fn faults_and_auth(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let is_read = req.method() == axum::http::Method::GET;
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (delay, fault, retry_after) = {
        let mut i = lock(&ctx);
        i.requests += 1;
        let f = &mut i.faults;
        let fault = if f.redirect_loop {
            Some("redirect")
        } else if f.unavailable {
            Some("503")
        } else if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            Some("429")
        } else if f.server_error_next > 0 {
            f.server_error_next -= 1;
            Some("500")
        } else if f.garbage_next > 0 {
            f.garbage_next -= 1;
            Some("garbage")
        } else {
            None
        };
        let delay = if is_read {
            f.delay + f.delay_reads
        } else {
            f.delay
        };
        (delay, fault, f.retry_after.clone())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some("redirect") => return (StatusCode::FOUND, [(header::LOCATION, path)]).into_response(),
        Some("503") => {
            return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
        }
        Some("429") => {
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            if let Some(v) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Some("500") => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Traceback (most recent call last)",
            )
                .into_response();
        }
        Some(_) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"error\": fals",
            )
                .into_response();
        }
        None => {}
    }
    let scheme = if path.starts_with("/apiv2/") {
        "Token"
    } else {
        "Bearer"
    };
    if auth != format!("{scheme} {}", ctx.token) {
        lock(&ctx).refused_auth += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid token."})),
        )
            .into_response();
    }
    next.run(req).await
}

fn created(path_is_cape: bool, id: u64) -> Json<Value> {
    if path_is_cape {
        Json(
            json!({"error": false, "data": {"task_ids": [id], "message": "Task ID(s) added"}, "errors": []}),
        )
    } else {
        Json(json!({"task_id": id}))
    }
}

async fn create_file(
    State(ctx): State<Ctx>,
    uri: axum::http::Uri,
    mut form: Multipart,
) -> Response {
    let limit = lock(&ctx).faults.upload_limit;
    let mut file = None;
    while let Ok(Some(mut field)) = form.next_field().await {
        if field.name() == Some("file") {
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        bytes.extend_from_slice(&chunk);
                        if bytes.len() > limit {
                            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return StatusCode::BAD_REQUEST.into_response(),
                }
            }
            file = Some(bytes);
        }
    }
    let Some(bytes) = file else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": true, "error_value": "No file"})),
        )
            .into_response();
    };
    let sha = hex(&Sha256::digest(&bytes));
    let malicious = bytes.windows(4).any(|w| w == b"EVIL");
    let (id, pause) = {
        let mut i = lock(&ctx);
        let task = add_task(&mut i, Some(sha.clone()), None, malicious);
        i.files.entry(sha).or_insert_with(|| (bytes, 0)).1 += 1;
        task
    };
    tokio::time::sleep(pause).await;
    created(uri.path().starts_with("/apiv2/"), id).into_response()
}

/// Records a new task; returns its id and how long to wait before answering.
fn add_task(
    i: &mut Inner,
    sha256: Option<String>,
    url: Option<String>,
    malicious: bool,
) -> (u64, Duration) {
    let id = i.tasks.len() as u64 + 1;
    let now = unix_now();
    i.first_create.get_or_insert(now);
    i.last_create = Some(now);
    let fails = i.faults.fail_analysis;
    i.tasks.push(Task {
        id,
        sha256,
        url,
        malicious,
        polls: 0,
        fails,
    });
    (id, i.faults.delay_after_create)
}

async fn create_url(
    State(ctx): State<Ctx>,
    uri: axum::http::Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(url) = form.get("url").cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": true, "error_value": "No url"})),
        )
            .into_response();
    };
    let (id, pause) = {
        let mut i = lock(&ctx);
        let task = add_task(&mut i, None, Some(url.clone()), url.contains("evil"));
        *i.urls.entry(url).or_default() += 1;
        task
    };
    tokio::time::sleep(pause).await;
    created(uri.path().starts_with("/apiv2/"), id).into_response()
}

/// Advances and returns a task's status, or None when there is no such task.
fn poll(ctx: &Ctx, id: u64) -> Option<String> {
    let mut i = lock(ctx);
    let until = i.faults.polls_until_reported;
    let t = i.tasks.iter_mut().find(|t| t.id == id)?;
    t.polls += 1;
    Some(
        if t.polls <= until / 2 {
            "pending"
        } else if t.polls <= until {
            "running"
        } else if t.fails {
            "failed_analysis"
        } else {
            "reported"
        }
        .to_string(),
    )
}

async fn cape_status(State(ctx): State<Ctx>, Path(id): Path<u64>) -> Response {
    match poll(&ctx, id) {
        Some(s) => Json(json!({"error": false, "data": s})).into_response(),
        None => {
            Json(json!({"error": true, "error_value": "Task ID does not exist in the database"}))
                .into_response()
        }
    }
}

async fn cape_view(State(ctx): State<Ctx>, Path(id): Path<u64>) -> Response {
    let i = lock(&ctx);
    match i.tasks.iter().find(|t| t.id == id) {
        Some(t) => Json(
            json!({"error": false, "data": {"id": t.id, "status": "reported", "target": t.url}}),
        )
        .into_response(),
        None => {
            Json(json!({"error": true, "error_value": "Task ID does not exist in the database"}))
                .into_response()
        }
    }
}

async fn cuckoo_view(State(ctx): State<Ctx>, Path(id): Path<u64>) -> Response {
    match poll(&ctx, id) {
        Some(s) => Json(json!({"task": {"id": id, "status": s}})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Task not found"})),
        )
            .into_response(),
    }
}

async fn cape_search(State(ctx): State<Ctx>, Path(sha): Path<String>) -> Response {
    let i = lock(&ctx);
    let found: Vec<Value> = i
        .tasks
        .iter()
        .filter(|t| t.sha256.as_deref() == Some(sha.as_str()))
        .map(|t| json!({"id": t.id}))
        .collect();
    Json(json!({"error": false, "data": found})).into_response()
}

async fn report(State(ctx): State<Ctx>, Path(id): Path<u64>) -> Response {
    let (task, huge, garbage) = {
        let mut i = lock(&ctx);
        i.last_report = Some(unix_now());
        (
            i.tasks.iter().find(|t| t.id == id).cloned(),
            i.faults.huge_report,
            i.faults.garbage_reports,
        )
    };
    let Some(task) = task else {
        return (StatusCode::NOT_FOUND, "no such task").into_response();
    };
    if huge {
        // 2 GiB, produced as it is sent: the client must stop reading, not the server.
        const CHUNK: &[u8] = &[b' '; 64 << 10];
        let sent = ctx.huge_report_bytes.clone();
        let chunks = futures_util::stream::iter((0..32_768).map(move |_| {
            sent.fetch_add(CHUNK.len() as u64, Ordering::Relaxed);
            Ok::<_, Infallible>(Bytes::from_static(CHUNK))
        }));
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(chunks),
        )
            .into_response();
    }
    if garbage {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html>502 Bad Gateway</html>",
        )
            .into_response();
    }
    let (score, family) = if task.malicious {
        (9.0, Some("TestFamily"))
    } else {
        (1.0, None)
    };
    Json(json!({
        "info": {"id": task.id, "score": score},
        "malscore": score,
        "detections": family.map(|f| vec![json!({"family": f})]).unwrap_or_default(),
        "target": {"file": {"sha256": task.sha256}, "url": task.url},
    }))
    .into_response()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
