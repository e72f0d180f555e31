"""dig queries for dns.sh, run in the client namespace; records what each answer was.

Usage: dns_client.py MANIFEST_OUT TOOLS_JSON
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import SRV_IP  # noqa: E402

manifest_out, tools = sys.argv[1:3]
M = common.Manifest('dns.pcap', 'pcaps/make/dns.sh',
                    'DNS from dig to dnsmasq: A, AAAA, CNAME chains, MX, TXT, SRV, PTR, NXDOMAIN, NODATA, '
                    'REFUSED, over UDP and TCP, a truncated UDP answer retried over TCP, a 3 KB UDP answer in '
                    'IP fragments, two queries on one TCP connection')
M.note('dns items carry no sha256: name/qtype/rcode/answers (dig presentation format) are the ground truth')
M.note('transport "udp->tcp": the UDP answer had TC set (over 512 bytes without EDNS) and dig retried over TCP')

# (name, qtype, dig options, transport, expected rcode)
QUERIES = [
    ('www.weir.test', 'A', [], 'udp', 'NOERROR'),
    ('mail.weir.test', 'AAAA', [], 'udp', 'NOERROR'),
    ('www.weir.test', 'AAAA', [], 'udp', 'NOERROR'),          # name exists, no AAAA: NODATA
    ('cdn.weir.test', 'A', [], 'udp', 'NOERROR'),             # CNAME -> CNAME -> A
    ('host7.wild.weir.test', 'A', [], 'udp', 'NOERROR'),      # --address wildcard
    ('weir.test', 'MX', [], 'udp', 'NOERROR'),
    ('weir.test', 'TXT', [], 'udp', 'NOERROR'),
    ('_dmarc.weir.test', 'TXT', [], 'udp', 'NOERROR'),
    ('_xmpp-client._tcp.weir.test', 'SRV', [], 'udp', 'NOERROR'),
    ('1.0.77.10.in-addr.arpa', 'PTR', [], 'udp', 'NOERROR'),
    ('nothere.weir.test', 'A', [], 'udp', 'NXDOMAIN'),
    ('www.example.com', 'A', [], 'udp', 'REFUSED'),           # outside the local zone, no upstream
    ('big.weir.test', 'TXT', ['+noedns'], 'udp->tcp', 'NOERROR'),
    ('frag.weir.test', 'TXT', ['+bufsize=4096'], 'udp', 'NOERROR'),     # answer arrives IP-fragmented
    ('mail.weir.test', 'A', ['+tcp'], 'tcp', 'NOERROR'),
    ('weir.test', 'TXT', ['+tcp'], 'tcp', 'NOERROR'),
    ('nothere.weir.test', 'MX', ['+tcp'], 'tcp', 'NXDOMAIN'),
]


def parse(out):
    """Split dig output into one record per answered query: rcode, flags, answer lines."""
    results = []
    cur = None
    section = None
    for ln in out.splitlines():
        m = re.match(r';; ->>HEADER<<- opcode: \w+, status: (\w+), id: (\d+)', ln)
        if m:
            cur = dict(rcode=m.group(1), answers=[], flags=[])
            results.append(cur)
            continue
        m = re.match(r';; flags: ([\w ]+);', ln)
        if m and cur is not None:
            cur['flags'] = m.group(1).split()
        if ln.startswith(';; ANSWER SECTION'):
            section = 'answer'
        elif ln.startswith(';;') or not ln.strip():
            section = None if ln.startswith(';; ') and 'SECTION' in ln else section if ln.strip() else None
        elif section == 'answer' and not ln.startswith(';'):
            name, ttl, cls, rtype, rdata = ln.split(None, 4)
            cur['answers'].append('%s %s %s' % (name, rtype, rdata))
    return results


def dig(args):
    r = subprocess.run(['dig', '@' + SRV_IP, '+tries=1', '+time=3', '+nocookie'] + args,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit('dig %s failed: %s %s' % (args, r.stdout, r.stderr))
    return r.stdout


for name, qtype, opts, transport, rcode in QUERIES:
    out = dig(opts + [name, qtype])
    res = parse(out)[-1]
    if res['rcode'] != rcode:
        sys.exit('%s %s: rcode %s, want %s\n%s' % (name, qtype, res['rcode'], rcode, out))
    if transport == 'udp->tcp' and 'Truncated, retrying in TCP mode' not in out:
        sys.exit('%s %s: expected a TC retry\n%s' % (name, qtype, out))
    M.doc['items'].append(dict(protocol='dns', direction='to_server', kind='query', name=name, qtype=qtype,
                               transport=transport, rcode=rcode, answers=res['answers'],
                               how='dig ' + ' '.join(opts + [name, qtype])))
    if name == 'frag.weir.test':
        M.doc['items'][-1]['response_ip_fragmented'] = True

# Two queries over one TCP connection (dig +keepopen).
out = dig(['+tcp', '+keepopen', 'www.weir.test', 'A', 'weir.test', 'MX'])
res = parse(out)
assert [r['rcode'] for r in res] == ['NOERROR', 'NOERROR'], out
for (name, qtype), r in zip([('www.weir.test', 'A'), ('weir.test', 'MX')], res):
    M.doc['items'].append(dict(protocol='dns', direction='to_server', kind='query', name=name, qtype=qtype,
                               transport='tcp', rcode='NOERROR', answers=r['answers'],
                               how='dig +tcp +keepopen (both queries on one TCP connection)'))
empty = [i['name'] + ' ' + i['qtype'] for i in M.doc['items'] if not i['answers'] and i['rcode'] == 'NOERROR']
assert empty == ['www.weir.test AAAA'], empty
M.write(manifest_out, tools)
print('dns: %d queries' % len(M.doc['items']))
