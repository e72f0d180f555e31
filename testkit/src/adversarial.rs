//! Hostile captures for the memory-ceiling checks in `scripts/adversarial.sh`: each generator
//! writes a deterministic capture whose size grows with `count`, aimed at one resource an
//! attacker can grow (flows, out-of-order segments, fragments, parser buffers, decompression,
//! MIME nesting, DNS name decompression, TLS lengths, FTP expectations).
//!
//! Addresses are from 10.0.0.0/8 (clients) towards 192.0.2.0/24 (TEST-NET-1, servers); the
//! captures are only ever read by `weir replay`, never sent anywhere.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use weir_core::Timestamp;

use crate::packet::{ACK, ETHERTYPE_IPV4, FIN, Ipv4, MAC_A, MAC_B, PROTO_TCP, PROTO_UDP, PSH, SYN, Tcp};
use crate::packet::{ethernet, ipv4, ipv4_fragment_of, tcp, udp};
use crate::pcap::PcapWriter;

/// Capture time of the first packet: 2023-11-14, as the other generated captures.
const START_NANOS: u64 = 1_700_000_000_000_000_000;

/// 100 000 packets per second of capture time: fast enough that no flow, fragment or FTP
/// expectation times out while a flood is being written, so every one of them is held at once.
const PACKET_SPACING_NANOS: u64 = 10_000;

/// Payload bytes per TCP segment when a generator sends a block of data.
const MSS: usize = 1460;

/// A sender acknowledges its peer after this many data segments (and after its last one), as a
/// delayed-ACK stack would; reassembly releases data on ACK.
const SEGMENTS_PER_ACK: usize = 4;

/// Window scale both sides offer in the handshake: a 1 GiB window, so out-of-order floods stay
/// inside the window and are queued rather than dropped as out of window.
const WINDOW_SCALE: u8 = 14;

/// Segments per session in the many-session out-of-order flood.
pub const OOO_SEGMENTS_PER_SESSION: u64 = 64;

/// Sessions the many-session out-of-order flood keeps open at once.
pub const OOO_CONCURRENT_SESSIONS: u64 = 8192;

/// FTP commands per control session in the PORT/PASV flood.
pub const FTP_COMMANDS_PER_SESSION: u64 = 64;

/// Bytes of unfinished header block each connection of the slow-header flood holds: just under
/// the HTTP parser's default 64 KiB header limit, so every connection is buffering at once.
pub const SLOW_HEADER_BYTES: usize = 60 * 1024;

/// Labels in the DNS pointer chain: each adds two bytes to the name, so the chain spells a name
/// longer than the 255 bytes RFC 1035 allows.
pub const DNS_CHAIN_LABELS: usize = 200;

/// The generators, by the name `weir-pcapgen` takes, with what `count` means for each.
pub const KINDS: &[(&str, &str)] = &[
    ("syn-flood", "TCP SYNs, each from a distinct source address and port"),
    ("udp-flows", "one-packet UDP flows"),
    ("ooo-flood", "1-byte segments of one session, contiguous, all ahead of one hole"),
    ("ooo-holes", "1-byte segments of one session, each ahead of a hole of its own"),
    ("ooo-flood-many", "1-byte segments ahead of holes, 64 per session, 8192 sessions open at once"),
    ("ooo-flood-big", "1460-byte segments ahead of holes, 64 per session, 8192 sessions open at once"),
    ("unacked-flood", "1460-byte in-order segments the server never acknowledges, 64 per session, 8192 sessions open at once"),
    ("frag-flood", "incomplete IPv4 datagrams (first and last fragment, middle missing)"),
    ("frag-far", "IPv4 datagrams of which only an 8-byte last fragment at offset 65000 arrives"),
    ("http-header-flood", "headers in one request and one response; then one header line as long as all of them"),
    ("http-slow-headers", "connections each holding 60 KiB of an unfinished request header block"),
    ("gzip-bomb", "MiB of zeros an HTTP response body decompresses to (Content-Encoding: gzip)"),
    ("gzip2-bomb", "MiB of zeros an HTTP response body decompresses to (Content-Encoding: gzip, gzip)"),
    ("brotli-bomb", "MiB of zeros an HTTP response body decompresses to (Content-Encoding: br)"),
    ("mime-bomb", "nesting depth of one SMTP message, and parts of a second, flat one"),
    ("smtp-slow-data", "SMTP sessions each holding 1 MiB of a message whose DATA never ends"),
    ("dns-loops", "DNS responses with pointer loops and over-long pointer chains"),
    ("tls-16mb", "MiB sent after TLS handshake headers that declare 16 MiB, both directions"),
    ("ftp-port-flood", "FTP PORT and PASV commands, 64 per control session"),
];

