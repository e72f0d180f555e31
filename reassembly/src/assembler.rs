//! One direction's byte stream: segments in, policy-resolved in-order events out.
//!
//! Offsets are 64-bit stream positions (0 = first byte after the SYN), so sequence wrap is the
//! session's business, not this module's. Bytes below `delivered` have been handed out and are
//! final; everything above is held until the delivery rule releases it.

use std::collections::{BTreeMap, BTreeSet};

use weir_core::StreamEvent;

use crate::policy::{Extent, OverlapPolicy};

/// Bookkeeping charged per held piece or extent on top of its data, so a flood of one-byte
/// segments is charged for what it really costs (B-tree node share, Vec header, allocation).
pub const BOOKKEEPING_BYTES: usize = 64;

/// Why a segment was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Every byte of it was already delivered.
    BeforeDelivered,
    /// It starts at or past the reassembly depth.
    BeyondDepth,
    /// Storing it would exceed the session's memory budget.
    Memcap,
    /// The direction already holds its maximum number of segments.
    SegmentLimit,
    /// It would open a new out-of-order region past the limit.
    RegionLimit,
}

/// What happened to one inserted segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct InsertReport {
    /// It overlapped held data.
    pub overlap: bool,
    /// The overlapped bytes differed from the held ones.
    pub different_data: bool,
    /// Its tail past the reassembly depth was cut (the first time this happens, the session
    /// raises `stream.reassembly_depth_reached`).
    pub depth_cut: bool,
    pub rejected: Option<Rejection>,
}

/// Limits applied to one insertion.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InsertLimits {
    pub policy: OverlapPolicy,
    pub depth: u64,
    /// Bytes this direction may still add before the session's memcap is hit.
    pub memory_budget: usize,
    pub max_segments: usize,
    pub max_regions: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// Next stream offset to hand out.
    delivered: u64,
    /// Disjoint held bytes keyed by start offset; every key is >= `delivered`.
    pieces: BTreeMap<u64, Vec<u8>>,
    /// Extents of held segments (as received, cut at the depth), needed to apply the overlap
    /// policy to later segments. Pruned once wholly delivered.
    extents: BTreeSet<Extent>,
    data_bytes: usize,
    /// Highest offset any segment reached, including bytes cut by the depth.
    highest_end: u64,
    regions: usize,
    max_regions_seen: usize,
    ended: bool,
}

impl Assembler {
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Memory charged to this direction: held bytes plus bookkeeping.
    pub fn memory_used(&self) -> usize {
        self.data_bytes + (self.pieces.len() + self.extents.len()) * BOOKKEEPING_BYTES
    }

    pub fn max_regions_seen(&self) -> usize {
        self.max_regions_seen
    }

