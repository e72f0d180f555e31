//! Run counters for EVE `stats` records and the Prometheus text endpoint.
//!
//! Each worker publishes a copy of its counters into its own slot of a [`StatsBoard`] every few
//! thousand packets and when it goes idle; readers (the periodic `stats` record, a Prometheus
//! scrape) add the slots up. A reader may thus see counts a few thousand packets old; the run's
//! closing record is written after every worker finished and is exact.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_core::Timestamp;
use weir_core::eve::{self, Record};

use crate::worker::WorkerStats;

/// Bytes of a scrape request read at most (the request line and headers; anything longer is
/// answered and the connection closed).
const MAX_SCRAPE_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request or read the answer.
const SCRAPE_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What one worker last published.
#[derive(Clone, Debug, Default)]
pub struct WorkerSnapshot {
    pub stats: WorkerStats,
    pub eve: BTreeMap<String, u64>,
    pub flows_active: u64,
    /// The worker's defragmenter (Suricata's `defrag.*`).
    pub defrag: weir_decode::DefragStats,
}

/// Counters of the capture itself and of the outbound queues, set by the thread that owns them.
#[derive(Clone, Debug, Default)]
pub struct EdgeCounters {
    /// Kernel figures of a live capture (libpcap's `ps_recv`, `ps_drop`, `ps_ifdrop`).
    pub kernel_received: u64,
    pub kernel_dropped: u64,
    pub interface_dropped: u64,
    /// Items waiting in the sandbox spool, and submissions made.
    pub sandbox_pending: u64,
    pub sandbox_submitted: u64,
    /// Items waiting in the Central Node spool.
    pub central_pending: u64,
}

/// The run's counters, one slot per worker.
pub struct StatsBoard {
    workers: Vec<Mutex<WorkerSnapshot>>,
    edges: Mutex<EdgeCounters>,
    started: Instant,
}

/// A board's slots added up.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub stats: WorkerStats,
    pub eve: BTreeMap<String, u64>,
    pub flows_active: u64,
    pub defrag: weir_decode::DefragStats,
    pub per_worker_packets: Vec<u64>,
    pub edges: EdgeCounters,
    pub uptime_secs: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker cannot leave a counter half-written in a way that matters to a reader.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StatsBoard {
    pub fn new(workers: usize) -> Arc<StatsBoard> {
        Arc::new(StatsBoard {
            workers: (0..workers.max(1)).map(|_| Mutex::new(WorkerSnapshot::default())).collect(),
            edges: Mutex::new(EdgeCounters::default()),
            started: Instant::now(),
        })
    }

    pub fn publish(&self, worker: usize, snapshot: WorkerSnapshot) {
        if let Some(slot) = self.workers.get(worker) {
            *lock(slot) = snapshot;
        }
    }

    pub fn set_edges(&self, edges: EdgeCounters) {
        *lock(&self.edges) = edges;
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals { edges: lock(&self.edges).clone(), uptime_secs: self.started.elapsed().as_secs(), ..Totals::default() };
        for slot in &self.workers {
            let s = lock(slot);
            t.stats.absorb(&s.stats);
            for (k, n) in &s.eve {
                *t.eve.entry(k.clone()).or_default() += n;
            }
            t.flows_active += s.flows_active;
            let (d, w) = (&mut t.defrag, &s.defrag);
            d.ipv4_fragments += w.ipv4_fragments;
            d.ipv4_reassembled += w.ipv4_reassembled;
            d.ipv6_fragments += w.ipv6_fragments;
            d.ipv6_reassembled += w.ipv6_reassembled;
            d.timeouts += w.timeouts;
            d.memcap_evictions += w.memcap_evictions;
            d.max_fragments_reached += w.max_fragments_reached;
            d.trackers_in_use += w.trackers_in_use;
            d.memory_in_use += w.memory_in_use;
            t.per_worker_packets.push(s.stats.packets);
        }
        t
    }
}

