//! Reputation feeds: URLs, domains, IP addresses and blocks, file hashes and email addresses
//! known to be bad, loaded from URLhaus CSV, Zeek intel and plain lists, and matched against the
//! artifacts the parsers produce.
//!
//! - [`ReputationBuilder`] loads feeds (each gives a [`FeedReport`]: entries loaded, lines
//!   skipped with their line numbers) and builds a [`ReputationSet`].
//! - A [`ReputationSet`] is immutable, `Send + Sync`, and meant to be shared as
//!   `Arc<ReputationSet>`; reloading builds a new one in the background and swaps the `Arc`.
//! - [`ReputationSet::lookup`] and friends return [`Hit`]s; [`alert_record`] turns a hit into an
//!   EVE `alert` record with a `reputation` object.
//! - [`VerdictCache`] is a per-worker LRU of recent verdicts (no lock: each worker owns one).
//! - [`ReputationSet::lookup_sighting`] is what a worker calls per artifact: lookup, dedup,
//!   and no second alert for a flow's own address written as a URL's host;
//! - [`dedup_hits`] keeps one hit per indicator among a transaction's artifacts;
//!   [`FeedFingerprint`] tells a reload loop when feed files changed.
//!
//! What matches what (formats in [`FeedFormat`], normalisation in [`normalize`]):
//! - a URL entry matches a URL with the same key (scheme ignored, see [`normalize`]);
//! - a URL prefix entry (a `urls` line ending in `*`) matches URLs on the same host and port
//!   whose path starts with it;
//! - a domain entry matches that host and every host below it on a label boundary, whether
//!   seen in a URL, a `Host` header, a DNS query or SNI (not the domain of an email address:
//!   email entries are whole addresses);
//! - an IP or CIDR entry matches an address inside it: a URL's or host's IP literal, or a flow
//!   address through [`ReputationSet::lookup_ip`];
//! - hash entries match a file's MD5, SHA-1 or SHA-256; email entries a sender or recipient.

mod eve;
mod feed;
mod ipset;
pub mod normalize;

pub use eve::{
    REPUTATION_GID, SID_BASE, SID_SLOTS, alert_object, alert_record, reputation_object,
    signature_id_base,
};
pub use feed::{FeedFormat, Indicator, LineError, normalize_email, parse_hash};
pub use ipset::IpNet;
pub(crate) use ipset::PrefixMap;

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weir_core::{Artifact, EmailArtifact, FileArtifact, SeenIn, Sighting, UrlArtifact};

use feed::LineParser;
use normalize::{Host, normalize_host, normalize_url};

/// Feeds in one set; feed ids are `u16` inside the set, and each feed needs a signature id slot.
pub const MAX_FEEDS: usize = 4096;

/// Distinct entries over all feeds of one set: the bound on a set's memory (about 100 bytes per
/// domain or URL entry; see the benchmark figures in the crate notes).
pub const MAX_ENTRIES: usize = 50_000_000;

/// Longer lines are skipped unread past this point, so a feed without newlines cannot grow a
/// buffer without bound.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Line problems kept per feed report; the rest are only counted.
pub const MAX_REPORTED_ISSUES: usize = 100;

/// URL prefix entries per host and port: each is compared on every lookup of a URL on that host.
pub const MAX_PREFIXES_PER_HOST: usize = 1024;

/// Hits returned by one lookup (the same URL may be listed by many feeds, under several kinds).
pub const MAX_HITS_PER_LOOKUP: usize = 64;

/// Artifact strings longer than this are looked up without the cache, so the cache's memory is
/// bounded by twice its capacity (hosts and URLs) times this.
pub const MAX_CACHED_KEY_LEN: usize = 512;

/// A reasonable per-worker [`VerdictCache`] capacity.
pub const DEFAULT_CACHE_ENTRIES: usize = 16_384;

/// One feed to load, as `[[detect.feeds]]` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    /// Shown in alerts; also picks the feed's signature ids.
    pub name: String,
    /// Free text shown in alerts (`malware`, `phishing`, ...).
    pub category: String,
    pub format: FeedFormat,
    pub path: PathBuf,
}

/// A refused line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineIssue {
    /// 1-based.
    pub line: u64,
    pub error: LineError,
}

