"""Clients for reputation.sh, run in the client namespace: real DNS, HTTP, TLS and SMTP clients
reaching names, URLs and addresses listed in the project's real feeds (../shared/feeds), and a few
that no feed lists, all answered by local servers.

Usage: reputation_client.py FEEDS_DIR HTTP_LOG SMTP_LOG MANIFEST_OUT TOOLS_JSON

Each sighting states which feed lists it (or none) and where Weir should see it. Before the
manifest is written, every sighting is checked against the feed files themselves with a plain
matcher (URL without scheme, lower case; a domain entry covers the names below it; addresses
exact): a sighting must hit exactly the one entry it names, a control none, so the manifest's
truth comes from the feeds and not from Weir.
"""
import csv
import http.client
import ipaddress
import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import CLI_IP, SRV_IP  # noqa: E402

feeds_dir, http_log, smtp_log, manifest_out, tools = sys.argv[1:6]

# Addresses from tweetfeed.intel given to the server end of the veth (inside the namespaces
# only; the client namespace has a /32 route to each over the veth and nothing beyond it).
LISTED_HTTPS_IP = '154.36.188.193'
LISTED_DNS_IP = '143.109.37.227'

FEEDS = [
    dict(name='urlhaus', format='urlhaus-csv', category='malware',
         path='urlhaus-2025-07-19/urlhaus-filter-splunk-online.csv'),
    dict(name='openphish', format='zeek-intel', category='phishing', path='zeek-intel-2026-08-22/openphish.intel'),
    dict(name='shadowwhisperer', format='zeek-intel', category='malware',
         path='zeek-intel-2026-08-22/shadowwhisperer-malware.intel'),
    dict(name='tweetfeed', format='zeek-intel', category='malware', path='zeek-intel-2026-08-22/tweetfeed.intel'),
]


def url_key(url):
    """Scheme dropped, lower case: the form both Weir and the feeds' own tools compare."""
    return re.sub(r'^[a-z][a-z0-9+.-]*://', '', url.strip(), flags=re.I).lower()


def load_feed(feed):
    entries = dict(url=set(), domain=set(), ip=set())
    path = os.path.join(feeds_dir, feed['path'])
    with open(path, newline='') as f:
        lines = [ln for ln in f if not ln.startswith('#') and ln.strip()]
    if feed['format'] == 'urlhaus-csv':
        for host, path_part, *_ in list(csv.reader(lines))[1:]:
            if path_part:
                entries['url'].add(url_key(host + path_part))
            else:
                entries['ip' if is_ip(host) else 'domain'].add(host.lower())
    else:
        for ln in lines:
            value, kind = ln.rstrip('\n').split('\t')[:2]
            slot = {'Intel::URL': 'url', 'Intel::DOMAIN': 'domain', 'Intel::ADDR': 'ip'}.get(kind)
            if slot:
                entries[slot].add(url_key(value) if slot == 'url' else value.lower())
    return entries


def is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


LOADED = {f['name']: load_feed(f) for f in FEEDS}


def feed_hits(seen_in, value):
    """(feed, indicator, type) of every entry the value hits, by the plain matcher above."""
    if seen_in in ('http.url', 'email.url'):
        key = url_key(value)
        host = key.split('/', 1)[0].split(':', 1)[0]
    else:
        key, host = None, value.lower()
    hits = []
    for name, e in LOADED.items():
        if key is not None and key in e['url']:
            hits.append((name, key, 'url'))
        if is_ip(host):
            if host in e['ip']:
                hits.append((name, host, 'ip'))
            continue
        labels = host.split('.')
        for i in range(len(labels)):
            parent = '.'.join(labels[i:])
            if parent in e['domain']:
                hits.append((name, parent, 'domain'))
    return hits


M = common.Manifest('reputation.pcap', 'pcaps/make/reputation.sh',
                    'Real DNS (dig), HTTP (curl, http.client), TLS (openssl s_client, Python ssl, curl) and SMTP '
                    '(smtplib) clients reaching names, URLs and addresses listed in the real URLhaus and Zeek intel '
                    'feeds of ../shared/feeds, and unlisted controls, all answered by local servers')
M.doc['format'] = 'weir-reputation-manifest/1'
del M.doc['items']   # bodies are not the point here: sightings are
M.doc['feeds_dir'] = '../shared/feeds (relative to the repository root)'
M.doc['feeds'] = FEEDS
M.doc['sightings'] = []
M.note('one sighting per row; each listed one is seen exactly once in the capture, so Weir should raise '
       'exactly one reputation alert for it (feed, indicator, seen_in), and none for a control')
