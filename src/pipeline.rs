//! The worker topology shared by `weir replay` and `weir live`.
//!
//! With `[capture] workers = 1` the one worker runs on the capture thread. With N > 1, the
//! capture thread becomes a dispatcher: it decodes each frame just far enough to know its flow and
//! hands the frame, in batches, to one of N worker threads, each owning its flow table,
//! reassembly, parsers, detection state and matcher scratch. Steering keeps everything that one
//! worker must see together:
//! - both directions of a flow: the hash of the canonical (innermost, for tunnels) flow key;
//! - every fragment of a datagram: the first fragment's ports decide, and fragments arriving
//!   before it are held (bounded) until it comes;
//! - ICMP errors go where the flow they quote goes (Suricata counts them on that flow);
//! - FTP data connections go to their control connection's worker: the dispatcher reads the
//!   `PORT`/`EPRT` commands and `227`/`229` replies it forwards and pins the announced endpoint.
//!
//! Hand-offs are bounded queues; when a worker's queue is full the dispatcher waits for it.
//! Nothing is dropped inside Weir: in a replay the read slows down, in a live capture the
//! kernel's ring fills and its drops are counted (`kernel_drops`). Workers write eve.json through
//! [`EveMerger`]; records of one worker keep their order.
//!
//! - a tunnel's outer flow goes where its own key hashes: when that is not where the packet it
//!   carries goes, the frame goes to both workers, each taking its part ([`FramePart`]), so the
//!   outer flow is counted and logged once, like any flow.
//!
//! Limits of steering: an FTP announcement split over two TCP segments is not seen by the
//! dispatcher, so its data connection is steered by its own hash.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use weir_core::eve::Record;
use weir_core::{FlowKey, IpProto, LinkType, Timestamp, Vlans};
use weir_decode::{Decoder, Packet, Transport};

use crate::build::{self, RunShared};
use crate::config::Config;
use crate::output::{EveMerger, EveWriter};
use crate::stats::{EdgeCounters, StatsBoard, Totals};
use crate::worker::{FramePart, Worker};

/// Frames in one hand-off to a worker, and the bytes they may take together.
const BATCH_FRAMES: usize = 256;
const BATCH_BYTES: usize = 512 * 1024;
/// Batches waiting for one worker; past it the dispatcher waits.
const QUEUE_BATCHES: usize = 32;
/// Packets a worker processes between two publications of its counters.
const PUBLISH_EVERY: u64 = 4096;
/// Frames between two sweeps of the dispatcher's steering tables.
const SWEEP_EVERY: u64 = 65_536;
/// Fragments held while waiting for their datagram's first fragment: bytes over all datagrams.
/// Past it the oldest held datagram is sent on, steered by its addresses alone.
const MAX_HELD_FRAGMENT_BYTES: usize = 4 << 20;
/// Datagrams whose first fragment was seen, remembered so their later fragments follow it.
const MAX_FRAGMENT_OWNERS: usize = 65_536;
/// FTP data endpoints announced and not yet expired, and data flows pinned to a worker.
const MAX_FTP_PINS: usize = 4096;
const MAX_PINNED_FLOWS: usize = 65_536;
/// How long an announced FTP endpoint waits for its connection (as the FTP expectation table).
const FTP_PIN_TIMEOUT: Duration = weir_extract::ftp::EXPECTATION_TIMEOUT;
/// Idle time after which a pinned data flow is forgotten (longer than any TCP flow timeout).
const PINNED_FLOW_IDLE: Duration = Duration::from_secs(3600);

/// One frame of a batch: its bytes are `data[start..start + len]`.
struct BatchFrame {
    pcap_cnt: u64,
    ts: Timestamp,
    link: LinkType,
    part: FramePart,
    start: usize,
    len: usize,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<BatchFrame>,
}

impl Batch {
    fn push(&mut self, pcap_cnt: u64, ts: Timestamp, link: LinkType, part: FramePart, frame: &[u8]) {
        self.frames.push(BatchFrame { pcap_cnt, ts, link, part, start: self.data.len(), len: frame.len() });
        self.data.extend_from_slice(frame);
    }

    fn is_full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }
}

