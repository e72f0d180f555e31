//! A sliding view of one direction's raw stream for pattern matching across event boundaries.

use weir_core::StreamEvent;

/// Keeps the last `overlap` bytes of one direction so that each new chunk can be scanned
/// together with its predecessor's tail: a pattern of up to `overlap + 1` bytes that spans two
/// `Data` events is then seen whole. A `Gap` clears the tail (bytes across a hole are not
/// adjacent). Memory is bounded by `overlap` plus the chunk being scanned.
#[derive(Debug)]
pub struct RawStreamWindow {
    overlap: usize,
    buffer: Vec<u8>,
    /// Stream offset of `buffer[0]`.
    buffer_offset: u64,
    /// Stream offset after the last byte seen (gaps included).
    stream_offset: u64,
}

impl RawStreamWindow {
    /// `overlap` is the longest pattern length minus one.
    pub fn new(overlap: usize) -> Self {
        RawStreamWindow { overlap, buffer: Vec::new(), buffer_offset: 0, stream_offset: 0 }
    }

    /// Feeds one stream event; for `Data`, returns the bytes to scan (previous tail + new data)
    /// and the stream offset of the first of them.
    pub fn feed(&mut self, event: StreamEvent<'_>) -> Option<(u64, &[u8])> {
        match event {
            StreamEvent::Data(data) => {
                let keep_from = self.buffer.len().saturating_sub(self.overlap);
                self.buffer.drain(..keep_from);
                self.buffer_offset = self.stream_offset - self.buffer.len() as u64;
                self.buffer.extend_from_slice(data);
                self.stream_offset += data.len() as u64;
                Some((self.buffer_offset, &self.buffer))
            }
            StreamEvent::Gap { len } => {
                self.buffer.clear();
                self.stream_offset += len;
                self.buffer_offset = self.stream_offset;
                None
            }
            StreamEvent::End => {
                self.buffer.clear();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_split_across_two_events_is_seen_whole() {
        let mut window = RawStreamWindow::new(3); // patterns up to 4 bytes
        let (offset, scan) = window.feed(StreamEvent::Data(b"xxEV")).expect("data");
        assert_eq!((offset, scan), (0, &b"xxEV"[..]));
        let (offset, scan) = window.feed(StreamEvent::Data(b"ILyy")).expect("data");
        assert_eq!((offset, scan), (1, &b"xEVILyy"[..]));
    }

    #[test]
    fn gap_breaks_adjacency() {
        let mut window = RawStreamWindow::new(3);
        window.feed(StreamEvent::Data(b"VERY"));
        assert_eq!(window.feed(StreamEvent::Gap { len: 4 }), None);
        let (offset, scan) = window.feed(StreamEvent::Data(b"DATA")).expect("data");
        assert_eq!((offset, scan), (8, &b"DATA"[..]));
    }
}