/// Writes the capture `kind` with `count` units into `sink`; Ok(false) when `kind` is unknown.
pub fn generate<W: Write>(kind: &str, count: u64, sink: &mut Sink<W>) -> io::Result<bool> {
    match kind {
        "syn-flood" => syn_flood(sink, count)?,
        "udp-flows" => udp_flows(sink, count)?,
        "ooo-flood" => ooo_flood(sink, count, 1)?,
        "ooo-holes" => ooo_flood(sink, count, 2)?,
        "ooo-flood-many" => many_sessions(sink, count, Flood::Ahead(1))?,
        "ooo-flood-big" => many_sessions(sink, count, Flood::Ahead(MSS))?,
        "unacked-flood" => many_sessions(sink, count, Flood::Unacknowledged)?,
        "frag-flood" => frag_flood(sink, count)?,
        "frag-far" => frag_far(sink, count)?,
        "http-header-flood" => http_header_flood(sink, count)?,
        "http-slow-headers" => http_slow_headers(sink, count)?,
        "gzip-bomb" => http_bomb(sink, count, ContentCoding::Gzip)?,
        "gzip2-bomb" => http_bomb(sink, count, ContentCoding::GzipTwice)?,
        "brotli-bomb" => http_bomb(sink, count, ContentCoding::Brotli)?,
        "mime-bomb" => mime_bomb(sink, count)?,
        "smtp-slow-data" => smtp_slow_data(sink, count)?,
        "dns-loops" => dns_loops(sink, count)?,
        "tls-16mb" => tls_16mb(sink, count)?,
        "ftp-port-flood" => ftp_port_flood(sink, count)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Where generated frames go: a pcap writer and the capture clock.
pub struct Sink<W: Write> {
    writer: PcapWriter<W>,
    packets: u64,
}

impl<W: Write> Sink<W> {
    pub fn new(writer: PcapWriter<W>) -> Self {
        Sink { writer, packets: 0 }
    }

    /// Writes one Ethernet frame, stamped `PACKET_SPACING_NANOS` after the previous one.
    pub fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let ts = Timestamp::from_nanos(START_NANOS + self.packets * PACKET_SPACING_NANOS);
        self.packets += 1;
        self.writer.write_packet(ts, frame)
    }

    /// Frames written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.writer.finish()
    }
}

/// A distinct client address for `i` in 10.0.0.0/8 (wraps after 2^24).
fn client_addr(i: u64) -> [u8; 4] {
    [10, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn ip_frame(src: [u8; 4], dst: [u8; 4], proto: u8, transport: &[u8]) -> Vec<u8> {
    ethernet(MAC_A, MAC_B, &[], ETHERTYPE_IPV4, &ipv4(&Ipv4::new(src, dst, proto), transport))
}

fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let segment = udp(IpAddr::V4(Ipv4Addr::from(src)), IpAddr::V4(Ipv4Addr::from(dst)), sport, dport, payload);
    ip_frame(src, dst, PROTO_UDP, &segment)
}

/// One TCP connection between a client and a server endpoint, tracking both sequence spaces so
/// the generators can write handshakes, in-order data, acknowledgements and holes.
pub struct TcpConversation {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    /// Next sequence number each side sends: [client, server].
    next_seq: [u32; 2],
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

impl TcpConversation {
    /// Initial sequence numbers are fixed (not random) so captures are byte-for-byte repeatable.
    pub fn new(client: [u8; 4], client_port: u16, server: [u8; 4], server_port: u16) -> Self {
        TcpConversation { client: (client, client_port), server: (server, server_port), next_seq: [1_000, 500_000] }
    }

    fn segment<W: Write>(&self, sink: &mut Sink<W>, side: usize, seq: u32, flags: u8, payload: &[u8]) -> io::Result<()> {
        let (from, to) = if side == CLIENT { (self.client, self.server) } else { (self.server, self.client) };
        let mut header = Tcp::new(from.1, to.1, seq, flags);
        header.window = 65535;
        if flags & ACK != 0 {
            header.ack = self.next_seq[1 - side];
        }
        if flags & SYN != 0 {
            // NOP, window scale.
            header.options = vec![1, 3, 3, WINDOW_SCALE];
        }
        let segment = tcp(IpAddr::V4(Ipv4Addr::from(from.0)), IpAddr::V4(Ipv4Addr::from(to.0)), &header, payload);
        sink.frame(&ip_frame(from.0, to.0, PROTO_TCP, &segment))
    }

    /// A pure ACK from the server: after the handshake it is the first window the server
    /// announces scaled (a SYN's window never is), so the client may send up to 1 GiB ahead.
    pub fn server_acks<W: Write>(&mut self, sink: &mut Sink<W>) -> io::Result<()> {
        self.segment(sink, SERVER, self.next_seq[SERVER], ACK, b"")
    }

    /// SYN, SYN/ACK, ACK, both offering window scaling.
    pub fn handshake<W: Write>(&mut self, sink: &mut Sink<W>) -> io::Result<()> {
        self.segment(sink, CLIENT, self.next_seq[CLIENT], SYN, b"")?;
        self.next_seq[CLIENT] = self.next_seq[CLIENT].wrapping_add(1);
        self.segment(sink, SERVER, self.next_seq[SERVER], SYN | ACK, b"")?;
        self.next_seq[SERVER] = self.next_seq[SERVER].wrapping_add(1);
        self.segment(sink, CLIENT, self.next_seq[CLIENT], ACK, b"")
    }

    fn send<W: Write>(&mut self, sink: &mut Sink<W>, side: usize, data: &[u8]) -> io::Result<()> {
        let mut unacked = 0;
        for chunk in data.chunks(MSS) {
            self.segment(sink, side, self.next_seq[side], ACK | PSH, chunk)?;
            self.next_seq[side] = self.next_seq[side].wrapping_add(chunk.len() as u32);
            unacked += 1;
            if unacked == SEGMENTS_PER_ACK {
                self.segment(sink, 1 - side, self.next_seq[1 - side], ACK, b"")?;
                unacked = 0;
            }
        }
        if unacked > 0 {
            self.segment(sink, 1 - side, self.next_seq[1 - side], ACK, b"")?;
        }
        Ok(())
    }

    /// The client sends `data` in order, acknowledged by the server.
    pub fn client_sends<W: Write>(&mut self, sink: &mut Sink<W>, data: &[u8]) -> io::Result<()> {
        self.send(sink, CLIENT, data)
    }

    /// The server sends `data` in order, acknowledged by the client.
    pub fn server_sends<W: Write>(&mut self, sink: &mut Sink<W>, data: &[u8]) -> io::Result<()> {
        self.send(sink, SERVER, data)
    }

    /// A client segment `offset` bytes past the next in-order byte, which is left a hole.
    pub fn client_sends_ahead<W: Write>(&mut self, sink: &mut Sink<W>, offset: u32, data: &[u8]) -> io::Result<()> {
        self.segment(sink, CLIENT, self.next_seq[CLIENT].wrapping_add(offset), ACK, data)
    }

    /// FIN from the client, FIN/ACK from the server, the client's last ACK.
    pub fn close<W: Write>(&mut self, sink: &mut Sink<W>) -> io::Result<()> {
        self.segment(sink, CLIENT, self.next_seq[CLIENT], FIN | ACK, b"")?;
        self.next_seq[CLIENT] = self.next_seq[CLIENT].wrapping_add(1);
        self.segment(sink, SERVER, self.next_seq[SERVER], FIN | ACK, b"")?;
        self.next_seq[SERVER] = self.next_seq[SERVER].wrapping_add(1);
        self.segment(sink, CLIENT, self.next_seq[CLIENT], ACK, b"")
    }
}

/// `count` SYNs from distinct (address, port) pairs to one server port: one new flow each.
pub fn syn_flood<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    for i in 0..count {
        let conversation = TcpConversation::new(client_addr(i), 1024 + (i >> 24) as u16, [192, 0, 2, 1], 80);
        conversation.segment(sink, CLIENT, i as u32, SYN, b"")?;
    }
    Ok(())
}

/// `count` one-packet UDP flows.
pub fn udp_flows<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    for i in 0..count {
        sink.frame(&udp_frame(client_addr(i), 1024 + (i >> 24) as u16, [192, 0, 2, 1], 53, b"flood"))?;
    }
    Ok(())
}