/// What loading one feed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedReport {
    pub name: String,
    pub format: FeedFormat,
    pub path: PathBuf,
    /// Lines that gave an entry (including `duplicates`).
    pub loaded: u64,
    /// Lines refused (bad syntax, unsupported indicator types, limits).
    pub skipped: u64,
    /// Loaded lines whose entry this feed had already listed.
    pub duplicates: u64,
    /// The first [`MAX_REPORTED_ISSUES`] refused lines.
    pub issues: Vec<LineIssue>,
    /// The feed's signature id for web traffic; mail traffic uses the next one.
    pub signature_id: u32,
    /// The feed's name hashed to a slot already taken by this feed, which got the next free
    /// slot instead: its signature ids then depend on feed order.
    pub signature_collision: Option<String>,
    /// Why the feed could not be read (in full); entries read before the failure are kept.
    pub error: Option<String>,
}

impl FeedReport {
    /// One line a person can act on: `urlhaus (urlhaus-csv, /path): 6363 loaded, 0 skipped`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ({}, {}): {} loaded, {} skipped",
            self.name,
            self.format,
            self.path.display(),
            self.loaded,
            self.skipped
        );
        if self.duplicates > 0 {
            s.push_str(&format!(", {} duplicates", self.duplicates));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("; error: {e}"));
        }
        s
    }
}

impl fmt::Display for LineIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// What kind of entry matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndicatorType {
    Url,
    Domain,
    Ip,
    Md5,
    Sha1,
    Sha256,
    Email,
}

impl IndicatorType {
    /// As written in `reputation.indicator_type`.
    pub fn eve(self) -> &'static str {
        match self {
            IndicatorType::Url => "url",
            IndicatorType::Domain => "domain",
            IndicatorType::Ip => "ip",
            IndicatorType::Md5 => "md5",
            IndicatorType::Sha1 => "sha1",
            IndicatorType::Sha256 => "sha256",
            IndicatorType::Email => "email",
        }
    }
}

/// How the entry matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    Exact,
    /// A URL prefix entry.
    Prefix,
    /// A domain entry matched a host below it.
    Subdomain,
    /// An address inside a CIDR block entry.
    Cidr,
}

impl MatchKind {
    /// As written in `reputation.match`.
    pub fn eve(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Subdomain => "subdomain",
            MatchKind::Cidr => "cidr",
        }
    }
}

/// Where the matched value was seen. Wraps core's [`SeenIn`] and adds the places core has no
/// variant for yet (flow addresses, SHA-1, email addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    Artifact(SeenIn),
    FileSha1,
    SrcIp,
    DestIp,
    EmailFrom,
    EmailTo,
}

impl From<SeenIn> for Seen {
    fn from(s: SeenIn) -> Seen {
        Seen::Artifact(s)
    }
}

impl Seen {
    /// As written in `reputation.seen_in`.
    pub fn eve(self) -> &'static str {
        match self {
            Seen::Artifact(s) => s.eve(),
            Seen::FileSha1 => "file.sha1",
            Seen::SrcIp => "src_ip",
            Seen::DestIp => "dest_ip",
            Seen::EmailFrom => "email.from",
            Seen::EmailTo => "email.to",
        }
    }

    /// Mail and web alerts are kept apart (separate signature ids), as the Central Node reports
    /// them apart.
    pub fn is_mail(self) -> bool {
        match self {
            Seen::Artifact(s) => s.is_mail(),
            Seen::EmailFrom | Seen::EmailTo => true,
            Seen::FileSha1 | Seen::SrcIp | Seen::DestIp => false,
        }
    }

    /// Host-like places: the value is a bare host even without a `/`.
    fn is_host(self) -> bool {
        matches!(
            self,
            Seen::Artifact(SeenIn::HttpHost | SeenIn::DnsQuery | SeenIn::TlsSni)
        )
    }
}

/// One feed entry that matched an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub feed: Arc<str>,
    pub category: Arc<str>,
    /// Per feed, `+1` for mail traffic; see [`signature_id_base`].
    pub signature_id: u32,
    /// The entry as normalised (a URL key without scheme, a domain, `addr` or `addr/len`, hex).
    pub indicator: String,
    pub indicator_type: IndicatorType,
    pub match_kind: MatchKind,
    pub seen_in: Seen,
    /// The value as the artifact carried it.
    pub observed: String,
}