enum ToWorker {
    Frames(Batch),
    /// Packet time moved on without packets for this worker (a quiet live link).
    Advance(Timestamp),
}

/// What a run produced, for the closing summary.
pub struct RunSummary {
    pub totals: Totals,
    pub sandbox: Option<weir_sandbox_client::FinishReport>,
}

pub struct Pipeline {
    mode: Mode,
    shared: RunShared,
    board: Arc<StatsBoard>,
    stats_interval: Option<Duration>,
    next_stats: Option<Timestamp>,
    last_ts: Timestamp,
    packets: u64,
}

enum Mode {
    /// One worker on the capture thread; the merger is there when something else (the ICAP
    /// service beside `weir live`) writes eve.json too.
    Single(Box<Worker>, Option<EveMerger>),
    Threads(Box<Dispatcher>),
}

struct Dispatcher {
    steering: Steering,
    queues: Vec<SyncSender<ToWorker>>,
    batches: Vec<Batch>,
    /// `None` once joined (a worker that stopped early is joined to read its error).
    threads: Vec<Option<JoinHandle<std::io::Result<Worker>>>>,
    merger: EveMerger,
    /// The run's own records (periodic and final `stats`, the sandbox's last verdicts).
    run_eve: EveWriter,
}

impl Pipeline {
    /// Builds the workers (`live`: checksums validated under `auto`) writing into `out`.
    /// `shared_eve`: others will ask for writers into the same eve.json ([`Pipeline::eve_writer`]).
    pub fn start(config: &Config, out: &Path, overwrite: bool, live: bool, shared_eve: bool) -> anyhow::Result<Pipeline> {
        let workers = config.capture.workers.max(1);
        let shared = build::run_shared(config, out)?;
        let board = StatsBoard::new(workers);
        let eve_types = &config.output.eve_types;
        let mode = if workers == 1 && shared_eve {
            let merger = EveMerger::start(out, overwrite)?;
            Mode::Single(Box::new(build::worker_for(config, out, merger.writer(eve_types), &shared, live)?), Some(merger))
        } else if workers == 1 {
            let eve = EveWriter::create(out, overwrite, eve_types)?;
            Mode::Single(Box::new(build::worker_for(config, out, eve, &shared, live)?), None)
        } else {
            let merger = EveMerger::start(out, overwrite)?;
            let mut queues = Vec::with_capacity(workers);
            let mut threads = Vec::with_capacity(workers);
            for index in 0..workers {
                let worker = build::worker_for(config, out, merger.writer(eve_types), &shared, live)?;
                let (tx, rx) = sync_channel(QUEUE_BATCHES);
                let board = board.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("weir-worker-{index}"))
                    .spawn(move || run_worker(worker, rx, &board, index))
                    .context("cannot start a worker thread")?;
                queues.push(tx);
                threads.push(Some(thread));
            }
            let run_eve = merger.writer(eve_types);
            Mode::Threads(Box::new(Dispatcher {
                steering: Steering::new(config, live, workers),
                batches: (0..workers).map(|_| Batch::default()).collect(),
                queues,
                threads,
                merger,
                run_eve,
            }))
        };
        let stats_interval = (config.output.stats_interval > 0).then(|| Duration::from_secs(config.output.stats_interval));
        Ok(Pipeline { mode, shared, board, stats_interval, next_stats: None, last_ts: Timestamp::ZERO, packets: 0 })
    }

    /// A writer into this run's eve.json, when it was started with `shared_eve`. Drop it before
    /// [`Pipeline::finish`], which waits for every writer.
    pub fn eve_writer(&self, enabled: &[String]) -> Option<EveWriter> {
        match &self.mode {
            Mode::Single(_, merger) => merger.as_ref().map(|m| m.writer(enabled)),
            Mode::Threads(d) => Some(d.merger.writer(enabled)),
        }
    }

    /// The board the workers publish to (for a Prometheus endpoint).
    pub fn board(&self) -> Arc<StatsBoard> {
        self.board.clone()
    }

    /// The rules, feeds and exclusions every worker follows (for the reloader).
    pub fn sets(&self) -> Arc<crate::swap::SharedSets> {
        self.shared.sets.clone()
    }

    /// Frames handed in so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Runs one captured frame through its worker.
    pub fn process(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) -> anyhow::Result<()> {
        self.packets += 1;
        self.last_ts = self.last_ts.max(ts);
        match &mut self.mode {
            Mode::Single(worker, _) => {
                worker.process(self.packets, ts, link, frame).context("writing outputs")?;
                if worker.stats().packets % PUBLISH_EVERY == 0 {
                    self.board.publish(0, worker.snapshot());
                }
            }
            Mode::Threads(d) => d.dispatch(self.packets, ts, link, frame)?,
        }
        self.maybe_write_stats(ts)
    }

    /// Moves time on without a packet (a quiet live link), so idle flows still time out; hands
    /// over what is batched.
    pub fn advance(&mut self, now: Timestamp) -> anyhow::Result<()> {
        match &mut self.mode {
            Mode::Single(worker, _) => {
                worker.advance(now).context("writing outputs")?;
                self.board.publish(0, worker.snapshot());
            }
            Mode::Threads(d) => {
                for i in 0..d.queues.len() {
                    d.send_batch(i)?;
                    d.send(i, ToWorker::Advance(now))?;
                }
                d.run_eve.flush().context("writing outputs")?;
            }
        }
        self.maybe_write_stats(now)
    }

    /// Sets the counters of the capture (kernel drops) and of the outbound spools.
    pub fn set_capture_counters(&self, kernel_received: u64, kernel_dropped: u64, interface_dropped: u64) {
        let mut edges = EdgeCounters { kernel_received, kernel_dropped, interface_dropped, ..EdgeCounters::default() };
        self.outbound_counters(&mut edges);
        self.board.set_edges(edges);
    }

    fn outbound_counters(&self, edges: &mut EdgeCounters) {
        if let Some(sandbox) = &self.shared.sandbox {
            let s = sandbox.stats();
            edges.sandbox_pending = s.pending;
            edges.sandbox_submitted = s.submitted;
        }
        if let Some(link) = &self.shared.central {
            edges.central_pending = link.status().pending();
        }
    }

    fn maybe_write_stats(&mut self, ts: Timestamp) -> anyhow::Result<()> {
        let Some(interval) = self.stats_interval else { return Ok(()) };
        let due = *self.next_stats.get_or_insert(ts.add(interval));
        if ts < due {
            return Ok(());
        }
        self.next_stats = Some(ts.add(interval));
        let mut totals = self.board.totals();
        self.outbound_counters(&mut totals.edges);
        self.board.set_edges(totals.edges.clone());
        self.write_run_records(&[totals.eve_record(ts)])
    }

    fn write_run_records(&mut self, records: &[Record]) -> anyhow::Result<()> {
        write_run_records(&mut self.mode, self.shared.central.as_ref(), records)
    }

    /// End of capture: every flow of every worker is ended and logged, the sandbox given up to
    /// `sandbox_wait` for verdicts, the closing `stats` record written, eve.json flushed, then
    /// the Central Node given up to `central_wait` to take what is spooled.
    pub fn finish(self, sandbox_wait: Duration, central_wait: Duration) -> anyhow::Result<RunSummary> {
        let Pipeline { mut mode, mut shared, board, last_ts, .. } = self;
        let finished_workers = match &mut mode {
            Mode::Single(worker, _) => {
                worker.finish().context("writing outputs")?;
                board.publish(0, worker.snapshot());
                Vec::new()
            }
            Mode::Threads(d) => d.join_workers(&board)?,
        };
        // No worker offers anything any more, so the dispatcher can be finished.
        let sandbox = match shared.sandbox.take().map(Arc::try_unwrap) {
            Some(Ok(dispatcher)) => Some(dispatcher.finish(sandbox_wait)),
            Some(Err(_)) => anyhow::bail!("internal: a worker still holds the sandbox dispatcher"),
            None => None,
        };
        if let Some(report) = &sandbox {
            let records: Vec<Record> = report.records.iter().filter_map(|r| r.as_object().cloned()).collect();
            write_run_records(&mut mode, shared.central.as_ref(), &records)?;
        }
        let mut edges = board.totals().edges;
        if let Some(link) = &shared.central {
            edges.central_pending = link.status().pending();
        }
        if let Some(report) = &sandbox {
            edges.sandbox_pending = report.pending.len() as u64;
            edges.sandbox_submitted = report.stats.submitted;
        }
        board.set_edges(edges);
        let mut totals = board.totals();
        let closing = {
            let mut t = totals.clone();
            // The closing record counts itself.
            *t.eve.entry("stats".into()).or_default() += 1;
            t.eve_record(last_ts)
        };
        write_run_records(&mut mode, shared.central.as_ref(), &[closing])?;
        match mode {
            Mode::Single(mut worker, merger) => {
                worker.release_central();
                totals.eve = worker.eve_counts().clone();
                drop(worker);
                if let Some(merger) = merger {
                    merger.finish().context("writing eve.json")?;
                }
            }
            Mode::Threads(d) => {
                let Dispatcher { run_eve, merger, .. } = *d;
                for (k, n) in run_eve.counts() {
                    *totals.eve.entry(k.clone()).or_default() += n;
                }
                drop(run_eve);
                drop(finished_workers);
                merger.finish().context("writing eve.json")?;
            }
        }
        if let Some(link) = shared.central.take() {
            match Arc::try_unwrap(link) {
                Ok(link) => crate::deliver_to_central(link, central_wait.as_secs()),
                Err(_) => anyhow::bail!("internal: a worker still holds the Central Node link"),
            }
        }
        Ok(RunSummary { totals, sandbox })
    }
}

