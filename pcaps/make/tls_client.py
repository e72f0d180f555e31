"""TLS clients for tls.sh (curl and Python ssl), run in the client namespace.

Usage: tls_client.py WORKDIR MANIFEST_OUT TOOLS_JSON
WORKDIR holds default.crt and second.crt (the certificate served when SNI is secure.weir.test).
"""
import os
import re
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import SRV_IP  # noqa: E402

work, manifest_out, tools = sys.argv[1:4]
M = common.Manifest('tls.pcap', 'pcaps/make/tls.sh',
                    'TLS 1.2 and 1.3 handshakes from curl and Python ssl to openssl s_server with self-signed '
                    'certificates: several SNI names, no SNI (IP literal), SNI-selected second certificate, '
                    'forced cipher suites, one HTTP/1.1 request per connection')
M.note('tls items carry no sha256: the payload is encrypted; sni/version/cipher/certificate fields are the truth')
M.note('cert_* fields describe the server certificate; it is visible on the wire only when version is TLSv1.2')
M.note('cert_sha1 is in the colon form that Suricata logs as tls.fingerprint')


def cert_info(path):
    out = subprocess.run(['openssl', 'x509', '-in', path, '-noout', '-subject', '-issuer', '-serial',
                          '-startdate', '-enddate', '-fingerprint', '-sha1', '-nameopt', 'RFC2253'],
                         capture_output=True, text=True, check=True).stdout
    kv = dict(ln.split('=', 1) for ln in out.splitlines())
    return dict(cert_subject=kv['subject'], cert_issuer=kv['issuer'], cert_serial=kv['serial'],
                cert_not_before=kv['notBefore'], cert_not_after=kv['notAfter'],
                cert_sha1=kv['sha1 Fingerprint'].lower())


CERTS = {'default': cert_info(os.path.join(work, 'default.crt')), 'second': cert_info(os.path.join(work, 'second.crt'))}


def curl(host, opts, cert):
    url = 'https://%s/' % host
    args = ['curl', '-sS', '-v', '-k', '--http1.1', '-o', '/dev/null'] + opts
    if host != SRV_IP:
        args += ['--resolve', '%s:443:%s' % (host, SRV_IP)]
    r = subprocess.run(args + [url], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit('curl %s failed: %s' % (url, r.stderr))
    m = re.search(r'SSL connection using (TLSv[\d.]+) / (\S+)', r.stderr)
    version, cipher = m.group(1), m.group(2)
    item = dict(protocol='tls', direction='to_server', kind='session', name=host,
                sni=None if host == SRV_IP else host, version=version, cipher=cipher,
                how='curl %s %s' % (' '.join(opts), url))
    item.update(CERTS[cert])
    M.doc['items'].append(item)
    return item


assert curl('www.weir.test', ['--tlsv1.2', '--tls-max', '1.2'], 'default')['version'] == 'TLSv1.2'
assert curl('secure.weir.test', ['--tlsv1.3'], 'second')['version'] == 'TLSv1.3'
it = curl('api.weir.test', ['--tls-max', '1.2', '--ciphers', 'ECDHE-RSA-AES256-GCM-SHA384'], 'default')
assert (it['version'], it['cipher']) == ('TLSv1.2', 'ECDHE-RSA-AES256-GCM-SHA384'), it
it = curl('secure.weir.test', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-CHACHA20-POLY1305'], 'second')
assert (it['version'], it['cipher']) == ('TLSv1.2', 'ECDHE-ECDSA-CHACHA20-POLY1305'), it
assert curl('login.example.test', ['--tlsv1.3', '--tls13-ciphers', 'TLS_CHACHA20_POLY1305_SHA256'],
            'default')['cipher'] == 'TLS_CHACHA20_POLY1305_SHA256'
assert curl(SRV_IP, ['--tlsv1.2'], 'default')['sni'] is None

# Python ssl: a different ClientHello (another JA3/JA4), TLS 1.2 and 1.3.
for host, maxv in (('python.weir.test', ssl.TLSVersion.TLSv1_2), ('python13.weir.test', ssl.TLSVersion.TLSv1_3)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = maxv
    ctx.set_alpn_protocols(['http/1.1'])
    with socket.create_connection((SRV_IP, 443), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(b'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' % host.encode())
            while s.recv(65536):
                pass
            item = dict(protocol='tls', direction='to_server', kind='session', name=host, sni=host,
                        version=s.version(), cipher=s.cipher()[0], how='python ssl, ALPN http/1.1, max %s' % maxv.name)
    item.update(CERTS['default'])
    M.doc['items'].append(item)
M.write(manifest_out, tools)
print('tls: %d sessions' % len(M.doc['items']))