/// One session whose client sends `count` 1-byte segments `stride` bytes apart, starting one
/// byte past the next expected byte: all of them wait behind a hole that is never filled
/// (stride 1: one region of contiguous segments; stride 2: a hole before every segment).
pub fn ooo_flood<W: Write>(sink: &mut Sink<W>, count: u64, stride: u64) -> io::Result<()> {
    let mut conversation = TcpConversation::new([10, 0, 0, 1], 40_000, [192, 0, 2, 1], 80);
    conversation.handshake(sink)?;
    conversation.server_acks(sink)?;
    for i in 0..count {
        conversation.client_sends_ahead(sink, (stride * i + 1) as u32, &[b'a' + (i % 26) as u8])?;
    }
    Ok(())
}

/// What each session of `many_sessions` sends.
#[derive(Clone, Copy, Debug)]
pub enum Flood {
    /// Segments of this many bytes, each ahead of a hole of its own.
    Ahead(usize),
    /// Full-size segments in order, which the server never acknowledges (its ACKs repeat the
    /// handshake's), so reassembly may hold them all waiting for an ACK.
    Unacknowledged,
}

/// `count` segments, `OOO_SEGMENTS_PER_SESSION` per session, sessions opened
/// `OOO_CONCURRENT_SESSIONS` at a time and fed round-robin so all of them hold data together.
pub fn many_sessions<W: Write>(sink: &mut Sink<W>, count: u64, flood: Flood) -> io::Result<()> {
    let sessions = count.div_ceil(OOO_SEGMENTS_PER_SESSION);
    let mut first = 0;
    while first < sessions {
        let batch = (sessions - first).min(OOO_CONCURRENT_SESSIONS);
        let mut open = Vec::with_capacity(batch as usize);
        for s in first..first + batch {
            let mut conversation = TcpConversation::new(client_addr(s), 40_000, [192, 0, 2, 1], 80);
            conversation.handshake(sink)?;
            conversation.server_acks(sink)?;
            open.push(conversation);
        }
        let full = vec![b'x'; MSS];
        for k in 0..OOO_SEGMENTS_PER_SESSION {
            for conversation in &mut open {
                match flood {
                    Flood::Ahead(len) => {
                        let offset = (k * 2 * len as u64 + len as u64) as u32;
                        conversation.client_sends_ahead(sink, offset, &full[..len.min(MSS)])?;
                    }
                    Flood::Unacknowledged => {
                        conversation.client_sends_ahead(sink, (k * MSS as u64) as u32, &full)?;
                        conversation.server_acks(sink)?;
                    }
                }
            }
        }
        first += batch;
    }
    Ok(())
}

