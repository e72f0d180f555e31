"""Clients for http.sh (curl and Python http.client), run in the client namespace.

Usage: http_client.py WORKDIR SERVER_LOG MANIFEST_OUT TOOLS_JSON
Every body is checked twice before it enters the manifest: the client's decoded copy must equal
the corpus file, and the server's log must report the same sha256 for the same request.
"""
import gzip
import http.client
import json
import os
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import SRV_IP  # noqa: E402

FILES = common.corpus()
work, server_log, manifest_out, tools = sys.argv[1:5]
CAPTURE = os.environ.get('CAPTURE', 'http')
LOSS = int(os.environ.get('LOSS_PERCENT', '0'))
M = common.Manifest(CAPTURE + '.pcap', 'pcaps/make/%s.sh' % CAPTURE,
                    'HTTP/1.1 between curl / Python http.client and a Python origin server: identity, chunked, '
                    'gzip, deflate (zlib and raw), brotli, close-delimited, 206 range, 304, HEAD, redirect, 404, '
                    'urlencoded POST, multipart uploads, PUT with Content-Length and chunked request bodies')
if LOSS:
    M.doc['summary'] = ('The same transactions as http.pcap over a lossy link: a bridge between the hosts drops about '
                        '%d%% of the TCP segments each way; captured on the client side of the loss, so server '
                        'segments show gaps then retransmissions, client segments show up twice' % LOSS)
M.note('sha256/size are of the decoded (identity) body: transfer and content encodings undone')
M.note('name: request path for downloads and PUT, form filename for multipart parts')
M.note('conn: client connection number in capture order; requests with the same conn share one TCP connection')
expected = []        # (method, path, status, sha256 of identity response body) the server must have logged
conn_no = 0


def next_conn():
    global conn_no
    conn_no += 1
    return conn_no


def check(name, got, want):
    if got != want:
        sys.exit('MISMATCH %s: got sha256 %s, want %s' % (name, common.sha256(got), common.sha256(want)))


