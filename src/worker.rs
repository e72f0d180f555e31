//! The worker: owns one share of the flows and runs every per-packet stage over them with plain
//! function calls (decode, flow table, reassembly, app layer, detection), writing EVE records as
//! they come. One worker per thread; nothing here locks.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weir_core::eve::{self, FlowHeader, Record};
use weir_core::{Anomaly, AnomalyLayer, AppProto, Artifact, ArtifactContext, Direction, FlowKey, IpProto, StreamEvent, Timestamp};
use weir_decode::{Decoder, IcmpHeader, Packet, Transport};
use weir_detect::engine::{FlowDetectState, IcmpView, TcpView};
use weir_detect::reputation::{self, ReputationSet, Seen, VerdictCache};
use weir_extract::applayer::{AppLayer, AppLayerConfig, Detection, Sinks};
use weir_extract::ftp::{Expectation, ExpectationTable};
use weir_extract::files::FileSink;
use weir_extract::mailstore::MailSink;
use weir_extract::{AppEvent, Emit, ParserException};
use weir_flow::{ClosedFlow, EndReason, Flow, FlowHandle, FlowTable, Lifecycle};
use weir_reassembly::{StreamConfig, TcpSegment, TcpSession, TcpState};

use crate::detection::{Detector, PacketFacts, PacketSource, PendingAlert, TxProgress};
use crate::exception::{ExceptionCap, ExceptionPolicies, ExceptionPolicy, FlowExceptions};
use crate::output::EveWriter;
use crate::swap::{Licensed, Sets, SharedSets};

/// What the worker keeps per flow besides the flow table's counters.
#[derive(Default)]
pub struct FlowState {
    /// The TCP session, for TCP flows (boxed: most of a flow table's flows are not TCP, and a
    /// session is several hundred bytes).
    tcp: Option<Box<TcpSession>>,
    app: AppLayer,
    /// The flow's orientation was swapped since its first packet: the TCP session still counts
    /// "initiator" from the first packet's source.
    flipped: bool,
    detect: FlowDetectState,
    tx_progress: TxProgress,
    /// The flow's addresses are excluded from scanning: counted and logged, nothing more.
    excluded: bool,
    /// A cap's exception policy bypassed the flow: from then on its packets are counted, and
    /// nothing more (no reassembly, parsing or inspection); its flow record says so.
    bypassed: bool,
    /// A cap's exception policy passed the flow (`pass-flow`): it is still reassembled, parsed,
    /// extracted and logged, but no rule or reputation feed inspects it any more.
    passed: bool,
    /// The caps this flow met and the policies applied, for its flow record.
    exceptions: FlowExceptions,
    /// Reassembled bytes of each direction not inspected yet. Suricata inspects a direction's
    /// stream (and transactions) on the next packet travelling that way, or at flow end.
    stream_pending: [StreamQueue; 2],
}

impl FlowState {
    /// Whether rules and reputation feeds still look at this flow.
    fn inspected(&self) -> bool {
        !self.passed && !self.bypassed
    }

    /// `pass-flow`: inspection ends here, and the bytes queued for it are let go.
    fn pass(&mut self) {
        self.passed = true;
        self.stream_pending = Default::default();
    }

    /// `bypass`: what the session holds is let go unread, and the flow is neither reassembled
    /// nor parsed from here on (its session stays, for the flow record's `tcp` object).
    /// `stream_memory` is the worker's count of bytes all sessions hold.
    fn bypass(&mut self, cfg: &StreamConfig, stream_memory: &mut usize) {
        if let Some(session) = self.tcp.as_mut() {
            let held = session.memory_used();
            session.flush(cfg, &mut |_, _| {});
            *stream_memory = stream_memory.saturating_sub(held).saturating_add(session.memory_used());
        }
        self.bypassed = true;
    }
}

/// A direction's reassembled bytes awaiting inspection, with where gaps fell among them.
#[derive(Default)]
struct StreamQueue {
    /// Bytes of this direction queued so far over the flow's life, against the inspect depth.
    taken: u64,
    bytes: Vec<u8>,
    /// (offset into `bytes`, bytes missing there)
    gaps: Vec<(usize, u64)>,
}

impl StreamQueue {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.gaps.is_empty()
    }

    /// Inspects what is queued: each run between gaps on its own (no match spans a gap), and
    /// every alert logs the whole window, gaps written as Suricata writes them.
    fn inspect(
        &mut self,
        det: &mut Detector,
        facts: &PacketFacts<'_>,
        key: FlowKey,
        dir: Direction,
        detect: &mut FlowDetectState,
        pending: &mut Vec<PendingAlert>,
    ) {
        if self.is_empty() {
            return;
        }
        let first_new = pending.len();
        let mut start = 0;
        for &(at, len) in &self.gaps {
            if at > start {
                det.stream(facts, key, dir, &self.bytes[start..at], detect, pending);
            }
            detect.stream_gap(dir, len);
            start = at;
        }
        if start < self.bytes.len() {
            det.stream(facts, key, dir, &self.bytes[start..], detect, pending);
        }
        if !self.gaps.is_empty() && pending.len() > first_new {
            let mut shown = Vec::with_capacity(self.bytes.len() + 24 * self.gaps.len());
            let mut start = 0;
            for &(at, len) in &self.gaps {
                shown.extend_from_slice(&self.bytes[start..at]);
                shown.extend_from_slice(format!("[{len} bytes missing]").as_bytes());
                start = at;
            }
            shown.extend_from_slice(&self.bytes[start..]);
            for alert in &mut pending[first_new..] {
                alert.payload.clone_from(&shown);
            }
        }
        self.bytes.clear();
        if self.bytes.capacity() > 64 * 1024 {
            self.bytes = Vec::new();
        }
        self.gaps.clear();
    }
}

/// Stream bytes held per direction for inspection at the next packet of that direction; past
/// it they are inspected at once, so a long one-way transfer never grows the queue.
const MAX_PENDING_STREAM_BYTES: usize = 256 * 1024;
/// The EVE records the Central Node receives (SPEC.md section 7).
const CENTRAL_EVENT_TYPES: &[&str] = &["alert", "fileinfo", "smtp", "pop3", "imap", "sandbox"];

/// Packets between two collections of sandbox verdicts.
const SANDBOX_DRAIN_EVERY: u64 = 4096;

/// Recent reputation verdicts cached per worker.
const REPUTATION_CACHE_ENTRIES: usize = 65_536;

/// Gaps remembered in one queue; more inspect the queue at once.
const MAX_QUEUED_GAPS: usize = 64;

/// Packets between two looks at the shared sets' generation (one atomic load); a quiet link
/// looks at every idle tick too. A swap therefore reaches a busy worker within this many packets.
const RELOAD_CHECK_EVERY: u64 = 64;

