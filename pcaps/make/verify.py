"""Check each capture against its manifest using tshark only (independent of Weir).

Usage: verify.py PCAPS_DIR [NAME...]      (NAME = http, http-lossy, smtp, pop3-imap, ftp, dns, tls)
Exits non-zero if any manifest item cannot be found in its pcap. See pcaps/README.md.
"""
import email
import email.policy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict


def sha(b):
    return hashlib.sha256(b).hexdigest()


def tshark(*args):
    r = subprocess.run(['tshark', '-n', '-o', 'tcp.reassemble_out_of_order:TRUE'] + list(args), capture_output=True)
    if r.returncode != 0:
        raise SystemExit('tshark %s failed: %s' % (args, r.stderr.decode(errors='replace')))
    return r.stdout.decode(errors='replace')


def fields(pcap, flt, names):
    args = ['-r', pcap, '-Y', flt, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=|']
    for n in names:
        args += ['-e', n]
    return [ln.split('\t') for ln in tshark(*args).splitlines()]


def tcp_streams(pcap):
    """{(stream, src_port): bytes} reassembled from relative sequence numbers (no gaps expected)."""
    segs = defaultdict(dict)
    for st, sport, seq, payload in fields(pcap, 'tcp.len > 0', ['tcp.stream', 'tcp.srcport', 'tcp.seq', 'tcp.payload']):
        segs[(int(st), int(sport))][int(seq)] = bytes.fromhex(payload.replace(':', ''))
    out = {}
    for key, parts in segs.items():
        buf = bytearray()
        for seq in sorted(parts):
            data = parts[seq]
            start = seq - 1                      # relative seq 1 is the first payload byte
            if start > len(buf):
                raise SystemExit('gap in tcp stream %s' % (key,))
            buf[start:start + len(data)] = data
        out[key] = bytes(buf)
    return out


def export_objects(pcap, proto):
    d = tempfile.mkdtemp(prefix='weir-verify-')
    tshark('-r', pcap, '-q', '--export-objects', '%s,%s' % (proto, d))
    objs = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), 'rb') as f:
            objs[name] = f.read()
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    return objs


