#!/usr/bin/env bash
# The rate at which `weir live` starts to drop: replays a slice of the benchmark capture with
# tcpreplay at increasing rates into one end of a veth pair while `weir live` (ET Open 2019 rules,
# BENCH_WORKERS workers) captures on the other, and prints per rate the packets sent, the packets
# Weir processed and the kernel's drop count. Both ends sit in network namespaces made for the run
# (weir-rate-a sends, weir-rate-b captures), with no addresses and IPv6 off, so replayed addresses
# never leave them; they are deleted on exit.
#
#   scripts/live-rate.sh [--pcap FILE] [--packets N] [--rates "250 500 1000 2000 top"]
#
# Defaults: the first 200,000 packets of /tmp/bench/big.pcap (made by
# ../shared/tools/bench-pcap/make-bench-pcap.sh), rates in Mbit/s plus tcpreplay's top speed,
# BENCH_WORKERS="1 2". Needs root; installs tcpreplay when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
shared=$(cd ../shared && pwd)
pcap=/tmp/bench/big.pcap
packets=200000
rates="250 500 1000 2000 top"
while [ $# -gt 0 ]; do
    case "$1" in
        --pcap) pcap="$2"; shift 2 ;;
        --packets) packets="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "live-rate: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "live-rate: needs root" >&2; exit 2; }
[ -f "$pcap" ] || { echo "live-rate: $pcap not found (make it with $shared/tools/bench-pcap/make-bench-pcap.sh)" >&2; exit 2; }
WEIR_WITH_CAPTURE_TOOLS=1 scripts/install-deps.sh
cargo build --release --bin weir

ns_a=weir-rate-a
ns_b=weir-rate-b
work=$(mktemp -d /tmp/weir-live-rate.XXXXXX)
weir_pid=""
cleanup() {
    [ -n "$weir_pid" ] && kill "$weir_pid" 2>/dev/null || true
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add wrate-a netns "$ns_a" type veth peer name wrate-b netns "$ns_b"
for ns in "$ns_a" "$ns_b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$ns_a" link set wrate-a up
ip -n "$ns_b" link set wrate-b up

editcap -r "$pcap" "$work/slice.pcap" "1-$packets"
rule_lines=$(ls "$shared"/rules/et-open-2019/*.rules | sed 's/.*/"&",/' | tr -d '\n')

printf "%-8s %-7s %10s %10s %10s %8s\n" workers rate sent processed dropped loss%
for workers in ${BENCH_WORKERS:-1 2}; do
    for rate in $rates; do
        out="$work/out-$workers-$rate"
        printf '[capture]\nworkers = %s\n[detect]\nrules = [%s]\n' "$workers" "${rule_lines%,}" > "$work/weir.toml"
        ip netns exec "$ns_b" "$bin/weir" live --interface wrate-b --out "$out" --config "$work/weir.toml" 2> "$work/weir.log" &
        weir_pid=$!
        # Rules load before capture starts; wait for the line saying it has.
        for _ in $(seq 1 120); do grep -q "capturing on" "$work/weir.log" && break; sleep 0.5; done
        if ! kill -0 "$weir_pid" 2>/dev/null; then
            echo "live-rate: weir live did not start:" >&2; cat "$work/weir.log" >&2; exit 1
        fi
        if [ "$rate" = top ]; then speed=(--topspeed); else speed=(--mbps="$rate"); fi
        sent=$(ip netns exec "$ns_a" tcpreplay -i wrate-a "${speed[@]}" "$work/slice.pcap" 2>&1 | awk '/Successful packets:/ {print $3}')
        sleep 2
        kill -TERM "$weir_pid"
        wait "$weir_pid" || true
        weir_pid=""
        line=$(grep "kernel dropped" "$work/weir.log" || true)
        processed=$(echo "$line" | awk '{print $2}')
        dropped=$(echo "$line" | sed -n 's/.*kernel dropped \([0-9]*\).*/\1/p')
        loss=$(python3 -c "s=${sent:-0}; p=${processed:-0}; print('%.2f' % (100*(s-p)/s if s else 0))")
        printf "%-8s %-7s %10s %10s %10s %8s\n" "$workers" "$rate" "${sent:-?}" "${processed:-?}" "${dropped:-?}" "$loss"
    done
done
