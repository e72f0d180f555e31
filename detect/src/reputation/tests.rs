//! Whole-set behaviour: loading several feeds, every match kind, reports, cache, EVE output.

use super::*;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use weir_core::{ArtifactContext, FileState, FlowKey, IpProto, Timestamp, Vlans};

fn spec(name: &str, category: &str, format: FeedFormat) -> FeedSpec {
    FeedSpec {
        name: name.into(),
        category: category.into(),
        format,
        path: PathBuf::from(format!("{name}.txt")),
    }
}

fn load(feeds: &[(&str, &str, FeedFormat, &str)]) -> (ReputationSet, Vec<FeedReport>) {
    let mut b = ReputationBuilder::new();
    let reports = feeds
        .iter()
        .map(|(n, c, f, text)| b.add_feed(&spec(n, c, *f), text.as_bytes()))
        .collect();
    (b.build(), reports)
}

fn url(u: &str, seen_in: SeenIn) -> UrlArtifact {
    UrlArtifact {
        url: u.into(),
        seen_in,
    }
}

/// (feed, indicator, type, match) of each hit, for compact exact assertions.
fn summary(hits: &[Hit]) -> Vec<(String, String, &'static str, &'static str)> {
    hits.iter()
        .map(|h| {
            (
                h.feed.to_string(),
                h.indicator.clone(),
                h.indicator_type.eve(),
                h.match_kind.eve(),
            )
        })
        .collect()
}

fn row(
    feed: &str,
    ind: &str,
    t: &'static str,
    m: &'static str,
) -> (String, String, &'static str, &'static str) {
    (feed.into(), ind.into(), t, m)
}

fn sample() -> ReputationSet {
    load(&[
        (
            "urls",
            "malware",
            FeedFormat::Urls,
            "http://evil.example/dl/payload.exe\nkit.example/panel/*\nhttp://[2001:db8::1]/x\n",
        ),
        (
            "doms",
            "phishing",
            FeedFormat::Domains,
            "evil.example\nbücher.example\n",
        ),
        (
            "nets",
            "c2",
            FeedFormat::Ips,
            "192.0.2.0/24\n192.0.2.7\n2001:db8::/32\n",
        ),
    ])
    .0
}

#[test]
fn exact_url_matches_in_every_spelling() {
    let set = sample();
    for spelling in [
        "http://evil.example/dl/payload.exe",
        "HTTPS://EVIL.EXAMPLE:443/dl/./x/../payload.exe#frag",
        "http://evil.example./dl/%70ayload.exe",
        "evil.example/dl/payload.exe",
        "http://user@evil.example:80/dl/payload.exe",
    ] {
        assert_eq!(
            summary(&set.lookup(&url(spelling, SeenIn::HttpUrl))),
            [
                row("urls", "evil.example/dl/payload.exe", "url", "exact"),
                row("doms", "evil.example", "domain", "exact")
            ],
            "{spelling}"
        );
    }
    // Another path on the listed host only hits the domain entry.
    assert_eq!(
        summary(&set.lookup(&url(
            "http://evil.example/dl/payload.exe?x=1",
            SeenIn::HttpUrl
        ))),
        [row("doms", "evil.example", "domain", "exact")]
    );
}

#[test]
fn url_prefix_only_where_the_list_says_so() {
    let set = sample();
    assert_eq!(
        summary(&set.lookup(&url(
            "http://kit.example/panel/login.php?u=1",
            SeenIn::EmailUrl
        ))),
        [row("urls", "kit.example/panel/*", "url", "prefix")]
    );
    assert!(
        set.lookup(&url("http://kit.example/panelx", SeenIn::HttpUrl))
            .is_empty()
    );
    assert!(
        set.lookup(&url("http://kit.example:8080/panel/a", SeenIn::HttpUrl))
            .is_empty()
    );
    // An exact URL entry is not a prefix.
    assert_eq!(
        summary(&set.lookup(&url(
            "http://evil.example/dl/payload.exe/more",
            SeenIn::HttpUrl
        ))),
        [row("doms", "evil.example", "domain", "exact")]
    );
}