M.note('indicator is written as Weir normalises it: a URL without its scheme, lower case; a domain; an address')
M.note('HTTP hosts are seen inside the request URL (http.url): the HTTP parser emits the URL built from the Host '
       'header, not the header alone, so a domain entry reached over HTTP is seen in http.url')
M.note('every flow is 10.77.0.2 -> 10.77.0.1 (listed nowhere) except those to the two tweetfeed addresses, '
       'which the server end of the veth holds inside the private namespaces')
M.note('checked against the feed files before writing: each listed sighting hits exactly its own entry, '
       'each control no entry of any of the four feeds')


def sight(protocol, seen_in, observed, how, listed_as=None, match='exact'):
    """Records one sighting; listed_as = (feed, indicator, type) or None for a control."""
    hits = feed_hits(seen_in, observed) if seen_in not in ('dest_ip', 'src_ip') else [
        (n, observed, 'ip') for n, e in LOADED.items() if observed in e['ip']]
    want = [listed_as] if listed_as else []
    if hits != want:
        sys.exit('%s %r: the feeds give %r, the script claims %r' % (seen_in, observed, hits, want))
    row = dict(protocol=protocol, seen_in=seen_in, observed=observed, listed=bool(listed_as), how=how)
    if listed_as:
        feed = next(f for f in FEEDS if f['name'] == listed_as[0])
        row.update(feed=feed['name'], feed_file=feed['path'], category=feed['category'], indicator=listed_as[1],
                   indicator_type=listed_as[2], match=match)
    M.doc['sightings'].append(row)


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sys.exit('%s failed (%d): %s' % (' '.join(args), r.returncode, r.stderr))
    return r.stdout


def dig(server, name):
    out = run(['dig', '@' + server, '+tries=1', '+time=3', '+noall', '+answer', '+comments', name, 'A'])
    if 'status: NOERROR' not in out or '\tA\t' not in out:
        sys.exit('dig @%s %s: %s' % (server, name, out))
    return out


# --- DNS: real queries for listed names (answers point at the local server) -----------------------
dig(SRV_IP, '24x7support.top')
sight('dns', 'dns.query', '24x7support.top', 'dig @10.77.0.1 24x7support.top A',
      ('urlhaus', '24x7support.top', 'domain'))
dig(SRV_IP, 'cdn.trustnav.com')
sight('dns', 'dns.query', 'cdn.trustnav.com', 'dig @10.77.0.1 cdn.trustnav.com A (a name below the listed domain)',
      ('shadowwhisperer', 'trustnav.com', 'domain'), match='subdomain')
dig(SRV_IP, 'mytrustnav.com')
sight('dns', 'dns.query', 'mytrustnav.com', 'dig @10.77.0.1 mytrustnav.com A (ends like a listed domain, '
      'not on a label boundary)')
dig(LISTED_DNS_IP, 'www.weir.test')
sight('dns', 'dest_ip', LISTED_DNS_IP, 'dig @%s www.weir.test A: a resolver at a listed address' % LISTED_DNS_IP,
      ('tweetfeed', LISTED_DNS_IP, 'ip'))
sight('dns', 'dns.query', 'www.weir.test', 'the query sent to that resolver')

# --- HTTP ----------------------------------------------------------------------------------------
def curl(urls, extra=()):
    args = ['curl', '-sS', '--http1.1', '-o', '/dev/null']
    for u in urls:
        host = u.split('/')[2]
        args += ['--resolve', '%s:80:%s' % (host, SRV_IP)]
    run(args + list(extra) + list(urls))


curl(['http://autoiwc.ru/templates1/js/mixitup.js'])
sight('http', 'http.url', 'http://autoiwc.ru/templates1/js/mixitup.js', 'curl GET',
      ('urlhaus', 'autoiwc.ru/templates1/js/mixitup.js', 'url'))
curl(['http://send-usdt-9999.netlify.app/', 'http://send-usdt-9999.netlify.app/claim.html'])
sight('http', 'http.url', 'http://send-usdt-9999.netlify.app/', 'curl GET, first of two on one connection',
      ('openphish', 'send-usdt-9999.netlify.app/', 'url'))
sight('http', 'http.url', 'http://send-usdt-9999.netlify.app/claim.html',
      'curl GET, second on that connection: another page of the listed site')
curl(['http://search-tap.com/install/setup.exe'])
sight('http', 'http.url', 'http://search-tap.com/install/setup.exe', 'curl GET',
      ('shadowwhisperer', 'search-tap.com', 'domain'))

GLITCH = '/2b1c3a75-8370-45e6-b5d6-c93c5b0ae5f9/'
conn = http.client.HTTPConnection(SRV_IP, 80, timeout=10)
for path in (GLITCH + 'sun.dll?v=1731154698549', GLITCH + 'readme.txt'):
    conn.request('GET', path, headers={'Host': 'cdn.glitch.global', 'User-Agent': 'weir-pcaps/1'})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or path.encode() not in body:
        sys.exit('http.client %s: %d %r' % (path, resp.status, body))
