//! Joining the 206 partial responses of one file, from any number of flows, into the whole
//! file once every byte has been seen (download managers and media players fetch files in
//! ranges, often over several connections, and a sensor that only logs the parts never sees
//! the file a sandbox or a hash list needs).
//!
//! Parts are keyed as Suricata keys them: the request URL (host included) and the total length
//! from `Content-Range`. Bytes that continue the file where it stands are hashed and streamed
//! to the joiner's own [`FileSink`] at once; bytes that arrive ahead of a hole are held in memory
//! until the hole fills. Everything is bounded: files tracked ([`MAX_RANGE_FILES`]), bytes held
//! ahead of holes ([`MAX_RANGE_HELD_BYTES`], [`MAX_RANGE_BLOCKS_PER_FILE`]) and how long a file
//! waits for its next byte ([`RANGE_TIMEOUT`], packet time).
//!
//! One joiner serves every worker thread: [`SharedRangeJoiner`] is `Send + Sync` and cheap to
//! clone, because two flows of one download may be steered to different workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weir_core::Timestamp;

use crate::files::{ClosedFile, FileSink, NullSink, OpenFile};

/// Files being joined at once, over all flows; a new one evicts the one idle longest.
pub const MAX_RANGE_FILES: usize = 1024;

/// Bytes held in memory, over all files, because they arrived ahead of a hole. Beyond it such
/// bytes are dropped (counted); a later part carrying them again can still complete the file.
pub const MAX_RANGE_HELD_BYTES: usize = 64 << 20;

/// Separate held blocks per file (bytes that continue a held block extend it; this bounds the
/// bookkeeping an attacker sending tiny scattered ranges can cause).
pub const MAX_RANGE_BLOCKS_PER_FILE: usize = 1024;

/// A file that gained no byte for this long (packet time) is abandoned.
pub const RANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often (packet time) idle files are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What the joiner did, for counters and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStats {
    /// Files completed and handed back.
    pub joined: u64,
    /// Files given up: idle past [`RANGE_TIMEOUT`] or evicted at [`MAX_RANGE_FILES`].
    pub abandoned: u64,
    /// Bytes ahead of a hole that could not be held ([`MAX_RANGE_HELD_BYTES`],
    /// [`MAX_RANGE_BLOCKS_PER_FILE`]).
    pub dropped_bytes: u64,
}

/// One file being assembled.
struct Assembly {
    /// Hashes and stores the bytes `[0, next)`.
    file: OpenFile,
    next: u64,
    total: u64,
    /// Bytes beyond `next`, by offset, never overlapping each other.
    ahead: BTreeMap<u64, Vec<u8>>,
    held: usize,
    last_seen: Timestamp,
}

/// The joiner itself; use it through a [`SharedRangeJoiner`].
pub struct RangeJoiner {
    files: HashMap<(String, u64), Assembly>,
    held: usize,
    sink: Box<dyn FileSink + Send>,
    last_sweep: Timestamp,
    stats: RangeStats,
}

impl RangeJoiner {
    /// A joiner storing whole files in `sink` (a [`crate::files::Filestore`] on the output
    /// directory, or [`NullSink`] to log without storing).
    pub fn new(sink: Box<dyn FileSink + Send>) -> RangeJoiner {
        RangeJoiner { files: HashMap::new(), held: 0, sink, last_sweep: Timestamp::ZERO, stats: RangeStats::default() }
    }

    /// Bytes of a part at `offset` of the file at `url`, `total` bytes long; `name` names the
    /// file if this starts tracking it. Returns the whole file (tx and file ids unset) when
    /// these bytes completed it; it is then forgotten, so a later download starts afresh.
    pub fn write(&mut self, url: &str, total: u64, name: &[u8], offset: u64, data: &[u8], ts: Timestamp) -> Option<ClosedFile> {
        self.sweep(ts);
        if offset >= total || data.is_empty() {
            return None;
        }
        let data = &data[..(total - offset).min(data.len() as u64) as usize];
        let key = (url.to_owned(), total);
        if !self.files.contains_key(&key) {
            if self.files.len() >= MAX_RANGE_FILES {
                self.evict_idlest();
            }
            let file = OpenFile::open(self.sink.as_mut(), name, None, 0);
            self.files.insert(key.clone(), Assembly { file, next: 0, total, ahead: BTreeMap::new(), held: 0, last_seen: ts });
        }
        let a = self.files.get_mut(&key)?;
        a.last_seen = ts;
        let sink = self.sink.as_mut();
        if offset <= a.next {
            let skip = (a.next - offset).min(data.len() as u64) as usize;
            let fresh = &data[skip..];
            a.file.write(sink, fresh);
            a.next += fresh.len() as u64;
            self.held -= a.drain_ahead(sink);
        } else {
            let (kept, dropped) = a.hold(offset, data, MAX_RANGE_HELD_BYTES.saturating_sub(self.held));
            self.held += kept;
            self.stats.dropped_bytes += dropped;
        }
        if a.next < a.total {
            return None;
        }
        let a = self.files.remove(&key)?;
        self.held -= a.held;
        self.stats.joined += 1;
        Some(a.file.close(self.sink.as_mut(), true))
    }

