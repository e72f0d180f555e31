"""pyftpdlib server for ftp.sh, run in the server namespace.

User alice/secret (read/write, home ROOT) and anonymous (read-only, ROOT/pub). Passive data ports
come from a fixed range. Every completed transfer is logged as JSONL with the sha256 of the file
as stored on disk, so the client's view can be checked against the server's.
Usage: ftp_server.py HOST PORT ROOT LOG
"""
import hashlib
import json
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def sha256_file(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class Handler(FTPHandler):
    banner = 'Weir test FTP server (pyftpdlib) ready.'
    passive_ports = range(30000, 30100)

    def _log(self, op, path):
        rel = os.path.relpath(path, self.server.root)
        with open(self.server.log_path, 'a') as f:
            f.write(json.dumps(dict(op=op, user=self.username, path=rel, sha256=sha256_file(path))) + '\n')

    def on_file_sent(self, file):
        self._log('sent', file)

    def on_file_received(self, file):
        self._log('received', file)


def main():
    host, port, root, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    auth = DummyAuthorizer()
    auth.add_user('alice', 'secret', root, perm='elradfmwMT')
    auth.add_anonymous(os.path.join(root, 'pub'))
    Handler.authorizer = auth
    server = FTPServer((host, port), Handler)
    server.root = root
    server.log_path = log_path
    server.serve_forever()


if __name__ == '__main__':
    main()