/// A match before it is tied to an artifact: what the cache keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Match {
    feed: u16,
    indicator: Box<str>,
    indicator_type: IndicatorType,
    match_kind: MatchKind,
}

/// The feeds listing one entry: a feed id, or (high bit set) an index into the set's lists of
/// several. Four bytes per entry instead of a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FeedIds(u32);

impl FeedIds {
    const NONE: FeedIds = FeedIds(u32::MAX);
    const MANY: u32 = 1 << 31;
}

impl Default for FeedIds {
    fn default() -> Self {
        FeedIds::NONE
    }
}

/// Multi-feed lists, shared by all of a set's maps.
#[derive(Clone, Debug, Default)]
struct FeedLists(Vec<Vec<u16>>);

impl FeedLists {
    /// Adds `feed`; false when it was already there.
    fn add(&mut self, ids: &mut FeedIds, feed: u16) -> bool {
        if *ids == FeedIds::NONE {
            *ids = FeedIds(u32::from(feed));
            return true;
        }
        if ids.0 & FeedIds::MANY == 0 {
            let only = ids.0 as u16; // below MANY and written from a u16
            if only == feed {
                return false;
            }
            // Cannot reach 2^31 lists: there are fewer than MAX_ENTRIES of them.
            let index = self.0.len() as u32;
            self.0.push(vec![only, feed]);
            *ids = FeedIds(index | FeedIds::MANY);
            return true;
        }
        match self.0.get_mut((ids.0 & !FeedIds::MANY) as usize) {
            Some(list) if list.contains(&feed) => false,
            Some(list) => {
                list.push(feed);
                true
            }
            None => false,
        }
    }

    /// The feeds of an entry, in the order they listed it.
    fn iter(&self, ids: FeedIds) -> impl Iterator<Item = u16> + '_ {
        let (single, many): (Option<u16>, &[u16]) = if ids == FeedIds::NONE {
            (None, &[])
        } else if ids.0 & FeedIds::MANY == 0 {
            (u16::try_from(ids.0).ok(), &[])
        } else {
            (
                None,
                self.0
                    .get((ids.0 & !FeedIds::MANY) as usize)
                    .map_or(&[], Vec::as_slice),
            )
        };
        single.into_iter().chain(many.iter().copied())
    }
}

#[derive(Clone, Debug)]
struct FeedInfo {
    name: Arc<str>,
    category: Arc<str>,
    /// Web traffic; mail is `+ 1`.
    signature_id: u32,
}

/// Distinct sets get distinct generations, so a [`VerdictCache`] notices a swap.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// Loaded feeds, ready for lookups. Immutable; share it as `Arc<ReputationSet>`.
pub struct ReputationSet {
    generation: u64,
    feeds: Vec<FeedInfo>,
    lists: FeedLists,
    urls: HashMap<Box<str>, FeedIds>,
    /// By authority (`host[:port]`): path prefixes.
    url_prefixes: HashMap<Box<str>, Vec<(Box<str>, FeedIds)>>,
    domains: HashMap<Box<str>, FeedIds>,
    ips: PrefixMap<FeedIds>,
    md5: HashMap<[u8; 16], FeedIds>,
    sha1: HashMap<[u8; 20], FeedIds>,
    sha256: HashMap<[u8; 32], FeedIds>,
    emails: HashMap<Box<str>, FeedIds>,
    entries: usize,
}

impl fmt::Debug for ReputationSet {
    /// Counts only: a set holds millions of entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReputationSet")
            .field("generation", &self.generation)
            .field(
                "feeds",
                &self.feeds.iter().map(|f| &*f.name).collect::<Vec<_>>(),
            )
            .field("urls", &self.urls.len())
            .field("url_prefix_hosts", &self.url_prefixes.len())
            .field("domains", &self.domains.len())
            .field("ips", &self.ips.len())
            .field(
                "hashes",
                &(self.md5.len() + self.sha1.len() + self.sha256.len()),
            )
            .field("emails", &self.emails.len())
            .finish()
    }
}

