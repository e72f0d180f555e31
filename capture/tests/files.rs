//! FileSource over files made by testkit's writers: every header field is chosen here, so every
//! value read back is known exactly.

use std::fs;
use std::path::{Path, PathBuf};

use weir_capture::{
    CaptureError, CaptureStats, CaptureWarning, FileSource, MAX_BLOCK_LEN, MAX_PACKET_LEN, MAX_WARNINGS, PacketSource,
    SourcePos,
};
use weir_core::{LinkType, Timestamp};
use weir_testkit::pcap::{ByteOrder, PcapOptions, PcapWriter, PcapngInterface, PcapngWriter, TsResolution};

/// What a test compares: everything a RawPacket carries, owned.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    ts: u64,
    link: LinkType,
    data: Vec<u8>,
    orig_len: u32,
    pos: SourcePos,
}

fn read_all(source: &mut FileSource) -> Vec<Got> {
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().expect("no error expected") {
        out.push(Got { ts: p.ts.as_nanos(), link: p.link, data: p.data.to_vec(), orig_len: p.orig_len, pos: p.source });
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn pos(file_index: usize, packet_number: u64) -> SourcePos {
    SourcePos { file_index, packet_number }
}

fn warning_lines(source: &FileSource) -> Vec<String> {
    source.warnings().iter().map(ToString::to_string).collect()
}

const T0: u64 = 1_706_702_400; // 2024-01-31T12:00:00Z

fn ts(secs_after: u64, nanos: u64) -> Timestamp {
    Timestamp::from_secs_nanos(T0 + secs_after, nanos)
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    let dir = tempfile::tempdir().unwrap();
    let jumbo: Vec<u8> = (0..MAX_PACKET_LEN).map(|i| (i % 251) as u8).collect();
    for order in [ByteOrder::Little, ByteOrder::Big] {
        for resolution in [TsResolution::Micro, TsResolution::Nano] {
            let options = PcapOptions { byte_order: order, resolution, link: LinkType::RAW, snaplen: 65_535 };
            let mut w = PcapWriter::in_memory(options);
            w.write_packet(ts(0, 123_456_789), &[0x45, 0, 0, 20]).unwrap();
            w.write_packet(ts(1, 0), &[]).unwrap(); // zero-length record
            w.write_packet_with_orig_len(ts(2, 999_999_999), &[1, 2, 3], 1500).unwrap(); // cut by snaplen
            w.write_packet(ts(3, 5), &jumbo).unwrap();
            let path = write(dir.path(), "x.pcap", &w.finish().unwrap());

            let mut source = FileSource::open(&[&path]).unwrap();
            let got = read_all(&mut source);
            let frac = |nanos: u64| if resolution == TsResolution::Micro { nanos / 1000 * 1000 } else { nanos };
            let case = format!("{order:?} {resolution:?}");
            assert_eq!(got.len(), 4, "{case}");
            assert_eq!(
                got[0],
                Got {
                    ts: ts(0, frac(123_456_789)).as_nanos(),
                    link: LinkType::RAW,
                    data: vec![0x45, 0, 0, 20],
                    orig_len: 4,
                    pos: pos(0, 1)
                },
                "{case}"
            );
            assert_eq!(
                got[1],
                Got { ts: ts(1, 0).as_nanos(), link: LinkType::RAW, data: vec![], orig_len: 0, pos: pos(0, 2) }
            );
            assert_eq!(
                got[2],
                Got {
                    ts: ts(2, frac(999_999_999)).as_nanos(),
                    link: LinkType::RAW,
                    data: vec![1, 2, 3],
                    orig_len: 1500,
                    pos: pos(0, 3)
                }
            );
            assert_eq!(got[3].data, jumbo, "{case}: a 256 KiB packet comes back whole");
            assert_eq!(got[3].ts, ts(3, frac(5)).as_nanos());
            assert!(source.warnings().is_empty(), "{case}: {:?}", source.warnings());
            assert_eq!(source.bytes_read(), source.total_bytes());
            assert_eq!(source.total_bytes(), 24 + 4 * 16 + 4 + 3 + MAX_PACKET_LEN as u64);
        }
    }
}

#[test]
fn fractions_past_one_second_are_carried() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapWriter::in_memory(PcapOptions::default());
    w.write_raw_record(10, 1_500_000, 1, 1, &[7]).unwrap(); // 1.5 s of microseconds
    let path = write(dir.path(), "carry.pcap", &w.finish().unwrap());
    let got = read_all(&mut FileSource::open(&[path]).unwrap());
    assert_eq!(got[0].ts, 11_500_000_000);
}

/// Two interfaces of different link types and resolutions, then a second section in the other
/// byte order whose interface 0 is a third kind.
fn two_interface_pcapng(order: ByteOrder) -> Vec<u8> {
    let other = if order == ByteOrder::Little { ByteOrder::Big } else { ByteOrder::Little };
    let mut w = PcapngWriter::in_memory(order);
    let eth = w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap(); // microseconds
    let raw = w.add_interface(PcapngInterface::new(LinkType::RAW).with_tsresol(9)).unwrap(); // nanoseconds
    w.write_packet(eth, ts(0, 1_234_567), &[0xEE; 14]).unwrap();
    w.write_packet(raw, ts(0, 1_234_567), &[0x45, 1]).unwrap();
    w.write_packet_with_orig_len(raw, ts(1, 7), &[0x60], 40).unwrap();
    w.new_section(other).unwrap();
    let sll = w
        .add_interface(PcapngInterface {
            link: LinkType::LINUX_SLL,
            snaplen: 0,
            tsresol: Some(0x80 | 10),
            tsoffset: Some(60),
        })
        .unwrap();
    w.write_packet(sll, ts(2, 0), &[1, 2, 3, 4, 5]).unwrap();
    w.finish().unwrap()
}

#[test]
fn pcapng_two_interfaces_and_sections_in_both_byte_orders() {
    let dir = tempfile::tempdir().unwrap();
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let path = write(dir.path(), "two.pcapng", &two_interface_pcapng(order));
        let mut source = FileSource::open(&[&path]).unwrap();
        let got = read_all(&mut source);
        let expected = vec![
            Got {
                ts: ts(0, 1_234_000).as_nanos(), // microsecond interface
                link: LinkType::ETHERNET,
                data: vec![0xEE; 14],
                orig_len: 14,
                pos: pos(0, 1),
            },
            Got {
                ts: ts(0, 1_234_567).as_nanos(),
                link: LinkType::RAW,
                data: vec![0x45, 1],
                orig_len: 2,
                pos: pos(0, 2),
            },
            Got { ts: ts(1, 7).as_nanos(), link: LinkType::RAW, data: vec![0x60], orig_len: 40, pos: pos(0, 3) },
            // 2^-10 s ticks: 2.0 s is exact; the 60 s if_tsoffset is added back.
            Got {
                ts: ts(2, 0).as_nanos(),
                link: LinkType::LINUX_SLL,
                data: vec![1, 2, 3, 4, 5],
                orig_len: 5,
                pos: pos(0, 4),
            },
        ];
        assert_eq!(got, expected, "{order:?}");
        assert!(source.warnings().is_empty(), "{:?}", source.warnings());
        assert_eq!(source.bytes_read(), source.total_bytes());
    }
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Big);
    let snap = PcapngInterface { link: LinkType::ETHERNET, snaplen: 4, tsresol: Some(3), tsoffset: None };
    w.add_interface(snap).unwrap();
    w.write_obsolete_packet(0, ts(5, 250_000_000), &[9, 9]).unwrap();
    // Simple Packet Blocks carry no time (they inherit the last one) and are cut to the snaplen.
    w.write_simple_packet(&[1, 2, 3, 4], 60).unwrap();
    w.write_simple_packet(&[1, 2], 2).unwrap(); // orig_len shorter than the padded data
    let path = write(dir.path(), "old.pcapng", &w.finish().unwrap());
    let got = read_all(&mut FileSource::open(&[path]).unwrap());
    let millis = ts(5, 250_000_000).as_nanos();
    assert_eq!(
        got,
        vec![
            Got { ts: millis, link: LinkType::ETHERNET, data: vec![9, 9], orig_len: 2, pos: pos(0, 1) },
            Got { ts: millis, link: LinkType::ETHERNET, data: vec![1, 2, 3, 4], orig_len: 60, pos: pos(0, 2) },
            Got { ts: millis, link: LinkType::ETHERNET, data: vec![1, 2], orig_len: 2, pos: pos(0, 3) },
        ]
    );
}