/// Writes records of the run itself (not of a flow): through the single worker, or through the
/// dispatcher's own writer, shipping what the Central Node takes.
fn write_run_records(mode: &mut Mode, central: Option<&Arc<weir_sensor_link::Link>>, records: &[Record]) -> anyhow::Result<()> {
    match mode {
        Mode::Single(worker, _) => worker.write_run_records(records).context("writing outputs"),
        Mode::Threads(d) => {
            for record in records {
                d.run_eve.write(record).context("writing outputs")?;
                if let Some(link) = central {
                    crate::worker::ship_to_central(link, record);
                }
            }
            d.run_eve.flush().context("writing outputs")
        }
    }
}

fn run_worker(mut worker: Worker, rx: Receiver<ToWorker>, board: &StatsBoard, index: usize) -> std::io::Result<Worker> {
    while let Ok(message) = rx.recv() {
        match message {
            ToWorker::Frames(batch) => {
                for f in &batch.frames {
                    worker.process_part(f.pcap_cnt, f.ts, f.link, &batch.data[f.start..f.start + f.len], f.part)?;
                    if worker.stats().packets % PUBLISH_EVERY == 0 {
                        board.publish(index, worker.snapshot());
                    }
                }
            }
            ToWorker::Advance(now) => {
                worker.advance(now)?;
                board.publish(index, worker.snapshot());
            }
        }
    }
    worker.finish()?;
    board.publish(index, worker.snapshot());
    Ok(worker)
}

