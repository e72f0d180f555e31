//! `weir icap`: serve ICAP (RFC 3507) for a web proxy and run every proxied HTTP exchange through
//! the HTTP parsing, extraction and detection that captured traffic gets (SPEC.md section 8).
//!
//! Threads: a tokio runtime runs weir-icap's server, which answers the proxy first and then hands
//! each message over its bounded channel; one pipeline thread owns the HTTP parser, the
//! filestore, the matcher and eve.json. The sans-IO stages never run on a connection task, so a
//! slow rule set delays records, never the proxy.
//!
//! One exchange, one set of records. With both services configured, Squid sends an exchange
//! twice: REQMOD (request head and body) before forwarding the request, then RESPMOD (request
//! head again, response head and body). A REQMOD therefore waits, up to `[icap] pair_wait`, for
//! the RESPMOD with the same client, method and URL, and the two are parsed as one HTTP
//! connection holding one transaction: one `http` record with both sides, the upload and the
//! download as `fileinfo`, one `flow_id`, each rule alerting once. A REQMOD that no RESPMOD
//! claims (a proxy configured for REQMOD only, a cache hit, a refused or failed request, a
//! download slower than `pair_wait`) is logged on its own when its wait ends; a RESPMOD with no
//! waiting REQMOD (a proxy configured for RESPMOD only) is logged at once.
//!
//! Addresses, since an ICAP message carries no TCP tuple: `src_ip` is the proxy's client
//! (`X-Client-IP`) when the proxy sends it, else the proxy; `src_port` is 0 (unknown);
//! `dest_ip` is the request's host when that is an IP literal, else the proxy's address (Weir
//! does not resolve names: the proxy did, and its answer is not in the message); `dest_port` is
//! the URL's port (80, 443 for `https` and `CONNECT`, unless the URL names one). Rules written
//! `-> $EXTERNAL_NET` thus see the proxy as the server for named hosts. Every record carries
//! `"icap": {"mode", "client_ip" (when sent), "proxy"}`, where `mode` names the ICAP message
//! that carried the side of the exchange the record is about.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use weir_core::eve::{self, FlowHeader, Record};
use weir_core::{AppProto, Direction, FlowKey, IpProto, LinkType, StreamEvent, Timestamp, Vlans};
use weir_detect::engine::{Alert, FlowDetectState, TxView};
use weir_extract::files::{FileSink, Filestore, NullSink};
use weir_extract::http::{HttpConfig, HttpState, HttpTx, http_object};
use weir_extract::{AppEvent, Emit};
use weir_flow::{Flow, Lifecycle};
use weir_icap::{IcapServer, Limits, Mode, ServerConfig, StatsSnapshot, Transaction};

use crate::build;
use crate::config::{Config, IcapSection};
use crate::swap::SharedSets;
use std::sync::Arc;
use crate::detection::{Detector, PacketFacts, PacketSource, PendingAlert};
use crate::inspect;
use crate::output::EveWriter;

/// REQMODs waiting for their RESPMOD at most; past it the oldest is logged on its own.
pub const MAX_WAITING_REQMODS: usize = 1024;
/// Body bytes all waiting REQMODs hold together at most; past it the oldest are logged on their
/// own. (Each body is already bounded by `[icap] max_body`.)
pub const MAX_WAITING_BODY_BYTES: usize = 64 << 20;
/// Threads answering the proxy. Answering is cheap (Weir reads and replies `204`); the work is
/// on the pipeline thread.
const SERVER_THREADS: usize = 2;
/// On shutdown, how long messages already being received may take to be answered and handed
/// over; then the connection tasks are dropped (a message still arriving is not logged, and a
/// proxy with `bypass=on` carries on without Weir).
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);
/// How often the in-flight count is looked at during [`IN_FLIGHT_GRACE`].
const IN_FLIGHT_POLL: Duration = Duration::from_millis(10);
/// How long blocking work on the runtime may take to stop (there is none besides the tasks).
const RUNTIME_STOP_WAIT: Duration = Duration::from_secs(1);
/// Flow ids stay below 2^51, as Suricata's do, so JSON readers using doubles keep them exact.
const FLOW_ID_MASK: u64 = (1 << 51) - 1;