#[test]
fn pcapng_unsupported_interface_is_skipped_counted_and_warned_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Little);
    let usb = w.add_interface(PcapngInterface::new(LinkType(189))).unwrap(); // LINKTYPE_USB_LINUX
    let eth = w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
    w.write_packet(usb, ts(0, 0), &[1]).unwrap();
    w.write_packet(eth, ts(0, 1000), &[2]).unwrap();
    w.write_packet(usb, ts(0, 2000), &[3]).unwrap();
    w.write_packet(usb, ts(0, 3000), &[4]).unwrap();
    w.write_packet(eth, ts(0, 4000), &[5]).unwrap();
    let path = write(dir.path(), "usb.pcapng", &w.finish().unwrap());
    let mut source = FileSource::open(&[&path]).unwrap();
    let got = read_all(&mut source);
    assert_eq!(got.iter().map(|g| (g.data[0], g.pos.packet_number)).collect::<Vec<_>>(), vec![(2, 2), (5, 5)]);
    assert_eq!(
        warning_lines(&source),
        vec![format!("{}: interface 0: unsupported link type 189; 3 packets skipped", path.display())]
    );
    assert_eq!(
        source.stats(),
        CaptureStats { packets: 2, packets_unsupported_link: 3, packets_malformed: 0, files_done: 1 }
    );
}

