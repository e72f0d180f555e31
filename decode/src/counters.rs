//! What the decoder saw, for the `stats` records (named after Suricata's `decoder.*` and
//! `defrag.*` counters).

use std::collections::BTreeMap;

/// Running totals since the decoder was made. Read them with [`crate::Decoder::counters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to the decoder (`decoder.pkts`).
    pub packets: u64,
    /// Their bytes (`decoder.bytes`).
    pub bytes: u64,
    /// Frames or packets that stopped decoding on an error (`decoder.invalid`).
    pub invalid: u64,
    pub ethernet: u64,
    pub sll: u64,
    pub null: u64,
    pub raw: u64,
    /// Frames of a link type this decoder does not read.
    pub unsupported_link: u64,
    pub vlan: u64,
    pub vlan_qinq: u64,
    pub vlan_qinqinq: u64,
    pub mpls: u64,
    pub arp: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub gre: u64,
    pub vxlan: u64,
    pub erspan: u64,
    pub ipv4_in_ipv4: u64,
    pub ipv6_in_ipv4: u64,
    pub ipv4_in_ipv6: u64,
    pub ipv6_in_ipv6: u64,
    /// Packets handed over (fragments, tunnel layers and rebuilt datagrams included).
    pub packets_out: u64,
    /// Anomalies by Suricata event name.
    pub anomalies: BTreeMap<&'static str, u64>,
    pub defrag: DefragStats,
}

/// Defragmentation totals (`defrag.*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub ipv4_fragments: u64,
    pub ipv4_reassembled: u64,
    pub ipv6_fragments: u64,
    pub ipv6_reassembled: u64,
    /// Datagrams dropped because their time ran out before they were complete.
    pub timeouts: u64,
    /// Datagrams dropped (oldest first) to keep under the memory cap.
    pub memcap_evictions: u64,
    /// Datagrams dropped for having too many fragments.
    pub max_fragments_reached: u64,
    /// Datagrams under reassembly now, and the bytes they hold.
    pub trackers_in_use: u64,
    pub memory_in_use: u64,
}