/// Runs `weir icap` until SIGINT or SIGTERM, then logs what is still waiting, flushes eve.json
/// and returns. `listen` overrides `[icap] listen`.
pub fn run(listen: Option<&str>, out: Option<PathBuf>, config: &Config, source: crate::reload::ConfigSource) -> anyhow::Result<()> {
    let listen = match listen {
        Some(text) => text
            .parse::<SocketAddr>()
            .with_context(|| format!("--listen {text}: not an address and port such as 127.0.0.1:1344"))?,
        None => config.icap.listen,
    };
    let out = out.unwrap_or_else(|| config.output.dir.clone());
    crate::output::create_output_dir(&out)?;
    // Rules first: a bad rule file must fail before the proxy is told Weir is up.
    let sets = build::shared_sets(config)?;
    // SIGHUP reloads the rules (and the rest of [detect]) as for `weir live`.
    let _reloader = crate::reload::start(source, sets.clone())?;
    let eve = EveWriter::create(&out, false, &config.output.eve_types)?;
    // Signals are caught before the port opens, so a SIGTERM sent as soon as Weir answers
    // cannot find the default action (immediate death, eve.json unflushed).
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("cannot catch SIGTERM/SIGINT")?;
    let service = IcapService::start(config, listen, &out, eve, sets)?;
    eprintln!("weir: ICAP listening on {}; outputs in {}", service.local_addr(), out.display());
    while signals.pending().next().is_none() && !service.ended() {
        std::thread::sleep(SIGNAL_POLL);
    }
    let summary = service.stop()?;
    eprintln!("weir: {summary}");
    Ok(())
}

/// How often `weir icap` looks for a signal or a stopped service.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// A running ICAP service: the server on its own runtime, and the pipeline thread behind it
/// writing into the EVE writer it was given (its own eve.json for `weir icap`, the capture's
/// merged one beside `weir live`).
pub struct IcapService {
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<io::Result<()>>,
    worker: std::thread::JoinHandle<anyhow::Result<PipelineStats>>,
    server_stats: std::sync::Arc<weir_icap::ServerStats>,
    bound: SocketAddr,
}

impl IcapService {
    /// `sets`: the rules in use, followed as they are swapped.
    pub fn start(config: &Config, listen: SocketAddr, out: &std::path::Path, eve: EveWriter, sets: Arc<SharedSets>) -> anyhow::Result<IcapService> {
        let Some(http_config) = build::app_layer_config(config).http else {
            anyhow::bail!("[app_layer.http] is disabled, so there is nothing to do with ICAP messages")
        };
        let files: Box<dyn FileSink + Send> = if config.output.filestore {
            Box::new(Filestore::new(out).with_context(|| format!("cannot create the filestore in {}", out.display()))?)
        } else {
            Box::new(NullSink)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SERVER_THREADS)
            .thread_name("weir-icap")
            .enable_all()
            .build()
            .context("cannot start the ICAP runtime")?;
        let (server, messages) = runtime
            .block_on(IcapServer::bind(server_config(&config.icap, listen)))
            .with_context(|| format!("cannot serve ICAP on {listen}"))?;
        let bound = server.local_addr().context("ICAP listener")?;
        let server_stats = server.stats();
        let pipeline = Pipeline::new(http_config, eve, files, RulesFollower { sets, generation: None, rules: None }, Duration::from_secs(config.icap.pair_wait));
        let worker = std::thread::Builder::new()
            .name("weir-icap-pipeline".into())
            .spawn(move || pipeline.run(messages))
            .context("cannot start the ICAP pipeline thread")?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(async move {
            tokio::select! {
                _ = stop_rx => Ok(()),
                result = server.run() => result,
            }
        });
        Ok(IcapService { runtime, stop: Some(stop), served, worker, server_stats, bound })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    /// The server or the pipeline stopped on its own: only a failure does that.
    pub fn ended(&self) -> bool {
        self.served.is_finished() || self.worker.is_finished()
    }

    /// Closes the listener, lets messages the proxy already has an answer for be handed over,
    /// lets the pipeline log what is still waiting, and returns the closing summary line.
    pub fn stop(mut self) -> anyhow::Result<String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.runtime.block_on(async {
            let served = (&mut self.served).await;
            let deadline = tokio::time::Instant::now() + IN_FLIGHT_GRACE;
            while in_flight(&self.server_stats.snapshot()) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(IN_FLIGHT_POLL).await;
            }
            served
        });
        // Dropping the connection tasks drops the channel's senders: the pipeline drains what
        // was handed over, logs the REQMODs still waiting, and ends.
        self.runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
        let stats = self.worker.join().map_err(|_| anyhow::anyhow!("the ICAP pipeline thread panicked"))??;
        match served {
            Ok(result) => result.with_context(|| format!("ICAP listener on {} failed", self.bound))?,
            Err(e) => anyhow::bail!("ICAP listener on {}: {e}", self.bound),
        }
        Ok(summary_line(&stats, &self.server_stats.snapshot()))
    }
}

/// REQMOD/RESPMOD requests begun and not yet handed over or ended by an error. An estimate: an
/// error is counted per connection, and a write failure not at all (then the grace runs out).
fn in_flight(s: &StatsSnapshot) -> u64 {
    let ended = s.handed_over + s.dropped_full + s.aborted + s.timeouts + s.protocol_errors;
    (s.reqmod + s.respmod).saturating_sub(ended)
}