    /// Files being joined.
    pub fn tracked(&self) -> usize {
        self.files.len()
    }

    /// Bytes held ahead of holes, over all files.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    pub fn stats(&self) -> RangeStats {
        self.stats
    }

    /// Abandons files idle past [`RANGE_TIMEOUT`], at most once per [`SWEEP_INTERVAL`].
    fn sweep(&mut self, now: Timestamp) {
        // Workers' packet times interleave: time that went back is not a reason to sweep.
        if now.since(self.last_sweep) < SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = now;
        let idle: Vec<(String, u64)> = self
            .files
            .iter()
            .filter(|(_, a)| now.since(a.last_seen) > RANGE_TIMEOUT)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.abandon(&key);
        }
    }

    fn evict_idlest(&mut self) {
        let idlest = self.files.iter().min_by_key(|(_, a)| a.last_seen).map(|(k, _)| k.clone());
        if let Some(key) = idlest {
            self.abandon(&key);
        }
    }

    fn abandon(&mut self, key: &(String, u64)) {
        if let Some(a) = self.files.remove(key) {
            self.held -= a.held;
            a.file.discard(self.sink.as_mut());
            self.stats.abandoned += 1;
        }
    }
}

impl Assembly {
    /// Writes held blocks that now continue the file; returns the bytes released.
    fn drain_ahead(&mut self, sink: &mut dyn FileSink) -> usize {
        let mut released = 0;
        while let Some(entry) = self.ahead.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let block = entry.remove();
            released += block.len();
            let skip = ((self.next - start) as usize).min(block.len());
            self.file.write(sink, &block[skip..]);
            self.next += (block.len() - skip) as u64;
        }
        self.held -= released;
        released
    }

    /// Keeps the bytes of `[offset, offset + data.len())` not held yet, within `room` bytes and
    /// [`MAX_RANGE_BLOCKS_PER_FILE`]; returns (bytes kept, bytes dropped).
    fn hold(&mut self, offset: u64, data: &[u8], room: usize) -> (usize, u64) {
        let end = offset + data.len() as u64;
        // The stretches of the new bytes that no held block covers yet.
        let mut missing: Vec<(u64, u64)> = Vec::new();
        let mut pos = offset;
        for (&start, block) in self.ahead.range(..end) {
            let block_end = start + block.len() as u64;
            if block_end <= pos {
                continue;
            }
            if start > pos {
                missing.push((pos, start));
            }
            pos = pos.max(block_end);
        }
        if pos < end {
            missing.push((pos, end));
        }
        let (mut kept, mut dropped) = (0usize, 0u64);
        for (from, to) in missing {
            let len = (to - from) as usize;
            let bytes = &data[(from - offset) as usize..][..len];
            if kept + len > room {
                dropped += len as u64;
                continue;
            }
            // A part arrives in segments: each continues the block the previous one started.
            if let Some((&start, block)) = self.ahead.range_mut(..from).next_back()
                && start + block.len() as u64 == from
            {
                block.extend_from_slice(bytes);
            } else if self.ahead.len() < MAX_RANGE_BLOCKS_PER_FILE {
                self.ahead.insert(from, bytes.to_vec());
            } else {
                dropped += len as u64;
                continue;
            }
            kept += len;
        }
        self.held += kept;
        (kept, dropped)
    }
}

/// A [`RangeJoiner`] shared by every flow and worker thread of a run. Cloning shares it.
#[derive(Clone)]
pub struct SharedRangeJoiner(Arc<Mutex<RangeJoiner>>);

impl SharedRangeJoiner {
    pub fn new(sink: Box<dyn FileSink + Send>) -> SharedRangeJoiner {
        SharedRangeJoiner(Arc::new(Mutex::new(RangeJoiner::new(sink))))
    }

