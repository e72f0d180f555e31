//! The real feeds in `../shared/feeds` (see its SOURCE.md) load with exactly these counts, and
//! entries taken from them match traffic spelled the way clients send it.

use super::*;
use std::net::IpAddr;
use std::path::Path;
use weir_core::{SeenIn, UrlArtifact};

fn feeds_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/feeds");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not found; real-feed test skipped", dir.display());
        None
    }
}

/// (file under feeds/, format, loaded, skipped, duplicates), measured on the snapshots in
/// `../shared/feeds`. `urlhaus-filter-online.txt` is adblock syntax (`||host/path^$all`), which
/// is no supported format: its 2853 bare-host lines load and its 3510 URL rules are refused line
/// by line, as any garbage is. TweetFeed lists 165 addresses 250 times.
const EXPECTED: &[(&str, FeedFormat, u64, u64, u64)] = &[
    (
        "urlhaus-2025-07-19/urlhaus-filter-splunk-online.csv",
        FeedFormat::UrlhausCsv,
        6363,
        0,
        0,
    ),
    ("derived/urlhaus-urls.txt", FeedFormat::Urls, 3509, 0, 0),
    (
        "urlhaus-2025-07-19/urlhaus-filter-domains.txt",
        FeedFormat::Domains,
        25768,
        0,
        0,
    ),
    (
        "urlhaus-2025-07-19/urlhaus-filter-domains-online.txt",
        FeedFormat::Domains,
        2853,
        0,
        0,
    ),
    (
        "urlhaus-2025-07-19/urlhaus-filter-hosts-online.txt",
        FeedFormat::Domains,
        619,
        0,
        0,
    ),
    (
        "urlhaus-2025-07-19/urlhaus-filter-wildcard-online.txt",
        FeedFormat::Domains,
        2853,
        0,
        0,
    ),
    (
        "urlhaus-2025-07-19/urlhaus-filter-online.txt",
        FeedFormat::Urls,
        2853,
        3510,
        0,
    ),
    (
        "urlhaus-2025-07-19/urlhaus-filter-dnscrypt-blocked-ips-online.txt",
        FeedFormat::Ips,
        2234,
        0,
        0,
    ),
    (
        "zeek-intel-2026-08-22/openphish.intel",
        FeedFormat::ZeekIntel,
        300,
        0,
        0,
    ),
    (
        "zeek-intel-2026-08-22/abuse-ch-malware.intel",
        FeedFormat::ZeekIntel,
        828,
        0,
        0,
    ),
    (
        "zeek-intel-2026-08-22/shadowwhisperer-malware.intel",
        FeedFormat::ZeekIntel,
        43698,
        0,
        0,
    ),
    (
        "zeek-intel-2026-08-22/tweetfeed.intel",
        FeedFormat::ZeekIntel,
        250,
        0,
        85,
    ),
];

#[test]
fn real_feeds_load_with_exact_counts() {
    let Some(dir) = feeds_dir() else { return };
    let specs: Vec<FeedSpec> = [
        (
            "urlhaus-2025-07-19/urlhaus-filter-splunk-online.csv",
            FeedFormat::UrlhausCsv,
        ),
        ("derived/urlhaus-urls.txt", FeedFormat::Urls),
        (
            "urlhaus-2025-07-19/urlhaus-filter-domains.txt",
            FeedFormat::Domains,
        ),
        (
            "urlhaus-2025-07-19/urlhaus-filter-domains-online.txt",
            FeedFormat::Domains,
        ),
        (
            "urlhaus-2025-07-19/urlhaus-filter-hosts-online.txt",
            FeedFormat::Domains,
        ),
        (
            "urlhaus-2025-07-19/urlhaus-filter-wildcard-online.txt",
            FeedFormat::Domains,
        ),
        (
            "urlhaus-2025-07-19/urlhaus-filter-online.txt",
            FeedFormat::Urls,
        ),
        (
            "urlhaus-2025-07-19/urlhaus-filter-dnscrypt-blocked-ips-online.txt",
            FeedFormat::Ips,
        ),
        (
            "zeek-intel-2026-08-22/openphish.intel",
            FeedFormat::ZeekIntel,
        ),
        (
            "zeek-intel-2026-08-22/abuse-ch-malware.intel",
            FeedFormat::ZeekIntel,
        ),
        (
            "zeek-intel-2026-08-22/shadowwhisperer-malware.intel",
            FeedFormat::ZeekIntel,
        ),
        (
            "zeek-intel-2026-08-22/tweetfeed.intel",
            FeedFormat::ZeekIntel,
        ),
    ]
    .iter()
    .map(|(file, format)| FeedSpec {
        name: (*file).into(),
        category: "malware".into(),
        format: *format,
        path: dir.join(file),
    })
    .collect();
    let (set, reports) = ReputationSet::load(&specs);
    for r in &reports {
        eprintln!("{}", r.summary());
        for issue in r.issues.iter().take(5) {
            eprintln!("  {issue}");
        }
    }
    eprintln!("entries: {}", set.entry_count());
    let got: Vec<(&str, FeedFormat, u64, u64, u64)> = reports
        .iter()
        .map(|r| (r.name.as_str(), r.format, r.loaded, r.skipped, r.duplicates))
        .collect();
    assert_eq!(got, EXPECTED);
    assert_eq!(set.entry_count(), 77108);
    let adblock = &reports[6];
    assert_eq!(adblock.issues.len(), MAX_REPORTED_ISSUES);
    assert_eq!(adblock.issues[0].line, 2860);
    assert!(reports.iter().all(|r| r.error.is_none()));
}