/// Loads feeds one after another, then [`ReputationBuilder::build`]s the set.
#[derive(Debug)]
pub struct ReputationBuilder {
    set: ReputationSet,
}

impl Default for ReputationBuilder {
    fn default() -> Self {
        ReputationBuilder::new()
    }
}

impl ReputationBuilder {
    pub fn new() -> Self {
        ReputationBuilder {
            set: ReputationSet {
                generation: 0,
                feeds: Vec::new(),
                lists: FeedLists::default(),
                urls: HashMap::new(),
                url_prefixes: HashMap::new(),
                domains: HashMap::new(),
                ips: PrefixMap::default(),
                md5: HashMap::new(),
                sha1: HashMap::new(),
                sha256: HashMap::new(),
                emails: HashMap::new(),
                entries: 0,
            },
        }
    }

    /// Reads the feed at `spec.path`.
    pub fn add_feed_file(&mut self, spec: &FeedSpec) -> FeedReport {
        match std::fs::File::open(&spec.path) {
            Ok(file) => self.add_feed(spec, BufReader::with_capacity(1 << 16, file)),
            Err(e) => {
                let mut report = self.empty_report(spec);
                report.error = Some(format!("cannot open {}: {e}", spec.path.display()));
                report
            }
        }
    }

    fn empty_report(&self, spec: &FeedSpec) -> FeedReport {
        FeedReport {
            name: spec.name.clone(),
            format: spec.format,
            path: spec.path.clone(),
            loaded: 0,
            skipped: 0,
            duplicates: 0,
            issues: Vec::new(),
            signature_id: 0,
            signature_collision: None,
            error: None,
        }
    }