    /// The joiner, for one call. A thread that panicked while holding it cannot have left it
    /// worse than a file with missing bytes, so a poisoned lock is used as it is.
    pub fn lock(&self) -> MutexGuard<'_, RangeJoiner> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether two handles share one joiner.
    pub fn same(&self, other: &SharedRangeJoiner) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A joiner that logs whole files without storing them.
impl Default for SharedRangeJoiner {
    fn default() -> Self {
        SharedRangeJoiner::new(Box::new(NullSink))
    }
}

impl std::fmt::Debug for SharedRangeJoiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never waits: a config may be printed by a thread that holds the joiner.
        match self.0.try_lock() {
            Ok(j) => f.debug_struct("SharedRangeJoiner").field("tracked", &j.tracked()).field("held_bytes", &j.held_bytes()).finish(),
            Err(_) => f.write_str("SharedRangeJoiner { .. }"),
        }
    }
}

/// The joiner is shared state, not a setting: it never makes two configurations differ.
impl PartialEq for SharedRangeJoiner {
    fn eq(&self, _: &SharedRangeJoiner) -> bool {
        true
    }
}

impl Eq for SharedRangeJoiner {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::MemorySink;
    use weir_core::{hex, FileState};

    const URL: &str = "http://h/f.bin";

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, 0)
    }

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn out_of_order_and_overlapping_parts_join_into_the_whole_file() {
        let whole = content(9000);
        let mut j = RangeJoiner::new(Box::new(MemorySink::new(1 << 20)));
        // The order http-range-multiflows' client uses: ahead, start, overlap only, overlap and
        // new, ahead again, then the holes.
        let parts: &[(usize, usize)] =
            &[(1000, 2000), (0, 1000), (500, 1500), (1500, 2500), (5000, 6000), (2500, 3500), (4000, 5000), (8000, 9000), (6000, 7000), (6400, 8000)];
        for &(a, b) in parts {
            assert_eq!(j.write(URL, 9000, b"/f.bin", a as u64, &whole[a..b], at(1)), None, "part {a}-{b}");
        }
        // Held ahead of the hole 3500..4000: 4000..9000.
        assert_eq!(j.held_bytes(), 5000);
        let done = j.write(URL, 9000, b"/f.bin", 3000, &whole[3000..4000], at(2)).expect("whole");
        assert_eq!(done.artifact.size, 9000);
        assert_eq!(done.artifact.state, FileState::Closed);
        assert_eq!(done.artifact.name, "/f.bin");
        use sha2::Digest;
        assert_eq!(hex(&done.artifact.sha256), hex(&sha2::Sha256::digest(&whole)));
        assert_eq!((j.tracked(), j.held_bytes()), (0, 0));
        assert_eq!(j.stats(), RangeStats { joined: 1, ..RangeStats::default() });
    }

    #[test]
    fn parts_are_keyed_by_url_and_total_length() {
        let mut j = RangeJoiner::new(Box::new(NullSink));
        assert!(j.write(URL, 10, b"a", 0, b"01234", at(0)).is_none());
        // Same URL, other length: another file (the resource changed).
        assert!(j.write(URL, 12, b"a", 5, b"56789ab", at(0)).is_none());
        assert!(j.write("http://other/f.bin", 10, b"a", 5, b"56789", at(0)).is_none());
        assert_eq!(j.tracked(), 3);
        let done = j.write(URL, 10, b"a", 5, b"56789-beyond-the-end", at(0)).expect("whole");
        assert_eq!(done.artifact.size, 10);
        assert_eq!(j.tracked(), 2);
    }

    #[test]
    fn idle_files_are_abandoned_after_the_timeout() {
        let mut j = RangeJoiner::new(Box::new(MemorySink::new(1 << 20)));
        assert!(j.write(URL, 10, b"a", 0, b"01234", at(0)).is_none());
        assert!(j.write("http://h/g", 10, b"a", 8, b"89", at(0)).is_none());
        assert_eq!(j.held_bytes(), 2);
        // 60 s later both are still waiting; just past it, touching another file sweeps them.
        assert!(j.write("http://h/x", 10, b"a", 0, b"0", at(60)).is_none());
        assert_eq!(j.tracked(), 3);
        assert!(j.write("http://h/x", 10, b"a", 1, b"1", at(62)).is_none());
        assert_eq!(j.tracked(), 1);
        assert_eq!(j.held_bytes(), 0);
        assert_eq!(j.stats().abandoned, 2);
        // The rest of the first file now starts a new (incomplete) file.
        assert!(j.write(URL, 10, b"a", 5, b"56789", at(63)).is_none());
    }

    #[test]
    fn tracked_files_and_held_bytes_are_bounded() {
        let mut j = RangeJoiner::new(Box::new(NullSink));
        for i in 0..MAX_RANGE_FILES + 5 {
            j.write(&format!("http://h/{i}"), 10, b"a", 0, b"0", at(i as u64 / 100));
        }
        assert_eq!(j.tracked(), MAX_RANGE_FILES);
        assert_eq!(j.stats().abandoned, 5);

        let mut j = RangeJoiner::new(Box::new(NullSink));
        let big = vec![0u8; MAX_RANGE_HELD_BYTES / 2 + 1];
        let total = 4 * big.len() as u64;
        j.write(URL, total, b"a", 1, &big, at(0));
        j.write(URL, total, b"a", 2 * big.len() as u64, &big, at(0));
        assert_eq!(j.held_bytes(), big.len());
        assert_eq!(j.stats().dropped_bytes, big.len() as u64);

        let mut j = RangeJoiner::new(Box::new(NullSink));
        for i in 0..MAX_RANGE_BLOCKS_PER_FILE as u64 + 3 {
            j.write(URL, 1 << 20, b"a", 2 * i + 1, b"x", at(0));
        }
        assert_eq!(j.held_bytes(), MAX_RANGE_BLOCKS_PER_FILE);
        assert_eq!(j.stats().dropped_bytes, 3);
    }

    #[test]
    fn a_part_arriving_in_segments_is_held_as_one_block() {
        let whole = content(3 * MAX_RANGE_BLOCKS_PER_FILE);
        let mut j = RangeJoiner::new(Box::new(NullSink));
        // The second half arrives first, one byte at a time: more segments than blocks allowed.
        let half = whole.len() / 2;
        for i in half..whole.len() {
            assert!(j.write(URL, whole.len() as u64, b"a", i as u64, &whole[i..=i], at(0)).is_none());
        }
        assert_eq!(j.held_bytes(), whole.len() - half);
        assert_eq!(j.stats().dropped_bytes, 0);
        let done = j.write(URL, whole.len() as u64, b"a", 0, &whole[..half], at(0)).expect("whole");
        use sha2::Digest;
        assert_eq!(hex(&done.artifact.sha256), hex(&sha2::Sha256::digest(&whole)));
    }

    proptest::proptest! {
        /// Any parts in any order, overlapping or not, segmented anyhow: once every byte was
        /// seen the file comes out whole, exactly once, byte-identical, and nothing stays held.
        #[test]
        fn any_covering_parts_join_into_the_file(
            len in 1usize..4000,
            cuts in proptest::collection::vec((0usize..4000, 1usize..1500, 1usize..700), 1..24),
        ) {
            let whole = content(len);
            // The given parts, then the whole file in 1000-byte parts so they surely cover it.
            let mut parts: Vec<(usize, usize, usize)> =
                cuts.into_iter().map(|(a, l, seg)| (a % len, (a % len + l).min(len), seg)).collect();
            parts.extend((0..len).step_by(1000).map(|a| (a, (a + 1000).min(len), 1460)));
            let mut j = RangeJoiner::new(Box::new(MemorySink::new(1 << 20)));
            let mut done = Vec::new();
            for (a, b, seg) in parts {
                let mut at_offset = a;
                for piece in whole[a..b].chunks(seg) {
                    if let Some(f) = j.write(URL, len as u64, b"f", at_offset as u64, piece, at(0)) {
                        // The rest of this part would start a new download of the file.
                        done.push(f);
                        break;
                    }
                    at_offset += piece.len();
                }
                if !done.is_empty() {
                    break;
                }
            }
            proptest::prop_assert_eq!(done.len(), 1);
            use sha2::Digest;
            proptest::prop_assert_eq!(hex(&done[0].artifact.sha256), hex(&sha2::Sha256::digest(&whole)));
            proptest::prop_assert_eq!(done[0].artifact.size, len as u64);
            proptest::prop_assert_eq!((j.tracked(), j.held_bytes()), (0, 0));
        }
    }

    #[test]
    fn a_shared_joiner_is_usable_from_several_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SharedRangeJoiner>();
        let shared = SharedRangeJoiner::default();
        let whole = content(4000);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let j = shared.clone();
                let part = whole[i * 1000..(i + 1) * 1000].to_vec();
                std::thread::spawn(move || j.lock().write(URL, 4000, b"a", (i * 1000) as u64, &part, at(0)).is_some())
            })
            .collect();
        let completed = handles.into_iter().filter_map(|h| h.join().ok()).filter(|&done| done).count();
        assert_eq!(completed, 1);
        assert_eq!(shared.lock().tracked(), 0);
        assert!(shared.same(&shared.clone()));
    }
}
