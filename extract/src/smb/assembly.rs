//! Rebuilds a file from READ/WRITE chunks at arbitrary offsets: in order bytes go straight to
//! the file pipeline, chunks ahead of the next expected offset wait (bounded), and a hole that
//! cannot be filled becomes a gap of the file (truncated, never padded).

use std::collections::BTreeMap;

use crate::files::{ClosedFile, FileSink, OpenFile};

/// Bytes of out-of-order chunks held per file while earlier ones are missing. Beyond it the
/// hole before the earliest held chunk is given up as a gap.
pub const MAX_OUT_OF_ORDER_BYTES: usize = 1 << 20;

/// Out-of-order bytes held by all the files of one flow together, so many open handles cannot
/// multiply [`MAX_OUT_OF_ORDER_BYTES`]. A file that would pass it gives up its own holes.
pub const MAX_OUT_OF_ORDER_BYTES_PER_FLOW: usize = 4 << 20;

/// How far past the next expected offset a chunk may land. Sparse writes that far ahead are
/// either an evasion or not worth reassembling; the chunk is dropped and the file truncated.
pub const MAX_OFFSET_JUMP: u64 = 1 << 30;

#[derive(Debug)]
pub(super) struct Assembly {
    file: OpenFile,
    next: u64,
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    /// Chunks were dropped (offset jump, or beyond what a limit allows).
    pub(super) dropped: bool,
}

/// What [`Assembly::add`] did with a chunk, for anomaly counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Added {
    Ok,
    /// The chunk landed more than [`MAX_OFFSET_JUMP`] ahead and was dropped.
    TooFarAhead,
    /// Out-of-order buffering overflowed: a hole was given up as a gap.
    GaveUpHole,
}

impl Assembly {
    pub(super) fn new(file: OpenFile) -> Assembly {
        Assembly {
            file,
            next: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            dropped: false,
        }
    }

    /// Adds the chunk at `offset`. `flow_held` is the flow's count of held bytes (this file's
    /// included), kept up to date.
    pub(super) fn add(
        &mut self,
        sink: &mut dyn FileSink,
        offset: u64,
        data: &[u8],
        flow_held: &mut usize,
    ) -> Added {
        let before = self.held_bytes;
        let added = self.add_within(sink, offset, data, flow_held.saturating_sub(before));
        *flow_held = flow_held.saturating_sub(before) + self.held_bytes;
        added
    }

