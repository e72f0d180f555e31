# lib.sh - shared plumbing for the capture scripts in this directory; sourced, never run.
#
# Gives every capture the same private two-namespace network:
#
#   weir-cap-srv (servers)                       weir-cap-cli (clients, tcpdump)
#   weir-srv0 10.77.0.1/24  <======= veth =======>  weir-cli0 10.77.0.2/24
#
# Those two addresses are the only ones configured; there are no default routes, so no
# packet can leave for any other destination. IPv6 is off on the veth (no router/neighbour
# noise in the captures) and segmentation/checksum offloads are off so tcpdump sees the
# wire-sized frames with real checksums. Everything is torn down by an EXIT trap.

set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
export LC_ALL=C
export PYTHONDONTWRITEBYTECODE=1

MAKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS_DIR=$(dirname "$MAKE_DIR")
export MAKE_DIR
SRV_NS=weir-cap-srv
CLI_NS=weir-cap-cli
MID_NS=weir-cap-mid
MIDDLE_NS=${MIDDLE_NS:-0}
SRV_IF=weir-srv0
CLI_IF=weir-cli0
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
# The venv (aiosmtpd, pyftpdlib, brotli) is reused between runs; override to relocate it.
CACHE_DIR=${WEIR_PCAPS_CACHE:-/var/cache/weir-pcaps}
VENV=$CACHE_DIR/venv
PY=$VENV/bin/python
# Pinned so a rerun on a fresh machine talks the same dialect as the committed captures.
PIP_PKGS="aiosmtpd==1.4.6 pyftpdlib==2.2.0 Brotli==1.2.1"
LOCK_FILE=/run/weir-cap.lock

WORK=""
TCPDUMP_PID=""
BG_PIDS=()

log() { printf '[%s %s] %s\n' "$(date +%T)" "${CAPTURE_NAME:-pcaps}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, veth, tcpdump)"
}

# ensure_cmds "cmd:debian-package ..." installs the packages of missing commands.
ensure_cmds() {
  local pair cmd pkg missing=""
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  [ -z "$missing" ] && return 0
  apt_install $missing
}