#[test]
fn domains_match_subdomains_on_label_boundaries_only() {
    let set = sample();
    assert_eq!(
        summary(&set.lookup(&url("a.b.evil.example", SeenIn::DnsQuery))),
        [row("doms", "evil.example", "domain", "subdomain")]
    );
    assert_eq!(
        summary(&set.lookup(&url("WWW.Evil.Example.:8080", SeenIn::HttpHost))),
        [row("doms", "evil.example", "domain", "subdomain")]
    );
    assert!(
        set.lookup(&url("notevil.example", SeenIn::TlsSni))
            .is_empty()
    );
    assert!(
        set.lookup(&url("evil.example.net", SeenIn::TlsSni))
            .is_empty()
    );
    assert!(set.lookup(&url("example", SeenIn::DnsQuery)).is_empty());
    // The IDN entry matches traffic in either spelling.
    assert_eq!(
        summary(&set.lookup(&url("xn--bcher-kva.example", SeenIn::TlsSni))),
        [row("doms", "xn--bcher-kva.example", "domain", "exact")]
    );
    assert_eq!(
        summary(&set.lookup(&url("http://shop.BÜCHER.example/", SeenIn::EmailUrl))),
        [row("doms", "xn--bcher-kva.example", "domain", "subdomain")]
    );
}

#[test]
fn ip_literals_and_flow_addresses_match_ips_and_overlapping_cidrs() {
    let set = sample();
    assert_eq!(
        summary(&set.lookup(&url("http://192.0.2.7:8080/x", SeenIn::HttpUrl))),
        [
            row("nets", "192.0.2.7", "ip", "exact"),
            row("nets", "192.0.2.0/24", "ip", "cidr")
        ]
    );
    assert_eq!(
        summary(&set.lookup(&url("http://[2001:db8::1]/x", SeenIn::HttpUrl))),
        [
            row("urls", "[2001:db8::1]/x", "url", "exact"),
            row("nets", "2001:db8::/32", "ip", "cidr")
        ]
    );
    assert_eq!(
        summary(&set.lookup(&url("[2001:db8::5]", SeenIn::HttpHost))),
        [row("nets", "2001:db8::/32", "ip", "cidr")]
    );
    let hits = set.lookup_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)), Seen::DestIp);
    assert_eq!(summary(&hits), [row("nets", "192.0.2.0/24", "ip", "cidr")]);
    assert_eq!(hits[0].seen_in.eve(), "dest_ip");
    assert!(
        set.lookup_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 3, 1)), Seen::SrcIp)
            .is_empty()
    );
}

#[test]
fn unparsable_traffic_values_find_nothing() {
    let set = sample();
    for bad in [
        "",
        "http://",
        "http://evil example/",
        "http://[::1/",
        "\u{0}\u{1}",
        "http://a.example:99999/",
    ] {
        assert!(set.lookup(&url(bad, SeenIn::HttpUrl)).is_empty(), "{bad:?}");
    }
}

#[test]
fn reports_count_loaded_skipped_duplicates_with_line_numbers() {
    let (set, reports) = load(&[(
        "mixed",
        "malware",
        FeedFormat::Domains,
        "# header\nevil.example\nnot a domain\nEVIL.example.\n\n*.evil.example\nok.example\n<script>\n",
    )]);
    let r = &reports[0];
    assert_eq!((r.loaded, r.skipped, r.duplicates), (4, 2, 2));
    assert_eq!(
        r.issues,
        [
            LineIssue {
                line: 3,
                error: LineError::BadDomain(normalize::NormalizeError::BadHost)
            },
            LineIssue {
                line: 8,
                error: LineError::BadDomain(normalize::NormalizeError::BadHost)
            },
        ]
    );
    assert_eq!(
        r.issues[0].to_string(),
        "line 3: bad domain: not a valid host name"
    );
    assert_eq!(
        r.summary(),
        "mixed (domains, mixed.txt): 4 loaded, 2 skipped, 2 duplicates"
    );
    assert_eq!(set.entry_count(), 2);
}

#[test]
fn an_empty_feed_loads_nothing_and_says_so() {
    let (set, reports) = load(&[
        ("empty", "malware", FeedFormat::Urls, ""),
        ("comments", "malware", FeedFormat::Ips, "# only\n\n"),
    ]);
    assert_eq!(
        reports
            .iter()
            .map(|r| (r.loaded, r.skipped, r.error.is_none()))
            .collect::<Vec<_>>(),
        [(0, 0, true), (0, 0, true)]
    );
    assert_eq!(set.entry_count(), 0);
    assert!(
        set.lookup(&url("http://evil.example/", SeenIn::HttpUrl))
            .is_empty()
    );
}