impl Dispatcher {
    fn dispatch(&mut self, pcap_cnt: u64, ts: Timestamp, link: LinkType, frame: &[u8]) -> anyhow::Result<()> {
        let Steered { steer, outer_layer } = self.steering.steer(pcap_cnt, ts, link, frame);
        // A tunnel whose outer flow is another worker's than what it carries: that worker gets
        // the frame's outer layer, the carried packets go their way.
        let inner_part = match (outer_layer, &steer) {
            (Some(o), Steer::To(i)) if o == *i => FramePart::Whole,
            (Some(o), _) => {
                self.push(o, pcap_cnt, ts, link, FramePart::OuterLayer, frame)?;
                FramePart::Inner
            }
            (None, _) => FramePart::Whole,
        };
        match steer {
            Steer::To(i) => self.push(i, pcap_cnt, ts, link, inner_part, frame),
            Steer::Held => {
                self.steering.hold_last_as(inner_part);
                Ok(())
            }
            Steer::Release { worker, frames } => {
                for f in frames {
                    self.push(worker, f.pcap_cnt, f.ts, f.link, f.part, &f.frame)?;
                }
                self.push(worker, pcap_cnt, ts, link, inner_part, frame)
            }
        }?;
        for (worker, frames) in self.steering.take_expired(ts) {
            for f in frames {
                self.push(worker, f.pcap_cnt, f.ts, f.link, f.part, &f.frame)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, worker: usize, pcap_cnt: u64, ts: Timestamp, link: LinkType, part: FramePart, frame: &[u8]) -> anyhow::Result<()> {
        self.batches[worker].push(pcap_cnt, ts, link, part, frame);
        if self.batches[worker].is_full() {
            self.send_batch(worker)?;
        }
        Ok(())
    }

    fn send_batch(&mut self, worker: usize) -> anyhow::Result<()> {
        if self.batches[worker].frames.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batches[worker]);
        self.send(worker, ToWorker::Frames(batch))
    }

    fn send(&mut self, worker: usize, message: ToWorker) -> anyhow::Result<()> {
        if self.queues[worker].send(message).is_ok() {
            return Ok(());
        }
        // The worker stopped: its error is the run's error.
        let Some(thread) = self.threads[worker].take() else { anyhow::bail!("worker {worker} stopped unexpectedly") };
        match thread.join() {
            Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!("worker {worker}: writing outputs"))),
            _ => anyhow::bail!("worker {worker} stopped unexpectedly"),
        }
    }

    /// Sends what is batched and held, closes the queues and waits for every worker to finish.
    fn join_workers(&mut self, board: &StatsBoard) -> anyhow::Result<Vec<Worker>> {
        for (worker, frames) in self.steering.take_all_held() {
            for f in frames {
                self.push(worker, f.pcap_cnt, f.ts, f.link, f.part, &f.frame)?;
            }
        }
        for i in 0..self.queues.len() {
            self.send_batch(i)?;
        }
        self.queues.clear();
        let mut workers = Vec::new();
        for (i, thread) in self.threads.drain(..).enumerate() {
            let Some(thread) = thread else { anyhow::bail!("worker {i} stopped unexpectedly") };
            match thread.join() {
                Ok(Ok(mut worker)) => {
                    board.publish(i, worker.snapshot());
                    worker.release_central();
                    workers.push(worker);
                }
                Ok(Err(e)) => return Err(anyhow::Error::new(e).context(format!("worker {i}: writing outputs"))),
                Err(_) => anyhow::bail!("worker {i} panicked"),
            }
        }
        Ok(workers)
    }
}