#[test]
fn files_and_directories_are_read_in_order_as_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let captures = dir.path().join("caps");
    fs::create_dir_all(captures.join("sub")).unwrap();
    let one = |n: u8| {
        let mut w = PcapWriter::in_memory(PcapOptions::default());
        w.write_packet(ts(u64::from(n), 0), &[n]).unwrap();
        w.finish().unwrap()
    };
    write(&captures, "b.pcap", &one(2));
    write(&captures, "a.pcap", &one(1));
    write(&captures, "c.pcapng", &two_interface_pcapng(ByteOrder::Little));
    write(&captures, "README.md", b"# not a capture\n");
    write(&captures, "manifest.json", b"{}\n");
    write(&captures, ".hidden.pcap", &one(99));
    write(&captures.join("sub"), "nested.pcap", &one(98));
    let first = write(dir.path(), "first.pcap", &one(0));

    let mut source = FileSource::open(&[first.clone(), captures.clone()]).unwrap();
    let names: Vec<_> = source.files().iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    assert_eq!(names, ["first.pcap", "a.pcap", "b.pcap", "c.pcapng"]);
    assert_eq!(
        warning_lines(&source),
        vec![format!(
            "{}: 2 file(s) that are not pcap or pcapng skipped, e.g. {}",
            captures.display(),
            captures.join("README.md").display()
        )]
    );
    let got = read_all(&mut source);
    let order: Vec<_> = got.iter().map(|g| (g.pos.file_index, g.pos.packet_number)).collect();
    assert_eq!(order, [(0, 1), (1, 1), (2, 1), (3, 1), (3, 2), (3, 3), (3, 4)]);
    assert_eq!(got[1].data, [1]);
    assert_eq!(got[2].data, [2]);
    assert_eq!(source.stats().files_done, 4);
    assert_eq!(source.bytes_read(), source.total_bytes());
}

#[test]
fn progress_counts_bytes_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapWriter::in_memory(PcapOptions::default());
    for i in 0..3u8 {
        w.write_packet(ts(0, 0), &[i; 100]).unwrap();
    }
    let bytes = w.finish().unwrap();
    let a = write(dir.path(), "a.pcap", &bytes);
    let b = write(dir.path(), "b.pcap", &bytes);
    let mut source = FileSource::open(&[a, b]).unwrap();
    assert_eq!(source.total_bytes(), 2 * (24 + 3 * 116));
    assert_eq!(source.bytes_read(), 0);
    source.next_packet().unwrap();
    assert_eq!(source.bytes_read(), 24 + 116);
    for _ in 0..3 {
        source.next_packet().unwrap();
    }
    assert_eq!(source.bytes_read(), 372 + 24 + 116);
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let err = FileSource::open(&[&missing]).err().unwrap();
    assert!(matches!(err, CaptureError::Open { .. }));
    assert_eq!(err.to_string(), format!("{}: No such file or directory (os error 2)", missing.display()));
    assert_eq!(FileSource::open::<PathBuf>(&[]).err().unwrap().to_string(), "no capture files given");
}

