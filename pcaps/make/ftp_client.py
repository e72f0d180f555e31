"""ftplib clients for ftp.sh, run in the client namespace.

Session 1 (alice): every data-connection mode -- PASV, EPSV, PORT, EPRT -- for both RETR and STOR,
plus LIST/NLST, REST (resumed download), SIZE/MDTM, MKD, RNFR/RNTO and a failed RETR (550).
Session 2 (anonymous): PASV LIST and RETR of a public file.
Usage: ftp_client.py ROOT SERVER_LOG MANIFEST_OUT TOOLS_JSON
"""
import ftplib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import CLI_IP, SRV_IP  # noqa: E402

F = common.corpus()
root, server_log, manifest_out, tools = sys.argv[1:5]
M = common.Manifest('ftp.pcap', 'pcaps/make/ftp.sh',
                    'FTP between Python ftplib and pyftpdlib: PASV, EPSV, PORT and EPRT data connections; '
                    'RETR, STOR, REST+RETR, LIST, NLST; login as a user and anonymously')
M.note('sha256/size are of the bytes on the data connection (all transfers are TYPE I, binary)')
M.note('name: the RETR/STOR/LIST argument as sent on the control connection; session: control connection number')
M.note('data_mode: how the data connection was set up (PASV/EPSV: client connects; PORT/EPRT: server connects)')


class Client(ftplib.FTP):
    """ftplib only uses EPSV/EPRT over IPv6; this one does what data_mode says over IPv4 too."""
    data_mode = 'PASV'

    def makepasv(self):
        if self.data_mode == 'EPSV':
            _, port = ftplib.parse229(self.sendcmd('EPSV'), self.sock.getpeername())
            return self.host, port
        return super().makepasv()

    def makeport(self):
        sock = socket.create_server((CLI_IP, 0), family=socket.AF_INET, backlog=1)
        port = sock.getsockname()[1]
        if self.data_mode == 'EPRT':
            self.sendeprt(CLI_IP, port)
        else:
            self.sendport(CLI_IP, port)
        sock.settimeout(self.timeout)
        return sock

    def mode(self, m):
        self.data_mode = m
        self.set_pasv(m in ('PASV', 'EPSV'))


def retr(ftp, session, mode, cmd, kind='file', rest=None, expect=None):
    ftp.mode(mode)
    buf = bytearray()
    ftp.retrbinary(cmd, buf.extend, rest=rest)
    data = bytes(buf)
    if expect is not None and data != expect:
        sys.exit('MISMATCH %s' % cmd)
    verb, _, arg = cmd.partition(' ')
    extra = dict(rest=rest) if rest is not None else {}
    M.add('ftp', 'to_client', kind, arg or verb, data, '%s %s%s' % (mode, 'REST %d + ' % rest if rest else '', verb),
          session=session, data_mode=mode, command=verb, **extra)
    return data


def stor(ftp, session, mode, name, data):
    ftp.mode(mode)
    import io
    ftp.storbinary('STOR ' + name, io.BytesIO(data), blocksize=16384)
    M.add('ftp', 'to_server', 'file', name, data, '%s STOR' % mode, session=session, data_mode=mode, command='STOR')


ftp = Client()
ftp.connect(SRV_IP, 21, timeout=10)
ftp.login('alice', 'secret')
ftp.sendcmd('SYST')
ftp.voidcmd('TYPE I')
ftp.cwd('/pub')
retr(ftp, 1, 'PASV', 'LIST', kind='listing')
retr(ftp, 1, 'PASV', 'RETR logo.png', expect=F['logo.png'])
assert ftp.size('docs.zip') == len(F['docs.zip'])
ftp.sendcmd('MDTM docs.zip')
retr(ftp, 1, 'EPSV', 'RETR docs.zip', expect=F['docs.zip'])
retr(ftp, 1, 'PORT', 'RETR notes.txt', expect=F['notes.txt'])
retr(ftp, 1, 'EPRT', 'RETR data.json', expect=F['data.json'])
retr(ftp, 1, 'PASV', 'RETR update.bin', rest=8192, kind='partial', expect=F['update.bin'][8192:])
M.doc['items'][-1].update(full_size=len(F['update.bin']), full_sha256=common.sha256(F['update.bin']))
try:
    ftp.mode('PASV')
    ftp.retrbinary('RETR no-such-file.bin', lambda b: None)
    sys.exit('RETR of a missing file succeeded')
except ftplib.error_perm as e:
    assert str(e).startswith('550'), e
    M.add_exchange('ftp', 'no-such-file.bin', 'PASV RETR -> 550, no data transferred', session=1,
                   data_mode='PASV')
ftp.mkd('/incoming/2024')
ftp.cwd('/incoming')
stor(ftp, 1, 'PASV', 'update.bin', F['update.bin'])
stor(ftp, 1, 'EPSV', 'readme.txt', F['readme.txt'])
stor(ftp, 1, 'PORT', 'report.pdf', F['report.pdf'])
stor(ftp, 1, 'EPRT', '2024/index.html', F['index.html'])
ftp.rename('readme.txt', 'readme-renamed.txt')
retr(ftp, 1, 'EPSV', 'NLST', kind='listing')
ftp.quit()

ftp = Client()
ftp.connect(SRV_IP, 21, timeout=10)
ftp.login()                      # anonymous
ftp.voidcmd('TYPE I')
retr(ftp, 2, 'PASV', 'LIST', kind='listing')
retr(ftp, 2, 'PASV', 'RETR eicar.com', expect=F['eicar.com'])
ftp.quit()

# The server's log must agree: same files, same content, same order.
time.sleep(0.3)
with open(server_log) as f:
    logged = [json.loads(ln) for ln in f]
want = [('sent', 'pub/logo.png'), ('sent', 'pub/docs.zip'), ('sent', 'pub/notes.txt'), ('sent', 'pub/data.json'),
        ('sent', 'pub/update.bin'), ('received', 'incoming/update.bin'), ('received', 'incoming/readme.txt'),
        ('received', 'incoming/report.pdf'), ('received', 'incoming/2024/index.html'), ('sent', 'pub/eicar.com')]
got = [(e['op'], e['path']) for e in logged]
assert got == want, got
for e in logged:
    name = os.path.basename(e['path'])
    assert e['sha256'] == common.sha256(F[name]), e
M.write(manifest_out, tools)
print('ftp: %d items' % len(M.doc['items']))
