//! Reading one capture file, record by record, out of the shared [`ReadBuffer`].
//!
//! Header and descriptor blocks are parsed with `pcap-parser`. Packet records are framed here:
//! the reader must check every length field against the bytes that exist and against
//! [`MAX_PACKET_LEN`] before asking for them, which is exactly the framing work; and parsing an
//! Enhanced Packet Block through `pcap-parser` would allocate a `Vec` for its options per packet.
//!
//! A reader never returns a borrowed record: it returns where the record lies in the buffer
//! ([`PacketMeta`]), and the file source lends the slice out. That keeps the borrow checker out
//! of the refill loop.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use pcap_parser::pcapng::{
    OptionCode, parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le, parse_sectionheaderblock_be,
    parse_sectionheaderblock_le,
};
use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header};
use weir_core::{LinkType, Timestamp};

use crate::buffer::ReadBuffer;
use crate::error::{CaptureError, CaptureWarning};
use crate::{CaptureStats, MAX_BLOCK_LEN, MAX_INTERFACES, MAX_PACKET_LEN, MAX_WARNINGS};

/// Where the last packet lies in the buffer and what the record said about it.
pub(crate) struct PacketMeta {
    pub(crate) range: Range<usize>,
    pub(crate) ts: Timestamp,
    pub(crate) link: LinkType,
    pub(crate) orig_len: u32,
    pub(crate) number: u64,
}

/// The bounded list of warnings a run collects.
#[derive(Default)]
pub(crate) struct WarningLog {
    pub(crate) list: Vec<CaptureWarning>,
    pub(crate) suppressed: u64,
}

impl WarningLog {
    pub(crate) fn push(&mut self, warning: CaptureWarning) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(warning);
        } else {
            self.suppressed += 1;
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug)]
pub(crate) enum Sniffed {
    Pcap,
    Pcapng,
    NotACapture,
}

/// Classifies a file by its first (up to 24) bytes, and for classic pcap checks the link type
/// now, so an unusable file is refused before anything is read.
pub(crate) fn sniff(path: &Path, head: &[u8]) -> Result<Sniffed, CaptureError> {
    if head.len() >= 4 && head[..4] == PCAPNG_SHB_MAGIC {
        if head.len() < 12 || byte_order_of_section(&head[8..12]).is_none() {
            return Err(CaptureError::BadHeader {
                path: path.to_path_buf(),
                reason: "pcapng section header without a valid byte-order magic".into(),
            });
        }
        return Ok(Sniffed::Pcapng);
    }
    if head.len() >= 4 && is_classic_magic(&head[..4]) {
        ClassicFormat::parse(path, head)?;
        return Ok(Sniffed::Pcap);
    }
    Ok(Sniffed::NotACapture)
}

const PCAPNG_SHB_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const CLASSIC_HEADER_LEN: usize = 24;
const NANOS_PER_SEC: u64 = 1_000_000_000;

fn is_classic_magic(m: &[u8]) -> bool {
    matches!(
        m,
        [0xd4, 0xc3, 0xb2, 0xa1] // microseconds, little endian
            | [0xa1, 0xb2, 0xc3, 0xd4] // microseconds, big endian
            | [0x4d, 0x3c, 0xb2, 0xa1] // nanoseconds, little endian
            | [0xa1, 0xb2, 0x3c, 0x4d] // nanoseconds, big endian
            | [0x34, 0xcd, 0xb2, 0xa1] // Kuznetzov's "modified" format (24-byte records)
    )
}

#[derive(Clone, Copy)]
struct ClassicFormat {
    big_endian: bool,
    nanos: bool,
    record_header_len: usize,
    link: LinkType,
}

