//! The matching engine: compiled rules, a per-worker [`Matcher`] and per-flow
//! [`FlowDetectState`], and the EVE `alert` object.
//!
//! Compile once ([`CompiledRules::new`], immutable, `Send + Sync`, shared behind an `Arc` and
//! swapped on reload); each worker owns a [`Matcher`]; each flow owns a [`FlowDetectState`].
//! The caller feeds three kinds of input, as Suricata inspects them:
//!
//! * every packet ([`Matcher::inspect_packet`]): header-only rules, IP-only rules (once per
//!   flow direction), packet-payload rules (`tcp-pkt`, UDP, ICMP, `dsize`, ...), and TCP payload
//!   rules when the packet's bytes will not reach stream inspection;
//! * reassembled TCP bytes per direction as they are delivered ([`Matcher::inspect_stream`]):
//!   TCP payload rules, matching across segment boundaries;
//! * application-layer transactions ([`Matcher::inspect_tx`]): rules on named buffers
//!   (`http.uri`, `dns.query`, ...), at most one alert per rule per transaction.
//!
//! Candidates come from a Hyperscan prefilter per buffer on each rule's fast pattern (chosen as
//! Suricata chooses it); rules without a usable literal are always checked. Every candidate is
//! then verified exactly, in Suricata's rule order.
//!
//! What Weir does not evaluate makes a rule *unsupported* (never matches, listed in
//! [`CompileReport::unsupported`]): `xbits`, `flowint`, `stream_size`, `filesize`, file hash
//! lists, `base64_decode`, `dce` byte options, the `from_base64`/`pcrexform`/hash transforms,
//! and kept-as-written keywords other than `requires`, `prefilter`, `bypass`, `tag`, `config`,
//! `replace`, `sameip`. Thresholds are tracked per [`Matcher`], so per worker thread.
//!
//! ```
//! use std::path::Path;
//! use weir_core::{Direction, FlowKey, IpProto, Timestamp, Vlans};
//! use weir_detect::engine::{CompiledRules, FlowDetectState, Matcher, PacketView, TxView};
//! use weir_detect::rules::{Classification, Vars, load_rules_from_str};
//!
//! let text = r#"alert http any any -> any any (msg:"admin"; http.uri; content:"/admin"; sid:1;)"#;
//! let report = load_rules_from_str(text, Path::new("inline"), &Vars::default(), &Classification::default());
//! let rules = std::sync::Arc::new(CompiledRules::new(report.rules));
//! let mut matcher = Matcher::new(&rules).expect("scratch");
//! let mut flow = FlowDetectState::new();
//! let key = FlowKey {
//!     src_ip: "10.0.0.1".parse().unwrap(),
//!     dst_ip: "10.0.0.2".parse().unwrap(),
//!     src_port: 40000,
//!     dst_port: 80,
//!     proto: IpProto::TCP,
//!     vlans: Vlans::default(),
//!     tunnel_depth: 0,
//! };
//! let mut pkt = PacketView::new(Timestamp::ZERO, key, b"");
//! pkt.direction = Some(Direction::ToServer);
//! pkt.established = true;
//! pkt.app_proto = Some("http");
//! let buffers: &[(&str, &[u8])] = &[("http.uri", b"/admin/login")];
//! let tx = TxView { tx_id: 0, direction: Direction::ToServer, buffers };
//! let mut alerts = Vec::new();
//! matcher.inspect_tx(&rules, &mut flow, &pkt, &tx, &mut alerts);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(rules.eve_alert(&alerts[0])["signature"], "admin");
//! ```

mod compile;
mod inspect;
mod iponly;
mod threshold;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyperscan::prelude::{BlockDatabase, Builder, Matching, Pattern, Patterns, Scratch};
use serde_json::{Map, Value};
use weir_core::{Direction, FlowKey, IpProto, Timestamp};

use crate::rules::{
    AddressExpr, Classification, Detection, FlowbitCmd, PortExpr, Protocol, Rule, RuleDirection,
};
use compile::{CompiledRule, RuleKind};
use inspect::{ChainRun, MAX_VARS};

pub use inspect::MAX_INSPECTION_STEPS;
pub use threshold::{MAX_THRESHOLD_ENTRIES, MAX_UNIQUE_PORTS, Thresholds};

/// Most flowbits one flow holds; a `set` past it is ignored (and counted). Suricata has no
/// such limit, but a rule set that sets thousands of bits on one flow is hostile or broken.
pub const MAX_FLOWBITS_PER_FLOW: usize = 256;

/// Most transactions per flow whose alerted rules are remembered. Older ones are forgotten,
/// so a transaction re-inspected after that many newer ones could alert again.
pub const MAX_TRACKED_TXS: usize = 64;

/// Most rules remembered as alerted on one transaction.
pub const MAX_ALERTED_RULES_PER_TX: usize = 64;

/// Bytes of already-inspected stream kept per direction and re-inspected with the next chunk,
/// so a pattern split over two deliveries still matches. Patterns longer than this that span a
/// delivery boundary are missed. Suricata's default stream chunk size is 2560.
pub const STREAM_TAIL_BYTES: usize = 2560;