#[test]
fn garbage_bytes_and_overlong_lines_are_skipped_per_line() {
    let mut text = b"evil.example\n\xff\xfe\n".to_vec();
    text.extend(std::iter::repeat_n(b'a', MAX_LINE_LEN + 10));
    text.extend(b"\nlast.example");
    let mut b = ReputationBuilder::new();
    let r = b.add_feed(&spec("g", "malware", FeedFormat::Domains), &text[..]);
    assert_eq!((r.loaded, r.skipped), (2, 2));
    assert_eq!(
        r.issues,
        [
            LineIssue {
                line: 2,
                error: LineError::NotUtf8
            },
            LineIssue {
                line: 3,
                error: LineError::TooLong {
                    limit: MAX_LINE_LEN
                }
            }
        ]
    );
}

#[test]
fn a_missing_file_and_a_duplicate_feed_name_are_reported() {
    let mut b = ReputationBuilder::new();
    let missing = b.add_feed_file(&FeedSpec {
        path: PathBuf::from("/nonexistent/feed.csv"),
        ..spec("m", "malware", FeedFormat::UrlhausCsv)
    });
    assert!(
        missing
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("cannot open /nonexistent/feed.csv")),
        "{missing:?}"
    );
    b.add_feed(
        &spec("twice", "malware", FeedFormat::Domains),
        &b"a.example\n"[..],
    );
    let again = b.add_feed(
        &spec("twice", "malware", FeedFormat::Domains),
        &b"b.example\n"[..],
    );
    assert_eq!(
        again.error.as_deref(),
        Some("a feed named `twice` is already loaded")
    );
    assert_eq!(b.build().entry_count(), 1);
}

#[test]
fn the_same_entry_in_two_feeds_hits_twice() {
    let (set, _) = load(&[
        ("one", "malware", FeedFormat::Domains, "evil.example\n"),
        ("two", "phishing", FeedFormat::Domains, "evil.example\n"),
        (
            "three",
            "malware",
            FeedFormat::Domains,
            "evil.example\nevil.example\n",
        ),
    ]);
    assert_eq!(
        summary(&set.lookup(&url("evil.example", SeenIn::DnsQuery))),
        [
            row("one", "evil.example", "domain", "exact"),
            row("two", "evil.example", "domain", "exact"),
            row("three", "evil.example", "domain", "exact")
        ]
    );
    assert_eq!(set.entry_count(), 1);
}

#[test]
fn file_hashes_and_emails() {
    let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    let (set, reports) = load(&[
        (
            "h",
            "malware",
            FeedFormat::Hashes,
            &format!("{sha256}\n{}\n{sha1}\n", md5.to_uppercase()),
        ),
        (
            "z",
            "phishing",
            FeedFormat::ZeekIntel,
            "#fields\tindicator\tindicator_type\nceo@evil.example\tIntel::EMAIL\n",
        ),
    ]);
    assert_eq!((reports[0].loaded, reports[1].loaded), (3, 1));
    let bytes = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect()
    };
    let file = FileArtifact {
        sha256: bytes(sha256).try_into().unwrap_or([0; 32]),
        sha1: bytes(sha1).try_into().unwrap_or([0; 20]),
        md5: bytes(md5).try_into().unwrap_or([0; 16]),
        size: 0,
        name: "empty".into(),
        magic: None,
        state: FileState::Closed,
        gaps: false,
    };
    let hits = set.lookup_file(&file);
    assert_eq!(
        summary(&hits),
        [
            row("h", sha256, "sha256", "exact"),
            row("h", md5, "md5", "exact"),
            row("h", sha1, "sha1", "exact")
        ]
    );
    assert_eq!(
        hits.iter().map(|h| h.seen_in.eve()).collect::<Vec<_>>(),
        ["file.sha256", "file.md5", "file.sha1"]
    );
    let mail = EmailArtifact {
        sha256: [0; 32],
        size: 1,
        from: Some("Boss <CEO@Evil.Example>".into()),
        to: vec!["a@corp.example".into(), "ceo@evil.example".into()],
        truncated: false,
    };
    let hits = set.lookup_email(&mail);
    assert_eq!(
        summary(&hits),
        [
            row("z", "ceo@evil.example", "email", "exact"),
            row("z", "ceo@evil.example", "email", "exact")
        ]
    );
    assert_eq!(
        hits.iter().map(|h| h.seen_in.eve()).collect::<Vec<_>>(),
        ["email.from", "email.to"]
    );
    assert!(
        hits.iter()
            .all(|h| h.signature_id == signature_id_base("z") + 1)
    );
}