/// Maps `[icap]` onto weir-icap's settings.
pub fn server_config(section: &IcapSection, listen: SocketAddr) -> ServerConfig {
    let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    ServerConfig {
        listen,
        max_connections: section.max_connections,
        limits: Limits {
            max_icap_head_bytes: usize_of(section.max_icap_head.0),
            max_http_heads_bytes: usize_of(section.max_http_heads.0),
        },
        max_body_bytes: section.max_body.0,
        preview_bytes: section.preview.0,
        options_ttl: Duration::from_secs(section.options_ttl),
        idle_timeout: Duration::from_secs(section.idle_timeout),
        head_timeout: Duration::from_secs(section.head_timeout),
        read_timeout: Duration::from_secs(section.read_timeout),
        write_timeout: Duration::from_secs(section.write_timeout),
        handoff_capacity: section.queue,
        handoff_wait: Duration::from_millis(section.queue_wait_ms),
        ..ServerConfig::default()
    }
}

fn summary_line(p: &PipelineStats, s: &StatsSnapshot) -> String {
    format!(
        "ICAP: {} connections ({} refused), {} REQMOD, {} RESPMOD, {} malformed, {} dropped on a full queue; \
         {} exchanges logged ({} paired, {} REQMOD alone, {} RESPMOD alone), {} files, {} alerts, {} anomalies",
        s.connections_accepted,
        s.connections_rejected,
        s.reqmod,
        s.respmod,
        s.protocol_errors,
        s.dropped_full,
        p.paired + p.reqmod_alone + p.respmod_alone,
        p.paired,
        p.reqmod_alone,
        p.respmod_alone,
        p.files,
        p.alerts,
        p.anomalies,
    )
}

/// Counters of the pipeline thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub paired: u64,
    pub reqmod_alone: u64,
    pub respmod_alone: u64,
    pub files: u64,
    pub alerts: u64,
    pub anomalies: u64,
}

/// What the request line and `Host` say about where a request went.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RequestTarget {
    method: String,
    /// `host[:port]`, lower case; from the absolute URL, else from `Host`.
    authority: String,
    /// Path and query (empty for CONNECT).
    path: String,
    port: u16,
    /// The host when it is an IP literal.
    host_ip: Option<IpAddr>,
}

impl RequestTarget {
    fn parse(head: &[u8]) -> Option<RequestTarget> {
        let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = String::from_utf8_lossy(lines.next()?).into_owned();
        let mut parts = request_line.split_ascii_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?;
        let host_header = || {
            lines.clone().take_while(|l| !l.is_empty()).find_map(|l| {
                let (name, value) = l.split_at(l.iter().position(|&b| b == b':')?);
                name.eq_ignore_ascii_case(b"host").then(|| String::from_utf8_lossy(&value[1..]).trim().to_string())
            })
        };
        let (https, authority, path) = if let Some((scheme, rest)) = target.split_once("://") {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let path = if end == rest.len() { "/".to_string() } else { rest[end..].to_string() };
            (scheme.eq_ignore_ascii_case("https"), rest[..end].to_string(), path)
        } else if method.eq_ignore_ascii_case("CONNECT") {
            (true, target.to_string(), String::new())
        } else {
            (false, host_header().unwrap_or_default(), target.to_string())
        };
        let authority = authority.to_ascii_lowercase();
        let (host, port) = split_authority(&authority);
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let host_ip = host.parse::<IpAddr>().ok();
        Some(RequestTarget { method, authority, path, port, host_ip })
    }
}

/// `host[:port]` or `[v6]:port` into the host (brackets removed) and the port when given.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (authority, None),
    }
}

/// Which REQMOD a RESPMOD completes: the same client asking the same thing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PairKey {
    client: IpAddr,
    method: String,
    authority: String,
    path: String,
}

fn client_of(tx: &Transaction) -> IpAddr {
    tx.client_ip.unwrap_or(tx.proxy_addr.ip())
}

fn pair_key(tx: &Transaction) -> Option<PairKey> {
    let t = RequestTarget::parse(&tx.http_request_head)?;
    Some(PairKey { client: client_of(tx), method: t.method, authority: t.authority, path: t.path })
}

/// REQMODs waiting for their RESPMOD, oldest first. Bounded by [`MAX_WAITING_REQMODS`] and
/// [`MAX_WAITING_BODY_BYTES`]; a lookup is a scan, which that bound keeps short.
struct Pairing {
    wait: Duration,
    waiting: VecDeque<(Instant, PairKey, Transaction)>,
    body_bytes: usize,
}

impl Pairing {
    fn new(wait: Duration) -> Pairing {
        Pairing { wait, waiting: VecDeque::new(), body_bytes: 0 }
    }

