//! IPv4 and IPv6 defragmentation, keyed by addresses, id, protocol, VLANs and tunnel depth.
//!
//! Each datagram under reassembly keeps one byte buffer and, per byte, which fragment wrote it.
//! A new fragment's bytes replace held ones only where the [`OverlapPolicy`] says the new fragment
//! wins against the fragment that wrote them, so every target-based policy is one comparison
//! rule and the rebuilt bytes never depend on how the fragments were stored.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use weir_core::{Timestamp, Vlans};

use crate::checksum::internet_checksum;
use crate::config::{DefragConfig, OverlapPolicy};
use crate::counters::DefragStats;
use crate::packet::IpVersion;

/// Largest IP datagram: the IPv4 total length field, and the IPv6 payload length field (RFC 791,
/// RFC 8200; jumbograms are not fragmented).
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// Bookkeeping charged to every datagram under reassembly, so the memory cap also bounds how many
/// there can be.
const TRACKER_OVERHEAD: usize = 256;

/// Per held byte: the byte and the index of the fragment that wrote it.
const BYTES_PER_HELD_BYTE: usize = 3;

/// The most one datagram can hold: a full buffer plus headers up to the size of a maximal packet.
pub const MAX_DATAGRAM_MEMORY: usize = MAX_DATAGRAM_LEN * BYTES_PER_HELD_BYTE + TRACKER_OVERHEAD + 2 * MAX_DATAGRAM_LEN;

/// A byte no fragment has written.
const HOLE: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    pub vlans: Vlans,
    pub tunnel_depth: u8,
}

/// One fragment as the decoder found it.
pub(crate) struct FragmentIn<'a> {
    pub key: FragKey,
    pub version: IpVersion,
    /// Offset of `data` in the fragmentable part, in bytes.
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
    /// The frame from its start to the IP header.
    pub link_header: &'a [u8],
    /// IPv4: the header with options. IPv6: the fixed header and the extension headers before the
    /// fragment header (the unfragmentable part), without the fragment header.
    pub ip_header: &'a [u8],
    /// IPv6: where in `ip_header` the next-header byte that named the fragment header sits.
    pub next_header_pos: usize,
    /// IPv6: the fragment header's next header.
    pub next_header: u8,
}

/// A datagram rebuilt from its fragments.
pub(crate) struct Rebuilt {
    /// The first fragment's link header followed by the rebuilt datagram.
    pub frame: Vec<u8>,
    pub ip_offset: usize,
}

struct Tracker {
    deadline: (Timestamp, u64),
    version: IpVersion,
    link_header: Vec<u8>,
    ip_header: Vec<u8>,
    next_header_pos: usize,
    next_header: u8,
    have_first: bool,
    data: Vec<u8>,
    owner: Vec<u16>,
    /// (start, end) of every fragment accepted, indexed by `owner`.
    spans: Vec<(u32, u32)>,
    covered: usize,
    /// Where the datagram ends, once the last fragment (MF clear) was seen.
    end: Option<u32>,
    memory: usize,
}

impl Tracker {
    fn measure(&mut self) -> usize {
        self.memory = TRACKER_OVERHEAD
            + self.data.len() * BYTES_PER_HELD_BYTE
            + self.link_header.len()
            + self.ip_header.len()
            + self.spans.len() * 8;
        self.memory
    }

    fn complete(&self) -> bool {
        self.have_first
            && self
                .end
                .is_some_and(|end| self.covered == end as usize && self.data.len() == end as usize)
    }