def curl(host, args, urls, outs):
    """One curl process fetching several URLs: libcurl reuses the connection for them."""
    cmd = ['curl', '-sS', '--http1.1', '--resolve', '%s:80:%s' % (host, SRV_IP),
           '-w', '%{http_code} %{num_connects}\\n'] + args
    for u, o in zip(urls, outs):
        cmd += ['-o', o, 'http://%s%s' % (host, u)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [tuple(map(int, ln.split())) for ln in r.stdout.split('\n') if ln.strip()]


def tmp(name):
    return os.path.join(work, 'cli-' + name.replace('/', '_'))


def read(path):
    with open(path, 'rb') as f:
        return f.read()


# 1. curl, keep-alive: five plain Content-Length downloads over one connection.
c = next_conn()
names = ['readme.txt', 'index.html', 'style.css', 'logo.png', 'report.pdf']
res = curl('www.weir.test', [], ['/files/' + n for n in names], [tmp('a-' + n) for n in names])
assert [s for s, _ in res] == [200] * 5 and sum(n for _, n in res) == 1, res
for n in names:
    check(n, read(tmp('a-' + n)), FILES[n])
    M.add('http', 'to_client', 'file', '/files/' + n, FILES[n], 'curl GET, Content-Length, keep-alive',
          host='www.weir.test', status=200, conn=c)
    expected.append(('GET', '/files/' + n, 200, common.sha256(FILES[n])))

# 2. curl --compressed, keep-alive: gzip, deflate(zlib), gzip+chunked, brotli.
c = next_conn()
plan = [('/gzip/server.log', 'server.log', 'gzip, Content-Length'),
        ('/deflate/data.json', 'data.json', 'deflate (zlib), Content-Length'),
        ('/gzip-chunked/notes.txt', 'notes.txt', 'gzip + chunked'),
        ('/br/index.html', 'index.html', 'br (brotli), Content-Length')]
res = curl('cdn.weir.test', ['--compressed'], [p for p, _, _ in plan], [tmp('b-' + n) for _, n, _ in plan])
assert [s for s, _ in res] == [200] * 4 and sum(n for _, n in res) == 1, res
for path, n, how in plan:
    check(n, read(tmp('b-' + n)), FILES[n])
    M.add('http', 'to_client', 'file', path, FILES[n], 'curl --compressed GET, ' + how + ', keep-alive',
          host='cdn.weir.test', status=200, conn=c)
    expected.append(('GET', path, 200, common.sha256(FILES[n])))

# 3. curl -L: a 302 (small HTML body) then the EICAR test file on the same connection.
c = next_conn()
out = tmp('c-eicar')
r = subprocess.run(['curl', '-sS', '--http1.1', '-L', '--resolve', 'downloads.weir.test:80:' + SRV_IP,
                    '-o', out, 'http://downloads.weir.test/redirect/eicar.com'], capture_output=True, check=True)
check('eicar.com', read(out), FILES['eicar.com'])
redirect_body = b'<html><body>moved to <a href="/files/eicar.com">here</a></body></html>\n'
M.add('http', 'to_client', 'body', '/redirect/eicar.com', redirect_body, 'curl -L GET, 302 response body',
      host='downloads.weir.test', status=302, conn=c)
M.add('http', 'to_client', 'file', '/files/eicar.com', FILES['eicar.com'], 'curl -L GET after 302, Content-Length',
      host='downloads.weir.test', status=200, conn=c)
expected += [('GET', '/redirect/eicar.com', 302, common.sha256(redirect_body)),
             ('GET', '/files/eicar.com', 200, common.sha256(FILES['eicar.com']))]

# 4. curl --http1.0: body delimited by connection close (no Content-Length).
c = next_conn()
out = tmp('d-docs.zip')
subprocess.run(['curl', '-sS', '--http1.0', '--resolve', 'mirror.weir.test:80:' + SRV_IP, '-o', out,
                'http://mirror.weir.test/close/docs.zip'], capture_output=True, check=True)
check('docs.zip', read(out), FILES['docs.zip'])
M.add('http', 'to_client', 'file', '/close/docs.zip', FILES['docs.zip'],
      'curl --http1.0 GET, no Content-Length, body ends at server FIN', host='mirror.weir.test', status=200, conn=c)
expected.append(('GET', '/close/docs.zip', 200, common.sha256(FILES['docs.zip'])))

# 5. curl -F: multipart/form-data upload of two files plus a text field.
c = next_conn()
for n in ('notes.txt', 'logo.png'):
    with open(tmp('src-' + n), 'wb') as f:
        f.write(FILES[n])
out = tmp('e-reply')
subprocess.run(['curl', '-sS', '--http1.1', '--resolve', 'www.weir.test:80:' + SRV_IP, '-o', out,
                '-F', 'description=quarterly upload',
                '-F', 'file1=@%s;type=text/plain;filename=notes.txt' % tmp('src-notes.txt'),
                '-F', 'file2=@%s;type=image/png;filename=logo.png' % tmp('src-logo.png'),
                'http://www.weir.test/upload'], capture_output=True, check=True)
reply = read(out)
parts = json.loads(reply)['received']
assert [(p['filename'], p['sha256']) for p in parts] == [
    (None, common.sha256(b'quarterly upload')),
    ('notes.txt', common.sha256(FILES['notes.txt'])), ('logo.png', common.sha256(FILES['logo.png']))], parts
for n in ('notes.txt', 'logo.png'):
    M.add('http', 'to_server', 'file', n, FILES[n], 'curl -F multipart/form-data POST /upload (file part)',
          host='www.weir.test', conn=c, field='file1' if n == 'notes.txt' else 'file2')
M.add('http', 'to_client', 'body', '/upload', reply, 'JSON reply to the multipart POST', host='www.weir.test',
      status=200, conn=c)
expected.append(('POST', '/upload', 200, common.sha256(reply)))
M.note('the multipart POST also carries a plain text field description="quarterly upload" (not a file)')

# 6. curl -T with Expect: 100-continue: PUT upload.
c = next_conn()
with open(tmp('src-docs.zip'), 'wb') as f:
    f.write(FILES['docs.zip'])
out = tmp('f-reply')
subprocess.run(['curl', '-sS', '--http1.1', '--resolve', 'www.weir.test:80:' + SRV_IP, '-o', out,
                '-H', 'Expect: 100-continue', '-T', tmp('src-docs.zip'),
                'http://www.weir.test/put/docs-copy.zip'], capture_output=True, check=True)
reply = read(out)
assert json.loads(reply)['sha256'] == common.sha256(FILES['docs.zip'])
M.add('http', 'to_server', 'file', '/put/docs-copy.zip', FILES['docs.zip'],
      'curl -T PUT, Content-Length, Expect: 100-continue (server sends 100 Continue first)',
      host='www.weir.test', conn=c)
M.add('http', 'to_client', 'body', '/put/docs-copy.zip', reply, 'JSON reply to the PUT (201)',
      host='www.weir.test', status=201, conn=c)
expected.append(('PUT', '/put/docs-copy.zip', 201, common.sha256(reply)))

# 7. Python http.client: ten requests on one keep-alive connection.
c = next_conn()
UA = 'weir-pcaps/1 python-http.client'
conn = http.client.HTTPConnection(SRV_IP, 80, timeout=10)
conn.connect()


def request(method, path, headers=None, body=None, encode_chunked=False):
    h = {'Host': 'files.weir.test', 'User-Agent': UA}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h, encode_chunked=encode_chunked)
    resp = conn.getresponse()
    data = resp.read()
    enc = resp.getheader('Content-Encoding', 'identity')
    if enc == 'gzip':
        data = gzip.decompress(data)
    elif enc == 'deflate':
        try:
            data = zlib.decompress(data)
        except zlib.error:
            data = zlib.decompress(data, -15)
    return resp, data