    /// Queues a REQMOD; returns those pushed out by the limits, to be logged alone.
    fn push(&mut self, now: Instant, key: PairKey, tx: Transaction) -> Vec<Transaction> {
        self.body_bytes += tx.body.len();
        self.waiting.push_back((now, key, tx));
        let mut evicted = Vec::new();
        while self.waiting.len() > MAX_WAITING_REQMODS || self.body_bytes > MAX_WAITING_BODY_BYTES {
            match self.pop_front() {
                Some(tx) => evicted.push(tx),
                None => break,
            }
        }
        evicted
    }

    fn pop_front(&mut self) -> Option<Transaction> {
        let (_, _, tx) = self.waiting.pop_front()?;
        self.body_bytes -= tx.body.len();
        Some(tx)
    }

    /// The oldest waiting REQMOD with this key: concurrent identical requests pair in order.
    fn take(&mut self, key: &PairKey) -> Option<Transaction> {
        let at = self.waiting.iter().position(|(_, k, _)| k == key)?;
        let (_, _, tx) = self.waiting.remove(at)?;
        self.body_bytes -= tx.body.len();
        Some(tx)
    }

    /// REQMODs whose wait is over at `now`.
    fn expired(&mut self, now: Instant) -> Vec<Transaction> {
        let mut out = Vec::new();
        while self.waiting.front().is_some_and(|(since, _, _)| now.saturating_duration_since(*since) >= self.wait) {
            out.extend(self.pop_front());
        }
        out
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.waiting.front().map(|(since, _, _)| *since + self.wait)
    }

    fn drain(&mut self) -> Vec<Transaction> {
        self.body_bytes = 0;
        self.waiting.drain(..).map(|(_, _, tx)| tx).collect()
    }
}

/// One HTTP exchange as the proxy showed it: the REQMOD, the RESPMOD, or both.
struct Exchange {
    reqmod: Option<Transaction>,
    respmod: Option<Transaction>,
}

impl Exchange {
    fn alone(tx: Transaction) -> Exchange {
        match tx.mode {
            Mode::Reqmod => Exchange { reqmod: Some(tx), respmod: None },
            Mode::Respmod => Exchange { reqmod: None, respmod: Some(tx) },
        }
    }

    /// The message carrying a side of the exchange: the request from REQMOD when there is one
    /// (it has the body), the response from RESPMOD.
    fn carrier(&self, dir: Direction) -> Option<&Transaction> {
        match dir {
            Direction::ToServer => self.reqmod.as_ref().or(self.respmod.as_ref()),
            Direction::ToClient => self.respmod.as_ref().or(self.reqmod.as_ref()),
        }
    }

    /// Client to server, as the module documentation describes.
    fn flow_key(&self) -> Option<FlowKey> {
        let tx = self.carrier(Direction::ToServer)?;
        let target = RequestTarget::parse(&tx.http_request_head);
        Some(FlowKey {
            src_ip: client_of(tx),
            dst_ip: target.as_ref().and_then(|t| t.host_ip).unwrap_or(tx.proxy_addr.ip()),
            src_port: 0,
            dst_port: target.map_or(80, |t| t.port),
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        })
    }
}

/// The `icap` object of a record about `tx`'s data.
fn icap_object(tx: &Transaction) -> Value {
    let mut o = Map::new();
    let mode = match tx.mode {
        Mode::Reqmod => "reqmod",
        Mode::Respmod => "respmod",
    };
    o.insert("mode".into(), Value::from(mode));
    if let Some(ip) = tx.client_ip {
        o.insert("client_ip".into(), Value::from(ip.to_string()));
    }
    o.insert("proxy".into(), Value::from(tx.proxy_addr.to_string()));
    Value::Object(o)
}

/// Flow ids unique within a run and, through the start time, across runs.
struct FlowIds {
    seed: u64,
    next: u64,
}

impl FlowIds {
    fn new() -> FlowIds {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        FlowIds { seed, next: 0 }
    }

    fn next(&mut self) -> u64 {
        self.next += 1;
        // splitmix64: a bijection, so ids differ before the mask; 0 is never handed out.
        let mut z = self.seed.wrapping_add(self.next.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) & FLOW_ID_MASK).max(1)
    }
}

/// Follows the rule set published in [`SharedSets`]: a new matcher when it changed.
struct RulesFollower {
    sets: Arc<SharedSets>,
    generation: Option<u64>,
    rules: Option<Arc<weir_detect::engine::CompiledRules>>,
}

