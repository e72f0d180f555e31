"""Deterministic RFC 5322 messages for the SMTP and POP3/IMAP captures.

Every message has fixed Date, Message-ID and MIME boundaries, so its bytes (CRLF line endings,
as they cross the wire) and sha256 are stable across runs.
"""
import email.policy
import email.utils
from email.message import EmailMessage

import common

F = common.corpus()
POLICY = email.policy.SMTP          # CRLF line endings, 78-column folding
DATE = 'Mon, 01 Jan 2024 09:%02d:00 +0000'

LINK_HTML = ('<html><body><p>Hello team,</p><p>The new build is at '
             '<a href="http://www.weir.test/files/firmware.bin">http://www.weir.test/files/firmware.bin</a> '
             'and the release notes at <a href="https://docs.weir.test/release/1.2?lang=en">docs</a>.</p>'
             '<p>Please confirm your account here: <a href="http://login.example.test/verify?id=42&amp;t=abc">'
             'verify</a></p><img src="http://cdn.weir.test/pixel.png" width="1" height="1"></body></html>\n')


def _finish(msg, n, tag):
    msg['Date'] = DATE % n
    msg['Message-ID'] = '<%s.%d@weir.test>' % (tag, n)
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary('=_weir_%s_%d' % (tag, i))
    data = msg.as_bytes(policy=POLICY)
    return data if data.endswith(b'\r\n') else data + b'\r\n'


def _base(n, sender, to, subject, cc=None):
    m = EmailMessage()
    m['From'] = sender
    m['To'] = ', '.join(to)
    if cc:
        m['Cc'] = ', '.join(cc)
    m['Subject'] = subject
    return m


def plain_text(n):
    m = _base(n, 'Alice Example <alice@weir.test>', ['bob@weir.test'], 'Weekly status')
    body = ('Hi Bob,\n\nthe sensor is stable this week.\n.this line starts with a dot\n..and this one with two\n'
            '.\nA lone dot above is part of the message, not the end of it.\n\n') + common.prose('mail1', 1500).decode()
    m.set_content(body)
    return _finish(m, n, 'plain')


def html_links(n):
    m = _base(n, 'IT Desk <it@weir.test>', ['bob@weir.test', 'carol@weir.test'], 'Action required: new build',
              cc=['dave@weir.test'])
    m.set_content('Hello team,\nThe new build is at http://www.weir.test/files/firmware.bin\n'
                  'Confirm your account: http://login.example.test/verify?id=42&t=abc\n')
    m.add_alternative(LINK_HTML, subtype='html')
    return _finish(m, n, 'html')


def attachments(n):
    m = _base(n, 'Alice Example <alice@weir.test>', ['bob@weir.test'], 'Report, logo and notes (r\u00e9sum\u00e9)')
    m.set_content('Attached: the report (PDF), the logo (PNG) and my notes as quoted-printable text.\n')
    m.add_attachment(F['report.pdf'], maintype='application', subtype='pdf', filename='report.pdf')
    m.add_attachment(F['logo.png'], maintype='image', subtype='png', filename='logo.png')
    qp_text = ('Caf\u00e9 notes \u2013 na\u00efve r\u00e9sum\u00e9 = 100% sure.\n' * 3).encode() + F['readme.txt']
    m.add_attachment(qp_text, maintype='text', subtype='plain', cte='quoted-printable', filename='notes-qp.txt')
    return _finish(m, n, 'attach'), {'report.pdf': F['report.pdf'], 'logo.png': F['logo.png'],
                                     'notes-qp.txt': qp_text}


def nested(n):
    inner = _base(n, 'Carol <carol@weir.test>', ['alice@weir.test'], 'Docs bundle')
    inner['Date'] = DATE % 0
    inner['Message-ID'] = '<inner.%d@weir.test>' % n
    inner.set_content('Here is the docs bundle.\n')
    inner.add_attachment(F['docs.zip'], maintype='application', subtype='zip', filename='docs.zip')
    for i, part in enumerate(p for p in inner.walk() if p.is_multipart()):
        part.set_boundary('=_weir_inner_%d' % i)
    m = _base(n, 'Alice Example <alice@weir.test>', ['bob@weir.test', 'erin@weir.test'], 'Fwd: Docs bundle')
    m.set_content('Forwarding Carol\'s mail below; data export attached too.\n')
    m.add_alternative('<html><body><p>Forwarding Carol\'s mail below; see '
                      '<a href="http://mirror.weir.test/pub/docs.zip">the mirror</a>.</p></body></html>\n',
                      subtype='html')
    m.make_mixed()
    m.add_attachment(inner)                                  # message/rfc822
    m.add_attachment(F['data.json'], maintype='application', subtype='json', filename='data.json')
    return _finish(m, n, 'nested'), {'docs.zip': F['docs.zip'], 'data.json': F['data.json']}


def eicar_dots(n):
    m = _base(n, 'Mallory <mallory@example.test>', ['bob@weir.test', 'carol@weir.test', 'dave@weir.test'],
              'Invoice 2024-001')
    m.set_content('Please find the invoice attached.\n.\n..\n...\n.end\n' + common.prose('mail5', 800).decode())
    m.add_attachment(common.EICAR, maintype='application', subtype='octet-stream', filename='invoice.com')
    return _finish(m, n, 'eicar'), {'invoice.com': common.EICAR}


def attachment_info(message_bytes, expected):
    """[(filename, content-type, cte, decoded bytes)] for every named part, nested ones too."""
    msg = email.message_from_bytes(message_bytes, policy=email.policy.default)
    found = []

    def walk(m, depth):
        for part in m.walk():
            if part.get_content_type() == 'message/rfc822' and part is not m:
                walk(part.get_payload(0), depth + 1)
                continue
            fn = part.get_filename()
            if fn and not part.is_multipart():
                found.append((fn, part.get_content_type(), part.get('Content-Transfer-Encoding', '7bit'),
                              part.get_payload(decode=True), depth))
    walk(msg, 0)
    # message/rfc822 parts are walked twice by email's walk(); keep first of each (name, depth).
    seen, out = set(), []
    for f in found:
        if f[0] not in seen:
            seen.add(f[0])
            out.append(f)
    for fn, _, _, data, _ in out:
        if fn in expected and expected[fn] != data:
            raise SystemExit('attachment %s does not decode to its source' % fn)
    return out
