//! What reassembly hands the app-layer parsers, per direction.

/// One step of a reassembled byte stream in one direction. Gaps are first class: a parser must
/// resync or give up, and a file that spans a gap is truncated, never padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next contiguous bytes of the stream.
    Data(&'a [u8]),
    /// `len` bytes of the stream were never seen (capture loss, depth limit, missing segment).
    Gap { len: u64 },
    /// The direction closed (FIN/RST, flow timeout or end of capture); no more events follow.
    End,
}