impl ClassicFormat {
    fn parse(path: &Path, head: &[u8]) -> Result<Self, CaptureError> {
        let bad = |reason: &str| CaptureError::BadHeader { path: path.to_path_buf(), reason: reason.into() };
        if head.len() < CLASSIC_HEADER_LEN {
            return Err(bad("file ends inside the 24-byte pcap header"));
        }
        let (_, header) =
            parse_pcap_header(&head[..CLASSIC_HEADER_LEN]).map_err(|_| bad("unrecognised pcap header"))?;
        // The upper 16 bits of the link-type field carry FCS flags, not the type (libpcap's
        // LT_LINKTYPE).
        let link = LinkType((header.network.0 as u32) & 0xFFFF);
        if !link.is_supported() {
            return Err(CaptureError::UnsupportedLinkType { path: path.to_path_buf(), link: link.0 });
        }
        Ok(ClassicFormat {
            big_endian: header.is_bigendian(),
            nanos: header.is_nanosecond_precision(),
            record_header_len: if header.is_modified_format() { 24 } else { 16 },
            link,
        })
    }
}

/// One pcapng interface of the current section.
struct Interface {
    link: LinkType,
    snaplen: u32,
    units_per_sec: u64,
    offset_secs: i64,
    skipped: u64,
}

struct PcapngState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time; they get the last time seen, so timeouts downstream
    /// do not jump back to 1970.
    last_ts: Timestamp,
}

enum Format {
    Classic(ClassicFormat),
    Pcapng(PcapngState),
}

/// Reads the records of one file. After it has returned `None` (end of file, or a warning that
/// stopped the file) it keeps returning `None`.
pub(crate) struct FileReader<R> {
    input: R,
    format: Format,
    /// Packet records met so far, returned or not: the number in warnings and [`SourcePos`].
    ///
    /// [`SourcePos`]: crate::SourcePos
    packets_seen: u64,
    done: bool,
}

/// What a step through the file found.
enum Step {
    Packet(PacketMeta),
    /// A block that is not a packet, or a packet that was skipped: keep going.
    Continue,
    /// End of the file, or a warning that stopped it.
    Stop,
}

impl<R: Read> FileReader<R> {
    /// Reads the file header (for pcapng, the first Section Header Block). `buf` must have been
    /// reset for this input.
    pub(crate) fn open(path: &Path, mut input: R, buf: &mut ReadBuffer) -> Result<Self, CaptureError> {
        let io_err = |e| CaptureError::Open { path: path.to_path_buf(), source: e };
        let available = buf.fill(&mut input, CLASSIC_HEADER_LEN).map_err(io_err)?;
        let head = &buf.available()[..available.min(CLASSIC_HEADER_LEN)];
        match sniff(path, head)? {
            Sniffed::NotACapture => Err(CaptureError::NotACapture { path: path.to_path_buf() }),
            Sniffed::Pcap => {
                let format = ClassicFormat::parse(path, head)?;
                buf.consume(CLASSIC_HEADER_LEN);
                Ok(FileReader { input, format: Format::Classic(format), packets_seen: 0, done: false })
            }
            Sniffed::Pcapng => {
                let state = PcapngState { big_endian: false, interfaces: Vec::new(), last_ts: Timestamp::ZERO };
                let mut reader = FileReader { input, format: Format::Pcapng(state), packets_seen: 0, done: false };
                // The first block must be a readable section header; anything less is an error,
                // not a warning, because nothing of the file could be read.
                let mut warnings = WarningLog::default();
                let mut stats = CaptureStats::default();
                match reader.step(path, buf, &mut warnings, &mut stats) {
                    Ok(Step::Continue) if warnings.list.is_empty() => Ok(reader),
                    Err(e) => Err(e),
                    _ => Err(CaptureError::BadHeader {
                        path: path.to_path_buf(),
                        reason: match warnings.list.first() {
                            Some(CaptureWarning::Malformed { reason, .. }) => reason.clone(),
                            Some(CaptureWarning::TruncatedRecord { .. }) => {
                                "file ends inside the section header block".into()
                            }
                            Some(CaptureWarning::RecordTooLarge { length, .. }) => {
                                format!("section header block of {length} bytes is over the limit")
                            }
                            _ => "unreadable section header block".into(),
                        },
                    }),
                }
            }
        }
    }