resp, data = request('GET', '/files/firmware.bin')
check('firmware.bin', data, FILES['firmware.bin'])
M.add('http', 'to_client', 'file', '/files/firmware.bin', FILES['firmware.bin'], 'http.client GET, Content-Length',
      host='files.weir.test', status=200, conn=c)
expected.append(('GET', '/files/firmware.bin', 200, common.sha256(data)))

resp, data = request('GET', '/files/update.bin', {'Range': 'bytes=4096-12287'})
assert resp.status == 206 and resp.getheader('Content-Range') == 'bytes 4096-12287/40960'
check('update.bin range', data, FILES['update.bin'][4096:12288])
M.add('http', 'to_client', 'partial', '/files/update.bin', data,
      'http.client GET Range: bytes=4096-12287 -> 206 Content-Range: bytes 4096-12287/40960',
      host='files.weir.test', status=206, conn=c, range=[4096, 12287], full_size=40960,
      full_sha256=common.sha256(FILES['update.bin']))
expected.append(('GET', '/files/update.bin', 206, common.sha256(data)))

resp, data = request('HEAD', '/files/report.pdf')
assert resp.status == 200 and data == b'' and int(resp.getheader('Content-Length')) == len(FILES['report.pdf'])
M.add_exchange('http', '/files/report.pdf', 'http.client HEAD -> 200 with Content-Length %d, no body'
               % len(FILES['report.pdf']), method='HEAD', status=200, conn=c)
expected.append(('HEAD', '/files/report.pdf', 200, common.sha256(b'')))

tag = '"%s"' % common.sha256(FILES['readme.txt'])[:16]
resp, data = request('GET', '/files/readme.txt', {'If-None-Match': tag})
assert resp.status == 304 and data == b''
M.add_exchange('http', '/files/readme.txt', 'http.client GET If-None-Match -> 304 Not Modified, no body',
               method='GET', status=304, conn=c)
expected.append(('GET', '/files/readme.txt', 304, common.sha256(b'')))

resp, data = request('GET', '/chunked/update.bin')
check('update.bin', data, FILES['update.bin'])
M.add('http', 'to_client', 'file', '/chunked/update.bin', data, 'http.client GET, chunked (uneven chunk sizes)',
      host='files.weir.test', status=200, conn=c)
expected.append(('GET', '/chunked/update.bin', 200, common.sha256(data)))

