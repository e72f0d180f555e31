//! The tokio ICAP server: accepts proxy connections, answers at once, hands each transaction
//! over through a bounded channel.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;
use weir_core::Timestamp;

use crate::response::{self, OptionsAdvert};
use crate::transaction::{Mode, Transaction};
use crate::wire::{
    Event, IcapError, Limits, MAX_PREVIEW_BYTES, Method, Request, RequestParser, Section,
};

/// Proxy connections served at once, by default; more are answered `503` and closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Body bytes kept per transaction, by default; the rest is counted, not kept.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Transactions waiting for the caller, by default.
pub const DEFAULT_HANDOFF_CAPACITY: usize = 64;
/// Bytes read from a socket at a time; also the most the parser buffers beyond one head.
const READ_BUF_BYTES: usize = 16 * 1024;
/// An echoed body is flushed to the proxy once this much is pending.
const ECHO_FLUSH_BYTES: usize = 64 * 1024;

/// Server settings. `Default` gives the documented defaults and listens on 127.0.0.1:1344.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Proxy connections served at once; advertised as `Max-Connections`.
    pub max_connections: usize,
    /// Head size limits.
    pub limits: Limits,
    /// Body bytes kept per transaction (memory held: this times connections in flight plus the
    /// channel capacity).
    pub max_body_bytes: u64,
    /// `Preview` advertised in OPTIONS: bodies this small arrive in one round trip.
    pub preview_bytes: u64,
    /// `Options-TTL` advertised in OPTIONS.
    pub options_ttl: Duration,
    /// `ISTag`: Weir never modifies, so the tag only changes with the software.
    pub istag: String,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request head (ICAP and HTTP heads) must arrive within this long of its first byte.
    pub head_timeout: Duration,
    /// Within a body, the longest wait for the next bytes.
    pub read_timeout: Duration,
    /// The longest a write to the proxy may block.
    pub write_timeout: Duration,
    /// Transactions waiting for the caller.
    pub handoff_capacity: usize,
    /// How long a connection waits for room in the channel before it drops the transaction.
    /// The proxy already has its answer by then; this only delays the next request on that
    /// connection.
    pub handoff_wait: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 1344)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            limits: Limits::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            preview_bytes: 4096,
            options_ttl: Duration::from_secs(3600),
            istag: concat!("weir-", env!("CARGO_PKG_VERSION")).to_string(),
            idle_timeout: Duration::from_secs(120),
            head_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            handoff_capacity: DEFAULT_HANDOFF_CAPACITY,
            handoff_wait: Duration::from_millis(50),
        }
    }
}

/// A setting [`ServerConfig::validate`] rejects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("icap: {field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("icap: preview_bytes {value} exceeds the parser's limit of {MAX_PREVIEW_BYTES}")]
    PreviewTooLarge { value: u64 },
    #[error(
        "icap: istag must be 1 to 32 characters without '\"' or control characters (RFC 3507 4.7)"
    )]
    BadIstag,
}

impl ServerConfig {
    /// Every problem at once, so a configuration is fixed in one pass.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let zero = |field| ConfigError::Zero { field };
        if self.max_connections == 0 {
            problems.push(zero("max_connections"));
        }
        if self.handoff_capacity == 0 {
            problems.push(zero("handoff_capacity"));
        }
        if self.limits.max_icap_head_bytes == 0 {
            problems.push(zero("max_icap_head_bytes"));
        }
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("head_timeout", self.head_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if value.is_zero() {
                problems.push(zero(field));
            }
        }
        if self.preview_bytes > MAX_PREVIEW_BYTES {
            problems.push(ConfigError::PreviewTooLarge {
                value: self.preview_bytes,
            });
        }
        let istag_ok = (1..=32).contains(&self.istag.len())
            && self
                .istag
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"');
        if !istag_ok {
            problems.push(ConfigError::BadIstag);
        }
        problems
    }
}