#[test]
fn cache_gives_the_same_hits_and_empties_on_a_new_set() {
    let set = sample();
    let mut cache = VerdictCache::new(NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN));
    let a = url("http://evil.example/dl/payload.exe", SeenIn::HttpUrl);
    let b = url("evil.example", SeenIn::DnsQuery);
    let clean = url("http://clean.example/", SeenIn::HttpUrl);
    let clean2 = url("http://clean2.example/", SeenIn::EmailUrl);
    for art in [&a, &b, &clean, &clean2, &a] {
        assert_eq!(set.lookup_cached(&mut cache, art), set.lookup(art));
    }
    assert_eq!(
        cache.stats(),
        (0, 5),
        "2 URLs per kind: a was evicted before it came back"
    );
    assert_eq!(set.lookup_cached(&mut cache, &a), set.lookup(&a));
    assert_eq!(set.lookup_cached(&mut cache, &b), set.lookup(&b));
    assert_eq!(cache.stats(), (2, 5));
    // The same text seen as a host is a different question, with a different answer.
    let host_a = url("evil.example/dl/payload.exe", SeenIn::HttpHost);
    let url_a = url("evil.example/dl/payload.exe", SeenIn::EmailUrl);
    assert_eq!(set.lookup_cached(&mut cache, &url_a).len(), 2);
    assert_eq!(set.lookup_cached(&mut cache, &host_a), set.lookup(&host_a));
    assert_eq!(cache.len(), 4);
    let other = ReputationSet::empty();
    assert!(other.lookup_cached(&mut cache, &a).is_empty());
    assert_eq!(cache.len(), 1);
}

#[test]
fn web_and_mail_hits_have_their_own_signature_ids() {
    let set = sample();
    let web = set.lookup(&url("http://evil.example/dl/payload.exe", SeenIn::HttpUrl));
    let mail = set.lookup(&url("http://evil.example/dl/payload.exe", SeenIn::EmailUrl));
    assert_eq!(web[0].signature_id, signature_id_base("urls"));
    assert_eq!(mail[0].signature_id, signature_id_base("urls") + 1);
    assert_eq!(signature_id_base("urls") % 2, 0);
    assert!((SID_BASE..SID_BASE + 2 * SID_SLOTS).contains(&signature_id_base("urls")));
    // Stable: a fixed value for a fixed name (FNV-1a 32 of "urlhaus" modulo the slots).
    assert_eq!(
        signature_id_base("urlhaus"),
        SID_BASE + 2 * (fnv("urlhaus") % SID_SLOTS)
    );
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[test]
fn alert_record_is_suricata_shaped() {
    let set = sample();
    let hit = set
        .lookup(&url("http://a.evil.example/x", SeenIn::EmailUrl))
        .remove(0);
    let ctx = ArtifactContext {
        ts: Timestamp::from_secs_nanos(1_700_000_000, 123_456_000),
        flow_id: 42,
        key: FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 40000,
            dst_port: 25,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        },
        app_proto: Some(weir_core::AppProto::Smtp),
        tx_id: Some(3),
    };
    let record = serde_json::Value::Object(alert_record(&hit, &ctx));
    let sid = signature_id_base("doms") + 1;
    assert_eq!(
        record,
        serde_json::json!({
            "timestamp": Timestamp::from_secs_nanos(1_700_000_000, 123_456_000).eve(),
            "flow_id": 42,
            "event_type": "alert",
            "src_ip": "10.0.0.1",
            "src_port": 40000,
            "dest_ip": "10.0.0.2",
            "dest_port": 25,
            "proto": "TCP",
            "ip_v": 4,
            "tx_id": 3,
            "alert": {
                "action": "allowed",
                "gid": 9,
                "signature_id": sid,
                "rev": 1,
                "signature": "WEIR REPUTATION doms (phishing) indicator seen in mail traffic",
                "category": "Possible Social Engineering Attempted",
                "severity": 2
            },
            "app_proto": "smtp",
            "reputation": {
                "feed": "doms",
                "category": "phishing",
                "indicator": "evil.example",
                "indicator_type": "domain",
                "match": "subdomain",
                "seen_in": "email.url",
                "traffic": "mail",
                "value": "http://a.evil.example/x"
            }
        })
    );
    let record = alert_record(&hit, &ctx);
    let keys: Vec<&str> = record.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "flow_id",
            "event_type",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "proto",
            "ip_v",
            "tx_id",
            "alert",
            "app_proto",
            "reputation"
        ]
    );
}