/// Where the dispatcher sends a frame, and the worker of the tunnel carrying it, if any.
struct Steered {
    steer: Steer,
    outer_layer: Option<usize>,
}

/// Where the dispatcher sends a frame (or, for a tunnel, the packets it carries).
enum Steer {
    To(usize),
    /// A fragment held until its datagram's first fragment shows which worker it belongs to.
    Held,
    /// The first fragment came: the held ones go first, then this frame.
    Release { worker: usize, frames: Vec<HeldFrame> },
}

struct HeldFrame {
    pcap_cnt: u64,
    ts: Timestamp,
    link: LinkType,
    part: FramePart,
    frame: Vec<u8>,
}

/// One IP datagram's identity, as its fragments carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramId {
    src: IpAddr,
    dst: IpAddr,
    proto: IpProto,
    id: u32,
    vlans: Vlans,
    tunnel_depth: u8,
}

/// An FTP data endpoint announced on a control connection: who listens, who will connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FtpEndpoint {
    listener: IpAddr,
    port: u16,
    peer: IpAddr,
}

/// What decoding one frame showed the dispatcher.
#[derive(Default)]
struct Seen {
    key: Option<FlowKey>,
    /// The flow of the outermost packet, when it carries a tunnel.
    outer: Option<FlowKey>,
    fragment: Option<(DatagramId, Option<FlowKey>)>,
    announced: Vec<FtpEndpoint>,
}

