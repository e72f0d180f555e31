#!/usr/bin/env bash
# reputation.sh - make pcaps/reputation.pcap + pcaps/reputation.manifest.json.
# Real clients (dig, curl, http.client, openssl s_client, Python ssl, smtplib; reputation_client.py)
# in weir-cap-cli reach names, URLs and addresses listed in the real feeds of ../shared/feeds, and
# a few unlisted ones, all answered by local servers in weir-cap-srv: dnsmasq (answers every
# name asked with 10.77.0.1, no upstream), reputation_server.py (HTTP, any path), openssl
# s_server (TLS, any SNI), smtp_server.py (aiosmtpd). HTTP and TLS names reach the server through
# curl --resolve / a socket to 10.77.0.1, so each listed name is seen in exactly one place.
# Two tweetfeed.intel addresses are added to the server end of the veth; the client namespace
# gets a /32 route to each over the veth. Both exist only inside these two namespaces.
# Needs root. FEEDS_DIR overrides where the feeds are (default: ../shared beside the repository).
CAPTURE_NAME=reputation
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds dnsmasq:dnsmasq-base dig:bind9-dnsutils curl:curl openssl:openssl capinfos:wireshark-common
ensure_venv
FEEDS_DIR=${FEEDS_DIR:-$(cd "$PCAPS_DIR/../.." && pwd)/shared/feeds}
[ -d "$FEEDS_DIR" ] || die "no feeds at $FEEDS_DIR (set FEEDS_DIR)"
netns_up

LISTED_HTTPS_IP=154.36.188.193
LISTED_DNS_IP=143.109.37.227
for ip in "$LISTED_HTTPS_IP" "$LISTED_DNS_IP"; do
  ip -n "$SRV_NS" addr add "$ip/32" dev "$SRV_IF"
  ip -n "$CLI_NS" route add "$ip/32" dev "$CLI_IF"
done

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -set_serial 0x5745495203 \
  -subj "/CN=reputation.weir.test/O=Weir Test/C=NL" \
  -keyout "$WORK/server.key" -out "$WORK/server.crt" 2>/dev/null
srv_bg "$WORK/dnsmasq.log" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --listen-address="$SRV_IP" --listen-address="$LISTED_DNS_IP" --port=53 --user=root \
  --pid-file="$WORK/dnsmasq.pid" --log-queries --log-facility=- --address=/#/"$SRV_IP"
: > "$WORK/http.jsonl"
srv_bg "$WORK/http.log" "$PY" "$MAKE_DIR/reputation_server.py" 80 "$WORK/http.jsonl"
srv_bg "$WORK/s_server.log" openssl s_server -accept 0.0.0.0:443 -www -quiet \
  -cert "$WORK/server.crt" -key "$WORK/server.key"
: > "$WORK/smtp.jsonl"
srv_bg "$WORK/smtp.log" "$PY" "$MAKE_DIR/smtp_server.py" "$SRV_IP" 25 "$WORK/smtp.jsonl"
wait_listen udp 53
wait_listen tcp 80
wait_listen tcp 443
wait_listen tcp 25
sleep 0.5   # aiosmtpd's controller self-test connection (inside the server namespace) settles
capture_start "$WORK/reputation.pcap"
cli "$PY" "$MAKE_DIR/reputation_client.py" "$FEEDS_DIR" "$WORK/http.jsonl" "$WORK/smtp.jsonl" "$WORK/manifest.json" \
  "$(tool_versions_json "curl=$(curl --version | head -1 | awk '{print $2}')" \
     "openssl=$(openssl version | awk '{print $2}')" "dig=$(dig -v 2>&1 | awk '{print $2}')" \
     "dnsmasq=$(dnsmasq --version | head -1 | awk '{print $3}')")"
capture_stop

# `weir replay pcaps/` reads the captures in name order as one: reputation.pcap sorts between
# pop3-imap.pcap and smb.pcap, which leave a gap of ~0.2 s. The capture is moved into that gap;
# when it lasts longer, the idle time between packets is shortened (every gap is cut to at most
# the same bound, order kept, packets unchanged) until it fits, and the manifest says so.
OUT=$WORK/reputation.pcap
"$PY" - "$PCAPS_DIR" "$OUT" "$WORK/manifest.json" <<'PYEOF'
import glob, json, os, struct, subprocess, sys
pcaps_dir, path, manifest = sys.argv[1:4]

def packets(p):
    data = open(p, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), 'little-endian classic pcap expected'
    scale = 1e6 if magic == 0xa1b2c3d4 else 1e9
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack('<IIII', data[off:off + 16])
        out.append((sec + frac / scale, data[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    return data[:24], scale, out

def span(p):
    # capinfos: the neighbours may be pcapng (smb.pcap went through editcap).
    out = subprocess.run(['capinfos', '-a', '-e', '-S', '-T', '-r', p], capture_output=True, text=True, check=True)
    first, last = out.stdout.split('\t')[1:3]
    return float(first), float(last)

names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(pcaps_dir, '*.pcap')) + ['reputation.pcap'])
names = sorted(set(names))
i = names.index('reputation.pcap')
prev = names[i - 1] if i > 0 else None
nxt = names[i + 1] if i + 1 < len(names) else None
header, scale, pkts = packets(path)
margin = 0.01
start = span(os.path.join(pcaps_dir, prev))[1] + margin if prev else pkts[0][0]
end = span(os.path.join(pcaps_dir, nxt))[0] - margin if nxt else float('inf')
gaps = [b[0] - a[0] for a, b in zip(pkts, pkts[1:])]
budget = end - start
cap = max(gaps, default=0.0)
if sum(gaps) > budget:
    lo, hi = 0.0, cap
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(min(g, mid) for g in gaps) <= budget else (lo, mid)
    cap = lo
new_ts = [start]
for g in gaps:
    new_ts.append(new_ts[-1] + min(g, cap))
out = bytearray(header)
for t, frame, orig in zip(new_ts, pkts, [p[2] for p in pkts]):
    sec = int(t)
    frac = min(int(round((t - sec) * scale)), int(scale) - 1)
    out += struct.pack('<IIII', sec, frac, len(frame[1]), orig) + frame[1]
open(path, 'wb').write(bytes(out))
doc = json.load(open(manifest))
note = ('timestamps moved to start %.3f s after %s ends' % (margin, prev) if prev else 'timestamps kept')
if cap < max(gaps, default=0.0):
    note += ('; every gap between consecutive packets cut to at most %.6f s (was up to %.6f s; %.3f s of '
             'capture in %.3f s) so it fits before %s' % (cap, max(gaps), sum(gaps), new_ts[-1] - new_ts[0], nxt))
note += ': `weir replay pcaps/` stays chronological; packet order and bytes are unchanged'
doc['notes'].append(note)
with open(manifest, 'w') as f:
    json.dump(doc, f, indent=1)
    f.write('\n')
print(note, file=sys.stderr)
PYEOF
cp "$OUT" "$PCAPS_DIR/reputation.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/reputation.manifest.json"
log "wrote $PCAPS_DIR/reputation.pcap ($(stat -c %s "$PCAPS_DIR/reputation.pcap") bytes) and reputation.manifest.json"