/// `count` UDP datagrams of 2968 bytes of which only the first fragment (1480 bytes) and the
/// last (8 bytes) arrive: each one waits for its middle until the defragmenter gives up.
pub fn frag_flood<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let payload = vec![0x5a; 2960];
    for i in 0..count {
        let src = client_addr(i / 65_536);
        let mut header = Ipv4::new(src, [192, 0, 2, 1], PROTO_UDP);
        header.id = i as u16;
        let datagram = udp(IpAddr::V4(Ipv4Addr::from(src)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5000, 5001, &payload);
        let packet = ipv4(&header, &datagram);
        let data = &packet[20..];
        let first = ipv4_fragment_of(&packet, 0, true, &data[..1480]);
        let last = ipv4_fragment_of(&packet, 2960, false, &data[2960..]);
        sink.frame(&ethernet(MAC_A, MAC_B, &[], ETHERTYPE_IPV4, &first))?;
        sink.frame(&ethernet(MAC_A, MAC_B, &[], ETHERTYPE_IPV4, &last))?;
    }
    Ok(())
}

/// `count` datagrams of which only the last fragment, 8 bytes at offset 65000, arrives: each
/// makes the defragmenter account for a 65 KB datagram while the wire carried 50 bytes.
pub fn frag_far<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    for i in 0..count {
        let src = client_addr(i / 65_536);
        let mut header = Ipv4::new(src, [192, 0, 2, 1], PROTO_UDP);
        header.id = i as u16;
        let packet = ipv4(&header, &[0x5a; 8]);
        let last = ipv4_fragment_of(&packet, 65_000, false, &[0x5a; 8]);
        sink.frame(&ethernet(MAC_A, MAC_B, &[], ETHERTYPE_IPV4, &last))?;
    }
    Ok(())
}

fn header_lines(count: u64, prefix: &str) -> Vec<u8> {
    let mut block = Vec::with_capacity(count as usize * 64);
    for i in 0..count {
        // 64 bytes a line.
        block.extend_from_slice(format!("{prefix}-{i:08}: {}\r\n", "a".repeat(50 - prefix.len())).as_bytes());
    }
    block
}

/// One HTTP connection: a request and a response with `count` headers each, then a request and
/// a response with a single header line of `count * 64` bytes.
pub fn http_header_flood<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let mut conversation = TcpConversation::new([10, 0, 0, 1], 40_000, [192, 0, 2, 1], 80);
    conversation.handshake(sink)?;
    let mut request = b"GET /many HTTP/1.1\r\nHost: flood.example\r\n".to_vec();
    request.extend_from_slice(&header_lines(count, "X-Req"));
    request.extend_from_slice(b"\r\n");
    conversation.client_sends(sink, &request)?;
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    response.extend_from_slice(&header_lines(count, "X-Resp"));
    response.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    conversation.server_sends(sink, &response)?;
    let long = "b".repeat(count as usize * 64);
    let request = format!("GET /long HTTP/1.1\r\nHost: flood.example\r\nX-Long: {long}\r\n\r\n");
    conversation.client_sends(sink, request.as_bytes())?;
    let response = format!("HTTP/1.1 200 OK\r\nX-Long: {long}\r\nContent-Length: 2\r\n\r\nok");
    conversation.server_sends(sink, response.as_bytes())?;
    conversation.close(sink)
}

/// `count` HTTP connections, each sending `SLOW_HEADER_BYTES` of request headers and never the
/// blank line that ends them: all of them are open and buffering at the end of the capture.
pub fn http_slow_headers<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let mut request = b"GET /slow HTTP/1.1\r\nHost: slow.example\r\n".to_vec();
    request.extend_from_slice(&header_lines((SLOW_HEADER_BYTES / 64) as u64, "X-Slow"));
    for i in 0..count {
        let mut conversation = TcpConversation::new(client_addr(i), 40_000, [192, 0, 2, 1], 80);
        conversation.handshake(sink)?;
        conversation.client_sends(sink, &request)?;
    }
    Ok(())
}

/// The content codings the decompression bombs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCoding {
    Gzip,
    /// gzip applied twice: each layer's 1032:1 multiplies.
    GzipTwice,
    Brotli,
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// `mebibytes` MiB of zeros compressed with `coding`.
pub fn compressed_zeros(mebibytes: u64, coding: ContentCoding) -> io::Result<Vec<u8>> {
    let zeros = vec![0u8; 1 << 20];
    match coding {
        ContentCoding::GzipTwice => gzip(&compressed_zeros(mebibytes, ContentCoding::Gzip)?),
        ContentCoding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            for _ in 0..mebibytes {
                encoder.write_all(&zeros)?;
            }
            encoder.finish()
        }
        ContentCoding::Brotli => {
            let mut out = Vec::new();
            {
                // Quality 5, window 2^22: compresses a run of zeros to almost nothing at a
                // fraction of the best quality's time.
                let mut encoder = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                for _ in 0..mebibytes {
                    encoder.write_all(&zeros)?;
                }
                encoder.flush()?;
            }
            Ok(out)
        }
    }
}