/// Most alerts one inspection produces. Suricata's `packet-alert-max` defaults to 15; Weir
/// allows more because a sensor should not silently drop alerts on a busy transaction, and the
/// cap exists only to bound a pathological rule set. Rules are evaluated in priority order, so
/// the ones kept are the most important; the rest are counted.
pub const MAX_ALERTS_PER_INSPECTION: usize = 64;

/// The prefilter database of payload rules that inspect packets only (not the stream).
const PACKET_ONLY_PAYLOAD: &str = "pkt_data (packet rules)";

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// TCP header fields rules test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpView {
    /// The 8 flag bits as in the header (FIN = 0x01 ... CWR = 0x80).
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

/// ICMP (v4 or v6) header fields rules test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcmpView {
    pub icmp_type: u8,
    pub code: u8,
    /// Identifier and sequence of echo messages.
    pub echo: Option<(u16, u16)>,
}

/// What the matcher needs of one packet. Borrowed from the caller for one call.
#[derive(Debug, Clone)]
pub struct PacketView<'a> {
    pub ts: Timestamp,
    /// Oriented as this packet travels. For ICMP, ports hold type and code (weir-core's
    /// convention); rules with port expressions never match port-less protocols.
    pub key: FlowKey,
    /// Relative to the flow; `None` when the packet has no flow (fragments, no flow table).
    pub direction: Option<Direction>,
    /// The flow saw its handshake (TCP) or traffic both ways (UDP).
    pub established: bool,
    /// The flow's application protocol by Suricata's name (`http`, `tls`, `failed`), once known.
    pub app_proto: Option<&'a str>,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification (IPv6: from the fragment header, else 0).
    pub ip_id: u32,
    pub tcp: Option<TcpView>,
    pub icmp: Option<IcmpView>,
    /// Bytes after the transport header.
    pub payload: &'a [u8],
    /// This packet's payload will reach [`Matcher::inspect_stream`] through reassembly, so TCP
    /// payload rules skip the packet and inspect the stream instead (Suricata's stream
    /// inspection). False before the handshake completes, for non-TCP, or without reassembly.
    pub payload_in_stream: bool,
    /// The datagram was rebuilt from fragments.
    pub defragmented: bool,
}

impl<'a> PacketView<'a> {
    /// A packet with no flow, no transport details and the given payload; set the rest by field.
    pub fn new(ts: Timestamp, key: FlowKey, payload: &'a [u8]) -> PacketView<'a> {
        PacketView {
            ts,
            key,
            direction: None,
            established: false,
            app_proto: None,
            ttl: 64,
            ip_id: 0,
            tcp: None,
            icmp: None,
            payload,
            payload_in_stream: false,
            defragmented: false,
        }
    }
}

/// One application-layer transaction's buffers in the direction just parsed.
#[derive(Debug, Clone, Copy)]
pub struct TxView<'a> {
    pub tx_id: u64,
    /// Which side's data this inspection is for (decides `flow:to_server` and the like).
    pub direction: Direction,
    /// Buffers by the rules module's names (`http.uri`, `dns.query`, `file.data`, ...). A
    /// name may repeat (several DNS queries, several files): a rule matches if any instance
    /// does. Buffers of the other direction may be included for rules that need both. A rule's
    /// `pkt_data` matches run on a `pkt_data` entry when given, else on the packet's payload.
    pub buffers: &'a [(&'a str, &'a [u8])],
}

/// Which input produced an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSource {
    Packet,
    Stream,
    Tx(u64),
}

/// One alert. The rule's metadata is in [`CompiledRules::rule`]; the EVE object in
/// [`CompiledRules::eve_alert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Index of the rule in its [`CompiledRules`] (valid for that rule set only).
    pub rule_index: usize,
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub source: AlertSource,
}

/// What compilation did with the rules, for logs and `rules check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileReport {
    pub rules: usize,
    /// Rules reached through a fast pattern.
    pub prefiltered: usize,
    /// Rules checked on every relevant input (no usable literal).
    pub always_checked: usize,
    /// IP-only rules (checked once per flow direction).
    pub ip_only: usize,
    /// Distinct fast patterns over all buffers.
    pub prefilter_patterns: usize,
    /// Bytes of all Hyperscan prefilter databases.
    pub prefilter_bytes: usize,
    /// Rules that can never match in Weir, with the keyword that stops them: `(gid, sid, why)`.
    pub unsupported: Vec<(u32, u32, String)>,
    /// Buffers whose prefilter database failed to build (their rules are always checked).
    pub prefilter_failures: Vec<String>,
}

/// Fast patterns of one buffer being collected: `(bytes, nocase)` and the rules behind each.
type PatternGroup = (Vec<(Vec<u8>, bool)>, Vec<Vec<u32>>);

/// One buffer's prefilter: a Hyperscan database of fast patterns and the rules behind each.
struct Prefilter {
    db: Option<BlockDatabase>,
    rules_by_pattern: Vec<Vec<u32>>,
    /// Every rule with its fast pattern here, used when a scan fails.
    all_rules: Vec<u32>,
}

