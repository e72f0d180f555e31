"""HTTP/1.1 server for reputation.sh, run in the server namespace on every address (port 80).

Answers any path with a short text page naming the host and path it was asked for, and logs each
request as JSONL (host, path, client) so the client can check its requests arrived as sent.
Usage: reputation_server.py PORT LOG
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'WeirRepTest/1'
    sys_version = ''

    def do_GET(self):
        host = self.headers.get('Host', '')
        body = ('weir reputation capture\nhost: %s\npath: %s\n' % (host, self.path)).encode()
        with open(self.server.log_path, 'a') as f:
            f.write(json.dumps(dict(host=host, path=self.path, local=self.connection.getsockname()[0])) + '\n')
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    port, log_path = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(('0.0.0.0', port), Handler)
    server.log_path = log_path
    server.serve_forever()


if __name__ == '__main__':
    main()
