//! Writers for pcap (both byte orders, micro and nano seconds) and pcapng files.
//!
//! Tests across the project build their capture files with these, so every header field of the
//! input is known and chosen by the test. Both writers write into any `io::Write`: a `Vec<u8>`
//! for in-memory tests, a `File` for tests that need a path. Writing into a `Vec` cannot fail, so
//! tests may unwrap those results.
//!
//! Besides well-formed records, both writers can emit records whose length fields lie
//! (`write_raw_record`, `write_raw_block`), so readers can be tested against hostile files.

use std::io::{self, Write};

use weir_core::{LinkType, Timestamp};

/// Byte order of every multi-byte field in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ByteOrder {
    #[default]
    Little,
    Big,
}

impl ByteOrder {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    fn u64(self, v: u64) -> [u8; 8] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
}

/// Sub-second unit of a classic pcap file, chosen by its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsResolution {
    /// Magic 0xa1b2c3d4.
    #[default]
    Micro,
    /// Magic 0xa1b23c4d.
    Nano,
}

/// The global header of a classic pcap file.
#[derive(Clone, Copy, Debug)]
pub struct PcapOptions {
    pub byte_order: ByteOrder,
    pub resolution: TsResolution,
    pub link: LinkType,
    pub snaplen: u32,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            byte_order: ByteOrder::Little,
            resolution: TsResolution::Micro,
            link: LinkType::ETHERNET,
            snaplen: 262_144,
        }
    }
}

/// Writes a classic (libpcap) capture file: a 24-byte global header, then one 16-byte record
/// header per packet followed by the captured bytes.
pub struct PcapWriter<W: Write> {
    out: W,
    options: PcapOptions,
}

impl PcapWriter<Vec<u8>> {
    /// A writer into a fresh in-memory buffer; `finish()` returns the file's bytes.
    pub fn in_memory(options: PcapOptions) -> Self {
        // Writing into a Vec cannot fail.
        match PcapWriter::new(Vec::new(), options) {
            Ok(w) => w,
            Err(_) => unreachable!("writing into a Vec never fails"),
        }
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, options: PcapOptions) -> io::Result<Self> {
        let order = options.byte_order;
        let magic = match options.resolution {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        };
        out.write_all(&order.u32(magic))?;
        out.write_all(&order.u16(2))?; // version_major
        out.write_all(&order.u16(4))?; // version_minor
        out.write_all(&order.u32(0))?; // thiszone
        out.write_all(&order.u32(0))?; // sigfigs
        out.write_all(&order.u32(options.snaplen))?;
        out.write_all(&order.u32(options.link.0))?;
        Ok(PcapWriter { out, options })
    }

    /// Writes a whole packet: captured length = original length = `data.len()`.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = len_u32(data.len())?;
        self.write_packet_with_orig_len(ts, data, len)
    }

    /// Writes a packet that was cut by the snap length: `orig_len` is what was on the wire.
    pub fn write_packet_with_orig_len(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = u32::try_from(ts.secs()).map_err(|_| invalid("timestamp past 2106 does not fit pcap"))?;
        let nanos = (ts.as_nanos() % 1_000_000_000) as u32;
        let frac = match self.options.resolution {
            TsResolution::Micro => nanos / 1_000,
            TsResolution::Nano => nanos,
        };
        let caplen = len_u32(data.len())?;
        self.write_raw_record(secs, frac, caplen, orig_len, data)
    }

    /// Writes a record header with exactly these fields, then `data`, whether or not they agree:
    /// for testing readers against lying length fields.
    pub fn write_raw_record(
        &mut self,
        ts_sec: u32,
        ts_frac: u32,
        caplen: u32,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let order = self.options.byte_order;
        self.out.write_all(&order.u32(ts_sec))?;
        self.out.write_all(&order.u32(ts_frac))?;
        self.out.write_all(&order.u32(caplen))?;
        self.out.write_all(&order.u32(orig_len))?;
        self.out.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl PcapWriter<Vec<u8>> {
    /// The bytes written so far (an in-memory writer only).
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }
}

/// One pcapng interface, as described by its Interface Description Block.
#[derive(Clone, Copy, Debug)]
pub struct PcapngInterface {
    pub link: LinkType,
    /// 0 means "no limit", as in the format.
    pub snaplen: u32,
    /// The raw `if_tsresol` option byte: bit 7 clear means 10^-n seconds, set means 2^-n.
    /// `None` omits the option, which means microseconds.
    pub tsresol: Option<u8>,
    /// The `if_tsoffset` option, in seconds added to every timestamp; `None` omits it.
    pub tsoffset: Option<i64>,
}

impl PcapngInterface {
    /// An interface of `link` with microsecond timestamps (the format's default).
    pub fn new(link: LinkType) -> Self {
        PcapngInterface { link, snaplen: 0, tsresol: None, tsoffset: None }
    }

    /// The same interface with an explicit `if_tsresol` byte.
    pub fn with_tsresol(mut self, tsresol: u8) -> Self {
        self.tsresol = Some(tsresol);
        self
    }

