#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets, in each target's input format (see the doc comment
at the top of each fuzz_targets/*.rs), from the project's captures, rules, feeds and config.

Usage: seeds.py CORPUS_DIR [REPO_ROOT] [SHARED_DIR]

Seeds only steer the fuzzer toward real traffic; a missing source is skipped. Small hand-made
seeds live in fuzz/seeds/<target>/ and are copied as they are.
"""

import gzip
import hashlib
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

MAX_SEEDS_PER_TARGET = 400
MAX_SEED_BYTES = 16 * 1024

# decode_frame's link selector: index into its LINKS table.
LINK_INDEX = {1: 0, 101: 1, 228: 2, 229: 3, 113: 4, 276: 5, 0: 6, 108: 7, 12: 8, 14: 9}


class Corpus:
    def __init__(self, root: Path):
        self.root = root
        self.counts = {}

    def add(self, target: str, data: bytes):
        if self.counts.get(target, 0) >= MAX_SEEDS_PER_TARGET or not data:
            return
        data = data[:MAX_SEED_BYTES]
        d = self.root / target
        d.mkdir(parents=True, exist_ok=True)
        name = d / hashlib.sha1(data).hexdigest()
        if not name.exists():
            name.write_bytes(data)
            self.counts[target] = self.counts.get(target, 0) + 1


def read_pcap(path: Path):
    """(linktype, frame) of a classic pcap or a pcapng file; nothing for anything else."""
    raw = path.read_bytes()
    if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        (link,) = struct.unpack_from("<I", raw, 20)
        at = 24
        while at + 16 <= len(raw):
            incl = struct.unpack_from("<I", raw, at + 8)[0]
            yield link, raw[at + 16 : at + 16 + incl]
            at += 16 + incl
    elif raw[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        (link,) = struct.unpack_from(">I", raw, 20)
        at = 24
        while at + 16 <= len(raw):
            incl = struct.unpack_from(">I", raw, at + 8)[0]
            yield link, raw[at + 16 : at + 16 + incl]
            at += 16 + incl
    elif raw[:4] == b"\x0a\x0d\x0d\x0a":
        links = []
        at = 0
        while at + 12 <= len(raw):
            kind, length = struct.unpack_from("<II", raw, at)
            if length < 12:
                break
            if kind == 1:
                links.append(struct.unpack_from("<H", raw, at + 8)[0])
            elif kind == 6 and links:
                iface, _, _, cap = struct.unpack_from("<IIII", raw, at + 8)
                yield links[iface] if iface < len(links) else links[0], raw[at + 28 : at + 28 + cap]
            at += length


def ip_of(link: int, frame: bytes):
    """The IP packet inside an Ethernet (with VLANs), SLL or raw frame, else None."""
    if link == 1:
        at, etype = 12, None
        while at + 2 <= len(frame):
            etype = struct.unpack_from(">H", frame, at)[0]
            if etype in (0x8100, 0x88A8):
                at += 4
                continue
            break
        return frame[at + 2 :] if etype in (0x0800, 0x86DD) else None
    if link == 113:
        return frame[16:]
    if link in (101, 228, 229, 12, 14):
        return frame
    return None


def tcp_udp_of(ip: bytes):
    """(proto, src, dst, sport, dport, header fields, payload) of an unfragmented TCP/UDP packet."""
    if len(ip) < 20:
        return None
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        if struct.unpack_from(">H", ip, 6)[0] & 0x3FFF:
            return None
        proto, src, dst, body = ip[9], ip[12:16], ip[16:20], ip[ihl:total]
    elif ip[0] >> 4 == 6 and len(ip) >= 40:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        body = ip[40 : 40 + struct.unpack_from(">H", ip, 4)[0]]
    else:
        return None
    if proto == 6 and len(body) >= 20:
        sport, dport, seq, ack, off, flags, win = struct.unpack_from(">HHIIBBH", body)
        return 6, src, dst, sport, dport, (seq, ack, flags, win), body[(off >> 4) * 4 :]
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack_from(">HH", body)
        return 17, src, dst, sport, dport, None, body[8:]
    return None


def flows(pcaps):
    """TCP flows and UDP datagram lists keyed by their canonical tuple, packets in capture order.
    Each item: (from_initiator, fields, payload)."""
    tcp, udp = {}, {}
    for path in pcaps:
        try:
            packets = list(read_pcap(path))
        except (OSError, struct.error):
            continue
        for link, frame in packets:
            ip = ip_of(link, frame)
            seg = tcp_udp_of(ip) if ip else None
            if not seg:
                continue
            proto, src, dst, sport, dport, fields, payload = seg
            a, b = (src, sport), (dst, dport)
            key = (path.name, proto) + (min(a, b), max(a, b))
            table = tcp if proto == 6 else udp
            flow = table.setdefault(key, {"first": a, "ports": {sport, dport}, "items": []})
            flow["items"].append((a == flow["first"], fields, payload))
    return tcp, udp


def stream_steps(items):
    """The fuzz/src/lib.rs stream format: header byte (direction, kind, length high bits), length
    low byte, data. The flow's first sender is ToServer."""
    out = bytearray()
    for from_initiator, _, payload in items:
        for at in range(0, len(payload), 8191):
            piece = payload[at : at + 8191]
            out += bytes([(0 if from_initiator else 1) | ((len(piece) >> 8) << 3), len(piece) & 255]) + piece
    return bytes(out)


def tcp_steps(items):
    """tcp_reassembly's segment format, with raw flags, sequence numbers and windows."""
    isn = [None, None]
    for from_initiator, (seq, ack, flags, win), _ in items:
        d = 0 if from_initiator else 1
        if isn[d] is None:
            isn[d] = seq
        if isn[1 - d] is None and flags & 0x10:
            isn[1 - d] = ack
    isn = [x or 0 for x in isn]
    out = bytearray([0, 4, 3, 3, 3]) + struct.pack(">II", *isn)
    for from_initiator, (seq, ack, flags, win), payload in items:
        d = 0 if from_initiator else 1
        payload = payload[:2999]
        out += bytes([d | 2 | 4 | 8 | 0x20, flags]) + struct.pack(">I", seq)
        out += struct.pack(">H", (ack - isn[1 - d]) & 0xFFFF) + struct.pack(">H", win)
        out += struct.pack(">H", len(payload)) + payload
    return bytes(out)


PORT_TARGETS = {
    80: "http", 8080: "http", 3128: "http",
    25: "mail-smtp", 587: "mail-smtp", 110: "mail-pop3", 143: "mail-imap",
    21: "ftp", 445: "smb", 139: "smb", 53: "dns", 443: "tls", 8443: "tls",
}


def main():
    out = Path(sys.argv[1])
    repo = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent
    shared = Path(sys.argv[3]) if len(sys.argv) > 3 else repo.parent / "shared"
    corpus = Corpus(out)

    hand = repo / "fuzz" / "seeds"
    if hand.is_dir():
        for target in hand.iterdir():
            for f in sorted(target.iterdir()):
                corpus.add(target.name, f.read_bytes())

    pcaps = sorted((repo / "pcaps").glob("*.pcap")) + sorted((repo / "extract").rglob("*.pcap"))
    pcaps += sorted((shared / "corpus").rglob("*.pcap"))

    for path in pcaps:
        try:
            for i, (link, frame) in enumerate(read_pcap(path)):
                if i >= 20:
                    break
                if link in LINK_INDEX:
                    corpus.add("decode_frame", bytes([LINK_INDEX[link]]) + frame)
        except (OSError, struct.error):
            pass

    tcp, udp = flows(pcaps)
    for key, flow in tcp.items():
        items = flow["items"]
        steps = stream_steps(items)
        corpus.add("tcp_reassembly", tcp_steps(items))
        corpus.add("applayer", b"\x00" + steps)
        target = next((PORT_TARGETS[p] for p in sorted(flow["ports"]) if p in PORT_TARGETS), None)
        if target == "http":
            # setup, limits: bodies 4 KiB, file 64 KiB, decompression 256 KiB, ...
            corpus.add("http", bytes([0, 255, 255, 255, 255, 255, 255, 250, 255, 31, 15]) + steps)
        elif target and target.startswith("mail-"):
            setup = {"mail-smtp": 0, "mail-pop3": 1, "mail-imap": 2}[target]
            corpus.add("mail", bytes([setup, 255, 255, 100, 16, 255, 255]) + steps)
        elif target == "ftp":
            data = b"".join(p for _, _, p in items)
            corpus.add("ftp", b"\x00" + steps + b"\xff\x00" + data[:2048])
        elif target == "smb":
            corpus.add("smb", b"\xff\xff\xff\xff" + steps)
        elif target == "dns":
            corpus.add("dns", b"\x01" + steps)
        elif target == "tls":
            corpus.add("tls", b"\x02" + steps)
            for _, _, payload in items:
                # A handshake message body: skip the record (5) and handshake (4) headers.
                if len(payload) > 9 and payload[0] == 22:
                    corpus.add("tls", (b"\x01" if payload[5] == 11 else b"\x00") + payload[9:])
    for key, flow in udp.items():
        if 53 in flow["ports"]:
            data = bytearray(b"\x00")
            for from_initiator, _, payload in flow["items"]:
                data += bytes([0 if from_initiator else 1]) + struct.pack(">H", len(payload)) + payload
            corpus.add("dns", bytes(data))
            corpus.add("applayer", b"\x01" + bytes(data[1:]))

    text = b"The quick brown fox jumps over the lazy dog. 0123456789 " * 20
    for i, coding in enumerate([gzip.compress(text), zlib.compress(text), zlib.compress(text)[2:-4]]):
        sel = [0, 1, 1][i]
        corpus.add("content_decoders", bytes([sel, 0x10, 0, 64]) + coding)
        corpus.add("content_decoders", bytes([sel | 0x40 | 0x80, 0xFF, 0xFF, 200]) + coding)
    bomb = gzip.compress(b"\x00" * (1 << 20))
    corpus.add("content_decoders", bytes([0x80, 0x01, 0x00, 255]) + bomb)
    corpus.add("mime_decoders", b"\x10" + text[:200])
    corpus.add("mime_decoders", b"\x00aGVsbG8g\r\nd29ybGQ=\r\n")
    corpus.add("mime_decoders", b"\x00caf=C3=A9 =\r\nsoft line=3D=\n")

    rule_files = sorted((shared / "rules").rglob("*.rules")) + sorted((shared / "corpus").rglob("*.rules"))
    for path in rule_files:
        lines = [l for l in path.read_bytes().splitlines() if l.strip() and not l.startswith(b"#")]
        for line in lines[:8]:
            corpus.add("rules", b"\x00" + line)
        if lines:
            corpus.add("rules", b"\x01" + b"\n".join(lines[:20]))
    corpus.add("rules", b"\x02ET MALWARE Possible \"quoted\"; test: \\ backslash (parens)")

    feed_formats = [
        ("*.intel", 1), ("*domains*.txt", 2), ("*hosts*.txt", 2), ("*wildcard*.txt", 2), ("*urls*.txt", 3),
        ("urlhaus-filter-online.txt", 3), ("*ips*.txt", 4), ("*.csv", 0), ("compromised-ips.txt", 4),
    ]
    for pattern, selector in feed_formats:
        for path in sorted((shared / "feeds").rglob(pattern)) + sorted((shared / "rules").rglob(pattern)):
            head = b"\n".join(path.read_bytes().splitlines()[:60])
            corpus.add("feeds", bytes([selector]) + head)
    corpus.add("feeds", b"\x05d41d8cd98f00b204e9800998ecf8427e\n# comment\nda39a3ee5e6b4b0d3255bfef95601890afd80709 x\nnothex\n")
    corpus.add("feeds", b"\x00# id,dateadded,url,url_status\n\"1\",\"2025-01-01\",\"http://a.example/x\",\"online\"\n")

    for path in [repo / "weir.example.toml"] + sorted((repo / "tests").rglob("*.toml")) + sorted((repo / "examples").rglob("*.toml")):
        corpus.add("config", path.read_bytes())

    for target in sorted(corpus.counts):
        print(f"seeds {target}: {corpus.counts[target]}")


if __name__ == "__main__":
    main()