/// Counters, shared with the caller; read them with [`ServerStats::snapshot`].
#[derive(Debug, Default)]
pub struct ServerStats {
    connections_accepted: AtomicU64,
    connections_rejected: AtomicU64,
    connections_active: AtomicU64,
    options: AtomicU64,
    reqmod: AtomicU64,
    respmod: AtomicU64,
    answered_204: AtomicU64,
    answered_200_echo: AtomicU64,
    protocol_errors: AtomicU64,
    timeouts: AtomicU64,
    aborted: AtomicU64,
    bodies_truncated: AtomicU64,
    handed_over: AtomicU64,
    dropped_full: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub connections_accepted: u64,
    /// Answered `503` because `max_connections` were in use.
    pub connections_rejected: u64,
    pub connections_active: u64,
    pub options: u64,
    pub reqmod: u64,
    pub respmod: u64,
    pub answered_204: u64,
    pub answered_200_echo: u64,
    /// Requests answered 4xx/5xx for malformed ICAP; the connection was closed.
    pub protocol_errors: u64,
    /// Connections closed because a head or body stalled (idle keep-alive closes not counted).
    pub timeouts: u64,
    /// Connections the proxy closed mid-request.
    pub aborted: u64,
    pub bodies_truncated: u64,
    pub handed_over: u64,
    /// Transactions dropped because the channel stayed full for `handoff_wait` (or was closed).
    pub dropped_full: u64,
}

impl ServerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            connections_accepted: r(&self.connections_accepted),
            connections_rejected: r(&self.connections_rejected),
            connections_active: r(&self.connections_active),
            options: r(&self.options),
            reqmod: r(&self.reqmod),
            respmod: r(&self.respmod),
            answered_204: r(&self.answered_204),
            answered_200_echo: r(&self.answered_200_echo),
            protocol_errors: r(&self.protocol_errors),
            timeouts: r(&self.timeouts),
            aborted: r(&self.aborted),
            bodies_truncated: r(&self.bodies_truncated),
            handed_over: r(&self.handed_over),
            dropped_full: r(&self.dropped_full),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    config: ServerConfig,
    stats: Arc<ServerStats>,
    handoff: mpsc::Sender<Transaction>,
}

/// A bound ICAP server; [`IcapServer::run`] serves until its future is dropped.
pub struct IcapServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
}

impl IcapServer {
    /// Binds `config.listen`; transactions arrive on the returned receiver.
    pub async fn bind(
        config: ServerConfig,
    ) -> io::Result<(IcapServer, mpsc::Receiver<Transaction>)> {
        let problems = config.validate();
        if !problems.is_empty() {
            let text = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, text));
        }
        let listener = TcpListener::bind(config.listen).await?;
        let (handoff, receiver) = mpsc::channel(config.handoff_capacity);
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let shared = Arc::new(Shared {
            config,
            stats: Arc::default(),
            handoff,
        });
        Ok((
            IcapServer {
                listener,
                shared,
                slots,
            },
            receiver,
        ))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Accepts and serves connections, each on its own task, until the future is dropped
    /// (connections in flight finish on their own). Returns only on a listener error that is
    /// not about one connection.
    pub async fn run(self) -> io::Result<()> {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Per-connection failures (reset before accept, fd exhaustion) must not stop the
                // server; back off briefly so fd exhaustion does not spin.
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                bump(&self.shared.stats.connections_rejected);
                // Best effort, never blocking the accept loop: a fresh socket's send buffer has
                // room for this.
                let _ = stream.try_write(&response::error(503, &self.shared.config.istag));
                continue;
            };
            bump(&self.shared.stats.connections_accepted);
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                shared
                    .stats
                    .connections_active
                    .fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let mut conn = Connection::new(stream, peer, &shared);
                conn.serve().await;
                shared
                    .stats
                    .connections_active
                    .fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
    )
}

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The proxy closed or went idle between requests, or asked for `Connection: close`.
    Clean,
    Protocol(IcapError),
    /// A method Weir does not serve; answered 501.
    Unsupported,
    Timeout,
    Aborted,
    Io,
}