    /// Reads a feed from `reader` (`spec.path` is only named in the report).
    pub fn add_feed<R: BufRead>(&mut self, spec: &FeedSpec, mut reader: R) -> FeedReport {
        let mut report = self.empty_report(spec);
        if self.set.feeds.len() >= MAX_FEEDS {
            report.error = Some(format!("more than {MAX_FEEDS} feeds"));
            return report;
        }
        if self.set.feeds.iter().any(|f| *f.name == *spec.name) {
            report.error = Some(format!("a feed named `{}` is already loaded", spec.name));
            return report;
        }
        let (signature_id, collision) = self.signature_slot(&spec.name);
        report.signature_id = signature_id;
        report.signature_collision = collision;
        // Bounded by MAX_FEEDS above.
        let feed = self.set.feeds.len() as u16;
        self.set.feeds.push(FeedInfo {
            name: spec.name.as_str().into(),
            category: spec.category.as_str().into(),
            signature_id,
        });

        let mut parser = LineParser::new(spec.format);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            let too_long = match read_bounded_line(&mut reader, &mut buf) {
                Ok(None) => break,
                Ok(Some(too_long)) => too_long,
                Err(e) => {
                    report.error = Some(format!("read error after line {line_no}: {e}"));
                    break;
                }
            };
            line_no += 1;
            let outcome = if too_long {
                Err(LineError::TooLong {
                    limit: MAX_LINE_LEN,
                })
            } else {
                match std::str::from_utf8(&buf) {
                    Ok(text) => match parser.parse(text) {
                        Ok(outcome) => outcome,
                        Err(feed_error) => {
                            report.error = Some(format!("line {line_no}: {feed_error}"));
                            break;
                        }
                    },
                    Err(_) => Err(LineError::NotUtf8),
                }
            };
            match outcome.and_then(|ind| ind.map(|i| self.insert(feed, i)).transpose()) {
                Ok(None) => {}
                Ok(Some(new)) => {
                    report.loaded += 1;
                    report.duplicates += u64::from(!new);
                }
                Err(error) => {
                    report.skipped += 1;
                    if report.issues.len() < MAX_REPORTED_ISSUES {
                        report.issues.push(LineIssue {
                            line: line_no,
                            error,
                        });
                    }
                }
            }
        }
        report
    }

    /// The feed's signature id: its name hashed into [`SID_SLOTS`] slots, the next free slot
    /// when another feed of this set took it.
    fn signature_slot(&self, name: &str) -> (u32, Option<String>) {
        let mut sid = signature_id_base(name);
        let mut collision = None;
        while let Some(other) = self.set.feeds.iter().find(|f| f.signature_id == sid) {
            collision.get_or_insert_with(|| other.name.to_string());
            sid = SID_BASE + (sid - SID_BASE + 2) % (2 * SID_SLOTS);
        }
        (sid, collision)
    }

    /// Adds an entry for `feed`; `Ok(false)` when the feed already listed it.
    fn insert(&mut self, feed: u16, indicator: Indicator) -> Result<bool, LineError> {
        let set = &mut self.set;
        let full = set.entries >= MAX_ENTRIES;
        let lists = &mut set.lists;
        let mut fresh = false;
        // Only a new key counts toward (and is refused by) the entry limit.
        let mut add = |ids: &mut FeedIds| -> Result<bool, LineError> {
            if *ids == FeedIds::NONE {
                if full {
                    return Err(LineError::SetFull { limit: MAX_ENTRIES });
                }
                fresh = true;
            }
            Ok(lists.add(ids, feed))
        };
        let added = match indicator {
            Indicator::Url(key) => keyed(&mut set.urls, key.into_boxed_str(), &mut add),
            Indicator::Domain(name) => keyed(&mut set.domains, name.into_boxed_str(), &mut add),
            Indicator::Email(addr) => keyed(&mut set.emails, addr.into_boxed_str(), &mut add),
            Indicator::Md5(h) => add(set.md5.entry(h).or_default()),
            Indicator::Sha1(h) => add(set.sha1.entry(h).or_default()),
            Indicator::Sha256(h) => add(set.sha256.entry(h).or_default()),
            Indicator::Ip(net) => add(set.ips.entry(net)),
            Indicator::UrlPrefix { authority, path } => {
                let prefixes = set
                    .url_prefixes
                    .entry(authority.into_boxed_str())
                    .or_default();
                let at = prefixes.iter().position(|(p, _)| **p == *path);
                let full_host = prefixes.len() >= MAX_PREFIXES_PER_HOST;
                match at.and_then(|at| prefixes.get_mut(at)) {
                    Some((_, ids)) => add(ids),
                    None if full_host => Err(LineError::SetFull {
                        limit: MAX_PREFIXES_PER_HOST,
                    }),
                    None => {
                        let mut ids = FeedIds::NONE;
                        let added = add(&mut ids);
                        if added.is_ok() {
                            prefixes.push((path.into_boxed_str(), ids));
                        }
                        added
                    }
                }
            }
        };
        if fresh && added.is_ok() {
            set.entries += 1;
        }
        added
    }

    /// The finished set; the builder's feeds and entries move into it.
    pub fn build(mut self) -> ReputationSet {
        self.set.generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        self.set.urls.shrink_to_fit();
        self.set.domains.shrink_to_fit();
        self.set.url_prefixes.shrink_to_fit();
        self.set
    }
}

/// Inserts a string key, refusing it (and leaving no empty entry) when the limit says no.
fn keyed(
    map: &mut HashMap<Box<str>, FeedIds>,
    key: Box<str>,
    add: &mut impl FnMut(&mut FeedIds) -> Result<bool, LineError>,
) -> Result<bool, LineError> {
    if let Some(ids) = map.get_mut(&key) {
        return add(ids);
    }
    let mut ids = FeedIds::NONE;
    let added = add(&mut ids)?;
    map.insert(key, ids);
    Ok(added)
}