#[test]
fn directory_without_captures_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"hello");
    let err = FileSource::open(&[dir.path()]).err().unwrap();
    assert_eq!(err.to_string(), format!("{}: directory holds no pcap or pcapng files", dir.path().display()));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(FileSource::open(&[empty.path()]), Err(CaptureError::NoCaptures { .. })));
}

#[test]
fn non_capture_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "rules.txt", b"alert tcp any any -> any any (sid:1;)\n");
    let empty = write(dir.path(), "empty.pcap", b"");
    for path in [text, empty] {
        let err = FileSource::open(&[&path]).err().unwrap();
        assert_eq!(err.to_string(), format!("{}: not a pcap or pcapng file", path.display()));
    }
}

#[test]
fn classic_pcap_of_unsupported_link_type_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let w = PcapWriter::in_memory(PcapOptions { link: LinkType(147), ..PcapOptions::default() });
    let path = write(dir.path(), "user0.pcap", &w.finish().unwrap());
    let err = FileSource::open(&[&path]).err().unwrap();
    assert_eq!(err.to_string(), format!("{}: unsupported link type 147", path.display()));
}

#[test]
fn header_only_files_hold_no_packets() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = write(dir.path(), "a.pcap", &PcapWriter::in_memory(PcapOptions::default()).finish().unwrap());
    let ng = write(dir.path(), "b.pcapng", &PcapngWriter::in_memory(ByteOrder::Big).finish().unwrap());
    let mut source = FileSource::open(&[pcap, ng]).unwrap();
    assert!(read_all(&mut source).is_empty());
    assert!(source.warnings().is_empty());
    assert_eq!(source.stats().files_done, 2);
}

#[test]
fn truncated_final_record_is_a_warning_after_the_packets_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapWriter::in_memory(PcapOptions::default());
    for i in 0..3u8 {
        w.write_packet(ts(0, 0), &[i; 50]).unwrap();
    }
    let full = w.finish().unwrap();
    // Cut inside the third packet's data, and inside the third record's header.
    let inside_data = write(dir.path(), "data.pcap", &full[..full.len() - 20]);
    let inside_header = write(dir.path(), "hdr.pcap", &full[..24 + 2 * 66 + 10]);
    let mut source = FileSource::open(&[&inside_data, &inside_header]).unwrap();
    let got = read_all(&mut source);
    assert_eq!(got.iter().map(|g| (g.pos.file_index, g.data[0])).collect::<Vec<_>>(), [(0, 0), (0, 1), (1, 0), (1, 1)]);
    assert_eq!(
        warning_lines(&source),
        vec![
            format!(
                "{}: packet 3: file ends inside the record at byte 156 (46 of 66 bytes present); rest of file ignored",
                inside_data.display()
            ),
            format!(
                "{}: packet 3: file ends inside the record at byte 156 (10 of 16 bytes present); rest of file ignored",
                inside_header.display()
            ),
        ]
    );
    assert_eq!(source.bytes_read(), source.total_bytes());
}

#[test]
fn lying_caplen_stops_the_file_and_the_next_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut absurd = PcapWriter::in_memory(PcapOptions { byte_order: ByteOrder::Big, ..PcapOptions::default() });
    absurd.write_packet(ts(0, 0), &[1]).unwrap();
    absurd.write_raw_record(0, 0, 0xFFFF_FFF0, 60, &[0; 60]).unwrap();
    absurd.write_packet(ts(0, 0), &[2]).unwrap();
    let absurd = write(dir.path(), "absurd.pcap", &absurd.finish().unwrap());

    let mut past_end = PcapWriter::in_memory(PcapOptions::default());
    past_end.write_raw_record(0, 0, 5000, 5000, &[0; 60]).unwrap();
    let past_end = write(dir.path(), "past_end.pcap", &past_end.finish().unwrap());

    let mut good = PcapWriter::in_memory(PcapOptions::default());
    good.write_packet(ts(0, 0), &[3]).unwrap();
    let good = write(dir.path(), "good.pcap", &good.finish().unwrap());

    let mut source = FileSource::open(&[&absurd, &past_end, &good]).unwrap();
    let got = read_all(&mut source);
    assert_eq!(got.iter().map(|g| (g.pos.file_index, g.data[0])).collect::<Vec<_>>(), [(0, 1), (2, 3)]);
    assert_eq!(
        warning_lines(&source),
        vec![
            format!(
                "{}: packet 2: record at byte 41 claims 4294967280 bytes, over the 262144-byte limit; rest of file skipped",
                absurd.display()
            ),
            format!(
                "{}: packet 1: file ends inside the record at byte 24 (76 of 5016 bytes present); rest of file ignored",
                past_end.display()
            ),
        ]
    );
    assert_eq!(source.bytes_read(), source.total_bytes());
}