    /// Timestamp units per second.
    fn units_per_second(&self) -> u128 {
        match self.tsresol {
            None => 1_000_000,
            Some(r) if r & 0x80 == 0 => 10u128.pow(u32::from(r)),
            Some(r) => 1u128 << (r & 0x7f),
        }
    }
}

const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 0x0000_0001;
const OBSOLETE_PB_TYPE: u32 = 0x0000_0002;
const SPB_TYPE: u32 = 0x0000_0003;
const EPB_TYPE: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Writes a pcapng file: a Section Header Block at once, then interfaces and packets as asked.
pub struct PcapngWriter<W: Write> {
    out: W,
    order: ByteOrder,
    interfaces: Vec<PcapngInterface>,
}

impl PcapngWriter<Vec<u8>> {
    /// A writer into a fresh in-memory buffer; `finish()` returns the file's bytes.
    pub fn in_memory(order: ByteOrder) -> Self {
        match PcapngWriter::new(Vec::new(), order) {
            Ok(w) => w,
            Err(_) => unreachable!("writing into a Vec never fails"),
        }
    }

    /// The bytes written so far (an in-memory writer only).
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the first Section Header Block in `order`.
    pub fn new(out: W, order: ByteOrder) -> io::Result<Self> {
        let mut w = PcapngWriter { out, order, interfaces: Vec::new() };
        w.write_section_header()?;
        Ok(w)
    }

    /// Starts a new section (possibly in the other byte order); its interfaces start from zero.
    pub fn new_section(&mut self, order: ByteOrder) -> io::Result<()> {
        self.order = order;
        self.interfaces.clear();
        self.write_section_header()
    }

    fn write_section_header(&mut self) -> io::Result<()> {
        let o = self.order;
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&o.u32(BYTE_ORDER_MAGIC));
        body.extend_from_slice(&o.u16(1)); // major version
        body.extend_from_slice(&o.u16(0)); // minor version
        body.extend_from_slice(&o.u64(u64::MAX)); // section length: unknown (-1)
        self.write_raw_block(SHB_TYPE, &body)
    }

    /// Writes an Interface Description Block and returns the interface's id in this section.
    pub fn add_interface(&mut self, interface: PcapngInterface) -> io::Result<u32> {
        let o = self.order;
        let mut body = Vec::with_capacity(32);
        let link = u16::try_from(interface.link.0).map_err(|_| invalid("pcapng link types are 16 bits"))?;
        body.extend_from_slice(&o.u16(link));
        body.extend_from_slice(&o.u16(0)); // reserved
        body.extend_from_slice(&o.u32(interface.snaplen));
        let mut has_options = false;
        if let Some(r) = interface.tsresol {
            push_option(&mut body, o, OPT_IF_TSRESOL, &[r]);
            has_options = true;
        }
        if let Some(off) = interface.tsoffset {
            push_option(&mut body, o, OPT_IF_TSOFFSET, &o.u64(off as u64));
            has_options = true;
        }
        if has_options {
            push_option(&mut body, o, OPT_ENDOFOPT, &[]);
        }
        self.write_raw_block(IDB_TYPE, &body)?;
        self.interfaces.push(interface);
        len_u32(self.interfaces.len() - 1)
    }

    /// Writes a whole packet as an Enhanced Packet Block on interface `if_id`, its timestamp in
    /// that interface's resolution.
    pub fn write_packet(&mut self, if_id: u32, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = len_u32(data.len())?;
        self.write_packet_with_orig_len(if_id, ts, data, len)
    }

    /// An Enhanced Packet Block whose packet was cut: `orig_len` is what was on the wire.
    pub fn write_packet_with_orig_len(
        &mut self,
        if_id: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let units = self.timestamp_units(if_id, ts)?;
        let caplen = len_u32(data.len())?;
        let o = self.order;
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&o.u32(if_id));
        body.extend_from_slice(&o.u32((units >> 32) as u32));
        body.extend_from_slice(&o.u32(units as u32));
        body.extend_from_slice(&o.u32(caplen));
        body.extend_from_slice(&o.u32(orig_len));
        body.extend_from_slice(data);
        pad32(&mut body);
        self.write_raw_block(EPB_TYPE, &body)
    }

    /// A Simple Packet Block (always interface 0, no timestamp); `orig_len` may exceed the data.
    pub fn write_simple_packet(&mut self, data: &[u8], orig_len: u32) -> io::Result<()> {
        let mut body = Vec::with_capacity(4 + data.len() + 3);
        body.extend_from_slice(&self.order.u32(orig_len));
        body.extend_from_slice(data);
        pad32(&mut body);
        self.write_raw_block(SPB_TYPE, &body)
    }

    /// The obsolete Packet Block (type 2) that old writers still produce.
    pub fn write_obsolete_packet(&mut self, if_id: u16, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let units = self.timestamp_units(u32::from(if_id), ts)?;
        let caplen = len_u32(data.len())?;
        let o = self.order;
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&o.u16(if_id));
        body.extend_from_slice(&o.u16(0)); // drops count
        body.extend_from_slice(&o.u32((units >> 32) as u32));
        body.extend_from_slice(&o.u32(units as u32));
        body.extend_from_slice(&o.u32(caplen));
        body.extend_from_slice(&o.u32(caplen));
        body.extend_from_slice(data);
        pad32(&mut body);
        self.write_raw_block(OBSOLETE_PB_TYPE, &body)
    }

    /// Writes a block of any type around `body` (which the caller pads): type, total length,
    /// body, total length again.
    pub fn write_raw_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let total = len_u32(body.len() + 12)?;
        self.write_raw_block_with_len(block_type, total, body, total)
    }

    /// Writes a block whose two length fields are exactly these, whatever the body's size: for
    /// testing readers against lying lengths.
    pub fn write_raw_block_with_len(
        &mut self,
        block_type: u32,
        len: u32,
        body: &[u8],
        trailing_len: u32,
    ) -> io::Result<()> {
        let o = self.order;
        self.out.write_all(&o.u32(block_type))?;
        self.out.write_all(&o.u32(len))?;
        self.out.write_all(body)?;
        self.out.write_all(&o.u32(trailing_len))
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn timestamp_units(&self, if_id: u32, ts: Timestamp) -> io::Result<u64> {
        let interface =
            self.interfaces.get(if_id as usize).ok_or_else(|| invalid("packet on an interface that was not added"))?;
        let mut nanos = i128::from(ts.as_nanos());
        if let Some(off) = interface.tsoffset {
            nanos -= i128::from(off) * 1_000_000_000;
        }
        let nanos = u128::try_from(nanos).map_err(|_| invalid("timestamp before the interface's offset"))?;
        let units = nanos * interface.units_per_second() / 1_000_000_000;
        u64::try_from(units).map_err(|_| invalid("timestamp does not fit 64 bits at this resolution"))
    }
}

