//! Packet sources: pcap and pcapng files (and, later, live interfaces).
//!
//! A [`PacketSource`] lends out one packet at a time: the [`RawPacket`] borrows the source's read
//! buffer and is valid until the next call, so nothing is copied or allocated per packet.
//! [`FileSource`] reads any mix of classic pcap (either byte order, micro- or nanosecond magic,
//! and the "modified" variant) and pcapng (any number of sections and interfaces, each section in
//! its own byte order, each interface with its own link type and `if_tsresol`; Enhanced, Simple and
//! obsolete Packet Blocks) as one capture, in the order given.
//!
//! Bad input never panics. What stops the run is a [`CaptureError`]; what the run survives (a
//! truncated tail, a lying length, an interface of an unsupported link type) becomes a
//! [`CaptureWarning`], collected for the binary to print at the end.

mod buffer;
mod error;
pub mod live;
mod reader;
mod source;

use weir_core::{LinkType, Timestamp};

pub use error::{CaptureError, CaptureWarning};
pub use live::LiveSource;
pub use source::FileSource;

/// Largest captured packet returned, in bytes: libpcap's MAXIMUM_SNAPLEN (262144), which also
/// bounds what tcpdump and Wireshark write. A record claiming more is a lying length field.
pub const MAX_PACKET_LEN: usize = 256 * 1024;

/// Largest pcapng block that is buffered (section, interface and packet blocks): a packet of
/// [`MAX_PACKET_LEN`] plus room for the block header and options. Blocks nobody reads
/// (statistics, name resolution, secrets, custom) may be longer: they are skipped unbuffered.
pub const MAX_BLOCK_LEN: usize = MAX_PACKET_LEN + 64 * 1024;

/// Size of the one read buffer a [`FileSource`] owns: the whole of its memory for packet data.
/// Several records per read keep system calls rare; it must hold [`MAX_BLOCK_LEN`].
pub const READ_BUFFER_LEN: usize = 1024 * 1024;

/// Interfaces one pcapng section may describe; a file describing more is stopped with a warning
/// (each interface costs memory, and real captures have a handful).
pub const MAX_INTERFACES: usize = 4096;

/// Warnings kept for the end-of-run report; further ones are only counted
/// ([`FileSource::suppressed_warnings`]), so a file of a million bad records cannot fill memory.
pub const MAX_WARNINGS: usize = 1000;

const _: () = assert!(READ_BUFFER_LEN >= MAX_BLOCK_LEN);

/// Where a packet came from: which input file (an index into [`FileSource::files`]) and which
/// packet record of it, counted from 1 as tshark numbers frames (skipped records count too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourcePos {
    pub file_index: usize,
    pub packet_number: u64,
}

/// One captured packet, borrowed from the source until its next call.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// The captured bytes; shorter than `orig_len` when the capture cut the packet.
    pub data: &'a [u8],
    /// The packet's length on the wire, as the record states it.
    pub orig_len: u32,
    pub source: SourcePos,
}

/// A lending iterator over packets. `Ok(None)` means the source is exhausted.
pub trait PacketSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError>;
}

/// Counters of a run, for the end-of-run summary and stats records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets returned by `next_packet`.
    pub packets: u64,
    /// Packets on pcapng interfaces of a link type the decoder does not read.
    pub packets_unsupported_link: u64,
    /// Packet records skipped because they contradicted themselves (their framing was intact).
    pub packets_malformed: u64,
    /// Input files finished (read to the end, or stopped by a warning or error).
    pub files_done: usize,
}
