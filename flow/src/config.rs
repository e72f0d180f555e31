use serde::Deserialize;

/// Timeouts of one protocol, in seconds of packet time.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Only one direction seen yet.
    pub new: u64,
    /// Both directions seen (for TCP: the handshake completed).
    pub established: u64,
    /// TCP after FIN/RST: kept briefly so late retransmissions still find the flow.
    pub closed: u64,
}

impl Timeouts {
    const fn of(new: u64, established: u64, closed: u64) -> Self {
        Timeouts { new, established, closed }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::of(30, 300, 0)
    }
}

/// What a full table does with a packet of a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// The least recently seen flow is ended with reason "forced" (its outputs are flushed, not
    /// lost) to make room.
    EvictLeastRecent,
    /// The new flow is refused (the packet gets no flow) unless the least recently seen flow has
    /// been idle this long, in which case it gives way: a flood of new tuples cannot push out
    /// the sessions in use.
    RefuseNew { idle: std::time::Duration },
}

/// Flow table limits. Defaults follow Suricata's `flow` and `flow-timeouts` sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most flows held at once. When a new flow would exceed it, `when_full` decides.
    pub max_flows: usize,
    pub when_full: WhenFull,
    pub tcp: Timeouts,
    pub udp: Timeouts,
    pub icmp: Timeouts,
    /// Every other protocol.
    pub other: Timeouts,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 100_000,
            when_full: WhenFull::EvictLeastRecent,
            tcp: Timeouts::of(60, 600, 60),
            udp: Timeouts::of(30, 300, 0),
            icmp: Timeouts::of(30, 300, 0),
            other: Timeouts::default(),
        }
    }
}