impl Totals {
    /// An EVE `stats` record, with Suricata's section names where the counter is the same thing
    /// (`capture`, `decoder`, `flow`, `detect`) and Weir's own beside them.
    pub fn eve_record(&self, ts: Timestamp) -> Record {
        let s = &self.stats;
        let e = &self.edges;
        let mut r = eve::record(ts, "stats", None);
        let anomalies: serde_json::Map<String, Value> = s.anomalies.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        let records: serde_json::Map<String, Value> = self.eve.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        let exception_policy: serde_json::Map<String, Value> =
            s.exception_policy.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        let app_layer_errors: serde_json::Map<String, Value> =
            s.app_layer_errors.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
        r.insert(
            "stats".into(),
            json!({
                "uptime": self.uptime_secs,
                "capture": {
                    "kernel_packets": e.kernel_received,
                    "kernel_drops": e.kernel_dropped,
                    "kernel_ifdrops": e.interface_dropped,
                },
                "decoder": {
                    "pkts": s.packets,
                    "bytes": s.bytes,
                    "no_flow": s.packets_without_flow,
                },
                "flow": {
                    "active": self.flows_active,
                    "logged": s.flows_logged,
                    "memcap_flushes": s.stream_memcap_flushes,
                },
                "detect": { "alert": s.alerts },
                "defrag": {
                    "ipv4": { "fragments": self.defrag.ipv4_fragments, "reassembled": self.defrag.ipv4_reassembled },
                    "ipv6": { "fragments": self.defrag.ipv6_fragments, "reassembled": self.defrag.ipv6_reassembled },
                    "timeouts": self.defrag.timeouts,
                    "memcap_evictions": self.defrag.memcap_evictions,
                    "max_frag_hits": self.defrag.max_fragments_reached,
                    "tracker_active": self.defrag.trackers_in_use,
                    "memuse": self.defrag.memory_in_use,
                },
                "anomalies": anomalies,
                "artifacts": s.artifacts,
                "excluded": { "flows": s.excluded_flows, "artifacts": s.excluded_artifacts },
                "exception_policy": exception_policy,
                // Suricata's `app_layer.error.<proto>` (parser errors only).
                "app_layer": { "error": app_layer_errors },
                "eve_records": records,
                "sandbox": { "submitted": e.sandbox_submitted, "pending": e.sandbox_pending },
                "central": { "pending": e.central_pending },
                "workers": self.per_worker_packets.iter().enumerate()
                    .map(|(i, p)| json!({ "id": i, "pkts": p })).collect::<Vec<_>>(),
            }),
        );
        r
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus_text(&self) -> String {
        let s = &self.stats;
        let e = &self.edges;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP weir_{name} {help}\n# TYPE weir_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "weir_{name}{labels} {v}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        metric("packets_total", "counter", "Packets captured and processed.", &one(s.packets));
        metric("bytes_total", "counter", "Bytes of captured frames.", &one(s.bytes));
        metric("kernel_received_total", "counter", "Packets the kernel accepted for capture.", &one(e.kernel_received));
        metric("kernel_dropped_total", "counter", "Packets the kernel dropped: the sensor was too slow.", &one(e.kernel_dropped));
        metric("interface_dropped_total", "counter", "Packets the interface dropped.", &one(e.interface_dropped));
        metric("flows_active", "gauge", "Flows held now.", &one(self.flows_active));
        metric("flows_logged_total", "counter", "Flows ended and logged.", &one(s.flows_logged));
        metric("stream_memcap_flushes_total", "counter", "Sessions flushed early at the stream memcap.", &one(s.stream_memcap_flushes));
        metric("alerts_total", "counter", "Alerts written.", &one(s.alerts));
        let d = &self.defrag;
        metric("defrag_reassembled_total", "counter", "IP datagrams rebuilt from fragments.", &one(d.ipv4_reassembled + d.ipv6_reassembled));
        metric("defrag_timeouts_total", "counter", "Incomplete datagrams dropped at the defrag timeout.", &one(d.timeouts));
        metric("defrag_memcap_evictions_total", "counter", "Incomplete datagrams dropped at the defrag memcap.", &one(d.memcap_evictions));
        metric("defrag_memory_bytes", "gauge", "Bytes held by incomplete datagrams.", &one(d.memory_in_use));
        metric("artifacts_total", "counter", "Files, URLs and messages extracted.", &one(s.artifacts));
        metric("excluded_flows_total", "counter", "Flows excluded from scanning.", &one(s.excluded_flows));
        metric("excluded_artifacts_total", "counter", "Artifacts excluded from scanning.", &one(s.excluded_artifacts));
        metric("sandbox_submitted_total", "counter", "Submissions the sandbox accepted.", &one(e.sandbox_submitted));
        metric("sandbox_pending", "gauge", "Items in the sandbox spool.", &one(e.sandbox_pending));
        metric("central_pending", "gauge", "Items in the Central Node spool.", &one(e.central_pending));
        let labelled = |key: &str, map: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
            map.iter().map(|(k, v)| (format!("{{{key}=\"{}\"}}", label_value(k)), *v)).collect()
        };
        metric("anomalies_total", "counter", "Anomalies by event.", &labelled("event", &s.anomalies));
        metric("eve_records_total", "counter", "EVE records written by event type.", &labelled("event_type", &self.eve));
        // Keys are "<cap>.<policy>"; a cap name holds no dot.
        let exceptions: Vec<(String, u64)> = s
            .exception_policy
            .iter()
            .map(|(k, v)| {
                let (cap, policy) = k.rsplit_once('.').unwrap_or((k.as_str(), ""));
                (format!("{{cap=\"{}\",policy=\"{}\"}}", label_value(cap), label_value(policy)), *v)
            })
            .collect();
        metric("exception_policy_total", "counter", "Caps met on flows, by the exception policy applied.", &exceptions);
        metric("app_layer_errors_total", "counter", "App-layer parser errors by protocol.", &labelled("proto", &s.app_layer_errors));
        let workers: Vec<(String, u64)> =
            self.per_worker_packets.iter().enumerate().map(|(i, p)| (format!("{{worker=\"{i}\"}}"), *p)).collect();
        metric("worker_packets_total", "counter", "Packets each worker processed.", &workers);
        out
    }
}

