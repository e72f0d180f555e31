//! What can go wrong reading captures: errors stop the run, warnings are collected and printed at
//! the end. Every message is one line that starts with the file it is about.

use std::io;
use std::path::PathBuf;

/// A failure that ends the run (or, for [`CaptureError::Read`], the file being read).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no capture files given")]
    NoInput,
    /// Missing file, permission denied, ...
    #[error("{}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: directory holds no pcap or pcapng files", dir.display())]
    NoCaptures { dir: PathBuf },
    #[error("{}: not a pcap or pcapng file", path.display())]
    NotACapture { path: PathBuf },
    #[error("{}: unsupported link type {link}", path.display())]
    UnsupportedLinkType { path: PathBuf, link: u32 },
    #[error("{}: bad file header: {reason}", path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error("{}: packet {packet}: read error: {source}", path.display())]
    Read { path: PathBuf, packet: u64, source: io::Error },
}

/// Something the run survived but the user should hear about. `packet` is the 1-based number of
/// the packet record being read (as tshark numbers frames); `offset` is its byte offset in the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaptureWarning {
    #[error(
        "{}: packet {packet}: file ends inside the record at byte {offset} ({available} of {needed} bytes present); rest of file ignored",
        file.display()
    )]
    TruncatedRecord { file: PathBuf, packet: u64, offset: u64, needed: u64, available: u64 },
    #[error(
        "{}: packet {packet}: record at byte {offset} claims {length} bytes, over the {limit}-byte limit; rest of file skipped",
        file.display()
    )]
    RecordTooLarge { file: PathBuf, packet: u64, offset: u64, length: u64, limit: u64 },
    /// The file's framing can no longer be trusted, so the rest of it is skipped.
    #[error("{}: packet {packet}: malformed record at byte {offset}: {reason}; rest of file skipped", file.display())]
    Malformed { file: PathBuf, packet: u64, offset: u64, reason: String },
    /// One packet record was unusable but the framing around it is intact.
    #[error("{}: packet {packet}: {reason}; packet skipped", file.display())]
    PacketSkipped { file: PathBuf, packet: u64, reason: String },
    #[error("{}: interface {interface}: unsupported link type {link}; {skipped} packets skipped", file.display())]
    UnsupportedInterface { file: PathBuf, interface: u32, link: u32, skipped: u64 },
    #[error("{}: interface {interface}: invalid if_tsresol {tsresol:#04x}; microseconds assumed", file.display())]
    BadTimestampResolution { file: PathBuf, interface: u32, tsresol: u8 },
    /// Files in a directory that are not captures (READMEs, manifests) are skipped with one
    /// line per directory, not one per file.
    #[error("{}: {count} file(s) that are not pcap or pcapng skipped, e.g. {}", dir.display(), example.display())]
    NotCapturesSkipped { dir: PathBuf, count: usize, example: PathBuf },
}