#[test]
fn dedup_keeps_one_hit_per_indicator_seen_where_it_lives() {
    let set = sample();
    let mut hits = set.lookup(&url("http://evil.example/dl/payload.exe", SeenIn::HttpUrl));
    hits.extend(set.lookup(&url("evil.example", SeenIn::HttpHost)));
    hits.extend(set.lookup(&url("evil.example", SeenIn::DnsQuery)));
    let kept = dedup_hits(hits);
    assert_eq!(
        kept.iter()
            .map(|h| (h.indicator.as_str(), h.seen_in.eve()))
            .collect::<Vec<_>>(),
        [
            ("evil.example/dl/payload.exe", "http.url"),
            ("evil.example", "http.host")
        ]
    );
    // Only URL sightings: the domain entry stays on its first URL hit.
    let mut hits = set.lookup(&url("http://a.evil.example/1", SeenIn::EmailUrl));
    hits.extend(set.lookup(&url("http://b.evil.example/2", SeenIn::EmailUrl)));
    let kept = dedup_hits(hits);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].observed, "http://a.evil.example/1");
}

#[test]
fn fingerprint_changes_when_a_feed_file_changes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("feed.txt");
    let spec = FeedSpec {
        path: path.clone(),
        ..spec("f", "malware", FeedFormat::Domains)
    };
    let missing = FeedFingerprint::of(std::slice::from_ref(&spec));
    std::fs::write(&path, "a.example\n").unwrap_or_else(|e| panic!("{e}"));
    let first = FeedFingerprint::of(std::slice::from_ref(&spec));
    assert_ne!(missing, first);
    assert_eq!(first, FeedFingerprint::of(std::slice::from_ref(&spec)));
    std::fs::write(&path, "a.example\nb.example\n").unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(first, FeedFingerprint::of(std::slice::from_ref(&spec)));
}

/// A domains feed of `total` lines generated as it is read; every millionth line is garbage.
struct GeneratedFeed {
    next: u64,
    total: u64,
    buf: Vec<u8>,
    at: usize,
}

impl std::io::Read for GeneratedFeed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for GeneratedFeed {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            while self.buf.len() < 1 << 16 && self.next < self.total {
                self.next += 1;
                if self.next.is_multiple_of(1_000_000) {
                    self.buf.extend_from_slice(b"<garbage line>\n");
                } else {
                    self.buf.extend_from_slice(
                        format!(
                            "h{:x}.n{}.example\n",
                            self.next.wrapping_mul(0x9e37_79b9),
                            self.next
                        )
                        .as_bytes(),
                    );
                }
            }
        }
        Ok(&self.buf[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.buf.len());
    }
}

#[test]
#[ignore = "10 million lines, about a minute and 1.5 GB: cargo test -p weir-detect --lib ten_million -- --ignored"]
fn ten_million_line_feed_loads_with_every_garbage_line_reported() {
    const LINES: u64 = 10_000_000;
    let mut b = ReputationBuilder::new();
    let report = b.add_feed(
        &spec("big", "malware", FeedFormat::Domains),
        GeneratedFeed {
            next: 0,
            total: LINES,
            buf: Vec::new(),
            at: 0,
        },
    );
    let set = b.build();
    assert_eq!(
        (report.loaded, report.skipped, report.duplicates),
        (LINES - 10, 10, 0)
    );
    assert_eq!(
        report.issues.iter().map(|i| i.line).collect::<Vec<_>>(),
        (1..=10).map(|i| i * 1_000_000).collect::<Vec<_>>()
    );
    assert_eq!(set.entry_count() as u64, LINES - 10);
    let last = format!(
        "a.h{:x}.n{}.example",
        (LINES - 1).wrapping_mul(0x9e37_79b9),
        LINES - 1
    );
    assert_eq!(set.lookup(&url(&last, SeenIn::DnsQuery)).len(), 1);
    assert!(
        set.lookup(&url("h0.n0.example", SeenIn::DnsQuery))
            .is_empty()
    );
}

