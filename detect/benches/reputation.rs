//! Reputation lookups per second and memory per million entries.
//!
//! `cargo bench -p weir-detect --bench reputation` prints, before criterion's timings, the
//! resident memory each million entries of every kind costs and the load rate; criterion then
//! times lookups against a set of 1M domains, 1M URLs, 100k CIDR blocks and 1M SHA-256 hashes
//! (hits and misses, with and without the verdict cache). `WEIR_BENCH_LINES=10000000` makes the
//! load measurement use that many lines per kind instead of 1M (the 10-million-line case), and `WEIR_BENCH_KINDS=domains,urls` limits which kinds are loaded.

use std::hint::black_box;
use std::io::BufRead;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use weir_core::{FileArtifact, FileState, SeenIn, UrlArtifact};
use weir_detect::reputation::{
    FeedFormat, FeedSpec, ReputationBuilder, ReputationSet, VerdictCache,
};

const TLDS: [&str; 8] = ["com", "net", "org", "ru", "cn", "info", "xyz", "top"];

/// Deterministic pseudo-random numbers (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn domain(i: u64) -> String {
    let mut r = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    format!(
        "{:x}-{}.{}",
        r.next() & 0xffff_ffff,
        i,
        TLDS[(i % 8) as usize]
    )
}

fn url(i: u64) -> String {
    let mut r = Rng(i.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    format!(
        "http://{}/{:x}/{:x}.php?id={}",
        domain(i + (1 << 40)),
        r.next(),
        r.next() & 0xffff,
        i
    )
}

fn sha256(i: u64) -> [u8; 32] {
    let mut r = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut h = [0u8; 32];
    for chunk in h.chunks_mut(8) {
        chunk.copy_from_slice(&r.next().to_le_bytes());
    }
    h
}

fn cidr(i: u64) -> String {
    let a = (i as u32).wrapping_mul(2_654_435_761);
    format!(
        "{}.{}.{}.0/24",
        (a >> 24) & 0xff,
        (a >> 16) & 0xff,
        (a >> 8) & 0xff
    )
}

/// A feed generated line by line, never held whole in memory.
struct Generated<F: FnMut(u64) -> String> {
    next: u64,
    lines: u64,
    make: F,
    buf: Vec<u8>,
    at: usize,
}

impl<F: FnMut(u64) -> String> Generated<F> {
    fn new(lines: u64, make: F) -> Self {
        Generated {
            next: 0,
            lines,
            make,
            buf: Vec::new(),
            at: 0,
        }
    }
}

impl<F: FnMut(u64) -> String> std::io::Read for Generated<F> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<F: FnMut(u64) -> String> BufRead for Generated<F> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            while self.buf.len() < 64 * 1024 && self.next < self.lines {
                self.buf
                    .extend_from_slice((self.make)(self.next).as_bytes());
                self.buf.push(b'\n');
                self.next += 1;
            }
        }
        Ok(&self.buf[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.buf.len());
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn spec(name: &str, format: FeedFormat) -> FeedSpec {
    FeedSpec {
        name: name.into(),
        category: "malware".into(),
        format,
        path: PathBuf::from(name),
    }
}

/// Loads `lines` generated lines of one kind in a fresh builder and prints the memory it took.
/// The set is returned and kept alive, so the allocator cannot hand its memory to the next one
/// and hide the next one's cost.
fn measure(
    kind: &str,
    format: FeedFormat,
    lines: u64,
    make: impl FnMut(u64) -> String,
) -> Option<ReputationSet> {
    let wanted = std::env::var("WEIR_BENCH_KINDS").unwrap_or_default();
    if !wanted.is_empty() && !wanted.split(',').any(|k| k == kind) {
        return None;
    }
    let before = rss_bytes();
    let started = Instant::now();
    let mut builder = ReputationBuilder::new();
    let report = builder.add_feed(&spec(kind, format), Generated::new(lines, make));
    let set = builder.build();
    let elapsed = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "load {kind:>8}: {lines} lines, {} loaded, {} skipped, {} entries in {:.2} s ({:.0} lines/s), RSS +{:.1} MiB = {:.0} bytes/entry, {:.1} MiB per million",
        report.loaded,
        report.skipped,
        set.entry_count(),
        elapsed.as_secs_f64(),
        lines as f64 / elapsed.as_secs_f64(),
        grown as f64 / 1048576.0,
        grown as f64 / set.entry_count().max(1) as f64,
        grown as f64 / 1048576.0 / (set.entry_count().max(1) as f64 / 1e6),
    );
    Some(set)
}