apt_install() {
  log "installing Debian packages: $*"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

ensure_base_tools() {
  ensure_cmds ip:iproute2 ethtool:ethtool tcpdump:tcpdump python3:python3 tshark:tshark
}

ensure_venv() {
  if "$PY" -c 'import aiosmtpd, pyftpdlib, brotli' 2>/dev/null; then return 0; fi
  log "creating python venv $VENV ($PIP_PKGS)"
  mkdir -p "$CACHE_DIR"
  rm -rf "$VENV"
  # Debian's python3 lacks ensurepip until python3-venv is installed.
  python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q $PIP_PKGS
}

cleanup() {
  set +e
  if [ -n "$TCPDUMP_PID" ]; then kill -INT "$TCPDUMP_PID" 2>/dev/null; wait "$TCPDUMP_PID" 2>/dev/null; fi
  local pid
  for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${BG_PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  # Daemons that fork (dovecot children) live only in our namespaces: end what is left there.
  local ns
  for ns in "$SRV_NS" "$CLI_NS" "$MID_NS"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  ip netns del "$SRV_NS" 2>/dev/null
  ip netns del "$CLI_NS" 2>/dev/null
  ip netns del "$MID_NS" 2>/dev/null
  [ -n "$WORK" ] && [ "${KEEP_WORK:-0}" != 1 ] && rm -rf "$WORK"
}

# netns_up: take the lock, build the namespace pair, set the EXIT trap.
netns_up() {
  require_root
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "another capture holds $LOCK_FILE"
  # A previous run killed with SIGKILL may have left them; they are ours by name.
  ip netns del "$SRV_NS" 2>/dev/null || true
  ip netns del "$CLI_NS" 2>/dev/null || true
  ip netns del "$MID_NS" 2>/dev/null || true
  WORK=$(mktemp -d /tmp/weir-cap-"${CAPTURE_NAME}".XXXXXX)
  chmod 755 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  ip netns add "$SRV_NS"
  ip netns add "$CLI_NS"
  if [ "$MIDDLE_NS" = 1 ]; then
    ip netns add "$MID_NS"
    ip netns exec "$MID_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$MID_NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip link add "$SRV_IF" netns "$SRV_NS" mtu 1500 type veth peer name weir-msrv netns "$MID_NS" mtu 1500
    ip link add "$CLI_IF" netns "$CLI_NS" mtu 1500 type veth peer name weir-mcli netns "$MID_NS" mtu 1500
    ip -n "$MID_NS" link add weir-br0 type bridge stp_state 0 forward_delay 0
    for ifc in weir-msrv weir-mcli; do
      for f in rx tx sg tso gso gro lro; do ip netns exec "$MID_NS" ethtool -K "$ifc" "$f" off >/dev/null 2>&1 || true; done
      ip -n "$MID_NS" link set "$ifc" master weir-br0 up
    done
    ip -n "$MID_NS" link set weir-br0 up
  else
    ip link add "$SRV_IF" netns "$SRV_NS" mtu 1500 type veth peer name "$CLI_IF" netns "$CLI_NS" mtu 1500
  fi
  local ns ifc
  for ns in "$SRV_NS" "$CLI_NS"; do
    [ "$ns" = "$SRV_NS" ] && ifc=$SRV_IF || ifc=$CLI_IF
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    for f in rx tx sg tso gso gro lro; do ip netns exec "$ns" ethtool -K "$ifc" "$f" off >/dev/null 2>&1 || true; done
    ip -n "$ns" link set lo up
  done
  ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$SRV_IF"
  ip -n "$CLI_NS" addr add "$CLI_IP/24" dev "$CLI_IF"
  ip -n "$SRV_NS" link set "$SRV_IF" up
  ip -n "$CLI_NS" link set "$CLI_IF" up
  for _ in $(seq 1 50); do
    ip -n "$CLI_NS" link show "$CLI_IF" | grep -q 'state UP' && break; sleep 0.1
  done
  log "namespaces $SRV_NS ($SRV_IP) <-> $CLI_NS ($CLI_IP) up$([ "$MIDDLE_NS" = 1 ] && echo " via bridge in $MID_NS"), work dir $WORK"
}

srv() { ip netns exec "$SRV_NS" "$@"; }
cli() { ip netns exec "$CLI_NS" "$@"; }
mid() { ip netns exec "$MID_NS" "$@"; }

# srv_bg LOGFILE CMD...: start a server in the server namespace.
srv_bg() {
  local logf=$1; shift
  ip netns exec "$SRV_NS" "$@" >>"$logf" 2>&1 &
  BG_PIDS+=($!)
}

# wait_listen tcp|udp PORT: readiness without sending a packet (probes would land in the pcap).
wait_listen() {
  local proto=$1 port=$2 flag
  [ "$proto" = udp ] && flag=-Hlun || flag=-Hltn
  for _ in $(seq 1 150); do
    srv ss $flag "sport = :$port" | grep -q . && return 0
    sleep 0.1
  done
  die "nothing listens on $proto/$port in $SRV_NS"
}

# capture_start PCAP: tcpdump on the client end of the veth (or the bridge port towards the
# client with MIDDLE_NS=1), full snaplen.
capture_start() {
  local pcap=$1
  rm -f "$pcap"
  if [ "$MIDDLE_NS" = 1 ]; then
    ip netns exec "$MID_NS" tcpdump -i weir-mcli -s 0 -n -U -Z root -w "$pcap" 2>"$WORK/tcpdump.log" &
  else
    ip netns exec "$CLI_NS" tcpdump -i "$CLI_IF" -s 0 -n -U -Z root -w "$pcap" 2>"$WORK/tcpdump.log" &
  fi
  TCPDUMP_PID=$!
  for _ in $(seq 1 100); do grep -qs listening "$WORK/tcpdump.log" && break; sleep 0.1; done
  grep -q listening "$WORK/tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
  sleep 0.3
}

capture_stop() {
  sleep 1   # let the last FIN/ACKs cross the veth
  kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=""
  grep -E 'captured|dropped' "$WORK/tcpdump.log" >&2 || true
  if grep -qE '^[1-9][0-9]* packets dropped by kernel' "$WORK/tcpdump.log"; then die "tcpdump dropped packets"; fi
}

tool_versions_json() {
  printf '{"kernel": "%s", "tcpdump": "%s", "python": "%s"' "$(uname -r)" \
    "$(tcpdump --version 2>&1 | head -1 | awk '{print $3}')" "$("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || python3 -c 'import sys; print(sys.version.split()[0])')"
  local kv
  for kv in "$@"; do printf ', "%s": "%s"' "${kv%%=*}" "${kv#*=}"; done
  printf '}'
}