/// Counters of a run, for the closing summary and `stats` records.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub packets: u64,
    pub bytes: u64,
    /// Decoded packets that belong to no flow (fragments before rebuilding, bad transport headers).
    pub packets_without_flow: u64,
    pub flows_logged: u64,
    pub alerts: u64,
    pub anomalies: BTreeMap<String, u64>,
    pub artifacts: u64,
    /// Sessions flushed early because all sessions together held more than `[stream] memcap`.
    pub stream_memcap_flushes: u64,
    /// Flows whose addresses are excluded from scanning, and artifacts excluded by host, URL,
    /// hash, type, mail address or user agent (not alerted on, dispatched or shipped).
    pub excluded_flows: u64,
    pub excluded_artifacts: u64,
    /// Times a cap was met, by `"<target>.<policy>"` (`"stream_memcap.bypass"`): the policy
    /// that was applied, `ignore` included.
    pub exception_policy: BTreeMap<String, u64>,
    /// App-layer parser errors by protocol (Suricata's `app_layer.error.<proto>`).
    pub app_layer_errors: BTreeMap<String, u64>,
}

impl WorkerStats {
    pub fn anomaly_total(&self) -> u64 {
        self.anomalies.values().sum()
    }

    /// Adds another worker's counters to these.
    pub fn absorb(&mut self, other: &WorkerStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.packets_without_flow += other.packets_without_flow;
        self.flows_logged += other.flows_logged;
        self.alerts += other.alerts;
        for (event, n) in &other.anomalies {
            *self.anomalies.entry(event.clone()).or_default() += n;
        }
        self.artifacts += other.artifacts;
        self.stream_memcap_flushes += other.stream_memcap_flushes;
        self.excluded_flows += other.excluded_flows;
        self.excluded_artifacts += other.excluded_artifacts;
        for (use_, n) in &other.exception_policy {
            *self.exception_policy.entry(use_.clone()).or_default() += n;
        }
        for (proto, n) in &other.app_layer_errors {
            *self.app_layer_errors.entry(proto.clone()).or_default() += n;
        }
    }
}

/// Which packets of a captured frame a worker takes. A tunnel's outer flow and the flows it
/// carries may belong to different workers: then one worker gets the frame's `OuterLayer` (the
/// packet carrying the tunnel, decoded no deeper) and another its `Inner` packets, so every flow
/// is kept, counted and logged by one worker alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramePart {
    Whole,
    /// Everything but the outermost packet carrying a tunnel. The frame is counted here.
    Inner,
    /// The outermost packet carrying a tunnel, and nothing inside it.
    OuterLayer,
}

/// The settings a worker runs with.
pub struct WorkerConfig {
    pub stream: StreamConfig,
    pub app: AppLayerConfig,
    /// Bytes all TCP sessions may hold together.
    pub stream_memcap: usize,
    /// Whether extracted files and messages are kept on disk (so they can be shipped).
    pub files_stored: bool,
    pub mails_stored: bool,
    /// Bytes of each direction's raw stream that rules inspect.
    pub inspect_depth: u64,
    pub exception_policies: ExceptionPolicies,
}

/// Everything the worker owns except the decoder, so the decoder's callback can borrow it.
struct Stages {
    cfg: WorkerConfig,
    flows: FlowTable<FlowState>,
    ended: Vec<ClosedFlow<FlowState>>,
    stats: WorkerStats,
    eve: EveWriter,
    files: Box<dyn FileSink + Send>,
    mails: Box<dyn MailSink + Send>,
    emit: Emit,
    detector: Option<Detector>,
    /// Alerts of the packet (or flow end) being handled, written with their flow afterwards.
    pending: Vec<PendingAlert>,
    /// Bytes held by all TCP sessions.
    stream_memory: usize,
    /// Ships alerts, file and mail records, files and messages to the Central Node (spooled on
    /// disk until it acknowledges them).
    central: Option<std::sync::Arc<weir_sensor_link::Link>>,
    /// Hands eligible files and URLs to the sandbox without waiting on it.
    sandbox: Option<std::sync::Arc<weir_sandbox_client::Dispatcher>>,
    /// Scan exclusions (SPEC.md section 7).
    exclusions: Option<std::sync::Arc<weir_detect::exclusions::ExclusionSet>>,
    /// What the license allows (sandbox dispatch); everything until a license says otherwise.
    licensed: Licensed,
    /// Reputation feeds and this worker's cache of recent verdicts.
    reputation: Option<(std::sync::Arc<ReputationSet>, VerdictCache)>,
    /// FTP data connections announced on control channels, for matching new flows.
    ftp_expect: ExpectationTable,
    /// Data flows bound to an announcement, by flow id, so later announcements reach them.
    ftp_data_flows: std::collections::HashMap<u64, FlowKey>,
    next_expectation_sweep: Timestamp,
    /// The first I/O error writing outputs; the run stops with it.
    io_error: Option<std::io::Error>,
    /// The number in the capture of the frame being handled.
    pcap_cnt: u64,
}

pub struct Worker {
    decoder: Decoder,
    stages: Stages,
    frame_anomalies: Vec<(Timestamp, Anomaly)>,
    /// The run's swappable sets and the snapshot this worker uses.
    shared: Option<SharedView>,
}

struct SharedView {
    shared: std::sync::Arc<SharedSets>,
    generation: u64,
    sets: std::sync::Arc<Sets>,
}