/// An immutable, compiled rule set. `Send + Sync`: share it behind an `Arc`.
pub struct CompiledRules {
    rules: Vec<CompiledRule>,
    prefilters: HashMap<&'static str, Prefilter>,
    /// Packet-context rules without a fast pattern (header-only rules included).
    always_packet: Vec<u32>,
    /// TCP payload rules without a fast pattern (stream, or packet when no stream).
    always_payload: Vec<u32>,
    always_tx: Vec<u32>,
    ip_only: iponly::IpOnlyIndex,
    class_descriptions: HashMap<String, String>,
    generation: u64,
    report: CompileReport,
}

impl std::fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRules")
            .field("generation", &self.generation)
            .field("report", &self.report)
            .finish()
    }
}

fn hyperscan_expression(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        s.push_str(&format!("\\x{b:02x}"));
    }
    s
}

impl CompiledRules {
    /// Compiles with Weir's built-in classification table (for `category` in EVE).
    pub fn new(rules: Vec<Rule>) -> CompiledRules {
        CompiledRules::with_classification(rules, &Classification::default())
    }

    /// Compiles; `classification` supplies the `category` text of EVE alerts.
    pub fn with_classification(rules: Vec<Rule>, classification: &Classification) -> CompiledRules {
        let mut interner = HashMap::new();
        let mut compiled: Vec<CompiledRule> = rules
            .into_iter()
            .map(|r| CompiledRule::new(r, &mut interner))
            .collect();
        // Stable: equal keys keep load order.
        compiled.sort_by_key(CompiledRule::order_key);
        let mut report = CompileReport {
            rules: compiled.len(),
            ..CompileReport::default()
        };
        let mut class_descriptions = HashMap::new();
        let mut by_buffer: HashMap<&'static str, PatternGroup> = HashMap::new();
        let (mut always_packet, mut always_payload, mut always_tx) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut ip_only = iponly::IpOnlyIndex::default();
        for (index, cr) in compiled.iter().enumerate() {
            let index = index as u32;
            if let Some(class) = &cr.rule.classtype
                && let Some(t) = classification.get(class)
            {
                class_descriptions.insert(class.clone(), t.description.clone());
            }
            if let Some(why) = &cr.unsupported {
                report
                    .unsupported
                    .push((cr.rule.gid, cr.rule.sid, why.clone()));
                continue;
            }
            if cr.kind == RuleKind::IpOnly {
                ip_only.add(
                    index,
                    &cr.rule.src_addr,
                    &cr.rule.dst_addr,
                    cr.rule.direction,
                );
                report.ip_only += 1;
                continue;
            }
            match &cr.fast_pattern {
                Some(fp) => {
                    let key = (fp.bytes.clone(), fp.nocase);
                    // Packet-only payload rules also get a database of their own, scanned
                    // when a packet's payload goes to the stream anyway (which is scanned
                    // with the full one), so TCP payload is not scanned twice for every rule.
                    let also_packet_only = fp.buffer == "pkt_data" && cr.kind == RuleKind::Packet;
                    let buffers: &[&'static str] =
                        if also_packet_only { &[fp.buffer, PACKET_ONLY_PAYLOAD] } else { std::slice::from_ref(&fp.buffer) };
                    for &buffer in buffers {
                        let (patterns, rules) = by_buffer.entry(buffer).or_default();
                        match patterns.iter().position(|p| *p == key) {
                            Some(i) => rules[i].push(index),
                            None => {
                                patterns.push(key.clone());
                                rules.push(vec![index]);
                            }
                        }
                    }
                    report.prefiltered += 1;
                }
                None => {
                    report.always_checked += 1;
                    match cr.kind {
                        RuleKind::Tx => always_tx.push(index),
                        RuleKind::StreamPreferred | RuleKind::StreamOnly => {
                            always_payload.push(index)
                        }
                        _ => always_packet.push(index),
                    }
                }
            }
        }
        ip_only.finish();
        let mut prefilters = HashMap::new();
        for (buffer, (patterns, rules_by_pattern)) in by_buffer {
            report.prefilter_patterns += patterns.len();
            let all_rules: Vec<u32> = {
                let mut v: Vec<u32> = rules_by_pattern.iter().flatten().copied().collect();
                v.sort_unstable();
                v
            };
            let built: Result<BlockDatabase, String> = patterns
                .iter()
                .enumerate()
                .map(|(id, (bytes, nocase))| {
                    let mut p = Pattern::new(hyperscan_expression(bytes))
                        .map_err(|e| e.to_string())?
                        .single_match();
                    if *nocase {
                        p = p.caseless();
                    }
                    p.id = Some(id);
                    Ok(p)
                })
                .collect::<Result<Vec<Pattern>, String>>()
                .and_then(|ps| Patterns(ps).build().map_err(|e| e.to_string()));
            let db = match built {
                Ok(db) => {
                    report.prefilter_bytes += db.size().unwrap_or(0);
                    Some(db)
                }
                Err(e) => {
                    report.prefilter_failures.push(format!("{buffer}: {e}"));
                    None
                }
            };
            prefilters.insert(
                buffer,
                Prefilter {
                    db,
                    rules_by_pattern,
                    all_rules,
                },
            );
        }
        CompiledRules {
            rules: compiled,
            prefilters,
            always_packet,
            always_payload,
            always_tx,
            ip_only,
            class_descriptions,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            report,
        }
    }

    pub fn report(&self) -> &CompileReport {
        &self.report
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule behind an alert's `rule_index`.
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index).map(|r| &r.rule)
    }

