#!/usr/bin/env bash
# Live capture end to end: replays a capture with tcpreplay into one end of a veth pair while the
# live_count example captures on the other end, then reports packets sent against packets seen and
# the kernel's drop counters. Both ends sit in network namespaces made for the run (weir-live-a
# sends, weir-live-b captures), with no addresses and IPv6 off, so nothing leaves them and only
# the replayed frames are seen; they are deleted on exit, also after a failure or Ctrl-C.
#
#   scripts/live-test.sh [--pcap FILE] [--pps N | --mbps N | --topspeed] [--loop N]
#                        [--filter EXPR] [--buffer-bytes N] [--release] [--allow-loss]
#
# Defaults: pcaps/http.pcap at 1000 packets/s, once, no filter, the capture library's kernel buffer
# (64 MiB; a small --buffer-bytes shows drops being counted), a debug build. Exit status 0 when
# every packet sent was seen (or --allow-loss), 1 when some were lost, 2 on a usage or setup error.
# Needs root. Installs tcpreplay with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

pcap="pcaps/http.pcap"
rate=(--pps=1000)
loop=1
filter=""
buffer=""
profile="debug"
allow_loss=0
while [ $# -gt 0 ]; do
    case "$1" in
        --pcap) pcap="$2"; shift 2 ;;
        --pps) rate=(--pps="$2"); shift 2 ;;
        --mbps) rate=(--mbps="$2"); shift 2 ;;
        --topspeed) rate=(--topspeed); shift ;;
        --loop) loop="$2"; shift 2 ;;
        --filter) filter="$2"; shift 2 ;;
        --buffer-bytes) buffer="$2"; shift 2 ;;
        --release) profile="release"; shift ;;
        --allow-loss) allow_loss=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "live-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || { echo "live-test: needs root (network namespaces, CAP_NET_RAW)" >&2; exit 2; }
[ -f "$pcap" ] || { echo "live-test: $pcap: no such file" >&2; exit 2; }
if ! command -v tcpreplay >/dev/null 2>&1; then
    echo "live-test: installing tcpreplay" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq tcpreplay >/dev/null
fi

ns_a="${WEIR_LIVE_NS_A:-weir-live-a}"
ns_b="${WEIR_LIVE_NS_B:-weir-live-b}"
if_a="wlt-a"
if_b="wlt-b"
work="$(mktemp -d /tmp/weir-live-test.XXXXXX)"
capture_pid=""

cleanup() {
    [ -n "$capture_pid" ] && kill "$capture_pid" 2>/dev/null || true
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_flags=(-p weir-capture --example live_count)
[ "$profile" = release ] && build_flags+=(--release)
cargo build -q "${build_flags[@]}"
target_dir="${CARGO_TARGET_DIR:-target}"
live_count="$target_dir/$profile/examples/live_count"
[ -x "$live_count" ] || { echo "live-test: $live_count was not built" >&2; exit 2; }

# Left over from an interrupted run: start clean.
ip netns del "$ns_a" 2>/dev/null || true
ip netns del "$ns_b" 2>/dev/null || true
ip netns add "$ns_a"
ip netns add "$ns_b"
for ns in "$ns_a" "$ns_b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
done
ip link add "$if_a" type veth peer name "$if_b"
ip link set "$if_a" netns "$ns_a"
ip link set "$if_b" netns "$ns_b"
# Large MTUs: captures made on loopback or with offloads hold frames over 1514 bytes.
ip -n "$ns_a" link set "$if_a" mtu 65535 up
ip -n "$ns_b" link set "$if_b" mtu 65535 up

capture_args=(--interface "$if_b" --idle-exit-ms 2000 --max-seconds 3600)
[ -n "$filter" ] && capture_args+=(--filter "$filter")
[ -n "$buffer" ] && capture_args+=(--buffer-bytes "$buffer")
ip netns exec "$ns_b" "$live_count" "${capture_args[@]}" >"$work/capture.jsonl" 2>"$work/capture.err" &
capture_pid=$!
for _ in $(seq 1 200); do
    grep -q '"event":"ready"' "$work/capture.jsonl" 2>/dev/null && break
    if ! kill -0 "$capture_pid" 2>/dev/null; then
        echo "live-test: live_count did not start:" >&2
        cat "$work/capture.jsonl" "$work/capture.err" >&2
        exit 2
    fi
    sleep 0.05
done
grep -q '"event":"ready"' "$work/capture.jsonl" || { echo "live-test: live_count never became ready" >&2; exit 2; }

echo "live-test: replaying $pcap (${rate[*]}, loop $loop) from $ns_a/$if_a; capturing on $ns_b/$if_b" >&2
ip netns exec "$ns_a" tcpreplay --intf1="$if_a" "${rate[@]}" --loop="$loop" "$pcap" >"$work/replay.out" 2>&1 || {
    cat "$work/replay.out" >&2
    exit 2
}
wait "$capture_pid" || true
capture_pid=""

sent=$(sed -n 's/^[[:space:]]*Actual: \([0-9]*\) packets.*/\1/p' "$work/replay.out" | head -1)
failed=$(sed -n 's/^[[:space:]]*Failed packets:[[:space:]]*\([0-9]*\).*/\1/p' "$work/replay.out" | head -1)
done_line=$(grep '"event":"done"' "$work/capture.jsonl" || true)
grep '"event":"warning"' "$work/capture.jsonl" >&2 || true
[ -n "$done_line" ] || { echo "live-test: live_count gave no result:" >&2; cat "$work/capture.jsonl" "$work/capture.err" >&2; exit 2; }
field() { printf '%s' "$done_line" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
seen=$(field packets)
received=$(field kernel_received)
dropped=$(field kernel_dropped)
if_dropped=$(field interface_dropped)
rate_line=$(sed -n 's/^[[:space:]]*Rated: \(.*\)/\1/p' "$work/replay.out" | head -1)

printf 'sent %s (send failures %s)  seen %s  kernel received %s  kernel dropped %s  interface dropped %s\n' \
    "${sent:-?}" "${failed:-0}" "$seen" "$received" "$dropped" "$if_dropped"
printf 'replay rate: %s\n' "${rate_line:-?}"
printf '%s\n' "$done_line"

if [ -z "$filter" ] && [ "${sent:-0}" != "$seen" ] && [ "$allow_loss" -eq 0 ]; then
    echo "live-test: $(( ${sent:-0} - seen )) packet(s) sent but not seen" >&2
    exit 1
fi