/// One HTTP exchange whose response body, `Content-Encoding` gzip or br, decompresses to
/// `mebibytes` MiB of zeros.
pub fn http_bomb<W: Write>(sink: &mut Sink<W>, mebibytes: u64, coding: ContentCoding) -> io::Result<()> {
    let body = compressed_zeros(mebibytes, coding)?;
    let (name, encoding) = match coding {
        ContentCoding::Gzip => ("gz", "gzip"),
        ContentCoding::GzipTwice => ("gz.gz", "gzip, gzip"),
        ContentCoding::Brotli => ("br", "br"),
    };
    let mut conversation = TcpConversation::new([10, 0, 0, 1], 40_000, [192, 0, 2, 1], 80);
    conversation.handshake(sink)?;
    conversation.client_sends(sink, format!("GET /bomb.{name} HTTP/1.1\r\nHost: bomb.example\r\nAccept-Encoding: gzip, br\r\n\r\n").as_bytes())?;
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    conversation.server_sends(sink, &response)?;
    conversation.close(sink)
}

/// A message of `depth` nested multipart/mixed levels (a text part at each level, a small base64
/// attachment at the bottom).
pub fn nested_mime_message(depth: u64) -> Vec<u8> {
    let mut m = b"From: a@flood.example\r\nTo: b@victim.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n".to_vec();
    for level in 0..depth {
        m.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"n{level}\"\r\n\r\n").as_bytes());
        m.extend_from_slice(format!("--n{level}\r\nContent-Type: text/plain\r\n\r\nlevel {level}\r\n--n{level}\r\n").as_bytes());
    }
    m.extend_from_slice(b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"deep.bin\"\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\nZGVlcCBhdHRhY2htZW50Cg==\r\n");
    for level in (0..depth).rev() {
        m.extend_from_slice(format!("--n{level}--\r\n").as_bytes());
    }
    m
}

/// A message of one multipart/mixed level with `parts` text parts.
pub fn wide_mime_message(parts: u64) -> Vec<u8> {
    let mut m = b"From: a@flood.example\r\nTo: b@victim.example\r\nSubject: wide\r\nMIME-Version: 1.0\r\n".to_vec();
    m.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n");
    for i in 0..parts {
        m.extend_from_slice(format!("--w\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n").as_bytes());
    }
    m.extend_from_slice(b"--w--\r\n");
    m
}

/// One SMTP session delivering a message nested `count` levels deep and one with `count` parts.
pub fn mime_bomb<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let mut conversation = TcpConversation::new([10, 0, 0, 1], 40_000, [192, 0, 2, 25], 25);
    conversation.handshake(sink)?;
    smtp_envelope(&mut conversation, sink)?;
    for (i, message) in [nested_mime_message(count), wide_mime_message(count)].into_iter().enumerate() {
        if i > 0 {
            conversation.client_sends(sink, b"MAIL FROM:<a@flood.example>\r\n")?;
            conversation.server_sends(sink, b"250 OK\r\n")?;
            conversation.client_sends(sink, b"RCPT TO:<b@victim.example>\r\n")?;
            conversation.server_sends(sink, b"250 OK\r\n")?;
            conversation.client_sends(sink, b"DATA\r\n")?;
            conversation.server_sends(sink, b"354 go ahead\r\n")?;
        }
        let mut data = message;
        data.extend_from_slice(b".\r\n");
        conversation.client_sends(sink, &data)?;
        conversation.server_sends(sink, b"250 queued\r\n")?;
    }
    conversation.client_sends(sink, b"QUIT\r\n")?;
    conversation.server_sends(sink, b"221 bye\r\n")?;
    conversation.close(sink)
}

/// Message bytes each session of `smtp_slow_data` sends before going quiet.
pub const SLOW_DATA_BYTES: usize = 1 << 20;

fn smtp_envelope<W: Write>(conversation: &mut TcpConversation, sink: &mut Sink<W>) -> io::Result<()> {
    conversation.server_sends(sink, b"220 mx.victim.example ESMTP\r\n")?;
    conversation.client_sends(sink, b"EHLO flood.example\r\n")?;
    conversation.server_sends(sink, b"250-mx.victim.example\r\n250 8BITMIME\r\n")?;
    conversation.client_sends(sink, b"MAIL FROM:<a@flood.example>\r\n")?;
    conversation.server_sends(sink, b"250 OK\r\n")?;
    conversation.client_sends(sink, b"RCPT TO:<b@victim.example>\r\n")?;
    conversation.server_sends(sink, b"250 OK\r\n")?;
    conversation.client_sends(sink, b"DATA\r\n")?;
    conversation.server_sends(sink, b"354 go ahead\r\n")
}