impl Seen {
    fn packet(&mut self, pkt: &Packet<'_>) {
        if let Some(f) = pkt.fragment {
            let id = DatagramId {
                src: pkt.ip.src,
                dst: pkt.ip.dst,
                proto: pkt.ip.proto,
                id: f.id,
                vlans: pkt.vlans,
                tunnel_depth: pkt.tunnel_depth,
            };
            // The first fragment carries the ports: the key the rebuilt datagram will have.
            let key = (f.offset == 0).then(|| {
                let ports = match pkt.ip.proto {
                    IpProto::TCP | IpProto::UDP if pkt.payload.len() >= 4 => {
                        (u16::from_be_bytes([pkt.payload[0], pkt.payload[1]]), u16::from_be_bytes([pkt.payload[2], pkt.payload[3]]))
                    }
                    _ => (0, 0),
                };
                FlowKey {
                    src_ip: pkt.ip.src,
                    dst_ip: pkt.ip.dst,
                    src_port: ports.0,
                    dst_port: ports.1,
                    proto: pkt.ip.proto,
                    vlans: pkt.vlans,
                    tunnel_depth: pkt.tunnel_depth,
                }
            });
            self.fragment = Some((id, key));
            return;
        }
        // A rebuilt datagram is steered by its fragments (the frame completing it is one).
        if pkt.reassembled {
            return;
        }
        if pkt.is_tunnel_outer && pkt.tunnel_depth == 0 {
            self.outer = pkt.flow_key();
        }
        let Some(mut key) = pkt.flow_key() else { return };
        match pkt.transport {
            Transport::Icmp(icmp) => {
                if let Some(q) = icmp.quoted {
                    if matches!(q.proto, IpProto::TCP | IpProto::UDP) && (q.src_port, q.dst_port) != (0, 0) {
                        key = FlowKey { src_ip: q.src, dst_ip: q.dst, src_port: q.src_port, dst_port: q.dst_port, proto: q.proto, ..key };
                    }
                }
            }
            Transport::Tcp(_) => self.announced = ftp_announcements(&key, pkt.payload),
            _ => {}
        }
        self.key = Some(key);
    }
}

/// The data endpoints an FTP control segment announces. Only segments that start like a
/// `PORT`/`EPRT` command or a `227`/`229` reply are read, so other traffic costs a 4-byte look.
fn ftp_announcements(key: &FlowKey, payload: &[u8]) -> Vec<FtpEndpoint> {
    let head = payload.get(..4).unwrap_or(b"");
    let interesting = head.eq_ignore_ascii_case(b"PORT") || head.eq_ignore_ascii_case(b"EPRT") || head.starts_with(b"227") || head.starts_with(b"229");
    if !interesting {
        return Vec::new();
    }
    let mut found = Vec::new();
    for line in payload.split(|&b| b == b'\n') {
        let Some((ip, port)) = weir_extract::ftp::announced_endpoint(line) else { continue };
        if line.first().is_some_and(u8::is_ascii_digit) {
            // A reply: the server (this segment's sender) listens, the client connects.
            found.push(FtpEndpoint { listener: key.src_ip, port, peer: key.dst_ip });
            if let Some(ip) = ip.filter(|ip| *ip != key.src_ip) {
                found.push(FtpEndpoint { listener: ip, port, peer: key.dst_ip });
            }
        } else {
            // A command: the client (this segment's sender) listens, the server connects.
            found.push(FtpEndpoint { listener: ip.unwrap_or(key.src_ip), port, peer: key.dst_ip });
        }
    }
    found
}

/// The dispatcher's steering state. Sans-IO: packet time comes in with each frame.
struct Steering {
    decoder: Decoder,
    workers: usize,
    frames: u64,
    /// Datagrams whose first fragment was seen: their worker and when.
    fragment_owner: HashMap<DatagramId, (usize, Timestamp)>,
    /// Fragments waiting for their first fragment.
    held: HashMap<DatagramId, Vec<HeldFrame>>,
    held_bytes: usize,
    held_timeout: Duration,
    ftp_pins: HashMap<FtpEndpoint, (usize, Timestamp)>,
    pinned_flows: HashMap<FlowKey, (usize, Timestamp)>,
    /// The datagram of the fragment held last.
    last_held: Option<DatagramId>,
}