fn same<T>(a: Option<&std::sync::Arc<T>>, b: Option<&std::sync::Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl Worker {
    pub fn new(
        decoder: Decoder,
        flows: FlowTable<FlowState>,
        cfg: WorkerConfig,
        eve: EveWriter,
        files: Box<dyn FileSink + Send>,
        mails: Box<dyn MailSink + Send>,
        detector: Option<Detector>,
    ) -> Worker {
        Worker {
            decoder,
            stages: Stages {
                cfg,
                flows,
                ended: Vec::new(),
                stats: WorkerStats::default(),
                eve,
                files,
                mails,
                emit: Emit::default(),
                detector,
                pending: Vec::new(),
                stream_memory: 0,
                reputation: None,
                exclusions: None,
                licensed: Licensed::ALL,
                sandbox: None,
                central: None,
                ftp_expect: ExpectationTable::new(),
                ftp_data_flows: std::collections::HashMap::new(),
                next_expectation_sweep: Timestamp::ZERO,
                io_error: None,
                pcap_cnt: 0,
            },
            frame_anomalies: Vec::new(),
            shared: None,
        }
    }

    /// Uses the run's shared rules, feeds and exclusions from now on, and follows every later
    /// swap of them. Fails when the rule matcher cannot be prepared for the first set.
    pub fn set_shared(&mut self, shared: std::sync::Arc<SharedSets>) -> anyhow::Result<()> {
        let (generation, sets) = shared.load();
        self.take_sets(None, &sets)?;
        self.shared = Some(SharedView { shared, generation, sets });
        Ok(())
    }

    /// Takes a newer published snapshot, if any. Runs between packets, when no alert is pending
    /// (pending alerts name rules by their index in the set that raised them).
    fn follow_swaps(&mut self) {
        let Some(view) = &self.shared else { return };
        if view.shared.generation() == view.generation {
            return;
        }
        let (generation, sets) = view.shared.load();
        let old = view.sets.clone();
        if let Err(e) = self.take_sets(Some(&old), &sets) {
            eprintln!("weir: error: new rules not taken by a worker, it keeps the old ones: {e:#}");
        }
        self.shared = self.shared.take().map(|v| SharedView { generation, sets, ..v });
    }

    /// Replaces what changed between `old` and `new`. Exclusions and reputation apply to the next
    /// lookup (reputation with an empty verdict cache, as cached verdicts came from the old
    /// feeds). A new rule set gets a new matcher; each flow's detection state is kept, not reset:
    /// it names flowbits, alerted rules (gid, sid) and stream offsets, never positions in a rule
    /// set, so it stays valid for the new one, as Suricata keeps flow state across a rule reload.
    /// What the old set already decided is not redone: IP-only rules run once per flow direction
    /// and transactions already inspected are inspected again only when they grow, so new rules
    /// see those on new flows and new transactions. Thresholds start afresh with the matcher.
    fn take_sets(&mut self, old: Option<&Sets>, new: &Sets) -> anyhow::Result<()> {
        if old.is_none_or(|o| !same(o.reputation_in_use(), new.reputation_in_use())) {
            match new.reputation_in_use() {
                Some(set) => self.set_reputation(set.clone()),
                None => self.stages.reputation = None,
            }
        }
        let stages = &mut self.stages;
        if old.is_none_or(|o| !same(o.exclusions.as_ref(), new.exclusions.as_ref())) {
            stages.exclusions = new.exclusions.clone();
        }
        stages.licensed = new.licensed;
        if old.is_none_or(|o| !same(o.rules.as_ref(), new.rules.as_ref())) {
            // On failure the old matcher stays: the reloader prepared one already, so this is
            // a worker short of memory, not bad rules.
            stages.detector = new.rules.clone().map(Detector::new).transpose()?;
        }
        Ok(())
    }

    /// Runs one captured frame through every stage. `pcap_cnt` is the frame's number in the
    /// capture (from 1), which alerts carry as Suricata's `pcap_cnt`.
    pub fn process(&mut self, pcap_cnt: u64, ts: Timestamp, link: weir_core::LinkType, frame: &[u8]) -> std::io::Result<()> {
        self.process_part(pcap_cnt, ts, link, frame, FramePart::Whole)
    }

    /// Runs the `part` of a captured frame this worker owns (see [`FramePart`]).
    pub fn process_part(
        &mut self,
        pcap_cnt: u64,
        ts: Timestamp,
        link: weir_core::LinkType,
        frame: &[u8],
        part: FramePart,
    ) -> std::io::Result<()> {
        if self.stages.stats.packets.is_multiple_of(RELOAD_CHECK_EVERY) {
            self.follow_swaps();
        }
        let stages = &mut self.stages;
        stages.pcap_cnt = pcap_cnt;
        if part != FramePart::OuterLayer {
            // The frame counts once, where its inner packets go.
            stages.stats.packets += 1;
            stages.stats.bytes += frame.len() as u64;
        }
        let anomalies = &mut self.frame_anomalies;
        let on_packet = &mut |pkt: &Packet<'_>| {
            if part == FramePart::Inner && pkt.is_tunnel_outer && pkt.tunnel_depth == 0 {
                return;
            }
            stages.on_packet(pkt)
        };
        let on_anomaly = &mut |ts, a| anomalies.push((ts, a));
        match part {
            FramePart::OuterLayer => self.decoder.decode_outer_layer(ts, link, frame, on_packet, on_anomaly),
            _ => self.decoder.decode_with_anomalies(ts, link, frame, on_packet, on_anomaly),
        }
        for (ts, a) in self.frame_anomalies.drain(..) {
            stages.anomaly(ts, a, None);
        }
        stages.expire(ts);
        if stages.stats.packets % SANDBOX_DRAIN_EVERY == 0 {
            stages.drain_sandbox();
        }
        match stages.io_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Checks artifacts (URLs, hosts, files, messages) and flow addresses against these feeds.
    pub fn set_reputation(&mut self, set: std::sync::Arc<ReputationSet>) {
        let cache = VerdictCache::new(std::num::NonZeroUsize::new(REPUTATION_CACHE_ENTRIES).unwrap_or(std::num::NonZeroUsize::MIN));
        self.stages.reputation = Some((set, cache));
    }

    /// Ships what the Central Node takes (alerts, fileinfo and mail records, files, messages).
    /// Every worker shares the one link.
    pub fn set_central(&mut self, link: std::sync::Arc<weir_sensor_link::Link>) {
        self.stages.central = Some(link);
    }

    /// Hands files and URLs to the sandbox dispatcher every worker shares (its verdicts come back
    /// as EVE records, written by whichever worker collects them).
    pub fn set_sandbox(&mut self, dispatcher: std::sync::Arc<weir_sandbox_client::Dispatcher>) {
        self.stages.sandbox = Some(dispatcher);
    }

    /// Writes records that belong to the run rather than to a flow (sandbox verdicts collected at
    /// the end, `stats`), as this worker's own records are written (and shipped).
    pub fn write_run_records(&mut self, records: &[Record]) -> std::io::Result<()> {
        for record in records {
            self.stages.write(record);
        }
        self.stages.eve.flush()?;
        match self.stages.io_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Moves time on without a packet (a quiet live link), so idle flows still time out.
    pub fn advance(&mut self, now: Timestamp) -> std::io::Result<()> {
        self.follow_swaps();
        self.stages.expire(now);
        self.stages.eve.flush()?;
        match self.stages.io_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// End of capture: every flow is ended and logged, the verdicts already back written,
    /// outputs flushed. The shared sandbox and Central Node handles are let go, so whoever owns
    /// the run can wait for them once every worker is done.
    pub fn finish(&mut self) -> std::io::Result<()> {
        let stages = &mut self.stages;
        stages.flows.drain(EndReason::Shutdown, &mut stages.ended);
        stages.log_ended();
        stages.drain_sandbox();
        stages.sandbox = None;
        if let Some(e) = stages.io_error.take() {
            return Err(e);
        }
        stages.eve.flush()?;
        // Records written from here on (the run's last) still go to the Central Node.
        Ok(())
    }

    /// Lets go of this worker's handle on the Central Node link (after its last record).
    pub fn release_central(&mut self) {
        self.stages.central = None;
    }

    /// A copy of this worker's counters for the stats board.
    pub fn snapshot(&self) -> crate::stats::WorkerSnapshot {
        crate::stats::WorkerSnapshot {
            stats: self.stages.stats.clone(),
            eve: self.stages.eve.counts().clone(),
            flows_active: self.stages.flows.len() as u64,
            defrag: self.decoder.counters().defrag,
        }
    }

    pub fn stats(&self) -> &WorkerStats {
        &self.stages.stats
    }

    /// EVE records written so far, by event type.
    pub fn eve_counts(&self) -> &BTreeMap<String, u64> {
        self.stages.eve.counts()
    }
}

/// The flow's lifecycle as its TCP session sees it.
fn lifecycle_of(state: TcpState) -> Lifecycle {
    match state {
        TcpState::None | TcpState::SynSent | TcpState::SynRecv => Lifecycle::New,
        TcpState::TimeWait | TcpState::Closed => Lifecycle::Closed,
        _ => Lifecycle::Established,
    }
}

/// Event types Suricata logs with the addresses of the packet (or file data) direction; every
/// other record of a flow is written client to server.
fn oriented_by_direction(event_type: &str) -> bool {
    matches!(event_type, "dns" | "fileinfo" | "ftp_data")
}

/// A flow key as seen travelling in `dir`.
fn oriented(flow_key: FlowKey, dir: Direction) -> FlowKey {
    match dir {
        Direction::ToServer => flow_key,
        Direction::ToClient => flow_key.reversed(),
    }
}

impl Stages {
    fn on_packet(&mut self, pkt: &Packet<'_>) {
        let key = pkt.flow_key();
        for anomaly in pkt.anomalies.iter() {
            self.anomaly(pkt.ts, anomaly, key.as_ref());
        }
        let mut facts = PacketFacts {
            ts: pkt.ts,
            pcap_cnt: Some(self.pcap_cnt),
            ttl: pkt.ip.ttl,
            ip_id: pkt.ip.id,
            tcp: match pkt.transport {
                Transport::Tcp(ref t) => {
                    Some(TcpView { flags: (t.flags.0 & 0xff) as u8, seq: t.seq, ack: t.ack, window: t.window })
                }
                _ => None,
            },
            icmp: match pkt.transport {
                Transport::Icmp(ref i) => Some(IcmpView { icmp_type: i.icmp_type, code: i.code, echo: i.echo }),
                _ => None,
            },
            established: false,
            app_proto: None,
            frame: pkt.frame,
            link: pkt.link,
            tunnel: pkt.tunnel.map(|t| t.outer),
            defragmented: pkt.reassembled,
            source: PacketSource::Wire,
        };
        let Some(key) = key else {
            self.stats.packets_without_flow += 1;
            return;
        };
        if let Transport::Icmp(IcmpHeader { quoted: Some(q), .. }) = pkt.transport {
            // An ICMP error counts on the flow whose packet it quotes (as Suricata files it), in
            // the direction back toward that packet's sender.
            let quoted = FlowKey {
                src_ip: q.dst,
                dst_ip: q.src,
                src_port: q.dst_port,
                dst_port: q.src_port,
                proto: q.proto,
                vlans: key.vlans,
                tunnel_depth: key.tunnel_depth,
            };
            if self.flows.contains(&quoted) {
                let wire_len = u32::try_from(pkt.frame.len()).unwrap_or(u32::MAX);
                self.flow_for(&quoted, pkt.ts, wire_len);
                return;
            }
        }
        let wire_len = u32::try_from(pkt.frame.len()).unwrap_or(u32::MAX);
        let Some(mut handle) = self.flow_for(&key, pkt.ts, wire_len) else {
            // A full table refused the new flow (`[exception_policy] flow_table = "bypass"`).
            self.stats.packets_without_flow += 1;
            return;
        };
        if self.excluded(handle) || self.flows.get(handle).is_some_and(|f| f.state.bypassed) {
            // Excluded and bypassed traffic is counted in its flow record; it is not parsed,
            // extracted, inspected or alerted on.
            return;
        }
        self.check_addresses(handle);
        let mut in_stream = false;
        if !pkt.is_tunnel_outer {
            // The outer packet of a tunnel is counted on its flow; its payload is the inner
            // packet, which the decoder hands over next.
            match pkt.transport {
                Transport::Tcp(ref tcp) => {
                    let segment = TcpSegment {
                        ts: pkt.ts,
                        from_initiator: false, // set per flow in on_tcp
                        seq: tcp.seq,
                        ack: tcp.ack,
                        flags: (tcp.flags.0 & 0xff) as u8,
                        window: tcp.window,
                        wscale: tcp.options.window_scale,
                        timestamp: tcp.options.timestamps,
                        sack_permitted: tcp.options.sack_permitted,
                        payload: pkt.payload,
                    };
                    (handle, in_stream) = self.on_tcp(&key, handle, wire_len, segment, &facts);
                }
                Transport::Udp(_) if key.proto == IpProto::UDP => self.on_udp(handle, &key, pkt.payload, &facts),
                _ => {}
            }
        }
        if self.detector.is_none() {
            if let Some(flow) = self.flows.get_mut(handle) {
                flow.state.app.discard_finished();
            }
        }
        // Detection on this packet, with the flow as it stands after it: packet rules, then the
        // stream and transactions of the packet's direction. A passed flow is not inspected.
        if let (Some(detector), Some(flow)) =
            (self.detector.as_mut(), self.flows.get_mut(handle).filter(|f| f.state.inspected()))
        {
            facts.established = flow.lifecycle != Lifecycle::New;
            facts.app_proto = flow.app_proto;
            let dir = if flow.key.is_from_source(&key) { Direction::ToServer } else { Direction::ToClient };
            let FlowState { app, detect, tx_progress, stream_pending, .. } = &mut flow.state;
            detector.packet(&facts, key, Some(dir), pkt.payload, in_stream, Some(&mut *detect), &mut self.pending);
            stream_pending[dir.index()].inspect(detector, &facts, key, dir, detect, &mut self.pending);
            if key.proto == IpProto::TCP {
                detector.transactions(&facts, key, dir, app, tx_progress, detect, &mut self.pending);
            }
        }
        self.write_alerts(handle);
    }

    /// One TCP segment: through the flow's session, whose stream events go to detection and the
    /// app layer. Returns the flow (a new one after port reuse) and whether the segment's payload
    /// went into the stream.
    fn on_tcp(
        &mut self,
        key: &FlowKey,
        handle: FlowHandle,
        wire_len: u32,
        mut segment: TcpSegment<'_>,
        facts: &PacketFacts<'_>,
    ) -> (FlowHandle, bool) {
        let Stages { cfg, flows, emit, files, mails, stream_memory, stats, detector, pending, ftp_expect, ftp_data_flows, .. } =
            self;
        let mut sinks = Sinks { files: files.as_mut(), mails: mails.as_mut() };
        let Some(flow) = flows.get_mut(handle) else { return (handle, false) };
        let flow_id = flow.id;
        let dir = if flow.key.is_from_source(key) { Direction::ToServer } else { Direction::ToClient };
        let flow_key = flow.key;
        let mut stream_facts = *facts;
        stream_facts.app_proto = flow.app_proto;
        let state = &mut flow.state;
        segment.from_initiator = (dir == Direction::ToServer) != state.flipped;
        let session = state.tcp.get_or_insert_with(|| {
            let mut session = TcpSession::new();
            // The packet opening the session tells whose address is whose; the session picks
            // each direction's overlap policy by its receiving host (`[stream.host_os_policy]`).
            let (initiator, responder) =
                if segment.from_initiator { (key.src_ip, key.dst_ip) } else { (key.dst_ip, key.src_ip) };
            session.set_endpoints(&cfg.stream, initiator, responder);
            Box::new(session)
        });
        let policies = cfg.exception_policies;
        let mut inspected = !state.passed;
        // A midstream pickup is decided before its first segment is fed, so a bypass keeps even
        // those bytes from the parsers (a one-sided flow would deliver them at once).
        let mut discard = false;
        if session.picks_up_midstream(&cfg.stream, &segment) {
            match state.exceptions.meet(ExceptionCap::Midstream, &policies, &mut stats.exception_policy) {
                ExceptionPolicy::Ignore => {}
                ExceptionPolicy::PassFlow => {
                    // The session is new: nothing is queued for inspection yet.
                    state.passed = true;
                    inspected = false;
                }
                ExceptionPolicy::Bypass => discard = true,
            }
        }
        let FlowState { app, detect, stream_pending, .. } = state;
        let before = session.memory_used();
        let mut detection = Detection::default();
        let mut on_event = |d: Direction, ev: StreamEvent<'_>, facts: &mut PacketFacts<'_>| {
            if discard {
                return;
            }
            // Once detection found the flow backwards, the rest of this call's events are too.
            let d = if detection.reversed { d.opposite() } else { d };
            if cfg.app.ftp && app.is_undetected() && matches!(ev, StreamEvent::Data(b) if !b.is_empty()) {
                // A data connection is matched when its first bytes arrive: by then the control
                // channel's reply announcing it has been parsed (it was ACKed first).
                let client_to_server = if detection.reversed { flow_key.reversed() } else { flow_key };
                if let Some((_, exp)) = ftp_expect.match_flow(&client_to_server, flow_id, segment.ts) {
                    app.start_ftp_data(exp, segment.ts, &mut sinks, emit);
                    ftp_data_flows.insert(flow_id, client_to_server);
                    detection.detected = Some(AppProto::FtpData);
                    facts.app_proto = Some(AppProto::FtpData);
                }
            }
            let found = app.on_stream(&cfg.app, d, ev, segment.ts, &mut sinks, emit);
            if found.detected.is_some() {
                detection.detected = found.detected;
                facts.app_proto = found.detected;
            }
            // The app layer fed the held bytes of this event with directions swapped already.
            let d = if found.reversed { d.opposite() } else { d };
            if found.reversed {
                stream_pending.swap(0, 1);
            }
            detection.reversed ^= found.reversed;
            if let Some(det) = detector.as_mut().filter(|_| inspected) {
                let key_now = oriented(if detection.reversed { flow_key.reversed() } else { flow_key }, d);
                facts.established = true;
                queue_stream(det, facts, key_now, d, ev, stream_pending, detect, pending, cfg.inspect_depth);
            }
        };
        let outcome = session.on_segment(&cfg.stream, &segment, &mut |d, ev| on_event(d, ev, &mut stream_facts));
        *stream_memory = stream_memory.saturating_sub(before).saturating_add(session.memory_used());
        // The caps this segment met, each decided by its exception policy.
        let limits = outcome.limits;
        let met = [
            (limits.memcap, ExceptionCap::FlowMemcap),
            (limits.queue, ExceptionCap::MaxQueuedSegments),
            (limits.depth, ExceptionCap::Depth),
        ];
        let (mut pass, mut bypass) = (false, discard);
        if *stream_memory > cfg.stream_memcap {
            // Past the global cap this session gives up what it holds rather than letting all
            // sessions together grow without bound: released now (holes as gaps, the streams go
            // on) unless the flow is bypassed, which drops it unread (below).
            stats.stream_memcap_flushes += 1;
            let policy = state.exceptions.meet(ExceptionCap::StreamMemcap, &policies, &mut stats.exception_policy);
            pass |= policy == ExceptionPolicy::PassFlow;
            bypass |= policy == ExceptionPolicy::Bypass;
            if !bypass {
                let held = session.memory_used();
                session.release_held(&cfg.stream, &mut |d, ev| on_event(d, ev, &mut stream_facts));
                *stream_memory = stream_memory.saturating_sub(held).saturating_add(session.memory_used());
            }
        }
        // (What the parsers met is applied with their records, in `drain_emit`.)
        for (_, cap) in met.into_iter().filter(|(hit, _)| *hit) {
            match state.exceptions.meet(cap, &policies, &mut stats.exception_policy) {
                ExceptionPolicy::Ignore => {}
                ExceptionPolicy::PassFlow => pass = true,
                ExceptionPolicy::Bypass => bypass = true,
            }
        }
        if detection.reversed {
            session.swap_directions();
        }
        if pass && !state.passed {
            state.pass();
        }
        if bypass {
            state.bypass(&cfg.stream, stream_memory);
        }
        if let Some(p) = detection.detected {
            flow.app_proto = Some(p);
        }
        if outcome.reversed != detection.reversed {
            state.flipped = !state.flipped;
            flows.reverse(handle);
        }
        flows.set_lifecycle(handle, lifecycle_of(outcome.state));
        for a in outcome.anomalies.iter() {
            self.flow_anomaly(handle, segment.ts, a);
        }
        self.drain_emit(handle);
        self.forward_ftp_announcements(handle, segment.ts);
        if !outcome.new_session {
            return (handle, outcome.accepted && !segment.payload.is_empty());
        }
        // Port reuse: a SYN on a closed session. The old flow ends without this packet, and the
        // SYN opens a new flow and session.
        if let Some(flow) = self.flows.get_mut(handle) {
            let i = dir.index();
            flow.pkts[i] = flow.pkts[i].saturating_sub(1);
            flow.bytes[i] = flow.bytes[i].saturating_sub(u64::from(wire_len));
        }
        self.write_alerts(handle);
        if let Some(closed) = self.flows.end(handle, EndReason::Forced) {
            self.ended.push(closed);
            self.log_ended();
        }
        // The old flow's place is free, so the table cannot refuse this one.
        let Some(handle) = self.flow_for(key, segment.ts, wire_len) else { return (handle, false) };
        let fresh = self.flows.get(handle).is_some_and(|f| f.state.tcp.is_none());
        if fresh { self.on_tcp(key, handle, wire_len, segment, facts) } else { (handle, false) }
    }

    /// The flow a packet belongs to, created when new, as the full-table rule allows (`None`:
    /// refused); counts each time a full table evicted or refused, and logs flows that ended.
    fn flow_for(&mut self, key: &FlowKey, ts: Timestamp, wire_len: u32) -> Option<FlowHandle> {
        let evicted = self.flows.stats().evicted;
        let found = self.flows.lookup(key, ts, wire_len, FlowState::default, &mut self.ended);
        let met = self.flows.stats().evicted - evicted + u64::from(found.is_none());
        if met > 0 {
            let policy = self.cfg.exception_policies.of(ExceptionCap::FlowTable);
            crate::exception::count(&mut self.stats.exception_policy, ExceptionCap::FlowTable, policy, met);
        }
        self.log_ended();
        found.map(|(handle, _)| handle)
    }

    /// Hands what an FTP control channel announced to the expectation table, and each newer
    /// announcement to the data flow already bound to it.
    fn forward_ftp_announcements(&mut self, control: FlowHandle, ts: Timestamp) {
        let Some(flow) = self.flows.get_mut(control) else { return };
        let Some(ftp) = flow.state.app.ftp_mut() else { return };
        let announced: Vec<Expectation> = ftp.take_expectations();
        let (control_id, control_key) = (flow.id, flow.key);
        let mut forward = Vec::new();
        for exp in announced {
            if let Some(data_id) = self.ftp_expect.offer(control_id, &control_key, exp.clone(), ts) {
                forward.push((data_id, exp));
            }
        }
        for (data_id, exp) in forward {
            let Some(key) = self.ftp_data_flows.get(&data_id).copied() else { continue };
            let Some(handle) = self.flows.handle_of(&key) else { continue };
            let Stages { flows, files, mails, emit, .. } = self;
            let mut sinks = Sinks { files: files.as_mut(), mails: mails.as_mut() };
            if let Some(data_flow) = flows.get_mut(handle) {
                data_flow.state.app.update_ftp_data(exp, ts, &mut sinks, emit);
            }
            self.drain_emit(handle);
        }
    }

    fn on_udp(&mut self, handle: FlowHandle, key: &FlowKey, payload: &[u8], facts: &PacketFacts<'_>) {
        let Stages { cfg, flows, emit, .. } = self;
        let Some(flow) = flows.get_mut(handle) else { return };
        let dir = if flow.key.is_from_source(key) { Direction::ToServer } else { Direction::ToClient };
        let found = flow.state.app.on_datagram(&cfg.app, dir, payload, facts.ts, emit);
        if let Some(p) = found.detected {
            flow.app_proto = Some(p);
        }
        if found.reversed {
            flow.state.flipped = !flow.state.flipped;
            flows.reverse(handle);
        }
        self.apply_parser_exceptions(handle);
        let Stages { flows, detector, pending, .. } = self;
        let Some(flow) = flows.get_mut(handle) else { return };
        if let Some(det) = detector.as_mut().filter(|_| flow.state.inspected()) {
            let mut facts = *facts;
            facts.app_proto = flow.app_proto;
            facts.established = flow.lifecycle != Lifecycle::New;
            let dir = if flow.key.is_from_source(key) { Direction::ToServer } else { Direction::ToClient };
            let FlowState { app, detect, tx_progress, .. } = &mut flow.state;
            det.transactions(&facts, *key, dir, app, tx_progress, detect, pending);
        }
        self.drain_emit(handle);
    }

    /// Applies the exception policy of each cap the parsers met on a flow: counted, noted for
    /// its flow record, and the flow passed or bypassed as the policy says.
    fn apply_parser_exceptions(&mut self, handle: FlowHandle) {
        if self.emit.exceptions.is_empty() {
            return;
        }
        let Stages { cfg, flows, emit, stats, stream_memory, .. } = self;
        let Some(flow) = flows.get_mut(handle) else {
            emit.exceptions.clear();
            return;
        };
        let state = &mut flow.state;
        for cap in parser_exceptions(emit, flow.app_proto, stats) {
            match state.exceptions.meet(cap, &cfg.exception_policies, &mut stats.exception_policy) {
                ExceptionPolicy::Ignore => {}
                ExceptionPolicy::PassFlow => state.pass(),
                ExceptionPolicy::Bypass => state.bypass(&cfg.stream, stream_memory),
            }
        }
    }

    /// Writes what the parsers emitted for a flow, with the flow's header.
    fn drain_emit(&mut self, handle: FlowHandle) {
        if self.emit.is_empty() {
            return;
        }
        self.apply_parser_exceptions(handle);
        let Some(flow) = self.flows.get(handle) else {
            self.emit = Emit::default();
            return;
        };
        let (flow_id, key, app_proto) = (flow.id, flow.key, flow.app_proto);
        let inspected = flow.state.inspected();
        let emit = std::mem::take(&mut self.emit);
        if self.write_emitted(flow_id, key, app_proto, emit, inspected) > 0 {
            if let Some(flow) = self.flows.get_mut(handle) {
                flow.alerted = true;
            }
        }
    }

    /// Writes a flow's parser output; its artifacts are checked against the reputation feeds
    /// only when the flow is `inspected` (not passed or bypassed). Returns the alerts written.
    fn write_emitted(&mut self, flow_id: u64, key: FlowKey, app_proto: Option<AppProto>, emit: Emit, inspected: bool) -> u64 {
        for ev in emit.events {
            let record = app_record(flow_id, key, app_proto, ev);
            self.write(&record);
        }
        for (ts, a) in emit.anomalies {
            self.anomaly(ts, a, Some(&key));
        }
        let mut alerts = 0;
        for (ts, tx_id, artifact) in emit.artifacts {
            self.stats.artifacts += 1;
            let sighting = weir_core::Sighting { ctx: ArtifactContext { ts, flow_id, key, app_proto, tx_id }, artifact };
            if self.exclusions.as_ref().is_some_and(|set| set.excludes_sighting(&sighting).is_some()) {
                self.stats.excluded_artifacts += 1;
                continue;
            }
            alerts += self.handle_artifact(sighting, inspected);
        }
        self.stats.alerts += alerts;
        alerts
    }

    /// Ships an artifact to the Central Node, offers it to the sandbox, and checks it against the
    /// reputation feeds; returns the alerts written.
    fn handle_artifact(&mut self, sighting: weir_core::Sighting, inspected: bool) -> u64 {
        let ctx = &sighting.ctx;
        if let Some(link) = &self.central {
            let meta = json!({ "flow_id": ctx.flow_id, "ts": ctx.ts.eve(), "tx_id": ctx.tx_id });
            match &sighting.artifact {
                Artifact::File(f) if self.cfg.files_stored => {
                    link.file(weir_spool::ContentRef { sha256: f.sha256, len: f.size }, meta);
                }
                Artifact::Email(e) if self.cfg.mails_stored => {
                    link.email(weir_spool::ContentRef { sha256: e.sha256, len: e.size }, meta);
                }
                _ => {}
            }
        }
        if let Some(sandbox) = self.sandbox.as_ref().filter(|_| self.licensed.sandbox) {
            if matches!(sighting.artifact, Artifact::File(_) | Artifact::Url(_)) {
                sandbox.offer(sighting.clone());
            }
        }
        let Some((set, cache)) = self.reputation.as_mut().filter(|_| inspected) else { return 0 };
        // One alert per indicator: a URL naming the flow's own address is left to the address check.
        let hits = set.lookup_sighting(cache, &sighting);
        let records: Vec<Record> =
            reputation::dedup_hits(hits).iter().map(|hit| reputation::alert_record(hit, &sighting.ctx)).collect();
        for record in &records {
            self.write(record);
        }
        records.len() as u64
    }

    /// Writes the sandbox verdicts that came back since the last call.
    fn drain_sandbox(&mut self) {
        let Some(sandbox) = &self.sandbox else { return };
        match sandbox.take_records(1024) {
            Ok(records) => {
                for record in records {
                    if let Value::Object(r) = record {
                        self.write(&r);
                    }
                }
            }
            Err(e) => eprintln!("weir: warning: sandbox verdicts not read: {e}"),
        }
    }

    /// Whether a flow is excluded from scanning, decided on its first packet.
    fn excluded(&mut self, handle: FlowHandle) -> bool {
        let Some(flow) = self.flows.get_mut(handle) else { return false };
        if flow.pkts[0] + flow.pkts[1] == 1 {
            if let Some(set) = &self.exclusions {
                if set.excludes_flow(&flow.key) {
                    flow.state.excluded = true;
                    self.stats.excluded_flows += 1;
                }
            }
        }
        flow.state.excluded
    }

    /// Checks a new flow's addresses against the IP feeds, once, on its first packet.
    fn check_addresses(&mut self, handle: FlowHandle) {
        let Some((set, _)) = self.reputation.as_ref() else { return };
        let Some(flow) = self.flows.get(handle) else { return };
        if flow.pkts[0] + flow.pkts[1] != 1 {
            return;
        }
        let ctx = ArtifactContext { ts: flow.start, flow_id: flow.id, key: flow.key, app_proto: None, tx_id: None };
        let mut hits = set.lookup_ip(flow.key.src_ip, Seen::SrcIp);
        hits.extend(set.lookup_ip(flow.key.dst_ip, Seen::DestIp));
        let records: Vec<Record> = reputation::dedup_hits(hits).iter().map(|h| reputation::alert_record(h, &ctx)).collect();
        if records.is_empty() {
            return;
        }
        if let Some(flow) = self.flows.get_mut(handle) {
            flow.alerted = true;
        }
        self.stats.alerts += records.len() as u64;
        for r in &records {
            self.write(r);
        }
    }

    /// Writes the pending alerts of a flow still in the table.
    fn write_alerts(&mut self, handle: FlowHandle) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let (Some(detector), Some(flow)) = (self.detector.as_ref(), self.flows.get_mut(handle)) else { return };
        flow.alerted = true;
        let records: Vec<Record> =
            pending.iter().map(|p| crate::detection::alert_record(&detector.rules, p, flow)).collect();
        self.stats.alerts += records.len() as u64;
        for r in &records {
            self.write(r);
        }
    }

    fn flow_anomaly(&mut self, handle: FlowHandle, ts: Timestamp, a: Anomaly) {
        let key = self.flows.get(handle).map(|f| f.key);
        self.anomaly(ts, a, key.as_ref());
    }

    fn expire(&mut self, now: Timestamp) {
        self.flows.expire(now, &mut self.ended);
        self.log_ended();
        if now >= self.next_expectation_sweep {
            self.ftp_expect.expire(now);
            self.next_expectation_sweep = now.add(std::time::Duration::from_secs(1));
        }
    }

    /// Flushes and logs the flows that left the table.
    fn log_ended(&mut self) {
        while !self.ended.is_empty() {
            let ended = std::mem::take(&mut self.ended);
            for closed in ended {
                self.finish_flow(closed);
            }
        }
    }

    /// A flow left the table: what its session still holds goes through detection and the app
    /// layer (as Suricata's flow-timeout pseudo packets), then its records are written.
    fn finish_flow(&mut self, mut closed: ClosedFlow<FlowState>) {
        let flow: &mut Flow<FlowState> = &mut closed.flow;
        let last = flow.last_seen;
        let mut tcp_eve = None;
        {
            let Stages { cfg, emit, files, mails, stream_memory, detector, pending, .. } = self;
            let mut sinks = Sinks { files: files.as_mut(), mails: mails.as_mut() };
            let flow_key = flow.key;
            let mut facts = PacketFacts {
                ts: last,
                pcap_cnt: None,
                ttl: 0,
                ip_id: 0,
                tcp: None,
                icmp: None,
                established: flow.lifecycle != Lifecycle::New,
                app_proto: flow.app_proto,
                frame: &[],
                link: weir_core::LinkType::ETHERNET,
                tunnel: None,
                defragmented: false,
                source: PacketSource::FlowEnd,
            };
            let inspected = flow.state.inspected();
            let FlowState { tcp, app, detect, tx_progress, stream_pending, bypassed, .. } = &mut flow.state;
            let bypassed = *bypassed;
            let mut on_event = |d: Direction, ev: StreamEvent<'_>| {
                let found = app.on_stream(&cfg.app, d, ev, last, &mut sinks, emit);
                if found.detected.is_some() {
                    facts.app_proto = found.detected;
                }
                if let Some(det) = detector.as_mut().filter(|_| inspected) {
                    queue_stream(det, &facts, oriented(flow_key, d), d, ev, stream_pending, detect, pending, cfg.inspect_depth);
                }
            };
            if let Some(session) = tcp.as_mut() {
                *stream_memory = stream_memory.saturating_sub(session.memory_used());
                if bypassed {
                    // Nothing more reaches the parsers but the end of the stream, so files and
                    // messages under way are closed (marked truncated), not left open.
                    session.flush(&cfg.stream, &mut |_, _| {});
                    for d in [Direction::ToServer, Direction::ToClient] {
                        on_event(d, StreamEvent::End);
                    }
                } else {
                    session.flush(&cfg.stream, &mut on_event);
                }
                tcp_eve = serde_json::to_value(session.eve()).ok();
            } else if flow_key.proto == IpProto::TCP {
                // No segment was accepted; still close the app layer cleanly.
                for d in [Direction::ToServer, Direction::ToClient] {
                    on_event(d, StreamEvent::End);
                }
            }
            // What is still uninspected is inspected now, as Suricata's flow-end pseudo packets.
            if let Some(det) = detector.as_mut().filter(|_| inspected) {
                for d in [Direction::ToServer, Direction::ToClient] {
                    stream_pending[d.index()].inspect(det, &facts, oriented(flow_key, d), d, detect, pending);
                    if flow_key.proto == IpProto::TCP {
                        det.transactions(&facts, oriented(flow_key, d), d, app, tx_progress, detect, pending);
                    }
                }
            }
        }
        if let Some(p) = flow.state.app.proto() {
            flow.app_proto = Some(p);
        }
        match flow.app_proto {
            Some(AppProto::Ftp) => self.ftp_expect.forget_control_flow(flow.id),
            Some(AppProto::FtpData) => {
                self.ftp_expect.forget_data_flow(flow.id);
                self.ftp_data_flows.remove(&flow.id);
            }
            _ => {}
        }
        if !self.pending.is_empty() {
            flow.alerted = true;
            if let Some(detector) = self.detector.as_ref() {
                let records: Vec<Record> =
                    self.pending.drain(..).map(|p| crate::detection::alert_record(&detector.rules, &p, flow)).collect();
                self.stats.alerts += records.len() as u64;
                for r in &records {
                    self.write(r);
                }
            }
            self.pending.clear();
        }
        let mut emit = std::mem::take(&mut self.emit);
        // Caps the parsers met while closing are listed and counted; there is no flow left to
        // apply a policy to.
        for cap in parser_exceptions(&mut emit, flow.app_proto, &mut self.stats) {
            flow.state.exceptions.meet(cap, &self.cfg.exception_policies, &mut self.stats.exception_policy);
        }
        let inspected = flow.state.inspected();
        if self.write_emitted(flow.id, flow.key, flow.app_proto, emit, inspected) > 0 {
            flow.alerted = true;
        }
        let mut record = weir_flow::flow_record(flow, closed.reason, tcp_eve);
        if let Some(Value::Object(f)) = record.get_mut("flow") {
            if flow.state.bypassed {
                f.insert("bypassed".into(), Value::Bool(true));
            }
            if let Some(list) = flow.state.exceptions.eve() {
                f.insert("exception_policy".into(), list);
            }
        }
        self.stats.flows_logged += 1;
        self.write(&record);
    }

    fn anomaly(&mut self, ts: Timestamp, anomaly: Anomaly, key: Option<&FlowKey>) {
        // Suricata prefixes decoder events with "decoder." in anomaly records.
        let event = match anomaly.layer {
            AnomalyLayer::Decode if !anomaly.event.starts_with("decoder.") => format!("decoder.{}", anomaly.event),
            _ => anomaly.event.to_string(),
        };
        match self.stats.anomalies.get_mut(&event) {
            Some(n) => *n += 1,
            None => {
                self.stats.anomalies.insert(event.clone(), 1);
            }
        }
        let mut r: Record = eve::record(ts, "anomaly", None);
        if let Some(k) = key {
            eve::put_addresses(&mut r, k);
        }
        r.insert("anomaly".into(), json!({ "type": anomaly.layer.eve(), "event": Value::String(event) }));
        self.write(&r);
    }

    fn write(&mut self, record: &Record) {
        if self.io_error.is_some() {
            return;
        }
        if let Err(e) = self.eve.write(record) {
            self.io_error = Some(e);
        }
        if let Some(link) = &self.central {
            ship_to_central(link, record);
        }
    }
}

/// Hands a record to the Central Node link when it is of a type the node takes.
pub fn ship_to_central(link: &weir_sensor_link::Link, record: &Record) {
    let event_type = record.get("event_type").and_then(Value::as_str).unwrap_or("");
    if CENTRAL_EVENT_TYPES.contains(&event_type) {
        if let Ok(line) = serde_json::to_vec(record) {
            link.event(line);
        }
    }
}

/// Counts a cap met on a flow under the policy applied.
/// Takes the parser exceptions out of `emit` as the caps they meet, counting parser errors by
/// the flow's protocol.
fn parser_exceptions(emit: &mut Emit, proto: Option<AppProto>, stats: &mut WorkerStats) -> Vec<ExceptionCap> {
    emit.exceptions
        .drain(..)
        .map(|(_, exception)| match exception {
            ParserException::Error => {
                let name = proto.map_or("unknown", AppProto::eve_name);
                *stats.app_layer_errors.entry(name.to_string()).or_default() += 1;
                ExceptionCap::AppLayerError
            }
            ParserException::HeaderMemcap => ExceptionCap::HttpHeaderMemcap,
            ParserException::MessageMemcap => ExceptionCap::MailMemcap,
        })
        .collect()
}

/// Queues a stream delivery for inspection at the next packet of its direction (inspecting at
/// once what would overflow the queue).
#[allow(clippy::too_many_arguments)]
fn queue_stream(
    det: &mut Detector,
    facts: &PacketFacts<'_>,
    key: FlowKey,
    dir: Direction,
    ev: StreamEvent<'_>,
    stream_pending: &mut [StreamQueue; 2],
    detect: &mut FlowDetectState,
    pending: &mut Vec<PendingAlert>,
    inspect_depth: u64,
) {
    let queue = &mut stream_pending[dir.index()];
    match ev {
        StreamEvent::Data(bytes) => {
            // Past the inspect depth raw-stream rules see no more of this direction (the
            // parsers still do).
            let room = inspect_depth.saturating_sub(queue.taken);
            let bytes = &bytes[..bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
            if bytes.is_empty() {
                return;
            }
            queue.taken += bytes.len() as u64;
            if queue.bytes.len() + bytes.len() > MAX_PENDING_STREAM_BYTES {
                queue.inspect(det, facts, key, dir, detect, pending);
                det.stream(facts, key, dir, bytes, detect, pending);
            } else {
                queue.bytes.extend_from_slice(bytes);
            }
        }
        StreamEvent::Gap { len } => {
            if queue.gaps.len() >= MAX_QUEUED_GAPS {
                queue.inspect(det, facts, key, dir, detect, pending);
            }
            queue.gaps.push((queue.bytes.len(), len));
        }
        StreamEvent::End => {}
    }
}

/// An app-layer event as an EVE record: the flow's header (oriented as Suricata orients that
/// event type), `app_proto` where Suricata writes it, then the parser's fields.
fn app_record(flow_id: u64, key: FlowKey, app_proto: Option<AppProto>, ev: AppEvent) -> Record {
    let key = if oriented_by_direction(ev.event_type) && ev.direction == Direction::ToClient { key.reversed() } else { key };
    let header = FlowHeader { flow_id, key, app_proto };
    let mut r = eve::record(ev.ts, ev.event_type, Some(&header));
    if ev.event_type == "fileinfo" {
        if let Some(p) = app_proto {
            r.insert("app_proto".into(), Value::from(p.eve_name()));
        }
    }
    for (k, v) in ev.fields {
        r.insert(k, v);
    }
    r
}
