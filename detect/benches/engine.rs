//! Matching engine figures on the ET Open 2019 rule set: load + compile time and memory (printed
//! once), then criterion throughput of packet, stream and transaction inspection.
//!
//! `cargo bench -p weir-detect --bench engine` (set `WEIR_ET_RULES` to another rule directory).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::{Direction, FlowKey, IpProto, Timestamp, Vlans};
use weir_detect::engine::{CompiledRules, FlowDetectState, Matcher, PacketView, TcpView, TxView};
use weir_detect::rules::{Classification, Vars, load_rule_files};

const DEFAULT_RULES: &str = "/work/shared/rules/et-open-2019";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn load() -> CompiledRules {
    let dir =
        PathBuf::from(std::env::var("WEIR_ET_RULES").unwrap_or_else(|_| DEFAULT_RULES.into()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rules"));
    files.sort();
    let classification = Classification::from_file(&dir.join("classification.config"))
        .map(|(c, _)| c)
        .unwrap_or_default();
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let report = load_rule_files(&files, &Vars::default(), &classification);
    let t_load = t0.elapsed();
    let loaded = report.rules.len();
    let rss1 = rss_kib();
    let t1 = Instant::now();
    let rules = CompiledRules::with_classification(report.rules, &classification);
    let t_compile = t1.elapsed();
    let rss2 = rss_kib();
    let r = rules.report();
    eprintln!(
        "ET rules from {}: {} files, {loaded} loaded, {} rejected; parse {:.2}s (+{} MiB RSS), compile {:.2}s (+{} MiB RSS)",
        dir.display(),
        files.len(),
        report.rejected.len(),
        t_load.as_secs_f64(),
        rss1.saturating_sub(rss0) / 1024,
        t_compile.as_secs_f64(),
        rss2.saturating_sub(rss1) / 1024,
    );
    eprintln!(
        "compiled: {} prefiltered ({} patterns, {} KiB of Hyperscan databases), {} always checked, {} ip-only, {} unsupported, prefilter failures {:?}",
        r.prefiltered,
        r.prefilter_patterns,
        r.prefilter_bytes / 1024,
        r.always_checked,
        r.ip_only,
        r.unsupported.len(),
        r.prefilter_failures
    );
    let mut why: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, _, w) in &r.unsupported {
        *why.entry(w.as_str()).or_default() += 1;
    }
    let mut why: Vec<_> = why.into_iter().collect();
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    eprintln!(
        "unsupported by keyword (top 12): {:?}",
        &why[..why.len().min(12)]
    );
    rules
}

fn key() -> FlowKey {
    FlowKey {
        src_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
        dst_ip: IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
        src_port: 51234,
        dst_port: 80,
        proto: IpProto::TCP,
        vlans: Vlans::default(),
        tunnel_depth: 0,
    }
}

fn pkt(payload: &[u8]) -> PacketView<'_> {
    let mut p = PacketView::new(Timestamp::from_secs_nanos(1_700_000_000, 0), key(), payload);
    p.direction = Some(Direction::ToServer);
    p.established = true;
    p.app_proto = Some("http");
    p.tcp = Some(TcpView {
        flags: 0x18,
        seq: 1,
        ack: 1,
        window: 502,
    });
    p
}

const HTTP_REQUEST: &[u8] = b"GET /index.php?id=42&page=news HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n";

/// Deterministic pseudo-random bytes (xorshift), like compressed or encrypted payload.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let words = b"the quick brown fox jumps over a lazy dog while servers send html pages with scripts and images ";
    words.iter().copied().cycle().take(len).collect()
}

fn bench(c: &mut Criterion) {
    let rules = load();
    let mut matcher = Matcher::new(&rules).expect("scratch");
    eprintln!(
        "per worker: {} KiB Hyperscan scratch; per flow: {} bytes of FlowDetectState before any bit or tail",
        matcher.scratch_bytes() / 1024,
        std::mem::size_of::<FlowDetectState>()
    );
    let mut alerts = Vec::new();
    let noise = noise(1460);
    let text = text(1460);
    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    // First packet of a flow direction: IP-only rules run too.
    group.bench_function("packet_new_flow_no_payload", |b| {
        b.iter(|| {
            alerts.clear();
            let mut flow = FlowDetectState::new();
            matcher.inspect_packet(&rules, Some(&mut flow), &pkt(&[]), &mut alerts);
            black_box(alerts.len())
        })
    });
    let mut known = FlowDetectState::new();
    matcher.inspect_packet(&rules, Some(&mut known), &pkt(&[]), &mut alerts);
    for (name, payload) in [
        ("packet_http_request", HTTP_REQUEST),
        ("packet_noise_1460", &noise[..]),
        ("packet_text_1460", &text[..]),
    ] {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                alerts.clear();
                let mut p = pkt(payload);
                p.payload_in_stream = false;
                matcher.inspect_packet(&rules, Some(&mut known), &p, &mut alerts);
                black_box(alerts.len())
            })
        });
    }
    let mut flow = FlowDetectState::new();
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("stream_text_1460", |b| {
        b.iter(|| {
            alerts.clear();
            let mut p = pkt(&[]);
            p.payload_in_stream = true;
            matcher.inspect_stream(&rules, &mut flow, &p, &text, &mut alerts);
            black_box(alerts.len())
        })
    });
    let buffers: &[(&str, &[u8])] = &[
        ("http.method", b"GET"),
        ("http.uri", b"/index.php?id=42&page=news"),
        ("http.uri.raw", b"/index.php?id=42&page=news"),
        ("http.host", b"www.example.com"),
        ("http.user_agent", b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("http.cookie", b"session=abcdef0123456789"),
        ("http.header", b"Host: www.example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: text/html,application/xhtml+xml\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n"),
        ("http.request_line", b"GET /index.php?id=42&page=news HTTP/1.1"),
    ];
    let tx_bytes: usize = buffers.iter().map(|(_, b)| b.len()).sum();
    group.throughput(Throughput::Bytes(tx_bytes as u64));
    let mut tx_id = 0u64;
    group.bench_function("tx_http_request", |b| {
        b.iter(|| {
            alerts.clear();
            tx_id += 1;
            let tx = TxView {
                tx_id,
                direction: Direction::ToServer,
                buffers,
            };
            let mut flow = FlowDetectState::new();
            matcher.inspect_tx(&rules, &mut flow, &pkt(&[]), &tx, &mut alerts);
            black_box(alerts.len())
        })
    });
    group.finish();
    eprintln!("matcher stats: {:?}", matcher.stats());
}

criterion_group!(benches, bench);
criterion_main!(benches);