    /// The EVE `alert` object as Suricata 8 writes it in IDS mode: `action`, `gid`,
    /// `signature_id`, `rev`, `signature`, `category`, `severity`, then `metadata` (each key to
    /// the list of its values) when the rule has any.
    pub fn eve_alert(&self, alert: &Alert) -> Map<String, Value> {
        let mut o = Map::new();
        let Some(rule) = self.rule(alert.rule_index) else {
            return o;
        };
        // A passive sensor never blocks: Suricata in IDS mode logs drop rules as allowed too.
        o.insert("action".into(), Value::from("allowed"));
        o.insert("gid".into(), Value::from(rule.gid));
        o.insert("signature_id".into(), Value::from(rule.sid));
        o.insert("rev".into(), Value::from(rule.rev));
        o.insert("signature".into(), Value::from(rule.msg.as_str()));
        let category = rule
            .classtype
            .as_ref()
            .and_then(|c| self.class_descriptions.get(c))
            .map(String::as_str)
            .unwrap_or("");
        o.insert("category".into(), Value::from(category));
        o.insert("severity".into(), Value::from(rule.priority));
        if !rule.metadata.is_empty() {
            let mut meta = Map::new();
            for (k, v) in &rule.metadata {
                let entry = meta
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = entry {
                    values.push(Value::from(v.as_str()));
                }
            }
            o.insert("metadata".into(), Value::Object(meta));
        }
        o
    }
}

/// Per-direction stream inspection progress.
#[derive(Debug, Default, Clone)]
struct StreamProgress {
    /// The last inspected bytes, re-inspected with the next delivery.
    tail: Vec<u8>,
    /// Stream offset just past the last delivered byte.
    offset: u64,
}

/// Per-flow detection state, owned by the caller's flow entry. Bounded: at most
/// [`MAX_FLOWBITS_PER_FLOW`] bits, [`MAX_TRACKED_TXS`] transactions, [`STREAM_TAIL_BYTES`] per
/// direction.
#[derive(Debug, Default, Clone)]
pub struct FlowDetectState {
    flowbits: Vec<Arc<str>>,
    /// `(tx_id, direction index)` to the `(gid, sid)` of rules that matched on it.
    tx_alerted: VecDeque<(u64, Vec<(u32, u32)>)>,
    stream: [StreamProgress; 2],
    ip_only_done: [bool; 2],
    /// Bit sets that were refused for lack of room.
    pub flowbits_dropped: u64,
}

impl FlowDetectState {
    pub fn new() -> FlowDetectState {
        FlowDetectState::default()
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.flowbits.iter().any(|b| &**b == name)
    }

    /// `len` stream bytes in `direction` were never seen: what follows does not continue what
    /// came before.
    pub fn stream_gap(&mut self, direction: Direction, len: u64) {
        let s = &mut self.stream[direction.index()];
        s.tail.clear();
        s.offset = s.offset.saturating_add(len);
    }

    fn set_bit(&mut self, name: &Arc<str>) {
        if self.is_set(name) {
            return;
        }
        if self.flowbits.len() >= MAX_FLOWBITS_PER_FLOW {
            self.flowbits_dropped += 1;
            return;
        }
        self.flowbits.push(name.clone());
    }

    fn unset_bit(&mut self, name: &str) {
        self.flowbits.retain(|b| &**b != name);
    }

    fn tx_matched(&self, tx_id: u64, gid: u32, sid: u32) -> bool {
        self.tx_alerted
            .iter()
            .any(|(id, rules)| *id == tx_id && rules.contains(&(gid, sid)))
    }

    fn remember_tx_match(&mut self, tx_id: u64, gid: u32, sid: u32) {
        if let Some((_, rules)) = self.tx_alerted.iter_mut().find(|(id, _)| *id == tx_id) {
            if rules.len() < MAX_ALERTED_RULES_PER_TX {
                rules.push((gid, sid));
            }
            return;
        }
        if self.tx_alerted.len() >= MAX_TRACKED_TXS {
            self.tx_alerted.pop_front();
        }
        self.tx_alerted.push_back((tx_id, vec![(gid, sid)]));
    }
}

/// Counters a matcher keeps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatcherStats {
    pub inspections: u64,
    pub candidates: u64,
    pub alerts: u64,
    /// Prefilter scans that failed (their rules were all checked instead).
    pub prefilter_errors: u64,
    /// Alerts beyond [`MAX_ALERTS_PER_INSPECTION`] that were dropped.
    pub alerts_dropped: u64,
}

/// Which input a rule is evaluated on.
#[derive(Clone, Copy)]
enum Context<'a> {
    Packet,
    Stream {
        window: &'a [u8],
        base: u64,
        min_end: usize,
    },
    Tx(&'a TxView<'a>),
}