/// `count` SMTP sessions, each sending `SLOW_DATA_BYTES` of a message and never the final dot:
/// all of them are open and holding their message at the end of the capture.
pub fn smtp_slow_data<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let mut message = b"From: a@flood.example\r\nTo: b@victim.example\r\nSubject: slow\r\n\r\n".to_vec();
    while message.len() < SLOW_DATA_BYTES {
        message.extend_from_slice(format!("{:076}\r\n", message.len()).as_bytes());
    }
    message.truncate(SLOW_DATA_BYTES);
    for i in 0..count {
        let mut conversation = TcpConversation::new(client_addr(i), 40_000, [192, 0, 2, 25], 25);
        conversation.handshake(sink)?;
        smtp_envelope(&mut conversation, sink)?;
        conversation.client_sends(sink, &message)?;
    }
    Ok(())
}

fn dns_header(id: u16, flags: u16, questions: u16, answers: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    for field in [id, flags, questions, answers, 0, 0] {
        h.extend_from_slice(&field.to_be_bytes());
    }
    h
}

fn dns_question(m: &mut Vec<u8>, i: u64) {
    for label in [format!("q{i}").as_str(), "flood", "example"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
}

fn pointer(offset: usize) -> [u8; 2] {
    // Offsets here stay far below the 14-bit pointer range.
    [0xc0 | (offset >> 8) as u8, offset as u8]
}

/// A DNS response that attacks name decompression: a NULL record whose data holds a chain of
/// `DNS_CHAIN_LABELS` one-letter labels, each followed by a pointer to the one before; an
/// answer named by a pointer to the chain's end (a name past 255 bytes); an answer whose name
/// points at itself; and a CNAME whose target points at the answer that points back at it.
pub fn dns_loop_response(i: u64) -> Vec<u8> {
    let mut m = dns_header(i as u16, 0x8180, 1, 4);
    dns_question(&mut m, i);
    let question_name = 12;
    // Answer 1: NULL record carrying the chain.
    m.extend_from_slice(&pointer(question_name));
    m.extend_from_slice(&[0, 10, 0, 1, 0, 0, 0, 60]);
    let rdlength_at = m.len();
    m.extend_from_slice(&[0, 0]);
    let rdata_start = m.len();
    let mut previous = None;
    for _ in 0..DNS_CHAIN_LABELS {
        let here = m.len();
        m.extend_from_slice(&[1, b'a']);
        match previous {
            Some(p) => m.extend_from_slice(&pointer(p)),
            None => m.push(0),
        }
        previous = Some(here);
    }
    let rdlength = (m.len() - rdata_start) as u16;
    m[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
    // Answer 2: named by the chain's last link.
    m.extend_from_slice(&pointer(previous.unwrap_or(question_name)));
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99]);
    // Answer 3: a name that is a pointer to itself.
    let here = m.len();
    m.extend_from_slice(&pointer(here));
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 98]);
    // Answer 4: a CNAME named by a label then a pointer to its own data, whose data is a label
    // then a pointer back to the name: a two-step loop.
    let name_at = m.len();
    let rdata_at = name_at + 4 + 10;
    m.extend_from_slice(&[1, b'c']);
    m.extend_from_slice(&pointer(rdata_at));
    m.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&[1, b'd']);
    m.extend_from_slice(&pointer(name_at));
    m
}

/// `count` DNS queries, each answered by `dns_loop_response`.
pub fn dns_loops<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let server = [192, 0, 2, 53];
    for i in 0..count {
        let client = client_addr(i / 50_000);
        let port = 10_000 + (i % 50_000) as u16;
        let mut query = dns_header(i as u16, 0x0100, 1, 0);
        dns_question(&mut query, i);
        sink.frame(&udp_frame(client, port, server, 53, &query))?;
        sink.frame(&udp_frame(server, 53, client, port, &dns_loop_response(i)))?;
    }
    Ok(())
}