conn.close()
sight('http', 'http.url', 'http://cdn.glitch.global' + GLITCH + 'sun.dll?v=1731154698549',
      'http.client GET with a query string, keep-alive',
      ('urlhaus', 'cdn.glitch.global' + GLITCH + 'sun.dll?v=1731154698549', 'url'))
sight('http', 'http.url', 'http://cdn.glitch.global' + GLITCH + 'readme.txt',
      'http.client GET on the same connection: a path beside a listed URL')

server_seen = [json.loads(ln) for ln in open(http_log)]
want = [('autoiwc.ru', '/templates1/js/mixitup.js'), ('send-usdt-9999.netlify.app', '/'),
        ('send-usdt-9999.netlify.app', '/claim.html'), ('search-tap.com', '/install/setup.exe'),
        ('cdn.glitch.global', GLITCH + 'sun.dll?v=1731154698549'), ('cdn.glitch.global', GLITCH + 'readme.txt')]
if [(r['host'], r['path']) for r in server_seen] != want:
    sys.exit('the HTTP server saw %r' % server_seen)

# --- TLS: SNI --------------------------------------------------------------------------------------
def s_client(name):
    r = subprocess.run(['openssl', 's_client', '-quiet', '-connect', '%s:443' % SRV_IP, '-servername', name],
                       input='GET / HTTP/1.0\r\n\r\n', capture_output=True, text=True, timeout=30)
    if 'HTTP/1.0 200' not in r.stdout:
        sys.exit('s_client %s: %s %s' % (name, r.stdout[:300], r.stderr[-300:]))


s_client('73puredesigns.com')
sight('tls', 'tls.sni', '73puredesigns.com', 'openssl s_client -servername 73puredesigns.com, TLS 1.3',
      ('urlhaus', '73puredesigns.com', 'domain'))
s_client('www.weir.test')
sight('tls', 'tls.sni', 'www.weir.test', 'openssl s_client -servername www.weir.test')

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_connection((SRV_IP, 443), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname='www.allow-space.com') as s:
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        reply = b''
        while chunk := s.recv(65536):
            reply += chunk
        if not reply.startswith(b'HTTP/1.0 200'):
            sys.exit('python ssl: %r' % reply[:200])
sight('tls', 'tls.sni', 'www.allow-space.com', 'Python ssl, SNI www.allow-space.com, TLS 1.2',
      ('shadowwhisperer', 'allow-space.com', 'domain'), match='subdomain')

# No SNI: curl leaves it out for an IP literal; only the flow's address is listed.
run(['curl', '-sS', '-k', '--http1.1', '-o', '/dev/null', 'https://%s/' % LISTED_HTTPS_IP])
sight('tls', 'dest_ip', LISTED_HTTPS_IP, 'curl -k https://%s/ (no SNI for an address)' % LISTED_HTTPS_IP,
      ('tweetfeed', LISTED_HTTPS_IP, 'ip'))

# --- SMTP: a listed URL in a message body ---------------------------------------------------------
msg = EmailMessage()
msg['From'] = 'Alice <alice@weir.test>'
msg['To'] = 'bob@weir.test'
msg['Subject'] = 'Your reward is waiting'
msg['Date'] = 'Thu, 26 Nov 2026 12:00:00 +0000'
msg['Message-ID'] = '<reputation-1@weir.test>'
msg.set_content('Hello Bob,\n\nclaim it here: http://www.undianshopee3535.blogspot.com/\n\n'
                'and the real report is at http://www.weir.test/report\n\n-- \nAlice\n')
data = msg.as_bytes().replace(b'\n', b'\r\n')
with smtplib.SMTP(SRV_IP, 25, local_hostname='client.weir.test', timeout=10) as smtp:
    smtp.ehlo()
    smtp.sendmail('alice@weir.test', ['bob@weir.test'], data)
sight('smtp', 'email.url', 'http://www.undianshopee3535.blogspot.com/', 'smtplib, URL in a text/plain body',
      ('openphish', 'www.undianshopee3535.blogspot.com/', 'url'))
sight('smtp', 'email.url', 'http://www.weir.test/report', 'smtplib, the other URL of that body')
logged = [json.loads(ln) for ln in open(smtp_log)]
if len(logged) != 1 or logged[0]['rcpt_tos'] != ['bob@weir.test']:
    sys.exit('the SMTP server logged %r' % logged)

for addr in (SRV_IP, CLI_IP):
    sight('ip', 'dest_ip' if addr == SRV_IP else 'src_ip', addr, 'address of every other flow')

M.write(manifest_out, tools)