struct Connection<'a> {
    stream: TcpStream,
    peer: SocketAddr,
    parser: RequestParser,
    read_buf: Box<[u8]>,
    shared: &'a Shared,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, peer: SocketAddr, shared: &'a Shared) -> Self {
        Connection {
            stream,
            peer,
            parser: RequestParser::new(shared.config.limits),
            read_buf: vec![0; READ_BUF_BYTES].into_boxed_slice(),
            shared,
        }
    }

    async fn serve(&mut self) {
        let end = loop {
            match self.serve_one().await {
                Ok(true) => continue,
                Ok(false) => break End::Clean,
                Err(end) => break end,
            }
        };
        let stats = &self.shared.stats;
        let status = match &end {
            End::Clean | End::Io | End::Aborted => None,
            End::Protocol(e) => Some(e.status()),
            End::Unsupported => Some(501),
            End::Timeout => Some(408),
        };
        match &end {
            End::Protocol(e) => {
                bump(&stats.protocol_errors);
                tracing::debug!(peer = %self.peer, error = %e, "ICAP request rejected");
            }
            End::Unsupported => bump(&stats.protocol_errors),
            End::Timeout => bump(&stats.timeouts),
            End::Aborted => bump(&stats.aborted),
            End::Clean | End::Io => {}
        }
        if let Some(status) = status {
            let _ = self
                .write(&response::error(status, &self.shared.config.istag))
                .await;
        }
        let _ = timeout(self.shared.config.write_timeout, self.stream.shutdown()).await;
    }

    /// Serves one request; `Ok(false)` when the connection should close cleanly.
    async fn serve_one(&mut self) -> Result<bool, End> {
        let request = match self.next_event(true).await? {
            Some(Event::Head(request)) => request,
            Some(_) => return Err(End::Protocol(IcapError::BadRequestLine)),
            None => return Ok(false),
        };
        let close = request.connection_close;
        match request.method {
            Method::Options => {
                bump(&self.shared.stats.options);
                if request.encapsulated.has_body() {
                    // An opt-body carries nothing Weir uses; read past it to stay in step.
                    while !matches!(self.next_body_event().await?, Event::BodyEnd { .. }) {}
                }
                let config = &self.shared.config;
                let advert = OptionsAdvert {
                    methods: response::methods_for_uri(&request.uri),
                    istag: config.istag.clone(),
                    preview_bytes: config.preview_bytes,
                    max_connections: config.max_connections,
                    options_ttl_secs: config.options_ttl.as_secs(),
                };
                self.write(&response::options(&advert)).await?;
            }
            Method::Reqmod | Method::Respmod => self.modify(*request).await?,
            Method::Other(_) => return Err(End::Unsupported),
        }
        Ok(!close)
    }

    /// Reads the whole encapsulated message, answers (`204`, or `200` echoing it when the proxy
    /// did not allow `204`), then hands the transaction over.
    async fn modify(&mut self, request: Request) -> Result<(), End> {
        let config = &self.shared.config;
        let stats = &self.shared.stats;
        let mode = if request.method == Method::Reqmod {
            bump(&stats.reqmod);
            Mode::Reqmod
        } else {
            bump(&stats.respmod);
            Mode::Respmod
        };
        let body_section = request
            .encapsulated
            .body()
            .filter(|_| request.encapsulated.has_body());
        let mut tx = Transaction {
            mode,
            service_uri: request.uri.clone(),
            received_at: now(),
            proxy_addr: self.peer,
            client_ip: request.client_ip,
            http_request_head: request.http_request_head.clone(),
            http_response_head: request.http_response_head.clone(),
            has_body: body_section.is_some(),
            body: Vec::new(),
            body_len: 0,
            complete: false,
        };

        let mut in_preview = request.preview.is_some();
        let preview_limit = request.preview.unwrap_or(0);
        // Echoing starts as soon as it is certain to be needed, so the proxy is never waiting
        // for the whole body to be buffered here.
        let mut echo: Option<Vec<u8>> = None;
        if !request.allow_204 && !in_preview {
            echo = Some(echo_head(&request, body_section, &config.istag));
            bump(&stats.answered_200_echo);
        }
        // Preview bytes, kept whole only while an echo might still be needed after them.
        let mut preview_bytes: Vec<u8> = Vec::new();

        if body_section.is_some() {
            loop {
                let event = match self.next_body_event().await {
                    Ok(event) => event,
                    Err(end) => {
                        self.hand_over(tx).await;
                        return Err(end);
                    }
                };
                match event {
                    Event::BodyData(data) => {
                        if in_preview {
                            if tx.body_len + data.len() as u64 > preview_limit {
                                self.hand_over(tx).await;
                                return Err(End::Protocol(IcapError::BadChunk {
                                    reason: "preview longer than announced",
                                }));
                            }
                            if !request.allow_204 {
                                preview_bytes.extend_from_slice(&data);
                            }
                        }
                        keep(&mut tx, &data, config.max_body_bytes);
                        if let Some(out) = echo.as_mut() {
                            response::push_chunk(out, &data);
                            if out.len() >= ECHO_FLUSH_BYTES {
                                let pending = std::mem::take(out);
                                self.write(&pending).await?;
                            }
                        }
                    }
                    Event::BodyEnd { ieof } if in_preview && !ieof => {
                        // Weir wants every byte, so it always asks for the rest.
                        self.write(response::CONTINUE).await?;
                        self.parser.resume_body();
                        in_preview = false;
                        if !request.allow_204 {
                            let mut out = echo_head(&request, body_section, &config.istag);
                            response::push_chunk(&mut out, &std::mem::take(&mut preview_bytes));
                            echo = Some(out);
                            bump(&stats.answered_200_echo);
                        }
                    }
                    Event::BodyEnd { .. } => break,
                    Event::Head(_) => unreachable_head()?,
                }
            }
        }
        tx.complete = true;

        match echo {
            Some(mut out) => {
                if body_section.is_some() {
                    out.extend_from_slice(response::LAST_CHUNK);
                }
                self.write(&out).await?;
            }
            // A 204 is allowed with `Allow: 204`, or while still inside the preview
            // (RFC 3507 4.5); a body that fit the preview ended there.
            None if request.allow_204 || in_preview => {
                bump(&stats.answered_204);
                self.write(&response::no_content(&config.istag)).await?;
            }
            None => {
                let mut out = echo_head(&request, body_section, &config.istag);
                if body_section.is_some() {
                    response::push_chunk(&mut out, &preview_bytes);
                    out.extend_from_slice(response::LAST_CHUNK);
                }
                bump(&stats.answered_200_echo);
                self.write(&out).await?;
            }
        }
        self.hand_over(tx).await;
        Ok(())
    }

    /// Gives the transaction to the caller, waiting at most `handoff_wait` for room.
    async fn hand_over(&self, tx: Transaction) {
        let stats = &self.shared.stats;
        if tx.body_truncated() {
            bump(&stats.bodies_truncated);
        }
        let sent = match self.shared.handoff.try_send(tx) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(tx)) => {
                matches!(
                    timeout(
                        self.shared.config.handoff_wait,
                        self.shared.handoff.send(tx)
                    )
                    .await,
                    Ok(Ok(()))
                )
            }
        };
        bump(if sent {
            &stats.handed_over
        } else {
            &stats.dropped_full
        });
    }

    async fn next_body_event(&mut self) -> Result<Event, End> {
        match self.next_event(false).await? {
            Some(event) => Ok(event),
            None => Err(End::Aborted),
        }
    }

    /// The next parser event; `Ok(None)` when the proxy closed or idled out between requests.
    async fn next_event(&mut self, between_requests: bool) -> Result<Option<Event>, End> {
        let config = &self.shared.config;
        let mut head_deadline: Option<Instant> = None;
        loop {
            if let Some(event) = self.parser.poll().map_err(End::Protocol)? {
                return Ok(Some(event));
            }
            let idle = between_requests && self.parser.is_idle();
            let wait = if idle {
                config.idle_timeout
            } else if between_requests {
                let deadline =
                    *head_deadline.get_or_insert_with(|| Instant::now() + config.head_timeout);
                deadline.saturating_duration_since(Instant::now())
            } else {
                config.read_timeout
            };
            let read = timeout(wait, self.stream.read(&mut self.read_buf)).await;
            let n = match read {
                Err(_) if idle => return Ok(None),
                Err(_) => return Err(End::Timeout),
                Ok(Err(_)) => return Err(End::Io),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return if idle { Ok(None) } else { Err(End::Aborted) };
            }
            self.parser.push(&self.read_buf[..n]);
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        match timeout(
            self.shared.config.write_timeout,
            self.stream.write_all(bytes),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Io),
            Err(_) => Err(End::Timeout),
        }
    }
}

fn unreachable_head() -> Result<(), End> {
    // The parser emits a head only between requests; seeing one inside a body is a parser bug,
    // answered as a protocol error rather than a panic.
    Err(End::Protocol(IcapError::BadChunk {
        reason: "request head inside a body",
    }))
}

/// The 200 head echoing the request's HTTP heads; the body, if any, follows chunked.
fn echo_head(request: &Request, body: Option<Section>, istag: &str) -> Vec<u8> {
    let mut heads: Vec<(Section, &[u8])> = Vec::new();
    match request.method {
        Method::Reqmod => {
            if !request.http_request_head.is_empty() {
                heads.push((Section::ReqHdr, &request.http_request_head));
            }
        }
        _ => {
            if !request.http_response_head.is_empty() {
                heads.push((Section::ResHdr, &request.http_response_head));
            }
        }
    }
    response::echo_head(istag, &heads, body)
}

fn keep(tx: &mut Transaction, data: &[u8], max_body_bytes: u64) {
    let room = max_body_bytes.saturating_sub(tx.body.len() as u64);
    let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
    tx.body.extend_from_slice(&data[..take]);
    tx.body_len += data.len() as u64;
}

fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(since.as_secs(), u64::from(since.subsec_nanos()))
}