/// TLS records of up to 2^14 bytes carrying `body` as handshake-type content.
fn tls_records(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 16_384 * 5 + 5);
    for chunk in body.chunks(16_384) {
        out.extend_from_slice(&[22, 3, 3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A handshake message header of `msg_type` declaring the largest length (2^24 - 1 bytes), then
/// `mebibytes` MiB of its supposed body, in records.
fn huge_handshake(msg_type: u8, mebibytes: u64) -> Vec<u8> {
    let mut body = vec![msg_type, 0xff, 0xff, 0xff];
    // A plausible start (legacy version, random) so content detection takes it for TLS.
    body.extend_from_slice(&[3, 3]);
    body.resize((mebibytes as usize) << 20, 0x16);
    tls_records(&body)
}

/// One TLS connection where the ClientHello and the server's Certificate each declare 16 MiB
/// and `mebibytes` MiB follow each; then one where a record header declares 65535 bytes, past
/// the 2^14 + 2048 the protocol allows.
pub fn tls_16mb<W: Write>(sink: &mut Sink<W>, mebibytes: u64) -> io::Result<()> {
    let mut conversation = TcpConversation::new([10, 0, 0, 1], 40_000, [192, 0, 2, 43], 443);
    conversation.handshake(sink)?;
    conversation.client_sends(sink, &huge_handshake(1, mebibytes))?;
    conversation.server_sends(sink, &huge_handshake(11, mebibytes))?;
    conversation.close(sink)?;
    let mut conversation = TcpConversation::new([10, 0, 0, 2], 40_001, [192, 0, 2, 43], 443);
    conversation.handshake(sink)?;
    let mut record = vec![22, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xfb, 3, 3];
    record.resize(5 + 65_535, 0x16);
    conversation.client_sends(sink, &record)?;
    conversation.close(sink)
}

/// `count` FTP commands, alternating PORT and PASV with their positive replies, in control
/// sessions of `FTP_COMMANDS_PER_SESSION`; every reply announces a new data endpoint, so each
/// is an expectation the FTP parser could hold.
pub fn ftp_port_flood<W: Write>(sink: &mut Sink<W>, count: u64) -> io::Result<()> {
    let server = [192, 0, 2, 21];
    let sessions = count.div_ceil(FTP_COMMANDS_PER_SESSION);
    let mut sent = 0;
    for s in 0..sessions {
        let client = client_addr(s);
        let mut conversation = TcpConversation::new(client, 40_000, server, 21);
        conversation.handshake(sink)?;
        conversation.server_sends(sink, b"220 ftp.victim.example ready\r\n")?;
        conversation.client_sends(sink, b"USER anonymous\r\n")?;
        conversation.server_sends(sink, b"331 password please\r\n")?;
        conversation.client_sends(sink, b"PASS flood@\r\n")?;
        conversation.server_sends(sink, b"230 logged in\r\n")?;
        let mut k = 0;
        while k < FTP_COMMANDS_PER_SESSION && sent < count {
            let port = 20_000 + (sent % 40_000) as u16;
            let (hi, lo) = (port >> 8, port & 0xff);
            if k % 2 == 0 {
                let [a, b, c, d] = client;
                conversation.client_sends(sink, format!("PORT {a},{b},{c},{d},{hi},{lo}\r\n").as_bytes())?;
                conversation.server_sends(sink, b"200 PORT command successful\r\n")?;
            } else {
                conversation.client_sends(sink, b"PASV\r\n")?;
                let [a, b, c, d] = server;
                conversation.server_sends(sink, format!("227 Entering Passive Mode ({a},{b},{c},{d},{hi},{lo})\r\n").as_bytes())?;
            }
            k += 1;
            sent += 1;
        }
        conversation.client_sends(sink, b"QUIT\r\n")?;
        conversation.server_sends(sink, b"221 bye\r\n")?;
        conversation.close(sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::PcapOptions;

    fn capture(kind: &str, count: u64) -> (u64, Vec<u8>) {
        let mut sink = Sink::new(PcapWriter::in_memory(PcapOptions::default()));
        assert!(generate(kind, count, &mut sink).unwrap(), "{kind} is a generator");
        let packets = sink.packets();
        (packets, sink.finish().unwrap())
    }

    /// Reads back a classic little-endian pcap: (timestamp µs, frame) per record.
    fn records(file: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 24;
        while at < file.len() {
            let field = |o: usize| u32::from_le_bytes(file[at + o..at + o + 4].try_into().unwrap());
            let ts = u64::from(field(0)) * 1_000_000 + u64::from(field(4));
            let len = field(8) as usize;
            out.push((ts, file[at + 16..at + 16 + len].to_vec()));
            at += 16 + len;
        }
        out
    }

    #[test]
    fn every_kind_is_generated_and_unknown_kinds_are_refused() {
        for (kind, _) in KINDS {
            let (packets, _) = capture(kind, 3);
            assert!(packets > 0, "{kind}");
        }
        let mut sink = Sink::new(PcapWriter::in_memory(PcapOptions::default()));
        assert!(!generate("no-such-flood", 3, &mut sink).unwrap());
    }

    #[test]
    fn captures_are_deterministic() {
        for (kind, _) in KINDS {
            assert_eq!(capture(kind, 5), capture(kind, 5), "{kind}");
        }
    }

    #[test]
    fn packet_counts_follow_count() {
        assert_eq!(capture("syn-flood", 10).0, 10);
        assert_eq!(capture("udp-flows", 10).0, 10);
        // Handshake, the server's window-opening ACK, then one segment each.
        assert_eq!(capture("ooo-flood", 10).0, 4 + 10);
        // Two sessions (64 + 1 segments): every session gets the full round of 64.
        assert_eq!(capture("ooo-flood-many", 65).0, 2 * 4 + 2 * 64);
        assert_eq!(capture("frag-flood", 10).0, 20);
        assert_eq!(capture("dns-loops", 10).0, 20);
    }

    #[test]
    fn timestamps_advance_by_the_spacing() {
        let (_, file) = capture("syn-flood", 3);
        let stamps: Vec<u64> = records(&file).iter().map(|r| r.0).collect();
        let first = START_NANOS / 1_000;
        assert_eq!(stamps, [first, first + 10, first + 20]);
    }

    #[test]
    fn syn_flood_tuples_are_distinct() {
        let (_, file) = capture("syn-flood", 300);
        let mut tuples: Vec<Vec<u8>> = records(&file).iter().map(|r| [&r.1[26..30], &r.1[34..36]].concat()).collect();
        tuples.sort();
        tuples.dedup();
        assert_eq!(tuples.len(), 300);
    }

    #[test]
    fn ooo_segments_sit_ahead_of_a_hole() {
        let (_, file) = capture("ooo-flood", 3);
        let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
        let data: Vec<u32> = records(&file)[4..].iter().map(|f| seq(&f.1)).collect();
        assert_eq!(data, [1_002, 1_003, 1_004]);
        let (_, file) = capture("ooo-holes", 3);
        let frames = records(&file);
        // SYN: NOP, window scale 14 in the options; the handshake's ACK carries seq 1001.
        assert_eq!(frames[0].1[54..58], [1, 3, 3, 14]);
        let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
        assert_eq!(seq(&frames[2].1), 1_001);
        // The server's ACK opens a scaled window: 65535 << 14.
        assert_eq!(frames[3].1[34..36], [0, 80]);
        assert_eq!(frames[3].1[48..50], [0xff, 0xff]);
        let data: Vec<u32> = frames[4..].iter().map(|f| seq(&f.1)).collect();
        assert_eq!(data, [1_002, 1_004, 1_006]);
        assert_eq!(frames[4].1.len(), 14 + 20 + 20 + 1);
    }

    #[test]
    fn fragments_leave_the_middle_out() {
        let (_, file) = capture("frag-flood", 1);
        let frames = records(&file);
        let flags_offset = |f: &[u8]| u16::from_be_bytes([f[20], f[21]]);
        // MF with offset 0, then offset 2960 / 8 = 370 without MF.
        assert_eq!(flags_offset(&frames[0].1), 0x2000);
        assert_eq!(flags_offset(&frames[1].1), 370);
        assert_eq!(frames[0].1.len(), 14 + 20 + 1480);
        assert_eq!(frames[1].1.len(), 14 + 20 + 8);
    }

    #[test]
    fn dns_pointers_form_loops_and_an_overlong_chain() {
        let m = dns_loop_response(7);
        // Header: id 7, response, 1 question, 4 answers.
        assert_eq!(m[..8], [0, 7, 0x81, 0x80, 0, 1, 0, 4]);
        // "q7", "flood", "example", the root, type and class.
        let question_end = 12 + 3 + 6 + 8 + 5;
        assert_eq!(m[question_end - 5..question_end], [0, 0, 1, 0, 1]);
        // The self-pointing answer: its two bytes point at their own offset.
        let self_loop = question_end + 12 + DNS_CHAIN_LABELS * 4 - 1 + 16;
        assert_eq!(usize::from(m[self_loop] & 0x3f) << 8 | usize::from(m[self_loop + 1]), self_loop);
        assert_eq!(m[self_loop] & 0xc0, 0xc0);
        // Answer 2's name, spelled out by following its pointers: 200 labels "a", 400 bytes
        // of labels, past the 255-byte limit.
        let mut at = question_end + 12 + DNS_CHAIN_LABELS * 4 - 1;
        let (mut labels, mut jumps) = (0, 0);
        while m[at] != 0 {
            if m[at] & 0xc0 == 0xc0 {
                at = usize::from(m[at] & 0x3f) << 8 | usize::from(m[at + 1]);
                jumps += 1;
            } else {
                assert_eq!(&m[at..at + 2], &[1, b'a']);
                labels += 1;
                at += 2;
            }
        }
        assert_eq!((labels, jumps), (DNS_CHAIN_LABELS, DNS_CHAIN_LABELS));
    }

    #[test]
    fn bombs_decompress_to_the_requested_size() {
        use std::io::Read;
        let gzip = compressed_zeros(2, ContentCoding::Gzip).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2 << 20);
        assert!(out.iter().all(|&b| b == 0));
        let br = compressed_zeros(2, ContentCoding::Brotli).unwrap();
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2 << 20);
        // Both shrink 2 MiB to a few KiB at most.
        assert!(gzip.len() < 4096 && br.len() < 4096, "{} {}", gzip.len(), br.len());
        let twice = compressed_zeros(2, ContentCoding::GzipTwice).unwrap();
        let mut inner = Vec::new();
        flate2::read::GzDecoder::new(&twice[..]).read_to_end(&mut inner).unwrap();
        assert_eq!(inner, gzip);
    }

    #[test]
    fn nested_message_closes_every_level() {
        let m = String::from_utf8(nested_mime_message(3)).unwrap();
        assert_eq!(m.matches("multipart/mixed").count(), 3);
        let closings: Vec<&str> = m.lines().filter(|l| l.ends_with("--") && l.starts_with("--")).collect();
        assert_eq!(closings, ["--n2--", "--n1--", "--n0--"]);
        let wide = String::from_utf8(wide_mime_message(4)).unwrap();
        assert_eq!(wide.matches("--w\r\n").count(), 4);
    }
}