def mime_parts(data):
    """Decoded payloads of every leaf MIME part (attachments, multipart form parts)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return [p.get_payload(decode=True) or b'' for p in msg.walk() if not p.is_multipart()]


def unstuff(data):
    return b''.join(ln[1:] if ln.startswith(b'.') else ln for ln in data.splitlines(keepends=True))


class Check:
    def __init__(self, name, manifest):
        self.name, self.manifest, self.errors, self.facts = name, manifest, [], []

    def need(self, cond, what):
        if not cond:
            self.errors.append(what)

    def shas(self, items, found, label):
        missing = [i['name'] for i in items if i['sha256'] not in found]
        self.need(not missing, '%s not found in the pcap: %s' % (label, missing))
        self.facts.append('%d/%d %s sha256 matched' % (len(items) - len(missing), len(items), label))


def check_http(pcap, c):
    objs = export_objects(pcap, 'http')
    found = {sha(b) for b in objs.values()}
    for body in objs.values():
        if body.startswith(b'--'):                         # a multipart request body: add its parts
            boundary = body.split(b'\r\n', 1)[0][2:]
            found |= {sha(p) for p in mime_parts(b'Content-Type: multipart/form-data; boundary="%s"\r\n\r\n'
                                                 % boundary + body)}
    c.shas(c.manifest['items'], found, 'HTTP bodies (tshark --export-objects http, multipart parts split)')
    reqs = fields(pcap, 'http.request', ['http.request.method'])
    # every request got either a response body (a to_client item) or none (HEAD, 304)
    want = sum(1 for i in c.manifest['items'] if i['direction'] == 'to_client') + \
        len(c.manifest.get('exchanges_without_body', []))
    c.need(len(reqs) == want, 'tshark sees %d HTTP requests, the manifest implies %d' % (len(reqs), want))
    c.facts.append('%d HTTP requests seen by tshark' % len(reqs))


def check_http_lossy(pcap, c):
    check_http(pcap, c)
    counts = {}
    for flag in ('lost_segment', 'retransmission', 'out_of_order', 'duplicate_ack'):
        counts[flag] = len(fields(pcap, 'tcp.analysis.' + flag, ['frame.number']))
    c.need(counts['lost_segment'] > 0 and counts['retransmission'] > 0, 'no loss visible: %s' % counts)
    c.facts.append('tcp.analysis: %s' % ', '.join('%s %d' % kv for kv in counts.items()))


def check_smtp(pcap, c):
    objs = export_objects(pcap, 'imf')
    msgs = {sha(unstuff(b)): b for b in objs.values()}
    items = [i for i in c.manifest['items'] if i['kind'] == 'message']
    c.shas(items, msgs, 'messages (tshark --export-objects imf, dot-unstuffed)')
    parts = set()
    for b in msgs.values():
        parts |= {sha(p) for p in mime_parts(unstuff(b))}
    c.shas([i for i in c.manifest['items'] if i['kind'] == 'attachment'], parts, 'attachments (decoded MIME parts)')
    cmds = [cmd.upper() for r in fields(pcap, 'smtp.req', ['smtp.req.command']) for cmd in r[0].split('|')]
    n = sum(len(i['rcpt_to']) for i in items)
    got = cmds.count('RCPT')
    c.need(got == n, 'RCPT commands: tshark %d, manifest %d' % (got, n))
    c.facts.append('%d RCPT TO commands' % got)


def check_pop3_imap(pcap, c):
    streams = tcp_streams(pcap)
    found = set()
    for (st, sport), data in streams.items():
        if sport == 110:                                   # multi-line POP3 replies end with CRLF.CRLF
            for block in re.findall(rb'\+OK[^\r\n]*\r\n(.*?\r\n)\.\r\n', data, re.S):
                found.add(sha(unstuff(block)))
        for m in re.finditer(rb'\{(\d+)\}\r\n', data):     # IMAP literals, either direction
            n = int(m.group(1))
            found.add(sha(data[m.end():m.end() + n]))
    whole = [i for i in c.manifest['items'] if i['kind'] != 'attachment']
    c.shas(whole, found, 'messages/headers (POP3 multi-line replies unstuffed, IMAP literals)')
    msgs = set()
    for (st, sport), data in streams.items():
        for m in re.finditer(rb'\{(\d+)\}\r\n', data):
            msgs |= {sha(p) for p in mime_parts(data[m.end():m.end() + int(m.group(1))])}
    c.shas([i for i in c.manifest['items'] if i['kind'] == 'attachment'], msgs, 'attachments (decoded MIME parts)')


def check_ftp(pcap, c):
    streams = tcp_streams(pcap)
    control = {st for st, port in streams if port == 21}
    data_streams = {k: v for k, v in streams.items() if k[0] not in control}
    found = {sha(v) for v in data_streams.values()}
    c.shas(c.manifest['items'], found, 'data-connection payloads (tcp reassembly of every non-control stream)')
    cmds = [r[0].upper() for r in fields(pcap, 'ftp.request.command', ['ftp.request.command'])]
    modes = [i['data_mode'] for i in c.manifest['items'] + c.manifest.get('exchanges_without_body', [])]
    for m in ('PASV', 'EPSV', 'PORT', 'EPRT'):
        c.need(cmds.count(m) == modes.count(m), '%s: tshark %d, manifest %d' % (m, cmds.count(m), modes.count(m)))
    c.facts.append('data commands PASV/EPSV/PORT/EPRT: %s' % [cmds.count(m) for m in ('PASV', 'EPSV', 'PORT', 'EPRT')])


QTYPES = {'A': '1', 'AAAA': '28', 'CNAME': '5', 'MX': '15', 'TXT': '16', 'SRV': '33', 'PTR': '12'}
RCODES = {'NOERROR': '0', 'NXDOMAIN': '3', 'REFUSED': '5'}


def check_dns(pcap, c):
    rows = fields(pcap, 'dns.flags.response == 1', ['dns.qry.name', 'dns.qry.type', 'dns.flags.rcode',
                                                      'dns.count.answers', 'dns.flags.truncated', 'tcp.stream'])
    seen = [(r[0], r[1], r[2], int(r[3]), r[4] in ('1', 'True'), 'tcp' if r[5] else 'udp') for r in rows]
    ok = 0
    for i in c.manifest['items']:
        tr = 'tcp' if i['transport'] in ('tcp', 'udp->tcp') else 'udp'
        key = (i['name'], QTYPES[i['qtype']], RCODES[i['rcode']], len(i['answers']), False, tr)
        hit = key in seen
        if i['transport'] == 'udp->tcp':
            hit = hit and (i['name'], QTYPES[i['qtype']], RCODES[i['rcode']], 0, True, 'udp') in seen
        c.need(hit, 'no DNS response matching %s' % (key,))
        ok += hit
    c.facts.append('%d/%d queries matched by name, type, rcode, answer count and transport (TC retry seen)'
                   % (ok, len(c.manifest['items'])))
    if any(i.get('response_ip_fragmented') for i in c.manifest['items']):
        frags = fields(pcap, 'ip.flags.mf == 1 || ip.frag_offset > 0', ['ip.id'])
        c.need(len(frags) >= 2, 'no IP fragments in the capture')
        c.facts.append('%d IP fragments reassembled into the fragmented answer' % len(frags))


def check_tls(pcap, c):
    hello = {r[0]: r[1] for r in fields(pcap, 'tls.handshake.type == 1', ['tcp.stream', 'tls.handshake.extensions_server_name'])}
    server = {r[0]: r for r in fields(pcap, 'tls.handshake.type == 2',
                                      ['tcp.stream', 'tls.handshake.version', 'tls.handshake.extensions.supported_version'])}
    certs = {r[0]: r[1] for r in fields(pcap, 'tls.handshake.certificate', ['tcp.stream', 'tls.handshake.certificate'])}
    streams = sorted(hello, key=int)
    items = c.manifest['items']
    c.need(len(streams) == len(items), '%d ClientHellos, %d manifest sessions' % (len(streams), len(items)))
    for st, it in zip(streams, items):
        c.need((hello[st] or None) == it['sni'], 'stream %s SNI %r != %r' % (st, hello[st], it['sni']))
        _, legacy, supported = server[st]
        version = {'0x0304': 'TLSv1.3', '0x0303': 'TLSv1.2'}[supported or legacy]
        c.need(version == it['version'], 'stream %s version %s != %s' % (st, version, it['version']))
        if version == 'TLSv1.2':
            der = bytes.fromhex(certs[st].split('|')[0].replace(':', ''))
            fp = ':'.join('%02x' % b for b in hashlib.sha1(der).digest())
            c.need(fp == it['cert_sha1'], 'stream %s certificate sha1 %s != %s' % (st, fp, it['cert_sha1']))
    c.facts.append('%d sessions: SNI, negotiated version and (TLS 1.2) certificate SHA-1 matched' % len(items))


CHECKS = {'http': check_http, 'http-lossy': check_http_lossy, 'smtp': check_smtp, 'pop3-imap': check_pop3_imap, 'ftp': check_ftp,
          'dns': check_dns, 'tls': check_tls}


def main():
    d = sys.argv[1]
    names = sys.argv[2:] or list(CHECKS)
    failed = False
    for name in names:
        pcap = os.path.join(d, name + '.pcap')
        mpath = os.path.join(d, name + '.manifest.json')
        if not os.path.exists(pcap):
            print('%-10s SKIP (no %s)' % (name, pcap))
            continue
        with open(mpath) as f:
            c = Check(name, json.load(f))
        CHECKS[name](pcap, c)
        status = 'FAIL' if c.errors else 'ok'
        print('%-10s %s: %s' % (name, status, '; '.join(c.facts)))
        for e in c.errors:
            print('    ' + e)
        failed |= bool(c.errors)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