    /// Stores a segment starting at stream offset `start`, resolving overlaps with held
    /// segments by `limits.policy`.
    pub fn insert(&mut self, start: u64, data: &[u8], limits: &InsertLimits) -> InsertReport {
        let mut report = InsertReport::default();
        if data.is_empty() || self.ended {
            return report;
        }
        let full_end = start.saturating_add(data.len() as u64);
        self.highest_end = self.highest_end.max(full_end);
        if full_end <= self.delivered {
            report.rejected = Some(Rejection::BeforeDelivered);
            return report;
        }
        if start >= limits.depth {
            report.rejected = Some(Rejection::BeyondDepth);
            return report;
        }
        let end = full_end.min(limits.depth);
        report.depth_cut = end < full_end;
        if end <= self.delivered {
            // Only bytes past the depth were new.
            report.rejected = Some(Rejection::BeforeDelivered);
            return report;
        }
        let data = &data[..(end - start) as usize];
        let new = Extent { start, end };
        let write_start = start.max(self.delivered);

        // Limits first, so a rejected segment changes nothing.
        let is_new_extent = !self.extents.contains(&new);
        if is_new_extent && self.extents.len() >= limits.max_segments {
            report.rejected = Some(Rejection::SegmentLimit);
            return report;
        }
        let touched = self.regions_touched(write_start, end);
        if touched == 0 && self.regions >= limits.max_regions {
            report.rejected = Some(Rejection::RegionLimit);
            return report;
        }
        let holes = self.holes(write_start, end);
        let added: usize = holes.iter().map(|h| (h.end - h.start) as usize + BOOKKEEPING_BYTES).sum::<usize>()
            + if is_new_extent { BOOKKEEPING_BYTES } else { 0 };
        if added > limits.memory_budget {
            report.rejected = Some(Rejection::Memcap);
            return report;
        }

        // Resolve overlaps: start from the new bytes and put held bytes back wherever the policy
        // keeps the held copy.
        let mut resolved = data.to_vec();
        // Which held segments the policy is applied against, as Suricata walks its segment
        // tree: an exact duplicate, then backwards while each predecessor (in start, end order)
        // still reaches past our start, then forwards while successors start before our end.
        // The backward walk stops at the first predecessor that ends before us, so a long
        // segment hidden behind a short one is not consulted (Suricata does the same), and the
        // work per segment is the overlapping run, not every held segment.
        let duplicate = (!is_new_extent).then_some(new);
        let backward = self.extents.range(..new).rev().take_while(|held| held.end > start);
        let forward = self
            .extents
            .range((std::ops::Bound::Excluded(new), std::ops::Bound::Unbounded))
            .take_while(|held| held.start < end);
        let overlapping: Vec<Extent> = duplicate.into_iter().chain(backward.copied()).chain(forward.copied()).collect();
        for held in overlapping {
            report.overlap = true;
            let from = write_start.max(held.start);
            let to = end.min(held.end);
            if from >= to {
                continue;
            }
            let keep_held = !limits.policy.new_data_wins(new, held);
            for (piece_start, piece) in self.pieces.range(..to).rev() {
                let piece_end = piece_start + piece.len() as u64;
                if piece_end <= from {
                    break;
                }
                let a = from.max(*piece_start);
                let b = to.min(piece_end);
                if a >= b {
                    continue;
                }
                let held_bytes = &piece[(a - piece_start) as usize..(b - piece_start) as usize];
                let new_bytes = &mut resolved[(a - start) as usize..(b - start) as usize];
                if held_bytes != new_bytes {
                    report.different_data = true;
                    if keep_held {
                        new_bytes.copy_from_slice(held_bytes);
                    }
                }
            }
        }

        // Write: overwrite held pieces in place, fill holes with new pieces.
        // Only pieces from the one holding `write_start` onwards can overlap.
        let first_key = self.pieces.range(..=write_start).next_back().map_or(write_start, |(k, _)| *k);
        for (piece_start, piece) in self.pieces.range_mut(first_key..end) {
            let piece_end = piece_start + piece.len() as u64;
            if piece_end <= write_start {
                continue;
            }
            let a = write_start.max(*piece_start);
            let b = end.min(piece_end);
            piece[(a - piece_start) as usize..(b - piece_start) as usize]
                .copy_from_slice(&resolved[(a - start) as usize..(b - start) as usize]);
        }
        for hole in holes {
            let bytes = resolved[(hole.start - start) as usize..(hole.end - start) as usize].to_vec();
            self.data_bytes += bytes.len();
            self.pieces.insert(hole.start, bytes);
        }
        if is_new_extent {
            self.extents.insert(new);
        }
        // Every touched run is a counted region, so this cannot underflow; saturate anyway so
        // a bookkeeping slip can never panic on network input.
        self.regions = (self.regions + 1).saturating_sub(touched);
        self.max_regions_seen = self.max_regions_seen.max(self.regions);
        report
    }

    /// Number of distinct contiguous held regions that `[from, to)` overlaps or touches.
    fn regions_touched(&self, from: u64, to: u64) -> usize {
        let mut touched = 0;
        let mut previous_end: Option<u64> = None;
        let left = self.pieces.range(..from).next_back().filter(|(s, p)| *s + p.len() as u64 >= from);
        let inside = self.pieces.range(from..=to);
        for (piece_start, piece) in left.into_iter().chain(inside) {
            if previous_end != Some(*piece_start) {
                touched += 1;
            }
            previous_end = Some(piece_start + piece.len() as u64);
        }
        touched
    }

    /// The parts of `[from, to)` no held piece covers.
    fn holes(&self, from: u64, to: u64) -> Vec<Extent> {
        let mut holes = Vec::new();
        let mut cursor = from;
        let left = self.pieces.range(..from).next_back();
        for (piece_start, piece) in left.into_iter().chain(self.pieces.range(from..to)) {
            let piece_end = piece_start + piece.len() as u64;
            if *piece_start > cursor {
                holes.push(Extent { start: cursor, end: (*piece_start).min(to) });
            }
            cursor = cursor.max(piece_end);
            if cursor >= to {
                break;
            }
        }
        if cursor < to {
            holes.push(Extent { start: cursor, end: to });
        }
        holes
    }