#[test]
fn pcapng_lying_block_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let header = || {
        let mut w = PcapngWriter::in_memory(ByteOrder::Little);
        w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
        w.write_packet(0, ts(0, 0), &[1]).unwrap();
        w
    };
    let epb_body = |caplen: u32| {
        let mut b = Vec::new();
        for v in [0u32, 0, 0, caplen, 8] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0xAA; 8]);
        b
    };
    // EPB whose length claims more than the limit.
    let mut huge = header();
    huge.write_raw_block_with_len(6, 0xFFFF_FFF0, &epb_body(8), 0xFFFF_FFF0).unwrap();
    // EPB length not a multiple of 4.
    let mut odd = header();
    odd.write_raw_block_with_len(6, 41, &epb_body(8), 41).unwrap();
    // Trailing length differs from the leading one.
    let mut mismatch = header();
    mismatch.write_raw_block_with_len(6, 40, &epb_body(8), 44).unwrap();
    // caplen larger than the block: the framing is intact, so only that packet is skipped.
    let mut caplen = header();
    caplen.write_raw_block(6, &epb_body(9)).unwrap();
    caplen.write_packet(0, ts(0, 0), &[2]).unwrap();
    // A packet on an interface the section never described.
    let mut no_if = header();
    let mut body = epb_body(8);
    body[0] = 7;
    no_if.write_raw_block(6, &body).unwrap();
    no_if.write_packet(0, ts(0, 0), &[3]).unwrap();

    let paths: Vec<PathBuf> =
        [("huge", huge), ("odd", odd), ("mismatch", mismatch), ("caplen", caplen), ("no_if", no_if)]
            .into_iter()
            .map(|(name, w)| write(dir.path(), &format!("{name}.pcapng"), &w.finish().unwrap()))
            .collect();
    let mut source = FileSource::open(&paths).unwrap();
    let got = read_all(&mut source);
    let seen: Vec<_> = got.iter().map(|g| (g.pos.file_index, g.pos.packet_number, g.data[0])).collect();
    assert_eq!(seen, [(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 1), (3, 3, 2), (4, 1, 1), (4, 3, 3)]);
    let d = |i: usize| paths[i].display().to_string();
    assert_eq!(
        warning_lines(&source),
        vec![
            format!(
                "{}: packet 2: record at byte 84 claims 4294967280 bytes, over the {MAX_BLOCK_LEN}-byte limit; rest of file skipped",
                d(0)
            ),
            format!(
                "{}: packet 2: malformed record at byte 84: block length 41 is not a multiple of 4 of at least 12; rest of file skipped",
                d(1)
            ),
            format!(
                "{}: packet 2: malformed record at byte 84: block's trailing length differs from its leading length; rest of file skipped",
                d(2)
            ),
            format!("{}: packet 2: captured length 9 exceeds its block (8 bytes); packet skipped", d(3)),
            format!("{}: packet 2: packet on interface 7, which the section does not describe; packet skipped", d(4)),
        ]
    );
    assert_eq!(source.stats().packets_malformed, 2);
}