fn memory_report() {
    let lines: u64 = std::env::var("WEIR_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let kept = [
        measure("domains", FeedFormat::Domains, lines, domain),
        measure("urls", FeedFormat::Urls, lines, url),
        measure("cidrs", FeedFormat::Ips, lines, cidr),
        measure("sha256", FeedFormat::Hashes, lines, |i| {
            weir_core::hex(&sha256(i))
        }),
    ];
    drop(kept);
}

fn big_set() -> ReputationSet {
    let mut b = ReputationBuilder::new();
    b.add_feed(
        &spec("domains", FeedFormat::Domains),
        Generated::new(1_000_000, domain),
    );
    b.add_feed(
        &spec("urls", FeedFormat::Urls),
        Generated::new(1_000_000, url),
    );
    b.add_feed(
        &spec("cidrs", FeedFormat::Ips),
        Generated::new(100_000, cidr),
    );
    b.add_feed(
        &spec("sha256", FeedFormat::Hashes),
        Generated::new(1_000_000, |i| weir_core::hex(&sha256(i))),
    );
    b.build()
}

fn lookups(c: &mut Criterion) {
    let set = big_set();
    // 1024 distinct values of each kind, cycled, so the cache sees repeats as real traffic does.
    let listed_urls: Vec<UrlArtifact> = (0..1024)
        .map(|i| UrlArtifact {
            url: url(i * 977),
            seen_in: SeenIn::HttpUrl,
        })
        .collect();
    let unlisted_urls: Vec<UrlArtifact> = (0..1024)
        .map(|i| UrlArtifact {
            url: format!("https://www.site{i}.example.com/static/js/app.{i}.js"),
            seen_in: SeenIn::HttpUrl,
        })
        .collect();
    let listed_hosts: Vec<UrlArtifact> = (0..1024)
        .map(|i| UrlArtifact {
            url: format!("cdn.{}", domain(i * 977)),
            seen_in: SeenIn::DnsQuery,
        })
        .collect();
    let unlisted_hosts: Vec<UrlArtifact> = (0..1024)
        .map(|i| UrlArtifact {
            url: format!("img{i}.static.example.net"),
            seen_in: SeenIn::TlsSni,
        })
        .collect();
    let files: Vec<FileArtifact> = (0..1024)
        .map(|i| FileArtifact {
            sha256: sha256(i * 977 + (i % 2) * 5_000_000),
            sha1: [0; 20],
            md5: [0; 16],
            size: 1,
            name: String::new(),
            magic: None,
            state: FileState::Closed,
            gaps: false,
        })
        .collect();
    assert_eq!(set.lookup(&listed_urls[1]).len(), 1, "a listed URL hits");
    assert!(set.lookup(&unlisted_urls[1]).is_empty());
    assert_eq!(
        set.lookup(&listed_hosts[1]).len(),
        1,
        "a subdomain of a listed domain hits"
    );

    let mut group = c.benchmark_group("reputation");
    group.throughput(Throughput::Elements(1));
    for (name, artifacts) in [
        ("url_listed", &listed_urls),
        ("url_unlisted", &unlisted_urls),
        ("host_listed_subdomain", &listed_hosts),
        ("host_unlisted", &unlisted_hosts),
    ] {
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % artifacts.len();
                black_box(set.lookup(black_box(&artifacts[i])))
            })
        });
        let mut cache = VerdictCache::new(NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN));
        let mut i = 0usize;
        group.bench_function(format!("{name}_cached"), |b| {
            b.iter(|| {
                i = (i + 1) % artifacts.len();
                black_box(set.lookup_cached(&mut cache, black_box(&artifacts[i])))
            })
        });
    }
    let mut i = 0usize;
    group.bench_function("ip_in_100k_cidrs", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                (i as u32).wrapping_mul(2_654_435_761),
            ));
            black_box(set.lookup_ip(black_box(ip), weir_detect::reputation::Seen::DestIp))
        })
    });
    let mut i = 0usize;
    group.bench_function("file_sha256_half_listed", |b| {
        b.iter(|| {
            i = (i + 1) % files.len();
            black_box(set.lookup_file(black_box(&files[i])))
        })
    });
    group.finish();
}

fn main() {
    memory_report();
    let mut c = Criterion::default().configure_from_args();
    lookups(&mut c);
    c.final_summary();
}