/// Reads one line into `buf` (without its newline). `Ok(None)` at the end of input;
/// `Ok(Some(true))` when the line was longer than [`MAX_LINE_LEN`] (the rest is skipped unread
/// into memory).
fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(nl) => (&chunk[..nl], nl + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if !too_long {
            if buf.len() + part.len() > MAX_LINE_LEN {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

impl ReputationSet {
    /// A set with no feeds: every lookup finds nothing.
    pub fn empty() -> ReputationSet {
        ReputationBuilder::new().build()
    }

    /// Loads every feed file; feeds that fail keep what they read and say why in their report.
    pub fn load(specs: &[FeedSpec]) -> (ReputationSet, Vec<FeedReport>) {
        let mut builder = ReputationBuilder::new();
        let reports = specs
            .iter()
            .map(|spec| builder.add_feed_file(spec))
            .collect();
        (builder.build(), reports)
    }

    /// Distinct entries over all feeds.
    pub fn entry_count(&self) -> usize {
        self.entries
    }

    pub fn feed_count(&self) -> usize {
        self.feeds.len()
    }

    /// Looks up a URL, host or domain artifact: a value with a `/` (or seen as a URL) is a URL,
    /// one seen in a `Host` header, DNS query or SNI (or without a `/`) a host.
    pub fn lookup(&self, artifact: &UrlArtifact) -> Vec<Hit> {
        let seen = Seen::from(artifact.seen_in);
        let matches = self.url_matches(&artifact.url, seen);
        self.hits(&matches, seen, &artifact.url)
    }

    /// [`ReputationSet::lookup`] through a worker's cache of recent verdicts.
    pub fn lookup_cached(&self, cache: &mut VerdictCache, artifact: &UrlArtifact) -> Vec<Hit> {
        let seen = Seen::from(artifact.seen_in);
        if artifact.url.len() > MAX_CACHED_KEY_LEN {
            return self.lookup(artifact);
        }
        if cache.generation != self.generation {
            cache.hosts.clear();
            cache.urls.clear();
            cache.generation = self.generation;
        }
        // The same text asks a different question as a host than as a URL: two caches, so a
        // hit needs no key allocation.
        let lru = if seen.is_host() {
            &mut cache.hosts
        } else {
            &mut cache.urls
        };
        let matches = match lru.get(artifact.url.as_str()) {
            Some(m) => {
                cache.hits += 1;
                Arc::clone(m)
            }
            None => {
                cache.misses += 1;
                let m: Arc<[Match]> = self.url_matches(&artifact.url, seen).into();
                lru.put(artifact.url.as_str().into(), Arc::clone(&m));
                m
            }
        };
        self.hits(&matches, seen, &artifact.url)
    }

    /// Every alert one sighting should raise, for a worker that also checks each flow's
    /// addresses once with [`ReputationSet::lookup_ip`]: its artifact looked up (URLs and hosts
    /// through `cache`), one hit per feed and indicator ([`dedup_hits`]), and no IP hit for a web
    /// URL or host whose IP literal is one of the sighting's own flow addresses
    /// (`http://203.0.113.7/x` fetched from 203.0.113.7). That address already raised its alert
    /// with the flow; without this it would raise a second one in the same flow. A URL in a
    /// mail is kept: it points somewhere else than the mail's own connection, even when the
    /// address is the same.
    pub fn lookup_sighting(&self, cache: &mut VerdictCache, sighting: &Sighting) -> Vec<Hit> {
        let hits = match &sighting.artifact {
            Artifact::Url(u) => {
                let mut hits = self.lookup_cached(cache, u);
                let seen = Seen::from(u.seen_in);
                if !seen.is_mail() && hits.iter().any(|h| h.indicator_type == IndicatorType::Ip) {
                    let key = &sighting.ctx.key;
                    if literal_ip(&u.url, seen)
                        .is_some_and(|ip| ip == key.src_ip || ip == key.dst_ip)
                    {
                        hits.retain(|h| h.indicator_type != IndicatorType::Ip);
                    }
                }
                hits
            }
            Artifact::File(f) => self.lookup_file(f),
            Artifact::Email(e) => self.lookup_email(e),
        };
        dedup_hits(hits)
    }

    /// A flow address (or any address) against the IP and CIDR entries.
    pub fn lookup_ip(&self, ip: IpAddr, seen: Seen) -> Vec<Hit> {
        let mut found = Vec::new();
        self.ip_matches(ip, &mut found);
        self.hits(&found, seen, &ip.to_string())
    }

    /// A file's MD5, SHA-1 and SHA-256 against the hash entries.
    pub fn lookup_file(&self, file: &FileArtifact) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut one = |ids: Option<&FeedIds>, kind: IndicatorType, bytes: &[u8], seen: Seen| {
            // Hex is only written for a hit: most files are listed nowhere.
            if let Some(ids) = ids {
                let hex = weir_core::hex(bytes);
                let found: Vec<Match> = self
                    .lists
                    .iter(*ids)
                    .map(|feed| Match {
                        feed,
                        indicator: hex.as_str().into(),
                        indicator_type: kind,
                        match_kind: MatchKind::Exact,
                    })
                    .collect();
                hits.extend(self.hits(&found, seen, &hex));
            }
        };
        one(
            self.sha256.get(&file.sha256),
            IndicatorType::Sha256,
            &file.sha256,
            SeenIn::FileSha256.into(),
        );
        one(
            self.md5.get(&file.md5),
            IndicatorType::Md5,
            &file.md5,
            SeenIn::FileMd5.into(),
        );
        one(
            self.sha1.get(&file.sha1),
            IndicatorType::Sha1,
            &file.sha1,
            Seen::FileSha1,
        );
        hits.truncate(MAX_HITS_PER_LOOKUP);
        hits
    }

    /// An email's sender and recipients against the email entries.
    pub fn lookup_email(&self, email: &EmailArtifact) -> Vec<Hit> {
        let mut hits = Vec::new();
        let addresses = email
            .from
            .iter()
            .map(|a| (a, Seen::EmailFrom))
            .chain(email.to.iter().map(|a| (a, Seen::EmailTo)));
        for (address, seen) in addresses {
            let Some(normal) = normalize_email(address) else {
                continue;
            };
            if let Some(ids) = self.emails.get(normal.as_str()) {
                let found: Vec<Match> = self
                    .lists
                    .iter(*ids)
                    .map(|feed| Match {
                        feed,
                        indicator: normal.as_str().into(),
                        indicator_type: IndicatorType::Email,
                        match_kind: MatchKind::Exact,
                    })
                    .collect();
                hits.extend(self.hits(&found, seen, address));
            }
            if hits.len() >= MAX_HITS_PER_LOOKUP {
                break;
            }
        }
        hits.truncate(MAX_HITS_PER_LOOKUP);
        hits
    }

    fn hits(&self, matches: &[Match], seen: Seen, observed: &str) -> Vec<Hit> {
        matches
            .iter()
            .take(MAX_HITS_PER_LOOKUP)
            .filter_map(|m| {
                let feed = self.feeds.get(usize::from(m.feed))?;
                Some(Hit {
                    feed: Arc::clone(&feed.name),
                    category: Arc::clone(&feed.category),
                    signature_id: feed.signature_id + u32::from(seen.is_mail()),
                    indicator: m.indicator.to_string(),
                    indicator_type: m.indicator_type,
                    match_kind: m.match_kind,
                    seen_in: seen,
                    observed: observed.to_string(),
                })
            })
            .collect()
    }

    fn url_matches(&self, value: &str, seen: Seen) -> Vec<Match> {
        let mut found = Vec::new();
        let as_host = seen.is_host() || !value.contains('/');
        let host = if as_host {
            match normalize_host(value) {
                Ok(h) => h,
                Err(_) => return found,
            }
        } else {
            let Ok(url) = normalize_url(value) else {
                return found;
            };
            if !self.urls.is_empty() || !self.url_prefixes.is_empty() {
                let key = url.key();
                if let Some(ids) = self.urls.get(key.as_str()) {
                    self.push(&mut found, *ids, &key, IndicatorType::Url, MatchKind::Exact);
                }
                if let Some(prefixes) = self.url_prefixes.get(url.authority().as_str()) {
                    for (path, ids) in prefixes {
                        if url.path.starts_with(&**path) {
                            let indicator = format!("{}{path}*", url.authority());
                            self.push(
                                &mut found,
                                *ids,
                                &indicator,
                                IndicatorType::Url,
                                MatchKind::Prefix,
                            );
                        }
                    }
                }
            }
            url.host
        };
        match host {
            Host::Name(name) => self.domain_matches(&name, &mut found),
            Host::Ip(ip) => self.ip_matches(ip, &mut found),
        }
        found.truncate(MAX_HITS_PER_LOOKUP);
        found
    }

    /// The name itself, then each parent on a label boundary.
    fn domain_matches(&self, name: &str, found: &mut Vec<Match>) {
        if self.domains.is_empty() {
            return;
        }
        let mut candidate = name;
        loop {
            if let Some(ids) = self.domains.get(candidate) {
                let kind = if candidate.len() == name.len() {
                    MatchKind::Exact
                } else {
                    MatchKind::Subdomain
                };
                self.push(found, *ids, candidate, IndicatorType::Domain, kind);
            }
            match candidate.split_once('.') {
                Some((_, parent)) => candidate = parent,
                None => break,
            }
        }
    }

    fn ip_matches(&self, ip: IpAddr, found: &mut Vec<Match>) {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        for (net, ids) in self.ips.matches(ip) {
            let kind = if net.prefix_len() == full {
                MatchKind::Exact
            } else {
                MatchKind::Cidr
            };
            self.push(found, *ids, &net.to_string(), IndicatorType::Ip, kind);
        }
    }

    fn push(
        &self,
        found: &mut Vec<Match>,
        ids: FeedIds,
        indicator: &str,
        indicator_type: IndicatorType,
        match_kind: MatchKind,
    ) {
        for feed in self.lists.iter(ids) {
            if found.len() >= MAX_HITS_PER_LOOKUP {
                return;
            }
            found.push(Match {
                feed,
                indicator: indicator.into(),
                indicator_type,
                match_kind,
            });
        }
    }
}

/// The IP literal a URL or host artifact names, read as [`ReputationSet::lookup`] reads it.
fn literal_ip(value: &str, seen: Seen) -> Option<IpAddr> {
    let host = if seen.is_host() || !value.contains('/') {
        normalize_host(value).ok()?
    } else {
        normalize_url(value).ok()?.host
    };
    match host {
        Host::Ip(ip) => Some(ip),
        Host::Name(_) => None,
    }
}

/// Keeps one hit per feed and indicator among the hits of one transaction or message (its
/// `Host` header and URL, or every URL of an email), so a listed domain seen in both the `Host`
/// header and the URL raises one alert. The survivor is the one seen where the indicator lives:
/// a URL entry's hit from a URL, a domain's or address's from a host (`http.host`, `dns.query`,
/// `tls.sni`); otherwise the first. Order is otherwise kept.
pub fn dedup_hits(hits: Vec<Hit>) -> Vec<Hit> {
    let fits = |h: &Hit| (h.indicator_type == IndicatorType::Url) != h.seen_in.is_host();
    let mut best: HashMap<(Arc<str>, String), usize> = HashMap::new();
    for (i, hit) in hits.iter().enumerate() {
        let key = (Arc::clone(&hit.feed), hit.indicator.clone());
        match best.get(&key) {
            Some(&kept) if fits(&hits[kept]) || !fits(hit) => {}
            _ => {
                best.insert(key, i);
            }
        }
    }
    let keep: std::collections::HashSet<usize> = best.into_values().collect();
    hits.into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, h)| h)
        .collect()
}