resp, data = request('GET', '/deflate-raw/style.css', {'Accept-Encoding': 'deflate'})
check('style.css raw deflate', data, FILES['style.css'])
M.add('http', 'to_client', 'file', '/deflate-raw/style.css', data,
      'http.client GET, Content-Encoding: deflate as a raw RFC 1951 stream (no zlib header)',
      host='files.weir.test', status=200, conn=c)
expected.append(('GET', '/deflate-raw/style.css', 200, common.sha256(data)))

resp, data = request('GET', '/no/such/file.exe')
assert resp.status == 404
M.add('http', 'to_client', 'body', '/no/such/file.exe', data, 'http.client GET -> 404 HTML body',
      host='files.weir.test', status=404, conn=c)
expected.append(('GET', '/no/such/file.exe', 404, common.sha256(data)))

form = b'user=alice&password=correct+horse&next=http%3A%2F%2Fwww.weir.test%2Fhome'
resp, data = request('POST', '/login', {'Content-Type': 'application/x-www-form-urlencoded'}, form)
assert resp.status == 200
M.add('http', 'to_server', 'form', '/login', form, 'http.client POST application/x-www-form-urlencoded',
      host='files.weir.test', conn=c)
M.add('http', 'to_client', 'body', '/login', data, 'HTML reply to the login POST', host='files.weir.test',
      status=200, conn=c)
expected.append(('POST', '/login', 200, common.sha256(data)))


def chunks(b, n):
    for i in range(0, len(b), n):
        yield b[i:i + n]


resp, data = request('PUT', '/put/notes-copy.txt', {'Content-Type': 'text/plain'},
                     chunks(FILES['notes.txt'], 5000), encode_chunked=True)
assert resp.status == 201 and json.loads(data)['sha256'] == common.sha256(FILES['notes.txt'])
M.add('http', 'to_server', 'file', '/put/notes-copy.txt', FILES['notes.txt'],
      'http.client PUT, request body Transfer-Encoding: chunked (5000-byte chunks)', host='files.weir.test', conn=c)
M.add('http', 'to_client', 'body', '/put/notes-copy.txt', data, 'JSON reply to the PUT (201)',
      host='files.weir.test', status=201, conn=c)
expected.append(('PUT', '/put/notes-copy.txt', 201, common.sha256(data)))

boundary = 'weirBoundary7MA4YWxkTrZu0gW'
mp = (b'--%s\r\nContent-Disposition: form-data; name="title"\r\n\r\nmonthly report\r\n'
      b'--%s\r\nContent-Disposition: form-data; name="doc"; filename="report.pdf"\r\n'
      b'Content-Type: application/pdf\r\n\r\n' % (boundary.encode(), boundary.encode())
      + FILES['report.pdf'] + b'\r\n--%s--\r\n' % boundary.encode())
resp, data = request('POST', '/upload', {'Content-Type': 'multipart/form-data; boundary=' + boundary}, mp)
parts = json.loads(data)['received']
assert parts[1]['sha256'] == common.sha256(FILES['report.pdf']), parts
M.add('http', 'to_server', 'file', 'report.pdf', FILES['report.pdf'],
      'http.client multipart/form-data POST /upload (hand-built body, Content-Length)', host='files.weir.test',
      conn=c, field='doc')
M.add('http', 'to_client', 'body', '/upload', data, 'JSON reply to the multipart POST', host='files.weir.test',
      status=200, conn=c)
expected.append(('POST', '/upload', 200, common.sha256(data)))
conn.close()

# Cross-check against what the server says it sent and received.
time.sleep(0.3)
with open(server_log) as f:
    logged = [json.loads(ln) for ln in f]
got = [(e['method'], e['path'], e['status'], e['resp_sha256']) for e in logged]
if got != expected:
    for a, b in zip(got + [None] * len(expected), expected + [None] * len(got)):
        if a != b:
            print('server log %s\nexpected   %s' % (a, b), file=sys.stderr)
    sys.exit('server log does not match the client view')
M.doc['connections'] = conn_no
M.write(manifest_out, tools)
print('http: %d items, %d bodiless exchanges, %d connections' % (len(M.doc['items']),
      len(M.doc['exchanges_without_body']), conn_no))