fn push_option(body: &mut Vec<u8>, order: ByteOrder, code: u16, value: &[u8]) {
    body.extend_from_slice(&order.u16(code));
    // Option values here are at most 8 bytes.
    body.extend_from_slice(&order.u16(value.len() as u16));
    body.extend_from_slice(value);
    pad32(body);
}

fn pad32(body: &mut Vec<u8>) {
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
}

fn len_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| invalid("length does not fit 32 bits"))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_big_endian_nanosecond_layout() {
        let mut w = PcapWriter::in_memory(PcapOptions {
            byte_order: ByteOrder::Big,
            resolution: TsResolution::Nano,
            link: LinkType::RAW,
            snaplen: 65_535,
        });
        w.write_packet(Timestamp::from_secs_nanos(1, 2), &[0xAB, 0xCD]).unwrap();
        let bytes = w.finish().unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xa1, 0xb2, 0x3c, 0x4d, // magic: nanoseconds, big endian
            0, 2, 0, 4,             // version 2.4
            0, 0, 0, 0,             // thiszone
            0, 0, 0, 0,             // sigfigs
            0, 0, 0xff, 0xff,       // snaplen 65535
            0, 0, 0, 101,           // LINKTYPE_RAW
            0, 0, 0, 1,             // ts_sec
            0, 0, 0, 2,             // ts_nsec
            0, 0, 0, 2,             // caplen
            0, 0, 0, 2,             // orig_len
            0xAB, 0xCD,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn classic_little_endian_microseconds_truncates_nanos() {
        let mut w = PcapWriter::in_memory(PcapOptions::default());
        w.write_packet(Timestamp::from_secs_nanos(3, 4_999), &[]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0]); // Ethernet
        assert_eq!(&bytes[24..40], &[3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes.len(), 40);
    }

    #[test]
    fn pcapng_blocks_layout() {
        let mut w = PcapngWriter::in_memory(ByteOrder::Little);
        let id = w.add_interface(PcapngInterface::new(LinkType::ETHERNET).with_tsresol(9)).unwrap();
        assert_eq!(id, 0);
        w.write_packet(id, Timestamp::from_nanos(0x1_0000_0005), &[1, 2, 3]).unwrap();
        let bytes = w.finish().unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // Section Header Block
            0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0,
            0x4d, 0x3c, 0x2b, 0x1a, // byte-order magic
            1, 0, 0, 0,             // version 1.0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
            28, 0, 0, 0,
            // Interface Description Block
            1, 0, 0, 0, 32, 0, 0, 0,
            1, 0, 0, 0,             // link type 1, reserved
            0, 0, 0, 0,             // snaplen 0
            9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol = 9 (nanoseconds), padded
            0, 0, 0, 0,             // opt_endofopt
            32, 0, 0, 0,
            // Enhanced Packet Block
            6, 0, 0, 0, 36, 0, 0, 0,
            0, 0, 0, 0,             // interface 0
            1, 0, 0, 0,             // timestamp high
            5, 0, 0, 0,             // timestamp low
            3, 0, 0, 0, 3, 0, 0, 0, // caplen, orig_len
            1, 2, 3, 0,             // data, padded
            36, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pcapng_rejects_packet_on_unknown_interface() {
        let mut w = PcapngWriter::in_memory(ByteOrder::Big);
        assert!(w.write_packet(0, Timestamp::ZERO, &[]).is_err());
    }
}
