use std::collections::HashMap;
use std::time::Duration;

use weir_core::{AppProto, Direction, FlowKey, IpProto, Timestamp};

use crate::config::{FlowConfig, Timeouts, WhenFull};

/// Where a flow is in its life, as EVE `flow.state` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Only one direction seen (for TCP: no completed handshake).
    New,
    Established,
    /// TCP after FIN/RST.
    Closed,
}

impl Lifecycle {
    pub fn eve(self) -> &'static str {
        match self {
            Lifecycle::New => "new",
            Lifecycle::Established => "established",
            Lifecycle::Closed => "closed",
        }
    }

    fn index(self) -> usize {
        match self {
            Lifecycle::New => 0,
            Lifecycle::Established => 1,
            Lifecycle::Closed => 2,
        }
    }
}

/// Why a flow ended, as EVE `flow.reason` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Idle past its timeout.
    Timeout,
    /// Evicted to make room, or ended early by the worker (e.g. TCP port reuse).
    Forced,
    /// End of capture or shutdown.
    Shutdown,
}

impl EndReason {
    pub fn eve(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// One flow and the worker's state for it.
#[derive(Debug)]
pub struct Flow<S> {
    /// Unique per run; shared by every EVE record of the flow.
    pub id: u64,
    /// Oriented client to server: the first packet's source is the client, unless the worker
    /// learns otherwise and calls [`FlowTable::reverse`].
    pub key: FlowKey,
    pub start: Timestamp,
    pub last_seen: Timestamp,
    /// Indexed by [`Direction::index`].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub lifecycle: Lifecycle,
    pub app_proto: Option<AppProto>,
    pub alerted: bool,
    pub state: S,
}

/// A flow that has left the table, for the worker to flush and log.
#[derive(Debug)]
pub struct ClosedFlow<S> {
    pub flow: Flow<S>,
    pub reason: EndReason,
}

/// Names a flow in the table. A handle to a flow that has since ended finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowHandle {
    index: u32,
    generation: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub active: usize,
    pub created: u64,
    pub timed_out: u64,
    /// Ended early because the table was full.
    pub evicted: u64,
    /// New flows refused because the table was full (`WhenFull::RefuseNew`).
    pub refused: u64,
}

const NONE: u32 = u32::MAX;
const PROTO_GROUPS: usize = 4;
const CLASSES: usize = PROTO_GROUPS * 3;

struct Slot<S> {
    generation: u32,
    entry: Option<Entry<S>>,
}

struct Entry<S> {
    flow: Flow<S>,
    /// The map key: the canonical form of `flow.key`, kept so reversal never loses the entry.
    canonical: FlowKey,
    class: usize,
    /// When the flow was last touched, in table operations: breaks ties between flows seen at the
    /// same packet time, so eviction is exactly least-recently-used.
    touched: u64,
    prev: u32,
    next: u32,
}

/// A doubly linked LRU list threaded through the slots: head is the most recently seen.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The flow table. See the crate docs for how expiry and eviction work.
pub struct FlowTable<S> {
    config: FlowConfig,
    map: HashMap<FlowKey, u32>,
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    stats: TableStats,
    clock: u64,
}

fn proto_group(proto: IpProto) -> usize {
    match proto {
        IpProto::TCP => 0,
        IpProto::UDP => 1,
        IpProto::ICMP | IpProto::ICMPV6 => 2,
        _ => 3,
    }
}

/// A well-mixed 51-bit id from the flow's canonical key and first packet time: deterministic for a
/// replay whichever worker holds the flow (so one worker and several log the same ids), and exact
/// in JSON readers that hold numbers as doubles (jq).
fn flow_id(canonical: &FlowKey, start: Timestamp) -> u64 {
    let mut z = canonical.symmetric_hash() ^ start.as_nanos().rotate_left(29);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z & ((1 << 51) - 1)).max(1)
}

