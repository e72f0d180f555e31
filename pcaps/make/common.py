"""Shared pieces of the capture drivers: the deterministic file corpus and the manifest writer.

Every generated file is a pure function of its name (seeded PRNG, fixed timestamps), so a rerun
of any capture script transfers byte-identical content and the manifests' sha256 values only
change when this file changes.
"""
import hashlib
import io
import json
import os
import random
import struct
import zipfile
import zlib

SRV_IP = os.environ.get('SRV_IP', '10.77.0.1')
CLI_IP = os.environ.get('CLI_IP', '10.77.0.2')
MANIFEST_FORMAT = 'weir-pcap-manifest/1'

WORDS = ('sensor packet stream flow reassembly header payload archive mirror switch segment '
         'window checksum latency tunnel vlan session capture replay buffer anomaly signature '
         'extract artifact manifest digest queue worker thread limit budget timeout policy '
         'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike').split()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def prose(seed, size, line_width=72):
    """ASCII text of exactly `size` bytes, LF line endings, some lines starting with '.'."""
    rng = random.Random(seed)
    out = []
    total = 0
    while total < size:
        words = []
        while sum(len(w) + 1 for w in words) < rng.randint(20, line_width):
            words.append(rng.choice(WORDS))
        line = ' '.join(words)
        if rng.random() < 0.04:
            line = '.' + line          # exercises SMTP/POP3 dot-stuffing wherever text is mailed
        out.append(line + '\n')
        total += len(line) + 1
    return ''.join(out).encode()[:size - 1] + b'\n'


def png(width, height, seed):
    """A valid truecolour PNG; noisy pixels so it does not compress to nothing."""
    rng = random.Random(seed)
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        for x in range(width):
            raw += bytes(((x * 4 + rng.randint(0, 40)) & 255, (y * 4) & 255, rng.randint(0, 255)))

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(bytes(raw), 9)) + chunk(b'IEND', b''))


def pdf(title, lines):
    """A small well-formed PDF 1.4 (correct xref offsets) showing the given text lines."""
    text = ['BT /F1 12 Tf 72 720 Td 16 TL']
    for ln in [title] + lines:
        esc = ln.replace('\\', '\\\\').replace('(', '\\(').replace(')', '\\)')
        text.append('(%s) Tj T*' % esc)
    text.append('ET')
    stream = '\n'.join(text).encode()
    objs = [b'<< /Type /Catalog /Pages 2 0 R >>',
            b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
            b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R '
            b'/Resources << /Font << /F1 5 0 R >> >> >>',
            b'<< /Length %d >>\nstream\n' % len(stream) + stream + b'\nendstream',
            b'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
            ('<< /Title (%s) /Producer (weir pcaps/make) /CreationDate (D:20240101000000Z) >>' % title).encode()]
    out = bytearray(b'%PDF-1.4\n%\xe2\xe3\xcf\xd3\n')
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b'%d 0 obj\n' % i + body + b'\nendobj\n'
    xref = len(out)
    out += b'xref\n0 %d\n0000000000 65535 f \n' % (len(objs) + 1)
    for off in offsets:
        out += b'%010d 00000 n \n' % off
    out += b'trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n' % (len(objs) + 1, xref)
    return bytes(out)


def zipfile_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def html_page(title, links, filler_seed, filler_size):
    body = prose(filler_seed, filler_size).decode()
    items = '\n'.join('<li><a href="%s">%s</a></li>' % (u, u) for u in links)
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>%s</title>'
            '<link rel="stylesheet" href="/files/style.css"></head>\n<body><h1>%s</h1>\n<ul>\n%s\n</ul>\n'
            '<pre>\n%s</pre>\n</body></html>\n' % (title, title, items, body)).encode()


def json_data(seed, count):
    rng = random.Random(seed)
    rows = [dict(id=i, host='10.77.0.%d' % rng.randint(1, 254), port=rng.choice([21, 25, 53, 80, 110, 143, 443]),
                 bytes=rng.randint(0, 10 ** 7), tag=rng.choice(WORDS)) for i in range(count)]
    return (json.dumps(dict(generated_by='weir pcaps', rows=rows), indent=1) + '\n').encode()


def random_bytes(seed, size):
    return random.Random(seed).randbytes(size)


# The EICAR anti-virus test string: a harmless, universally recognised "malware" marker,
# useful for hash-IOC and sandbox-policy tests.
EICAR = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'


def corpus():
    """name -> bytes; the files the HTTP, FTP and mail captures carry."""
    files = {
        'readme.txt': prose('readme', 3 * 1024),
        'notes.txt': prose('notes', 24 * 1024),
        'server.log': prose('server.log', 150 * 1024, line_width=110),
        'index.html': html_page('Weir test site', ['http://www.weir.test/files/readme.txt',
                                                   'https://downloads.weir.test/firmware.bin',
                                                   'http://mirror.example.test/pub/docs.zip?ref=index'],
                                'index', 6 * 1024),
        'style.css': b''.join(b'.c%d { color: #%06x; margin: %dpx; }\n' % (i, (i * 2654435761) & 0xffffff, i % 17)
                              for i in range(260)),
        'data.json': json_data('data', 180),
        'logo.png': png(96, 80, 'logo'),
        'report.pdf': pdf('Weir capture report', ['Quarterly summary of flows.', 'Line two (with parens).',
                                                  'Visit http://www.weir.test/report for more.']
                          + prose('report', 3000).decode().splitlines()),
        'eicar.com': EICAR,
        'firmware.bin': random_bytes('firmware', 180 * 1024),
        'update.bin': random_bytes('update', 40 * 1024),
    }
    files['docs.zip'] = zipfile_bytes([('docs/readme.txt', files['readme.txt']),
                                       ('docs/notes.txt', files['notes.txt']),
                                       ('docs/logo.png', files['logo.png']),
                                       ('docs/blob.bin', random_bytes('zipblob', 12 * 1024))])
    return files


CONTENT_TYPES = {'.txt': 'text/plain; charset=utf-8', '.log': 'text/plain', '.html': 'text/html; charset=utf-8',
                 '.css': 'text/css', '.json': 'application/json', '.png': 'image/png', '.pdf': 'application/pdf',
                 '.zip': 'application/zip', '.com': 'application/octet-stream', '.bin': 'application/octet-stream'}


def content_type(name):
    return CONTENT_TYPES.get(os.path.splitext(name)[1], 'application/octet-stream')


class Manifest:
    """Ground truth of one capture. Items are bodies that crossed the wire (decoded), in order."""

    def __init__(self, capture, script, summary):
        self.doc = dict(format=MANIFEST_FORMAT, capture=capture, made_by=script, summary=summary,
                        server_ip=SRV_IP, client_ip=CLI_IP, tools={}, items=[], exchanges_without_body=[],
                        notes=[])

    def add(self, protocol, direction, kind, name, data, how, **extra):
        assert direction in ('to_server', 'to_client'), direction
        item = dict(protocol=protocol, direction=direction, kind=kind, name=name, size=len(data),
                    sha256=sha256(data), how=how)
        item.update(extra)
        self.doc['items'].append(item)
        return item

    def add_exchange(self, protocol, name, how, **extra):
        e = dict(protocol=protocol, name=name, how=how)
        e.update(extra)
        self.doc['exchanges_without_body'].append(e)

    def note(self, text):
        self.doc['notes'].append(text)

    def write(self, path, tools_json=None):
        if tools_json:
            self.doc['tools'] = json.loads(tools_json)
        if not self.doc['exchanges_without_body']:
            del self.doc['exchanges_without_body']
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.doc, f, indent=1)
            f.write('\n')
        os.replace(tmp, path)