#[test]
fn sets_can_be_shared_across_workers() {
    fn shared<T: Send + Sync>() {}
    shared::<ReputationSet>();
    shared::<crate::exclusions::ExclusionSet>();
    fn owned<T: Send>() {}
    owned::<VerdictCache>();
    let set = sample();
    let shown = format!("{set:?}");
    assert!(
        shown.contains("domains: 2") && shown.contains("urls: 2") && shown.contains("ips: 3"),
        "{shown}"
    );
}

/// A sighting of `artifact` on a flow from 10.0.0.1 to `server`.
fn sighting_to(server: Ipv4Addr, artifact: weir_core::Artifact) -> weir_core::Sighting {
    weir_core::Sighting {
        ctx: ArtifactContext {
            ts: Timestamp::from_secs_nanos(1_700_000_000, 0),
            flow_id: 7,
            key: FlowKey {
                src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst_ip: IpAddr::V4(server),
                src_port: 40000,
                dst_port: 80,
                proto: IpProto::TCP,
                vlans: Vlans::default(),
                tunnel_depth: 0,
            },
            app_proto: None,
            tx_id: Some(0),
        },
        artifact,
    }
}

#[test]
fn a_flow_address_written_as_the_url_host_alerts_once_with_the_flow() {
    let (set, _) = load(&[
        (
            "ips",
            "malware",
            FeedFormat::Ips,
            "203.0.113.7\n198.51.100.0/24\n",
        ),
        ("doms", "malware", FeedFormat::Domains, "evil.example\n"),
    ]);
    let mut cache = VerdictCache::new(NonZeroUsize::new(8).unwrap());
    let server = Ipv4Addr::new(203, 0, 113, 7);
    let web = |u: &str, seen: SeenIn| weir_core::Artifact::Url(url(u, seen));
    // The flow's own address (the worker's lookup_ip on the flow raised that alert).
    for (u, seen) in [
        ("http://203.0.113.7/x", SeenIn::HttpUrl),
        ("http://203.0.113.7:80/y", SeenIn::HttpRedirect),
        ("203.0.113.7", SeenIn::TlsSni),
    ] {
        let hits = set.lookup_sighting(&mut cache, &sighting_to(server, web(u, seen)));
        assert_eq!(summary(&hits), vec![], "{u}");
    }
    // Inside a listed block, the flow's address: also already raised with the flow.
    let hits = set.lookup_sighting(
        &mut cache,
        &sighting_to(
            Ipv4Addr::new(198, 51, 100, 9),
            web("http://198.51.100.9/", SeenIn::HttpUrl),
        ),
    );
    assert_eq!(summary(&hits), vec![]);
    // Another address than the flow's (a proxy in between, a redirect elsewhere) still alerts.
    let hits = set.lookup_sighting(
        &mut cache,
        &sighting_to(
            Ipv4Addr::new(10, 9, 9, 9),
            web("http://203.0.113.7/x", SeenIn::HttpUrl),
        ),
    );
    assert_eq!(
        summary(&hits),
        vec![row("ips", "203.0.113.7", "ip", "exact")]
    );
    let hits = set.lookup_sighting(
        &mut cache,
        &sighting_to(server, web("http://198.51.100.20/", SeenIn::HttpRedirect)),
    );
    assert_eq!(
        summary(&hits),
        vec![row("ips", "198.51.100.0/24", "ip", "cidr")]
    );
    // A link in a mail is not the mail's connection, whatever its address.
    let hits = set.lookup_sighting(
        &mut cache,
        &sighting_to(server, web("http://203.0.113.7/x", SeenIn::EmailUrl)),
    );
    assert_eq!(
        summary(&hits),
        vec![row("ips", "203.0.113.7", "ip", "exact")]
    );
    // Names are untouched, whatever the flow's address.
    let hits = set.lookup_sighting(
        &mut cache,
        &sighting_to(server, web("http://a.evil.example/", SeenIn::HttpUrl)),
    );
    assert_eq!(
        summary(&hits),
        vec![row("doms", "evil.example", "domain", "subdomain")]
    );
}