    /// The next packet of this file, skipping what cannot be returned.
    pub(crate) fn next(
        &mut self,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        stats: &mut CaptureStats,
    ) -> Result<Option<PacketMeta>, CaptureError> {
        while !self.done {
            match self.step(path, buf, warnings, stats)? {
                Step::Packet(meta) => return Ok(Some(meta)),
                Step::Continue => {}
                Step::Stop => self.finish(path, warnings),
            }
        }
        Ok(None)
    }

    fn finish(&mut self, path: &Path, warnings: &mut WarningLog) {
        self.done = true;
        if let Format::Pcapng(state) = &mut self.format {
            flush_interface_warnings(path, state, warnings);
        }
    }

    fn step(
        &mut self,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        match self.format {
            Format::Classic(format) => self.classic_record(format, path, buf, warnings),
            Format::Pcapng(_) => self.pcapng_block(path, buf, warnings, stats),
        }
    }

    /// Makes `wanted` bytes available, or says how many there are.
    fn fill(&mut self, path: &Path, buf: &mut ReadBuffer, wanted: usize) -> Result<usize, CaptureError> {
        buf.fill(&mut self.input, wanted).map_err(|source| CaptureError::Read {
            path: path.to_path_buf(),
            packet: self.packets_seen + 1,
            source,
        })
    }

    fn classic_record(
        &mut self,
        format: ClassicFormat,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
    ) -> Result<Step, CaptureError> {
        let header_len = format.record_header_len;
        let available = self.fill(path, buf, header_len)?;
        if available == 0 {
            return Ok(Step::Stop);
        }
        if available < header_len {
            warnings.push(truncated(path, self.packets_seen + 1, buf, header_len, available));
            return Ok(Step::Stop);
        }
        let caplen = read_u32(&buf.available()[8..12], format.big_endian);
        if caplen as usize > MAX_PACKET_LEN {
            warnings.push(too_large(path, self.packets_seen + 1, buf, u64::from(caplen), MAX_PACKET_LEN));
            return Ok(Step::Stop);
        }
        let record_len = header_len + caplen as usize;
        let available = self.fill(path, buf, record_len)?;
        if available < record_len {
            warnings.push(truncated(path, self.packets_seen + 1, buf, record_len, available));
            return Ok(Step::Stop);
        }
        let record = &buf.available()[..record_len];
        let parsed = if header_len == 24 {
            parse_pcap_frame_modified(record)
        } else if format.big_endian {
            parse_pcap_frame_be(record)
        } else {
            parse_pcap_frame(record)
        };
        let Ok((_, frame)) = parsed else {
            // Unreachable in practice: the whole record is present and every caplen is accepted.
            warnings.push(malformed(path, self.packets_seen + 1, buf, "pcap record did not parse".into()));
            return Ok(Step::Stop);
        };
        let frac_nanos = if format.nanos { u64::from(frame.ts_usec) } else { u64::from(frame.ts_usec) * 1_000 };
        let ts = Timestamp::from_secs_nanos(u64::from(frame.ts_sec), frac_nanos);
        let orig_len = frame.origlen;
        let start = buf.start() + header_len;
        buf.consume(record_len);
        self.packets_seen += 1;
        Ok(Step::Packet(PacketMeta {
            range: start..start + caplen as usize,
            ts,
            link: format.link,
            orig_len,
            number: self.packets_seen,
        }))
    }