impl<S> FlowTable<S> {
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            map: HashMap::with_capacity(config.max_flows.min(1 << 16)),
            config,
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List { head: NONE, tail: NONE }; CLASSES],
            stats: TableStats::default(),
            clock: 0,
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    pub fn stats(&self) -> TableStats {
        TableStats { active: self.map.len(), ..self.stats }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn timeouts(&self, proto: IpProto) -> &Timeouts {
        match proto_group(proto) {
            0 => &self.config.tcp,
            1 => &self.config.udp,
            2 => &self.config.icmp,
            _ => &self.config.other,
        }
    }

    fn timeout_of(&self, flow: &Flow<S>) -> Duration {
        let t = self.timeouts(flow.key.proto);
        Duration::from_secs(match flow.lifecycle {
            Lifecycle::New => t.new,
            Lifecycle::Established => t.established,
            Lifecycle::Closed => t.closed,
        })
    }

    fn is_timed_out(&self, flow: &Flow<S>, now: Timestamp) -> bool {
        now.since(flow.last_seen) > self.timeout_of(flow)
    }

    /// Finds the flow a packet belongs to, creating it when there is none, and counts the packet.
    /// Flows that end on the way (a timed-out flow the packet would have revived, or the least
    /// recently seen flow evicted to make room) are pushed to `ended`. `None`: the table is full
    /// and refuses new flows (`WhenFull::RefuseNew`); the packet is counted nowhere here.
    pub fn lookup(
        &mut self,
        key: &FlowKey,
        ts: Timestamp,
        wire_len: u32,
        new_state: impl FnOnce() -> S,
        ended: &mut Vec<ClosedFlow<S>>,
    ) -> Option<(FlowHandle, Direction)> {
        let (canonical, _) = key.canonical();
        if let Some(&index) = self.map.get(&canonical) {
            let timed_out = match self.entry(index) {
                Some(e) => self.is_timed_out(&e.flow, ts),
                None => false,
            };
            if timed_out {
                self.stats.timed_out += 1;
                if let Some(closed) = self.remove(index, EndReason::Timeout) {
                    ended.push(closed);
                }
            } else if let Some(dir) = self.touch(index, key, ts, wire_len) {
                let generation = self.slots[index as usize].generation;
                return Some((FlowHandle { index, generation }, dir));
            }
        }
        if self.map.len() >= self.config.max_flows.max(1)
            && let Some(index) = self.least_recent()
        {
            if let WhenFull::RefuseNew { idle } = self.config.when_full {
                let idle_for = self.entry(index).map_or(Duration::ZERO, |e| ts.since(e.flow.last_seen));
                if idle_for < idle {
                    self.stats.refused += 1;
                    return None;
                }
            }
            self.stats.evicted += 1;
            if let Some(closed) = self.remove(index, EndReason::Forced) {
                ended.push(closed);
            }
        }
        let handle = self.insert(*key, canonical, ts, new_state());
        self.touch(handle.index, key, ts, wire_len);
        Some((handle, Direction::ToServer))
    }

    /// The flow for this key (either direction), when it is in the table.
    pub fn handle_of(&self, key: &FlowKey) -> Option<FlowHandle> {
        let index = *self.map.get(&key.canonical().0)?;
        let slot = self.slots.get(index as usize)?;
        slot.entry.as_ref()?;
        Some(FlowHandle { index, generation: slot.generation })
    }

    /// Whether a flow for this key (either direction) is in the table.
    pub fn contains(&self, key: &FlowKey) -> bool {
        self.map.contains_key(&key.canonical().0)
    }

    pub fn get(&self, handle: FlowHandle) -> Option<&Flow<S>> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_ref().map(|e| &e.flow)
    }

    pub fn get_mut(&mut self, handle: FlowHandle) -> Option<&mut Flow<S>> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_mut().map(|e| &mut e.flow)
    }

    /// Moves a flow to another lifecycle state (and so to another timeout class).
    pub fn set_lifecycle(&mut self, handle: FlowHandle, lifecycle: Lifecycle) {
        if self.get(handle).is_none() {
            return;
        }
        let index = handle.index;
        self.unlink(index);
        if let Some(e) = self.entry_mut(index) {
            e.flow.lifecycle = lifecycle;
            e.class = proto_group(e.flow.key.proto) * 3 + lifecycle.index();
        }
        self.link_front(index);
    }

    /// Swaps client and server: the worker learned the first packet came from the server (e.g.
    /// a SYN/ACK picked up midstream). Counters swap with the orientation.
    pub fn reverse(&mut self, handle: FlowHandle) {
        if let Some(flow) = self.get_mut(handle) {
            flow.key = flow.key.reversed();
            flow.pkts.swap(0, 1);
            flow.bytes.swap(0, 1);
        }
    }

    /// Ends a flow now (e.g. a new TCP session on a closed flow's tuple).
    pub fn end(&mut self, handle: FlowHandle, reason: EndReason) -> Option<ClosedFlow<S>> {
        self.get(handle)?;
        self.remove(handle.index, reason)
    }

    /// Ends every flow whose timeout has passed at packet time `now`.
    pub fn expire(&mut self, now: Timestamp, ended: &mut Vec<ClosedFlow<S>>) {
        for class in 0..CLASSES {
            loop {
                let tail = self.lists[class].tail;
                if tail == NONE {
                    break;
                }
                let expired = match self.entry(tail) {
                    Some(e) => self.is_timed_out(&e.flow, now),
                    None => false,
                };
                if !expired {
                    break;
                }
                self.stats.timed_out += 1;
                match self.remove(tail, EndReason::Timeout) {
                    Some(closed) => ended.push(closed),
                    None => break,
                }
            }
        }
    }

    /// Ends every flow (end of capture, shutdown), oldest first.
    pub fn drain(&mut self, reason: EndReason, ended: &mut Vec<ClosedFlow<S>>) {
        while let Some(index) = self.least_recent() {
            match self.remove(index, reason) {
                Some(closed) => ended.push(closed),
                None => break,
            }
        }
    }

    fn entry(&self, index: u32) -> Option<&Entry<S>> {
        self.slots.get(index as usize)?.entry.as_ref()
    }

    fn entry_mut(&mut self, index: u32) -> Option<&mut Entry<S>> {
        self.slots.get_mut(index as usize)?.entry.as_mut()
    }

    /// Counts a packet on a flow and marks it most recently seen; returns its direction.
    fn touch(&mut self, index: u32, key: &FlowKey, ts: Timestamp, wire_len: u32) -> Option<Direction> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entry_mut(index)?;
        entry.touched = clock;
        let flow = &mut entry.flow;
        let dir = if flow.key.is_from_source(key) {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let i = dir.index();
        flow.pkts[i] += 1;
        flow.bytes[i] += u64::from(wire_len);
        if ts > flow.last_seen {
            flow.last_seen = ts;
        }
        // Port-less protocols have no handshake: a reply is what establishes them.
        let promote = flow.key.proto != IpProto::TCP && flow.lifecycle == Lifecycle::New && dir == Direction::ToClient;
        self.unlink(index);
        if promote {
            if let Some(e) = self.entry_mut(index) {
                e.flow.lifecycle = Lifecycle::Established;
                e.class = proto_group(e.flow.key.proto) * 3 + Lifecycle::Established.index();
            }
        }
        self.link_front(index);
        Some(dir)
    }

    fn insert(&mut self, key: FlowKey, canonical: FlowKey, ts: Timestamp, state: S) -> FlowHandle {
        self.stats.created += 1;
        let flow = Flow {
            id: flow_id(&canonical, ts),
            key,
            start: ts,
            last_seen: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            lifecycle: Lifecycle::New,
            app_proto: None,
            alerted: false,
            state,
        };
        let class = proto_group(key.proto) * 3 + Lifecycle::New.index();
        let entry = Entry { flow, canonical, class, touched: 0, prev: NONE, next: NONE };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].entry = Some(entry);
                i
            }
            None => {
                self.slots.push(Slot { generation: 0, entry: Some(entry) });
                // The table never holds more than max_flows (<< u32::MAX) slots.
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(canonical, index);
        self.link_front(index);
        FlowHandle { index, generation: self.slots[index as usize].generation }
    }

    fn remove(&mut self, index: u32, reason: EndReason) -> Option<ClosedFlow<S>> {
        self.unlink(index);
        let slot = self.slots.get_mut(index as usize)?;
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.map.remove(&entry.canonical);
        self.free.push(index);
        Some(ClosedFlow { flow: entry.flow, reason })
    }

    /// The least recently seen flow over all classes.
    fn least_recent(&self) -> Option<u32> {
        self.lists
            .iter()
            .filter(|l| l.tail != NONE)
            .filter_map(|l| self.entry(l.tail).map(|e| (e.flow.last_seen, e.touched, l.tail)))
            .min()
            .map(|(_, _, index)| index)
    }

    fn link_front(&mut self, index: u32) {
        let Some(class) = self.entry(index).map(|e| e.class) else { return };
        let old_head = self.lists[class].head;
        if let Some(e) = self.entry_mut(index) {
            e.prev = NONE;
            e.next = old_head;
        }
        if old_head != NONE {
            if let Some(h) = self.entry_mut(old_head) {
                h.prev = index;
            }
        } else {
            self.lists[class].tail = index;
        }
        self.lists[class].head = index;
    }

    fn unlink(&mut self, index: u32) {
        let Some((class, prev, next)) = self.entry(index).map(|e| (e.class, e.prev, e.next)) else { return };
        let list = &mut self.lists[class];
        let linked = prev != NONE || next != NONE || list.head == index;
        if !linked {
            return;
        }
        if prev != NONE {
            if let Some(p) = self.entry_mut(prev) {
                p.next = next;
            }
        } else {
            self.lists[class].head = next;
        }
        if next != NONE {
            if let Some(n) = self.entry_mut(next) {
                n.prev = prev;
            }
        } else {
            self.lists[class].tail = prev;
        }
        if let Some(e) = self.entry_mut(index) {
            e.prev = NONE;
            e.next = NONE;
        }
    }
}