impl Steering {
    fn new(config: &Config, live: bool, workers: usize) -> Steering {
        let mut decode = build::decode_config(config, live);
        // The dispatcher rebuilds no datagram (the workers do): a small memcap keeps its copy
        // of the fragments from doubling the defragmentation memory.
        decode.defrag.memcap = 64 * 1024;
        // Steering needs addresses and ports only; the workers validate checksums.
        decode.checksum_validation = false;
        Steering {
            decoder: Decoder::new(decode),
            workers,
            frames: 0,
            fragment_owner: HashMap::new(),
            held: HashMap::new(),
            held_bytes: 0,
            held_timeout: Duration::from_secs(config.capture.defrag_timeout),
            ftp_pins: HashMap::new(),
            pinned_flows: HashMap::new(),
            last_held: None,
        }
    }

    /// TCP and UDP flows spread by their whole key; other protocols by their addresses alone,
    /// so an ICMP flow and fragments whose inner protocol cannot be known yet (a fragment of a
    /// fragment header, say) meet on one worker.
    fn worker_of(&self, key: &FlowKey) -> usize {
        let key = match key.proto {
            IpProto::TCP | IpProto::UDP => key.canonical().0,
            _ => {
                let (a, b) = if key.src_ip <= key.dst_ip { (key.src_ip, key.dst_ip) } else { (key.dst_ip, key.src_ip) };
                FlowKey { src_ip: a, dst_ip: b, src_port: 0, dst_port: 0, proto: IpProto::ICMP, ..*key }
            }
        };
        (key.symmetric_hash() % self.workers as u64) as usize
    }

    fn worker_of_addresses(&self, id: &DatagramId) -> usize {
        let key = FlowKey { src_ip: id.src, dst_ip: id.dst, src_port: 0, dst_port: 0, proto: IpProto::ICMP, vlans: id.vlans, tunnel_depth: id.tunnel_depth };
        self.worker_of(&key)
    }

