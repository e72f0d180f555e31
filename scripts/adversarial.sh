#!/usr/bin/env bash
# Hostile captures against memory ceilings (issue #13): generates each adversarial capture with
# weir-pcapgen, replays it with tight caps under /usr/bin/time -v, and checks that the run exits
# 0, writes eve.json as valid JSON lines, and peaks under its ceiling. Not a timed test: wall and
# CPU (user + system) seconds are printed for reading (CPU is the steadier figure on a shared
# machine); only a run past ADV_TIMEOUT seconds (a hang or quadratic blow-up) fails on time.
#
# Usage: scripts/adversarial.sh [KIND...]      (default: every kind below; see docs/adversarial.md)
#   ADV_DIVISOR=10 scripts/adversarial.sh     flood counts divided by 10 (bombs keep their size)
#   ADV_KEEP=1                                keep the temporary directory (captures, outputs)
#   ADV_PROFILE=debug                         replay with a debug build (overflow checks on): panics
#                                             show as FAIL (exit 101); its RSS is not comparable
#
# Ceiling = FIXED_OVERHEAD + min(flows in the capture, max_flows) x PER_FLOW_ALLOWANCE
#           + the caps the capture can fill: [stream] memcap (TCP), [capture] defrag_memcap
#             (fragments), the held-message budget of one mail protocol (256 MiB,
#             weir_extract::mime::DEFAULT_MAX_HELD_MESSAGE_BYTES) for SMTP messages, the HTTP
#             held-header budget ([app_layer.http] header_memcap, 64 MiB) for header blocks.
# FIXED_OVERHEAD (64 MiB): the process on a tiny capture peaks at about 10 MiB (binary, libraries,
# EVE writer, flow table and parser tables empty); the rest is headroom for allocator retention
# and output buffers, and it is independent of the capture.
# PER_FLOW_ALLOWANCE (16 KiB): a flow, its TCP session and parser states measure about 2 KiB
# (SYN flood at 10 000 flows); up to 8 KiB more is held per flow by protocol detection
# (extract::applayer::MAX_PROBE_BYTES) before a parser takes over.
# Any other memory is not covered by a configured cap, so a capture that needs it FAILs.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${ADV_PROFILE:-release}
# Where cargo puts binaries (CARGO_TARGET_DIR when set).
bin="${CARGO_TARGET_DIR:-target}/$PROFILE"

MAX_FLOWS=10000
STREAM_MEMCAP_MIB=32
DEFRAG_MEMCAP_MIB=8
MAIL_BUDGET_MIB=256
HTTP_HEADER_BUDGET_MIB=64
FIXED_OVERHEAD_MIB=64
PER_FLOW_ALLOWANCE_KIB=16
DIVISOR=${ADV_DIVISOR:-1}
TIMEOUT=${ADV_TIMEOUT:-600}

# kind, count, whether the count scales with ADV_DIVISOR, the caps it can fill (- for none).
captures=(
    "syn-flood 1000000 scale stream"
    "udp-flows 1000000 scale -"
    "ooo-flood 1000000 scale stream"
    "ooo-holes 1000000 scale stream"
    "ooo-flood-many 1000000 scale stream"
    "ooo-flood-big 262144 scale stream"
    "unacked-flood 262144 scale stream"
    "frag-flood 100000 scale defrag"
    "frag-far 200000 scale defrag"
    "http-header-flood 100000 scale stream"
    "http-slow-headers 10000 scale stream,http"
    "gzip-bomb 1024 fixed stream"
    "gzip2-bomb 1024 fixed stream"
    "brotli-bomb 1024 fixed stream"
    "mime-bomb 2000 fixed stream,mail"
    "smtp-slow-data 400 scale stream,mail"
    "dns-loops 100000 scale -"
    "tls-16mb 16 fixed stream"
    "ftp-port-flood 100000 scale stream"
)

if [ ! -x /usr/bin/time ]; then
    echo "adversarial: installing GNU time" >&2
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
command -v python3 >/dev/null || { echo "adversarial: python3 is needed to check eve.json" >&2; exit 2; }

if [ "$PROFILE" = release ]; then
    cargo build --release --bin weir
    cargo build --release -p weir-testkit --bin weir-pcapgen
else
    cargo build --bin weir
    cargo build -p weir-testkit --bin weir-pcapgen
fi

