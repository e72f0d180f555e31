#!/usr/bin/env python3
"""Serves the bodies used by the real-download capture (make_downloads.sh).

Each path exercises one framing or content coding; the bytes the client receives after
undoing them are the file in ./served/, whose SHA-256 the Rust test compares against.
"""
import gzip
import http.server
import os
import sys
import zlib

SERVED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "served")


def body(name):
    with open(os.path.join(SERVED, name), "rb") as f:
        return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, data, headers, chunked=False):
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 7000):
                piece = data[i:i + 7000]
                self.wfile.write(b"%x;n=%d\r\n" % (len(piece), i) + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self):
        p = self.path
        if p == "/random.bin":
            self.send_body(body("random.bin"), [("Content-Type", "application/octet-stream")])
        elif p == "/chunked.exe":
            self.send_body(body("fake.exe"), [("Content-Type", "application/x-msdownload")], chunked=True)
        elif p == "/page.html":
            self.send_body(gzip.compress(body("page.html")), [("Content-Type", "text/html"), ("Content-Encoding", "gzip")], chunked=True)
        elif p == "/data.json":
            self.send_body(zlib.compress(body("data.json")), [("Content-Type", "application/json"), ("Content-Encoding", "deflate")])
        elif p == "/report":
            self.send_body(body("report.pdf"), [("Content-Type", "application/pdf"),
                                                ("Content-Disposition", 'attachment; filename="report.pdf"')])
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