#[test]
fn pcapng_blocks_nobody_reads_are_skipped_whatever_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Little);
    w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
    w.write_raw_block(0x0000_0BAD, &vec![0x55; 3 * 1024 * 1024]).unwrap(); // custom block, 3 MiB
    w.write_raw_block(5, &[0; 8]).unwrap(); // interface statistics
    w.write_packet(0, ts(0, 0), &[4]).unwrap();
    let path = write(dir.path(), "custom.pcapng", &w.finish().unwrap());
    let mut source = FileSource::open(&[&path]).unwrap();
    let got = read_all(&mut source);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].data.clone(), got[0].pos.packet_number), (vec![4], 1));
    assert!(source.warnings().is_empty());

    // The same block cut short is a truncated tail.
    let bytes = fs::read(&path).unwrap();
    let cut = write(dir.path(), "cut.pcapng", &bytes[..1024 * 1024]);
    let mut source = FileSource::open(&[&cut]).unwrap();
    assert!(read_all(&mut source).is_empty());
    assert_eq!(
        warning_lines(&source),
        vec![format!(
            "{}: packet 1: file ends inside the record at byte 48 ({} of {} bytes present); rest of file ignored",
            cut.display(),
            1024 * 1024 - 48,
            3 * 1024 * 1024 + 12
        )]
    );
}

#[test]
fn pcapng_whose_first_block_is_unreadable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Little);
    w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
    let mut bytes = w.finish().unwrap();
    bytes[12] = 2; // major version 2
    let path = write(dir.path(), "v2.pcapng", &bytes);
    let mut source = FileSource::open(&[&path]).unwrap();
    let err = source.next_packet().err().unwrap();
    assert_eq!(err.to_string(), format!("{}: bad file header: pcapng major version 2 is not 1", path.display()));
    assert!(source.next_packet().unwrap().is_none());
}

#[test]
fn warnings_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Little);
    w.add_interface(PcapngInterface::new(LinkType::ETHERNET)).unwrap();
    let mut body = Vec::new();
    for v in [9u32, 0, 0, 0, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    for _ in 0..MAX_WARNINGS + 5 {
        w.write_raw_block(6, &body).unwrap();
    }
    let path = write(dir.path(), "many.pcapng", &w.finish().unwrap());
    let mut source = FileSource::open(&[&path]).unwrap();
    assert!(read_all(&mut source).is_empty());
    assert_eq!(source.warnings().len(), MAX_WARNINGS);
    assert_eq!(source.suppressed_warnings(), 5);
    assert!(matches!(source.warnings()[0], CaptureWarning::PacketSkipped { packet: 1, .. }));
}

#[test]
fn modified_pcap_format_has_24_byte_records() {
    let dir = tempfile::tempdir().unwrap();
    #[rustfmt::skip]
    let mut bytes = vec![
        0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0, // magic 0xa1b2cd34 (little endian), version 2.4
        0, 0, 0, 0, 0, 0, 0, 0,             // thiszone, sigfigs
        0xff, 0xff, 0, 0, 1, 0, 0, 0,       // snaplen 65535, Ethernet
        10, 0, 0, 0, 7, 0, 0, 0,            // ts_sec 10, ts_usec 7
        2, 0, 0, 0, 3, 0, 0, 0,             // caplen 2, orig_len 3
        1, 0, 0, 0, 8, 0, 0x11, 0x22,       // ifindex, protocol, pkt_type, pad
    ];
    bytes.extend_from_slice(&[0xAB, 0xCD]);
    let path = write(dir.path(), "modified.pcap", &bytes);
    let got = read_all(&mut FileSource::open(&[path]).unwrap());
    assert_eq!(
        got,
        [Got { ts: 10_000_007_000, link: LinkType::ETHERNET, data: vec![0xAB, 0xCD], orig_len: 3, pos: pos(0, 1) }]
    );
}

#[test]
fn invalid_tsresol_is_warned_and_read_as_microseconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PcapngWriter::in_memory(ByteOrder::Little);
    w.add_interface(PcapngInterface::new(LinkType::ETHERNET).with_tsresol(6)).unwrap();
    w.write_packet(0, ts(0, 5_000), &[1]).unwrap();
    let mut bytes = w.finish().unwrap();
    // Rewrite the if_tsresol byte (IDB at 28, its option value at 28 + 16 + 4) to 10^-20 s,
    // which no 64-bit tick count can express.
    assert_eq!(bytes[48], 6);
    bytes[48] = 20;
    let path = write(dir.path(), "resol.pcapng", &bytes);
    let mut source = FileSource::open(&[&path]).unwrap();
    let got = read_all(&mut source);
    assert_eq!(got[0].ts, ts(0, 5_000).as_nanos());
    assert_eq!(
        warning_lines(&source),
        [format!("{}: interface 0: invalid if_tsresol 0x14; microseconds assumed", path.display())]
    );
}