    fn pcapng_block(
        &mut self,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        stats: &mut CaptureStats,
    ) -> Result<Step, CaptureError> {
        const SHB: u32 = 0x0A0D_0D0A;
        const IDB: u32 = 1;
        const OBSOLETE_PB: u32 = 2;
        const SPB: u32 = 3;
        const EPB: u32 = 6;

        let available = self.fill(path, buf, 12)?;
        if available == 0 {
            return Ok(Step::Stop);
        }
        if available < 12 {
            warnings.push(truncated(path, self.packets_seen + 1, buf, 12, available));
            return Ok(Step::Stop);
        }
        let head = buf.available();
        let Format::Pcapng(state) = &mut self.format else {
            return Ok(Step::Stop);
        };
        // The SHB's type reads the same in both orders; its byte-order magic sets the order of
        // everything in its section, including its own length.
        if head[..4] == PCAPNG_SHB_MAGIC {
            match byte_order_of_section(&head[8..12]) {
                Some(big_endian) => state.big_endian = big_endian,
                None => {
                    let w = malformed(
                        path,
                        self.packets_seen + 1,
                        buf,
                        "section header with a bad byte-order magic".into(),
                    );
                    warnings.push(w);
                    return Ok(Step::Stop);
                }
            }
        }
        let big_endian = state.big_endian;
        let block_type = read_u32(&head[..4], big_endian);
        let block_len = read_u32(&head[4..8], big_endian);
        if block_len < 12 || !block_len.is_multiple_of(4) {
            let w = malformed(
                path,
                self.packets_seen + 1,
                buf,
                format!("block length {block_len} is not a multiple of 4 of at least 12"),
            );
            warnings.push(w);
            return Ok(Step::Stop);
        }
        let block_len_usize = block_len as usize;
        if !matches!(block_type, SHB | IDB | OBSOLETE_PB | SPB | EPB) {
            // Statistics, name resolution, secrets, custom blocks: nothing here reads them, so
            // they are skipped without being buffered, whatever their size.
            let skipped = buf.skip(&mut self.input, u64::from(block_len)).map_err(|source| CaptureError::Read {
                path: path.to_path_buf(),
                packet: self.packets_seen + 1,
                source,
            })?;
            if skipped < u64::from(block_len) {
                warnings.push(CaptureWarning::TruncatedRecord {
                    file: path.to_path_buf(),
                    packet: self.packets_seen + 1,
                    offset: buf.consumed() - skipped,
                    needed: u64::from(block_len),
                    available: skipped,
                });
                return Ok(Step::Stop);
            }
            return Ok(Step::Continue);
        }
        if block_len_usize > MAX_BLOCK_LEN {
            warnings.push(too_large(path, self.packets_seen + 1, buf, u64::from(block_len), MAX_BLOCK_LEN));
            return Ok(Step::Stop);
        }
        let available = self.fill(path, buf, block_len_usize)?;
        if available < block_len_usize {
            warnings.push(truncated(path, self.packets_seen + 1, buf, block_len_usize, available));
            return Ok(Step::Stop);
        }
        let block = &buf.available()[..block_len_usize];
        if read_u32(&block[block_len_usize - 4..], big_endian) != block_len {
            let w = malformed(
                path,
                self.packets_seen + 1,
                buf,
                "block's trailing length differs from its leading length".into(),
            );
            warnings.push(w);
            return Ok(Step::Stop);
        }
        match block_type {
            SHB => self.section_header(path, buf, warnings, block_len_usize),
            IDB => self.interface_description(path, buf, warnings, block_len_usize),
            _ => self.packet_block(block_type, path, buf, warnings, stats, block_len_usize),
        }
    }

    fn section_header(
        &mut self,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        block_len: usize,
    ) -> Result<Step, CaptureError> {
        let Format::Pcapng(state) = &mut self.format else {
            return Ok(Step::Stop);
        };
        let block = &buf.available()[..block_len];
        let parsed =
            if state.big_endian { parse_sectionheaderblock_be(block) } else { parse_sectionheaderblock_le(block) };
        let version = parsed.map(|(_, shb)| shb.major_version);
        flush_interface_warnings(path, state, warnings);
        match version {
            Ok(1) => {
                buf.consume(block_len);
                Ok(Step::Continue)
            }
            Ok(major) => {
                let w = malformed(path, self.packets_seen + 1, buf, format!("pcapng major version {major} is not 1"));
                warnings.push(w);
                Ok(Step::Stop)
            }
            Err(_) => {
                let w = malformed(path, self.packets_seen + 1, buf, "unreadable section header block".into());
                warnings.push(w);
                Ok(Step::Stop)
            }
        }
    }

