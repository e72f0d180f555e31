"""POP3 (poplib) and IMAP (imaplib) clients for pop3-imap.sh, run in the client namespace.

Usage: mail_client.py MANIFEST_OUT TOOLS_JSON
The mailbox holds mailmsgs.plain_text(11), attachments(12) and nested(13) (stored with LF line
endings, as a Maildir does; Dovecot sends them with CRLF). The client checks every message it
receives against those sources before it enters the manifest.
"""
import imaplib
import os
import poplib
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import mailmsgs  # noqa: E402
from common import SRV_IP  # noqa: E402

manifest_out, tools = sys.argv[1:3]
M = common.Manifest('pop3-imap.pcap', 'pcaps/make/pop3-imap.sh',
                    'POP3 (poplib) and IMAP4rev1 (imaplib) against Dovecot: USER/PASS, STAT, LIST, UIDL, TOP, '
                    'RETR of three messages; LOGIN, SELECT, SEARCH, FETCH BODY[] and BODY.PEEK[HEADER], '
                    'UID FETCH, APPEND (client to server)')
M.note('kind=message: sha256/size of the whole message as it crosses the wire: CRLF line endings, POP3 '
       'dot-stuffing removed, without the POP3 terminating ".\\r\\n" or the IMAP literal framing')
M.note('kind=headers: only the header block (POP3 TOP n 0 / IMAP BODY.PEEK[HEADER]), including its blank line')
M.note('kind=attachment: decoded attachment of the message whose sha256 is in parent')
SOURCES = [mailmsgs.plain_text(11), mailmsgs.attachments(12)[0], mailmsgs.nested(13)[0]]
ATTACH = {**mailmsgs.attachments(12)[1], **mailmsgs.nested(13)[1]}


def add_message(proto, direction, name, data, how, **extra):
    M.add(proto, direction, 'message', name, data, how, **extra)
    for fn, ctype, cte, payload, depth in mailmsgs.attachment_info(data, ATTACH):
        M.add(proto, direction, 'attachment', fn, payload, 'MIME attachment, %s' % cte.lower(), content_type=ctype,
              transfer_encoding=cte.lower(), parent=common.sha256(data), depth=depth)


# POP3
p = poplib.POP3(SRV_IP, 110, timeout=10)
p.user('alice')
p.pass_('secret')
count, _ = p.stat()
assert count == 3, count
p.list()
p.uidl()
resp, lines, _ = p.top(1, 0)
hdr = b'\r\n'.join(lines) + b'\r\n'
assert SOURCES[0].startswith(hdr), hdr
M.add('pop3', 'to_client', 'headers', 'TOP 1 0', hdr, 'poplib TOP 1 0')
for i in range(1, 4):
    resp, lines, octets = p.retr(i)
    data = b'\r\n'.join(lines) + b'\r\n'
    if data != SOURCES[i - 1]:
        sys.exit('POP3 RETR %d differs from its source' % i)
    add_message('pop3', 'to_client', 'RETR %d' % i, data, 'poplib RETR %d (dot-stuffed on the wire)' % i)
p.quit()

# IMAP
im = imaplib.IMAP4(SRV_IP, 143, timeout=10)
im.login('alice', 'secret')
im.list()
typ, _ = im.select('INBOX')
assert typ == 'OK'
typ, data = im.search(None, 'ALL')
assert data[0].split() == [b'1', b'2', b'3'], data
im.fetch('1:3', '(FLAGS RFC822.SIZE INTERNALDATE)')
typ, data = im.fetch('1', '(BODY.PEEK[HEADER])')
hdr = data[0][1]
assert SOURCES[0].startswith(hdr)
M.add('imap', 'to_client', 'headers', 'FETCH 1 BODY.PEEK[HEADER]', hdr, 'imaplib FETCH 1 (BODY.PEEK[HEADER])')
for i in (1, 2):
    typ, data = im.fetch(str(i), '(BODY[])')
    if data[0][1] != SOURCES[i - 1]:
        sys.exit('IMAP FETCH %d differs from its source' % i)
    add_message('imap', 'to_client', 'FETCH %d BODY[]' % i, data[0][1], 'imaplib FETCH %d (BODY[]) literal' % i)
typ, data = im.uid('FETCH', '3', '(BODY[])')
assert data[0][1] == SOURCES[2], 'IMAP UID FETCH 3 differs from its source'
add_message('imap', 'to_client', 'UID FETCH 3 BODY[]', data[0][1], 'imaplib UID FETCH 3 (BODY[]) literal')
appended = mailmsgs.html_links(14)
typ, data = im.append('INBOX', '(\\Seen)', None, appended)
assert typ == 'OK', data
add_message('imap', 'to_server', 'APPEND INBOX', appended, 'imaplib APPEND INBOX (\\Seen) literal')
im.logout()
M.write(manifest_out, tools)
print('pop3-imap: %d items' % len(M.doc['items']))