/// Per-worker matching state: Hyperscan scratch, reusable buffers, threshold tables. `Send`,
/// not shared: one per worker thread.
pub struct Matcher {
    scratch: Option<Scratch>,
    generation: u64,
    mark: Vec<u32>,
    epoch: u32,
    candidates: Vec<u32>,
    hits: Vec<u32>,
    window: Vec<u8>,
    transformed: Vec<u8>,
    vars: [i64; MAX_VARS],
    thresholds: Thresholds,
    stats: MatcherStats,
    /// Tests: evaluate every rule, bypassing the prefilter, to check it loses nothing.
    #[cfg(test)]
    pub(crate) force_all: bool,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("generation", &self.generation)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The matcher could not prepare Hyperscan scratch space.
#[derive(Debug, thiserror::Error)]
#[error("cannot allocate Hyperscan scratch for the {buffer} prefilter: {reason}")]
pub struct ScratchError {
    pub buffer: String,
    pub reason: String,
}

impl Matcher {
    pub fn new(rules: &CompiledRules) -> Result<Matcher, ScratchError> {
        let mut m = Matcher {
            scratch: None,
            generation: 0,
            mark: Vec::new(),
            epoch: 0,
            candidates: Vec::new(),
            hits: Vec::new(),
            window: Vec::new(),
            transformed: Vec::new(),
            vars: [0; MAX_VARS],
            thresholds: Thresholds::default(),
            stats: MatcherStats::default(),
            #[cfg(test)]
            force_all: false,
        };
        m.prepare(rules)?;
        Ok(m)
    }

    pub fn stats(&self) -> MatcherStats {
        self.stats
    }