    /// `others` is what the flow's other files hold.
    fn add_within(
        &mut self,
        sink: &mut dyn FileSink,
        offset: u64,
        data: &[u8],
        others: usize,
    ) -> Added {
        if data.is_empty() {
            return Added::Ok;
        }
        let end = offset.saturating_add(data.len() as u64);
        if end <= self.next {
            // A re-read or re-write of bytes already extracted.
            return Added::Ok;
        }
        if offset <= self.next {
            let skip = usize::try_from(self.next - offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.file.write(sink, &data[skip..]);
            self.next = end;
            self.drain(sink);
            return Added::Ok;
        }
        if offset - self.next > MAX_OFFSET_JUMP {
            self.dropped = true;
            self.file.mark_truncated();
            return Added::TooFarAhead;
        }
        let mut result = Added::Ok;
        // Keep the chunk; if that exceeds the budget, give up the earliest hole until it fits.
        self.held_bytes += data.len();
        let prev = self.held.insert(offset, data.to_vec());
        if let Some(p) = prev {
            self.held_bytes -= p.len();
        }
        while self.held_bytes > MAX_OUT_OF_ORDER_BYTES
            || others + self.held_bytes > MAX_OUT_OF_ORDER_BYTES_PER_FLOW
        {
            let Some((&first, _)) = self.held.iter().next() else {
                break;
            };
            if first > self.next {
                self.file.gap(sink, first - self.next);
                self.next = first;
                result = Added::GaveUpHole;
            }
            self.drain(sink);
        }
        result
    }

    fn drain(&mut self, sink: &mut dyn FileSink) {
        while let Some((&off, _)) = self.held.iter().next() {
            if off > self.next {
                break;
            }
            let Some(chunk) = self.held.remove(&off) else {
                break;
            };
            self.held_bytes -= chunk.len();
            let end = off + chunk.len() as u64;
            if end > self.next {
                let skip = usize::try_from(self.next - off)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                self.file.write(sink, &chunk[skip..]);
                self.next = end;
            }
        }
    }

    /// Records that `len` bytes at `offset` never arrived (a capture gap inside a READ/WRITE).
    /// At the current end this is a gap of the file; elsewhere the file is only marked
    /// truncated, and the hole shows when the file closes.
    pub(super) fn gap_at(&mut self, sink: &mut dyn FileSink, offset: u64, len: u64) {
        if offset == self.next {
            self.file.gap(sink, len);
            self.next = self.next.saturating_add(len);
            self.drain(sink);
        } else {
            self.file.mark_truncated();
        }
    }

    /// Out-of-order bytes held now.
    pub(super) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Bytes extracted so far in order, from offset 0.
    #[cfg(test)]
    pub(super) fn next_offset(&self) -> u64 {
        self.next
    }

    /// Finishes the file. Held chunks go out after their holes (as gaps). `expected_len` is the
    /// file's size when the protocol told it (CREATE's EndOfFile for reads): fewer bytes means
    /// the file is truncated.
    pub(super) fn close(
        mut self,
        sink: &mut dyn FileSink,
        expected_len: Option<u64>,
    ) -> ClosedFile {
        while let Some((&first, _)) = self.held.iter().next() {
            if first > self.next {
                self.file.gap(sink, first - self.next);
                self.next = first;
            }
            self.drain(sink);
        }
        let complete = !self.dropped && expected_len.is_none_or(|len| self.next >= len);
        self.file.close(sink, complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::MemorySink;

    fn assembly(sink: &mut MemorySink) -> Assembly {
        Assembly::new(OpenFile::open(sink, b"f", None, 1))
    }

    #[test]
    fn out_of_order_and_overlapping_chunks_rebuild_the_file() {
        let mut sink = MemorySink::new(1 << 20);
        let mut a = assembly(&mut sink);
        assert_eq!(a.add_within(&mut sink, 6, b"ghij", 0), Added::Ok);
        assert_eq!(a.add_within(&mut sink, 0, b"abc", 0), Added::Ok);
        assert_eq!(a.add_within(&mut sink, 2, b"cdef", 0), Added::Ok);
        assert_eq!(a.add_within(&mut sink, 0, b"ab", 0), Added::Ok);
        assert_eq!(a.next_offset(), 10);
        let c = a.close(&mut sink, Some(10));
        assert_eq!(c.artifact.state, weir_core::FileState::Closed);
        assert_eq!(sink.stored[0].1, b"abcdefghij");
    }

    #[test]
    fn a_hole_is_a_gap_and_never_padded() {
        let mut sink = MemorySink::new(1 << 20);
        let mut a = assembly(&mut sink);
        a.add_within(&mut sink, 0, b"abc", 0);
        a.add_within(&mut sink, 10, b"xyz", 0);
        let c = a.close(&mut sink, None);
        assert_eq!(c.artifact.state, weir_core::FileState::Truncated);
        assert_eq!(c.gap_bytes, 7);
        assert_eq!(sink.stored[0].1, b"abcxyz");
    }

    #[test]
    fn absurd_offsets_are_dropped_and_buffering_is_bounded() {
        let mut sink = MemorySink::new(8 << 20);
        let mut a = assembly(&mut sink);
        assert_eq!(
            a.add_within(&mut sink, u64::MAX - 3, b"abcdef", 0),
            Added::TooFarAhead
        );
        assert_eq!(
            a.add_within(&mut sink, MAX_OFFSET_JUMP + 1, b"a", 0),
            Added::TooFarAhead
        );
        let chunk = vec![1u8; 64 * 1024];
        let mut gave_up = false;
        for i in 1..40u64 {
            gave_up |= a.add_within(&mut sink, i * 100_000, &chunk, 0) == Added::GaveUpHole;
            assert!(a.held_bytes <= MAX_OUT_OF_ORDER_BYTES);
        }
        assert!(gave_up);
        let c = a.close(&mut sink, None);
        assert_eq!(c.artifact.size, 39 * 64 * 1024);
        assert_eq!(c.artifact.state, weir_core::FileState::Truncated);
    }

    #[test]
    fn the_flow_budget_bounds_many_files_together() {
        let mut sink = MemorySink::new(64 << 20);
        let mut flow_held = 0usize;
        let mut files: Vec<Assembly> = (0..16).map(|_| assembly(&mut sink)).collect();
        let chunk = vec![2u8; 512 * 1024];
        for a in &mut files {
            a.add(&mut sink, 1000, &chunk, &mut flow_held);
            assert!(flow_held <= MAX_OUT_OF_ORDER_BYTES_PER_FLOW);
        }
        assert_eq!(
            flow_held,
            files.iter().map(Assembly::held_bytes).sum::<usize>()
        );
        assert_eq!(
            flow_held,
            (MAX_OUT_OF_ORDER_BYTES_PER_FLOW / chunk.len()) * chunk.len()
        );
    }

    #[test]
    fn reading_less_than_end_of_file_is_truncated() {
        let mut sink = MemorySink::new(1 << 20);
        let mut a = assembly(&mut sink);
        a.add_within(&mut sink, 0, b"abc", 0);
        assert_eq!(
            a.close(&mut sink, Some(4)).artifact.state,
            weir_core::FileState::Truncated
        );
    }
}