/// What a reload compares to decide whether feeds changed: each feed file's length and
/// modification time (`None` when it cannot be read). One `stat` per feed, cheap to poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedFingerprint(Vec<Option<(u64, std::time::SystemTime)>>);

impl FeedFingerprint {
    pub fn of(specs: &[FeedSpec]) -> FeedFingerprint {
        FeedFingerprint(
            specs
                .iter()
                .map(|s| {
                    std::fs::metadata(&s.path)
                        .ok()
                        .and_then(|m| Some((m.len(), m.modified().ok()?)))
                })
                .collect(),
        )
    }
}

/// A worker's LRU of recent URL and host verdicts (matches and non-matches). It belongs to one
/// worker (no lock) and empties itself when it meets a newer [`ReputationSet`].
pub struct VerdictCache {
    generation: u64,
    hosts: lru::LruCache<Box<str>, Arc<[Match]>>,
    urls: lru::LruCache<Box<str>, Arc<[Match]>>,
    hits: u64,
    misses: u64,
}

impl VerdictCache {
    /// Holds up to `capacity` host verdicts and as many URL verdicts.
    pub fn new(capacity: NonZeroUsize) -> VerdictCache {
        VerdictCache {
            generation: 0,
            hosts: lru::LruCache::new(capacity),
            urls: lru::LruCache::new(capacity),
            hits: 0,
            misses: 0,
        }
    }

    /// Lookups answered from the cache, and those that were not.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    pub fn len(&self) -> usize {
        self.hosts.len() + self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.urls.is_empty()
    }
}

impl fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictCache")
            .field("len", &self.len())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod real_feeds;

#[cfg(test)]
mod proptests;