    /// Bytes of Hyperscan scratch this matcher holds (one per worker).
    pub fn scratch_bytes(&self) -> usize {
        self.scratch
            .as_ref()
            .and_then(|s| s.size().ok())
            .unwrap_or(0)
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Readies scratch space for `rules` (after a reload); cheap when already done.
    /// Readies scratch space for `rules` (after a reload); cheap when already done. On error
    /// the matcher still works for `rules`, checking every prefiltered rule (slower, same
    /// answers); the error is reported once per rule set.
    pub fn prepare(&mut self, rules: &CompiledRules) -> Result<(), ScratchError> {
        if self.generation == rules.generation {
            return Ok(());
        }
        self.mark = vec![0; rules.rules.len()];
        self.epoch = 0;
        self.generation = rules.generation;
        self.scratch = None;
        let mut scratch: Option<Scratch> = None;
        for (buffer, p) in &rules.prefilters {
            let Some(db) = &p.db else { continue };
            let error = |e: hyperscan::Error| ScratchError {
                buffer: buffer.to_string(),
                reason: e.to_string(),
            };
            match scratch.as_mut() {
                Some(s) => {
                    db.realloc_scratch(s).map_err(error)?;
                }
                None => scratch = Some(db.alloc_scratch().map_err(error)?),
            }
        }
        self.scratch = scratch;
        Ok(())
    }

    fn begin(&mut self) {
        self.candidates.clear();
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
        self.stats.inspections += 1;
    }

    fn add(&mut self, index: u32) {
        if let Some(m) = self.mark.get_mut(index as usize)
            && *m != self.epoch
        {
            *m = self.epoch;
            self.candidates.push(index);
        }
    }

    /// Adds the rules whose fast pattern in `buffer` occurs in `data`.
    fn prefilter(&mut self, rules: &CompiledRules, buffer: &str, data: &[u8]) {
        let Some(p) = rules.prefilters.get(buffer) else {
            return;
        };
        self.hits.clear();
        let scanned = match (&p.db, &self.scratch) {
            (Some(db), Some(scratch)) if u32::try_from(data.len()).is_ok() => {
                let hits = &mut self.hits;
                db.scan(data, scratch, |id, _, _, _| {
                    hits.push(id);
                    Matching::Continue
                })
                .is_ok()
            }
            _ => false,
        };
        if !scanned {
            self.stats.prefilter_errors += 1;
            for &r in &p.all_rules {
                self.add(r);
            }
            return;
        }
        let hits = std::mem::take(&mut self.hits);
        for &id in &hits {
            if let Some(list) = p.rules_by_pattern.get(id as usize) {
                for &r in list {
                    self.add(r);
                }
            }
        }
        self.hits = hits;
    }

    /// Inspects one packet: header rules, IP-only rules (first packet of each flow direction
    /// when `flow` is given), and payload rules that inspect packets.
    pub fn inspect_packet(
        &mut self,
        rules: &CompiledRules,
        mut flow: Option<&mut FlowDetectState>,
        pkt: &PacketView<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        // Without scratch every prefiltered rule is checked: slower, same answers.
        let _ = self.prepare(rules);
        self.begin();
        if !pkt.payload.is_empty() {
            // A payload that reaches the stream is scanned there for stream rules; here only
            // packet rules need it.
            let buffer = if pkt.payload_in_stream { PACKET_ONLY_PAYLOAD } else { "pkt_data" };
            self.prefilter(rules, buffer, pkt.payload);
        }
        for &r in &rules.always_packet {
            self.add(r);
        }
        if !pkt.payload_in_stream {
            for &r in &rules.always_payload {
                self.add(r);
            }
        }
        let ip_only_due = match (&mut flow, pkt.direction) {
            (Some(f), Some(d)) => !std::mem::replace(&mut f.ip_only_done[d.index()], true),
            _ => true,
        };
        if ip_only_due {
            let mut due = std::mem::take(&mut self.hits);
            due.clear();
            rules.ip_only.candidates(&pkt.key, |r| due.push(r));
            for &r in &due {
                self.add(r);
            }
            self.hits = due;
        }
        self.run(rules, flow, pkt, Context::Packet, alerts);
    }

    /// Inspects newly reassembled bytes of one direction (`pkt.direction`, to-server when
    /// unset), together with the end of what came before so patterns spanning deliveries match.
    pub fn inspect_stream(
        &mut self,
        rules: &CompiledRules,
        flow: &mut FlowDetectState,
        pkt: &PacketView<'_>,
        data: &[u8],
        alerts: &mut Vec<Alert>,
    ) {
        let _ = self.prepare(rules);
        if data.is_empty() {
            return;
        }
        let dir = pkt.direction.unwrap_or(Direction::ToServer).index();
        let mut window = std::mem::take(&mut self.window);
        window.clear();
        let progress = &mut flow.stream[dir];
        window.extend_from_slice(&progress.tail);
        window.extend_from_slice(data);
        let min_end = progress.tail.len();
        let base = progress.offset.saturating_sub(min_end as u64);
        progress.offset = progress.offset.saturating_add(data.len() as u64);
        let keep = window.len().min(STREAM_TAIL_BYTES);
        progress.tail.clear();
        progress
            .tail
            .extend_from_slice(&window[window.len() - keep..]);

        self.begin();
        self.prefilter(rules, "pkt_data", &window);
        for &r in &rules.always_payload {
            self.add(r);
        }
        self.run(
            rules,
            Some(flow),
            pkt,
            Context::Stream {
                window: &window,
                base,
                min_end,
            },
            alerts,
        );
        self.window = window;
    }

    /// Inspects one transaction's buffers. A rule alerts at most once per transaction, however
    /// often the transaction is inspected as it grows.
    pub fn inspect_tx(
        &mut self,
        rules: &CompiledRules,
        flow: &mut FlowDetectState,
        pkt: &PacketView<'_>,
        tx: &TxView<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        let _ = self.prepare(rules);
        self.begin();
        for (name, data) in tx.buffers {
            self.prefilter(rules, name, data);
        }
        if !pkt.payload.is_empty() && !tx.buffers.iter().any(|(n, _)| *n == "pkt_data") {
            self.prefilter(rules, "pkt_data", pkt.payload);
        }
        for &r in &rules.always_tx {
            self.add(r);
        }
        self.run(rules, Some(flow), pkt, Context::Tx(tx), alerts);
    }

    fn run(
        &mut self,
        rules: &CompiledRules,
        mut flow: Option<&mut FlowDetectState>,
        pkt: &PacketView<'_>,
        ctx: Context<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        let mut candidates = std::mem::take(&mut self.candidates);
        #[cfg(test)]
        if self.force_all {
            candidates = (0..rules.rules.len() as u32).collect();
        }
        candidates.sort_unstable();
        self.stats.candidates += candidates.len() as u64;
        let mut produced = 0usize;
        for &index in &candidates {
            let Some(cr) = rules.rules.get(index as usize) else {
                continue;
            };
            if !kind_fits(cr.kind, ctx, pkt) {
                continue;
            }
            if let (Context::Tx(tx), Some(side)) = (ctx, cr.tx_side)
                && tx.direction != side
            {
                continue;
            }
            if let (Context::Tx(tx), Some(f)) = (ctx, flow.as_deref())
                && f.tx_matched(tx.tx_id, cr.rule.gid, cr.rule.sid)
            {
                continue;
            }
            if !self.evaluate(cr, ctx, pkt, flow.as_deref()) {
                continue;
            }
            if let Some(f) = flow.as_deref_mut() {
                apply_bit_actions(cr, f);
                if let Context::Tx(tx) = ctx {
                    f.remember_tx_match(tx.tx_id, cr.rule.gid, cr.rule.sid);
                }
            }
            if cr.rule.action == crate::rules::Action::Pass {
                // A matching pass rule ends inspection of this input (pass rules sort first).
                break;
            }
            if cr.rule.noalert {
                continue;
            }
            if let Some(df) = &cr.rule.detection_filter
                && !self
                    .thresholds
                    .detection_filter(cr.rule.gid, cr.rule.sid, df, &pkt.key, pkt.ts)
            {
                continue;
            }
            if let Some(t) = &cr.rule.threshold
                && !self
                    .thresholds
                    .threshold(cr.rule.gid, cr.rule.sid, t, &pkt.key, pkt.ts)
            {
                continue;
            }
            if produced >= MAX_ALERTS_PER_INSPECTION {
                self.stats.alerts_dropped += 1;
                continue;
            }
            produced += 1;
            self.stats.alerts += 1;
            alerts.push(Alert {
                rule_index: index as usize,
                gid: cr.rule.gid,
                sid: cr.rule.sid,
                rev: cr.rule.rev,
                source: match ctx {
                    Context::Packet => AlertSource::Packet,
                    Context::Stream { .. } => AlertSource::Stream,
                    Context::Tx(tx) => AlertSource::Tx(tx.tx_id),
                },
            });
        }
        candidates.clear();
        self.candidates = candidates;
    }

    /// Every condition and inspection chain of one rule on one input.
    fn evaluate(
        &mut self,
        cr: &CompiledRule,
        ctx: Context<'_>,
        pkt: &PacketView<'_>,
        flow: Option<&FlowDetectState>,
    ) -> bool {
        if cr.unsupported.is_some() {
            return false;
        }
        let direction = match ctx {
            Context::Tx(tx) => Some(tx.direction),
            _ => pkt.direction,
        };
        if !protocol_matches(&cr.rule, pkt)
            || !addresses_match(&cr.rule, &pkt.key)
            || !conditions_match(cr, ctx, pkt, direction)
            || !bits_match(cr, flow)
        {
            return false;
        }
        for chain in &cr.chains {
            let ok = match ctx {
                Context::Packet => {
                    chain.buffer == "pkt_data" && self.run_chain(chain, pkt.payload, 0, 0)
                }
                Context::Stream {
                    window,
                    base,
                    min_end,
                } => chain.buffer == "pkt_data" && self.run_chain(chain, window, base, min_end),
                Context::Tx(tx) => {
                    let mut any = false;
                    let mut present = false;
                    for (name, data) in tx.buffers {
                        if *name == chain.buffer {
                            present = true;
                            if self.run_chain(chain, data, 0, 0) {
                                any = true;
                                break;
                            }
                        }
                    }
                    // A payload match in a transaction rule runs on the packet at hand unless
                    // the caller supplied a `pkt_data` buffer.
                    if !present && chain.buffer == "pkt_data" {
                        any = self.run_chain(chain, pkt.payload, 0, 0);
                    }
                    any
                }
            };
            if !ok {
                return false;
            }
        }
        if let Context::Tx(tx) = ctx {
            for d in &cr.rule.conditions {
                if let Detection::Urilen { cmp, raw } = d {
                    let name = if *raw { "http.uri.raw" } else { "http.uri" };
                    let ok = tx
                        .buffers
                        .iter()
                        .any(|(n, data)| *n == name && cmp.matches(data.len() as u64));
                    if !ok {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn run_chain(
        &mut self,
        chain: &compile::Chain,
        data: &[u8],
        base: u64,
        min_end: usize,
    ) -> bool {
        let mut transformed = std::mem::take(&mut self.transformed);
        let buf: &[u8] = if chain.transforms.is_empty() {
            data
        } else {
            inspect::apply_transforms(data, &chain.transforms, &mut transformed);
            &transformed
        };
        let ok = ChainRun {
            buf,
            base,
            min_end: if chain.transforms.is_empty() {
                min_end
            } else {
                0
            },
            vars: &mut self.vars,
            budget: MAX_INSPECTION_STEPS,
        }
        .run(chain);
        self.transformed = transformed;
        ok
    }
}

/// Whether a rule of this kind is evaluated on this input.
fn kind_fits(kind: RuleKind, ctx: Context<'_>, pkt: &PacketView<'_>) -> bool {
    match (ctx, kind) {
        (Context::Packet, RuleKind::IpOnly | RuleKind::Packet) => true,
        (Context::Packet, RuleKind::StreamPreferred) => !pkt.payload_in_stream,
        (Context::Stream { .. }, RuleKind::StreamPreferred | RuleKind::StreamOnly) => true,
        (Context::Tx(_), RuleKind::Tx) => true,
        _ => false,
    }
}

fn protocol_matches(rule: &Rule, pkt: &PacketView<'_>) -> bool {
    let proto = pkt.key.proto;
    match rule.protocol {
        Protocol::Ip | Protocol::Pkthdr => true,
        Protocol::Tcp | Protocol::TcpPkt | Protocol::TcpStream => proto == IpProto::TCP,
        Protocol::Udp => proto == IpProto::UDP,
        // Suricata's `icmp` covers both versions.
        Protocol::Icmp => proto == IpProto::ICMP || proto == IpProto::ICMPV6,
        Protocol::Icmpv4 => proto == IpProto::ICMP,
        Protocol::Icmpv6 => proto == IpProto::ICMPV6,
        Protocol::Sctp => proto == IpProto::SCTP,
        Protocol::App(name) => app_proto_is(pkt.app_proto, name),
    }
}

fn app_proto_is(actual: Option<&str>, wanted: &str) -> bool {
    match actual {
        Some(a) => a == wanted || (wanted == "http" && (a == "http1" || a == "http2")),
        None => false,
    }
}

fn ports_match(expr: &PortExpr, port: u16, has_ports: bool) -> bool {
    match expr {
        PortExpr::Any => true,
        _ => has_ports && expr.contains(port),
    }
}

fn side_matches(addr: &AddressExpr, port: &PortExpr, ip: IpAddr, p: u16, has_ports: bool) -> bool {
    ports_match(port, p, has_ports) && addr.contains(ip)
}

fn addresses_match(rule: &Rule, key: &FlowKey) -> bool {
    let has_ports = key.proto.has_ports();
    let forward = side_matches(
        &rule.src_addr,
        &rule.src_port,
        key.src_ip,
        key.src_port,
        has_ports,
    ) && side_matches(
        &rule.dst_addr,
        &rule.dst_port,
        key.dst_ip,
        key.dst_port,
        has_ports,
    );
    match rule.direction {
        RuleDirection::ToDestination => forward,
        RuleDirection::Both | RuleDirection::Transactional => {
            forward
                || (side_matches(
                    &rule.src_addr,
                    &rule.src_port,
                    key.dst_ip,
                    key.dst_port,
                    has_ports,
                ) && side_matches(
                    &rule.dst_addr,
                    &rule.dst_port,
                    key.src_ip,
                    key.src_port,
                    has_ports,
                ))
        }
    }
}

fn tcp_flags_match(t: &crate::rules::TcpFlags, flags: u8) -> bool {
    let f = flags & !t.ignored;
    match t.modifier {
        None => f == t.flags,
        Some('+') => f & t.flags == t.flags,
        Some('*') => f & t.flags != 0,
        Some('!') => f & t.flags == 0,
        Some(_) => false,
    }
}

fn conditions_match(
    cr: &CompiledRule,
    ctx: Context<'_>,
    pkt: &PacketView<'_>,
    direction: Option<Direction>,
) -> bool {
    for d in &cr.rule.conditions {
        let ok = match d {
            Detection::Flow(f) => {
                let has_flow = direction.is_some();
                (f.direction.is_none() || f.direction == direction)
                    && (!f.established || (has_flow && pkt.established))
                    && (!f.not_established || (has_flow && !pkt.established))
                    && (!f.only_stream || matches!(ctx, Context::Stream { .. }))
                    && (!f.no_stream || matches!(ctx, Context::Packet))
                    && (!f.only_frag || pkt.defragmented)
                    && (!f.no_frag || !pkt.defragmented)
                    && (f.stateless
                        || has_flow
                        || (f.direction.is_none() && !f.established && !f.not_established))
            }
            Detection::AppLayerProtocol { name, negated } => match pkt.app_proto {
                Some(_) => app_proto_is(pkt.app_proto, name) != *negated,
                None => false,
            },
            Detection::Dsize(cmp) => {
                matches!(ctx, Context::Packet) && cmp.matches(pkt.payload.len() as u64)
            }
            Detection::Ttl(cmp) => cmp.matches(u64::from(pkt.ttl)),
            Detection::Itype(cmp) => pkt
                .icmp
                .is_some_and(|i| cmp.matches(u64::from(i.icmp_type))),
            Detection::Icode(cmp) => pkt.icmp.is_some_and(|i| cmp.matches(u64::from(i.code))),
            Detection::IcmpId(id) => pkt.icmp.and_then(|i| i.echo).is_some_and(|(i, _)| i == *id),
            Detection::IcmpSeq(seq) => pkt
                .icmp
                .and_then(|i| i.echo)
                .is_some_and(|(_, s)| s == *seq),
            Detection::IpId(id) => pkt.ip_id == u32::from(*id),
            Detection::IpProto { cmp } => cmp.matches(u64::from(pkt.key.proto.0)),
            Detection::Ack(v) => pkt.tcp.is_some_and(|t| t.ack == *v),
            Detection::Seq(v) => pkt.tcp.is_some_and(|t| t.seq == *v),
            Detection::Window { size, negated } => {
                pkt.tcp.is_some_and(|t| (t.window == *size) != *negated)
            }
            Detection::Flags(f) => pkt.tcp.is_some_and(|t| tcp_flags_match(f, t.flags)),
            Detection::Other(o) if o.keyword == "sameip" => pkt.key.src_ip == pkt.key.dst_ip,
            // Bits are tested separately; urilen with the tx buffers; the rest is either neutral
            // or made the rule unsupported at compile time.
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn bits_match(cr: &CompiledRule, flow: Option<&FlowDetectState>) -> bool {
    for b in &cr.bit_tests {
        let is_set = |name: &String| flow.is_some_and(|f| f.is_set(name));
        let set = if b.any_of {
            b.names.iter().any(is_set)
        } else {
            b.names.iter().all(is_set)
        };
        let ok = match b.cmd {
            FlowbitCmd::IsSet => set,
            // `isnotset:a|b` holds when any is unset; `isnotset:a&b` when all are.
            FlowbitCmd::IsNotSet => {
                if b.any_of {
                    b.names.iter().any(|n| !is_set(n))
                } else {
                    b.names.iter().all(|n| !is_set(n))
                }
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn apply_bit_actions(cr: &CompiledRule, flow: &mut FlowDetectState) {
    for b in &cr.bit_actions {
        for name in &b.names {
            let interned = cr
                .bit_names
                .iter()
                .find(|n| &***n == name.as_str())
                .cloned()
                .unwrap_or_else(|| Arc::from(name.as_str()));
            match b.cmd {
                FlowbitCmd::Set => flow.set_bit(&interned),
                FlowbitCmd::Unset => flow.unset_bit(name),
                FlowbitCmd::Toggle => {
                    if flow.is_set(name) {
                        flow.unset_bit(name);
                    } else {
                        flow.set_bit(&interned);
                    }
                }
                FlowbitCmd::IsSet | FlowbitCmd::IsNotSet => {}
            }
        }
    }
}
