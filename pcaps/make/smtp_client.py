"""SMTP clients for smtp.sh, run in the client namespace.

Session 1: smtplib, EHLO + AUTH PLAIN, two messages (plain text; HTML with links, To+Cc+Bcc).
Session 2: smtplib, EHLO, two messages with attachments (base64, quoted-printable, nested
           multipart with a message/rfc822 part), RSET between them.
Session 3: raw socket, EHLO then MAIL/RCPT/RCPT/RCPT/DATA sent in one write (PIPELINING, which
           the server advertises), a message full of dot-leading lines, then QUIT.
Usage: smtp_client.py SERVER_LOG MANIFEST_OUT TOOLS_JSON
"""
import json
import os
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import mailmsgs  # noqa: E402
from common import SRV_IP  # noqa: E402

server_log, manifest_out, tools = sys.argv[1:4]
M = common.Manifest('smtp.pcap', 'pcaps/make/smtp.sh',
                    'SMTP from Python smtplib and a raw pipelining client to aiosmtpd: AUTH PLAIN, plain text, '
                    'HTML with links, base64 and quoted-printable attachments, nested multipart with '
                    'message/rfc822, several recipients, PIPELINING, dot-stuffed lines')
M.note('kind=message: sha256/size of the RFC 5322 message as sent in DATA after dot-unstuffing, '
       'CRLF line endings, including the final CRLF before the terminating "."')
M.note('kind=attachment: sha256/size of the decoded attachment; parent = sha256 of its message; '
       'depth 1 = inside a message/rfc822 part')
M.note('envelope recipients (rcpt_to) include Bcc-only addresses that no header shows')
expected = []


def add_message(data, session, how, mail_from, rcpts, attachments=None):
    M.add('smtp', 'to_server', 'message', 'message %d' % (len(expected) + 1), data, how, session=session,
          mail_from=mail_from, rcpt_to=rcpts)
    for fn, ctype, cte, payload, depth in mailmsgs.attachment_info(data, attachments or {}):
        M.add('smtp', 'to_server', 'attachment', fn, payload, 'MIME attachment, %s' % cte.lower(), session=session,
              content_type=ctype, transfer_encoding=cte.lower(), parent=common.sha256(data), depth=depth)
    expected.append((mail_from, rcpts, common.sha256(data)))


# Session 1
m1 = mailmsgs.plain_text(1)
m2 = mailmsgs.html_links(2)
s = smtplib.SMTP(SRV_IP, 25, local_hostname='client1.weir.test', timeout=10)
s.ehlo()
s.login('alice', 'correct horse')
r1 = ['bob@weir.test']
assert s.sendmail('alice@weir.test', r1, m1) == {}
add_message(m1, 1, 'smtplib sendmail after EHLO + AUTH, plain text, dot-leading lines', 'alice@weir.test', r1)
r2 = ['bob@weir.test', 'carol@weir.test', 'dave@weir.test', 'frank@weir.test']
assert s.sendmail('it@weir.test', r2, m2) == {}
add_message(m2, 1, 'smtplib sendmail, multipart/alternative text+HTML with links, To+Cc+Bcc', 'it@weir.test', r2)
s.quit()

# Session 2
m3, att3 = mailmsgs.attachments(3)
m4, att4 = mailmsgs.nested(4)
s = smtplib.SMTP(SRV_IP, 25, local_hostname='client2.weir.test', timeout=10)
s.ehlo()
r3 = ['bob@weir.test']
assert s.sendmail('alice@weir.test', r3, m3) == {}
add_message(m3, 2, 'smtplib sendmail, multipart/mixed: base64 PDF and PNG, quoted-printable text',
            'alice@weir.test', r3, att3)
s.rset()
r4 = ['bob@weir.test', 'erin@weir.test']
assert s.sendmail('alice@weir.test', r4, m4) == {}
add_message(m4, 2, 'smtplib sendmail after RSET, nested multipart: alternative + message/rfc822 (with zip) + json',
            'alice@weir.test', r4, att4)
s.quit()

# Session 3: pipelining by hand.
m5, att5 = mailmsgs.eicar_dots(5)
r5 = ['bob@weir.test', 'carol@weir.test', 'dave@weir.test']
sock = socket.create_connection((SRV_IP, 25), timeout=10)
f = sock.makefile('rb')


def reply():
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise SystemExit('server closed')
        lines.append(ln)
        if ln[3:4] == b' ':
            return int(ln[:3]), b''.join(lines)


assert reply()[0] == 220
sock.sendall(b'EHLO client3.weir.test\r\n')
code, text = reply()
assert code == 250 and b'PIPELINING' in text, text
batch = b'MAIL FROM:<mallory@example.test>\r\n' + b''.join(b'RCPT TO:<%s>\r\n' % r.encode() for r in r5) + b'DATA\r\n'
sock.sendall(batch)
codes = [reply()[0] for _ in range(len(r5) + 2)]
assert codes == [250] * (len(r5) + 1) + [354], codes
stuffed = b''.join((b'.' + ln if ln.startswith(b'.') else ln) for ln in m5.splitlines(keepends=True))
sock.sendall(stuffed + b'.\r\n')
assert reply()[0] == 250
sock.sendall(b'QUIT\r\n')
assert reply()[0] == 221
sock.close()
add_message(m5, 3, 'raw client, PIPELINING (MAIL/RCPT x3/DATA in one segment), dot-stuffed lines, EICAR attachment',
            'mallory@example.test', r5, att5)

time.sleep(0.3)
with open(server_log) as fh:
    logged = [json.loads(ln) for ln in fh]
got = [(e['mail_from'], e['rcpt_tos'], e['sha256']) for e in logged]
if got != expected:
    sys.exit('server log does not match the client view:\n%s\n%s' % (got, expected))
M.write(manifest_out, tools)
print('smtp: %d items' % len(M.doc['items']))