    fn interface_description(
        &mut self,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        block_len: usize,
    ) -> Result<Step, CaptureError> {
        let Format::Pcapng(state) = &mut self.format else {
            return Ok(Step::Stop);
        };
        let block = &buf.available()[..block_len];
        let parsed = if state.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let big_endian = state.big_endian;
        let interface_id = state.interfaces.len() as u32;
        let interface = match parsed {
            Ok((_, idb)) => {
                // pcap-parser decodes if_tsoffset as little-endian whatever the section's
                // order, so it is read here from the raw option.
                let offset_secs = idb
                    .options
                    .iter()
                    .find(|o| o.code == OptionCode::IfTsoffset)
                    .and_then(|o| o.as_bytes().ok())
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, |b| if big_endian { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) });
                let units_per_sec = match units_per_second(idb.if_tsresol) {
                    Some(units) => units,
                    _ => {
                        warnings.push(CaptureWarning::BadTimestampResolution {
                            file: path.to_path_buf(),
                            interface: interface_id,
                            tsresol: idb.if_tsresol,
                        });
                        1_000_000
                    }
                };
                Interface {
                    link: LinkType(u32::from(idb.linktype.0 as u16)),
                    snaplen: idb.snaplen,
                    units_per_sec,
                    offset_secs,
                    skipped: 0,
                }
            }
            Err(_) => {
                // A lost interface would shift the meaning of every later interface id.
                let w = malformed(
                    path,
                    self.packets_seen + 1,
                    buf,
                    format!("unreadable interface description block (interface {interface_id})"),
                );
                warnings.push(w);
                return Ok(Step::Stop);
            }
        };
        if state.interfaces.len() >= MAX_INTERFACES {
            let w = malformed(
                path,
                self.packets_seen + 1,
                buf,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            );
            warnings.push(w);
            return Ok(Step::Stop);
        }
        state.interfaces.push(interface);
        buf.consume(block_len);
        Ok(Step::Continue)
    }

    /// Enhanced, Simple and obsolete Packet Blocks.
    fn packet_block(
        &mut self,
        block_type: u32,
        path: &Path,
        buf: &mut ReadBuffer,
        warnings: &mut WarningLog,
        stats: &mut CaptureStats,
        block_len: usize,
    ) -> Result<Step, CaptureError> {
        let Format::Pcapng(state) = &mut self.format else {
            return Ok(Step::Stop);
        };
        self.packets_seen += 1;
        let number = self.packets_seen;
        let be = state.big_endian;
        let block = &buf.available()[..block_len];
        let skip = |buf: &mut ReadBuffer,
                    warnings: &mut WarningLog,
                    stats: &mut CaptureStats,
                    reason: String|
         -> Result<Step, CaptureError> {
            warnings.push(CaptureWarning::PacketSkipped { file: path.to_path_buf(), packet: number, reason });
            stats.packets_malformed += 1;
            buf.consume(block_len);
            Ok(Step::Continue)
        };
        // Layout after type and length: SPB: orig_len, data. EPB: if_id(32), ts_high, ts_low,
        // caplen, orig_len, data, options. Obsolete PB: if_id(16), drops(16), then as EPB.
        let body = &block[8..block_len - 4];
        let (if_id, data_offset, caplen, orig_len, ts_units) = if block_type == 3 {
            let orig_len = read_u32(&body[0..4], be);
            (0, 12, 0, orig_len, None)
        } else {
            if body.len() < 20 {
                return skip(buf, warnings, stats, format!("packet block of {block_len} bytes is too short"));
            }
            let if_id = if block_type == 2 { u32::from(read_u16(&body[0..2], be)) } else { read_u32(&body[0..4], be) };
            let ts = (u64::from(read_u32(&body[4..8], be)) << 32) | u64::from(read_u32(&body[8..12], be));
            let caplen = read_u32(&body[12..16], be);
            let orig_len = read_u32(&body[16..20], be);
            (if_id, 28, caplen, orig_len, Some(ts))
        };
        let Some(interface) = state.interfaces.get_mut(if_id as usize) else {
            return skip(
                buf,
                warnings,
                stats,
                format!("packet on interface {if_id}, which the section does not describe"),
            );
        };
        let room = block_len - 4 - data_offset;
        let caplen = match ts_units {
            Some(_) if caplen as usize > room => {
                return skip(
                    buf,
                    warnings,
                    stats,
                    format!("captured length {caplen} exceeds its block ({room} bytes)"),
                );
            }
            Some(_) => caplen as usize,
            // A Simple Packet Block's data is whatever the block holds, cut to what the wire had
            // and the interface's snap length (padding is not data).
            None => {
                let mut len = room.min(orig_len as usize);
                if interface.snaplen != 0 {
                    len = len.min(interface.snaplen as usize);
                }
                len
            }
        };
        if !interface.link.is_supported() {
            interface.skipped += 1;
            stats.packets_unsupported_link += 1;
            buf.consume(block_len);
            return Ok(Step::Continue);
        }
        let ts = match ts_units {
            Some(units) => pcapng_timestamp(units, interface.units_per_sec, interface.offset_secs),
            None => state.last_ts,
        };
        state.last_ts = ts;
        let link = interface.link;
        let start = buf.start() + data_offset;
        buf.consume(block_len);
        Ok(Step::Packet(PacketMeta { range: start..start + caplen, ts, link, orig_len, number }))
    }
}

