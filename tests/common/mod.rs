//! Helpers for the end-to-end tests: build captures, run the `weir` binary, read its EVE output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etherparse::PacketBuilder;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use serde_json::Value;
use weir_core::{LinkType, Timestamp};
use weir_testkit::pcap::{PcapOptions, PcapWriter};

pub const CLIENT: [u8; 4] = [10, 1, 1, 1];
pub const SERVER: [u8; 4] = [10, 2, 2, 2];

pub fn at(secs: f64) -> Timestamp {
    Timestamp::from_nanos(1_700_000_000_000_000_000 + (secs * 1e9) as u64)
}

/// An Ethernet/IPv4/UDP frame.
pub fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// Inserts 802.1Q tags (outermost first) after the MAC addresses of an Ethernet frame.
pub fn with_vlans(frame: Vec<u8>, vlans: &[u16]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for id in vlans {
        out.extend_from_slice(&[0x81, 0x00]);
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

/// TCP flags for [`tcp`].
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;
pub const RST: u8 = 0x04;

/// An Ethernet/IPv4/TCP frame.
pub fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(ack);
    }
    if flags & FIN != 0 {
        b = b.fin();
    }
    if flags & PSH != 0 {
        b = b.psh();
    }
    if flags & RST != 0 {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// A whole TCP session: handshake, the given exchanges (client bytes, server bytes), FIN/ACK
/// close. Returns (time, frame) pairs starting at `t0`, 1 ms apart.
pub fn tcp_session(sport: u16, dport: u16, exchanges: &[(&[u8], &[u8])], t0: f64) -> Vec<(Timestamp, Vec<u8>)> {
    let (mut c, mut s) = (1000u32, 5000u32);
    let mut frames = Vec::new();
    let mut t = t0;
    let mut push = |f: Vec<u8>| {
        frames.push((at(t), f));
        t += 0.001;
    };
    push(tcp(CLIENT, sport, SERVER, dport, c, 0, SYN, b""));
    push(tcp(SERVER, dport, CLIENT, sport, s, c + 1, SYN | ACK, b""));
    c += 1;
    s += 1;
    push(tcp(CLIENT, sport, SERVER, dport, c, s, ACK, b""));
    for (req, resp) in exchanges {
        if !req.is_empty() {
            push(tcp(CLIENT, sport, SERVER, dport, c, s, ACK | PSH, req));
            c += req.len() as u32;
            push(tcp(SERVER, dport, CLIENT, sport, s, c, ACK, b""));
        }
        if !resp.is_empty() {
            push(tcp(SERVER, dport, CLIENT, sport, s, c, ACK | PSH, resp));
            s += resp.len() as u32;
            push(tcp(CLIENT, sport, SERVER, dport, c, s, ACK, b""));
        }
    }
    push(tcp(CLIENT, sport, SERVER, dport, c, s, FIN | ACK, b""));
    push(tcp(SERVER, dport, CLIENT, sport, s, c + 1, FIN | ACK, b""));
    push(tcp(CLIENT, sport, SERVER, dport, c + 1, s + 1, ACK, b""));
    frames
}

/// A TCP connection scripted segment by segment, on a clock shared with other connections so
/// their frames interleave in time: each data segment is ACKed at once by the other side.
pub struct TcpConv {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    c: u32,
    s: u32,
}

impl TcpConv {
    /// The handshake, from `CLIENT:sport` to `SERVER:dport`.
    pub fn open(frames: &mut Vec<(Timestamp, Vec<u8>)>, clock: &mut f64, sport: u16, dport: u16) -> TcpConv {
        let conv = TcpConv { client: (CLIENT, sport), server: (SERVER, dport), c: 1000, s: 5000 };
        conv.push(frames, clock, true, conv.c, 0, SYN, b"");
        conv.push(frames, clock, false, conv.s, conv.c + 1, SYN | ACK, b"");
        let conv = TcpConv { c: conv.c + 1, s: conv.s + 1, ..conv };
        conv.push(frames, clock, true, conv.c, conv.s, ACK, b"");
        conv
    }

    fn push(&self, frames: &mut Vec<(Timestamp, Vec<u8>)>, clock: &mut f64, from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let ((src, sport), (dst, dport)) = if from_client { (self.client, self.server) } else { (self.server, self.client) };
        frames.push((at(*clock), tcp(src, sport, dst, dport, seq, ack, flags, payload)));
        *clock += 0.001;
    }

    pub fn client(&mut self, frames: &mut Vec<(Timestamp, Vec<u8>)>, clock: &mut f64, data: &[u8]) {
        self.push(frames, clock, true, self.c, self.s, ACK | PSH, data);
        self.c += data.len() as u32;
        self.push(frames, clock, false, self.s, self.c, ACK, b"");
    }

    pub fn server(&mut self, frames: &mut Vec<(Timestamp, Vec<u8>)>, clock: &mut f64, data: &[u8]) {
        self.push(frames, clock, false, self.s, self.c, ACK | PSH, data);
        self.s += data.len() as u32;
        self.push(frames, clock, true, self.c, self.s, ACK, b"");
    }

    /// FIN/ACK from the client, FIN/ACK from the server, the last ACK.
    pub fn close(self, frames: &mut Vec<(Timestamp, Vec<u8>)>, clock: &mut f64) {
        self.push(frames, clock, true, self.c, self.s, FIN | ACK, b"");
        self.push(frames, clock, false, self.s, self.c + 1, FIN | ACK, b"");
        self.push(frames, clock, true, self.c + 1, self.s + 1, ACK, b"");
    }
}

pub fn write_pcap(path: &Path, frames: &[(Timestamp, Vec<u8>)]) {
    let mut w = PcapWriter::in_memory(PcapOptions { link: LinkType::ETHERNET, ..PcapOptions::default() });
    for (ts, f) in frames {
        w.write_packet(*ts, f).unwrap();
    }
    std::fs::write(path, w.bytes()).unwrap();
}

pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// Runs `weir replay` on the inputs into `out`; panics with its output when it fails.
pub fn replay(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let o = replay_status(inputs, out, extra);
    assert!(o.status.success(), "weir replay failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

pub fn replay_status(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut cmd = weir();
    cmd.arg("replay");
    for i in inputs {
        cmd.arg(i);
    }
    cmd.arg("--out").arg(out).args(extra);
    cmd.output().unwrap()
}

pub fn eve(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("eve.json")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn of_type<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == event_type).collect()
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().unwrap() }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A CA, the receiver's certificate for 127.0.0.1, and a client certificate for `sensor`.
pub fn pki(dir: &Path, sensor: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    for (names, usage, file) in [
        (vec!["localhost".to_string(), "127.0.0.1".to_string()], ExtendedKeyUsagePurpose::ServerAuth, "cn"),
        (vec![sensor.to_string()], ExtendedKeyUsagePurpose::ClientAuth, sensor),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.extended_key_usages = vec![usage];
        std::fs::write(dir.join(format!("{file}.pem")), p.signed_by(&key, &issuer).unwrap().pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
}

/// Reads `reader` line by line until `pick` finds a value in a line, for at most `limit` (checked
/// between lines); returns the value and every line read, for a failure message.
pub fn read_until<T>(
    reader: &mut impl std::io::BufRead,
    limit: std::time::Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> (Option<T>, String) {
    let started = std::time::Instant::now();
    let mut seen = String::new();
    while started.elapsed() < limit {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(v) = pick(&line) {
            return (Some(v), seen);
        }
    }
    (None, seen)
}