    /// Hands out everything below `limit` in order. A hole below `limit` is given up on, and
    /// reported as a `Gap` reaching to the next held byte, only when held data follows it: a hole
    /// at the tail may still be filled by a late segment. Returns the number of gap bytes.
    /// With `give_up_holes` false (one-sided flows, where no ACK proves a hole is lost), only the
    /// contiguous data is handed out.
    pub fn deliver(
        &mut self,
        limit: u64,
        depth: u64,
        give_up_holes: bool,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> u64 {
        let limit = limit.min(depth);
        let mut gap_bytes = 0;
        while self.delivered < limit {
            let Some(mut entry) = self.pieces.first_entry() else { break };
            let piece_start = *entry.key();
            if piece_start > self.delivered {
                if !give_up_holes {
                    break;
                }
                let len = piece_start - self.delivered;
                emit(StreamEvent::Gap { len });
                gap_bytes += len;
                self.delivered = piece_start;
                continue;
            }
            let available = entry.get().len() as u64;
            let take = available.min(limit - self.delivered);
            if take == available {
                let piece = entry.remove();
                self.data_bytes = self.data_bytes.saturating_sub(piece.len());
                emit(StreamEvent::Data(&piece));
                let next_touches = self.pieces.first_key_value().is_some_and(|(s, _)| *s == piece_start + take);
                if !next_touches {
                    self.regions = self.regions.saturating_sub(1);
                }
            } else {
                let rest = entry.get_mut().split_off(take as usize);
                let head = entry.remove();
                self.data_bytes = self.data_bytes.saturating_sub(head.len());
                emit(StreamEvent::Data(&head));
                self.pieces.insert(piece_start + take, rest);
            }
            self.delivered += take;
        }
        self.prune_extents();
        gap_bytes
    }

    fn prune_extents(&mut self) {
        let done: Vec<Extent> = self
            .extents
            .range(..Extent { start: self.delivered, end: 0 })
            .filter(|e| e.end <= self.delivered)
            .copied()
            .collect();
        for extent in done {
            self.extents.remove(&extent);
        }
    }

    /// Ends the direction: everything held is delivered (holes between held bytes as gaps),
    /// then bytes known to exist past the end of what was held (`stream_end`, e.g. the FIN's
    /// position, or bytes cut by the depth) are reported as a final gap, then `End`.
    /// Returns the gap bytes reported. Does nothing the second time.
    pub fn finish(&mut self, stream_end: u64, depth: u64, emit: &mut dyn FnMut(StreamEvent<'_>)) -> u64 {
        if self.ended {
            return 0;
        }
        let mut gap_bytes = self.deliver(u64::MAX, depth, true, emit);
        let known_end = stream_end.max(self.highest_end);
        if self.delivered >= depth && known_end > self.delivered {
            let len = known_end - self.delivered;
            emit(StreamEvent::Gap { len });
            gap_bytes += len;
            self.delivered = known_end;
        }
        emit(StreamEvent::End);
        self.pieces.clear();
        self.extents.clear();
        self.data_bytes = 0;
        self.regions = 0;
        self.ended = true;
        gap_bytes
    }
}

#[cfg(test)]
impl Assembler {
    /// Recomputes everything kept incrementally and checks it.
    fn check_invariants(&self) {
        let mut regions = 0;
        let mut previous_end: Option<u64> = None;
        let mut data = 0;
        for (start, piece) in &self.pieces {
            assert!(*start >= self.delivered, "piece below the delivery point");
            assert!(!piece.is_empty());
            if let Some(end) = previous_end {
                assert!(*start >= end, "pieces overlap");
            }
            if previous_end != Some(*start) {
                regions += 1;
            }
            previous_end = Some(start + piece.len() as u64);
            data += piece.len();
        }
        assert_eq!(data, self.data_bytes);
        assert_eq!(regions, self.regions);
        assert!(self.extents.iter().all(|e| e.end > self.delivered), "delivered extent kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn incremental_bookkeeping_matches_a_recount(
            ops in proptest::collection::vec((0u64..200, 1usize..40, any::<bool>()), 1..80),
        ) {
            let mut asm = Assembler::default();
            let l = InsertLimits {
                policy: OverlapPolicy::Linux,
                depth: 180,
                memory_budget: usize::MAX,
                max_segments: 30,
                max_regions: 6,
            };
            for (offset, len, is_ack) in ops {
                if is_ack {
                    asm.deliver(offset, l.depth, len % 2 == 0, &mut |_| {});
                } else {
                    asm.insert(offset, &vec![len as u8; len], &l);
                }
                asm.check_invariants();
                prop_assert!(asm.regions <= l.max_regions);
                prop_assert!(asm.extents.len() <= l.max_segments);
            }
        }
    }

    /// Owned copy of a stream event, for comparing event sequences.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        End,
    }

    fn limits(policy: OverlapPolicy) -> InsertLimits {
        InsertLimits { policy, depth: u64::MAX, memory_budget: usize::MAX, max_segments: 1000, max_regions: 1000 }
    }

    fn drain(asm: &mut Assembler, limit: u64) -> Vec<Ev> {
        let mut events = Vec::new();
        asm.deliver(limit, u64::MAX, true, &mut |ev| {
            events.push(match ev {
                StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                StreamEvent::Gap { len } => Ev::Gap(len),
                StreamEvent::End => Ev::End,
            })
        });
        events
    }

    #[test]
    fn out_of_order_segments_come_out_in_order() {
        let mut asm = Assembler::default();
        let l = limits(OverlapPolicy::Bsd);
        asm.insert(4, b"5678", &l);
        asm.insert(0, b"1234", &l);
        assert_eq!(asm.max_regions_seen(), 1);
        assert_eq!(drain(&mut asm, 8), vec![Ev::Data(b"1234".to_vec()), Ev::Data(b"5678".to_vec())]);
        assert_eq!(asm.memory_used(), 0);
    }

    #[test]
    fn bsd_keeps_the_first_copy_of_an_exact_retransmission() {
        let mut asm = Assembler::default();
        let l = limits(OverlapPolicy::Bsd);
        assert_eq!(asm.insert(0, b"GOOD", &l), InsertReport::default());
        let report = asm.insert(0, b"EVIL", &l);
        assert!(report.overlap && report.different_data);
        assert_eq!(drain(&mut asm, 4), vec![Ev::Data(b"GOOD".to_vec())]);
    }

    #[test]
    fn bsd_takes_new_bytes_where_the_new_segment_starts_before() {
        let mut asm = Assembler::default();
        let l = limits(OverlapPolicy::Bsd);
        asm.insert(2, b"cdef", &l); //       [2,6)
        asm.insert(0, b"ABCD", &l); // [0,4) starts before: its C,D replace c,d
        assert_eq!(drain(&mut asm, 6), vec![Ev::Data(b"AB".to_vec()), Ev::Data(b"CDef".to_vec())]);
    }

    #[test]
    fn hole_becomes_a_gap_only_when_data_follows_it() {
        let mut asm = Assembler::default();
        let l = limits(OverlapPolicy::Bsd);
        asm.insert(0, b"VERY", &l);
        asm.insert(8, b"DATA", &l);
        assert_eq!(asm.max_regions_seen(), 2);
        assert_eq!(
            drain(&mut asm, 12),
            vec![Ev::Data(b"VERY".to_vec()), Ev::Gap(4), Ev::Data(b"DATA".to_vec())]
        );
        // A tail hole ACKed past is not given up on yet.
        assert_eq!(drain(&mut asm, 20), vec![]);
        assert_eq!(asm.delivered(), 12);
    }

    #[test]
    fn partial_ack_splits_a_piece() {
        let mut asm = Assembler::default();
        let l = limits(OverlapPolicy::Bsd);
        asm.insert(0, b"abcdef", &l);
        assert_eq!(drain(&mut asm, 2), vec![Ev::Data(b"ab".to_vec())]);
        // A retransmission of delivered bytes is refused; its undelivered tail still counts.
        assert_eq!(asm.insert(0, b"ab", &l).rejected, Some(Rejection::BeforeDelivered));
        assert_eq!(drain(&mut asm, 6), vec![Ev::Data(b"cdef".to_vec())]);
    }

    #[test]
    fn depth_cuts_and_finish_reports_the_rest_as_gap() {
        let mut asm = Assembler::default();
        let l = InsertLimits { depth: 6, ..limits(OverlapPolicy::Bsd) };
        let report = asm.insert(0, b"abcdefgh", &l);
        assert!(report.depth_cut);
        assert_eq!(asm.insert(8, b"ij", &l).rejected, Some(Rejection::BeyondDepth));
        let mut events = Vec::new();
        asm.finish(0, 6, &mut |ev| events.push(format!("{ev:?}")));
        assert_eq!(events, vec!["Data([97, 98, 99, 100, 101, 102])", "Gap { len: 4 }", "End"]);
    }

    #[test]
    fn region_and_segment_limits_refuse_new_islands() {
        let mut asm = Assembler::default();
        let l = InsertLimits { max_regions: 2, max_segments: 3, ..limits(OverlapPolicy::Bsd) };
        assert_eq!(asm.insert(10, b"a", &l).rejected, None);
        assert_eq!(asm.insert(20, b"b", &l).rejected, None);
        assert_eq!(asm.insert(30, b"c", &l).rejected, Some(Rejection::RegionLimit));
        // touching an existing island is fine
        assert_eq!(asm.insert(11, b"a", &l).rejected, None);
        assert_eq!(asm.insert(21, b"b", &l).rejected, Some(Rejection::SegmentLimit));
    }

    #[test]
    fn memcap_refuses_segments_that_do_not_fit() {
        let mut asm = Assembler::default();
        let l = InsertLimits { memory_budget: 100, ..limits(OverlapPolicy::Bsd) };
        assert_eq!(asm.insert(0, &[0; 40], &l).rejected, Some(Rejection::Memcap)); // 40 + 2*64
        let l = InsertLimits { memory_budget: 168, ..l };
        assert_eq!(asm.insert(0, &[0; 40], &l).rejected, None);
        assert_eq!(asm.memory_used(), 168);
    }
}
