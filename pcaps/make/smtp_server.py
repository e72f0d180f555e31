"""aiosmtpd server for smtp.sh, run in the server namespace.

Adds PIPELINING to the EHLO reply (aiosmtpd reads commands strictly in order, so pipelined
commands are served correctly; it just does not advertise the extension) and accepts AUTH
PLAIN/LOGIN for one fixed account without TLS. Each accepted message is logged as JSONL with the
sha256 of the DATA content after dot-unstuffing.
Usage: smtp_server.py HOST PORT LOG
"""
import asyncio
import json
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

sys.path.insert(0, __import__('os').path.dirname(__file__))
import common  # noqa: E402

USER, PASSWORD = b'alice', b'correct horse'


class Handler:
    def __init__(self, log_path):
        self.log_path = log_path

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ['250-PIPELINING', responses[-1]]

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        with open(self.log_path, 'a') as f:
            f.write(json.dumps(dict(mail_from=envelope.mail_from, rcpt_tos=envelope.rcpt_tos, size=len(data),
                                    sha256=common.sha256(data))) + '\n')
        return '250 2.0.0 Ok: queued as %s' % common.sha256(data)[:12].upper()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER and auth_data.password == PASSWORD
    return AuthResult(success=ok)


def main():
    host, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctl = Controller(Handler(log_path), hostname=host, port=port, server_hostname='mx.weir.test',
                     ident='Weir test MTA (aiosmtpd)', authenticator=authenticator, auth_require_tls=False,
                     data_size_limit=10 * 1024 * 1024)
    ctl.start()
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        ctl.stop()


if __name__ == '__main__':
    main()