impl RulesFollower {
    /// A detector for the rules in use, when they are not the ones of the last detector (feeds or
    /// exclusions swapped alone change nothing here). A matcher that cannot be prepared keeps the
    /// old one.
    fn newer(&mut self) -> Option<Option<Detector>> {
        let generation = self.sets.generation();
        if self.generation == Some(generation) {
            return None;
        }
        self.generation = Some(generation);
        let rules = self.sets.load().1.rules.clone();
        let same = match (&rules, &self.rules) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return None;
        }
        match rules.clone().map(Detector::new).transpose() {
            Ok(detector) => {
                if self.rules.is_some() {
                    eprintln!("weir: ICAP: rules swapped in");
                }
                self.rules = rules;
                Some(detector)
            }
            Err(e) => {
                eprintln!("weir: error: ICAP keeps the rules in use: {e:#}");
                None
            }
        }
    }
}

/// The pipeline thread's state: everything between the channel and the outputs.
struct Pipeline {
    http_config: HttpConfig,
    eve: EveWriter,
    files: Box<dyn FileSink + Send>,
    detector: Option<Detector>,
    /// The rule set in use and where newer ones are published (SIGHUP, the Central Node).
    rules: RulesFollower,
    pairing: Pairing,
    flow_ids: FlowIds,
    stats: PipelineStats,
    scratch: Vec<Alert>,
    io_error: Option<io::Error>,
}

impl Pipeline {
    fn new(
        http_config: HttpConfig,
        eve: EveWriter,
        files: Box<dyn FileSink + Send>,
        rules: RulesFollower,
        pair_wait: Duration,
    ) -> Pipeline {
        Pipeline {
            http_config,
            eve,
            files,
            detector: None,
            rules,
            pairing: Pairing::new(pair_wait),
            flow_ids: FlowIds::new(),
            stats: PipelineStats::default(),
            scratch: Vec::new(),
            io_error: None,
        }
    }

    /// Consumes messages until the channel closes, flushing eve.json whenever the queue is empty.
    fn run(mut self, mut messages: mpsc::Receiver<Transaction>) -> anyhow::Result<PipelineStats> {
        // A clock for the pairing deadlines; the server's runtime may already be shutting down.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("cannot start the pipeline's timer")?;
        loop {
            let deadline = self.pairing.next_deadline();
            let next = clock.block_on(async {
                match deadline {
                    Some(at) => tokio::time::timeout_at(at.into(), messages.recv()).await.ok(),
                    None => Some(messages.recv().await),
                }
            });
            match next {
                Some(Some(tx)) => self.on_message(tx, Instant::now()),
                Some(None) => break,
                None => {}
            }
            for tx in self.pairing.expired(Instant::now()) {
                self.process(Exchange::alone(tx));
            }
            if messages.is_empty() {
                self.write_result(|eve| eve.flush());
            }
            if let Some(e) = self.io_error.take() {
                return Err(anyhow::Error::new(e).context(format!("writing {}", self.eve.path().display())));
            }
        }
        for tx in self.pairing.drain() {
            self.process(Exchange::alone(tx));
        }
        self.write_result(|eve| eve.flush());
        match self.io_error.take() {
            Some(e) => Err(anyhow::Error::new(e).context(format!("writing {}", self.eve.path().display()))),
            None => Ok(self.stats),
        }
    }

    fn on_message(&mut self, tx: Transaction, now: Instant) {
        let key = pair_key(&tx);
        match (tx.mode, key) {
            // CONNECT is never followed by a RESPMOD of its own.
            (Mode::Reqmod, Some(key)) if !self.pairing.wait.is_zero() && !key.method.eq_ignore_ascii_case("CONNECT") => {
                for alone in self.pairing.push(now, key, tx) {
                    self.process(Exchange::alone(alone));
                }
            }
            (Mode::Respmod, Some(key)) => match self.pairing.take(&key) {
                Some(reqmod) => self.process(Exchange { reqmod: Some(reqmod), respmod: Some(tx) }),
                None => self.process(Exchange::alone(tx)),
            },
            _ => self.process(Exchange::alone(tx)),
        }
    }

