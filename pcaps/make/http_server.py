"""HTTP/1.1 origin server for http.sh. Runs in the server namespace.

The URL prefix chooses the framing, so each capture transaction is exactly what the manifest says:
  /files/N         Content-Length identity; HEAD, single Range (206), If-None-Match (304)
  /chunked/N       Transfer-Encoding: chunked, uneven chunk sizes
  /gzip/N          Content-Encoding: gzip, Content-Length
  /deflate/N       Content-Encoding: deflate (zlib stream, RFC 9110)
  /deflate-raw/N   Content-Encoding: deflate sent as a raw RFC 1951 stream (what some servers do)
  /br/N            Content-Encoding: br (brotli), Content-Length
  /gzip-chunked/N  gzip and chunked together
  /close/N         no Content-Length, body ends when the server closes the connection
  /redirect/N      302 to /files/N
  POST /login      urlencoded form, small HTML reply
  POST /upload     multipart/form-data, JSON reply listing the parts received
  PUT /put/N       request body (Content-Length or chunked), 201 + JSON reply
Every request is logged to a JSONL file with the sha256 of the identity bodies in both directions.
"""
import email.parser
import email.policy
import gzip
import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli

sys.path.insert(0, __import__('os').path.dirname(__file__))
import common  # noqa: E402

FILES = common.corpus()
LAST_MODIFIED = 'Mon, 01 Jan 2024 00:00:00 GMT'
CHUNK_PATTERN = (1000, 4096, 17, 8192, 1, 2500)
MAX_BODY = 4 * 1024 * 1024
LOG_LOCK = threading.Lock()


def etag(name):
    return '"%s"' % common.sha256(FILES[name])[:16]


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'weir-pcaps-httpd/1'
    sys_version = ''

    def log_message(self, fmt, *args):
        pass

    def record(self, status, body, **extra):
        entry = dict(method=self.command, path=self.path, status=status, resp_sha256=common.sha256(body),
                     resp_size=len(body))
        entry.update(extra)
        with LOG_LOCK, open(self.server.log_path, 'a') as f:
            f.write(json.dumps(entry) + '\n')

    def read_request_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ValueError('request body too large')
        n = int(self.headers.get('Content-Length', '0'))
        if n > MAX_BODY:
            raise ValueError('request body too large')
        return self.rfile.read(n)

    def send_simple(self, status, body, ctype='text/html; charset=utf-8', extra_headers=(), **log):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.record(status, body if self.command != 'HEAD' else b'', **log)

    def not_found(self):
        self.send_simple(404, b'<html><body><h1>404 Not Found</h1><p>%s</p></body></html>\n'
                         % self.path.encode('ascii', 'replace'))

    def split(self):
        parts = self.path.split('?')[0].split('/')
        if len(parts) == 3 and parts[2] in FILES:
            return parts[1], parts[2]
        return (parts[1] if len(parts) > 1 else ''), None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        kind, name = self.split()
        if name is None:
            return self.not_found()
        data = FILES[name]
        ctype = common.content_type(name)
        if kind == 'files':
            return self.serve_identity(name, data, ctype)
        if kind == 'redirect':
            return self.send_simple(302, b'<html><body>moved to <a href="/files/%s">here</a></body></html>\n'
                                    % name.encode(), extra_headers=[('Location', '/files/' + name)])
        if kind == 'close':
            self.send_response(200)
            self.send_header('Content-Type', ctype)
            self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return self.record(200, data, framing='close')
        encodings = {'gzip': 'gzip', 'gzip-chunked': 'gzip', 'deflate': 'deflate', 'deflate-raw': 'deflate',
                     'br': 'br'}
        if kind == 'chunked':
            wire = data
        elif kind in ('gzip', 'gzip-chunked'):
            wire = gzip.compress(data, 6, mtime=0)
        elif kind == 'deflate':
            wire = zlib.compress(data, 6)
        elif kind == 'br':
            wire = brotli.compress(data, quality=5)
        elif kind == 'deflate-raw':
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            wire = c.compress(data) + c.flush()
        else:
            return self.not_found()
        chunked = kind in ('chunked', 'gzip-chunked')
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        if kind in encodings:
            self.send_header('Content-Encoding', encodings[kind])
            self.send_header('Vary', 'Accept-Encoding')
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Content-Length', str(len(wire)))
        self.end_headers()
        if chunked:
            pos = i = 0
            while pos < len(wire):
                n = CHUNK_PATTERN[i % len(CHUNK_PATTERN)]
                piece = wire[pos:pos + n]
                self.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
                pos += n
                i += 1
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.wfile.write(wire)
        self.record(200, data, wire_size=len(wire), framing='chunked' if chunked else 'content-length',
                    content_encoding=encodings.get(kind, 'identity'))

    def serve_identity(self, name, data, ctype):
        tag = etag(name)
        common_headers = [('ETag', tag), ('Last-Modified', LAST_MODIFIED), ('Accept-Ranges', 'bytes')]
        if self.headers.get('If-None-Match') == tag:
            self.send_response(304)
            for k, v in common_headers:
                self.send_header(k, v)
            self.end_headers()
            return self.record(304, b'')
        rng = self.headers.get('Range', '')
        if rng.startswith('bytes=') and ',' not in rng and self.command == 'GET':
            first, _, last = rng[6:].partition('-')
            start, end = int(first), min(int(last), len(data) - 1)
            part = data[start:end + 1]
            self.send_response(206)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, len(data)))
            self.send_header('Content-Length', str(len(part)))
            for k, v in common_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(part)
            return self.record(206, part, range=[start, end])
        self.send_simple(200, data, ctype, common_headers)

    def do_POST(self):
        try:
            body = self.read_request_body()
        except ValueError:
            return self.send_simple(413, b'too large\n', 'text/plain')
        ctype = self.headers.get('Content-Type', '')
        if self.path == '/login':
            reply = b'<html><body>Welcome back. Continue to <a href="http://www.weir.test/home">home</a>.</body></html>\n'
            return self.send_simple(200, reply, req_sha256=common.sha256(body), req_size=len(body))
        if self.path == '/upload' and ctype.startswith('multipart/form-data'):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b'Content-Type: ' + ctype.encode() + b'\r\n\r\n' + body)
            parts = []
            for p in msg.iter_parts():
                payload = p.get_payload(decode=True) or b''
                parts.append(dict(field=p.get_param('name', header='content-disposition'),
                                  filename=p.get_filename(), size=len(payload), sha256=common.sha256(payload)))
            reply = (json.dumps(dict(received=parts), indent=1) + '\n').encode()
            return self.send_simple(200, reply, 'application/json', parts=parts, req_size=len(body))
        self.not_found()

    def do_PUT(self):
        kind, _, name = self.path.lstrip('/').partition('/')
        if kind != 'put' or not name:
            return self.not_found()
        try:
            body = self.read_request_body()
        except ValueError:
            return self.send_simple(413, b'too large\n', 'text/plain')
        reply = (json.dumps(dict(stored=name, size=len(body), sha256=common.sha256(body))) + '\n').encode()
        self.send_simple(201, reply, 'application/json', [('Location', self.path)],
                         req_sha256=common.sha256(body), req_size=len(body))


def main():
    host, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    srv = ThreadingHTTPServer((host, port), Handler)
    srv.log_path = log_path
    srv.serve_forever()


if __name__ == '__main__':
    main()