fn truncated(path: &Path, packet: u64, buf: &ReadBuffer, needed: usize, available: usize) -> CaptureWarning {
    CaptureWarning::TruncatedRecord {
        file: path.to_path_buf(),
        packet,
        offset: buf.consumed(),
        needed: needed as u64,
        available: available as u64,
    }
}

fn too_large(path: &Path, packet: u64, buf: &ReadBuffer, length: u64, limit: usize) -> CaptureWarning {
    CaptureWarning::RecordTooLarge {
        file: path.to_path_buf(),
        packet,
        offset: buf.consumed(),
        length,
        limit: limit as u64,
    }
}

fn malformed(path: &Path, packet: u64, buf: &ReadBuffer, reason: String) -> CaptureWarning {
    CaptureWarning::Malformed { file: path.to_path_buf(), packet, offset: buf.consumed(), reason }
}

/// One warning per interface whose packets were skipped for their link type, with the count.
fn flush_interface_warnings(path: &Path, state: &mut PcapngState, warnings: &mut WarningLog) {
    for (id, interface) in state.interfaces.iter().enumerate() {
        if interface.skipped > 0 {
            warnings.push(CaptureWarning::UnsupportedInterface {
                file: path.to_path_buf(),
                interface: id as u32,
                link: interface.link.0,
                skipped: interface.skipped,
            });
        }
    }
    state.interfaces.clear();
}

/// pcapng time: `units` ticks of `1 / units_per_sec` seconds, plus `offset_secs`, clamped to the
/// range a [`Timestamp`] holds.
fn pcapng_timestamp(units: u64, units_per_sec: u64, offset_secs: i64) -> Timestamp {
    let units_per_sec = u128::from(units_per_sec.max(1));
    let nanos = i128::try_from(u128::from(units) * u128::from(NANOS_PER_SEC) / units_per_sec).unwrap_or(i128::MAX);
    let nanos = nanos.saturating_add(i128::from(offset_secs) * i128::from(NANOS_PER_SEC));
    Timestamp::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
}

/// Timestamp ticks per second for an `if_tsresol` byte: 10^n with bit 7 clear, 2^n with it set.
/// (pcap-parser 0.17's `build_ts_resolution` compares the byte with bit 7 still set against 63,
/// so it rejects every power-of-two resolution.) `None` when the tick is not representable.
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 { 10u64.checked_pow(exponent) } else { 1u64.checked_shl(exponent).filter(|_| exponent < 64) }
}