    fn rebuild(&self) -> Rebuilt {
        let mut frame = Vec::with_capacity(self.link_header.len() + self.ip_header.len() + self.data.len());
        frame.extend_from_slice(&self.link_header);
        let ip_offset = frame.len();
        let mut header = self.ip_header.clone();
        match self.version {
            IpVersion::V4 => {
                // Insertion keeps header + data <= 65535.
                let total = (header.len() + self.data.len()) as u16;
                if header.len() >= 20 {
                    header[2..4].copy_from_slice(&total.to_be_bytes());
                    header[6] = 0;
                    header[7] = 0;
                    header[10] = 0;
                    header[11] = 0;
                    let sum = internet_checksum(&header);
                    header[10..12].copy_from_slice(&sum.to_be_bytes());
                }
            }
            IpVersion::V6 => {
                let payload = (header.len().saturating_sub(40) + self.data.len()) as u16;
                if header.len() >= 40 {
                    header[4..6].copy_from_slice(&payload.to_be_bytes());
                }
                if let Some(byte) = header.get_mut(self.next_header_pos) {
                    *byte = self.next_header;
                }
            }
        }
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&self.data);
        Rebuilt { frame, ip_offset }
    }
}

/// The anomalies defragmentation raises, spelled per IP version.
pub(crate) fn event(version: IpVersion, what: FragEvent) -> &'static str {
    match (version, what) {
        (IpVersion::V4, FragEvent::Overlap) => "ipv4.frag_overlap",
        (IpVersion::V6, FragEvent::Overlap) => "ipv6.frag_overlap",
        (IpVersion::V4, FragEvent::TooLarge) => "ipv4.frag_pkt_too_large",
        (IpVersion::V6, FragEvent::TooLarge) => "ipv6.frag_pkt_too_large",
        (IpVersion::V4, FragEvent::Ignored) => "ipv4.frag_ignored",
        (IpVersion::V6, FragEvent::Ignored) => "ipv6.frag_ignored",
        // IPv4 has no such event in Suricata; the decoder only raises it for IPv6.
        (_, FragEvent::InvalidLength) => "ipv6.frag_invalid_length",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragEvent {
    Overlap,
    TooLarge,
    Ignored,
    InvalidLength,
}

pub(crate) struct Defragmenter {
    config: DefragConfig,
    trackers: HashMap<FragKey, Tracker>,
    /// Deadlines, oldest first: drives timeouts and memcap eviction.
    by_deadline: BTreeMap<(Timestamp, u64), FragKey>,
    next_serial: u64,
    memory: usize,
    pub stats: DefragStats,
}

impl Defragmenter {
    pub fn new(config: DefragConfig) -> Self {
        Defragmenter {
            config,
            trackers: HashMap::new(),
            by_deadline: BTreeMap::new(),
            next_serial: 0,
            memory: 0,
            stats: DefragStats::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn remove(&mut self, key: &FragKey) -> Option<Tracker> {
        let tracker = self.trackers.remove(key)?;
        self.by_deadline.remove(&tracker.deadline);
        self.memory -= tracker.memory;
        self.publish();
        Some(tracker)
    }

    fn publish(&mut self) {
        self.stats.trackers_in_use = self.trackers.len() as u64;
        self.stats.memory_in_use = self.memory as u64;
    }

    /// Drops datagrams whose time ran out by packet time `now`.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some((&(deadline, _), &key)) = self.by_deadline.first_key_value() {
            if deadline > now {
                break;
            }
            self.remove(&key);
            self.stats.timeouts += 1;
        }
    }

    /// Adds one fragment; returns the rebuilt datagram when this fragment completed it.
    pub fn insert(
        &mut self,
        ts: Timestamp,
        frag: &FragmentIn<'_>,
        raise: &mut dyn FnMut(FragEvent),
    ) -> Option<Rebuilt> {
        match frag.version {
            IpVersion::V4 => self.stats.ipv4_fragments += 1,
            IpVersion::V6 => self.stats.ipv6_fragments += 1,
        }
        // A fragment without data adds nothing (Suricata ignores it too); as a "last" fragment it
        // would only fix an end no data reaches.
        if frag.data.is_empty() {
            return None;
        }
        let start = frag.offset as usize;
        let end = start + frag.data.len();
        let limit = match frag.version {
            IpVersion::V4 => MAX_DATAGRAM_LEN.saturating_sub(frag.ip_header.len()),
            IpVersion::V6 => MAX_DATAGRAM_LEN.saturating_sub(frag.ip_header.len().saturating_sub(40)),
        };
        if end > limit {
            raise(FragEvent::TooLarge);
            return None;
        }
        // RFC 8200 section 4.5: every fragment but the last carries a multiple of 8 bytes.
        if frag.version == IpVersion::V6 && frag.more && !frag.data.len().is_multiple_of(8) {
            raise(FragEvent::InvalidLength);
            return None;
        }
        if !self.trackers.contains_key(&frag.key) {
            let deadline = (ts.add(Duration::from_secs(self.config.timeout_secs)), self.next_serial);
            self.next_serial += 1;
            let mut tracker = Tracker {
                deadline,
                version: frag.version,
                link_header: Vec::new(),
                ip_header: Vec::new(),
                next_header_pos: 0,
                next_header: 0,
                have_first: false,
                data: Vec::new(),
                owner: Vec::new(),
                spans: Vec::new(),
                covered: 0,
                end: None,
                memory: 0,
            };
            self.memory += tracker.measure();
            self.by_deadline.insert(deadline, frag.key);
            self.trackers.insert(frag.key, tracker);
        }
        let tracker = self.trackers.get(&frag.key)?;
        if tracker.spans.len() >= self.config.max_fragments {
            self.remove(&frag.key);
            self.stats.max_fragments_reached += 1;
            raise(FragEvent::Ignored);
            return None;
        }
        // Make room for the worst this fragment can add before adding it, oldest datagrams first.
        let growth = end.saturating_sub(tracker.data.len()) * BYTES_PER_HELD_BYTE
            + frag.link_header.len()
            + frag.ip_header.len()
            + 8;
        while self.memory + growth > self.config.memcap {
            let Some((_, &oldest)) = self.by_deadline.first_key_value() else {
                break;
            };
            if oldest == frag.key {
                // The datagram itself is the oldest: keep it only if the cap allows it alone.
                if self.by_deadline.len() == 1 {
                    break;
                }
                let Some((&deadline, _)) = self.by_deadline.iter().nth(1) else {
                    break;
                };
                let Some(&next) = self.by_deadline.get(&deadline) else {
                    break;
                };
                self.remove(&next);
            } else {
                self.remove(&oldest);
            }
            self.stats.memcap_evictions += 1;
        }
        if self.memory + growth > self.config.memcap {
            self.remove(&frag.key);
            self.stats.memcap_evictions += 1;
            raise(FragEvent::Ignored);
            return None;
        }

        let policy = self.config.policy;
        let tracker = self.trackers.get_mut(&frag.key)?;
        let overlapped = paint(tracker, policy, frag);
        let before = tracker.memory;
        let after = tracker.measure();
        self.memory = self.memory - before + after;
        if overlapped {
            raise(FragEvent::Overlap);
        }
        let done = tracker.complete();
        self.publish();
        if !done {
            return None;
        }
        let tracker = self.remove(&frag.key)?;
        match tracker.version {
            IpVersion::V4 => self.stats.ipv4_reassembled += 1,
            IpVersion::V6 => self.stats.ipv6_reassembled += 1,
        }
        Some(tracker.rebuild())
    }
}

/// Writes a fragment's bytes into its datagram where the policy lets it; returns whether it
/// overlapped bytes already held.
fn paint(tracker: &mut Tracker, policy: OverlapPolicy, frag: &FragmentIn<'_>) -> bool {
    let start = frag.offset;
    let mut end = start + frag.data.len() as u32;
    if !frag.more && tracker.end.is_none() {
        tracker.end = Some(end);
        // Bytes past the end are not part of the datagram.
        let cut = end as usize;
        if tracker.data.len() > cut {
            tracker.covered -= tracker.owner[cut..].iter().filter(|&&o| o != HOLE).count();
            tracker.data.truncate(cut);
            tracker.owner.truncate(cut);
        }
    }
    if let Some(limit) = tracker.end {
        end = end.min(limit);
    }
    let index = tracker.spans.len() as u16;
    tracker.spans.push((start, start + frag.data.len() as u32));
    if end as usize > tracker.data.len() {
        tracker.data.resize(end as usize, 0);
        tracker.owner.resize(end as usize, HOLE);
    }
    let new_span = (start, start + frag.data.len() as u32);
    let mut overlapped = false;
    for pos in start..end.max(start) {
        let at = pos as usize;
        let byte = frag.data[(pos - start) as usize];
        let held = tracker.owner[at];
        let write = if held == HOLE {
            tracker.covered += 1;
            true
        } else {
            overlapped = true;
            policy.new_wins(new_span, tracker.spans[usize::from(held)])
        };
        if write {
            tracker.data[at] = byte;
            tracker.owner[at] = index;
            if at == 0 || (frag.offset == 0 && !tracker.have_first) {
                take_headers(tracker, frag);
            }
        }
    }
    overlapped
}

fn take_headers(tracker: &mut Tracker, frag: &FragmentIn<'_>) {
    tracker.have_first = true;
    tracker.link_header.clear();
    tracker.link_header.extend_from_slice(frag.link_header);
    tracker.ip_header.clear();
    tracker.ip_header.extend_from_slice(frag.ip_header);
    tracker.next_header_pos = frag.next_header_pos;
    tracker.next_header = frag.next_header;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 7,
            proto: 17,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        }
    }

    /// A 20-byte IPv4 header (no options), as every fragment of these tests carries.
    const HEADER: [u8; 20] = [0x45, 0, 0, 0, 0, 7, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];

    fn frag(offset: u32, more: bool, data: &[u8]) -> FragmentIn<'_> {
        FragmentIn {
            key: key(),
            version: IpVersion::V4,
            offset,
            more,
            data,
            link_header: &[],
            ip_header: &HEADER,
            next_header_pos: 0,
            next_header: 0,
        }
    }

    fn run(policy: OverlapPolicy, frags: &[(u32, bool, &[u8])]) -> (Option<Vec<u8>>, Vec<FragEvent>) {
        let config = DefragConfig {
            policy,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(config);
        let mut events = Vec::new();
        let mut out = None;
        for &(offset, more, data) in frags {
            if let Some(r) = d.insert(Timestamp::ZERO, &frag(offset, more, data), &mut |e| events.push(e)) {
                out = Some(r.frame[r.ip_offset + 20..].to_vec());
            }
        }
        (out, events)
    }

    #[test]
    fn in_order_and_reverse_rebuild_the_same_bytes() {
        let a = [b'a'; 8];
        let b = [b'b'; 8];
        let c = [b'c'; 3];
        let want = [&a[..], &b[..], &c[..]].concat();
        let (fwd, ev) = run(OverlapPolicy::Bsd, &[(0, true, &a), (8, true, &b), (16, false, &c)]);
        assert_eq!(fwd.as_deref(), Some(&want[..]));
        assert!(ev.is_empty());
        let (rev, _) = run(OverlapPolicy::Bsd, &[(16, false, &c), (8, true, &b), (0, true, &a)]);
        assert_eq!(rev.as_deref(), Some(&want[..]));
    }

    #[test]
    fn rebuilt_ipv4_header_has_length_no_fragment_bits_and_a_valid_checksum() {
        let config = DefragConfig::default();
        let mut d = Defragmenter::new(config);
        let link = [0xee; 14];
        let mut f = frag(0, true, &[1; 8]);
        f.link_header = &link;
        assert!(d.insert(Timestamp::ZERO, &f, &mut |_| {}).is_none());
        let r = d
            .insert(Timestamp::ZERO, &frag(8, false, &[2; 4]), &mut |_| {})
            .unwrap();
        assert_eq!(r.ip_offset, 14);
        assert_eq!(&r.frame[..14], &link);
        let ip = &r.frame[14..];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 32); // 20 + 12
        assert_eq!(&ip[6..8], &[0, 0]);
        assert!(crate::checksum::verifies(&ip[..20]));
        assert_eq!(&ip[20..], &[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(d.stats.ipv4_reassembled, 1);
        assert_eq!(d.stats.trackers_in_use, 0);
        assert_eq!(d.stats.memory_in_use, 0);
    }

    /// Held first: A at 0..16, B at 16..24, C at 32..40 (a hole at 24..32). Then, overlapping:
    /// E at 8..24 (starts inside A; starts before B and ends with it), F at 24..40 (fills the hole;
    /// starts before C and ends with it), G at 24..48 (same start as F, ends after it), and last
    /// D at 40..48 (starts after G, ends with it), which completes the datagram.
    fn overlap_case(policy: OverlapPolicy) -> String {
        let frags: [(u32, bool, &[u8]); 7] = [
            (0, true, &[b'A'; 16]),
            (16, true, &[b'B'; 8]),
            (32, true, &[b'C'; 8]),
            (8, true, &[b'E'; 16]),
            (24, true, &[b'F'; 16]),
            (24, true, &[b'G'; 24]),
            (40, false, &[b'D'; 8]),
        ];
        let (out, ev) = run(policy, &frags);
        assert!(ev.contains(&FragEvent::Overlap));
        String::from_utf8(out.expect("complete")).unwrap()
    }

    fn spell(runs: &[(char, usize)]) -> String {
        runs.iter().map(|&(c, n)| c.to_string().repeat(n)).collect()
    }

    #[test]
    fn overlap_policies_pick_the_expected_bytes() {
        use OverlapPolicy::*;
        assert_eq!(
            overlap_case(First),
            spell(&[('A', 16), ('B', 8), ('F', 8), ('C', 8), ('G', 8)])
        );
        assert_eq!(overlap_case(Last), spell(&[('A', 8), ('E', 16), ('G', 16), ('D', 8)]));
        // bsd: E beats B and F beats C (they start before); G does not beat F (same start).
        assert_eq!(overlap_case(Bsd), spell(&[('A', 16), ('E', 8), ('F', 16), ('G', 8)]));
        // linux: as bsd, and G beats F because they start at the same offset.
        assert_eq!(overlap_case(Linux), spell(&[('A', 16), ('E', 8), ('G', 24)]));
        // windows: only G over C starts before and ends after.
        assert_eq!(
            overlap_case(Windows),
            spell(&[('A', 16), ('B', 8), ('F', 8), ('G', 16)])
        );
        // solaris: starts before and ends at or after: E over B, F over C.
        assert_eq!(
            overlap_case(Solaris),
            spell(&[('A', 16), ('E', 8), ('F', 16), ('G', 8)])
        );
        // bsd-right: ends after: E over A, G over F and C.
        assert_eq!(
            overlap_case(BsdRight),
            spell(&[('A', 8), ('E', 8), ('B', 8), ('G', 24)])
        );
    }

    /// The Sturges/Novak pattern ("Target-Based Fragmentation Reassembly"), whose per-policy
    /// results Suricata's unit tests also check: nine fragments, then seven overlapping ones, then
    /// the last fragment.
    fn sturges_novak(policy: OverlapPolicy) -> String {
        let f = |offset: u32, c: u8, len: usize| (offset, true, vec![c; len]);
        let mut frags = vec![
            f(0, b'A', 24),
            f(32, b'B', 16),
            f(48, b'C', 24),
            f(80, b'D', 8),
            f(104, b'E', 16),
            f(120, b'F', 24),
            f(144, b'G', 16),
            f(160, b'H', 16),
            f(176, b'I', 8),
            f(8, b'J', 32),
            f(48, b'K', 24),
            f(72, b'L', 24),
            f(96, b'M', 24),
            f(128, b'N', 8),
            f(152, b'O', 8),
            f(160, b'P', 8),
        ];
        frags.push((176, false, vec![b'Q'; 16]));
        let borrowed: Vec<(u32, bool, &[u8])> = frags.iter().map(|(o, m, d)| (*o, *m, d.as_slice())).collect();
        let (out, ev) = run(policy, &borrowed);
        assert!(ev.contains(&FragEvent::Overlap));
        String::from_utf8(out.expect("complete")).unwrap()
    }

    #[test]
    fn sturges_novak_results_per_policy() {
        use OverlapPolicy::*;
        let s = |runs: &[(char, usize)]| spell(&runs.iter().map(|&(c, n)| (c, n * 8)).collect::<Vec<_>>());
        assert_eq!(
            sturges_novak(Bsd),
            s(&[
                ('A', 3),
                ('J', 2),
                ('B', 1),
                ('C', 3),
                ('L', 3),
                ('M', 3),
                ('F', 3),
                ('G', 2),
                ('H', 2),
                ('I', 1),
                ('Q', 1)
            ])
        );
        assert_eq!(
            sturges_novak(Linux),
            s(&[
                ('A', 3),
                ('J', 2),
                ('B', 1),
                ('K', 3),
                ('L', 3),
                ('M', 3),
                ('F', 3),
                ('G', 2),
                ('P', 1),
                ('H', 1),
                ('Q', 2)
            ])
        );
        assert_eq!(
            sturges_novak(Windows),
            s(&[
                ('A', 3),
                ('J', 1),
                ('B', 2),
                ('C', 3),
                ('L', 3),
                ('M', 1),
                ('E', 2),
                ('F', 3),
                ('G', 2),
                ('H', 2),
                ('I', 1),
                ('Q', 1)
            ])
        );
        assert_eq!(
            sturges_novak(Solaris),
            s(&[
                ('A', 3),
                ('J', 1),
                ('B', 2),
                ('C', 3),
                ('L', 3),
                ('M', 3),
                ('F', 3),
                ('G', 2),
                ('H', 2),
                ('I', 1),
                ('Q', 1)
            ])
        );
        assert_eq!(
            sturges_novak(First),
            s(&[
                ('A', 3),
                ('J', 1),
                ('B', 2),
                ('C', 3),
                ('L', 1),
                ('D', 1),
                ('L', 1),
                ('M', 1),
                ('E', 2),
                ('F', 3),
                ('G', 2),
                ('H', 2),
                ('I', 1),
                ('Q', 1)
            ])
        );
        assert_eq!(
            sturges_novak(Last),
            s(&[
                ('A', 1),
                ('J', 4),
                ('B', 1),
                ('K', 3),
                ('L', 3),
                ('M', 3),
                ('F', 1),
                ('N', 1),
                ('F', 1),
                ('G', 1),
                ('O', 1),
                ('P', 1),
                ('H', 1),
                ('Q', 2)
            ])
        );
    }

    #[test]
    fn bsd_and_solaris_differ_when_the_new_fragment_ends_first() {
        // Held X at 8..24, then Y at 0..16 and the last fragment Z at 24..32.
        let frags: [(u32, bool, &[u8]); 3] = [(8, true, &[b'X'; 16]), (0, true, &[b'Y'; 16]), (24, false, &[b'Z'; 8])];
        let text = |p| String::from_utf8(run(p, &frags).0.unwrap()).unwrap();
        assert_eq!(text(OverlapPolicy::Bsd), spell(&[('Y', 16), ('X', 8), ('Z', 8)]));
        assert_eq!(text(OverlapPolicy::Solaris), spell(&[('Y', 8), ('X', 16), ('Z', 8)]));
    }

    #[test]
    fn windows_prefers_a_fragment_that_covers_the_held_one_on_both_sides() {
        let frags: [(u32, bool, &[u8]); 3] = [(8, true, &[b'o'; 8]), (0, true, &[b'n'; 24]), (24, false, &[b'z'; 8])];
        let (out, _) = run(OverlapPolicy::Windows, &frags);
        assert_eq!(out.unwrap(), [[b'n'; 24].as_slice(), &[b'z'; 8]].concat());
        let (out, _) = run(OverlapPolicy::First, &frags);
        assert_eq!(
            out.unwrap(),
            [&[b'n'; 8][..], &[b'o'; 8], &[b'n'; 8], &[b'z'; 8]].concat()
        );
    }

    #[test]
    fn datagrams_over_65535_bytes_are_refused() {
        let data = [0u8; 16];
        let (out, ev) = run(OverlapPolicy::Bsd, &[(65_520, false, &data)]);
        assert!(out.is_none());
        assert_eq!(ev, vec![FragEvent::TooLarge]);
        assert_eq!(event(IpVersion::V4, FragEvent::TooLarge), "ipv4.frag_pkt_too_large");
    }

    #[test]
    fn timeout_by_packet_time_drops_the_datagram() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let t0 = Timestamp::from_secs_nanos(100, 0);
        assert!(d.insert(t0, &frag(0, true, &[1; 8]), &mut |_| {}).is_none());
        d.expire(Timestamp::from_secs_nanos(159, 999_999_999));
        assert_eq!(d.stats.trackers_in_use, 1);
        d.expire(Timestamp::from_secs_nanos(160, 0));
        assert_eq!(d.stats.timeouts, 1);
        assert_eq!(d.stats.trackers_in_use, 0);
        // The second half alone no longer completes anything.
        assert!(
            d.insert(
                Timestamp::from_secs_nanos(161, 0),
                &frag(8, false, &[2; 8]),
                &mut |_| {}
            )
            .is_none()
        );
    }

    #[test]
    fn memcap_evicts_the_oldest_datagram_first() {
        let config = DefragConfig {
            memcap: MAX_DATAGRAM_MEMORY,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(config);
        let big = vec![0u8; 60_000];
        let mut first = frag(0, true, &big);
        first.key.id = 1;
        assert!(d.insert(Timestamp::ZERO, &first, &mut |_| {}).is_none());
        let mut second = frag(0, true, &big);
        second.key.id = 2;
        assert!(d.insert(Timestamp::ZERO, &second, &mut |_| {}).is_none());
        assert_eq!(d.stats.memcap_evictions, 1);
        assert_eq!(d.stats.trackers_in_use, 1);
        // Datagram 2 survived: its tail completes it; datagram 1 lost its head, so its tail
        // completes nothing.
        let mut tail2 = frag(60_000, false, &[2]);
        tail2.key.id = 2;
        assert!(d.insert(Timestamp::ZERO, &tail2, &mut |_| {}).is_some());
        let mut tail1 = frag(60_000, false, &[1]);
        tail1.key.id = 1;
        assert!(d.insert(Timestamp::ZERO, &tail1, &mut |_| {}).is_none());
        assert!(d.stats.memory_in_use <= MAX_DATAGRAM_MEMORY as u64);
    }

    #[test]
    fn empty_fragments_are_ignored() {
        let mut d = Defragmenter::new(DefragConfig::default());
        assert!(d.insert(Timestamp::ZERO, &frag(8, false, &[]), &mut |_| {}).is_none());
        assert_eq!(d.stats.trackers_in_use, 0);
    }

    #[test]
    fn too_many_fragments_drop_the_datagram() {
        let config = DefragConfig {
            max_fragments: 2,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(config);
        let mut events = Vec::new();
        for i in 0..3u32 {
            d.insert(Timestamp::ZERO, &frag(i * 8, true, &[0; 8]), &mut |e| events.push(e));
        }
        assert_eq!(events, vec![FragEvent::Ignored]);
        assert_eq!(d.stats.max_fragments_reached, 1);
    }

    #[test]
    fn ipv6_non_final_fragment_must_be_a_multiple_of_8() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut f = frag(0, true, &[0; 12]);
        f.version = IpVersion::V6;
        let mut events = Vec::new();
        assert!(d.insert(Timestamp::ZERO, &f, &mut |e| events.push(e)).is_none());
        assert_eq!(events, vec![FragEvent::InvalidLength]);
    }
}