    /// Parses, extracts, inspects and logs one exchange.
    fn process(&mut self, exchange: Exchange) {
        if let Some(detector) = self.rules.newer() {
            // Each exchange is inspected on its own: no per-flow state outlives a rule swap.
            self.detector = detector;
        }
        match (&exchange.reqmod, &exchange.respmod) {
            (Some(_), Some(_)) => self.stats.paired += 1,
            (Some(_), None) => self.stats.reqmod_alone += 1,
            _ => self.stats.respmod_alone += 1,
        }
        let Some(key) = exchange.flow_key() else { return };
        let flow_id = self.flow_ids.next();
        let mut http = HttpState::new(&self.http_config);
        let mut emit = Emit::default();
        let mut detect = FlowDetectState::default();
        let mut pending: Vec<PendingAlert> = Vec::new();
        let mut last_ts = Timestamp::ZERO;
        let mut bytes = [0u64; 2];
        for dir in [Direction::ToServer, Direction::ToClient] {
            let Some(tx) = exchange.carrier(dir) else { continue };
            let stream = tx.http_stream(dir);
            last_ts = last_ts.max(tx.received_at);
            for ev in stream.events() {
                bytes[dir.index()] += match ev {
                    StreamEvent::Data(b) => b.len() as u64,
                    StreamEvent::Gap { len } => len,
                    StreamEvent::End => 0,
                };
                http.on_stream(dir, ev, tx.received_at, self.files.as_mut(), &mut emit);
            }
            if let Some(det) = self.detector.as_mut() {
                // Raw-stream rules see each side as reassembly would hand it over.
                let facts = facts(tx.received_at);
                let oriented = oriented(key, dir);
                for ev in stream.events() {
                    match ev {
                        StreamEvent::Data(b) => det.stream(&facts, oriented, dir, b, &mut detect, &mut pending),
                        StreamEvent::Gap { len } => detect.stream_gap(dir, len),
                        StreamEvent::End => {}
                    }
                }
            }
        }
        for dir in [Direction::ToServer, Direction::ToClient] {
            http.on_stream(dir, StreamEvent::End, last_ts, self.files.as_mut(), &mut emit);
        }
        let mut txs = http.take_finished();
        if let Some(det) = self.detector.as_mut() {
            // Both sides are complete: each transaction is inspected once from each side.
            txs.extend(http.transactions().cloned());
            for tx in &txs {
                inspect_tx(det, &mut self.scratch, last_ts, key, tx, &mut detect, &mut pending);
            }
        }

        let origin = |dir: Direction| exchange.carrier(dir).map(icap_object).unwrap_or(Value::Null);
        for ev in emit.events {
            let record = app_record(flow_id, key, &ev, origin(ev.direction));
            if ev.event_type == "fileinfo" {
                self.stats.files += 1;
            }
            self.write(&record);
        }
        for (ts, anomaly) in emit.anomalies {
            self.stats.anomalies += 1;
            let mut r = eve::record(ts, "anomaly", None);
            eve::put_addresses(&mut r, &key);
            r.insert("anomaly".into(), json!({ "type": anomaly.layer.eve(), "event": anomaly.event.to_string() }));
            r.insert("icap".into(), origin(Direction::ToClient));
            self.write(&r);
        }
        if let (Some(det), false) = (self.detector.as_ref(), pending.is_empty()) {
            let first_ts = exchange.carrier(Direction::ToServer).map_or(last_ts, |tx| tx.received_at);
            let flow = Flow {
                id: flow_id,
                key,
                start: first_ts,
                last_seen: last_ts,
                // No packets were seen; the byte counts are the HTTP bytes of each side.
                pkts: [0, 0],
                bytes,
                lifecycle: Lifecycle::Established,
                app_proto: Some(AppProto::Http),
                alerted: true,
                state: (),
            };
            let records: Vec<Record> = pending
                .iter()
                .map(|p| {
                    let mut r = crate::detection::alert_record(&det.rules, p, &flow);
                    r.insert("pkt_src".into(), Value::from("icap"));
                    r.insert("icap".into(), origin(p.direction));
                    r
                })
                .collect();
            self.stats.alerts += records.len() as u64;
            for r in &records {
                self.write(r);
            }
        }
    }

    fn write(&mut self, record: &Record) {
        self.write_result(|eve| eve.write(record));
    }

    /// Keeps the first output error; the run stops with it.
    fn write_result(&mut self, op: impl FnOnce(&mut EveWriter) -> io::Result<()>) {
        if self.io_error.is_none()
            && let Err(e) = op(&mut self.eve)
        {
            self.io_error = Some(e);
        }
    }
}

/// Inspection facts for ICAP data: no packet, an established HTTP "flow".
fn facts(ts: Timestamp) -> PacketFacts<'static> {
    PacketFacts {
        ts,
        pcap_cnt: None,
        ttl: 0,
        ip_id: 0,
        tcp: None,
        icmp: None,
        established: true,
        app_proto: Some(AppProto::Http),
        frame: &[],
        link: LinkType::ETHERNET,
        tunnel: None,
        defragmented: false,
        source: PacketSource::Wire,
    }
}

fn oriented(key: FlowKey, dir: Direction) -> FlowKey {
    match dir {
        Direction::ToServer => key,
        Direction::ToClient => key.reversed(),
    }
}