    fn steer(&mut self, pcap_cnt: u64, ts: Timestamp, link: LinkType, frame: &[u8]) -> Steered {
        self.frames += 1;
        let mut seen = Seen::default();
        // Anomalies are the workers' to report: they decode every frame again.
        self.decoder.decode_with_anomalies(ts, link, frame, &mut |pkt: &Packet<'_>| seen.packet(pkt), &mut |_, _| {});
        let outer_layer = seen.outer.map(|outer| self.worker_of(&outer));
        Steered { steer: self.steer_inner(pcap_cnt, ts, link, frame, seen), outer_layer }
    }

    /// The frame's flow, or for a tunnel the flow it carries.
    fn steer_inner(&mut self, pcap_cnt: u64, ts: Timestamp, link: LinkType, frame: &[u8], seen: Seen) -> Steer {
        if let Some((id, first)) = seen.fragment {
            return self.steer_fragment(pcap_cnt, ts, link, frame, id, first);
        }
        let Some(key) = seen.key else { return Steer::To(0) };
        let mut worker = self.worker_of(&key);
        if key.proto == IpProto::TCP && !(self.ftp_pins.is_empty() && self.pinned_flows.is_empty()) {
            worker = self.pinned(&key, ts).unwrap_or(worker);
        }
        for endpoint in seen.announced {
            if self.ftp_pins.len() < MAX_FTP_PINS {
                self.ftp_pins.insert(endpoint, (worker, ts));
            }
        }
        Steer::To(worker)
    }

    /// Marks the frame held last as carrying `part` only (its tunnel's outer layer went ahead).
    fn hold_last_as(&mut self, part: FramePart) {
        let held = self.last_held.and_then(|id| self.held.get_mut(&id)).and_then(|frames| frames.last_mut());
        if let Some(frame) = held {
            frame.part = part;
        }
    }

    /// The worker an FTP data connection was pinned to, if this flow is one.
    fn pinned(&mut self, key: &FlowKey, ts: Timestamp) -> Option<usize> {
        let canonical = key.canonical().0;
        if let Some((worker, last)) = self.pinned_flows.get_mut(&canonical) {
            *last = ts;
            return Some(*worker);
        }
        let to_dst = FtpEndpoint { listener: key.dst_ip, port: key.dst_port, peer: key.src_ip };
        let to_src = FtpEndpoint { listener: key.src_ip, port: key.src_port, peer: key.dst_ip };
        let (worker, _) = self.ftp_pins.get(&to_dst).or_else(|| self.ftp_pins.get(&to_src)).copied()?;
        if self.pinned_flows.len() < MAX_PINNED_FLOWS {
            self.pinned_flows.insert(canonical, (worker, ts));
        }
        Some(worker)
    }

    fn steer_fragment(&mut self, pcap_cnt: u64, ts: Timestamp, link: LinkType, frame: &[u8], id: DatagramId, first: Option<FlowKey>) -> Steer {
        if let Some(key) = first {
            let worker = self.worker_of(&key);
            if self.fragment_owner.len() < MAX_FRAGMENT_OWNERS {
                self.fragment_owner.insert(id, (worker, ts));
            }
            return match self.held.remove(&id) {
                Some(frames) => {
                    self.held_bytes -= frames.iter().map(|f| f.frame.len()).sum::<usize>();
                    Steer::Release { worker, frames }
                }
                None => Steer::To(worker),
            };
        }
        if let Some((worker, _)) = self.fragment_owner.get(&id) {
            return Steer::To(*worker);
        }
        self.held_bytes += frame.len();
        self.held.entry(id).or_default().push(HeldFrame { pcap_cnt, ts, link, part: FramePart::Whole, frame: frame.to_vec() });
        self.last_held = Some(id);
        Steer::Held
    }

    /// Held fragments that waited too long (or overflow the cap), each datagram's frames with the
    /// worker its addresses choose; and a sweep of the steering tables now and then.
    fn take_expired(&mut self, now: Timestamp) -> Vec<(usize, Vec<HeldFrame>)> {
        let mut out = Vec::new();
        let sweep = self.frames % SWEEP_EVERY == 0;
        if self.held.is_empty() && !sweep {
            return out;
        }
        let timeout = self.held_timeout;
        let mut expired: Vec<DatagramId> =
            self.held.iter().filter(|(_, frames)| frames.first().is_some_and(|f| now.since(f.ts) >= timeout)).map(|(id, _)| *id).collect();
        if self.held_bytes > MAX_HELD_FRAGMENT_BYTES {
            // Over the cap: the oldest datagrams go first.
            let mut by_age: Vec<(Timestamp, DatagramId)> =
                self.held.iter().filter_map(|(id, f)| f.first().map(|f| (f.ts, *id))).collect();
            by_age.sort_by_key(|(ts, _)| *ts);
            let mut bytes = self.held_bytes;
            for (_, id) in by_age {
                if bytes <= MAX_HELD_FRAGMENT_BYTES / 2 {
                    break;
                }
                bytes -= self.held.get(&id).map_or(0, |f| f.iter().map(|f| f.frame.len()).sum());
                expired.push(id);
            }
        }
        expired.sort_by_key(|id| self.held.get(id).and_then(|f| f.first()).map(|f| f.ts));
        expired.dedup();
        for id in expired {
            if let Some(frames) = self.held.remove(&id) {
                self.held_bytes -= frames.iter().map(|f| f.frame.len()).sum::<usize>();
                out.push((self.worker_of_addresses(&id), frames));
            }
        }
        if sweep {
            self.fragment_owner.retain(|_, (_, seen)| now.since(*seen) < timeout);
            self.ftp_pins.retain(|_, (_, seen)| now.since(*seen) < FTP_PIN_TIMEOUT);
            self.pinned_flows.retain(|_, (_, seen)| now.since(*seen) < PINNED_FLOW_IDLE);
        }
        out
    }

    /// Every held fragment, at the end of a run.
    fn take_all_held(&mut self) -> Vec<(usize, Vec<HeldFrame>)> {
        let mut ids: Vec<DatagramId> = self.held.keys().copied().collect();
        ids.sort_by_key(|id| self.held.get(id).and_then(|f| f.first()).map(|f| f.ts));
        self.held_bytes = 0;
        ids.into_iter()
            .filter_map(|id| self.held.remove(&id).map(|frames| (self.worker_of_addresses(&id), frames)))
            .collect()
    }
}