fn feed(dir: &Path, name: &str, category: &str, file: &str, format: FeedFormat) -> FeedSpec {
    FeedSpec {
        name: name.into(),
        category: category.into(),
        format,
        path: dir.join(file),
    }
}

fn seen(set: &ReputationSet, value: &str, seen_in: SeenIn) -> Vec<(String, String, &'static str)> {
    set.lookup(&UrlArtifact {
        url: value.into(),
        seen_in,
    })
    .into_iter()
    .map(|h| (h.feed.to_string(), h.indicator, h.match_kind.eve()))
    .collect()
}

fn hit(feed: &str, indicator: &str, kind: &'static str) -> (String, String, &'static str) {
    (feed.into(), indicator.into(), kind)
}

#[test]
fn real_feed_entries_match_traffic_spellings() {
    let Some(dir) = feeds_dir() else { return };
    let (set, _) = ReputationSet::load(&[
        feed(
            &dir,
            "urlhaus",
            "malware",
            "urlhaus-2025-07-19/urlhaus-filter-splunk-online.csv",
            FeedFormat::UrlhausCsv,
        ),
        feed(
            &dir,
            "openphish",
            "phishing",
            "zeek-intel-2026-08-22/openphish.intel",
            FeedFormat::ZeekIntel,
        ),
        feed(
            &dir,
            "abusech",
            "malware",
            "zeek-intel-2026-08-22/abuse-ch-malware.intel",
            FeedFormat::ZeekIntel,
        ),
        feed(
            &dir,
            "shadow",
            "malware",
            "zeek-intel-2026-08-22/shadowwhisperer-malware.intel",
            FeedFormat::ZeekIntel,
        ),
        feed(
            &dir,
            "tweetfeed",
            "malware",
            "zeek-intel-2026-08-22/tweetfeed.intel",
            FeedFormat::ZeekIntel,
        ),
    ]);
    // A URLhaus URL row, requested with another case, port and percent-encoding.
    assert_eq!(
        seen(
            &set,
            "http://ABCOcomputers.com:80/%3Fu=script",
            SeenIn::HttpUrl
        ),
        [],
        "an encoded ? is a path character, not the query: no match"
    );
    assert_eq!(
        seen(
            &set,
            "http://ABCOcomputers.com:80/?u=script",
            SeenIn::HttpUrl
        ),
        [hit("urlhaus", "abcocomputers.com/?u=script", "exact")]
    );
    // The urlhaus-filter row was lower-cased; traffic keeps its case.
    assert_eq!(
        seen(
            &set,
            "http://cfs5.tistory.com/upload_control/download.blog?fhandle=YmxvZzcxMzYyQGZzNS50aXN0b3J5LmNvbTovYXR0YWNoLzAvMTQwMDAwMDAwMDAwLmV4ZQ%3D%3D&filename=crack-pro20.exe",
            SeenIn::HttpUrl
        ),
        [hit(
            "urlhaus",
            "cfs5.tistory.com/upload_control/download.blog?fhandle=ymxvzzcxmzyyqgzzns50axn0b3j5lmnvbtovyxr0ywnolzavmtqwmdawmdawmdawlmv4zq%3d%3d&filename=crack-pro20.exe",
            "exact"
        )]
    );
    // A URLhaus host row: the host and names below it, in any artifact.
    assert_eq!(
        seen(&set, "0022a601.pphost.net", SeenIn::TlsSni),
        [hit("urlhaus", "0022a601.pphost.net", "exact")]
    );
    assert_eq!(
        seen(&set, "http://x.0022a601.pphost.net/a", SeenIn::EmailUrl),
        [hit("urlhaus", "0022a601.pphost.net", "subdomain")]
    );
    assert_eq!(
        seen(&set, "1.1.109.99:8080", SeenIn::HttpHost),
        [hit("urlhaus", "1.1.109.99", "exact")]
    );
    // OpenPhish lists https://api.msuto.com/ with its scheme; seen over http too.
    assert_eq!(
        seen(&set, "http://api.msuto.com", SeenIn::EmailUrl),
        [hit("openphish", "api.msuto.com/", "exact")]
    );
    assert_eq!(
        seen(&set, "https://api.msuto.com/other", SeenIn::HttpUrl),
        []
    );
    // ShadowWhisperer domains, matched on label boundaries.
    assert_eq!(
        seen(&set, "cdn.0019x.com.", SeenIn::DnsQuery),
        [hit("shadow", "0019x.com", "subdomain")]
    );
    assert_eq!(seen(&set, "x0019x.com", SeenIn::DnsQuery), []);
    // TweetFeed addresses as flow addresses.
    let ip: IpAddr = "154.36.188.193"
        .parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    assert_eq!(set.lookup_ip(ip, Seen::DestIp).len(), 1);
    // Unlisted names find nothing.
    assert_eq!(seen(&set, "example.com", SeenIn::DnsQuery), []);
    assert_eq!(
        seen(&set, "https://www.example.com/index.html", SeenIn::HttpUrl),
        []
    );
}