/// Transaction rules over one finished transaction, from each side (the matcher alerts a rule at
/// most once per transaction and side).
fn inspect_tx(
    det: &mut Detector,
    scratch: &mut Vec<Alert>,
    ts: Timestamp,
    key: FlowKey,
    tx: &HttpTx,
    detect: &mut FlowDetectState,
    pending: &mut Vec<PendingAlert>,
) {
    let facts = facts(ts);
    let object = http_object(tx, false);
    for side in [Direction::ToServer, Direction::ToClient] {
        let buffers = inspect::http(tx, side);
        if buffers.is_empty() {
            continue;
        }
        let view = buffers.view();
        let txv = TxView { tx_id: tx.id, direction: side, buffers: &view };
        let oriented = oriented(key, side);
        let pkt = facts.view(oriented, Some(side), &[], true);
        det.matcher.inspect_tx(&det.rules, detect, &pkt, &txv, scratch);
        for alert in scratch.drain(..) {
            pending.push(PendingAlert {
                alert,
                ts,
                key: oriented,
                direction: side,
                payload: Vec::new(),
                stream: false,
                source: PacketSource::Wire,
                pcap_cnt: None,
                frame: None,
                tunnel: None,
                app_object: Some(("http", object.clone())),
            });
        }
    }
}

/// An `http` or `fileinfo` record as the worker writes it for captured traffic, plus `icap`.
fn app_record(flow_id: u64, key: FlowKey, ev: &AppEvent, icap: Value) -> Record {
    // Suricata writes fileinfo in the direction the file travelled, everything else client to
    // server.
    let key = if ev.event_type == "fileinfo" { oriented(key, ev.direction) } else { key };
    let header = FlowHeader { flow_id, key, app_proto: Some(AppProto::Http) };
    let mut r = eve::record(ev.ts, ev.event_type, Some(&header));
    if ev.event_type == "fileinfo" {
        r.insert("app_proto".into(), Value::from(AppProto::Http.eve_name()));
    }
    for (k, v) in &ev.fields {
        r.insert(k.clone(), v.clone());
    }
    r.insert("icap".into(), icap);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(mode: Mode, client: Option<&str>, req: &str, body: &[u8]) -> Transaction {
        Transaction {
            mode,
            service_uri: "icap://127.0.0.1:1344/x".into(),
            received_at: Timestamp::from_nanos(1_700_000_000_000_000_000),
            proxy_addr: "192.0.2.10:40000".parse().unwrap(),
            client_ip: client.map(|c| c.parse().unwrap()),
            http_request_head: req.as_bytes().to_vec(),
            http_response_head: Vec::new(),
            has_body: !body.is_empty(),
            body: body.to_vec(),
            body_len: body.len() as u64,
            complete: true,
        }
    }

    #[test]
    fn icap_section_defaults_are_the_servers_defaults() {
        let listen: SocketAddr = "127.0.0.1:1344".parse().unwrap();
        let ours = server_config(&IcapSection::default(), listen);
        let theirs = ServerConfig::default();
        assert_eq!(ours.listen, theirs.listen);
        assert_eq!(ours.max_connections, theirs.max_connections);
        assert_eq!(ours.limits, theirs.limits);
        assert_eq!(ours.max_body_bytes, theirs.max_body_bytes);
        assert_eq!(ours.preview_bytes, theirs.preview_bytes);
        assert_eq!(ours.options_ttl, theirs.options_ttl);
        assert_eq!(
            [ours.idle_timeout, ours.head_timeout, ours.read_timeout, ours.write_timeout],
            [theirs.idle_timeout, theirs.head_timeout, theirs.read_timeout, theirs.write_timeout]
        );
        assert_eq!((ours.handoff_capacity, ours.handoff_wait), (theirs.handoff_capacity, theirs.handoff_wait));
    }

    #[test]
    fn the_example_config_states_the_icap_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weir.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.icap, IcapSection::default());
    }

    #[test]
    fn in_flight_counts_requests_not_yet_handed_over() {
        let mut s = StatsSnapshot { reqmod: 3, respmod: 4, handed_over: 5, ..StatsSnapshot::default() };
        assert_eq!(in_flight(&s), 2);
        s.aborted = 1;
        s.dropped_full = 1;
        assert_eq!(in_flight(&s), 0);
        s.protocol_errors = 9;
        assert_eq!(in_flight(&s), 0);
    }

    #[test]
    fn request_targets_from_absolute_and_origin_form_agree() {
        let absolute = RequestTarget::parse(b"GET http://Files.Example:8080/a?b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let origin = RequestTarget::parse(b"GET /a?b HTTP/1.1\r\nhost:  files.example:8080 \r\n\r\n").unwrap();
        assert_eq!(absolute, origin);
        assert_eq!((absolute.authority.as_str(), absolute.path.as_str(), absolute.port), ("files.example:8080", "/a?b", 8080));
        let https = RequestTarget::parse(b"GET https://[2001:db8::1]/ HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((https.port, https.host_ip), (443, Some("2001:db8::1".parse().unwrap())));
        let connect = RequestTarget::parse(b"CONNECT 10.0.0.5:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((connect.port, connect.host_ip, connect.path.as_str()), (8443, Some("10.0.0.5".parse().unwrap()), ""));
        let bare = RequestTarget::parse(b"GET http://example.org HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((bare.path.as_str(), bare.port, bare.host_ip), ("/", 80, None));
        assert_eq!(RequestTarget::parse(b""), None);
        assert_eq!(RequestTarget::parse(b"GET\r\n\r\n"), None);
    }

    #[test]
    fn flow_key_uses_client_ip_host_literal_or_proxy() {
        let named = Exchange::alone(tx(Mode::Respmod, Some("10.9.8.7"), "GET http://a.example:81/ HTTP/1.1\r\n\r\n", b""));
        let key = named.flow_key().unwrap();
        assert_eq!((key.src_ip.to_string(), key.src_port), ("10.9.8.7".into(), 0));
        assert_eq!((key.dst_ip.to_string(), key.dst_port), ("192.0.2.10".into(), 81));
        let literal = Exchange::alone(tx(Mode::Reqmod, None, "POST /u HTTP/1.1\r\nHost: 198.51.100.4\r\n\r\n", b"x"));
        let key = literal.flow_key().unwrap();
        assert_eq!((key.src_ip.to_string(), key.dst_ip.to_string(), key.dst_port), ("192.0.2.10".into(), "198.51.100.4".into(), 80));
    }

    #[test]
    fn a_respmod_claims_the_oldest_matching_reqmod() {
        let t0 = Instant::now();
        let mut p = Pairing::new(Duration::from_secs(60));
        let a = tx(Mode::Reqmod, Some("10.0.0.1"), "POST http://h/u HTTP/1.1\r\n\r\n", b"first");
        let b = tx(Mode::Reqmod, Some("10.0.0.1"), "POST http://h/u HTTP/1.1\r\n\r\n", b"second");
        let other = tx(Mode::Reqmod, Some("10.0.0.2"), "POST http://h/u HTTP/1.1\r\n\r\n", b"other");
        for t in [a, b, other] {
            assert!(p.push(t0, pair_key(&t).unwrap(), t).is_empty());
        }
        let resp = tx(Mode::Respmod, Some("10.0.0.1"), "POST /u HTTP/1.1\r\nHost: h\r\n\r\n", b"");
        assert_eq!(p.take(&pair_key(&resp).unwrap()).unwrap().body, b"first");
        assert_eq!(p.take(&pair_key(&resp).unwrap()).unwrap().body, b"second");
        assert!(p.take(&pair_key(&resp).unwrap()).is_none());
        assert_eq!(p.body_bytes, 5);
    }

    #[test]
    fn waiting_reqmods_expire_in_order_and_are_bounded() {
        let t0 = Instant::now();
        let mut p = Pairing::new(Duration::from_secs(10));
        let t = tx(Mode::Reqmod, None, "GET http://h/1 HTTP/1.1\r\n\r\n", b"");
        p.push(t0, pair_key(&t).unwrap(), t);
        let t = tx(Mode::Reqmod, None, "GET http://h/2 HTTP/1.1\r\n\r\n", b"");
        p.push(t0 + Duration::from_secs(5), pair_key(&t).unwrap(), t);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(p.expired(t0 + Duration::from_secs(9)).is_empty());
        let gone = p.expired(t0 + Duration::from_secs(10));
        assert_eq!(gone.len(), 1);
        assert!(gone[0].http_request_head.starts_with(b"GET http://h/1 "));
        assert_eq!(p.drain().len(), 1);

        let mut evicted = 0;
        for i in 0..MAX_WAITING_REQMODS + 3 {
            let t = tx(Mode::Reqmod, None, &format!("GET http://h/{i} HTTP/1.1\r\n\r\n"), b"");
            evicted += p.push(t0, pair_key(&t).unwrap(), t).len();
        }
        assert_eq!((evicted, p.waiting.len()), (3, MAX_WAITING_REQMODS));
        let big = vec![0u8; MAX_WAITING_BODY_BYTES / 2 + 1];
        let t = tx(Mode::Reqmod, None, "POST http://h/a HTTP/1.1\r\n\r\n", &big);
        p.push(t0, pair_key(&t).unwrap(), t);
        let t = tx(Mode::Reqmod, None, "POST http://h/b HTTP/1.1\r\n\r\n", &big);
        let out = p.push(t0, pair_key(&t).unwrap(), t);
        // Everything older than the first big body went, then the first big body itself.
        assert_eq!(out.last().unwrap().http_request_head, b"POST http://h/a HTTP/1.1\r\n\r\n".to_vec());
        assert_eq!((p.waiting.len(), p.body_bytes), (1, big.len()));
    }

    #[test]
    fn flow_ids_are_distinct_nonzero_and_below_2_pow_51() {
        let mut ids = FlowIds { seed: 42, next: 0 };
        let got: std::collections::HashSet<u64> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(got.len(), 10_000);
        assert!(got.iter().all(|&id| id > 0 && id <= FLOW_ID_MASK));
    }
}