/// Escapes a label value as the exposition format asks (backslash, quote, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves `GET /metrics` on `addr` from a thread of its own until the process ends; returns the
/// bound address (port 0 picks one).
pub fn serve_prometheus(addr: SocketAddr, board: Arc<StatsBoard>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("prometheus endpoint {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("weir-metrics".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            // One scrape at a time: scrapes are rare and small, and a slow one times out.
            if let Err(e) = answer_scrape(stream, &board) {
                eprintln!("weir: warning: prometheus scrape: {e}");
            }
        }
    })?;
    Ok(bound)
}

fn answer_scrape(mut stream: TcpStream, board: &StatsBoard) -> io::Result<()> {
    stream.set_read_timeout(Some(SCRAPE_IO_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPE_IO_TIMEOUT))?;
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_SCRAPE_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or(b"");
    let (status, body) = if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET / ") {
        ("200 OK", board.totals().prometheus_text())
    } else {
        ("404 Not Found", "only GET /metrics is served\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(packets: u64, alerts: u64, anomaly: &str) -> WorkerSnapshot {
        let mut stats = WorkerStats { packets, bytes: packets * 100, alerts, ..WorkerStats::default() };
        stats.anomalies.insert(anomaly.to_string(), 2);
        stats.exception_policy.insert("stream_memcap.bypass".to_string(), packets / 5);
        stats.app_layer_errors.insert("tls".to_string(), packets / 10);
        let mut eve = BTreeMap::new();
        eve.insert("flow".to_string(), packets / 10);
        let defrag = weir_decode::DefragStats { ipv4_reassembled: 1, memcap_evictions: 2, ..Default::default() };
        WorkerSnapshot { stats, eve, flows_active: 3, defrag }
    }

    #[test]
    fn totals_add_the_workers_up() {
        let board = StatsBoard::new(2);
        board.publish(0, snapshot(100, 1, "stream.pkt_invalid_ack"));
        board.publish(1, snapshot(50, 2, "stream.pkt_invalid_ack"));
        board.publish(7, snapshot(1_000, 9, "ignored"));
        let t = board.totals();
        assert_eq!(t.stats.packets, 150);
        assert_eq!(t.stats.bytes, 15_000);
        assert_eq!(t.stats.alerts, 3);
        assert_eq!(t.stats.anomalies.get("stream.pkt_invalid_ack"), Some(&4));
        assert_eq!(t.eve.get("flow"), Some(&15));
        assert_eq!(t.flows_active, 6);
        assert_eq!(t.per_worker_packets, [100, 50]);
        let r = t.eve_record(Timestamp::from_secs_nanos(1, 0));
        assert_eq!(r["event_type"], "stats");
        assert_eq!(r["stats"]["decoder"]["pkts"], 150);
        assert_eq!(r["stats"]["detect"]["alert"], 3);
        assert_eq!(r["stats"]["workers"][1]["pkts"], 50);
        assert_eq!(r["stats"]["defrag"]["ipv4"]["reassembled"], 2);
        assert_eq!(r["stats"]["defrag"]["memcap_evictions"], 4);
        assert_eq!(r["stats"]["exception_policy"]["stream_memcap.bypass"], 30);
        assert_eq!(r["stats"]["app_layer"]["error"]["tls"], 15);
    }

    #[test]
    fn prometheus_text_names_each_sample_once_with_escaped_labels() {
        let board = StatsBoard::new(1);
        board.publish(0, snapshot(10, 0, "odd\"name"));
        board.set_edges(EdgeCounters { kernel_dropped: 7, ..EdgeCounters::default() });
        let text = board.totals().prometheus_text();
        assert!(text.contains("\nweir_packets_total 10\n"), "{text}");
        assert!(text.contains("\nweir_kernel_dropped_total 7\n"), "{text}");
        assert!(text.contains("weir_anomalies_total{event=\"odd\\\"name\"} 2\n"), "{text}");
        assert!(text.contains("weir_worker_packets_total{worker=\"0\"} 10\n"), "{text}");
        assert!(text.contains("weir_exception_policy_total{cap=\"stream_memcap\",policy=\"bypass\"} 2\n"), "{text}");
        assert!(text.contains("weir_app_layer_errors_total{proto=\"tls\"} 1\n"), "{text}");
        assert_eq!(text.matches("# TYPE weir_packets_total counter").count(), 1);
    }

    #[test]
    fn the_endpoint_serves_metrics_and_refuses_other_paths() {
        let board = StatsBoard::new(1);
        board.publish(0, snapshot(42, 0, "x"));
        let addr = serve_prometheus("127.0.0.1:0".parse().unwrap(), board).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("\nweir_packets_total 42\n"), "{ok}");
        assert!(get("/secret").starts_with("HTTP/1.1 404"));
    }
}
