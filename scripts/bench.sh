#!/usr/bin/env bash
# Whole-pipeline benchmark on the capture made by ../shared/tools/bench-pcap/make-bench-pcap.sh:
# the packet-parse floor (read + decode only), then `weir replay` with the full ET Open 2019 rule
# set: wall seconds, Gbit/s, packets/s, CPU seconds, peak RSS, rule-load time, and file recall
# against the capture's manifest (every extractable HTTP, SMTP and FTP file found in the
# filestore by SHA-256), once per worker count in BENCH_WORKERS (default "1 2").
# Usage: scripts/bench.sh [CAPTURE [MANIFEST]]
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts binaries (CARGO_TARGET_DIR when set).
bin="${CARGO_TARGET_DIR:-target}/release"
shared=../shared
pcap=${1:-/tmp/bench/big.pcap}
manifest=${2:-$(dirname "$pcap")/manifest.json}
if [ ! -f "$pcap" ]; then
    echo "bench: $pcap not found; making it (about 3 minutes, needs root)" >&2
    bash "$shared/tools/bench-pcap/make-bench-pcap.sh" --profile big --out "$(dirname "$pcap")"
fi
scripts/install-deps.sh
cargo build --release --bin weir --example read_decode
rules=$(ls "$shared"/rules/et-open-2019/*.rules)
rule_args=()
for r in $rules; do rule_args+=(--rules "$r"); done
out=$(mktemp -d /tmp/weir-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "== floor: read and decode only"
"$bin/examples/read_decode" "$pcap"

echo "== rule load (ET Open 2019) on a tiny capture"
/usr/bin/time -f "rule load: %e s wall, %M KB peak RSS" \
    "$bin/weir" replay pcaps/dns.pcap --out "$out/load" --quiet "${rule_args[@]}" 2>&1 | grep -v "rule rejected" || true

for workers in ${BENCH_WORKERS:-1 2}; do
printf '[capture]\nworkers = %s\n' "$workers" > "$out/workers.toml"
rm -rf "$out/run"
echo "== weir replay with ET Open 2019, $workers worker(s)"
/usr/bin/time -o "$out/time" -f "%e %U %S %M" \
    "$bin/weir" replay "$pcap" --out "$out/run" --config "$out/workers.toml" "${rule_args[@]}" 2>&1 | grep -v "rule rejected"
read -r wall user sys rss < "$out/time"
packets=$(python3 -c "
import json,sys
for l in open('$out/run/eve.json'):
    r=json.loads(l)
    if r.get('event_type')=='stats': p=r['stats']['decoder']['pkts']
print(p)")
python3 -c "
wall,user,sys_,rss,pk,size=$wall,$user,$sys,$rss,$packets,$(stat -c %s "$pcap")
print('replay, %s worker(s): %.1f s wall, %.1f s CPU, %.0f MB peak RSS, %.2f Gbit/s, %.0f packets/s' % ('$workers', wall, user+sys_, rss/1024, size*8/wall/1e9, pk/wall))"
python3 - "$manifest" "$out/run" "$pcap" <<'PY'
import json, os, sys, collections
manifest, out, pcap = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(manifest))
items = m["files"] if isinstance(m, dict) and "files" in m else (m["items"] if isinstance(m, dict) else m)
want, found = collections.Counter(), collections.Counter()
for it in items:
    if not it.get("extractable", True):
        continue
    proto = it.get("protocol", "?")
    sha = it["sha256"]
    want[proto] += 1
    if os.path.exists(os.path.join(out, "filestore", sha[:2], sha)) or os.path.exists(os.path.join(out, "mail", sha[:2], sha + ".eml")):
        found[proto] += 1
for p in sorted(want):
    print("recall %-6s %d of %d" % (p, found[p], want[p]))
alerts = collections.Counter()
with open(os.path.join(out, "eve.json")) as f:
    for line in f:
        e = json.loads(line)
        if e.get("event_type") == "alert":
            alerts[(e["alert"]["signature_id"], e["alert"]["signature"])] += 1
print("alerts: %d (%d distinct rules)" % (sum(alerts.values()), len(alerts)))
for (sid, sig), n in alerts.most_common(15):
    print("  %6d  sid %d  %s" % (n, sid, sig))
size = os.path.getsize(pcap)
print("capture: %.2f GB" % (size / 1e9))
PY
done