/// `Some(big_endian)` for a valid pcapng byte-order magic.
fn byte_order_of_section(bom: &[u8]) -> Option<bool> {
    match bom {
        [0x4D, 0x3C, 0x2B, 0x1A] => Some(false),
        [0x1A, 0x2B, 0x3C, 0x4D] => Some(true),
        _ => None,
    }
}

fn read_u32(b: &[u8], big_endian: bool) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    if big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
}

fn read_u16(b: &[u8], big_endian: bool) -> u16 {
    let a = [b[0], b[1]];
    if big_endian { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamp_resolutions_and_offset() {
        // 1.5 s in microseconds, nanoseconds and 2^-10 s.
        assert_eq!(pcapng_timestamp(1_500_000, 1_000_000, 0).as_nanos(), 1_500_000_000);
        assert_eq!(pcapng_timestamp(1_500_000_000, 1_000_000_000, 0).as_nanos(), 1_500_000_000);
        assert_eq!(pcapng_timestamp(1536, 1024, 0).as_nanos(), 1_500_000_000);
        assert_eq!(pcapng_timestamp(0, 1_000_000, 100).as_nanos(), 100_000_000_000);
        // An offset that would make time negative clamps at the epoch; a huge count saturates.
        assert_eq!(pcapng_timestamp(5, 1, -10).as_nanos(), 0);
        assert_eq!(pcapng_timestamp(u64::MAX, 1, 0).as_nanos(), u64::MAX);
    }

    #[test]
    fn tsresol_powers_of_ten_and_two() {
        assert_eq!(units_per_second(6), Some(1_000_000));
        assert_eq!(units_per_second(9), Some(1_000_000_000));
        assert_eq!(units_per_second(0), Some(1));
        assert_eq!(units_per_second(19), Some(10_000_000_000_000_000_000));
        assert_eq!(units_per_second(20), None);
        assert_eq!(units_per_second(0x80 | 10), Some(1024));
        assert_eq!(units_per_second(0x80 | 63), Some(1 << 63));
        assert_eq!(units_per_second(0x80 | 64), None);
    }

    #[test]
    fn sniff_classifies_by_magic() {
        let p = Path::new("x");
        #[rustfmt::skip]
        let big_endian_raw: &[u8] = &[
            0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0xff, 0xff, // snaplen
            0x10, 0x00, 0, 101, // LINKTYPE_RAW with FCS flag bits set above the type
        ];
        assert!(matches!(sniff(p, big_endian_raw), Ok(Sniffed::Pcap)));
        assert!(matches!(sniff(p, b"GET / HTTP/1.1\r\n"), Ok(Sniffed::NotACapture)));
        assert!(matches!(sniff(p, &[]), Ok(Sniffed::NotACapture)));
        assert!(matches!(
            sniff(p, &[0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A]),
            Ok(Sniffed::Pcapng)
        ));
        let err = sniff(p, &[0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 1, 2, 3, 4]).unwrap_err();
        assert_eq!(err.to_string(), "x: bad file header: pcapng section header without a valid byte-order magic");
        let err = sniff(p, &big_endian_raw[..20]).unwrap_err();
        assert_eq!(err.to_string(), "x: bad file header: file ends inside the 24-byte pcap header");
    }

    mod properties {
        use super::super::*;
        use crate::READ_BUFFER_LEN;
        use proptest::prelude::*;
        use weir_testkit::pcap::{ByteOrder, PcapOptions, PcapWriter, PcapngInterface, PcapngWriter, TsResolution};

        struct Outcome {
            packets: Vec<(Vec<u8>, u64, LinkType)>,
            warnings: Vec<CaptureWarning>,
            open_error: bool,
        }

        fn read(bytes: &[u8]) -> Outcome {
            let path = Path::new("p");
            let mut buf = ReadBuffer::new(READ_BUFFER_LEN);
            let mut out = Outcome { packets: Vec::new(), warnings: Vec::new(), open_error: false };
            let Ok(mut reader) = FileReader::open(path, bytes, &mut buf) else {
                out.open_error = true;
                return out;
            };
            let mut log = WarningLog::default();
            let mut stats = CaptureStats::default();
            while let Some(meta) = reader.next(path, &mut buf, &mut log, &mut stats).unwrap() {
                assert!(meta.range.len() <= MAX_PACKET_LEN);
                out.packets.push((buf.storage()[meta.range].to_vec(), meta.number, meta.link));
            }
            assert!(reader.next(path, &mut buf, &mut log, &mut stats).unwrap().is_none());
            out.warnings = log.list;
            out
        }

        fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..70), 0..6)
        }

        /// Byte offsets where each record ends, header included.
        fn classic(packets: &[Vec<u8>], big: bool) -> (Vec<u8>, usize, Vec<usize>) {
            let order = if big { ByteOrder::Big } else { ByteOrder::Little };
            let mut w = PcapWriter::in_memory(PcapOptions {
                byte_order: order,
                resolution: TsResolution::Nano,
                ..PcapOptions::default()
            });
            let header_len = w.bytes().len();
            let mut ends = vec![];
            for p in packets {
                w.write_packet(Timestamp::from_nanos(5), p).unwrap();
                ends.push(w.bytes().len());
            }
            (w.finish().unwrap(), header_len, ends)
        }

        fn pcapng(packets: &[Vec<u8>], big: bool) -> (Vec<u8>, usize, Vec<usize>) {
            let order = if big { ByteOrder::Big } else { ByteOrder::Little };
            let mut w = PcapngWriter::in_memory(order);
            w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
            w.add_interface(PcapngInterface::new(LinkType::RAW).with_tsresol(9)).unwrap();
            let header_len = w.bytes().len();
            let mut ends = vec![];
            for (i, p) in packets.iter().enumerate() {
                w.write_packet((i % 2) as u32, Timestamp::from_nanos(5_000), p).unwrap();
                ends.push(w.bytes().len());
            }
            (w.finish().unwrap(), header_len, ends)
        }

        proptest! {
            /// Cutting a file anywhere after its header returns exactly the records that end
            /// before the cut, and warns exactly when the cut falls inside a record.
            #[test]
            fn truncation_returns_every_whole_record(packets in payloads(), big: bool, ng: bool, cut in any::<prop::sample::Index>()) {
                let (bytes, header_len, ends) = if ng { pcapng(&packets, big) } else { classic(&packets, big) };
                let cut = header_len + cut.index(bytes.len() - header_len + 1);
                let got = read(&bytes[..cut]);
                prop_assert!(!got.open_error);
                let whole = ends.iter().filter(|&&e| e <= cut).count();
                prop_assert_eq!(got.packets.len(), whole);
                for (i, (data, number, link)) in got.packets.iter().enumerate() {
                    prop_assert_eq!(data, &packets[i]);
                    prop_assert_eq!(*number, i as u64 + 1);
                    let expected_link = if ng && i % 2 == 1 { LinkType::RAW } else { LinkType::ETHERNET };
                    prop_assert_eq!(*link, expected_link);
                }
                let at_boundary = cut == header_len || ends.contains(&cut);
                prop_assert_eq!(got.warnings.len(), usize::from(!at_boundary));
                if !at_boundary {
                    let is_truncation = matches!(got.warnings[0], CaptureWarning::TruncatedRecord { .. });
                    prop_assert!(is_truncation);
                }
            }

            /// Any corruption: no panic, every packet within the limit, warnings bounded by the
            /// number of records, and the reader ends.
            #[test]
            fn corrupted_files_never_panic(packets in payloads(), big: bool, ng: bool,
                                           flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
                let (mut bytes, _, _) = if ng { pcapng(&packets, big) } else { classic(&packets, big) };
                for (at, value) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                let got = read(&bytes);
                prop_assert!(got.packets.len() <= packets.len() + 1);
                prop_assert!(got.warnings.len() <= packets.len() + 3);
            }
        }
    }
}