work=$(mktemp -d /tmp/weir-adversarial.XXXXXX)
if [ -z "${ADV_KEEP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "adversarial: keeping $work" >&2
fi
cat > "$work/weir.toml" <<EOF
[capture]
defrag_memcap = "${DEFRAG_MEMCAP_MIB}mb"
[stream]
max_flows = $MAX_FLOWS
memcap = "${STREAM_MEMCAP_MIB}mb"
[app_layer.http]
decompress_limit = "16mb"
header_memcap = "${HTTP_HEADER_BUDGET_MIB}mb"
EOF

echo "config: max_flows $MAX_FLOWS, stream memcap ${STREAM_MEMCAP_MIB} MiB, defrag memcap ${DEFRAG_MEMCAP_MIB} MiB," \
    "decompress_limit 16 MiB, header_memcap ${HTTP_HEADER_BUDGET_MIB} MiB, mail budget ${MAIL_BUDGET_MIB} MiB;" \
    "ceiling = ${FIXED_OVERHEAD_MIB} MiB fixed + caps filled + min(flows, max_flows) x ${PER_FLOW_ALLOWANCE_KIB} KiB"
printf '%-18s %9s %9s %9s %8s %7s %9s %9s  %-12s %s\n' capture count "pcap MiB" packets "wall s" "cpu s" "RSS MiB" "ceil MiB" caps result
failed=0
for entry in "${captures[@]}"; do
    read -r kind count scaling caps <<<"$entry"
    if [ "$#" -gt 0 ] && [[ " $* " != *" $kind "* ]]; then
        continue
    fi
    if [ "$scaling" = scale ]; then
        count=$((count / DIVISOR))
    fi
    pcap="$work/$kind.pcap"
    out="$work/out-$kind"
    "$bin/weir-pcapgen" "$kind" "$count" "$pcap" >/dev/null
    pcap_mib=$(python3 -c "import os,sys; print('%.1f' % (os.path.getsize(sys.argv[1]) / 2**20))" "$pcap")
    set +e
    timeout "$TIMEOUT" /usr/bin/time -v -o "$work/$kind.time" \
        "$bin/weir" replay "$pcap" --config "$work/weir.toml" --out "$out" >"$work/$kind.log" 2>&1
    rc=$?
    set -e
    reasons=()
    if [ "$rc" -eq 124 ]; then
        reasons+=("timeout ${TIMEOUT}s")
    elif [ "$rc" -ne 0 ]; then
        reasons+=("exit $rc")
    fi
    rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$kind.time" 2>/dev/null || true)
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$work/$kind.time" 2>/dev/null || true)
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$work/$kind.time" 2>/dev/null || true)
    # The summary line weir prints: "weir: N packets, B bytes, F flows, ...".
    packets=$(sed -n 's/^weir: \([0-9]*\) packets.*/\1/p' "$work/$kind.log" | head -n1)
    flows=$(sed -n 's/^weir: [0-9]* packets, [0-9]* bytes, \([0-9]*\) flows.*/\1/p' "$work/$kind.log" | head -n1)
    flows=${flows:-$MAX_FLOWS}
    held_flows=$((flows < MAX_FLOWS ? flows : MAX_FLOWS))
    caps_mib=0
    [[ ",$caps," == *,stream,* ]] && caps_mib=$((caps_mib + STREAM_MEMCAP_MIB))
    [[ ",$caps," == *,defrag,* ]] && caps_mib=$((caps_mib + DEFRAG_MEMCAP_MIB))
    [[ ",$caps," == *,mail,* ]] && caps_mib=$((caps_mib + MAIL_BUDGET_MIB))
    [[ ",$caps," == *,http,* ]] && caps_mib=$((caps_mib + HTTP_HEADER_BUDGET_MIB))
    ceiling_kib=$(((FIXED_OVERHEAD_MIB + caps_mib) * 1024 + held_flows * PER_FLOW_ALLOWANCE_KIB))
    if [ -z "$rss_kib" ]; then
        reasons+=("no RSS figure")
        rss_kib=0
    elif [ "$rss_kib" -gt "$ceiling_kib" ]; then
        reasons+=("over ceiling")
    fi
    if ! python3 - "$out/eve.json" <<'PY'; then
import json, sys
with open(sys.argv[1]) as f:
    for n, line in enumerate(f, 1):
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError("not an object")
        except ValueError as e:
            sys.exit("eve.json line %d: %s" % (n, e))
PY
        reasons+=("bad eve.json")
    fi
    if [ "${#reasons[@]}" -eq 0 ]; then
        result=PASS
    else
        result="FAIL (${reasons[*]})"
        failed=1
    fi
    printf '%-18s %9s %9s %9s %8s %7s %9s %9s  %-12s %s\n' "$kind" "$count" "$pcap_mib" "${packets:-?}" "${wall:-?}" "${cpu:-?}" \
        "$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')" \
        "$(awk -v k="$ceiling_kib" 'BEGIN {printf "%.1f", k / 1024}')" "$caps" "$result"
    if [ "$result" != PASS ] && [ "$rc" -ne 0 ]; then
        tail -n 5 "$work/$kind.log" | sed 's/^/    /'
    fi
    # The biggest captures take hundreds of MiB; keep the disk for the next one.
    [ -n "${ADV_KEEP:-}" ] || rm -rf "$pcap" "$out"
done
exit "$failed"
